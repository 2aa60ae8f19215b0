//! Alert rules end to end: a pushed series crosses a threshold, the alert fires after its
//! `for` duration and resolves when the value drops back; a real HTTP receiver checks
//! the HMAC-SHA256 signature of both deliveries (the first attempt is answered 500, so
//! the retry is exercised); an unreachable webhook becomes a `notification.failed` event.

use crate::common;

use std::time::{Duration, Instant};

use common::{Backend, Harness, as_operator, push_one, quiet_operator};
use hmac::{Hmac, Mac};
use pharos_control_plane::journal::Object;
use pharos_proto::v1 as pb;
use pharos_proto::v1::metrics_service_client::MetricsServiceClient;
use sha2::Sha256;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

const SECRET: &str = "webhook-shared-secret";

/// A delivery as received: whether its signature verified, and its JSON body.
#[derive(Debug)]
struct Delivery {
    attempt: u64,
    signature_ok: bool,
    body: serde_json::Value,
}

/// A real HTTP receiver: answers the first request 500, every other one 204.
async fn receiver() -> (String, mpsc::UnboundedReceiver<Delivery>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut attempt = 0;
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            attempt += 1;
            let mut raw = Vec::new();
            let mut buf = [0u8; 4096];
            let (head, body) = loop {
                let n = socket.read(&mut buf).await.unwrap();
                assert!(n > 0, "connection closed before the request was complete");
                raw.extend_from_slice(&buf[..n]);
                if let Some(at) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&raw[..at]).to_lowercase();
                    let length: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .map(|v| v.trim().parse().unwrap())
                        .unwrap_or(0);
                    while raw.len() < at + 4 + length {
                        let n = socket.read(&mut buf).await.unwrap();
                        raw.extend_from_slice(&buf[..n]);
                    }
                    break (head, raw[at + 4..at + 4 + length].to_vec());
                }
            };
            let signature = head
                .lines()
                .find_map(|l| l.strip_prefix("x-pharos-signature:"))
                .map(|v| v.trim().to_owned())
                .unwrap_or_default();
            let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
            mac.update(&body);
            let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
            let status = if attempt == 1 {
                "500 Internal Server Error"
            } else {
                "204 No Content"
            };
            let _ = socket
                .write_all(
                    format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                        .as_bytes(),
                )
                .await;
            let _ = tx.send(Delivery {
                attempt,
                signature_ok: signature == expected,
                body: serde_json::from_slice(&body).unwrap(),
            });
        }
    });
    (url, rx)
}

async fn push(client: &mut MetricsServiceClient<tonic::transport::Channel>, value: f64) {
    let response = push_one(client, "queue_depth", &[("queue", "ingest")], value).await;
    assert_eq!(response.accepted, 1);
}

async fn next_delivery(rx: &mut mpsc::UnboundedReceiver<Delivery>) -> Delivery {
    tokio::time::timeout(Duration::from_secs(15), rx.recv())
        .await
        .expect("a webhook delivery within 15 s")
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alert_fires_and_resolves_with_signed_webhooks() {
    let (url, mut deliveries) = receiver().await;
    let dead = format!("http://127.0.0.1:{}/hook", pharos_e2e::free_port());
    let catalog = format!(
        "environments:\n  - id: prod\nprojects:\n  - id: api\n    deployments:\n      - environment: prod\n\
alert_rules:\n  - name: ingest-backlog\n    metric: queue_depth\n    labels: {{queue: ingest}}\n    op: above\n    threshold: 100\n    for: 1s\n    severity: critical\n    project: api\n    environment: prod\n\
webhooks:\n  - name: ops\n    url: {url}\n    secret: {SECRET}\n  - name: gone\n    url: {dead}\n    secret: x\n    max_attempts: 2\n    timeout: 1s\n"
    );
    let harness = Harness::start_with_catalog(Backend::Sqlite, &catalog, quiet_operator).await;
    let mut client = MetricsServiceClient::connect(harness.url()).await.unwrap();

    push(&mut client, 40.0).await;
    let crossed = Instant::now();
    push(&mut client, 250.0).await;
    // The first attempt is refused (500); the retry arrives, signed.
    let first = next_delivery(&mut deliveries).await;
    assert_eq!(first.attempt, 1);
    let fired = next_delivery(&mut deliveries).await;
    assert!(
        crossed.elapsed() >= Duration::from_secs(1),
        "fired before its `for`"
    );
    assert_eq!(fired.attempt, 2);
    assert!(fired.signature_ok, "bad signature on {fired:?}");
    assert_eq!(fired.body["status"], "firing");
    assert_eq!(fired.body["alert"], "ingest-backlog");
    assert_eq!(fired.body["severity"], "critical");
    assert_eq!(fired.body["value"], 250.0);
    assert_eq!(fired.body["threshold"], 100.0);
    assert_eq!(fired.body["project"], "api");

    push(&mut client, 3.0).await;
    let resolved = next_delivery(&mut deliveries).await;
    assert!(resolved.signature_ok, "bad signature on {resolved:?}");
    assert_eq!(resolved.body["status"], "resolved");
    assert_eq!(resolved.body["alert"], "ingest-backlog");
    assert!(
        resolved.body["ended_at_ms"].as_i64().unwrap()
            >= fired.body["started_at_ms"].as_i64().unwrap()
    );

    // Events: firing (critical), resolved, and a notification failure per delivery to
    // the unreachable webhook (it is tried twice each time).
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let events: Vec<(String, String)> = harness
            .journal_after(0)
            .await
            .into_iter()
            .filter_map(|entry| match entry.object {
                Object::Event(event) if event.source == "alerts" => {
                    Some((event.kind, format!("{:?}", event.severity)))
                }
                _ => None,
            })
            .collect();
        let count = |kind: &str| events.iter().filter(|(k, _)| k == kind).count();
        if count("notification.failed") == 2 {
            assert_eq!(count("alert.firing"), 1, "{events:?}");
            assert_eq!(count("alert.resolved"), 1, "{events:?}");
            assert!(events.contains(&("alert.firing".to_owned(), "Critical".to_owned())));
            break;
        }
        assert!(Instant::now() < deadline, "events so far: {events:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    harness.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_firing_alert_stays_firing_across_a_restart_and_resolves_once() {
    let catalog = "environments:\n  - id: prod\nprojects:\n  - id: api\n    deployments:\n      - environment: prod\n\
alert_rules:\n  - name: ingest-backlog\n    metric: queue_depth\n    labels: {queue: ingest}\n    threshold: 100\n    severity: error\n";
    let mut harness = Harness::start_with_catalog(Backend::Sqlite, catalog, quiet_operator).await;
    let mut client = MetricsServiceClient::connect(harness.url()).await.unwrap();
    push(&mut client, 250.0).await;
    let fired = alert_events_until(&harness, |events| events.len() == 1).await;
    assert_eq!(fired[0].kind, "alert.firing");

    harness.restart().await;
    let mut client = MetricsServiceClient::connect(harness.url()).await.unwrap();
    // Firing right after the restart, before any new sample: restored, not fired again.
    let firing = client
        .get_aggregates(as_operator(pb::GetAggregatesRequest {}))
        .await
        .unwrap()
        .into_inner()
        .groups
        .into_iter()
        .find(|g| g.name == "alerts")
        .unwrap();
    assert_eq!(
        firing
            .values
            .iter()
            .find(|v| v.labels.is_empty())
            .unwrap()
            .value,
        1.0,
        "{firing:?}"
    );

    push(&mut client, 3.0).await;
    let events = alert_events_until(&harness, |events| events.len() == 2).await;
    assert_eq!(events[1].kind, "alert.resolved", "{events:#?}");
    assert_eq!(events[1].attributes["fired_event"], fired[0].id);
    harness.shutdown().await;
}

/// The alert events of the journal, once `done` accepts them (15 s at most).
async fn alert_events_until(
    harness: &Harness,
    done: impl Fn(&[pharos_control_plane::domain::Event]) -> bool,
) -> Vec<pharos_control_plane::domain::Event> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let events: Vec<_> = harness
            .journal_after(0)
            .await
            .into_iter()
            .filter_map(|entry| match entry.object {
                Object::Event(event) if event.kind.starts_with("alert.") => Some(event),
                _ => None,
            })
            .collect();
        if done(&events) {
            return events;
        }
        assert!(
            Instant::now() < deadline,
            "alert events so far: {events:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
