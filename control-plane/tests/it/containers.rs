//! The containers collector against a real Podman Docker API: labelled busybox
//! containers appear in the right deployment within a second of `podman run` (watched on
//! the containers topic), leave when removed, feed `container` checks, report stats, and
//! the engine going away is reported and recovered from.

use crate::common;

use std::time::{Duration, Instant};

use common::{Backend, Harness};
use pharos_e2e::TestPodman;
use pharos_proto::v1 as pb;
use pharos_proto::v1::catalog_service_client::CatalogServiceClient;
use pharos_proto::v1::container_service_client::ContainerServiceClient;
use tonic::Streaming;
use tonic::transport::Channel;

const CATALOG: &str = "\
environments:
  - id: prod
projects:
  - id: api
    deployments:
      - environment: prod
        containers: {app: api}
        checks:
          - name: running
            interval: 1s
            unhealthy_after: 1
            container: {}
  - id: web
    deployments:
      - environment: prod
";

async fn start(podman: &TestPodman) -> Harness {
    let host = podman.docker_host();
    Harness::start_with_catalog(Backend::Sqlite, CATALOG, move |settings| {
        settings.containers.docker_host = Some(host);
        settings.containers.resync_interval = Duration::from_secs(2);
        settings.containers.stats_interval = Duration::from_millis(500);
        settings.containers.max_backoff = Duration::from_millis(500);
    })
    .await
}

async fn containers_client(harness: &Harness) -> ContainerServiceClient<Channel> {
    ContainerServiceClient::connect(harness.url())
        .await
        .unwrap()
}

/// What a watcher of the containers and health topics is told.
enum Seen {
    Container(pb::ChangeKind, pb::Container),
    Engine(pb::EngineStatus),
    Check(pb::CheckHealth),
}

async fn next_seen(stream: &mut Streaming<pb::WatchResponse>, within: Duration) -> Seen {
    loop {
        let message = tokio::time::timeout(within, stream.message())
            .await
            .expect("a change in time")
            .expect("stream healthy")
            .expect("stream open");
        let Some(pb::watch_response::Message::Change(change)) = message.message else {
            continue;
        };
        let kind = pb::ChangeKind::try_from(change.kind).unwrap();
        match change.object {
            Some(pb::change::Object::Container(c)) => return Seen::Container(kind, c),
            Some(pb::change::Object::ContainerEngine(e)) => return Seen::Engine(e),
            Some(pb::change::Object::CheckHealth(c)) => return Seen::Check(c),
            _ => continue,
        }
    }
}

/// A watcher of the containers and health topics that remembers the latest status of
/// the `api/prod/running` check, so a wait for it cannot miss a change read earlier.
struct Watcher {
    stream: Streaming<pb::WatchResponse>,
    check: Option<i32>,
}

impl Watcher {
    /// Reads the stream until `wanted` returns true for something seen, within `within`.
    async fn until(&mut self, within: Duration, mut wanted: impl FnMut(&Seen) -> bool) -> Seen {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "nothing wanted seen within {within:?}");
            let seen = next_seen(&mut self.stream, left).await;
            if let Seen::Check(c) = &seen
                && c.check_id == "api/prod/running"
            {
                self.check = Some(c.status);
            }
            if wanted(&seen) {
                return seen;
            }
        }
    }

    async fn until_check(&mut self, within: Duration, status: pb::HealthStatus) {
        if self.check != Some(status as i32) {
            self.until(within, check_is(status)).await;
        }
    }
}

async fn watch(harness: &Harness) -> Watcher {
    let stream = harness
        .watch(pb::WatchRequest {
            topics: vec![
                pb::WatchTopic::Containers as i32,
                pb::WatchTopic::Health as i32,
            ],
            ..Default::default()
        })
        .await
        .unwrap();
    Watcher {
        stream,
        check: None,
    }
}

fn engine_is(state: pb::EngineState) -> impl FnMut(&Seen) -> bool {
    move |seen| matches!(seen, Seen::Engine(e) if e.state == state as i32)
}

fn running(id: &str, deployment: &'static str) -> impl FnMut(&Seen) -> bool {
    let id = id.to_owned();
    move |seen| {
        matches!(seen, Seen::Container(_, c)
            if c.id == id && c.deployment_id == deployment && c.state == pb::ContainerState::Running as i32)
    }
}

fn check_is(status: pb::HealthStatus) -> impl FnMut(&Seen) -> bool {
    move |seen| matches!(seen, Seen::Check(c) if c.check_id == "api/prod/running" && c.status == status as i32)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn labelled_containers_join_their_deployment_within_a_second_and_leave_when_removed() {
    let podman = TestPodman::start().unwrap();
    let harness = start(&podman).await;
    let mut stream = watch(&harness).await;
    stream
        .until(Duration::from_secs(10), engine_is(pb::EngineState::Up))
        .await;

    // A selector match, a match by the configured label keys, and a stray.
    let started = Instant::now();
    let api = podman
        .run(&[("app", "api")], &["sleep", "600"])
        .await
        .unwrap();
    let ran = Instant::now();
    stream
        .until(Duration::from_secs(5), running(&api, "api/prod"))
        .await;
    let after_run = ran.elapsed();
    eprintln!(
        "api container seen {after_run:?} after `podman run` returned ({:?} after it began)",
        started.elapsed()
    );
    assert!(
        after_run <= Duration::from_secs(1),
        "seen after {after_run:?}"
    );

    let ran = Instant::now();
    let web = podman
        .run(
            &[
                ("pharos.project", "web"),
                ("pharos.environment", "prod"),
                ("pharos.service", "frontend"),
            ],
            &["sleep", "600"],
        )
        .await
        .unwrap();
    stream
        .until(Duration::from_secs(5), running(&web, "web/prod"))
        .await;
    assert!(ran.elapsed() <= Duration::from_secs(1) + Duration::from_millis(500));

    let ghost = podman
        .run(&[("pharos.project", "ghost")], &["sleep", "600"])
        .await
        .unwrap();
    stream
        .until(Duration::from_secs(5), running(&ghost, ""))
        .await;
    // Not labelled for Pharos: never tracked.
    let other = podman
        .run(&[("app", "other")], &["sleep", "600"])
        .await
        .unwrap();

    stream
        .until_check(Duration::from_secs(5), pb::HealthStatus::Healthy)
        .await;

    let client = containers_client(&harness).await;
    let list = |request: pb::ListContainersRequest| {
        let mut client = client.clone();
        async move {
            client
                .list_containers(request)
                .await
                .unwrap()
                .into_inner()
                .containers
                .into_iter()
                .map(|c| (c.id, c.deployment_id, c.service))
                .collect::<Vec<_>>()
        }
    };
    let all = list(Default::default()).await;
    assert_eq!(all.len(), 3, "{all:?}");
    assert!(!all.iter().any(|(id, _, _)| id == &other));
    assert_eq!(
        list(pb::ListContainersRequest {
            deployment_id: "api/prod".into(),
            ..Default::default()
        })
        .await,
        vec![(api.clone(), "api/prod".to_owned(), "api".to_owned())]
    );
    assert_eq!(
        list(pb::ListContainersRequest {
            projects: vec!["web".into()],
            ..Default::default()
        })
        .await,
        vec![(web.clone(), "web/prod".to_owned(), "frontend".to_owned())]
    );
    assert_eq!(
        list(pb::ListContainersRequest {
            unmatched_only: true,
            ..Default::default()
        })
        .await,
        vec![(ghost.clone(), String::new(), "ghost".to_owned())]
    );
    let bad = client
        .clone()
        .list_containers(pb::ListContainersRequest {
            states: vec![42],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), tonic::Code::InvalidArgument, "{bad:?}");

    // Removal: the container leaves within a second, and the check sees no container.
    let removed = Instant::now();
    podman.podman(&["rm", "-f", "-t", "0", &api]).await.unwrap();
    let gone = removed.elapsed();
    stream
        .until(
            Duration::from_secs(5),
            |seen| matches!(seen, Seen::Container(pb::ChangeKind::Delete, c) if c.id == api),
        )
        .await;
    assert!(
        removed.elapsed() <= gone + Duration::from_secs(1),
        "removal seen {:?} after `podman rm` returned",
        removed.elapsed() - gone
    );
    stream
        .until_check(Duration::from_secs(5), pb::HealthStatus::Unhealthy)
        .await;
    assert!(
        list(pb::ListContainersRequest {
            deployment_id: "api/prod".into(),
            ..Default::default()
        })
        .await
        .is_empty()
    );
    harness.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_are_sampled_and_summed_per_service() {
    let podman = TestPodman::start().unwrap();
    let harness = start(&podman).await;
    let mut stream = watch(&harness).await;
    stream
        .until(Duration::from_secs(10), engine_is(pb::EngineState::Up))
        .await;

    // One container busy for a few seconds, one idle; both of api/prod.
    let busy = podman
        .run(
            &[("app", "api")],
            &[
                "sh",
                "-c",
                "end=$(( $(date +%s) + 8 )); while [ $(date +%s) -lt $end ]; do :; done; sleep 600",
            ],
        )
        .await
        .unwrap();
    let idle = podman
        .run(&[("app", "api")], &["sleep", "600"])
        .await
        .unwrap();
    let mut client = containers_client(&harness).await;
    let deadline = Instant::now() + Duration::from_secs(8);
    let busy_stats = loop {
        let containers = client
            .list_containers(pb::ListContainersRequest::default())
            .await
            .unwrap()
            .into_inner()
            .containers;
        let stats = |id: &str| containers.iter().find(|c| c.id == id).and_then(|c| c.stats);
        if let (Some(b), Some(i)) = (stats(&busy), stats(&idle))
            && b.cpu_percent > 20.0
            && i.memory_used_bytes > 0
        {
            break b;
        }
        assert!(
            Instant::now() < deadline,
            "no plausible stats: {containers:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let cores = std::thread::available_parallelism().unwrap().get() as f64;
    assert!(
        busy_stats.cpu_percent <= cores * 100.0 + 10.0,
        "{busy_stats:?}"
    );
    assert!(busy_stats.memory_used_bytes > 0, "{busy_stats:?}");
    assert!(
        busy_stats.memory_limit_bytes >= busy_stats.memory_used_bytes,
        "{busy_stats:?}"
    );
    // Memory of a busybox shell: more than a page, less than 64 MiB.
    assert!(
        (4096..64 << 20).contains(&busy_stats.memory_used_bytes),
        "{busy_stats:?}"
    );

    let services = client
        .list_service_stats(pb::ListServiceStatsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .services;
    assert_eq!(services.len(), 1, "{services:?}");
    let api = &services[0];
    assert_eq!(
        (
            api.deployment_id.as_str(),
            api.service.as_str(),
            api.containers,
            api.running
        ),
        ("api/prod", "api", 2, 2)
    );
    assert!(
        api.cpu_percent > 0.0 && api.memory_used_bytes > 0,
        "{api:?}"
    );

    // The in-memory accessor the metrics side reads agrees.
    let sums = harness.server().containers.service_stats();
    assert_eq!(sums.len(), 1);
    assert_eq!(sums[0].containers, 2);

    // Restart count: a container that exits is restarted by the engine's policy.
    let flaky = podman
        .run_with(
            &[("app", "api")],
            &["--restart", "on-failure"],
            &["sh", "-c", "sleep 0.3; exit 3"],
        )
        .await
        .unwrap();
    stream
        .until(
            Duration::from_secs(10),
            |seen| matches!(seen, Seen::Container(_, c) if c.id == flaky && c.restart_count >= 1),
        )
        .await;
    harness.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_stopped_mid_stream_is_reported_and_recovered() {
    let mut podman = TestPodman::start().unwrap();
    let harness = start(&podman).await;
    let mut stream = watch(&harness).await;
    stream
        .until(Duration::from_secs(10), engine_is(pb::EngineState::Up))
        .await;
    let api = podman
        .run(&[("app", "api")], &["sleep", "600"])
        .await
        .unwrap();
    stream
        .until(Duration::from_secs(5), running(&api, "api/prod"))
        .await;

    podman.stop_service();
    let down = stream
        .until(Duration::from_secs(5), engine_is(pb::EngineState::Down))
        .await;
    let Seen::Engine(down) = down else {
        unreachable!()
    };
    assert!(!down.error.is_empty(), "{down:?}");

    // Everything else keeps serving.
    let mut catalog = CatalogServiceClient::connect(harness.url()).await.unwrap();
    let overview = catalog
        .get_overview(pb::GetOverviewRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(overview.projects, 2);
    let mut client = containers_client(&harness).await;
    let status = client
        .get_engine_status(pb::GetEngineStatusRequest {})
        .await
        .unwrap()
        .into_inner()
        .engine
        .unwrap();
    assert_eq!(status.state, pb::EngineState::Down as i32);

    // A container started while the API is away is found once it is back.
    let during = podman
        .run(&[("app", "api")], &["sleep", "600"])
        .await
        .unwrap();
    podman.start_service().unwrap();
    let (mut up, mut found) = (false, false);
    let mut is_up = engine_is(pb::EngineState::Up);
    let mut is_found = running(&during, "api/prod");
    stream
        .until(Duration::from_secs(10), |seen| {
            up |= is_up(seen);
            found |= is_found(seen);
            up && found
        })
        .await;
    harness.shutdown().await;
}

async fn read_logs(
    client: &mut ContainerServiceClient<Channel>,
    request: pb::TailLogsRequest,
    enough: usize,
) -> Vec<pb::LogLine> {
    let mut stream = client.tail_logs(request).await.unwrap().into_inner();
    let mut lines = Vec::new();
    while lines.len() < enough {
        let message = tokio::time::timeout(Duration::from_secs(5), stream.message())
            .await
            .expect("log lines within 5 s")
            .expect("stream healthy");
        match message {
            Some(batch) => lines.extend(batch.lines),
            None => break,
        }
    }
    lines
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_logs_filters_follows_and_cuts_long_lines() {
    let podman = TestPodman::start().unwrap();
    let harness = start(&podman).await;
    let chatty = podman
        .run(
            &[("app", "api")],
            &[
                "sh",
                "-c",
                "head -c 20000 /dev/zero | tr '\\0' x; echo; i=0; while :; do echo \"tick $i\"; echo \"warn $i\" >&2; i=$((i+1)); sleep 0.1; done",
            ],
        )
        .await
        .unwrap();
    let mut client = containers_client(&harness).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while harness.server().containers.get(&chatty).is_none() {
        assert!(Instant::now() < deadline, "container not discovered");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Wait until some lines exist.
    tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let lines = read_logs(
                &mut client,
                pb::TailLogsRequest {
                    container: chatty.clone(),
                    contains: "tick 5".into(),
                    ..Default::default()
                },
                1,
            )
            .await;
            if !lines.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("tick 5 logged within 5 s");

    // The last 4 lines (the engine counts both outputs), then the stream ends.
    let last = read_logs(
        &mut client,
        pb::TailLogsRequest {
            container: chatty[..12].to_owned(),
            tail: 4,
            ..Default::default()
        },
        usize::MAX,
    )
    .await;
    assert_eq!(last.len(), 4, "{last:#?}");
    assert!(last.iter().all(|l| l.time.is_some()));
    let stdout = last
        .iter()
        .filter(|l| l.stream == pb::LogStream::Stdout as i32);
    assert!(
        stdout.clone().all(|l| l.text.starts_with("tick ")),
        "{last:#?}"
    );
    assert!((1..=3).contains(&stdout.count()), "{last:#?}");

    // Every line from the start: the 20,000-character line is cut at 16 KiB.
    let all = read_logs(
        &mut client,
        pb::TailLogsRequest {
            container: chatty.clone(),
            streams: vec![pb::LogStream::Stdout as i32],
            regex: "^x+$".into(),
            ..Default::default()
        },
        usize::MAX,
    )
    .await;
    assert_eq!(all.len(), 1, "{} lines", all.len());
    assert!(all[0].truncated);
    assert!(
        (16_000..=16_384).contains(&all[0].text.len()),
        "{}",
        all[0].text.len()
    );

    // Follow stderr with a regex: new lines keep coming.
    let followed = read_logs(
        &mut client,
        pb::TailLogsRequest {
            container: chatty.clone(),
            follow: true,
            tail: 1,
            streams: vec![pb::LogStream::Stderr as i32],
            regex: r"^warn \d*[05]$".into(),
            ..Default::default()
        },
        3,
    )
    .await;
    assert!(followed.len() >= 3, "{followed:#?}");
    assert!(
        followed
            .iter()
            .all(|l| l.stream == pb::LogStream::Stderr as i32)
    );
    let numbers: Vec<u64> = followed
        .iter()
        .map(|l| l.text.trim_start_matches("warn ").parse().unwrap())
        .collect();
    assert!(numbers.windows(2).all(|w| w[0] < w[1]), "{numbers:?}");

    for (request, code) in [
        (
            pb::TailLogsRequest {
                container: "no-such".into(),
                ..Default::default()
            },
            tonic::Code::NotFound,
        ),
        (
            pb::TailLogsRequest {
                container: chatty.clone(),
                regex: "(".into(),
                ..Default::default()
            },
            tonic::Code::InvalidArgument,
        ),
        (
            pb::TailLogsRequest {
                container: chatty.clone(),
                tail: 20_000,
                ..Default::default()
            },
            tonic::Code::InvalidArgument,
        ),
    ] {
        let err = client.tail_logs(request).await.unwrap_err();
        assert_eq!(err.code(), code, "{err:?}");
    }
    harness.shutdown().await;
}

/// A line the engine's monitor wrote in two parts (it read "li", then, in the next
/// second, "ne-2") comes back whole, with `tail` and without; following from a tail
/// repeats nothing, though the engine's timestamps are whole seconds and the stream that
/// follows starts with the second half; a cursor says exactly where to go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_keeps_lines_written_in_parts_and_following_repeats_nothing() {
    let podman = TestPodman::start().unwrap();
    let harness = start(&podman).await;
    let id = podman
        .run(
            &[("app", "api")],
            &[
                "sh",
                "-c",
                "echo line-1; printf li; sleep 1.1; echo ne-2; echo line-3; \
                 while [ ! -e /go ]; do sleep 0.05; done; echo line-4; sleep 1000",
            ],
        )
        .await
        .unwrap();
    let mut client = containers_client(&harness).await;
    let texts = |lines: &[pb::LogLine]| lines.iter().map(|l| l.text.clone()).collect::<Vec<_>>();
    let deadline = Instant::now() + Duration::from_secs(10);
    while harness.server().containers.get(&id).is_none() {
        assert!(Instant::now() < deadline, "container not discovered");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    loop {
        let all = read_logs(
            &mut client,
            pb::TailLogsRequest {
                container: id.clone(),
                ..Default::default()
            },
            usize::MAX,
        )
        .await;
        if all.len() >= 3 {
            assert_eq!(texts(&all), ["line-1", "line-2", "line-3"]);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "three lines within 10 s: {all:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for (tail, expected) in [
        (1, &["line-3"][..]),
        (2, &["line-2", "line-3"][..]),
        (3, &["line-1", "line-2", "line-3"][..]),
        (10, &["line-1", "line-2", "line-3"][..]),
    ] {
        let lines = read_logs(
            &mut client,
            pb::TailLogsRequest {
                container: id.clone(),
                tail,
                ..Default::default()
            },
            usize::MAX,
        )
        .await;
        assert_eq!(texts(&lines), expected, "tail {tail}");
    }

    // Following the last two lines: line-4, printed later, comes once, after them.
    let mut stream = client
        .tail_logs(pb::TailLogsRequest {
            container: id.clone(),
            tail: 2,
            follow: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut followed = Vec::new();
    let mut next = async |followed: &mut Vec<String>| {
        let batch = tokio::time::timeout(Duration::from_secs(5), stream.message())
            .await
            .expect("log lines within 5 s")
            .expect("stream healthy")
            .expect("stream still open");
        followed.extend(batch.lines.into_iter().map(|l| l.text));
    };
    while followed.len() < 2 {
        next(&mut followed).await;
    }
    assert_eq!(followed, ["line-2", "line-3"]);
    podman
        .podman(&["exec", &id, "sh", "-c", ": > /go"])
        .await
        .unwrap();
    while followed.len() < 3 {
        next(&mut followed).await;
    }
    assert_eq!(followed, ["line-2", "line-3", "line-4"]);
    // Nothing more arrives: the container prints nothing after line-4.
    let more = tokio::time::timeout(Duration::from_millis(500), stream.message()).await;
    assert!(more.is_err(), "unexpected after line-4: {more:?}");

    // Going on after a line's cursor gives exactly the lines after it. All four lines
    // may carry the same time (Podman's API gives whole seconds): the cursor tells them
    // apart.
    let all = read_logs(
        &mut client,
        pb::TailLogsRequest {
            container: id.clone(),
            ..Default::default()
        },
        usize::MAX,
    )
    .await;
    assert_eq!(texts(&all), ["line-1", "line-2", "line-3", "line-4"]);
    for (n, line) in all.iter().enumerate() {
        let after = read_logs(
            &mut client,
            pb::TailLogsRequest {
                container: id.clone(),
                after_cursor: line.cursor.clone(),
                ..Default::default()
            },
            usize::MAX,
        )
        .await;
        assert_eq!(texts(&after), texts(&all[n + 1..]), "after {}", line.cursor);
    }
    for request in [
        pb::TailLogsRequest {
            container: id.clone(),
            after_cursor: "yesterday".into(),
            ..Default::default()
        },
        pb::TailLogsRequest {
            container: id.clone(),
            after_cursor: all[0].cursor.clone(),
            tail: 2,
            ..Default::default()
        },
    ] {
        let err = client.tail_logs(request).await.unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
    }
    harness.shutdown().await;
}
