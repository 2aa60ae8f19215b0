//! A small HTTP/1.1 client for scraping, notifications and Prometheus backends, on the
//! same exchange as the HTTP probe ([`crate::exchange`]): one connection per request, `http://` or `https://` (rustls; the public roots, or the
//! CA of a `ca_file`), a deadline over the whole exchange, and a cap on the body read.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::Request;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::ClientConfig;
use tokio_rustls::rustls::pki_types::ServerName;

use crate::exchange::{self as shared, ExchangeError};

/// TLS settings for `https://` URLs; `None` trusts the public roots.
pub type Tls = Option<std::sync::Arc<ClientConfig>>;

/// A response: status and at most the body limit's bytes.
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
    /// The body was longer than the limit and was cut.
    pub truncated: bool,
}

/// The TLS settings for a `ca_file` (none: the public roots).
pub fn tls_for(ca_file: Option<&str>) -> Result<Tls, String> {
    ca_file
        .map(|path| crate::http::tls_client_config(Some(path)))
        .transpose()
}

/// A request: method, URL, headers and body.
pub struct Call<'a> {
    pub method: &'a str,
    pub url: &'a str,
    pub headers: &'a [(&'a str, String)],
    pub body: Vec<u8>,
}

/// Sends one request and reads the answer, within `timeout`, at most `max_body` bytes of
/// the body.
pub async fn send(
    call: Call<'_>,
    tls: &Tls,
    timeout: Duration,
    max_body: usize,
) -> Result<Response, String> {
    tokio::time::timeout(timeout, exchange(call, tls, max_body))
        .await
        .unwrap_or_else(|_| {
            Err(format!(
                "no answer within {}",
                humantime::format_duration(timeout)
            ))
        })
}

async fn exchange(call: Call<'_>, tls: &Tls, max_body: usize) -> Result<Response, String> {
    let url = call.url;
    let parsed = url::Url::parse(url).map_err(|e| format!("invalid URL {url:?}: {e}"))?;
    let https = match parsed.scheme() {
        "http" => false,
        "https" => true,
        _ => {
            return Err(format!(
                "only http:// and https:// URLs are supported, not {url:?}"
            ));
        }
    };
    let host = parsed.host_str().ok_or("URL without a host")?.to_owned();
    let port = parsed.port_or_known_default().unwrap_or(80);
    let stream = TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|e| format!("connecting to {host}:{port}: {e}"))?;
    let _ = stream.set_nodelay(true);
    if !https {
        return over(stream, &parsed, &host, port, call, max_body).await;
    }
    let config = match tls {
        Some(config) => config.clone(),
        None => crate::http::tls_client_config(None)?,
    };
    // An IP host is an IP address name; url keeps IPv6 hosts in brackets.
    let name = ServerName::try_from(host.trim_matches(['[', ']']).to_owned())
        .map_err(|_| format!("{host:?} is neither a DNS name nor an IP address"))?;
    let stream = TlsConnector::from(config)
        .connect(name, stream)
        .await
        .map_err(|e| format!("TLS with {host}:{port}: {e}"))?;
    over(stream, &parsed, &host, port, call, max_body).await
}

/// The HTTP/1.1 exchange over a connected stream.
async fn over<S>(
    stream: S,
    parsed: &url::Url,
    host: &str,
    port: u16,
    call: Call<'_>,
    max_body: usize,
) -> Result<Response, String>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut path = parsed.path().to_owned();
    if let Some(query) = parsed.query() {
        path.push('?');
        path.push_str(query);
    }
    let mut builder = Request::builder()
        .method(call.method)
        .uri(path)
        .header("host", format!("{host}:{port}"))
        .header("user-agent", concat!("pharosd/", env!("CARGO_PKG_VERSION")));
    for (name, value) in call.headers {
        builder = builder.header(*name, value);
    }
    let request = builder
        .body(Full::new(Bytes::from(call.body)))
        .map_err(|e| format!("building the request: {e}"))?;
    match shared::exchange(stream, request, max_body, || {}).await {
        Ok(answer) => Ok(Response {
            status: answer.status,
            body: answer.body,
            truncated: answer.truncated,
        }),
        Err(ExchangeError::Handshake(e)) => Err(format!("HTTP handshake with {host}:{port}: {e}")),
        Err(ExchangeError::Send(e)) => Err(format!("HTTP to {host}:{port}: {e}")),
        Err(ExchangeError::Body { status, source }) => {
            Err(format!("HTTP {status}, reading the body: {source}"))
        }
    }
}
