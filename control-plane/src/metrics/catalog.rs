//! The catalog's `scrape_targets`, `alert_rules` and `webhooks` sections: file structs
//! and their validation into [`MetricsCatalog`].

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use serde::Deserialize;

use crate::domain::{
    AlertCondition, AlertRule, Comparison, MetricsCatalog, ScrapeTarget, Severity, Webhook,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScrapeTargetFile {
    pub name: String,
    pub url: String,
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
    /// The HMAC-SHA256 key, inline ...
    pub secret: Option<String>,
    /// ... or the name of an environment variable that holds it.
    pub secret_env: Option<String>,
    pub timeout: Option<String>,
    /// Attempts in all (default 4), with exponential backoff between them.
    pub max_attempts: Option<u32>,
}

type Issues = Vec<(String, String)>;

fn duration(issues: &mut Issues, path: String, text: Option<&str>, default: Duration) -> Duration {
    let Some(text) = text else {
        return default;
    };
    match humantime::parse_duration(text) {
        Ok(value) => value,
        Err(err) => {
            issues.push((
                path,
                format!("invalid duration {text:?} ({err}); use forms such as 500ms, 10s, 1m"),
            ));
            default
        }
    }
}

fn unique(issues: &mut Issues, seen: &mut HashSet<String>, path: String, name: &str) {
    if name.is_empty() {
        issues.push((path, "must not be empty".to_owned()));
    } else if !seen.insert(name.to_owned()) {
        issues.push((path, format!("duplicate name {name:?}")));
    }
}

fn http_url(issues: &mut Issues, path: String, text: &str) {
    match url::Url::parse(text) {
        Ok(url) if url.scheme() == "http" && url.host().is_some() => {}
        Ok(url) => issues.push((
            path,
            format!(
                "unsupported URL {text:?}: only http:// with a host is supported (scheme {:?})",
                url.scheme()
            ),
        )),
        Err(err) => issues.push((path, format!("invalid URL {text:?}: {err}"))),
    }
}

/// Validates the three sections; problems go to `issues` with their field paths.
pub fn validate(
    targets: &[ScrapeTargetFile],
    rules: &[AlertRuleFile],
    webhooks: &[WebhookFile],
    issues: &mut Issues,
) -> MetricsCatalog {
    let mut out = MetricsCatalog::default();
    let mut seen = HashSet::new();
    for (i, target) in targets.iter().enumerate() {
        let path = format!("scrape_targets[{i}]");
        unique(issues, &mut seen, format!("{path}.name"), &target.name);
        http_url(issues, format!("{path}.url"), &target.url);
        let interval = duration(
            issues,
            format!("{path}.interval"),
            target.interval.as_deref(),
            Duration::from_secs(15),
        );
        if interval < Duration::from_millis(100) {
            issues.push((
                format!("{path}.interval"),
                "must be at least 100ms".to_owned(),
            ));
        }
        let timeout = duration(
            issues,
            format!("{path}.timeout"),
            target.timeout.as_deref(),
            interval.min(Duration::from_secs(10)),
        );
        if timeout > interval {
            issues.push((
                format!("{path}.timeout"),
                format!(
                    "timeout {} is longer than the interval {}",
                    humantime::format_duration(timeout),
                    humantime::format_duration(interval)
                ),
            ));
        }
        if target.labels.contains_key("target") {
            issues.push((
                format!("{path}.labels"),
                "`target` is set by pharosd to the target's name".to_owned(),
            ));
        }
        out.scrape_targets.push(ScrapeTarget {
            name: target.name.clone(),
            url: target.url.clone(),
            interval,
            timeout,
            labels: target.labels.clone(),
            project_id: target.project.clone(),
            environment: target.environment.clone(),
        });
    }

    let mut seen = HashSet::new();
    for (i, rule) in rules.iter().enumerate() {
        let path = format!("alert_rules[{i}]");
        unique(issues, &mut seen, format!("{path}.name"), &rule.name);
        let condition = match (&rule.metric, &rule.check) {
            (Some(metric), None) => {
                let op = match rule.op.as_deref() {
                    Some("above") | None => Comparison::Above,
                    Some("below") => Comparison::Below,
                    Some(other) => {
                        issues.push((
                            format!("{path}.op"),
                            format!("unknown op {other:?}; use `above` or `below`"),
                        ));
                        Comparison::Above
                    }
                };
                let Some(threshold) = rule.threshold.filter(|t| t.is_finite()) else {
                    issues.push((
                        format!("{path}.threshold"),
                        "a metric rule needs a finite threshold".to_owned(),
                    ));
                    continue;
                };
                AlertCondition::Metric {
                    metric: metric.clone(),
                    labels: rule.labels.clone(),
                    op,
                    threshold,
                }
            }
            (None, Some(check)) => {
                let status = rule
                    .status
                    .clone()
                    .unwrap_or_else(|| "unhealthy".to_owned());
                if !["healthy", "degraded", "unhealthy", "unknown"].contains(&status.as_str()) {
                    issues.push((
                        format!("{path}.status"),
                        format!(
                            "unknown status {status:?}; use healthy, degraded, unhealthy or unknown"
                        ),
                    ));
                }
                if check.split('/').count() != 3 {
                    issues.push((
                        format!("{path}.check"),
                        format!("{check:?} is not <project>/<environment>/<check name>"),
                    ));
                }
                AlertCondition::Health {
                    check_id: check.clone(),
                    status,
                }
            }
            _ => {
                issues.push((
                    path.clone(),
                    "set exactly one of `metric` (with `threshold`) or `check`".to_owned(),
                ));
                continue;
            }
        };
        let severity = match rule.severity.as_deref().unwrap_or("warning") {
            "info" => Severity::Info,
            "warning" => Severity::Warning,
            "error" => Severity::Error,
            "critical" => Severity::Critical,
            other => {
                issues.push((
                    format!("{path}.severity"),
                    format!("unknown severity {other:?}; use info, warning, error or critical"),
                ));
                Severity::Warning
            }
        };
        out.alert_rules.push(AlertRule {
            name: rule.name.clone(),
            condition,
            for_duration: duration(
                issues,
                format!("{path}.for"),
                rule.for_duration.as_deref(),
                Duration::ZERO,
            ),
            severity,
            project_id: rule.project.clone(),
            environment: rule.environment.clone(),
        });
    }

    let mut seen = HashSet::new();
    for (i, hook) in webhooks.iter().enumerate() {
        let path = format!("webhooks[{i}]");
        unique(issues, &mut seen, format!("{path}.name"), &hook.name);
        http_url(issues, format!("{path}.url"), &hook.url);
        let secret = match (&hook.secret, &hook.secret_env) {
            (Some(secret), None) => secret.clone(),
            (None, Some(var)) => match std::env::var(var) {
                Ok(secret) => secret,
                Err(_) => {
                    issues.push((
                        format!("{path}.secret_env"),
                        format!("environment variable {var:?} is not set"),
                    ));
                    String::new()
                }
            },
            _ => {
                issues.push((
                    path.clone(),
                    "set exactly one of `secret` or `secret_env`".to_owned(),
                ));
                String::new()
            }
        };
        let max_attempts = hook.max_attempts.unwrap_or(4);
        if !(1..=10).contains(&max_attempts) {
            issues.push((
                format!("{path}.max_attempts"),
                "must be between 1 and 10".to_owned(),
            ));
        }
        out.webhooks.push(Webhook {
            name: hook.name.clone(),
            url: hook.url.clone(),
            secret,
            timeout: duration(
                issues,
                format!("{path}.timeout"),
                hook.timeout.as_deref(),
                Duration::from_secs(5),
            ),
            max_attempts,
        });
    }
    out
}
