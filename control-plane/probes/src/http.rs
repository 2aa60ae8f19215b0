//! `http` checks: one HTTP/1.1 request over a fresh connection (TLS for `https://`),
//! with each phase timed: TCP connect, TLS handshake, response head, body.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::header::{HOST, USER_AGENT};
use http::uri::{PathAndQuery, Scheme};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Uri};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use pharos_core::domain::{HttpCheck, JsonCondition};
use regex::Regex;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

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
        let failed = |e: hyper::Error| format!("HTTP to {}: {}", self.authority, error_chain(&e));
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(failed)?;
        let mut request = Request::new(Empty::<Bytes>::new());
        *request.method_mut() = self.method.clone();
        *request.uri_mut() = Uri::from(self.target.clone());
        *request.headers_mut() = self.headers.clone();

        let exchange = async {
            let response = sender.send_request(request).await.map_err(failed)?;
            run.first_byte();
            let status = response.status().as_u16();
            let mut body = response.into_body();
            let mut bytes = Vec::new();
            while bytes.len() < MAX_BODY {
                let Some(frame) = body.frame().await else {
                    break;
                };
                let frame = frame.map_err(|e| {
                    format!("HTTP {status}, then reading the body: {}", error_chain(&e))
                })?;
                if let Ok(data) = frame.into_data() {
                    let take = data.len().min(MAX_BODY - bytes.len());
                    bytes.extend_from_slice(&data[..take]);
                }
            }
            Ok((status, bytes))
        };
        // The connection is driven here rather than spawned, so that dropping this future
        // closes it. Its errors reach `exchange` through hyper, so it only needs polling.
        let drive = async {
            let _ = connection.await;
            std::future::pending::<()>().await
        };
        tokio::select! {
            result = exchange => result,
            () = drive => unreachable!("drive never completes"),
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
mod tests {
    use std::net::SocketAddr;
    use std::time::Duration;

    use axum::Router;
    use axum::extract::Path;
    use axum::http::{HeaderMap, Method, StatusCode, header};
    use axum::routing::{any, get};
    use serde_json::json;
    use tokio::io::AsyncReadExt;

    use super::super::tests::{build_error, probe};
    use super::super::{ProbeOutcome, Verdict, run_with_timeout};
    use super::MAX_BODY;

    const JSON_BODY: &str =
        r#"{"status":"up","version":3,"checks":[{"name":"db","ok":true}],"ratio":0.5}"#;

    /// An HTTP server on a free loopback port; returns its `http://127.0.0.1:PORT`.
    async fn http_server() -> String {
        let app = Router::new()
            .route("/ok", get(|| async { "hello pharos v1.2.3" }))
            .route(
                "/status/{code}",
                get(|Path(code): Path<u16>| async move {
                    (
                        StatusCode::from_u16(code).unwrap(),
                        format!("status {code}"),
                    )
                }),
            )
            .route(
                "/json",
                get(|| async { ([(header::CONTENT_TYPE, "application/json")], JSON_BODY) }),
            )
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    "finally"
                }),
            )
            .route(
                "/big",
                get(|| async {
                    let mut body = "a".repeat(3 * MAX_BODY);
                    body.push_str("needle");
                    body
                }),
            )
            .route(
                "/echo",
                any(|method: Method, headers: HeaderMap| async move {
                    let probe = headers
                        .get("x-probe")
                        .map(|v| v.to_str().unwrap().to_owned());
                    let agent = headers
                        .get(header::USER_AGENT)
                        .unwrap()
                        .to_str()
                        .unwrap()
                        .to_owned();
                    format!("{method} {} {agent}", probe.unwrap_or_default())
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        format!("http://{address}")
    }

    async fn check(settings: serde_json::Value) -> ProbeOutcome {
        probe("http", settings).run().await
    }

    fn assert_verdict(outcome: &ProbeOutcome, verdict: Verdict, message: &str) {
        assert_eq!(
            (outcome.verdict, outcome.message.as_str()),
            (verdict, message),
            "{outcome:?}"
        );
    }

    #[tokio::test]
    async fn status_expectations() {
        let base = http_server().await;
        let ok = check(json!({ "url": format!("{base}/ok") })).await;
        assert_verdict(&ok, Verdict::Healthy, "ok");
        assert_eq!(ok.measurement("http_status"), Some(200.0));
        assert_eq!(ok.measurement("tls_days_left"), None);

        let outcome = check(json!({ "url": format!("{base}/status/503") })).await;
        assert_verdict(
            &outcome,
            Verdict::Unhealthy,
            "HTTP 503 (expected 2xx or 3xx)",
        );
        assert_eq!(outcome.measurement("http_status"), Some(503.0));
        // Redirects are not followed: a 3xx passes by default.
        let outcome = check(json!({ "url": format!("{base}/status/302") })).await;
        assert_verdict(&outcome, Verdict::Healthy, "ok");

        let outcome =
            check(json!({ "url": format!("{base}/status/503"), "expect_status": [503] })).await;
        assert_verdict(&outcome, Verdict::Healthy, "ok");
        let outcome = check(json!({ "url": format!("{base}/ok"), "expect_status": [204] })).await;
        assert_verdict(&outcome, Verdict::Unhealthy, "HTTP 200 (expected 204)");
        let outcome =
            check(json!({ "url": format!("{base}/status/404"), "expect_status": [200, 204] }))
                .await;
        assert_verdict(
            &outcome,
            Verdict::Unhealthy,
            "HTTP 404 (expected 200 or 204)",
        );
    }

    #[tokio::test]
    async fn body_substring_and_regex() {
        let base = http_server().await;
        let url = format!("{base}/ok");
        let outcome = check(json!({ "url": url, "body_contains": "pharos" })).await;
        assert_verdict(&outcome, Verdict::Healthy, "ok");
        let outcome = check(json!({ "url": url, "body_contains": "Pharos" })).await;
        assert_verdict(
            &outcome,
            Verdict::Unhealthy,
            "HTTP 200, but the body does not contain \"Pharos\"",
        );
        let outcome = check(json!({ "url": url, "body_regex": r"v\d+\.\d+\.\d+$" })).await;
        assert_verdict(&outcome, Verdict::Healthy, "ok");
        let outcome = check(json!({ "url": url, "body_regex": "^goodbye" })).await;
        assert_verdict(
            &outcome,
            Verdict::Unhealthy,
            "HTTP 200, but the body does not match /^goodbye/",
        );
        // The status is checked first.
        let outcome =
            check(json!({ "url": format!("{base}/status/500"), "body_contains": "status" })).await;
        assert_verdict(
            &outcome,
            Verdict::Unhealthy,
            "HTTP 500 (expected 2xx or 3xx)",
        );
    }

    #[tokio::test]
    async fn json_condition() {
        let base = http_server().await;
        let url = format!("{base}/json");
        for (pointer, equals) in [
            ("/status", json!("up")),
            ("/version", json!(3)),
            ("/checks/0/ok", json!(true)),
            ("/ratio", json!(0.5)),
            ("/checks/0", json!({"ok": true, "name": "db"})),
        ] {
            let outcome =
                check(json!({ "url": url, "json": { "pointer": pointer, "equals": equals } }))
                    .await;
            assert_verdict(&outcome, Verdict::Healthy, "ok");
        }
        let outcome =
            check(json!({ "url": url, "json": { "pointer": "/status", "equals": "down" } })).await;
        assert_verdict(
            &outcome,
            Verdict::Unhealthy,
            r#"JSON "/status" is "up" (expected "down")"#,
        );
        // serde_json equality: the number 3 is not the string "3".
        let outcome =
            check(json!({ "url": url, "json": { "pointer": "/version", "equals": "3" } })).await;
        assert_verdict(
            &outcome,
            Verdict::Unhealthy,
            r#"JSON "/version" is 3 (expected "3")"#,
        );
        let outcome =
            check(json!({ "url": url, "json": { "pointer": "/checks/1/ok", "equals": true } }))
                .await;
        assert_verdict(
            &outcome,
            Verdict::Unhealthy,
            r#"JSON "/checks/1/ok" is missing (expected true)"#,
        );
        let outcome =
            check(json!({ "url": format!("{base}/ok"), "json": { "pointer": "", "equals": {} } }))
                .await;
        assert_eq!(outcome.verdict, Verdict::Unhealthy);
        assert!(
            outcome
                .message
                .starts_with("HTTP 200, but the body is not JSON: "),
            "{}",
            outcome.message
        );
    }

    #[tokio::test]
    async fn slow_responses_are_degraded() {
        let base = http_server().await;
        let outcome =
            check(json!({ "url": format!("{base}/slow"), "degraded_after": "100ms" })).await;
        assert_eq!(outcome.verdict, Verdict::Degraded, "{outcome:?}");
        assert!(
            outcome.message.starts_with("slow: ")
                && outcome.message.ends_with(" (degraded after 100ms)"),
            "{}",
            outcome.message
        );
        assert_eq!(outcome.measurement("http_status"), Some(200.0));

        let outcome = check(json!({ "url": format!("{base}/slow"), "degraded_after": "1m" })).await;
        assert_verdict(&outcome, Verdict::Healthy, "ok");
        // Slow and failing is unhealthy.
        let outcome = check(json!({
            "url": format!("{base}/slow"),
            "degraded_after": "100ms",
            "expect_status": [204],
        }))
        .await;
        assert_verdict(&outcome, Verdict::Unhealthy, "HTTP 200 (expected 204)");
    }

    #[tokio::test]
    async fn timings_are_split_and_ordered() {
        let base = http_server().await;
        for path in ["/ok", "/slow", "/big"] {
            let outcome = check(json!({ "url": format!("{base}{path}") })).await;
            let t = &outcome.timings;
            let (connect, first_byte) = (t.connect.unwrap(), t.first_byte.unwrap());
            assert!(connect <= first_byte && first_byte <= t.total, "{t:?}");
            assert_eq!(t.tls, None);
            if path == "/slow" {
                // The server sleeps before sending the head.
                assert!(first_byte >= Duration::from_millis(300), "{t:?}");
            }
        }
    }

    #[tokio::test]
    async fn method_headers_and_body_limit() {
        let base = http_server().await;
        let outcome = check(json!({
            "url": format!("{base}/echo"),
            "method": "post",
            "headers": { "X-Probe": "hello" },
            "body_regex": "^POST hello pharos-probe/",
        }))
        .await;
        assert_verdict(&outcome, Verdict::Healthy, "ok");
        let outcome = check(json!({ "url": format!("{base}/ok"), "method": "HEAD" })).await;
        assert_verdict(&outcome, Verdict::Healthy, "ok");

        // Only the first MiB is read: the needle past it is never seen.
        let url = format!("{base}/big");
        let outcome = check(json!({ "url": url, "body_contains": "needle" })).await;
        assert_verdict(
            &outcome,
            Verdict::Unhealthy,
            "HTTP 200, but the body does not contain \"needle\"",
        );
        let outcome = check(json!({ "url": url, "body_regex": "^a+$" })).await;
        assert_verdict(&outcome, Verdict::Healthy, "ok");
    }

    #[tokio::test]
    async fn refused_and_timed_out() {
        let port = pharos_e2e::free_port();
        let outcome = check(json!({ "url": format!("http://127.0.0.1:{port}/") })).await;
        assert_eq!(outcome.verdict, Verdict::Unhealthy);
        assert!(
            outcome
                .message
                .starts_with(&format!("connect to 127.0.0.1:{port}: "))
                && outcome.message.contains("refused"),
            "{}",
            outcome.message
        );
        assert_eq!(outcome.timings.connect, None);

        // A server that reads the request and never answers: the caller's timeout ends
        // the probe, and dropping it closes the connection.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address: SocketAddr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut buf = vec![0; 4096];
            // Request bytes, then end of stream once the probe is dropped.
            while socket.read(&mut buf).await.unwrap() > 0 {}
        });
        let hung = probe("http", json!({ "url": format!("http://{address}/hang") }));
        let outcome = run_with_timeout(hung.as_ref(), Duration::from_millis(300)).await;
        assert_verdict(&outcome, Verdict::Unhealthy, "timed out after 300ms");
        assert_eq!(outcome.timings.total, Duration::from_millis(300));
        tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .expect("the probe's connection was closed")
            .unwrap();
    }

    #[test]
    fn settings_errors() {
        let error = |settings| build_error("http", settings);
        assert!(error(json!({ "url": "not a url" })).starts_with("invalid URL \"not a url\": "),);
        assert_eq!(
            error(json!({ "url": "ftp://files/x" })),
            "invalid URL \"ftp://files/x\": unsupported scheme \"ftp\": use http or https"
        );
        assert_eq!(
            error(json!({ "url": "/healthz" })),
            "invalid URL \"/healthz\": no scheme: start it with http:// or https://"
        );
        assert!(error(json!({ "url": "http://u:p@h/" })).contains("Authorization header"));
        assert_eq!(
            error(json!({ "url": "http://h/", "method": "GE T" })),
            "invalid HTTP method \"GE T\""
        );
        assert_eq!(
            error(json!({ "url": "http://h/", "headers": { "bad header": "x" } })),
            "invalid HTTP header \"bad header\": not a valid header name"
        );
        assert_eq!(
            error(json!({ "url": "http://h/", "expect_status": [200, 42] })),
            "invalid expect_status 42: HTTP status codes run from 100 to 599"
        );
        let err = error(json!({ "url": "http://h/", "body_regex": "(unclosed" }));
        assert!(
            err.starts_with("invalid body_regex \"(unclosed\": ") && err.contains("unclosed group"),
            "{err}"
        );
        assert!(
            error(json!({ "url": "http://h/", "json": { "pointer": "status", "equals": 1 } }))
                .starts_with("invalid JSON pointer \"status\": it must be empty or start with '/'")
        );
        assert!(
            error(json!({ "url": "http://h/", "degraded_after": "fast" }))
                .starts_with("invalid degraded_after \"fast\" (")
        );
        assert!(
            error(json!({ "url": "http://h/", "timeout": "1s" }))
                .starts_with("invalid http check settings: unknown field `timeout`")
        );
    }

    mod tls {
        use std::sync::Arc;

        use bytes::Bytes;
        use http_body_util::Full;
        use hyper_util::rt::TokioIo;
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
        use tempfile::TempDir;
        use tokio_rustls::TlsAcceptor;
        use tokio_rustls::rustls::ServerConfig;
        use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

        use super::*;

        struct HttpsServer {
            url: String,
            /// Holds `ca.pem`, the CA that signed the server's certificate.
            dir: TempDir,
            /// The certificate's notAfter, in days from now.
            days_left: f64,
        }

        impl HttpsServer {
            fn ca_file(&self) -> String {
                self.dir.path().join("ca.pem").display().to_string()
            }
        }

        /// An HTTPS server on a free loopback port whose certificate, for 127.0.0.1 and
        /// localhost, is signed by a CA made for the test and expires in `days` days
        /// (at midnight UTC).
        async fn https_server(days: u64) -> HttpsServer {
            let ca_key = KeyPair::generate().unwrap();
            let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
            ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            ca_params
                .distinguished_name
                .push(DnType::CommonName, "Pharos probe test CA");
            let ca_cert = ca_params.self_signed(&ca_key).unwrap();
            let ca = Issuer::new(ca_params, ca_key);

            let today = chrono::Utc::now().date_naive();
            let expiry = today + chrono::Days::new(days);
            let date = |d: chrono::NaiveDate| {
                use chrono::Datelike;
                rcgen::date_time_ymd(d.year(), d.month() as u8, d.day() as u8)
            };
            let leaf_key = KeyPair::generate().unwrap();
            let mut leaf_params =
                CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
                    .unwrap();
            leaf_params.not_before = date(today - chrono::Days::new(1));
            leaf_params.not_after = date(expiry);
            let leaf = leaf_params.signed_by(&leaf_key, &ca).unwrap();
            let days_left = (expiry.and_hms_opt(0, 0, 0).unwrap().and_utc() - chrono::Utc::now())
                .as_seconds_f64()
                / 86_400.0;

            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join("ca.pem"), ca_cert.pem()).unwrap();

            let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
            let config = ServerConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(
                    vec![leaf.der().clone()],
                    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
                )
                .unwrap();
            let acceptor = TlsAcceptor::from(Arc::new(config));
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let address = listener.local_addr().unwrap();
            tokio::spawn(async move {
                loop {
                    let (socket, _) = listener.accept().await.unwrap();
                    let acceptor = acceptor.clone();
                    tokio::spawn(async move {
                        // Failed handshakes (an untrusting client) just end here.
                        let Ok(tls) = acceptor.accept(socket).await else {
                            return;
                        };
                        let service = hyper::service::service_fn(|_request| async {
                            Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(
                                Bytes::from_static(b"secure hello"),
                            )))
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(tls), service)
                            .await;
                    });
                }
            });
            HttpsServer {
                url: format!("https://{address}/"),
                dir,
                days_left,
            }
        }

        #[tokio::test]
        async fn trusted_ca_file() {
            let server = https_server(30).await;
            let outcome = check(json!({
                "url": server.url,
                "ca_file": server.ca_file(),
                "body_contains": "secure hello",
            }))
            .await;
            assert_verdict(&outcome, Verdict::Healthy, "ok");
            let t = &outcome.timings;
            let (connect, tls, first_byte) =
                (t.connect.unwrap(), t.tls.unwrap(), t.first_byte.unwrap());
            assert!(
                connect <= tls && tls <= first_byte && first_byte <= t.total,
                "{t:?}"
            );
            let days_left = outcome.measurement("tls_days_left").unwrap();
            assert!(
                (days_left - server.days_left).abs() < 0.01 && days_left > 29.0,
                "tls_days_left {days_left}, expected {}",
                server.days_left
            );
            assert_eq!(outcome.measurement("http_status"), Some(200.0));

            // localhost is in the certificate too.
            let port = server.url.rsplit(':').next().unwrap();
            let outcome = check(json!({
                "url": format!("https://localhost:{port}"),
                "ca_file": server.ca_file(),
            }))
            .await;
            assert_verdict(&outcome, Verdict::Healthy, "ok");
        }

        #[tokio::test]
        async fn expiring_certificate_is_degraded() {
            let server = https_server(10).await;
            let outcome = check(json!({
                "url": server.url,
                "ca_file": server.ca_file(),
                "min_tls_days": 14,
            }))
            .await;
            assert_eq!(outcome.verdict, Verdict::Degraded, "{outcome:?}");
            assert_eq!(
                outcome.message,
                format!(
                    "TLS certificate expires in {:.1} days (minimum 14)",
                    outcome.measurement("tls_days_left").unwrap()
                )
            );
            let outcome = check(json!({
                "url": server.url,
                "ca_file": server.ca_file(),
                "min_tls_days": 7,
            }))
            .await;
            assert_verdict(&outcome, Verdict::Healthy, "ok");
        }

        #[tokio::test]
        async fn unknown_issuer_is_unhealthy() {
            // Without ca_file the public roots are trusted, and the test CA is not one.
            let server = https_server(30).await;
            let outcome = check(json!({ "url": server.url })).await;
            assert_eq!(outcome.verdict, Verdict::Unhealthy, "{outcome:?}");
            assert!(
                outcome.message.starts_with("TLS handshake with 127.0.0.1:")
                    && outcome.message.contains("UnknownIssuer"),
                "{}",
                outcome.message
            );
            let t = &outcome.timings;
            assert!(t.connect.is_some() && t.tls.is_none() && t.first_byte.is_none());
            assert!(outcome.measurements.is_empty());
        }

        #[test]
        fn ca_file_errors() {
            let dir = tempfile::tempdir().unwrap();
            let missing = dir.path().join("missing.pem").display().to_string();
            let err = build_error("http", json!({ "url": "https://h/", "ca_file": missing }));
            assert!(
                err.starts_with(&format!("ca_file {missing:?}: cannot read it: "))
                    && err.contains("No such file"),
                "{err}"
            );
            let garbage = dir.path().join("garbage.pem");
            std::fs::write(&garbage, "not a certificate\n").unwrap();
            let garbage = garbage.display().to_string();
            let err = build_error("http", json!({ "url": "https://h/", "ca_file": garbage }));
            assert_eq!(
                err,
                format!(
                    "ca_file {garbage:?}: no PEM certificate (-----BEGIN CERTIFICATE-----) in it"
                )
            );
            let broken = dir.path().join("broken.pem");
            std::fs::write(
                &broken,
                "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
            )
            .unwrap();
            let broken = broken.display().to_string();
            let err = build_error("http", json!({ "url": "https://h/", "ca_file": broken }));
            assert!(
                err.starts_with(&format!("ca_file {broken:?}: certificate 1: ")),
                "{err}"
            );
        }
    }
}
