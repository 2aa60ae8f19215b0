//! Semantic checks and the conversion from file structs to the domain catalog. Every
//! problem is reported with its field path; `parse` adds line and column.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use super::file::{CatalogFile, CheckFile};
use crate::health::probe::ProbeError;
use pharos_core::domain::{
    Catalog, CheckKind, CheckSpec, Deployment, Environment, PortAllocation, PortRange, PortType,
    Project,
};

type Issues = Vec<(String, String)>;

const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
const MIN_INTERVAL: Duration = Duration::from_millis(100);

pub fn validate(file: CatalogFile) -> Result<Catalog, Issues> {
    let mut issues = Issues::new();
    let mut catalog = Catalog::default();

    let mut env_ranges: HashMap<String, Option<PortRange>> = HashMap::new();
    for (i, env) in file.environments.iter().enumerate() {
        let path = format!("environments[{i}]");
        check_id(&mut issues, &format!("{path}.id"), &env.id);
        let port_range = env.port_range.as_deref().and_then(|text| {
            parse_port_range(text)
                .map_err(|msg| issues.push((format!("{path}.port_range"), msg)))
                .ok()
        });
        if env_ranges.insert(env.id.clone(), port_range).is_some() {
            issues.push((
                format!("{path}.id"),
                format!("duplicate environment id {:?}", env.id),
            ));
            continue;
        }
        catalog.environments.push(Environment {
            id: env.id.clone(),
            name: env.name.clone().unwrap_or_else(|| env.id.clone()),
            port_range,
        });
    }

    let mut project_ids = HashSet::new();
    // (environment, port) -> who has it, for conflict messages.
    let mut allocated: HashMap<(String, u16), String> = HashMap::new();
    for (i, project) in file.projects.iter().enumerate() {
        let path = format!("projects[{i}]");
        check_id(&mut issues, &format!("{path}.id"), &project.id);
        if !project_ids.insert(project.id.clone()) {
            issues.push((
                format!("{path}.id"),
                format!("duplicate project id {:?}", project.id),
            ));
            continue;
        }
        let mut environments = Vec::new();
        for (j, deployment) in project.deployments.iter().enumerate() {
            let dpath = format!("{path}.deployments[{j}]");
            let env = &deployment.environment;
            let Some(range) = env_ranges.get(env) else {
                issues.push((
                    format!("{dpath}.environment"),
                    format!("unknown environment {env:?}; declare it under `environments`"),
                ));
                continue;
            };
            if environments.contains(env) {
                issues.push((
                    format!("{dpath}.environment"),
                    format!(
                        "project {:?} already has a deployment in {env:?}",
                        project.id
                    ),
                ));
                continue;
            }
            environments.push(env.clone());

            for (k, port) in deployment.ports.iter().enumerate() {
                let ppath = format!("{dpath}.ports[{k}]");
                let Some(port_type) = PortType::parse(&port.port_type) else {
                    issues.push((
                        format!("{ppath}.type"),
                        format!(
                            "unknown port type {:?}; expected one of {}",
                            port.port_type,
                            PortType::NAMES.join(", ")
                        ),
                    ));
                    continue;
                };
                if port.port == 0 {
                    issues.push((
                        format!("{ppath}.port"),
                        "port must be between 1 and 65535".into(),
                    ));
                    continue;
                }
                if let Some(range) = range
                    && !range.contains(port.port)
                {
                    issues.push((
                        format!("{ppath}.port"),
                        format!(
                            "port {} is outside environment {env:?}'s port range {}-{}",
                            port.port, range.start, range.end
                        ),
                    ));
                    continue;
                }
                let owner = format!("{}/{} ({ppath})", project.id, port.service);
                if let Some(previous) = allocated.insert((env.clone(), port.port), owner) {
                    issues.push((
                        format!("{ppath}.port"),
                        format!(
                            "port {} in environment {env:?} is already allocated to {previous}",
                            port.port
                        ),
                    ));
                    continue;
                }
                catalog.ports.push(PortAllocation {
                    environment: env.clone(),
                    port: port.port,
                    port_type,
                    project_id: project.id.clone(),
                    service: port.service.clone(),
                });
            }

            let mut check_names = HashSet::new();
            let mut checks = Vec::new();
            for (k, check) in deployment.checks.iter().enumerate() {
                let cpath = format!("{dpath}.checks[{k}]");
                if !check_names.insert(check.name.clone()) {
                    issues.push((
                        format!("{cpath}.name"),
                        format!("duplicate check name {:?} in this deployment", check.name),
                    ));
                    continue;
                }
                if let Some(spec) = check_spec(&mut issues, &cpath, check) {
                    checks.push(spec);
                }
            }
            catalog.deployments.push(Deployment {
                project_id: project.id.clone(),
                environment: env.clone(),
                checks,
                container_selector: deployment.containers.clone(),
                container_template: container_template(
                    &mut issues,
                    &format!("{dpath}.template"),
                    deployment.template.as_ref(),
                ),
            });
        }
        catalog.projects.push(Project {
            id: project.id.clone(),
            name: project.name.clone().unwrap_or_else(|| project.id.clone()),
            project_type: project.project_type.clone(),
            subdomain: project.subdomain.clone(),
            description: project.description.clone(),
            environments,
        });
    }

    let sections = crate::metrics::catalog::MetricsSections {
        scrape_targets: &file.scrape_targets,
        alert_rules: &file.alert_rules,
        webhooks: &file.webhooks,
        alertmanagers: &file.alertmanagers,
        kpis: &file.kpis,
        anomaly_detectors: &file.anomaly_detectors,
        prometheus_backends: &file.prometheus_backends,
    };
    catalog.metrics = crate::metrics::catalog::validate(&sections, &mut issues);

    if issues.is_empty() {
        Ok(catalog)
    } else {
        Err(issues)
    }
}

fn container_template(
    issues: &mut Issues,
    path: &str,
    template: Option<&super::file::ContainerTemplateFile>,
) -> Option<pharos_core::domain::ContainerTemplate> {
    let template = template?;
    if template.image.trim().is_empty() {
        issues.push((
            format!("{path}.image"),
            "the image must not be empty".to_owned(),
        ));
    }
    if let Some(health_path) = &template.health_path {
        if !health_path.starts_with('/') {
            issues.push((
                format!("{path}.health_path"),
                format!("{health_path:?} must start with '/'"),
            ));
        }
        if template.port.is_none() {
            issues.push((
                format!("{path}.health_path"),
                "a health_path needs a port to probe it on".to_owned(),
            ));
        }
    }
    let ready_timeout = match &template.ready_timeout {
        None => std::time::Duration::from_secs(30),
        Some(text) => match humantime::parse_duration(text) {
            Ok(duration) => duration,
            Err(err) => {
                issues.push((
                    format!("{path}.ready_timeout"),
                    format!("invalid duration {text:?} ({err}); use forms such as 500ms, 10s, 1m"),
                ));
                return None;
            }
        },
    };
    Some(pharos_core::domain::ContainerTemplate {
        image: template.image.clone(),
        command: template.command.clone(),
        env: template.env.clone(),
        labels: template.labels.clone(),
        network: template
            .network
            .clone()
            .unwrap_or_else(|| "host".to_owned()),
        port: template.port,
        health_path: template.health_path.clone(),
        ready_timeout,
    })
}

fn check_id(issues: &mut Issues, path: &str, id: &str) {
    let valid = !id.is_empty()
        && id.len() <= 63
        && id.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !valid {
        issues.push((
            path.to_owned(),
            format!(
                "invalid id {id:?}: use 1 to 63 lowercase letters, digits and '-', starting with a letter or digit"
            ),
        ));
    }
}

fn parse_port_range(text: &str) -> Result<PortRange, String> {
    let invalid = || format!("invalid port range {text:?}: expected START-END, such as 8000-8999");
    let (start, end) = text.split_once('-').ok_or_else(invalid)?;
    let start: u16 = start.trim().parse().map_err(|_| invalid())?;
    let end: u16 = end.trim().parse().map_err(|_| invalid())?;
    if start == 0 || start > end {
        return Err(format!(
            "invalid port range {text:?}: the start must be at least 1 and not above the end"
        ));
    }
    Ok(PortRange { start, end })
}

fn parse_duration(
    issues: &mut Issues,
    path: String,
    text: Option<&str>,
) -> Option<Option<Duration>> {
    let Some(text) = text else {
        return Some(None);
    };
    match humantime::parse_duration(text) {
        Ok(duration) => Some(Some(duration)),
        Err(err) => {
            issues.push((
                path,
                format!("invalid duration {text:?} ({err}); use forms such as 500ms, 10s, 1m"),
            ));
            None
        }
    }
}

fn check_spec(issues: &mut Issues, path: &str, check: &CheckFile) -> Option<CheckSpec> {
    if let Some(heartbeat) = &check.heartbeat
        && humantime::parse_duration(&heartbeat.grace).is_err()
    {
        issues.push((
            format!("{path}.heartbeat.grace"),
            format!(
                "invalid duration {:?}; use forms such as 30s or 5m",
                heartbeat.grace
            ),
        ));
    }
    let mut kinds: Vec<CheckKind> = [
        check
            .http
            .clone()
            .map(|http| CheckKind::Http(Box::new(http))),
        check.tcp.clone().map(CheckKind::Tcp),
        check.grpc.clone().map(CheckKind::Grpc),
        check.postgres.clone().map(CheckKind::Postgres),
        check.redis.clone().map(CheckKind::Redis),
        check.mqtt.clone().map(CheckKind::Mqtt),
        check.heartbeat.clone().map(CheckKind::Heartbeat),
        check.container.as_ref().map(|_| CheckKind::Container),
    ]
    .into_iter()
    .flatten()
    .collect();
    if kinds.len() != 1 {
        issues.push((
            path.to_owned(),
            format!(
                "a check needs exactly one kind (http, tcp, grpc, postgres, redis, mqtt, heartbeat or container); found {}",
                if kinds.is_empty() {
                    "none".to_owned()
                } else {
                    kinds.iter().map(CheckKind::as_str).collect::<Vec<_>>().join(", ")
                }
            ),
        ));
        return None;
    }
    let kind = kinds.pop()?;
    let interval = parse_duration(
        issues,
        format!("{path}.interval"),
        check.interval.as_deref(),
    )?
    .unwrap_or(DEFAULT_INTERVAL);
    let timeout = parse_duration(issues, format!("{path}.timeout"), check.timeout.as_deref())?
        .unwrap_or(DEFAULT_TIMEOUT.min(interval));
    if interval < MIN_INTERVAL {
        issues.push((
            format!("{path}.interval"),
            "interval must be at least 100ms".into(),
        ));
        return None;
    }
    if timeout.is_zero() || timeout > interval {
        issues.push((
            format!("{path}.timeout"),
            format!(
                "timeout must be above zero and at most the interval ({})",
                humantime::format_duration(interval)
            ),
        ));
        return None;
    }
    let unhealthy_after = check
        .unhealthy_after
        .unwrap_or(pharos_core::domain::default_unhealthy_after());
    let healthy_after = check
        .healthy_after
        .unwrap_or(pharos_core::domain::default_healthy_after());
    for (field, value) in [
        ("unhealthy_after", unhealthy_after),
        ("healthy_after", healthy_after),
    ] {
        if !(1..=100).contains(&value) {
            issues.push((
                format!("{path}.{field}"),
                format!("{field} must be between 1 and 100 (got {value})"),
            ));
            return None;
        }
    }
    let spec = CheckSpec {
        unhealthy_after,
        healthy_after,
        name: check.name.clone(),
        kind,
        interval,
        timeout,
    };
    // A definition the prober cannot run (bad URL, regex, CA file...) is rejected here,
    // with the field, rather than failing quietly at run time.
    if let Err(err) = crate::health::probe::build(&spec) {
        issues.push((
            format!("{path}.{}.{}", spec.kind_name(), probe_error_field(&err)),
            err.to_string(),
        ));
        return None;
    }
    Some(spec)
}

/// The settings field a probe error is about.
fn probe_error_field(err: &ProbeError) -> &'static str {
    match err {
        ProbeError::BadDsn { .. } => "dsn",
        ProbeError::BadUrl { .. } => "url",
        ProbeError::CaFile { .. } => "ca_file",
        ProbeError::BadAddress { .. } => "address",
        ProbeError::BadMethod(_) => "method",
        ProbeError::BadHeader { .. } => "headers",
        ProbeError::BadStatus(_) => "expect_status",
        ProbeError::BadRegex { .. } => "body_regex",
        ProbeError::BadPointer(_) => "json.pointer",
        ProbeError::BadDuration { field, .. } => field,
    }
}
