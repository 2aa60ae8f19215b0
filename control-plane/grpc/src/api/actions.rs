//! `pharos.v1.ActionService`: actions become operations (see `pharos_collectors::operations`);
//! every call is audited with its outcome.

use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;
use pharos_proto::v1 as pb;
use pharos_proto::v1::action_service_server::ActionService;
use tokio_util::sync::CancellationToken;
use tonic::{Code, Request, Response, Status};

use super::convert::operations::{operation, state_from_proto};
use super::convert::timestamp;
use super::paging::{decode_token, encode_token, page_size};
use crate::auth::Principal;
use pharos_collectors::operations::{ActionError, ActionRequest, AuditEntry, AuditLog, Operations};
use pharos_core::domain::{Operation, OperationKind};
use pharos_store::journal::now_micros;

pub struct ActionApi {
    operations: Arc<Operations>,
    audit: AuditLog,
    /// Ends WatchOperation streams at shutdown.
    streams: CancellationToken,
}

impl ActionApi {
    pub fn new(
        operations: Arc<Operations>,
        audit: AuditLog,
        streams: CancellationToken,
    ) -> ActionApi {
        ActionApi {
            operations,
            audit,
            streams,
        }
    }

    async fn act<T>(
        &self,
        method: &str,
        request: Request<T>,
        kind: OperationKind,
        fields: impl FnOnce(T) -> (String, String, String, bool, Option<u32>),
    ) -> Result<Operation, Status> {
        let actor = request
            .extensions()
            .get::<Principal>()
            .map_or_else(|| "anonymous".to_owned(), |p| p.name.clone());
        let (deployment_id, reason, request_id, dry_run, replicas) = fields(request.into_inner());
        let result = self
            .operations
            .submit(ActionRequest {
                kind,
                deployment_id: deployment_id.clone(),
                reason: reason.clone(),
                request_id: Some(request_id.clone()).filter(|id| !id.is_empty()),
                dry_run,
                replicas,
                actor: actor.clone(),
            })
            .await
            .map_err(status);
        let (code, message, operation_id) = match &result {
            Ok(op) => (Code::Ok, String::new(), op.id.clone()),
            Err(status) => (status.code(), status.message().to_owned(), String::new()),
        };
        self.audit.record(AuditEntry {
            at_micros: now_micros(),
            actor,
            method: format!("/pharos.v1.ActionService/{method}"),
            deployment_id,
            reason,
            request_id,
            code: super::error::code_name(code).to_owned(),
            message,
            operation_id,
        });
        result
    }
}

type OperationStream =
    Pin<Box<dyn Stream<Item = Result<pb::WatchOperationResponse, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl ActionService for ActionApi {
    async fn restart_deployment(
        &self,
        request: Request<pb::RestartDeploymentRequest>,
    ) -> Result<Response<pb::RestartDeploymentResponse>, Status> {
        let op = self
            .act("RestartDeployment", request, OperationKind::Restart, |r| {
                (r.deployment_id, r.reason, r.request_id, r.dry_run, None)
            })
            .await?;
        Ok(Response::new(pb::RestartDeploymentResponse {
            operation: Some(operation(&op)),
        }))
    }

    async fn stop_deployment(
        &self,
        request: Request<pb::StopDeploymentRequest>,
    ) -> Result<Response<pb::StopDeploymentResponse>, Status> {
        let op = self
            .act("StopDeployment", request, OperationKind::Stop, |r| {
                (r.deployment_id, r.reason, r.request_id, r.dry_run, None)
            })
            .await?;
        Ok(Response::new(pb::StopDeploymentResponse {
            operation: Some(operation(&op)),
        }))
    }

    async fn start_deployment(
        &self,
        request: Request<pb::StartDeploymentRequest>,
    ) -> Result<Response<pb::StartDeploymentResponse>, Status> {
        let op = self
            .act("StartDeployment", request, OperationKind::Start, |r| {
                (r.deployment_id, r.reason, r.request_id, r.dry_run, None)
            })
            .await?;
        Ok(Response::new(pb::StartDeploymentResponse {
            operation: Some(operation(&op)),
        }))
    }

    async fn scale_deployment(
        &self,
        request: Request<pb::ScaleDeploymentRequest>,
    ) -> Result<Response<pb::ScaleDeploymentResponse>, Status> {
        let op = self
            .act("ScaleDeployment", request, OperationKind::Scale, |r| {
                (
                    r.deployment_id,
                    r.reason,
                    r.request_id,
                    r.dry_run,
                    Some(r.replicas),
                )
            })
            .await?;
        Ok(Response::new(pb::ScaleDeploymentResponse {
            operation: Some(operation(&op)),
        }))
    }

    async fn rollout_restart(
        &self,
        request: Request<pb::RolloutRestartRequest>,
    ) -> Result<Response<pb::RolloutRestartResponse>, Status> {
        let op = self
            .act(
                "RolloutRestart",
                request,
                OperationKind::RolloutRestart,
                |r| (r.deployment_id, r.reason, r.request_id, r.dry_run, None),
            )
            .await?;
        Ok(Response::new(pb::RolloutRestartResponse {
            operation: Some(operation(&op)),
        }))
    }

    async fn get_operation(
        &self,
        request: Request<pb::GetOperationRequest>,
    ) -> Result<Response<pb::GetOperationResponse>, Status> {
        let id = request.into_inner().id;
        let op = self
            .operations
            .get(&id)
            .await
            .map_err(|e| status(e.into()))?
            .ok_or_else(|| not_found(&id))?;
        Ok(Response::new(pb::GetOperationResponse {
            operation: Some(operation(&op)),
        }))
    }

    async fn list_operations(
        &self,
        request: Request<pb::ListOperationsRequest>,
    ) -> Result<Response<pb::ListOperationsResponse>, Status> {
        let request = request.into_inner();
        let limit = page_size(request.page_size)?;
        let mut states = Vec::new();
        for value in &request.states {
            states.push(state_from_proto(*value).ok_or_else(|| {
                super::error::invalid_argument(format!(
                    "states: {value} is not an operation state (use OPERATION_STATE_RUNNING, OPERATION_STATE_FAILED, ...)"
                ))
            })?);
        }
        let before = match decode_token(&request.page_token)? {
            None => None,
            Some(key) => Some(
                key.split_once('/')
                    .and_then(|(created, id)| Some((created.parse().ok()?, id.to_owned())))
                    .ok_or_else(|| {
                        super::error::invalid_argument(
                            "invalid page_token: pass the next_page_token of a previous response",
                        )
                    })?,
            ),
        };
        let deployment = Some(request.deployment_id.as_str()).filter(|d| !d.is_empty());
        let mut found = self
            .operations
            .store()
            .list(deployment, &states, before, limit as u64 + 1)
            .await
            .map_err(|e| status(e.into()))?;
        let more = found.len() > limit;
        found.truncate(limit);
        let next = more
            .then(|| {
                found
                    .last()
                    .map(|op| format!("{}/{}", op.created_micros, op.id))
            })
            .flatten();
        Ok(Response::new(pb::ListOperationsResponse {
            operations: found
                .iter()
                .map(|op| self.operations_current(op))
                .map(|op| operation(&op))
                .collect(),
            next_page_token: encode_token(next),
        }))
    }

    type WatchOperationStream = OperationStream;

    async fn watch_operation(
        &self,
        request: Request<pb::WatchOperationRequest>,
    ) -> Result<Response<Self::WatchOperationStream>, Status> {
        let request = request.into_inner();
        let id = request.id;
        let mut after = request.after_version;
        let live = self.operations.subscribe(&id);
        let first = match &live {
            Some(receiver) => receiver.borrow().clone(),
            None => self
                .operations
                .get(&id)
                .await
                .map_err(|e| status(e.into()))?
                .ok_or_else(|| not_found(&id))?,
        };
        let operations = self.operations.clone();
        let shutdown = self.streams.clone();
        let stream = async_stream::try_stream! {
            let mut current = first;
            let mut live = live;
            loop {
                if current.version > after {
                    after = current.version;
                    yield pb::WatchOperationResponse { operation: Some(operation(&current)) };
                }
                if current.state.is_final() {
                    break;
                }
                let Some(receiver) = live.as_mut() else { break };
                let changed = tokio::select! {
                    _ = shutdown.cancelled() => None,
                    changed = receiver.changed() => Some(changed.is_ok()),
                };
                match changed {
                    None => {
                        Err(super::error::unavailable(format!(
                            "server shutting down; watch again with after_version {after}"
                        )))?;
                    }
                    Some(false) => {
                        // The runner is gone: its final state is stored.
                        live = None;
                        current = operations
                            .get(&current.id)
                            .await
                            .map_err(|e| status(e.into()))?
                            .unwrap_or(current);
                        continue;
                    }
                    Some(true) => {}
                }
                if let Some(receiver) = live.as_mut() {
                    current = receiver.borrow_and_update().clone();
                }
            }
        };
        Ok(Response::new(Box::pin(stream)))
    }

    async fn list_audit_records(
        &self,
        request: Request<pb::ListAuditRecordsRequest>,
    ) -> Result<Response<pb::ListAuditRecordsResponse>, Status> {
        let request = request.into_inner();
        let limit = page_size(request.page_size)?;
        let before = match decode_token(&request.page_token)? {
            None => None,
            Some(key) => Some(key.parse::<i64>().map_err(|_| {
                super::error::invalid_argument(
                    "invalid page_token: pass the next_page_token of a previous response",
                )
            })?),
        };
        let mut records = self
            .operations
            .store()
            .audit_records(before, limit as u64 + 1)
            .await
            .map_err(|e| status(e.into()))?;
        let more = records.len() > limit;
        records.truncate(limit);
        let next = more
            .then(|| records.last().map(|(id, _)| id.to_string()))
            .flatten();
        Ok(Response::new(pb::ListAuditRecordsResponse {
            records: records
                .into_iter()
                .map(|(_, r)| pb::AuditRecord {
                    time: Some(timestamp(r.at_micros)),
                    actor: r.actor,
                    method: r.method,
                    deployment_id: r.deployment_id,
                    reason: r.reason,
                    request_id: r.request_id,
                    code: r.code,
                    message: r.message,
                    operation_id: r.operation_id,
                })
                .collect(),
            next_page_token: encode_token(next),
        }))
    }
}

impl ActionApi {
    fn operations_current(&self, stored: &Operation) -> Operation {
        match self.operations.subscribe(&stored.id) {
            Some(receiver) => receiver.borrow().clone(),
            None => stored.clone(),
        }
    }
}

fn not_found(id: &str) -> Status {
    super::error::not_found(format!(
        "operation {id:?} not found (ListOperations shows the known ones)"
    ))
}

fn status(err: ActionError) -> Status {
    super::error::status(&err)
}
