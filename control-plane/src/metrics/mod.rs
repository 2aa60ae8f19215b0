//! Metrics: the exposition parser, scraping, pushed samples, recent samples in memory
//! and one-minute rollups in the database. See `docs/architecture.md`, "Metrics".

pub mod catalog;
pub mod derive;
pub mod exposition;
pub mod http;
pub mod scrape;
pub mod store;

/// A unique event id: `<kind>-<micros>-<sequence>`.
pub fn event_id(kind: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static SEQUENCE: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}-{}",
        kind.replace('.', "-"),
        crate::journal::now_micros(),
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
pub mod alerts;
