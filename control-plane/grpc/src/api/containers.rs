//! `pharos.v1.ContainerService`: reads of the containers collector's index.

use std::pin::Pin;
use std::sync::Arc;

use bollard::Docker;
use futures::{Stream, StreamExt};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use pharos_proto::v1 as pb;
use pharos_proto::v1::container_service_server::ContainerService;
use tonic::{Request, Response, Status};

use super::convert::containers::{container, engine_status, state_from_proto};
use super::convert::timestamp;
use super::error::ApiError;
use pharos_collectors::containers::logs::{self, LogQuery};
use pharos_collectors::containers::{ContainerIndex, ContainerQuery, ServiceStats};
use pharos_core::domain::EngineState;

pub struct ContainerApi {
    index: Arc<ContainerIndex>,
    docker: watch::Receiver<Option<Docker>>,
    /// Ends TailLogs streams at shutdown.
    streams: CancellationToken,
}

impl ContainerApi {
    pub fn new(
        index: Arc<ContainerIndex>,
        docker: watch::Receiver<Option<Docker>>,
        streams: CancellationToken,
    ) -> ContainerApi {
        ContainerApi {
            index,
            docker,
            streams,
        }
    }
}

type LogStream = Pin<Box<dyn Stream<Item = Result<pb::TailLogsResponse, Status>> + Send>>;

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
        // The engine first: until its first listing, a container is unknown, not absent
        // (a follower reconnecting right after a restart retries on UNAVAILABLE).
        let Some(docker) = self.docker.borrow().clone() else {
            let engine = self.index.engine();
            if engine.state == EngineState::Disabled {
                return Err(super::error::failed_precondition(
                    "pharosd has no container engine (start it with --docker-host or set containers.docker_host)",
                ));
            }
            return Err(super::error::unavailable(format!(
                "the container engine is not reachable ({}); see GetEngineStatus",
                engine.state.as_str()
            )));
        };
        let container = self.index.find(&request.container).ok_or_else(|| {
            ApiError::NotFound(format!(
                "no tracked container {:?} (ListContainers shows them; use an id or a name)",
                request.container
            ))
        })?;
        if request.tail > logs::MAX_TAIL {
            return Err(ApiError::InvalidArgument(format!(
                "tail {} is too many lines; the maximum is {}",
                request.tail,
                logs::MAX_TAIL
            ))
            .into());
        }
        let after = match request.after_cursor.as_str() {
            "" => None,
            _ if request.tail > 0 => {
                return Err(ApiError::InvalidArgument(
                    "after_cursor and tail are exclusive: a cursor already says where to start"
                        .to_owned(),
                )
                .into());
            }
            cursor => Some(logs::parse_cursor(cursor).map_err(ApiError::InvalidArgument)?),
        };
        let regex = match request.regex.as_str() {
            "" => None,
            pattern => Some(regex::Regex::new(pattern).map_err(|err| {
                ApiError::InvalidArgument(format!("invalid regex {pattern:?}: {err}"))
            })?),
        };
        let mut stdout = false;
        let mut stderr = false;
        for value in &request.streams {
            match pb::LogStream::try_from(*value) {
                Ok(pb::LogStream::Stdout) => stdout = true,
                Ok(pb::LogStream::Stderr) => stderr = true,
                _ => {
                    return Err(ApiError::InvalidArgument(format!(
                        "streams: {value} is not LOG_STREAM_STDOUT or LOG_STREAM_STDERR"
                    ))
                    .into());
                }
            }
        }
        if !stdout && !stderr {
            (stdout, stderr) = (true, true);
        }
        let query = LogQuery {
            follow: request.follow,
            since_micros: request
                .since
                .map(|t| t.seconds * 1_000_000 + i64::from(t.nanos) / 1000),
            tail: (request.tail > 0).then_some(request.tail),
            stdout,
            stderr,
            contains: Some(request.contains).filter(|c| !c.is_empty()),
            regex,
            after,
        };
        let shutdown = self.streams.clone();
        let lines = logs::tail(docker, container.id, query).map(|batch| match batch {
            Ok(lines) => Ok(pb::TailLogsResponse {
                lines: lines.into_iter().map(log_line).collect(),
            }),
            Err(err) => Err(super::error::unavailable(format!(
                "reading logs failed: {err}"
            ))),
        });
        // At shutdown a follower is told to reconnect (a clean end would read as the
        // container's log having ended).
        let lines = async_stream::stream! {
            // An empty first message: the stream is open, even on a quiet log.
            yield Ok(pb::TailLogsResponse::default());
            let mut lines = std::pin::pin!(lines);
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => {
                        yield Err(super::error::unavailable(
                            "pharosd is shutting down; reconnect with `since` set to the last line's time to go on",
                        ));
                        break;
                    }
                    item = lines.next() => match item {
                        Some(item) => yield item,
                        None => break,
                    },
                }
            }
        };
        Ok(Response::new(Box::pin(lines)))
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

fn log_line(line: logs::LogLine) -> pb::LogLine {
    let cursor = line.cursor().unwrap_or_default();
    pb::LogLine {
        stream: match line.stream {
            logs::LogStream::Stdout => pb::LogStream::Stdout,
            logs::LogStream::Stderr => pb::LogStream::Stderr,
        } as i32,
        text: line.text,
        time: line.at_micros.map(timestamp),
        truncated: line.truncated,
        cursor,
    }
}
