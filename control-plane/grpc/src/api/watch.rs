//! `pharos.v1.WatchService`: the watch contract over gRPC.

use std::collections::BTreeSet;
use std::pin::Pin;
use std::sync::Arc;

use futures::{Stream, StreamExt};
use pharos_proto::v1 as pb;
use pharos_proto::v1::watch_service_server::WatchService;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use super::convert;
use super::error::ApiError;
use pharos_hub::{Selector, WatchHub, WatchItem, WatchOptions, open_watch};
use pharos_store::journal::{JournalStore, Topic};

pub struct WatchApi {
    hub: Arc<WatchHub>,
    store: JournalStore,
    options: WatchOptions,
    shutdown: CancellationToken,
    metrics: Option<Arc<pharos_collectors::metrics::store::MetricStore>>,
}

impl WatchApi {
    pub fn new(
        hub: Arc<WatchHub>,
        store: JournalStore,
        options: WatchOptions,
        shutdown: CancellationToken,
    ) -> WatchApi {
        WatchApi {
            hub,
            store,
            options,
            shutdown,
            metrics: None,
        }
    }

    /// Serves the metrics topic from `store` (see `super::live_metrics`).
    pub fn with_metrics(
        mut self,
        store: Arc<pharos_collectors::metrics::store::MetricStore>,
    ) -> WatchApi {
        self.metrics = Some(store);
        self
    }
}

fn selector(request: &pb::WatchRequest) -> Result<Selector, ApiError> {
    let mut topics = BTreeSet::new();
    for &value in &request.topics {
        let topic = convert::topic_from_proto(value).ok_or_else(|| {
            ApiError::InvalidArgument(format!(
                "unknown topic {value}; known topics: {}",
                Topic::ALL
                    .map(|t| format!(
                        "{} ({})",
                        convert::topic(t).as_str_name(),
                        convert::topic(t) as i32
                    ))
                    .join(", ")
            ))
        })?;
        topics.insert(topic);
    }
    if topics.is_empty() {
        topics = Topic::ALL.into_iter().collect();
    }
    let mut health_statuses = BTreeSet::new();
    for &value in &request.health_statuses {
        let status = convert::health_status_from_proto(value)
            .ok_or_else(|| ApiError::InvalidArgument(format!("unknown health status {value}")))?;
        health_statuses.insert(status);
    }
    Ok(Selector {
        topics,
        projects: request.projects.iter().cloned().collect(),
        environments: request.environments.iter().cloned().collect(),
        health_statuses,
    })
}

fn response(item: WatchItem) -> pb::WatchResponse {
    use pb::watch_response::Message;
    let message = match item {
        WatchItem::Snapshot(entry) => Message::Change(convert::change(&entry, true)),
        WatchItem::Change(entry) => Message::Change(convert::change(&entry, false)),
        WatchItem::SnapshotComplete(revision) => {
            Message::SnapshotComplete(pb::SnapshotComplete { revision })
        }
        WatchItem::Progress(revision) => Message::Progress(pb::Progress { revision }),
    };
    pb::WatchResponse {
        message: Some(message),
    }
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<pb::WatchResponse, Status>> + Send>>;

#[tonic::async_trait]
impl WatchService for WatchApi {
    type WatchStream = WatchStream;

    async fn watch(
        &self,
        request: Request<pb::WatchRequest>,
    ) -> Result<Response<WatchStream>, Status> {
        let request = request.into_inner();
        let selector = selector(&request)?;
        let metric_selectors = super::live_metrics::selectors(&request, &selector.topics)?;
        let stream = open_watch(
            &self.hub,
            self.store.clone(),
            selector,
            request.since_revision,
            self.options,
            self.shutdown.clone(),
        )
        .map_err(ApiError::from)?;
        let stream = stream.map(|item| {
            item.map(response)
                .map_err(|end| Status::from(ApiError::from(end)))
        });
        match (&self.metrics, metric_selectors.is_empty()) {
            (Some(store), false) => Ok(Response::new(Box::pin(super::live_metrics::merge(
                stream,
                store.clone(),
                metric_selectors,
            )))),
            _ => Ok(Response::new(Box::pin(stream))),
        }
    }
}
