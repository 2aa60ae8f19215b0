//! `pharos containers` and `pharos restart --yes` against a real pharosd on a real Podman.

use std::time::Duration;

use pharos_e2e::grpc::{COMMAND_TIMEOUT, command, json_stdout};
use pharos_e2e::{CatalogFile, CmdOutput, Pharosd, TestPodman, run_command};
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

#[tokio::test]
async fn containers_lists_a_matched_container_and_restart_yes_succeeds() {
    let podman = TestPodman::start().unwrap();
    let id = podman.run(&[("app", "api")], QUICK).await.unwrap();
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
