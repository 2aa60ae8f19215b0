//! `pharos restart|stop|start|scale|rollout restart TARGET`: ask pharosd for an operation
//! on a deployment, then follow it with WatchOperation until it ends. Exit code 0 only
//! when the operation succeeded.

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use pharos_proto::v1 as pb;
use tonic::Code;

use super::operations::{self, step_state_name};
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

fn finished(op: &pb::Operation) -> bool {
    matches!(
        pb::OperationState::try_from(op.state),
        Ok(pb::OperationState::Succeeded
            | pb::OperationState::Failed
            | pb::OperationState::Interrupted
            | pb::OperationState::Planned)
    )
}

/// Shows each step's progress: spinners on a terminal, one line per step change otherwise.
struct Progress {
    bars: Option<(MultiProgress, Vec<ProgressBar>)>,
    printed: Vec<i32>,
    quiet: bool,
}

impl Progress {
    fn new(out: Output) -> Progress {
        let live = std::io::stderr().is_terminal() && !out.structured();
        Progress {
            bars: live.then(|| {
                (
                    MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
                    Vec::new(),
                )
            }),
            printed: Vec::new(),
            quiet: out.structured(),
        }
    }

    fn show(&mut self, op: &pb::Operation) {
        if let Some((multi, bars)) = &mut self.bars {
            while bars.len() < op.steps.len() {
                let bar = multi.add(ProgressBar::new_spinner());
                bar.set_style(
                    ProgressStyle::with_template("{spinner} {prefix} {wide_msg}")
                        .expect("valid template"),
                );
                bar.enable_steady_tick(Duration::from_millis(120));
                bars.push(bar);
            }
            for (n, (step, bar)) in op.steps.iter().zip(bars.iter()).enumerate() {
                bar.set_prefix(format!(
                    "[{}/{}] {}",
                    n + 1,
                    op.steps.len(),
                    step.description
                ));
                let state = step_state_name(step.state);
                let message = if step.message.is_empty() {
                    state.to_owned()
                } else {
                    format!("{state}: {}", step.message)
                };
                match pb::StepState::try_from(step.state) {
                    Ok(pb::StepState::Succeeded) => bar.finish_with_message(format!("✓ {message}")),
                    Ok(pb::StepState::Failed) => bar.finish_with_message(format!("✗ {message}")),
                    Ok(pb::StepState::Skipped) => bar.finish_with_message(format!("- {message}")),
                    _ => bar.set_message(message),
                }
            }
            return;
        }
        if self.quiet {
            return;
        }
        self.printed.resize(op.steps.len(), 0);
        for (n, step) in op.steps.iter().enumerate() {
            if self.printed[n] != step.state {
                self.printed[n] = step.state;
                let mut line = format!(
                    "step {}/{} {}: {}",
                    n + 1,
                    op.steps.len(),
                    step.description,
                    step_state_name(step.state)
                );
                if !step.message.is_empty() {
                    line.push_str(&format!(" ({})", step.message));
                }
                eprintln!("{line}");
            }
        }
    }

    fn finish(&mut self) {
        if let Some((_, bars)) = &self.bars {
            for bar in bars {
                if !bar.is_finished() {
                    bar.abandon();
                }
            }
        }
    }
}

/// Follows the operation until it ends, resuming after its last version when the stream
/// breaks (a pharosd restart).
async fn follow(
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
