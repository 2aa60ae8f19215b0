//! `pharos.v1.SessionService`: the caller as the auth layer identified it.

use pharos_proto::v1 as pb;
use pharos_proto::v1::session_service_server::SessionService;
use tonic::{Request, Response, Status};

use crate::auth::{Principal, Role};

pub struct SessionApi;

#[tonic::async_trait]
impl SessionService for SessionApi {
    async fn who_am_i(
        &self,
        request: Request<pb::WhoAmIRequest>,
    ) -> Result<Response<pb::WhoAmIResponse>, Status> {
        // The auth layer admits this method for viewers and up and leaves the principal
        // in the extensions; without it, the layer is not in front of this service.
        let principal = request.extensions().get::<Principal>().ok_or_else(|| {
            super::error::internal("no caller identity on this request (the auth layer is missing)")
        })?;
        let anonymous = request
            .metadata()
            .get(http::header::AUTHORIZATION.as_str())
            .is_none();
        Ok(Response::new(pb::WhoAmIResponse {
            name: principal.name.clone(),
            role: match principal.role {
                Role::Viewer => pb::Role::Viewer,
                Role::Operator => pb::Role::Operator,
                Role::Admin => pb::Role::Admin,
            } as i32,
            anonymous,
        }))
    }
}
