//! `pharos export checks|events|operations --since 24h --format csv|json [--output FILE]`: streams
//! `ExportService.Export` to a file or stdout, one page at a time, so memory stays flat
//! however many rows pass. A progress bar shows on stderr when it is a terminal. A file
//! is written beside its final name and renamed only once the export is complete.

mod rows;
mod sink;

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use pharos_proto::v1 as pb;

use self::rows::{
    CHECK_COLUMNS, EVENT_COLUMNS, OPERATION_COLUMNS, check_csv, check_json, event_csv, event_json,
    operation_csv,
};
use self::sink::Sink;
use crate::client::Client;
use crate::error::CliError;

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
