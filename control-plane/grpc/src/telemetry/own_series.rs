//! pharosd's own figures as series in its metric store, like any scraped target.

use super::Telemetry;

/// Feeds pharosd's own figures (the `/metrics` text) through the scrape pipeline into
/// the metric store every `interval`, as target "pharosd": RPC throughput
/// (`pharos_rpc_requests_total:rate`), latency percentiles
/// (`pharos_rpc_unary_duration_seconds:p50/p95/p99`) and the rest, for QueryRange, the
/// Watch metrics topic and GetSystemMetrics.
pub async fn record_periodically(
    telemetry: Telemetry,
    interval: std::time::Duration,
    stop: tokio_util::sync::CancellationToken,
) {
    let limits = pharos_collectors::metrics::exposition::Limits::default();
    let labels: pharos_collectors::metrics::store::Labels =
        [("target".to_owned(), "pharosd".to_owned())].into();
    let mut deriver = pharos_collectors::metrics::derive::Deriver::default();
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let at_ms = pharos_collectors::metrics::store::now_ms();
        let parsed = pharos_collectors::metrics::exposition::parse(&telemetry.render(), &limits);
        let values = deriver.derive(&parsed, at_ms, &labels);
        telemetry.store.record(
            values
                .iter()
                .map(|(id, value)| (id.name.as_str(), &id.labels, at_ms, *value)),
        );
    }
}
