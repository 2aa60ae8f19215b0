//! Bad input gets a precise error and changes nothing: bad requests, bad flags, bad
//! catalogs at start-up and on restart.

use pharos_e2e::grpc::{WatchMessage, WatchReader, catalog_client, overview, pharosd, watch_error};
use pharos_e2e::{CatalogFile, Pharosd, free_port};
use pharos_proto::v1 as pb;
use std::time::Duration;
use tokio::time::Instant;
use tonic::Code;

/// A catalog with two problems, at known places.
const BAD_CATALOG: &str = "\
environments:
  - id: prod
    port_range: 9000-8000
projects:
  - id: api
    deployments:
      - environment: prod
        ports:
          - port: 8080
            type: gopher
            service: api
";

/// The problems of [`BAD_CATALOG`] as pharosd prints them, for the file at `path`.
fn bad_catalog_problems(path: &str) -> [String; 2] {
    [
        format!(
            "{path}:3:17: environments[0].port_range: invalid port range \"9000-8000\": the start must be at least 1 and not above the end"
        ),
        format!(
            "{path}:10:19: projects[0].deployments[0].ports[0].type: unknown port type \"gopher\"; expected one of http, https, grpc, metrics, database, tcp"
        ),
    ]
}

async fn demo_server() -> Pharosd {
    Pharosd::builder().spawn().await.expect("start pharosd")
}

/// The catalog part of an overview: what a rejected request must not change. (Health
/// counts and the journal head move on their own as the demo checks run.)
fn catalog_totals(
    overview: &pb::GetOverviewResponse,
) -> (u32, u32, u32, u32, Vec<pb::EnvironmentSummary>) {
    (
        overview.projects,
        overview.deployments,
        overview.ports_allocated,
        overview.ports_available,
        overview.environments.clone(),
    )
}

/// Asserts that the catalog `server` serves is still the one of `before`.
async fn assert_unchanged(server: &Pharosd, before: &pb::GetOverviewResponse) {
    let now = overview(&server.url()).await.unwrap();
    assert_eq!(catalog_totals(&now), catalog_totals(before));
}

#[tokio::test]
async fn get_project_with_an_unknown_id_is_not_found_and_names_the_id() {
    let server = demo_server().await;
    let before = overview(&server.url()).await.unwrap();

    let status = catalog_client(&server.url())
        .await
        .unwrap()
        .get_project(pb::GetProjectRequest {
            id: "no-such-project".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    assert_eq!(
        status.message(),
        "project \"no-such-project\" is not in the catalog; ListProjects shows the known ids"
    );
    assert_unchanged(&server, &before).await;
}

#[tokio::test]
async fn list_projects_with_a_page_size_above_the_maximum_is_invalid() {
    let server = demo_server().await;
    let before = overview(&server.url()).await.unwrap();

    let status = catalog_client(&server.url())
        .await
        .unwrap()
        .list_projects(pb::ListProjectsRequest {
            page_size: 5000,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(
        status.message(),
        "page_size 5000 is too large; the maximum is 1000"
    );
    assert_unchanged(&server, &before).await;
}

#[tokio::test]
async fn list_projects_in_an_unknown_environment_lists_the_known_ones() {
    let server = demo_server().await;
    let before = overview(&server.url()).await.unwrap();

    let status = catalog_client(&server.url())
        .await
        .unwrap()
        .list_projects(pb::ListProjectsRequest {
            environment: "mars".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(
        status.message(),
        "unknown environment \"mars\"; known environments: local"
    );
    assert_unchanged(&server, &before).await;
}

#[tokio::test]
async fn list_projects_with_a_garbage_page_token_is_invalid() {
    let server = demo_server().await;
    let before = overview(&server.url()).await.unwrap();

    let status = catalog_client(&server.url())
        .await
        .unwrap()
        .list_projects(pb::ListProjectsRequest {
            page_token: "not-a-token".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(
        status.message().starts_with("invalid page_token"),
        "{status:?}"
    );
    assert_unchanged(&server, &before).await;
}

#[tokio::test]
async fn watch_from_a_revision_ahead_of_the_journal_is_out_of_range() {
    let server = demo_server().await;
    let before = overview(&server.url()).await.unwrap();
    // The overview's revision is the journal head when it was read.
    let head = before.revision;
    let requested = head + 1_000_000;

    let status = watch_error(
        &server.url(),
        pb::WatchRequest {
            since_revision: requested,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    assert!(
        status.message().starts_with(&format!(
            "revision {requested} is ahead of this server's journal head"
        )),
        "{status:?}"
    );
    assert_eq!(
        status
            .metadata()
            .get("pharos-resync")
            .map(|v| v.to_str().unwrap()),
        Some("snapshot"),
        "{status:?}"
    );
    assert_unchanged(&server, &before).await;
}

#[tokio::test]
async fn an_invalid_catalog_on_a_fresh_data_dir_stops_start_up_with_each_problem() {
    let catalog = CatalogFile::with_text(BAD_CATALOG).unwrap();
    let data = tempfile::tempdir().unwrap();
    // A data dir that does not exist yet: pharosd makes it.
    let fresh = data.path().join("fresh");
    let listen = format!("127.0.0.1:{}", free_port());

    let started = Instant::now();
    let out = pharosd([
        "--listen",
        &listen,
        "--data-dir",
        fresh.to_str().unwrap(),
        "--catalog",
        catalog.path().to_str().unwrap(),
    ])
    .await
    .unwrap();
    assert!(!out.success(), "{out}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    let lines: Vec<&str> = out.stderr.lines().collect();
    for problem in bad_catalog_problems(catalog.path().to_str().unwrap()) {
        assert!(
            lines.contains(&problem.as_str()),
            "stderr should have the line {problem:?}:\n{out}"
        );
    }
}

#[tokio::test]
async fn a_malformed_listen_address_is_a_usage_error() {
    let out = pharosd(["--listen", "nonsense"]).await.unwrap();
    assert_eq!(out.status.code(), Some(2), "{out}");
    assert!(
        out.stderr
            .starts_with("error: invalid value 'nonsense' for '--listen <LISTEN>'"),
        "{out}"
    );
    assert!(out.stderr.contains("For more information, try '--help'."));
}

#[tokio::test]
async fn validate_lists_every_problem_and_exits_1() {
    let catalog = CatalogFile::with_text(BAD_CATALOG).unwrap();

    let out = pharosd(["validate", "--catalog", catalog.path().to_str().unwrap()])
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out}");
    let expected = bad_catalog_problems(catalog.path().to_str().unwrap()).join("\n");
    assert_eq!(out.stderr.trim_end(), expected, "{out}");
    assert_eq!(out.stdout, "");
}

#[tokio::test]
async fn validate_accepts_the_demo_catalog() {
    let catalog = CatalogFile::demo().unwrap();

    let out = pharosd(["validate", "--catalog", catalog.path().to_str().unwrap()])
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out}");
    assert_eq!(
        out.stdout,
        format!(
            "{}: valid (1 environments, 1 projects, 1 deployments, 1 ports)\n",
            catalog.path().display()
        )
    );
}

#[tokio::test]
async fn listening_beyond_loopback_without_tokens_is_refused() {
    let data = tempfile::tempdir().unwrap();
    let listen = format!("0.0.0.0:{}", free_port());

    let out = pharosd([
        "--listen",
        &listen,
        "--data-dir",
        data.path().to_str().unwrap(),
    ])
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out}");
    assert!(
        out.stderr.contains(&format!(
            "pharosd: refusing to listen on {listen} without API tokens"
        )),
        "{out}"
    );
    assert!(out.stderr.contains("tokens"), "{out}");
}

#[tokio::test]
async fn restarting_with_an_invalid_catalog_keeps_serving_the_stored_one() {
    let catalog = CatalogFile::demo().unwrap();
    let mut server = Pharosd::builder()
        .catalog(catalog.path())
        .spawn()
        .await
        .unwrap();
    let before = overview(&server.url()).await.unwrap();
    assert_eq!(before.projects, 1);
    let status = server.terminate().await.unwrap();
    assert!(status.success(), "{status}");

    catalog.write(BAD_CATALOG).unwrap();
    server.restart().await.unwrap();

    assert_unchanged(&server, &before).await;
    let log = server.log_text();
    let after_restart = log
        .split("--- pharos-e2e: pharosd restarted ---")
        .nth(1)
        .unwrap();
    assert!(
        after_restart.contains("invalid catalog; keeping the stored one"),
        "{after_restart}"
    );
    for problem in bad_catalog_problems(catalog.path().to_str().unwrap()) {
        assert!(after_restart.contains(&problem), "{problem:?} not logged");
    }
    // Watchers learn about it too: a catalog.invalid event follows the stored catalog.
    let mut watch = WatchReader::since(&server.url(), before.revision)
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    match watch.next(deadline).await.unwrap() {
        WatchMessage::Change(change) => match change.object {
            Some(pb::change::Object::Event(event)) => {
                assert_eq!(event.kind, "catalog.invalid");
                assert!(
                    event
                        .message
                        .contains(&bad_catalog_problems(catalog.path().to_str().unwrap())[1])
                );
            }
            other => panic!("expected an event, got {other:?}"),
        },
        other => panic!("expected a change, got {other:?}"),
    }
}

/// Config file errors carry `file:line:column` like catalog errors do. An unknown field
/// gets its real place; a malformed duration should too, not a made-up 1:1.
#[tokio::test]
async fn a_malformed_duration_in_the_config_file_points_at_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("pharosd.yaml");
    std::fs::write(&config, "tokens: []\nwatch:\n  progress_interval: soon\n").unwrap();
    let config = config.to_str().unwrap();

    let out = pharosd(["--config", config, "validate"]).await.unwrap();
    assert_eq!(out.status.code(), Some(1), "{out}");
    assert!(
        out.stderr.contains(&format!(
            "pharosd: {config}:3:22: watch.progress_interval: invalid duration \"soon\""
        )),
        "the error should point at line 3, column 22, where the value is:\n{out}"
    );
}

/// A catalog file emptied in place (as `cat > catalog.yaml` does before it writes) is
/// not applied: the running catalog stays, a catalog.invalid event says why, and the text
/// written afterwards is applied, with nothing deleted on the way.
#[tokio::test]
async fn a_catalog_emptied_in_place_keeps_the_running_one_until_it_is_written() {
    let catalog = CatalogFile::demo().unwrap();
    let full_text = catalog.text();
    let server = Pharosd::builder()
        .catalog(catalog.path())
        .arg("--catalog-poll-interval")
        .arg("100ms")
        .spawn()
        .await
        .unwrap();
    let before = overview(&server.url()).await.unwrap();
    assert_eq!(before.projects, 1);
    let mut watch = WatchReader::since(&server.url(), before.revision)
        .await
        .unwrap();

    // Truncated in place, not replaced by a rename.
    std::fs::write(catalog.path(), "").unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut catalog_changes = Vec::new();
    let rejected = loop {
        match watch.next(deadline).await.unwrap() {
            WatchMessage::Change(change) => match &change.object {
                Some(pb::change::Object::Event(event)) if event.kind == "catalog.invalid" => {
                    break event.message.clone();
                }
                _ if change.topic == pb::WatchTopic::Catalog as i32 => {
                    catalog_changes.push(change.key.clone())
                }
                _ => {}
            },
            WatchMessage::Progress(_) => {}
            other => panic!("expected a catalog.invalid event, got {other:?}"),
        }
    };
    assert!(rejected.contains("the catalog file is empty"), "{rejected}");
    assert!(catalog_changes.is_empty(), "{catalog_changes:?}");
    assert_eq!(overview(&server.url()).await.unwrap().projects, 1);

    // The whole text, written in place as well, is applied: one rename of the
    // environment, and no deletion of anything the file keeps.
    std::fs::write(
        catalog.path(),
        full_text.replace("name: Local machine", "name: Rewritten"),
    )
    .unwrap();
    let renamed = loop {
        match watch.next(deadline).await.unwrap() {
            WatchMessage::Change(change) if change.topic == pb::WatchTopic::Catalog as i32 => {
                assert_ne!(
                    change.kind,
                    pb::ChangeKind::Delete as i32,
                    "deleted {}",
                    change.key
                );
                if let Some(pb::change::Object::Environment(env)) = &change.object {
                    break env.name.clone();
                }
            }
            WatchMessage::Change(_) | WatchMessage::Progress(_) => {}
            other => panic!("expected the environment's rename, got {other:?}"),
        }
    };
    assert_eq!(renamed, "Rewritten");
    assert_eq!(overview(&server.url()).await.unwrap().projects, 1);
}

#[tokio::test]
async fn validate_refuses_an_empty_file() {
    let catalog = CatalogFile::with_text("# nothing yet\n\n").unwrap();
    let out = pharosd(["--catalog", catalog.path().to_str().unwrap(), "validate"])
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out}");
    assert_eq!(
        out.stderr.trim(),
        format!(
            "{}:1:1: the catalog file is empty; to run with no projects, write `projects: []`",
            catalog.path().display()
        ),
        "{out}"
    );
}
