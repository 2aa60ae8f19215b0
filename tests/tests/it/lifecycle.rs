//! Starting, stopping and restarting pharosd: graceful shutdown under an open Watch,
//! the documented flags, and a run on PostgreSQL that survives a restart.

use pharos_e2e::grpc::{WatchMessage, WatchReader, overview, pharosd};
use pharos_e2e::{Pharosd, TestPostgres};
use pharos_proto::v1 as pb;
use std::time::Duration;
use tokio::time::Instant;
use tonic::Code;

const WAIT: Duration = Duration::from_secs(10);

/// The shutdown bound pharosd documents: it exits within 5 s of SIGTERM.
const SHUTDOWN_BOUND: Duration = Duration::from_secs(5);

#[tokio::test]
async fn sigterm_ends_open_watch_streams_with_unavailable_and_a_resume_revision() {
    let mut server = Pharosd::builder().spawn().await.unwrap();
    // The catalog topic only: the demo's health checks journal changes of their own.
    let mut watch = WatchReader::open(
        &server.url(),
        pb::WatchRequest {
            topics: vec![pb::WatchTopic::Catalog as i32],
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let (_, snapshot_revision) = watch.snapshot(WAIT).await.unwrap();
    // Read the stream to its end while the server shuts down.
    let reader = tokio::spawn(async move { watch.until_end(WAIT).await });

    let signalled = Instant::now();
    let exit = server.terminate().await.unwrap();
    let took = signalled.elapsed();
    assert_eq!(exit.code(), Some(0), "pharosd exit: {exit}");
    assert!(
        took < SHUTDOWN_BOUND,
        "pharosd took {took:?} to exit after SIGTERM"
    );

    let (changes, end) = reader.await.unwrap().unwrap();
    assert!(changes.is_empty(), "nothing changed: {changes:?}");
    let status = end.expect("the stream ends with a status, not OK");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    let resume = status
        .metadata()
        .get("pharos-resume-revision")
        .unwrap_or_else(|| panic!("no pharos-resume-revision trailer: {status:?}"));
    // Everything the stream selects is delivered up to the resume revision; entries of
    // other topics after the snapshot may have moved it on.
    assert!(
        resume.to_str().unwrap().parse::<u64>().unwrap() >= snapshot_revision,
        "{status:?}"
    );
}

#[tokio::test]
async fn help_documents_every_flag_and_its_environment_variable() {
    let out = pharosd(["--help"]).await.unwrap().expect_success().unwrap();
    for (flag, variable) in [
        ("--listen", "PHAROS_LISTEN"),
        ("--data-dir", "PHAROS_DATA_DIR"),
        ("--catalog", "PHAROS_CATALOG"),
        ("--database-url", "PHAROS_DATABASE_URL"),
        ("--config", "PHAROS_CONFIG"),
    ] {
        assert!(
            out.stdout.contains(&format!("{flag} <")),
            "{flag} missing from --help:\n{}",
            out.stdout
        );
        assert!(
            out.stdout.contains(&format!("[env: {variable}")),
            "{variable} missing from --help:\n{}",
            out.stdout
        );
    }
}

#[tokio::test]
async fn a_postgres_backed_server_keeps_its_revision_across_a_restart() {
    let url = tokio::task::spawn_blocking(|| TestPostgres::shared().unique_database("lifecycle"))
        .await
        .unwrap()
        .unwrap();
    let database = url.rsplit('/').next().unwrap().to_owned();
    let mut server = Pharosd::builder()
        .database_url(&url)
        .arg("--progress-interval")
        .arg("200ms")
        .spawn()
        .await
        .unwrap();

    let first = overview(&server.url()).await.unwrap();
    assert_eq!((first.projects, first.deployments), (1, 1));
    assert!(first.revision > 0);
    let head: u64 = TestPostgres::shared()
        .psql(&database, "SELECT head FROM watch_meta")
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        head >= first.revision,
        "the journal head is stored: {head} < {}",
        first.revision
    );

    server.restart().await.unwrap();

    // The same catalog: nothing of it was re-journaled, and the head survived.
    let again = overview(&server.url()).await.unwrap();
    assert_eq!(
        (again.projects, again.deployments, &again.environments),
        (first.projects, first.deployments, &first.environments)
    );
    assert!(again.revision >= head);
    // A client resuming from the stored revision is served, not told to resync.
    let mut watch = WatchReader::since(&server.url(), head).await.unwrap();
    match watch.next(Instant::now() + WAIT).await.unwrap() {
        WatchMessage::Progress(at) => assert!(at >= head),
        WatchMessage::Change(change) => {
            assert!(change.revision > head);
            assert_ne!(
                change.topic,
                pb::WatchTopic::Catalog as i32,
                "the catalog was not re-journaled: {change:?}"
            );
        }
        other => panic!("expected a change or a progress marker, got {other:?}"),
    }
}
