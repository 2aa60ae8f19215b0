//! `pharos status`: the catalog overview, the health summary, the alerts firing and the
//! catalog's SQL KPIs (GetAggregates).

use std::collections::HashMap;

use pharos_proto::v1 as pb;
use serde_json::json;

use crate::client::Client;
use crate::error::CliError;
use crate::output::{self, Cell, Output, Table};

pub async fn run(client: &Client, out: Output) -> Result<(), CliError> {
    let overview = client
        .catalog()
        .await?
        .get_overview(pb::GetOverviewRequest {})
        .await
        .map_err(|status| client.error(&status))?
        .into_inner();
    let summary = client
        .health()
        .await?
        .get_health_summary(pb::GetHealthSummaryRequest {})
        .await
        .map_err(|status| client.error(&status))?
        .into_inner();
    // A server without GetAggregates (older) leaves the KPI part out.
    let aggregates = match client
        .metrics()
        .await?
        .get_aggregates(pb::GetAggregatesRequest {})
        .await
    {
        Ok(response) => response.into_inner().groups,
        Err(status) if status.code() == tonic::Code::Unimplemented => Vec::new(),
        Err(status) => return Err(client.error(&status)),
    };
    let alerts_firing = aggregates
        .iter()
        .find(|g| g.name == "alerts")
        .and_then(|g| g.values.iter().find(|v| v.labels.is_empty()))
        .map(|v| v.value as u64);
    let kpis: Vec<(&str, &pb::AggregateGroup)> = aggregates
        .iter()
        .filter_map(|g| g.name.strip_prefix("kpi:").map(|name| (name, g)))
        .collect();
    let kpi_json: Vec<_> = kpis
        .iter()
        .map(|(name, group)| {
            json!({
                "kpi": name,
                "updated": group.updated.as_ref().map(|t| output::time(Some(t))),
                "error": group.error,
                "values": group.values.iter().map(|v| json!({
                    "name": v.name,
                    "labels": v.labels.iter().filter(|(k, _)| *k != "kpi").collect::<std::collections::BTreeMap<_, _>>(),
                    "value": v.value,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let env_health: HashMap<&str, i32> = summary
        .environments
        .iter()
        .map(|env| (env.environment.as_str(), env.status))
        .collect();
    let health_of = |id: &str| output::status_name(env_health.get(id).copied().unwrap_or(0));

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
                "health": health_of(&env.id),
            })
        })
        .collect();
    let failures: Vec<_> = summary.recent_failures.iter().map(result_json).collect();
    let value = json!({
        "server": client.server,
        "revision": overview.revision,
        "projects": overview.projects,
        "deployments": overview.deployments,
        "health": {
            "healthy": overview.healthy_deployments,
            "degraded": overview.degraded_deployments,
            "unhealthy": overview.unhealthy_deployments,
            "unknown": overview.unknown_deployments,
        },
        "uptime_percent_24h": summary.uptime_percent_24h,
        "flapping_checks": summary.flapping_checks,
        "ports_allocated": overview.ports_allocated,
        "ports_available": overview.ports_available,
        "environments": environments,
        "recent_failures": failures,
        "alerts_firing": alerts_firing,
        "kpis": kpi_json,
    });
    out.emit(&value, |out| {
        let mut text = String::new();
        let mut line = |label: &str, value: String| {
            text.push_str(&format!("{label:<13}{value}\n"));
        };
        line("Server", client.server.clone());
        line("Revision", overview.revision.to_string());
        line("Projects", overview.projects.to_string());
        line("Deployments", overview.deployments.to_string());
        line(
            "Health",
            format!(
                "{} healthy, {} degraded, {} unhealthy, {} unknown",
                overview.healthy_deployments,
                overview.degraded_deployments,
                overview.unhealthy_deployments,
                overview.unknown_deployments
            ),
        );
        line(
            "Uptime 24h",
            summary
                .uptime_percent_24h
                .map(|p| format!("{p:.3} %"))
                .unwrap_or_else(|| "no runs yet".to_owned()),
        );
        line("Flapping", format!("{} checks", summary.flapping_checks));
        if let Some(firing) = alerts_firing {
            line("Alerts", format!("{firing} firing"));
        }
        line(
            "Ports",
            format!(
                "{} allocated, {} available",
                overview.ports_allocated, overview.ports_available
            ),
        );
        if !overview.environments.is_empty() {
            let mut table = Table::new(&[
                "ENVIRONMENT",
                "NAME",
                ">DEPLOYMENTS",
                ">PORTS",
                ">AVAILABLE",
                "HEALTH",
            ]);
            for env in &overview.environments {
                table.row(vec![
                    env.id.as_str().into(),
                    env.name.as_str().into(),
                    env.deployments.to_string().into(),
                    env.ports_allocated.to_string().into(),
                    env.ports_available.to_string().into(),
                    output::status_cell(env_health.get(env.id.as_str()).copied().unwrap_or(0)),
                ]);
            }
            text.push('\n');
            text.push_str(&table.render(out));
        }
        if !kpis.is_empty() {
            let mut table = Table::new(&["KPI", "VALUE", "LABELS", ">FIGURE", "READ"]);
            for (name, group) in &kpis {
                let read = match &group.updated {
                    Some(at) => output::time(Some(at)),
                    None => "never".to_owned(),
                };
                if group.values.is_empty() || !group.error.is_empty() {
                    let problem = if group.error.is_empty() {
                        group.notes.join("; ")
                    } else {
                        format!("failing: {}", group.error)
                    };
                    table.row(vec![
                        (*name).into(),
                        Cell::from(first_line(&problem)),
                        "".into(),
                        "".into(),
                        read.clone().into(),
                    ]);
                }
                for value in &group.values {
                    let labels: Vec<String> = value
                        .labels
                        .iter()
                        .filter(|(k, _)| *k != "kpi")
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect();
                    let mut labels = labels;
                    labels.sort();
                    table.row(vec![
                        (*name).into(),
                        value.name.as_str().into(),
                        labels.join(",").into(),
                        value.value.to_string().into(),
                        read.clone().into(),
                    ]);
                }
            }
            text.push('\n');
            text.push_str(&table.render(out));
        }
        if !summary.recent_failures.is_empty() {
            let mut table = Table::new(&["RECENT FAILURE", "CHECK", "OUTCOME", "MESSAGE"]);
            for result in &summary.recent_failures {
                table.row(vec![
                    output::time(result.time.as_ref()).into(),
                    result.check_id.as_str().into(),
                    output::status_cell(result.outcome),
                    Cell::from(first_line(&result.message)),
                ]);
            }
            text.push('\n');
            text.push_str(&table.render(out));
        }
        text
    });
    Ok(())
}

pub fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}

/// A check result with stable field names; durations in milliseconds.
pub fn result_json(result: &pb::CheckResult) -> serde_json::Value {
    json!({
        "check_id": result.check_id,
        "time": output::time(result.time.as_ref()),
        "outcome": output::status_name(result.outcome),
        "message": result.message,
        "connect_ms": output::millis(result.connect.as_ref()),
        "tls_ms": output::millis(result.tls.as_ref()),
        "first_byte_ms": output::millis(result.first_byte.as_ref()),
        "total_ms": output::millis(result.total.as_ref()),
        "measurements": result.measurements,
    })
}
