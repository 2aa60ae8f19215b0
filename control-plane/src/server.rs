//! Wiring: storage, journal, hub, catalog sync and the one listening port, started in
//! order and stopped in reverse with a deadline.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use pharos_proto::v1::catalog_service_server::CatalogServiceServer;
use pharos_proto::v1::watch_service_server::WatchServiceServer;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::transport::server::TcpIncoming;
use tower::ServiceBuilder;

use crate::api::ActionApi;
use crate::api::ContainerApi;
use crate::api::ExportApi;
use crate::api::{CatalogApi, HealthApi, WatchApi};
use crate::auth::{AccessPolicy, AuthLayer};
use crate::catalog::{CatalogSource, CatalogSync};
use crate::config::Settings;
use crate::containers::{ContainerCollector, ContainerIndex};
use crate::health::engine::HealthEngine;
use crate::health::history::{HistoryStore, HistoryWriter};
use crate::journal::Topic;
use crate::journal::{JournalStore, JournalWriter};
use crate::operations::{AuditLog, OperationStore, Operations};
use crate::storage;
use crate::watch::Selector;
use crate::watch::WatchHub;
use crate::web;
use pharos_proto::v1::action_service_server::ActionServiceServer;
use pharos_proto::v1::container_service_server::ContainerServiceServer;
use pharos_proto::v1::export_service_server::ExportServiceServer;
use pharos_proto::v1::health_service_server::HealthServiceServer;

/// A started pharosd; [`RunningServer::shutdown`] stops it.
pub struct RunningServer {
    pub addr: SocketAddr,
    pub hub: Arc<WatchHub>,
    pub writer: crate::journal::WriterHandle,
    pub store: JournalStore,
    pub probe_stats: Arc<crate::health::engine::ProbeStats>,
    /// What the containers collector sees (containers, stats, engine status).
    pub containers: Arc<ContainerIndex>,
    /// Actions on deployments.
    pub operations: Arc<Operations>,
    pub metrics: Arc<crate::metrics::store::MetricStore>,
    /// Ends open Watch streams (with "reconnect and resume").
    streams: CancellationToken,
    /// Stops accepting connections and drains the open ones.
    serving: CancellationToken,
    /// Stops the collectors.
    collectors: CancellationToken,
    /// Stops the journal writer, after everything that writes.
    writer_stop: CancellationToken,
    server_task: JoinHandle<Result<(), tonic::transport::Error>>,
    tasks: Vec<(&'static str, JoinHandle<()>)>,
    writer_task: JoinHandle<()>,
    history_task: JoinHandle<()>,
    deadline: Duration,
}

/// Starts everything and returns once the port accepts connections.
pub async fn start(settings: Settings) -> anyhow::Result<RunningServer> {
    let loopback = settings.listen.ip().is_loopback();
    let policy = AccessPolicy::new(&settings.tokens, loopback)
        .context("invalid API tokens in the config file")?
        .with_jwt(settings.jwt.clone())
        .with_rate_limit(
            settings
                .rate_limit
                .as_ref()
                .map(crate::ratelimit::RateLimiter::new)
                .transpose()
                .map_err(anyhow::Error::msg)?,
        );
    if !loopback && !policy.has_tokens() {
        anyhow::bail!(
            "refusing to listen on {} without API tokens: add `tokens` or `jwt` to the --config file (see `pharosd hash-token`) or listen on a loopback address",
            settings.listen
        );
    }
    let tls_acceptor = settings
        .tls
        .as_ref()
        .map(crate::tls::TlsFiles::acceptor)
        .transpose()?;
    let listener = TcpListener::bind(settings.listen).await.with_context(|| {
        format!(
            "cannot listen on {} (choose another with --listen)",
            settings.listen
        )
    })?;
    let addr = listener.local_addr()?;

    let url = storage::resolve_url(settings.database_url.as_deref(), &settings.data_dir)?;
    let db = storage::connect(&url).await?;
    storage::migrate(&db).await?;
    tracing::info!(database = %storage::redact(&url), "database ready");

    let store = JournalStore::new(db.clone());
    let position = store.position().await?;
    let hub = Arc::new(WatchHub::new(
        settings.ring_capacity,
        position.head,
        position.compacted_through,
        store.load_state().await?,
    ));
    let (writer, writer_handle) = JournalWriter::new(store.clone(), hub.clone(), 1024);
    let writer_stop = CancellationToken::new();
    let writer_task = tokio::spawn(writer.run(writer_stop.clone()));

    let (sync, view) = match CatalogSync::start(
        settings.catalog.clone(),
        storage::catalog::CatalogRows::new(db.clone()),
        writer_handle.clone(),
        position.head,
        addr,
    )
    .await
    {
        Ok(started) => started,
        Err(err) => {
            writer_stop.cancel();
            let _ = writer_task.await;
            return Err(err).context(format!("catalog {}", settings.catalog.name()));
        }
    };

    let check_history = storage::history::CheckHistory::new(db.clone());
    let (history_writer, history_sender) =
        HistoryWriter::new(check_history.clone(), settings.history_flush);
    let history_task = tokio::spawn(history_writer.run(writer_stop.clone()));
    let (mut engine, health_state, heartbeats) = HealthEngine::new(
        view.clone(),
        writer_handle.clone(),
        history_sender,
        hub.snapshot(&Selector::topic(Topic::Health)).0,
        settings.health,
    );
    let (mut container_collector, containers, docker_client) = ContainerCollector::new(
        settings.containers.clone(),
        view.clone(),
        writer_handle.clone(),
        hub.snapshot(&Selector::topic(Topic::Containers)).0,
    );
    container_collector.prepare().await;
    engine.attach_containers(containers.clone());
    let operation_store = OperationStore::new(db.clone(), writer_handle.clone());
    let operations = Operations::new(
        operation_store.clone(),
        view.clone(),
        containers.clone(),
        docker_client.clone(),
        settings.containers.labels.clone(),
    );
    match operations.mark_interrupted().await {
        Ok(0) => {}
        Ok(n) => tracing::warn!(
            operations = n,
            "marked operations interrupted by the last stop"
        ),
        Err(err) => tracing::error!(error = %err, "marking interrupted operations failed"),
    }
    let (audit, audit_queue) = AuditLog::new();
    engine.prepare().await;
    let probe_stats = engine.stats();
    let history = HistoryStore::new(check_history);

    let metric_store = Arc::new(crate::metrics::store::MetricStore::new(
        storage::metric_rollups::MetricRollups::new(db.clone()),
        Default::default(),
    ));
    let (scraper, scrape_targets) = crate::metrics::scrape::Scraper::new(
        view.clone(),
        metric_store.clone(),
        writer_handle.clone(),
    );

    let (capacity_sampler, capacity) = crate::capacity::Sampler::new(
        settings.capacity.clone(),
        settings.data_dir.clone(),
        storage::capacity::DatabaseSize::new(db.clone()),
        view.clone(),
        containers.clone(),
        metric_store.clone(),
    );
    let health_state_for_metrics = health_state.clone();
    let alert_evaluator = crate::metrics::alerts::AlertEvaluator::new(
        view.clone(),
        metric_store.clone(),
        health_state.clone(),
        writer_handle.clone(),
    )
    .with_history(crate::events::EventHistory::new(db.clone()));
    let kpi_statuses = crate::metrics::kpi::KpiStatuses::default();
    let aggregates = crate::metrics::aggregates::Aggregates {
        view: view.clone(),
        health: health_state.clone(),
        containers: containers.clone(),
        firing: alert_evaluator.firing(),
        kpis: kpi_statuses.clone(),
        events: crate::events::EventHistory::new(db.clone()),
    };
    let collectors = CancellationToken::new();
    let mut tasks = vec![
        (
            "audit-writer",
            tokio::spawn(crate::operations::audit::run(
                operation_store,
                audit_queue,
                collectors.clone(),
            )),
        ),
        (
            "containers-collector",
            tokio::spawn(container_collector.run(collectors.clone())),
        ),
        (
            "containers-stats",
            tokio::spawn(crate::containers::stats::run(
                containers.clone(),
                docker_client.clone(),
                settings.containers.stats_interval,
                collectors.clone(),
            )),
        ),
        (
            "health-engine",
            tokio::spawn(engine.run(collectors.clone())),
        ),
        (
            "health-retention",
            tokio::spawn(apply_retention_periodically(
                history.clone(),
                settings.retention,
                collectors.clone(),
            )),
        ),
        (
            "catalog-sync",
            tokio::spawn(sync.run(settings.catalog_poll_interval, collectors.clone())),
        ),
        (
            "journal-compaction",
            tokio::spawn(compact_periodically(
                store.clone(),
                hub.clone(),
                settings.journal_retention,
                settings.compaction_interval,
                collectors.clone(),
            )),
        ),
        (
            "metrics-scraper",
            tokio::spawn(scraper.run(collectors.clone())),
        ),
        (
            "alert-rules",
            tokio::spawn(alert_evaluator.run(collectors.clone())),
        ),
        (
            "sql-kpis",
            tokio::spawn(crate::metrics::kpi::run(
                view.clone(),
                metric_store.clone(),
                writer_handle.clone(),
                kpi_statuses.clone(),
                collectors.clone(),
            )),
        ),
        (
            "anomaly-detectors",
            tokio::spawn(
                crate::metrics::anomaly::AnomalyWatcher::new(
                    view.clone(),
                    metric_store.clone(),
                    writer_handle.clone(),
                )
                .run(collectors.clone()),
            ),
        ),
        (
            "metrics-rollups",
            tokio::spawn(crate::metrics::flush_periodically(
                metric_store.clone(),
                collectors.clone(),
            )),
        ),
    ];

    let streams = CancellationToken::new();
    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_serving::<CatalogServiceServer<CatalogApi>>()
        .await;
    health.set_serving::<WatchServiceServer<WatchApi>>().await;
    health.set_serving::<HealthServiceServer<HealthApi>>().await;
    health.set_serving::<ExportServiceServer<ExportApi>>().await;
    health
        .set_serving::<ContainerServiceServer<ContainerApi>>()
        .await;
    health.set_serving::<ActionServiceServer<ActionApi>>().await;
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pharos_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pharos_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;

    let routes = tonic::service::Routes::new(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(CatalogServiceServer::new(CatalogApi::new(
            view.clone(),
            health_state.clone(),
            hub.clone(),
        )))
        .add_service(HealthServiceServer::new(HealthApi::new(
            health_state,
            history,
            heartbeats,
            view,
            hub.clone(),
        )))
        .add_service(ContainerServiceServer::new(ContainerApi::new(
            containers.clone(),
            docker_client.clone(),
            streams.clone(),
        )))
        .add_service(ActionServiceServer::new(ActionApi::new(
            operations.clone(),
            audit.clone(),
            streams.clone(),
        )))
        .add_service(ExportServiceServer::new(ExportApi::new(
            crate::export::ExportStore::new(db.clone()),
        )))
        .add_service(
            pharos_proto::v1::event_service_server::EventServiceServer::new(
                crate::api::EventsApi::new(
                    writer_handle.clone(),
                    crate::events::EventHistory::new(db.clone()),
                ),
            ),
        )
        .add_service(
            pharos_proto::v1::metrics_service_server::MetricsServiceServer::new(
                crate::api::MetricsApi::new(metric_store.clone(), scrape_targets.clone())
                    .with_capacity(capacity)
                    .with_aggregates(aggregates),
            ),
        )
        .add_service(
            pharos_proto::v1::session_service_server::SessionServiceServer::new(
                crate::api::SessionApi,
            ),
        )
        .add_service(WatchServiceServer::new(
            WatchApi::new(hub.clone(), store.clone(), settings.watch, streams.clone())
                .with_metrics(metric_store.clone()),
        ));
    let web_root = web::find_web_root(settings.web_root.as_deref());
    match &web_root {
        Some(root) => tracing::info!(web_root = %root.display(), "serving the dashboard"),
        None => tracing::info!(
            "no dashboard build found (web-client/dist); serving a landing page at /"
        ),
    }
    let rpc_stats = crate::telemetry::RpcStats::default();
    let telemetry = crate::telemetry::Telemetry {
        rpc: rpc_stats.clone(),
        hub: hub.clone(),
        health: health_state_for_metrics,
        probes: probe_stats.clone(),
        targets: scrape_targets.clone(),
        store: metric_store.clone(),
    };
    // A zero interval turns either off.
    if !settings.capacity.interval.is_zero() {
        tasks.push((
            "capacity-sampler",
            tokio::spawn(capacity_sampler.run(collectors.clone())),
        ));
    }
    if !settings.telemetry_interval.is_zero() {
        tasks.push((
            "telemetry-series",
            tokio::spawn(crate::telemetry::record_periodically(
                telemetry.clone(),
                settings.telemetry_interval,
                collectors.clone(),
            )),
        ));
    }
    let routes = tonic::service::Routes::from(web::routes(
        telemetry.route(routes.into_axum_router()),
        streams.clone(),
        web_root.as_deref(),
    ));

    let serving = CancellationToken::new();
    // CORS answers browsers' preflight requests before access control sees them.
    let layers = ServiceBuilder::new()
        .option_layer(web::cors_layer(&settings.cors_origins))
        .layer(web::GrpcWebOnlyLayer)
        .layer(crate::telemetry::RpcMetricsLayer::new(rpc_stats))
        .layer(AuthLayer::new(Arc::new(policy)).with_audit(audit))
        .into_inner();
    let router = tonic::transport::Server::builder()
        .accept_http1(true)
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(Duration::from_secs(10)))
        .max_concurrent_streams(Some(20_000))
        .layer(layers)
        .add_routes(routes);
    let server_task = match tls_acceptor {
        Some(acceptor) => tokio::spawn(router.serve_with_incoming_shutdown(
            crate::tls::incoming(listener, acceptor, serving.clone()),
            serving.clone().cancelled_owned(),
        )),
        None => tokio::spawn(router.serve_with_incoming_shutdown(
            TcpIncoming::from(listener).with_nodelay(Some(true)),
            serving.clone().cancelled_owned(),
        )),
    };
    if settings.tls.is_some() && matches!(settings.catalog, CatalogSource::Embedded) {
        tracing::warn!(
            "the embedded demo catalog probes pharosd over plain text, so its own checks fail under TLS; pass a --catalog of your own"
        );
    }
    tracing::info!(
        %addr,
        tls = settings.tls.is_some(),
        mutual_tls = settings.tls.as_ref().is_some_and(|tls| tls.client_ca.is_some()),
        catalog = %settings.catalog.name(),
        "pharosd listening"
    );

    Ok(RunningServer {
        addr,
        hub,
        writer: writer_handle,
        store,
        probe_stats,
        containers,
        operations,
        metrics: metric_store,
        streams,
        serving,
        collectors,
        writer_stop,
        server_task,
        tasks,
        writer_task,
        history_task,
        deadline: settings.shutdown_deadline,
    })
}

impl RunningServer {
    /// Stops accepting, ends Watch streams with UNAVAILABLE (clients resume), stops the
    /// collectors, then the journal writer; each step bounded by the deadline.
    pub async fn shutdown(self) {
        let deadline = tokio::time::Instant::now() + self.deadline;
        self.streams.cancel();
        self.serving.cancel();
        match tokio::time::timeout_at(deadline, self.server_task).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(err))) => tracing::warn!(error = %err, "server ended with an error"),
            Ok(Err(err)) => tracing::warn!(error = %err, "server task failed"),
            Err(_) => tracing::warn!("open connections did not close before the deadline"),
        }
        if tokio::time::timeout_at(deadline, self.operations.shutdown())
            .await
            .is_err()
        {
            tracing::warn!("operations did not stop before the deadline");
        }
        self.collectors.cancel();
        for (name, task) in self.tasks {
            if tokio::time::timeout_at(deadline, task).await.is_err() {
                tracing::warn!(task = name, "task did not stop before the deadline");
            }
        }
        self.writer_stop.cancel();
        for (name, task) in [
            ("journal writer", self.writer_task),
            ("history writer", self.history_task),
        ] {
            if tokio::time::timeout_at(deadline, task).await.is_err() {
                tracing::warn!(task = name, "task did not stop before the deadline");
            }
        }
        tracing::info!("pharosd stopped");
    }
}

async fn compact_periodically(
    store: JournalStore,
    hub: Arc<WatchHub>,
    retain: u64,
    every: Duration,
    shutdown: CancellationToken,
) {
    let mut ticker = tokio::time::interval(every);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        match store.compact(retain).await {
            Ok(through) => hub.set_compacted_through(through),
            Err(err) => tracing::warn!(error = %err, "journal compaction failed"),
        }
    }
}

async fn apply_retention_periodically(
    history: HistoryStore,
    retention: crate::health::history::Retention,
    shutdown: CancellationToken,
) {
    let mut ticker = tokio::time::interval(Duration::from_secs(600));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        if let Err(err) = history.apply_retention(retention).await {
            tracing::warn!(error = %err, "applying history retention failed");
        }
    }
}

/// Serves until SIGINT or SIGTERM, then shuts down.
pub async fn run(settings: Settings) -> anyhow::Result<()> {
    let server = start(settings).await?;
    wait_for_signal().await;
    tracing::info!("shutting down");
    server.shutdown().await;
    Ok(())
}

async fn wait_for_signal() {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler installs");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
}
