//! The connection to pharosd: one endpoint (with TLS when the address is `https://`) and
//! the token interceptor, from which every service client is made.

use pharos_proto::v1::action_service_client::ActionServiceClient;
use pharos_proto::v1::catalog_service_client::CatalogServiceClient;
use pharos_proto::v1::container_service_client::ContainerServiceClient;
use pharos_proto::v1::event_service_client::EventServiceClient;
use pharos_proto::v1::export_service_client::ExportServiceClient;
use pharos_proto::v1::health_service_client::HealthServiceClient;
use pharos_proto::v1::metrics_service_client::MetricsServiceClient;
use pharos_proto::v1::watch_service_client::WatchServiceClient;
use tonic::metadata::MetadataValue;
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tonic::{Request, Status};

use crate::config::Target;
use crate::error::CliError;

/// The channel type of every service client: the connection plus the token interceptor.
pub type Svc = InterceptedService<Channel, Auth>;

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

#[derive(Clone)]
pub struct Client {
    pub server: String,
    endpoint: Result<Endpoint, String>,
    auth: Auth,
}

impl Client {
    pub fn new(target: &Target) -> Client {
        let server = if target.server.contains("://") {
            target.server.clone()
        } else {
            format!("http://{}", target.server)
        };
        let endpoint = endpoint(&server, target);
        let auth = Auth(
            target
                .token
                .as_deref()
                .and_then(|token| format!("Bearer {token}").parse().ok()),
        );
        Client {
            server,
            endpoint,
            auth,
        }
    }

    pub async fn channel(&self) -> Result<Channel, CliError> {
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

    pub async fn catalog(&self) -> Result<CatalogServiceClient<Svc>, CliError> {
        Ok(CatalogServiceClient::with_interceptor(
            self.channel().await?,
            self.auth.clone(),
        ))
    }

    pub async fn watch(&self) -> Result<WatchServiceClient<Svc>, CliError> {
        Ok(WatchServiceClient::with_interceptor(
            self.channel().await?,
            self.auth.clone(),
        ))
    }

    pub async fn health(&self) -> Result<HealthServiceClient<Svc>, CliError> {
        Ok(HealthServiceClient::with_interceptor(
            self.channel().await?,
            self.auth.clone(),
        ))
    }

    pub async fn export(&self) -> Result<ExportServiceClient<Svc>, CliError> {
        Ok(ExportServiceClient::with_interceptor(
            self.channel().await?,
            self.auth.clone(),
        ))
    }

    pub async fn containers(&self) -> Result<ContainerServiceClient<Svc>, CliError> {
        Ok(ContainerServiceClient::with_interceptor(
            self.channel().await?,
            self.auth.clone(),
        ))
    }

    pub async fn actions(&self) -> Result<ActionServiceClient<Svc>, CliError> {
        Ok(ActionServiceClient::with_interceptor(
            self.channel().await?,
            self.auth.clone(),
        ))
    }

    pub async fn metrics(&self) -> Result<MetricsServiceClient<Svc>, CliError> {
        Ok(MetricsServiceClient::with_interceptor(
            self.channel().await?,
            self.auth.clone(),
        ))
    }

    pub async fn events(&self) -> Result<EventServiceClient<Svc>, CliError> {
        Ok(EventServiceClient::with_interceptor(
            self.channel().await?,
            self.auth.clone(),
        ))
    }

    /// The interceptor that adds the token, for clients of services built elsewhere.
    pub fn auth(&self) -> Auth {
        self.auth.clone()
    }

    pub fn error(&self, status: &Status) -> CliError {
        CliError::from_status(&self.server, status)
    }
}

fn endpoint(server: &str, target: &Target) -> Result<Endpoint, String> {
    let mut endpoint = Endpoint::from_shared(server.to_owned())
        .map_err(|err| format!("invalid server address {server:?}: {err}"))?;
    if server.starts_with("https://") {
        let mut tls = ClientTlsConfig::new().with_webpki_roots();
        if let Some(ca_file) = &target.tls.ca_file {
            let pem = std::fs::read(ca_file)
                .map_err(|err| format!("cannot read CA file {}: {err}", ca_file.display()))?;
            tls = tls.ca_certificate(Certificate::from_pem(pem));
        }
        if let Some(name) = &target.tls.server_name {
            tls = tls.domain_name(name.clone());
        }
        endpoint = endpoint
            .tls_config(tls)
            .map_err(|err| format!("invalid TLS settings for {server}: {err}"))?;
    }
    Ok(endpoint)
}

fn root_cause(err: &dyn std::error::Error) -> String {
    let mut cause = err;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string()
}
