//! `pharos logs CONTAINER`: a container's output as the server's TailLogs serves it.

use std::io::Write as _;

use pharos_proto::v1 as pb;
use serde_json::json;

use crate::client::{CliError, Client};
use crate::output::{self, Output};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The container's name, id, or an id prefix of at least 12 characters
    container: String,
    /// Keep printing new lines until interrupted
    #[arg(short, long)]
    follow: bool,
    /// Start with the last N lines (at most 10000)
    #[arg(long, value_name = "N")]
    tail: Option<u32>,
    /// Only lines written in this last duration, such as 10m
    #[arg(long, value_parser = super::parse_since)]
    since: Option<std::time::Duration>,
    /// Only lines containing this text
    #[arg(long, value_name = "TEXT")]
    grep: Option<String>,
    /// Only lines matching this regular expression (Rust regex syntax)
    #[arg(long, value_name = "RE")]
    regex: Option<String>,
    /// Only standard output
    #[arg(long, conflicts_with = "stderr")]
    stdout: bool,
    /// Only standard error
    #[arg(long)]
    stderr: bool,
}

pub async fn run(client: &Client, args: Args, out: Output) -> Result<(), CliError> {
    let mut streams = Vec::new();
    if args.stdout {
        streams.push(pb::LogStream::Stdout as i32);
    }
    if args.stderr {
        streams.push(pb::LogStream::Stderr as i32);
    }
    let mut containers = client.containers().await?;
    let mut stream = containers
        .tail_logs(pb::TailLogsRequest {
            container: args.container,
            follow: args.follow,
            since: args.since.map(super::timestamp_ago),
            tail: args.tail.unwrap_or(0),
            streams,
            contains: args.grep.unwrap_or_default(),
            regex: args.regex.unwrap_or_default(),
        })
        .await
        .map_err(|status| client.error(&status))?
        .into_inner();
    let stdout = std::io::stdout();
    loop {
        let response = tokio::select! {
            message = stream.message() => message.map_err(|status| client.error(&status))?,
            _ = tokio::signal::ctrl_c() => None,
        };
        let Some(response) = response else { break };
        let mut lock = stdout.lock();
        for line in response.lines {
            let stream_name = if line.stream == pb::LogStream::Stderr as i32 {
                "stderr"
            } else {
                "stdout"
            };
            let written = if out.structured() {
                writeln!(
                    lock,
                    "{}",
                    json!({
                        "time": output::time(line.time.as_ref()),
                        "stream": stream_name,
                        "text": line.text,
                        "truncated": line.truncated,
                    })
                )
            } else if out.wide() {
                writeln!(
                    lock,
                    "{} {} {}",
                    output::time(line.time.as_ref()),
                    stream_name,
                    line.text
                )
            } else {
                writeln!(lock, "{}", line.text)
            };
            if written.is_err() {
                // A closed pipe (`| head`): stop quietly.
                return Ok(());
            }
        }
        let _ = lock.flush();
    }
    Ok(())
}
