//! `pharos.v1.ContainerService`: reads of the containers collector's index.

use std::pin::Pin;
use std::sync::Arc;

use bollard::Docker;
use bollard::container::LogOutput;
use bollard::query_parameters::LogsOptions;
use futures::{Stream, StreamExt};
use pharos_proto::v1 as pb;
use pharos_proto::v1::container_service_server::ContainerService;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use super::convert::timestamp;
use super::error::ApiError;
use crate::containers::{ContainerIndex, ContainerQuery, ServiceStats};
use crate::domain::{
    Container, ContainerHealth, ContainerState, ContainerStats, EngineState, EngineStatus,
};

pub struct ContainerApi {
    index: Arc<ContainerIndex>,
    /// The engine client while it is up, for TailLogs; None until `with_logs`.
    docker: Option<watch::Receiver<Option<Docker>>>,
    /// Cancelled at shutdown: ends open log streams.
    streams: CancellationToken,
}

/// Most lines TailLogs sends from the end of a log.
const MAX_TAIL_LINES: u32 = 100_000;
/// The engine request timeout of a TailLogs stream (a day: in effect, none).
const LOG_STREAM_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(24 * 60 * 60);
/// Most lines in one TailLogsResponse.
const LOG_BATCH: usize = 500;

type LogStream = Pin<Box<dyn Stream<Item = Result<pb::TailLogsResponse, Status>> + Send + 'static>>;

impl ContainerApi {
    pub fn new(index: Arc<ContainerIndex>) -> ContainerApi {
        ContainerApi {
            index,
            docker: None,
            streams: CancellationToken::new(),
        }
    }

    /// Serves TailLogs through the collector's engine client.
    pub fn with_logs(
        mut self,
        docker: watch::Receiver<Option<Docker>>,
        streams: CancellationToken,
    ) -> ContainerApi {
        self.docker = Some(docker);
        self.streams = streams;
        self
    }
}

/// Splits an engine log line "<RFC 3339 time> <text>" (timestamps on).
fn log_line(output: LogOutput) -> Option<pb::LogLine> {
    let (stream, message) = match output {
        LogOutput::StdOut { message } | LogOutput::Console { message } => {
            (pb::LogStreamKind::Stdout, message)
        }
        LogOutput::StdErr { message } => (pb::LogStreamKind::Stderr, message),
        LogOutput::StdIn { .. } => return None,
    };
    let raw = String::from_utf8_lossy(&message);
    let raw = raw.strip_suffix('\n').unwrap_or(&raw);
    let raw = raw.strip_suffix('\r').unwrap_or(raw);
    let (time, text) = match raw.split_once(' ') {
        Some((stamp, rest)) => match chrono::DateTime::parse_from_rfc3339(stamp) {
            Ok(t) => (
                Some(prost_types::Timestamp {
                    seconds: t.timestamp(),
                    nanos: t.timestamp_subsec_nanos() as i32,
                }),
                rest,
            ),
            Err(_) => (None, raw),
        },
        None => (None, raw),
    };
    Some(pb::LogLine {
        text: text.to_owned(),
        stream: stream as i32,
        time,
    })
}

#[tonic::async_trait]
impl ContainerService for ContainerApi {
    async fn list_containers(
        &self,
        request: Request<pb::ListContainersRequest>,
    ) -> Result<Response<pb::ListContainersResponse>, Status> {
        let request = request.into_inner();
        let mut states = Vec::new();
        for value in &request.states {
            states.push(state_from_proto(*value).ok_or_else(|| {
                ApiError::InvalidArgument(format!(
                    "states: {value} is not a container state (use CONTAINER_STATE_RUNNING, CONTAINER_STATE_EXITED, ...)"
                ))
            })?);
        }
        let query = ContainerQuery {
            projects: request.projects,
            environments: request.environments,
            deployment_id: Some(request.deployment_id).filter(|id| !id.is_empty()),
            states,
            unmatched_only: request.unmatched_only,
            labels: request.labels.into_iter().collect(),
        };
        let containers = self
            .index
            .query(&query)
            .iter()
            .map(|(c, stats)| container(c, stats.as_ref()))
            .collect();
        Ok(Response::new(pb::ListContainersResponse {
            containers,
            engine: Some(engine_status(&self.index.engine())),
        }))
    }

    async fn list_service_stats(
        &self,
        request: Request<pb::ListServiceStatsRequest>,
    ) -> Result<Response<pb::ListServiceStatsResponse>, Status> {
        let request = request.into_inner();
        let services = self
            .index
            .service_stats()
            .into_iter()
            .filter(|s| request.projects.is_empty() || request.projects.contains(&s.project_id))
            .filter(|s| {
                request.environments.is_empty() || request.environments.contains(&s.environment)
            })
            .map(service_stats)
            .collect();
        Ok(Response::new(pb::ListServiceStatsResponse { services }))
    }

    type TailLogsStream = LogStream;

    async fn tail_logs(
        &self,
        request: Request<pb::TailLogsRequest>,
    ) -> Result<Response<Self::TailLogsStream>, Status> {
        let request = request.into_inner();
        if request.container_id.trim().is_empty() {
            return Err(Status::invalid_argument(
                "container_id is empty: give a container's id or name (ListContainers lists them)",
            ));
        }
        if request.tail_lines > MAX_TAIL_LINES {
            return Err(Status::invalid_argument(format!(
                "tail_lines {} is more than {MAX_TAIL_LINES}",
                request.tail_lines
            )));
        }
        let known = self
            .index
            .query(&ContainerQuery::default())
            .into_iter()
            .map(|(c, _)| c)
            .find(|c| c.id == request.container_id || c.name == request.container_id)
            .ok_or_else(|| {
                Status::not_found(format!(
                    "no discovered container {:?}: only containers carrying the project label are served",
                    request.container_id
                ))
            })?;
        let docker = self
            .docker
            .as_ref()
            .and_then(|rx| rx.borrow().clone())
            .ok_or_else(|| {
                Status::failed_precondition(format!(
                    "the container engine is not reachable ({})",
                    self.index.engine().endpoint
                ))
            })?;
        let options = LogsOptions {
            follow: request.follow,
            stdout: true,
            stderr: true,
            timestamps: true,
            tail: request.tail_lines.to_string(),
            ..Default::default()
        };
        // The engine client's request timeout bounds a whole response: a followed log
        // or a long tail would be cut. The stream ends when the caller cancels, the log
        // ends, or pharosd shuts down.
        let docker = docker.with_timeout(LOG_STREAM_TIMEOUT);
        let shutdown = self.streams.clone();
        let id = known.id.clone();
        let stream = async_stream::try_stream! {
            let logs = docker.logs(&id, Some(options));
            // Lines that are already there arrive together: send them in batches.
            let mut logs = logs.ready_chunks(LOG_BATCH);
            loop {
                let chunk = tokio::select! {
                    _ = shutdown.cancelled() => None,
                    chunk = logs.next() => chunk,
                };
                let Some(chunk) = chunk else { break };
                let mut lines = Vec::with_capacity(chunk.len());
                for item in chunk {
                    let output = item.map_err(|e| {
                        Status::unavailable(format!("reading the log of {id}: {e}"))
                    })?;
                    lines.extend(log_line(output));
                }
                if !lines.is_empty() {
                    yield pb::TailLogsResponse { lines };
                }
            }
        };
        Ok(Response::new(Box::pin(stream)))
    }

    async fn get_engine_status(
        &self,
        _request: Request<pb::GetEngineStatusRequest>,
    ) -> Result<Response<pb::GetEngineStatusResponse>, Status> {
        Ok(Response::new(pb::GetEngineStatusResponse {
            engine: Some(engine_status(&self.index.engine())),
        }))
    }
}

fn service_stats(s: ServiceStats) -> pb::ServiceStats {
    pb::ServiceStats {
        deployment_id: s.deployment_id,
        project_id: s.project_id,
        environment: s.environment,
        service: s.service,
        containers: s.containers,
        running: s.running,
        cpu_percent: s.cpu_percent,
        memory_used_bytes: s.memory_used_bytes,
        memory_limit_bytes: s.memory_limit_bytes,
        restart_count: s.restart_count,
    }
}

pub fn container(c: &Container, stats: Option<&ContainerStats>) -> pb::Container {
    pb::Container {
        id: c.id.clone(),
        name: c.name.clone(),
        image: c.image.clone(),
        labels: c
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        deployment_id: c.deployment_id.clone().unwrap_or_default(),
        project_id: c.project_id.clone().unwrap_or_default(),
        environment: c.environment.clone().unwrap_or_default(),
        service: c.service.clone(),
        state: state(c.state) as i32,
        health: match c.health {
            ContainerHealth::None => pb::ContainerHealth::Unspecified,
            ContainerHealth::Starting => pb::ContainerHealth::Starting,
            ContainerHealth::Healthy => pb::ContainerHealth::Healthy,
            ContainerHealth::Unhealthy => pb::ContainerHealth::Unhealthy,
        } as i32,
        status_text: c.status_text.clone(),
        exit_code: c.exit_code,
        created: (c.created_micros > 0).then(|| timestamp(c.created_micros)),
        started: c.started_micros.map(timestamp),
        restart_count: c.restart_count,
        stats: stats.map(|s| pb::ContainerStats {
            cpu_percent: s.cpu_percent,
            memory_used_bytes: s.memory_used_bytes,
            memory_limit_bytes: s.memory_limit_bytes,
            time: Some(timestamp(s.at_micros)),
        }),
    }
}

pub fn engine_status(engine: &EngineStatus) -> pb::EngineStatus {
    pb::EngineStatus {
        endpoint: engine.endpoint.clone(),
        state: match engine.state {
            EngineState::Disabled => pb::EngineState::Disabled,
            EngineState::Connecting => pb::EngineState::Connecting,
            EngineState::Up => pb::EngineState::Up,
            EngineState::Down => pb::EngineState::Down,
        } as i32,
        version: engine.version.clone(),
        error: engine.error.clone(),
        since: Some(timestamp(engine.since_micros)),
    }
}

fn state(state: ContainerState) -> pb::ContainerState {
    match state {
        ContainerState::Created => pb::ContainerState::Created,
        ContainerState::Running => pb::ContainerState::Running,
        ContainerState::Paused => pb::ContainerState::Paused,
        ContainerState::Restarting => pb::ContainerState::Restarting,
        ContainerState::Removing => pb::ContainerState::Removing,
        ContainerState::Exited => pb::ContainerState::Exited,
        ContainerState::Dead => pb::ContainerState::Dead,
        ContainerState::Unknown => pb::ContainerState::Unspecified,
    }
}

fn state_from_proto(value: i32) -> Option<ContainerState> {
    Some(match pb::ContainerState::try_from(value).ok()? {
        pb::ContainerState::Created => ContainerState::Created,
        pb::ContainerState::Running => ContainerState::Running,
        pb::ContainerState::Paused => ContainerState::Paused,
        pb::ContainerState::Restarting => ContainerState::Restarting,
        pb::ContainerState::Removing => ContainerState::Removing,
        pb::ContainerState::Exited => ContainerState::Exited,
        pb::ContainerState::Dead => ContainerState::Dead,
        pb::ContainerState::Unspecified => return None,
    })
}
