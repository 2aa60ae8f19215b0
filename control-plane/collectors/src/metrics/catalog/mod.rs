//! The catalog's metrics sections (`scrape_targets`, `alert_rules`, `webhooks`,
//! `alertmanagers`, `kpis`, `anomaly_detectors`, `prometheus_backends`): file structs and
//! their validation into [`MetricsCatalog`].

mod validate;

use std::collections::BTreeMap;

use serde::Deserialize;

pub use validate::validate;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScrapeTargetFile {
    pub name: String,
    pub url: String,
    /// For `https://`: the CA (PEM) that signs the server's certificate (default: the
    /// public roots).
    pub ca_file: Option<String>,
    /// Such as `15s` (default 15 s).
    pub interval: Option<String>,
    /// Such as `5s` (default: the interval, at most 10 s).
    pub timeout: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    pub project: Option<String>,
    pub environment: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertRuleFile {
    pub name: String,
    /// A metric condition: series name (derived names such as `x:rate` included).
    pub metric: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// `above` or `below` the threshold.
    pub op: Option<String>,
    pub threshold: Option<f64>,
    /// A health condition: `<project>/<environment>/<check>` ...
    pub check: Option<String>,
    /// ... in this status (default `unhealthy`).
    pub status: Option<String>,
    /// How long the condition must hold before the alert opens (default 0s).
    #[serde(rename = "for")]
    pub for_duration: Option<String>,
    /// `info`, `warning` (default), `error` or `critical`.
    pub severity: Option<String>,
    pub project: Option<String>,
    pub environment: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookFile {
    pub name: String,
    pub url: String,
    /// For `https://`: the CA (PEM) that signs the server's certificate (default: the
    /// public roots).
    pub ca_file: Option<String>,
    /// The HMAC-SHA256 key, inline ...
    pub secret: Option<String>,
    /// ... or the name of an environment variable that holds it.
    pub secret_env: Option<String>,
    pub timeout: Option<String>,
    /// Attempts in all (default 4), with exponential backoff between them.
    pub max_attempts: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertmanagerFile {
    pub name: String,
    /// The base URL; alerts go to `<url>/api/v2/alerts`.
    pub url: String,
    /// For `https://`: the CA (PEM) that signs the server's certificate (default: the
    /// public roots).
    pub ca_file: Option<String>,
    pub timeout: Option<String>,
    /// Attempts in all (default 4), with exponential backoff between them.
    pub max_attempts: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KpiFile {
    pub name: String,
    /// A `postgres://` DSN, inline ...
    pub dsn: Option<String>,
    /// ... or the name of an environment variable that holds it.
    pub dsn_env: Option<String>,
    /// One read-only statement; numeric columns become gauges, text columns labels.
    pub query: String,
    /// Such as `30s` (default 1 m).
    pub interval: Option<String>,
    /// Such as `5s` (default 10 s, at most the interval).
    pub timeout: Option<String>,
    pub project: Option<String>,
    pub environment: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnomalyDetectorFile {
    pub name: String,
    pub metric: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// `robust_z` (default) or `ewma`.
    pub method: Option<String>,
    /// For `robust_z`: the values a new one is compared with (default 10m).
    pub window: Option<String>,
    /// For `ewma`: the weight of each new value, in (0, 1) (default 0.1).
    pub alpha: Option<f64>,
    /// The score beyond which a value is anomalous (default 3.5).
    pub threshold: Option<f64>,
    /// Earlier values needed before a value is judged (default 20).
    pub min_samples: Option<usize>,
    pub severity: Option<String>,
    pub project: Option<String>,
    pub environment: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrometheusBackendFile {
    pub name: String,
    /// The base URL, such as `http://prometheus:9090`.
    pub url: String,
    /// For `https://`: the CA (PEM) that signs the server's certificate (default: the
    /// public roots).
    pub ca_file: Option<String>,
    pub timeout: Option<String>,
    /// Series names read from this Prometheus; `node_*` names every series with the prefix.
    pub series: Vec<String>,
}

/// The metrics sections of a catalog file, as the catalog parsed them.
pub struct MetricsSections<'a> {
    pub scrape_targets: &'a [ScrapeTargetFile],
    pub alert_rules: &'a [AlertRuleFile],
    pub webhooks: &'a [WebhookFile],
    pub alertmanagers: &'a [AlertmanagerFile],
    pub kpis: &'a [KpiFile],
    pub anomaly_detectors: &'a [AnomalyDetectorFile],
    pub prometheus_backends: &'a [PrometheusBackendFile],
}
