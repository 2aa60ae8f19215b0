//! `pharos export` against a real pharosd whose SQLite database was seeded with known
//! check results: the CSV and JSON-lines files hold exactly those rows, in order, and
//! nothing outside the time range. Events are compared with the journal as Watch
//! replays it.

use std::path::Path;
use std::time::Duration;

use pharos_e2e::grpc::{COMMAND_TIMEOUT, WatchMessage, WatchReader, command, pharosd};
use pharos_e2e::{CatalogFile, CmdOutput, Pharosd, run_cmd, run_command};
use pharos_proto::v1 as pb;
use serde_json::Value;
use tokio::time::Instant;

const SEEDED: i64 = 5_000;
const OLD: i64 = 100;

/// A catalog without checks, so the health engine adds no results of its own.
const CATALOG: &str = "environments:\n  - id: prod\nprojects:\n  - id: seed\n    deployments:\n      - environment: prod\n";

fn now_micros() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

/// Seeds `SEEDED` results 1 ms apart, starting 30 minutes ago, plus `OLD` results three
/// hours old; returns the first seeded row's time.
async fn seed(db: &Path) -> i64 {
    let base = now_micros() - 30 * 60 * 1_000_000;
    let old = now_micros() - 3 * 3600 * 1_000_000;
    let sql = format!(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {SEEDED})
         INSERT INTO check_results (check_id, at_micros, outcome, message, connect_micros, tls_micros, first_byte_micros, total_micros, measurements)
         SELECT 'seed/prod/c' || (i % 7), {base} + i * 1000,
                CASE i % 3 WHEN 0 THEN 'healthy' WHEN 1 THEN 'degraded' ELSE 'unhealthy' END,
                'run ' || i || CASE WHEN i % 5 = 0 THEN ', said \"no\"' || char(10) || 'second line' ELSE '' END,
                CASE WHEN i % 2 = 0 THEN NULL ELSE i END, NULL, i * 2, i * 3,
                CASE WHEN i % 4 = 0 THEN '{{\"http_status\":200}}' ELSE '{{}}' END
         FROM n;
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {OLD})
         INSERT INTO check_results (check_id, at_micros, outcome, message, total_micros, measurements)
         SELECT 'seed/prod/old', {old} + i, 'healthy', 'too old', 1, '{{}}' FROM n;"
    );
    let out = run_cmd("sqlite3", [db.to_str().unwrap(), &sql], COMMAND_TIMEOUT)
        .await
        .expect("run sqlite3 (scripts/install-test-deps.sh installs it)");
    out.expect_success().unwrap();
    base
}

/// The seeded row `i` as the export should print it: CSV fields and the JSON object.
fn expected(i: i64, base: i64) -> (Vec<String>, Value) {
    let micros = base + i * 1000;
    let time = chrono::DateTime::from_timestamp_micros(micros)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let outcome = ["healthy", "degraded", "unhealthy"][(i % 3) as usize];
    let message = if i % 5 == 0 {
        format!("run {i}, said \"no\"\nsecond line")
    } else {
        format!("run {i}")
    };
    let ms = |micros: i64| micros as f64 / 1000.0;
    let connect = (i % 2 != 0).then(|| ms(i));
    let measurements = if i % 4 == 0 {
        serde_json::json!({"http_status": 200.0})
    } else {
        serde_json::json!({})
    };
    let csv = vec![
        format!("seed/prod/c{}", i % 7),
        time.clone(),
        outcome.to_owned(),
        message.clone(),
        connect.map(|v| v.to_string()).unwrap_or_default(),
        String::new(),
        ms(i * 2).to_string(),
        ms(i * 3).to_string(),
        serde_json::to_string(&measurements).unwrap(),
    ];
    let json = serde_json::json!({
        "check_id": format!("seed/prod/c{}", i % 7),
        "time": time,
        "outcome": outcome,
        "message": message,
        "connect_ms": connect,
        "tls_ms": null,
        "first_byte_ms": ms(i * 2),
        "total_ms": ms(i * 3),
        "measurements": measurements,
    });
    (csv, json)
}

/// RFC 4180: fields separated by commas, quoted when they hold commas, quotes or line
/// breaks, quotes doubled inside.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => record.push(std::mem::take(&mut field)),
            (false, '\n') => {
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
            }
            (false, c) => field.push(c),
        }
    }
    assert!(
        field.is_empty() && record.is_empty(),
        "the file ends with a line break"
    );
    records
}

async fn pharos(home: &Path, args: &[&str]) -> CmdOutput {
    let mut cmd = command("pharos");
    cmd.env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .args(args);
    run_command(cmd, COMMAND_TIMEOUT).await.unwrap()
}

#[tokio::test]
async fn an_export_holds_exactly_the_seeded_rows() {
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().to_str().unwrap();
    pharosd(["--data-dir", data_dir, "migrate"])
        .await
        .unwrap()
        .expect_success()
        .unwrap();
    let base = seed(&data.path().join("pharos.db")).await;
    let catalog = CatalogFile::with_text(CATALOG).unwrap();
    let server = Pharosd::builder()
        .catalog(catalog.path())
        .data_dir(data.path())
        .spawn()
        .await
        .unwrap();
    let url = server.url();
    let home = tempfile::tempdir().unwrap();
    let file = home.path().join("checks.csv");

    let out = pharos(
        home.path(),
        &[
            "--server",
            &url,
            "export",
            "checks",
            "--since",
            "1h",
            "--format",
            "csv",
            "--output",
            file.to_str().unwrap(),
        ],
    )
    .await
    .expect_success()
    .unwrap();
    assert_eq!(out.stdout, "", "rows go to the file: {out}");
    assert!(
        out.stderr.contains(&format!(
            "exported {SEEDED} check results to {}",
            file.display()
        )),
        "{out}"
    );
    assert!(
        !out.stderr.contains('\r'),
        "no progress bar when stderr is not a terminal: {out}"
    );
    let no_partial: Vec<_> = std::fs::read_dir(home.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().ends_with(".partial"))
        .collect();
    assert!(no_partial.is_empty(), "{no_partial:?}");

    let records = parse_csv(&std::fs::read_to_string(&file).unwrap());
    assert_eq!(
        records[0],
        [
            "check_id",
            "time",
            "outcome",
            "message",
            "connect_ms",
            "tls_ms",
            "first_byte_ms",
            "total_ms",
            "measurements"
        ]
    );
    assert_eq!(
        records.len() as i64,
        SEEDED + 1,
        "header and every seeded row, none older"
    );
    for (n, record) in records[1..].iter().enumerate() {
        let (want, _) = expected(n as i64 + 1, base);
        assert_eq!(record, &want, "row {}", n + 1);
    }

    // JSON lines on stdout: the same rows.
    let out = pharos(
        home.path(),
        &[
            "--server", &url, "export", "checks", "--since", "1h", "--format", "json",
        ],
    )
    .await
    .expect_success()
    .unwrap();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len() as i64, SEEDED);
    for (n, line) in lines.iter().enumerate() {
        let value: Value = serde_json::from_str(line).unwrap();
        let (_, want) = expected(n as i64 + 1, base);
        assert_eq!(value, want, "line {}", n + 1);
    }

    // Without --since: the old rows too.
    let out = pharos(
        home.path(),
        &["--server", &url, "export", "checks", "--format", "json"],
    )
    .await
    .expect_success()
    .unwrap();
    assert_eq!(out.stdout.lines().count() as i64, SEEDED + OLD);
}

#[tokio::test]
async fn an_event_export_matches_the_journal() {
    let catalog = CatalogFile::with_text(CATALOG).unwrap();
    let server = Pharosd::builder()
        .catalog(catalog.path())
        .arg("--catalog-poll-interval")
        .arg("100ms")
        .arg("--progress-interval")
        .arg("200ms")
        .spawn()
        .await
        .unwrap();
    let url = server.url();
    // An invalid edit raises a catalog.invalid event; wait for it on the stream.
    let mut events = WatchReader::open(
        &url,
        pb::WatchRequest {
            since_revision: 0,
            topics: vec![pb::WatchTopic::Events as i32],
            ..Default::default()
        },
    )
    .await
    .unwrap();
    events.snapshot(Duration::from_secs(10)).await.unwrap();
    catalog.write("environments: [oops\n").unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match events.next(deadline).await.unwrap() {
            WatchMessage::Change(change) if change.key.starts_with("event/") => break,
            _ => {}
        }
    }

    // Every event in the journal, as a replay from revision 1 delivers it.
    let mut replay = WatchReader::open(
        &url,
        pb::WatchRequest {
            since_revision: 1,
            topics: vec![pb::WatchTopic::Events as i32],
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let mut journal = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match replay.next(deadline).await.unwrap() {
            WatchMessage::Change(change) => match change.object {
                Some(pb::change::Object::Event(event)) => journal.push(event),
                other => panic!("not an event: {other:?}"),
            },
            WatchMessage::Progress(_) => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(journal.iter().any(|e| e.kind == "catalog.invalid"));

    let home = tempfile::tempdir().unwrap();
    let out = pharos(
        home.path(),
        &["--server", &url, "export", "events", "--format", "json"],
    )
    .await
    .expect_success()
    .unwrap();
    let exported: Vec<Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // Revision 1 may itself be an event; the replay starts after it.
    let skipped = exported.len() - journal.len();
    assert!(
        skipped <= 1,
        "{} exported, {} replayed",
        exported.len(),
        journal.len()
    );
    for (value, event) in exported[skipped..].iter().zip(&journal) {
        assert_eq!(value["id"], event.id);
        assert_eq!(value["kind"], event.kind);
        assert_eq!(value["message"], event.message);
        assert_eq!(value["source"], event.source);
    }

    let out = pharos(
        home.path(),
        &["--server", &url, "export", "events", "--format", "csv"],
    )
    .await
    .expect_success()
    .unwrap();
    let records = parse_csv(&out.stdout);
    assert_eq!(records.len(), exported.len() + 1);
    assert_eq!(records[0][..3], ["time", "id", "kind"]);
    let invalid = journal
        .iter()
        .find(|e| e.kind == "catalog.invalid")
        .unwrap();
    let row = records
        .iter()
        .find(|r| r[1] == invalid.id)
        .expect("the catalog.invalid event is in the CSV");
    assert_eq!(row[2], "catalog.invalid");
    assert_eq!(
        row[7], invalid.message,
        "a multi-line message survives quoting"
    );
}
