//! Counting and timing every gRPC call: a tower layer that records each call once, at
//! its status (or as CANCELLED when dropped before one), with unary latencies in a
//! histogram and open calls per method.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

use axum::http::header::CONTENT_TYPE;

/// Upper bounds (seconds) of the RPC latency histogram.
pub(super) const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0, 30.0,
];

#[derive(Default)]
pub(super) struct Latency {
    pub(super) counts: [u64; BUCKETS.len() + 1],
    pub(super) sum: f64,
}

#[derive(Default)]
pub(super) struct Calls {
    /// (method, code) -> calls finished
    pub(super) finished: BTreeMap<(String, String), u64>,
    /// method -> latency of finished calls
    pub(super) latency: BTreeMap<String, Latency>,
    /// method -> calls in progress (open streams)
    pub(super) open: BTreeMap<String, i64>,
}

/// Counters the RPC layer fills and `/metrics` reads.
#[derive(Clone, Default)]
pub struct RpcStats {
    calls: Arc<Mutex<Calls>>,
}

impl RpcStats {
    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, Calls> {
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

/// Whether `method` ("/package.Service/Method") streams in either direction, from the
/// descriptor set pharosd serves (its own services; reflection and health streams too).
pub(super) fn is_streaming(method: &str) -> bool {
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
