//! The load side: many streams over a few HTTP/2 connections, each a task on the one
//! client runtime, recording per-change latencies into its own preallocated Vec.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use pharos_control_plane::journal::now_micros;
use pharos_proto::v1 as pharos;
use pharos_proto::v1::watch_service_client::WatchServiceClient;
use prost::Message;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tonic::transport::{Channel, Endpoint};

use super::server::{Kind, PUBLISHED_AT};
use crate::pb;
use crate::pb::broadcast_service_client::BroadcastServiceClient;

/// What every stream task reports to the orchestrator while it runs.
#[derive(Default)]
pub struct Progress {
    /// Streams subscribed (pharosd: snapshot_complete received; the peer: response
    /// headers received, which the peer sends after subscribing).
    pub ready: AtomicUsize,
    /// Streams that ended or failed before being told to stop.
    pub failed: AtomicUsize,
    /// Why the first failed stream failed.
    pub first_error: Mutex<Option<String>>,
    /// Live changes received by every stream.
    pub received: AtomicU64,
    /// Stops every stream.
    pub stop: CancellationToken,
}

/// What one stream saw.
#[derive(Default)]
pub struct StreamOutcome {
    /// Commit (pharosd) or publish (peer) to receipt, microseconds.
    pub latencies: Vec<u32>,
    /// pharosd only: publish (the `append` call) to receipt, microseconds.
    pub publish_latencies: Vec<u32>,
    /// Encoded size of the first change received (the whole stream message).
    pub message_bytes: Option<usize>,
    pub error: Option<String>,
}

/// Opens `connections` HTTP/2 connections to `addr`.
pub async fn connect(addr: SocketAddr, connections: usize) -> anyhow::Result<Vec<Channel>> {
    let endpoint = Endpoint::from_shared(format!("http://{addr}"))?.tcp_nodelay(true);
    let mut channels = Vec::with_capacity(connections);
    for _ in 0..connections {
        channels.push(
            endpoint
                .connect()
                .await
                .with_context(|| format!("connecting to {addr}"))?,
        );
    }
    Ok(channels)
}

/// Spawns one task per stream. Stream `i` runs on connection `i * connections / streams`
/// (consecutive streams share a connection, so the watchers of one project are spread
/// over connections) and watches project `i % projects`, or everything when `projects`
/// is None.
pub fn spawn_streams(
    kind: Kind,
    channels: &[Channel],
    streams: usize,
    projects: Option<usize>,
    expected_per_stream: usize,
    progress: &Arc<Progress>,
) -> JoinSet<StreamOutcome> {
    let mut tasks = JoinSet::new();
    for i in 0..streams {
        let channel = channels[i * channels.len() / streams].clone();
        let project = projects.map(|projects| format!("p{}", i % projects));
        let progress = progress.clone();
        match kind {
            Kind::Pharos => {
                tasks.spawn(watch_pharos(
                    channel,
                    project,
                    expected_per_stream,
                    progress,
                ));
            }
            Kind::Peer => {
                tasks.spawn(watch_peer(channel, project, expected_per_stream, progress));
            }
        }
    }
    tasks
}

/// Capacity for the expected changes plus slack, so recording never reallocates in the
/// measured window.
fn outcome(expected: usize, with_publish: bool) -> StreamOutcome {
    let capacity = expected + expected / 4 + 16;
    StreamOutcome {
        latencies: Vec::with_capacity(capacity),
        publish_latencies: Vec::with_capacity(if with_publish { capacity } else { 0 }),
        ..StreamOutcome::default()
    }
}

fn micros_between(from: i64, to: i64) -> u32 {
    (to - from).clamp(0, i64::from(u32::MAX)) as u32
}

async fn watch_pharos(
    channel: Channel,
    project: Option<String>,
    expected: usize,
    progress: Arc<Progress>,
) -> StreamOutcome {
    use pharos::watch_response::Message as Item;
    let mut out = outcome(expected, true);
    let request = pharos::WatchRequest {
        since_revision: 0,
        topics: vec![pharos::WatchTopic::Events as i32],
        projects: project.into_iter().collect(),
        ..Default::default()
    };
    let mut stream = match WatchServiceClient::new(channel).watch(request).await {
        Ok(response) => response.into_inner(),
        Err(status) => return failed(out, &progress, format!("Watch failed: {status}")),
    };
    let mut ready = false;
    loop {
        let message = tokio::select! {
            biased;
            _ = progress.stop.cancelled() => return out,
            message = stream.message() => message,
        };
        let response = match message {
            Ok(Some(response)) => response,
            Ok(None) => return failed(out, &progress, "stream ended without status".into()),
            Err(status) => return failed(out, &progress, format!("stream ended: {status}")),
        };
        let size = out.message_bytes.is_none().then(|| response.encoded_len());
        match response.message {
            Some(Item::SnapshotComplete(_)) if !ready => {
                ready = true;
                progress.ready.fetch_add(1, Ordering::Relaxed);
            }
            Some(Item::Change(change)) if change.kind != pharos::ChangeKind::Snapshot as i32 => {
                let now = now_micros();
                let commit = change
                    .commit_time
                    .map_or(now, |t| t.seconds * 1_000_000 + i64::from(t.nanos) / 1000);
                out.latencies.push(micros_between(commit, now));
                if let Some(pharos::change::Object::Event(event)) = &change.object
                    && let Some(published) = event
                        .attributes
                        .get(PUBLISHED_AT)
                        .and_then(|value| value.parse().ok())
                {
                    out.publish_latencies.push(micros_between(published, now));
                }
                out.message_bytes = out.message_bytes.or(size);
                progress.received.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
    }
}

async fn watch_peer(
    channel: Channel,
    project: Option<String>,
    expected: usize,
    progress: Arc<Progress>,
) -> StreamOutcome {
    let mut out = outcome(expected, false);
    let request = pb::SubscribeRequest {
        project: project.unwrap_or_default(),
    };
    let mut stream = match BroadcastServiceClient::new(channel)
        .subscribe(request)
        .await
    {
        Ok(response) => response.into_inner(),
        Err(status) => return failed(out, &progress, format!("Subscribe failed: {status}")),
    };
    progress.ready.fetch_add(1, Ordering::Relaxed);
    loop {
        let message = tokio::select! {
            biased;
            _ = progress.stop.cancelled() => return out,
            message = stream.message() => message,
        };
        let tick = match message {
            Ok(Some(tick)) => tick,
            Ok(None) => return failed(out, &progress, "stream ended without status".into()),
            Err(status) => return failed(out, &progress, format!("stream ended: {status}")),
        };
        let now = now_micros();
        out.latencies
            .push(micros_between(tick.published_at_micros, now));
        if out.message_bytes.is_none() {
            out.message_bytes = Some(tick.encoded_len());
        }
        progress.received.fetch_add(1, Ordering::Relaxed);
    }
}

fn failed(mut out: StreamOutcome, progress: &Progress, error: String) -> StreamOutcome {
    progress.failed.fetch_add(1, Ordering::Relaxed);
    progress
        .first_error
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .get_or_insert_with(|| error.clone());
    out.error = Some(error);
    out
}
