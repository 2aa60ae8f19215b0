//! The health engine: runs every check of the catalog on its schedule, turns outcomes
//! into statuses (thresholds, flapping), aggregates them per deployment, journals the
//! transitions and hands every result to the history writer.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

pub use super::heartbeats::{HeartbeatError, Heartbeats};
use super::machine::{CheckMachine, FlapPolicy};
use super::probe::{self, ProbeKind};
use super::runs::{run_active, run_heartbeat};
use super::schedule::{Schedule, spread};
use crate::catalog::CatalogView;
use pharos_core::domain::{
    CheckHealth, CheckResult, CheckSpec, Deployment, DeploymentHealth, HealthStatus, check_id,
};
use pharos_store::journal::{Change, JournalEntry, Object, WriterHandle};

/// The current health of everything, read by the API.
#[derive(Debug, Default)]
pub struct HealthState {
    pub checks: BTreeMap<String, CheckHealth>,
    pub deployments: BTreeMap<String, DeploymentHealth>,
}

pub type SharedHealth = Arc<RwLock<HealthState>>;

/// Counters of the prober, for `/metrics` and the benchmarks.
#[derive(Debug, Default)]
pub struct ProbeStats {
    /// Probes run (active checks only).
    pub probes: std::sync::atomic::AtomicU64,
    /// How late each probe started against its schedule (semaphore wait included).
    lateness: Mutex<super::history::LatencyHistogram>,
}

impl ProbeStats {
    pub(super) fn record(&self, lateness: Duration) {
        self.probes
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.lateness
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .record(lateness.as_micros() as i64);
    }

    /// The lateness quantile `q` (0..1) since the last reset.
    pub fn lateness(&self, q: f64) -> Option<Duration> {
        self.lateness
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .quantile(q)
    }

    pub fn reset_lateness(&self) {
        *self.lateness.lock().unwrap_or_else(|p| p.into_inner()) = Default::default();
    }
}

#[derive(Clone, Copy, Debug)]
pub struct HealthConfig {
    /// Checks running at once, at most.
    pub concurrency: usize,
    pub flap: FlapPolicy,
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig {
            concurrency: 64,
            flap: FlapPolicy::default(),
        }
    }
}

struct RunningCheck {
    spec: CheckSpec,
    deployment_id: String,
    cancel: CancellationToken,
    task: Option<JoinHandle<()>>,
}

pub struct HealthEngine {
    catalog: watch::Receiver<Arc<CatalogView>>,
    writer: WriterHandle,
    history: mpsc::Sender<CheckResult>,
    state: SharedHealth,
    heartbeats: Heartbeats,
    outcomes: mpsc::Receiver<CheckResult>,
    outcome_sender: mpsc::Sender<CheckResult>,
    running: HashMap<String, RunningCheck>,
    machines: HashMap<String, CheckMachine>,
    semaphore: Arc<Semaphore>,
    config: HealthConfig,
    stats: Arc<ProbeStats>,
    /// Container state for `container` checks; `None` until the collector is attached.
    containers: Option<Arc<crate::containers::ContainerIndex>>,
}

impl HealthEngine {
    pub fn stats(&self) -> Arc<ProbeStats> {
        self.stats.clone()
    }

    /// Feeds `container` checks from the containers collector; call before
    /// [`prepare`](Self::prepare).
    pub fn attach_containers(&mut self, index: Arc<crate::containers::ContainerIndex>) {
        self.containers = Some(index);
    }

    /// `previous` is the health topic's last journaled state, so a restart resumes from
    /// known statuses instead of "unknown".
    pub fn new(
        catalog: watch::Receiver<Arc<CatalogView>>,
        writer: WriterHandle,
        history: mpsc::Sender<CheckResult>,
        previous: Vec<Arc<JournalEntry>>,
        config: HealthConfig,
    ) -> (HealthEngine, SharedHealth, Heartbeats) {
        let mut state = HealthState::default();
        let mut machines = HashMap::new();
        for entry in previous {
            match &entry.object {
                Object::CheckHealth(check) => {
                    machines.insert(
                        check.check_id.clone(),
                        CheckMachine::resume(check.status, check.flapping, check.since_micros),
                    );
                    state.checks.insert(check.check_id.clone(), check.clone());
                }
                Object::DeploymentHealth(health) => {
                    state
                        .deployments
                        .insert(health.deployment_id.clone(), health.clone());
                }
                _ => {}
            }
        }
        let state = Arc::new(RwLock::new(state));
        let heartbeats = Heartbeats::default();
        let (outcome_sender, outcomes) = mpsc::channel(4096);
        let engine = HealthEngine {
            catalog,
            writer,
            history,
            state: state.clone(),
            heartbeats: heartbeats.clone(),
            outcomes,
            outcome_sender,
            running: HashMap::new(),
            machines,
            semaphore: Arc::new(Semaphore::new(config.concurrency.max(1))),
            config,
            stats: Arc::default(),
            containers: None,
        };
        (engine, state, heartbeats)
    }

    /// Starts the catalog's checks and journals their initial state, so that when
    /// pharosd starts serving, the health topic already names every check.
    pub async fn prepare(&mut self) {
        let view = self.catalog.borrow_and_update().clone();
        self.reconcile(&view).await;
    }

    /// Follows catalog changes and check outcomes until `shutdown`; call
    /// [`prepare`](Self::prepare) first.
    pub async fn run(mut self, shutdown: CancellationToken) {
        // A catalog that cannot change (the embedded demo) closes its channel at once;
        // the checks keep running on the catalog they have.
        let mut catalog_open = true;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                changed = self.catalog.changed(), if catalog_open => {
                    if changed.is_err() {
                        catalog_open = false;
                        continue;
                    }
                    let view = self.catalog.borrow_and_update().clone();
                    self.reconcile(&view).await;
                }
                Some(result) = self.outcomes.recv() => self.observe(result).await,
            }
        }
        for check in self.running.values() {
            check.cancel.cancel();
        }
        for (_, mut check) in self.running.drain() {
            if let Some(task) = check.task.take() {
                let _ = task.await;
            }
        }
    }

    /// Starts, restarts and stops check tasks to match the catalog. Unchanged checks keep
    /// running and keep their state.
    async fn reconcile(&mut self, view: &CatalogView) {
        let mut desired: HashMap<String, (&Deployment, &CheckSpec)> = HashMap::new();
        for deployment in &view.catalog.deployments {
            for spec in &deployment.checks {
                desired.insert(
                    check_id(&deployment.project_id, &deployment.environment, &spec.name),
                    (deployment, spec),
                );
            }
        }
        let mut changes = Vec::new();
        let removed: Vec<String> = self
            .running
            .keys()
            .filter(|id| !desired.contains_key(*id))
            .cloned()
            .collect();
        let stale: Vec<String> = self
            .state
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .checks
            .keys()
            .filter(|id| !desired.contains_key(*id) && !self.running.contains_key(*id))
            .cloned()
            .collect();
        for id in removed.iter().chain(&stale) {
            if let Some(check) = self.running.remove(id) {
                check.cancel.cancel();
            }
            self.machines.remove(id);
            self.heartbeats.unregister(id);
            let last = self
                .state
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .checks
                .remove(id);
            if let Some(last) = last {
                changes.push(Change::delete(Object::CheckHealth(last)));
            }
        }
        for (id, (deployment, spec)) in &desired {
            if self
                .running
                .get(id)
                .is_some_and(|running| running.spec == **spec)
            {
                continue;
            }
            if let Some(old) = self.running.remove(id) {
                old.cancel.cancel();
            }
            let machine = self.machines.entry(id.clone()).or_default().clone();
            let known = self
                .state
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .checks
                .get(id)
                .cloned();
            let health = CheckHealth {
                check_id: id.clone(),
                project_id: deployment.project_id.clone(),
                environment: deployment.environment.clone(),
                name: spec.name.clone(),
                kind: spec.kind_name().to_owned(),
                status: machine.status,
                previous_status: None,
                flapping: machine.flapping,
                since_micros: machine.since_micros,
                last_result: known.as_ref().and_then(|k| k.last_result.clone()),
            };
            let unchanged_identity = known
                .as_ref()
                .is_some_and(|k| k.kind == health.kind && k.name == health.name);
            if !unchanged_identity {
                changes.push(Change::upsert(Object::CheckHealth(health.clone())));
            }
            self.state
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .checks
                .insert(id.clone(), health);
            let (cancel, task) = self.spawn_check(id, spec, &deployment.id());
            self.running.insert(
                id.clone(),
                RunningCheck {
                    spec: (*spec).clone(),
                    deployment_id: deployment.id(),
                    cancel,
                    task,
                },
            );
        }
        changes.extend(self.deployment_changes(view, None));
        // Awaited: when reconcile returns, the checks' states are committed.
        if !changes.is_empty()
            && let Err(err) = self.writer.append(changes).await
        {
            tracing::error!(error = %err, "journaling health changes failed");
        }
    }

    fn spawn_check(
        &self,
        id: &str,
        spec: &CheckSpec,
        deployment_id: &str,
    ) -> (CancellationToken, Option<JoinHandle<()>>) {
        let cancel = CancellationToken::new();
        let kind = match probe::build(spec) {
            Ok(kind) => kind,
            Err(err) => {
                tracing::warn!(check = id, error = %err, "check cannot run");
                return (cancel, None);
            }
        };
        let schedule = Schedule {
            check_id: id.to_owned(),
            interval: spec.interval,
            timeout: spec.timeout,
            first_run: spread(id, spec.interval),
        };
        // Each check's task logs under the engine's task span, named by its check.
        let span = tracing::info_span!("check", check = %id);
        let task = match kind {
            ProbeKind::Active(probe) => tokio::spawn(
                run_active(
                    schedule,
                    probe,
                    self.stats.clone(),
                    self.semaphore.clone(),
                    self.outcome_sender.clone(),
                    cancel.clone(),
                )
                .instrument(span),
            ),
            ProbeKind::Heartbeat { grace } => {
                self.heartbeats.register(id, grace);
                tokio::spawn(
                    run_heartbeat(
                        schedule,
                        grace,
                        self.heartbeats.clone(),
                        self.outcome_sender.clone(),
                        cancel.clone(),
                    )
                    .instrument(span),
                )
            }
            // Container state comes from the containers collector; without one, the
            // check stays unknown.
            ProbeKind::Container => match &self.containers {
                Some(index) => tokio::spawn(
                    super::container::run_container_check(
                        schedule,
                        deployment_id.to_owned(),
                        index.clone(),
                        self.outcome_sender.clone(),
                        cancel.clone(),
                    )
                    .instrument(span),
                ),
                None => return (cancel, None),
            },
        };
        (cancel, Some(task))
    }

    async fn observe(&mut self, result: CheckResult) {
        let Some(running) = self.running.get(&result.check_id) else {
            return;
        };
        let (unhealthy_after, healthy_after) =
            (running.spec.unhealthy_after, running.spec.healthy_after);
        let deployment_id = running.deployment_id.clone();
        let Some(machine) = self.machines.get_mut(&result.check_id) else {
            return;
        };
        let observed = machine.observe(
            result.outcome,
            result.at_micros,
            unhealthy_after,
            healthy_after,
            self.config.flap,
        );
        let machine = machine.clone();
        if self.history.try_send(result.clone()).is_err() {
            tracing::warn!(check = %result.check_id, "history writer is behind; a result was not recorded");
        }
        let announced = {
            let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
            let Some(check) = state.checks.get_mut(&result.check_id) else {
                return;
            };
            check.status = machine.status;
            check.flapping = machine.flapping;
            check.since_micros = machine.since_micros;
            check.last_result = Some(result);
            check.previous_status = observed.changed_from;
            observed.announce(machine.flapping).then(|| check.clone())
        };
        if let Some(check) = announced {
            tracing::info!(check = %check.check_id, status = check.status.as_str(), flapping = check.flapping, "check health changed");
            let mut changes = vec![Change::upsert(Object::CheckHealth(check))];
            let view = self.catalog.borrow().clone();
            changes.extend(self.deployment_changes(&view, Some(&deployment_id)));
            self.journal(changes).await;
        }
    }

    /// Recomputes deployment health (one deployment, or all) and returns the changes.
    fn deployment_changes(&self, view: &CatalogView, only: Option<&str>) -> Vec<Change> {
        let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
        let mut changes = Vec::new();
        for deployment in &view.catalog.deployments {
            let id = deployment.id();
            if only.is_some_and(|only| only != id) {
                continue;
            }
            let statuses: Vec<HealthStatus> = deployment
                .checks
                .iter()
                .map(|spec| {
                    state
                        .checks
                        .get(&check_id(
                            &deployment.project_id,
                            &deployment.environment,
                            &spec.name,
                        ))
                        .map_or(HealthStatus::Unknown, |check| check.status)
                })
                .collect();
            let count =
                |wanted: HealthStatus| statuses.iter().filter(|s| **s == wanted).count() as u32;
            let previous = state.deployments.get(&id).cloned();
            let health = DeploymentHealth {
                deployment_id: id.clone(),
                project_id: deployment.project_id.clone(),
                environment: deployment.environment.clone(),
                status: HealthStatus::aggregate(statuses.iter().copied()),
                previous_status: previous.as_ref().map(|p| p.status),
                healthy_checks: count(HealthStatus::Healthy),
                degraded_checks: count(HealthStatus::Degraded),
                unhealthy_checks: count(HealthStatus::Unhealthy),
                unknown_checks: count(HealthStatus::Unknown),
            };
            let same = previous.as_ref().is_some_and(|p| {
                DeploymentHealth {
                    previous_status: p.previous_status,
                    ..health.clone()
                } == *p
            });
            if !same {
                changes.push(Change::upsert(Object::DeploymentHealth(health.clone())));
                state.deployments.insert(id, health);
            }
        }
        if only.is_none() {
            let gone: Vec<String> = state
                .deployments
                .keys()
                .filter(|id| !view.catalog.deployments.iter().any(|d| &d.id() == *id))
                .cloned()
                .collect();
            for id in gone {
                if let Some(last) = state.deployments.remove(&id) {
                    changes.push(Change::delete(Object::DeploymentHealth(last)));
                }
            }
        }
        changes
    }

    async fn journal(&self, changes: Vec<Change>) {
        if changes.is_empty() {
            return;
        }
        // Queued, not awaited: thousands of checks changing at once (at start-up, or when a
        // shared dependency fails) commit in a few batched transactions instead of
        // holding up the results behind them one commit at a time.
        if let Err(err) = self.writer.append_in_background(changes).await {
            tracing::error!(error = %err, "journaling health changes failed");
        }
    }
}

/// Each catalog deployment's status (unknown until the engine knows it).
pub fn deployment_statuses(view: &CatalogView, state: &HealthState) -> Vec<(String, HealthStatus)> {
    view.catalog
        .deployments
        .iter()
        .map(|d| {
            let status = state
                .deployments
                .get(&d.id())
                .map_or(HealthStatus::Unknown, |h| h.status);
            (d.environment.clone(), status)
        })
        .collect()
}
