//! `pharos export checks|events|operations --since 24h --format csv|json [--output FILE]`: streams
//! `ExportService.Export` to a file or stdout, one page at a time, so memory stays flat
//! however many rows pass. A progress bar shows on stderr when it is a terminal. A file
//! is written beside its final name and renamed only once the export is complete.

use std::io::{BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use pharos_proto::v1 as pb;
use serde_json::json;

use crate::client::Client;
use crate::error::CliError;
use crate::output;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// Check results from the health history
    Checks,
    /// Events from the journal
    Events,
    /// Operations (restarts, scales, rollouts) by creation time
    Operations,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum FileFormat {
    /// Comma-separated values with a header row (RFC 4180 quoting)
    Csv,
    /// JSON lines: one object per record
    Json,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// What to export
    kind: Kind,
    /// Only records from this long ago on [default: everything retained]
    #[arg(long, value_parser = super::parse_since)]
    since: Option<std::time::Duration>,
    /// File format
    #[arg(long, value_enum, default_value = "csv")]
    format: FileFormat,
}

const CHECK_COLUMNS: [&str; 9] = [
    "check_id",
    "time",
    "outcome",
    "message",
    "connect_ms",
    "tls_ms",
    "first_byte_ms",
    "total_ms",
    "measurements",
];
const OPERATION_COLUMNS: [&str; 14] = [
    "created",
    "id",
    "kind",
    "deployment_id",
    "state",
    "actor",
    "reason",
    "request_id",
    "dry_run",
    "replicas",
    "started",
    "finished",
    "steps",
    "result",
];
const EVENT_COLUMNS: [&str; 9] = [
    "time",
    "id",
    "kind",
    "severity",
    "source",
    "project_id",
    "environment",
    "message",
    "attributes",
];

pub async fn run(client: &Client, args: Args, file: Option<String>) -> Result<(), CliError> {
    let request = pb::ExportRequest {
        kind: match args.kind {
            Kind::Checks => pb::ExportKind::CheckResults,
            Kind::Events => pb::ExportKind::Events,
            Kind::Operations => pb::ExportKind::Operations,
        } as i32,
        start_time: args.since.map(super::timestamp_ago),
        end_time: None,
        page_size: 0,
    };
    let mut stream = client
        .export()
        .await?
        .export(request)
        .await
        .map_err(|status| client.error(&status))?
        .into_inner();

    let mut sink = Sink::open(file.as_deref())?;
    let progress = if std::io::stderr().is_terminal() {
        ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr())
    } else {
        ProgressBar::hidden()
    };
    progress.set_style(
        ProgressStyle::with_template(
            "{spinner} {bar:40} {human_pos}/{human_len} rows  {per_sec}  eta {eta}",
        )
        .expect("valid template"),
    );
    let format = args.format;
    if format == FileFormat::Csv {
        let header = match args.kind {
            Kind::Checks => CHECK_COLUMNS.join(","),
            Kind::Events => EVENT_COLUMNS.join(","),
            Kind::Operations => OPERATION_COLUMNS.join(","),
        };
        sink.line(&header)?;
    }
    let mut written = 0u64;
    let mut total = 0u64;
    loop {
        let page = match stream.message().await {
            Ok(Some(page)) => page,
            Ok(None) => break,
            Err(status) => {
                progress.abandon();
                sink.discard();
                return Err(client.error(&status));
            }
        };
        if total == 0 {
            total = page.total_records;
            progress.set_length(total);
        }
        for result in &page.check_results {
            match format {
                FileFormat::Csv => sink.line(&check_csv(result))?,
                FileFormat::Json => sink.line(&check_json(result).to_string())?,
            }
        }
        for event in &page.events {
            match format {
                FileFormat::Csv => sink.line(&event_csv(event))?,
                FileFormat::Json => sink.line(&event_json(event).to_string())?,
            }
        }
        for op in &page.operations {
            match format {
                FileFormat::Csv => sink.line(&operation_csv(op))?,
                FileFormat::Json => {
                    sink.line(&super::operations::operation_json(op).to_string())?;
                }
            }
        }
        let rows = (page.check_results.len() + page.events.len() + page.operations.len()) as u64;
        written += rows;
        progress.inc(rows);
    }
    progress.finish_and_clear();
    let destination = sink.finish()?;
    let what = match args.kind {
        Kind::Checks => "check results",
        Kind::Events => "events",
        Kind::Operations => "operations",
    };
    if written < total {
        eprintln!(
            "pharos: exported {written} of {total} {what}: retention removed the rest while the export ran"
        );
    } else if let Some(path) = destination {
        eprintln!("pharos: exported {written} {what} to {}", path.display());
    } else if std::io::stderr().is_terminal() {
        eprintln!("pharos: exported {written} {what}");
    }
    Ok(())
}

/// Where rows go: stdout, or a file written under a temporary name and renamed when done.
enum Sink {
    Stdout(BufWriter<std::io::Stdout>),
    File {
        writer: BufWriter<std::fs::File>,
        partial: PathBuf,
        path: PathBuf,
    },
}

impl Sink {
    fn open(file: Option<&str>) -> Result<Sink, CliError> {
        let Some(file) = file.filter(|f| *f != "-") else {
            return Ok(Sink::Stdout(BufWriter::with_capacity(
                1 << 16,
                std::io::stdout(),
            )));
        };
        let path = PathBuf::from(file);
        let name = path
            .file_name()
            .ok_or_else(|| CliError::Usage(format!("--output {file:?} is not a file name")))?;
        let partial = path.with_file_name(format!(".{}.partial", name.to_string_lossy()));
        let handle = std::fs::File::create(&partial).map_err(|err| {
            CliError::Invalid(format!("cannot create {}: {err}", partial.display()))
        })?;
        Ok(Sink::File {
            writer: BufWriter::with_capacity(1 << 16, handle),
            partial,
            path,
        })
    }

    fn line(&mut self, text: &str) -> Result<(), CliError> {
        let result = match self {
            Sink::Stdout(writer) => writeln!(writer, "{text}"),
            Sink::File { writer, .. } => writeln!(writer, "{text}"),
        };
        result.map_err(|err| self.write_error(err))
    }

    fn write_error(&self, err: std::io::Error) -> CliError {
        match self {
            Sink::Stdout(_) => CliError::Other(format!("cannot write to stdout: {err}")),
            Sink::File { partial, .. } => {
                let _ = std::fs::remove_file(partial);
                CliError::Other(format!("cannot write {}: {err}", partial.display()))
            }
        }
    }

    fn discard(self) {
        if let Sink::File { partial, .. } = self {
            let _ = std::fs::remove_file(partial);
        }
    }

    /// Flushes, and moves a file to its final name.
    fn finish(self) -> Result<Option<PathBuf>, CliError> {
        match self {
            Sink::Stdout(mut writer) => writer
                .flush()
                .map(|()| None)
                .map_err(|err| CliError::Other(format!("cannot write to stdout: {err}"))),
            Sink::File {
                writer,
                partial,
                path,
            } => {
                let fail = |err: std::io::Error, at: &Path| {
                    let _ = std::fs::remove_file(&partial);
                    CliError::Other(format!("cannot write {}: {err}", at.display()))
                };
                let file = writer
                    .into_inner()
                    .map_err(|err| fail(err.into_error(), &partial))?;
                file.sync_all().map_err(|err| fail(err, &partial))?;
                std::fs::rename(&partial, &path).map_err(|err| fail(err, &path))?;
                Ok(Some(path))
            }
        }
    }
}

/// RFC 3339 in UTC with microseconds: exports keep the stored precision.
fn precise_time(timestamp: Option<&prost_types::Timestamp>) -> String {
    timestamp
        .and_then(|t| chrono::DateTime::from_timestamp(t.seconds, t.nanos.max(0) as u32))
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
        .unwrap_or_default()
}

fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

fn number(value: Option<f64>) -> String {
    value.map(|v| v.to_string()).unwrap_or_default()
}

fn check_json(result: &pb::CheckResult) -> serde_json::Value {
    let mut value = super::status::result_json(result);
    value["time"] = precise_time(result.time.as_ref()).into();
    value
}

fn check_csv(result: &pb::CheckResult) -> String {
    let measurements = serde_json::to_string(&result.measurements).expect("json");
    [
        csv_field(&result.check_id),
        precise_time(result.time.as_ref()),
        output::status_name(result.outcome).to_owned(),
        csv_field(&result.message),
        number(output::millis(result.connect.as_ref())),
        number(output::millis(result.tls.as_ref())),
        number(output::millis(result.first_byte.as_ref())),
        number(output::millis(result.total.as_ref())),
        csv_field(&measurements),
    ]
    .join(",")
}

fn severity(value: i32) -> String {
    pb::EventSeverity::try_from(value)
        .map(|s| {
            s.as_str_name()
                .trim_start_matches("EVENT_SEVERITY_")
                .to_lowercase()
        })
        .unwrap_or_default()
}

fn event_json(event: &pb::Event) -> serde_json::Value {
    json!({
        "time": precise_time(event.time.as_ref()),
        "id": event.id,
        "kind": event.kind,
        "severity": severity(event.severity),
        "source": event.source,
        "project_id": event.project_id,
        "environment": event.environment,
        "message": event.message,
        "attributes": event.attributes,
    })
}

fn event_csv(event: &pb::Event) -> String {
    let attributes: std::collections::BTreeMap<_, _> = event.attributes.iter().collect();
    [
        precise_time(event.time.as_ref()),
        csv_field(&event.id),
        csv_field(&event.kind),
        severity(event.severity),
        csv_field(&event.source),
        csv_field(&event.project_id),
        csv_field(&event.environment),
        csv_field(&event.message),
        csv_field(&serde_json::to_string(&attributes).expect("json")),
    ]
    .join(",")
}

fn operation_csv(op: &pb::Operation) -> String {
    use super::operations::{kind_name, state_name};
    [
        precise_time(op.create_time.as_ref()),
        csv_field(&op.id),
        kind_name(op.kind).to_owned(),
        csv_field(&op.deployment_id),
        state_name(op.state).to_owned(),
        csv_field(&op.actor),
        csv_field(&op.reason),
        csv_field(&op.request_id),
        op.dry_run.to_string(),
        op.replicas.to_string(),
        precise_time(op.start_time.as_ref()),
        precise_time(op.finish_time.as_ref()),
        op.steps.len().to_string(),
        csv_field(&op.result),
    ]
    .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_only_when_needed() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
    }

    #[test]
    fn a_check_result_becomes_one_csv_row() {
        let result = pb::CheckResult {
            check_id: "shop/prod/http".to_owned(),
            time: Some(prost_types::Timestamp {
                seconds: 1_800_000_000,
                nanos: 123_456_000,
            }),
            outcome: pb::HealthStatus::Unhealthy as i32,
            message: "status 503, expected 200".to_owned(),
            connect: None,
            tls: None,
            first_byte: None,
            total: Some(prost_types::Duration {
                seconds: 0,
                nanos: 1_448_000,
            }),
            measurements: [("http_status".to_owned(), 503.0)].into(),
        };
        assert_eq!(
            check_csv(&result),
            "shop/prod/http,2027-01-15T08:00:00.123456Z,unhealthy,\"status 503, expected 200\",,,,1.448,\"{\"\"http_status\"\":503.0}\""
        );
    }
}
