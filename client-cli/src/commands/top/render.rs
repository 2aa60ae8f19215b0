//! Draws one frame: the header, the health grid, the error feed and the footer, with the
//! metrics panels drawn by `panels`. Its tests look at whole frames.

use pharos_proto::v1 as pb;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};

use super::panels::render_metrics;
use super::state::{Severity, TopState};

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

    render_metrics(frame, throughput, capacity, &state.metrics);

    frame.render_widget(
        Line::styled("q quit", Style::new().fg(Color::DarkGray)),
        footer,
    );
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
    use crate::commands::top::state::Panel;
    use crate::resume::WatchEvent;
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
}
