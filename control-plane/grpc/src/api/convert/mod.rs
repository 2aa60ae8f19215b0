//! Domain <-> proto conversions, by area; nothing here knows a service.

pub mod containers;
pub mod operations;

use pharos_proto::v1 as pb;
use prost_types::Timestamp;

use pharos_collectors::catalog::{EnvironmentTotals, Overview};
use pharos_collectors::health::history::Rollup;
use pharos_core::domain::{
    CheckHealth, CheckResult, CheckSpec, Deployment, DeploymentHealth, Environment, Event,
    HealthStatus, PortAllocation, PortType, Project, Severity,
};
use pharos_store::journal::{JournalEntry, Object, Op, Topic};

pub fn environment(env: &Environment) -> pb::Environment {
    pb::Environment {
        id: env.id.clone(),
        name: env.name.clone(),
        port_range: env.port_range.map(|range| pb::PortRange {
            start: u32::from(range.start),
            end: u32::from(range.end),
        }),
    }
}

pub fn project(project: &Project) -> pb::Project {
    pb::Project {
        id: project.id.clone(),
        name: project.name.clone(),
        r#type: project.project_type.clone(),
        subdomain: project.subdomain.clone(),
        description: project.description.clone(),
        environments: project.environments.clone(),
    }
}

/// A deployment with the ports allocated to it (empty on Watch streams, where port
/// allocations are changes of their own).
pub fn deployment(deployment: &Deployment, ports: &[&PortAllocation]) -> pb::Deployment {
    pb::Deployment {
        id: deployment.id(),
        project_id: deployment.project_id.clone(),
        environment: deployment.environment.clone(),
        ports: ports.iter().map(|port| port_allocation(port)).collect(),
        checks: deployment.checks.iter().map(check_definition).collect(),
        container_selector: deployment
            .container_selector
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        health: pb::HealthStatus::Unspecified as i32,
    }
}

pub fn check_definition(check: &CheckSpec) -> pb::CheckDefinition {
    pb::CheckDefinition {
        name: check.name.clone(),
        kind: check.kind_name().to_owned(),
        target: check.target(),
        interval: prost_types::Duration::try_from(check.interval).ok(),
        timeout: prost_types::Duration::try_from(check.timeout).ok(),
    }
}

pub fn port_allocation(port: &PortAllocation) -> pb::PortAllocation {
    let port_type = match port.port_type {
        PortType::Http => pb::PortType::Http,
        PortType::Https => pb::PortType::Https,
        PortType::Grpc => pb::PortType::Grpc,
        PortType::Metrics => pb::PortType::Metrics,
        PortType::Database => pb::PortType::Database,
        PortType::Tcp => pb::PortType::Tcp,
    };
    pb::PortAllocation {
        environment: port.environment.clone(),
        port: u32::from(port.port),
        r#type: port_type as i32,
        project_id: port.project_id.clone(),
        service: port.service.clone(),
    }
}

pub fn event(event: &Event, time: Timestamp) -> pb::Event {
    let severity = match event.severity {
        Severity::Info => pb::EventSeverity::Info,
        Severity::Warning => pb::EventSeverity::Warning,
        Severity::Error => pb::EventSeverity::Error,
        Severity::Critical => pb::EventSeverity::Critical,
    };
    pb::Event {
        id: event.id.clone(),
        kind: event.kind.clone(),
        severity: severity as i32,
        message: event.message.clone(),
        source: event.source.clone(),
        project_id: event.project_id.clone().unwrap_or_default(),
        environment: event.environment.clone().unwrap_or_default(),
        attributes: event
            .attributes
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        time: Some(time),
    }
}

pub fn overview(overview: &Overview, revision: u64) -> pb::GetOverviewResponse {
    pb::GetOverviewResponse {
        revision,
        projects: overview.projects,
        deployments: overview.deployments,
        healthy_deployments: overview.healthy,
        degraded_deployments: overview.degraded,
        unhealthy_deployments: overview.unhealthy,
        unknown_deployments: overview.unknown,
        ports_allocated: overview.ports_allocated,
        ports_available: overview.ports_available,
        environments: overview
            .environments
            .iter()
            .map(environment_summary)
            .collect(),
    }
}

fn environment_summary(totals: &EnvironmentTotals) -> pb::EnvironmentSummary {
    pb::EnvironmentSummary {
        id: totals.id.clone(),
        name: totals.name.clone(),
        deployments: totals.deployments,
        ports_allocated: totals.ports_allocated,
        ports_available: totals.ports_available,
    }
}

pub fn topic(topic: Topic) -> pb::WatchTopic {
    match topic {
        Topic::Catalog => pb::WatchTopic::Catalog,
        Topic::Events => pb::WatchTopic::Events,
        Topic::Health => pb::WatchTopic::Health,
        Topic::Containers => pb::WatchTopic::Containers,
        Topic::Operations => pb::WatchTopic::Operations,
        Topic::Metrics => pb::WatchTopic::Metrics,
    }
}

pub fn topic_from_proto(value: i32) -> Option<Topic> {
    match pb::WatchTopic::try_from(value).ok()? {
        pb::WatchTopic::Catalog => Some(Topic::Catalog),
        pb::WatchTopic::Events => Some(Topic::Events),
        pb::WatchTopic::Health => Some(Topic::Health),
        pb::WatchTopic::Containers => Some(Topic::Containers),
        pb::WatchTopic::Operations => Some(Topic::Operations),
        pb::WatchTopic::Metrics => Some(Topic::Metrics),
        pb::WatchTopic::Unspecified => None,
    }
}

pub fn timestamp(micros: i64) -> Timestamp {
    Timestamp {
        seconds: micros.div_euclid(1_000_000),
        nanos: (micros.rem_euclid(1_000_000) * 1000) as i32,
    }
}

/// A journal entry as a Watch change; `snapshot` marks entries of the initial snapshot.
pub fn change(entry: &JournalEntry, snapshot: bool) -> pb::Change {
    use pb::change::Object as PbObject;
    let kind = match (snapshot, entry.op) {
        (true, _) => pb::ChangeKind::Snapshot,
        (false, Op::Upsert) => pb::ChangeKind::Upsert,
        (false, Op::Delete) => pb::ChangeKind::Delete,
        (false, Op::Append) => pb::ChangeKind::Append,
    };
    let commit_time = timestamp(entry.committed_at_micros);
    let object = match &entry.object {
        Object::Environment(env) => PbObject::Environment(environment(env)),
        Object::Project(item) => PbObject::Project(project(item)),
        Object::Deployment(d) => PbObject::Deployment(deployment(d, &[])),
        Object::PortAllocation(port) => PbObject::PortAllocation(port_allocation(port)),
        Object::Event(e) => PbObject::Event(event(e, commit_time)),
        Object::CheckHealth(check) => PbObject::CheckHealth(check_health(check)),
        Object::DeploymentHealth(health) => PbObject::DeploymentHealth(deployment_health(health)),
        Object::Container(c) => PbObject::Container(containers::container(c, None)),
        Object::ContainerEngine(engine) => {
            PbObject::ContainerEngine(containers::engine_status(engine))
        }
        Object::Operation(op) => PbObject::Operation(operations::operation(op)),
    };
    pb::Change {
        revision: entry.revision,
        topic: topic(entry.topic) as i32,
        kind: kind as i32,
        key: entry.key.clone(),
        commit_time: Some(commit_time),
        object: Some(object),
    }
}

pub fn health_status(status: HealthStatus) -> pb::HealthStatus {
    match status {
        HealthStatus::Healthy => pb::HealthStatus::Healthy,
        HealthStatus::Degraded => pb::HealthStatus::Degraded,
        HealthStatus::Unhealthy => pb::HealthStatus::Unhealthy,
        HealthStatus::Unknown => pb::HealthStatus::Unspecified,
    }
}

pub fn health_status_from_proto(value: i32) -> Option<HealthStatus> {
    Some(match pb::HealthStatus::try_from(value).ok()? {
        pb::HealthStatus::Healthy => HealthStatus::Healthy,
        pb::HealthStatus::Degraded => HealthStatus::Degraded,
        pb::HealthStatus::Unhealthy => HealthStatus::Unhealthy,
        pb::HealthStatus::Unspecified => HealthStatus::Unknown,
    })
}

fn duration(micros: i64) -> prost_types::Duration {
    prost_types::Duration {
        seconds: micros.div_euclid(1_000_000),
        nanos: (micros.rem_euclid(1_000_000) * 1000) as i32,
    }
}

pub fn check_result(result: &CheckResult) -> pb::CheckResult {
    pb::CheckResult {
        check_id: result.check_id.clone(),
        time: Some(timestamp(result.at_micros)),
        outcome: health_status(result.outcome) as i32,
        message: result.message.clone(),
        connect: result.connect_micros.map(duration),
        tls: result.tls_micros.map(duration),
        first_byte: result.first_byte_micros.map(duration),
        total: Some(duration(result.total_micros)),
        measurements: result
            .measurements
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect(),
    }
}

pub fn check_health(check: &CheckHealth) -> pb::CheckHealth {
    pb::CheckHealth {
        check_id: check.check_id.clone(),
        project_id: check.project_id.clone(),
        environment: check.environment.clone(),
        name: check.name.clone(),
        kind: check.kind.clone(),
        status: health_status(check.status) as i32,
        flapping: check.flapping,
        since: (check.since_micros > 0).then(|| timestamp(check.since_micros)),
        last_result: check.last_result.as_ref().map(check_result),
        previous_status: check.previous_status.map_or(0, |s| health_status(s) as i32),
    }
}

pub fn deployment_health(health: &DeploymentHealth) -> pb::DeploymentHealth {
    pb::DeploymentHealth {
        deployment_id: health.deployment_id.clone(),
        project_id: health.project_id.clone(),
        environment: health.environment.clone(),
        status: health_status(health.status) as i32,
        healthy_checks: health.healthy_checks,
        degraded_checks: health.degraded_checks,
        unhealthy_checks: health.unhealthy_checks,
        unknown_checks: health.unknown_checks,
        previous_status: health
            .previous_status
            .map_or(0, |s| health_status(s) as i32),
    }
}

pub fn uptime_window(name: &str, rollup: Option<&Rollup>) -> pb::UptimeWindow {
    let quantile = |q: f64| {
        rollup
            .and_then(|r| r.latency.quantile(q))
            .and_then(|d| prost_types::Duration::try_from(d).ok())
    };
    pb::UptimeWindow {
        window: name.to_owned(),
        uptime_percent: rollup.and_then(|r| r.uptime_percent()),
        runs: rollup.map_or(0, |r| r.runs),
        latency_p50: quantile(0.5),
        latency_p95: quantile(0.95),
        latency_p99: quantile(0.99),
    }
}
