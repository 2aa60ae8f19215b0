use std::sync::{Arc, Mutex};

use super::*;
use std::time::Duration;

/// When each run of a task started, in order.
#[derive(Clone, Default)]
struct Starts(Arc<Mutex<Vec<Instant>>>);

impl Starts {
    /// Records a start now and returns its number, 1 for the first.
    fn record(&self) -> usize {
        let mut starts = self.0.lock().unwrap();
        starts.push(Instant::now());
        starts.len()
    }

    fn gaps(&self) -> Vec<Duration> {
        let starts = self.0.lock().unwrap();
        starts.windows(2).map(|w| w[1] - w[0]).collect()
    }

    fn count(&self) -> usize {
        self.0.lock().unwrap().len()
    }
}

/// Panics; typed `()` so an async block ending in it is a task.
fn fail(why: &str) {
    panic!("{why}")
}

const BACKOFF: Backoff = Backoff {
    first: Duration::from_secs(1),
    max: Duration::from_secs(4),
    reset_after: Duration::from_secs(60),
};

/// Waits (on the paused clock, so only a condition that never holds times out) until
/// the status of `name` satisfies `holds`, and returns it.
async fn wait_for(
    health: &TaskHealth,
    name: &str,
    holds: impl Fn(&TaskStatus) -> bool,
) -> TaskStatus {
    let mut changes = health.subscribe();
    let table = tokio::time::timeout(
        Duration::from_secs(24 * 3600),
        changes.wait_for(|table| table.get(name).is_some_and(&holds)),
    )
    .await
    .unwrap_or_else(|_| {
        panic!(
            "task {name} never reached the expected state: {:?}",
            health.tasks()
        )
    })
    .expect("the task table outlives the test");
    table[name].clone()
}

fn approx(actual: &[Duration], expected: &[u64]) -> bool {
    actual.len() == expected.len()
        && actual.iter().zip(expected).all(|(a, e)| {
            *a >= Duration::from_secs(*e)
                && *a < Duration::from_secs(*e) + Duration::from_millis(50)
        })
}

#[tokio::test(start_paused = true)]
async fn a_panicking_task_is_reported_down_and_restarted_with_a_doubling_capped_backoff() {
    let mut supervisor = TaskSupervisor::new(BACKOFF, Failpoints::default());
    let health = supervisor.health();
    let stop = CancellationToken::new();
    let starts = Starts::default();
    let record = starts.clone();
    supervisor.restart_on_failure("collector", &stop, move |token: CancellationToken| {
        let run = record.record();
        async move {
            if run <= 4 {
                panic!("run {run} fails");
            }
            token.cancelled().await;
        }
    });

    let down = wait_for(&health, "collector", |s| s.state == TaskState::Restarting).await;
    assert_eq!(down.last_failure.as_deref(), Some("panicked: run 1 fails"));
    assert_eq!(down.on_failure, OnFailure::Restart);
    assert!(!health.is_healthy());
    assert_eq!(
        health.down().iter().map(|s| s.name).collect::<Vec<_>>(),
        ["collector"]
    );

    let up = wait_for(&health, "collector", |s| s.restarts == 4).await;
    assert_eq!(up.state, TaskState::Running);
    assert_eq!(up.last_failure.as_deref(), Some("panicked: run 4 fails"));
    assert!(health.is_healthy());
    let gaps = starts.gaps();
    assert!(
        approx(&gaps, &[1, 2, 4, 4]),
        "gaps between starts: {gaps:?}"
    );

    let late = supervisor
        .stop(&stop, Instant::now() + Duration::from_secs(1))
        .await;
    assert!(late.is_empty(), "{late:?}");
    assert_eq!(health.tasks()[0].state, TaskState::Stopped);
    assert_eq!(starts.count(), 5);
}

#[tokio::test(start_paused = true)]
async fn the_backoff_starts_over_after_a_run_that_lasted() {
    let mut supervisor = TaskSupervisor::new(BACKOFF, Failpoints::default());
    let health = supervisor.health();
    let stop = CancellationToken::new();
    let starts = Starts::default();
    let record = starts.clone();
    supervisor.restart_on_failure("sampler", &stop, move |token: CancellationToken| {
        let run = record.record();
        async move {
            match run {
                1 | 2 => panic!("early failure"),
                3 => {
                    tokio::time::sleep(Duration::from_secs(90)).await;
                    panic!("late failure");
                }
                _ => token.cancelled().await,
            }
        }
    });

    wait_for(&health, "sampler", |s| s.restarts == 3).await;
    // 1 s, 2 s, then a 90 s run: the next wait is 1 s again, not 4 s.
    let gaps = starts.gaps();
    assert!(approx(&gaps, &[1, 2, 91]), "gaps between starts: {gaps:?}");
    supervisor
        .stop(&stop, Instant::now() + Duration::from_secs(1))
        .await;
}

#[tokio::test(start_paused = true)]
async fn a_task_that_returns_or_errs_while_pharosd_runs_has_failed() {
    let mut supervisor = TaskSupervisor::new(BACKOFF, Failpoints::default());
    let health = supervisor.health();
    let stop = CancellationToken::new();
    let starts = Starts::default();
    let record = starts.clone();
    supervisor.restart_on_failure("kpis", &stop, move |token: CancellationToken| {
        let run = record.record();
        async move {
            match run {
                1 => Ok(()),
                2 => Err(std::io::Error::other("database gone")),
                _ => {
                    token.cancelled().await;
                    Ok(())
                }
            }
        }
    });

    let first = wait_for(&health, "kpis", |s| s.state == TaskState::Restarting).await;
    assert_eq!(
        first.last_failure.as_deref(),
        Some("returned while pharosd was still running")
    );
    let second = wait_for(&health, "kpis", |s| {
        s.state == TaskState::Restarting && s.restarts == 1
    })
    .await;
    assert_eq!(
        second.last_failure.as_deref(),
        Some("returned an error: database gone")
    );
    wait_for(&health, "kpis", |s| {
        s.state == TaskState::Running && s.restarts == 2
    })
    .await;
    supervisor
        .stop(&stop, Instant::now() + Duration::from_secs(1))
        .await;
}

#[tokio::test(start_paused = true)]
async fn a_task_that_cannot_restart_is_reported_as_fatal_and_never_started_again() {
    let mut supervisor = TaskSupervisor::new(BACKOFF, Failpoints::default());
    let health = supervisor.health();
    let stop = CancellationToken::new();
    let starts = Starts::default();
    let record = starts.clone();
    supervisor.stop_pharosd_on_failure("writer", &stop, move |_token: CancellationToken| {
        record.record();
        async { Err(std::io::Error::other("disk full")) }
    });

    let fatal = supervisor.fatal_failure().await;
    assert_eq!(fatal.task, "writer");
    assert!(matches!(fatal.cause, TaskFailure::Error(_)), "{fatal:?}");
    assert_eq!(
        fatal.to_string(),
        "task writer failed and cannot be restarted safely"
    );
    assert_eq!(
        std::error::Error::source(&fatal).map(ToString::to_string),
        Some("returned an error".to_owned())
    );
    let status = wait_for(&health, "writer", |s| s.state == TaskState::Failed).await;
    assert_eq!(
        status.last_failure.as_deref(),
        Some("returned an error: disk full")
    );
    assert_eq!(status.on_failure, OnFailure::StopPharosd);
    assert!(!health.is_healthy());

    // Ten minutes on the paused clock: far beyond any backoff.
    tokio::time::sleep(Duration::from_secs(600)).await;
    assert_eq!(starts.count(), 1);
    assert!(supervisor.take_fatal_failure().is_none());
}

#[tokio::test(start_paused = true)]
async fn the_task_that_panicked_is_blamed_rather_than_the_one_it_left_without_input() {
    let mut supervisor = TaskSupervisor::new(BACKOFF, Failpoints::default());
    let health = supervisor.health();
    let stop = CancellationToken::new();
    let (queue, mut received) = mpsc::channel::<()>(1);
    supervisor.stop_pharosd_on_failure(
        "audit-writer",
        &stop,
        |_token: CancellationToken| async move { while received.recv().await.is_some() {} },
    );
    // Its queue's sender goes with it when it panics.
    supervisor.stop_pharosd_on_failure(
        "serve",
        &stop,
        move |_token: CancellationToken| async move {
            let _queue = queue;
            fail("serve broke");
        },
    );

    let first = supervisor.fatal_failure().await;
    wait_for(&health, "audit-writer", |s| s.state == TaskState::Failed).await;
    wait_for(&health, "serve", |s| s.state == TaskState::Failed).await;
    supervisor
        .stop(&stop, Instant::now() + Duration::from_secs(1))
        .await;
    let blamed = supervisor.root_cause(first);
    assert_eq!(blamed.task, "serve");
    assert_eq!(blamed.cause.describe(), "panicked: serve broke");
    assert!(supervisor.take_fatal_failure().is_none());
}

#[tokio::test(start_paused = true)]
async fn a_fatal_task_that_ends_during_shutdown_is_not_a_failure() {
    let mut supervisor = TaskSupervisor::new(BACKOFF, Failpoints::default());
    let health = supervisor.health();
    let stop = CancellationToken::new();
    supervisor.stop_pharosd_on_failure("serve", &stop, |token: CancellationToken| async move {
        token.cancelled().await;
    });

    let late = supervisor
        .stop(&stop, Instant::now() + Duration::from_secs(1))
        .await;
    assert!(late.is_empty());
    assert!(supervisor.take_fatal_failure().is_none());
    assert_eq!(
        health.tasks(),
        [TaskStatus {
            name: "serve",
            state: TaskState::Stopped,
            on_failure: OnFailure::StopPharosd,
            restarts: 0,
            last_failure: None,
        }]
    );
}

#[tokio::test(start_paused = true)]
async fn a_fatal_task_that_panics_while_stopping_is_still_reported() {
    let mut supervisor = TaskSupervisor::new(BACKOFF, Failpoints::default());
    let health = supervisor.health();
    let stop = CancellationToken::new();
    supervisor.stop_pharosd_on_failure(
        "journal-writer",
        &stop,
        |token: CancellationToken| async move {
            token.cancelled().await;
            fail("the last batch did not commit");
        },
    );

    supervisor
        .stop(&stop, Instant::now() + Duration::from_secs(1))
        .await;
    let failure = supervisor
        .take_fatal_failure()
        .expect("a fatal task that panics while stopping is reported");
    assert_eq!(failure.task, "journal-writer");
    assert_eq!(
        failure.cause.describe(),
        "panicked: the last batch did not commit"
    );
    assert_eq!(health.tasks()[0].state, TaskState::Failed);
}

#[tokio::test(start_paused = true)]
async fn stopping_records_panics_and_names_tasks_that_outlive_the_deadline() {
    let mut supervisor = TaskSupervisor::new(BACKOFF, Failpoints::default());
    let health = supervisor.health();
    let collectors = CancellationToken::new();
    let writers = CancellationToken::new();
    supervisor.restart_on_failure(
        "fragile",
        &collectors,
        |token: CancellationToken| async move {
            token.cancelled().await;
            fail("panicked while stopping");
        },
    );
    supervisor.restart_on_failure("stubborn", &collectors, |_token: CancellationToken| {
        std::future::pending::<()>()
    });
    supervisor.stop_pharosd_on_failure("writer", &writers, |token: CancellationToken| async move {
        token.cancelled().await;
    });

    let late = supervisor
        .stop(&collectors, Instant::now() + Duration::from_secs(4))
        .await;
    assert_eq!(late, ["stubborn"]);
    let fragile = wait_for(&health, "fragile", |s| s.state == TaskState::Stopped).await;
    assert_eq!(
        fragile.last_failure.as_deref(),
        Some("panicked: panicked while stopping")
    );
    // The writer has its own stage and still runs.
    assert_eq!(
        wait_for(&health, "writer", |_| true).await.state,
        TaskState::Running
    );
    assert!(supervisor.take_fatal_failure().is_none());
    supervisor
        .stop(&writers, Instant::now() + Duration::from_secs(4))
        .await;
    assert_eq!(
        wait_for(&health, "writer", |_| true).await.state,
        TaskState::Stopped
    );
}

#[tokio::test(start_paused = true)]
async fn a_task_that_ends_once_an_earlier_stage_stopped_is_not_a_failure() {
    let mut supervisor = TaskSupervisor::new(BACKOFF, Failpoints::default());
    let health = supervisor.health();
    let serving = CancellationToken::new();
    let writers = CancellationToken::new();
    // Like the audit writer, whose queue closes once the server is gone.
    let (queue, mut received) = mpsc::channel::<()>(1);
    supervisor.stop_pharosd_on_failure(
        "serve",
        &serving,
        move |token: CancellationToken| async move {
            token.cancelled().await;
            drop(queue);
        },
    );
    supervisor.stop_pharosd_on_failure(
        "audit-writer",
        &writers,
        |_token: CancellationToken| async move { while received.recv().await.is_some() {} },
    );

    supervisor
        .stop(&serving, Instant::now() + Duration::from_secs(1))
        .await;
    let audit = wait_for(&health, "audit-writer", |s| s.state == TaskState::Stopped).await;
    assert_eq!(audit.last_failure, None);
    assert!(supervisor.take_fatal_failure().is_none());
    supervisor
        .stop(&writers, Instant::now() + Duration::from_secs(1))
        .await;
}

#[tokio::test(start_paused = true)]
async fn what_a_failed_run_started_is_stopped_with_it() {
    let mut supervisor = TaskSupervisor::new(BACKOFF, Failpoints::default());
    let health = supervisor.health();
    let stop = CancellationToken::new();
    let (orphan_stopped, mut stopped) = mpsc::unbounded_channel();
    let starts = Starts::default();
    let record = starts.clone();
    supervisor.restart_on_failure("scraper", &stop, move |token: CancellationToken| {
        let run = record.record();
        let orphan_stopped = orphan_stopped.clone();
        async move {
            // A sub-task on the run's token, as the scraper starts one per target.
            let child = token.clone();
            tokio::spawn(async move {
                child.cancelled().await;
                let _ = orphan_stopped.send(run);
            });
            if run == 1 {
                panic!("the first run fails");
            }
            token.cancelled().await;
        }
    });

    let first_stopped = tokio::time::timeout(Duration::from_secs(3600), stopped.recv())
        .await
        .expect("the first run's sub-task stops");
    assert_eq!(first_stopped, Some(1));
    wait_for(&health, "scraper", |s| s.restarts == 1).await;
    assert!(
        stopped.try_recv().is_err(),
        "the second run's sub-task still runs"
    );
    supervisor
        .stop(&stop, Instant::now() + Duration::from_secs(1))
        .await;
}

#[tokio::test(start_paused = true)]
async fn a_failpoint_panics_the_first_starts_of_its_task_only() {
    let failpoints = Failpoints::parse("panic:capacity-sampler:2").unwrap();
    let mut supervisor = TaskSupervisor::new(BACKOFF, failpoints);
    let health = supervisor.health();
    let stop = CancellationToken::new();
    let starts = Starts::default();
    let record = starts.clone();
    supervisor.restart_on_failure(
        "capacity-sampler",
        &stop,
        move |token: CancellationToken| {
            record.record();
            async move { token.cancelled().await }
        },
    );
    supervisor.restart_on_failure(
        "metrics-rollups",
        &stop,
        |token: CancellationToken| async move { token.cancelled().await },
    );

    let status = wait_for(&health, "capacity-sampler", |s| {
        s.restarts == 2 && s.state == TaskState::Running
    })
    .await;
    assert_eq!(
        status.last_failure.as_deref(),
        Some("panicked: failpoint: injected panic in task capacity-sampler")
    );
    let other = wait_for(&health, "metrics-rollups", |_| true).await;
    assert_eq!((other.restarts, other.last_failure), (0, None));
    assert_eq!(starts.count(), 3);
    supervisor
        .stop(&stop, Instant::now() + Duration::from_secs(1))
        .await;
}

#[test]
fn failpoints_parse_tasks_and_counts() {
    assert_eq!(Failpoints::parse("").unwrap(), Failpoints::default());
    assert_eq!(
        Failpoints::parse("panic:serve, panic:capacity-sampler:3").unwrap(),
        Failpoints::default()
            .panic("serve", None)
            .panic("capacity-sampler", Some(3))
    );
    let always = Failpoints::parse("panic:serve").unwrap();
    assert!(always.panics_on("serve", 0) && always.panics_on("serve", 100));
    assert!(!always.panics_on("journal-writer", 0));
    let twice = Failpoints::parse("panic:serve:2").unwrap();
    assert!(twice.panics_on("serve", 1) && !twice.panics_on("serve", 2));
}

#[test]
fn malformed_failpoints_are_refused_with_the_item_at_fault() {
    for (spec, message) in [
        (
            "crash:serve",
            "PHAROS_FAILPOINT \"crash:serve\": expected panic:<task> or panic:<task>:<count>",
        ),
        (
            "panic:",
            "PHAROS_FAILPOINT \"panic:\": expected panic:<task> or panic:<task>:<count>",
        ),
        (
            "panic:serve:1:2",
            "PHAROS_FAILPOINT \"panic:serve:1:2\": expected panic:<task> or panic:<task>:<count>",
        ),
        (
            "panic:serve,panic:serve:x",
            "PHAROS_FAILPOINT \"panic:serve:x\": the count is not a whole number",
        ),
    ] {
        let err = Failpoints::parse(spec).unwrap_err();
        assert_eq!(err.to_string(), message, "{spec}");
    }
    let count = Failpoints::parse("panic:serve:x").unwrap_err();
    assert!(std::error::Error::source(&count).is_some());
}

/// Everything a `fmt` subscriber writes, for assertions on log lines.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn a_task_logs_inside_a_span_named_after_it() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    // The test runtime has one thread, so the spawned tasks log through this subscriber.
    let _default = tracing::subscriber::set_default(subscriber);
    let mut supervisor = TaskSupervisor::new(BACKOFF, Failpoints::default());
    let stop = CancellationToken::new();
    let (logged, was_logged) = tokio::sync::oneshot::channel();
    let mut logged = Some(logged);
    supervisor.restart_on_failure("sampler", &stop, move |token: CancellationToken| {
        let logged = logged.take();
        async move {
            tracing::info!("sample taken");
            if let Some(logged) = logged {
                let _ = logged.send(());
            }
            token.cancelled().await;
        }
    });
    tokio::time::timeout(Duration::from_secs(10), was_logged)
        .await
        .expect("the task logs")
        .unwrap();
    supervisor
        .stop(&stop, Instant::now() + Duration::from_secs(1))
        .await;

    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let line = text
        .lines()
        .find(|line| line.contains("sample taken"))
        .unwrap_or_else(|| panic!("not logged: {text}"));
    assert!(line.contains("task{name=\"sampler\"}: "), "{line}");
}
