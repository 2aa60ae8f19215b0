//! Metrics end to end, in-process pharosd with a real gRPC client: scraping Debian's
//! prometheus-node-exporter, a histogram target served by a small real HTTP server,
//! hostile expositions, and pushed samples.

use crate::common;

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{Backend, Harness, as_operator, quiet_operator};

use pharos_proto::v1 as pb;
use pharos_proto::v1::metrics_service_client::MetricsServiceClient;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tonic::transport::Channel;

const DEADLINE: Duration = Duration::from_secs(20);

/// A real HTTP/1.1 server on a free loopback port; `body(n)` answers the n-th request
/// (from 1). Stops when dropped.
pub struct ExpositionServer {
    pub url: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ExpositionServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub async fn serve_exposition(
    body: impl Fn(u64) -> String + Send + Sync + 'static,
) -> ExpositionServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/metrics", listener.local_addr().unwrap());
    let counter = Arc::new(AtomicU64::new(0));
    let body = Arc::new(body);
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let counter = counter.clone();
            let body = body.clone();
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
                let text = body(n);
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    text.len()
                );
                let _ = socket.write_all(head.as_bytes()).await;
                let _ = socket.write_all(text.as_bytes()).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    ExpositionServer { url, task }
}

async fn client(harness: &Harness) -> MetricsServiceClient<Channel> {
    MetricsServiceClient::connect(harness.url()).await.unwrap()
}

/// An in-process pharosd with one operator token (pushing needs the operator role).
async fn start(catalog: &str) -> Harness {
    Harness::start_with_catalog(Backend::Sqlite, catalog, quiet_operator).await
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn timestamp(ms: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: ms.div_euclid(1000),
        nanos: (ms.rem_euclid(1000) * 1_000_000) as i32,
    }
}

async fn query(
    client: &mut MetricsServiceClient<Channel>,
    name: &str,
    labels: &[(&str, &str)],
    start_ms: i64,
) -> Vec<pb::Series> {
    client
        .query_range(as_operator(pb::QueryRangeRequest {
            selector: Some(pb::SeriesSelector {
                name: name.to_owned(),
                labels: labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            }),
            start: Some(timestamp(start_ms)),
            end: None,
            step: None,
        }))
        .await
        .unwrap()
        .into_inner()
        .series
}

/// Polls `QueryRange` until `done` holds for the answer, or fails after the deadline.
async fn poll_series(
    client: &mut MetricsServiceClient<Channel>,
    name: &str,
    labels: &[(&str, &str)],
    done: impl Fn(&[pb::Series]) -> bool,
) -> Vec<pb::Series> {
    let start = now_ms() - 60_000;
    let deadline = Instant::now() + DEADLINE;
    loop {
        let series = query(client, name, labels, start).await;
        if done(&series) {
            return series;
        }
        assert!(
            Instant::now() < deadline,
            "{name} did not reach the expected state: {series:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn catalog(targets: &[(&str, &str)]) -> String {
    let mut text = String::from("environments:\n  - id: prod\nprojects: []\nscrape_targets:\n");
    for (name, url) in targets {
        text.push_str(&format!(
            "  - name: {name}\n    url: {url}\n    interval: 400ms\n    timeout: 400ms\n    labels: {{env: test}}\n"
        ));
    }
    text
}

struct NodeExporter(Child);

impl Drop for NodeExporter {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn node_exporter() -> (NodeExporter, String) {
    let port = pharos_e2e::free_port();
    let child = Command::new("prometheus-node-exporter")
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("prometheus-node-exporter runs (scripts/install-test-deps.sh installs it)");
    (
        NodeExporter(child),
        format!("http://127.0.0.1:{port}/metrics"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_exporter_cpu_rates_are_plausible() {
    let (_exporter, url) = node_exporter();
    let harness = start(&catalog(&[("node", &url)])).await;
    let mut client = client(&harness).await;
    // Every mode of cpu 0, each with at least three rate points.
    let series = poll_series(
        &mut client,
        "node_cpu_seconds_total:rate",
        &[("cpu", "0"), ("target", "node")],
        |series| {
            series.len() >= 4
                && series.iter().all(|s| s.points.len() >= 3)
                && series.iter().any(|s| s.labels["mode"] == "idle")
        },
    )
    .await;
    for s in &series {
        assert_eq!(s.labels["env"], "test");
        assert_eq!(s.source, pb::SeriesSource::Memory as i32);
        for point in &s.points {
            // CPU seconds per second of one CPU in one mode.
            assert!(
                (0.0..=1.2).contains(&point.value),
                "implausible rate {} for {:?}",
                point.value,
                s.labels
            );
        }
    }
    // Over all modes one CPU spends about one second per second. Points of different
    // modes come from the same scrapes, so their sums line up by time.
    let mut by_time: HashMap<i64, f64> = HashMap::new();
    for s in &series {
        for p in &s.points {
            *by_time.entry(p.time_unix_ms).or_default() += p.value;
        }
    }
    for (time, total) in by_time {
        assert!(
            (0.6..=1.4).contains(&total),
            "cpu 0 spent {total} s/s at {time}"
        );
    }
    let targets = client
        .list_scrape_targets(as_operator(pb::ListScrapeTargetsRequest {}))
        .await
        .unwrap()
        .into_inner()
        .targets;
    assert_eq!(targets.len(), 1);
    assert!(targets[0].samples > 100, "{:?}", targets[0]);
    assert_eq!(targets[0].last_error, "");
    harness.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn histogram_percentiles_match_a_hand_computation() {
    // Between any two scrapes: 10 observations <= 0.1, 20 in (0.1, 0.5], 10 in (0.5, 1].
    let server = serve_exposition(|n| {
        let n = n as f64;
        format!(
            "# TYPE req_seconds histogram\n\
             req_seconds_bucket{{le=\"0.1\"}} {}\n\
             req_seconds_bucket{{le=\"0.5\"}} {}\n\
             req_seconds_bucket{{le=\"1\"}} {}\n\
             req_seconds_bucket{{le=\"+Inf\"}} {}\n\
             req_seconds_sum {}\n\
             req_seconds_count {}\n",
            10.0 * n,
            30.0 * n,
            40.0 * n,
            40.0 * n,
            12.0 * n,
            40.0 * n
        )
    })
    .await;
    let harness = start(&catalog(&[("hist", &server.url)])).await;
    let mut client = client(&harness).await;
    // By hand: p50 has rank 20 of 40, 10 below 0.1, so 10 of the 20 in (0.1, 0.5]:
    // 0.1 + 0.4 * 10/20 = 0.3. p95: rank 38, 30 below 0.5, 8 of 10 in (0.5, 1]:
    // 0.5 + 0.5 * 8/10 = 0.9. p99: rank 39.6: 0.5 + 0.5 * 9.6/10 = 0.98.
    for (name, expected) in [
        ("req_seconds:p50", 0.3),
        ("req_seconds:p95", 0.9),
        ("req_seconds:p99", 0.98),
    ] {
        let series = poll_series(&mut client, name, &[("target", "hist")], |s| {
            s.len() == 1 && s[0].points.len() >= 2
        })
        .await;
        for point in &series[0].points {
            assert!(
                (point.value - expected).abs() < 1e-9,
                "{name} = {}, expected {expected}",
                point.value
            );
        }
    }
    harness.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_expositions_are_bounded_and_reported() {
    // A cardinality bomb of 100,000 label values, a NaN flood and garbage, every scrape.
    let bomb = serve_exposition(|_| {
        let mut text = String::from("# TYPE bomb gauge\n");
        for i in 0..100_000 {
            text.push_str(&format!("bomb{{id=\"{i}\"}} 1\n"));
        }
        text
    })
    .await;
    let flood = serve_exposition(|_| {
        let mut text = String::from("# TYPE flood gauge\n");
        for i in 0..10_000 {
            text.push_str(&format!("flood{{i=\"{i}\"}} NaN\n"));
        }
        text.push_str("{{{ not a metric\nfine_gauge 7\nbroken{a=\"1\" 2\n");
        text
    })
    .await;
    let harness = start(&catalog(&[("bomb", &bomb.url), ("flood", &flood.url)])).await;
    let mut client = client(&harness).await;
    let deadline = Instant::now() + DEADLINE;
    let targets = loop {
        let targets = client
            .list_scrape_targets(as_operator(pb::ListScrapeTargetsRequest {}))
            .await
            .unwrap()
            .into_inner()
            .targets;
        if targets.len() == 2 && targets.iter().all(|t| t.scrapes >= 2) {
            break targets;
        }
        assert!(
            Instant::now() < deadline,
            "targets not scraped: {targets:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let bomb_status = targets.iter().find(|t| t.name == "bomb").unwrap();
    assert_eq!(bomb_status.samples, 20_000, "{bomb_status:?}");
    assert_eq!(bomb_status.over_series_limit, 80_000);
    assert!(
        bomb_status
            .first_problem
            .contains("more than 20000 samples")
    );
    let flood_status = targets.iter().find(|t| t.name == "flood").unwrap();
    assert_eq!(flood_status.non_finite, 10_000, "{flood_status:?}");
    assert_eq!(flood_status.malformed_lines, 2);
    assert_eq!(flood_status.samples, 1);
    // The good sample of the flood made it; the store holds what the limits let in.
    poll_series(&mut client, "fine_gauge", &[], |s| s.len() == 1).await;
    assert!(harness.server().metrics.series_count() <= 20_002);
    // Each target raised one event for its problems, not one per scrape.
    let events: Vec<String> = harness
        .journal_after(0)
        .await
        .into_iter()
        .filter_map(|entry| match entry.object {
            pharos_control_plane::journal::Object::Event(event)
                if event.kind == "metrics.exposition_rejected" =>
            {
                Some(event.attributes["target"].clone())
            }
            _ => None,
        })
        .collect();
    let mut sorted = events.clone();
    sorted.sort();
    assert_eq!(sorted, ["bomb", "flood"], "{events:?}");
    harness.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushed_series_reads_back_exactly() {
    let harness = start(&catalog(&[])).await;
    let mut client = client(&harness).await;
    let base = now_ms() - 30_000;
    let labels: HashMap<String, String> = [("tenant".to_owned(), "acme".to_owned())].into();
    let known: Vec<(i64, f64)> = (0..20).map(|i| (base + i * 1000, i as f64 * 1.5)).collect();
    let mut batches: Vec<pb::PushMetricsRequest> = known
        .chunks(7)
        .map(|chunk| pb::PushMetricsRequest {
            samples: chunk
                .iter()
                .map(|(ms, value)| pb::PushedSample {
                    name: "ingest_queue_depth".to_owned(),
                    labels: labels.clone(),
                    value: *value,
                    time_unix_ms: *ms,
                })
                .collect(),
        })
        .collect();
    // Refused: a bad name, a NaN, and a sample older than the series' latest.
    batches.push(pb::PushMetricsRequest {
        samples: vec![
            pb::PushedSample {
                name: "9bad".to_owned(),
                value: 1.0,
                ..Default::default()
            },
            pb::PushedSample {
                name: "ingest_queue_depth".to_owned(),
                labels: labels.clone(),
                value: f64::NAN,
                time_unix_ms: base + 50_000,
            },
            pb::PushedSample {
                name: "ingest_queue_depth".to_owned(),
                labels: labels.clone(),
                value: 99.0,
                time_unix_ms: base - 1000,
            },
        ],
    });
    let response = client
        .push_metrics(as_operator(tokio_stream::iter(batches)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(response.accepted, 20);
    assert_eq!(response.rejected_invalid, 1);
    assert_eq!(response.rejected_non_finite, 1);
    assert_eq!(response.rejected_out_of_order, 1);
    assert!(
        response.first_rejection.contains("9bad"),
        "{}",
        response.first_rejection
    );

    let series = query(
        &mut client,
        "ingest_queue_depth",
        &[("tenant", "acme")],
        base,
    )
    .await;
    assert_eq!(series.len(), 1);
    assert_eq!(series[0].labels, labels);
    let got: Vec<(i64, f64)> = series[0]
        .points
        .iter()
        .map(|p| (p.time_unix_ms, p.value))
        .collect();
    assert_eq!(got, known);

    // A range reaching past the memory window reads one-minute rollups (means), here
    // after the minutes were written to the database.
    let written = harness.server().metrics.flush(true).await.unwrap();
    assert!(written >= 1);
    let mut minutes: std::collections::BTreeMap<i64, (f64, f64)> = Default::default();
    for (ms, value) in &known {
        let entry = minutes.entry(ms - ms.rem_euclid(60_000)).or_default();
        entry.0 += value;
        entry.1 += 1.0;
    }
    let expected: Vec<(i64, f64)> = minutes
        .into_iter()
        .map(|(m, (sum, n))| (m, sum / n))
        .collect();
    let series = query(
        &mut client,
        "ingest_queue_depth",
        &[("tenant", "acme")],
        now_ms() - 20 * 60_000,
    )
    .await;
    assert_eq!(series.len(), 1);
    assert_eq!(series[0].source, pb::SeriesSource::Rollups as i32);
    let got: Vec<(i64, f64)> = series[0]
        .points
        .iter()
        .map(|p| (p.time_unix_ms, p.value))
        .collect();
    assert_eq!(got, expected);

    // Bad queries change nothing and say why.
    let status = client
        .query_range(as_operator(pb::QueryRangeRequest {
            selector: Some(pb::SeriesSelector {
                name: "".to_owned(),
                ..Default::default()
            }),
            start: Some(timestamp(base)),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(status.message().contains("selector.name"));

    // pharosd's own /metrics counts those calls by method and code, in a text that the
    // exposition parser reads without a single refused line.
    let response = pharos_e2e::http_get(&harness.server().addr.to_string(), "/metrics")
        .await
        .unwrap();
    assert_eq!(response.status, 200);
    let text = response.body;
    for line in [
        "pharos_rpc_requests_total{method=\"/pharos.v1.MetricsService/PushMetrics\",code=\"OK\"} 1",
        "pharos_rpc_requests_total{method=\"/pharos.v1.MetricsService/QueryRange\",code=\"INVALID_ARGUMENT\"} 1",
        "pharos_rpc_duration_seconds_count{method=\"/pharos.v1.MetricsService/PushMetrics\"} 1",
        "pharos_rpc_open_calls{method=\"/pharos.v1.MetricsService/PushMetrics\"} 0",
        "pharos_metric_series 1",
    ] {
        assert!(text.contains(line), "{line} missing from\n{text}");
    }
    let parsed = pharos_control_plane::metrics::exposition::parse(&text, &Default::default());
    assert_eq!(parsed.problems.total(), 0, "{:?}", parsed.problems);
    let revision = parsed
        .samples
        .iter()
        .find(|s| s.name == "pharos_journal_revision")
        .unwrap();
    assert!(revision.value >= 1.0);
    assert!(parsed.samples.iter().any(|s| s.name == "pharos_checks"));
    harness.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_streams_batches_of_selected_series() {
    let harness = start(&catalog(&[])).await;
    let mut client = client(&harness).await;
    let mut watch =
        pharos_proto::v1::watch_service_client::WatchServiceClient::connect(harness.url())
            .await
            .unwrap();
    // Asking for the topic without naming series is refused with the fix.
    let status = watch
        .watch(as_operator(pb::WatchRequest {
            topics: vec![pb::WatchTopic::Metrics as i32],
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(status.message().contains("metric_selectors"));

    let mut stream = watch
        .watch(as_operator(pb::WatchRequest {
            topics: vec![pb::WatchTopic::Metrics as i32],
            metric_selectors: vec![pb::SeriesSelector {
                name: "live_gauge".to_owned(),
                labels: [("shard".to_owned(), "a".to_owned())].into(),
            }],
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    let push = |values: Vec<(&'static str, f64)>| pb::PushMetricsRequest {
        samples: values
            .into_iter()
            .map(|(shard, value)| pb::PushedSample {
                name: "live_gauge".to_owned(),
                labels: [("shard".to_owned(), shard.to_owned())].into(),
                value,
                time_unix_ms: 0,
            })
            .collect(),
    };
    let mut received: Vec<f64> = Vec::new();
    let mut batch_times: Vec<i64> = Vec::new();
    let mut pushed = 0;
    let deadline = Instant::now() + DEADLINE;
    while received.len() < 6 {
        // Push a new pair (one selected shard, one not) before waiting for each batch.
        if pushed < 3 {
            pushed += 1;
            let n = pushed as f64;
            client
                .push_metrics(as_operator(tokio_stream::iter(vec![push(vec![
                    ("a", n),
                    ("b", -n),
                    ("a", n + 0.5),
                ])])))
                .await
                .unwrap();
        }
        let message = tokio::time::timeout_at(deadline.into(), stream.message())
            .await
            .expect("a batch before the deadline")
            .unwrap()
            .unwrap();
        if let Some(pb::watch_response::Message::Metrics(batch)) = message.message {
            let time = batch.time.unwrap();
            batch_times.push(time.seconds * 1000 + i64::from(time.nanos) / 1_000_000);
            for series in batch.series {
                assert_eq!(series.labels["shard"], "a");
                received.extend(series.points.iter().map(|p| p.value));
            }
        }
    }
    // Each selected point exactly once, in order; the other shard never.
    assert_eq!(received, [1.0, 1.5, 2.0, 2.5, 3.0, 3.5]);
    for pair in batch_times.windows(2) {
        assert!(
            pair[1] - pair[0] >= 900,
            "batches too close: {batch_times:?}"
        );
    }
    harness.shutdown().await;
}

/// An HTTPS exposition server on loopback whose certificate (for 127.0.0.1) is signed by
/// a CA made for the test; returns its URL and the CA (`ca.pem`).
async fn https_exposition(body: &'static str) -> (String, pharos_e2e::TestPki) {
    use tokio_rustls::TlsAcceptor;
    use tokio_rustls::rustls::ServerConfig;
    use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

    let pki = pharos_e2e::TestPki::new("Pharos scrape test CA");
    let leaf = pki.issue("server", &["127.0.0.1"]);
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.cert_der.into()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf.key_der)),
        )
        .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}/metrics", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // An untrusting client ends the handshake; nothing more to do.
                let Ok(mut tls) = acceptor.accept(socket).await else {
                    return;
                };
                let mut request = [0u8; 4096];
                let _ = tls.read(&mut request).await;
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.write_all(response.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    (url, pki)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_targets_are_scraped_with_their_ca_and_refused_without_it() {
    let (url, pki) = https_exposition("# TYPE secure_gauge gauge\nsecure_gauge 42\n").await;
    let ca_file = pki.path("ca.pem").display().to_string();
    let catalog = format!(
        "environments:\n  - id: prod\nprojects: []\nscrape_targets:\n\
         \x20 - name: trusted\n    url: {url}\n    ca_file: {ca_file}\n    interval: 400ms\n\
         \x20 - name: untrusted\n    url: {url}\n    interval: 400ms\n"
    );
    let harness = start(&catalog).await;
    let mut client = client(&harness).await;
    let series = poll_series(&mut client, "secure_gauge", &[], |s| {
        s.iter().any(|s| !s.points.is_empty())
    })
    .await;
    assert_eq!(series.len(), 1, "{series:?}");
    assert_eq!(series[0].labels["target"], "trusted");
    assert!(series[0].points.iter().all(|p| p.value == 42.0));

    // Without the CA the public roots do not know the certificate: the scrape fails, said.
    let deadline = Instant::now() + DEADLINE;
    let untrusted = loop {
        let targets = client
            .list_scrape_targets(as_operator(pb::ListScrapeTargetsRequest {}))
            .await
            .unwrap()
            .into_inner()
            .targets;
        let untrusted = targets.into_iter().find(|t| t.name == "untrusted").unwrap();
        if untrusted.failures > 0 {
            break untrusted;
        }
        assert!(Instant::now() < deadline, "{untrusted:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        untrusted.last_error.contains("TLS") && untrusted.last_error.contains("certificate"),
        "{untrusted:?}"
    );
    harness.shutdown().await;
}
