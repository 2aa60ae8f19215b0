//! pharosd's own metrics: a tower layer that counts gRPC calls by method and status code
//! and times them, and `GET /metrics` in the Prometheus text format (RPC counts and
//! latencies, open calls, journal revision, Watch subscribers, checks by status, probe
//! latency, scrape targets, the metric store), so an existing Prometheus can scrape
//! Pharos.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

use axum::Router;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;

use pharos_collectors::health::engine::{ProbeStats, SharedHealth};
use pharos_collectors::metrics::scrape::TargetStatuses;
use pharos_collectors::metrics::store::MetricStore;
use pharos_hub::WatchHub;

/// Upper bounds (seconds) of the RPC latency histogram.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0, 30.0,
];

#[derive(Default)]
struct Latency {
    counts: [u64; BUCKETS.len() + 1],
    sum: f64,
}

#[derive(Default)]
struct Calls {
    /// (method, code) -> calls finished
    finished: BTreeMap<(String, String), u64>,
    /// method -> latency of finished calls
    latency: BTreeMap<String, Latency>,
    /// method -> calls in progress (open streams)
    open: BTreeMap<String, i64>,
}

/// Counters the RPC layer fills and `/metrics` reads.
#[derive(Clone, Default)]
pub struct RpcStats {
    calls: Arc<Mutex<Calls>>,
}

impl RpcStats {
    fn lock(&self) -> std::sync::MutexGuard<'_, Calls> {
        self.calls.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The method's label; past 256 distinct methods (unknown paths sent by a client),
    /// new ones are counted as "other" so the label set stays bounded.
    fn label_for(&self, path: &str) -> String {
        let calls = self.lock();
        if calls.open.len() < 256 || calls.open.contains_key(path) {
            path.to_owned()
        } else {
            "other".to_owned()
        }
    }

    fn opened(&self, method: &str) {
        *self.lock().open.entry(method.to_owned()).or_default() += 1;
    }

    fn finished(&self, method: &str, code: &str, seconds: f64) {
        let mut calls = self.lock();
        *calls.open.entry(method.to_owned()).or_default() -= 1;
        *calls
            .finished
            .entry((method.to_owned(), code.to_owned()))
            .or_default() += 1;
        let latency = calls.latency.entry(method.to_owned()).or_default();
        let bucket = BUCKETS
            .iter()
            .position(|&le| seconds <= le)
            .unwrap_or(BUCKETS.len());
        latency.counts[bucket] += 1;
        latency.sum += seconds;
    }
}

/// Counts and times every gRPC call (grpc-web calls too, after translation).
#[derive(Clone)]
pub struct RpcMetricsLayer {
    stats: RpcStats,
}

impl RpcMetricsLayer {
    pub fn new(stats: RpcStats) -> RpcMetricsLayer {
        RpcMetricsLayer { stats }
    }
}

impl<S> tower::Layer<S> for RpcMetricsLayer {
    type Service = RpcMetrics<S>;

    fn layer(&self, inner: S) -> RpcMetrics<S> {
        RpcMetrics {
            inner,
            stats: self.stats.clone(),
        }
    }
}

#[derive(Clone)]
pub struct RpcMetrics<S> {
    inner: S,
    stats: RpcStats,
}

/// The name of a `grpc-status` header's number, such as `NOT_FOUND`.
fn code_name(code: &str) -> &'static str {
    code.parse::<i32>().map_or("UNKNOWN", |code| {
        crate::api::code_name(tonic::Code::from_i32(code))
    })
}

/// Records a call once: at its status, or as CANCELLED when dropped before one.
struct CallGuard {
    stats: RpcStats,
    method: String,
    started: Instant,
    done: bool,
}

impl CallGuard {
    fn finish(&mut self, code: &str) {
        if !self.done {
            self.done = true;
            self.stats.finished(
                &self.method,
                code_name(code),
                self.started.elapsed().as_secs_f64(),
            );
        }
    }
}

impl Drop for CallGuard {
    fn drop(&mut self) {
        self.finish("1");
    }
}

/// The response body, watched for the `grpc-status` trailer.
struct ObservedBody {
    inner: tonic::body::Body,
    guard: CallGuard,
}

impl hyper::body::Body for ObservedBody {
    type Data = bytes::Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(trailers) = frame.trailers_ref() {
                    let code = trailers
                        .get("grpc-status")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("2");
                    this.guard.finish(code);
                }
            }
            Poll::Ready(None) => this.guard.finish("0"),
            Poll::Ready(Some(Err(_))) => this.guard.finish("13"),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

impl<S> tower::Service<http::Request<tonic::body::Body>> for RpcMetrics<S>
where
    S: tower::Service<
            http::Request<tonic::body::Body>,
            Response = http::Response<tonic::body::Body>,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Send,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = futures::future::BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        let is_grpc = request
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/grpc"));
        if !is_grpc {
            return Box::pin(self.inner.call(request));
        }
        let method = self.stats.label_for(request.uri().path());
        self.stats.opened(&method);
        let mut guard = CallGuard {
            stats: self.stats.clone(),
            method,
            started: Instant::now(),
            done: false,
        };
        let future = self.inner.call(request);
        Box::pin(async move {
            match future.await {
                Ok(response) => {
                    // A trailers-only response (an error) has its status in the headers.
                    if let Some(code) = response
                        .headers()
                        .get("grpc-status")
                        .and_then(|v| v.to_str().ok())
                    {
                        guard.finish(code);
                        return Ok(response);
                    }
                    Ok(response
                        .map(|body| tonic::body::Body::new(ObservedBody { inner: body, guard })))
                }
                Err(err) => {
                    guard.finish("13");
                    Err(err)
                }
            }
        })
    }
}

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

/// Whether `method` ("/package.Service/Method") streams in either direction, from the
/// descriptor set pharosd serves (its own services; reflection and health streams too).
fn is_streaming(method: &str) -> bool {
    static STREAMING: std::sync::OnceLock<std::collections::HashSet<String>> =
        std::sync::OnceLock::new();
    STREAMING
        .get_or_init(|| {
            let mut found: std::collections::HashSet<String> = [
                "/grpc.health.v1.Health/Watch",
                "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
                "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
            ]
            .into_iter()
            .map(str::to_owned)
            .collect();
            if let Ok(set) = <prost_types::FileDescriptorSet as prost::Message>::decode(
                pharos_proto::FILE_DESCRIPTOR_SET,
            ) {
                for file in set.file {
                    for service in &file.service {
                        for m in &service.method {
                            if m.client_streaming() || m.server_streaming() {
                                found.insert(format!(
                                    "/{}.{}/{}",
                                    file.package(),
                                    service.name(),
                                    m.name()
                                ));
                            }
                        }
                    }
                }
            }
            found
        })
        .contains(method)
}

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

#[cfg(test)]
mod streaming_tests {
    #[test]
    fn streams_are_told_from_unary_calls_by_the_descriptor_set() {
        assert!(super::is_streaming("/pharos.v1.WatchService/Watch"));
        assert!(super::is_streaming("/pharos.v1.ContainerService/TailLogs"));
        assert!(super::is_streaming("/pharos.v1.MetricsService/PushMetrics"));
        assert!(!super::is_streaming(
            "/pharos.v1.CatalogService/GetOverview"
        ));
        assert!(!super::is_streaming(
            "/pharos.v1.MetricsService/GetCapacity"
        ));
    }
}
