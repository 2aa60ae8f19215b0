//! The throughput and capacity panels, drawn from the server's latest answers (or what
//! kept them from coming).

use pharos_proto::v1 as pb;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Gauge, Paragraph, Sparkline, Wrap};

use super::state::Panel;

/// Both panels, or why they are empty.
pub(super) fn render_metrics(
    frame: &mut Frame<'_>,
    throughput: Rect,
    capacity: Rect,
    panel: &Panel,
) {
    match panel {
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
