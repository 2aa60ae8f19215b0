//! One check's task: run its probe every interval (or watch its heartbeats) and hand
//! each result to the engine.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use super::engine::ProbeStats;
use super::heartbeats::Heartbeats;
use super::probe::{self, ProbeOutcome, Verdict};
use super::schedule::Schedule;
use pharos_core::domain::{CheckResult, HealthStatus};
use pharos_store::journal::now_micros;

pub(super) async fn run_active(
    schedule: Schedule,
    probe: Arc<dyn probe::Probe>,
    stats: Arc<ProbeStats>,
    semaphore: Arc<Semaphore>,
    outcomes: mpsc::Sender<CheckResult>,
    cancel: CancellationToken,
) {
    let mut ticker = tokio::time::interval_at(schedule.first_run, schedule.interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        let scheduled = tokio::select! {
            _ = cancel.cancelled() => return,
            scheduled = ticker.tick() => scheduled,
        };
        let Ok(_permit) = semaphore.acquire().await else {
            return;
        };
        stats.record(scheduled.elapsed());
        let at_micros = now_micros();
        let started = Instant::now();
        let outcome = tokio::select! {
            _ = cancel.cancelled() => return,
            outcome = tokio::time::timeout(schedule.timeout, probe.run()) => outcome,
        };
        let result = match outcome {
            Ok(outcome) => to_result(&schedule.check_id, at_micros, outcome),
            Err(_) => CheckResult {
                check_id: schedule.check_id.clone(),
                at_micros,
                outcome: HealthStatus::Unhealthy,
                message: format!(
                    "timed out after {}",
                    humantime::format_duration(schedule.timeout)
                ),
                connect_micros: None,
                tls_micros: None,
                first_byte_micros: None,
                total_micros: started.elapsed().as_micros() as i64,
                measurements: BTreeMap::new(),
            },
        };
        if outcomes.send(result).await.is_err() {
            return;
        }
    }
}

pub(super) async fn run_heartbeat(
    schedule: Schedule,
    grace: Duration,
    heartbeats: Heartbeats,
    outcomes: mpsc::Sender<CheckResult>,
    cancel: CancellationToken,
) {
    let mut ticker = tokio::time::interval_at(schedule.first_run, schedule.interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let registered_at = now_micros();
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let now = now_micros();
        let grace_micros = grace.as_micros() as i64;
        let (outcome, message) = match heartbeats.last(&schedule.check_id) {
            Some(last) if now - last <= grace_micros => (
                HealthStatus::Healthy,
                format!(
                    "last heartbeat {} ago",
                    humantime::format_duration(Duration::from_millis(((now - last) / 1000) as u64))
                ),
            ),
            Some(last) => (
                HealthStatus::Unhealthy,
                format!(
                    "no heartbeat for {}",
                    humantime::format_duration(Duration::from_millis(((now - last) / 1000) as u64))
                ),
            ),
            // Give a service its grace period after pharosd starts before failing it.
            None if now - registered_at <= grace_micros => continue,
            None => (
                HealthStatus::Unhealthy,
                "no heartbeat received yet".to_owned(),
            ),
        };
        let result = CheckResult {
            check_id: schedule.check_id.clone(),
            at_micros: now,
            outcome,
            message,
            connect_micros: None,
            tls_micros: None,
            first_byte_micros: None,
            total_micros: 0,
            measurements: BTreeMap::new(),
        };
        if outcomes.send(result).await.is_err() {
            return;
        }
    }
}

fn to_result(check_id: &str, at_micros: i64, outcome: ProbeOutcome) -> CheckResult {
    let micros = |d: Duration| d.as_micros() as i64;
    CheckResult {
        check_id: check_id.to_owned(),
        at_micros,
        outcome: match outcome.verdict {
            Verdict::Healthy => HealthStatus::Healthy,
            Verdict::Degraded => HealthStatus::Degraded,
            Verdict::Unhealthy => HealthStatus::Unhealthy,
        },
        message: outcome.message,
        connect_micros: outcome.timings.connect.map(micros),
        tls_micros: outcome.timings.tls.map(micros),
        first_byte_micros: outcome.timings.first_byte.map(micros),
        total_micros: micros(outcome.timings.total),
        measurements: outcome.measurements.into_iter().collect(),
    }
}
