//! The stats sampler: every interval, one non-streaming stats read per running container
//! (a bounded number at once). CPU percent comes from the difference between two of our
//! own samples (container CPU time over wall time), so it does not depend on the
//! engine's "precpu" fields, which one-shot reads leave empty.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bollard::Docker;
use bollard::query_parameters::StatsOptions;
use futures::StreamExt;
use tokio::sync::watch;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use super::ContainerIndex;
use pharos_core::domain::ContainerStats;
use pharos_store::journal::now_micros;

/// Stats reads in flight at once.
const CONCURRENCY: usize = 16;

/// CPU time (ns) at a wall-clock time (µs).
#[derive(Clone, Copy)]
struct CpuSample {
    cpu_nanos: u64,
    at_micros: i64,
}

pub async fn run(
    index: Arc<ContainerIndex>,
    mut client: watch::Receiver<Option<Docker>>,
    interval: Duration,
    shutdown: CancellationToken,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut previous: HashMap<String, CpuSample> = HashMap::new();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
            // Sample at once when the engine (re)connects.
            changed = client.changed() => if changed.is_err() { return },
        }
        let Some(docker) = client.borrow_and_update().clone() else {
            continue;
        };
        let ids = index.running_ids();
        let samples: Vec<(String, Option<(ContainerStats, CpuSample)>)> =
            futures::stream::iter(ids)
                .map(|id| {
                    let docker = docker.clone();
                    async move {
                        let sample = sample(&docker, &id).await;
                        (id, sample)
                    }
                })
                .buffer_unordered(CONCURRENCY)
                .collect()
                .await;
        let mut next = HashMap::with_capacity(samples.len());
        for (id, sample) in samples {
            let Some((mut stats, cpu)) = sample else {
                continue;
            };
            if let Some(before) = previous.get(&id) {
                let wall = (cpu.at_micros - before.at_micros) as f64 * 1000.0;
                if wall > 0.0 && cpu.cpu_nanos >= before.cpu_nanos {
                    stats.cpu_percent = (cpu.cpu_nanos - before.cpu_nanos) as f64 / wall * 100.0;
                }
                index.set_stats(&id, stats);
            } else if let Some(known) = index.stats(&id) {
                // First sample since a restart of the sampler: keep the known CPU figure.
                index.set_stats(
                    &id,
                    ContainerStats {
                        cpu_percent: known.cpu_percent,
                        ..stats
                    },
                );
            } else {
                index.set_stats(&id, stats);
            }
            next.insert(id, cpu);
        }
        previous = next;
    }
}

async fn sample(docker: &Docker, id: &str) -> Option<(ContainerStats, CpuSample)> {
    let options = StatsOptions {
        stream: false,
        one_shot: true,
    };
    let mut stream = Box::pin(docker.stats(id, Some(options)));
    let response = match stream.next().await? {
        Ok(response) => response,
        Err(err) => {
            tracing::debug!(container = id, error = %err, "stats read failed");
            return None;
        }
    };
    let at_micros = now_micros();
    let cpu_nanos = response
        .cpu_stats
        .as_ref()
        .and_then(|c| c.cpu_usage.as_ref())
        .and_then(|u| u.total_usage)
        .unwrap_or_default();
    let memory = response.memory_stats.as_ref();
    let stats = ContainerStats {
        cpu_percent: 0.0,
        memory_used_bytes: memory.and_then(|m| m.usage).unwrap_or_default(),
        memory_limit_bytes: memory.and_then(|m| m.limit).unwrap_or_default(),
        at_micros,
    };
    Some((
        stats,
        CpuSample {
            cpu_nanos,
            at_micros,
        },
    ))
}
