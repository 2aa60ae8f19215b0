//! `pharos containers`, `pharos logs` (also following across a pharosd restart) and
//! `pharos restart --yes` against a real pharosd on a real Podman.

use std::time::Duration;

use pharos_e2e::grpc::{COMMAND_TIMEOUT, command, json_stdout};
use pharos_e2e::{CatalogFile, CmdOutput, Pharosd, StreamingChild, TestPodman, run_command};
use serde_json::Value;
use tokio::time::Instant;

const WAIT: Duration = Duration::from_secs(30);
const TOKEN: &str = "cli-operator-token";
/// `printf cli-operator-token | sha256sum`
const TOKEN_SHA256: &str = "ba3d2363dc14b7525c614f172e9c353a9a1541d75a3ebae2f7bd6c30f7611ea6";
/// Exits at once on SIGTERM, so a restart is quick.
const QUICK: &[&str] = &["sh", "-c", "trap 'exit 0' TERM; sleep 600 & wait"];

async fn pharos(server: &Pharosd, args: &[&str]) -> CmdOutput {
    let home = tempfile::tempdir().unwrap();
    let mut cmd = command("pharos");
    cmd.env("HOME", home.path())
        .env("XDG_CONFIG_HOME", home.path().join(".config"))
        .args(["--server", &server.url(), "--token", TOKEN])
        .args(args)
        .stdin(std::process::Stdio::null());
    run_command(cmd, COMMAND_TIMEOUT).await.unwrap()
}

/// A pharosd on `podman` whose catalog matches containers labelled `app=api`.
async fn pharosd_on(podman: &TestPodman) -> (Pharosd, CatalogFile) {
    let catalog = CatalogFile::with_text(
        "environments:\n  - id: prod\nprojects:\n  - id: api\n    deployments:\n      - environment: prod\n        containers: {app: api}\n",
    )
    .unwrap();
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
        .arg("--docker-host")
        .arg(podman.docker_host())
        .spawn()
        .await
        .unwrap();
    (server, catalog)
}

#[tokio::test]
async fn containers_lists_a_matched_container_and_restart_yes_succeeds() {
    let podman = TestPodman::start().unwrap();
    let id = podman.run(&[("app", "api")], QUICK).await.unwrap();
    let (server, _catalog) = pharosd_on(&podman).await;

    let deadline = Instant::now() + WAIT;
    let container = loop {
        let out = pharos(&server, &["containers", "-o", "json"]).await;
        let value: Value = json_stdout(&out.expect_success().unwrap()).unwrap();
        if let Some(found) = value["containers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id.as_str() && c["state"] == "running")
        {
            break found.clone();
        }
        assert!(Instant::now() < deadline, "container never listed: {value}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(container["deployment_id"], "api/prod");
    assert_eq!(container["project_id"], "api");

    let out = pharos(
        &server,
        &[
            "restart", "api/prod", "--reason", "cli test", "--yes", "-o", "json",
        ],
    )
    .await;
    let op = json_stdout(&out.expect_success().unwrap()).unwrap();
    assert_eq!(op["state"], "succeeded", "{op}");
    assert_eq!(op["reason"], "cli test");
    assert!(
        op["steps"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["state"] == "succeeded" || s["state"] == "skipped"),
        "{op}"
    );
    // The table view shows the container.
    let out = pharos(&server, &["containers"]).await;
    let text = out.expect_success().unwrap().stdout;
    assert!(text.contains("api/prod"), "{text}");
}

/// The counter a busybox container prints, one line every 50 ms: `n 0`, `n 1`, ...
const COUNTER: &[&str] = &[
    "sh",
    "-c",
    "trap 'exit 0' TERM; i=0; while :; do echo \"n $i\"; i=$((i+1)); sleep 0.05; done",
];

fn counter_value(line: &str) -> u64 {
    line.strip_prefix("n ")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("not a counter line: {line:?}"))
}

#[tokio::test]
async fn logs_tail_filters_and_json() {
    let podman = TestPodman::start().unwrap();
    let id = podman.run(&[("app", "api")], COUNTER).await.unwrap();
    let (server, _catalog) = pharosd_on(&podman).await;

    // Until the container is tracked and has counted past 19.
    let deadline = Instant::now() + WAIT;
    let tens = loop {
        let out = pharos(&server, &["logs", &id, "--regex", r"^n 1\d$"]).await;
        if out.status.success() && out.stdout.lines().count() == 10 {
            break out.stdout;
        }
        assert!(
            Instant::now() < deadline,
            "n 10..n 19 never logged: {out:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let tens: Vec<u64> = tens.lines().map(counter_value).collect();
    assert_eq!(tens, (10..20).collect::<Vec<_>>());

    // The last three lines as JSON lines with stable fields, consecutive.
    let out = pharos(&server, &["logs", &id, "--tail", "3", "-o", "json"]).await;
    let text = out.expect_success().unwrap().stdout;
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "{text}");
    for line in &lines {
        assert_eq!(line["stream"], "stdout", "{line}");
        assert_eq!(line["truncated"], false, "{line}");
        assert!(
            line["time"].as_str().is_some_and(|t| t.len() >= 20),
            "{line}"
        );
    }
    let values: Vec<u64> = lines
        .iter()
        .map(|l| counter_value(l["text"].as_str().unwrap()))
        .collect();
    assert!(values.windows(2).all(|w| w[1] == w[0] + 1), "{values:?}");

    // Refusals: one line and the exit code for each.
    let out = pharos(&server, &["logs", "no-such-container"]).await;
    assert_eq!(out.status.code(), Some(5), "{out:?}");
    assert!(out.stderr.contains("no tracked container"), "{out:?}");
    let out = pharos(&server, &["logs", &id, "--regex", "("]).await;
    assert_eq!(out.status.code(), Some(6), "{out:?}");
    assert!(out.stderr.contains("invalid regex"), "{out:?}");
}

#[tokio::test]
async fn logs_follow_goes_on_across_a_pharosd_restart_without_gaps_or_repeats() {
    let podman = TestPodman::start().unwrap();
    let id = podman.run(&[("app", "api")], COUNTER).await.unwrap();
    let (mut server, _catalog) = pharosd_on(&podman).await;
    let deadline = Instant::now() + WAIT;
    while !pharos(&server, &["logs", &id, "--tail", "1"])
        .await
        .stdout
        .starts_with("n ")
    {
        assert!(Instant::now() < deadline, "the container never logged");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let home = tempfile::tempdir().unwrap();
    let mut cmd = command("pharos");
    cmd.env("HOME", home.path())
        .env("XDG_CONFIG_HOME", home.path().join(".config"))
        .args(["--server", &server.url(), "--token", TOKEN])
        .args(["logs", &id, "-f", "--tail", "1"]);
    let mut follow = StreamingChild::spawn(cmd).unwrap();
    let first = counter_value(&follow.wait_for_line(WAIT, |_| true).await.unwrap());
    follow
        .wait_for_line(WAIT, |l| counter_value(l) >= first + 5)
        .await
        .unwrap();

    let status = server.terminate().await.unwrap();
    assert!(status.success(), "pharosd exit: {status}");
    // The container goes on counting while pharosd is down.
    let down_at = counter_value(&pharos_logs_tail_via_podman(&podman, &id).await);
    server.restart().await.unwrap();
    follow
        .wait_for_line(WAIT, |l| counter_value(l) >= down_at + 10)
        .await
        .unwrap();
    // The notice is printed before the lines that follow it, but read separately.
    let deadline = Instant::now() + WAIT;
    while !follow.stderr_text().contains("reconnected") {
        assert!(Instant::now() < deadline, "{}", follow.transcript());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    follow.kill().await.unwrap();

    let printed: Vec<u64> = follow
        .stdout_lines()
        .iter()
        .map(|l| counter_value(l))
        .collect();
    let transcript = follow.transcript();
    assert!(
        printed.windows(2).all(|w| w[1] == w[0] + 1),
        "every line once, in order: {printed:?}\n{transcript}"
    );
    let said = follow.stderr_text();
    assert!(said.contains("reconnecting"), "{said}");
}

/// The container's last line, read from Podman itself while pharosd is down.
async fn pharos_logs_tail_via_podman(podman: &TestPodman, id: &str) -> String {
    let out = podman.podman(&["logs", id]).await.unwrap();
    out.lines().last().unwrap_or_default().to_owned()
}
