//! The `pharos` CLI's contexts and views against a real pharosd: each run gets its own
//! XDG_CONFIG_HOME and HOME, so no user config leaks in or is written.

use std::path::Path;
use std::time::Duration;

use pharos_e2e::grpc::{COMMAND_TIMEOUT, command, json_stdout};
use pharos_e2e::{CatalogFile, CmdOutput, Pharosd, StreamingChild, free_port, run_command};
use serde_json::Value;
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::time::Instant;

const WAIT: Duration = Duration::from_secs(15);

/// `pharos args..` with `home` as HOME and XDG_CONFIG_HOME=`home/.config`.
async fn pharos_at(home: &Path, args: &[&str], envs: &[(&str, &str)]) -> CmdOutput {
    let mut cmd = command("pharos");
    cmd.env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .args(args);
    for (key, value) in envs {
        cmd.env(key, value);
    }
    run_command(cmd, COMMAND_TIMEOUT).await.unwrap()
}

fn home() -> TempDir {
    tempfile::Builder::new()
        .prefix("pharos-home-")
        .tempdir()
        .unwrap()
}

/// A catalog with one TCP check every 100 ms against `port`, unhealthy after one failure.
fn tcp_catalog(port: u16) -> CatalogFile {
    CatalogFile::with_text(&format!(
        "environments:\n  - id: prod\n    name: Production\nprojects:\n  - id: shop\n    name: Web shop\n    type: service\n    deployments:\n      - environment: prod\n        checks:\n          - {{name: port, interval: 100ms, timeout: 100ms, unhealthy_after: 1, tcp: {{address: '127.0.0.1:{port}'}}}}\n  - id: ledger\n    name: Ledger\n    type: service\n    deployments: []\n"
    ))
    .unwrap()
}

/// A loopback listener that accepts and drops connections until the task is aborted.
async fn open_port() -> (u16, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            drop(socket);
        }
    });
    (port, task)
}

async fn start(catalog: &CatalogFile) -> Pharosd {
    Pharosd::builder()
        .catalog(catalog.path())
        .arg("--progress-interval")
        .arg("200ms")
        .spawn()
        .await
        .unwrap()
}

/// Runs `pharos health -o json` until the check has `status`.
async fn wait_for_status(home: &Path, url: &str, check: &str, status: &str) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let out = pharos_at(home, &["--server", url, "health", "-o", "json"], &[]).await;
        let value = json_stdout(&out.expect_success().unwrap()).unwrap();
        if let Some(found) = value["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["check_id"] == check && c["status"] == status)
        {
            return found.clone();
        }
        assert!(Instant::now() < deadline, "{check} never {status}: {value}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn contexts_choose_the_server_and_flags_and_variables_override_them() {
    let catalog = CatalogFile::demo().unwrap();
    let server = start(&catalog).await;
    let home = home();
    let dead = format!("http://127.0.0.1:{}", free_port());

    // No config file yet: an empty list, and nothing written.
    let out = pharos_at(home.path(), &["context", "list", "-o", "json"], &[]).await;
    assert_eq!(
        json_stdout(&out).unwrap()["contexts"],
        serde_json::json!([])
    );

    let url = server.url();
    pharos_at(
        home.path(),
        &["context", "set", "lab", "--server", &url],
        &[],
    )
    .await
    .expect_success()
    .unwrap();
    pharos_at(
        home.path(),
        &["context", "set", "gone", "--server", &dead],
        &[],
    )
    .await
    .expect_success()
    .unwrap();
    let file = home.path().join(".config/pharos/config.yaml");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&file).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600, "the file holds tokens");

    // The first context set becomes the current one.
    let out = pharos_at(home.path(), &["status", "-o", "json"], &[]).await;
    assert_eq!(
        json_stdout(&out.expect_success().unwrap()).unwrap()["server"],
        url
    );

    pharos_at(home.path(), &["context", "use", "gone"], &[])
        .await
        .expect_success()
        .unwrap();
    let list = json_stdout(&pharos_at(home.path(), &["context", "list", "-o", "json"], &[]).await)
        .unwrap();
    let current: Vec<&Value> = list["contexts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["current"] == true)
        .map(|c| &c["name"])
        .collect();
    assert_eq!(current, [&Value::from("gone")], "{list}");
    let out = pharos_at(home.path(), &["status"], &[]).await;
    assert_eq!(out.status.code(), Some(3), "{out}");
    assert!(out.stderr.contains(&dead), "{out}");

    // --context, PHAROS_SERVER and --server each win over the current context.
    for (args, envs) in [
        (vec!["--context", "lab", "status", "-o", "json"], vec![]),
        (
            vec!["status", "-o", "json"],
            vec![("PHAROS_SERVER", url.as_str())],
        ),
        (
            vec!["--server", url.as_str(), "status", "-o", "json"],
            vec![],
        ),
    ] {
        let out = pharos_at(home.path(), &args, &envs).await;
        assert_eq!(
            json_stdout(&out.expect_success().unwrap()).unwrap()["server"],
            url
        );
    }

    // A context that does not exist: one line, exit 5; the file is unchanged.
    let before = std::fs::read_to_string(&file).unwrap();
    let out = pharos_at(home.path(), &["context", "use", "nope"], &[]).await;
    assert_eq!(out.status.code(), Some(5), "{out}");
    assert_eq!(out.stderr.lines().count(), 1, "{out}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), before);

    pharos_at(home.path(), &["context", "delete", "gone"], &[])
        .await
        .expect_success()
        .unwrap();
    let list = json_stdout(&pharos_at(home.path(), &["context", "list", "-o", "json"], &[]).await)
        .unwrap();
    assert_eq!(list["contexts"].as_array().unwrap().len(), 1, "{list}");
}

#[tokio::test]
async fn a_wrong_token_exits_4_with_one_line() {
    let catalog = CatalogFile::demo().unwrap();
    let server = start(&catalog).await;
    let home = home();
    let out = pharos_at(
        home.path(),
        &[
            "--server",
            &server.url(),
            "--token",
            "not-a-token",
            "projects",
        ],
        &[],
    )
    .await;
    assert_eq!(out.status.code(), Some(4), "{out}");
    assert_eq!(out.stderr.lines().count(), 1, "{out}");
    assert_eq!(out.stdout, "");
}

#[tokio::test]
async fn projects_and_project_in_table_wide_json_and_yaml() {
    let (port, _listener) = open_port().await;
    let catalog = tcp_catalog(port);
    let server = start(&catalog).await;
    let home = home();
    let url = server.url();

    let out = pharos_at(home.path(), &["--server", &url, "projects"], &[]).await;
    let out = out.expect_success().unwrap();
    assert!(
        !out.stdout.contains('\x1b'),
        "no colour when not a terminal: {out}"
    );
    let lines: Vec<Vec<&str>> = out
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(lines[0], ["ID", "NAME", "TYPE", "ENVIRONMENTS"], "{out}");
    assert!(
        lines.contains(&vec!["shop", "Web", "shop", "service", "prod"]),
        "{out}"
    );
    assert!(
        lines.contains(&vec!["ledger", "Ledger", "service"]),
        "{out}"
    );

    let out = pharos_at(
        home.path(),
        &["--server", &url, "projects", "-o", "wide"],
        &[],
    )
    .await;
    assert!(out.stdout.starts_with("ID "), "{out}");
    assert!(
        out.stdout.lines().next().unwrap().contains("DESCRIPTION"),
        "{out}"
    );

    let out = pharos_at(
        home.path(),
        &["--server", &url, "projects", "--env", "prod", "-o", "json"],
        &[],
    )
    .await;
    let value = json_stdout(&out).unwrap();
    let ids: Vec<&str> = value["projects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["shop"], "{value}");
    assert_eq!(
        value["projects"][0]["environments"],
        serde_json::json!(["prod"])
    );

    let out = pharos_at(
        home.path(),
        &["--server", &url, "project", "shop", "-o", "yaml"],
        &[],
    )
    .await;
    let out = out.expect_success().unwrap();
    assert!(out.stdout.contains("id: shop\n"), "{out}");
    assert!(out.stdout.contains("kind: tcp\n"), "{out}");
    assert!(
        out.stdout.contains(&format!("target: 127.0.0.1:{port}\n")),
        "{out}"
    );

    let out = pharos_at(home.path(), &["--server", &url, "project", "nope"], &[]).await;
    assert_eq!(out.status.code(), Some(5), "{out}");
    assert_eq!(out.stderr.lines().count(), 1, "{out}");
    assert!(out.stderr.starts_with("pharos: "), "{out}");

    let out = pharos_at(home.path(), &["--server", &url, "projects", "--bogus"], &[]).await;
    assert_eq!(out.status.code(), Some(2), "{out}");
    assert_eq!(out.stderr.lines().count(), 1, "{out}");
}

#[tokio::test]
async fn health_and_check_history_follow_a_real_port() {
    let (port, listener) = open_port().await;
    let catalog = tcp_catalog(port);
    let server = start(&catalog).await;
    let home = home();
    let url = server.url();

    let check = wait_for_status(home.path(), &url, "shop/prod/port", "healthy").await;
    assert_eq!(check["kind"], "tcp", "{check}");
    assert_eq!(check["last_result"]["outcome"], "healthy", "{check}");

    let out = pharos_at(home.path(), &["--server", &url, "health"], &[]).await;
    let row = out
        .stdout
        .lines()
        .find(|l| l.starts_with("shop "))
        .unwrap_or_else(|| panic!("{out}"));
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(
        &cells[..5],
        ["shop", "prod", "port", "tcp", "healthy"],
        "{row}"
    );

    // Closing the port fails the check.
    listener.abort();
    let _ = listener.await;
    wait_for_status(home.path(), &url, "shop/prod/port", "unhealthy").await;

    let out = pharos_at(
        home.path(),
        &["--server", &url, "health", "shop", "-o", "json"],
        &[],
    )
    .await;
    let project = json_stdout(&out).unwrap();
    assert_eq!(project["status"], "unhealthy", "{project}");
    let windows: Vec<&str> = project["checks"][0]["windows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["window"].as_str().unwrap())
        .collect();
    assert!(windows.contains(&"24h"), "{project}");

    // History, newest first, holds both outcomes.
    let deadline = Instant::now() + WAIT;
    let results = loop {
        let out = pharos_at(
            home.path(),
            &[
                "--server",
                &url,
                "checks",
                "history",
                "shop/prod/port",
                "--since",
                "10m",
                "--limit",
                "1000",
                "-o",
                "json",
            ],
            &[],
        )
        .await;
        let value = json_stdout(&out).unwrap();
        let results = value["results"].as_array().unwrap().clone();
        let outcomes: Vec<&str> = results
            .iter()
            .map(|r| r["outcome"].as_str().unwrap())
            .collect();
        if outcomes.contains(&"healthy") && outcomes.contains(&"unhealthy") {
            break results;
        }
        assert!(
            Instant::now() < deadline,
            "history never had both outcomes: {value}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(results[0]["outcome"], "unhealthy");
    let times: Vec<&str> = results
        .iter()
        .map(|r| r["time"].as_str().unwrap())
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] >= w[1]),
        "newest first: {times:?}"
    );

    let out = pharos_at(
        home.path(),
        &["--server", &url, "checks", "history", "shop/prod/nope"],
        &[],
    )
    .await;
    assert_eq!(out.status.code(), Some(5), "{out}");
    let out = pharos_at(
        home.path(),
        &[
            "--server",
            &url,
            "checks",
            "history",
            "shop/prod/port",
            "--since",
            "yesterday",
        ],
        &[],
    )
    .await;
    assert_eq!(out.status.code(), Some(2), "{out}");
}

/// `health -w -o json` prints the whole table as one JSON line per redraw; across a
/// pharosd restart it says so on stderr and resumes from its last revision.
#[tokio::test]
async fn health_watch_follows_changes_across_a_restart() {
    let (port, listener) = open_port().await;
    let catalog = tcp_catalog(port);
    let mut server = start(&catalog).await;
    let home = home();

    let mut cmd = command("pharos");
    cmd.env("HOME", home.path())
        .env("XDG_CONFIG_HOME", home.path().join(".config"))
        .args(["--server", &server.url(), "health", "-w", "-o", "json"]);
    let mut watch = StreamingChild::spawn(cmd).unwrap();
    let status_is = |want: &'static str| {
        move |v: &Value| {
            v["checks"].as_array().is_some_and(|c| {
                c.iter()
                    .any(|c| c["check_id"] == "shop/prod/port" && c["status"] == want)
            })
        }
    };
    watch
        .wait_for_json(WAIT, status_is("healthy"))
        .await
        .unwrap();

    server.terminate().await.unwrap();
    listener.abort();
    let _ = listener.await;
    server.restart().await.unwrap();
    let (table, _) = watch
        .wait_for_json(WAIT, status_is("unhealthy"))
        .await
        .unwrap();
    assert!(table["revision"].as_u64().unwrap() > 0);
    let stderr = watch.stderr_text();
    assert!(stderr.contains("reconnecting"), "{stderr}");
    assert!(
        stderr.contains("reconnected; resuming after revision"),
        "{stderr}"
    );
}

#[tokio::test]
async fn every_command_has_help_with_an_example_and_completions_exist() {
    let home = home();
    for path in [
        &[][..],
        &["status"],
        &["projects"],
        &["project"],
        &["health"],
        &["checks"],
        &["checks", "history"],
        &["watch"],
        &["top"],
        &["export"],
        &["context"],
        &["context", "list"],
        &["context", "use"],
        &["context", "set"],
        &["context", "delete"],
        &["context", "current"],
        &["completion"],
    ] {
        let mut args: Vec<&str> = path.to_vec();
        args.push("--help");
        let out = pharos_at(home.path(), &args, &[]).await;
        let out = out.expect_success().unwrap();
        assert!(
            out.stdout.contains("Example"),
            "no example in {path:?}: {out}"
        );
    }
    for shell in ["bash", "zsh", "fish"] {
        let out = pharos_at(home.path(), &["completion", shell], &[]).await;
        let out = out.expect_success().unwrap();
        for word in ["pharos", "context", "export", "health"] {
            assert!(out.stdout.contains(word), "{shell} completion lacks {word}");
        }
    }
    let out = pharos_at(home.path(), &["completion", "tcsh"], &[]).await;
    assert_eq!(out.status.code(), Some(2), "{out}");
    assert!(!home.path().join(".config").exists(), "nothing written");
}
