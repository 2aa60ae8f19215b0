//! The watch contract, proven over real gRPC on SQLite and on a real PostgreSQL.

use crate::common;

use std::time::Duration;

use common::{Backend, Harness, Item, all_topics, changes_until, next};
use pharos_proto::v1 as pb;
use pharos_proto::{RESUME_REVISION_TRAILER, RESYNC_TRAILER};
use tonic::Code;

/// Reads the snapshot and its marker; returns the snapshot keys and revision.
async fn read_snapshot(stream: &mut tonic::Streaming<pb::WatchResponse>) -> (Vec<String>, u64) {
    let mut keys = Vec::new();
    loop {
        match next(stream).await.expect("snapshot") {
            Item::Snapshot(_, key) => keys.push(key),
            Item::SnapshotComplete(revision) => return (keys, revision),
            other => panic!("unexpected {other:?} inside the snapshot"),
        }
    }
}

async fn snapshot_then_marker_then_changes(backend: Backend) {
    let harness = Harness::start(backend, |_| {}).await;
    let mut stream = harness.watch(all_topics(0)).await.unwrap();
    let (keys, at) = read_snapshot(&mut stream).await;
    assert!(keys.contains(&"environment/prod".to_owned()), "{keys:?}");
    assert!(keys.contains(&"deployment/api/dev".to_owned()), "{keys:?}");
    assert!(keys.contains(&"port/prod/9000".to_owned()), "{keys:?}");
    assert_eq!(at, harness.server().hub.head());

    // A catalog edit arrives as changes after the marker.
    let edited = common::CATALOG.replace("  - id: dev\n", "  - id: dev\n    name: Development\n");
    std::fs::write(&harness.catalog_path, edited).unwrap();
    match next(&mut stream).await.unwrap() {
        Item::Change(revision, key) => {
            assert_eq!(key, "environment/dev");
            assert_eq!(revision, at + 1);
        }
        other => panic!("expected the environment change, got {other:?}"),
    }
    harness.shutdown().await;
}
on_both_backends!(snapshot_then_marker_then_changes);

async fn resume_after_disconnect_replays_exactly(backend: Backend) {
    let harness = Harness::start(backend, |_| {}).await;
    let mut stream = harness.watch(all_topics(0)).await.unwrap();
    let (_, at) = read_snapshot(&mut stream).await;
    let first = harness.publish(5, Some("api")).await;
    let seen = changes_until(&mut stream, first[2]).await;
    let resume_from = seen.last().unwrap().0;
    drop(stream);

    let later = harness.publish(5, None).await;
    let mut resumed = harness.watch(all_topics(resume_from)).await.unwrap();
    let replayed = changes_until(&mut resumed, *later.last().unwrap()).await;

    let journal: Vec<(u64, String)> = harness
        .journal_after(resume_from)
        .await
        .into_iter()
        .map(|entry| (entry.revision, entry.key))
        .collect();
    assert_eq!(
        replayed, journal,
        "every change after {resume_from}, once, in order"
    );
    assert!(at < resume_from);
    harness.shutdown().await;
}
on_both_backends!(resume_after_disconnect_replays_exactly);

async fn resume_after_restart_replays_from_the_database(backend: Backend) {
    // A tiny ring: the replay after restart must come from the database.
    let mut harness = Harness::start(backend, |settings| settings.ring_capacity = 8).await;
    let mut stream = harness.watch(all_topics(0)).await.unwrap();
    let (_, at) = read_snapshot(&mut stream).await;
    let before = harness.publish(3, None).await;
    changes_until(&mut stream, before[2]).await;

    harness.restart().await;
    let status = loop {
        match next(&mut stream).await {
            Ok(Item::Progress(_)) => continue,
            Ok(other) => panic!("unexpected {other:?} after restart"),
            Err(status) => break status,
        }
    };
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    let resume_from: u64 = status
        .metadata()
        .get(RESUME_REVISION_TRAILER)
        .expect("resume trailer")
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(resume_from, before[2]);

    let after = harness.publish(40, Some("web")).await;
    let mut resumed = harness.watch(all_topics(resume_from)).await.unwrap();
    let replayed = changes_until(&mut resumed, *after.last().unwrap()).await;
    let journal: Vec<(u64, String)> = harness
        .journal_after(resume_from)
        .await
        .into_iter()
        .map(|entry| (entry.revision, entry.key))
        .collect();
    assert_eq!(replayed.len(), 40);
    assert_eq!(replayed, journal);
    assert!(at < resume_from);
    harness.shutdown().await;
}
on_both_backends!(resume_after_restart_replays_from_the_database);

async fn too_old_or_too_new_is_out_of_range(backend: Backend) {
    let harness = Harness::start(backend, |settings| {
        settings.journal_retention = 10;
        settings.compaction_interval = Duration::from_millis(50);
    })
    .await;
    let published = harness.publish(30, None).await;
    let head = *published.last().unwrap();
    // Wait for the compactor to run (bounded), then ask for a compacted revision.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while harness
        .server()
        .store
        .position()
        .await
        .unwrap()
        .compacted_through
        < head - 10
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "compaction did not run"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let status = harness.watch(all_topics(2)).await.unwrap_err();
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    assert!(
        status.message().contains("since_revision 0"),
        "{}",
        status.message()
    );
    assert_eq!(status.metadata().get(RESYNC_TRAILER).unwrap(), "snapshot");

    // Revisions that are still retained replay fine.
    let mut stream = harness.watch(all_topics(head - 5)).await.unwrap();
    assert_eq!(changes_until(&mut stream, head).await.len(), 5);

    let status = harness.watch(all_topics(head + 100)).await.unwrap_err();
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    assert!(
        status.message().contains("ahead of"),
        "{}",
        status.message()
    );
    harness.shutdown().await;
}
on_both_backends!(too_old_or_too_new_is_out_of_range);

async fn idle_streams_receive_progress_markers(backend: Backend) {
    let harness = Harness::start(backend, |settings| {
        settings.watch.progress_interval = Duration::from_millis(100);
    })
    .await;
    // Filtered to a project that nothing happens to: the head moves, the stream is idle.
    let request = pb::WatchRequest {
        projects: vec!["web".to_owned()],
        topics: vec![pb::WatchTopic::Events as i32],
        ..all_topics(0)
    };
    let mut stream = harness.watch(request).await.unwrap();
    let (keys, _) = read_snapshot(&mut stream).await;
    assert!(keys.is_empty(), "events have no snapshot: {keys:?}");
    let head = *harness.publish(3, Some("api")).await.last().unwrap();
    loop {
        match next(&mut stream).await.unwrap() {
            Item::Progress(revision) if revision == head => break,
            Item::Progress(revision) => assert!(revision < head),
            other => panic!("a filtered-out change leaked: {other:?}"),
        }
    }
    harness.shutdown().await;
}
on_both_backends!(idle_streams_receive_progress_markers);

async fn many_topics_and_filters_on_one_stream(backend: Backend) {
    let harness = Harness::start(backend, |_| {}).await;
    let mut both = harness.watch(all_topics(0)).await.unwrap();
    let (_, at) = read_snapshot(&mut both).await;
    let api_only = pb::WatchRequest {
        projects: vec!["api".to_owned()],
        ..all_topics(at)
    };
    let mut api = harness.watch(api_only).await.unwrap();

    harness.publish(1, Some("web")).await;
    let api_event = harness.publish(1, Some("api")).await[0];
    let edited = common::CATALOG.replace("port: 9000", "port: 9001");
    std::fs::write(&harness.catalog_path, edited).unwrap();

    // The unfiltered stream sees events and the catalog change (upsert + delete of ports).
    let mut keys = Vec::new();
    while !keys.iter().any(|k: &String| k == "port/prod/9000") {
        match next(&mut both).await.unwrap() {
            Item::Change(_, key) => keys.push(key),
            Item::Progress(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(keys.iter().any(|k| k == "port/prod/9001"), "{keys:?}");
    assert_eq!(
        keys.iter().filter(|k| k.starts_with("event/")).count(),
        2,
        "{keys:?}"
    );

    // The api stream sees only api's event and api's ports.
    let mut api_keys = Vec::new();
    while api_keys.len() < 3 {
        match next(&mut api).await.unwrap() {
            Item::Change(revision, key) => {
                if key.starts_with("event/") {
                    assert_eq!(revision, api_event);
                }
                api_keys.push(key);
            }
            Item::Progress(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(
        api_keys[1..].contains(&"port/prod/9001".to_owned()),
        "{api_keys:?}"
    );
    assert!(
        api_keys[1..].contains(&"port/prod/9000".to_owned()),
        "{api_keys:?}"
    );
    harness.shutdown().await;
}
on_both_backends!(many_topics_and_filters_on_one_stream);

async fn a_slow_subscriber_lags_alone(backend: Backend) {
    const RING: usize = 64;
    let harness = Harness::start(backend, |settings| settings.ring_capacity = RING).await;
    // HTTP/2 windows of 64 KiB, so the client buffers little while it does not read.
    let channel = tonic::transport::Endpoint::from_shared(harness.url())
        .unwrap()
        .initial_stream_window_size(65_535)
        .initial_connection_window_size(65_535)
        .connect()
        .await
        .unwrap();
    let mut slow = pharos_proto::v1::watch_service_client::WatchServiceClient::new(channel)
        .watch(all_topics(0))
        .await
        .unwrap()
        .into_inner();
    let (_, at) = read_snapshot(&mut slow).await;
    // The fast subscriber has its own connection, as separate clients would.
    let mut fast = harness.watch(all_topics(at)).await.unwrap();

    // Publish in steps the fast subscriber confirms, so only the slow one falls behind.
    let mut fast_seen = Vec::new();
    let mut last = at;
    for _ in 0..100 {
        let changes = (0..50)
            .map(|_| pharos_control_plane::journal::Change::append(common::event(Some("api"))))
            .collect();
        last = harness.server().writer.append(changes).await.unwrap();
        fast_seen.extend(
            changes_until(&mut fast, last)
                .await
                .into_iter()
                .map(|(r, _)| r),
        );
    }
    assert_eq!(fast_seen.len(), 5000);
    assert!(
        fast_seen.windows(2).all(|w| w[1] == w[0] + 1),
        "gap or repeat on the fast stream"
    );
    assert!(harness.server().hub.stats().ring_len <= RING);

    // Now the slow one reads: what the connection buffered, then a status naming where
    // to resume; resuming from there yields the rest, with no gap and no repeat.
    let mut slow_seen = Vec::new();
    let status = loop {
        match next(&mut slow).await {
            Ok(Item::Change(revision, _)) => slow_seen.push(revision),
            Ok(_) => {}
            Err(status) => break status,
        }
    };
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    let resume_from: u64 = status
        .metadata()
        .get(RESUME_REVISION_TRAILER)
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        slow_seen.len() < 5000,
        "the slow subscriber should have lagged"
    );
    assert_eq!(slow_seen.last().copied().unwrap_or(at), resume_from);
    // Counted for /metrics; the fast subscriber was never ended.
    assert_eq!(harness.server().hub.stats().lagged, 1);
    let mut resumed = harness.watch(all_topics(resume_from)).await.unwrap();
    slow_seen.extend(
        changes_until(&mut resumed, last)
            .await
            .into_iter()
            .map(|(r, _)| r),
    );
    assert_eq!(slow_seen, fast_seen);
    harness.shutdown().await;
}
on_both_backends!(a_slow_subscriber_lags_alone);
