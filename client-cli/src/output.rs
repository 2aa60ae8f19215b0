//! The output layer every command shares: human tables on a terminal (`-o table`, the
//! default, and `-o wide` with extra columns), `-o json` and `-o yaml` for scripts with
//! stable snake_case field names, and colour only on a terminal without `NO_COLOR`.

use std::fmt::Write as _;
use std::io::IsTerminal;

use pharos_proto::v1 as pb;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns for people
    Table,
    /// The table with every column
    Wide,
    /// One JSON document (JSON lines for streams)
    Json,
    /// One YAML document
    Yaml,
}

/// How a command prints: the chosen format and whether colour is allowed.
#[derive(Clone, Copy, Debug)]
pub struct Output {
    pub format: Format,
    pub colour: bool,
}

impl Output {
    /// Colour only when stdout is a terminal and `NO_COLOR` is unset or empty
    /// (<https://no-color.org>).
    pub fn new(format: Format) -> Output {
        let no_colour = std::env::var_os("NO_COLOR").is_some_and(|value| !value.is_empty());
        Output {
            format,
            colour: std::io::stdout().is_terminal() && !no_colour,
        }
    }

    /// JSON or YAML: the value is printed instead of the human view.
    pub fn structured(&self) -> bool {
        matches!(self.format, Format::Json | Format::Yaml)
    }

    pub fn wide(&self) -> bool {
        self.format == Format::Wide
    }

    /// Prints `value` as JSON or YAML, or the human view built by `human`.
    pub fn emit(&self, value: &serde_json::Value, human: impl FnOnce(&Output) -> String) {
        match self.format {
            Format::Json => println!(
                "{}",
                serde_json::to_string_pretty(value).expect("json serializes")
            ),
            Format::Yaml => print!("{}", serde_yaml::to_string(value).expect("yaml serializes")),
            Format::Table | Format::Wide => print!("{}", human(self)),
        }
    }

    /// `text` in the colour of `tone`, when colour is on.
    pub fn paint(&self, text: &str, tone: Tone) -> String {
        match tone.ansi() {
            Some(code) if self.colour => format!("\x1b[{code}m{text}\x1b[0m"),
            _ => text.to_owned(),
        }
    }
}

/// What a cell means, for colour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tone {
    Plain,
    Good,
    Warn,
    Bad,
    Muted,
}

impl Tone {
    fn ansi(self) -> Option<&'static str> {
        match self {
            Tone::Plain => None,
            Tone::Good => Some("32"),
            Tone::Warn => Some("33"),
            Tone::Bad => Some("31"),
            Tone::Muted => Some("2"),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Cell {
    pub text: String,
    pub tone: Tone,
}

impl From<String> for Cell {
    fn from(text: String) -> Cell {
        Cell {
            text,
            tone: Tone::Plain,
        }
    }
}

impl From<&str> for Cell {
    fn from(text: &str) -> Cell {
        Cell::from(text.to_owned())
    }
}

impl Cell {
    pub fn toned(text: impl Into<String>, tone: Tone) -> Cell {
        Cell {
            text: text.into(),
            tone,
        }
    }
}

struct Column {
    header: &'static str,
    wide_only: bool,
    right: bool,
}

/// Columns aligned on their widest cell; some shown only with `-o wide`.
pub struct Table {
    columns: Vec<Column>,
    rows: Vec<Vec<Cell>>,
}

impl Table {
    /// A table with these headers. A header starting with `>` is right-aligned (for numbers).
    pub fn new(headers: &[&'static str]) -> Table {
        let mut table = Table {
            columns: Vec::new(),
            rows: Vec::new(),
        };
        table.add_columns(headers, false);
        table
    }

    /// Extra columns shown with `-o wide` only, after the others.
    pub fn wide(mut self, headers: &[&'static str]) -> Table {
        self.add_columns(headers, true);
        self
    }

    fn add_columns(&mut self, headers: &[&'static str], wide_only: bool) {
        for header in headers {
            let (header, right) = match header.strip_prefix('>') {
                Some(rest) => (rest, true),
                None => (*header, false),
            };
            self.columns.push(Column {
                header,
                wide_only,
                right,
            });
        }
    }

    /// A row: one cell per column, wide-only columns included.
    pub fn row(&mut self, cells: Vec<Cell>) {
        debug_assert_eq!(cells.len(), self.columns.len(), "one cell per column");
        self.rows.push(cells);
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn render(&self, out: &Output) -> String {
        let shown: Vec<usize> = (0..self.columns.len())
            .filter(|&i| out.wide() || !self.columns[i].wide_only)
            .collect();
        let widths: Vec<usize> = shown
            .iter()
            .map(|&i| {
                self.rows
                    .iter()
                    .map(|row| row[i].text.chars().count())
                    .chain([self.columns[i].header.len()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut text = String::new();
        let line = |text: &mut String, cells: Vec<(String, usize, Tone, bool)>| {
            let last = cells.len().saturating_sub(1);
            let mut line = String::new();
            for (n, (cell, width, tone, right)) in cells.into_iter().enumerate() {
                let pad = width.saturating_sub(cell.chars().count());
                let painted = out.paint(&cell, tone);
                if right {
                    line.push_str(&" ".repeat(pad));
                    line.push_str(&painted);
                } else {
                    line.push_str(&painted);
                    if n != last {
                        line.push_str(&" ".repeat(pad));
                    }
                }
                if n != last {
                    line.push_str("  ");
                }
            }
            let _ = writeln!(text, "{}", line.trim_end());
        };
        line(
            &mut text,
            shown
                .iter()
                .zip(&widths)
                .map(|(&i, &w)| {
                    let column = &self.columns[i];
                    (column.header.to_owned(), w, Tone::Plain, column.right)
                })
                .collect(),
        );
        for row in &self.rows {
            line(
                &mut text,
                shown
                    .iter()
                    .zip(&widths)
                    .map(|(&i, &w)| (row[i].text.clone(), w, row[i].tone, self.columns[i].right))
                    .collect(),
            );
        }
        text
    }
}

/// `healthy`, `degraded`, `unhealthy` or `unknown`.
pub fn status_name(status: i32) -> &'static str {
    match pb::HealthStatus::try_from(status) {
        Ok(pb::HealthStatus::Healthy) => "healthy",
        Ok(pb::HealthStatus::Degraded) => "degraded",
        Ok(pb::HealthStatus::Unhealthy) => "unhealthy",
        _ => "unknown",
    }
}

pub fn status_tone(status: i32) -> Tone {
    match pb::HealthStatus::try_from(status) {
        Ok(pb::HealthStatus::Healthy) => Tone::Good,
        Ok(pb::HealthStatus::Degraded) => Tone::Warn,
        Ok(pb::HealthStatus::Unhealthy) => Tone::Bad,
        _ => Tone::Muted,
    }
}

pub fn status_cell(status: i32) -> Cell {
    Cell::toned(status_name(status), status_tone(status))
}

/// RFC 3339 in UTC with seconds, or "" when absent.
pub fn time(timestamp: Option<&prost_types::Timestamp>) -> String {
    timestamp
        .and_then(|t| chrono::DateTime::from_timestamp(t.seconds, t.nanos.max(0) as u32))
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

/// Milliseconds, for JSON.
pub fn millis(duration: Option<&prost_types::Duration>) -> Option<f64> {
    duration.map(|d| d.seconds as f64 * 1000.0 + f64::from(d.nanos) / 1_000_000.0)
}

/// "12.3ms", "1.20s", or "" when absent.
pub fn short_duration(duration: Option<&prost_types::Duration>) -> String {
    match millis(duration) {
        Some(ms) if ms >= 1000.0 => format!("{:.2}s", ms / 1000.0),
        Some(ms) => format!("{ms:.1}ms"),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_and_wide_ones_show_only_in_wide() {
        let mut table = Table::new(&["NAME", ">COUNT"]).wide(&["NOTE"]);
        table.row(vec!["a".into(), "1".into(), "x".into()]);
        table.row(vec!["long-name".into(), "100".into(), "y".into()]);
        let plain = Output {
            format: Format::Table,
            colour: false,
        };
        assert_eq!(
            table.render(&plain),
            "NAME       COUNT\na              1\nlong-name    100\n"
        );
        let wide = Output {
            format: Format::Wide,
            colour: false,
        };
        assert_eq!(
            table.render(&wide),
            "NAME       COUNT  NOTE\na              1  x\nlong-name    100  y\n"
        );
    }

    #[test]
    fn colour_does_not_disturb_alignment() {
        let mut table = Table::new(&["STATUS", "NAME"]);
        table.row(vec![Cell::toned("ok", Tone::Good), "a".into()]);
        table.row(vec![Cell::toned("unhealthy", Tone::Bad), "b".into()]);
        let out = Output {
            format: Format::Table,
            colour: true,
        };
        assert_eq!(
            table.render(&out),
            "STATUS     NAME\n\x1b[32mok\x1b[0m         a\n\x1b[31munhealthy\x1b[0m  b\n"
        );
    }
}
