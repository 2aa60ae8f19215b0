//! Operations: actions on a deployment's containers (restart, stop, start, scale,
//! rolling restart). Each is admitted (reason, idempotency key, one operation per
//! deployment at a time), stored and journaled before anything is done, then run by its
//! own task, which stores and journals every step's progress.

pub mod audit;
mod plan;
mod runner;
pub use pharos_store::operations as store;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bollard::Docker;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::catalog::CatalogView;
use crate::containers::ContainerIndex;
pub use audit::AuditLog;
use pharos_core::domain::{Operation, OperationKind, OperationState, StepState};
use pharos_store::journal::now_micros;
pub use store::{AuditEntry, OperationStore, StoreError};

/// Most replicas a scale may ask for.
pub const MAX_REPLICAS: u32 = 100;

/// What a caller asks for.
#[derive(Clone, Debug)]
pub struct ActionRequest {
    pub kind: OperationKind,
    pub deployment_id: String,
    pub reason: String,
    pub request_id: Option<String>,
    pub dry_run: bool,
    pub replicas: Option<u32>,
    pub actor: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Aborted(String),
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("operations store unavailable: {0}")]
    Store(#[from] StoreError),
}

impl pharos_core::error::CodedError for ActionError {
    fn code(&self) -> pharos_core::error::ErrorCode {
        use pharos_core::error::ErrorCode;
        match self {
            ActionError::InvalidArgument(_) => ErrorCode::InvalidArgument,
            ActionError::NotFound(_) => ErrorCode::NotFound,
            ActionError::Aborted(_) => ErrorCode::Aborted,
            ActionError::FailedPrecondition(_) => ErrorCode::FailedPrecondition,
            ActionError::Store(_) => ErrorCode::Unavailable,
        }
    }
}

/// The operations manager, shared by the API and the runner tasks.
pub struct Operations {
    store: OperationStore,
    catalog: watch::Receiver<Arc<CatalogView>>,
    containers: Arc<ContainerIndex>,
    docker: watch::Receiver<Option<Docker>>,
    /// Serializes admission: idempotency and "one per deployment" are decided here.
    admission: tokio::sync::Mutex<()>,
    /// Running operations by id: their latest state, for WatchOperation.
    live: Mutex<HashMap<String, watch::Sender<Operation>>>,
    /// Deployment id -> the operation running on it.
    busy: Mutex<HashMap<String, String>>,
    tasks: TaskTracker,
    shutdown: CancellationToken,
    /// Label keys, for replicas of deployments without a selector.
    labels: crate::containers::LabelKeys,
}

impl Operations {
    pub fn new(
        store: OperationStore,
        catalog: watch::Receiver<Arc<CatalogView>>,
        containers: Arc<ContainerIndex>,
        docker: watch::Receiver<Option<Docker>>,
        labels: crate::containers::LabelKeys,
    ) -> Arc<Operations> {
        Arc::new(Operations {
            store,
            catalog,
            containers,
            docker,
            admission: tokio::sync::Mutex::new(()),
            live: Mutex::new(HashMap::new()),
            busy: Mutex::new(HashMap::new()),
            tasks: TaskTracker::new(),
            shutdown: CancellationToken::new(),
            labels,
        })
    }

    pub fn store(&self) -> &OperationStore {
        &self.store
    }

    /// Marks operations that were pending or running when pharosd stopped as
    /// interrupted. Call once at start-up, before serving.
    pub async fn mark_interrupted(&self) -> Result<usize, StoreError> {
        let unfinished = self
            .store
            .list(
                None,
                &[OperationState::Pending, OperationState::Running],
                None,
                10_000,
            )
            .await?;
        let now = now_micros();
        for mut op in unfinished.iter().cloned() {
            let at = op
                .steps
                .iter()
                .position(|s| matches!(s.state, StepState::Running | StepState::Pending));
            for step in &mut op.steps {
                match step.state {
                    StepState::Running => {
                        step.state = StepState::Failed;
                        step.message = "interrupted by a pharosd restart".to_owned();
                        step.finished_micros = Some(now);
                    }
                    StepState::Pending => step.state = StepState::Skipped,
                    _ => {}
                }
            }
            op.state = OperationState::Interrupted;
            op.result = match at {
                Some(i) => format!(
                    "interrupted by a pharosd restart at step {} of {} ({})",
                    i + 1,
                    op.steps.len(),
                    op.steps[i].description
                ),
                None => "interrupted by a pharosd restart".to_owned(),
            };
            op.finished_micros = Some(now);
            op.version += 1;
            tracing::warn!(operation = %op.id, kind = op.kind.as_str(), deployment = %op.deployment_id(), "operation interrupted by a restart");
            self.store.save(&op).await?;
        }
        Ok(unfinished.len())
    }

    /// Admits, stores and (unless a dry run) starts an operation; returns it as stored.
    pub async fn submit(
        self: &Arc<Self>,
        request: ActionRequest,
    ) -> Result<Operation, ActionError> {
        if request.reason.trim().is_empty() {
            return Err(ActionError::InvalidArgument(
                "reason is required: say why (it is stored with the operation and audited)"
                    .to_owned(),
            ));
        }
        if let Some(replicas) = request.replicas
            && replicas > MAX_REPLICAS
        {
            return Err(ActionError::InvalidArgument(format!(
                "replicas {replicas} is too many; the maximum is {MAX_REPLICAS}"
            )));
        }
        let deployment = self
            .catalog
            .borrow()
            .catalog
            .deployments
            .iter()
            .find(|d| d.id() == request.deployment_id)
            .cloned()
            .ok_or_else(|| {
                ActionError::NotFound(format!(
                    "deployment {:?} is not in the catalog (use \"<project>/<environment>\")",
                    request.deployment_id
                ))
            })?;

        let _admitted = self.admission.lock().await;
        if let Some(request_id) = &request.request_id {
            let existing = self.store.by_request_id(request_id).await?;
            if let Some(existing) = existing {
                let current = self.current(&existing);
                if current.same_request(
                    request.kind,
                    &request.deployment_id,
                    &request.reason,
                    request.dry_run,
                    request.replicas,
                ) {
                    return Ok(current);
                }
                return Err(ActionError::InvalidArgument(format!(
                    "request_id {request_id:?} was already used for operation {} ({} of {}) with other parameters; use a new request_id",
                    existing.id,
                    existing.kind.as_str(),
                    existing.deployment_id()
                )));
            }
        }
        let docker = self.docker.borrow().clone();
        if !request.dry_run {
            if docker.is_none() {
                return Err(ActionError::FailedPrecondition(format!(
                    "the container engine is not reachable ({}); see GetEngineStatus",
                    self.containers.engine().state.as_str()
                )));
            }
            let busy = self
                .busy
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&request.deployment_id)
                .cloned();
            if let Some(running) = busy {
                return Err(ActionError::Aborted(format!(
                    "operation {running} is running on {}; wait for it to finish (WatchOperation) and try again",
                    request.deployment_id
                )));
            }
        }
        let steps = plan::steps(&request, &deployment, &self.containers)?;
        let now = now_micros();
        let op = Operation {
            id: new_id(now),
            kind: request.kind,
            project_id: deployment.project_id.clone(),
            environment: deployment.environment.clone(),
            actor: request.actor.clone(),
            reason: request.reason.clone(),
            request_id: request.request_id.clone(),
            dry_run: request.dry_run,
            replicas: request.replicas,
            state: if request.dry_run {
                OperationState::Planned
            } else {
                OperationState::Pending
            },
            result: if request.dry_run {
                format!("dry run: {} step(s) would run", steps.len())
            } else {
                String::new()
            },
            steps,
            created_micros: now,
            started_micros: None,
            finished_micros: if request.dry_run { Some(now) } else { None },
            version: 1,
        };
        self.store.save(&op).await?;
        tracing::info!(operation = %op.id, kind = op.kind.as_str(), deployment = %op.deployment_id(), actor = %op.actor, dry_run = op.dry_run, "operation stored");
        if let (false, Some(docker)) = (op.dry_run, docker) {
            self.busy
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(op.deployment_id(), op.id.clone());
            let (sender, _) = watch::channel(op.clone());
            self.live
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(op.id.clone(), sender.clone());
            let runner = runner::Runner {
                operations: self.clone(),
                docker,
                deployment,
                sender,
            };
            let span = tracing::info_span!("operation", operation = %op.id);
            self.tasks.spawn(tracing::Instrument::instrument(
                runner.run(op.clone(), self.shutdown.clone()),
                span,
            ));
        }
        Ok(op)
    }

    /// The latest state of an operation that may be running.
    fn current(&self, stored: &Operation) -> Operation {
        self.live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&stored.id)
            .map(|sender| sender.borrow().clone())
            .unwrap_or_else(|| stored.clone())
    }

    pub async fn get(&self, id: &str) -> Result<Option<Operation>, StoreError> {
        if let Some(sender) = self.live.lock().unwrap_or_else(|p| p.into_inner()).get(id) {
            return Ok(Some(sender.borrow().clone()));
        }
        self.store.get(id).await
    }

    /// Follows a running operation; `None` when it is not running (read the store).
    pub fn subscribe(&self, id: &str) -> Option<watch::Receiver<Operation>> {
        self.live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .map(|sender| sender.subscribe())
    }

    /// Called by a runner after its final state is stored.
    fn finished(&self, op: &Operation) {
        self.busy
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&op.deployment_id());
        self.live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&op.id);
    }

    /// Stops the runners (their operations stay "running" in the store and are marked
    /// interrupted at the next start) and waits for them.
    pub async fn shutdown(&self) {
        self.shutdown.cancel();
        self.tasks.close();
        self.tasks.wait().await;
    }
}

fn new_id(now_micros: i64) -> String {
    static SEQUENCE: AtomicU64 = AtomicU64::new(0);
    let n = SEQUENCE.fetch_add(1, Ordering::Relaxed);
    format!(
        "op-{now_micros:x}-{:04x}",
        (n ^ std::process::id() as u64) & 0xffff
    )
}
