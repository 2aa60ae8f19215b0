//! `pharos top`: a full-screen dashboard fed by one resuming Watch stream (health, events
//! and metrics topics): the health grid, the error feed, and the throughput and capacity
//! panels. Those two are `GetSystemMetrics` and `GetCapacity`, fetched again whenever the
//! stream brings new points of their series; they say "not available on this server"
//! when the server has no MetricsService. Nothing here is invented: every cell comes
//! from the server or is marked unavailable.
//!
//! One loop here joins the stream, the panels' answers (`fetch`), the keyboard (`keys`)
//! and the redraw timer; what a frame shows is kept in `state` and drawn by `render` and
//! `panels`.

mod fetch;
mod keys;
mod panels;
mod render;
mod state;

use std::time::Duration;

use pharos_proto::v1 as pb;

use self::fetch::{Fetched, METRICS_SERVICE, fetch, metric_selectors};
use self::keys::{Key, key_reader};
use self::render::render;
use self::state::{Panel, TopState};
use crate::capabilities;
use crate::client::Client;
use crate::error::CliError;
use crate::resume::{ResumingWatch, WatchEvent};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only this project (repeatable)
    #[arg(long = "project")]
    projects: Vec<String>,
    /// Only this environment (repeatable)
    #[arg(long = "env")]
    environments: Vec<String>,
}

pub async fn run(client: &Client, args: Args) -> Result<(), CliError> {
    let metrics = match capabilities::services(client).await {
        Some(services) if services.contains(METRICS_SERVICE) => Panel::live(),
        _ => Panel::NotOnServer,
    };
    let live = matches!(metrics, Panel::Live { .. });
    let mut topics = vec![pb::WatchTopic::Health as i32, pb::WatchTopic::Events as i32];
    if live {
        topics.push(pb::WatchTopic::Metrics as i32);
    }
    let request = pb::WatchRequest {
        since_revision: 0,
        topics,
        projects: args.projects,
        environments: args.environments,
        health_statuses: Vec::new(),
        metric_selectors: if live { metric_selectors() } else { Vec::new() },
    };
    let (fetched_tx, mut fetched) = tokio::sync::mpsc::channel(8);
    if live {
        fetch(client, &fetched_tx);
    }
    let mut watch = ResumingWatch::new(client.clone(), request);
    watch.print_notices = false;
    // The first connection is made before the screen is taken, so its failure is one
    // plain line like every other command's.
    let first = watch.next().await?;
    let mut state = TopState::new(client.server.clone(), metrics);
    state.connected = true;
    state.apply(first);
    let mut updates = watch.spawn();
    let mut keys = key_reader();

    let mut terminal = ratatui::init();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut dirty = true;
    let result = loop {
        tokio::select! {
            update = updates.recv() => {
                let Some(update) = update else { break Ok(()) };
                match update.event {
                    Ok(WatchEvent::Metrics) => fetch(client, &fetched_tx),
                    Ok(event) => state.apply(event),
                    Err(err) => break Err(err),
                }
                state.connected = update.connected;
                state.notice = update.notice;
                dirty = true;
            }
            Some(answer) = fetched.recv() => {
                if let Panel::Live { system, capacity } = &mut state.metrics {
                    match answer {
                        Fetched::System(answer) => *system = Some(answer),
                        Fetched::Capacity(answer) => *capacity = Some(answer),
                    }
                }
                dirty = true;
            }
            key = keys.recv() => {
                if key.is_none_or(|key| key == Key::Quit) {
                    break Ok(());
                }
            }
            _ = tick.tick() => {
                if dirty {
                    dirty = false;
                    if let Err(err) = terminal.draw(|frame| render(frame, &state)) {
                        break Err(CliError::Other(format!("cannot draw on the terminal: {err}")));
                    }
                }
            }
        }
    };
    ratatui::restore();
    result
}
