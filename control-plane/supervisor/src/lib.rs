//! Supervision of pharosd's long-running tasks.
//!
//! Every task runs under a name, inside `info_span!("task", name)`, and a watcher of its
//! own awaits it. A task that panics, returns an error or simply returns while pharosd
//! still runs has failed: the watcher logs the failure with the task's name, records it
//! in [`TaskHealth`] (which `/healthz` and `grpc.health.v1` report), and then either
//! starts the task again after an exponential [`Backoff`] or, for a task that cannot be
//! restarted safely, hands a [`FatalTaskError`] to [`TaskSupervisor::fatal_failure`] so
//! that pharosd stops with a non-zero exit instead of running on without it.

use std::any::Any;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::{JoinError, JoinHandle};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

type TaskFuture = Pin<Box<dyn Future<Output = Result<(), BoxError>> + Send>>;
/// Starts one run of a task; `None` once the task cannot be started again.
type StartFn = Box<dyn FnMut(CancellationToken) -> Option<TaskFuture> + Send>;

/// What a task's future returns: nothing, or a result whose error says why it ended.
pub trait TaskOutput: Send + 'static {
    fn into_result(self) -> Result<(), BoxError>;
}

impl TaskOutput for () {
    fn into_result(self) -> Result<(), BoxError> {
        Ok(())
    }
}

impl<E> TaskOutput for Result<(), E>
where
    E: std::error::Error + Send + Sync + 'static,
{
    fn into_result(self) -> Result<(), BoxError> {
        self.map_err(BoxError::from)
    }
}

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

    fn insert(&self, status: TaskStatus) {
        self.table.send_modify(|table| {
            let previous = table.insert(status.name, status);
            debug_assert!(previous.is_none(), "two tasks share a name");
        });
    }

    fn update(&self, name: &str, change: impl FnOnce(&mut TaskStatus)) {
        self.table.send_modify(|table| {
            if let Some(status) = table.get_mut(name) {
                change(status);
            }
        });
    }
}

/// Why a task that should still be running is not.
#[derive(Debug, thiserror::Error)]
pub enum TaskFailure {
    #[error("panicked: {0}")]
    Panicked(String),
    #[error("returned an error")]
    Error(#[source] BoxError),
    #[error("returned while pharosd was still running")]
    Returned,
    #[error("was aborted")]
    Aborted,
}

impl TaskFailure {
    fn from_join(err: JoinError) -> TaskFailure {
        match err.try_into_panic() {
            Ok(payload) => TaskFailure::Panicked(panic_message(payload.as_ref())),
            Err(_) => TaskFailure::Aborted,
        }
    }

    /// The failure and its causes on one line, for logs and health reports.
    pub fn describe(&self) -> String {
        let mut text = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(cause) = source {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            source = cause.source();
        }
        text
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "a panic with no message".to_owned()
    }
}

/// A task that cannot be restarted safely has failed, so pharosd stops.
#[derive(Debug, thiserror::Error)]
#[error("task {task} failed and cannot be restarted safely")]
pub struct FatalTaskError {
    pub task: &'static str,
    #[source]
    pub cause: TaskFailure,
}

/// Delays between the starts of a failing task: `first`, doubled after every failure up
/// to `max`. A run that lasted `reset_after` counts as recovered, so the next failure
/// waits `first` again.
#[derive(Clone, Copy, Debug)]
pub struct Backoff {
    pub first: Duration,
    pub max: Duration,
    pub reset_after: Duration,
}

impl Default for Backoff {
    /// A one-off panic costs a second; a task that fails at every start is retried once
    /// a minute rather than flooding the log.
    fn default() -> Backoff {
        Backoff {
            first: Duration::from_secs(1),
            max: Duration::from_secs(60),
            reset_after: Duration::from_secs(60),
        }
    }
}

/// Panics injected on purpose, to test supervision against the real binary:
/// `PHAROS_FAILPOINT=panic:<task>` makes every start of the task panic,
/// `panic:<task>:<n>` only the first n; several are separated by commas.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Failpoints {
    /// Task name -> how many starts panic (`None`: every one).
    panics: BTreeMap<String, Option<u32>>,
}

#[derive(Debug, thiserror::Error)]
pub enum FailpointError {
    #[error(
        "{} {spec:?}: expected panic:<task> or panic:<task>:<count>",
        Failpoints::VARIABLE
    )]
    Malformed { spec: String },
    #[error("{} {spec:?}: the count is not a whole number", Failpoints::VARIABLE)]
    Count {
        spec: String,
        #[source]
        source: std::num::ParseIntError,
    },
}

impl Failpoints {
    pub const VARIABLE: &str = "PHAROS_FAILPOINT";

    /// The failpoints named by `PHAROS_FAILPOINT`. Only debug builds read it (the
    /// end-to-end tests run those), so no stray variable can make a release build fail.
    pub fn from_env() -> Result<Failpoints, FailpointError> {
        #[cfg(debug_assertions)]
        if let Ok(spec) = std::env::var(Self::VARIABLE) {
            let failpoints = Failpoints::parse(&spec)?;
            tracing::warn!(failpoints = %spec, "fault injection armed");
            return Ok(failpoints);
        }
        #[cfg(not(debug_assertions))]
        if std::env::var_os(Self::VARIABLE).is_some() {
            tracing::warn!(
                "{} is ignored: only debug builds inject faults",
                Self::VARIABLE
            );
        }
        Ok(Failpoints::default())
    }

    pub fn parse(spec: &str) -> Result<Failpoints, FailpointError> {
        let mut failpoints = Failpoints::default();
        for item in spec
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
        {
            let malformed = || FailpointError::Malformed {
                spec: item.to_owned(),
            };
            let mut parts = item.split(':');
            let (Some("panic"), Some(task)) = (parts.next(), parts.next()) else {
                return Err(malformed());
            };
            if task.is_empty() {
                return Err(malformed());
            }
            let times = match parts.next() {
                None => None,
                Some(count) => Some(count.parse().map_err(|source| FailpointError::Count {
                    spec: item.to_owned(),
                    source,
                })?),
            };
            if parts.next().is_some() {
                return Err(malformed());
            }
            failpoints = failpoints.panic(task, times);
        }
        Ok(failpoints)
    }

    /// Makes the first `times` starts of `task` panic, or every start with `None`.
    pub fn panic(mut self, task: &str, times: Option<u32>) -> Failpoints {
        self.panics.insert(task.to_owned(), times);
        self
    }

    /// Whether start number `start` (0 for the first) of `task` panics.
    fn panics_on(&self, task: &str, start: u32) -> bool {
        match self.panics.get(task) {
            Some(None) => true,
            Some(Some(times)) => start < *times,
            None => false,
        }
    }
}

/// Starts and watches pharosd's long-running tasks; see the module documentation.
pub struct TaskSupervisor {
    health: TaskHealth,
    backoff: Backoff,
    failpoints: Failpoints,
    fatal_sender: mpsc::UnboundedSender<FatalTaskError>,
    fatal: mpsc::UnboundedReceiver<FatalTaskError>,
    /// Cancelled by the first [`stop`](Self::stop): from then on a task may return because
    /// what feeds it has stopped (the audit writer once the server is gone), which is no
    /// failure even though its own stage has not been stopped yet, and no task restarts.
    shutting_down: CancellationToken,
    watched: Vec<Watched>,
}

struct Watched {
    name: &'static str,
    stop: CancellationToken,
    watcher: JoinHandle<()>,
}

impl TaskSupervisor {
    pub fn new(backoff: Backoff, failpoints: Failpoints) -> TaskSupervisor {
        let (fatal_sender, fatal) = mpsc::unbounded_channel();
        TaskSupervisor {
            health: TaskHealth::default(),
            backoff,
            failpoints,
            fatal_sender,
            fatal,
            shutting_down: CancellationToken::new(),
            watched: Vec::new(),
        }
    }

    pub fn health(&self) -> TaskHealth {
        self.health.clone()
    }

    /// Runs `start(token)` as task `name` until `stop` is cancelled, and calls `start`
    /// again after a backoff whenever the task fails. `token` is cancelled when `stop`
    /// is and also when that run ends, so what a failed run left behind stops with it.
    pub fn restart_on_failure<F, Fut>(
        &mut self,
        name: &'static str,
        stop: &CancellationToken,
        mut start: F,
    ) where
        F: FnMut(CancellationToken) -> Fut + Send + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: TaskOutput,
    {
        self.watch(
            name,
            stop,
            OnFailure::Restart,
            Box::new(move |token| {
                let task = start(token);
                Some(Box::pin(async move { task.await.into_result() }) as TaskFuture)
            }),
        );
    }

    /// Runs `start(token)` as task `name` until `stop` is cancelled. If it ends before,
    /// or panics or returns an error while stopping, [`fatal_failure`](Self::fatal_failure)
    /// reports it.
    pub fn stop_pharosd_on_failure<F, Fut>(
        &mut self,
        name: &'static str,
        stop: &CancellationToken,
        start: F,
    ) where
        F: FnOnce(CancellationToken) -> Fut + Send + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: TaskOutput,
    {
        let mut start = Some(start);
        self.watch(
            name,
            stop,
            OnFailure::StopPharosd,
            Box::new(move |token| {
                let task = start.take()?(token);
                Some(Box::pin(async move { task.await.into_result() }) as TaskFuture)
            }),
        );
    }

    fn watch(
        &mut self,
        name: &'static str,
        stop: &CancellationToken,
        on_failure: OnFailure,
        start: StartFn,
    ) {
        self.health.insert(TaskStatus {
            name,
            state: TaskState::Running,
            on_failure,
            restarts: 0,
            last_failure: None,
        });
        let watcher = Watcher {
            name,
            on_failure,
            stop: stop.clone(),
            shutting_down: self.shutting_down.clone(),
            start,
            health: self.health.clone(),
            backoff: self.backoff,
            failpoints: self.failpoints.clone(),
            fatal: self.fatal_sender.clone(),
        };
        self.watched.push(Watched {
            name,
            stop: stop.clone(),
            watcher: tokio::spawn(watcher.run()),
        });
    }

    /// The next failure of a task that stops pharosd; pending until there is one.
    pub async fn fatal_failure(&mut self) -> FatalTaskError {
        match self.fatal.recv().await {
            Some(failure) => failure,
            // Unreachable while `self` holds a sender; waiting forever is the honest answer.
            None => std::future::pending().await,
        }
    }

    /// A failure of a task that stops pharosd, if one has been reported; see
    /// [`root_cause`](Self::root_cause) for which.
    pub fn take_fatal_failure(&mut self) -> Option<FatalTaskError> {
        let first = self.fatal.try_recv().ok()?;
        Some(self.root_cause(first))
    }

    /// Of `first` and the failures reported since, the one to blame: the first that
    /// panicked or returned an error. Tasks that merely returned come last because they
    /// usually did so when one of those took their input away (the audit writer's queue
    /// closes once the server that feeds it is gone). Call it after stopping the tasks,
    /// so that every failure is in.
    pub fn root_cause(&mut self, first: FatalTaskError) -> FatalTaskError {
        let mut failures = vec![first];
        while let Ok(next) = self.fatal.try_recv() {
            failures.push(next);
        }
        let blamed = failures
            .iter()
            .position(|failure| !matches!(failure.cause, TaskFailure::Returned))
            .unwrap_or(0);
        failures.swap_remove(blamed)
    }

    /// Cancels `stop`, then waits until `deadline` for every task that it stops. The
    /// first call begins shutdown: no task is restarted after it. Failures while
    /// stopping are logged with the task's name. Returns the tasks still running at the
    /// deadline.
    pub async fn stop(&mut self, stop: &CancellationToken, deadline: Instant) -> Vec<&'static str> {
        self.shutting_down.cancel();
        stop.cancel();
        let (stopping, others): (Vec<Watched>, Vec<Watched>) = std::mem::take(&mut self.watched)
            .into_iter()
            .partition(|watched| watched.stop.is_cancelled());
        self.watched = others;
        let mut late = Vec::new();
        for watched in stopping {
            match tokio::time::timeout_at(deadline, watched.watcher).await {
                Ok(Ok(())) => {}
                Ok(Err(err)) => {
                    tracing::error!(task = watched.name, error = %err, "the watcher of the task failed")
                }
                Err(_) => {
                    tracing::warn!(task = watched.name, "task did not stop before the deadline");
                    late.push(watched.name);
                }
            }
        }
        late
    }
}

/// Runs one task, run after run, and reports how each run ended.
struct Watcher {
    name: &'static str,
    on_failure: OnFailure,
    /// Cancelled when the task's stage stops.
    stop: CancellationToken,
    /// Cancelled when shutdown begins; a run that returns after it is no failure.
    shutting_down: CancellationToken,
    start: StartFn,
    health: TaskHealth,
    backoff: Backoff,
    failpoints: Failpoints,
    fatal: mpsc::UnboundedSender<FatalTaskError>,
}

impl Watcher {
    async fn run(mut self) {
        let name = self.name;
        let mut delay = self.backoff.first;
        let mut restarts = 0;
        loop {
            let run_stop = self.stop.child_token();
            let Some(task) = (self.start)(run_stop.clone()) else {
                return;
            };
            let inject_panic = self.failpoints.panics_on(name, restarts);
            let started = Instant::now();
            let run = tokio::spawn(
                async move {
                    if inject_panic {
                        panic!("failpoint: injected panic in task {name}");
                    }
                    task.await
                }
                .instrument(tracing::info_span!("task", name)),
            );
            if restarts > 0 {
                self.health.update(name, |status| {
                    status.state = TaskState::Running;
                    status.restarts = restarts;
                });
                tracing::info!(task = name, restarts, "task restarted");
            }
            let ended = run.await;
            // Whatever this run started with its token stops with it, even after a panic.
            run_stop.cancel();
            let stopping = self.stop.is_cancelled() || self.shutting_down.is_cancelled();
            let failure = match ended {
                // Once shutdown began, a task may end because what fed it has stopped.
                Ok(Ok(())) if stopping => None,
                Ok(Ok(())) => Some(TaskFailure::Returned),
                Ok(Err(err)) => Some(TaskFailure::Error(err)),
                Err(err) => Some(TaskFailure::from_join(err)),
            };
            let Some(failure) = failure else {
                self.health
                    .update(name, |status| status.state = TaskState::Stopped);
                return;
            };
            let error = failure.describe();
            match self.on_failure {
                // Reported even while stopping: whether it failed first or a moment after
                // shutdown began (perhaps because of it), what it owned may be lost.
                OnFailure::StopPharosd => {
                    tracing::error!(task = name, %error, "task failed and cannot be restarted safely; stopping pharosd");
                    self.health.update(name, |status| {
                        status.state = TaskState::Failed;
                        status.last_failure = Some(error);
                    });
                    // The receiver lives as long as the supervisor; with it gone, pharosd is stopping anyway.
                    let _ = self.fatal.send(FatalTaskError {
                        task: name,
                        cause: failure,
                    });
                    return;
                }
                OnFailure::Restart if stopping => {
                    tracing::error!(task = name, %error, "task failed while stopping");
                    self.health.update(name, |status| {
                        status.state = TaskState::Stopped;
                        status.last_failure = Some(error);
                    });
                    return;
                }
                OnFailure::Restart => {
                    if started.elapsed() >= self.backoff.reset_after {
                        delay = self.backoff.first;
                    }
                    tracing::error!(task = name, %error, retry_in = ?delay, "task failed; restarting it after a backoff");
                    self.health.update(name, |status| {
                        status.state = TaskState::Restarting;
                        status.last_failure = Some(error);
                    });
                    tokio::select! {
                        _ = self.stop.cancelled() => {}
                        _ = self.shutting_down.cancelled() => {}
                        _ = tokio::time::sleep(delay) => {}
                    }
                    if self.stop.is_cancelled() || self.shutting_down.is_cancelled() {
                        self.health
                            .update(name, |status| status.state = TaskState::Stopped);
                        return;
                    }
                    delay = (delay * 2).min(self.backoff.max);
                    restarts += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
