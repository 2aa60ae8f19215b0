//! A minimal HTTP GET for health checks and plain endpoints.
//!
//! It speaks HTTP/1.0 on purpose: the server then closes the connection after the
//! response and never uses chunked encoding, so "read to EOF, split at the blank line"
//! is a complete client, with no HTTP library to pull in.

use anyhow::{Context, Result, anyhow};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    /// Header lines as sent, e.g. `content-type: text/plain`.
    pub headers: Vec<String>,
    pub body: String,
}

/// `GET http://{addr}{path}` with a 5 s limit on the whole exchange.
pub async fn http_get(addr: &str, path: &str) -> Result<HttpResponse> {
    http_get_with(addr, path, &[]).await
}

/// [`http_get`] with extra request headers, such as `("Accept", "application/json")`.
pub async fn http_get_with(
    addr: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<HttpResponse> {
    tokio::time::timeout(Duration::from_secs(5), get(addr, path, headers))
        .await
        .with_context(|| format!("GET http://{addr}{path} timed out"))?
}

async fn get(addr: &str, path: &str, headers: &[(&str, &str)]) -> Result<HttpResponse> {
    let mut stream = TcpStream::connect(addr).await?;
    let mut request = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| anyhow!("malformed response: {text:?}"))?;
    let mut lines = head.lines();
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow!("malformed status line: {status_line:?}"))?;
    Ok(HttpResponse {
        status,
        headers: lines.map(str::to_owned).collect(),
        body: body.to_owned(),
    })
}
