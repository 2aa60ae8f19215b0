//! Where alerts go: signed webhooks and Alertmanagers, each delivery retried with
//! backoff and journaled as `notification.failed` when every attempt fails.

use std::collections::BTreeMap;
use std::time::Duration;

use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;

use pharos_core::domain::{AlertRule, Event, Severity};
use pharos_store::journal::{Change, WriterHandle};

pub const SIGNATURE_HEADER: &str = "x-pharos-signature";

/// The `X-Pharos-Signature` value for `body`: `sha256=` and the hex of its HMAC-SHA256
/// under the webhook's secret, which receivers recompute to trust the payload.
pub(super) fn signature(secret: &str, body: &str) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(body.as_bytes());
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// One alert in Alertmanager's v2 `postableAlerts` form.
pub(super) fn alertmanager_payload(
    rule: &AlertRule,
    event: &Event,
    started_ms: i64,
    ended_ms: Option<i64>,
) -> String {
    let mut labels = serde_json::Map::new();
    labels.insert("alertname".into(), rule.name.clone().into());
    labels.insert("severity".into(), rule.severity.as_str().into());
    labels.insert("source".into(), "pharos".into());
    if let Some(project) = &rule.project_id {
        labels.insert("project".into(), project.clone().into());
    }
    if let Some(environment) = &rule.environment {
        labels.insert("environment".into(), environment.clone().into());
    }
    let mut alert = json!({
        "labels": labels,
        "annotations": { "summary": event.message },
        "startsAt": rfc3339(started_ms),
    });
    if let Some(ended) = ended_ms {
        alert["endsAt"] = rfc3339(ended).into();
    }
    json!([alert]).to_string()
}

/// Where a delivery goes.
pub(super) struct Receiver {
    /// `webhook` or `alertmanager`.
    pub(super) kind: &'static str,
    pub(super) name: String,
    pub(super) url: String,
    /// The `X-Pharos-Signature` header's value, for webhooks.
    pub(super) signature: Option<String>,
    pub(super) ca_file: Option<String>,
    pub(super) timeout: Duration,
    pub(super) max_attempts: u32,
}

/// POSTs `body` with retries (250 ms, doubling, at most 5 s apart); a delivery that
/// fails every attempt is journaled as `notification.failed`.
pub(super) async fn deliver(hook: Receiver, body: String, rule: AlertRule, writer: WriterHandle) {
    let mut headers = vec![("content-type", "application/json".to_owned())];
    if let Some(signature) = &hook.signature {
        headers.push((SIGNATURE_HEADER, signature.clone()));
    }
    let mut backoff = Duration::from_millis(250);
    let mut last_error = String::new();
    let tls = crate::metrics::http::tls_for(hook.ca_file.as_deref());
    for attempt in 1..=hook.max_attempts {
        let result = match &tls {
            Ok(tls) => {
                let call = crate::metrics::http::Call {
                    method: "POST",
                    url: &hook.url,
                    headers: &headers,
                    body: body.clone().into_bytes(),
                };
                crate::metrics::http::send(call, tls, hook.timeout, 64 * 1024).await
            }
            Err(err) => Err(err.clone()),
        };
        match result {
            Ok(response) if (200..300).contains(&response.status) => return,
            Ok(response) => {
                last_error = format!(
                    "HTTP status {}: {}",
                    response.status,
                    String::from_utf8_lossy(&response.body[..response.body.len().min(200)]).trim()
                )
            }
            Err(err) => last_error = err,
        }
        tracing::warn!(receiver = %hook.name, kind = hook.kind, attempt, error = %last_error, "alert delivery failed");
        if attempt < hook.max_attempts {
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }
    let event = Event {
        id: crate::metrics::event_id("notification.failed"),
        kind: "notification.failed".to_owned(),
        severity: Severity::Error,
        message: format!(
            "{} {} ({}) failed {} attempt(s) for alert {}: {last_error}",
            hook.kind, hook.name, hook.url, hook.max_attempts, rule.name
        ),
        source: "alerts".to_owned(),
        project_id: rule.project_id.clone(),
        environment: rule.environment.clone(),
        attributes: BTreeMap::from([
            (hook.kind.to_owned(), hook.name.clone()),
            ("alert".to_owned(), rule.name.clone()),
        ]),
    };
    if let Err(err) = writer.append(vec![Change::append(event)]).await {
        tracing::warn!(error = %err, "cannot journal a notification failure");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_match_rfc_4231() {
        // Test case 2.
        assert_eq!(
            signature("Jefe", "what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // A key longer than the block is hashed first (value from Python's hmac module).
        assert_eq!(
            signature(
                &"k".repeat(131),
                "Test Using Larger Than Block-Size Key - Hash Key First"
            ),
            "sha256=70e4b005732fa7ff79392aa24fb240159b925dbc9f1398420c0f45e6763dcf14"
        );
    }
}
