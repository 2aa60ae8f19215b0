//! Metrics, alerting and notification settings as the catalog declares them.

use std::collections::BTreeMap;
use std::time::Duration;

use super::Severity;

/// Everything under the catalog's `scrape_targets`, `alert_rules` and `webhooks`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MetricsCatalog {
    pub scrape_targets: Vec<ScrapeTarget>,
    pub alert_rules: Vec<AlertRule>,
    pub webhooks: Vec<Webhook>,
}

/// A Prometheus text / OpenMetrics endpoint scraped every `interval`.
#[derive(Clone, Debug, PartialEq)]
pub struct ScrapeTarget {
    /// Unique; every series from the target carries `target="<name>"`.
    pub name: String,
    /// `http://host:port/path`.
    pub url: String,
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
