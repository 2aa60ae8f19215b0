//! `container` checks: the state of a deployment's containers as the containers
//! collector sees them. Evaluated on the check's interval and at once whenever container
//! state changes (a change only sends a result when the verdict or message differs).
//!
//! - healthy: every container runs and none fails its own healthcheck;
//! - degraded: some do, some do not (restarting, exited, unhealthy...);
//! - unhealthy: none does, or no container matches the deployment.
//!
//! While the engine is not reachable no result is produced: the check keeps its last
//! status (the engine's own status is on the containers topic).

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use super::schedule::Schedule;
use crate::containers::ContainerIndex;
use pharos_core::domain::{CheckResult, Container, HealthStatus};
use pharos_store::journal::now_micros;

pub(super) async fn run_container_check(
    schedule: Schedule,
    deployment_id: String,
    index: Arc<ContainerIndex>,
    outcomes: mpsc::Sender<CheckResult>,
    cancel: CancellationToken,
) {
    let mut ticker = tokio::time::interval_at(schedule.first_run, schedule.interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut changes = index.changes();
    let mut last: Option<(HealthStatus, String)> = None;
    loop {
        let on_tick = tokio::select! {
            _ = cancel.cancelled() => return,
            _ = ticker.tick() => true,
            changed = changes.changed() => {
                if changed.is_err() {
                    return;
                }
                false
            }
        };
        if !index.engine_up() {
            continue;
        }
        let (outcome, message) = evaluate(&index.of_deployment(&deployment_id));
        let verdict = Some((outcome, message.clone()));
        if !on_tick && verdict == last {
            continue;
        }
        last = verdict;
        let result = CheckResult {
            check_id: schedule.check_id.clone(),
            at_micros: now_micros(),
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

fn evaluate(containers: &[Container]) -> (HealthStatus, String) {
    if containers.is_empty() {
        return (
            HealthStatus::Unhealthy,
            "no container matches the deployment".to_owned(),
        );
    }
    let serving = containers.iter().filter(|c| c.is_serving()).count();
    let mut failing: Vec<String> = containers
        .iter()
        .filter(|c| !c.is_serving())
        .map(|c| format!("{} {}", c.name, c.status_text))
        .collect();
    failing.sort();
    let total = containers.len();
    if serving == total {
        return (HealthStatus::Healthy, format!("{serving}/{total} running"));
    }
    let status = if serving == 0 {
        HealthStatus::Unhealthy
    } else {
        HealthStatus::Degraded
    };
    (
        status,
        format!("{serving}/{total} running; {}", failing.join(", ")),
    )
}
