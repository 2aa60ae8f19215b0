//! Health checks against real servers: each goes healthy, turns unhealthy within
//! interval x threshold + 1 s after its target stops, and healthy again after it
//! restarts; a Watch subscriber receives exactly those transitions.

use crate::common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{Backend, Harness};
use pharos_proto::v1 as pb;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

const INTERVAL_MS: u64 = 300;
const THRESHOLD: u64 = 2;

/// A target pharosd can probe and the test can stop and restart on the same address.
trait Target {
    fn check_yaml(&self) -> String;
    async fn stop(&mut self);
    async fn start(&mut self);
}

fn catalog(check: &str) -> String {
    format!(
        "environments:\n  - id: test\nprojects:\n  - id: svc\n    deployments:\n      - environment: test\n        checks:\n          - name: probe\n            interval: {INTERVAL_MS}ms\n            timeout: 250ms\n            unhealthy_after: {THRESHOLD}\n            {check}\n"
    )
}

/// Reads health changes of check `svc/test/probe` until one has `status`; returns the
/// revisions and statuses seen on the way.
async fn until_status(
    stream: &mut tonic::Streaming<pb::WatchResponse>,
    status: pb::HealthStatus,
    seen: &mut Vec<(u64, pb::HealthStatus)>,
) {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(15), stream.message())
            .await
            .expect("a health change within 15 s")
            .expect("stream healthy")
            .expect("stream open");
        let Some(pb::watch_response::Message::Change(change)) = message.message else {
            continue;
        };
        let Some(pb::change::Object::CheckHealth(check)) = change.object else {
            continue;
        };
        if check.check_id != "svc/test/probe" || change.kind == pb::ChangeKind::Snapshot as i32 {
            continue;
        }
        let now = pb::HealthStatus::try_from(check.status).unwrap();
        seen.push((change.revision, now));
        if now == status {
            return;
        }
    }
}

async fn follows_its_target(mut target: impl Target) {
    let harness =
        Harness::start_with_catalog(Backend::Sqlite, &catalog(&target.check_yaml()), |_| {}).await;
    let mut stream = harness
        .watch(pb::WatchRequest {
            topics: vec![pb::WatchTopic::Health as i32],
            ..Default::default()
        })
        .await
        .unwrap();
    let mut seen = Vec::new();
    until_status(&mut stream, pb::HealthStatus::Healthy, &mut seen).await;

    target.stop().await;
    let stopped = Instant::now();
    until_status(&mut stream, pb::HealthStatus::Unhealthy, &mut seen).await;
    let bound = Duration::from_millis(INTERVAL_MS * THRESHOLD) + Duration::from_secs(1);
    assert!(
        stopped.elapsed() <= bound,
        "unhealthy after {:?}, more than {bound:?}",
        stopped.elapsed()
    );

    target.start().await;
    until_status(&mut stream, pb::HealthStatus::Healthy, &mut seen).await;

    let statuses: Vec<_> = seen.iter().map(|(_, status)| *status).collect();
    assert_eq!(
        statuses,
        vec![
            pb::HealthStatus::Healthy,
            pb::HealthStatus::Unhealthy,
            pb::HealthStatus::Healthy
        ],
        "exactly the transitions: {seen:?}"
    );
    assert!(
        seen.windows(2).all(|w| w[0].0 < w[1].0),
        "revisions increase: {seen:?}"
    );
    harness.shutdown().await;
}

/// What an in-process target serves.
#[derive(Clone, Copy)]
enum Served {
    /// `/health` answering "ok".
    Http,
    /// The standard gRPC health service, SERVING.
    Grpc,
}

/// A server task in this process, on an address it keeps across stop and start.
struct InProcessTarget {
    served: Served,
    addr: SocketAddr,
    task: Option<JoinHandle<()>>,
}

impl InProcessTarget {
    async fn new(served: Served) -> InProcessTarget {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut target = InProcessTarget {
            served,
            addr: listener.local_addr().unwrap(),
            task: None,
        };
        target.serve(listener).await;
        target
    }

    async fn serve(&mut self, listener: TcpListener) {
        self.task = Some(match self.served {
            Served::Http => {
                let router =
                    axum::Router::new().route("/health", axum::routing::get(|| async { "ok" }));
                tokio::spawn(async move { axum::serve(listener, router).await.unwrap() })
            }
            Served::Grpc => {
                let (reporter, service) = tonic_health::server::health_reporter();
                reporter
                    .set_service_status("", tonic_health::ServingStatus::Serving)
                    .await;
                tokio::spawn(async move {
                    let _reporter = reporter;
                    tonic::transport::Server::builder()
                        .add_service(service)
                        .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener))
                        .await
                        .unwrap();
                })
            }
        });
    }
}

impl Target for InProcessTarget {
    fn check_yaml(&self) -> String {
        match self.served {
            Served::Http => format!(
                "http: {{url: 'http://{}/health', body_contains: ok}}",
                self.addr
            ),
            Served::Grpc => format!("grpc: {{address: '{}'}}", self.addr),
        }
    }

    async fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }

    async fn start(&mut self) {
        let listener = TcpListener::bind(self.addr).await.unwrap();
        self.serve(listener).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_check_follows_an_http_server() {
    follows_its_target(InProcessTarget::new(Served::Http).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_check_follows_a_grpc_server() {
    follows_its_target(InProcessTarget::new(Served::Grpc).await).await;
}

/// A throwaway PostgreSQL cluster of its own, stopped and restarted with pg_ctl.
struct PostgresTarget(pharos_e2e::TestPostgres);

impl Target for PostgresTarget {
    fn check_yaml(&self) -> String {
        format!("postgres: {{dsn: '{}'}}", self.0.url())
    }

    async fn stop(&mut self) {
        self.0.stop().unwrap();
    }

    async fn start(&mut self) {
        self.0.restart().unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_check_follows_a_postgres_server() {
    follows_its_target(PostgresTarget(pharos_e2e::TestPostgres::start().unwrap())).await;
}

struct RedisTarget(pharos_e2e::TestRedis);

impl Target for RedisTarget {
    fn check_yaml(&self) -> String {
        format!("redis: {{url: '{}'}}", self.0.url())
    }

    async fn stop(&mut self) {
        self.0.stop();
    }

    async fn start(&mut self) {
        self.0.start().unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_check_follows_a_redis_server() {
    follows_its_target(RedisTarget(pharos_e2e::TestRedis::new().unwrap())).await;
}

struct MosquittoTarget(pharos_e2e::TestMosquitto);

impl Target for MosquittoTarget {
    fn check_yaml(&self) -> String {
        format!("mqtt: {{address: '{}'}}", self.0.address())
    }

    async fn stop(&mut self) {
        self.0.stop();
    }

    async fn start(&mut self) {
        self.0.start().unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_check_follows_a_mosquitto_broker() {
    follows_its_target(MosquittoTarget(pharos_e2e::TestMosquitto::new().unwrap())).await;
}

/// Reads check health changes of `svc/test/probe` until `wanted` holds for one.
async fn until_check(
    stream: &mut tonic::Streaming<pb::WatchResponse>,
    wanted: impl Fn(&pb::CheckHealth) -> bool,
) -> pb::CheckHealth {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(15), stream.message())
            .await
            .expect("a health change within 15 s")
            .expect("stream healthy")
            .expect("stream open");
        if let Some(pb::watch_response::Message::Change(change)) = message.message
            && let Some(pb::change::Object::CheckHealth(check)) = change.object
            && check.check_id == "svc/test/probe"
            && wanted(&check)
        {
            return check;
        }
    }
}

async fn health_stream(harness: &Harness) -> tonic::Streaming<pb::WatchResponse> {
    harness
        .watch(pb::WatchRequest {
            topics: vec![pb::WatchTopic::Health as i32],
            ..Default::default()
        })
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_target_is_degraded() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = axum::Router::new().route(
        "/slow",
        axum::routing::get(|| async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            "ok"
        }),
    );
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let check = format!("http: {{url: 'http://{addr}/slow', degraded_after: 100ms}}");
    let catalog = catalog(&check)
        .replace("timeout: 250ms", "timeout: 1s")
        .replace("interval: 300ms", "interval: 1s");
    let harness = Harness::start_with_catalog(Backend::Sqlite, &catalog, |_| {}).await;
    let mut stream = health_stream(&harness).await;
    let check = until_check(&mut stream, |c| {
        c.status != pb::HealthStatus::Unspecified as i32
    })
    .await;
    assert_eq!(check.status, pb::HealthStatus::Degraded as i32, "{check:?}");
    let result = check.last_result.unwrap();
    assert!(result.message.contains("slow"), "{}", result.message);
    harness.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flapping_target_is_marked_flapping() {
    let mut target = InProcessTarget::new(Served::Http).await;
    let catalog = catalog(&target.check_yaml()).replace("unhealthy_after: 2", "unhealthy_after: 1");
    let harness = Harness::start_with_catalog(Backend::Sqlite, &catalog, |settings| {
        settings.health.flap = pharos_control_plane::health::machine::FlapPolicy {
            window: Duration::from_secs(60),
            changes: 4,
        };
    })
    .await;
    let mut stream = health_stream(&harness).await;
    until_check(&mut stream, |c| {
        c.status == pb::HealthStatus::Healthy as i32
    })
    .await;
    // Down and up twice: four changes within the window.
    for _ in 0..2 {
        target.stop().await;
        until_check(&mut stream, |c| {
            c.status == pb::HealthStatus::Unhealthy as i32
        })
        .await;
        target.start().await;
        let check = until_check(&mut stream, |c| {
            c.status == pb::HealthStatus::Healthy as i32 || c.flapping
        })
        .await;
        if check.flapping {
            break;
        }
    }
    let flapping = harness
        .journal_after(0)
        .await
        .into_iter()
        .filter_map(|entry| match entry.object {
            pharos_control_plane::journal::Object::CheckHealth(check) if check.flapping => {
                Some(check)
            }
            _ => None,
        })
        .count();
    assert!(flapping >= 1, "a flapping-on change is journaled");
    // Further changes while flapping are not announced one by one.
    target.stop().await;
    let quiet_since = harness.server().hub.head();
    // Wait (bounded) until the engine's state shows the check down and still flapping.
    let mut client =
        pharos_proto::v1::health_service_client::HealthServiceClient::connect(harness.url())
            .await
            .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let project = client
            .get_project_health(pb::GetProjectHealthRequest {
                project_id: "svc".into(),
            })
            .await
            .unwrap()
            .into_inner();
        let check = project.deployments[0].checks[0].check.clone().unwrap();
        if check.status == pb::HealthStatus::Unhealthy as i32 {
            assert!(check.flapping, "{check:?}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the check never went down: {check:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let announced: Vec<_> = harness
        .journal_after(quiet_since)
        .await
        .into_iter()
        .filter(|entry| {
            matches!(
                &entry.object,
                pharos_control_plane::journal::Object::CheckHealth(_)
            )
        })
        .collect();
    assert!(
        announced.is_empty(),
        "changes while flapping stay quiet: {announced:?}"
    );
    harness.shutdown().await;
}
