//! What the server offers, learned from its reflection service, so views can show a
//! panel only when the server has the data behind it.

use std::collections::BTreeSet;

use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

use crate::client::Client;

/// The gRPC services the server lists, or `None` when it does not answer reflection.
pub async fn services(client: &Client) -> Option<BTreeSet<String>> {
    let channel = client.channel().await.ok()?;
    let mut reflection = ServerReflectionClient::with_interceptor(channel, client.auth());
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = reflection
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .ok()?
        .into_inner();
    let response = responses.message().await.ok()??;
    match response.message_response? {
        MessageResponse::ListServicesResponse(list) => {
            Some(list.service.into_iter().map(|s| s.name).collect())
        }
        _ => None,
    }
}
