//! Supervision of pharosd's background tasks, on the real binary. `PHAROS_FAILPOINT`
//! (read by debug builds only, which these tests run) makes a task panic when it starts:
//! a collector that fails shows in `/healthz` and in grpc.health.v1 and is restarted; a
//! task that cannot be restarted stops pharosd with an error and a non-zero exit.

use std::fmt::Debug;
use std::future::Future;
use std::time::Duration;

use pharos_e2e::grpc::{COMMAND_TIMEOUT, command, grpcurl, json_stdout};
use pharos_e2e::{Pharosd, free_port, http_get, http_get_with, run_command};
use pharos_proto::v1 as pb;
use pharos_proto::v1::metrics_service_client::MetricsServiceClient;
use serde_json::Value;
use tokio::time::Instant;

const WAIT: Duration = Duration::from_secs(20);
const POLL: Duration = Duration::from_millis(100);

/// The sampler of host, disk and database figures: a collector that runs in every
/// configuration and whose work (`GetCapacity`) can be seen from outside.
const COLLECTOR: &str = "capacity-sampler";

async fn pharosd_with_failpoint(failpoint: &str) -> Pharosd {
    Pharosd::builder()
        .env("PHAROS_FAILPOINT", failpoint)
        // `/healthz` is 503 while the collector is down, so ready means listening.
        .ready_when_logged("pharosd listening")
        .spawn()
        .await
        .expect("start pharosd")
}

/// Calls `probe` until `done` holds for what it returns, or fails after [`WAIT`] with
/// the last answer.
async fn wait_until<T, F, Fut>(what: &str, mut probe: F, done: impl Fn(&T) -> bool) -> T
where
    T: Debug,
    F: FnMut() -> Fut,
    Fut: Future<Output = T>,
{
    let deadline = Instant::now() + WAIT;
    loop {
        let answer = probe().await;
        if done(&answer) {
            return answer;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not within {WAIT:?}; last answer: {answer:?}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// `GET /healthz` asking for JSON: the status code and the report.
async fn healthz_report(server: &Pharosd) -> (u16, Value) {
    let response = http_get_with(
        &server.addr(),
        "/healthz",
        &[("Accept", "application/json")],
    )
    .await
    .expect("GET /healthz");
    let report = serde_json::from_str(&response.body)
        .unwrap_or_else(|err| panic!("/healthz JSON: {err}: {:?}", response.body));
    (response.status, report)
}

/// The task called `name` in a `/healthz` report.
fn task<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["tasks"]
        .as_array()
        .and_then(|tasks| tasks.iter().find(|task| task["name"] == name))
        .unwrap_or_else(|| panic!("no task {name} in {report}"))
}

/// What grpc.health.v1 `Check` answers for `service` ("" for the whole server), as
/// grpcurl prints it.
async fn grpc_health(server: &Pharosd, service: &str) -> String {
    let request = serde_json::json!({ "service": service }).to_string();
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
    json_stdout(&out).unwrap()["status"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

async fn get_capacity(server: &Pharosd) -> Result<pb::GetCapacityResponse, tonic::Status> {
    MetricsServiceClient::connect(server.url())
        .await
        .expect("connect")
        .get_capacity(pb::GetCapacityRequest {})
        .await
        .map(tonic::Response::into_inner)
}

/// The log without the terminal colour codes the text format adds.
fn plain_log(server: &Pharosd) -> String {
    let log = server.log_text();
    let mut plain = String::with_capacity(log.len());
    let mut chars = log.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // ESC [ parameters m
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            plain.push(c);
        }
    }
    plain
}

#[tokio::test]
async fn a_collector_that_keeps_panicking_is_reported_down_and_restarted() {
    let mut server = pharosd_with_failpoint(&format!("panic:{COLLECTOR}")).await;

    // Down, and started again at least once since (each start panics again).
    let (status, report) = wait_until(
        "the collector reported restarting after a restart",
        || healthz_report(&server),
        |(_, report)| {
            let collector = task(report, COLLECTOR);
            collector["state"] == "restarting" && collector["restarts"].as_u64() >= Some(1)
        },
    )
    .await;
    assert_eq!(status, 503, "{report}");
    assert_eq!(report["status"], "degraded", "{report}");
    let collector = task(&report, COLLECTOR);
    assert_eq!(collector["on_failure"], "restart", "{report}");
    assert_eq!(
        collector["last_failure"],
        format!("panicked: failpoint: injected panic in task {COLLECTOR}"),
        "{report}"
    );
    for other in report["tasks"].as_array().unwrap() {
        if other["name"] != COLLECTOR {
            assert_eq!(other["state"], "running", "{report}");
        }
    }

    let plain = http_get(&server.addr(), "/healthz").await.unwrap();
    assert_eq!(plain.status, 503);
    assert!(plain.body.starts_with("degraded\n"), "{:?}", plain.body);
    assert!(
        plain
            .body
            .contains(&format!("{COLLECTOR}: restarting (restarts: ")),
        "{:?}",
        plain.body
    );

    // The whole server is NOT_SERVING while a task is down; its services still answer.
    assert_eq!(grpc_health(&server, "").await, "NOT_SERVING");
    assert_eq!(
        grpc_health(&server, "pharos.v1.CatalogService").await,
        "SERVING"
    );
    // The collector really is not running: it never took a sample.
    let status = get_capacity(&server).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");

    // The failure is logged with the task's name and the error; pharosd keeps running.
    let log = plain_log(&server);
    assert!(
        log.lines().any(
            |line| line.contains("task failed; restarting it after a backoff")
                && line.contains(&format!("task=\"{COLLECTOR}\""))
                && line.contains("error=panicked: failpoint: injected panic in task")
        ),
        "{log}"
    );
    assert!(server.is_running());
    let exit = server.terminate().await.unwrap();
    assert_eq!(exit.code(), Some(0), "{exit}");
}

#[tokio::test]
async fn a_collector_that_panicked_once_is_serving_again_after_its_restart() {
    let server = pharosd_with_failpoint(&format!("panic:{COLLECTOR}:1")).await;

    let (status, report) = wait_until(
        "the collector running again after one restart",
        || healthz_report(&server),
        |(_, report)| {
            let collector = task(report, COLLECTOR);
            collector["state"] == "running" && collector["restarts"] == 1
        },
    )
    .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["status"], "ok", "{report}");
    // The failure a restart cured is still on record.
    assert_eq!(
        task(&report, COLLECTOR)["last_failure"],
        format!("panicked: failpoint: injected panic in task {COLLECTOR}"),
        "{report}"
    );

    let plain = http_get(&server.addr(), "/healthz").await.unwrap();
    assert_eq!((plain.status, plain.body.as_str()), (200, "ok\n"));
    assert_eq!(grpc_health(&server, "").await, "SERVING");
    // The restarted collector does its work.
    let capacity = wait_until(
        "a capacity sample from the restarted collector",
        || get_capacity(&server),
        Result::is_ok,
    )
    .await
    .unwrap();
    assert!(capacity.sample_time.is_some(), "{capacity:?}");

    let log = plain_log(&server);
    assert!(
        log.lines().any(|line| line.contains("task restarted")
            && line.contains(&format!("task=\"{COLLECTOR}\""))
            && line.contains("restarts=1")),
        "{log}"
    );
}

#[tokio::test]
async fn a_task_that_cannot_be_restarted_stops_pharosd_with_an_error() {
    // The serve task fails once pharosd runs; the journal writer fails during start-up,
    // where it is what keeps the catalog from being stored.
    for task in ["serve", "journal-writer"] {
        let data_dir = tempfile::tempdir().unwrap();
        let mut cmd = command("pharosd");
        cmd.env("PHAROS_FAILPOINT", format!("panic:{task}"))
            .arg("--listen")
            .arg(format!("127.0.0.1:{}", free_port()))
            .arg("--data-dir")
            .arg(data_dir.path());
        let out = run_command(cmd, COMMAND_TIMEOUT).await.unwrap();
        assert_eq!(out.status.code(), Some(1), "{task}: {out}");
        assert!(
            out.stderr.contains(&format!(
                "pharosd: task {task} failed and cannot be restarted safely: panicked: failpoint: injected panic in task {task}"
            )),
            "{task}: {out}"
        );
    }
}
