//! EventService end to end: reported events reach a Watch subscriber, ListEvents and
//! GetErrorCounts; invalid batches change nothing.

use crate::common;

use std::time::Duration;

use common::{Backend, Harness, as_operator, quiet_operator};
use pharos_proto::v1 as pb;
use pharos_proto::v1::event_service_client::EventServiceClient;
use pharos_proto::v1::watch_service_client::WatchServiceClient;

async fn start() -> Harness {
    Harness::start(Backend::Sqlite, quiet_operator).await
}

fn reported(kind: &str, severity: pb::EventSeverity, project: &str) -> pb::ReportedEvent {
    pb::ReportedEvent {
        kind: kind.to_owned(),
        severity: severity as i32,
        message: format!("{kind} happened"),
        source: "ingest-worker".to_owned(),
        project_id: project.to_owned(),
        attributes: [("queue".to_owned(), "q1".to_owned())].into(),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reported_events_reach_watchers_history_and_counts() {
    let harness = start().await;
    let mut watch = WatchServiceClient::connect(harness.url())
        .await
        .unwrap()
        .watch(as_operator(pb::WatchRequest {
            topics: vec![pb::WatchTopic::Events as i32],
            projects: vec!["api".to_owned()],
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    // Events are a feed: an empty snapshot, then the marker.
    let first = watch.message().await.unwrap().unwrap();
    assert!(matches!(
        first.message,
        Some(pb::watch_response::Message::SnapshotComplete(_))
    ));

    let mut events = EventServiceClient::connect(harness.url()).await.unwrap();
    let batches = vec![
        pb::ReportEventsRequest {
            events: vec![
                reported("ingest.failed", pb::EventSeverity::Error, "api"),
                reported("ingest.failed", pb::EventSeverity::Critical, "api"),
            ],
        },
        pb::ReportEventsRequest {
            events: vec![
                reported("delivery.failed", pb::EventSeverity::Warning, "api"),
                reported("ingest.retried", pb::EventSeverity::Info, "web"),
            ],
        },
    ];
    let response = events
        .report_events(as_operator(tokio_stream::iter(batches)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(response.accepted, 4);

    // The watcher filtered to project "api" gets exactly the three api events, in order.
    let mut seen = Vec::new();
    while seen.len() < 3 {
        let message = tokio::time::timeout(Duration::from_secs(10), watch.message())
            .await
            .expect("event within 10 s")
            .unwrap()
            .unwrap();
        match message.message {
            Some(pb::watch_response::Message::Change(change)) => {
                let Some(pb::change::Object::Event(event)) = change.object else {
                    panic!("not an event: {change:?}");
                };
                if event.source == "ingest-worker" {
                    assert_eq!(event.project_id, "api");
                    assert_eq!(event.attributes["queue"], "q1");
                    seen.push(event.kind);
                }
            }
            Some(pb::watch_response::Message::Progress(_)) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(seen, ["ingest.failed", "ingest.failed", "delivery.failed"]);

    let counts = events
        .get_error_counts(as_operator(pb::GetErrorCountsRequest::default()))
        .await
        .unwrap()
        .into_inner();
    let by_kind: Vec<(String, u64, u64, i32)> = counts
        .counts
        .into_iter()
        .filter(|c| c.kind == "ingest.failed" || c.kind.starts_with("delivery"))
        .map(|c| (c.kind, c.last_hour, c.last_day, c.worst_severity))
        .collect();
    assert_eq!(
        by_kind,
        [
            (
                "delivery.failed".to_owned(),
                1,
                1,
                pb::EventSeverity::Warning as i32
            ),
            (
                "ingest.failed".to_owned(),
                2,
                2,
                pb::EventSeverity::Critical as i32
            ),
        ]
    );
    // Info events are not errors unless asked for.
    let all = events
        .get_error_counts(as_operator(pb::GetErrorCountsRequest {
            min_severity: pb::EventSeverity::Info as i32,
            project_id: "web".to_owned(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(all.counts.len(), 1);
    assert_eq!(all.counts[0].kind, "ingest.retried");

    // History: a kind prefix, newest first, one per page.
    let page = events
        .list_events(as_operator(pb::ListEventsRequest {
            kinds: vec!["ingest.".to_owned()],
            page_size: 2,
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    let kinds: Vec<&str> = page
        .events
        .iter()
        .map(|e| e.event.as_ref().unwrap().kind.as_str())
        .collect();
    assert_eq!(kinds, ["ingest.retried", "ingest.failed"]);
    assert!(page.events[0].revision > page.events[1].revision);
    let next = events
        .list_events(as_operator(pb::ListEventsRequest {
            kinds: vec!["ingest.".to_owned()],
            page_size: 2,
            page_token: page.next_page_token.clone(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(next.events.len(), 1);
    assert_eq!(
        next.events[0].event.as_ref().unwrap().severity,
        pb::EventSeverity::Error as i32
    );
    assert!(next.next_page_token.is_empty());

    // An invalid batch is refused whole, with the field, and records nothing.
    let status = events
        .report_events(as_operator(tokio_stream::iter(vec![
            pb::ReportEventsRequest {
                events: vec![
                    reported("ingest.failed", pb::EventSeverity::Error, "api"),
                    reported("Not A Kind", pb::EventSeverity::Error, "api"),
                ],
            },
        ])))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(
        status.message().contains("events[1].kind"),
        "{}",
        status.message()
    );
    let after = events
        .get_error_counts(as_operator(pb::GetErrorCountsRequest::default()))
        .await
        .unwrap()
        .into_inner();
    let ingest = after
        .counts
        .iter()
        .find(|c| c.kind == "ingest.failed")
        .unwrap();
    assert_eq!(ingest.last_day, 2);

    // Reporting needs the operator role: anonymous callers are refused.
    let status = events
        .report_events(tokio_stream::iter(Vec::<pb::ReportEventsRequest>::new()))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unauthenticated);
    harness.shutdown().await;
}
