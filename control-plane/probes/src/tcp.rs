//! `tcp` checks: a TCP connection is accepted.

use tokio::net::TcpStream;

use pharos_core::domain::AddressCheck;

use super::{Probe, ProbeError, ProbeOutcome, Run, check_address};

pub(super) struct TcpProbe {
    address: String,
}

impl TcpProbe {
    pub(super) fn build(settings: &AddressCheck) -> Result<Self, ProbeError> {
        check_address(&settings.address)?;
        Ok(TcpProbe {
            address: settings.address.clone(),
        })
    }
}

#[async_trait::async_trait]
impl Probe for TcpProbe {
    async fn run(&self) -> ProbeOutcome {
        let mut run = Run::start();
        match TcpStream::connect(self.address.as_str()).await {
            Ok(stream) => {
                run.connected();
                drop(stream);
                run.healthy()
            }
            Err(e) => run.unhealthy(format!("connect to {}: {e}", self.address)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Verdict;
    use super::super::tests::probe;
    use serde_json::json;

    #[tokio::test]
    async fn listening_port_is_healthy() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let outcome = probe("tcp", json!({ "address": address })).run().await;
        assert_eq!(outcome.verdict, Verdict::Healthy, "{outcome:?}");
        assert_eq!(outcome.message, "ok");
        let connect = outcome.timings.connect.expect("connect timing");
        assert!(connect <= outcome.timings.total);
        assert_eq!(outcome.timings.tls, None);
    }

    #[tokio::test]
    async fn closed_port_is_unhealthy() {
        let port = pharos_e2e::free_port();
        let outcome = probe("tcp", json!({ "address": format!("127.0.0.1:{port}") }))
            .run()
            .await;
        assert_eq!(outcome.verdict, Verdict::Unhealthy, "{outcome:?}");
        assert!(
            outcome
                .message
                .starts_with(&format!("connect to 127.0.0.1:{port}: "))
                && outcome.message.contains("refused"),
            "{}",
            outcome.message
        );
        assert_eq!(outcome.timings.connect, None);
    }
}
