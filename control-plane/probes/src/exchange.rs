//! The one HTTP/1.1 exchange both HTTP users share: the HTTP probe and the client for
//! scraping, notifications and Prometheus backends. Over a stream already connected
//! (plain or TLS), it sends one request, reads the head and at most `max_body` bytes of
//! the body. The connection is driven inside the returned future, not spawned, so
//! dropping the future (a timeout) closes it.

use http::Request;
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};

/// A response: its status and at most the body limit's bytes.
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
    /// The body was longer than the limit and was cut.
    pub truncated: bool,
}

/// Where an exchange failed; callers word it for their own messages.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    #[error("HTTP handshake failed")]
    Handshake(#[source] hyper::Error),
    #[error("sending the request failed")]
    Send(#[source] hyper::Error),
    #[error("HTTP {status}, then reading the body failed")]
    Body {
        status: u16,
        #[source]
        source: hyper::Error,
    },
}

/// Sends `request` over `stream`; `on_head` runs when the response head has arrived
/// (the probe's first-byte time).
pub async fn exchange<S, B>(
    stream: S,
    request: Request<B>,
    max_body: usize,
    on_head: impl FnOnce(),
) -> Result<Answer, ExchangeError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(ExchangeError::Handshake)?;
    let exchange = async {
        let response = sender
            .send_request(request)
            .await
            .map_err(ExchangeError::Send)?;
        on_head();
        let status = response.status().as_u16();
        let mut body = response.into_body();
        let mut bytes = Vec::new();
        let mut truncated = false;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|source| ExchangeError::Body { status, source })?;
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
        Ok(Answer {
            status,
            body: bytes,
            truncated,
        })
    };
    // Driven here, not spawned, so that dropping the future closes the connection. Its
    // errors reach `exchange` through hyper, so it only needs polling.
    let drive = async {
        let _ = connection.await;
        std::future::pending::<()>().await
    };
    tokio::select! {
        result = exchange => result,
        () = drive => unreachable!("drive never completes"),
    }
}
