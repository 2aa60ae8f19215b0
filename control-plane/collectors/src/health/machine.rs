//! One check's state machine: consecutive thresholds before the status changes, and flap
//! detection (too many changes in a window mark the check as flapping, and while it
//! flaps its changes are not announced one by one).

use std::collections::VecDeque;
use std::time::Duration;

use pharos_core::domain::HealthStatus;

/// When a check counts as flapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlapPolicy {
    pub window: Duration,
    /// Status changes within the window that start flapping; flapping ends when the
    /// window holds at most half as many.
    pub changes: usize,
}

impl Default for FlapPolicy {
    fn default() -> Self {
        FlapPolicy {
            window: Duration::from_secs(600),
            changes: 6,
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct CheckMachine {
    pub status: HealthStatus,
    pub flapping: bool,
    /// When the status last changed (microseconds since the epoch).
    pub since_micros: i64,
    failures: u32,
    successes: u32,
    changes: VecDeque<i64>,
}

/// What one observation changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Observed {
    /// The status changed from this one.
    pub changed_from: Option<HealthStatus>,
    /// Flapping started (true) or ended (false).
    pub flapping: Option<bool>,
}

impl Observed {
    /// Whether watchers hear of it: flapping on or off always; a status change only
    /// while not flapping.
    pub fn announce(&self, flapping: bool) -> bool {
        self.flapping.is_some() || (self.changed_from.is_some() && !flapping)
    }
}

impl CheckMachine {
    /// A machine resuming from a known status (after a restart).
    pub fn resume(status: HealthStatus, flapping: bool, since_micros: i64) -> CheckMachine {
        CheckMachine {
            status,
            flapping,
            since_micros,
            ..CheckMachine::default()
        }
    }

    /// Takes one run's outcome. `unhealthy_after` consecutive failures make the check
    /// unhealthy; `healthy_after` consecutive passes bring it back. Between healthy and
    /// degraded the status follows each run.
    pub fn observe(
        &mut self,
        outcome: HealthStatus,
        now_micros: i64,
        unhealthy_after: u32,
        healthy_after: u32,
        policy: FlapPolicy,
    ) -> Observed {
        let next = if outcome.is_passing() {
            self.failures = 0;
            self.successes = self.successes.saturating_add(1);
            match self.status {
                HealthStatus::Unhealthy if self.successes < healthy_after => self.status,
                _ => outcome,
            }
        } else {
            self.successes = 0;
            self.failures = self.failures.saturating_add(1);
            if self.failures >= unhealthy_after {
                HealthStatus::Unhealthy
            } else {
                self.status
            }
        };
        let mut observed = Observed::default();
        if next != self.status {
            observed.changed_from = Some(self.status);
            // Leaving "unknown" is learning, not flapping.
            if self.status != HealthStatus::Unknown {
                self.changes.push_back(now_micros);
            }
            self.status = next;
            self.since_micros = now_micros;
        }
        let horizon = now_micros - policy.window.as_micros() as i64;
        while self.changes.front().is_some_and(|&at| at < horizon) {
            self.changes.pop_front();
        }
        if !self.flapping && self.changes.len() >= policy.changes {
            self.flapping = true;
            observed.flapping = Some(true);
        } else if self.flapping && self.changes.len() <= policy.changes / 2 {
            self.flapping = false;
            observed.flapping = Some(false);
        }
        observed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pharos_core::domain::HealthStatus::*;

    const SECOND: i64 = 1_000_000;

    fn run(machine: &mut CheckMachine, outcomes: &[HealthStatus]) -> Vec<HealthStatus> {
        outcomes
            .iter()
            .enumerate()
            .map(|(i, &o)| {
                machine.observe(o, i as i64 * SECOND, 3, 2, FlapPolicy::default());
                machine.status
            })
            .collect()
    }

    #[test]
    fn thresholds_delay_changes() {
        let mut machine = CheckMachine::default();
        let statuses = run(
            &mut machine,
            &[
                Healthy, Unhealthy, Unhealthy, Unhealthy, Healthy, Healthy, Degraded,
            ],
        );
        assert_eq!(
            statuses,
            vec![
                Healthy, Healthy, Healthy, Unhealthy, Unhealthy, Healthy, Degraded
            ]
        );
    }

    #[test]
    fn a_failing_start_stays_unknown_until_the_threshold() {
        let mut machine = CheckMachine::default();
        assert_eq!(
            run(&mut machine, &[Unhealthy, Unhealthy, Unhealthy]),
            vec![Unknown, Unknown, Unhealthy]
        );
    }

    #[test]
    fn flapping_starts_after_many_changes_and_ends_when_calm() {
        let policy = FlapPolicy {
            window: Duration::from_secs(60),
            changes: 4,
        };
        let mut machine = CheckMachine::default();
        let mut announced = Vec::new();
        let mut t = 0;
        for outcome in [
            Healthy, Unhealthy, Healthy, Unhealthy, Healthy, Unhealthy, Healthy,
        ] {
            t += SECOND;
            let observed = machine.observe(outcome, t, 1, 1, policy);
            if observed.announce(machine.flapping) {
                announced.push((machine.status, machine.flapping));
            }
        }
        // Unknown->healthy, then three changes announced, the fourth starts flapping,
        // and the changes after it are silent.
        assert_eq!(
            announced,
            vec![
                (Healthy, false),
                (Unhealthy, false),
                (Healthy, false),
                (Unhealthy, false),
                (Healthy, true)
            ]
        );
        // A calm window ends flapping.
        let observed = machine.observe(Healthy, t + 120 * SECOND, 1, 1, policy);
        assert_eq!(observed.flapping, Some(false));
        assert!(!machine.flapping);
    }
}
