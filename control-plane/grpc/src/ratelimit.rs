//! Per-caller rate limits: a generic cell rate algorithm (GCRA) keyed by the caller's name
//! (token or JWT subject), or by the peer address for anonymous callers. One timestamp per
//! caller, no background task; callers idle for longer than their burst are forgotten
//! once the table grows.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Deserialize;

/// `limits:` in the config file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Sustained calls per second allowed to each caller.
    pub calls_per_second: f64,
    /// Calls a caller may make at once after being idle (default: one second's worth).
    pub burst: Option<u32>,
}

/// Forget idle callers once this many are tracked.
const PRUNE_AT: usize = 10_000;

#[derive(Debug)]
pub struct RateLimiter {
    /// Time between two calls at the sustained rate.
    interval: Duration,
    /// How far ahead of now a caller's theoretical arrival time may run.
    tolerance: Duration,
    calls_per_second: f64,
    /// Theoretical arrival time of each caller's next call.
    callers: Mutex<HashMap<String, Instant>>,
}

impl RateLimiter {
    pub fn new(config: &RateLimitConfig) -> Result<RateLimiter, String> {
        if !(config.calls_per_second.is_finite() && config.calls_per_second > 0.0) {
            return Err(format!(
                "limits.calls_per_second must be a positive number, not {}",
                config.calls_per_second
            ));
        }
        let burst = config
            .burst
            .unwrap_or(config.calls_per_second.ceil() as u32)
            .max(1);
        let interval = Duration::from_secs_f64(1.0 / config.calls_per_second);
        Ok(RateLimiter {
            interval,
            tolerance: interval * (burst - 1),
            calls_per_second: config.calls_per_second,
            callers: Mutex::new(HashMap::new()),
        })
    }

    /// Admits one call by `caller` at `now`, or says how long until it would be admitted.
    pub fn check(&self, caller: &str, now: Instant) -> Result<(), Duration> {
        let mut callers = self.callers.lock().unwrap_or_else(|e| e.into_inner());
        if callers.len() >= PRUNE_AT && !callers.contains_key(caller) {
            callers.retain(|_, tat| *tat > now);
        }
        let tat = callers.get(caller).copied().unwrap_or(now).max(now);
        let earliest = tat.checked_sub(self.tolerance).unwrap_or(now);
        if now < earliest {
            return Err(earliest - now);
        }
        callers.insert(caller.to_owned(), tat + self.interval);
        Ok(())
    }

    /// The refusal a caller over its limit receives.
    pub fn refusal(&self, caller: &str, wait: Duration) -> tonic::Status {
        crate::api::status(&RateLimited {
            calls_per_second: self.calls_per_second,
            caller: caller.to_owned(),
            retry_ms: wait.as_millis().max(1),
        })
    }
}

/// A call refused because its caller is over the rate limit.
#[derive(Debug, thiserror::Error)]
#[error("rate limit of {calls_per_second} calls/s for {caller:?} exceeded; retry in {retry_ms} ms")]
pub struct RateLimited {
    calls_per_second: f64,
    caller: String,
    retry_ms: u128,
}

impl pharos_core::error::CodedError for RateLimited {
    fn code(&self) -> pharos_core::error::ErrorCode {
        pharos_core::error::ErrorCode::ResourceExhausted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(calls_per_second: f64, burst: Option<u32>) -> RateLimiter {
        RateLimiter::new(&RateLimitConfig {
            calls_per_second,
            burst,
        })
        .unwrap()
    }

    #[test]
    fn a_burst_then_the_sustained_rate() {
        let limiter = limiter(10.0, Some(3));
        let start = Instant::now();
        for _ in 0..3 {
            assert!(limiter.check("ana", start).is_ok());
        }
        let wait = limiter.check("ana", start).unwrap_err();
        assert_eq!(wait, Duration::from_millis(100));
        // Another caller has its own budget.
        assert!(limiter.check("bob", start).is_ok());
        // One interval later exactly one more call fits.
        let later = start + Duration::from_millis(100);
        assert!(limiter.check("ana", later).is_ok());
        assert!(limiter.check("ana", later).is_err());
        // After being idle for the whole burst, the full burst is back.
        let idle = later + Duration::from_millis(400);
        for _ in 0..3 {
            assert!(limiter.check("ana", idle).is_ok());
        }
        assert!(limiter.check("ana", idle).is_err());
    }

    #[test]
    fn refusals_name_the_caller_and_the_wait() {
        let limiter = limiter(2.0, None);
        let now = Instant::now();
        assert!(limiter.check("ci", now).is_ok());
        assert!(limiter.check("ci", now).is_ok());
        let wait = limiter.check("ci", now).unwrap_err();
        let status = limiter.refusal("ci", wait);
        assert_eq!(status.code(), tonic::Code::ResourceExhausted);
        assert_eq!(
            status.message(),
            "rate limit of 2 calls/s for \"ci\" exceeded; retry in 500 ms"
        );
    }

    #[test]
    fn nonsense_rates_are_rejected() {
        for rate in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(
                RateLimiter::new(&RateLimitConfig {
                    calls_per_second: rate,
                    burst: None
                })
                .is_err()
            );
        }
    }

    #[test]
    fn idle_callers_are_forgotten_when_the_table_is_full() {
        let limiter = limiter(1000.0, Some(1));
        let now = Instant::now();
        for i in 0..PRUNE_AT {
            limiter.check(&format!("c{i}"), now).unwrap();
        }
        let later = now + Duration::from_secs(1);
        limiter.check("newcomer", later).unwrap();
        assert_eq!(limiter.callers.lock().unwrap().len(), 1);
    }
}
