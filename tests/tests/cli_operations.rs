//! The `pharos` CLI's events, metrics and action commands against a real pharosd.

use std::time::Duration;

use pharos_e2e::grpc::{COMMAND_TIMEOUT, command, json_stdout, with_token};
use pharos_e2e::{CatalogFile, Pharosd, run_command};
use pharos_proto::v1 as pb;
use serde_json::Value;
use tokio::time::Instant;

const WAIT: Duration = Duration::from_secs(15);
/// An operator token, so the test can report events and push metrics.
const TOKEN: &str = "cli-operator-token";
/// `printf cli-operator-token | sha256sum`
const TOKEN_SHA256: &str = "ba3d2363dc14b7525c614f172e9c353a9a1541d75a3ebae2f7bd6c30f7611ea6";

async fn pharos(server: &Pharosd, args: &[&str]) -> pharos_e2e::CmdOutput {
    let home = tempfile::tempdir().unwrap();
    let mut cmd = command("pharos");
    cmd.env("HOME", home.path())
        .env("XDG_CONFIG_HOME", home.path().join(".config"))
        .arg("--server")
        .arg(server.url())
        .arg("--token")
        .arg(TOKEN)
        .args(args)
        .stdin(std::process::Stdio::null());
    run_command(cmd, COMMAND_TIMEOUT).await.unwrap()
}

async fn start() -> (CatalogFile, Pharosd) {
    let catalog = CatalogFile::demo().unwrap();
    let config = catalog.dir().join("pharosd.yaml");
    std::fs::write(
        &config,
        format!(
            "tokens:\n  - name: cli-operator\n    role: operator\n    sha256: {TOKEN_SHA256}\n"
        ),
    )
    .unwrap();
    let server = Pharosd::builder()
        .catalog(catalog.path())
        .config(&config)
        .spawn()
        .await
        .unwrap();
    (catalog, server)
}

#[tokio::test]
async fn events_lists_reported_events_and_counts_them() {
    let (_catalog, server) = start().await;
    let channel = tonic::transport::Endpoint::from_shared(server.url())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut events = pb::event_service_client::EventServiceClient::new(channel);
    events
        .report_events(with_token(
            tokio_stream::iter([pb::ReportEventsRequest {
                events: vec![pb::ReportedEvent {
                    kind: "cli.test_failed".to_owned(),
                    severity: pb::EventSeverity::Error as i32,
                    message: "disk full on /var".to_owned(),
                    source: "cli-test".to_owned(),
                    ..Default::default()
                }],
            }]),
            TOKEN,
        ))
        .await
        .unwrap();

    let out = pharos(&server, &["events", "--kind", "cli.", "-o", "json"]).await;
    let value = json_stdout(&out.expect_success().unwrap()).unwrap();
    let listed = value["events"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "{value}");
    assert_eq!(listed[0]["kind"], "cli.test_failed");
    assert_eq!(listed[0]["severity"], "error");
    assert_eq!(listed[0]["message"], "disk full on /var");
    assert!(listed[0]["revision"].as_u64().unwrap() > 0);

    let out = pharos(&server, &["events", "--counts", "-o", "json"]).await;
    let value = json_stdout(&out.expect_success().unwrap()).unwrap();
    let count = value["counts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == "cli.test_failed")
        .unwrap_or_else(|| panic!("no count for cli.test_failed: {value}"));
    assert_eq!(count["last_hour"], 1);
    assert_eq!(count["worst_severity"], "error");
}

#[tokio::test]
async fn metrics_shows_a_pushed_series_with_a_sparkline() {
    let (_catalog, server) = start().await;
    let channel = tonic::transport::Endpoint::from_shared(server.url())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut metrics = pb::metrics_service_client::MetricsServiceClient::new(channel);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let samples = [1.0, 5.0, 3.0]
        .iter()
        .enumerate()
        .map(|(i, value)| pb::PushedSample {
            name: "cli_test_queue_depth".to_owned(),
            labels: [("queue".to_owned(), "mail".to_owned())].into(),
            value: *value,
            time_unix_ms: now - 3000 + i as i64 * 1000,
        })
        .collect();
    metrics
        .push_metrics(with_token(
            tokio_stream::iter([pb::PushMetricsRequest { samples }]),
            TOKEN,
        ))
        .await
        .unwrap();

    let deadline = Instant::now() + WAIT;
    let series = loop {
        let out = pharos(
            &server,
            &[
                "metrics",
                "cli_test_queue_depth{queue=\"mail\"}",
                "--since",
                "10m",
                "-o",
                "json",
            ],
        )
        .await;
        let value: Value = json_stdout(&out.expect_success().unwrap()).unwrap();
        let series = value["series"].as_array().unwrap().clone();
        if series
            .first()
            .is_some_and(|s| s["points"].as_array().unwrap().len() == 3)
        {
            break series;
        }
        assert!(Instant::now() < deadline, "series never complete: {value}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(series.len(), 1);
    assert_eq!(series[0]["labels"]["queue"], "mail");
    let values: Vec<f64> = series[0]["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["value"].as_f64().unwrap())
        .collect();
    assert_eq!(values, vec![1.0, 5.0, 3.0]);

    let out = pharos(
        &server,
        &["metrics", "cli_test_queue_depth", "--since", "10m"],
    )
    .await;
    let text = out.expect_success().unwrap().stdout.clone();
    assert!(
        text.contains("cli_test_queue_depth{queue=\"mail\"}"),
        "{text}"
    );
    assert!(text.contains("▁█▅"), "sparkline of 1, 5, 3: {text}");

    // A malformed selector is a usage error, before any call.
    let out = pharos(&server, &["metrics", "up{job=node", "--since", "1h"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", out.stderr);
}

#[tokio::test]
async fn actions_refuse_without_a_terminal_or_yes_and_operations_lists_nothing_done() {
    let (_catalog, server) = start().await;
    let out = pharos(&server, &["restart", "shop/prod", "--reason", "test"]).await;
    assert_eq!(out.status.code(), Some(6), "{}", out.stderr);
    assert!(out.stderr.contains("pass --yes"), "{}", out.stderr);

    // Nothing was asked of the server.
    let out = pharos(&server, &["operations", "-o", "json"]).await;
    let value = json_stdout(&out.expect_success().unwrap()).unwrap();
    assert_eq!(value["operations"], serde_json::json!([]), "{value}");
}

#[tokio::test]
async fn restart_dry_run_prints_the_plan_and_it_is_listed() {
    let (_catalog, server) = start().await;
    let out = pharos(
        &server,
        &[
            "restart",
            "pharos/local",
            "--reason",
            "cli test",
            "--dry-run",
            "--yes",
            "--request-id",
            "cli-dry-1",
            "-o",
            "json",
        ],
    )
    .await;
    let plan = json_stdout(&out.expect_success().unwrap()).unwrap();
    assert_eq!(plan["kind"], "restart", "{plan}");
    assert_eq!(plan["deployment_id"], "pharos/local");
    assert_eq!(plan["dry_run"], true);
    assert_eq!(plan["state"], "planned");
    assert_eq!(plan["request_id"], "cli-dry-1");

    let out = pharos(&server, &["operations", "-o", "json"]).await;
    let value = json_stdout(&out.expect_success().unwrap()).unwrap();
    let listed = value["operations"].as_array().unwrap();
    assert!(listed.iter().any(|op| op["id"] == plan["id"]), "{value}");
    let id = plan["id"].as_str().unwrap();
    let out = pharos(&server, &["operations", id]).await;
    let text = out.expect_success().unwrap().stdout;
    assert!(
        text.contains(&format!("operation {id}: restart pharos/local")),
        "{text}"
    );
}
