//! Operations and their steps, domain <-> proto.

use pharos_core::domain::{Operation, OperationKind, OperationState, OperationStep, StepState};
use pharos_proto::v1 as pb;

use super::timestamp;

pub fn operation(op: &Operation) -> pb::Operation {
    pb::Operation {
        id: op.id.clone(),
        kind: match op.kind {
            OperationKind::Restart => pb::OperationKind::Restart,
            OperationKind::Stop => pb::OperationKind::Stop,
            OperationKind::Start => pb::OperationKind::Start,
            OperationKind::Scale => pb::OperationKind::Scale,
            OperationKind::RolloutRestart => pb::OperationKind::RolloutRestart,
        } as i32,
        deployment_id: op.deployment_id(),
        actor: op.actor.clone(),
        reason: op.reason.clone(),
        request_id: op.request_id.clone().unwrap_or_default(),
        dry_run: op.dry_run,
        replicas: op.replicas.unwrap_or_default(),
        state: state(op.state) as i32,
        steps: op.steps.iter().map(step).collect(),
        result: op.result.clone(),
        create_time: Some(timestamp(op.created_micros)),
        start_time: op.started_micros.map(timestamp),
        finish_time: op.finished_micros.map(timestamp),
        version: op.version,
    }
}

fn step(step: &OperationStep) -> pb::OperationStep {
    pb::OperationStep {
        description: step.description.clone(),
        state: match step.state {
            StepState::Pending => pb::StepState::Pending,
            StepState::Running => pb::StepState::Running,
            StepState::Succeeded => pb::StepState::Succeeded,
            StepState::Failed => pb::StepState::Failed,
            StepState::Skipped => pb::StepState::Skipped,
        } as i32,
        message: step.message.clone(),
        container_id: step.container_id.clone().unwrap_or_default(),
        started: step.started_micros.map(timestamp),
        finished: step.finished_micros.map(timestamp),
    }
}

fn state(state: OperationState) -> pb::OperationState {
    match state {
        OperationState::Pending => pb::OperationState::Pending,
        OperationState::Running => pb::OperationState::Running,
        OperationState::Succeeded => pb::OperationState::Succeeded,
        OperationState::Failed => pb::OperationState::Failed,
        OperationState::Interrupted => pb::OperationState::Interrupted,
        OperationState::Planned => pb::OperationState::Planned,
    }
}

pub fn state_from_proto(value: i32) -> Option<OperationState> {
    Some(match pb::OperationState::try_from(value).ok()? {
        pb::OperationState::Pending => OperationState::Pending,
        pb::OperationState::Running => OperationState::Running,
        pb::OperationState::Succeeded => OperationState::Succeeded,
        pb::OperationState::Failed => OperationState::Failed,
        pb::OperationState::Interrupted => OperationState::Interrupted,
        pb::OperationState::Planned => OperationState::Planned,
        pb::OperationState::Unspecified => return None,
    })
}
