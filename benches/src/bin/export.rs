//! Export of 1,000,000 check results: `pharos export checks --format csv` against a real
//! pharosd on SQLite, with the peak resident memory (VmHWM) of the CLI and of pharosd,
//! against the peer, `sqlite3 -csv` writing the same rows from the same file, in the
//! same run. A tenth of the rows is exported first, so the figures show whether memory
//! grows with the number of rows (it should not: both sides hold one page).
//!
//! Usage: export --pharosd PATH --pharos PATH [--rows 1000000]

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use clap::Parser;
use pharos_control_plane::journal::now_micros;
use pharos_control_plane::storage;
use sea_orm::ConnectionTrait;

#[derive(Parser)]
struct Args {
    #[arg(long)]
    pharosd: PathBuf,
    #[arg(long)]
    pharos: PathBuf,
    #[arg(long, default_value_t = 1_000_000)]
    rows: i64,
}

/// A catalog without checks: the only results in the database are the seeded ones.
const CATALOG: &str = "environments:\n  - id: prod\nprojects:\n  - id: bench\n    deployments:\n      - environment: prod\n";

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let dir = tempfile::tempdir()?;
    let db_path = dir.path().join("pharos.db");
    let db = storage::connect(&storage::default_url(dir.path())).await?;
    storage::migrate(&db).await?;
    let started = Instant::now();
    // Rows 1 ms apart, the last one at `seeded_at`: `--since` then selects a known share.
    let first = now_micros() - args.rows * 1000;
    db.execute_unprepared(&format!(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {rows})
         INSERT INTO check_results (check_id, at_micros, outcome, message, connect_micros, first_byte_micros, total_micros, measurements)
         SELECT 'project-' || (i % 100) || '/prod/check-' || (i % 1000), {first} + i * 1000,
                CASE WHEN i % 17 = 0 THEN 'unhealthy' ELSE 'healthy' END,
                CASE WHEN i % 17 = 0 THEN 'status 503, expected 200' ELSE 'ok' END,
                200 + i % 300, 900 + i % 4000, 1000 + i % 5000,
                CASE WHEN i % 2 = 0 THEN '{{\"http_status\":200}}' ELSE '{{}}' END
         FROM n",
        rows = args.rows
    ))
    .await
    .context("seeding check results")?;
    db.close().await?;
    let seeded_at = first + args.rows * 1000;
    eprintln!(
        "seeded {} check results in {:.1?}",
        args.rows,
        started.elapsed()
    );

    let catalog = dir.path().join("catalog.yaml");
    std::fs::write(&catalog, CATALOG)?;
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let mut server = Command::new(&args.pharosd)
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--data-dir")
        .arg(dir.path())
        .arg("--catalog")
        .arg(&catalog)
        .env("PHAROS_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting pharosd")?;
    let result = run(&args, &mut server, port, dir.path(), &db_path, seeded_at);
    let _ = server.kill();
    let _ = server.wait();
    result
}

fn run(
    args: &Args,
    server: &mut Child,
    port: u16,
    dir: &Path,
    db_path: &Path,
    seeded_at: i64,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        ensure!(server.try_wait()?.is_none(), "pharosd exited at start-up");
        ensure!(
            Instant::now() < deadline,
            "pharosd did not listen within 60 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let url = format!("http://127.0.0.1:{port}");
    let server_pid = server.id().to_string();
    let server_start_kib = hwm_kib(&server_pid)?;

    // A tenth of the rows, then all of them.
    let tenth_ms = args.rows / 10;
    let since_ms = (now_micros() - seeded_at) / 1000 + tenth_ms;
    let small_file = dir.join("small.csv");
    let small = measure(
        Command::new(&args.pharos).args([
            "--server",
            &url,
            "export",
            "checks",
            "--since",
            &format!("{since_ms}ms"),
            "--format",
            "csv",
            "--output",
            small_file.to_str().unwrap(),
        ]),
        None,
    )?;
    let small_rows = count_lines(&small_file)? - 1;
    let server_small_kib = hwm_kib(&server_pid)?;

    let full_file = dir.join("full.csv");
    let full = measure(
        Command::new(&args.pharos).args([
            "--server",
            &url,
            "export",
            "checks",
            "--format",
            "csv",
            "--output",
            full_file.to_str().unwrap(),
        ]),
        None,
    )?;
    let full_rows = count_lines(&full_file)? - 1;
    ensure!(
        full_rows == args.rows as u64,
        "pharos exported {full_rows} rows, expected {}",
        args.rows
    );
    let server_full_kib = hwm_kib(&server_pid)?;

    // The peer: sqlite3 writing the same rows and columns as CSV from the same file.
    let peer_file = dir.join("peer.csv");
    let peer = measure(
        Command::new("sqlite3").args([
            "-csv",
            "-header",
            db_path.to_str().unwrap(),
            "SELECT check_id, at_micros, outcome, message, connect_micros, tls_micros, \
             first_byte_micros, total_micros, measurements FROM check_results ORDER BY id",
        ]),
        Some(&peer_file),
    )?;
    let peer_rows = count_lines(&peer_file)? - 1;
    ensure!(
        peer_rows == full_rows,
        "sqlite3 wrote {peer_rows} rows, pharos {full_rows}"
    );

    let mib = |kib: u64| kib as f64 / 1024.0;
    let size = |path: &Path| std::fs::metadata(path).map(|m| m.len() as f64 / 1_048_576.0);
    println!("export of check results as CSV from SQLite; peak RSS is VmHWM of /proc/PID/status");
    println!(
        "{:<34} {:>10} {:>9} {:>10} {:>14}",
        "exporter", "rows", "wall", "file MiB", "peak RSS MiB"
    );
    println!(
        "{:<34} {:>10} {:>8.2}s {:>10.1} {:>14.1}",
        "pharos export (CLI), 1/10",
        small_rows,
        small.wall.as_secs_f64(),
        size(&small_file)?,
        mib(small.hwm_kib)
    );
    println!(
        "{:<34} {:>10} {:>8.2}s {:>10.1} {:>14.1}",
        "pharos export (CLI), all",
        full_rows,
        full.wall.as_secs_f64(),
        size(&full_file)?,
        mib(full.hwm_kib)
    );
    println!(
        "{:<34} {:>10} {:>9} {:>10} {:>14}",
        "pharosd before exports",
        "",
        "",
        "",
        format!("{:.1}", mib(server_start_kib))
    );
    println!(
        "{:<34} {:>10} {:>9} {:>10} {:>14}",
        "pharosd after the 1/10 export",
        small_rows,
        "",
        "",
        format!("{:.1}", mib(server_small_kib))
    );
    println!(
        "{:<34} {:>10} {:>9} {:>10} {:>14}",
        "pharosd after the full export",
        full_rows,
        "",
        "",
        format!("{:.1}", mib(server_full_kib))
    );
    println!(
        "{:<34} {:>10} {:>8.2}s {:>10.1} {:>14.1}",
        "peer: sqlite3 -csv",
        peer_rows,
        peer.wall.as_secs_f64(),
        size(&peer_file)?,
        mib(peer.hwm_kib)
    );
    println!(
        "ratio pharos/peer: wall {:.2}x, CLI peak RSS {:.2}x, CLI + pharosd growth {:.2}x; \
         10x the rows grew the CLI by {:.1} MiB and pharosd by {:.1} MiB",
        full.wall.as_secs_f64() / peer.wall.as_secs_f64(),
        full.hwm_kib as f64 / peer.hwm_kib as f64,
        (full.hwm_kib + server_full_kib.saturating_sub(server_start_kib)) as f64
            / peer.hwm_kib as f64,
        mib(full.hwm_kib.saturating_sub(small.hwm_kib)),
        mib(server_full_kib.saturating_sub(server_small_kib)),
    );
    Ok(())
}

struct Run {
    wall: Duration,
    hwm_kib: u64,
}

/// Runs `command` to completion, sampling its VmHWM every 2 ms (it only grows, so the
/// last sample is the peak up to a few milliseconds before exit).
fn measure(command: &mut Command, stdout_file: Option<&Path>) -> anyhow::Result<Run> {
    command.stdin(Stdio::null()).stderr(Stdio::piped());
    match stdout_file {
        Some(path) => command.stdout(std::fs::File::create(path)?),
        None => command.stdout(Stdio::null()),
    };
    let started = Instant::now();
    let mut child = command.spawn().with_context(|| format!("{command:?}"))?;
    let pid = child.id().to_string();
    let mut hwm = 0;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if let Ok(kib) = hwm_kib(&pid) {
            hwm = hwm.max(kib);
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let wall = started.elapsed();
    if !status.success() {
        let mut stderr = String::new();
        if let Some(pipe) = child.stderr.take() {
            for line in BufReader::new(pipe).lines() {
                stderr.push_str(&line?);
                stderr.push('\n');
            }
        }
        bail!("{command:?} failed ({status}): {stderr}");
    }
    Ok(Run { wall, hwm_kib: hwm })
}

/// Peak resident set size in KiB (`VmHWM` of /proc/PID/status).
fn hwm_kib(pid: &str) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("no VmHWM in {path}"))
}

fn count_lines(path: &Path) -> anyhow::Result<u64> {
    let file = std::fs::File::open(path)?;
    let mut count = 0;
    for line in BufReader::new(file).lines() {
        line?;
        count += 1;
    }
    Ok(count)
}
