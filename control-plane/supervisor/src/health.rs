//! Every task's state as health reporting shows it: `/healthz` and `grpc.health.v1`
//! read this table.

use std::collections::BTreeMap;

use tokio::sync::watch;

/// What happens when a task ends while pharosd still runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OnFailure {
    /// Start it again after a backoff.
    Restart,
    /// Stop pharosd with an error.
    StopPharosd,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    Running,
    /// Failed; waiting for its next start.
    Restarting,
    /// Failed and not restarted: pharosd is stopping because of it.
    Failed,
    /// Stopped by shutdown.
    Stopped,
}

impl std::fmt::Display for TaskState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TaskState::Running => "running",
            TaskState::Restarting => "restarting",
            TaskState::Failed => "failed",
            TaskState::Stopped => "stopped",
        })
    }
}

/// One task as health reporting shows it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct TaskStatus {
    pub name: &'static str,
    pub state: TaskState,
    pub on_failure: OnFailure,
    pub restarts: u32,
    /// The most recent failure, kept after a successful restart so that a task that
    /// fails now and then can be told from one that never did.
    pub last_failure: Option<String>,
}

impl TaskStatus {
    pub fn is_down(&self) -> bool {
        matches!(self.state, TaskState::Restarting | TaskState::Failed)
    }
}

pub type TaskTable = BTreeMap<&'static str, TaskStatus>;

/// The state of every supervised task, shared with `/healthz` and `grpc.health.v1`.
#[derive(Clone)]
pub struct TaskHealth {
    table: watch::Sender<TaskTable>,
}

impl Default for TaskHealth {
    fn default() -> TaskHealth {
        TaskHealth {
            table: watch::Sender::new(TaskTable::new()),
        }
    }
}

impl TaskHealth {
    /// Every task, by name.
    pub fn tasks(&self) -> Vec<TaskStatus> {
        self.table.borrow().values().cloned().collect()
    }

    /// The tasks that are restarting or failed.
    pub fn down(&self) -> Vec<TaskStatus> {
        self.table
            .borrow()
            .values()
            .filter(|task| task.is_down())
            .cloned()
            .collect()
    }

    pub fn is_healthy(&self) -> bool {
        !self.table.borrow().values().any(TaskStatus::is_down)
    }

    /// Sees every later change of any task's status.
    pub fn subscribe(&self) -> watch::Receiver<TaskTable> {
        self.table.subscribe()
    }

    pub(crate) fn insert(&self, status: TaskStatus) {
        self.table.send_modify(|table| {
            let previous = table.insert(status.name, status);
            debug_assert!(previous.is_none(), "two tasks share a name");
        });
    }

    pub(crate) fn update(&self, name: &str, change: impl FnOnce(&mut TaskStatus)) {
        self.table.send_modify(|table| {
            if let Some(status) = table.get_mut(name) {
                change(status);
            }
        });
    }
}
