//! `pharos.v1.MetricsService`: range queries over the metric store, pushed samples, and
//! the scrape targets' status.

use pharos_core::domain::valid_metric_name;
use std::sync::Arc;

use pharos_proto::v1 as pb;
use pharos_proto::v1::metrics_service_server::MetricsService;
use tonic::{Request, Response, Status, Streaming};

use super::convert;
use super::error::ApiError;
use pharos_collectors::metrics::aggregates::Aggregates;
use pharos_collectors::metrics::scrape::TargetStatuses;
use pharos_collectors::metrics::store::{Labels, MetricStore, SeriesSelector, Source, now_ms};

/// At most this many points per query, so one call cannot take the server's memory.
const MAX_POINTS: usize = 1_000_000;
pub const MAX_LABELS: usize = 32;
pub const MAX_LABEL_VALUE: usize = 1024;

pub struct MetricsApi {
    store: Arc<MetricStore>,
    targets: TargetStatuses,
    capacity: Option<pharos_collectors::capacity::Latest>,
    aggregates: Option<Aggregates>,
}

impl MetricsApi {
    pub fn new(store: Arc<MetricStore>, targets: TargetStatuses) -> MetricsApi {
        MetricsApi {
            store,
            targets,
            capacity: None,
            aggregates: None,
        }
    }

    /// Serves GetAggregates, and QueryRange from the catalog's Prometheus backends.
    pub fn with_aggregates(mut self, aggregates: Aggregates) -> MetricsApi {
        self.aggregates = Some(aggregates);
        self
    }

    /// The Prometheus backend that claims series `name`, if any.
    fn backend_for(&self, name: &str) -> Option<pharos_core::domain::PrometheusBackend> {
        let aggregates = self.aggregates.as_ref()?;
        let view = aggregates.view.borrow();
        view.catalog
            .metrics
            .prometheus_backends
            .iter()
            .find(|backend| backend.serves(name))
            .cloned()
    }

    /// Serves GetCapacity from the sampler's latest snapshot.
    pub fn with_capacity(mut self, latest: pharos_collectors::capacity::Latest) -> MetricsApi {
        self.capacity = Some(latest);
        self
    }
}

fn millis(timestamp: &prost_types::Timestamp) -> i64 {
    timestamp.seconds * 1000 + i64::from(timestamp.nanos) / 1_000_000
}

fn check_labels(labels: &std::collections::HashMap<String, String>) -> Result<(), String> {
    if labels.len() > MAX_LABELS {
        return Err(format!(
            "{} labels; at most {MAX_LABELS} are allowed",
            labels.len()
        ));
    }
    for (name, value) in labels {
        if !valid_metric_name(name, false) {
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
        if !valid_metric_name(&selector.name, true) {
            return Err(super::error::invalid_argument(format!(
                "selector.name {:?} is not a series name (letters, digits, '_' and ':', not starting with a digit)",
                selector.name
            )));
        }
        let Some(start) = request.start.as_ref() else {
            return Err(super::error::invalid_argument(
                "start is required (the beginning of the range)",
            ));
        };
        let start_ms = millis(start);
        let end_ms = request.end.as_ref().map(millis).unwrap_or_else(now_ms);
        if end_ms < start_ms {
            return Err(super::error::invalid_argument(format!(
                "end ({end_ms} ms) is before start ({start_ms} ms)"
            )));
        }
        let step_ms = match &request.step {
            None => 0,
            Some(step) if step.seconds < 0 || step.nanos < 0 => {
                return Err(super::error::invalid_argument("step must not be negative"));
            }
            Some(step) => step.seconds * 1000 + i64::from(step.nanos) / 1_000_000,
        };
        if step_ms > 0 && (end_ms - start_ms) / step_ms > MAX_POINTS as i64 {
            return Err(super::error::invalid_argument(format!(
                "range / step gives more than {MAX_POINTS} points per series; use a larger step"
            )));
        }
        let selector = SeriesSelector {
            name: selector.name,
            labels: selector.labels.into_iter().collect(),
        };
        let series = match self.backend_for(&selector.name) {
            Some(backend) => pharos_collectors::metrics::prometheus::query_range(
                &backend, &selector, start_ms, end_ms, step_ms,
            )
            .await
            .map_err(Status::unavailable)?,
            None => self
                .store
                .query_range(&selector, start_ms, end_ms, step_ms)
                .await
                .map_err(|source| ApiError::Store {
                    what: "metrics",
                    source,
                })?,
        };
        let total: usize = series.iter().map(|s| s.points.len()).sum();
        if total > MAX_POINTS {
            return Err(super::error::resource_exhausted(format!(
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
                        Source::Prometheus => pb::SeriesSource::Prometheus,
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
                if !valid_metric_name(&sample.name, true) {
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
                super::error::unavailable(
                    "no capacity sample yet; the first is taken at start, retry in a moment",
                )
            })?;
        Ok(Response::new(capacity_response(&snapshot)))
    }

    async fn get_system_metrics(
        &self,
        request: Request<pb::GetSystemMetricsRequest>,
    ) -> Result<Response<pb::GetSystemMetricsResponse>, Status> {
        const MAX_WINDOW_MS: i64 = 15 * 60 * 1000;
        let request = request.into_inner();
        let millis_of = |d: &prost_types::Duration, what: &str| {
            if d.seconds < 0 || d.nanos < 0 {
                return Err(super::error::invalid_argument(format!(
                    "{what} must not be negative"
                )));
            }
            Ok(d.seconds * 1000 + i64::from(d.nanos) / 1_000_000)
        };
        let window = match &request.window {
            Some(d) => millis_of(d, "window")?,
            None => MAX_WINDOW_MS,
        };
        if window == 0 || window > MAX_WINDOW_MS {
            return Err(super::error::invalid_argument(format!(
                "window {window} ms: give one above 0 and at most 15 minutes"
            )));
        }
        let step = match &request.step {
            Some(d) => millis_of(d, "step")?,
            None => 0,
        };
        let step = if step == 0 {
            (window / 60).max(5000)
        } else {
            step
        };
        if step < 1000 || window / step > 1000 {
            return Err(super::error::invalid_argument(
                "step must be at least 1 s and give at most 1000 points over the window",
            ));
        }
        let end = now_ms();
        let start = end - window;
        let own = |name: &str| SeriesSelector {
            name: name.to_owned(),
            labels: [("target".to_owned(), "pharosd".to_owned())].into(),
        };
        let read = |name: &'static str| {
            let selector = own(name);
            let store = self.store.clone();
            async move {
                store
                    .query_range(&selector, start, end, step)
                    .await
                    .map_err(|source| {
                        Status::from(ApiError::Read {
                            series: name,
                            source,
                        })
                    })
            }
        };
        let rates = read("pharos_rpc_requests_total:rate").await?;
        let (mut all, mut errors) = (Vec::new(), Vec::new());
        for series in &rates {
            let failed = series.id.labels.get("code").is_some_and(|c| c != "OK");
            all.push(series);
            if failed {
                errors.push(series);
            }
        }
        let latest = |series: &[&pharos_collectors::metrics::store::SeriesPoints]| {
            let points = sum_by_time(series);
            (points.last().map(|p| p.value), points)
        };
        let (requests_per_second, throughput) = latest(&all);
        // No failed call recorded yet is zero errors per second, once there is traffic.
        let (errors_now, error_points) = latest(&errors);
        let errors_per_second = errors_now.or(requests_per_second.map(|_| 0.0));
        let mut quantiles = Vec::new();
        for name in [
            "pharos_rpc_unary_duration_seconds:p50",
            "pharos_rpc_unary_duration_seconds:p95",
            "pharos_rpc_unary_duration_seconds:p99",
        ] {
            let series = read(name).await?;
            let points: Vec<pb::Point> = series
                .first()
                .map(|s| {
                    s.points
                        .iter()
                        .map(|p| pb::Point {
                            time_unix_ms: p.ms,
                            value: p.value,
                        })
                        .collect()
                })
                .unwrap_or_default();
            quantiles.push((points.last().map(|p| p.value), points));
        }
        let [(p50, p50s), (p95, p95s), (p99, p99s)]: [(Option<f64>, Vec<pb::Point>); 3] =
            quantiles.try_into().expect("three quantiles");
        Ok(Response::new(pb::GetSystemMetricsResponse {
            requests_per_second,
            errors_per_second,
            latency_p50_seconds: p50,
            latency_p95_seconds: p95,
            latency_p99_seconds: p99,
            throughput,
            errors: error_points,
            latency_p50: p50s,
            latency_p95: p95s,
            latency_p99: p99s,
        }))
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

    async fn get_aggregates(
        &self,
        _request: Request<pb::GetAggregatesRequest>,
    ) -> Result<Response<pb::GetAggregatesResponse>, Status> {
        let Some(aggregates) = &self.aggregates else {
            return Err(super::error::unimplemented(
                "this server was started without platform totals",
            ));
        };
        let groups = aggregates.read().await;
        Ok(Response::new(pb::GetAggregatesResponse {
            time: Some(convert::timestamp(now_ms() * 1000)),
            groups: groups
                .into_iter()
                .map(|group| pb::AggregateGroup {
                    name: group.name,
                    values: group
                        .values
                        .into_iter()
                        .map(|(name, labels, value)| pb::AggregateValue {
                            name,
                            labels: labels.into_iter().collect(),
                            value,
                        })
                        .collect(),
                    updated: group.updated_ms.map(|ms| convert::timestamp(ms * 1000)),
                    error: group.error.unwrap_or_default(),
                    notes: group.notes,
                    project_id: group.project_id.unwrap_or_default(),
                    environment: group.environment.unwrap_or_default(),
                })
                .collect(),
        }))
    }
}

fn capacity_response(s: &pharos_collectors::capacity::Snapshot) -> pb::GetCapacityResponse {
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

/// Several series summed point by point (same times: one store, one step).
fn sum_by_time(series: &[&pharos_collectors::metrics::store::SeriesPoints]) -> Vec<pb::Point> {
    let mut sums: std::collections::BTreeMap<i64, f64> = std::collections::BTreeMap::new();
    for s in series {
        for p in &s.points {
            *sums.entry(p.ms).or_default() += p.value;
        }
    }
    sums.into_iter()
        .map(|(time_unix_ms, value)| pb::Point {
            time_unix_ms,
            value,
        })
        .collect()
}
