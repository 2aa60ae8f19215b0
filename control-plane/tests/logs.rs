//! ContainerService.TailLogs against a real Podman Docker API: the last lines of a
//! discovered container with their stream and time, then new lines with follow; unknown
//! containers and oversized tails are refused with a precise status.

mod common;

use std::time::{Duration, Instant};

use common::{Backend, Harness};
use pharos_e2e::TestPodman;
use pharos_proto::v1 as pb;
use pharos_proto::v1::container_service_client::ContainerServiceClient;
use tonic::Code;

const CATALOG: &str = "\
environments:
  - id: prod
projects:
  - id: api
    deployments:
      - environment: prod
";

async fn collect(
    client: &mut ContainerServiceClient<tonic::transport::Channel>,
    id: &str,
    tail: u32,
) -> Vec<pb::LogLine> {
    let mut stream = client
        .tail_logs(pb::TailLogsRequest {
            container_id: id.to_owned(),
            tail_lines: tail,
            follow: false,
        })
        .await
        .expect("TailLogs answers")
        .into_inner();
    let mut lines = Vec::new();
    while let Some(response) = tokio::time::timeout(Duration::from_secs(10), stream.message())
        .await
        .expect("the log in time")
        .expect("stream healthy")
    {
        lines.extend(response.lines);
    }
    lines
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_logs_sends_the_last_lines_then_follows() {
    let podman = TestPodman::start().expect("podman");
    let host = podman.docker_host();
    let harness = Harness::start_with_catalog(Backend::Sqlite, CATALOG, move |settings| {
        settings.containers.docker_host = Some(host);
    })
    .await;
    let id = podman
        .run(
            &[("pharos.project", "api"), ("pharos.environment", "prod")],
            &[
                "sh",
                "-c",
                "for i in 1 2 3 4 5; do echo line-$i; done; echo oops >&2; trap 'exit 0' TERM; while :; do sleep 0.2; echo tick; done",
            ],
        )
        .await
        .expect("run");
    let mut client = ContainerServiceClient::connect(harness.url())
        .await
        .unwrap();

    // Refused before the collector knows the container, and for nonsense.
    let err = client
        .tail_logs(pb::TailLogsRequest {
            container_id: "no-such-container".into(),
            tail_lines: 10,
            follow: false,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    let err = client
        .tail_logs(pb::TailLogsRequest {
            container_id: id.clone(),
            tail_lines: 100_001,
            follow: false,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");

    // Discovered, and printed: the whole log so far, in order.
    let deadline = Instant::now() + Duration::from_secs(15);
    let lines = loop {
        let found = client
            .list_containers(pb::ListContainersRequest::default())
            .await
            .unwrap()
            .into_inner()
            .containers
            .iter()
            .any(|c| c.id == id);
        if found {
            let lines = collect(&mut client, &id, 1000).await;
            if lines.iter().any(|l| l.text == "oops") {
                break lines;
            }
        }
        assert!(Instant::now() < deadline, "the container's log in 15 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let texts: Vec<&str> = lines.iter().map(|l| l.text.as_str()).collect();
    assert_eq!(
        &texts[..6],
        &["line-1", "line-2", "line-3", "line-4", "line-5", "oops"]
    );
    assert_eq!(lines[0].stream, pb::LogStreamKind::Stdout as i32);
    assert_eq!(lines[5].stream, pb::LogStreamKind::Stderr as i32);
    assert!(
        lines.iter().all(|l| l.time.is_some()),
        "every line has a time"
    );

    // The last 2 lines only.
    let last = collect(&mut client, &id, 2).await;
    assert_eq!(last.len(), 2, "{last:?}");
    // The log only grows ("tick" every 0.2 s after "oops"): its end is one of these.
    assert!(matches!(last[1].text.as_str(), "oops" | "tick"), "{last:?}");

    // Following: a line written after the call arrives.
    let mut stream = client
        .tail_logs(pb::TailLogsRequest {
            container_id: id.clone(),
            tail_lines: 0,
            follow: true,
        })
        .await
        .unwrap()
        .into_inner();
    let next = tokio::time::timeout(Duration::from_secs(5), stream.message())
        .await
        .expect("a followed line in time")
        .expect("stream healthy")
        .expect("stream open");
    assert!(next.lines.iter().any(|l| l.text == "tick"), "{next:?}");
}
