//! `pharos.v1.CatalogService`, served from the in-memory catalog view.

use std::sync::Arc;

use pharos_proto::v1 as pb;
use pharos_proto::v1::catalog_service_server::CatalogService;
use tokio::sync::watch;
use tonic::{Request, Response, Status};

use super::convert;
use super::error::ApiError;
use super::paging::{decode_token, encode_token, page_size};
use pharos_collectors::catalog::CatalogView;
use pharos_collectors::health::engine::SharedHealth;
use pharos_core::domain::HealthStatus;
use pharos_hub::WatchHub;

pub struct CatalogApi {
    view: watch::Receiver<Arc<CatalogView>>,
    health: SharedHealth,
    hub: Arc<WatchHub>,
}

impl CatalogApi {
    pub fn new(
        view: watch::Receiver<Arc<CatalogView>>,
        health: SharedHealth,
        hub: Arc<WatchHub>,
    ) -> CatalogApi {
        CatalogApi { view, health, hub }
    }

    fn view(&self) -> Arc<CatalogView> {
        self.view.borrow().clone()
    }
}

fn known_environment(view: &CatalogView, environment: &str) -> Result<(), ApiError> {
    if environment.is_empty() || view.has_environment(environment) {
        return Ok(());
    }
    let known: Vec<&str> = view
        .catalog
        .environments
        .iter()
        .map(|env| env.id.as_str())
        .collect();
    Err(ApiError::InvalidArgument(format!(
        "unknown environment {environment:?}; known environments: {}",
        known.join(", ")
    )))
}

#[tonic::async_trait]
impl CatalogService for CatalogApi {
    async fn get_overview(
        &self,
        _request: Request<pb::GetOverviewRequest>,
    ) -> Result<Response<pb::GetOverviewResponse>, Status> {
        // Read first: the totals below reflect at least everything up to it.
        let revision = self.hub.head();
        let view = self.view();
        let mut overview = view.overview.clone();
        let statuses = {
            let health = self.health.read().unwrap_or_else(|p| p.into_inner());
            pharos_collectors::health::engine::deployment_statuses(&view, &health)
        };
        let count =
            |wanted: HealthStatus| statuses.iter().filter(|(_, s)| *s == wanted).count() as u32;
        overview.healthy = count(HealthStatus::Healthy);
        overview.degraded = count(HealthStatus::Degraded);
        overview.unhealthy = count(HealthStatus::Unhealthy);
        overview.unknown = count(HealthStatus::Unknown);
        Ok(Response::new(convert::overview(&overview, revision)))
    }

    async fn list_projects(
        &self,
        request: Request<pb::ListProjectsRequest>,
    ) -> Result<Response<pb::ListProjectsResponse>, Status> {
        let request = request.into_inner();
        let view = self.view();
        known_environment(&view, &request.environment)?;
        let limit = page_size(request.page_size)?;
        let after = decode_token(&request.page_token)?;
        let page = view.projects_page(&request.environment, after.as_deref(), limit);
        Ok(Response::new(pb::ListProjectsResponse {
            projects: page.items.into_iter().map(convert::project).collect(),
            next_page_token: encode_token(page.next_after),
            total_size: page.total as u32,
        }))
    }

    async fn get_project(
        &self,
        request: Request<pb::GetProjectRequest>,
    ) -> Result<Response<pb::GetProjectResponse>, Status> {
        let id = request.into_inner().id;
        if id.is_empty() {
            return Err(
                ApiError::InvalidArgument("id is required: the project's id".to_owned()).into(),
            );
        }
        let view = self.view();
        let Some((project, deployments)) = view.project(&id) else {
            return Err(ApiError::NotFound(format!(
                "project {id:?} is not in the catalog; ListProjects shows the known ids"
            ))
            .into());
        };
        Ok(Response::new(pb::GetProjectResponse {
            project: Some(convert::project(project)),
            deployments: deployments
                .into_iter()
                .map(|d| convert::deployment(d, &view.ports_of(&d.project_id, &d.environment)))
                .collect(),
        }))
    }

    async fn list_port_allocations(
        &self,
        request: Request<pb::ListPortAllocationsRequest>,
    ) -> Result<Response<pb::ListPortAllocationsResponse>, Status> {
        let request = request.into_inner();
        let view = self.view();
        known_environment(&view, &request.environment)?;
        let limit = page_size(request.page_size)?;
        let after = decode_token(&request.page_token)?;
        let page = view.ports_page(
            &request.environment,
            &request.project_id,
            after.as_deref(),
            limit,
        );
        Ok(Response::new(pb::ListPortAllocationsResponse {
            allocations: page
                .items
                .into_iter()
                .map(convert::port_allocation)
                .collect(),
            next_page_token: encode_token(page.next_after),
            total_size: page.total as u32,
        }))
    }
}
