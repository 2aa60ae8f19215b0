//! Following an operation to its end over WatchOperation, through pharosd restarts.

use std::time::Duration;

use pharos_proto::v1 as pb;
use tonic::Code;

use super::progress::Progress;
use crate::client::Client;
use crate::commands::operations;
use crate::error::CliError;
use crate::output::Output;

/// No later version will come: a planned operation is a dry run's answer and never starts.
fn finished(op: &pb::Operation) -> bool {
    matches!(
        pb::OperationState::try_from(op.state),
        Ok(pb::OperationState::Succeeded
            | pb::OperationState::Failed
            | pb::OperationState::Interrupted
            | pb::OperationState::Planned)
    )
}

/// Follows the operation until it ends, resuming after its last version when the stream
/// breaks (a pharosd restart).
pub(super) async fn follow(
    client: &Client,
    operation: pb::Operation,
    out: Output,
) -> Result<pb::Operation, CliError> {
    let mut progress = Progress::new(out);
    if !out.structured() {
        eprintln!(
            "operation {}: {} {}",
            operation.id,
            operations::kind_name(operation.kind),
            operation.deployment_id
        );
    }
    progress.show(&operation);
    let mut last = operation;
    let mut backoff = Duration::from_millis(200);
    while !finished(&last) {
        let attempt = async {
            let mut actions = client.actions().await?;
            let mut stream = actions
                .watch_operation(pb::WatchOperationRequest {
                    id: last.id.clone(),
                    after_version: last.version,
                })
                .await
                .map_err(|status| client.error(&status))?
                .into_inner();
            loop {
                match stream.message().await {
                    Ok(Some(response)) => {
                        if let Some(op) = response.operation {
                            progress.show(&op);
                            let done = finished(&op);
                            last = op;
                            if done {
                                return Ok(());
                            }
                        }
                    }
                    Ok(None) => {
                        return Err(CliError::Unreachable("operation stream ended".to_owned()));
                    }
                    Err(status)
                        if status.code() == Code::Unavailable || status.code() == Code::Unknown =>
                    {
                        return Err(CliError::Unreachable(status.message().to_owned()));
                    }
                    Err(status) => return Err(client.error(&status)),
                }
            }
        }
        .await;
        match attempt {
            Ok(()) => break,
            Err(CliError::Unreachable(why)) => {
                eprintln!(
                    "pharos: lost the operation stream ({why}); reconnecting in {}ms",
                    backoff.as_millis()
                );
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
            Err(other) => {
                progress.finish();
                return Err(other);
            }
        }
    }
    progress.finish();
    Ok(last)
}
