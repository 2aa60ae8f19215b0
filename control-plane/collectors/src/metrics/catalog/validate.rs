//! The metrics sections checked field by field: each problem with its field path, every
//! valid section turned into its domain type.

use std::collections::HashSet;
use std::time::Duration;

use pharos_core::domain::{
    AlertCondition, AlertRule, Alertmanager, AnomalyDetector, AnomalyMethod, Comparison, Kpi,
    MetricsCatalog, PrometheusBackend, ScrapeTarget, Severity, Webhook,
};

use super::MetricsSections;

type Issues = Vec<(String, String)>;

/// A secret set inline or through an environment variable (exactly one of the two).
fn inline_or_env(
    issues: &mut Issues,
    path: &str,
    (field, inline): (&str, &Option<String>),
    (env_field, var): (&str, &Option<String>),
) -> String {
    match (inline, var) {
        (Some(value), None) => value.clone(),
        (None, Some(var)) => std::env::var(var).unwrap_or_else(|_| {
            issues.push((
                format!("{path}.{env_field}"),
                format!("environment variable {var:?} is not set"),
            ));
            String::new()
        }),
        _ => {
            issues.push((
                path.to_owned(),
                format!("set exactly one of `{field}` or `{env_field}`"),
            ));
            String::new()
        }
    }
}

fn max_attempts(issues: &mut Issues, path: &str, value: Option<u32>) -> u32 {
    let attempts = value.unwrap_or(4);
    if !(1..=10).contains(&attempts) {
        issues.push((
            format!("{path}.max_attempts"),
            "must be between 1 and 10".to_owned(),
        ));
    }
    attempts
}

fn severity(issues: &mut Issues, path: &str, text: Option<&str>) -> Severity {
    match text.unwrap_or("warning") {
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
    }
}

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

/// An `http://` or `https://` URL with a host; `ca_file` only with `https://`, and
/// readable as PEM certificates.
fn http_url(issues: &mut Issues, path: &str, text: &str, ca_file: Option<&str>) {
    match url::Url::parse(text) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {
            if let Some(file) = ca_file {
                if url.scheme() != "https" {
                    issues.push((
                        format!("{path}.ca_file"),
                        "applies to https:// URLs only".to_owned(),
                    ));
                } else if let Err(err) = crate::metrics::http::tls_for(Some(file)) {
                    issues.push((format!("{path}.ca_file"), err));
                }
            }
        }
        Ok(url) => issues.push((
            format!("{path}.url"),
            format!(
                "unsupported URL {text:?}: use http:// or https:// with a host (scheme {:?})",
                url.scheme()
            ),
        )),
        Err(err) => issues.push((
            format!("{path}.url"),
            format!("invalid URL {text:?}: {err}"),
        )),
    }
}

/// Validates the metrics sections; problems go to `issues` with their field paths.
pub fn validate(file: &MetricsSections<'_>, issues: &mut Issues) -> MetricsCatalog {
    let (targets, rules, webhooks) = (&file.scrape_targets, &file.alert_rules, &file.webhooks);
    let mut out = MetricsCatalog::default();
    let mut seen = HashSet::new();
    for (i, target) in targets.iter().enumerate() {
        let path = format!("scrape_targets[{i}]");
        unique(issues, &mut seen, format!("{path}.name"), &target.name);
        http_url(issues, &path, &target.url, target.ca_file.as_deref());
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
            ca_file: target.ca_file.clone(),
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
        let severity = severity(issues, &path, rule.severity.as_deref());
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
        http_url(issues, &path, &hook.url, hook.ca_file.as_deref());
        let secret = inline_or_env(
            issues,
            &path,
            ("secret", &hook.secret),
            ("secret_env", &hook.secret_env),
        );
        let max_attempts = max_attempts(issues, &path, hook.max_attempts);
        out.webhooks.push(Webhook {
            name: hook.name.clone(),
            url: hook.url.clone(),
            ca_file: hook.ca_file.clone(),
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
    validate_notifications_and_sources(file, issues, &mut out);
    out
}

/// `alertmanagers`, `kpis`, `anomaly_detectors` and `prometheus_backends`.
fn validate_notifications_and_sources(
    file: &MetricsSections<'_>,
    issues: &mut Issues,
    out: &mut MetricsCatalog,
) {
    let mut seen = HashSet::new();
    for (i, manager) in file.alertmanagers.iter().enumerate() {
        let path = format!("alertmanagers[{i}]");
        unique(issues, &mut seen, format!("{path}.name"), &manager.name);
        http_url(issues, &path, &manager.url, manager.ca_file.as_deref());
        out.alertmanagers.push(Alertmanager {
            name: manager.name.clone(),
            url: manager.url.trim_end_matches('/').to_owned(),
            ca_file: manager.ca_file.clone(),
            timeout: duration(
                issues,
                format!("{path}.timeout"),
                manager.timeout.as_deref(),
                Duration::from_secs(5),
            ),
            max_attempts: max_attempts(issues, &path, manager.max_attempts),
        });
    }

    let mut seen = HashSet::new();
    for (i, kpi) in file.kpis.iter().enumerate() {
        let path = format!("kpis[{i}]");
        unique(issues, &mut seen, format!("{path}.name"), &kpi.name);
        if !kpi.name.is_empty() && !pharos_core::domain::valid_metric_name(&kpi.name, false) {
            issues.push((
                format!("{path}.name"),
                "use letters, digits and '_', not starting with a digit (it is a label value \
                 and a series prefix)"
                    .to_owned(),
            ));
        }
        let dsn = inline_or_env(issues, &path, ("dsn", &kpi.dsn), ("dsn_env", &kpi.dsn_env));
        let postgres = dsn.starts_with("postgres://") || dsn.starts_with("postgresql://");
        if !dsn.is_empty() && !postgres {
            issues.push((
                format!("{path}.dsn"),
                "not a postgres:// URL; expected postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE"
                    .to_owned(),
            ));
        }
        if kpi.query.trim().is_empty() {
            issues.push((format!("{path}.query"), "must not be empty".to_owned()));
        }
        let interval = duration(
            issues,
            format!("{path}.interval"),
            kpi.interval.as_deref(),
            Duration::from_secs(60),
        );
        if interval < Duration::from_secs(1) {
            issues.push((format!("{path}.interval"), "must be at least 1s".to_owned()));
        }
        let timeout = duration(
            issues,
            format!("{path}.timeout"),
            kpi.timeout.as_deref(),
            interval.min(Duration::from_secs(10)),
        );
        if timeout > interval || timeout.is_zero() {
            issues.push((
                format!("{path}.timeout"),
                "must be more than zero and at most the interval".to_owned(),
            ));
        }
        out.kpis.push(Kpi {
            name: kpi.name.clone(),
            dsn,
            query: kpi.query.clone(),
            interval,
            timeout,
            project_id: kpi.project.clone(),
            environment: kpi.environment.clone(),
        });
    }

    let mut seen = HashSet::new();
    for (i, detector) in file.anomaly_detectors.iter().enumerate() {
        let path = format!("anomaly_detectors[{i}]");
        unique(issues, &mut seen, format!("{path}.name"), &detector.name);
        let method = match detector.method.as_deref().unwrap_or("robust_z") {
            "robust_z" => {
                if detector.alpha.is_some() {
                    issues.push((
                        format!("{path}.alpha"),
                        "`alpha` belongs to method `ewma`".to_owned(),
                    ));
                }
                AnomalyMethod::RobustZ {
                    window: duration(
                        issues,
                        format!("{path}.window"),
                        detector.window.as_deref(),
                        Duration::from_secs(600),
                    ),
                }
            }
            "ewma" => {
                if detector.window.is_some() {
                    issues.push((
                        format!("{path}.window"),
                        "`window` belongs to method `robust_z`".to_owned(),
                    ));
                }
                let alpha = detector.alpha.unwrap_or(0.1);
                if !(alpha > 0.0 && alpha < 1.0) {
                    issues.push((
                        format!("{path}.alpha"),
                        "must be between 0 and 1, both excluded".to_owned(),
                    ));
                }
                AnomalyMethod::Ewma { alpha }
            }
            other => {
                issues.push((
                    format!("{path}.method"),
                    format!("unknown method {other:?}; use `robust_z` or `ewma`"),
                ));
                continue;
            }
        };
        let threshold = detector.threshold.unwrap_or(3.5);
        if !(threshold.is_finite() && threshold > 0.0) {
            issues.push((
                format!("{path}.threshold"),
                "must be a positive number".to_owned(),
            ));
        }
        let min_samples = detector.min_samples.unwrap_or(20);
        if min_samples < 3 {
            issues.push((
                format!("{path}.min_samples"),
                "must be at least 3".to_owned(),
            ));
        }
        out.anomaly_detectors.push(AnomalyDetector {
            name: detector.name.clone(),
            metric: detector.metric.clone(),
            labels: detector.labels.clone(),
            method,
            threshold,
            min_samples,
            severity: severity(issues, &path, detector.severity.as_deref()),
            project_id: detector.project.clone(),
            environment: detector.environment.clone(),
        });
    }

    let mut seen = HashSet::new();
    for (i, backend) in file.prometheus_backends.iter().enumerate() {
        let path = format!("prometheus_backends[{i}]");
        unique(issues, &mut seen, format!("{path}.name"), &backend.name);
        http_url(issues, &path, &backend.url, backend.ca_file.as_deref());
        if backend.series.is_empty() {
            issues.push((
                format!("{path}.series"),
                "name at least one series (or a prefix such as node_*)".to_owned(),
            ));
        }
        for (j, pattern) in backend.series.iter().enumerate() {
            let name = pattern.strip_suffix('*').unwrap_or(pattern);
            if name.is_empty() || !pharos_core::domain::valid_metric_name(name, true) {
                issues.push((
                    format!("{path}.series[{j}]"),
                    format!("{pattern:?} is not a series name or a prefix ending in `*`"),
                ));
            }
        }
        out.prometheus_backends.push(PrometheusBackend {
            name: backend.name.clone(),
            url: backend.url.trim_end_matches('/').to_owned(),
            ca_file: backend.ca_file.clone(),
            timeout: duration(
                issues,
                format!("{path}.timeout"),
                backend.timeout.as_deref(),
                Duration::from_secs(10),
            ),
            series: backend.series.clone(),
        });
    }
}
