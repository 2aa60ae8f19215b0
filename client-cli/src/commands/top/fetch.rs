//! The throughput and capacity panels' figures: which series make them stale, and the
//! background fetch of `GetSystemMetrics` and `GetCapacity` that refreshes them.

use pharos_proto::v1 as pb;

use crate::client::Client;

/// The service whose presence turns the throughput and capacity panels on.
pub(super) const METRICS_SERVICE: &str = "pharos.v1.MetricsService";

/// The series whose new points refetch the panels (recorded by pharosd itself).
pub(super) fn metric_selectors() -> Vec<pb::SeriesSelector> {
    vec![
        pb::SeriesSelector {
            name: "pharos_rpc_unary_duration_seconds:p95".to_owned(),
            labels: [("target".to_owned(), "pharosd".to_owned())].into(),
        },
        pb::SeriesSelector {
            name: "pharos_host_memory_available_bytes".to_owned(),
            labels: Default::default(),
        },
    ]
}

/// The panels' figures, fetched in the background.
pub(super) enum Fetched {
    System(Result<Box<pb::GetSystemMetricsResponse>, String>),
    Capacity(Result<Box<pb::GetCapacityResponse>, String>),
}

pub(super) fn fetch(client: &Client, sender: &tokio::sync::mpsc::Sender<Fetched>) {
    let (client, sender) = (client.clone(), sender.clone());
    tokio::spawn(async move {
        let mut metrics = match client.metrics().await {
            Ok(metrics) => metrics,
            Err(err) => {
                let _ = sender.send(Fetched::System(Err(err.to_string()))).await;
                return;
            }
        };
        let system = metrics
            .get_system_metrics(pb::GetSystemMetricsRequest::default())
            .await
            .map(|r| Box::new(r.into_inner()))
            .map_err(|s| s.message().to_owned());
        let _ = sender.send(Fetched::System(system)).await;
        let capacity = metrics
            .get_capacity(pb::GetCapacityRequest {})
            .await
            .map(|r| Box::new(r.into_inner()))
            .map_err(|s| s.message().to_owned());
        let _ = sender.send(Fetched::Capacity(capacity)).await;
    });
}
