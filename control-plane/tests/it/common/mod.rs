#![allow(dead_code)] // Each test file uses a different part of the harness.

//! An in-process pharosd on SQLite or a real PostgreSQL, with a real gRPC client.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use pharos_control_plane::catalog::CatalogSource;
use pharos_control_plane::config::{Cli, Settings};
use pharos_control_plane::domain::{Event, Severity};
use pharos_control_plane::journal::{Change, JournalEntry};
use pharos_control_plane::server::{self, RunningServer};
use pharos_e2e::TestPostgres;
use pharos_proto::v1 as pb;
use pharos_proto::v1::watch_service_client::WatchServiceClient;
use tonic::Streaming;
use tonic::transport::Channel;

#[derive(Clone, Copy, Debug)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub const CATALOG: &str = "\
environments:
  - id: prod
    port_range: 9000-9099
  - id: dev
projects:
  - id: api
    deployments:
      - environment: prod
        ports: [{port: 9000, type: http, service: api}]
      - environment: dev
  - id: web
    deployments:
      - environment: prod
";

pub struct Harness {
    pub server: Option<RunningServer>,
    pub settings: Settings,
    pub catalog_path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Harness {
    pub async fn start(backend: Backend, tweak: impl FnOnce(&mut Settings)) -> Harness {
        Harness::start_with_catalog(backend, CATALOG, tweak).await
    }

    pub async fn start_with_catalog(
        backend: Backend,
        catalog: &str,
        tweak: impl FnOnce(&mut Settings),
    ) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let catalog_path = dir.path().join("catalog.yaml");
        std::fs::write(&catalog_path, catalog).unwrap();
        let database_url = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(TestPostgres::shared().unique_database("watch").unwrap()),
        };
        // Every default as pharosd itself resolves it, then what the harness needs.
        let cli = Cli::parse_from(["pharosd", "--listen", "127.0.0.1:0"]);
        let mut settings = Settings::resolve(&cli.options).expect("default settings");
        settings.data_dir = dir.path().join("data");
        settings.database_url = database_url;
        settings.catalog = CatalogSource::File(catalog_path.clone());
        settings.ring_capacity = 1024;
        settings.compaction_interval = Duration::from_secs(3600);
        settings.catalog_poll_interval = Duration::from_millis(50);
        settings.history_flush = Duration::from_millis(100);
        settings.web_root = None;
        // Containers only where a test asks for an engine.
        settings.containers = Default::default();
        tweak(&mut settings);
        let server = server::start(settings.clone())
            .await
            .expect("pharosd starts");
        Harness {
            server: Some(server),
            settings,
            catalog_path,
            _dir: dir,
        }
    }

    pub fn server(&self) -> &RunningServer {
        self.server.as_ref().expect("server running")
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.server().addr)
    }

    pub async fn client(&self) -> WatchServiceClient<Channel> {
        WatchServiceClient::connect(self.url())
            .await
            .expect("client connects")
    }

    pub async fn watch(
        &self,
        request: pb::WatchRequest,
    ) -> Result<Streaming<pb::WatchResponse>, tonic::Status> {
        self.client()
            .await
            .watch(request)
            .await
            .map(|r| r.into_inner())
    }

    /// Journals `count` events (for `project`, if given) and returns their revisions.
    pub async fn publish(&self, count: usize, project: Option<&str>) -> Vec<u64> {
        let mut revisions = Vec::with_capacity(count);
        for _ in 0..count {
            let revision = self
                .server()
                .writer
                .append(vec![Change::append(event(project))])
                .await
                .expect("journal write");
            revisions.push(revision);
        }
        revisions
    }

    /// Stops the server and starts a new one on the same database and port.
    pub async fn restart(&mut self) {
        let old = self.server.take().expect("server running");
        self.settings.listen = old.addr;
        old.shutdown().await;
        self.server = Some(
            server::start(self.settings.clone())
                .await
                .expect("pharosd restarts"),
        );
    }

    /// Every journal entry the database holds after `after`.
    pub async fn journal_after(&self, after: u64) -> Vec<JournalEntry> {
        self.server()
            .store
            .read_after(after, 1_000_000)
            .await
            .expect("journal read")
    }

    pub async fn shutdown(mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
    }
}

pub fn event(project: Option<&str>) -> Event {
    static SEQUENCE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = SEQUENCE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    Event {
        id: format!("test-{n}"),
        kind: "test.event".to_owned(),
        severity: Severity::Info,
        message: format!("event {n}"),
        source: "test".to_owned(),
        project_id: project.map(str::to_owned),
        environment: None,
        attributes: BTreeMap::new(),
    }
}

pub fn all_topics(since: u64) -> pb::WatchRequest {
    pb::WatchRequest {
        since_revision: since,
        ..Default::default()
    }
}

/// What a stream delivered, one item at a time.
#[derive(Debug, PartialEq)]
pub enum Item {
    Snapshot(u64, String),
    SnapshotComplete(u64),
    Change(u64, String),
    Progress(u64),
}

/// The next item, or the status that ended the stream; fails after 10 s of silence.
pub async fn next(stream: &mut Streaming<pb::WatchResponse>) -> Result<Item, tonic::Status> {
    use pb::watch_response::Message;
    let message = tokio::time::timeout(Duration::from_secs(10), stream.message())
        .await
        .expect("stream item within 10 s")?
        .expect("stream ended without a status");
    Ok(match message.message.expect("message set") {
        Message::Change(change) if change.kind == pb::ChangeKind::Snapshot as i32 => {
            Item::Snapshot(change.revision, change.key)
        }
        Message::Change(change) => Item::Change(change.revision, change.key),
        Message::SnapshotComplete(done) => Item::SnapshotComplete(done.revision),
        Message::Progress(progress) => Item::Progress(progress.revision),
        Message::Metrics(_) => panic!("a metrics batch: these tests never select metric series"),
    })
}

/// Reads changes until one with revision `until` arrives; skips progress markers.
pub async fn changes_until(
    stream: &mut Streaming<pb::WatchResponse>,
    until: u64,
) -> Vec<(u64, String)> {
    let mut changes = Vec::new();
    loop {
        match next(stream).await.expect("stream continues") {
            Item::Change(revision, key) => {
                changes.push((revision, key));
                if revision >= until {
                    return changes;
                }
            }
            Item::Progress(revision) if revision >= until => return changes,
            Item::Progress(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// Runs a test body on SQLite and on PostgreSQL.
#[macro_export]
macro_rules! on_both_backends {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::common::Backend::Sqlite).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name($crate::common::Backend::Postgres).await;
            }
        }
    };
}

/// The token of the operator the tests push, report and act with.
pub const OPERATOR_TOKEN: &str = "test-operator-secret";

/// `message` sent with [`OPERATOR_TOKEN`].
pub fn as_operator<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {OPERATOR_TOKEN}").parse().unwrap(),
    );
    request
}

/// Settings with the operator token, and without capacity sampling, pharosd's own
/// series or a container engine: only what a test scrapes or pushes is there.
pub fn quiet_operator(settings: &mut Settings) {
    settings.tokens = vec![pharos_control_plane::auth::TokenConfig {
        name: "operator".to_owned(),
        role: pharos_control_plane::auth::Role::Operator,
        sha256: pharos_control_plane::auth::hash_token(OPERATOR_TOKEN),
    }];
    settings.capacity.interval = Duration::ZERO;
    settings.telemetry_interval = Duration::ZERO;
    settings.containers.docker_host = None;
}

/// Pushes one sample of `name` with `labels`, stamped by the server, as the operator.
pub async fn push_one(
    client: &mut pharos_proto::v1::metrics_service_client::MetricsServiceClient<Channel>,
    name: &str,
    labels: &[(&str, &str)],
    value: f64,
) -> pb::PushMetricsResponse {
    let sample = pb::PushedSample {
        name: name.to_owned(),
        labels: labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        value,
        time_unix_ms: 0,
    };
    client
        .push_metrics(as_operator(tokio_stream::iter(vec![
            pb::PushMetricsRequest {
                samples: vec![sample],
            },
        ])))
        .await
        .unwrap()
        .into_inner()
}
