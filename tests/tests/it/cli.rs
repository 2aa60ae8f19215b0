//! The `pharos` CLI: `status` in both formats, an unreachable server, and `watch`
//! following live changes, also across a pharosd restart.

use pharos_e2e::grpc::{
    WatchMessage, WatchReader, command, json_stdout, overview, pharos, wait_until_demo_is_healthy,
};
use pharos_e2e::{CatalogFile, Pharosd, StreamingChild, free_port};
use serde_json::Value;
use std::time::Duration;
use tokio::time::Instant;

const WAIT: Duration = Duration::from_secs(10);

async fn pharosd_with(catalog: &CatalogFile) -> Pharosd {
    Pharosd::builder()
        .catalog(catalog.path())
        .arg("--catalog-poll-interval")
        .arg("100ms")
        // Idle streams get progress markers quickly: a fresh Watch ends its replay with one.
        .arg("--progress-interval")
        .arg("200ms")
        .spawn()
        .await
        .expect("start pharosd")
}

/// `pharos --server URL watch -o json`, read up to its snapshot_complete line; returns
/// the running watch and the snapshot's revision.
async fn cli_watch(server: &Pharosd) -> (StreamingChild, u64) {
    let mut cmd = command("pharos");
    cmd.args(["--server", &server.url(), "watch", "-o", "json"]);
    let mut watch = StreamingChild::spawn(cmd).unwrap();
    let (done, _) = watch
        .wait_for_json(WAIT, |v| v.get("snapshot_complete").is_some())
        .await
        .unwrap();
    (watch, done["snapshot_complete"].as_u64().unwrap())
}

/// Waits for the CLI to print the upsert of environment "local" named `name`.
async fn wait_for_environment_name(watch: &mut StreamingChild, name: &str) -> Value {
    let (change, _) = watch
        .wait_for_json(WAIT, |v| {
            v["key"] == "environment/local" && v["kind"] == "upsert" && v["summary"] == name
        })
        .await
        .unwrap();
    change
}

#[tokio::test]
async fn status_prints_a_table_with_the_counts() {
    let catalog = CatalogFile::demo().unwrap();
    let server = pharosd_with(&catalog).await;
    wait_until_demo_is_healthy(&server.url()).await.unwrap();

    let out = pharos(["--server", &server.url(), "status"])
        .await
        .unwrap()
        .expect_success()
        .unwrap();
    let lines: Vec<&str> = out.stdout.lines().collect();
    for expected in [
        format!("Server       {}", server.url()),
        "Projects     1".to_owned(),
        "Deployments  1".to_owned(),
        "Health       1 healthy, 0 degraded, 0 unhealthy, 0 unknown".to_owned(),
        "Ports        1 allocated, 99 available".to_owned(),
    ] {
        assert!(
            lines.contains(&expected.as_str()),
            "no {expected:?}:\n{out}"
        );
    }
    let row = lines
        .iter()
        .find(|line| line.starts_with("local "))
        .unwrap_or_else(|| panic!("no row for environment local:\n{out}"));
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(
        cells,
        ["local", "Local", "machine", "1", "1", "99", "healthy"],
        "{row}"
    );
}

#[tokio::test]
async fn status_json_has_stable_field_names() {
    let catalog = CatalogFile::demo().unwrap();
    let server = pharosd_with(&catalog).await;
    wait_until_demo_is_healthy(&server.url()).await.unwrap();

    let out = pharos(["--server", &server.url(), "status", "-o", "json"])
        .await
        .unwrap()
        .expect_success()
        .unwrap();
    let status = json_stdout(&out).unwrap();
    assert!(status["revision"].as_u64().unwrap() > 0, "{status}");
    assert_eq!(status["projects"], 1, "{status}");
    assert_eq!(status["deployments"], 1, "{status}");
    assert_eq!(status["health"]["unknown"], 0, "{status}");
    assert_eq!(status["health"]["healthy"], 1, "{status}");
    assert_eq!(status["ports_allocated"], 1, "{status}");
    assert_eq!(status["ports_available"], 99, "{status}");
    assert_eq!(status["environments"][0]["id"], "local", "{status}");
    assert_eq!(
        status["environments"][0]["name"], "Local machine",
        "{status}"
    );
}

#[tokio::test]
async fn an_unreachable_server_exits_3_with_one_line() {
    // Nothing listens on a port that was just free.
    let server = format!("http://127.0.0.1:{}", free_port());

    let out = pharos(["--server", &server, "status"]).await.unwrap();
    assert_eq!(out.status.code(), Some(3), "{out}");
    assert_eq!(out.stdout, "", "{out}");
    assert_eq!(out.stderr.lines().count(), 1, "one line: {out}");
    assert!(
        out.stderr
            .starts_with(&format!("pharos: cannot reach pharosd at {server}: ")),
        "{out}"
    );
    assert!(!out.stderr.contains("panicked"), "{out}");
    assert!(!out.stderr.contains("backtrace"), "{out}");
}

#[tokio::test]
async fn watch_prints_a_change_made_after_it_started() {
    let catalog = CatalogFile::demo().unwrap();
    let server = pharosd_with(&catalog).await;
    let (mut watch, snapshot_revision) = cli_watch(&server).await;

    catalog
        .replace("name: Local machine", "name: Lab rack")
        .unwrap();

    let change = wait_for_environment_name(&mut watch, "Lab rack").await;
    assert_eq!(change["topic"], "catalog", "{change}");
    assert!(change["revision"].as_u64().unwrap() > snapshot_revision);
}

#[tokio::test]
async fn watch_resumes_across_a_restart_without_gaps_or_duplicates() {
    let catalog = CatalogFile::demo().unwrap();
    let mut server = pharosd_with(&catalog).await;
    let (mut watch, snapshot_revision) = cli_watch(&server).await;

    // Edit 1, with pharosd up.
    catalog
        .replace("name: Local machine", "name: Edit one")
        .unwrap();
    wait_for_environment_name(&mut watch, "Edit one").await;

    // Edit 2, made while pharosd is down: applied when it starts again.
    let status = server.terminate().await.unwrap();
    assert!(status.success(), "pharosd exit: {status}");
    catalog.replace("name: Edit one", "name: Edit two").unwrap();
    server.restart().await.unwrap();
    wait_for_environment_name(&mut watch, "Edit two").await;

    // Edit 3, after the restart.
    catalog
        .replace("name: Edit two", "name: Edit three")
        .unwrap();
    wait_for_environment_name(&mut watch, "Edit three").await;
    // The edit's catalog.applied event is the last entry it journals.
    watch
        .wait_for_json(WAIT, |v| {
            v["kind"] == "append"
                && v["summary"]
                    .as_str()
                    .is_some_and(|s| s.starts_with("catalog applied"))
        })
        .await
        .unwrap();
    // The journal moves on by itself (the demo's checks probe this pharosd), so the
    // comparison stops at a head read now, once the CLI has printed it.
    let head = overview(&server.url()).await.unwrap().revision;
    watch
        .wait_for_json(WAIT, |v| v["revision"].as_u64().is_some_and(|r| r >= head))
        .await
        .unwrap();

    // Everything the CLI printed after the snapshot, up to that head.
    let printed: Vec<u64> = watch
        .stdout_lines()
        .iter()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .skip_while(|v| v.get("snapshot_complete").is_none())
        .skip(1)
        .map(|v| {
            v["revision"]
                .as_u64()
                .unwrap_or_else(|| panic!("no revision: {v}"))
        })
        .take_while(|&revision| revision <= head)
        .collect();
    let transcript = watch.transcript();
    assert!(
        printed.windows(2).all(|w| w[0] < w[1]),
        "revisions must strictly increase: {printed:?}\n{transcript}"
    );

    // What a fresh client replaying from the same snapshot revision gets, up to the head.
    let mut fresh = WatchReader::since(&server.url(), snapshot_revision)
        .await
        .unwrap();
    let deadline = Instant::now() + WAIT;
    let mut journal = Vec::new();
    loop {
        match fresh.next(deadline).await.unwrap() {
            WatchMessage::Change(change) if change.revision > head => break,
            WatchMessage::Change(change) => {
                journal.push(change.revision);
                if change.revision == head {
                    break;
                }
            }
            WatchMessage::Progress(at) if at >= head => break,
            WatchMessage::Progress(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(
        printed, journal,
        "the CLI should print exactly the journal from revision {snapshot_revision} to {head}\n{transcript}"
    );
    // The watch selects everything, so that is every revision after the snapshot's.
    let every: Vec<u64> = (snapshot_revision + 1..=head).collect();
    assert_eq!(journal, every);
}

/// The watch contract: OUT_OF_RANGE (with the trailer `pharos-resync: snapshot`) means
/// "reconnect with since_revision 0 and replace local state", and `pharos watch` has code
/// for that. Here the server comes back on an empty database, so resuming from the last
/// revision the CLI saw is refused with OUT_OF_RANGE, and the CLI should start over from a
/// fresh snapshot instead of giving up.
#[tokio::test]
async fn watch_starts_over_from_a_snapshot_when_the_server_lost_its_journal() {
    let catalog = CatalogFile::demo().unwrap();
    let mut server = pharosd_with(&catalog).await;
    let (mut watch, snapshot_revision) = cli_watch(&server).await;
    catalog
        .replace("name: Local machine", "name: Lab rack")
        .unwrap();
    let seen = wait_for_environment_name(&mut watch, "Lab rack").await;
    assert!(seen["revision"].as_u64().unwrap() > snapshot_revision);

    // The database is reset while pharosd is down: it restarts with a new journal whose
    // head is below the revision the CLI has seen.
    let status = server.terminate().await.unwrap();
    assert!(status.success(), "pharosd exit: {status}");
    for entry in std::fs::read_dir(server.data_dir()).unwrap() {
        std::fs::remove_file(entry.unwrap().path()).unwrap();
    }
    server.restart().await.unwrap();

    let (done, snapshot) = watch
        .wait_for_json(WAIT, |v| v.get("snapshot_complete").is_some())
        .await
        .unwrap();
    assert!(done["snapshot_complete"].as_u64().unwrap() > 0);
    assert!(
        snapshot.iter().any(|v| v["key"] == "environment/local"
            && v["kind"] == "snapshot"
            && v["summary"] == "Lab rack"),
        "the new snapshot has the current catalog\n{}",
        watch.transcript()
    );
}

#[tokio::test]
async fn status_shows_sql_kpis_and_firing_alerts() {
    let pg = pharos_e2e::TestPostgres::shared();
    let dsn = pg.unique_database("cli_kpis").unwrap();
    let database = dsn.rsplit('/').next().unwrap().to_owned();
    pg.psql(
        &database,
        "CREATE TABLE devices (state text); \
         INSERT INTO devices VALUES ('online'), ('online'), ('online'), ('stale')",
    )
    .unwrap();
    let catalog = CatalogFile::with_text(&format!(
        r#"environments:
  - id: local
projects:
  - id: fleet
    deployments:
      - environment: local
kpis:
  - name: fleet
    dsn: '{dsn}'
    interval: 1s
    query: SELECT state, count(*) AS devices FROM devices GROUP BY state
alert_rules:
  - name: stale-devices
    metric: devices
    labels: {{state: stale}}
    threshold: 0
"#
    ))
    .unwrap();
    let server = pharosd_with(&catalog).await;

    // The KPI runs once a second; the alert fires on its first value.
    let deadline = Instant::now() + WAIT;
    let status = loop {
        let out = pharos(["--server", &server.url(), "status", "-o", "json"])
            .await
            .unwrap()
            .expect_success()
            .unwrap();
        let status = json_stdout(&out).unwrap();
        if status["alerts_firing"] == 1 {
            break status;
        }
        assert!(Instant::now() < deadline, "{status}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let fleet = &status["kpis"][0];
    assert_eq!(fleet["kpi"], "fleet", "{status}");
    assert_eq!(fleet["error"], "", "{status}");
    let mut values: Vec<(String, f64)> = fleet["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                format!(
                    "{}{{state={}}}",
                    v["name"].as_str().unwrap(),
                    v["labels"]["state"].as_str().unwrap()
                ),
                v["value"].as_f64().unwrap(),
            )
        })
        .collect();
    values.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        values,
        [
            ("devices{state=online}".to_owned(), 3.0),
            ("devices{state=stale}".to_owned(), 1.0)
        ]
    );

    let out = pharos(["--server", &server.url(), "status"])
        .await
        .unwrap()
        .expect_success()
        .unwrap();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(lines.contains(&"Alerts       1 firing"), "{out}");
    let row = lines
        .iter()
        .find(|line| line.starts_with("fleet ") && line.contains("state=online"))
        .unwrap_or_else(|| panic!("no KPI row:\n{out}"));
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(
        &cells[..4],
        ["fleet", "devices", "state=online", "3"],
        "{row}"
    );
}
