//! Log tailing: a container's output split into lines, filtered, at the reader's pace.
//! Memory is bounded: the engine's stream is pulled only as fast as the client reads,
//! and a line is cut at [`MAX_LINE`] bytes.

use bollard::Docker;
use bollard::container::LogOutput;
use bollard::models::SystemVersion;
use bollard::query_parameters::LogsOptions;
use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use regex::Regex;
use std::collections::VecDeque;

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
    /// Where the line ends in the engine's output: see [`Cursor`].
    pub position: Option<Cursor>,
    pub truncated: bool,
}

/// A position in a log: the time of the engine's record that ended a line, and how many
/// records (or pieces of records: every newline-terminated part and every unterminated
/// rest) came before it with that same time. Engines stamp many records with one time
/// (Podman's API gives whole seconds), and a line written in two records has two times,
/// so counting records, not lines, is what reads the same whether a stream starts at the
/// log's start or at that second.
pub type Cursor = (i64, u32);

impl LogLine {
    /// The opaque position a reader hands back to go on after this line.
    pub fn cursor(&self) -> Option<String> {
        self.position.map(|(at, n)| format!("{at}-{n}"))
    }

    /// Whether the line comes after `cursor` (lines without a position always do).
    fn is_after(&self, cursor: Cursor) -> bool {
        self.position.is_none_or(|position| position > cursor)
    }
}

/// Reads a cursor written by [`LogLine::cursor`].
pub fn parse_cursor(text: &str) -> Result<Cursor, String> {
    text.split_once('-')
        .and_then(|(at, ordinal)| Some((at.parse().ok()?, ordinal.parse().ok()?)))
        .ok_or_else(|| format!("{text:?} is not a log cursor (use a LogLine.cursor as given)"))
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
    /// Go on after this position (instead of `tail`).
    pub after: Option<Cursor>,
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
    let lines = async_stream::stream! {
        let ring = match query.tail {
            Some(_) => !engine_tails_reliably(&docker).await,
            None => false,
        };
        let mut source: BoxStream<'static, Result<LogLine, String>> = if let Some(after) = query.after {
            // From the start of the cursor's second, so records count as they did.
            let options = options(&query, query.follow, None, Some(after.0));
            engine_lines(docker, container_id, options)
                .filter(move |line| {
                    std::future::ready(line.as_ref().map_or(true, |l| l.is_after(after)))
                })
                .boxed()
        } else if ring {
            ring_tail(docker, container_id, query.clone()).boxed()
        } else {
            let options = options(&query, query.follow, query.tail, query.since_micros);
            engine_lines(docker, container_id, options).boxed()
        };
        while let Some(item) = source.next().await {
            match item {
                Ok(line) => {
                    if keep(&line, &query) {
                        yield Ok(line);
                    }
                }
                Err(err) => {
                    yield Err(err);
                    return;
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

/// The engine's `logs` request for `query`, following or not, with `tail` lines at most.
fn options(query: &LogQuery, follow: bool, tail: Option<u32>, since: Option<i64>) -> LogsOptions {
    LogsOptions {
        follow,
        stdout: query.stdout,
        stderr: query.stderr,
        // The engine takes whole seconds; `keep` drops what is earlier to the microsecond.
        since: since.map_or(0, |m| {
            i32::try_from(m.div_euclid(1_000_000)).unwrap_or(i32::MAX)
        }),
        until: 0,
        timestamps: true,
        tail: tail.map_or_else(|| "all".to_owned(), |n| n.to_string()),
    }
}

/// Whether the engine's own `tail` can be trusted. Podman before 4.7 reads its log file
/// backwards without rejoining the parts of a line its monitor (conmon) wrote in two:
/// the first part is lost or glued to another line (containers/podman#19545). Its
/// forward read is right, so for those engines [`ring_tail`] keeps the last lines itself.
async fn engine_tails_reliably(docker: &Docker) -> bool {
    match docker.version().await {
        Ok(version) => !podman_tail_splits_lines(&version),
        // The logs request itself will report an unreachable engine.
        Err(_) => true,
    }
}

fn podman_tail_splits_lines(version: &SystemVersion) -> bool {
    let Some(podman) = version
        .components
        .iter()
        .flatten()
        .find(|c| c.name.contains("Podman"))
    else {
        return false;
    };
    let mut parts = podman.version.split('.').map(|p| {
        p.chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse::<u32>()
            .unwrap_or(0)
    });
    let major = parts.next().unwrap_or(0);
    let minor = parts.next().unwrap_or(0);
    (major, minor) < (4, 7)
}

/// `tail` without the engine's tail: the whole log read forwards, the last `tail` lines
/// kept in a ring (memory bounded by `tail` lines of at most [`MAX_LINE`] bytes), then,
/// when following, a second request from the last line's second on, skipping what the
/// first one already delivered.
fn ring_tail(
    docker: Docker,
    container_id: String,
    query: LogQuery,
) -> impl Stream<Item = Result<LogLine, String>> + Send + 'static {
    async_stream::stream! {
        let limit = query.tail.unwrap_or(MAX_TAIL).max(1) as usize;
        let mut ring = VecDeque::with_capacity(limit.min(1024));
        // The position of the newest line read.
        let mut newest: Option<Cursor> = None;
        let history = options(&query, false, None, query.since_micros);
        let mut history = Box::pin(engine_lines(docker.clone(), container_id.clone(), history));
        while let Some(item) = history.next().await {
            let line = match item {
                Ok(line) => line,
                Err(err) => {
                    yield Err(err);
                    return;
                }
            };
            if let Some(position) = line.position
                && newest.is_none_or(|newest| position > newest)
            {
                newest = Some(position);
            }
            if ring.len() == limit {
                ring.pop_front();
            }
            ring.push_back(line);
        }
        for line in ring.drain(..) {
            yield Ok(line);
        }
        if !query.follow {
            return;
        }
        let since = newest.map(|(t, _)| t).or(query.since_micros);
        let live = options(&query, true, None, since);
        let mut live = Box::pin(engine_lines(docker, container_id, live));
        while let Some(item) = live.next().await {
            let line = match item {
                Ok(line) => line,
                Err(err) => {
                    yield Err(err);
                    return;
                }
            };
            if newest.is_none_or(|newest| line.is_after(newest)) {
                yield Ok(line);
            }
        }
    }
}

/// The engine's log as lines, unfiltered, with their positions counted from where the
/// stream starts (exact when it starts at a whole second: `since`, or the log's start).
fn engine_lines(
    docker: Docker,
    container_id: String,
    options: LogsOptions,
) -> impl Stream<Item = Result<LogLine, String>> + Send + 'static {
    async_stream::stream! {
        let mut output = Box::pin(docker.logs(&container_id, Some(options)));
        let mut pending = [Pending::default(), Pending::default()];
        let mut last: Option<Cursor> = None;
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
            let record_at = record_time(&bytes);
            // A long line comes in parts, each with its own timestamp: keep the first.
            let bytes = if slot.bytes.is_empty() { &bytes[..] } else { strip_timestamp(&bytes) };
            for done in split(slot, bytes) {
                if let Some(at) = record_at {
                    let n = match last {
                        Some((t, n)) if t == at => n + 1,
                        _ => 0,
                    };
                    last = Some((at, n));
                }
                if let Some(line) = done {
                    let mut line = parse(stream, line);
                    line.position = record_at.and(last);
                    yield Ok(line);
                }
            }
        }
        for (i, slot) in pending.iter_mut().enumerate() {
            if !slot.bytes.is_empty() {
                let stream = if i == 0 { LogStream::Stdout } else { LogStream::Stderr };
                let rest = (std::mem::take(&mut slot.bytes), slot.truncated);
                let mut line = parse(stream, rest);
                line.position = last;
                yield Ok(line);
            }
        }
    }
}

/// The time of a record that starts with "<RFC 3339 time> ".
fn record_time(bytes: &[u8]) -> Option<i64> {
    let space = bytes.iter().take(40).position(|b| *b == b' ')?;
    std::str::from_utf8(&bytes[..space])
        .ok()
        .and_then(parse_time)
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

/// Appends `bytes` to the partial line; one entry per piece (a newline-terminated part or
/// an unterminated rest), with the line the piece completed.
fn split(slot: &mut Pending, bytes: &[u8]) -> Vec<Option<(Vec<u8>, bool)>> {
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
            done.push(Some((std::mem::take(&mut slot.bytes), slot.truncated)));
            slot.truncated = false;
        } else {
            done.push(None);
        }
    }
    done
}

/// Parses the engine's timestamp prefix.
fn parse(stream: LogStream, (bytes, truncated): (Vec<u8>, bool)) -> LogLine {
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
    LogLine {
        stream,
        text: text.to_owned(),
        at_micros,
        position: None,
        truncated,
    }
}

/// Whether `line` passes the query's filters.
fn keep(line: &LogLine, query: &LogQuery) -> bool {
    if let (Some(since), Some(at)) = (query.since_micros, line.at_micros)
        && at < since
    {
        return false;
    }
    if query
        .contains
        .as_ref()
        .is_some_and(|needle| !line.text.contains(needle.as_str()))
    {
        return false;
    }
    query
        .regex
        .as_ref()
        .is_none_or(|re| re.is_match(&line.text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_split_across_chunks_and_cut_when_too_long() {
        let mut slot = Pending::default();
        assert_eq!(split(&mut slot, b"hel"), vec![None]);
        let done = split(&mut slot, b"lo\nwor");
        assert_eq!(done, vec![Some((b"hello".to_vec(), false)), None]);
        let long = vec![b'x'; MAX_LINE + 10];
        assert_eq!(split(&mut slot, &long), vec![None]);
        let done = split(&mut slot, b"\n");
        let [Some((line, truncated))] = &done[..] else {
            panic!("{done:?}")
        };
        assert_eq!(line.len(), MAX_LINE);
        assert!(truncated);
        assert_eq!(
            split(&mut slot, b"ok\n"),
            vec![Some((b"ok".to_vec(), false))]
        );
    }

    #[test]
    fn timestamps_and_filters() {
        let query = LogQuery {
            contains: Some("err".into()),
            ..Default::default()
        };
        let line = parse(
            LogStream::Stderr,
            (b"2026-01-02T03:04:05.000000006Z an error".to_vec(), false),
        );
        assert_eq!(line.text, "an error");
        assert!(line.at_micros.is_some());
        assert!(keep(&line, &query));
        let fine = parse(LogStream::Stdout, (b"fine".to_vec(), false));
        assert_eq!((fine.text.as_str(), fine.at_micros), ("fine", None));
        assert!(!keep(&fine, &query));
    }

    #[test]
    fn cursors_round_trip_and_order_lines() {
        let mut line = parse(
            LogStream::Stdout,
            (b"2026-01-02T03:04:05Z x".to_vec(), false),
        );
        line.position = line.at_micros.map(|at| (at, 2));
        let cursor = parse_cursor(&line.cursor().unwrap()).unwrap();
        assert_eq!(cursor, (line.at_micros.unwrap(), 2));
        assert!(!line.is_after(cursor));
        assert!(line.is_after((cursor.0, 1)));
        assert!(line.is_after((cursor.0 - 1, 9)));
        assert!(!line.is_after((cursor.0 + 1, 0)));
        for bad in ["", "12", "x-1", "12-", "12--1"] {
            assert!(parse_cursor(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn podman_before_4_7_needs_the_ring() {
        let engine = |name: &str, version: &str| SystemVersion {
            components: Some(vec![bollard::models::SystemVersionComponents {
                name: name.to_owned(),
                version: version.to_owned(),
                details: None,
            }]),
            ..Default::default()
        };
        assert!(podman_tail_splits_lines(&engine("Podman Engine", "4.3.1")));
        assert!(podman_tail_splits_lines(&engine("Podman Engine", "3.4.4")));
        assert!(!podman_tail_splits_lines(&engine("Podman Engine", "4.7.0")));
        assert!(!podman_tail_splits_lines(&engine(
            "Podman Engine",
            "5.2.0-rc1"
        )));
        assert!(!podman_tail_splits_lines(&engine("Engine", "20.10.24")));
        assert!(!podman_tail_splits_lines(&SystemVersion::default()));
    }
}
