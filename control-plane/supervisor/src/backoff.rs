//! How long a failing task waits before its next start.

use std::time::Duration;

/// Delays between the starts of a failing task: `first`, doubled after every failure up
/// to `max`. A run that lasted `reset_after` counts as recovered, so the next failure
/// waits `first` again.
#[derive(Clone, Copy, Debug)]
pub struct Backoff {
    pub first: Duration,
    pub max: Duration,
    pub reset_after: Duration,
}

impl Default for Backoff {
    /// A one-off panic costs a second; a task that fails at every start is retried once
    /// a minute rather than flooding the log.
    fn default() -> Backoff {
        Backoff {
            first: Duration::from_secs(1),
            max: Duration::from_secs(60),
            reset_after: Duration::from_secs(60),
        }
    }
}
