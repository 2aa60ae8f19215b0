//! The plain-HTTP side of the port: `/healthz` and the landing page.

use std::path::{Path, PathBuf};

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use tokio_util::sync::CancellationToken;
use tower_http::services::ServeDir;

use pharos_supervisor::{TaskHealth, TaskStatus};

/// Adds the HTTP routes to the gRPC router: `/healthz` (see [`healthz`]) and the
/// dashboard from `web_root`, or a landing page when no dashboard is built.
pub fn routes(
    router: Router,
    shutting_down: CancellationToken,
    tasks: TaskHealth,
    web_root: Option<&Path>,
) -> Router {
    let router = router.route(
        "/healthz",
        get(move |headers: HeaderMap| {
            let response = healthz(&shutting_down, &tasks, &headers);
            async move { response }
        }),
    );
    match web_root {
        Some(root) => router.fallback_service(ServeDir::new(root)),
        None => router.route("/", get(landing)),
    }
}

/// 200 `ok` while every background task runs; 503 `degraded` and one line per task
/// that is restarting or failed; 503 `shutting down` once shutdown began. With
/// `Accept: application/json`, the same status and every task's state, restarts and
/// last failure as JSON, so a failure that a restart cured still shows.
fn healthz(shutting_down: &CancellationToken, tasks: &TaskHealth, headers: &HeaderMap) -> Response {
    let tasks = tasks.tasks();
    let down: Vec<&TaskStatus> = tasks.iter().filter(|task| task.is_down()).collect();
    let (code, status) = if shutting_down.is_cancelled() {
        (StatusCode::SERVICE_UNAVAILABLE, "shutting down")
    } else if !down.is_empty() {
        (StatusCode::SERVICE_UNAVAILABLE, "degraded")
    } else {
        (StatusCode::OK, "ok")
    };
    let wants_json = headers
        .get_all(http::header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .any(|value| value.contains("application/json"));
    if wants_json {
        let body = serde_json::json!({ "status": status, "tasks": tasks });
        return (
            code,
            [(http::header::CONTENT_TYPE, "application/json")],
            body.to_string(),
        )
            .into_response();
    }
    let mut text = format!("{status}\n");
    for task in down {
        text.push_str(&format!(
            "{}: {} (restarts: {}): {}\n",
            task.name,
            task.state,
            task.restarts,
            task.last_failure
                .as_deref()
                .unwrap_or("no failure recorded"),
        ));
    }
    (code, text).into_response()
}

/// The dashboard's files: `--web-root`, else `web-client/dist` under the working
/// directory or next to the source tree the binary was built in.
pub fn find_web_root(configured: Option<&Path>) -> Option<PathBuf> {
    if let Some(root) = configured {
        return Some(root.to_path_buf());
    }
    let mut candidates = vec![PathBuf::from("web-client/dist")];
    if let Ok(exe) = std::env::current_exe() {
        // target/<profile>/pharosd -> <workspace>/web-client/dist
        if let Some(workspace) = exe.parent().and_then(Path::parent).and_then(Path::parent) {
            candidates.push(workspace.join("web-client/dist"));
        }
    }
    candidates
        .into_iter()
        .find(|dir| dir.join("index.html").is_file())
}

/// CORS for grpc-web pages served from other origins; `None` (same origin only) when no
/// origin is allowed. Preflights are answered here; the gRPC status, message and the
/// watch trailers are exposed so a browser client can read them.
pub fn cors_layer(origins: &[http::HeaderValue]) -> Option<tower_http::cors::CorsLayer> {
    use http::header::HeaderName;
    use tower_http::cors::{AllowHeaders, AllowOrigin, CorsLayer};
    if origins.is_empty() {
        return None;
    }
    let exposed = [
        "grpc-status",
        "grpc-message",
        "grpc-status-details-bin",
        pharos_proto::RESUME_REVISION_TRAILER,
        pharos_proto::RESYNC_TRAILER,
    ];
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins.iter().cloned()))
            .allow_methods([http::Method::POST, http::Method::GET, http::Method::OPTIONS])
            .allow_headers(AllowHeaders::mirror_request())
            .expose_headers(exposed.map(HeaderName::from_static))
            .max_age(std::time::Duration::from_secs(24 * 60 * 60)),
    )
}

async fn landing() -> impl IntoResponse {
    Html(include_str!("landing.html"))
}

/// Sends grpc-web requests through the grpc-web translation and everything else (gRPC,
/// `/healthz`, the dashboard) straight on: the translation answers plain HTTP/1.1
/// requests with 400, which would hide every non-gRPC route.
#[derive(Clone, Default)]
pub struct GrpcWebOnlyLayer;

impl<S: Clone> tower::Layer<S> for GrpcWebOnlyLayer {
    type Service = GrpcWebOnly<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcWebOnly {
            web: tonic_web::GrpcWebLayer::new().layer(inner.clone()),
            plain: inner,
        }
    }
}

#[derive(Clone)]
pub struct GrpcWebOnly<S> {
    web: tonic_web::GrpcWebService<S>,
    plain: S,
}

fn is_grpc_web<B>(request: &http::Request<B>) -> bool {
    let content_type = |name| {
        request
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.starts_with("application/grpc-web"))
    };
    // CORS preflights of grpc-web calls name the content type they will send.
    content_type(http::header::CONTENT_TYPE)
        || (request.method() == http::Method::OPTIONS
            && request
                .headers()
                .get(http::header::ACCESS_CONTROL_REQUEST_HEADERS)
                .and_then(|value| value.to_str().ok())
                .is_some_and(|value| value.contains("x-grpc-web")))
}

impl<S> tower::Service<http::Request<tonic::body::Body>> for GrpcWebOnly<S>
where
    S: tower::Service<
            http::Request<tonic::body::Body>,
            Response = http::Response<tonic::body::Body>,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = futures::future::BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(
        &mut self,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        // Both paths are readied in `call`, on the clone that serves the request.
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        use tower::ServiceExt;
        if is_grpc_web(&request) {
            Box::pin(self.web.clone().oneshot(request))
        } else {
            Box::pin(self.plain.clone().oneshot(request))
        }
    }
}
