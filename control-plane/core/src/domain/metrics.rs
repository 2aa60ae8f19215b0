//! Metrics, alerting and notification settings as the catalog declares them.

use std::collections::BTreeMap;
use std::time::Duration;

use super::Severity;

/// Everything under the catalog's metrics sections: `scrape_targets`, `alert_rules`,
/// `webhooks`, `alertmanagers`, `kpis`, `anomaly_detectors` and `prometheus_backends`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MetricsCatalog {
    pub scrape_targets: Vec<ScrapeTarget>,
    pub alert_rules: Vec<AlertRule>,
    pub webhooks: Vec<Webhook>,
    pub alertmanagers: Vec<Alertmanager>,
    pub kpis: Vec<Kpi>,
    pub anomaly_detectors: Vec<AnomalyDetector>,
    pub prometheus_backends: Vec<PrometheusBackend>,
}

/// A Prometheus text / OpenMetrics endpoint scraped every `interval`.
#[derive(Clone, Debug, PartialEq)]
pub struct ScrapeTarget {
    /// Unique; every series from the target carries `target="<name>"`.
    pub name: String,
    /// `http://` or `https://host:port/path`.
    pub url: String,
    /// The CA (PEM) that signs an `https://` target's certificate; the public roots without.
    pub ca_file: Option<String>,
    pub interval: Duration,
    pub timeout: Duration,
    /// Added to every series of the target.
    pub labels: BTreeMap<String, String>,
    pub project_id: Option<String>,
    pub environment: Option<String>,
}

/// Opens an alert when its condition has held for `for_duration`, resolves it when the
/// condition no longer holds.
#[derive(Clone, Debug, PartialEq)]
pub struct AlertRule {
    pub name: String,
    pub condition: AlertCondition,
    pub for_duration: Duration,
    pub severity: Severity,
    pub project_id: Option<String>,
    pub environment: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum AlertCondition {
    /// Any series matching `metric` and `labels` whose latest value compares true.
    Metric {
        metric: String,
        labels: BTreeMap<String, String>,
        op: Comparison,
        threshold: f64,
    },
    /// The check (`<project>/<environment>/<name>`) is in `status`.
    Health { check_id: String, status: String },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Comparison {
    Above,
    Below,
}

impl Comparison {
    pub fn holds(self, value: f64, threshold: f64) -> bool {
        match self {
            Comparison::Above => value > threshold,
            Comparison::Below => value < threshold,
        }
    }

    pub fn symbol(self) -> &'static str {
        match self {
            Comparison::Above => ">",
            Comparison::Below => "<",
        }
    }
}

/// A generic JSON webhook that receives alert events, signed with HMAC-SHA256.
#[derive(Clone, PartialEq)]
pub struct Webhook {
    pub name: String,
    pub url: String,
    pub ca_file: Option<String>,
    pub secret: String,
    pub timeout: Duration,
    /// Attempts in all, the first included.
    pub max_attempts: u32,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// An Alertmanager (API v2) that receives every alert: `POST <url>/api/v2/alerts`.
#[derive(Clone, Debug, PartialEq)]
pub struct Alertmanager {
    pub name: String,
    /// The base URL, such as `http://alertmanager:9093`.
    pub url: String,
    pub ca_file: Option<String>,
    pub timeout: Duration,
    /// Attempts in all, the first included.
    pub max_attempts: u32,
}

/// A read-only SQL query run every `interval` against a PostgreSQL database; each row's
/// numeric columns become gauges named after the column, labelled with `kpi="<name>"`
/// and the row's text columns.
#[derive(Clone, PartialEq)]
pub struct Kpi {
    pub name: String,
    pub dsn: String,
    pub query: String,
    pub interval: Duration,
    pub timeout: Duration,
    pub project_id: Option<String>,
    pub environment: Option<String>,
}

impl std::fmt::Debug for Kpi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kpi")
            .field("name", &self.name)
            .field("dsn", &crate::redact::redact(&self.dsn))
            .field("query", &self.query)
            .finish()
    }
}

/// Watches the series a selector matches and raises `anomaly.detected` when a new value
/// scores beyond `threshold`, `anomaly.cleared` when values score within it again.
#[derive(Clone, Debug, PartialEq)]
pub struct AnomalyDetector {
    pub name: String,
    pub metric: String,
    pub labels: BTreeMap<String, String>,
    pub method: AnomalyMethod,
    pub threshold: f64,
    /// Values scored against fewer earlier values than this are not judged.
    pub min_samples: usize,
    pub severity: Severity,
    pub project_id: Option<String>,
    pub environment: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum AnomalyMethod {
    /// `0.6745 * (x - median) / MAD` over the values of the last `window`.
    RobustZ { window: Duration },
    /// `(x - mean) / stddev`, both exponentially weighted with `alpha`.
    Ewma { alpha: f64 },
}

/// An existing Prometheus whose TSDB answers `QueryRange` for the series it names, read
/// through its HTTP API (`/api/v1/query_range`).
#[derive(Clone, Debug, PartialEq)]
pub struct PrometheusBackend {
    pub name: String,
    pub url: String,
    pub ca_file: Option<String>,
    pub timeout: Duration,
    /// Series names, or prefixes ending in `*`.
    pub series: Vec<String>,
}

impl PrometheusBackend {
    pub fn serves(&self, name: &str) -> bool {
        self.series
            .iter()
            .any(|pattern| match pattern.strip_suffix('*') {
                Some(prefix) => name.starts_with(prefix),
                None => pattern == name,
            })
    }
}

/// Whether `name` is a Prometheus-style metric (or label, without ':') name.
pub fn valid_metric_name(name: &str, colon: bool) -> bool {
    let mut bytes = name.bytes();
    let ok = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || (colon && c == b':');
    matches!(bytes.next(), Some(c) if ok(c) && !c.is_ascii_digit())
        && bytes.all(ok)
        && name.len() <= 256
}
