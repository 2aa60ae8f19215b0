//! The real grpcurl (1.8.6) against pharosd: reflection, unary calls, the health service
//! and a Watch stream held open while the catalog file is edited.

use pharos_e2e::grpc::{grpcurl, grpcurl_command, json_stdout};
use pharos_e2e::{CatalogFile, Pharosd, StreamingChild, demo_catalog_text};
use serde_json::{Value, json};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(10);

async fn pharosd_with(catalog: &CatalogFile) -> Pharosd {
    Pharosd::builder()
        .catalog(catalog.path())
        .arg("--catalog-poll-interval")
        .arg("100ms")
        .spawn()
        .await
        .expect("start pharosd")
}

/// grpcurl prints uint64 fields as JSON strings.
fn revision(value: &Value) -> u64 {
    match value {
        Value::String(text) => text.parse().expect("a decimal revision"),
        Value::Number(n) => n.as_u64().expect("an unsigned revision"),
        other => panic!("not a revision: {other}"),
    }
}

async fn get_overview(server: &Pharosd) -> Value {
    let out = grpcurl([&server.addr(), "pharos.v1.CatalogService/GetOverview"])
        .await
        .unwrap()
        .expect_success()
        .unwrap();
    json_stdout(&out).unwrap()
}

/// `grpcurl -d '{"since_revision":0}' ADDR pharos.v1.WatchService/Watch`, read up to and
/// including the snapshot_complete marker. Returns the stream, the snapshot's changes and
/// the snapshot_complete revision.
async fn watch_from_snapshot(server: &Pharosd) -> (StreamingChild, Vec<Value>, u64) {
    let mut watch = StreamingChild::spawn(grpcurl_command([
        "-d",
        r#"{"since_revision":0}"#,
        &server.addr(),
        "pharos.v1.WatchService/Watch",
    ]))
    .unwrap();
    let (done, snapshot) = watch
        .wait_for_json(WAIT, |v| v.get("snapshotComplete").is_some())
        .await
        .unwrap();
    let snapshot_revision = revision(&done["snapshotComplete"]["revision"]);
    (watch, snapshot, snapshot_revision)
}

#[tokio::test]
async fn list_shows_the_pharos_and_health_services() {
    let catalog = CatalogFile::demo().unwrap();
    let server = pharosd_with(&catalog).await;

    let out = grpcurl([&server.addr(), "list"])
        .await
        .unwrap()
        .expect_success()
        .unwrap();
    let services: Vec<&str> = out.stdout.lines().collect();
    for service in [
        "pharos.v1.CatalogService",
        "pharos.v1.WatchService",
        "grpc.health.v1.Health",
    ] {
        assert!(services.contains(&service), "{service} not listed: {out}");
    }
}

#[tokio::test]
async fn describe_catalog_service_shows_its_methods() {
    let catalog = CatalogFile::demo().unwrap();
    let server = pharosd_with(&catalog).await;

    let out = grpcurl([&server.addr(), "describe", "pharos.v1.CatalogService"])
        .await
        .unwrap()
        .expect_success()
        .unwrap();
    assert!(
        out.stdout
            .contains("pharos.v1.CatalogService is a service:"),
        "{out}"
    );
    assert!(
        out.stdout.contains(
            "rpc GetOverview ( .pharos.v1.GetOverviewRequest ) returns ( .pharos.v1.GetOverviewResponse );"
        ),
        "{out}"
    );
}

#[tokio::test]
async fn get_overview_returns_the_demo_catalog_totals() {
    let catalog = CatalogFile::demo().unwrap();
    let server = pharosd_with(&catalog).await;
    // The demo checks this pharosd itself: once that settles, nothing moves.
    pharos_e2e::grpc::wait_until_demo_is_healthy(&server.url())
        .await
        .unwrap();

    let mut overview = get_overview(&server).await;
    let at = revision(&overview["revision"]);
    assert!(at > 0, "a synced catalog has a revision: {overview}");
    overview.as_object_mut().unwrap().remove("revision");
    // One environment (ports 7600-7699), one project deployed there with one port,
    // healthy. grpcurl leaves out fields that are zero.
    assert_eq!(
        overview,
        json!({
            "projects": 1,
            "deployments": 1,
            "healthyDeployments": 1,
            "portsAllocated": 1,
            "portsAvailable": 99,
            "environments": [{
                "id": "local",
                "name": "Local machine",
                "deployments": 1,
                "portsAllocated": 1,
                "portsAvailable": 99
            }]
        })
    );
}

#[tokio::test]
async fn health_check_reports_serving() {
    let catalog = CatalogFile::demo().unwrap();
    let server = pharosd_with(&catalog).await;

    let out = grpcurl([&server.addr(), "grpc.health.v1.Health/Check"])
        .await
        .unwrap()
        .expect_success()
        .unwrap();
    assert_eq!(json_stdout(&out).unwrap(), json!({"status": "SERVING"}));
}

#[tokio::test]
async fn health_check_knows_every_pharos_service_the_port_serves() {
    let catalog = CatalogFile::demo().unwrap();
    let server = pharosd_with(&catalog).await;

    let listed = grpcurl([&server.addr(), "list"])
        .await
        .unwrap()
        .expect_success()
        .unwrap();
    let services: Vec<&str> = listed
        .stdout
        .lines()
        .filter(|service| service.starts_with("pharos.v1."))
        .collect();
    // The three that grpc.health.v1 once left out, among the rest.
    for service in [
        "pharos.v1.EventService",
        "pharos.v1.MetricsService",
        "pharos.v1.SessionService",
    ] {
        assert!(
            services.contains(&service),
            "{service} not listed: {listed}"
        );
    }
    for service in services {
        let request = json!({ "service": service }).to_string();
        let out = grpcurl([
            "-d",
            &request,
            &server.addr(),
            "grpc.health.v1.Health/Check",
        ])
        .await
        .unwrap()
        .expect_success()
        .unwrap();
        assert_eq!(
            json_stdout(&out).unwrap(),
            json!({"status": "SERVING"}),
            "{service}"
        );
    }
}

#[tokio::test]
async fn watch_prints_the_snapshot_then_an_upsert_for_a_catalog_edit() {
    let catalog = CatalogFile::demo().unwrap();
    let server = pharosd_with(&catalog).await;
    let (mut watch, snapshot, snapshot_revision) = watch_from_snapshot(&server).await;

    // The catalog part of the snapshot (the health topic's states follow it).
    let keys: Vec<&str> = snapshot
        .iter()
        .filter(|v| v["change"]["topic"] == "WATCH_TOPIC_CATALOG")
        .map(|v| v["change"]["key"].as_str().unwrap())
        .collect();
    assert_eq!(
        keys,
        [
            "environment/local",
            "project/pharos",
            "deployment/pharos/local",
            "port/local/7600"
        ]
    );
    for change in &snapshot {
        assert_eq!(change["change"]["kind"], "CHANGE_KIND_SNAPSHOT", "{change}");
        assert!(revision(&change["change"]["revision"]) <= snapshot_revision);
    }
    assert_eq!(
        snapshot[0]["change"]["environment"]["name"],
        "Local machine"
    );

    catalog
        .replace("name: Local machine", "name: Lab rack")
        .unwrap();

    let (upsert, _) = watch
        .wait_for_json(WAIT, |v| v["change"]["key"] == "environment/local")
        .await
        .unwrap();
    let change = &upsert["change"];
    assert_eq!(change["kind"], "CHANGE_KIND_UPSERT", "{upsert}");
    assert_eq!(change["topic"], "WATCH_TOPIC_CATALOG", "{upsert}");
    assert_eq!(change["environment"]["name"], "Lab rack", "{upsert}");
    assert!(
        revision(&change["revision"]) > snapshot_revision,
        "the edit's revision {} should be above the snapshot's {snapshot_revision}",
        change["revision"]
    );
}

#[tokio::test]
async fn invalid_edit_appends_a_catalog_invalid_event_and_keeps_the_catalog() {
    let catalog = CatalogFile::demo().unwrap();
    let server = pharosd_with(&catalog).await;
    let before = get_overview(&server).await;
    let (mut watch, _, snapshot_revision) = watch_from_snapshot(&server).await;

    catalog.append("bogus: 1\n").unwrap();

    let (event, _) = watch
        .wait_for_json(WAIT, |v| v["change"]["event"]["kind"] == "catalog.invalid")
        .await
        .unwrap();
    let change = &event["change"];
    assert_eq!(change["kind"], "CHANGE_KIND_APPEND", "{event}");
    assert_eq!(change["topic"], "WATCH_TOPIC_EVENTS", "{event}");
    assert_eq!(
        change["event"]["severity"], "EVENT_SEVERITY_ERROR",
        "{event}"
    );
    assert!(revision(&change["revision"]) > snapshot_revision);
    // The appended line is the line after the demo catalog's last one, at column 1.
    let line = demo_catalog_text().lines().count() + 1;
    let location = format!(
        "{}:{line}:1: bogus: unknown field `bogus`",
        catalog.path().display()
    );
    let message = change["event"]["message"].as_str().unwrap();
    assert!(
        message.contains(&location),
        "the message should contain {location:?}: {message}"
    );

    // Still the catalog from before the edit, at the same revision.
    // The catalog is unchanged; the head (the event) and health counts move on their own.
    let catalog_part = |mut overview: serde_json::Value| {
        for key in [
            "revision",
            "healthyDeployments",
            "degradedDeployments",
            "unhealthyDeployments",
            "unknownDeployments",
        ] {
            overview.as_object_mut().unwrap().remove(key);
        }
        overview
    };
    assert_eq!(
        catalog_part(get_overview(&server).await),
        catalog_part(before)
    );
}
