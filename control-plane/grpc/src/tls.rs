//! TLS on the one port: a certificate and key from PEM files, and optionally a client CA
//! that every client must present a certificate from (mutual TLS).
//!
//! The handshake is done here rather than by tonic's own TLS so that ALPN offers both
//! `h2` and `http/1.1`: gRPC clients negotiate HTTP/2, while grpc-web from HTTP/1.1
//! clients, `/healthz` and the dashboard keep working over the same TLS port.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use futures::Stream;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
pub use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::RootCertStore;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

/// A client that has not finished its handshake by then is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The TLS files from flags or environment.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Clients must present a certificate signed by this CA.
    pub client_ca: Option<PathBuf>,
}

impl TlsFiles {
    /// Reads and checks the files, so a bad certificate stops start-up with a clear error.
    pub fn acceptor(&self) -> anyhow::Result<TlsAcceptor> {
        let certs = read_certs(&self.cert, "--tls-cert")?;
        let key = PrivateKeyDer::from_pem_file(&self.key).with_context(|| {
            format!(
                "--tls-key {}: no readable PEM private key (PKCS#8, PKCS#1 or SEC1)",
                self.key.display()
            )
        })?;
        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .context("TLS protocol versions")?;
        let builder = match &self.client_ca {
            None => builder.with_no_client_auth(),
            Some(path) => {
                let mut roots = RootCertStore::empty();
                for cert in read_certs(path, "--tls-client-ca")? {
                    roots.add(cert).with_context(|| {
                        format!(
                            "--tls-client-ca {}: not a usable CA certificate",
                            path.display()
                        )
                    })?;
                }
                let verifier = WebPkiClientVerifier::builder_with_provider(roots.into(), provider)
                    .build()
                    .with_context(|| format!("--tls-client-ca {}", path.display()))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut config = builder.with_single_cert(certs, key).with_context(|| {
            format!(
                "--tls-cert {} and --tls-key {} do not form a usable pair",
                self.cert.display(),
                self.key.display()
            )
        })?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(TlsAcceptor::from(Arc::new(config)))
    }
}

fn read_certs(path: &Path, flag: &str) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("{flag} {}: cannot read PEM certificates", path.display()))?;
    anyhow::ensure!(
        !certs.is_empty(),
        "{flag} {}: the file holds no PEM certificate",
        path.display()
    );
    Ok(certs)
}

/// Accepts TCP connections and yields them once their TLS handshake has completed. Each
/// handshake runs in its own task, so a slow or silent client delays only itself; failed
/// handshakes are logged at debug level and dropped.
pub fn incoming(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    stop: CancellationToken,
) -> impl Stream<Item = Result<TlsStream<TcpStream>, std::io::Error>> {
    let (ready, streams) = mpsc::channel(64);
    // The accept loop and each handshake log under the serve task's span.
    tokio::spawn(tracing::Instrument::in_current_span(async move {
        loop {
            let (tcp, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(err) => {
                        tracing::warn!(error = %err, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                _ = stop.cancelled() => return,
            };
            let _ = tcp.set_nodelay(true);
            let acceptor = acceptor.clone();
            let ready = ready.clone();
            tokio::spawn(tracing::Instrument::in_current_span(async move {
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(stream)) => {
                        let _ = ready.send(Ok(stream)).await;
                    }
                    Ok(Err(err)) => tracing::debug!(%peer, error = %err, "TLS handshake failed"),
                    Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                }
            }));
        }
    }));
    ReceiverStream::new(streams)
}
