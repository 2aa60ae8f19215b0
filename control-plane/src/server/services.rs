//! The gRPC side of the port: grpc.health.v1, reflection (v1 and v1alpha) and every
//! pharos.v1 service, each reported in grpc.health.v1 as it is added.

use pharos_proto::v1::action_service_server::ActionServiceServer;
use pharos_proto::v1::catalog_service_server::CatalogServiceServer;
use pharos_proto::v1::container_service_server::ContainerServiceServer;
use pharos_proto::v1::event_service_server::EventServiceServer;
use pharos_proto::v1::export_service_server::ExportServiceServer;
use pharos_proto::v1::health_service_server::HealthServiceServer;
use pharos_proto::v1::metrics_service_server::MetricsServiceServer;
use pharos_proto::v1::session_service_server::SessionServiceServer;
use pharos_proto::v1::watch_service_server::WatchServiceServer;
use std::sync::Arc;
use std::time::Duration;

use crate::tls::TlsAcceptor;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;
use tonic_health::pb::health_server::{Health, HealthServer};
use tonic_health::server::HealthReporter;
use tower::ServiceBuilder;

use crate::api::{
    ActionApi, CatalogApi, ContainerApi, EventsApi, ExportApi, HealthApi, MetricsApi, SessionApi,
    WatchApi,
};
use crate::auth::{AccessPolicy, AuthLayer};
use crate::operations::AuditLog;
use crate::supervisor::{TaskHealth, TaskSupervisor};
use crate::telemetry::{RpcMetricsLayer, RpcStats};
use crate::web;

/// The pharos.v1 services, built from the collectors, the hub and the store.
pub(super) struct PharosApis {
    pub catalog: CatalogApi,
    pub health: HealthApi,
    pub containers: ContainerApi,
    pub actions: ActionApi,
    pub export: ExportApi,
    pub events: EventsApi,
    pub metrics: MetricsApi,
    pub watch: WatchApi,
}

/// Every gRPC route of the port. Each pharos service is added through
/// `serve_and_report`, so grpc.health.v1 knows every one the port serves.
pub(super) async fn grpc_routes(
    apis: PharosApis,
    health: &HealthReporter,
    health_service: HealthServer<impl Health>,
) -> anyhow::Result<Routes> {
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pharos_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pharos_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;
    let routes = Routes::new(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha);
    let routes = serve_and_report(routes, health, CatalogServiceServer::new(apis.catalog)).await;
    let routes = serve_and_report(routes, health, HealthServiceServer::new(apis.health)).await;
    let routes =
        serve_and_report(routes, health, ContainerServiceServer::new(apis.containers)).await;
    let routes = serve_and_report(routes, health, ActionServiceServer::new(apis.actions)).await;
    let routes = serve_and_report(routes, health, ExportServiceServer::new(apis.export)).await;
    let routes = serve_and_report(routes, health, EventServiceServer::new(apis.events)).await;
    let routes = serve_and_report(routes, health, MetricsServiceServer::new(apis.metrics)).await;
    let routes = serve_and_report(routes, health, SessionServiceServer::new(SessionApi)).await;
    let routes = serve_and_report(routes, health, WatchServiceServer::new(apis.watch)).await;
    Ok(routes)
}

/// What every request passes through before a service sees it.
pub(super) struct Front<'a> {
    pub cors_origins: &'a [http::HeaderValue],
    pub rpc_stats: RpcStats,
    pub policy: AccessPolicy,
    pub audit: AuditLog,
}

/// Serves `routes` on `listener` (TLS with an acceptor) as the `serve` task, which stops
/// pharosd if it fails; returns the token that stops it.
pub(super) fn serve(
    supervisor: &mut TaskSupervisor,
    front: Front<'_>,
    routes: Routes,
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
) -> CancellationToken {
    let serving = CancellationToken::new();
    // CORS answers browsers' preflight requests before access control sees them.
    let layers = ServiceBuilder::new()
        .option_layer(web::cors_layer(front.cors_origins))
        .layer(web::GrpcWebOnlyLayer)
        .layer(RpcMetricsLayer::new(front.rpc_stats))
        .layer(AuthLayer::new(Arc::new(front.policy)).with_audit(front.audit))
        .into_inner();
    let router = tonic::transport::Server::builder()
        .accept_http1(true)
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(Duration::from_secs(10)))
        .max_concurrent_streams(Some(20_000))
        .layer(layers)
        .add_routes(routes);
    match tls {
        Some(acceptor) => {
            let incoming = crate::tls::incoming(listener, acceptor, serving.clone());
            supervisor.stop_pharosd_on_failure("serve", &serving, |stop| {
                router.serve_with_incoming_shutdown(incoming, stop.cancelled_owned())
            });
        }
        None => {
            let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
            supervisor.stop_pharosd_on_failure("serve", &serving, |stop| {
                router.serve_with_incoming_shutdown(incoming, stop.cancelled_owned())
            });
        }
    }
    serving
}

/// Adds `service` to `routes` and reports it SERVING in grpc.health.v1.
async fn serve_and_report<S>(routes: Routes, health: &HealthReporter, service: S) -> Routes
where
    S: tower::Service<http::Request<tonic::body::Body>, Error = std::convert::Infallible>
        + tonic::server::NamedService
        + Clone
        + Send
        + Sync
        + 'static,
    S::Response: axum::response::IntoResponse,
    S::Future: Send + 'static,
{
    health.set_serving::<S>().await;
    routes.add_service(service)
}

/// Keeps the whole server's status ("") in grpc.health.v1 NOT_SERVING while any task is
/// restarting or failed, and SERVING otherwise.
pub(super) async fn report_task_health(
    tasks: TaskHealth,
    health: HealthReporter,
    stop: CancellationToken,
) {
    let mut changes = tasks.subscribe();
    let mut reported = None;
    loop {
        let healthy = !changes
            .borrow_and_update()
            .values()
            .any(|task| task.is_down());
        // Watchers of grpc.health.v1 are told of every set, changed or not.
        if reported != Some(healthy) {
            let status = if healthy {
                ServingStatus::Serving
            } else {
                ServingStatus::NotServing
            };
            health.set_service_status("", status).await;
            reported = Some(healthy);
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            changed = changes.changed() => if changed.is_err() { return },
        }
    }
}
