//! One exported record as a CSV row or a JSON line, and the CSV header of each kind.
//! Times keep the stored microseconds, unlike the seconds of the other commands' output.

use pharos_proto::v1 as pb;
use serde_json::json;

use crate::commands::operations::{kind_name, state_name};
use crate::commands::status::result_json;
use crate::output;

pub(super) const CHECK_COLUMNS: [&str; 9] = [
    "check_id",
    "time",
    "outcome",
    "message",
    "connect_ms",
    "tls_ms",
    "first_byte_ms",
    "total_ms",
    "measurements",
];
pub(super) const OPERATION_COLUMNS: [&str; 14] = [
    "created",
    "id",
    "kind",
    "deployment_id",
    "state",
    "actor",
    "reason",
    "request_id",
    "dry_run",
    "replicas",
    "started",
    "finished",
    "steps",
    "result",
];
pub(super) const EVENT_COLUMNS: [&str; 9] = [
    "time",
    "id",
    "kind",
    "severity",
    "source",
    "project_id",
    "environment",
    "message",
    "attributes",
];

/// RFC 3339 in UTC with microseconds: exports keep the stored precision.
fn precise_time(timestamp: Option<&prost_types::Timestamp>) -> String {
    timestamp
        .and_then(|t| chrono::DateTime::from_timestamp(t.seconds, t.nanos.max(0) as u32))
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
        .unwrap_or_default()
}

fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

fn number(value: Option<f64>) -> String {
    value.map(|v| v.to_string()).unwrap_or_default()
}

pub(super) fn check_json(result: &pb::CheckResult) -> serde_json::Value {
    let mut value = result_json(result);
    value["time"] = precise_time(result.time.as_ref()).into();
    value
}

pub(super) fn check_csv(result: &pb::CheckResult) -> String {
    let measurements = serde_json::to_string(&result.measurements).expect("json");
    [
        csv_field(&result.check_id),
        precise_time(result.time.as_ref()),
        output::status_name(result.outcome).to_owned(),
        csv_field(&result.message),
        number(output::millis(result.connect.as_ref())),
        number(output::millis(result.tls.as_ref())),
        number(output::millis(result.first_byte.as_ref())),
        number(output::millis(result.total.as_ref())),
        csv_field(&measurements),
    ]
    .join(",")
}

fn severity(value: i32) -> String {
    pb::EventSeverity::try_from(value)
        .map(|s| {
            s.as_str_name()
                .trim_start_matches("EVENT_SEVERITY_")
                .to_lowercase()
        })
        .unwrap_or_default()
}

pub(super) fn event_json(event: &pb::Event) -> serde_json::Value {
    json!({
        "time": precise_time(event.time.as_ref()),
        "id": event.id,
        "kind": event.kind,
        "severity": severity(event.severity),
        "source": event.source,
        "project_id": event.project_id,
        "environment": event.environment,
        "message": event.message,
        "attributes": event.attributes,
    })
}

pub(super) fn event_csv(event: &pb::Event) -> String {
    let attributes: std::collections::BTreeMap<_, _> = event.attributes.iter().collect();
    [
        precise_time(event.time.as_ref()),
        csv_field(&event.id),
        csv_field(&event.kind),
        severity(event.severity),
        csv_field(&event.source),
        csv_field(&event.project_id),
        csv_field(&event.environment),
        csv_field(&event.message),
        csv_field(&serde_json::to_string(&attributes).expect("json")),
    ]
    .join(",")
}

pub(super) fn operation_csv(op: &pb::Operation) -> String {
    [
        precise_time(op.create_time.as_ref()),
        csv_field(&op.id),
        kind_name(op.kind).to_owned(),
        csv_field(&op.deployment_id),
        state_name(op.state).to_owned(),
        csv_field(&op.actor),
        csv_field(&op.reason),
        csv_field(&op.request_id),
        op.dry_run.to_string(),
        op.replicas.to_string(),
        precise_time(op.start_time.as_ref()),
        precise_time(op.finish_time.as_ref()),
        op.steps.len().to_string(),
        csv_field(&op.result),
    ]
    .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_only_when_needed() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
    }

    #[test]
    fn a_check_result_becomes_one_csv_row() {
        let result = pb::CheckResult {
            check_id: "shop/prod/http".to_owned(),
            time: Some(prost_types::Timestamp {
                seconds: 1_800_000_000,
                nanos: 123_456_000,
            }),
            outcome: pb::HealthStatus::Unhealthy as i32,
            message: "status 503, expected 200".to_owned(),
            connect: None,
            tls: None,
            first_byte: None,
            total: Some(prost_types::Duration {
                seconds: 0,
                nanos: 1_448_000,
            }),
            measurements: [("http_status".to_owned(), 503.0)].into(),
        };
        assert_eq!(
            check_csv(&result),
            "shop/prod/http,2027-01-15T08:00:00.123456Z,unhealthy,\"status 503, expected 200\",,,,1.448,\"{\"\"http_status\"\":503.0}\""
        );
    }
}
