//! `pharos.v1.MetricsService`: range queries over the metric store, pushed samples, and
//! the scrape targets' status.

use std::sync::Arc;

use pharos_proto::v1 as pb;
use pharos_proto::v1::metrics_service_server::MetricsService;
use tonic::{Request, Response, Status, Streaming};

use super::convert;
use crate::metrics::scrape::TargetStatuses;
use crate::metrics::store::{Labels, MetricStore, SeriesSelector, Source, now_ms};

/// At most this many points per query, so one call cannot take the server's memory.
const MAX_POINTS: usize = 1_000_000;
pub const MAX_LABELS: usize = 32;
pub const MAX_LABEL_VALUE: usize = 1024;

pub struct MetricsApi {
    store: Arc<MetricStore>,
    targets: TargetStatuses,
    capacity: Option<crate::capacity::Latest>,
}

impl MetricsApi {
    pub fn new(store: Arc<MetricStore>, targets: TargetStatuses) -> MetricsApi {
        MetricsApi {
            store,
            targets,
            capacity: None,
        }
    }

    /// Serves GetCapacity from the sampler's latest snapshot.
    pub fn with_capacity(mut self, latest: crate::capacity::Latest) -> MetricsApi {
        self.capacity = Some(latest);
        self
    }
}

fn millis(timestamp: &prost_types::Timestamp) -> i64 {
    timestamp.seconds * 1000 + i64::from(timestamp.nanos) / 1_000_000
}

/// Whether `name` is a Prometheus-style metric (or label, without ':') name.
pub fn valid_name(name: &str, colon: bool) -> bool {
    let mut bytes = name.bytes();
    let ok = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || (colon && c == b':');
    matches!(bytes.next(), Some(c) if ok(c) && !c.is_ascii_digit())
        && bytes.all(ok)
        && name.len() <= 256
}

fn check_labels(labels: &std::collections::HashMap<String, String>) -> Result<(), String> {
    if labels.len() > MAX_LABELS {
        return Err(format!(
            "{} labels; at most {MAX_LABELS} are allowed",
            labels.len()
        ));
    }
    for (name, value) in labels {
        if !valid_name(name, false) {
            return Err(format!(
                "invalid label name {name:?}: use letters, digits and '_', not starting with a digit"
            ));
        }
        if value.len() > MAX_LABEL_VALUE {
            return Err(format!(
                "label {name:?} has a value of {} bytes; at most {MAX_LABEL_VALUE}",
                value.len()
            ));
        }
    }
    Ok(())
}

#[tonic::async_trait]
impl MetricsService for MetricsApi {
    async fn query_range(
        &self,
        request: Request<pb::QueryRangeRequest>,
    ) -> Result<Response<pb::QueryRangeResponse>, Status> {
        let request = request.into_inner();
        let selector = request.selector.unwrap_or_default();
        if !valid_name(&selector.name, true) {
            return Err(Status::invalid_argument(format!(
                "selector.name {:?} is not a series name (letters, digits, '_' and ':', not starting with a digit)",
                selector.name
            )));
        }
        let Some(start) = request.start.as_ref() else {
            return Err(Status::invalid_argument(
                "start is required (the beginning of the range)",
            ));
        };
        let start_ms = millis(start);
        let end_ms = request.end.as_ref().map(millis).unwrap_or_else(now_ms);
        if end_ms < start_ms {
            return Err(Status::invalid_argument(format!(
                "end ({end_ms} ms) is before start ({start_ms} ms)"
            )));
        }
        let step_ms = match &request.step {
            None => 0,
            Some(step) if step.seconds < 0 || step.nanos < 0 => {
                return Err(Status::invalid_argument("step must not be negative"));
            }
            Some(step) => step.seconds * 1000 + i64::from(step.nanos) / 1_000_000,
        };
        if step_ms > 0 && (end_ms - start_ms) / step_ms > MAX_POINTS as i64 {
            return Err(Status::invalid_argument(format!(
                "range / step gives more than {MAX_POINTS} points per series; use a larger step"
            )));
        }
        let selector = SeriesSelector {
            name: selector.name,
            labels: selector.labels.into_iter().collect(),
        };
        let series = self
            .store
            .query_range(&selector, start_ms, end_ms, step_ms)
            .await
            .map_err(|err| {
                Status::unavailable(format!("the metrics database did not answer: {err}"))
            })?;
        let total: usize = series.iter().map(|s| s.points.len()).sum();
        if total > MAX_POINTS {
            return Err(Status::resource_exhausted(format!(
                "{total} points match; narrow the selector or the range, or set a step (at most {MAX_POINTS})"
            )));
        }
        Ok(Response::new(pb::QueryRangeResponse {
            series: series
                .into_iter()
                .map(|series| pb::Series {
                    name: series.id.name,
                    labels: series.id.labels.into_iter().collect(),
                    points: series
                        .points
                        .into_iter()
                        .map(|p| pb::Point {
                            time_unix_ms: p.ms,
                            value: p.value,
                        })
                        .collect(),
                    source: match series.source {
                        Source::Memory => pb::SeriesSource::Memory,
                        Source::Rollups => pb::SeriesSource::Rollups,
                    } as i32,
                })
                .collect(),
        }))
    }

    async fn push_metrics(
        &self,
        request: Request<Streaming<pb::PushMetricsRequest>>,
    ) -> Result<Response<pb::PushMetricsResponse>, Status> {
        let mut stream = request.into_inner();
        let mut response = pb::PushMetricsResponse::default();
        let note = |response: &mut pb::PushMetricsResponse, reason: String| {
            if response.first_rejection.is_empty() {
                response.first_rejection = reason;
            }
        };
        while let Some(batch) = stream.message().await? {
            let now = now_ms();
            let mut valid: Vec<(String, Labels, i64, f64)> =
                Vec::with_capacity(batch.samples.len());
            for sample in batch.samples {
                if !valid_name(&sample.name, true) {
                    response.rejected_invalid += 1;
                    note(
                        &mut response,
                        format!(
                            "invalid series name {:?}: use letters, digits, '_' and ':', not starting with a digit",
                            sample.name
                        ),
                    );
                    continue;
                }
                if let Err(reason) = check_labels(&sample.labels) {
                    response.rejected_invalid += 1;
                    note(&mut response, format!("series {}: {reason}", sample.name));
                    continue;
                }
                if !sample.value.is_finite() {
                    response.rejected_non_finite += 1;
                    note(
                        &mut response,
                        format!(
                            "series {}: value {} is not finite",
                            sample.name, sample.value
                        ),
                    );
                    continue;
                }
                let at = if sample.time_unix_ms == 0 {
                    now
                } else {
                    sample.time_unix_ms
                };
                valid.push((
                    sample.name,
                    sample.labels.into_iter().collect(),
                    at,
                    sample.value,
                ));
            }
            let outcome = self.store.record(
                valid
                    .iter()
                    .map(|(name, labels, at, value)| (name.as_str(), labels, *at, *value)),
            );
            response.accepted += outcome.accepted;
            response.rejected_series_limit += outcome.over_series_limit;
            response.rejected_out_of_order += outcome.out_of_order;
            if outcome.over_series_limit > 0 {
                note(
                    &mut response,
                    format!(
                        "the server holds its limit of {} series; new series are refused",
                        self.store.config().max_series
                    ),
                );
            }
            if outcome.out_of_order > 0 {
                note(
                    &mut response,
                    "a sample was older than its series' latest, or than 15 minutes".to_owned(),
                );
            }
        }
        Ok(Response::new(response))
    }

    async fn get_capacity(
        &self,
        _request: Request<pb::GetCapacityRequest>,
    ) -> Result<Response<pb::GetCapacityResponse>, Status> {
        let snapshot = self
            .capacity
            .as_ref()
            .and_then(|latest| latest.borrow().clone())
            .ok_or_else(|| {
                Status::unavailable(
                    "no capacity sample yet; the first is taken at start, retry in a moment",
                )
            })?;
        Ok(Response::new(capacity_response(&snapshot)))
    }

    async fn list_scrape_targets(
        &self,
        _request: Request<pb::ListScrapeTargetsRequest>,
    ) -> Result<Response<pb::ListScrapeTargetsResponse>, Status> {
        let statuses = self
            .targets
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .values()
            .cloned()
            .collect::<Vec<_>>();
        Ok(Response::new(pb::ListScrapeTargetsResponse {
            targets: statuses
                .into_iter()
                .map(|s| pb::ScrapeTargetStatus {
                    name: s.name,
                    url: s.url,
                    project_id: s.project_id.unwrap_or_default(),
                    environment: s.environment.unwrap_or_default(),
                    last_scrape: s.last_scrape_ms.map(|ms| convert::timestamp(ms * 1000)),
                    last_duration: prost_types::Duration::try_from(s.last_duration).ok(),
                    samples: s.samples,
                    recorded: s.recorded,
                    last_error: s.last_error.unwrap_or_default(),
                    scrapes: s.scrapes,
                    failures: s.failures,
                    malformed_lines: s.problems.malformed_lines,
                    long_lines: s.problems.long_lines,
                    too_many_labels: s.problems.too_many_labels,
                    non_finite: s.problems.non_finite,
                    over_series_limit: s.problems.over_series_limit,
                    first_problem: s.problems.first.unwrap_or_default(),
                    rejected_series: s.rejected,
                })
                .collect(),
        }))
    }
}

fn capacity_response(s: &crate::capacity::Snapshot) -> pb::GetCapacityResponse {
    let (host, host_error) = match &s.host {
        Ok(h) => (
            Some(pb::HostCapacity {
                cpu_cores: h.cpu.cores,
                cpu_busy_ratio: h.cpu.busy_ratio,
                load1: h.cpu.load1,
                load5: h.cpu.load5,
                load15: h.cpu.load15,
                memory_total_bytes: h.memory.total_bytes,
                memory_available_bytes: h.memory.available_bytes,
            }),
            String::new(),
        ),
        Err(err) => (None, err.clone()),
    };
    pb::GetCapacityResponse {
        sample_time: Some(convert::timestamp(s.at_ms * 1000)),
        host,
        host_error,
        disks: s
            .disks
            .iter()
            .map(|d| {
                let path = d.path.display().to_string();
                match &d.usage {
                    Ok(u) => pb::DiskCapacity {
                        path,
                        total_bytes: u.total_bytes,
                        used_bytes: u.used_bytes,
                        available_bytes: u.available_bytes,
                        error: String::new(),
                    },
                    Err(err) => pb::DiskCapacity {
                        path,
                        error: err.clone(),
                        ..Default::default()
                    },
                }
            })
            .collect(),
        database: Some(match &s.database.size {
            Ok(size) => pb::DatabaseCapacity {
                backend: s.database.backend.to_owned(),
                size_bytes: *size,
                error: String::new(),
            },
            Err(err) => pb::DatabaseCapacity {
                backend: s.database.backend.to_owned(),
                size_bytes: 0,
                error: err.clone(),
            },
        }),
        postgres: s
            .postgres
            .iter()
            .map(|pg| match &pg.figures {
                Ok(f) => pb::PostgresCapacity {
                    check_id: pg.check_id.clone(),
                    dsn: pg.dsn.clone(),
                    size_bytes: f.size_bytes,
                    connections_used: f.connections_used,
                    connections_max: f.connections_max,
                    largest_tables: f
                        .largest_tables
                        .iter()
                        .map(|t| pb::TableSize {
                            name: t.name.clone(),
                            total_bytes: t.total_bytes,
                        })
                        .collect(),
                    error: String::new(),
                },
                Err(err) => pb::PostgresCapacity {
                    check_id: pg.check_id.clone(),
                    dsn: pg.dsn.clone(),
                    error: err.clone(),
                    ..Default::default()
                },
            })
            .collect(),
        services: s
            .services
            .iter()
            .map(|svc| pb::ServiceMemory {
                deployment_id: svc.deployment_id.clone(),
                service: svc.service.clone(),
                containers: svc.containers,
                memory_used_bytes: svc.memory_used_bytes,
                memory_limit_bytes: svc.memory_limit_bytes,
                cpu_percent: svc.cpu_percent,
            })
            .collect(),
    }
}
