//! A small HTTP/1.1 client (hyper) for scraping and webhooks: one connection per
//! request, a deadline over the whole exchange, and a cap on the body read.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// A response: status and at most the body limit's bytes.
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
    /// The body was longer than the limit and was cut.
    pub truncated: bool,
}

/// Sends one request to an `http://` URL and reads the answer, within `timeout`.
pub async fn send(
    method: &str,
    url: &str,
    headers: &[(&str, String)],
    body: Vec<u8>,
    timeout: Duration,
    max_body: usize,
) -> Result<Response, String> {
    tokio::time::timeout(timeout, exchange(method, url, headers, body, max_body))
        .await
        .unwrap_or_else(|_| {
            Err(format!(
                "no answer within {}",
                humantime::format_duration(timeout)
            ))
        })
}

async fn exchange(
    method: &str,
    url: &str,
    headers: &[(&str, String)],
    body: Vec<u8>,
    max_body: usize,
) -> Result<Response, String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("invalid URL {url:?}: {e}"))?;
    if parsed.scheme() != "http" {
        return Err(format!("only http:// URLs are supported, not {url:?}"));
    }
    let host = parsed.host_str().ok_or("URL without a host")?.to_owned();
    let port = parsed.port_or_known_default().unwrap_or(80);
    let stream = TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|e| format!("connecting to {host}:{port}: {e}"))?;
    let _ = stream.set_nodelay(true);
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP handshake with {host}:{port}: {e}"))?;
    let mut path = parsed.path().to_owned();
    if let Some(query) = parsed.query() {
        path.push('?');
        path.push_str(query);
    }
    let mut builder = Request::builder()
        .method(method)
        .uri(path)
        .header("host", format!("{host}:{port}"))
        .header("user-agent", concat!("pharosd/", env!("CARGO_PKG_VERSION")));
    for (name, value) in headers {
        builder = builder.header(*name, value);
    }
    let request = builder
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| format!("building the request: {e}"))?;
    let exchange = async {
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| format!("HTTP to {host}:{port}: {e}"))?;
        let status = response.status().as_u16();
        let mut body = response.into_body();
        let mut bytes = Vec::new();
        let mut truncated = false;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| format!("HTTP {status}, reading the body: {e}"))?;
            if let Ok(data) = frame.into_data() {
                let room = max_body.saturating_sub(bytes.len());
                if data.len() > room {
                    bytes.extend_from_slice(&data[..room]);
                    truncated = true;
                    break;
                }
                bytes.extend_from_slice(&data);
            }
        }
        Ok(Response {
            status,
            body: bytes,
            truncated,
        })
    };
    // Driven here, not spawned, so that dropping the future closes the connection.
    let drive = async {
        let _ = connection.await;
        std::future::pending::<()>().await
    };
    tokio::select! {
        result = exchange => result,
        () = drive => unreachable!("drive never completes"),
    }
}
