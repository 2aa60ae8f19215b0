//! `pharos-bench watch-server`: one server under test, in its own process so its memory
//! and CPU time can be read from /proc.
//!
//! Protocol: prints `ready ADDR` on stdout once it serves, then reads commands on stdin:
//! `start RATE` publishes RATE changes per second spread round-robin over the projects,
//! `stop` stops and prints `stopped PUBLISHED FAILED SECONDS` once every published change
//! is committed. Exits on stdin EOF (or Ctrl-C).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use clap::{Args, ValueEnum};
use futures::Stream;
use pharos_control_plane::catalog::CatalogSource;
use pharos_control_plane::config::Settings;
use pharos_control_plane::domain::{Event, Severity};
use pharos_control_plane::journal::{Change, WriterHandle, now_micros};
use pharos_control_plane::server;
use pharos_control_plane::watch::WatchOptions;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::{Semaphore, broadcast};
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_stream::StreamExt;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_util::sync::CancellationToken;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};

use crate::pb;
use crate::pb::broadcast_service_server::{BroadcastService, BroadcastServiceServer};

/// The attribute of a published event that holds its publish time (microseconds since
/// the Unix epoch), so the client can also measure publish-to-receipt.
pub const PUBLISHED_AT: &str = "published_at_micros";

/// Capacity of pharosd's hub ring and of the peer's broadcast channel.
const RING_CAPACITY: usize = 16_384;

/// Most journal appends in flight at once (the writer batches whatever has queued up).
const MAX_IN_FLIGHT: u32 = 4096;

/// The event message: about what a real health or catalog event says.
const EVENT_MESSAGE: &str = "deployment api/prod health changed from healthy to degraded: \
    check http-ready failed 3 times in a row (timeout after 2s)";

/// The peer's filler, sized so a peer tick is as large on the wire as a Pharos event
/// change (both are printed by the benchmark).
const PEER_PAYLOAD_BYTES: usize = 256;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// pharosd in-process: SQLite journal, watch hub, pharos.v1.WatchService
    Pharos,
    /// A plain tonic server-streaming service over one tokio broadcast channel
    Peer,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Pharos => "pharos",
            Kind::Peer => "peer",
        }
    }
}

#[derive(Debug, Args)]
pub struct ServerArgs {
    #[arg(long, value_enum)]
    kind: Kind,
    /// Address to serve on (port 0 picks a free one)
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Projects the published changes are spread over (p0, p1, ...)
    #[arg(long, default_value_t = 1000)]
    projects: usize,
    /// pharosd's data directory (created if missing) [default: a temporary directory
    /// removed on exit]. The orchestrator passes one it removes itself, even when it has
    /// to kill this process.
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

pub async fn run(args: ServerArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.projects > 0, "--projects must be at least 1");
    // pharosd's warnings and errors (a failed journal write, ...) reach the terminal.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("PHAROS_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    match args.kind {
        Kind::Pharos => run_pharos(&args).await,
        Kind::Peer => run_peer(&args).await,
    }
}

/// pharosd as `pharosd` runs it by default (SQLite in a data directory, the embedded
/// demo catalog and its health checks, the defaults of `Settings::resolve`), with the hub
/// ring at 16384 entries.
async fn run_pharos(args: &ServerArgs) -> anyhow::Result<()> {
    let own_dir = match &args.data_dir {
        Some(_) => None,
        None => Some(temp_dir()?),
    };
    let data_dir = match (&args.data_dir, &own_dir) {
        (Some(dir), _) => dir.clone(),
        (None, Some(dir)) => dir.path().join("data"),
        (None, None) => unreachable!("a temporary directory was created"),
    };
    let settings = Settings {
        listen: args.listen,
        data_dir,
        database_url: None,
        catalog: CatalogSource::Embedded,
        tokens: Vec::new(),
        watch: WatchOptions::default(),
        ring_capacity: RING_CAPACITY,
        journal_retention: 1_000_000,
        compaction_interval: Duration::from_secs(60),
        catalog_poll_interval: Duration::from_secs(1),
        shutdown_deadline: Duration::from_secs(4),
        health: Default::default(),
        retention: Default::default(),
        history_flush: Duration::from_secs(1),
        web_root: None,
        // No container engine: the bench measures the journal and Watch.
        containers: Default::default(),
    };
    let running = server::start(settings).await.context("starting pharosd")?;
    let sink = Sink::Pharos {
        writer: running.writer.clone(),
        in_flight: Arc::new(Semaphore::new(MAX_IN_FLIGHT as usize)),
        failed: Arc::new(AtomicU64::new(0)),
    };
    println!("ready {}", running.addr);
    let result = serve_commands(Arc::new(sink), args.projects).await;
    running.shutdown().await;
    drop(own_dir);
    result
}

/// A temporary directory for pharosd's data, removed when dropped.
pub fn temp_dir() -> anyhow::Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix("pharos-bench-")
        .tempdir()
        .context("creating a temporary data directory")
}

/// The peer: every default of `tonic::transport::Server` except the transport settings
/// pharosd also sets (HTTP/2 keepalive, 20000 concurrent streams per connection,
/// TCP_NODELAY), on the same default multi-thread runtime.
async fn run_peer(args: &ServerArgs) -> anyhow::Result<()> {
    let (ticks, _) = broadcast::channel(RING_CAPACITY);
    let incoming = TcpIncoming::bind(args.listen)
        .map_err(|err| anyhow::anyhow!("cannot listen on {}: {err}", args.listen))?
        .with_nodelay(Some(true));
    let addr = incoming.local_addr()?;
    let stop = CancellationToken::new();
    let server = tokio::spawn(
        Server::builder()
            .http2_keepalive_interval(Some(Duration::from_secs(30)))
            .http2_keepalive_timeout(Some(Duration::from_secs(10)))
            .max_concurrent_streams(Some(20_000))
            .add_service(BroadcastServiceServer::new(Peer {
                ticks: ticks.clone(),
            }))
            .serve_with_incoming_shutdown(incoming, stop.clone().cancelled_owned()),
    );
    println!("ready {addr}");
    let result = serve_commands(Arc::new(Sink::Peer { ticks }), args.projects).await;
    stop.cancel();
    // Open streams never end on their own: give connections a moment, then exit anyway.
    let _ = tokio::time::timeout(Duration::from_secs(2), server).await;
    result
}

struct Peer {
    ticks: broadcast::Sender<pb::Tick>,
}

type TickStream = Pin<Box<dyn Stream<Item = Result<pb::Tick, Status>> + Send>>;

#[tonic::async_trait]
impl BroadcastService for Peer {
    type SubscribeStream = TickStream;

    async fn subscribe(
        &self,
        request: Request<pb::SubscribeRequest>,
    ) -> Result<Response<TickStream>, Status> {
        let project = request.into_inner().project;
        // Subscribed before the response headers go out: every tick sent after the client
        // has its response reaches it.
        let ticks = BroadcastStream::new(self.ticks.subscribe());
        let stream = ticks.filter_map(move |item| match item {
            Ok(tick) if project.is_empty() || tick.project == project => Some(Ok(tick)),
            Ok(_) => None,
            // tonic ends a server stream at its first error: a lagging subscriber learns it
            // missed ticks instead of silently skipping them.
            Err(BroadcastStreamRecvError::Lagged(missed)) => Some(Err(Status::resource_exhausted(
                format!("subscriber fell {missed} ticks behind; resubscribe"),
            ))),
        });
        Ok(Response::new(Box::pin(stream)))
    }
}

/// Where published changes go.
enum Sink {
    Pharos {
        writer: WriterHandle,
        in_flight: Arc<Semaphore>,
        failed: Arc<AtomicU64>,
    },
    Peer {
        ticks: broadcast::Sender<pb::Tick>,
    },
}

impl Sink {
    /// Publishes change `seq` for project `project`. For pharosd the append runs in its own
    /// task, as if from an independent producer, so a slow commit does not slow the rate
    /// (the journal writer batches appends that queue up meanwhile).
    async fn publish(&self, seq: u64, project: usize) {
        match self {
            Sink::Pharos {
                writer,
                in_flight,
                failed,
            } => {
                let permit = in_flight
                    .clone()
                    .acquire_owned()
                    .await
                    .expect("the semaphore is never closed");
                let writer = writer.clone();
                let failed = failed.clone();
                let change = Change::append(event(seq, project));
                tokio::spawn(async move {
                    if let Err(err) = writer.append(vec![change]).await
                        && failed.fetch_add(1, Ordering::Relaxed) == 0
                    {
                        eprintln!("watch-server: journal append failed: {err}");
                    }
                    drop(permit);
                });
            }
            Sink::Peer { ticks } => {
                let tick = pb::Tick {
                    seq,
                    project: format!("p{project}"),
                    published_at_micros: now_micros(),
                    payload: "x".repeat(PEER_PAYLOAD_BYTES),
                };
                // No subscriber is not a failure of the peer: the tick is simply not seen.
                let _ = ticks.send(tick);
            }
        }
    }

    /// Waits until every published change is committed; returns how many failed.
    async fn settle(&self) -> u64 {
        match self {
            Sink::Pharos {
                in_flight, failed, ..
            } => {
                let _all = in_flight
                    .acquire_many(MAX_IN_FLIGHT)
                    .await
                    .expect("the semaphore is never closed");
                failed.swap(0, Ordering::Relaxed)
            }
            Sink::Peer { .. } => 0,
        }
    }
}

fn event(seq: u64, project: usize) -> Event {
    Event {
        id: format!("bench-{seq}"),
        kind: "bench.health_changed".to_owned(),
        severity: Severity::Warning,
        message: EVENT_MESSAGE.to_owned(),
        source: "pharos-bench".to_owned(),
        project_id: Some(format!("p{project}")),
        environment: None,
        attributes: BTreeMap::from([(PUBLISHED_AT.to_owned(), now_micros().to_string())]),
    }
}

struct PublishReport {
    published: u64,
    failed: u64,
    seconds: f64,
}

/// Publishes at `rate` changes per second until `stop`.
///
/// Each tick publishes what the time since the previous tick is worth, but never more
/// than `MAX_CATCH_UP` worth: a tick a few milliseconds late (tokio's timer has
/// millisecond resolution, and busy workers check it late) loses nothing, while a longer
/// stall is skipped, not made up in a burst. The achieved rate is what was published.
async fn publish(
    sink: Arc<Sink>,
    rate: f64,
    projects: usize,
    stop: CancellationToken,
) -> PublishReport {
    const MAX_CATCH_UP: Duration = Duration::from_millis(10);
    // Above 1000/s, several changes per tick.
    let period = Duration::from_secs_f64((1.0 / rate).max(0.001));
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let started = Instant::now();
    // The first tick fires at once and publishes one change.
    let mut last_tick = started - period;
    let mut owed = 0.0;
    let mut published = 0u64;
    loop {
        tokio::select! {
            biased;
            _ = stop.cancelled() => break,
            _ = ticker.tick() => {}
        }
        let now = Instant::now();
        let since_last = (now - last_tick).min(MAX_CATCH_UP.max(period));
        last_tick = now;
        owed += rate * since_last.as_secs_f64();
        while owed >= 1.0 {
            owed -= 1.0;
            sink.publish(published, (published % projects as u64) as usize)
                .await;
            published += 1;
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let failed = sink.settle().await;
    PublishReport {
        published,
        failed,
        seconds,
    }
}

/// Reads commands until stdin closes or Ctrl-C.
async fn serve_commands(sink: Arc<Sink>, projects: usize) -> anyhow::Result<()> {
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut publisher: Option<(CancellationToken, JoinHandle<PublishReport>)> = None;
    loop {
        let line = tokio::select! {
            line = lines.next_line() => line.context("reading stdin")?,
            _ = tokio::signal::ctrl_c() => None,
        };
        let Some(line) = line else { break };
        let mut words = line.split_whitespace();
        match (words.next(), words.next()) {
            (Some("start"), Some(rate)) => {
                let rate: f64 = rate.parse().context("start RATE: RATE is a number")?;
                anyhow::ensure!(rate > 0.0, "start RATE: RATE must be positive");
                anyhow::ensure!(publisher.is_none(), "already publishing");
                let stop = CancellationToken::new();
                let task = tokio::spawn(publish(sink.clone(), rate, projects, stop.clone()));
                publisher = Some((stop, task));
            }
            (Some("stop"), None) => {
                let (stop, task) = publisher.take().context("stop: not publishing")?;
                stop.cancel();
                let report = task.await?;
                println!(
                    "stopped {} {} {:.6}",
                    report.published, report.failed, report.seconds
                );
            }
            _ => anyhow::bail!("unknown command {line:?}: expected `start RATE` or `stop`"),
        }
    }
    if let Some((stop, task)) = publisher {
        stop.cancel();
        let _ = task.await;
    }
    Ok(())
}
