//! The probing benchmark: pharosd's health engine against a farm of HTTP targets on
//! 127.0.0.0/8, a new connection per probe, at 1,000 and 10,000 checks; and, in the same
//! run and at the same probe rate against the same farm, Debian's
//! prometheus-blackbox-exporter driven through `/probe?module=http_2xx`.
//!
//! Reports sustained probes/s, CPU seconds per 1,000 probes, scheduling lateness p50/p99
//! and RSS for pharos, CPU per 1,000 probes for the exporter, and the ratio.
//!
//! Usage: probe [--checks 1000,10000] [--interval 5s] [--warmup 10s] [--measure 30s]

use std::io::Write;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use pharos_control_plane::catalog::CatalogSource;
use pharos_control_plane::config::Settings;
use pharos_control_plane::server;
use pharos_control_plane::watch::WatchOptions;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

#[derive(Parser)]
struct Args {
    #[arg(long, value_delimiter = ',', default_value = "1000,10000")]
    checks: Vec<usize>,
    #[arg(long, value_parser = humantime::parse_duration, default_value = "5s")]
    interval: Duration,
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10s")]
    warmup: Duration,
    #[arg(long, value_parser = humantime::parse_duration, default_value = "30s")]
    measure: Duration,
}

const ADDRESSES: u8 = 20;
const PORTS: u16 = 5;

fn target_url(base_port: u16, i: usize) -> String {
    let address = 2 + (i % ADDRESSES as usize) as u8;
    let port = base_port + ((i / ADDRESSES as usize) % PORTS as usize) as u16;
    format!("http://127.0.0.{address}:{port}/health/{i}")
}

/// utime + stime of a process, from /proc/PID/stat.
fn cpu_seconds(pid: &str) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let fields: Vec<&str> = stat
        .rsplit_once(") ")
        .context("stat format")?
        .1
        .split(' ')
        .collect();
    let ticks: f64 = fields[11].parse::<f64>()? + fields[12].parse::<f64>()?;
    Ok(ticks / 100.0)
}

fn rss_mib(pid: &str) -> anyhow::Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .context("VmRSS")?;
    let kib: f64 = line
        .split_whitespace()
        .nth(1)
        .context("VmRSS value")?
        .parse()?;
    Ok(kib / 1024.0)
}

async fn start_farm() -> anyhow::Result<(Child, u16)> {
    // Ports from a range the kernel does not hand out as ephemeral ports (32768+).
    let base_port = 20_000 + (std::process::id() % 10_000) as u16;
    let exe = std::env::current_exe()?.with_file_name("probe_farm");
    let mut farm = Command::new(&exe)
        .args([
            "--addresses",
            &ADDRESSES.to_string(),
            "--ports",
            &PORTS.to_string(),
        ])
        .args(["--base-port", &base_port.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("start {}", exe.display()))?;
    let mut lines = BufReader::new(farm.stdout.take().context("farm stdout")?).lines();
    match lines.next_line().await? {
        Some(line) if line == "ready" => Ok((farm, base_port)),
        other => bail!("probe farm did not start: {other:?}"),
    }
}

struct Figures {
    probes_per_second: f64,
    cpu_per_1000: f64,
    p50_ms: f64,
    p99_ms: f64,
    rss_mib: f64,
}

async fn run_pharos(checks: usize, args: &Args) -> anyhow::Result<Figures> {
    let (_farm, base_port) = start_farm().await?;
    let dir = tempfile::tempdir()?;
    let catalog_path = dir.path().join("catalog.yaml");
    let mut catalog = std::fs::File::create(&catalog_path)?;
    writeln!(catalog, "environments:\n  - id: bench\nprojects:")?;
    for project in 0..checks.div_ceil(100) {
        writeln!(
            catalog,
            "  - id: p{project}\n    deployments:\n      - environment: bench\n        checks:"
        )?;
        for i in project * 100..((project + 1) * 100).min(checks) {
            writeln!(
                catalog,
                "          - {{name: c{i}, interval: {}ms, timeout: 2s, http: {{url: '{}'}}}}",
                args.interval.as_millis(),
                target_url(base_port, i)
            )?;
        }
    }
    drop(catalog);
    let settings = Settings {
        listen: "127.0.0.1:0".parse()?,
        data_dir: dir.path().join("data"),
        database_url: None,
        catalog: CatalogSource::File(catalog_path),
        tokens: Vec::new(),
        watch: WatchOptions::default(),
        ring_capacity: 16_384,
        journal_retention: 1_000_000,
        compaction_interval: Duration::from_secs(3600),
        catalog_poll_interval: Duration::from_secs(60),
        shutdown_deadline: Duration::from_secs(4),
        health: Default::default(),
        retention: Default::default(),
        history_flush: Duration::from_secs(1),
        web_root: None,
        containers: Default::default(),
    };
    let running = server::start(settings).await?;
    tokio::time::sleep(args.warmup).await;
    let stats = running.probe_stats.clone();
    stats.reset_lateness();
    let probes_before = stats.probes.load(Ordering::Relaxed);
    let cpu_before = cpu_seconds("self")?;
    let started = Instant::now();
    tokio::time::sleep(args.measure).await;
    let elapsed = started.elapsed().as_secs_f64();
    let probes = (stats.probes.load(Ordering::Relaxed) - probes_before) as f64;
    let cpu = cpu_seconds("self")? - cpu_before;
    let figures = Figures {
        probes_per_second: probes / elapsed,
        cpu_per_1000: cpu / probes * 1000.0,
        p50_ms: stats.lateness(0.5).unwrap_or_default().as_secs_f64() * 1000.0,
        p99_ms: stats.lateness(0.99).unwrap_or_default().as_secs_f64() * 1000.0,
        rss_mib: rss_mib("self")?,
    };
    running.shutdown().await;
    Ok(figures)
}

/// Drives the exporter at `checks / interval` probes per second for `measure`; returns
/// its CPU seconds per 1,000 probes and the probes that succeeded per second.
async fn run_blackbox(checks: usize, args: &Args) -> anyhow::Result<(f64, f64)> {
    let (_farm, base_port) = start_farm().await?;
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("blackbox.yml");
    std::fs::write(
        &config,
        "modules:\n  http_2xx:\n    prober: http\n    timeout: 2s\n    http:\n      preferred_ip_protocol: ip4\n",
    )?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let exporter = Command::new("prometheus-blackbox-exporter")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context(
            "start prometheus-blackbox-exporter (apt-get install prometheus-blackbox-exporter)",
        )?;
    let pid = exporter.id().context("exporter pid")?.to_string();
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(1024)
        .build_http();
    let ready = Instant::now();
    loop {
        let uri = format!("http://127.0.0.1:{port}/-/healthy").parse()?;
        if client.get(uri).await.is_ok() {
            break;
        }
        if ready.elapsed() > Duration::from_secs(10) {
            bail!("blackbox exporter did not start");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let rate = checks as f64 / args.interval.as_secs_f64();
    let succeeded = Arc::new(AtomicU64::new(0));
    // At most this many probes in flight: if the exporter cannot keep up, ticks are
    // skipped (and the achieved rate says so) rather than piling up connections.
    let in_flight = Arc::new(tokio::sync::Semaphore::new(512));
    let drive = |duration: Duration, count: bool| {
        let client = client.clone();
        let succeeded = succeeded.clone();
        let in_flight = in_flight.clone();
        async move {
            let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let end = Instant::now() + duration;
            let mut i = 0;
            while Instant::now() < end {
                ticker.tick().await;
                let Ok(permit) = in_flight.clone().try_acquire_owned() else {
                    continue;
                };
                let uri = format!(
                    "http://127.0.0.1:{port}/probe?module=http_2xx&target={}",
                    target_url(base_port, i % checks)
                );
                i += 1;
                let client = client.clone();
                let succeeded = succeeded.clone();
                tokio::spawn(async move {
                    let _permit = permit;
                    let Ok(uri) = uri.parse() else { return };
                    if let Ok(response) = client.get(uri).await
                        && let Ok(body) = response.into_body().collect().await
                        && body.to_bytes().windows(15).any(|w| w == b"probe_success 1")
                        && count
                    {
                        succeeded.fetch_add(1, Ordering::Relaxed);
                    }
                });
            }
        }
    };
    drive(args.warmup, false).await;
    let cpu_before = cpu_seconds(&pid)?;
    let started = Instant::now();
    drive(args.measure, true).await;
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds(&pid)? - cpu_before;
    let probes = succeeded.load(Ordering::Relaxed) as f64;
    drop(exporter);
    Ok((cpu / probes * 1000.0, probes / elapsed))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    println!(
        "probing benchmark: HTTP checks every {:?}, a new connection per probe, {} targets on 127.0.0.2-{}",
        args.interval,
        u16::from(ADDRESSES) * PORTS,
        1 + ADDRESSES
    );
    println!(
        "{:<12} {:>8} {:>10} {:>12} {:>14} {:>14} {:>9}",
        "prober", "checks", "probes/s", "cpu s/1000", "lateness p50", "lateness p99", "RSS MiB"
    );
    let mut last = None;
    for &checks in &args.checks {
        let f = run_pharos(checks, &args).await?;
        println!(
            "{:<12} {:>8} {:>10.0} {:>12.3} {:>11.1} ms {:>11.1} ms {:>9.0}",
            "pharos", checks, f.probes_per_second, f.cpu_per_1000, f.p50_ms, f.p99_ms, f.rss_mib
        );
        last = Some((checks, f));
    }
    let (checks, pharos) = last.context("no --checks given")?;
    let (blackbox_cpu, blackbox_rate) = run_blackbox(checks, &args).await?;
    println!(
        "{:<12} {:>8} {:>10.0} {:>12.3} {:>14} {:>14} {:>9}",
        "blackbox", checks, blackbox_rate, blackbox_cpu, "-", "-", "-"
    );
    println!(
        "CPU per probe, pharos / blackbox_exporter at {checks} checks: {:.2} (target at most 0.33); p99 lateness {:.1} ms (target under 100 ms)",
        pharos.cpu_per_1000 / blackbox_cpu,
        pharos.p99_ms
    );
    println!(
        "pharos' CPU includes writing every result and its rollups to SQLite; the exporter stores nothing."
    );
    Ok(())
}
