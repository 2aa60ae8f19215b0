//! `pharos top`: a full-screen dashboard fed by one resuming Watch stream (health, events
//! and metrics topics): the health grid, the error feed, and the throughput and capacity
//! panels. Those two are `GetSystemMetrics` and `GetCapacity`, fetched again whenever the
//! stream brings new points of their series; they say "not available on this server"
//! when the server has no MetricsService. Nothing here is invented: every cell comes
//! from the server or is marked unavailable.

use std::collections::VecDeque;
use std::time::Duration;

use pharos_proto::v1 as pb;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Gauge, Paragraph, Sparkline, Wrap};

use crate::board::HealthBoard;
use crate::capabilities;
use crate::client::Client;
use crate::error::CliError;
use crate::output;
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

/// The service whose presence turns the throughput and capacity panels on.
const METRICS_SERVICE: &str = "pharos.v1.MetricsService";
const FEED_LENGTH: usize = 200;

/// Whether a panel has data behind it on this server.
#[derive(Clone, Debug, PartialEq)]
pub enum Panel {
    /// The server does not offer it (absent from reflection, or UNIMPLEMENTED).
    NotOnServer,
    /// The server offers it: the latest answers (or why they failed).
    Live {
        system: Option<Result<Box<pb::GetSystemMetricsResponse>, String>>,
        capacity: Option<Result<Box<pb::GetCapacityResponse>, String>>,
    },
}

impl Panel {
    fn live() -> Panel {
        Panel::Live {
            system: None,
            capacity: None,
        }
    }
}

/// The series whose new points refetch the panels (recorded by pharosd itself).
fn metric_selectors() -> Vec<pb::SeriesSelector> {
    vec![
        pb::SeriesSelector {
            name: "pharos_rpc_unary_duration_seconds:p95".to_owned(),
            labels: [("target".to_owned(), "pharosd".to_owned())].into(),
        },
        pb::SeriesSelector {
            name: "pharos_host_memory_available_bytes".to_owned(),
            labels: Default::default(),
        },
    ]
}

/// The panels' figures, fetched in the background.
enum Fetched {
    System(Result<Box<pb::GetSystemMetricsResponse>, String>),
    Capacity(Result<Box<pb::GetCapacityResponse>, String>),
}

fn fetch(client: &Client, sender: &tokio::sync::mpsc::Sender<Fetched>) {
    let (client, sender) = (client.clone(), sender.clone());
    tokio::spawn(async move {
        let mut metrics = match client.metrics().await {
            Ok(metrics) => metrics,
            Err(err) => {
                let _ = sender.send(Fetched::System(Err(err.to_string()))).await;
                return;
            }
        };
        let system = metrics
            .get_system_metrics(pb::GetSystemMetricsRequest::default())
            .await
            .map(|r| Box::new(r.into_inner()))
            .map_err(|s| s.message().to_owned());
        let _ = sender.send(Fetched::System(system)).await;
        let capacity = metrics
            .get_capacity(pb::GetCapacityRequest {})
            .await
            .map(|r| Box::new(r.into_inner()))
            .map_err(|s| s.message().to_owned());
        let _ = sender.send(Fetched::Capacity(capacity)).await;
    });
}

/// One line of the error feed.
#[derive(Clone, Debug, PartialEq)]
pub struct FeedEntry {
    pub time: String,
    pub severity: Severity,
    pub text: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    Warning,
    Error,
}

/// Everything one frame shows.
#[derive(Debug)]
pub struct TopState {
    pub server: String,
    pub board: HealthBoard,
    pub feed: VecDeque<FeedEntry>,
    pub metrics: Panel,
    pub connected: bool,
    pub notice: Option<String>,
}

impl TopState {
    pub fn new(server: String, metrics: Panel) -> TopState {
        TopState {
            server,
            board: HealthBoard::default(),
            feed: VecDeque::new(),
            metrics,
            connected: false,
            notice: None,
        }
    }

    /// Applies one stream event: health to the grid, warnings and errors to the feed.
    pub fn apply(&mut self, event: WatchEvent) {
        if let WatchEvent::Change(change) = &event
            && let Some(entry) = feed_entry(change)
        {
            self.feed.push_front(entry);
            self.feed.truncate(FEED_LENGTH);
        }
        self.board.apply(event);
    }
}

/// Events of severity warning and above, and checks that turn degraded or unhealthy.
/// Snapshot entries are current state, not news, so they stay out of the feed.
fn feed_entry(change: &pb::Change) -> Option<FeedEntry> {
    use pb::change::Object;
    if change.kind == pb::ChangeKind::Snapshot as i32 {
        return None;
    }
    let time = output::time(change.commit_time.as_ref());
    match change.object.as_ref()? {
        Object::Event(event) => {
            let severity = match pb::EventSeverity::try_from(event.severity) {
                Ok(pb::EventSeverity::Warning) => Severity::Warning,
                Ok(pb::EventSeverity::Error | pb::EventSeverity::Critical) => Severity::Error,
                _ => return None,
            };
            let concerns = if event.project_id.is_empty() {
                String::new()
            } else {
                format!(" [{}]", event.project_id)
            };
            Some(FeedEntry {
                time,
                severity,
                text: format!(
                    "{}{concerns}: {}",
                    event.kind,
                    event.message.lines().next().unwrap_or_default()
                ),
            })
        }
        Object::CheckHealth(check) => {
            let severity = match pb::HealthStatus::try_from(check.status) {
                Ok(pb::HealthStatus::Degraded) => Severity::Warning,
                Ok(pb::HealthStatus::Unhealthy) => Severity::Error,
                _ => return None,
            };
            let message = check
                .last_result
                .as_ref()
                .map(|r| r.message.as_str())
                .unwrap_or_default();
            Some(FeedEntry {
                time,
                severity,
                text: format!(
                    "{} {}: {}",
                    check.check_id,
                    output::status_name(check.status),
                    message.lines().next().unwrap_or_default()
                ),
            })
        }
        _ => None,
    }
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

#[derive(Debug, PartialEq, Eq)]
enum Key {
    Quit,
    Other,
}

/// Reads keys on a thread of its own (crossterm's reader blocks).
fn key_reader() -> tokio::sync::mpsc::Receiver<Key> {
    use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
    let (sender, receiver) = tokio::sync::mpsc::channel(16);
    std::thread::Builder::new()
        .name("pharos-top-keys".to_owned())
        .spawn(move || {
            while let Ok(event) = event::read() {
                let key = match event {
                    Event::Key(key) if key.kind == KeyEventKind::Press => match key.code {
                        KeyCode::Char('q') | KeyCode::Esc => Key::Quit,
                        KeyCode::Char('c') if key.modifiers.contains(KeyModifiers::CONTROL) => {
                            Key::Quit
                        }
                        _ => Key::Other,
                    },
                    _ => continue,
                };
                if sender.blocking_send(key).is_err() {
                    break;
                }
            }
        })
        .expect("spawn the key reader");
    receiver
}

fn status_style(status: i32) -> (&'static str, Style) {
    match pb::HealthStatus::try_from(status) {
        Ok(pb::HealthStatus::Healthy) => ("✓", Style::new().fg(Color::Green)),
        Ok(pb::HealthStatus::Degraded) => ("!", Style::new().fg(Color::Yellow)),
        Ok(pb::HealthStatus::Unhealthy) => (
            "✗",
            Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
        ),
        _ => ("?", Style::new().fg(Color::DarkGray)),
    }
}

/// Draws one frame of `state`.
pub fn render(frame: &mut Frame<'_>, state: &TopState) {
    let [header, body, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(6),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(60), Constraint::Percentage(40)]).areas(body);
    let [grid, feed] =
        Layout::vertical([Constraint::Percentage(65), Constraint::Percentage(35)]).areas(left);
    let [throughput, capacity] =
        Layout::vertical([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(right);

    let [healthy, degraded, unhealthy, unknown] = state.board.counts();
    let link = if state.connected {
        "live"
    } else {
        "reconnecting"
    };
    let mut spans = vec![
        Span::styled("pharos top", Style::new().add_modifier(Modifier::BOLD)),
        Span::raw(format!(
            "  {}  revision {}  {link}  ",
            state.server, state.board.revision
        )),
        Span::styled(format!("{healthy} healthy "), Style::new().fg(Color::Green)),
        Span::styled(
            format!("{degraded} degraded "),
            Style::new().fg(Color::Yellow),
        ),
        Span::styled(
            format!("{unhealthy} unhealthy "),
            Style::new().fg(Color::Red),
        ),
        Span::raw(format!("{unknown} unknown")),
    ];
    if let Some(notice) = state.notice.as_ref().filter(|_| !state.connected) {
        spans.push(Span::styled(
            format!("  {notice}"),
            Style::new().fg(Color::Yellow),
        ));
    }
    frame.render_widget(Line::from(spans), header);

    render_grid(frame, grid, state);

    let feed_lines: Vec<Line<'_>> = if state.feed.is_empty() {
        vec![Line::styled(
            "no warnings or errors since pharos top started",
            Style::new().fg(Color::DarkGray),
        )]
    } else {
        state
            .feed
            .iter()
            .map(|entry| {
                let style = match entry.severity {
                    Severity::Warning => Style::new().fg(Color::Yellow),
                    Severity::Error => Style::new().fg(Color::Red),
                };
                Line::from(vec![
                    Span::styled(format!("{} ", entry.time), Style::new().fg(Color::DarkGray)),
                    Span::styled(entry.text.clone(), style),
                ])
            })
            .collect()
    };
    frame.render_widget(
        Paragraph::new(feed_lines).block(Block::bordered().title(" Error feed ")),
        feed,
    );

    match &state.metrics {
        Panel::NotOnServer => {
            for (area, title) in [(throughput, " Throughput "), (capacity, " Capacity ")] {
                muted(frame, area, title, "not available on this server");
            }
        }
        Panel::Live {
            system,
            capacity: figures,
        } => {
            render_throughput(frame, throughput, system.as_ref());
            render_capacity(frame, capacity, figures.as_ref());
        }
    }

    frame.render_widget(
        Line::styled("q quit", Style::new().fg(Color::DarkGray)),
        footer,
    );
}

fn muted(frame: &mut Frame<'_>, area: Rect, title: &str, text: &str) {
    frame.render_widget(
        Paragraph::new(Line::styled(
            text.to_owned(),
            Style::new().fg(Color::DarkGray),
        ))
        .wrap(Wrap { trim: true })
        .block(Block::bordered().title(title.to_owned())),
        area,
    );
}

fn latency(seconds: Option<f64>) -> String {
    match seconds {
        None => "—".to_owned(),
        Some(s) if s < 1.0 => format!("{:.1} ms", s * 1000.0),
        Some(s) => format!("{s:.2} s"),
    }
}

/// Calls/s now, the p50/p95/p99 line, and a sparkline of calls/s over the window.
fn render_throughput(
    frame: &mut Frame<'_>,
    area: Rect,
    answer: Option<&Result<Box<pb::GetSystemMetricsResponse>, String>>,
) {
    let title = " Throughput (pharosd API) ";
    let figures = match answer {
        None => return muted(frame, area, title, "loading…"),
        Some(Err(err)) => return muted(frame, area, title, err),
        Some(Ok(f)) => f,
    };
    let Some(rate) = figures.requests_per_second else {
        return muted(
            frame,
            area,
            title,
            "pharosd records its own figures every 5 s; rates need two records",
        );
    };
    let block = Block::bordered().title(title);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let [text, spark] = Layout::vertical([Constraint::Length(2), Constraint::Min(1)]).areas(inner);
    let lines = vec![
        Line::from(format!(
            "{rate:.1} calls/s  {:.2} errors/s",
            figures.errors_per_second.unwrap_or(0.0)
        )),
        Line::from(format!(
            "p50 {}  p95 {}  p99 {}",
            latency(figures.latency_p50_seconds),
            latency(figures.latency_p95_seconds),
            latency(figures.latency_p99_seconds)
        )),
    ];
    frame.render_widget(Paragraph::new(lines), text);
    // Sparkline bars are integers: calls per second times ten keeps one decimal.
    let data: Vec<u64> = figures
        .throughput
        .iter()
        .map(|p| (p.value * 10.0).round().max(0.0) as u64)
        .collect();
    let shown = data.len().saturating_sub(usize::from(spark.width));
    frame.render_widget(
        Sparkline::default()
            .data(&data[shown..])
            .style(Style::new().fg(Color::Cyan)),
        spark,
    );
}

/// One bar each: CPU, memory, every disk, every PostgreSQL database's connections.
fn render_capacity(
    frame: &mut Frame<'_>,
    area: Rect,
    answer: Option<&Result<Box<pb::GetCapacityResponse>, String>>,
) {
    let title = " Capacity ";
    let c = match answer {
        None => return muted(frame, area, title, "loading…"),
        Some(Err(err)) => return muted(frame, area, title, err),
        Some(Ok(c)) => c,
    };
    let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
    let mut bars: Vec<(String, f64)> = Vec::new();
    if let Some(host) = &c.host {
        if let Some(busy) = host.cpu_busy_ratio {
            bars.push((
                format!("CPU {} cores, load {:.2}", host.cpu_cores, host.load1),
                busy,
            ));
        }
        let used = host.memory_total_bytes - host.memory_available_bytes;
        bars.push((
            format!(
                "Memory {:.1} of {:.1} GiB",
                gib(used),
                gib(host.memory_total_bytes)
            ),
            used as f64 / host.memory_total_bytes.max(1) as f64,
        ));
    }
    for d in c.disks.iter().filter(|d| d.error.is_empty()) {
        bars.push((
            format!(
                "Disk {} {:.1} of {:.1} GiB",
                d.path,
                gib(d.used_bytes),
                gib(d.total_bytes)
            ),
            d.used_bytes as f64 / d.total_bytes.max(1) as f64,
        ));
    }
    for pg in c.postgres.iter().filter(|p| p.error.is_empty()) {
        bars.push((
            format!(
                "{} connections {} of {}",
                pg.check_id, pg.connections_used, pg.connections_max
            ),
            f64::from(pg.connections_used) / f64::from(pg.connections_max.max(1)),
        ));
    }
    let block = Block::bordered().title(title);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let rows = Layout::vertical(bars.iter().map(|_| Constraint::Length(1))).split(inner);
    for ((label, ratio), row) in bars.iter().zip(rows.iter()) {
        let ratio = ratio.clamp(0.0, 1.0);
        let color = if ratio >= 0.9 {
            Color::Red
        } else if ratio >= 0.75 {
            Color::Yellow
        } else {
            Color::Green
        };
        frame.render_widget(
            Gauge::default()
                .ratio(ratio)
                .label(format!("{label} ({:.0}%)", ratio * 100.0))
                .gauge_style(Style::new().fg(color).bg(Color::Black)),
            *row,
        );
    }
}

/// One cell per check, `✓ project/env/check`, as many columns as fit.
fn render_grid(frame: &mut Frame<'_>, area: Rect, state: &TopState) {
    let block = Block::bordered().title(" Health ");
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if !state.board.synced {
        frame.render_widget(Line::raw("loading…"), inner);
        return;
    }
    if state.board.checks.is_empty() {
        frame.render_widget(Line::raw("no checks"), inner);
        return;
    }
    let cell_width = state
        .board
        .checks
        .values()
        .map(|c| c.check_id.chars().count() + 4)
        .max()
        .unwrap_or(10);
    let columns = (usize::from(inner.width) / cell_width).max(1);
    let checks: Vec<&pb::CheckHealth> = state.board.checks.values().collect();
    let lines: Vec<Line<'_>> = checks
        .chunks(columns)
        .map(|row| {
            Line::from(
                row.iter()
                    .map(|check| {
                        let (mark, style) = status_style(check.status);
                        let flapping = if check.flapping { "~" } else { " " };
                        Span::styled(
                            format!(
                                "{mark}{flapping}{:<width$}",
                                check.check_id,
                                width = cell_width - 2
                            ),
                            style,
                        )
                    })
                    .collect::<Vec<_>>(),
            )
        })
        .collect();
    frame.render_widget(Paragraph::new(lines), inner);
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    fn check(
        id: &str,
        status: pb::HealthStatus,
        revision: u64,
        kind: pb::ChangeKind,
    ) -> WatchEvent {
        WatchEvent::Change(Box::new(pb::Change {
            revision,
            topic: pb::WatchTopic::Health as i32,
            kind: kind as i32,
            key: format!("check/{id}"),
            commit_time: Some(prost_types::Timestamp {
                seconds: 1_800_000_000,
                nanos: 0,
            }),
            object: Some(pb::change::Object::CheckHealth(pb::CheckHealth {
                check_id: id.to_owned(),
                status: status as i32,
                last_result: Some(pb::CheckResult {
                    message: "connection refused".to_owned(),
                    ..Default::default()
                }),
                ..Default::default()
            })),
        }))
    }

    fn screen(terminal: &Terminal<TestBackend>) -> Vec<String> {
        let buffer = terminal.backend().buffer();
        (0..buffer.area.height)
            .map(|y| {
                (0..buffer.area.width)
                    .map(|x| buffer[(x, y)].symbol())
                    .collect::<String>()
            })
            .collect()
    }

    fn find(lines: &[String], text: &str) -> (u16, u16) {
        for (y, line) in lines.iter().enumerate() {
            if let Some(byte) = line.find(text) {
                return (line[..byte].chars().count() as u16, y as u16);
            }
        }
        panic!("{text:?} is not on the screen:\n{}", lines.join("\n"));
    }

    #[test]
    fn renders_the_grid_the_feed_and_unavailable_panels() {
        let mut state = TopState::new("http://127.0.0.1:7600".to_owned(), Panel::NotOnServer);
        state.connected = true;
        state.apply(WatchEvent::Reset);
        state.apply(check(
            "shop/prod/http",
            pb::HealthStatus::Healthy,
            3,
            pb::ChangeKind::Snapshot,
        ));
        state.apply(check(
            "shop/prod/db",
            pb::HealthStatus::Healthy,
            4,
            pb::ChangeKind::Snapshot,
        ));
        state.apply(WatchEvent::Synced(5));
        state.apply(check(
            "shop/prod/db",
            pb::HealthStatus::Unhealthy,
            6,
            pb::ChangeKind::Upsert,
        ));

        let mut terminal = Terminal::new(TestBackend::new(120, 24)).unwrap();
        terminal.draw(|frame| render(frame, &state)).unwrap();
        let lines = screen(&terminal);
        let text = lines.join("\n");

        assert!(
            lines[0].starts_with("pharos top  http://127.0.0.1:7600  revision 6  live"),
            "{text}"
        );
        assert!(
            lines[0].contains("1 healthy 0 degraded 1 unhealthy 0 unknown"),
            "{text}"
        );

        let (x, y) = find(&lines, "✗ shop/prod/db");
        let buffer = terminal.backend().buffer();
        assert_eq!(buffer[(x, y)].fg, Color::Red, "unhealthy is red");
        let (x, y) = find(&lines, "✓ shop/prod/http");
        assert_eq!(buffer[(x, y)].fg, Color::Green, "healthy is green");

        // The transition is news; the snapshot is not.
        let (_, feed_y) = find(&lines, "Error feed");
        let (_, entry_y) = find(&lines, "shop/prod/db unhealthy: connection refused");
        assert!(entry_y > feed_y, "{text}");
        assert!(!text.contains("shop/prod/http healthy"), "{text}");
        assert!(text.contains("2027-01-15T08:00:00Z"), "{text}");

        let (_, throughput_y) = find(&lines, "Throughput");
        let (_, capacity_y) = find(&lines, "Capacity");
        assert_eq!(
            text.matches("not available on this server").count(),
            2,
            "{text}"
        );
        assert!(capacity_y > throughput_y);
    }

    #[test]
    fn live_panels_show_rates_latency_and_a_bar_per_resource() {
        let mut state = TopState::new(String::new(), Panel::live());
        state.apply(WatchEvent::Reset);
        state.apply(WatchEvent::Synced(1));
        let point = |ms: i64, value: f64| pb::Point {
            time_unix_ms: ms,
            value,
        };
        state.metrics = Panel::Live {
            system: Some(Ok(Box::new(pb::GetSystemMetricsResponse {
                requests_per_second: Some(12.5),
                errors_per_second: Some(0.25),
                latency_p50_seconds: Some(0.0012),
                latency_p95_seconds: Some(0.0048),
                latency_p99_seconds: Some(1.5),
                throughput: vec![point(1, 10.0), point(2, 12.5)],
                ..Default::default()
            }))),
            capacity: Some(Ok(Box::new(pb::GetCapacityResponse {
                host: Some(pb::HostCapacity {
                    cpu_cores: 2,
                    cpu_busy_ratio: Some(0.5),
                    load1: 0.75,
                    memory_total_bytes: 8 << 30,
                    memory_available_bytes: 2 << 30,
                    ..Default::default()
                }),
                disks: vec![pb::DiskCapacity {
                    path: "/var/lib/pharos".into(),
                    total_bytes: 100 << 30,
                    used_bytes: 95 << 30,
                    ..Default::default()
                }],
                ..Default::default()
            }))),
        };
        let mut terminal = Terminal::new(TestBackend::new(140, 24)).unwrap();
        terminal.draw(|frame| render(frame, &state)).unwrap();
        let lines = screen(&terminal);
        let text = lines.join("\n");
        assert!(text.contains("12.5 calls/s  0.25 errors/s"), "{text}");
        assert!(
            text.contains("p50 1.2 ms  p95 4.8 ms  p99 1.50 s"),
            "{text}"
        );
        assert!(text.contains("CPU 2 cores, load 0.75 (50%)"), "{text}");
        assert!(text.contains("Memory 6.0 of 8.0 GiB (75%)"), "{text}");
        let (x, y) = find(&lines, "Disk /var/lib/pharos 95.0 of 100.0 GiB (95%)");
        // A disk 95% full is drawn red.
        let buffer = terminal.backend().buffer();
        let filled =
            (x..x + 40).any(|x| buffer[(x, y)].fg == Color::Red || buffer[(x, y)].bg == Color::Red);
        assert!(filled, "{text}");

        state.metrics = Panel::Live {
            system: Some(Err("the database did not answer".into())),
            capacity: None,
        };
        terminal.draw(|frame| render(frame, &state)).unwrap();
        let text = screen(&terminal).join("\n");
        assert!(text.contains("the database did not answer"), "{text}");
        assert!(text.contains("loading…"), "{text}");
    }

    #[test]
    fn a_reconnecting_stream_says_so_in_the_header() {
        let mut state = TopState::new("http://10.0.0.1:7600".to_owned(), Panel::NotOnServer);
        state.apply(WatchEvent::Reset);
        state.apply(WatchEvent::Synced(9));
        state.notice = Some("stream interrupted (shutting down); reconnecting".to_owned());
        let mut terminal = Terminal::new(TestBackend::new(140, 12)).unwrap();
        terminal.draw(|frame| render(frame, &state)).unwrap();
        let lines = screen(&terminal);
        assert!(
            lines[0].contains("revision 9  reconnecting"),
            "{}",
            lines[0]
        );
        assert!(lines[0].contains("stream interrupted"), "{}", lines[0]);
        assert!(lines.join("\n").contains("no checks"));
    }

    #[test]
    fn warning_events_enter_the_feed_and_info_events_do_not() {
        let event = |severity: pb::EventSeverity, kind: &str| {
            WatchEvent::Change(Box::new(pb::Change {
                revision: 1,
                topic: pb::WatchTopic::Events as i32,
                kind: pb::ChangeKind::Append as i32,
                key: "event/1".to_owned(),
                commit_time: None,
                object: Some(pb::change::Object::Event(pb::Event {
                    kind: kind.to_owned(),
                    severity: severity as i32,
                    message: "first line\nsecond".to_owned(),
                    ..Default::default()
                })),
            }))
        };
        let mut state = TopState::new(String::new(), Panel::NotOnServer);
        state.apply(event(pb::EventSeverity::Info, "catalog.applied"));
        state.apply(event(pb::EventSeverity::Warning, "catalog.invalid"));
        assert_eq!(state.feed.len(), 1);
        assert_eq!(state.feed[0].text, "catalog.invalid: first line");
        assert_eq!(state.feed[0].severity, Severity::Warning);
    }
}
