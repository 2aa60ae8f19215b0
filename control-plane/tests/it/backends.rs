//! The external systems pharosd works with on the metrics side: Debian's Prometheus
//! (scraping Debian's node exporter) answering QueryRange for the series a
//! `prometheus_backends` entry claims, and Debian's Alertmanager receiving alerts over
//! its v2 API, firing then resolved.

use crate::common;

use std::time::{Duration, Instant};

use common::{Backend, Harness, as_operator, push_one, quiet_operator};
use pharos_e2e::{TestAlertmanager, TestNodeExporter, TestPrometheus, http_get};
use pharos_proto::v1 as pb;
use pharos_proto::v1::metrics_service_client::MetricsServiceClient;
use serde_json::Value;

async fn start(catalog: &str) -> Harness {
    Harness::start_with_catalog(Backend::Sqlite, catalog, quiet_operator).await
}

/// GETs a JSON document, retrying until `accept` takes it (15 s at most).
async fn json_until(address: &str, path: &str, accept: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let last = match http_get(address, path).await {
            Ok(response) if response.status == 200 => {
                let value: Value = serde_json::from_str(&response.body).unwrap();
                if accept(&value) {
                    return value;
                }
                value.to_string()
            }
            Ok(response) => format!("HTTP {}: {}", response.status, response.body),
            Err(err) => err.to_string(),
        };
        assert!(
            Instant::now() < deadline,
            "GET {address}{path}: never accepted; last: {last}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn range(
    selector: &str,
    labels: &[(&str, &str)],
    start_s: i64,
    end_s: i64,
) -> pb::QueryRangeRequest {
    pb::QueryRangeRequest {
        selector: Some(pb::SeriesSelector {
            name: selector.to_owned(),
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }),
        start: Some(prost_types::Timestamp {
            seconds: start_s,
            nanos: 0,
        }),
        end: Some(prost_types::Timestamp {
            seconds: end_s,
            nanos: 0,
        }),
        step: Some(prost_types::Duration {
            seconds: 1,
            nanos: 0,
        }),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_range_reads_claimed_series_from_prometheus() {
    let exporter = TestNodeExporter::start().unwrap();
    let prometheus = TestPrometheus::scraping(&[exporter.address()], "1s").unwrap();
    // Wait until Prometheus holds a few scrapes.
    json_until(
        &prometheus.address(),
        "/api/v1/query?query=count_over_time(up%5B1m%5D)",
        |v| {
            v["data"]["result"][0]["value"][1]
                .as_str()
                .and_then(|n| n.parse::<u32>().ok())
                .is_some_and(|n| n >= 4)
        },
    )
    .await;
    let dead = format!("http://127.0.0.1:{}", pharos_e2e::free_port());
    let catalog = format!(
        r#"environments:
  - id: prod
projects:
  - id: infra
    deployments:
      - environment: prod
prometheus_backends:
  - name: main
    url: {}
    series: [node_*, up]
  - name: gone
    url: {dead}
    timeout: 1s
    series: [missing_series]
"#,
        prometheus.url()
    );
    let harness = start(&catalog).await;
    let mut client = MetricsServiceClient::connect(harness.url()).await.unwrap();

    let end = chrono::Utc::now().timestamp();
    let start_s = end - 30;
    let series = client
        .query_range(as_operator(range(
            "node_cpu_seconds_total",
            &[("mode", "idle")],
            start_s,
            end,
        )))
        .await
        .unwrap()
        .into_inner()
        .series;
    let cpus = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count();
    assert_eq!(series.len(), cpus, "one idle series per CPU: {series:#?}");
    for s in &series {
        assert_eq!(s.source, pb::SeriesSource::Prometheus as i32);
        assert_eq!(s.name, "node_cpu_seconds_total");
        assert_eq!(s.labels["job"], "node");
        assert_eq!(s.labels["mode"], "idle");
        assert!(s.points.len() >= 3, "{s:?}");
        // A counter of idle seconds: positive, never decreasing, growing by at most a
        // second per second.
        for pair in s.points.windows(2) {
            let grew = pair[1].value - pair[0].value;
            let seconds = (pair[1].time_unix_ms - pair[0].time_unix_ms) as f64 / 1000.0;
            assert!(grew >= 0.0 && grew <= seconds * 1.05, "{pair:?}");
        }
    }

    // Exactly what Prometheus itself answers for the same query.
    let direct = json_until(
        &prometheus.address(),
        &format!(
            "/api/v1/query_range?query=node_cpu_seconds_total%7Bmode%3D%22idle%22%7D&start={start_s}.000&end={end}.000&step=1.000"
        ),
        |v| v["status"] == "success",
    )
    .await;
    let mut expected: Vec<(String, Vec<(i64, f64)>)> = direct["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let cpu = r["metric"]["cpu"].as_str().unwrap().to_owned();
            let points = r["values"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| {
                    (
                        (p[0].as_f64().unwrap() * 1000.0).round() as i64,
                        p[1].as_str().unwrap().parse().unwrap(),
                    )
                })
                .collect();
            (cpu, points)
        })
        .collect();
    expected.sort_by(|a, b| a.0.cmp(&b.0));
    let mut got: Vec<(String, Vec<(i64, f64)>)> = series
        .iter()
        .map(|s| {
            (
                s.labels["cpu"].clone(),
                s.points.iter().map(|p| (p.time_unix_ms, p.value)).collect(),
            )
        })
        .collect();
    got.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(got, expected);

    // Unclaimed names still come from pharosd's own store.
    push_one(&mut client, "queue_depth", &[], 7.0).await;
    let own = client
        .query_range(as_operator(range("queue_depth", &[], end - 60, end + 60)))
        .await
        .unwrap()
        .into_inner()
        .series;
    assert_eq!(own.len(), 1);
    assert_eq!(own[0].source, pb::SeriesSource::Memory as i32);

    // A backend that cannot answer: UNAVAILABLE, naming it.
    let err = client
        .query_range(as_operator(range("missing_series", &[], start_s, end)))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unavailable);
    assert!(err.message().contains("prometheus gone"), "{err:?}");
    harness.shutdown().await;
}

async fn push(client: &mut MetricsServiceClient<tonic::transport::Channel>, value: f64) {
    let response = push_one(client, "disk_used_ratio", &[("volume", "data")], value).await;
    assert_eq!(response.accepted, 1);
}

/// The Alertmanager's alerts named `name`.
fn named<'a>(alerts: &'a Value, name: &str) -> Vec<&'a Value> {
    alerts
        .as_array()
        .map(|all| {
            all.iter()
                .filter(|a| a["labels"]["alertname"] == name)
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alertmanager_receives_the_alert_firing_then_resolved() {
    let alertmanager = TestAlertmanager::start().unwrap();
    json_until(&alertmanager.address(), "/api/v2/status", |v| {
        v["cluster"]["status"].is_string()
    })
    .await;
    let catalog = format!(
        r#"environments:
  - id: prod
projects:
  - id: storage
    deployments:
      - environment: prod
alert_rules:
  - name: disk-nearly-full
    metric: disk_used_ratio
    threshold: 0.9
    severity: critical
    project: storage
    environment: prod
alertmanagers:
  - name: am
    url: {}
"#,
        alertmanager.url()
    );
    let harness = start(&catalog).await;
    let mut client = MetricsServiceClient::connect(harness.url()).await.unwrap();

    push(&mut client, 0.95).await;
    let alerts = json_until(&alertmanager.address(), "/api/v2/alerts", |v| {
        named(v, "disk-nearly-full").len() == 1
    })
    .await;
    let alert = named(&alerts, "disk-nearly-full")[0];
    assert_eq!(alert["labels"]["severity"], "critical");
    assert_eq!(alert["labels"]["project"], "storage");
    assert_eq!(alert["labels"]["environment"], "prod");
    assert_eq!(alert["labels"]["source"], "pharos");
    assert_eq!(alert["status"]["state"], "active");
    let summary = alert["annotations"]["summary"].as_str().unwrap();
    assert!(
        summary.contains("disk_used_ratio") && summary.contains("0.95"),
        "{summary}"
    );

    // Resolved: Alertmanager no longer lists it as active (its endsAt is past).
    push(&mut client, 0.5).await;
    json_until(&alertmanager.address(), "/api/v2/alerts", |v| {
        named(v, "disk-nearly-full").iter().all(|a| {
            a["status"]["state"] != "active"
                || a["endsAt"].as_str().is_some_and(|e| {
                    chrono::DateTime::parse_from_rfc3339(e).is_ok_and(|t| t <= chrono::Utc::now())
                })
        })
    })
    .await;
    harness.shutdown().await;
}
