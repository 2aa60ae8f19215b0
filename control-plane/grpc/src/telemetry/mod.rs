//! pharosd's own metrics: a tower layer that counts gRPC calls by method and status code
//! and times them, and `GET /metrics` in the Prometheus text format (RPC counts and
//! latencies, open calls, journal revision, Watch subscribers, checks by status, probe
//! latency, scrape targets, the metric store), so an existing Prometheus can scrape
//! Pharos.

mod exposition;
mod own_series;
mod rpc;

pub use exposition::Telemetry;
pub use own_series::record_periodically;
pub use rpc::{RpcMetrics, RpcMetricsLayer, RpcStats};
