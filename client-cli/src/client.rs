//! Connection to pharosd and the errors a user can act on, each with its own exit code.

use std::fmt;

use pharos_proto::v1::catalog_service_client::CatalogServiceClient;
use pharos_proto::v1::watch_service_client::WatchServiceClient;
use tonic::metadata::MetadataValue;
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request, Status};

/// A failure, described in one line, with a distinct exit code per kind.
#[derive(Debug)]
pub enum CliError {
    Unreachable(String),
    Auth(String),
    NotFound(String),
    Invalid(String),
    Other(String),
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Other(_) => 1,
            CliError::Unreachable(_) => 3,
            CliError::Auth(_) => 4,
            CliError::NotFound(_) => 5,
            CliError::Invalid(_) => 6,
        }
    }

    pub fn from_status(server: &str, status: &Status) -> CliError {
        let message = status.message().to_owned();
        match status.code() {
            Code::Unavailable => {
                CliError::Unreachable(format!("cannot reach pharosd at {server}: {message}"))
            }
            Code::Unauthenticated | Code::PermissionDenied => CliError::Auth(message),
            Code::NotFound => CliError::NotFound(message),
            Code::InvalidArgument | Code::OutOfRange | Code::FailedPrecondition => {
                CliError::Invalid(message)
            }
            code => CliError::Other(format!("{code:?}: {message}")),
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Unreachable(m)
            | CliError::Auth(m)
            | CliError::NotFound(m)
            | CliError::Invalid(m)
            | CliError::Other(m) => f.write_str(m),
        }
    }
}

/// Adds the bearer token to every call.
#[derive(Clone)]
pub struct Auth(Option<MetadataValue<tonic::metadata::Ascii>>);

impl Interceptor for Auth {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

pub struct Client {
    pub server: String,
    endpoint: Result<Endpoint, String>,
    auth: Auth,
}

impl Client {
    pub fn new(server: &str, token: Option<&str>) -> Client {
        let server = if server.contains("://") {
            server.to_owned()
        } else {
            format!("http://{server}")
        };
        let endpoint = Endpoint::from_shared(server.clone())
            .map_err(|err| format!("invalid --server {server:?}: {err}"));
        let auth = Auth(token.and_then(|token| format!("Bearer {token}").parse().ok()));
        Client {
            server,
            endpoint,
            auth,
        }
    }

    async fn channel(&self) -> Result<Channel, CliError> {
        let endpoint = self.endpoint.clone().map_err(CliError::Invalid)?;
        endpoint
            .connect_timeout(std::time::Duration::from_secs(5))
            .connect()
            .await
            .map_err(|err| {
                CliError::Unreachable(format!(
                    "cannot reach pharosd at {}: {}",
                    self.server,
                    root_cause(&err)
                ))
            })
    }

    pub async fn catalog(
        &self,
    ) -> Result<CatalogServiceClient<InterceptedService<Channel, Auth>>, CliError> {
        Ok(CatalogServiceClient::with_interceptor(
            self.channel().await?,
            self.auth.clone(),
        ))
    }

    pub async fn watch(
        &self,
    ) -> Result<WatchServiceClient<InterceptedService<Channel, Auth>>, CliError> {
        Ok(WatchServiceClient::with_interceptor(
            self.channel().await?,
            self.auth.clone(),
        ))
    }

    pub fn error(&self, status: &Status) -> CliError {
        CliError::from_status(&self.server, status)
    }
}

fn root_cause(err: &dyn std::error::Error) -> String {
    let mut cause = err;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string()
}
