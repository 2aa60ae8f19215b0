//! `pharos status`.

use pharos_proto::v1 as pb;
use serde_json::json;

use crate::Format;
use crate::client::{CliError, Client};

pub async fn status(client: &Client, format: Format) -> Result<(), CliError> {
    let overview = client
        .catalog()
        .await?
        .get_overview(pb::GetOverviewRequest {})
        .await
        .map_err(|status| client.error(&status))?
        .into_inner();
    match format {
        Format::Json => {
            let environments: Vec<_> = overview
                .environments
                .iter()
                .map(|env| {
                    json!({
                        "id": env.id,
                        "name": env.name,
                        "deployments": env.deployments,
                        "ports_allocated": env.ports_allocated,
                        "ports_available": env.ports_available,
                    })
                })
                .collect();
            let value = json!({
                "revision": overview.revision,
                "projects": overview.projects,
                "deployments": overview.deployments,
                "health": {
                    "healthy": overview.healthy_deployments,
                    "degraded": overview.degraded_deployments,
                    "unhealthy": overview.unhealthy_deployments,
                    "unknown": overview.unknown_deployments,
                },
                "ports_allocated": overview.ports_allocated,
                "ports_available": overview.ports_available,
                "environments": environments,
            });
            println!("{}", serde_json::to_string_pretty(&value).expect("json"));
        }
        Format::Table => {
            println!("Server       {}", client.server);
            println!("Revision     {}", overview.revision);
            println!("Projects     {}", overview.projects);
            println!("Deployments  {}", overview.deployments);
            println!(
                "Health       {} healthy, {} degraded, {} unhealthy, {} unknown",
                overview.healthy_deployments,
                overview.degraded_deployments,
                overview.unhealthy_deployments,
                overview.unknown_deployments
            );
            println!(
                "Ports        {} allocated, {} available",
                overview.ports_allocated, overview.ports_available
            );
            if !overview.environments.is_empty() {
                println!();
                println!(
                    "{:<16} {:<24} {:>11} {:>10} {:>10}",
                    "ENVIRONMENT", "NAME", "DEPLOYMENTS", "PORTS", "AVAILABLE"
                );
                for env in &overview.environments {
                    println!(
                        "{:<16} {:<24} {:>11} {:>10} {:>10}",
                        env.id, env.name, env.deployments, env.ports_allocated, env.ports_available
                    );
                }
            }
        }
    }
    Ok(())
}
