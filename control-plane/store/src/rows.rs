//! The one place stored rows become domain values: journal entries (and the events
//! among them), check results and operations. Every reader decodes through here, so a
//! format change is made once.

use pharos_core::domain::{CheckResult, Event, HealthStatus, Operation};
use pharos_core::journal::{Change, JournalEntry, Object, Op};

use crate::entities::{check_result, journal, operation};
use crate::journal::StoreError;

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

pub fn operation(row: operation::Model) -> Result<Operation, serde_json::Error> {
    serde_json::from_str(&row.body)
}
