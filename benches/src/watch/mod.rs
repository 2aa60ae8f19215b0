//! `pharos-bench watch`: the Watch path under many concurrent streams.
//!
//! For each scenario and each server (pharosd, then the broadcast peer) it starts a fresh
//! `pharos-bench watch-server` child, reads the child's RSS, opens the streams, waits for
//! them to be subscribed and idle, reads the RSS again (memory per idle stream), then has
//! the child publish at a fixed rate and records, for every change received, the time
//! from commit (pharosd: `Change.commit_time`; the peer: its publish timestamp) to
//! receipt. Both processes share the machine's clock.

mod client;
pub mod server;

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use serde::Serialize;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::time::{Instant, sleep, timeout};

use crate::procfs;
use client::{Progress, StreamOutcome};
use server::Kind;

/// The targets for pharosd.
const TARGET_P99_MS: f64 = 100.0;
const TARGET_KIB_PER_STREAM: f64 = 20.0;

#[derive(Debug, Args, Serialize)]
pub struct WatchArgs {
    /// Concurrent filtered Watch streams (stream i watches project i % projects)
    #[arg(long, default_value_t = 10_000)]
    streams: usize,
    /// HTTP/2 connections the streams are spread over
    #[arg(long, default_value_t = 100)]
    connections: usize,
    /// Projects the published changes are spread over, round-robin
    #[arg(long, default_value_t = 1000)]
    projects: usize,
    /// Changes published per second
    #[arg(long, default_value_t = 1000.0)]
    rate: f64,
    /// How long to publish, in seconds
    #[arg(long, default_value_t = 20.0)]
    seconds: f64,
    /// Unfiltered streams of the second scenario, each receiving every change (0 skips it)
    #[arg(long, default_value_t = 100)]
    firehose_streams: usize,
    /// Scenarios to run, in order
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "filtered,firehose"
    )]
    scenarios: Vec<ScenarioKind>,
    /// Servers to run, in order
    #[arg(long, value_enum, value_delimiter = ',', default_value = "pharos,peer")]
    servers: Vec<Kind>,
    /// Where to write the results as JSON
    #[arg(long, default_value = "bench-results/watch.json")]
    out: PathBuf,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
enum ScenarioKind {
    /// --streams streams, each filtered to one project
    Filtered,
    /// --firehose-streams unfiltered streams, each receiving every change
    Firehose,
}

/// One scenario: how many streams, and whether each watches one project or everything.
#[derive(Clone, Copy, Debug, Serialize)]
struct Scenario {
    name: &'static str,
    streams: usize,
    /// Some(projects): stream i watches project i % projects; None: every change.
    filtered_over: Option<usize>,
}

#[derive(Clone, Copy, Debug, Default, Serialize)]
struct Latency {
    count: usize,
    mean_ms: f64,
    p50_ms: f64,
    p90_ms: f64,
    p99_ms: f64,
    p999_ms: f64,
    max_ms: f64,
}

impl Latency {
    /// Nearest-rank percentiles of `micros`, which this sorts.
    fn of(micros: &mut [u32]) -> Latency {
        if micros.is_empty() {
            return Latency::default();
        }
        micros.sort_unstable();
        let at = |p: f64| {
            let rank = ((p * micros.len() as f64).ceil() as usize).clamp(1, micros.len());
            f64::from(micros[rank - 1]) / 1000.0
        };
        let sum: u64 = micros.iter().map(|&m| u64::from(m)).sum();
        Latency {
            count: micros.len(),
            mean_ms: sum as f64 / micros.len() as f64 / 1000.0,
            p50_ms: at(0.50),
            p90_ms: at(0.90),
            p99_ms: at(0.99),
            p999_ms: at(0.999),
            max_ms: at(1.0),
        }
    }
}

#[derive(Debug, Serialize)]
struct RunResult {
    scenario: &'static str,
    server: Kind,
    streams: usize,
    connections: usize,
    /// Projects the streams are filtered over; absent: unfiltered.
    filtered_over_projects: Option<usize>,
    rate_requested: f64,
    published: u64,
    publish_failed: u64,
    publish_seconds: f64,
    rate_achieved: f64,
    expected_deliveries: u64,
    received: u64,
    deliveries_per_s: f64,
    /// Streams that ended before the benchmark stopped them, and the first reason.
    stream_errors: usize,
    first_stream_error: Option<String>,
    /// Commit (pharosd) or publish (peer) to client receipt.
    latency: Latency,
    /// pharosd only: from the `append` call (before the journal writer queue and the
    /// SQLite commit) to client receipt, the figure comparable with the peer's.
    publish_to_receipt: Option<Latency>,
    /// Seconds from the first connection to every stream subscribed.
    setup_seconds: f64,
    rss_before_kib: u64,
    rss_idle_kib: u64,
    rss_end_kib: u64,
    /// (idle RSS - RSS before any stream) / streams.
    kib_per_idle_stream: f64,
    /// Server process CPU time (user + system) from `start` until the last delivery.
    server_cpu_seconds: f64,
    /// This process's (the client's) CPU time over the same window.
    client_cpu_seconds: f64,
    /// Encoded size of one change message on the wire (gRPC message body).
    message_bytes: Option<usize>,
}

#[derive(Debug, Serialize)]
struct Comparison {
    scenario: &'static str,
    p99_ratio: Option<f64>,
    memory_ratio: Option<f64>,
    p99_target_ms: f64,
    memory_target_kib: f64,
    p99_pass: Option<bool>,
    memory_pass: Option<bool>,
}

#[derive(Debug, Serialize)]
struct Report<'a> {
    benchmark: &'static str,
    args: &'a WatchArgs,
    cpus: usize,
    /// 1-minute load average before and after the run: other load skews the figures.
    load_average: [f64; 2],
    results: &'a [RunResult],
    comparisons: Vec<Comparison>,
}

pub async fn run(args: WatchArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.streams > 0, "--streams must be at least 1");
    anyhow::ensure!(args.connections > 0, "--connections must be at least 1");
    anyhow::ensure!(args.projects > 0, "--projects must be at least 1");
    anyhow::ensure!(args.rate > 0.0, "--rate must be positive");
    anyhow::ensure!(args.seconds > 0.0, "--seconds must be positive");
    anyhow::ensure!(!args.servers.is_empty(), "--servers names no server");
    tokio::select! {
        result = run_all(&args) => result,
        _ = tokio::signal::ctrl_c() => {
            // Dropping `run_all` drops the children, which are killed on drop.
            anyhow::bail!("interrupted")
        }
    }
}

async fn run_all(args: &WatchArgs) -> anyhow::Result<()> {
    let scenarios: Vec<Scenario> = args
        .scenarios
        .iter()
        .filter_map(|kind| match kind {
            ScenarioKind::Filtered => Some(Scenario {
                name: "filtered",
                streams: args.streams,
                filtered_over: Some(args.projects),
            }),
            ScenarioKind::Firehose => (args.firehose_streams > 0).then_some(Scenario {
                name: "firehose",
                streams: args.firehose_streams,
                filtered_over: None,
            }),
        })
        .collect();
    anyhow::ensure!(!scenarios.is_empty(), "no scenario to run");
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    let load_before = load_average();
    eprintln!(
        "watch benchmark: {cpus} cpus, {} changes/s for {} s over {} projects; load average {load_before:.2}",
        args.rate, args.seconds, args.projects,
    );
    let mut results = Vec::new();
    for scenario in &scenarios {
        for &kind in &args.servers {
            eprintln!(
                "== {} / {}: {} streams over {} connections",
                scenario.name,
                kind.name(),
                scenario.streams,
                args.connections.min(scenario.streams)
            );
            let result = run_one(args, *scenario, kind)
                .await
                .with_context(|| format!("{} scenario against {}", scenario.name, kind.name()))?;
            eprintln!(
                "   {} of {} delivered, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms, {:.2} KiB/idle stream, server CPU {:.2} s",
                result.received,
                result.expected_deliveries,
                result.latency.p50_ms,
                result.latency.p99_ms,
                result.latency.max_ms,
                result.kib_per_idle_stream,
                result.server_cpu_seconds
            );
            results.push(result);
        }
    }
    let comparisons = scenarios
        .iter()
        .map(|scenario| compare(scenario.name, &results))
        .collect();
    let report = Report {
        benchmark: "watch",
        args,
        cpus,
        load_average: [load_before, load_average()],
        results: &results,
        comparisons,
    };
    print_table(&report);
    write_json(&args.out, &report)?;
    println!("\nresults written to {}", args.out.display());
    Ok(())
}

async fn run_one(args: &WatchArgs, scenario: Scenario, kind: Kind) -> anyhow::Result<RunResult> {
    let mut server = ChildServer::spawn(kind, args.projects).await?;
    let pid = server.pid.clone();
    let rss_before = settled_rss(&pid).await?;

    let setup_started = Instant::now();
    let connections = args.connections.min(scenario.streams);
    let channels = client::connect(server.addr, connections).await?;
    let fanout_per_change = |published: u64| -> u64 {
        expected_deliveries(published, scenario.streams, scenario.filtered_over)
    };
    let planned = (args.rate * args.seconds).ceil() as u64;
    let expected_per_stream = (fanout_per_change(planned) / scenario.streams as u64) as usize;
    let progress = Arc::new(Progress::default());
    let mut tasks = client::spawn_streams(
        kind,
        &channels,
        scenario.streams,
        scenario.filtered_over,
        expected_per_stream,
        &progress,
    );
    loop {
        let ready = progress.ready.load(Ordering::Relaxed);
        let failed = progress.failed.load(Ordering::Relaxed);
        if failed > 0 {
            let error = progress.first_error.lock().ok().and_then(|e| e.clone());
            anyhow::bail!(
                "{failed} of {} streams failed while opening: {}",
                scenario.streams,
                error.unwrap_or_default()
            );
        }
        if ready == scenario.streams {
            break;
        }
        anyhow::ensure!(
            setup_started.elapsed() < Duration::from_secs(120),
            "only {ready} of {} streams subscribed after 120 s",
            scenario.streams
        );
        sleep(Duration::from_millis(20)).await;
    }
    let setup_seconds = setup_started.elapsed().as_secs_f64();
    let rss_idle = settled_rss(&pid).await?;
    eprintln!(
        "   {} streams subscribed in {setup_seconds:.2} s; server RSS {rss_before} KiB before, {rss_idle} KiB idle",
        scenario.streams
    );

    let server_cpu_start = procfs::cpu_seconds(&pid)?;
    let client_cpu_start = procfs::cpu_seconds("self")?;
    server.command(&format!("start {}", args.rate)).await?;
    sleep(Duration::from_secs_f64(args.seconds)).await;
    let stopped = server.stop_publishing().await?;
    let expected = fanout_per_change(stopped.published);
    // Everything published is committed: wait for what is still on the wire.
    let drain_started = Instant::now();
    let mut last = (progress.received.load(Ordering::Relaxed), Instant::now());
    loop {
        let received = progress.received.load(Ordering::Relaxed);
        if received >= expected
            || drain_started.elapsed() > Duration::from_secs(15)
            || last.1.elapsed() > Duration::from_secs(2)
        {
            break;
        }
        if received != last.0 {
            last = (received, Instant::now());
        }
        sleep(Duration::from_millis(10)).await;
    }
    let server_cpu_seconds = procfs::cpu_seconds(&pid)? - server_cpu_start;
    let client_cpu_seconds = procfs::cpu_seconds("self")? - client_cpu_start;
    let rss_end = procfs::rss_kib(&pid)?;

    progress.stop.cancel();
    let mut outcomes: Vec<StreamOutcome> = Vec::with_capacity(scenario.streams);
    while let Some(outcome) = tasks.join_next().await {
        outcomes.push(outcome.context("stream task panicked")?);
    }
    drop(channels);
    server.shutdown().await;

    let received = progress.received.load(Ordering::Relaxed);
    let mut latencies: Vec<u32> = Vec::with_capacity(received as usize);
    let mut publish_latencies: Vec<u32> = Vec::new();
    for outcome in &outcomes {
        latencies.extend_from_slice(&outcome.latencies);
        publish_latencies.extend_from_slice(&outcome.publish_latencies);
    }
    let stream_errors = outcomes.iter().filter(|o| o.error.is_some()).count();
    let first_stream_error = outcomes.iter().find_map(|o| o.error.clone());
    let message_bytes = outcomes.iter().find_map(|o| o.message_bytes);
    let delivered_over = stopped.seconds.max(f64::EPSILON);
    Ok(RunResult {
        scenario: scenario.name,
        server: kind,
        streams: scenario.streams,
        connections,
        filtered_over_projects: scenario.filtered_over,
        rate_requested: args.rate,
        published: stopped.published,
        publish_failed: stopped.failed,
        publish_seconds: stopped.seconds,
        rate_achieved: stopped.published as f64 / delivered_over,
        expected_deliveries: expected,
        received,
        deliveries_per_s: received as f64 / delivered_over,
        stream_errors,
        first_stream_error,
        latency: Latency::of(&mut latencies),
        publish_to_receipt: (kind == Kind::Pharos).then(|| Latency::of(&mut publish_latencies)),
        setup_seconds,
        rss_before_kib: rss_before,
        rss_idle_kib: rss_idle,
        rss_end_kib: rss_end,
        kib_per_idle_stream: (rss_idle as f64 - rss_before as f64) / scenario.streams as f64,
        server_cpu_seconds,
        client_cpu_seconds,
        message_bytes,
    })
}

/// How many deliveries `published` round-robin changes make: change n concerns project
/// n % projects, which `streams / projects` streams (one more for the first
/// `streams % projects` projects) watch; unfiltered, every stream gets every change.
fn expected_deliveries(published: u64, streams: usize, filtered_over: Option<usize>) -> u64 {
    let Some(projects) = filtered_over else {
        return published * streams as u64;
    };
    let (projects, streams) = (projects as u64, streams as u64);
    let watchers = |project: u64| streams / projects + u64::from(project < streams % projects);
    let full_rounds = published / projects;
    let rest: u64 = (0..published % projects).map(watchers).sum();
    full_rounds * streams + rest
}

/// The 1-minute load average (0 when unreadable).
fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next()?.parse().ok())
        .unwrap_or_default()
}

/// RSS once it stops moving: read every 250 ms until two reads are within 0.5% (and
/// 256 KiB), or for at most 3 s.
async fn settled_rss(pid: &str) -> anyhow::Result<u64> {
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut last = procfs::rss_kib(pid)?;
    loop {
        sleep(Duration::from_millis(250)).await;
        let now = procfs::rss_kib(pid)?;
        if now.abs_diff(last) <= (last / 200).min(256) || Instant::now() >= deadline {
            return Ok(now);
        }
        last = now;
    }
}

struct Stopped {
    published: u64,
    failed: u64,
    seconds: f64,
}

/// A `pharos-bench watch-server` child, killed if dropped before `shutdown`.
struct ChildServer {
    /// Declared before the data directory: dropping kills the child, then removes it.
    child: Child,
    pid: String,
    stdin: Option<ChildStdin>,
    stdout: Lines<BufReader<ChildStdout>>,
    addr: SocketAddr,
    /// pharosd's data directory, removed on drop even if the child had to be killed.
    _data_dir: Option<tempfile::TempDir>,
}

impl ChildServer {
    async fn spawn(kind: Kind, projects: usize) -> anyhow::Result<ChildServer> {
        let exe = std::env::current_exe().context("locating pharos-bench")?;
        let data_dir = match kind {
            Kind::Pharos => Some(server::temp_dir()?),
            Kind::Peer => None,
        };
        let mut command = Command::new(exe);
        command
            .args(["watch-server", "--kind", kind.name()])
            .args(["--listen", "127.0.0.1:0"])
            .args(["--projects", &projects.to_string()]);
        if let Some(dir) = &data_dir {
            command.arg("--data-dir").arg(dir.path().join("data"));
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .context("starting pharos-bench watch-server")?;
        let pid = child
            .id()
            .context("watch-server exited at once")?
            .to_string();
        let stdin = child.stdin.take();
        let mut stdout = BufReader::new(child.stdout.take().context("no child stdout")?).lines();
        let line = timeout(Duration::from_secs(60), stdout.next_line())
            .await
            .context("watch-server not ready after 60 s")??
            .context("watch-server exited before it was ready")?;
        let addr = line
            .strip_prefix("ready ")
            .and_then(|addr| addr.parse().ok())
            .with_context(|| format!("watch-server said {line:?}, expected `ready ADDR`"))?;
        Ok(ChildServer {
            child,
            pid,
            stdin,
            stdout,
            addr,
            _data_dir: data_dir,
        })
    }

    async fn command(&mut self, command: &str) -> anyhow::Result<()> {
        let stdin = self.stdin.as_mut().context("watch-server stdin closed")?;
        stdin.write_all(format!("{command}\n").as_bytes()).await?;
        stdin.flush().await?;
        Ok(())
    }

    /// Stops publishing; returns once every published change is committed.
    async fn stop_publishing(&mut self) -> anyhow::Result<Stopped> {
        self.command("stop").await?;
        let line = timeout(Duration::from_secs(60), self.stdout.next_line())
            .await
            .context("watch-server did not confirm `stop` within 60 s")??
            .context("watch-server exited")?;
        let fields: Vec<&str> = line.split_whitespace().collect();
        match fields.as_slice() {
            ["stopped", published, failed, seconds] => Ok(Stopped {
                published: published.parse()?,
                failed: failed.parse()?,
                seconds: seconds.parse()?,
            }),
            _ => anyhow::bail!("watch-server said {line:?}, expected `stopped P F S`"),
        }
    }

    /// Closes stdin (the child exits) and waits up to 10 s before killing it.
    async fn shutdown(mut self) {
        drop(self.stdin.take());
        if timeout(Duration::from_secs(10), self.child.wait())
            .await
            .is_err()
        {
            eprintln!("watch-server {} did not exit: killing it", self.pid);
            let _ = self.child.kill().await;
        }
    }
}

fn compare(scenario: &'static str, results: &[RunResult]) -> Comparison {
    let find = |kind: Kind| {
        results
            .iter()
            .find(|r| r.scenario == scenario && r.server == kind)
    };
    let (pharos, peer) = (find(Kind::Pharos), find(Kind::Peer));
    let ratio = |a: f64, b: f64| (b > 0.0 && a >= 0.0).then(|| a / b);
    Comparison {
        scenario,
        p99_ratio: pharos
            .zip(peer)
            .and_then(|(a, b)| ratio(a.latency.p99_ms, b.latency.p99_ms)),
        memory_ratio: pharos
            .zip(peer)
            .and_then(|(a, b)| ratio(a.kib_per_idle_stream, b.kib_per_idle_stream)),
        p99_target_ms: TARGET_P99_MS,
        memory_target_kib: TARGET_KIB_PER_STREAM,
        // A run that lost deliveries does not pass, however fast the rest arrived.
        p99_pass: pharos
            .map(|r| r.latency.p99_ms < TARGET_P99_MS && r.received >= r.expected_deliveries),
        // The memory target is per stream among many sharing connections; with one
        // stream per connection (the firehose) the figure is mostly the connection.
        memory_pass: pharos
            .filter(|r| r.streams > r.connections)
            .map(|r| r.kib_per_idle_stream < TARGET_KIB_PER_STREAM),
    }
}

fn print_table(report: &Report<'_>) {
    let mut out = String::new();
    let line = |out: &mut String, cells: [String; 13]| {
        let widths = [9, 7, 7, 8, 10, 19, 8, 8, 8, 10, 8, 8, 6];
        for (cell, width) in cells.iter().zip(widths) {
            out.push_str(&format!("{cell:>width$} "));
        }
        out.push('\n');
    };
    out.push('\n');
    line(
        &mut out,
        [
            "scenario",
            "server",
            "streams",
            "pub/s",
            "deliver/s",
            "received/expected",
            "p50 ms",
            "p99 ms",
            "max ms",
            "KiB/strm",
            "srv CPU",
            "cli CPU",
            "msg B",
        ]
        .map(str::to_owned),
    );
    for r in report.results {
        line(
            &mut out,
            [
                r.scenario.to_owned(),
                r.server.name().to_owned(),
                r.streams.to_string(),
                format!("{:.0}", r.rate_achieved),
                format!("{:.0}", r.deliveries_per_s),
                format!("{}/{}", r.received, r.expected_deliveries),
                format!("{:.2}", r.latency.p50_ms),
                format!("{:.2}", r.latency.p99_ms),
                format!("{:.2}", r.latency.max_ms),
                format!("{:.2}", r.kib_per_idle_stream),
                format!("{:.2}s", r.server_cpu_seconds),
                format!("{:.2}s", r.client_cpu_seconds),
                r.message_bytes.map_or("-".to_owned(), |b| b.to_string()),
            ],
        );
    }
    for r in report.results {
        if let Some(publish) = &r.publish_to_receipt {
            out.push_str(&format!(
                "{} / {}: publish (append call) to receipt p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms\n",
                r.scenario, r.server.name(), publish.p50_ms, publish.p99_ms, publish.max_ms
            ));
        }
        if r.stream_errors > 0 || r.publish_failed > 0 {
            out.push_str(&format!(
                "{} / {}: {} streams ended early ({}), {} publishes failed\n",
                r.scenario,
                r.server.name(),
                r.stream_errors,
                r.first_stream_error.as_deref().unwrap_or("-"),
                r.publish_failed
            ));
        }
    }
    let ratio = |value: Option<f64>| value.map_or("n/a".to_owned(), |v| format!("{v:.2}x"));
    let verdict = |pass: Option<bool>| match pass {
        Some(true) => "PASS",
        Some(false) => "MISS",
        None => "n/a",
    };
    for c in &report.comparisons {
        out.push_str(&format!(
            "{}: pharos/peer p99 {}, memory per idle stream {}; pharos targets: p99 < {} ms (all delivered) {}, < {} KiB/idle stream {}\n",
            c.scenario,
            ratio(c.p99_ratio),
            ratio(c.memory_ratio),
            c.p99_target_ms,
            verdict(c.p99_pass),
            c.memory_target_kib,
            match c.memory_pass {
                None if c.p99_pass.is_some() => "n/a (one stream per connection)",
                pass => verdict(pass),
            },
        ));
    }
    out.push_str(&format!(
        "load average {:.2} before, {:.2} after ({} cpus; client and servers share them)\n",
        report.load_average[0], report.load_average[1], report.cpus
    ));
    print!("{out}");
    let _ = std::io::stdout().flush();
}

fn write_json(path: &std::path::Path, report: &Report<'_>) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let json = serde_json::to_string_pretty(report)?;
    std::fs::write(path, json + "\n").with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_deliveries_count_the_watchers_of_each_project() {
        // 25 streams over 10 projects: projects 0-4 have 3 watchers, 5-9 have 2.
        assert_eq!(expected_deliveries(10, 25, Some(10)), 25);
        assert_eq!(expected_deliveries(3, 25, Some(10)), 9);
        assert_eq!(expected_deliveries(17, 25, Some(10)), 25 + 15 + 4);
        assert_eq!(expected_deliveries(7, 4, None), 28);
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let mut micros: Vec<u32> = (1..=1000).rev().map(|ms| ms * 1000).collect();
        let latency = Latency::of(&mut micros);
        assert_eq!(latency.p50_ms, 500.0);
        assert_eq!(latency.p99_ms, 990.0);
        assert_eq!(latency.max_ms, 1000.0);
        assert_eq!(latency.count, 1000);
    }
}
