//! Log tailing: a container's output split into lines, filtered, at the reader's pace.
//! Memory is bounded: the engine's stream is pulled only as fast as the client reads,
//! and a line is cut at [`MAX_LINE`] bytes.

use bollard::Docker;
use bollard::container::LogOutput;
use bollard::query_parameters::LogsOptions;
use futures::{Stream, StreamExt};
use regex::Regex;

use super::collector::{describe, parse_time};

/// Longest line kept; the rest of a longer line is dropped and the line marked truncated.
pub const MAX_LINE: usize = 16 * 1024;
/// Most lines `tail` may ask for.
pub const MAX_TAIL: u32 = 10_000;
/// Lines sent together at most.
const BATCH: usize = 256;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogStream {
    Stdout,
    Stderr,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogLine {
    pub stream: LogStream,
    pub text: String,
    pub at_micros: Option<i64>,
    pub truncated: bool,
}

#[derive(Clone, Debug, Default)]
pub struct LogQuery {
    pub follow: bool,
    pub since_micros: Option<i64>,
    /// `None`: every line.
    pub tail: Option<u32>,
    pub stdout: bool,
    pub stderr: bool,
    pub contains: Option<String>,
    pub regex: Option<Regex>,
}

/// One output's partial line.
#[derive(Default)]
struct Pending {
    bytes: Vec<u8>,
    truncated: bool,
}

/// Streams batches of lines, or the engine's error as one line a person can act on.
pub fn tail(
    docker: Docker,
    container_id: String,
    query: LogQuery,
) -> impl Stream<Item = Result<Vec<LogLine>, String>> + Send + 'static {
    let options = LogsOptions {
        follow: query.follow,
        stdout: query.stdout,
        stderr: query.stderr,
        since: query
            .since_micros
            .map_or(0, |m| i32::try_from(m / 1_000_000).unwrap_or(i32::MAX)),
        until: 0,
        timestamps: true,
        tail: query
            .tail
            .map_or_else(|| "all".to_owned(), |n| n.to_string()),
    };
    let lines = async_stream::stream! {
        let mut output = Box::pin(docker.logs(&container_id, Some(options)));
        let mut pending = [Pending::default(), Pending::default()];
        while let Some(chunk) = output.next().await {
            let (stream, bytes) = match chunk {
                Ok(LogOutput::StdOut { message }) => (LogStream::Stdout, message),
                Ok(LogOutput::StdErr { message }) => (LogStream::Stderr, message),
                // A TTY container's output has no separate streams.
                Ok(LogOutput::Console { message }) => (LogStream::Stdout, message),
                Ok(LogOutput::StdIn { .. }) => continue,
                Err(err) => {
                    yield Err(describe(&err));
                    return;
                }
            };
            let slot = &mut pending[stream as usize];
            // A long line comes in parts, each with its own timestamp: keep the first.
            let bytes = if slot.bytes.is_empty() { &bytes[..] } else { strip_timestamp(&bytes) };
            for line in split(slot, bytes) {
                if let Some(line) = finish(stream, line, &query) {
                    yield Ok(line);
                }
            }
        }
        for (i, slot) in pending.iter_mut().enumerate() {
            if !slot.bytes.is_empty() {
                let stream = if i == 0 { LogStream::Stdout } else { LogStream::Stderr };
                let rest = (std::mem::take(&mut slot.bytes), slot.truncated);
                if let Some(line) = finish(stream, rest, &query) {
                    yield Ok(line);
                }
            }
        }
    };
    lines.ready_chunks(BATCH).map(|batch| {
        let mut lines = Vec::with_capacity(batch.len());
        for item in batch {
            lines.push(item?);
        }
        Ok(lines)
    })
}

/// `bytes` without a leading "<RFC 3339 time> ", if it has one.
fn strip_timestamp(bytes: &[u8]) -> &[u8] {
    let Some(space) = bytes.iter().take(40).position(|b| *b == b' ') else {
        return bytes;
    };
    match std::str::from_utf8(&bytes[..space])
        .ok()
        .and_then(parse_time)
    {
        Some(_) => &bytes[space + 1..],
        None => bytes,
    }
}

/// Appends `bytes` to the partial line; returns the lines it completes.
fn split(slot: &mut Pending, bytes: &[u8]) -> Vec<(Vec<u8>, bool)> {
    let mut done = Vec::new();
    for part in bytes.split_inclusive(|b| *b == b'\n') {
        let (content, ends) = match part.strip_suffix(b"\n") {
            Some(content) => (content, true),
            None => (part, false),
        };
        let room = MAX_LINE.saturating_sub(slot.bytes.len());
        if content.len() > room {
            slot.bytes.extend_from_slice(&content[..room]);
            slot.truncated = true;
        } else {
            slot.bytes.extend_from_slice(content);
        }
        if ends {
            done.push((std::mem::take(&mut slot.bytes), slot.truncated));
            slot.truncated = false;
        }
    }
    done
}

/// Parses the engine's timestamp prefix and applies the filters.
fn finish(
    stream: LogStream,
    (bytes, truncated): (Vec<u8>, bool),
    query: &LogQuery,
) -> Option<LogLine> {
    let text = String::from_utf8_lossy(&bytes);
    let text = text.strip_suffix('\r').unwrap_or(&text);
    let (at_micros, text) = match text.split_once(' ') {
        Some((stamp, rest)) => match parse_time(stamp) {
            Some(at) => (Some(at), rest),
            None => (None, text),
        },
        None => match parse_time(text) {
            Some(at) => (Some(at), ""),
            None => (None, text),
        },
    };
    if let (Some(since), Some(at)) = (query.since_micros, at_micros)
        && at < since
    {
        return None;
    }
    if query
        .contains
        .as_ref()
        .is_some_and(|needle| !text.contains(needle.as_str()))
    {
        return None;
    }
    if query.regex.as_ref().is_some_and(|re| !re.is_match(text)) {
        return None;
    }
    Some(LogLine {
        stream,
        text: text.to_owned(),
        at_micros,
        truncated,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_split_across_chunks_and_cut_when_too_long() {
        let mut slot = Pending::default();
        assert!(split(&mut slot, b"hel").is_empty());
        let done = split(&mut slot, b"lo\nwor");
        assert_eq!(done, vec![(b"hello".to_vec(), false)]);
        let long = vec![b'x'; MAX_LINE + 10];
        assert!(split(&mut slot, &long).is_empty());
        let done = split(&mut slot, b"\n");
        assert_eq!(done.len(), 1);
        assert_eq!(done[0].0.len(), MAX_LINE);
        assert!(done[0].1);
        assert_eq!(split(&mut slot, b"ok\n"), vec![(b"ok".to_vec(), false)]);
    }

    #[test]
    fn timestamps_and_filters() {
        let query = LogQuery {
            contains: Some("err".into()),
            ..Default::default()
        };
        let line = finish(
            LogStream::Stderr,
            (b"2026-01-02T03:04:05.000000006Z an error".to_vec(), false),
            &query,
        )
        .unwrap();
        assert_eq!(line.text, "an error");
        assert!(line.at_micros.is_some());
        assert!(finish(LogStream::Stdout, (b"fine".to_vec(), false), &query).is_none());
    }
}
