//! HealthService and the health topic against real targets: summary, project health with
//! windows, result history, heartbeats, status filters and catalog reloads.

use crate::common;

use std::time::Duration;

use common::{Backend, Harness};
use pharos_proto::v1 as pb;
use pharos_proto::v1::catalog_service_client::CatalogServiceClient;
use pharos_proto::v1::health_service_client::HealthServiceClient;
use tokio::net::TcpListener;
use tonic::Code;
use tonic::transport::Channel;

/// An HTTP server answering `/health` with "ok", for as long as the test runs.
async fn http_target() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = axum::Router::new().route("/health", axum::routing::get(|| async { "ok" }));
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}/health")
}

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    pharos_e2e::free_port()
}

async fn health(harness: &Harness) -> HealthServiceClient<Channel> {
    HealthServiceClient::connect(harness.url()).await.unwrap()
}

/// Polls `probe` every 50 ms until it returns `Some`, for at most 15 s.
async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn two_checks(url: &str, port: u16) -> String {
    format!(
        "environments:\n  - id: prod\n  - id: dev\nprojects:\n  - id: api\n    deployments:\n      - environment: prod\n        checks:\n          - {{name: web, interval: 200ms, timeout: 150ms, http: {{url: '{url}'}}}}\n      - environment: dev\n        checks:\n          - {{name: db, interval: 200ms, timeout: 150ms, unhealthy_after: 1, tcp: {{address: '127.0.0.1:{port}'}}}}\n"
    )
}

async fn summary_project_health_and_history_report_real_results(backend: Backend) {
    let url = http_target().await;
    let harness =
        Harness::start_with_catalog(backend, &two_checks(&url, closed_port()), |_| {}).await;
    let mut client = health(&harness).await;

    let summary = eventually("one healthy and one unhealthy deployment", || {
        let mut client = client.clone();
        async move {
            let summary = client
                .get_health_summary(pb::GetHealthSummaryRequest {})
                .await
                .unwrap()
                .into_inner();
            let counts = summary.deployments.unwrap();
            (counts.healthy == 1 && counts.unhealthy == 1 && !summary.recent_failures.is_empty())
                .then_some(summary)
        }
    })
    .await;
    let prod = summary
        .environments
        .iter()
        .find(|e| e.environment == "prod")
        .unwrap();
    assert_eq!(prod.status, pb::HealthStatus::Healthy as i32);
    let dev = summary
        .environments
        .iter()
        .find(|e| e.environment == "dev")
        .unwrap();
    assert_eq!(dev.status, pb::HealthStatus::Unhealthy as i32);
    assert_eq!(summary.recent_failures[0].check_id, "api/dev/db");
    assert!(
        summary.recent_failures[0].message.contains("refused"),
        "{:?}",
        summary.recent_failures[0]
    );

    // GetOverview counts the same deployments.
    let mut catalog = CatalogServiceClient::connect(harness.url()).await.unwrap();
    let overview = catalog
        .get_overview(pb::GetOverviewRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (
            overview.healthy_deployments,
            overview.unhealthy_deployments,
            overview.unknown_deployments
        ),
        (1, 1, 0)
    );

    // Windows come from rollups written by the history writer.
    let project = eventually("windows with runs", || {
        let mut client = client.clone();
        async move {
            let project = client
                .get_project_health(pb::GetProjectHealthRequest {
                    project_id: "api".into(),
                })
                .await
                .unwrap()
                .into_inner();
            let web = &project
                .deployments
                .iter()
                .find(|d| d.health.as_ref().unwrap().environment == "prod")?
                .checks[0];
            (web.windows[0].runs >= 2).then_some(project)
        }
    })
    .await;
    assert_eq!(
        project.status,
        pb::HealthStatus::Unhealthy as i32,
        "a project is as bad as its worst deployment"
    );
    let web = &project
        .deployments
        .iter()
        .find(|d| d.health.as_ref().unwrap().environment == "prod")
        .unwrap()
        .checks[0];
    let windows: Vec<&str> = web.windows.iter().map(|w| w.window.as_str()).collect();
    assert_eq!(windows, ["1h", "24h", "7d", "30d"]);
    assert_eq!(web.windows[0].uptime_percent, Some(100.0));
    assert!(web.windows[0].latency_p99.is_some());
    let last = web.check.as_ref().unwrap().last_result.as_ref().unwrap();
    assert!(last.connect.is_some() && last.first_byte.is_some() && last.total.is_some());

    // History pages newest first, without repeats.
    eventually("three results of the db check", || {
        let mut client = client.clone();
        async move {
            let page = client
                .list_check_results(pb::ListCheckResultsRequest {
                    check_id: "api/dev/db".into(),
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner();
            (page.results.len() >= 3).then_some(())
        }
    })
    .await;
    let first = client
        .list_check_results(pb::ListCheckResultsRequest {
            check_id: "api/dev/db".into(),
            page_size: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.results.len(), 1);
    assert!(!first.next_page_token.is_empty(), "{first:?}");
    let second = client
        .list_check_results(pb::ListCheckResultsRequest {
            check_id: "api/dev/db".into(),
            page_size: 1,
            page_token: first.next_page_token.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let time = |r: &pb::CheckResult| r.time.as_ref().map(|t| (t.seconds, t.nanos));
    assert!(time(&second.results[0]) <= time(&first.results[0]));
    assert_ne!(second.results[0], first.results[0]);

    let err = client
        .list_check_results(pb::ListCheckResultsRequest {
            check_id: "api/nope/x".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = client
        .list_check_results(pb::ListCheckResultsRequest {
            check_id: "api/dev/db".into(),
            page_token: "zz".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    harness.shutdown().await;
}

type Authed = HealthServiceClient<
    tonic::service::interceptor::InterceptedService<
        Channel,
        fn(tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status>,
    >,
>;

fn with_token(mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
    request
        .metadata_mut()
        .insert("authorization", "Bearer s3cret".parse().unwrap());
    Ok(request)
}

on_both_backends!(summary_project_health_and_history_report_real_results);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_keep_a_check_healthy_and_their_absence_fails_it() {
    let catalog = "environments:\n  - id: prod\nprojects:\n  - id: worker\n    deployments:\n      - environment: prod\n        checks:\n          - {name: alive, interval: 100ms, unhealthy_after: 1, heartbeat: {grace: 400ms}}\n          - {name: port, interval: 1s, tcp: {address: '127.0.0.1:9'}}\n";
    let harness = Harness::start_with_catalog(Backend::Sqlite, catalog, |settings| {
        settings.tokens = vec![pharos_control_plane::auth::TokenConfig {
            name: "worker".into(),
            role: pharos_control_plane::auth::Role::Operator,
            sha256: pharos_control_plane::auth::hash_token("s3cret"),
        }];
    })
    .await;
    let channel = Channel::from_shared(harness.url())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client: Authed =
        HealthServiceClient::with_interceptor(channel, with_token as fn(_) -> _);
    let beat = |client: &mut Authed, id: &str| {
        let mut client = client.clone();
        let id = id.to_owned();
        async move {
            client
                .heartbeat(pb::HeartbeatRequest {
                    check_id: id,
                    message: String::new(),
                })
                .await
        }
    };
    let status_of = |client: &Authed| {
        let mut client = client.clone();
        async move {
            let project = client
                .get_project_health(pb::GetProjectHealthRequest {
                    project_id: "worker".into(),
                })
                .await
                .unwrap()
                .into_inner();
            let check = project.deployments[0]
                .checks
                .iter()
                .find(|c| c.check.as_ref().unwrap().name == "alive")
                .unwrap();
            check.check.as_ref().unwrap().status
        }
    };
    let response = beat(&mut client, "worker/prod/alive")
        .await
        .unwrap()
        .into_inner();
    assert!(response.deadline.is_some());
    eventually("healthy after a heartbeat", || async {
        (status_of(&client).await == pb::HealthStatus::Healthy as i32).then_some(())
    })
    .await;
    eventually("unhealthy once heartbeats stop", || async {
        (status_of(&client).await == pb::HealthStatus::Unhealthy as i32).then_some(())
    })
    .await;
    beat(&mut client, "worker/prod/alive").await.unwrap();
    eventually("healthy again", || async {
        (status_of(&client).await == pb::HealthStatus::Healthy as i32).then_some(())
    })
    .await;

    assert_eq!(
        beat(&mut client, "worker/prod/nope")
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );
    assert_eq!(
        beat(&mut client, "worker/prod/port")
            .await
            .unwrap_err()
            .code(),
        Code::FailedPrecondition
    );
    harness.shutdown().await;
}

/// Reads health-topic changes until `done` says so; returns (revision, key, status,
/// kind). Snapshot entries count only with `with_snapshot`.
async fn health_changes(
    stream: &mut tonic::Streaming<pb::WatchResponse>,
    with_snapshot: bool,
    mut done: impl FnMut(&[(u64, String, i32, u32)]) -> bool,
) -> Vec<(u64, String, i32, u32)> {
    let mut seen = Vec::new();
    while !done(&seen) {
        let message = tokio::time::timeout(Duration::from_secs(15), stream.message())
            .await
            .expect("a change within 15 s")
            .unwrap()
            .unwrap();
        if let Some(pb::watch_response::Message::Change(change)) = message.message {
            if change.kind == pb::ChangeKind::Snapshot as i32 && !with_snapshot {
                continue;
            }
            let status = match &change.object {
                Some(pb::change::Object::CheckHealth(c)) => c.status,
                Some(pb::change::Object::DeploymentHealth(d)) => d.status,
                _ => continue,
            };
            seen.push((change.revision, change.key, status, change.kind as u32));
        }
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_filters_pass_entering_and_leaving_and_reloads_keep_unchanged_checks() {
    let url = http_target().await;
    let catalog = two_checks(&url, closed_port());
    let harness = Harness::start_with_catalog(Backend::Sqlite, &catalog, |_| {}).await;
    let mut unhealthy_only = harness
        .watch(pb::WatchRequest {
            topics: vec![pb::WatchTopic::Health as i32],
            health_statuses: vec![pb::HealthStatus::Unhealthy as i32],
            ..Default::default()
        })
        .await
        .unwrap();
    // The db check fails at once: in the snapshot, or as a change right after it.
    let seen = health_changes(&mut unhealthy_only, true, |seen| {
        seen.iter().any(|s| s.1 == "check/api/dev/db")
    })
    .await;
    assert!(
        seen.iter()
            .all(|s| s.2 == pb::HealthStatus::Unhealthy as i32),
        "{seen:?}"
    );
    assert!(
        !seen.iter().any(|s| s.1 == "check/api/prod/web"),
        "healthy checks are filtered out: {seen:?}"
    );

    // Wait for the web check to be healthy, then watch everything from here.
    let client = health(&harness).await;
    eventually("web healthy", || {
        let mut client = client.clone();
        async move {
            let summary = client
                .get_health_summary(pb::GetHealthSummaryRequest {})
                .await
                .unwrap()
                .into_inner();
            (summary.deployments.unwrap().healthy == 1).then_some(())
        }
    })
    .await;
    let mut all = harness
        .watch(pb::WatchRequest {
            topics: vec![pb::WatchTopic::Health as i32],
            ..Default::default()
        })
        .await
        .unwrap();

    // Reload: the failing db check now targets a live port; a new check appears; the
    // web check is unchanged.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let live = listener.local_addr().unwrap().port();
    let edited = two_checks(&url, live)
        + "  - id: extra\n    deployments:\n      - environment: dev\n        checks:\n          - {name: up, interval: 200ms, tcp: {address: '127.0.0.1:"
        + &live.to_string()
        + "'}}\n";
    std::fs::write(&harness.catalog_path, edited).unwrap();
    let seen = health_changes(&mut all, false, |seen| {
        seen.iter()
            .any(|s| s.1 == "check/api/dev/db" && s.2 == pb::HealthStatus::Healthy as i32)
            && seen
                .iter()
                .any(|s| s.1 == "check/extra/dev/up" && s.2 == pb::HealthStatus::Healthy as i32)
    })
    .await;
    assert!(
        !seen.iter().any(|s| s.1 == "check/api/prod/web"),
        "the unchanged check kept its state: {seen:?}"
    );
    // The db check left "unhealthy", so the unhealthy-only watcher hears of it too.
    let left = health_changes(&mut unhealthy_only, false, |seen| {
        seen.iter().any(|s| s.1 == "check/api/dev/db")
    })
    .await;
    assert_eq!(
        left.last().unwrap().2,
        pb::HealthStatus::Healthy as i32,
        "{left:?}"
    );

    // Removing a deployment deletes its health.
    std::fs::write(&harness.catalog_path, &catalog).unwrap();
    let seen = health_changes(&mut all, false, |seen| {
        seen.iter().any(|s| s.1 == "deployment-health/extra/dev")
    })
    .await;
    let removed = seen
        .iter()
        .find(|s| s.1 == "deployment-health/extra/dev")
        .unwrap();
    assert_eq!(removed.3, pb::ChangeKind::Delete as u32, "{seen:?}");
    drop(listener);
    harness.shutdown().await;
}
