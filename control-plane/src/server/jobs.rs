//! Periodic jobs on the database: journal compaction and check history retention.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::health::history::HistoryStore;
use crate::journal::JournalStore;
use crate::watch::WatchHub;

pub(super) async fn compact_periodically(
    store: JournalStore,
    hub: Arc<WatchHub>,
    retain: u64,
    every: Duration,
    shutdown: CancellationToken,
) {
    let mut ticker = tokio::time::interval(every);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        match store.compact(retain).await {
            Ok(through) => hub.set_compacted_through(through),
            Err(err) => tracing::warn!(error = %err, "journal compaction failed"),
        }
    }
}

pub(super) async fn apply_retention_periodically(
    history: HistoryStore,
    retention: crate::health::history::Retention,
    shutdown: CancellationToken,
) {
    let mut ticker = tokio::time::interval(Duration::from_secs(600));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        if let Err(err) = history.apply_retention(retention).await {
            tracing::warn!(error = %err, "applying history retention failed");
        }
    }
}
