//! `pharos operations [ID]`: the operations pharosd ran or planned, or one with its steps.

use pharos_proto::v1 as pb;
use serde_json::json;

use crate::client::Client;
use crate::error::CliError;
use crate::output::{self, Cell, Output, Table, Tone};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// One operation's id: show it with its steps
    id: Option<String>,
    /// Only operations on this deployment (<project>/<environment>)
    #[arg(long)]
    deployment: Option<String>,
    /// At most this many operations
    #[arg(long, default_value_t = 50)]
    limit: u32,
}

pub async fn run(client: &Client, args: Args, out: Output) -> Result<(), CliError> {
    let mut actions = client.actions().await?;
    if let Some(id) = args.id {
        let operation = actions
            .get_operation(pb::GetOperationRequest { id })
            .await
            .map_err(|status| client.error(&status))?
            .into_inner()
            .operation
            .unwrap_or_default();
        out.emit(&operation_json(&operation), |out| {
            render_one(&operation, out)
        });
        return Ok(());
    }
    let operations = actions
        .list_operations(pb::ListOperationsRequest {
            deployment_id: args.deployment.unwrap_or_default(),
            states: Vec::new(),
            page_size: args.limit.clamp(1, 1000),
            page_token: String::new(),
        })
        .await
        .map_err(|status| client.error(&status))?
        .into_inner()
        .operations;
    let value = json!({
        "operations": operations.iter().map(operation_json).collect::<Vec<_>>(),
    });
    out.emit(&value, |out| {
        if operations.is_empty() {
            return "no operations\n".to_owned();
        }
        let mut table = Table::new(&[
            "ID",
            "KIND",
            "DEPLOYMENT",
            "STATE",
            "CREATED",
            "ACTOR",
            "RESULT",
        ])
        .wide(&["REASON", "REQUEST ID", ">STEPS"]);
        for op in &operations {
            table.row(vec![
                op.id.clone().into(),
                kind_name(op.kind).into(),
                op.deployment_id.clone().into(),
                state_cell(op),
                output::time(op.create_time.as_ref()).into(),
                op.actor.clone().into(),
                op.result.clone().into(),
                op.reason.clone().into(),
                op.request_id.clone().into(),
                op.steps.len().to_string().into(),
            ]);
        }
        table.render(out)
    });
    Ok(())
}

/// One operation: its header lines, then a table of its steps.
pub fn render_one(op: &pb::Operation, out: &Output) -> String {
    let mut text = format!(
        "operation {}: {} {}{}\nstate:     {}\nactor:     {}\nreason:    {}\ncreated:   {}\n",
        op.id,
        kind_name(op.kind),
        op.deployment_id,
        if op.kind == pb::OperationKind::Scale as i32 {
            format!(" to {} replicas", op.replicas)
        } else {
            String::new()
        },
        out.paint(state_name(op.state), state_tone(op.state)),
        op.actor,
        op.reason,
        output::time(op.create_time.as_ref()),
    );
    if !op.request_id.is_empty() {
        text.push_str(&format!("request:   {}\n", op.request_id));
    }
    if !op.result.is_empty() {
        text.push_str(&format!("result:    {}\n", op.result));
    }
    if op.steps.is_empty() {
        return text;
    }
    text.push('\n');
    let mut table =
        Table::new(&["#", "STEP", "STATE", "MESSAGE"]).wide(&["CONTAINER", "STARTED", "FINISHED"]);
    for (n, step) in op.steps.iter().enumerate() {
        table.row(vec![
            (n + 1).to_string().into(),
            step.description.clone().into(),
            Cell::toned(step_state_name(step.state), step_tone(step.state)),
            step.message.clone().into(),
            step.container_id
                .chars()
                .take(12)
                .collect::<String>()
                .into(),
            output::time(step.started.as_ref()).into(),
            output::time(step.finished.as_ref()).into(),
        ]);
    }
    text.push_str(&table.render(out));
    text
}

fn state_cell(op: &pb::Operation) -> Cell {
    Cell::toned(state_name(op.state), state_tone(op.state))
}

pub fn kind_name(kind: i32) -> &'static str {
    match pb::OperationKind::try_from(kind) {
        Ok(pb::OperationKind::Restart) => "restart",
        Ok(pb::OperationKind::Stop) => "stop",
        Ok(pb::OperationKind::Start) => "start",
        Ok(pb::OperationKind::Scale) => "scale",
        Ok(pb::OperationKind::RolloutRestart) => "rollout-restart",
        _ => "unknown",
    }
}

pub fn state_name(state: i32) -> &'static str {
    match pb::OperationState::try_from(state) {
        Ok(pb::OperationState::Pending) => "pending",
        Ok(pb::OperationState::Running) => "running",
        Ok(pb::OperationState::Succeeded) => "succeeded",
        Ok(pb::OperationState::Failed) => "failed",
        Ok(pb::OperationState::Interrupted) => "interrupted",
        Ok(pb::OperationState::Planned) => "planned",
        _ => "unknown",
    }
}

fn state_tone(state: i32) -> Tone {
    match pb::OperationState::try_from(state) {
        Ok(pb::OperationState::Succeeded) => Tone::Good,
        Ok(pb::OperationState::Failed) | Ok(pb::OperationState::Interrupted) => Tone::Bad,
        Ok(pb::OperationState::Running) | Ok(pb::OperationState::Pending) => Tone::Warn,
        _ => Tone::Muted,
    }
}

pub fn step_state_name(state: i32) -> &'static str {
    match pb::StepState::try_from(state) {
        Ok(pb::StepState::Pending) => "pending",
        Ok(pb::StepState::Running) => "running",
        Ok(pb::StepState::Succeeded) => "succeeded",
        Ok(pb::StepState::Failed) => "failed",
        Ok(pb::StepState::Skipped) => "skipped",
        _ => "unknown",
    }
}

fn step_tone(state: i32) -> Tone {
    match pb::StepState::try_from(state) {
        Ok(pb::StepState::Succeeded) => Tone::Good,
        Ok(pb::StepState::Failed) => Tone::Bad,
        Ok(pb::StepState::Running) => Tone::Warn,
        _ => Tone::Muted,
    }
}

pub fn operation_json(op: &pb::Operation) -> serde_json::Value {
    json!({
        "id": op.id,
        "kind": kind_name(op.kind),
        "deployment_id": op.deployment_id,
        "actor": op.actor,
        "reason": op.reason,
        "request_id": op.request_id,
        "dry_run": op.dry_run,
        "replicas": op.replicas,
        "state": state_name(op.state),
        "result": op.result,
        "create_time": output::time(op.create_time.as_ref()),
        "start_time": output::time(op.start_time.as_ref()),
        "finish_time": output::time(op.finish_time.as_ref()),
        "version": op.version,
        "steps": op.steps.iter().map(|s| json!({
            "description": s.description,
            "state": step_state_name(s.state),
            "message": s.message,
            "container_id": s.container_id,
            "started": output::time(s.started.as_ref()),
            "finished": output::time(s.finished.as_ref()),
        })).collect::<Vec<_>>(),
    })
}
