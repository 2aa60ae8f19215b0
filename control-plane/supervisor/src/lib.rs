//! Supervision of pharosd's long-running tasks.
//!
//! Every task runs under a name, inside `info_span!("task", name)`, and a watcher of its
//! own awaits it. A task that panics, returns an error or simply returns while pharosd
//! still runs has failed: the watcher logs the failure with the task's name, records it
//! in [`TaskHealth`] (which `/healthz` and `grpc.health.v1` report), and then either
//! starts the task again after an exponential [`Backoff`] or, for a task that cannot be
//! restarted safely, hands a [`FatalTaskError`] to [`TaskSupervisor::fatal_failure`] so
//! that pharosd stops with a non-zero exit instead of running on without it.

use std::future::Future;
use std::pin::Pin;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

mod backoff;
mod failpoints;
mod failure;
mod health;

pub use backoff::Backoff;
pub use failpoints::{FailpointError, Failpoints};
pub use failure::{FatalTaskError, TaskFailure};
pub use health::{OnFailure, TaskHealth, TaskState, TaskStatus, TaskTable};

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
