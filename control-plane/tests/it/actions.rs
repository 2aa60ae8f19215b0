//! Actions against a real Podman Docker API: restart, stop and start change the
//! containers; scale 1 -> 3 -> 1 leaves exactly the right ones; a rolling restart never
//! has more than one replica down and halts at a replica that fails its HTTP check;
//! concurrent actions on one deployment are refused with ABORTED; a request_id acts
//! once; operations are stored, watched, resumed, audited, and marked interrupted after
//! a restart.

use crate::common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{Backend, Harness};
use pharos_control_plane::auth::{Role, TokenConfig, hash_token};
use pharos_e2e::{BUSYBOX_IMAGE, TestPodman, free_port};
use pharos_proto::v1 as pb;
use pharos_proto::v1::action_service_client::ActionServiceClient;
use pharos_proto::v1::container_service_client::ContainerServiceClient;
use pharos_proto::v1::watch_service_client::WatchServiceClient;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

type Interceptor = fn(tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status>;
type Authed = InterceptedService<Channel, Interceptor>;
type Client = ActionServiceClient<Authed>;

const OPERATOR: &str = "operator-secret";
const ADMIN: &str = "admin-secret";

fn bearer(mut request: tonic::Request<()>, token: &str) -> tonic::Request<()> {
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

fn as_operator(request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
    Ok(bearer(request, OPERATOR))
}

fn as_admin(request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
    Ok(bearer(request, ADMIN))
}

async fn channel(harness: &Harness) -> Channel {
    Channel::from_shared(harness.url())
        .unwrap()
        .connect()
        .await
        .unwrap()
}

/// A container that exits at once on SIGTERM (a shell trap interrupts `wait`).
const QUICK: &[&str] = &["sh", "-c", "trap 'exit 0' TERM; sleep 600 & wait"];
/// A container whose PID 1 ignores SIGTERM: stopping it takes the grace period.
const SLOW: &[&str] = &["sleep", "600"];

fn catalog(base_port: u16) -> String {
    format!(
        r#"environments:
  - id: prod
projects:
  - id: api
    deployments:
      - environment: prod
        containers: {{app: api}}
  - id: web
    deployments:
      - environment: prod
        containers: {{app: web}}
        template:
          image: {BUSYBOX_IMAGE}
          command: ["sh", "-c", "mkdir -p /www; [ -f /www/.init ] || {{ echo ok > /www/health; touch /www/.init; }}; trap 'exit 0' TERM; httpd -f -p 127.0.0.1:$PORT -h /www & wait"]
          labels: {{tier: frontend}}
          port: {base_port}
          health_path: /health
          ready_timeout: 3s
"#
    )
}

async fn start(
    podman: &TestPodman,
    tweak: impl FnOnce(&mut pharos_control_plane::config::Settings),
) -> Harness {
    start_on(Backend::Sqlite, podman, tweak).await
}

async fn start_on(
    backend: Backend,
    podman: &TestPodman,
    tweak: impl FnOnce(&mut pharos_control_plane::config::Settings),
) -> Harness {
    let host = podman.docker_host();
    let harness = Harness::start_with_catalog(backend, &catalog(free_port_block()), move |s| {
        s.containers.docker_host = Some(host);
        s.tokens = vec![
            TokenConfig {
                name: "deployer".into(),
                role: Role::Operator,
                sha256: hash_token(OPERATOR),
            },
            TokenConfig {
                name: "watcher".into(),
                role: Role::Viewer,
                sha256: hash_token("viewer-secret"),
            },
            TokenConfig {
                name: "root".into(),
                role: Role::Admin,
                sha256: hash_token(ADMIN),
            },
        ];
        s.containers.resync_interval = Duration::from_secs(2);
        tweak(s);
    })
    .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !harness.server().containers.engine_up() {
        assert!(
            Instant::now() < deadline,
            "engine not up: {:?}",
            harness.server().containers.engine()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    harness
}

/// A base port with the two above it free a moment ago.
fn free_port_block() -> u16 {
    loop {
        let base = free_port();
        if base < 65_000
            && (1..3).all(|i| std::net::TcpListener::bind(("127.0.0.1", base + i)).is_ok())
        {
            return base;
        }
    }
}

async fn actions(harness: &Harness) -> Client {
    ActionServiceClient::with_interceptor(channel(harness).await, as_operator as Interceptor)
}

async fn containers(harness: &Harness, deployment: &str) -> Vec<pb::Container> {
    ContainerServiceClient::with_interceptor(channel(harness).await, as_operator as Interceptor)
        .list_containers(pb::ListContainersRequest {
            deployment_id: deployment.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .containers
}

/// Polls ListContainers until `done` holds for the deployment's containers.
async fn until_containers(
    harness: &Harness,
    deployment: &str,
    what: &str,
    done: impl Fn(&[pb::Container]) -> bool,
) -> Vec<pb::Container> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let found = containers(harness, deployment).await;
        if done(&found) {
            return found;
        }
        assert!(Instant::now() < deadline, "{what}: {found:#?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn started(c: &pb::Container) -> (i64, i32) {
    c.started.map_or((0, 0), |t| (t.seconds, t.nanos))
}

fn restart(deployment: &str, reason: &str, request_id: &str) -> pb::RestartDeploymentRequest {
    pb::RestartDeploymentRequest {
        deployment_id: deployment.into(),
        reason: reason.into(),
        request_id: request_id.into(),
        dry_run: false,
    }
}

/// Follows an operation to its final state; returns every state received.
async fn follow(client: &mut Client, id: &str, after: u64) -> Vec<pb::Operation> {
    let mut stream = client
        .watch_operation(pb::WatchOperationRequest {
            id: id.into(),
            after_version: after,
        })
        .await
        .unwrap()
        .into_inner();
    let mut seen = Vec::new();
    loop {
        let message = tokio::time::timeout(Duration::from_secs(30), stream.message())
            .await
            .expect("operation progress within 30 s")
            .expect("stream healthy");
        match message {
            Some(message) => seen.push(message.operation.unwrap()),
            None => return seen,
        }
    }
}

fn state(op: &pb::Operation) -> pb::OperationState {
    pb::OperationState::try_from(op.state).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_stop_start_are_operations_that_act_and_are_audited() {
    restart_stop_start_are_operations_that_act_and_are_audited_on(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_stop_start_are_operations_that_act_and_are_audited_on_postgres() {
    restart_stop_start_are_operations_that_act_and_are_audited_on(Backend::Postgres).await;
}

async fn restart_stop_start_are_operations_that_act_and_are_audited_on(backend: Backend) {
    let podman = TestPodman::start().unwrap();
    let harness = start_on(backend, &podman, |_| {}).await;
    let id = podman.run(&[("app", "api")], QUICK).await.unwrap();
    let before = until_containers(&harness, "api/prod", "container discovered", |c| {
        c.len() == 1 && c[0].state == pb::ContainerState::Running as i32
    })
    .await;
    let mut client = actions(&harness).await;

    // Bad input changes nothing.
    let err = client
        .restart_deployment(restart("api/prod", "  ", ""))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
    assert!(err.message().contains("reason"), "{err:?}");
    let err = client
        .restart_deployment(restart("nope/prod", "x", ""))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound, "{err:?}");

    // A dry run reports the steps and does nothing.
    let planned = client
        .restart_deployment(pb::RestartDeploymentRequest {
            dry_run: true,
            ..restart("api/prod", "check the plan", "")
        })
        .await
        .unwrap()
        .into_inner()
        .operation
        .unwrap();
    assert_eq!(state(&planned), pb::OperationState::Planned);
    assert_eq!(planned.steps.len(), 1);
    assert_eq!(planned.steps[0].container_id, id);

    let op = client
        .restart_deployment(restart("api/prod", "pick up new config", ""))
        .await
        .unwrap()
        .into_inner()
        .operation
        .unwrap();
    assert_eq!(op.actor, "deployer");
    let seen = follow(&mut client, &op.id, 0).await;
    let last = seen.last().unwrap();
    assert_eq!(state(last), pb::OperationState::Succeeded, "{last:#?}");
    assert!(
        seen.iter().any(|o| state(o) == pb::OperationState::Running),
        "{seen:#?}"
    );
    // Versions increase; resuming after the last one sends nothing more.
    assert!(seen.windows(2).all(|w| w[0].version < w[1].version));
    assert!(follow(&mut client, &op.id, last.version).await.is_empty());
    let resumed = follow(&mut client, &op.id, 1).await;
    assert_eq!(resumed.len(), 1);
    assert_eq!(resumed[0].version, last.version);

    // The restart changed the container's start time.
    let was = started(&before[0]);
    until_containers(&harness, "api/prod", "start time changed", |c| {
        c.len() == 1 && started(&c[0]) != was && c[0].state == pb::ContainerState::Running as i32
    })
    .await;

    let op = client
        .stop_deployment(pb::StopDeploymentRequest {
            deployment_id: "api/prod".into(),
            reason: "maintenance".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .operation
        .unwrap();
    assert_eq!(
        state(follow(&mut client, &op.id, 0).await.last().unwrap()),
        pb::OperationState::Succeeded
    );
    until_containers(&harness, "api/prod", "stopped", |c| {
        c.len() == 1 && c[0].state == pb::ContainerState::Exited as i32
    })
    .await;
    let op = client
        .start_deployment(pb::StartDeploymentRequest {
            deployment_id: "api/prod".into(),
            reason: "maintenance over".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .operation
        .unwrap();
    assert_eq!(
        state(follow(&mut client, &op.id, 0).await.last().unwrap()),
        pb::OperationState::Succeeded
    );
    until_containers(&harness, "api/prod", "running again", |c| {
        c.len() == 1 && c[0].state == pb::ContainerState::Running as i32
    })
    .await;

    // Stored, listed newest first, and on the operations topic.
    let listed = client
        .list_operations(pb::ListOperationsRequest {
            deployment_id: "api/prod".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .operations;
    let kinds: Vec<i32> = listed.iter().map(|o| o.kind).collect();
    assert_eq!(
        kinds,
        vec![
            pb::OperationKind::Start as i32,
            pb::OperationKind::Stop as i32,
            pb::OperationKind::Restart as i32,
            pb::OperationKind::Restart as i32,
        ]
    );
    let mut watch =
        WatchServiceClient::with_interceptor(channel(&harness).await, as_operator as Interceptor)
            .watch(pb::WatchRequest {
                topics: vec![pb::WatchTopic::Operations as i32],
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
    let mut snapshot = BTreeSet::new();
    loop {
        match common::next(&mut watch).await.unwrap() {
            common::Item::Snapshot(_, key) => {
                snapshot.insert(key);
            }
            common::Item::SnapshotComplete(_) => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(snapshot.len(), 4, "{snapshot:?}");
    assert!(snapshot.contains(&format!("operation/{}", op.id)));

    // Audited, refused calls included.
    let mut admin =
        ActionServiceClient::with_interceptor(channel(&harness).await, as_admin as Interceptor);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let records = admin
            .list_audit_records(pb::ListAuditRecordsRequest::default())
            .await
            .unwrap()
            .into_inner()
            .records;
        let codes: Vec<&str> = records.iter().map(|r| r.code.as_str()).collect();
        if codes == ["OK", "OK", "OK", "OK", "NOT_FOUND", "INVALID_ARGUMENT"] {
            assert_eq!(records[0].operation_id, op.id);
            assert_eq!(records[0].reason, "maintenance over");
            break;
        }
        assert!(Instant::now() < deadline, "audit records: {records:#?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    harness.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_operation_per_deployment_and_request_ids_act_once() {
    let podman = TestPodman::start().unwrap();
    let harness = start(&podman, |_| {}).await;
    podman.run(&[("app", "api")], SLOW).await.unwrap();
    until_containers(&harness, "api/prod", "discovered", |c| c.len() == 1).await;
    let client = actions(&harness).await;

    // The same request_id 20 times at once: one operation, every answer names it.
    let answers = futures::future::join_all((0..20).map(|_| {
        let mut client = client.clone();
        async move {
            client
                .restart_deployment(restart("api/prod", "deploy", "req-1"))
                .await
                .map(|r| r.into_inner().operation.unwrap().id)
        }
    }))
    .await;
    let ids: BTreeSet<String> = answers.into_iter().map(|a| a.unwrap()).collect();
    assert_eq!(ids.len(), 1, "{ids:?}");
    let op_id = ids.into_iter().next().unwrap();

    // While it runs (SIGTERM is ignored: the stop waits its grace), others are refused.
    let answers = futures::future::join_all((0..5).map(|i| {
        let mut client = client.clone();
        async move {
            client
                .restart_deployment(restart("api/prod", "again", &format!("other-{i}")))
                .await
        }
    }))
    .await;
    for answer in answers {
        let err = answer.unwrap_err();
        assert_eq!(err.code(), tonic::Code::Aborted, "{err:?}");
        assert!(err.message().contains(&op_id), "{err:?}");
    }
    let err = client
        .clone()
        .stop_deployment(pb::StopDeploymentRequest {
            deployment_id: "api/prod".into(),
            reason: "stop".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Aborted, "{err:?}");
    // The same id with other parameters.
    let err = client
        .clone()
        .restart_deployment(restart("api/prod", "another reason", "req-1"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");

    let mut watcher = client.clone();
    let last = follow(&mut watcher, &op_id, 0).await.pop().unwrap();
    assert_eq!(state(&last), pb::OperationState::Succeeded, "{last:#?}");
    let all = watcher
        .list_operations(pb::ListOperationsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .operations;
    assert_eq!(all.len(), 1, "{all:#?}");
    // Asking again after it finished returns the same operation, and acts no more.
    let again = watcher
        .restart_deployment(restart("api/prod", "deploy", "req-1"))
        .await
        .unwrap()
        .into_inner()
        .operation
        .unwrap();
    assert_eq!(
        (again.id.as_str(), again.version),
        (op_id.as_str(), last.version)
    );
    harness.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operation_cut_short_by_a_restart_is_marked_interrupted() {
    an_operation_cut_short_by_a_restart_is_marked_interrupted_on(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operation_cut_short_by_a_restart_is_marked_interrupted_on_postgres() {
    an_operation_cut_short_by_a_restart_is_marked_interrupted_on(Backend::Postgres).await;
}

async fn an_operation_cut_short_by_a_restart_is_marked_interrupted_on(backend: Backend) {
    let podman = TestPodman::start().unwrap();
    let mut harness = start_on(backend, &podman, |_| {}).await;
    podman.run(&[("app", "api")], SLOW).await.unwrap();
    until_containers(&harness, "api/prod", "discovered", |c| c.len() == 1).await;
    let op = actions(&harness)
        .await
        .restart_deployment(restart("api/prod", "deploy", ""))
        .await
        .unwrap()
        .into_inner()
        .operation
        .unwrap();
    harness.restart().await;
    let after = actions(&harness)
        .await
        .get_operation(pb::GetOperationRequest { id: op.id.clone() })
        .await
        .unwrap()
        .into_inner()
        .operation
        .unwrap();
    assert_eq!(state(&after), pb::OperationState::Interrupted, "{after:#?}");
    assert!(after.result.contains("interrupted"), "{after:#?}");
    harness.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denied_calls_are_audited() {
    let podman = TestPodman::start().unwrap();
    let harness = start(&podman, |_| {}).await;
    let channel = Channel::from_shared(harness.url())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let with = |token: &'static str| {
        ActionServiceClient::with_interceptor(channel.clone(), move |mut r: tonic::Request<()>| {
            r.metadata_mut()
                .insert("authorization", format!("Bearer {token}").parse().unwrap());
            Ok(r)
        })
    };
    let err = with("viewer-secret")
        .restart_deployment(restart("api/prod", "let me", ""))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::PermissionDenied, "{err:?}");
    let err = with("viewer-secret")
        .list_audit_records(pb::ListAuditRecordsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::PermissionDenied, "{err:?}");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let records = with("admin-secret")
            .list_audit_records(pb::ListAuditRecordsRequest::default())
            .await
            .unwrap()
            .into_inner()
            .records;
        if records.len() == 2 {
            let methods: Vec<(&str, &str, &str)> = records
                .iter()
                .map(|r| (r.actor.as_str(), r.method.as_str(), r.code.as_str()))
                .collect();
            assert_eq!(
                methods,
                vec![
                    (
                        "watcher",
                        "/pharos.v1.ActionService/ListAuditRecords",
                        "PERMISSION_DENIED"
                    ),
                    (
                        "watcher",
                        "/pharos.v1.ActionService/RestartDeployment",
                        "PERMISSION_DENIED"
                    ),
                ]
            );
            break;
        }
        assert!(Instant::now() < deadline, "audit records: {records:#?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    harness.shutdown().await;
}

async fn scale(client: &mut Client, replicas: u32) -> pb::Operation {
    let op = client
        .scale_deployment(pb::ScaleDeploymentRequest {
            deployment_id: "web/prod".into(),
            reason: format!("scale to {replicas}"),
            replicas,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .operation
        .unwrap();
    follow(client, &op.id, 0).await.pop().unwrap()
}

async fn http_ok(port: u16) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let exchange = async {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .ok()?;
        s.write_all(b"GET /health HTTP/1.0\r\n\r\n").await.ok()?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await.ok()?;
        Some(buf.starts_with(b"HTTP/1.0 200") || buf.starts_with(b"HTTP/1.1 200"))
    };
    tokio::time::timeout(Duration::from_secs(2), exchange)
        .await
        .ok()
        .flatten()
        .unwrap_or(false)
}

fn port_of(c: &pb::Container) -> u16 {
    c.labels["pharos.port"].parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_and_rolling_restart() {
    let podman = TestPodman::start().unwrap();
    let harness = start(&podman, |_| {}).await;
    let mut client = actions(&harness).await;

    // Scale with no template is refused.
    let err = client
        .scale_deployment(pb::ScaleDeploymentRequest {
            deployment_id: "api/prod".into(),
            reason: "more".into(),
            replicas: 2,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::FailedPrecondition, "{err:?}");

    // 0 -> 1 -> 3 -> 1: the first replica stays, the newest go first.
    let op = scale(&mut client, 1).await;
    assert_eq!(state(&op), pb::OperationState::Succeeded, "{op:#?}");
    let one = until_containers(&harness, "web/prod", "one replica", |c| c.len() == 1).await;
    assert_eq!(one[0].labels["tier"], "frontend");
    assert_eq!(one[0].labels["pharos.replica"], "1");
    let op = scale(&mut client, 3).await;
    assert_eq!(state(&op), pb::OperationState::Succeeded, "{op:#?}");
    let three = until_containers(&harness, "web/prod", "three replicas running", |c| {
        c.len() == 3
            && c.iter()
                .all(|c| c.state == pb::ContainerState::Running as i32)
    })
    .await;
    assert!(three.iter().any(|c| c.id == one[0].id));
    let ps = podman
        .podman(&["ps", "-q", "--no-trunc", "--filter", "label=app=web"])
        .await
        .unwrap();
    assert_eq!(ps.lines().count(), 3, "{ps}");

    // Every replica serves its health path on its own port.
    let deadline = Instant::now() + Duration::from_secs(5);
    for c in &three {
        while !http_ok(port_of(c)).await {
            assert!(Instant::now() < deadline, "replica {} never served", c.name);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    // A rolling restart, sampled: never more than one replica down.
    let ports: Vec<u16> = three.iter().map(port_of).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let most_down = Arc::new(AtomicUsize::new(0));
    let samples = Arc::new(AtomicUsize::new(0));
    let sampler = tokio::spawn({
        let (stop, most_down, samples, ports) = (
            stop.clone(),
            most_down.clone(),
            samples.clone(),
            ports.clone(),
        );
        async move {
            while !stop.load(Ordering::Relaxed) {
                let up = futures::future::join_all(ports.iter().map(|p| http_ok(*p))).await;
                let down = up.iter().filter(|ok| !**ok).count();
                most_down.fetch_max(down, Ordering::Relaxed);
                samples.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    });
    let op = client
        .rollout_restart(pb::RolloutRestartRequest {
            deployment_id: "web/prod".into(),
            reason: "roll".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .operation
        .unwrap();
    let rolled = follow(&mut client, &op.id, 0).await.pop().unwrap();
    stop.store(true, Ordering::Relaxed);
    sampler.await.unwrap();
    assert_eq!(state(&rolled), pb::OperationState::Succeeded, "{rolled:#?}");
    assert_eq!(rolled.steps.len(), 3);
    assert!(samples.load(Ordering::Relaxed) >= 5, "too few samples");
    assert!(
        most_down.load(Ordering::Relaxed) <= 1,
        "{} replicas were down at once",
        most_down.load(Ordering::Relaxed)
    );
    let after = until_containers(&harness, "web/prod", "all restarted", |c| {
        c.len() == 3
            && c.iter().all(|now| {
                three
                    .iter()
                    .any(|was| was.id == now.id && started(was) != started(now))
            })
    })
    .await;

    // Replica 2 of the rollout order fails its check: the rollout halts there.
    let order: Vec<String> = rolled
        .steps
        .iter()
        .map(|s| s.container_id.clone())
        .collect();
    podman
        .podman(&["exec", &order[1], "rm", "/www/health"])
        .await
        .unwrap();
    let op = client
        .rollout_restart(pb::RolloutRestartRequest {
            deployment_id: "web/prod".into(),
            reason: "roll again".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .operation
        .unwrap();
    let halted = follow(&mut client, &op.id, 0).await.pop().unwrap();
    assert_eq!(state(&halted), pb::OperationState::Failed, "{halted:#?}");
    let step_states: Vec<i32> = halted.steps.iter().map(|s| s.state).collect();
    assert_eq!(
        step_states,
        vec![
            pb::StepState::Succeeded as i32,
            pb::StepState::Failed as i32,
            pb::StepState::Skipped as i32
        ]
    );
    assert_eq!(halted.steps[1].container_id, order[1]);
    assert!(
        halted.result.starts_with("stopped at step 2 of 3"),
        "{}",
        halted.result
    );
    assert!(
        halted.steps[1].message.contains("404"),
        "{}",
        halted.steps[1].message
    );
    let third = containers(&harness, "web/prod")
        .await
        .into_iter()
        .find(|c| c.id == order[2])
        .unwrap();
    let before = after.iter().find(|c| c.id == order[2]).unwrap();
    assert_eq!(started(&third), started(before), "replica 3 was restarted");

    // Back to one: the two newest go.
    let op = scale(&mut client, 1).await;
    assert_eq!(state(&op), pb::OperationState::Succeeded, "{op:#?}");
    let left = until_containers(&harness, "web/prod", "one replica left", |c| c.len() == 1).await;
    assert_eq!(left[0].id, one[0].id);
    let ps = podman
        .podman(&["ps", "-aq", "--no-trunc", "--filter", "label=app=web"])
        .await
        .unwrap();
    assert_eq!(ps.lines().collect::<Vec<_>>(), vec![one[0].id.as_str()]);
    harness.shutdown().await;
}
