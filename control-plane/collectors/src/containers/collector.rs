//! The collector task: connects to the engine, lists containers, follows the event
//! stream, resyncs periodically, and journals every change on the containers topic.
//! When the engine goes away it is marked down and reconnected with backoff.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use bollard::Docker;
use bollard::errors::Error as DockerError;
use bollard::models::ContainerInspectResponse;
use bollard::query_parameters::{EventsOptions, ListContainersOptions};
use futures::StreamExt;
use tokio::sync::watch;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use super::matching::Matcher;
use super::{ContainerIndex, ContainersConfig};
use crate::catalog::CatalogView;
use pharos_core::domain::{Container, ContainerHealth, ContainerState, EngineState, EngineStatus};
use pharos_store::journal::{Change, JournalEntry, Object, WriterHandle, now_micros};

/// Timeout of each engine request (the event stream's body is not bounded by it).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Cloned before it runs, the collector can be started again after a failure: the copy
/// shares the index, the journal and the engine client channel, and resyncs on connect.
#[derive(Clone)]
pub struct ContainerCollector {
    config: ContainersConfig,
    index: Arc<ContainerIndex>,
    writer: WriterHandle,
    catalog: watch::Receiver<Arc<CatalogView>>,
    matcher: Matcher,
    /// The connected client while the engine is up, for the stats sampler and actions.
    client: watch::Sender<Option<Docker>>,
    /// The engine status in the index is the one last journaled.
    engine_journaled: bool,
}

impl ContainerCollector {
    /// `previous` is the containers topic's last journaled state: containers that are
    /// gone when the engine is next listed are journaled as removed.
    pub fn new(
        config: ContainersConfig,
        catalog: watch::Receiver<Arc<CatalogView>>,
        writer: WriterHandle,
        previous: Vec<Arc<JournalEntry>>,
    ) -> (
        ContainerCollector,
        Arc<ContainerIndex>,
        watch::Receiver<Option<Docker>>,
    ) {
        let engine = EngineStatus {
            endpoint: config.docker_host.clone().unwrap_or_default(),
            state: if config.docker_host.is_some() {
                EngineState::Connecting
            } else {
                EngineState::Disabled
            },
            version: String::new(),
            error: String::new(),
            since_micros: now_micros(),
        };
        // A status the previous run already journaled (say, still disabled) is kept with
        // its time, so a restart does not journal a change that is none.
        let unchanged = previous.iter().find_map(|entry| match &entry.object {
            Object::ContainerEngine(last)
                if last.state == engine.state && last.endpoint == engine.endpoint =>
            {
                Some(last.clone())
            }
            _ => None,
        });
        let engine_journaled = unchanged.is_some();
        let index = Arc::new(ContainerIndex::new(unchanged.unwrap_or(engine)));
        for entry in previous {
            if let Object::Container(container) = &entry.object {
                index.upsert(container.clone());
            }
        }
        let matcher = Matcher::new(&catalog.borrow(), &config.labels);
        let (client, client_receiver) = watch::channel(None);
        let collector = ContainerCollector {
            config,
            index: index.clone(),
            writer,
            catalog,
            matcher,
            client,
            engine_journaled,
        };
        (collector, index, client_receiver)
    }

    /// Journals the engine's initial status (and, with no engine, forgets the containers
    /// of the previous run), so the containers topic is current when pharosd serves.
    pub async fn prepare(&mut self) {
        let mut changes = Vec::new();
        if !self.engine_journaled {
            changes.push(Change::upsert(Object::ContainerEngine(self.index.engine())));
        }
        match &self.config.docker_host {
            None => {
                tracing::info!(
                    "containers collector disabled: no container engine configured (set --docker-host, PHAROS_DOCKER_HOST or DOCKER_HOST)"
                );
                for id in self.index.ids() {
                    if let Some(last) = self.index.remove(&id) {
                        changes.push(Change::delete(Object::Container(last)));
                    }
                }
            }
            Some(host) => tracing::info!(engine = %host, "containers collector connecting"),
        }
        if let Err(err) = self.writer.append(changes).await {
            tracing::error!(error = %err, "journaling the container engine status failed");
        }
    }

    /// Follows the engine until `shutdown`, reconnecting with backoff.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let Some(host) = self.config.docker_host.clone() else {
            return;
        };
        let mut backoff = Duration::from_millis(250);
        loop {
            let result = self.follow(&host, &shutdown, &mut backoff).await;
            self.client.send_replace(None);
            if shutdown.is_cancelled() {
                return;
            }
            let error = match result {
                Ok(()) => "the engine closed its event stream".to_owned(),
                Err(err) => describe(&err),
            };
            if self.index.engine().state != EngineState::Down {
                tracing::warn!(engine = %host, error = %error, "container engine down; reconnecting with backoff");
            }
            self.set_engine(EngineState::Down, String::new(), error)
                .await;
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(self.config.max_backoff);
        }
    }

    /// One connection: list, then follow events until the stream fails or `shutdown`.
    async fn follow(
        &mut self,
        host: &str,
        shutdown: &CancellationToken,
        backoff: &mut Duration,
    ) -> Result<(), DockerError> {
        let docker = Docker::connect_with_host(host)?.with_timeout(REQUEST_TIMEOUT);
        let version = docker.version().await?;
        // Events from one second before the list on: nothing falls between the two (a
        // replayed event only costs one inspect).
        let since = (now_micros() / 1_000_000 - 1).to_string();
        let filters =
            std::collections::HashMap::from([("type".to_owned(), vec!["container".to_owned()])]);
        let mut events = Box::pin(docker.events(Some(EventsOptions {
            since: Some(since),
            filters: Some(filters),
            ..Default::default()
        })));
        let name = version
            .components
            .as_ref()
            .and_then(|c| c.first())
            .map(|c| c.name.clone())
            .unwrap_or_else(|| "Docker Engine".to_owned());
        let described = format!(
            "{name} {} (API {})",
            version.version.as_deref().unwrap_or("?"),
            version.api_version.as_deref().unwrap_or("?")
        );
        // Listed before the engine is announced up: whoever sees it up (the API,
        // actions, container checks) sees the containers it lists.
        self.resync(&docker).await?;
        self.client.send_replace(Some(docker.clone()));
        tracing::info!(engine = %host, version = %described, "container engine up");
        self.set_engine(EngineState::Up, described, String::new())
            .await;
        *backoff = Duration::from_millis(250);

        let mut resync = tokio::time::interval(self.config.resync_interval);
        resync.set_missed_tick_behavior(MissedTickBehavior::Delay);
        resync.tick().await;
        let mut catalog_open = true;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                event = events.next() => match event {
                    Some(Ok(event)) => {
                        tracing::debug!(action = ?event.action, id = ?event.actor.as_ref().and_then(|a| a.id.as_ref()), "container event");
                        if let Some(id) = event.actor.and_then(|actor| actor.id) {
                            self.refresh(&docker, &id).await?;
                        }
                    }
                    Some(Err(err)) => return Err(err),
                    None => return Ok(()),
                },
                _ = resync.tick() => self.resync(&docker).await?,
                changed = self.catalog.changed(), if catalog_open => {
                    if changed.is_err() {
                        catalog_open = false;
                        continue;
                    }
                    self.matcher = Matcher::new(&self.catalog.borrow_and_update(), &self.config.labels);
                    self.resync(&docker).await?;
                }
            }
        }
    }

    async fn set_engine(&self, state: EngineState, version: String, error: String) {
        let status = EngineStatus {
            endpoint: self.config.docker_host.clone().unwrap_or_default(),
            state,
            version,
            error,
            since_micros: now_micros(),
        };
        if self.index.set_engine(status.clone()) {
            self.journal(vec![Change::upsert(Object::ContainerEngine(status))])
                .await;
        }
    }

    /// Lists every container and brings the index in line: new and changed ones are
    /// upserted, vanished ones removed.
    async fn resync(&self, docker: &Docker) -> Result<(), DockerError> {
        let listed = docker
            .list_containers(Some(ListContainersOptions {
                all: true,
                ..Default::default()
            }))
            .await?;
        let mut seen = HashSet::new();
        let mut changes = Vec::new();
        for summary in listed {
            let Some(id) = summary.id else { continue };
            let labels: BTreeMap<String, String> =
                summary.labels.unwrap_or_default().into_iter().collect();
            if !self.matcher.tracks(&labels) {
                continue;
            }
            seen.insert(id.clone());
            match docker.inspect_container(&id, None).await {
                Ok(inspect) => {
                    if let Some(change) = self.record(inspect) {
                        changes.push(change);
                    }
                }
                Err(err) if is_gone(&err) => {}
                Err(err) => return Err(err),
            }
        }
        for id in self.index.ids() {
            if !seen.contains(&id)
                && let Some(last) = self.index.remove(&id)
            {
                changes.push(Change::delete(Object::Container(last)));
            }
        }
        self.journal(changes).await;
        Ok(())
    }

    /// Re-reads one container after an event.
    async fn refresh(&self, docker: &Docker, id: &str) -> Result<(), DockerError> {
        let change = match docker.inspect_container(id, None).await {
            Ok(inspect) => self.record(inspect),
            Err(err) if is_gone(&err) => self
                .index
                .remove(id)
                .map(|last| Change::delete(Object::Container(last))),
            Err(DockerError::DockerResponseServerError {
                status_code,
                message,
            }) => {
                tracing::warn!(container = id, status_code, %message, "inspecting a container failed; the next resync retries");
                None
            }
            Err(err) => return Err(err),
        };
        if let Some(change) = change {
            self.journal(vec![change]).await;
        }
        Ok(())
    }

    /// Updates the index from an inspect; returns the change to journal, if any.
    fn record(&self, inspect: ContainerInspectResponse) -> Option<Change> {
        let id = inspect.id.clone()?;
        let labels: BTreeMap<String, String> = inspect
            .config
            .as_ref()
            .and_then(|c| c.labels.clone())
            .unwrap_or_default()
            .into_iter()
            .collect();
        if !self.matcher.tracks(&labels) {
            return self
                .index
                .remove(&id)
                .map(|last| Change::delete(Object::Container(last)));
        }
        let container = to_container(&self.matcher, id, labels, inspect);
        tracing::debug!(container = %container.id, deployment = ?container.deployment_id, state = container.state.as_str(), "container recorded");
        self.index
            .upsert(container.clone())
            .then(|| Change::upsert(Object::Container(container)))
    }

    async fn journal(&self, changes: Vec<Change>) {
        if changes.is_empty() {
            return;
        }
        if let Err(err) = self.writer.append_in_background(changes).await {
            tracing::error!(error = %err, "journaling container changes failed");
        }
    }
}

fn to_container(
    matcher: &Matcher,
    id: String,
    labels: BTreeMap<String, String>,
    inspect: ContainerInspectResponse,
) -> Container {
    let placement = matcher.place(&labels);
    let state = inspect.state.unwrap_or_default();
    let engine_state = state.status.map(|s| s.to_string()).unwrap_or_default();
    let container_state = ContainerState::parse(&engine_state);
    let health = ContainerHealth::parse(
        state
            .health
            .as_ref()
            .and_then(|h| h.status)
            .map(|s| s.to_string())
            .as_deref(),
    );
    let started_micros = state.started_at.as_deref().and_then(parse_time);
    let exit_code = (container_state != ContainerState::Running)
        .then_some(state.exit_code)
        .flatten();
    let status_text = match container_state {
        ContainerState::Exited | ContainerState::Dead => {
            format!("{} ({})", engine_state, exit_code.unwrap_or_default())
        }
        _ if health != ContainerHealth::None => {
            format!("{engine_state} ({})", health.as_str())
        }
        _ => engine_state.clone(),
    };
    Container {
        name: inspect
            .name
            .unwrap_or_default()
            .trim_start_matches('/')
            .to_owned(),
        image: inspect
            .config
            .as_ref()
            .and_then(|c| c.image.clone())
            .unwrap_or_default(),
        id,
        labels,
        deployment_id: placement.deployment_id,
        project_id: placement.project_id,
        environment: placement.environment,
        service: placement.service,
        state: container_state,
        health,
        status_text,
        exit_code,
        created_micros: inspect
            .created
            .as_deref()
            .and_then(parse_time)
            .unwrap_or_default(),
        started_micros,
        restart_count: inspect.restart_count.unwrap_or_default().max(0) as u64,
    }
}

/// RFC 3339 to microseconds; the engine's zero time ("0001-01-01T00:00:00Z") is `None`.
pub(crate) fn parse_time(text: &str) -> Option<i64> {
    let parsed = chrono::DateTime::parse_from_rfc3339(text).ok()?;
    let micros = parsed.timestamp_micros();
    (micros > 0).then_some(micros)
}

/// The container no longer exists.
pub(crate) fn is_gone(err: &DockerError) -> bool {
    match err {
        DockerError::DockerResponseServerError {
            status_code,
            message,
        } => *status_code == 404 || message.contains("no such container"),
        _ => false,
    }
}

/// An error as one line a person can act on.
pub(crate) fn describe(err: &DockerError) -> String {
    match err {
        DockerError::DockerResponseServerError {
            status_code,
            message,
        } => format!("engine answered {status_code}: {message}"),
        other => other.to_string(),
    }
}
