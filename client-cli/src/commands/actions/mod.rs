//! `pharos restart|stop|start|scale|rollout restart TARGET`: ask pharosd for an operation
//! on a deployment, then follow it with WatchOperation until it ends. Exit code 0 only
//! when the operation succeeded.

mod follow;
mod progress;

use std::io::{BufRead as _, IsTerminal as _, Write as _};

use pharos_proto::v1 as pb;

use self::follow::follow;
use super::operations;
use crate::client::Client;
use crate::error::CliError;
use crate::output::Output;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The deployment: <project>/<environment>
    target: String,
    /// Why, recorded with the operation and in the audit log
    #[arg(long)]
    reason: String,
    /// Do not ask for confirmation (required when stdin is not a terminal)
    #[arg(short, long)]
    yes: bool,
    /// Only print the steps the operation would take; change nothing
    #[arg(long)]
    dry_run: bool,
    /// Idempotency key: repeating a request with the same id returns the same operation
    #[arg(long)]
    request_id: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct ScaleArgs {
    #[command(flatten)]
    common: Args,
    /// Containers the deployment should have
    #[arg(long)]
    replicas: u32,
}

#[derive(Debug, clap::Subcommand)]
pub enum Rollout {
    /// Replace the deployment's containers one at a time, waiting for each to be ready
    #[command(
        after_help = "Example:\n  pharos rollout restart billing/prod --reason \"pick up new config\""
    )]
    Restart(Args),
}

#[derive(Debug)]
pub enum Action {
    Restart(Args),
    Stop(Args),
    Start(Args),
    Scale(ScaleArgs),
    RolloutRestart(Args),
}

impl Action {
    fn common(&self) -> &Args {
        match self {
            Action::Restart(a) | Action::Stop(a) | Action::Start(a) | Action::RolloutRestart(a) => {
                a
            }
            Action::Scale(s) => &s.common,
        }
    }

    fn verb(&self) -> String {
        match self {
            Action::Restart(_) => "restart".to_owned(),
            Action::Stop(_) => "stop".to_owned(),
            Action::Start(_) => "start".to_owned(),
            Action::Scale(s) => format!("scale to {} replicas", s.replicas),
            Action::RolloutRestart(_) => "rollout-restart".to_owned(),
        }
    }
}

pub async fn run(client: &Client, action: Action, out: Output) -> Result<(), CliError> {
    let args = action.common();
    if !args.dry_run && !args.yes {
        confirm(&format!("{} {}", action.verb(), args.target))?;
    }
    let mut actions = client.actions().await?;
    let deployment_id = args.target.clone();
    let reason = args.reason.clone();
    let request_id = args.request_id.clone().unwrap_or_default();
    let dry_run = args.dry_run;
    let error = |status: tonic::Status| client.error(&status);
    let operation = match &action {
        Action::Restart(_) => {
            actions
                .restart_deployment(pb::RestartDeploymentRequest {
                    deployment_id,
                    reason,
                    request_id,
                    dry_run,
                })
                .await
                .map_err(error)?
                .into_inner()
                .operation
        }
        Action::Stop(_) => {
            actions
                .stop_deployment(pb::StopDeploymentRequest {
                    deployment_id,
                    reason,
                    request_id,
                    dry_run,
                })
                .await
                .map_err(error)?
                .into_inner()
                .operation
        }
        Action::Start(_) => {
            actions
                .start_deployment(pb::StartDeploymentRequest {
                    deployment_id,
                    reason,
                    request_id,
                    dry_run,
                })
                .await
                .map_err(error)?
                .into_inner()
                .operation
        }
        Action::Scale(s) => {
            actions
                .scale_deployment(pb::ScaleDeploymentRequest {
                    deployment_id,
                    reason,
                    request_id,
                    dry_run,
                    replicas: s.replicas,
                })
                .await
                .map_err(error)?
                .into_inner()
                .operation
        }
        Action::RolloutRestart(_) => {
            actions
                .rollout_restart(pb::RolloutRestartRequest {
                    deployment_id,
                    reason,
                    request_id,
                    dry_run,
                })
                .await
                .map_err(error)?
                .into_inner()
                .operation
        }
    }
    .unwrap_or_default();
    if dry_run {
        if !out.structured() {
            println!("dry run: nothing was changed; the planned steps:");
        }
        out.emit(&operations::operation_json(&operation), |out| {
            operations::render_one(&operation, out)
        });
        return Ok(());
    }
    let last = follow(client, operation, out).await?;
    if out.structured() {
        out.emit(&operations::operation_json(&last), |_| String::new());
    }
    if last.state == pb::OperationState::Succeeded as i32 {
        if !out.structured() {
            println!("operation {} succeeded: {}", last.id, last.result);
        }
        return Ok(());
    }
    let failed_step = last
        .steps
        .iter()
        .enumerate()
        .find(|(_, s)| s.state == pb::StepState::Failed as i32)
        .map(|(n, s)| format!(" at step {} ({}): {}", n + 1, s.description, s.message))
        .unwrap_or_default();
    Err(CliError::Other(format!(
        "operation {} {}{failed_step}{}",
        last.id,
        operations::state_name(last.state),
        if last.result.is_empty() {
            String::new()
        } else {
            format!("; {}", last.result)
        }
    )))
}

/// Asks on the terminal; refuses when stdin is not one.
fn confirm(what: &str) -> Result<(), CliError> {
    if !std::io::stdin().is_terminal() {
        return Err(CliError::Invalid(format!(
            "refusing to {what} without confirmation: stdin is not a terminal; pass --yes to confirm"
        )));
    }
    eprint!("{what}? [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    let _ = std::io::stdin().lock().read_line(&mut answer);
    if matches!(answer.trim(), "y" | "Y" | "yes" | "Yes" | "YES") {
        Ok(())
    } else {
        Err(CliError::Invalid(format!(
            "{what}: not confirmed, nothing was changed"
        )))
    }
}
