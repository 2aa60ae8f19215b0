use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OperationKind {
    Restart,
    Stop,
    Start,
    Scale,
    RolloutRestart,
}

impl OperationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OperationKind::Restart => "restart",
            OperationKind::Stop => "stop",
            OperationKind::Start => "start",
            OperationKind::Scale => "scale",
            OperationKind::RolloutRestart => "rollout_restart",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OperationState {
    Pending,
    Running,
    Succeeded,
    Failed,
    Interrupted,
    /// A dry run's plan.
    Planned,
}

impl OperationState {
    pub const ALL: [OperationState; 6] = [
        OperationState::Pending,
        OperationState::Running,
        OperationState::Succeeded,
        OperationState::Failed,
        OperationState::Interrupted,
        OperationState::Planned,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OperationState::Pending => "pending",
            OperationState::Running => "running",
            OperationState::Succeeded => "succeeded",
            OperationState::Failed => "failed",
            OperationState::Interrupted => "interrupted",
            OperationState::Planned => "planned",
        }
    }

    pub fn parse(name: &str) -> Option<OperationState> {
        OperationState::ALL.into_iter().find(|s| s.as_str() == name)
    }

    pub fn is_final(self) -> bool {
        !matches!(self, OperationState::Pending | OperationState::Running)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepState {
    Pending,
    Running,
    Succeeded,
    Failed,
    Skipped,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperationStep {
    pub description: String,
    pub state: StepState,
    pub message: String,
    pub container_id: Option<String>,
    pub started_micros: Option<i64>,
    pub finished_micros: Option<i64>,
}

impl OperationStep {
    pub fn new(description: String, container_id: Option<String>) -> OperationStep {
        OperationStep {
            description,
            state: StepState::Pending,
            message: String::new(),
            container_id,
            started_micros: None,
            finished_micros: None,
        }
    }
}

/// An action on a deployment, stored before it runs and journaled at every change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Operation {
    pub id: String,
    pub kind: OperationKind,
    pub project_id: String,
    pub environment: String,
    pub actor: String,
    pub reason: String,
    pub request_id: Option<String>,
    pub dry_run: bool,
    /// Scale only.
    pub replicas: Option<u32>,
    pub state: OperationState,
    pub steps: Vec<OperationStep>,
    pub result: String,
    pub created_micros: i64,
    pub started_micros: Option<i64>,
    pub finished_micros: Option<i64>,
    /// Increases with every change.
    pub version: u64,
}

impl Operation {
    pub fn deployment_id(&self) -> String {
        format!("{}/{}", self.project_id, self.environment)
    }

    /// Whether a repeated request asks for the same thing as this operation.
    pub fn same_request(
        &self,
        kind: OperationKind,
        deployment_id: &str,
        reason: &str,
        dry_run: bool,
        replicas: Option<u32>,
    ) -> bool {
        self.kind == kind
            && self.deployment_id() == deployment_id
            && self.reason == reason
            && self.dry_run == dry_run
            && self.replicas == replicas
    }
}
