//! The metrics topic of a Watch stream: every second, the points of the selected series
//! that arrived since the previous batch, merged into the journal stream. Batches carry
//! no revision and are never journaled; the stream ends when its journal part ends.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use pharos_proto::v1 as pb;
use tonic::Status;

use super::error::ApiError;
use pharos_collectors::metrics::store::{MetricStore, SeriesSelector, now_ms};
use pharos_core::domain::valid_metric_name;
use pharos_store::journal::Topic;

pub const MAX_SELECTORS: usize = 64;
pub const MAX_POINTS_PER_BATCH: usize = 50_000;
const BATCH_INTERVAL: Duration = Duration::from_secs(1);

/// The request's series selectors, checked against its topics.
pub fn selectors(
    request: &pb::WatchRequest,
    topics: &BTreeSet<Topic>,
) -> Result<Vec<SeriesSelector>, ApiError> {
    let explicit = request.topics.contains(&(pb::WatchTopic::Metrics as i32));
    if request.metric_selectors.is_empty() {
        if explicit {
            return Err(ApiError::InvalidArgument(
                "WATCH_TOPIC_METRICS needs metric_selectors: name the series to stream".to_owned(),
            ));
        }
        return Ok(Vec::new());
    }
    if !topics.contains(&Topic::Metrics) {
        return Err(ApiError::InvalidArgument(
            "metric_selectors need WATCH_TOPIC_METRICS in topics (or no topics for all)".to_owned(),
        ));
    }
    if request.metric_selectors.len() > MAX_SELECTORS {
        return Err(ApiError::InvalidArgument(format!(
            "{} metric_selectors; at most {MAX_SELECTORS}",
            request.metric_selectors.len()
        )));
    }
    request
        .metric_selectors
        .iter()
        .enumerate()
        .map(|(i, selector)| {
            if !valid_metric_name(&selector.name, true) {
                return Err(ApiError::InvalidArgument(format!(
                    "metric_selectors[{i}].name {:?} is not a series name",
                    selector.name
                )));
            }
            Ok(SeriesSelector {
                name: selector.name.clone(),
                labels: selector
                    .labels
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            })
        })
        .collect()
}

/// `journal` with metrics batches interleaved; ends when `journal` ends or fails.
pub fn merge(
    journal: impl Stream<Item = Result<pb::WatchResponse, Status>> + Send + 'static,
    store: Arc<MetricStore>,
    selectors: Vec<SeriesSelector>,
) -> impl Stream<Item = Result<pb::WatchResponse, Status>> + Send + 'static {
    // Taken when the call is answered, so points pushed after that are never missed.
    let since = now_ms();
    async_stream::stream! {
        let mut journal = std::pin::pin!(journal);
        let mut ticker = tokio::time::interval(BATCH_INTERVAL);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await;
        let mut cursors = HashMap::new();
        loop {
            tokio::select! {
                item = journal.next() => match item {
                    Some(item) => {
                        let failed = item.is_err();
                        yield item;
                        if failed {
                            break;
                        }
                    }
                    None => break,
                },
                _ = ticker.tick() => {
                    let mut budget = MAX_POINTS_PER_BATCH;
                    let mut series = Vec::new();
                    for selector in &selectors {
                        for (id, points) in store.points_after(selector, &mut cursors, since, &mut budget) {
                            series.push(pb::Series {
                                name: id.name,
                                labels: id.labels.into_iter().collect(),
                                points: points
                                    .into_iter()
                                    .map(|p| pb::Point { time_unix_ms: p.ms, value: p.value })
                                    .collect(),
                                source: pb::SeriesSource::Memory as i32,
                            });
                        }
                    }
                    if !series.is_empty() {
                        yield Ok(pb::WatchResponse {
                            message: Some(pb::watch_response::Message::Metrics(pb::MetricsBatch {
                                series,
                                time: Some(super::convert::timestamp(now_ms() * 1000)),
                                truncated: budget == 0,
                            })),
                        });
                    }
                }
            }
        }
    }
}
