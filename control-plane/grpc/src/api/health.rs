//! `pharos.v1.HealthService`: current health from the engine's state, history and
//! windows from the database, heartbeats into the engine.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLockReadGuard};

use pharos_proto::v1 as pb;
use pharos_proto::v1::health_service_server::HealthService;
use tokio::sync::watch;
use tonic::{Request, Response, Status};

use super::convert;
use super::error::ApiError;
use pharos_collectors::catalog::CatalogView;
use pharos_collectors::health::engine::{HealthState, HeartbeatError, Heartbeats, SharedHealth};
use pharos_collectors::health::history::{HistoryStore, Resolution, WINDOWS};
use pharos_core::domain::{HealthStatus, check_id};
use pharos_hub::WatchHub;
use pharos_store::QueryError;

const RECENT_FAILURES: u64 = 10;

pub struct HealthApi {
    state: SharedHealth,
    history: HistoryStore,
    heartbeats: Heartbeats,
    catalog: watch::Receiver<Arc<CatalogView>>,
    hub: Arc<WatchHub>,
}

impl HealthApi {
    pub fn new(
        state: SharedHealth,
        history: HistoryStore,
        heartbeats: Heartbeats,
        catalog: watch::Receiver<Arc<CatalogView>>,
        hub: Arc<WatchHub>,
    ) -> HealthApi {
        HealthApi {
            state,
            history,
            heartbeats,
            catalog,
            hub,
        }
    }

    fn state(&self) -> RwLockReadGuard<'_, HealthState> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }
}

fn internal(err: QueryError) -> Status {
    ApiError::Store {
        what: "history",
        source: err,
    }
    .into()
}

fn counts(statuses: impl IntoIterator<Item = HealthStatus>) -> pb::StatusCounts {
    let mut counts = pb::StatusCounts::default();
    for status in statuses {
        match status {
            HealthStatus::Healthy => counts.healthy += 1,
            HealthStatus::Degraded => counts.degraded += 1,
            HealthStatus::Unhealthy => counts.unhealthy += 1,
            HealthStatus::Unknown => counts.unknown += 1,
        }
    }
    counts
}

#[tonic::async_trait]
impl HealthService for HealthApi {
    async fn get_health_summary(
        &self,
        _request: Request<pb::GetHealthSummaryRequest>,
    ) -> Result<Response<pb::GetHealthSummaryResponse>, Status> {
        let view = self.catalog.borrow().clone();
        let (statuses, flapping) = {
            let state = self.state();
            (
                pharos_collectors::health::engine::deployment_statuses(&view, &state),
                state.checks.values().filter(|c| c.flapping).count() as u32,
            )
        };
        let mut per_env: BTreeMap<&str, Vec<HealthStatus>> = BTreeMap::new();
        for (env, status) in &statuses {
            per_env.entry(env.as_str()).or_default().push(*status);
        }
        let environments = view
            .catalog
            .environments
            .iter()
            .map(|env| {
                let statuses = per_env.get(env.id.as_str()).cloned().unwrap_or_default();
                pb::EnvironmentHealth {
                    environment: env.id.clone(),
                    status: convert::health_status(HealthStatus::aggregate(
                        statuses.iter().copied(),
                    )) as i32,
                    deployments: Some(counts(statuses)),
                }
            })
            .collect();
        let day = self
            .history
            .window(&[], Resolution::Hour, 24, false)
            .await
            .map_err(internal)?;
        let (runs, passing) = day.values().fold((0, 0), |(runs, passing), w| {
            (runs + w.runs, passing + w.healthy + w.degraded)
        });
        let recent_failures = self
            .history
            .recent_failures(RECENT_FAILURES)
            .await
            .map_err(internal)?;
        Ok(Response::new(pb::GetHealthSummaryResponse {
            revision: self.hub.head(),
            deployments: Some(counts(statuses.iter().map(|(_, s)| *s))),
            environments,
            uptime_percent_24h: (runs > 0).then(|| passing as f64 * 100.0 / runs as f64),
            recent_failures: recent_failures.iter().map(convert::check_result).collect(),
            flapping_checks: flapping,
        }))
    }

    async fn get_project_health(
        &self,
        request: Request<pb::GetProjectHealthRequest>,
    ) -> Result<Response<pb::GetProjectHealthResponse>, Status> {
        let project_id = request.into_inner().project_id;
        let view = self.catalog.borrow().clone();
        let Some((project, deployments)) = view.project(&project_id) else {
            return Err(ApiError::NotFound(format!(
                "project {project_id:?} is not in the catalog; ListProjects shows the known ids"
            ))
            .into());
        };
        let check_ids: Vec<String> = deployments
            .iter()
            .flat_map(|d| {
                d.checks
                    .iter()
                    .map(|c| check_id(&d.project_id, &d.environment, &c.name))
            })
            .collect();
        let mut windows = Vec::new();
        for (name, resolution, buckets) in WINDOWS {
            let rollups = self
                .history
                .window(&check_ids, resolution, buckets, true)
                .await
                .map_err(internal)?;
            windows.push((name, rollups));
        }
        let state = self.state();
        let mut statuses = Vec::new();
        let details = deployments
            .iter()
            .map(|d| {
                let health = state.deployments.get(&d.id()).cloned();
                statuses.push(health.as_ref().map_or(HealthStatus::Unknown, |h| h.status));
                let checks = d
                    .checks
                    .iter()
                    .filter_map(|spec| {
                        let id = check_id(&d.project_id, &d.environment, &spec.name);
                        let check = state.checks.get(&id)?;
                        Some(pb::CheckHealthDetail {
                            check: Some(convert::check_health(check)),
                            windows: windows
                                .iter()
                                .map(|(name, rollups)| {
                                    convert::uptime_window(name, rollups.get(&id))
                                })
                                .collect(),
                        })
                    })
                    .collect();
                pb::DeploymentHealthDetail {
                    health: health.as_ref().map(convert::deployment_health),
                    checks,
                }
            })
            .collect();
        Ok(Response::new(pb::GetProjectHealthResponse {
            project_id: project.id.clone(),
            status: convert::health_status(HealthStatus::aggregate(statuses)) as i32,
            deployments: details,
        }))
    }

    async fn list_check_results(
        &self,
        request: Request<pb::ListCheckResultsRequest>,
    ) -> Result<Response<pb::ListCheckResultsResponse>, Status> {
        let request = request.into_inner();
        let known = self.state().checks.contains_key(&request.check_id);
        if !known {
            return Err(ApiError::NotFound(format!(
                "check {:?} is not in the catalog; check ids are <project>/<environment>/<check name>",
                request.check_id
            ))
            .into());
        }
        let limit = super::paging::page_size(request.page_size)?;
        let after = decode_cursor(&request.page_token)?;
        let micros = |t: &prost_types::Timestamp| t.seconds * 1_000_000 + i64::from(t.nanos) / 1000;
        let start = request.start_time.as_ref().map(micros);
        let end = request.end_time.as_ref().map(micros);
        if let (Some(start), Some(end)) = (start, end)
            && start >= end
        {
            return Err(
                ApiError::InvalidArgument("start_time must be before end_time".to_owned()).into(),
            );
        }
        let page = self
            .history
            .results(&request.check_id, start, end, after, limit as u64)
            .await
            .map_err(internal)?;
        Ok(Response::new(pb::ListCheckResultsResponse {
            results: page.results.iter().map(convert::check_result).collect(),
            next_page_token: page
                .next
                .map(|(at, id)| hex::encode(format!("r1:{at}:{id}")))
                .unwrap_or_default(),
        }))
    }

    async fn heartbeat(
        &self,
        request: Request<pb::HeartbeatRequest>,
    ) -> Result<Response<pb::HeartbeatResponse>, Status> {
        let check_id = request.into_inner().check_id;
        let deadline = self
            .heartbeats
            .beat(&check_id, |id| self.state().checks.contains_key(id))
            .map_err(|err| match err {
                HeartbeatError::UnknownCheck => super::error::not_found(format!(
                    "check {check_id:?} is not in the catalog; declare it with `heartbeat: {{grace: 30s}}`"
                )),
                HeartbeatError::NotAHeartbeatCheck => super::error::failed_precondition(format!(
                    "check {check_id:?} is not a heartbeat check; only checks of kind heartbeat take heartbeats"
                )),
            })?;
        Ok(Response::new(pb::HeartbeatResponse {
            deadline: Some(convert::timestamp(deadline)),
        }))
    }
}

fn decode_cursor(token: &str) -> Result<Option<(i64, i64)>, Status> {
    if token.is_empty() {
        return Ok(None);
    }
    let invalid = || {
        super::error::invalid_argument(
            "invalid page_token: pass the next_page_token of a previous response, or empty for the first page",
        )
    };
    let text = hex::decode(token)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(invalid)?;
    let rest = text.strip_prefix("r1:").ok_or_else(invalid)?;
    let (at, id) = rest.split_once(':').ok_or_else(invalid)?;
    Ok(Some((
        at.parse().map_err(|_| invalid())?,
        id.parse().map_err(|_| invalid())?,
    )))
}
