//! When a check runs: its interval and timeout, and a first run spread over the
//! interval.

use std::hash::{Hash, Hasher};
use std::time::Duration;

use tokio::time::Instant;

/// One check's timing, handed to the task that runs it.
pub(super) struct Schedule {
    pub(super) check_id: String,
    pub(super) interval: Duration,
    pub(super) timeout: Duration,
    pub(super) first_run: Instant,
}

/// Start times spread over the interval by the check's id, so checks added together do
/// not all run at the same moment.
pub(super) fn spread(check_id: &str, interval: Duration) -> Instant {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    check_id.hash(&mut hasher);
    let offset = hasher.finish() % (interval.as_millis().max(1) as u64);
    Instant::now() + Duration::from_millis(offset)
}
