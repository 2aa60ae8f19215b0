//! `pharos logs CONTAINER`: a container's output as the server's TailLogs serves it.

use std::io::Write;
use std::time::Duration;

use pharos_proto::v1 as pb;
use serde_json::json;
use tonic::Code;

use crate::client::Client;
use crate::error::CliError;
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

const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

pub async fn run(client: &Client, args: Args, out: Output) -> Result<(), CliError> {
    let mut streams = Vec::new();
    if args.stdout {
        streams.push(pb::LogStream::Stdout as i32);
    }
    if args.stderr {
        streams.push(pb::LogStream::Stderr as i32);
    }
    let request = pb::TailLogsRequest {
        container: args.container,
        follow: args.follow,
        since: args.since.map(super::timestamp_ago),
        tail: args.tail.unwrap_or(0),
        streams,
        contains: args.grep.unwrap_or_default(),
        regex: args.regex.unwrap_or_default(),
        after_cursor: String::new(),
    };
    let mut position = Position::default();
    let mut backoff = FIRST_BACKOFF;
    let mut reconnecting = false;
    let stdout = std::io::stdout();
    loop {
        let opened = match client.containers().await {
            Ok(mut containers) => containers
                .tail_logs(position.resume(&request))
                .await
                .map_err(|status| (client.error(&status), retryable(&status))),
            Err(err) => {
                let retry = matches!(err, CliError::Unreachable(_));
                Err((err, retry))
            }
        };
        let mut stream = match opened {
            Ok(response) => response.into_inner(),
            // Only a follower that has been connected keeps trying: a first failure, or
            // a refusal (unknown container, bad regex), is reported at once.
            Err((err, true)) if reconnecting => {
                eprintln!("pharos: {err}; reconnecting in {backoff:?}");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = tokio::signal::ctrl_c() => return Ok(()),
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
            Err((err, _)) => return Err(err),
        };
        if reconnecting {
            eprintln!("pharos: reconnected; going on after the last line shown");
        }
        backoff = FIRST_BACKOFF;
        loop {
            let response = tokio::select! {
                message = stream.message() => message,
                _ = tokio::signal::ctrl_c() => return Ok(()),
            };
            let response = match response {
                Ok(Some(response)) => response,
                // The log ended (not following, or the container stopped).
                Ok(None) => return Ok(()),
                Err(status) if request.follow && retryable(&status) => {
                    eprintln!(
                        "pharos: log stream interrupted ({}); reconnecting",
                        status.message()
                    );
                    reconnecting = true;
                    break;
                }
                Err(status) => return Err(client.error(&status)),
            };
            let mut lock = stdout.lock();
            for line in response.lines {
                position.advance(&line);
                if print(&mut lock, &line, out).is_err() {
                    // A closed pipe (`| head`): stop quietly.
                    return Ok(());
                }
            }
            let _ = lock.flush();
        }
    }
}

/// Errors a follower outlives: the server going away or restarting.
fn retryable(status: &tonic::Status) -> bool {
    matches!(
        status.code(),
        Code::Unavailable | Code::Unknown | Code::Internal | Code::Cancelled
    )
}

/// Where a followed log is: the cursor of the last line shown, so a reconnection goes
/// on after it, repeating and losing nothing.
#[derive(Debug, Default)]
struct Position {
    cursor: Option<String>,
}

impl Position {
    /// The request to (re)open: the original one until a line was shown, then the same
    /// filters after that line.
    fn resume(&self, request: &pb::TailLogsRequest) -> pb::TailLogsRequest {
        match &self.cursor {
            None => request.clone(),
            Some(cursor) => pb::TailLogsRequest {
                after_cursor: cursor.clone(),
                tail: 0,
                ..request.clone()
            },
        }
    }

    /// Records `line` as shown.
    fn advance(&mut self, line: &pb::LogLine) {
        if !line.cursor.is_empty() {
            self.cursor = Some(line.cursor.clone());
        }
    }
}

fn print(lock: &mut impl Write, line: &pb::LogLine, out: Output) -> std::io::Result<()> {
    let stream_name = if line.stream == pb::LogStream::Stderr as i32 {
        "stderr"
    } else {
        "stdout"
    };
    if out.structured() {
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reconnection_goes_on_after_the_last_line_shown() {
        let request = pb::TailLogsRequest {
            container: "api".into(),
            follow: true,
            tail: 5,
            contains: "GET".into(),
            ..Default::default()
        };
        let mut position = Position::default();
        assert_eq!(position.resume(&request), request);
        for cursor in ["10-0", "10-1", ""] {
            position.advance(&pb::LogLine {
                cursor: cursor.into(),
                ..Default::default()
            });
        }
        let again = position.resume(&request);
        assert_eq!((again.after_cursor.as_str(), again.tail), ("10-1", 0));
        assert_eq!((again.contains.as_str(), again.follow), ("GET", true));
    }
}
