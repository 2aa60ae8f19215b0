//! `GET /metrics`: pharosd's own figures in the Prometheus text format.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Arc;

use axum::Router;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;

use pharos_collectors::health::engine::{ProbeStats, SharedHealth};
use pharos_collectors::metrics::scrape::TargetStatuses;
use pharos_collectors::metrics::store::MetricStore;
use pharos_hub::WatchHub;

use super::RpcStats;
use super::rpc::{BUCKETS, Latency, is_streaming};

/// The `/metrics` route.
#[derive(Clone)]
pub struct Telemetry {
    pub rpc: RpcStats,
    pub hub: Arc<WatchHub>,
    pub health: SharedHealth,
    pub probes: Arc<ProbeStats>,
    pub targets: TargetStatuses,
    pub store: Arc<MetricStore>,
}

impl Telemetry {
    pub fn route(self, router: Router) -> Router {
        router.route(
            "/metrics",
            get(move || {
                let telemetry = self.clone();
                async move {
                    (
                        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
                        telemetry.render(),
                    )
                        .into_response()
                }
            }),
        )
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(16 * 1024);
        {
            let calls = self.rpc.lock();
            family(
                &mut out,
                "pharos_rpc_requests_total",
                "counter",
                "gRPC calls finished, by method and status code.",
            );
            for ((method, code), count) in &calls.finished {
                let _ = writeln!(
                    out,
                    "pharos_rpc_requests_total{{method=\"{}\",code=\"{code}\"}} {count}",
                    escape(method)
                );
            }
            family(
                &mut out,
                "pharos_rpc_duration_seconds",
                "histogram",
                "gRPC call duration until the status (streams: their whole life), by method.",
            );
            for (method, latency) in &calls.latency {
                let method = escape(method);
                let mut cumulative = 0;
                for (i, le) in BUCKETS.iter().enumerate() {
                    cumulative += latency.counts[i];
                    let _ = writeln!(
                        out,
                        "pharos_rpc_duration_seconds_bucket{{method=\"{method}\",le=\"{le}\"}} {cumulative}"
                    );
                }
                cumulative += latency.counts[BUCKETS.len()];
                let _ = writeln!(
                    out,
                    "pharos_rpc_duration_seconds_bucket{{method=\"{method}\",le=\"+Inf\"}} {cumulative}\n\
                     pharos_rpc_duration_seconds_sum{{method=\"{method}\"}} {}\n\
                     pharos_rpc_duration_seconds_count{{method=\"{method}\"}} {cumulative}",
                    latency.sum
                );
            }
            // Every unary method together: the platform's RPC latency, without streams,
            // whose durations are their whole life.
            let mut unary = Latency::default();
            for (method, latency) in &calls.latency {
                if !is_streaming(method) {
                    for (total, count) in unary.counts.iter_mut().zip(&latency.counts) {
                        *total += count;
                    }
                    unary.sum += latency.sum;
                }
            }
            family(
                &mut out,
                "pharos_rpc_unary_duration_seconds",
                "histogram",
                "Duration of every unary gRPC call (streams left out), all methods together.",
            );
            let mut cumulative = 0;
            for (i, le) in BUCKETS.iter().enumerate() {
                cumulative += unary.counts[i];
                let _ = writeln!(
                    out,
                    "pharos_rpc_unary_duration_seconds_bucket{{le=\"{le}\"}} {cumulative}"
                );
            }
            cumulative += unary.counts[BUCKETS.len()];
            let _ = writeln!(
                out,
                "pharos_rpc_unary_duration_seconds_bucket{{le=\"+Inf\"}} {cumulative}\n\
                 pharos_rpc_unary_duration_seconds_sum {}\n\
                 pharos_rpc_unary_duration_seconds_count {cumulative}",
                unary.sum
            );
            family(
                &mut out,
                "pharos_rpc_open_calls",
                "gauge",
                "gRPC calls in progress (open streams included), by method.",
            );
            for (method, open) in &calls.open {
                let _ = writeln!(
                    out,
                    "pharos_rpc_open_calls{{method=\"{}\"}} {open}",
                    escape(method)
                );
            }
        }
        let hub = self.hub.stats();
        family(
            &mut out,
            "pharos_journal_revision",
            "gauge",
            "The journal's head revision.",
        );
        let _ = writeln!(out, "pharos_journal_revision {}", hub.head);
        family(
            &mut out,
            "pharos_watch_subscribers",
            "gauge",
            "Open Watch streams.",
        );
        let _ = writeln!(out, "pharos_watch_subscribers {}", hub.subscribers);
        family(
            &mut out,
            "pharos_watch_lagged_total",
            "counter",
            "Watch streams ended with RESOURCE_EXHAUSTED because their subscriber fell behind the journal.",
        );
        let _ = writeln!(out, "pharos_watch_lagged_total {}", hub.lagged);

        let mut by_status: BTreeMap<&'static str, u64> =
            ["healthy", "degraded", "unhealthy", "unknown"]
                .into_iter()
                .map(|s| (s, 0))
                .collect();
        let mut latencies = Vec::new();
        {
            let health = self.health.read().unwrap_or_else(|p| p.into_inner());
            for (id, check) in &health.checks {
                *by_status.entry(check.status.as_str()).or_default() += 1;
                if let Some(result) = &check.last_result {
                    latencies.push((id.clone(), result.total_micros as f64 / 1e6));
                }
            }
        }
        family(
            &mut out,
            "pharos_checks",
            "gauge",
            "Health checks by status.",
        );
        for (status, count) in by_status {
            let _ = writeln!(out, "pharos_checks{{status=\"{status}\"}} {count}");
        }
        family(
            &mut out,
            "pharos_probe_duration_seconds",
            "gauge",
            "Duration of each check's latest probe.",
        );
        for (id, seconds) in latencies {
            let _ = writeln!(
                out,
                "pharos_probe_duration_seconds{{check=\"{}\"}} {seconds}",
                escape(&id)
            );
        }
        family(
            &mut out,
            "pharos_probes_total",
            "counter",
            "Probes run by the health engine.",
        );
        let _ = writeln!(
            out,
            "pharos_probes_total {}",
            self.probes
                .probes
                .load(std::sync::atomic::Ordering::Relaxed)
        );

        let targets: Vec<_> = self
            .targets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        for (name, kind, help) in [
            ("pharos_scrapes_total", "counter", "Scrapes of each target."),
            (
                "pharos_scrape_errors_total",
                "counter",
                "Failed scrapes of each target.",
            ),
            (
                "pharos_scrape_refused_lines",
                "gauge",
                "Exposition lines the last scrape of each target refused.",
            ),
            (
                "pharos_scrape_samples",
                "gauge",
                "Samples in the last scrape of each target.",
            ),
            (
                "pharos_scrape_samples_total",
                "counter",
                "Samples parsed over all scrapes of each target.",
            ),
        ] {
            family(&mut out, name, kind, help);
            for target in &targets {
                let value = match name {
                    "pharos_scrapes_total" => target.scrapes,
                    "pharos_scrape_errors_total" => target.failures,
                    "pharos_scrape_refused_lines" => target.problems.total(),
                    "pharos_scrape_samples_total" => target.samples_total,
                    _ => target.samples,
                };
                let _ = writeln!(out, "{name}{{target=\"{}\"}} {value}", escape(&target.name));
            }
        }
        family(
            &mut out,
            "pharos_metric_series",
            "gauge",
            "Series held in memory.",
        );
        let _ = writeln!(out, "pharos_metric_series {}", self.store.series_count());
        for (name, value, help) in [
            (
                "pharos_metric_samples_accepted_total",
                &self.store.stats.accepted,
                "Samples stored (scraped and pushed).",
            ),
            (
                "pharos_metric_samples_rejected_total",
                &self.store.stats.rejected,
                "Samples refused by the store (series limit, non-finite, out of order).",
            ),
        ] {
            family(&mut out, name, "counter", help);
            let _ = writeln!(
                out,
                "{name} {}",
                value.load(std::sync::atomic::Ordering::Relaxed)
            );
        }
        out
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
