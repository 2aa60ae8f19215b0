//! One subscriber's Watch stream: snapshot or replay, then live changes, with progress
//! markers when idle. See the watch contract in `docs/architecture.md`.

use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use super::hub::{RingRead, WatchHub};
use pharos_core::journal::JournalEntry;
use pharos_core::selector::Selector;
use pharos_store::journal::{JournalStore, StoreError};

/// Matching entries handed out per read, so one subscriber never hogs the hub lock.
const READ_BATCH: usize = 256;

/// One message of a Watch stream.
#[derive(Clone, Debug, PartialEq)]
pub enum WatchItem {
    /// The current state of one key, part of the initial snapshot.
    Snapshot(Arc<JournalEntry>),
    /// The snapshot is complete; it is the state at this revision.
    SnapshotComplete(u64),
    Change(Arc<JournalEntry>),
    /// Everything that matches up to this revision has been delivered.
    Progress(u64),
}

/// Why a Watch stream ended (or could not start).
#[derive(Debug, thiserror::Error)]
pub enum WatchEnd {
    #[error("the server is shutting down; reconnect and resume from revision {resume_from}")]
    ShuttingDown { resume_from: u64 },
    #[error(
        "this subscriber fell too far behind the journal; reconnect and resume from revision {resume_from}"
    )]
    Lagged { resume_from: u64 },
    #[error(
        "revision {requested} is no longer retained (the journal is compacted through revision {compacted_through}); resubscribe with since_revision 0 for a fresh snapshot"
    )]
    Compacted {
        requested: u64,
        compacted_through: u64,
    },
    #[error(
        "revision {requested} is ahead of this server's journal head {head} (was the database reset?); resubscribe with since_revision 0 for a fresh snapshot"
    )]
    AheadOfHead { requested: u64, head: u64 },
    #[error("reading the journal failed: {0}")]
    Store(#[from] StoreError),
}

impl pharos_core::error::CodedError for WatchEnd {
    fn code(&self) -> pharos_core::error::ErrorCode {
        use pharos_core::error::ErrorCode;
        match self {
            WatchEnd::ShuttingDown { .. } | WatchEnd::Store(_) => ErrorCode::Unavailable,
            WatchEnd::Lagged { .. } => ErrorCode::ResourceExhausted,
            WatchEnd::Compacted { .. } | WatchEnd::AheadOfHead { .. } => ErrorCode::OutOfRange,
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub struct WatchOptions {
    /// An idle stream receives a progress marker this often.
    pub progress_interval: Duration,
    /// Entries read from the database per query while replaying.
    pub replay_page: u64,
}

impl Default for WatchOptions {
    fn default() -> Self {
        WatchOptions {
            progress_interval: Duration::from_secs(10),
            replay_page: 512,
        }
    }
}

/// Opens a Watch stream for `selector` starting after `since` (0: snapshot first). Fails
/// at once when `since` cannot be replayed.
pub fn open_watch(
    hub: &Arc<WatchHub>,
    store: JournalStore,
    selector: Selector,
    since: u64,
    options: WatchOptions,
    shutdown: CancellationToken,
) -> Result<impl Stream<Item = Result<WatchItem, WatchEnd>> + Send + 'static, WatchEnd> {
    let bounds = hub.bounds();
    if since > bounds.head {
        return Err(WatchEnd::AheadOfHead {
            requested: since,
            head: bounds.head,
        });
    }
    if since != 0 && since < bounds.compacted_through {
        return Err(WatchEnd::Compacted {
            requested: since,
            compacted_through: bounds.compacted_through,
        });
    }
    let (mut subscription, snapshot, bounds) = hub.subscribe(selector, since == 0);
    let signal = subscription.signal.clone();

    Ok(async_stream::stream! {
        let mut cursor = since;
        if since == 0 {
            for entry in snapshot {
                yield Ok(WatchItem::Snapshot(entry));
            }
            cursor = bounds.head;
            yield Ok(WatchItem::SnapshotComplete(cursor));
        }
        // Until the subscriber has read from the ring once, entries older than the ring
        // come from the database; afterwards, falling behind the ring means it lagged.
        let mut live = false;
        let mut sent_since_tick = false;
        let mut progress_due = false;
        let mut ticker = tokio::time::interval_at(
            Instant::now() + options.progress_interval,
            options.progress_interval,
        );
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);

        loop {
            if shutdown.is_cancelled() {
                yield Err(WatchEnd::ShuttingDown { resume_from: cursor });
                return;
            }
            match subscription.read_ring(cursor, READ_BATCH) {
                RingRead::Entries { entries, cursor: examined, more } => {
                    live = true;
                    cursor = examined;
                    if !entries.is_empty() {
                        sent_since_tick = true;
                    }
                    for entry in entries {
                        yield Ok(WatchItem::Change(entry));
                    }
                    if more {
                        continue;
                    }
                }
                RingRead::BehindRing if live => {
                    subscription.hub().record_lagged(cursor);
                    yield Err(WatchEnd::Lagged { resume_from: cursor });
                    return;
                }
                RingRead::BehindRing => {
                    let page = match store.read_after(cursor, options.replay_page).await {
                        Ok(page) => page,
                        Err(err) => {
                            yield Err(WatchEnd::Store(err));
                            return;
                        }
                    };
                    if page.first().is_none_or(|first| first.revision != cursor + 1) {
                        // Compaction overtook the replay.
                        let compacted_through = subscription.hub().bounds().compacted_through;
                        yield Err(WatchEnd::Compacted { requested: cursor, compacted_through });
                        return;
                    }
                    for entry in page {
                        cursor = entry.revision;
                        if subscription.selector.matches(&entry) {
                            sent_since_tick = true;
                            yield Ok(WatchItem::Change(Arc::new(entry)));
                        }
                    }
                    continue;
                }
            }

            if progress_due {
                progress_due = false;
                if !sent_since_tick {
                    yield Ok(WatchItem::Progress(cursor));
                }
                sent_since_tick = false;
            }

            let shutting_down = tokio::select! {
                biased;
                _ = shutdown.cancelled() => true,
                _ = signal.notify.notified() => false,
                _ = ticker.tick() => {
                    progress_due = true;
                    false
                }
            };
            if shutting_down {
                yield Err(WatchEnd::ShuttingDown { resume_from: cursor });
                return;
            }
        }
    })
}
