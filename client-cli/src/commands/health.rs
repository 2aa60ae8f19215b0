//! `pharos health [PROJECT] [-w]`: every check's status from the health topic's snapshot,
//! one project's checks with uptime windows, or (-w) a table redrawn in place from one
//! resuming Watch stream.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use pharos_proto::v1 as pb;
use serde_json::json;

use crate::board::HealthBoard;
use crate::client::Client;
use crate::error::CliError;
use crate::output::{self, Cell, Format, Output, Table};
use crate::resume::{ResumingWatch, WatchEvent};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only this project; without -w, shows its uptime and latency windows
    project: Option<String>,
    /// Only checks in this environment (repeatable)
    #[arg(long = "env")]
    environments: Vec<String>,
    /// Keep the table live, redrawn in place as checks change status
    #[arg(short, long)]
    watch: bool,
}

pub async fn run(client: &Client, args: Args, out: Output) -> Result<(), CliError> {
    if let (Some(project), false) = (&args.project, args.watch) {
        return project_health(client, project, &args.environments, out).await;
    }
    let request = pb::WatchRequest {
        since_revision: 0,
        topics: vec![pb::WatchTopic::Health as i32],
        projects: args.project.iter().cloned().collect(),
        environments: args.environments.clone(),
        health_statuses: Vec::new(),
        ..Default::default()
    };
    let mut watch = ResumingWatch::new(client.clone(), request);
    let mut board = HealthBoard::default();
    if !args.watch {
        loop {
            let event = watch.next().await?;
            let done = matches!(event, WatchEvent::Synced(_) | WatchEvent::Progress(_));
            board.apply(event);
            if done {
                break;
            }
        }
        out.emit(&board_json(&board), |out| render_board(&board, out));
        return Ok(());
    }

    let redraw_in_place = std::io::stdout().is_terminal() && !out.structured();
    let mut updates = watch.spawn();
    let mut dirty = false;
    let mut connected = true;
    // Changes arriving together are drawn once.
    let mut tick = tokio::time::interval(Duration::from_millis(150));
    loop {
        tokio::select! {
            update = updates.recv() => {
                let Some(update) = update else { return Ok(()) };
                dirty |= board.apply(update.event?) || connected != update.connected;
                connected = update.connected;
            }
            _ = tick.tick() => {
                if dirty && board.synced {
                    dirty = false;
                    draw(&board, out, redraw_in_place, connected);
                }
            }
        }
    }
}

fn draw(board: &HealthBoard, out: Output, in_place: bool, connected: bool) {
    let mut stdout = std::io::stdout().lock();
    match out.format {
        Format::Json => {
            let _ = writeln!(
                stdout,
                "{}",
                serde_json::to_string(&board_json(board)).expect("json")
            );
        }
        Format::Yaml => {
            let _ = write!(
                stdout,
                "---\n{}",
                serde_yaml::to_string(&board_json(board)).expect("yaml")
            );
        }
        Format::Table | Format::Wide => {
            let mut text = render_board(board, &out);
            let [healthy, degraded, unhealthy, unknown] = board.counts();
            text.push_str(&format!(
                "\n{} checks: {healthy} healthy, {degraded} degraded, {unhealthy} unhealthy, {unknown} unknown · revision {} · {}\n",
                board.checks.len(),
                board.revision,
                if connected { "live" } else { "reconnecting" },
            ));
            if in_place {
                // Home, draw, then clear whatever the previous frame left below.
                let _ = write!(stdout, "\x1b[H\x1b[2J{text}");
            } else {
                let _ = writeln!(stdout, "{text}");
            }
        }
    }
    let _ = stdout.flush();
}

fn render_board(board: &HealthBoard, out: &Output) -> String {
    if board.checks.is_empty() {
        return "no checks\n".to_owned();
    }
    let mut table = Table::new(&[
        "PROJECT", "ENV", "CHECK", "KIND", "STATUS", "SINCE", "MESSAGE",
    ])
    .wide(&[">LATENCY", "LAST RUN"]);
    for check in board.checks.values() {
        let mut status = output::status_cell(check.status);
        if check.flapping {
            status.text.push_str(" (flapping)");
        }
        let last = check.last_result.as_ref();
        table.row(vec![
            check.project_id.as_str().into(),
            check.environment.as_str().into(),
            check.name.as_str().into(),
            check.kind.as_str().into(),
            status,
            output::time(check.since.as_ref()).into(),
            Cell::from(super::status::first_line(
                last.map(|r| r.message.as_str()).unwrap_or_default(),
            )),
            output::short_duration(last.and_then(|r| r.total.as_ref())).into(),
            output::time(last.and_then(|r| r.time.as_ref())).into(),
        ]);
    }
    table.render(out)
}

fn board_json(board: &HealthBoard) -> serde_json::Value {
    json!({
        "revision": board.revision,
        "checks": board.checks.values().map(check_json).collect::<Vec<_>>(),
    })
}

pub fn check_json(check: &pb::CheckHealth) -> serde_json::Value {
    json!({
        "check_id": check.check_id,
        "project_id": check.project_id,
        "environment": check.environment,
        "name": check.name,
        "kind": check.kind,
        "status": output::status_name(check.status),
        "flapping": check.flapping,
        "since": output::time(check.since.as_ref()),
        "last_result": check.last_result.as_ref().map(super::status::result_json),
    })
}

async fn project_health(
    client: &Client,
    project: &str,
    environments: &[String],
    out: Output,
) -> Result<(), CliError> {
    let response = client
        .health()
        .await?
        .get_project_health(pb::GetProjectHealthRequest {
            project_id: project.to_owned(),
        })
        .await
        .map_err(|status| client.error(&status))?
        .into_inner();
    let shown = |environment: &str| {
        environments.is_empty() || environments.iter().any(|e| e == environment)
    };
    let checks: Vec<&pb::CheckHealthDetail> = response
        .deployments
        .iter()
        .flat_map(|d| d.checks.iter())
        .filter(|c| c.check.as_ref().is_some_and(|c| shown(&c.environment)))
        .collect();
    let value = json!({
        "project_id": response.project_id,
        "status": output::status_name(response.status),
        "checks": checks.iter().map(|detail| {
            let mut value = check_json(detail.check.as_ref().expect("filtered"));
            value["windows"] = detail.windows.iter().map(|w| json!({
                "window": w.window,
                "uptime_percent": w.uptime_percent,
                "runs": w.runs,
                "latency_p50_ms": output::millis(w.latency_p50.as_ref()),
                "latency_p95_ms": output::millis(w.latency_p95.as_ref()),
                "latency_p99_ms": output::millis(w.latency_p99.as_ref()),
            })).collect::<Vec<_>>().into();
            value
        }).collect::<Vec<_>>(),
    });
    out.emit(&value, |out| {
        let mut text = format!(
            "{:<13}{}\n{:<13}{}\n\n",
            "Project",
            response.project_id,
            "Status",
            out.paint(
                output::status_name(response.status),
                output::status_tone(response.status)
            )
        );
        if checks.is_empty() {
            text.push_str("no checks\n");
            return text;
        }
        let mut table = Table::new(&[
            "ENV", "CHECK", "KIND", "STATUS", ">1H", ">24H", ">7D", ">30D",
        ])
        .wide(&[">P50 24H", ">P95 24H", ">P99 24H", "MESSAGE"]);
        for detail in &checks {
            let check = detail.check.as_ref().expect("filtered");
            let window = |name: &str| detail.windows.iter().find(|w| w.window == name);
            let uptime = |name: &str| -> Cell {
                window(name)
                    .and_then(|w| w.uptime_percent)
                    .map(|p| format!("{p:.2}%"))
                    .unwrap_or_else(|| "-".to_owned())
                    .into()
            };
            let day = window("24h");
            let mut status = output::status_cell(check.status);
            if check.flapping {
                status.text.push_str(" (flapping)");
            }
            table.row(vec![
                check.environment.as_str().into(),
                check.name.as_str().into(),
                check.kind.as_str().into(),
                status,
                uptime("1h"),
                uptime("24h"),
                uptime("7d"),
                uptime("30d"),
                output::short_duration(day.and_then(|w| w.latency_p50.as_ref())).into(),
                output::short_duration(day.and_then(|w| w.latency_p95.as_ref())).into(),
                output::short_duration(day.and_then(|w| w.latency_p99.as_ref())).into(),
                super::status::first_line(
                    check
                        .last_result
                        .as_ref()
                        .map(|r| r.message.as_str())
                        .unwrap_or_default(),
                )
                .into(),
            ]);
        }
        text.push_str(&table.render(out));
        text
    });
    Ok(())
}
