//! `pharos containers`: the containers pharosd discovered, with their latest stats.

use pharos_proto::v1 as pb;
use serde_json::json;

use crate::client::Client;
use crate::error::CliError;
use crate::output::{self, Cell, Output, Table, Tone};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only containers of this project (repeatable)
    #[arg(long)]
    project: Vec<String>,
    /// Only containers of this environment (repeatable)
    #[arg(long)]
    env: Vec<String>,
    /// Only labelled containers that match no deployment of the catalog
    #[arg(long)]
    unmatched: bool,
}

pub async fn run(client: &Client, args: Args, out: Output) -> Result<(), CliError> {
    let mut containers = client.containers().await?;
    let response = containers
        .list_containers(pb::ListContainersRequest {
            projects: args.project,
            environments: args.env,
            unmatched_only: args.unmatched,
            ..Default::default()
        })
        .await
        .map_err(|status| client.error(&status))?
        .into_inner();
    let engine = response.engine.unwrap_or_default();
    let value = json!({
        "engine": engine_json(&engine),
        "containers": response.containers.iter().map(container_json).collect::<Vec<_>>(),
    });
    out.emit(&value, |out| {
        let mut text = String::new();
        if engine.state != pb::EngineState::Up as i32 {
            let mut line = format!("container engine {}", engine_state(engine.state));
            if !engine.endpoint.is_empty() {
                line.push_str(&format!(" at {}", engine.endpoint));
            }
            if !engine.error.is_empty() {
                line.push_str(&format!(": {}", engine.error));
            }
            text.push_str(&line);
            text.push('\n');
        }
        if response.containers.is_empty() {
            text.push_str("no containers\n");
            return text;
        }
        let mut table = Table::new(&[
            "NAME",
            "DEPLOYMENT",
            "STATE",
            "HEALTH",
            ">CPU %",
            ">MEMORY",
            ">RESTARTS",
        ])
        .wide(&["SERVICE", "IMAGE", "STATUS", "ID"]);
        for c in &response.containers {
            let (cpu, memory) = match &c.stats {
                Some(s) => (
                    format!("{:.1}", s.cpu_percent),
                    format!(
                        "{} / {}",
                        bytes(s.memory_used_bytes),
                        bytes(s.memory_limit_bytes)
                    ),
                ),
                None => (String::new(), String::new()),
            };
            let state = state_name(c.state);
            let state_tone = if state == "running" {
                Tone::Good
            } else {
                Tone::Bad
            };
            let health = health_name(c.health);
            let health_tone = match health {
                "healthy" => Tone::Good,
                "unhealthy" => Tone::Bad,
                "starting" => Tone::Warn,
                _ => Tone::Muted,
            };
            table.row(vec![
                c.name.clone().into(),
                if c.deployment_id.is_empty() {
                    Cell::toned("(unmatched)", Tone::Muted)
                } else {
                    c.deployment_id.clone().into()
                },
                Cell::toned(state, state_tone),
                Cell::toned(health, health_tone),
                cpu.into(),
                memory.into(),
                c.restart_count.to_string().into(),
                c.service.clone().into(),
                c.image.clone().into(),
                c.status_text.clone().into(),
                c.id.chars().take(12).collect::<String>().into(),
            ]);
        }
        text.push_str(&table.render(out));
        text
    });
    Ok(())
}

pub fn state_name(state: i32) -> &'static str {
    match pb::ContainerState::try_from(state) {
        Ok(pb::ContainerState::Created) => "created",
        Ok(pb::ContainerState::Running) => "running",
        Ok(pb::ContainerState::Paused) => "paused",
        Ok(pb::ContainerState::Restarting) => "restarting",
        Ok(pb::ContainerState::Removing) => "removing",
        Ok(pb::ContainerState::Exited) => "exited",
        Ok(pb::ContainerState::Dead) => "dead",
        _ => "unknown",
    }
}

fn health_name(health: i32) -> &'static str {
    match pb::ContainerHealth::try_from(health) {
        Ok(pb::ContainerHealth::Starting) => "starting",
        Ok(pb::ContainerHealth::Healthy) => "healthy",
        Ok(pb::ContainerHealth::Unhealthy) => "unhealthy",
        _ => "none",
    }
}

fn engine_state(state: i32) -> &'static str {
    match pb::EngineState::try_from(state) {
        Ok(pb::EngineState::Disabled) => "disabled",
        Ok(pb::EngineState::Connecting) => "connecting",
        Ok(pb::EngineState::Up) => "up",
        Ok(pb::EngineState::Down) => "down",
        _ => "unknown",
    }
}

fn engine_json(engine: &pb::EngineStatus) -> serde_json::Value {
    json!({
        "endpoint": engine.endpoint,
        "state": engine_state(engine.state),
        "version": engine.version,
        "error": engine.error,
        "since": output::time(engine.since.as_ref()),
    })
}

fn container_json(c: &pb::Container) -> serde_json::Value {
    json!({
        "id": c.id,
        "name": c.name,
        "image": c.image,
        "deployment_id": c.deployment_id,
        "project_id": c.project_id,
        "environment": c.environment,
        "service": c.service,
        "state": state_name(c.state),
        "health": health_name(c.health),
        "status_text": c.status_text,
        "exit_code": c.exit_code,
        "created": output::time(c.created.as_ref()),
        "started": output::time(c.started.as_ref()),
        "restart_count": c.restart_count,
        "labels": c.labels,
        "stats": c.stats.as_ref().map(|s| json!({
            "cpu_percent": s.cpu_percent,
            "memory_used_bytes": s.memory_used_bytes,
            "memory_limit_bytes": s.memory_limit_bytes,
            "time": output::time(s.time.as_ref()),
        })),
    })
}

/// "512.0MiB", "1.5GiB".
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n}B")
    } else {
        format!("{value:.1}{}", UNITS[unit])
    }
}
