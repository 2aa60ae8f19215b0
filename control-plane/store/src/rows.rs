//! The one place stored rows become domain values: journal entries (and the events
//! among them), the catalog, check results and rollups, metric rollups and operations.
//! Every reader decodes through here, so a format change is made once.

use std::collections::BTreeMap;

use pharos_core::domain::{
    CheckResult, Deployment, Environment, Event, HealthStatus, Operation, PortAllocation,
    PortRange, PortType, Project, Resolution,
};
use pharos_core::journal::{Change, JournalEntry, Object, Op};

use crate::entities::{
    check_result, check_rollup, deployment, environment, journal, metric_rollup, operation,
    port_allocation, project,
};
use crate::history::{RollupBucket, RollupCounts};
use crate::journal::StoreError;
use crate::metric_rollups::StoredMinute;

/// A journal row's parts as one entry; a payload that does not parse is corrupt.
pub fn journal_entry(
    revision: i64,
    op: Op,
    payload: &str,
    committed_at_micros: i64,
) -> Result<JournalEntry, StoreError> {
    let object: Object = serde_json::from_str(payload).map_err(|err| StoreError::Corrupt {
        revision,
        reason: err.to_string(),
    })?;
    Ok(JournalEntry::new(
        revision as u64,
        committed_at_micros,
        Change { op, object },
    ))
}

/// The event a row of the events topic holds, or why it holds none.
pub fn journaled_event(row: &journal::Model) -> Result<Event, String> {
    match serde_json::from_str::<Object>(&row.payload) {
        Ok(Object::Event(event)) => Ok(event),
        Ok(_) => Err("an entry of the events topic holds no event".to_owned()),
        Err(err) => Err(err.to_string()),
    }
}

pub fn check_result(row: check_result::Model) -> CheckResult {
    let outcome = match row.outcome.as_str() {
        "healthy" => HealthStatus::Healthy,
        "degraded" => HealthStatus::Degraded,
        "unhealthy" => HealthStatus::Unhealthy,
        _ => HealthStatus::Unknown,
    };
    CheckResult {
        check_id: row.check_id,
        at_micros: row.at_micros,
        outcome,
        message: row.message,
        connect_micros: row.connect_micros,
        tls_micros: row.tls_micros,
        first_byte_micros: row.first_byte_micros,
        total_micros: row.total_micros,
        measurements: serde_json::from_str(&row.measurements).unwrap_or_default(),
    }
}

/// A rollup row of `resolution` (the resolution the query asked for).
pub fn rollup_bucket(resolution: Resolution, row: check_rollup::Model) -> RollupBucket {
    RollupBucket {
        resolution,
        bucket_start_micros: row.bucket_start_micros,
        counts: RollupCounts {
            runs: row.runs as u64,
            healthy: row.healthy as u64,
            degraded: row.degraded as u64,
            unhealthy: row.unhealthy as u64,
            latency: latency_counts(&row.latency_histogram),
        },
        check_id: row.check_id,
    }
}

/// A rollup's latency histogram; a count that does not parse counts as zero.
pub fn latency_counts(text: &str) -> Vec<u64> {
    text.split(',')
        .map(|value| value.parse().unwrap_or(0))
        .collect()
}

/// A stored metric minute; `None` when its labels do not decode.
pub fn metric_minute(row: metric_rollup::Model) -> Option<StoredMinute> {
    let labels: BTreeMap<String, String> = serde_json::from_str(&row.labels).ok()?;
    Some(StoredMinute {
        labels,
        minute_ms: row.minute_ms,
        count: row.count as u64,
        sum: row.sum,
        min: row.min,
        max: row.max,
        last: row.last,
    })
}

pub fn environment(row: environment::Model) -> Environment {
    Environment {
        id: row.id,
        name: row.name,
        port_range: row
            .port_range_start
            .zip(row.port_range_end)
            .map(|(start, end)| PortRange {
                start: start as u16,
                end: end as u16,
            }),
    }
}

/// A deployment's stored spec, or why it does not decode.
pub fn deployment(row: deployment::Model) -> Result<Deployment, String> {
    serde_json::from_str(&row.spec).map_err(|err| format!("deployment {}: {err}", row.id))
}

/// A project, with the environments of its `deployments`.
pub fn project(row: project::Model, deployments: &[Deployment]) -> Project {
    Project {
        environments: deployments
            .iter()
            .filter(|d| d.project_id == row.id)
            .map(|d| d.environment.clone())
            .collect(),
        id: row.id,
        name: row.name,
        project_type: row.project_type,
        subdomain: row.subdomain,
        description: row.description,
    }
}

/// A port allocation, or why it does not decode.
pub fn port_allocation(row: port_allocation::Model) -> Result<PortAllocation, String> {
    Ok(PortAllocation {
        port_type: PortType::parse(&row.port_type)
            .ok_or_else(|| format!("unknown port type {:?}", row.port_type))?,
        environment: row.environment,
        port: row.port as u16,
        project_id: row.project_id,
        service: row.service,
    })
}

pub fn operation(row: operation::Model) -> Result<Operation, serde_json::Error> {
    serde_json::from_str(&row.body)
}
