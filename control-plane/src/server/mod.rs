//! Wiring: storage, journal, hub, catalog sync and the one listening port, started in
//! order and stopped in reverse with a deadline. Every background task runs under the
//! [`TaskSupervisor`]; the table of what happens when each one fails is on
//! [`start_with_failpoints`].

mod jobs;
mod services;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;

use crate::api::ActionApi;
use crate::api::ContainerApi;
use crate::api::ExportApi;
use crate::api::{CatalogApi, HealthApi, WatchApi};
use crate::auth::AccessPolicy;
use crate::catalog::{CatalogSource, CatalogSync};
use crate::config::Settings;
use crate::containers::{ContainerCollector, ContainerIndex};
use crate::health::engine::HealthEngine;
use crate::health::history::{HistoryStore, HistoryWriter};
use crate::journal::Topic;
use crate::journal::{JournalStore, JournalWriter};
use crate::operations::{AuditLog, OperationStore, Operations};
use crate::storage;
use crate::supervisor::{Backoff, Failpoints, FatalTaskError, TaskHealth, TaskSupervisor};
use crate::watch::Selector;
use crate::watch::WatchHub;
use crate::web;

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
    /// Which background tasks run, are restarting or have failed.
    pub tasks: TaskHealth,
    /// Ends open Watch streams (with "reconnect and resume").
    streams: CancellationToken,
    /// Stops accepting connections and drains the open ones.
    serving: CancellationToken,
    /// Stops the collectors.
    collectors: CancellationToken,
    /// Stops the journal writer, after everything that writes.
    writer_stop: CancellationToken,
    supervisor: TaskSupervisor,
    /// The embedded catalog never changes, so no task syncs it; holding its sync keeps
    /// the catalog channel open, which the tasks that follow the catalog read as "keep
    /// going" rather than "stop".
    _fixed_catalog: Option<CatalogSync>,
    deadline: Duration,
}

/// Starts everything and returns once the port accepts connections.
pub async fn start(settings: Settings) -> anyhow::Result<RunningServer> {
    start_with_failpoints(settings, Failpoints::default()).await
}

/// [`start`], with panics injected into the tasks `failpoints` names.
///
/// # Background tasks
///
/// Each runs as a named task in a `task` span under the [`TaskSupervisor`]. When one
/// ends while pharosd runs, it is either restarted with a backoff or pharosd stops with
/// an error (exit status 1), so that whatever runs it starts a whole new process:
///
/// | task | on failure | why |
/// | --- | --- | --- |
/// | `journal-writer` | stop pharosd | it alone owns the queue every journaled change goes through; a panic loses the requests in flight and their callers' answers |
/// | `history-writer` | stop pharosd | it owns the receiving end of check results and the open rollup buckets, which no second start could get back |
/// | `audit-writer` | stop pharosd | it owns the receiving end of the audit queue; running on without it would drop audit records silently |
/// | `health-engine` | stop pharosd | it owns the running checks and their state machines; a new engine could not take over checks the old one left behind |
/// | `serve` | stop pharosd | it owns the listening socket; a pharosd that no longer answers must not look alive to its supervisor |
/// | `catalog-sync` | restart | a copy of the started sync polls the file again and diffs it against the shared view; not run for the embedded catalog, which never changes |
/// | `containers-collector` | restart | a copy of the prepared collector reconnects and resyncs the shared index; not run without a container engine |
/// | `containers-stats` | restart | samples running containers from the shared index; not run without a container engine |
/// | `health-retention`, `journal-compaction`, `metrics-rollups` | restart | periodic jobs on the database; a new run does what the failed one would have |
/// | `metrics-scraper`, `sql-kpis` | restart | one loop per target or KPI, started from the catalog; the loops of a failed run stop with its token |
/// | `alert-rules` | restart | a new evaluator restores firing alerts from the event history, as after a restart of pharosd, and publishes to the same firing set |
/// | `anomaly-detectors` | restart | a new watcher learns its baselines again, as after a restart of pharosd |
/// | `capacity-sampler`, `telemetry-series` | restart | samplers whose next sample does not depend on the last |
/// | `grpc-health-status` | restart | mirrors the tasks' health into `grpc.health.v1` from the current state |
pub async fn start_with_failpoints(
    settings: Settings,
    failpoints: Failpoints,
) -> anyhow::Result<RunningServer> {
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
    let mut supervisor = TaskSupervisor::new(Backoff::default(), failpoints);
    let (writer, writer_handle) = JournalWriter::new(store.clone(), hub.clone(), 1024);
    let writer_stop = CancellationToken::new();
    supervisor.stop_pharosd_on_failure("journal-writer", &writer_stop, |stop| writer.run(stop));

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
            let deadline = tokio::time::Instant::now() + settings.shutdown_deadline;
            supervisor.stop(&writer_stop, deadline).await;
            // A writer that died is why the catalog could not be stored: name the cause.
            if let Some(failure) = supervisor.take_fatal_failure() {
                return Err(failure.into());
            }
            return Err(err).context(format!("catalog {}", settings.catalog.name()));
        }
    };

    let check_history = storage::history::CheckHistory::new(db.clone());
    let (history_writer, history_sender) =
        HistoryWriter::new(check_history.clone(), settings.history_flush);
    supervisor.stop_pharosd_on_failure("history-writer", &writer_stop, |stop| {
        history_writer.run(stop)
    });
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
    // Alerts firing, shared by every run of the evaluator and read by GetAggregates.
    let firing = crate::metrics::aggregates::FiringAlerts::default();
    let kpi_statuses = crate::metrics::kpi::KpiStatuses::default();
    let aggregates = crate::metrics::aggregates::Aggregates {
        view: view.clone(),
        health: health_state.clone(),
        containers: containers.clone(),
        firing: firing.clone(),
        kpis: kpi_statuses.clone(),
        events: crate::events::EventHistory::new(db.clone()),
    };
    let collectors = CancellationToken::new();
    supervisor.stop_pharosd_on_failure("audit-writer", &collectors, |stop| {
        crate::operations::audit::run(operation_store, audit_queue, stop)
    });
    if settings.containers.docker_host.is_some() {
        supervisor.restart_on_failure("containers-collector", &collectors, move |stop| {
            container_collector.clone().run(stop)
        });
        let (containers, docker_client) = (containers.clone(), docker_client.clone());
        let interval = settings.containers.stats_interval;
        supervisor.restart_on_failure("containers-stats", &collectors, move |stop| {
            crate::containers::stats::run(containers.clone(), docker_client.clone(), interval, stop)
        });
    }
    supervisor.stop_pharosd_on_failure("health-engine", &collectors, |stop| engine.run(stop));
    {
        let (history, retention) = (history.clone(), settings.retention);
        supervisor.restart_on_failure("health-retention", &collectors, move |stop| {
            jobs::apply_retention_periodically(history.clone(), retention, stop)
        });
    }
    let fixed_catalog = match settings.catalog {
        CatalogSource::File(_) => {
            let poll = settings.catalog_poll_interval;
            supervisor.restart_on_failure("catalog-sync", &collectors, move |stop| {
                sync.clone().run(poll, stop)
            });
            None
        }
        CatalogSource::Embedded => Some(sync),
    };
    {
        let (store, hub) = (store.clone(), hub.clone());
        let (retain, every) = (settings.journal_retention, settings.compaction_interval);
        supervisor.restart_on_failure("journal-compaction", &collectors, move |stop| {
            jobs::compact_periodically(store.clone(), hub.clone(), retain, every, stop)
        });
    }
    supervisor.restart_on_failure("metrics-scraper", &collectors, move |stop| {
        scraper.clone().run(stop)
    });
    {
        let (view, metric_store, health_state, writer_handle, db) = (
            view.clone(),
            metric_store.clone(),
            health_state.clone(),
            writer_handle.clone(),
            db.clone(),
        );
        // Every start, the first included, restores firing alerts from the event history,
        // as after a restart of pharosd.
        supervisor.restart_on_failure("alert-rules", &collectors, move |stop| {
            crate::metrics::alerts::AlertEvaluator::new(
                view.clone(),
                metric_store.clone(),
                health_state.clone(),
                writer_handle.clone(),
            )
            .with_history(crate::events::EventHistory::new(db.clone()))
            .with_firing(firing.clone())
            .run(stop)
        });
    }
    {
        let (view, metric_store, writer_handle, kpi_statuses) = (
            view.clone(),
            metric_store.clone(),
            writer_handle.clone(),
            kpi_statuses.clone(),
        );
        supervisor.restart_on_failure("sql-kpis", &collectors, move |stop| {
            crate::metrics::kpi::run(
                view.clone(),
                metric_store.clone(),
                writer_handle.clone(),
                kpi_statuses.clone(),
                stop,
            )
        });
    }
    {
        let (view, metric_store, writer_handle) =
            (view.clone(), metric_store.clone(), writer_handle.clone());
        supervisor.restart_on_failure("anomaly-detectors", &collectors, move |stop| {
            crate::metrics::anomaly::AnomalyWatcher::new(
                view.clone(),
                metric_store.clone(),
                writer_handle.clone(),
            )
            .run(stop)
        });
    }
    {
        let metric_store = metric_store.clone();
        supervisor.restart_on_failure("metrics-rollups", &collectors, move |stop| {
            crate::metrics::flush_periodically(metric_store.clone(), stop)
        });
    }

    let streams = CancellationToken::new();
    let (health, health_service) = tonic_health::server::health_reporter();
    let tasks = supervisor.health();
    {
        let (tasks, health) = (tasks.clone(), health.clone());
        supervisor.restart_on_failure("grpc-health-status", &collectors, move |stop| {
            services::report_task_health(tasks.clone(), health.clone(), stop)
        });
    }
    let apis = services::PharosApis {
        catalog: CatalogApi::new(view.clone(), health_state.clone(), hub.clone()),
        health: HealthApi::new(health_state, history, heartbeats, view, hub.clone()),
        containers: ContainerApi::new(containers.clone(), docker_client.clone(), streams.clone()),
        actions: ActionApi::new(operations.clone(), audit.clone(), streams.clone()),
        export: ExportApi::new(crate::export::ExportStore::new(db.clone())),
        events: crate::api::EventsApi::new(
            writer_handle.clone(),
            crate::events::EventHistory::new(db.clone()),
        ),
        metrics: crate::api::MetricsApi::new(metric_store.clone(), scrape_targets.clone())
            .with_capacity(capacity)
            .with_aggregates(aggregates),
        watch: WatchApi::new(hub.clone(), store.clone(), settings.watch, streams.clone())
            .with_metrics(metric_store.clone()),
    };
    let routes = services::grpc_routes(apis, &health, health_service).await?;
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
        supervisor.restart_on_failure("capacity-sampler", &collectors, move |stop| {
            capacity_sampler.clone().run(stop)
        });
    }
    if !settings.telemetry_interval.is_zero() {
        let (telemetry, interval) = (telemetry.clone(), settings.telemetry_interval);
        supervisor.restart_on_failure("telemetry-series", &collectors, move |stop| {
            crate::telemetry::record_periodically(telemetry.clone(), interval, stop)
        });
    }
    let routes = Routes::from(web::routes(
        telemetry.route(routes.into_axum_router()),
        streams.clone(),
        tasks.clone(),
        web_root.as_deref(),
    ));

    let serving = services::serve(
        &mut supervisor,
        services::Front {
            cors_origins: &settings.cors_origins,
            rpc_stats,
            policy,
            audit,
        },
        routes,
        listener,
        tls_acceptor,
    );
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
        tasks,
        streams,
        serving,
        collectors,
        writer_stop,
        supervisor,
        _fixed_catalog: fixed_catalog,
        deadline: settings.shutdown_deadline,
    })
}

impl RunningServer {
    /// The first failure of a task that cannot be restarted; pending while there is none.
    pub async fn fatal_failure(&mut self) -> FatalTaskError {
        self.supervisor.fatal_failure().await
    }

    /// Stops accepting, ends Watch streams with UNAVAILABLE (clients resume), stops the
    /// collectors, then the journal writer; each step bounded by the deadline. Tasks that
    /// fail while stopping are logged by name.
    pub async fn shutdown(mut self) {
        self.stop_everything().await;
    }

    /// [`shutdown`](Self::shutdown), then the failure to blame if a task that cannot be
    /// restarted failed: `failure`, which ended pharosd, or one that failed while stopping.
    pub async fn shutdown_and_report(
        mut self,
        failure: Option<FatalTaskError>,
    ) -> Result<(), FatalTaskError> {
        self.stop_everything().await;
        match failure {
            Some(first) => Err(self.supervisor.root_cause(first)),
            None => self.supervisor.take_fatal_failure().map_or(Ok(()), Err),
        }
    }

    async fn stop_everything(&mut self) {
        let deadline = tokio::time::Instant::now() + self.deadline;
        self.streams.cancel();
        if !self
            .supervisor
            .stop(&self.serving, deadline)
            .await
            .is_empty()
        {
            tracing::warn!("open connections did not close before the deadline");
        }
        if tokio::time::timeout_at(deadline, self.operations.shutdown())
            .await
            .is_err()
        {
            tracing::warn!("operations did not stop before the deadline");
        }
        self.supervisor.stop(&self.collectors, deadline).await;
        self.supervisor.stop(&self.writer_stop, deadline).await;
        tracing::info!("pharosd stopped");
    }
}

/// Serves until SIGINT or SIGTERM, then shuts down; or until a task that cannot be
/// restarted fails, then shuts down and returns that failure.
pub async fn run(settings: Settings) -> anyhow::Result<()> {
    let mut server = start_with_failpoints(settings, Failpoints::from_env()?).await?;
    let failure = tokio::select! {
        () = wait_for_signal() => None,
        failure = server.fatal_failure() => Some(failure),
    };
    match failure {
        None => tracing::info!("shutting down"),
        Some(_) => tracing::error!("shutting down because a task that cannot be restarted failed"),
    }
    server.shutdown_and_report(failure).await?;
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
