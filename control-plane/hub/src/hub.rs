//! The in-memory fan-out of committed journal entries.
//!
//! The hub keeps a bounded ring of recent entries (shared by every subscriber, so a slow
//! subscriber costs a cursor, not a queue), the latest entry per key (for snapshots), and
//! an index from (topic, project) to subscribers so that a change wakes only the
//! subscribers it concerns. Subscribers pull from the ring at their own pace; one that
//! falls behind the ring's oldest entry is told where to resume from.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use pharos_core::journal::{JournalEntry, Op, Topic};
use pharos_core::selector::{Interest, Selector};

/// Most entries examined under one read lock, so a far-behind reader never holds the
/// lock for long.
const MAX_SCAN: usize = 4096;

/// At most one warning about slow subscribers this often; the ones in between are
/// counted in it.
const LAG_WARNING_EVERY: Duration = Duration::from_secs(10);

pub struct WatchHub {
    state: RwLock<HubState>,
    ring_capacity: usize,
    next_id: AtomicU64,
    /// Subscribers ended as too slow (RESOURCE_EXHAUSTED) since start.
    lagged: AtomicU64,
    /// When slow subscribers were last warned about, and the count then.
    lag_warned: Mutex<Option<(Instant, u64)>>,
}

struct HubState {
    /// Entries with revisions `ring_floor + 1 ..= head`, in order.
    ring: VecDeque<Arc<JournalEntry>>,
    ring_floor: u64,
    head: u64,
    compacted_through: u64,
    latest: BTreeMap<(Topic, String), Arc<JournalEntry>>,
    interest: HashMap<Interest, HashMap<u64, Arc<Registration>>>,
    subscribers: usize,
}

struct Registration {
    selector: Arc<Selector>,
    signal: Arc<Signal>,
}

/// How the hub wakes one subscriber. `pending_from` holds the earliest revision that
/// concerns the subscriber and that it has not looked at yet (0: none).
pub(super) struct Signal {
    pending_from: AtomicU64,
    pub(super) notify: Notify,
}

/// Figures for `/metrics` and the benchmarks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HubStats {
    pub head: u64,
    pub ring_len: usize,
    pub subscribers: usize,
    /// Subscribers ended as too slow since start.
    pub lagged: u64,
}

/// Where the journal stands, as the hub sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Bounds {
    pub head: u64,
    pub ring_floor: u64,
    pub compacted_through: u64,
}

/// The journal writer publishes what it committed here.
impl pharos_store::journal::CommitSink for WatchHub {
    fn head(&self) -> u64 {
        WatchHub::head(self)
    }

    fn max_batch(&self) -> usize {
        self.ring_capacity() / 2
    }

    fn publish(&self, entries: Vec<JournalEntry>) {
        WatchHub::publish(self, entries);
    }
}

impl WatchHub {
    /// A hub whose journal stands at `head`, with `latest` the current state per key.
    pub fn new(
        ring_capacity: usize,
        head: u64,
        compacted_through: u64,
        latest: Vec<JournalEntry>,
    ) -> WatchHub {
        let latest = latest
            .into_iter()
            .map(|entry| ((entry.topic, entry.key.clone()), Arc::new(entry)))
            .collect();
        WatchHub {
            state: RwLock::new(HubState {
                ring: VecDeque::with_capacity(ring_capacity.min(4096)),
                ring_floor: head,
                head,
                compacted_through,
                latest,
                interest: HashMap::new(),
                subscribers: 0,
            }),
            ring_capacity: ring_capacity.max(1),
            next_id: AtomicU64::new(1),
            lagged: AtomicU64::new(0),
            lag_warned: Mutex::new(None),
        }
    }

    /// Counts a subscriber ended because it fell behind the ring, and warns about such
    /// ends at most once per [`LAG_WARNING_EVERY`], with how many there were since.
    pub(super) fn record_lagged(&self, resume_from: u64) {
        let total = self.lagged.fetch_add(1, Ordering::Relaxed) + 1;
        let mut warned = self
            .lag_warned
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let now = Instant::now();
        let (due, before) = match *warned {
            None => (true, 0),
            Some((at, count)) => (now.duration_since(at) >= LAG_WARNING_EVERY, count),
        };
        if due {
            tracing::warn!(
                ended = total - before,
                ended_total = total,
                resume_from,
                "watch subscribers too slow for the journal were ended with RESOURCE_EXHAUSTED; they resume from their revision"
            );
            *warned = Some((now, total));
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, HubState> {
        self.state
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, HubState> {
        self.state
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn ring_capacity(&self) -> usize {
        self.ring_capacity
    }

    pub fn head(&self) -> u64 {
        self.read().head
    }

    pub fn stats(&self) -> HubStats {
        let state = self.read();
        HubStats {
            head: state.head,
            ring_len: state.ring.len(),
            subscribers: state.subscribers,
            lagged: self.lagged.load(Ordering::Relaxed),
        }
    }

    pub(super) fn bounds(&self) -> Bounds {
        let state = self.read();
        Bounds {
            head: state.head,
            ring_floor: state.ring_floor,
            compacted_through: state.compacted_through,
        }
    }

    /// Records that the journal no longer holds entries up to `through`.
    pub fn set_compacted_through(&self, through: u64) {
        let mut state = self.write();
        state.compacted_through = state.compacted_through.max(through);
    }

    /// The current state of every key the selector matches, and the revision it is at.
    pub fn snapshot(&self, selector: &Selector) -> (Vec<Arc<JournalEntry>>, u64) {
        let state = self.read();
        (snapshot_of(&state, selector), state.head)
    }

    /// Makes committed entries visible to subscribers. Entries must come in revision order,
    /// right after the previous ones.
    pub fn publish(&self, entries: Vec<JournalEntry>) {
        let mut woken = Vec::new();
        {
            let mut state = self.write();
            for entry in entries {
                let entry = Arc::new(entry);
                state.head = entry.revision;
                let slot = (entry.topic, entry.key.clone());
                match entry.op {
                    Op::Upsert => {
                        state.latest.insert(slot, entry.clone());
                    }
                    Op::Delete => {
                        state.latest.remove(&slot);
                    }
                    Op::Append => {}
                }
                let project_interest = entry.scope.project.clone().map(|p| (entry.topic, Some(p)));
                for interest in [Some((entry.topic, None)), project_interest]
                    .into_iter()
                    .flatten()
                {
                    let Some(registrations) = state.interest.get(&interest) else {
                        continue;
                    };
                    for registration in registrations.values() {
                        if registration.selector.matches(&entry)
                            && registration
                                .signal
                                .pending_from
                                .compare_exchange(
                                    0,
                                    entry.revision,
                                    Ordering::AcqRel,
                                    Ordering::Acquire,
                                )
                                .is_ok()
                        {
                            woken.push(registration.signal.clone());
                        }
                    }
                }
                state.ring.push_back(entry);
                if state.ring.len() > self.ring_capacity
                    && let Some(evicted) = state.ring.pop_front()
                {
                    state.ring_floor = evicted.revision;
                }
            }
        }
        for signal in woken {
            signal.notify.notify_one();
        }
    }

    /// Registers a subscriber. With `with_snapshot`, also returns the current state of what
    /// it selects, taken atomically with the registration so no change falls between.
    pub(super) fn subscribe(
        self: &Arc<Self>,
        selector: Selector,
        with_snapshot: bool,
    ) -> (Subscription, Vec<Arc<JournalEntry>>, Bounds) {
        let selector = Arc::new(selector);
        let signal = Arc::new(Signal {
            pending_from: AtomicU64::new(0),
            notify: Notify::new(),
        });
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut state = self.write();
        for interest in selector.interests() {
            state.interest.entry(interest).or_default().insert(
                id,
                Arc::new(Registration {
                    selector: selector.clone(),
                    signal: signal.clone(),
                }),
            );
        }
        state.subscribers += 1;
        let snapshot = if with_snapshot {
            snapshot_of(&state, &selector)
        } else {
            Vec::new()
        };
        let bounds = Bounds {
            head: state.head,
            ring_floor: state.ring_floor,
            compacted_through: state.compacted_through,
        };
        drop(state);
        let subscription = Subscription {
            hub: self.clone(),
            id,
            selector,
            signal,
            scan_until: bounds.head,
        };
        (subscription, snapshot, bounds)
    }

    fn unsubscribe(&self, id: u64, selector: &Selector) {
        let mut state = self.write();
        for interest in selector.interests() {
            if let Some(registrations) = state.interest.get_mut(&interest) {
                registrations.remove(&id);
                if registrations.is_empty() {
                    state.interest.remove(&interest);
                }
            }
        }
        state.subscribers -= 1;
    }
}

fn snapshot_of(state: &HubState, selector: &Selector) -> Vec<Arc<JournalEntry>> {
    let mut entries: Vec<_> = state
        .latest
        .values()
        .filter(|entry| selector.matches(entry))
        .cloned()
        .collect();
    entries.sort_by_key(|entry| entry.revision);
    entries
}

/// One subscriber's registration; dropping it unregisters.
pub(super) struct Subscription {
    hub: Arc<WatchHub>,
    id: u64,
    pub(super) selector: Arc<Selector>,
    pub(super) signal: Arc<Signal>,
    /// Entries up to here may concern this subscriber and must be examined even if no
    /// further wake-up arrives.
    scan_until: u64,
}

/// The result of one read from the ring.
pub(super) enum RingRead {
    /// Matching entries (possibly none); `cursor` is the last revision examined.
    Entries {
        entries: Vec<Arc<JournalEntry>>,
        cursor: u64,
        more: bool,
    },
    /// Entries after `cursor` that may concern the subscriber have left the ring: a
    /// replaying subscriber reads them from the database, a live one has lagged.
    BehindRing,
}

impl Subscription {
    pub(super) fn hub(&self) -> &WatchHub {
        &self.hub
    }

    /// Reads up to `max` matching entries after `cursor` from the ring.
    pub(super) fn read_ring(&mut self, cursor: u64, max: usize) -> RingRead {
        let state = self.hub.read();
        let pending = self.signal.pending_from.swap(0, Ordering::AcqRel);
        // Everything up to here was already due for examination before this wake-up.
        let examined_all_due = cursor >= self.scan_until;
        if pending != 0 {
            self.scan_until = self.scan_until.max(state.head);
        }
        if cursor >= self.scan_until {
            // Nothing after the cursor concerns us: everything up to the head is delivered.
            return RingRead::Entries {
                entries: Vec::new(),
                cursor: cursor.max(state.head),
                more: false,
            };
        }
        // Skipping ahead to the first pending revision is only safe when every entry
        // that was already due has been examined: a read cut short by its batch limit
        // must continue right after its cursor.
        let start = if examined_all_due && pending > cursor {
            pending
        } else {
            cursor + 1
        };
        if start <= state.ring_floor {
            // Put the wake-up back: whoever reads the database next still needs it.
            if pending != 0 {
                self.signal.pending_from.store(pending, Ordering::Release);
            }
            return RingRead::BehindRing;
        }
        let offset = (start - state.ring_floor - 1) as usize;
        let mut entries = Vec::new();
        let mut last = start - 1;
        for entry in state
            .ring
            .range(offset.min(state.ring.len())..)
            .take(MAX_SCAN)
        {
            if entry.revision > self.scan_until || entries.len() >= max {
                break;
            }
            last = entry.revision;
            if self.selector.matches(entry) {
                entries.push(entry.clone());
            }
        }
        RingRead::Entries {
            entries,
            cursor: last,
            more: last < self.scan_until,
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.hub.unsubscribe(self.id, &self.selector);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pharos_core::domain::{Event, Severity};
    use pharos_core::journal::Change;

    fn event(revision: u64, project: Option<&str>) -> JournalEntry {
        JournalEntry::new(
            revision,
            0,
            Change::append(Event {
                id: revision.to_string(),
                kind: "test".into(),
                severity: Severity::Info,
                message: String::new(),
                source: "test".into(),
                project_id: project.map(str::to_owned),
                environment: None,
                attributes: Default::default(),
            }),
        )
    }

    /// Reads everything available, in batches of `batch`, like a stream does.
    fn drain(subscription: &mut Subscription, cursor: &mut u64, batch: usize) -> Vec<u64> {
        let mut seen = Vec::new();
        loop {
            match subscription.read_ring(*cursor, batch) {
                RingRead::Entries {
                    entries,
                    cursor: examined,
                    more,
                } => {
                    *cursor = examined;
                    seen.extend(entries.iter().map(|e| e.revision));
                    if !more {
                        return seen;
                    }
                }
                RingRead::BehindRing => panic!("fell behind a ring of 1024"),
            }
        }
    }

    #[test]
    fn a_read_cut_short_by_its_batch_continues_after_its_cursor() {
        let hub = Arc::new(WatchHub::new(1024, 0, 0, Vec::new()));
        let (mut subscription, _, _) = hub.subscribe(Selector::everything(), false);
        hub.publish((1..=300).map(|r| event(r, None)).collect());
        // One batch of 256, then a new change arrives before the rest is read.
        let RingRead::Entries {
            entries,
            mut cursor,
            more,
        } = subscription.read_ring(0, 256)
        else {
            panic!("behind the ring");
        };
        assert!(more);
        assert_eq!(entries.len(), 256);
        hub.publish(vec![event(301, None)]);
        let rest = drain(&mut subscription, &mut cursor, 256);
        assert_eq!(
            rest,
            (257..=301).collect::<Vec<_>>(),
            "no change is skipped"
        );
    }

    #[test]
    fn an_idle_filtered_subscriber_skips_what_does_not_concern_it() {
        let hub = Arc::new(WatchHub::new(1024, 0, 0, Vec::new()));
        let mut selector = Selector::everything();
        selector.projects.insert("api".into());
        let (mut subscription, _, _) = hub.subscribe(selector, false);
        hub.publish((1..=100).map(|r| event(r, Some("web"))).collect());
        let mut cursor = 0;
        assert!(drain(&mut subscription, &mut cursor, 256).is_empty());
        assert_eq!(cursor, 100, "the cursor moves to the head without matches");
        hub.publish(vec![event(101, Some("api"))]);
        assert_eq!(drain(&mut subscription, &mut cursor, 256), vec![101]);
    }
}
