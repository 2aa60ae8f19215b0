//! `pharos checks history CHECK --since 1h`.

use pharos_proto::v1 as pb;
use serde_json::json;

use crate::client::Client;
use crate::error::CliError;
use crate::output::{self, Output, Table};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// A check's recorded results, newest first
    #[command(
        after_help = "Examples:\n  pharos checks history billing/prod/http --since 1h\n  pharos checks history billing/prod/http --since 7d --limit 50 -o json"
    )]
    History(HistoryArgs),
}

#[derive(Debug, clap::Args)]
pub struct HistoryArgs {
    /// The check's id: <project>/<environment>/<check name>
    check: String,
    /// How far back to look
    #[arg(long, default_value = "1h", value_parser = super::parse_since)]
    since: std::time::Duration,
    /// At most this many results
    #[arg(long, default_value_t = 100)]
    limit: usize,
}

pub async fn run(client: &Client, command: Command, out: Output) -> Result<(), CliError> {
    let Command::History(args) = command;
    let mut health = client.health().await?;
    let start = super::timestamp_ago(args.since);
    let mut results = Vec::new();
    let mut page_token = String::new();
    while results.len() < args.limit {
        let page = health
            .list_check_results(pb::ListCheckResultsRequest {
                check_id: args.check.clone(),
                start_time: Some(start),
                end_time: None,
                page_size: (args.limit - results.len()).min(1000) as u32,
                page_token,
            })
            .await
            .map_err(|status| client.error(&status))?
            .into_inner();
        results.extend(page.results);
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    results.truncate(args.limit);
    let value = json!({
        "check_id": args.check,
        "results": results.iter().map(super::status::result_json).collect::<Vec<_>>(),
    });
    out.emit(&value, |out| {
        if results.is_empty() {
            return format!(
                "no results for {} in the last {}\n",
                args.check,
                humantime::format_duration(args.since)
            );
        }
        let mut table = Table::new(&["TIME", "OUTCOME", ">LATENCY", "MESSAGE"]).wide(&[
            ">CONNECT",
            ">TLS",
            ">FIRST BYTE",
        ]);
        for result in &results {
            table.row(vec![
                output::time(result.time.as_ref()).into(),
                output::status_cell(result.outcome),
                output::short_duration(result.total.as_ref()).into(),
                super::status::first_line(&result.message).into(),
                output::short_duration(result.connect.as_ref()).into(),
                output::short_duration(result.tls.as_ref()).into(),
                output::short_duration(result.first_byte.as_ref()).into(),
            ]);
        }
        table.render(out)
    });
    Ok(())
}
