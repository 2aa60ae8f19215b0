//! Metrics: the exposition parser, scraping, pushed samples, recent samples in memory
//! and one-minute rollups in the database. See `docs/architecture.md`, "Metrics".

pub mod catalog;
pub mod derive;
pub mod exposition;
pub use pharos_probes::http_client as http;
pub mod kpi;
pub mod scrape;
pub mod series;
pub mod store;

/// Keeps one task per item of the catalog (scrape targets, KPIs) running until
/// `shutdown`: an item whose definition changes is stopped and started again, a removed
/// one is stopped and `removed` is told its key.
pub async fn supervise<T, F>(
    mut view: tokio::sync::watch::Receiver<std::sync::Arc<crate::catalog::CatalogView>>,
    items: impl Fn(&crate::catalog::CatalogView) -> Vec<T>,
    key: impl Fn(&T) -> String,
    mut start: impl FnMut(T, tokio_util::sync::CancellationToken) -> F,
    mut removed: impl FnMut(&str),
    shutdown: tokio_util::sync::CancellationToken,
) where
    T: Clone + PartialEq,
    F: std::future::Future<Output = ()> + Send + 'static,
{
    use std::collections::HashMap;
    type Running<T> = HashMap<
        String,
        (
            T,
            tokio_util::sync::CancellationToken,
            tokio::task::JoinHandle<()>,
        ),
    >;
    let mut running: Running<T> = HashMap::new();
    loop {
        let wanted: HashMap<String, T> = items(&view.borrow_and_update())
            .into_iter()
            .map(|item| (key(&item), item))
            .collect();
        let stale: Vec<String> = running
            .iter()
            .filter(|(name, (item, _, _))| wanted.get(name.as_str()) != Some(item))
            .map(|(name, _)| name.clone())
            .collect();
        for name in stale {
            if let Some((_, stop, task)) = running.remove(&name) {
                stop.cancel();
                let _ = task.await;
            }
            if !wanted.contains_key(&name) {
                removed(&name);
            }
        }
        for (name, item) in wanted {
            if running.contains_key(&name) {
                continue;
            }
            let stop = shutdown.child_token();
            // Under the supervising task's span, named by the item's key.
            let span = tracing::info_span!("item", key = %name);
            let task = tokio::spawn(tracing::Instrument::instrument(
                start(item.clone(), stop.clone()),
                span,
            ));
            running.insert(name, (item, stop, task));
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            changed = view.changed() => if changed.is_err() { break },
        }
    }
    for (_, (_, stop, task)) in running {
        stop.cancel();
        let _ = task.await;
    }
}

/// A unique event id: `<kind>-<micros>-<sequence>`.
pub fn event_id(kind: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static SEQUENCE: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}-{}",
        kind.replace('.', "-"),
        pharos_store::journal::now_micros(),
        SEQUENCE.fetch_add(1, Ordering::Relaxed)
    )
}

/// Writes closed minutes every 5 s and applies the retention every 10 minutes, until
/// `shutdown`; then writes every open minute.
pub async fn flush_periodically(
    store: std::sync::Arc<store::MetricStore>,
    shutdown: tokio_util::sync::CancellationToken,
) {
    let mut flush = tokio::time::interval(std::time::Duration::from_secs(5));
    let mut retention = tokio::time::interval(std::time::Duration::from_secs(600));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = flush.tick() => {
                if let Err(err) = store.flush(false).await {
                    tracing::warn!(error = %err, "writing metric rollups failed; retrying");
                }
            }
            _ = retention.tick() => {
                if let Err(err) = store.apply_retention().await {
                    tracing::warn!(error = %err, "applying metric retention failed");
                }
            }
        }
    }
    if let Err(err) = store.flush(true).await {
        tracing::warn!(error = %err, "writing the open metric rollups at shutdown failed");
    }
}
pub mod aggregates;
pub mod alerts;
pub mod anomaly;
pub mod prometheus;
