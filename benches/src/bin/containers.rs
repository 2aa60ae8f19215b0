//! The containers benchmark: 200 labelled busybox containers started one after another
//! on a private Podman; for each, the time from the start of `podman run` to the Watch
//! change that shows it running in its deployment, p50/p99; then pharosd's CPU while
//! idle with the 200 containers monitored (events followed, stats sampled every 5 s).
//!
//! Peers in the same run: a bare bollard subscriber to the engine's event stream, timing
//! the container's `start` event, for the latency (pharosd may be earlier: it inspects
//! the container on its `create` and `init` events too, and reports it as soon as an
//! inspect says running); and a `podman events` process for the idle CPU. Ratios are
//! pharos over peer.
//!
//! Usage: containers [--containers 200] [--idle 30s]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bollard::Docker;
use bollard::query_parameters::EventsOptions;
use clap::Parser;
use futures::StreamExt;
use pharos_e2e::{Pharosd, TestPodman};
use pharos_proto::v1 as pb;
use pharos_proto::v1::watch_service_client::WatchServiceClient;

#[allow(dead_code)] // Only cpu_seconds is used here.
#[path = "../procfs.rs"]
mod procfs;

use procfs::cpu_seconds;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 200)]
    containers: usize,
    #[arg(long, value_parser = humantime::parse_duration, default_value = "30s")]
    idle: Duration,
}

type Seen = Arc<Mutex<HashMap<String, Instant>>>;

fn quantile(sorted: &[Duration], q: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let podman = TestPodman::start()?;
    let dir = tempfile::tempdir()?;
    let catalog = dir.path().join("catalog.yaml");
    std::fs::write(
        &catalog,
        "environments:\n  - id: bench\nprojects:\n  - id: fleet\n    deployments:\n      - environment: bench\n        containers: {bench: fleet}\n",
    )?;
    let pharosd = Pharosd::builder()
        .catalog(&catalog)
        .arg("--docker-host")
        .arg(podman.docker_host())
        .spawn()
        .await?;

    // Pharos: one Watch stream on the containers topic.
    let pharos_seen: Seen = Arc::default();
    let mut stream = WatchServiceClient::connect(pharosd.url())
        .await?
        .watch(pb::WatchRequest {
            topics: vec![pb::WatchTopic::Containers as i32],
            ..Default::default()
        })
        .await?
        .into_inner();
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let watcher = tokio::spawn({
        let seen = pharos_seen.clone();
        async move {
            let mut ready = Some(ready_tx);
            while let Ok(Some(message)) = stream.message().await {
                let Some(pb::watch_response::Message::Change(change)) = message.message else {
                    continue;
                };
                match change.object {
                    Some(pb::change::Object::ContainerEngine(engine))
                        if engine.state == pb::EngineState::Up as i32 =>
                    {
                        if let Some(ready) = ready.take() {
                            let _ = ready.send(());
                        }
                    }
                    Some(pb::change::Object::Container(c))
                        if c.deployment_id == "fleet/bench"
                            && c.state == pb::ContainerState::Running as i32 =>
                    {
                        let now = Instant::now();
                        seen.lock().unwrap().entry(c.id).or_insert(now);
                    }
                    _ => {}
                }
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(20), ready_rx)
        .await
        .context("engine not up in pharosd within 20 s")??;

    // Peer: a bare subscriber to the engine's events.
    let peer_seen: Seen = Arc::default();
    let docker = Docker::connect_with_host(&podman.docker_host())?;
    let peer = tokio::spawn({
        let seen = peer_seen.clone();
        async move {
            let filters = HashMap::from([
                ("type".to_owned(), vec!["container".to_owned()]),
                ("event".to_owned(), vec!["start".to_owned()]),
            ]);
            let mut events = Box::pin(docker.events(Some(EventsOptions {
                filters: Some(filters),
                ..Default::default()
            })));
            while let Some(Ok(event)) = events.next().await {
                if let Some(id) = event.actor.and_then(|a| a.id) {
                    let now = Instant::now();
                    seen.lock().unwrap().entry(id).or_insert(now);
                }
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;

    eprintln!(
        "starting {} containers one after another ...",
        args.containers
    );
    let mut started = Vec::with_capacity(args.containers);
    for i in 0..args.containers {
        let t0 = Instant::now();
        let id = podman
            .run(&[("bench", "fleet")], &["sleep", "3600"])
            .await
            .with_context(|| format!("podman run #{i}"))?;
        started.push((id, t0));
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (p, q) = (
            pharos_seen.lock().unwrap().len(),
            peer_seen.lock().unwrap().len(),
        );
        if p >= args.containers && q >= args.containers {
            break;
        }
        if Instant::now() > deadline {
            bail!(
                "after 30 s pharos saw {p} and the peer {q} of {} containers",
                args.containers
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let latencies = |seen: &Seen| {
        let seen = seen.lock().unwrap();
        let mut all: Vec<Duration> = started
            .iter()
            .map(|(id, t0)| seen[id].saturating_duration_since(*t0))
            .collect();
        all.sort();
        all
    };
    let (pharos, peer_lat) = (latencies(&pharos_seen), latencies(&peer_seen));

    // Idle: nothing changes; pharosd follows events and samples stats every 5 s.
    let mut events_cmd = tokio::process::Command::from(podman.command());
    events_cmd
        .args(["events", "--filter", "type=container"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true);
    let mut events_peer = events_cmd.spawn().context("spawn podman events")?;
    let events_pid = events_peer.id().context("podman events pid")?.to_string();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let pharos_pid = pharosd.pid().to_string();
    let (p0, e0, t0) = (
        cpu_seconds(&pharos_pid)?,
        cpu_seconds(&events_pid)?,
        Instant::now(),
    );
    tokio::time::sleep(args.idle).await;
    let wall = t0.elapsed().as_secs_f64();
    let pharos_cpu = (cpu_seconds(&pharos_pid)? - p0) / wall * 100.0;
    let events_cpu = (cpu_seconds(&events_pid)? - e0) / wall * 100.0;
    let _ = events_peer.kill().await;
    watcher.abort();
    peer.abort();

    println!(
        "containers benchmark: {} containers, Podman {}",
        args.containers,
        podman.docker_host()
    );
    println!("time from the start of `podman run` to the event (includes the podman CLI):");
    println!(
        "  pharos Watch change      p50 {:7.1} ms   p99 {:7.1} ms",
        ms(quantile(&pharos, 0.5)),
        ms(quantile(&pharos, 0.99))
    );
    println!(
        "  peer: `start` event     p50 {:7.1} ms   p99 {:7.1} ms",
        ms(quantile(&peer_lat, 0.5)),
        ms(quantile(&peer_lat, 0.99))
    );
    println!(
        "  ratio pharos/peer        p50 {:.2}x        p99 {:.2}x",
        ms(quantile(&pharos, 0.5)) / ms(quantile(&peer_lat, 0.5)),
        ms(quantile(&pharos, 0.99)) / ms(quantile(&peer_lat, 0.99))
    );
    println!(
        "idle CPU over {:.0} s with {} containers monitored:",
        wall, args.containers
    );
    println!("  pharosd (events + stats every 5 s)  {pharos_cpu:6.2} % of one core");
    println!("  peer: podman events subscriber      {events_cpu:6.2} % of one core");
    println!(
        "  ratio pharos/peer                   {:.2}x",
        pharos_cpu / events_cpu.max(0.01)
    );
    println!("removing the containers ...");
    drop(pharosd);
    drop(podman);
    Ok(())
}
