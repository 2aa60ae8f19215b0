//! The `pharos` CLI's events, metrics and action commands against a real pharosd.

use std::time::Duration;

use pharos_e2e::grpc::{COMMAND_TIMEOUT, command, json_stdout, with_token};
use pharos_e2e::{CatalogFile, Pharosd, StreamingChild, run_command};
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

#[tokio::test]
async fn export_operations_holds_every_operation_oldest_first_in_csv_and_json() {
    let (_catalog, server) = start().await;
    let mut planned = Vec::new();
    for (n, action) in ["restart", "stop", "start"].iter().enumerate() {
        let request_id = format!("cli-export-{n}");
        let out = pharos(
            &server,
            &[
                action,
                "pharos/local",
                "--reason",
                "reason, with a comma",
                "--dry-run",
                "--yes",
                "--request-id",
                &request_id,
                "-o",
                "json",
            ],
        )
        .await;
        planned.push(json_stdout(&out.expect_success().unwrap()).unwrap());
    }

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("operations.csv");
    let out = pharos(
        &server,
        &[
            "export",
            "operations",
            "--format",
            "csv",
            "--output",
            file.to_str().unwrap(),
        ],
    )
    .await;
    let said = out.expect_success().unwrap().stderr;
    assert!(said.contains("exported 3 operations"), "{said}");
    let text = std::fs::read_to_string(&file).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "created,id,kind,deployment_id,state,actor,reason,request_id,dry_run,replicas,started,finished,steps,result"
    );
    assert_eq!(lines.len(), 4, "{text}");
    for (line, op) in lines[1..].iter().zip(&planned) {
        let id = op["id"].as_str().unwrap();
        let kind = op["kind"].as_str().unwrap();
        assert!(
            line.contains(&format!(
                ",{id},{kind},pharos/local,planned,cli-operator,\"reason, with a comma\",{},true,",
                op["request_id"].as_str().unwrap()
            )),
            "{line}\n{op}"
        );
    }

    // JSON lines: the same objects `pharos operations ID -o json` prints.
    let out = pharos(&server, &["export", "operations", "--format", "json"]).await;
    let text = out.expect_success().unwrap().stdout;
    let exported: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let ids: Vec<&Value> = exported.iter().map(|op| &op["id"]).collect();
    let expected: Vec<&Value> = planned.iter().map(|op| &op["id"]).collect();
    assert_eq!(ids, expected);
    let shown = pharos(
        &server,
        &[
            "operations",
            planned[1]["id"].as_str().unwrap(),
            "-o",
            "json",
        ],
    )
    .await;
    assert_eq!(
        exported[1],
        json_stdout(&shown.expect_success().unwrap()).unwrap()
    );

    // Only operations from the last minute: all three.
    let out = pharos(
        &server,
        &["export", "operations", "--since", "1m", "--format", "json"],
    )
    .await;
    assert_eq!(out.expect_success().unwrap().stdout.lines().count(), 3);
}

/// Reports one event of kind `cli.follow` with `message`.
async fn report(server: &Pharosd, message: &str) {
    let channel = tonic::transport::Endpoint::from_shared(server.url())
        .unwrap()
        .connect()
        .await
        .unwrap();
    pb::event_service_client::EventServiceClient::new(channel)
        .report_events(with_token(
            tokio_stream::iter([pb::ReportEventsRequest {
                events: vec![pb::ReportedEvent {
                    kind: "cli.follow".to_owned(),
                    severity: pb::EventSeverity::Warning as i32,
                    message: message.to_owned(),
                    source: "cli-test".to_owned(),
                    ..Default::default()
                }],
            }]),
            TOKEN,
        ))
        .await
        .unwrap();
}

#[tokio::test]
async fn events_follow_prints_history_then_new_events_once_across_a_restart() {
    let (_catalog, mut server) = start().await;
    report(&server, "before").await;
    let home = tempfile::tempdir().unwrap();
    let mut cmd = command("pharos");
    cmd.env("HOME", home.path())
        .env("XDG_CONFIG_HOME", home.path().join(".config"))
        .args(["--server", &server.url(), "--token", TOKEN])
        .args(["events", "-f", "--kind", "cli.follow", "-o", "json"]);
    let mut follow = StreamingChild::spawn(cmd).unwrap();
    follow
        .wait_for_json(WAIT, |v| v["message"] == "before")
        .await
        .unwrap();
    report(&server, "while following").await;
    follow
        .wait_for_json(WAIT, |v| v["message"] == "while following")
        .await
        .unwrap();

    let status = server.terminate().await.unwrap();
    assert!(status.success(), "pharosd exit: {status}");
    server.restart().await.unwrap();
    report(&server, "after the restart").await;
    follow
        .wait_for_json(WAIT, |v| v["message"] == "after the restart")
        .await
        .unwrap();
    // One more: by the time it is printed, a repeat of the earlier three would have been.
    report(&server, "last").await;
    follow
        .wait_for_json(WAIT, |v| v["message"] == "last")
        .await
        .unwrap();
    follow.kill().await.unwrap();
    let printed: Vec<Value> = follow
        .stdout_lines()
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let messages: Vec<&str> = printed
        .iter()
        .map(|v| v["message"].as_str().unwrap())
        .collect();
    assert_eq!(
        messages,
        ["before", "while following", "after the restart", "last"],
        "{}",
        follow.transcript()
    );
    let revisions: Vec<u64> = printed
        .iter()
        .map(|v| v["revision"].as_u64().unwrap())
        .collect();
    assert!(revisions.windows(2).all(|w| w[0] < w[1]), "{revisions:?}");
    assert!(printed.iter().all(|v| v["kind"] == "cli.follow"));
}
