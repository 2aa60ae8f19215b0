//! Keeps the database, the journal and the in-memory view in step with the catalog file:
//! at start, and whenever the file changes. An invalid edit keeps the running catalog and
//! raises a `catalog.invalid` event.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::view::CatalogView;
use super::{CatalogError, DEMO_CATALOG};
use pharos_core::domain::{Catalog, Event, Severity};
use pharos_store::QueryError;
use pharos_store::catalog::CatalogRows;
use pharos_store::journal::{Change, Object, WriteError, WriterHandle};

/// Where the catalog text comes from.
#[derive(Clone, Debug)]
pub enum CatalogSource {
    File(PathBuf),
    /// The demo catalog compiled into pharosd.
    Embedded,
}

impl CatalogSource {
    pub fn name(&self) -> String {
        match self {
            CatalogSource::File(path) => path.display().to_string(),
            CatalogSource::Embedded => "embedded demo catalog".to_owned(),
        }
    }

    /// The catalog text, with `${listen}` pointed at `listen`, the address pharosd
    /// serves on (see [`super::expand`]): the demo catalog monitors this very server.
    pub fn read(&self, listen: SocketAddr) -> Result<String, CatalogError> {
        let text = match self {
            CatalogSource::Embedded => DEMO_CATALOG.to_owned(),
            CatalogSource::File(path) => {
                std::fs::read_to_string(path).map_err(|err| CatalogError {
                    problems: vec![super::Problem {
                        source: self.name(),
                        line: 1,
                        column: 1,
                        path: String::new(),
                        message: format!("cannot read the catalog file: {err}"),
                    }],
                })?
            }
        };
        Ok(super::expand(&text, listen))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("invalid catalog (nothing was changed):\n{0}")]
    Invalid(CatalogError),
    #[error("cannot load the stored catalog: {0}")]
    Load(#[from] QueryError),
    #[error("cannot store the catalog: {0}")]
    Write(#[from] WriteError),
}

/// What the file looked like when last read, to notice edits cheaply.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
}

/// A copy shares the view and the journal, so it can take over polling after a failure.
#[derive(Clone)]
pub struct CatalogSync {
    source: CatalogSource,
    writer: WriterHandle,
    view: watch::Sender<Arc<CatalogView>>,
    listen: SocketAddr,
    stamp: Option<Stamp>,
    /// The text last dealt with (applied, or rejected with an event), so one bad edit
    /// raises one event.
    last_text: String,
    /// A new text read once, applied when the next poll reads it unchanged: a file being
    /// written in place is not applied half-written. While one waits (or its apply
    /// failed), the file is read at every poll whatever its stamp says.
    candidate: Option<String>,
}

impl CatalogSync {
    /// Loads the catalog stored by the previous run, then applies the source. When the
    /// source is invalid, a stored catalog keeps running (and an event says why); with
    /// nothing stored, start-up fails with the problems.
    pub async fn start(
        source: CatalogSource,
        rows: CatalogRows,
        writer: WriterHandle,
        head: u64,
        listen: SocketAddr,
    ) -> Result<(CatalogSync, watch::Receiver<Arc<CatalogView>>), SyncError> {
        let stored = rows.load().await?;
        let has_stored = !stored.environments.is_empty() || !stored.projects.is_empty();
        let (view, receiver) = watch::channel(Arc::new(CatalogView::new(stored, head)));
        let mut sync = CatalogSync {
            stamp: stamp_of(&source),
            source,
            writer,
            view,
            listen,
            last_text: String::new(),
            candidate: None,
        };
        let text = sync.source.read(sync.listen);
        let parsed = text.and_then(|text| {
            let parsed = super::parse(&text, &sync.source.name());
            sync.last_text = text;
            parsed
        });
        match parsed {
            Ok(catalog) => sync.apply(catalog).await?,
            Err(err) if has_stored => {
                tracing::error!(catalog = %sync.source.name(), problems = %err, "invalid catalog; keeping the stored one");
                sync.raise_invalid(&err).await?;
            }
            Err(err) => return Err(SyncError::Invalid(err)),
        }
        Ok((sync, receiver))
    }

    /// Checks the file every `poll` and applies edits, until `shutdown`.
    pub async fn run(mut self, poll: Duration, shutdown: CancellationToken) {
        if matches!(self.source, CatalogSource::Embedded) {
            return;
        }
        let mut ticker = tokio::time::interval(poll);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = ticker.tick() => {}
            }
            let stamp = stamp_of(&self.source);
            if stamp == self.stamp && self.candidate.is_none() {
                continue;
            }
            self.stamp = stamp;
            if let Err(err) = self.reload().await {
                // The text stays the candidate, so the next poll tries it again.
                tracing::error!(error = %err, "catalog reload failed; retrying at the next poll");
            }
        }
    }

    async fn reload(&mut self) -> Result<(), SyncError> {
        let text = match self.source.read(self.listen) {
            Ok(text) => text,
            Err(err) => {
                tracing::error!(problems = %err, "cannot read the catalog; keeping the running one");
                return self.raise_invalid(&err).await;
            }
        };
        if text == self.last_text {
            self.candidate = None;
            return Ok(());
        }
        if self.candidate.as_deref() != Some(text.as_str()) {
            // Seen once: apply it only if the next poll reads the same text.
            self.candidate = Some(text);
            return Ok(());
        }
        let parsed = super::parse(&text, &self.source.name());
        match parsed {
            Ok(catalog) => self.apply(catalog).await?,
            Err(err) => {
                tracing::error!(problems = %err, "invalid catalog edit; keeping the running catalog");
                self.raise_invalid(&err).await?;
            }
        }
        // Recorded only once applied (or rejected with its event), so a failed apply is
        // tried again rather than forgotten.
        self.last_text = text;
        self.candidate = None;
        Ok(())
    }

    async fn raise_invalid(&self, err: &CatalogError) -> Result<(), SyncError> {
        let mut attributes = std::collections::BTreeMap::new();
        attributes.insert("source".to_owned(), self.source.name());
        attributes.insert("problems".to_owned(), err.problems.len().to_string());
        let event = Event {
            id: event_id("catalog-invalid"),
            kind: "catalog.invalid".to_owned(),
            severity: Severity::Error,
            message: format!("catalog edit rejected, the running catalog is kept:\n{err}"),
            source: "catalog".to_owned(),
            project_id: None,
            environment: None,
            attributes,
        };
        self.writer.append(vec![Change::append(event)]).await?;
        Ok(())
    }

    /// Journals the difference to the running catalog and rewrites the catalog tables, in
    /// one transaction.
    async fn apply(&mut self, catalog: Catalog) -> Result<(), SyncError> {
        let current = self.view.borrow().clone();
        let mut changes = diff(&current.catalog, &catalog);
        if changes.is_empty() {
            // Scrape targets, alert rules and webhooks are not journaled objects.
            if current.catalog.metrics != catalog.metrics {
                let revision = current.revision;
                self.view
                    .send_replace(Arc::new(CatalogView::new(catalog, revision)));
            }
            return Ok(());
        }
        let summary = format!("catalog applied: {} change(s)", changes.len());
        changes.push(Change::append(Event {
            id: event_id("catalog-applied"),
            kind: "catalog.applied".to_owned(),
            severity: Severity::Info,
            message: summary.clone(),
            source: "catalog".to_owned(),
            project_id: None,
            environment: None,
            attributes: [("source".to_owned(), self.source.name())]
                .into_iter()
                .collect(),
        }));
        let rows = catalog.clone();
        let revision = self
            .writer
            .append_with(
                changes,
                Box::new(move |txn| CatalogRows::write_in(txn, rows)),
            )
            .await?;
        tracing::info!(catalog = %self.source.name(), revision, "{summary}");
        self.view
            .send_replace(Arc::new(CatalogView::new(catalog, revision)));
        Ok(())
    }
}

fn stamp_of(source: &CatalogSource) -> Option<Stamp> {
    let CatalogSource::File(path) = source else {
        return None;
    };
    let metadata = std::fs::metadata(path).ok()?;
    Some(Stamp {
        modified: metadata.modified().ok(),
        len: metadata.len(),
    })
}

fn event_id(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static SEQUENCE: AtomicU64 = AtomicU64::new(0);
    format!(
        "{prefix}-{}-{}",
        pharos_store::journal::now_micros(),
        SEQUENCE.fetch_add(1, Ordering::Relaxed)
    )
}

/// The changes that turn `old` into `new`: upserts in catalog order (environments first),
/// then deletions in reverse dependency order (ports first).
pub fn diff(old: &Catalog, new: &Catalog) -> Vec<Change> {
    let old_objects = objects(old);
    let new_objects = objects(new);
    let old_by_key: HashMap<String, &Object> = old_objects.iter().map(|o| (o.key(), o)).collect();
    let new_keys: std::collections::HashSet<String> = new_objects.iter().map(Object::key).collect();
    let mut changes: Vec<Change> = new_objects
        .iter()
        .filter(|object| old_by_key.get(&object.key()) != Some(object))
        .map(|object| Change::upsert(object.clone()))
        .collect();
    changes.extend(
        old_objects
            .iter()
            .rev()
            .filter(|object| !new_keys.contains(&object.key()))
            .map(|object| Change::delete(object.clone())),
    );
    changes
}

fn objects(catalog: &Catalog) -> Vec<Object> {
    let environments = catalog
        .environments
        .iter()
        .cloned()
        .map(Object::Environment);
    let projects = catalog.projects.iter().cloned().map(Object::Project);
    let deployments = catalog.deployments.iter().cloned().map(Object::Deployment);
    let ports = catalog.ports.iter().cloned().map(Object::PortAllocation);
    environments
        .chain(projects)
        .chain(deployments)
        .chain(ports)
        .collect()
}

#[cfg(test)]
mod tests {
    use pharos_store::catalog::CatalogRows;
    use pharos_store::entities::deployment;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, TransactionTrait};

    use super::*;

    const EVERY_KIND: &str = r#"environments:
  - id: prod
projects:
  - id: shop
    deployments:
      - environment: prod
        checks:
          - name: web
            http:
              url: https://shop.example.com/healthz
              method: HEAD
              headers: { X-Probe: "1" }
              expect_status: [200, 204]
              body_contains: ok
              body_regex: '^ok'
              degraded_after: 800ms
              min_tls_days: 14
              json: { pointer: /status, equals: { up: [1, true, null] } }
          - name: plain
            http: { url: 'http://127.0.0.1:8000/health' }
            interval: 5s
            unhealthy_after: 2
            healthy_after: 4
          - name: port
            tcp: { address: "[::1]:22" }
          - name: rpc
            grpc: { address: orders.internal:50051, service: shop.Orders }
          - name: server
            grpc: { address: orders.internal:50051 }
          - name: db
            postgres: { dsn: "postgres://shop:pw@db.internal:5432/shop" }
          - name: cache
            redis: { url: "redis://:pw@cache.internal:6379/3" }
          - name: bus
            mqtt: { address: mqtt.internal:1883 }
          - name: cron
            heartbeat: { grace: 5m }
          - name: containers
            container: {}
"#;

    /// The `spec` column the version with untyped check settings wrote for `EVERY_KIND`.
    const ROW_BEFORE_TYPED_KINDS: &str = r#"{"project_id":"shop","environment":"prod","checks":[{"name":"web","kind":"http","target":"https://shop.example.com/healthz","interval":30000,"timeout":5000,"settings":{"body_contains":"ok","body_regex":"^ok","degraded_after":"800ms","expect_status":[200,204],"headers":{"X-Probe":"1"},"json":{"equals":{"up":[1,true,null]},"pointer":"/status"},"method":"HEAD","min_tls_days":14,"url":"https://shop.example.com/healthz"},"unhealthy_after":3,"healthy_after":1},{"name":"plain","kind":"http","target":"http://127.0.0.1:8000/health","interval":5000,"timeout":5000,"settings":{"url":"http://127.0.0.1:8000/health"},"unhealthy_after":2,"healthy_after":4},{"name":"port","kind":"tcp","target":"[::1]:22","interval":30000,"timeout":5000,"settings":{"address":"[::1]:22"},"unhealthy_after":3,"healthy_after":1},{"name":"rpc","kind":"grpc","target":"orders.internal:50051 (shop.Orders)","interval":30000,"timeout":5000,"settings":{"address":"orders.internal:50051","service":"shop.Orders"},"unhealthy_after":3,"healthy_after":1},{"name":"server","kind":"grpc","target":"orders.internal:50051","interval":30000,"timeout":5000,"settings":{"address":"orders.internal:50051","service":""},"unhealthy_after":3,"healthy_after":1},{"name":"db","kind":"postgres","target":"postgres://shop:***@db.internal:5432/shop","interval":30000,"timeout":5000,"settings":{"dsn":"postgres://shop:pw@db.internal:5432/shop"},"unhealthy_after":3,"healthy_after":1},{"name":"cache","kind":"redis","target":"redis://:***@cache.internal:6379/3","interval":30000,"timeout":5000,"settings":{"url":"redis://:pw@cache.internal:6379/3"},"unhealthy_after":3,"healthy_after":1},{"name":"bus","kind":"mqtt","target":"mqtt.internal:1883","interval":30000,"timeout":5000,"settings":{"address":"mqtt.internal:1883"},"unhealthy_after":3,"healthy_after":1},{"name":"cron","kind":"heartbeat","target":"heartbeat within 5m","interval":30000,"timeout":5000,"settings":{"grace":"5m"},"unhealthy_after":3,"healthy_after":1},{"name":"containers","kind":"container","target":"container state","interval":30000,"timeout":5000,"settings":{},"unhealthy_after":3,"healthy_after":1}],"container_selector":{},"container_template":null}"#;

    #[tokio::test]
    async fn a_catalog_stored_before_kinds_were_typed_loads_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let db = pharos_store::connect(&pharos_store::default_url(dir.path()))
            .await
            .unwrap();
        pharos_store::migrate(&db).await.unwrap();
        let catalog = super::super::parse(EVERY_KIND, "catalog.yaml").unwrap();
        let txn = db.begin().await.unwrap();
        CatalogRows::write_in(&txn, catalog.clone()).await.unwrap();
        txn.commit().await.unwrap();
        // The row as the version with untyped check settings wrote it.
        deployment::Entity::update_many()
            .col_expr(
                deployment::Column::Spec,
                sea_orm::sea_query::Expr::value(ROW_BEFORE_TYPED_KINDS),
            )
            .filter(deployment::Column::Id.eq("shop/prod"))
            .exec(&db)
            .await
            .unwrap();

        let stored = CatalogRows::new(db).load().await.unwrap();
        assert_eq!(stored.deployments, catalog.deployments);
        // The same catalog file applied at start journals nothing.
        assert!(diff(&stored, &catalog).is_empty());
    }
}
