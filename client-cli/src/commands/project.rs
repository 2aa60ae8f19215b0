//! `pharos project ID`.

use pharos_proto::v1 as pb;
use serde_json::json;

use crate::client::Client;
use crate::error::CliError;
use crate::output::{self, Output, Table};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The project's id (see `pharos projects`)
    id: String,
}

pub async fn run(client: &Client, args: Args, out: Output) -> Result<(), CliError> {
    let response = client
        .catalog()
        .await?
        .get_project(pb::GetProjectRequest { id: args.id })
        .await
        .map_err(|status| client.error(&status))?
        .into_inner();
    let project = response.project.unwrap_or_default();
    let deployments: Vec<_> = response
        .deployments
        .iter()
        .map(|d| {
            json!({
                "id": d.id,
                "environment": d.environment,
                "ports": d.ports.iter().map(|p| json!({
                    "port": p.port,
                    "type": port_type(p.r#type),
                    "service": p.service,
                })).collect::<Vec<_>>(),
                "checks": d.checks.iter().map(|c| json!({
                    "name": c.name,
                    "kind": c.kind,
                    "target": c.target,
                    "interval_ms": output::millis(c.interval.as_ref()),
                    "timeout_ms": output::millis(c.timeout.as_ref()),
                })).collect::<Vec<_>>(),
                "container_selector": d.container_selector,
            })
        })
        .collect();
    let mut value = super::projects::project_json(&project);
    value["deployments"] = deployments.into();
    out.emit(&value, |out| {
        let mut text = String::new();
        for (label, value) in [
            ("Project", project.id.as_str()),
            ("Name", project.name.as_str()),
            ("Type", project.r#type.as_str()),
            ("Subdomain", project.subdomain.as_str()),
            ("Description", project.description.as_str()),
        ] {
            if !value.is_empty() {
                text.push_str(&format!(
                    "{label:<13}{}\n",
                    super::status::first_line(value)
                ));
            }
        }
        let mut ports = Table::new(&["ENVIRONMENT", ">PORT", "TYPE", "SERVICE"]);
        let mut checks =
            Table::new(&["ENVIRONMENT", "CHECK", "KIND", "TARGET"]).wide(&["INTERVAL", "TIMEOUT"]);
        for deployment in &response.deployments {
            for port in &deployment.ports {
                ports.row(vec![
                    deployment.environment.as_str().into(),
                    port.port.to_string().into(),
                    port_type(port.r#type).into(),
                    port.service.as_str().into(),
                ]);
            }
            for check in &deployment.checks {
                checks.row(vec![
                    deployment.environment.as_str().into(),
                    check.name.as_str().into(),
                    check.kind.as_str().into(),
                    check.target.as_str().into(),
                    output::short_duration(check.interval.as_ref()).into(),
                    output::short_duration(check.timeout.as_ref()).into(),
                ]);
            }
        }
        let environments: Vec<&str> = response
            .deployments
            .iter()
            .map(|d| d.environment.as_str())
            .collect();
        text.push_str(&format!(
            "{:<13}{}\n",
            "Deployed in",
            if environments.is_empty() {
                "nowhere".to_owned()
            } else {
                environments.join(", ")
            }
        ));
        for table in [ports, checks] {
            if !table.is_empty() {
                text.push('\n');
                text.push_str(&table.render(out));
            }
        }
        text
    });
    Ok(())
}

fn port_type(value: i32) -> String {
    pb::PortType::try_from(value)
        .map(|t| {
            t.as_str_name()
                .trim_start_matches("PORT_TYPE_")
                .to_lowercase()
        })
        .unwrap_or_default()
}
