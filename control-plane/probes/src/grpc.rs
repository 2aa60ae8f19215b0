//! `grpc` checks: `grpc.health.v1.Health/Check` for a service (empty: the whole server).

use tonic::transport::Endpoint;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use pharos_core::domain::GrpcCheck;

use super::{Probe, ProbeError, ProbeOutcome, Run, check_address, error_chain};

pub(super) struct GrpcProbe {
    address: String,
    endpoint: Endpoint,
    service: String,
}

impl GrpcProbe {
    pub(super) fn build(settings: &GrpcCheck) -> Result<Self, ProbeError> {
        // Plaintext gRPC (h2c); `http://` in front of the address is tolerated.
        let address = settings
            .address
            .strip_prefix("http://")
            .unwrap_or(&settings.address)
            .trim_end_matches('/')
            .to_owned();
        check_address(&address)?;
        let endpoint = Endpoint::from_shared(format!("http://{address}")).map_err(|e| {
            ProbeError::BadAddress {
                address: settings.address.clone(),
                reason: e.to_string(),
            }
        })?;
        Ok(GrpcProbe {
            address,
            endpoint,
            service: settings.service.clone(),
        })
    }

    fn what(&self) -> String {
        if self.service.is_empty() {
            format!("{} (server)", self.address)
        } else {
            format!("{} service {:?}", self.address, self.service)
        }
    }
}

#[async_trait::async_trait]
impl Probe for GrpcProbe {
    async fn run(&self) -> ProbeOutcome {
        let mut run = Run::start();
        let channel = match self.endpoint.connect().await {
            Ok(channel) => channel,
            Err(e) => {
                return run.unhealthy(format!("connect to {}: {}", self.address, error_chain(&e)));
            }
        };
        run.connected();
        let request = HealthCheckRequest {
            service: self.service.clone(),
        };
        let response = HealthClient::new(channel).check(request).await;
        // Unavailable is the transport failing: no answer came.
        if !matches!(&response, Err(status) if status.code() == tonic::Code::Unavailable) {
            run.first_byte();
        }
        match response {
            Ok(response) => match ServingStatus::try_from(response.into_inner().status) {
                Ok(ServingStatus::Serving) => run.healthy(),
                Ok(status) => run.unhealthy(format!("{}: {}", self.what(), status.as_str_name())),
                Err(_) => run.unhealthy(format!("{}: unknown serving status", self.what())),
            },
            Err(status) => {
                let mut message = format!("Health/Check {}: {:?}", self.what(), status.code());
                if !status.message().is_empty() {
                    message.push_str(": ");
                    message.push_str(status.message());
                }
                run.unhealthy(message)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Verdict;
    use super::super::tests::probe;
    use serde_json::json;
    use tonic_health::ServingStatus;

    /// A tonic server with only the health service, on a free loopback port.
    async fn health_server() -> (tonic_health::server::HealthReporter, String) {
        let (reporter, service) = tonic_health::server::health_reporter();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
        );
        (reporter, address)
    }

    #[tokio::test]
    async fn follows_the_serving_status() {
        let (reporter, address) = health_server().await;
        let check = probe(
            "grpc",
            json!({ "address": address, "service": "pharos.Orders" }),
        );

        reporter
            .set_service_status("pharos.Orders", ServingStatus::Serving)
            .await;
        let outcome = check.run().await;
        assert_eq!(outcome.verdict, Verdict::Healthy, "{outcome:?}");
        assert_eq!(outcome.message, "ok");
        let timings = &outcome.timings;
        assert!(timings.connect.unwrap() <= timings.first_byte.unwrap());
        assert!(timings.first_byte.unwrap() <= timings.total);

        reporter
            .set_service_status("pharos.Orders", ServingStatus::NotServing)
            .await;
        let outcome = check.run().await;
        assert_eq!(outcome.verdict, Verdict::Unhealthy, "{outcome:?}");
        assert_eq!(
            outcome.message,
            format!("{address} service \"pharos.Orders\": NOT_SERVING")
        );

        reporter
            .set_service_status("pharos.Orders", ServingStatus::Serving)
            .await;
        assert_eq!(check.run().await.verdict, Verdict::Healthy);

        // The empty service name asks about the whole server, SERVING by default.
        let whole = probe("grpc", json!({ "address": format!("http://{address}") }));
        assert_eq!(whole.run().await.verdict, Verdict::Healthy);
    }

    #[tokio::test]
    async fn unknown_service_and_closed_port_are_unhealthy() {
        let (_reporter, address) = health_server().await;
        let outcome = probe("grpc", json!({ "address": address, "service": "nope" }))
            .run()
            .await;
        assert_eq!(outcome.verdict, Verdict::Unhealthy, "{outcome:?}");
        assert!(outcome.message.contains("NotFound"), "{}", outcome.message);

        let port = pharos_e2e::free_port();
        let outcome = probe("grpc", json!({ "address": format!("127.0.0.1:{port}") }))
            .run()
            .await;
        assert_eq!(outcome.verdict, Verdict::Unhealthy, "{outcome:?}");
        assert!(
            outcome
                .message
                .starts_with(&format!("connect to 127.0.0.1:{port}: ")),
            "{}",
            outcome.message
        );
        assert_eq!(outcome.timings.connect, None);
    }

    #[test]
    fn address_errors() {
        let err = super::super::tests::build_error("grpc", json!({ "address": "https://x:1" }));
        assert!(err.starts_with("invalid address \"https://x:1\""), "{err}");
    }
}
