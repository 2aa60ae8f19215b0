//! Platform totals and derived signals: SQL KPIs against a real PostgreSQL (gauges,
//! read-only enforcement, a failing query reported once), GetAggregates' groups, and
//! anomaly detection on a pushed series (a spike raises `anomaly.detected`, the next
//! ordinary value `anomaly.cleared`).

use crate::common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::{Backend, Harness, as_operator, push_one, quiet_operator};
use pharos_control_plane::domain::Event;
use pharos_control_plane::journal::Object;
use pharos_e2e::TestPostgres;
use pharos_proto::v1 as pb;
use pharos_proto::v1::metrics_service_client::MetricsServiceClient;
use tonic::transport::Channel;

async fn start(catalog: &str) -> Harness {
    Harness::start_with_catalog(Backend::Sqlite, catalog, quiet_operator).await
}

async fn aggregates(client: &mut MetricsServiceClient<Channel>) -> Vec<pb::AggregateGroup> {
    client
        .get_aggregates(as_operator(pb::GetAggregatesRequest {}))
        .await
        .unwrap()
        .into_inner()
        .groups
}

/// Polls GetAggregates until `done` accepts the named group.
async fn group_until(
    client: &mut MetricsServiceClient<Channel>,
    name: &str,
    done: impl Fn(&pb::AggregateGroup) -> bool,
) -> pb::AggregateGroup {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let groups = aggregates(client).await;
        let group = groups.iter().find(|g| g.name == name).cloned();
        if let Some(group) = group.filter(&done) {
            return group;
        }
        assert!(
            Instant::now() < deadline,
            "group {name} never got there: {groups:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn value(group: &pb::AggregateGroup, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    group
        .values
        .iter()
        .find(|v| {
            v.name == name
                && labels
                    .iter()
                    .all(|(k, want)| v.labels.get(*k).map(String::as_str) == Some(*want))
        })
        .map(|v| v.value)
}

async fn events_of(harness: &Harness, kind_prefix: &str) -> Vec<Event> {
    harness
        .journal_after(0)
        .await
        .into_iter()
        .filter_map(|entry| match entry.object {
            Object::Event(event) if event.kind.starts_with(kind_prefix) => Some(event),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_kpis_become_gauges_run_read_only_and_report_failures_once() {
    let pg = TestPostgres::shared();
    let dsn = pg.unique_database("kpis").unwrap();
    let database = dsn.rsplit('/').next().unwrap().to_owned();
    pg.psql(
        &database,
        "CREATE TABLE tenants (id int, status text, balance numeric(12,3)); \
         INSERT INTO tenants VALUES (1, 'active', 10.5), (2, 'active', 2.25), \
         (3, 'suspended', -1.125), (4, 'deleted', 0)",
    )
    .unwrap();
    let catalog = format!(
        r#"environments:
  - id: prod
projects:
  - id: iot
    deployments:
      - environment: prod
kpis:
  - name: tenants
    dsn: '{dsn}'
    interval: 1s
    project: iot
    environment: prod
    query: SELECT status, count(*) AS tenants, sum(balance) AS balance, now() AS read_at FROM tenants GROUP BY status
  - name: writer
    dsn: '{dsn}'
    interval: 1s
    query: DELETE FROM tenants RETURNING id
  - name: slow
    dsn: '{dsn}'
    interval: 1s
    timeout: 300ms
    query: SELECT pg_sleep(5)::text AS slept, 1 AS one
"#
    );
    let harness = start(&catalog).await;
    let mut client = MetricsServiceClient::connect(harness.url()).await.unwrap();

    // Counts are int8, sums NUMERIC: both read as numbers; the timestamp is skipped.
    let group = group_until(&mut client, "kpi:tenants", |g| !g.values.is_empty()).await;
    assert_eq!(group.error, "");
    assert_eq!(group.project_id, "iot");
    assert_eq!(
        value(
            &group,
            "tenants",
            &[("status", "active"), ("kpi", "tenants")]
        ),
        Some(2.0)
    );
    assert_eq!(
        value(&group, "tenants", &[("status", "suspended")]),
        Some(1.0)
    );
    assert_eq!(
        value(&group, "balance", &[("status", "active")]),
        Some(12.75)
    );
    assert_eq!(
        value(&group, "balance", &[("status", "suspended")]),
        Some(-1.125)
    );
    assert_eq!(group.values.len(), 6, "{group:#?}");
    assert!(
        group.notes.iter().any(|n| n.contains("read_at")),
        "{:?}",
        group.notes
    );

    // The same gauges are series for QueryRange.
    let series = client
        .query_range(as_operator(pb::QueryRangeRequest {
            selector: Some(pb::SeriesSelector {
                name: "tenants".to_owned(),
                labels: HashMap::from([("status".to_owned(), "active".to_owned())]),
            }),
            start: Some(prost_types::Timestamp {
                seconds: chrono::Utc::now().timestamp() - 60,
                nanos: 0,
            }),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner()
        .series;
    assert_eq!(series.len(), 1);
    assert!(series[0].points.iter().all(|p| p.value == 2.0));

    // A writing statement fails in the read-only transaction; nothing is deleted.
    let writer = group_until(&mut client, "kpi:writer", |g| !g.error.is_empty()).await;
    assert!(
        writer.error.contains("read-only transaction"),
        "{}",
        writer.error
    );
    assert_eq!(
        pg.psql(&database, "SELECT count(*) FROM tenants")
            .unwrap()
            .trim(),
        "4"
    );
    // A statement past its timeout is cancelled by the server.
    let slow = group_until(&mut client, "kpi:slow", |g| !g.error.is_empty()).await;
    assert!(slow.error.contains("statement timeout"), "{}", slow.error);
    assert!(slow.values.is_empty());

    // Each failing KPI is reported once, though it keeps failing (with backoff): wait
    // until at least three attempts of each could have run.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let failed = events_of(&harness, "kpi.").await;
    let count = |kpi: &str| {
        failed
            .iter()
            .filter(|e| e.kind == "kpi.failed" && e.attributes["kpi"] == kpi)
            .count()
    };
    assert_eq!(count("writer"), 1, "{failed:#?}");
    assert_eq!(count("slow"), 1, "{failed:#?}");
    assert_eq!(count("tenants"), 0, "{failed:#?}");
    harness.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aggregates_count_the_catalog_health_alerts_and_events() {
    let catalog = r#"environments:
  - id: prod
  - id: dev
projects:
  - id: api
    deployments:
      - environment: prod
      - environment: dev
  - id: web
    deployments:
      - environment: prod
alert_rules:
  - name: backlog
    metric: queue_depth
    threshold: 10
    severity: error
"#;
    let harness = start(catalog).await;
    let mut client = MetricsServiceClient::connect(harness.url()).await.unwrap();
    let groups = aggregates(&mut client).await;
    let names: Vec<&str> = groups.iter().map(|g| g.name.as_str()).collect();
    // No engine is configured, so no containers group.
    assert_eq!(names, ["catalog", "health", "alerts", "events"]);
    let catalog = &groups[0];
    assert_eq!(value(catalog, "projects", &[]), Some(2.0));
    assert_eq!(value(catalog, "environments", &[]), Some(2.0));
    assert_eq!(value(catalog, "deployments", &[]), Some(3.0));
    // No checks: every deployment's health is unknown.
    assert_eq!(
        value(&groups[1], "deployments", &[("status", "unknown")]),
        Some(3.0)
    );
    assert_eq!(value(&groups[2], "alerts_firing", &[]), Some(0.0));

    push_one(&mut client, "queue_depth", &[], 50.0).await;
    let alerts = group_until(&mut client, "alerts", |g| {
        value(g, "alerts_firing", &[]) == Some(1.0)
    })
    .await;
    assert_eq!(
        value(&alerts, "alerts_firing", &[("severity", "error")]),
        Some(1.0)
    );
    let events = group_until(&mut client, "events", |g| {
        value(g, "events", &[("kind", "alert.firing"), ("window", "1h")]) == Some(1.0)
    })
    .await;
    assert_eq!(
        value(
            &events,
            "events",
            &[("kind", "alert.firing"), ("window", "24h")]
        ),
        Some(1.0)
    );
    harness.shutdown().await;
}

async fn push_at(client: &mut MetricsServiceClient<Channel>, points: &[(i64, f64)]) {
    let response = client
        .push_metrics(as_operator(tokio_stream::iter(vec![
            pb::PushMetricsRequest {
                samples: points
                    .iter()
                    .map(|(ms, value)| pb::PushedSample {
                        name: "checkout_latency_ms".to_owned(),
                        labels: HashMap::from([("route".to_owned(), "/pay".to_owned())]),
                        value: *value,
                        time_unix_ms: *ms,
                    })
                    .collect(),
            },
        ])))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(response.accepted, points.len() as u64, "{response:?}");
}

async fn anomaly_events_until(harness: &Harness, count: usize) -> Vec<Event> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let events = events_of(harness, "anomaly.").await;
        if events.len() >= count {
            return events;
        }
        assert!(
            Instant::now() < deadline,
            "anomaly events so far: {events:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spike_raises_an_anomaly_and_the_next_ordinary_value_clears_it() {
    let catalog = r#"environments:
  - id: prod
projects:
  - id: shop
    deployments:
      - environment: prod
anomaly_detectors:
  - name: latency
    metric: checkout_latency_ms
    labels: {route: /pay}
    window: 5m
    threshold: 5
    min_samples: 30
    severity: error
    project: shop
"#;
    let harness = start(catalog).await;
    let mut client = MetricsServiceClient::connect(harness.url()).await.unwrap();
    // Sixty ordinary values a second apart: 100 ms give or take 4 ms.
    let base = chrono::Utc::now().timestamp_millis() - 120_000;
    let ordinary: Vec<(i64, f64)> = (0..60)
        .map(|i| (base + i * 1000, 100.0 + f64::from((i * 7 % 9) as i32 - 4)))
        .collect();
    push_at(&mut client, &ordinary).await;
    // Then a spike, and an ordinary value again.
    push_at(&mut client, &[(base + 60_000, 180.0)]).await;
    let detected = anomaly_events_until(&harness, 1).await;
    assert_eq!(detected.len(), 1, "{detected:#?}");
    let event = &detected[0];
    assert_eq!(event.kind, "anomaly.detected");
    assert_eq!(format!("{:?}", event.severity), "Error");
    assert_eq!(event.project_id.as_deref(), Some("shop"));
    assert_eq!(event.attributes["value"], "180");
    assert_eq!(event.attributes["baseline"], "100");
    // Hand computation: median 100, MAD 2 -> 0.6745 * 80 / 2 = 26.98.
    assert_eq!(event.attributes["score"], "26.980");

    push_at(&mut client, &[(base + 61_000, 101.0)]).await;
    let events = anomaly_events_until(&harness, 2).await;
    assert_eq!(events.len(), 2, "{events:#?}");
    assert_eq!(events[1].kind, "anomaly.cleared");
    assert_eq!(events[1].attributes["detected_event"], event.id);
    harness.shutdown().await;
}
