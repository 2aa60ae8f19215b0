//! Metrics benchmark (scripts/bench-metrics.sh).
//!
//! 1. Scrape CPU: starts `--targets` Debian prometheus-node-exporter processes, then
//!    pharosd (release build) and Debian's `prometheus`, both scraping every exporter at
//!    the same interval for the same window. Each server's CPU time (utime + stime from
//!    /proc) is divided by the samples it reports having scraped (pharosd:
//!    `pharos_scrape_samples_total`; prometheus:
//!    `prometheus_tsdb_head_samples_appended_total`), per 100,000 samples; the ratio is
//!    pharosd / prometheus (below 1: pharosd spends less CPU per sample).
//! 2. Push ingestion: a fresh pharosd with no targets takes `PushMetrics` from
//!    `--push-streams` concurrent client streams for `--push-seconds`; reports samples/s
//!    and samples per pharosd CPU-second (per core). No peer: Prometheus has no
//!    comparable push API in this Debian release without remote-write encoding.

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use pharos_control_plane::metrics::exposition;
use pharos_proto::v1 as pb;
use pharos_proto::v1::metrics_service_client::MetricsServiceClient;

#[derive(Parser)]
struct Args {
    /// node_exporter processes scraped by both servers.
    #[arg(long, default_value_t = 4)]
    targets: usize,
    /// Scrape interval for both servers.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    interval: Duration,
    /// Measured scrape window (after a warm-up of three intervals).
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    seconds: Duration,
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    push_seconds: Duration,
    #[arg(long, default_value_t = 4)]
    push_streams: usize,
    /// Samples per PushMetrics message.
    #[arg(long, default_value_t = 2000)]
    batch: usize,
    /// Distinct series per push stream.
    #[arg(long, default_value_t = 2000)]
    series: usize,
    #[arg(long, default_value = "target/release/pharosd")]
    pharosd: String,
    #[arg(long, default_value = "bench-results/metrics.json")]
    out: String,
}

/// A child process killed on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn cpu_seconds(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let rest = stat.rsplit_once(')').context("unexpected /proc stat")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: field 3 is index 0, so utime (14) and stime (15) are 11 and 12.
    let utime: f64 = fields[11].parse()?;
    let stime: f64 = fields[12].parse()?;
    Ok((utime + stime) / 100.0)
}

async fn get(addr: &str, path: &str) -> Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").context("malformed response")?;
    if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
        bail!("GET {addr}{path}: {}", head.lines().next().unwrap_or(""));
    }
    Ok(body.to_owned())
}

/// The sum of every sample named `name` in the server's own /metrics.
async fn counter(addr: &str, name: &str) -> Result<f64> {
    let text = get(addr, "/metrics").await?;
    let parsed = exposition::parse(&text, &Default::default());
    Ok(parsed
        .samples
        .iter()
        .filter(|s| s.name == name)
        .map(|s| s.value)
        .sum())
}

async fn wait_for(addr: &str, path: &str, what: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while get(addr, path).await.is_err() {
        if Instant::now() > deadline {
            bail!("{what} did not answer GET {path} on {addr} within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

fn spawn(program: &str, args: &[String], name: &'static str) -> Result<Proc> {
    let child = Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| {
            format!("starting {name} ({program}; scripts/install-test-deps.sh installs it)")
        })?;
    Ok(Proc(child))
}

fn start_pharosd(
    args: &Args,
    dir: &std::path::Path,
    name: &str,
    catalog: &str,
    token: &str,
) -> Result<(Proc, String)> {
    let port = free_port();
    let catalog_path = dir.join(format!("{name}-catalog.yaml"));
    std::fs::write(&catalog_path, catalog)?;
    let config_path = dir.join(format!("{name}-config.yaml"));
    // pharosd's own series and the capacity sampler are off: the figure is the cost of
    // scraping and storing alone, as Prometheus here scrapes only the exporters.
    std::fs::write(
        &config_path,
        format!(
            "tokens:\n  - name: bench\n    role: operator\n    sha256: {}\n\
             telemetry:\n  interval: 0s\ncapacity:\n  interval: 0s\n",
            pharos_control_plane::auth::hash_token(token)
        ),
    )?;
    let proc = spawn(
        &args.pharosd,
        &[
            "--listen".into(),
            format!("127.0.0.1:{port}"),
            "--data-dir".into(),
            dir.join(format!("{name}-data")).display().to_string(),
            "--catalog".into(),
            catalog_path.display().to_string(),
            "--config".into(),
            config_path.display().to_string(),
        ],
        "pharosd",
    )?;
    Ok((proc, format!("127.0.0.1:{port}")))
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let dir = tempfile::tempdir()?;
    let interval = humantime::format_duration(args.interval).to_string();

    // 1. Scrape CPU.
    let mut exporters = Vec::new();
    let mut target_addrs = Vec::new();
    for _ in 0..args.targets {
        let port = free_port();
        exporters.push(spawn(
            "prometheus-node-exporter",
            &[format!("--web.listen-address=127.0.0.1:{port}")],
            "node_exporter",
        )?);
        target_addrs.push(format!("127.0.0.1:{port}"));
    }
    for addr in &target_addrs {
        wait_for(addr, "/metrics", "node_exporter").await?;
    }
    let mut catalog = String::from("environments: []\nprojects: []\nscrape_targets:\n");
    for (i, addr) in target_addrs.iter().enumerate() {
        catalog.push_str(&format!(
            "  - name: node{i}\n    url: http://{addr}/metrics\n    interval: {interval}\n"
        ));
    }
    let token = "bench-operator-token";
    let (pharosd, pharos_addr) = start_pharosd(&args, dir.path(), "scrape", &catalog, token)?;
    wait_for(&pharos_addr, "/healthz", "pharosd").await?;

    let prom_port = free_port();
    let prom_addr = format!("127.0.0.1:{prom_port}");
    let prom_config = dir.path().join("prometheus.yml");
    std::fs::write(
        &prom_config,
        format!(
            "global:\n  scrape_interval: {interval}\n  scrape_timeout: {interval}\nscrape_configs:\n  - job_name: node\n    static_configs:\n      - targets: [{}]\n",
            target_addrs
                .iter()
                .map(|a| format!("'{a}'"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    )?;
    let prometheus = spawn(
        "prometheus",
        &[
            format!("--config.file={}", prom_config.display()),
            format!("--storage.tsdb.path={}", dir.path().join("tsdb").display()),
            format!("--web.listen-address={prom_addr}"),
        ],
        "prometheus",
    )?;
    wait_for(&prom_addr, "/-/ready", "prometheus").await?;
    tokio::time::sleep(args.interval * 3).await;

    let pharos_pid = pharosd.0.id();
    let prom_pid = prometheus.0.id();
    let p_cpu0 = cpu_seconds(pharos_pid)?;
    let q_cpu0 = cpu_seconds(prom_pid)?;
    let p_samples0 = counter(&pharos_addr, "pharos_scrape_samples_total").await?;
    let q_samples0 = counter(&prom_addr, "prometheus_tsdb_head_samples_appended_total").await?;
    tokio::time::sleep(args.seconds).await;
    let p_cpu = cpu_seconds(pharos_pid)? - p_cpu0;
    let q_cpu = cpu_seconds(prom_pid)? - q_cpu0;
    let p_samples = counter(&pharos_addr, "pharos_scrape_samples_total").await? - p_samples0;
    let q_samples =
        counter(&prom_addr, "prometheus_tsdb_head_samples_appended_total").await? - q_samples0;
    drop(prometheus);
    drop(pharosd);
    drop(exporters);
    if p_samples <= 0.0 || q_samples <= 0.0 {
        bail!("no samples scraped (pharosd {p_samples}, prometheus {q_samples})");
    }
    let p_per = p_cpu / p_samples * 100_000.0;
    let q_per = q_cpu / q_samples * 100_000.0;

    // 2. Push ingestion.
    let (pusher, push_addr) = start_pharosd(
        &args,
        dir.path(),
        "push",
        "environments: []\nprojects: []\n",
        token,
    )?;
    wait_for(&push_addr, "/healthz", "pharosd").await?;
    let push_pid = pusher.0.id();
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{push_addr}"))?
        .connect()
        .await?;
    let cpu0 = cpu_seconds(push_pid)?;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for stream in 0..args.push_streams {
        let channel = channel.clone();
        let (batch, series, seconds) = (args.batch, args.series, args.push_seconds);
        tasks.push(tokio::spawn(async move {
            // One message per series window, built once: the client costs little.
            let messages: Vec<pb::PushMetricsRequest> = (0..series.div_ceil(batch))
                .map(|chunk| pb::PushMetricsRequest {
                    samples: (0..batch)
                        .map(|i| pb::PushedSample {
                            name: "bench_pushed".to_owned(),
                            labels: HashMap::from([
                                ("stream".to_owned(), stream.to_string()),
                                (
                                    "series".to_owned(),
                                    ((chunk * batch + i) % series).to_string(),
                                ),
                            ]),
                            value: i as f64,
                            time_unix_ms: 0,
                        })
                        .collect(),
                })
                .collect();
            let deadline = Instant::now() + seconds;
            let requests = async_stream_iter(messages, deadline);
            let mut request = tonic::Request::new(requests);
            request.metadata_mut().insert(
                "authorization",
                format!("Bearer {token}").parse().expect("ascii"),
            );
            MetricsServiceClient::new(channel)
                .max_encoding_message_size(64 << 20)
                .push_metrics(request)
                .await
                .map(|r| r.into_inner())
        }));
    }
    let mut accepted = 0u64;
    let mut rejected = 0u64;
    for task in tasks {
        let response = task.await??;
        accepted += response.accepted;
        rejected += response.rejected_invalid
            + response.rejected_non_finite
            + response.rejected_series_limit
            + response.rejected_out_of_order;
    }
    let wall = started.elapsed().as_secs_f64();
    let push_cpu = cpu_seconds(push_pid)? - cpu0;
    drop(pusher);

    let per_second = accepted as f64 / wall;
    let per_core = accepted as f64 / push_cpu;
    println!(
        "scrape: {} node_exporter targets every {interval}, {:.0} s measured",
        args.targets,
        args.seconds.as_secs_f64()
    );
    println!(
        "{:<12} {:>14} {:>12} {:>26}",
        "server", "samples", "cpu s", "cpu s per 100k samples"
    );
    println!(
        "{:<12} {:>14.0} {:>12.3} {:>26.4}",
        "pharosd", p_samples, p_cpu, p_per
    );
    println!(
        "{:<12} {:>14.0} {:>12.3} {:>26.4}",
        "prometheus", q_samples, q_cpu, q_per
    );
    println!(
        "ratio pharosd / prometheus (cpu per sample): {:.2}",
        p_per / q_per
    );
    println!(
        "push: {} streams x {} samples per message, {:.1} s: {accepted} accepted, {rejected} refused, {:.0} samples/s, {:.0} samples per pharosd cpu-second",
        args.push_streams, args.batch, wall, per_second, per_core
    );
    let json = serde_json::json!({
        "scrape": {
            "targets": args.targets,
            "interval_s": args.interval.as_secs_f64(),
            "seconds": args.seconds.as_secs_f64(),
            "pharosd": {"samples": p_samples, "cpu_s": p_cpu, "cpu_s_per_100k": p_per},
            "prometheus": {"samples": q_samples, "cpu_s": q_cpu, "cpu_s_per_100k": q_per},
            "ratio": p_per / q_per,
        },
        "push": {
            "streams": args.push_streams,
            "batch": args.batch,
            "seconds": wall,
            "accepted": accepted,
            "refused": rejected,
            "samples_per_s": per_second,
            "samples_per_cpu_s": per_core,
        },
    });
    if let Some(parent) = std::path::Path::new(&args.out).parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&args.out, serde_json::to_string_pretty(&json)?)?;
    println!("results: {}", args.out);
    Ok(())
}

/// The messages again and again until the deadline.
fn async_stream_iter(
    messages: Vec<pb::PushMetricsRequest>,
    deadline: Instant,
) -> impl futures::Stream<Item = pb::PushMetricsRequest> + Send + 'static {
    let messages = std::sync::Arc::new(messages);
    futures::stream::unfold(0usize, move |i| {
        let messages = messages.clone();
        async move {
            if Instant::now() >= deadline {
                return None;
            }
            Some((messages[i % messages.len()].clone(), i + 1))
        }
    })
}
