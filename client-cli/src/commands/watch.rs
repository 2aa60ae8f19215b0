//! `pharos watch`: prints changes as they arrive; after a disconnect or a server restart it
//! reconnects with backoff and resumes from the last revision it saw, so nothing is
//! repeated or lost. The reconnecting is [`ResumingWatch`]'s, shared with the live views.

use pharos_proto::v1 as pb;
use serde_json::json;

use crate::client::Client;
use crate::error::CliError;
use crate::output::{Output, status_name};
use crate::resume::{ResumingWatch, WatchEvent};

#[derive(Debug, clap::Args)]
pub struct WatchArgs {
    /// Topics to watch: catalog, events, health, containers, operations [default: all]
    #[arg(value_parser = ["catalog", "events", "health", "containers", "operations"])]
    topics: Vec<String>,
    /// Resume after this revision instead of starting with a snapshot
    #[arg(long, default_value_t = 0)]
    since: u64,
    /// Only changes concerning this project (repeatable)
    #[arg(long = "project")]
    projects: Vec<String>,
    /// Only changes concerning this environment (repeatable)
    #[arg(long = "env")]
    environments: Vec<String>,
    /// Health topic: only checks and deployments in (or leaving) this status (repeatable)
    #[arg(long = "status", value_parser = ["healthy", "degraded", "unhealthy", "unknown"])]
    statuses: Vec<String>,
    /// Skip the initial snapshot's objects (still waits for it)
    #[arg(long)]
    no_snapshot: bool,
}

pub async fn run(client: &Client, args: WatchArgs, out: Output) -> Result<(), CliError> {
    let topics: Vec<i32> = args
        .topics
        .iter()
        .map(|topic| match topic.as_str() {
            "catalog" => pb::WatchTopic::Catalog as i32,
            "health" => pb::WatchTopic::Health as i32,
            "containers" => pb::WatchTopic::Containers as i32,
            "operations" => pb::WatchTopic::Operations as i32,
            _ => pb::WatchTopic::Events as i32,
        })
        .collect();
    let request = pb::WatchRequest {
        since_revision: args.since,
        topics,
        projects: args.projects,
        environments: args.environments,
        health_statuses: args
            .statuses
            .iter()
            .map(|status| match status.as_str() {
                "healthy" => pb::HealthStatus::Healthy as i32,
                "degraded" => pb::HealthStatus::Degraded as i32,
                "unhealthy" => pb::HealthStatus::Unhealthy as i32,
                _ => pb::HealthStatus::Unspecified as i32,
            })
            .collect(),
        // The CLI does not stream metric series (yet).
        metric_selectors: Vec::new(),
    };
    let mut watch = ResumingWatch::new(client.clone(), request);
    loop {
        match watch.next().await? {
            WatchEvent::Change(change) => {
                if !(watch.in_snapshot() && args.no_snapshot) {
                    print_change(&change, out);
                }
            }
            WatchEvent::Synced(revision) => {
                if out.structured() {
                    println!("{}", json!({"snapshot_complete": revision}));
                } else {
                    eprintln!("pharos: snapshot complete at revision {revision}");
                }
            }
            WatchEvent::Reset | WatchEvent::Progress(_) | WatchEvent::Metrics => {}
        }
    }
}

fn print_change(change: &pb::Change, out: Output) {
    let kind = pb::ChangeKind::try_from(change.kind)
        .map(|k| {
            k.as_str_name()
                .trim_start_matches("CHANGE_KIND_")
                .to_lowercase()
        })
        .unwrap_or_default();
    let topic = pb::WatchTopic::try_from(change.topic)
        .map(|t| {
            t.as_str_name()
                .trim_start_matches("WATCH_TOPIC_")
                .to_lowercase()
        })
        .unwrap_or_default();
    let summary = summary(change);
    if out.structured() {
        println!(
            "{}",
            json!({"revision": change.revision, "topic": topic, "kind": kind, "key": change.key, "summary": summary})
        );
    } else {
        println!(
            "{:>8}  {:<8} {:<9} {:<40} {}",
            change.revision, topic, kind, change.key, summary
        );
    }
}

fn summary(change: &pb::Change) -> String {
    use pb::change::Object;
    match &change.object {
        Some(Object::Environment(env)) => env.name.clone(),
        Some(Object::Project(project)) => format!("{} ({})", project.name, project.r#type),
        Some(Object::Deployment(d)) => format!("{} checks", d.checks.len()),
        Some(Object::PortAllocation(port)) => format!("{} {}", port.port, port.service),
        Some(Object::Event(event)) => event.message.lines().next().unwrap_or_default().to_owned(),
        Some(Object::CheckHealth(check)) => {
            let message = check
                .last_result
                .as_ref()
                .map(|r| r.message.as_str())
                .unwrap_or_default();
            let flapping = if check.flapping { " (flapping)" } else { "" };
            format!("{}{flapping} {message}", status_name(check.status))
        }
        Some(Object::DeploymentHealth(health)) => format!(
            "{} ({} healthy, {} degraded, {} unhealthy, {} unknown checks)",
            status_name(health.status),
            health.healthy_checks,
            health.degraded_checks,
            health.unhealthy_checks,
            health.unknown_checks
        ),
        Some(Object::Container(c)) => {
            let deployment = if c.deployment_id.is_empty() {
                "unmatched"
            } else {
                c.deployment_id.as_str()
            };
            format!("{} {} ({deployment})", c.name, c.status_text)
        }
        Some(Object::ContainerEngine(engine)) => {
            let state = pb::EngineState::try_from(engine.state)
                .map(|s| {
                    s.as_str_name()
                        .trim_start_matches("ENGINE_STATE_")
                        .to_lowercase()
                })
                .unwrap_or_default();
            format!("engine {state} {}{}", engine.version, engine.error)
        }
        Some(Object::Operation(op)) => {
            let state = pb::OperationState::try_from(op.state)
                .map(|s| {
                    s.as_str_name()
                        .trim_start_matches("OPERATION_STATE_")
                        .to_lowercase()
                })
                .unwrap_or_default();
            format!("{} {state} {}", op.deployment_id, op.result)
        }
        None => String::new(),
    }
}
