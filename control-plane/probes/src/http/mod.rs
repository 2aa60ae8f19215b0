//! `http` checks: one HTTP/1.1 request over a fresh connection (TLS for `https://`),
//! with each phase timed: TCP connect, TLS handshake, response head, body.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::header::{HOST, USER_AGENT};
use http::uri::{PathAndQuery, Scheme};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Uri};
use http_body_util::Empty;
use pharos_core::domain::{HttpCheck, JsonCondition};
use regex::Regex;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

use crate::exchange::{ExchangeError, exchange};

use super::{
    Probe, ProbeError, ProbeOutcome, Run, Verdict, error_chain, format_duration, parse_duration,
};

/// The most of a response body that is read (and checked).
pub(super) const MAX_BODY: usize = 1024 * 1024;

pub(super) struct HttpProbe {
    /// `host:port` for messages.
    authority: String,
    /// Host name or IP address (IPv6 without brackets) to connect to.
    host: String,
    port: u16,
    tls: Option<Tls>,
    method: Method,
    /// The request target: path and query.
    target: PathAndQuery,
    headers: HeaderMap,
    expect_status: Vec<u16>,
    body_contains: Option<String>,
    body_regex: Option<Regex>,
    json: Option<JsonCondition>,
    degraded_after: Option<Duration>,
    min_tls_days: Option<u32>,
}

struct Tls {
    connector: TlsConnector,
    server_name: ServerName<'static>,
}

impl HttpProbe {
    pub(super) fn build(settings: &HttpCheck) -> Result<Self, ProbeError> {
        let url = &settings.url;
        let bad_url = |reason: &str| ProbeError::BadUrl {
            url: url.clone(),
            reason: reason.to_owned(),
        };
        let uri: Uri = url.parse().map_err(|e: http::uri::InvalidUri| {
            bad_url(&format!(
                "{e}; expected such as https://api.example.com/healthz"
            ))
        })?;
        let https = match uri.scheme() {
            Some(scheme) if *scheme == Scheme::HTTP => false,
            Some(scheme) if *scheme == Scheme::HTTPS => true,
            Some(scheme) => {
                return Err(bad_url(&format!(
                    "unsupported scheme {:?}: use http or https",
                    scheme.as_str()
                )));
            }
            None => return Err(bad_url("no scheme: start it with http:// or https://")),
        };
        let authority = uri.authority().ok_or_else(|| bad_url("no host"))?;
        if authority.as_str().contains('@') {
            return Err(bad_url(
                "credentials in the URL are not supported: send an Authorization header instead",
            ));
        }
        let host = authority.host();
        if host.is_empty() {
            return Err(bad_url("no host"));
        }
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host)
            .to_owned();
        let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
        let target = uri
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"));

        let method_name = settings.method.as_deref().unwrap_or("GET");
        let method = Method::from_bytes(method_name.to_ascii_uppercase().as_bytes())
            .map_err(|_| ProbeError::BadMethod(method_name.to_owned()))?;

        let mut headers = HeaderMap::new();
        let host_header =
            HeaderValue::from_str(authority.as_str()).map_err(|_| bad_url("bad host"))?;
        headers.insert(HOST, host_header);
        headers.insert(
            USER_AGENT,
            HeaderValue::from_static(concat!("pharos-probe/", env!("CARGO_PKG_VERSION"))),
        );
        for (name, value) in &settings.headers {
            let bad_header = |reason: &str| ProbeError::BadHeader {
                name: name.clone(),
                reason: reason.to_owned(),
            };
            let header_name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| bad_header("not a valid header name"))?;
            let header_value = HeaderValue::from_str(value)
                .map_err(|_| bad_header("the value must be visible ASCII on one line"))?;
            headers.insert(header_name, header_value);
        }

        if let Some(&status) = settings
            .expect_status
            .iter()
            .find(|s| !(100..=599).contains(*s))
        {
            return Err(ProbeError::BadStatus(status));
        }
        let body_regex = settings
            .body_regex
            .as_deref()
            .map(|pattern| {
                Regex::new(pattern).map_err(|e| ProbeError::BadRegex {
                    pattern: pattern.to_owned(),
                    reason: e.to_string(),
                })
            })
            .transpose()?;
        if let Some(json) = &settings.json
            && !(json.pointer.is_empty() || json.pointer.starts_with('/'))
        {
            return Err(ProbeError::BadPointer(json.pointer.clone()));
        }
        let degraded_after = settings
            .degraded_after
            .as_deref()
            .map(|text| parse_duration("degraded_after", text))
            .transpose()?;

        let tls = if https {
            let config = match &settings.ca_file {
                Some(path) => Arc::new(client_config(ca_roots(path)?)),
                None => default_client_config(),
            };
            let server_name = ServerName::try_from(host.clone())
                .map_err(|_| bad_url("the host is neither a DNS name nor an IP address"))?;
            Some(Tls {
                connector: TlsConnector::from(config),
                server_name,
            })
        } else {
            None
        };

        Ok(HttpProbe {
            authority: format!("{}:{port}", authority.host()),
            host,
            port,
            tls,
            method,
            target,
            headers,
            expect_status: settings.expect_status.clone(),
            body_contains: settings.body_contains.clone(),
            body_regex,
            json: settings.json.clone(),
            degraded_after,
            min_tls_days: settings.min_tls_days,
        })
    }

    /// Sends the request over `stream` and judges the response.
    async fn exchange<S>(&self, mut run: Run, stream: S, tls_days_left: Option<f64>) -> ProbeOutcome
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let result = self.request(&mut run, stream).await;
        run.stop_clock();
        if let Some(days) = tls_days_left {
            run.measure("tls_days_left", days);
        }
        let (status, body) = match result {
            Ok(response) => response,
            Err(message) => return run.unhealthy(message),
        };
        run.measure("http_status", f64::from(status));
        if let Some(message) = self.failure(status, &body) {
            return run.unhealthy(message);
        }
        let mut warnings = Vec::new();
        let total = run.total.unwrap_or_default();
        if let Some(limit) = self.degraded_after
            && total > limit
        {
            let (total, limit) = (format_duration(total), format_duration(limit));
            warnings.push(format!("slow: {total} (degraded after {limit})"));
        }
        if let (Some(days), Some(min)) = (tls_days_left, self.min_tls_days)
            && days < f64::from(min)
        {
            warnings.push(format!(
                "TLS certificate expires in {days:.1} days (minimum {min})"
            ));
        }
        if warnings.is_empty() {
            run.healthy()
        } else {
            run.finish(Verdict::Degraded, warnings.join("; "))
        }
    }

    /// The response's status and the first [`MAX_BODY`] bytes of its body.
    async fn request<S>(&self, run: &mut Run, stream: S) -> Result<(u16, Vec<u8>), String>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let mut request = Request::new(Empty::<Bytes>::new());
        *request.method_mut() = self.method.clone();
        *request.uri_mut() = Uri::from(self.target.clone());
        *request.headers_mut() = self.headers.clone();
        match exchange(stream, request, MAX_BODY, || run.first_byte()).await {
            Ok(answer) => Ok((answer.status, answer.body)),
            Err(ExchangeError::Handshake(e) | ExchangeError::Send(e)) => {
                Err(format!("HTTP to {}: {}", self.authority, error_chain(&e)))
            }
            Err(ExchangeError::Body { status, source }) => Err(format!(
                "HTTP {status}, then reading the body: {}",
                error_chain(&source)
            )),
        }
    }

    /// What is wrong with the response, if anything.
    fn failure(&self, status: u16, body: &[u8]) -> Option<String> {
        let status_ok = if self.expect_status.is_empty() {
            (200..400).contains(&status)
        } else {
            self.expect_status.contains(&status)
        };
        if !status_ok {
            let expected = if self.expect_status.is_empty() {
                "2xx or 3xx".to_owned()
            } else {
                let codes: Vec<String> = self.expect_status.iter().map(u16::to_string).collect();
                codes.join(" or ")
            };
            return Some(format!("HTTP {status} (expected {expected})"));
        }
        let text = String::from_utf8_lossy(body);
        if let Some(needle) = &self.body_contains
            && !text.contains(needle.as_str())
        {
            return Some(format!(
                "HTTP {status}, but the body does not contain {needle:?}"
            ));
        }
        if let Some(regex) = &self.body_regex
            && !regex.is_match(&text)
        {
            return Some(format!(
                "HTTP {status}, but the body does not match /{regex}/"
            ));
        }
        if let Some(condition) = &self.json {
            let value: serde_json::Value = match serde_json::from_slice(body) {
                Ok(value) => value,
                Err(e) => return Some(format!("HTTP {status}, but the body is not JSON: {e}")),
            };
            let pointer = &condition.pointer;
            let expected = shorten(&condition.equals.to_string());
            match value.pointer(pointer) {
                None => {
                    return Some(format!("JSON {pointer:?} is missing (expected {expected})"));
                }
                Some(actual) if *actual != condition.equals => {
                    return Some(format!(
                        "JSON {pointer:?} is {} (expected {expected})",
                        shorten(&actual.to_string())
                    ));
                }
                Some(_) => {}
            }
        }
        None
    }
}

#[async_trait::async_trait]
impl Probe for HttpProbe {
    async fn run(&self) -> ProbeOutcome {
        let mut run = Run::start();
        let tcp = match TcpStream::connect((self.host.as_str(), self.port)).await {
            Ok(tcp) => tcp,
            Err(e) => return run.unhealthy(format!("connect to {}: {e}", self.authority)),
        };
        run.connected();
        let _ = tcp.set_nodelay(true);
        let Some(tls) = &self.tls else {
            return self.exchange(run, tcp, None).await;
        };
        let stream = match tls.connector.connect(tls.server_name.clone(), tcp).await {
            Ok(stream) => stream,
            Err(e) => {
                return run.unhealthy(format!(
                    "TLS handshake with {}: {}",
                    self.authority,
                    error_chain(&e)
                ));
            }
        };
        run.tls_done();
        let days_left = stream
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|chain| chain.first())
            .and_then(|leaf| super::x509::not_after(leaf))
            .map(days_until);
        self.exchange(run, stream, days_left).await
    }
}

/// Days from now until `timestamp` (seconds since the epoch), negative once past.
fn days_until(timestamp: i64) -> f64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64();
    (timestamp as f64 - now) / 86_400.0
}

fn shorten(text: &str) -> String {
    const MAX: usize = 80;
    if text.chars().count() <= MAX {
        text.to_owned()
    } else {
        let mut short: String = text.chars().take(MAX - 1).collect();
        short.push('…');
        short
    }
}

/// The TLS client settings for a CA file (PEM), or the public roots without one; the
/// error names the file and what is wrong with it.
pub fn tls_client_config(ca_file: Option<&str>) -> Result<Arc<ClientConfig>, String> {
    match ca_file {
        Some(path) => ca_roots(path)
            .map(|roots| Arc::new(client_config(roots)))
            .map_err(|e| e.to_string()),
        None => Ok(default_client_config()),
    }
}

/// The CA certificates of a PEM file.
fn ca_roots(path: &str) -> Result<RootCertStore, ProbeError> {
    let bad = |reason: String| ProbeError::CaFile {
        path: path.to_owned(),
        reason,
    };
    let pem = std::fs::read(path).map_err(|e| bad(format!("cannot read it: {e}")))?;
    let mut roots = RootCertStore::empty();
    for (i, cert) in CertificateDer::pem_slice_iter(&pem).enumerate() {
        let cert = cert.map_err(|e| bad(format!("certificate {}: bad PEM: {e}", i + 1)))?;
        roots
            .add(cert)
            .map_err(|e| bad(format!("certificate {}: {e}", i + 1)))?;
    }
    if roots.is_empty() {
        return Err(bad(
            "no PEM certificate (-----BEGIN CERTIFICATE-----) in it".into(),
        ));
    }
    Ok(roots)
}

fn client_config(roots: RootCertStore) -> ClientConfig {
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config
}

/// Trusts the Mozilla root programme's CAs (webpki-roots, compiled in: no system files).
fn default_client_config() -> Arc<ClientConfig> {
    static CONFIG: OnceLock<Arc<ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let roots = RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            };
            Arc::new(client_config(roots))
        })
        .clone()
}

#[cfg(test)]
mod tests;
