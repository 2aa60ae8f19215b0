//! Long-running programs (`grpcurl ... Watch`, `pharos watch`) whose stdout is read as it
//! is printed, line by line or JSON value by JSON value, each wait bounded by a deadline.

use crate::tail;
use anyhow::{Context, Result, bail};
use serde_json::Value;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio::time::Instant;

const TRANSCRIPT_LINES: usize = 60;

/// A spawned program whose stdout is read incrementally. Killed on drop.
pub struct StreamingChild {
    what: String,
    child: Child,
    lines: mpsc::UnboundedReceiver<String>,
    /// Every stdout line received so far, for failure messages.
    seen: Vec<String>,
    stderr: Arc<Mutex<String>>,
    /// Lines of a JSON value that is not complete yet.
    partial_json: String,
}

impl StreamingChild {
    /// Spawns `cmd` with no stdin and piped stdout and stderr.
    pub fn spawn(mut cmd: Command) -> Result<Self> {
        let what = format!("{:?}", cmd.as_std());
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().with_context(|| format!("spawn {what}"))?;
        let stdout = child.stdout.take().context("stdout")?;
        let mut stderr = child.stderr.take().context("stderr")?;
        let (sender, lines) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut reader = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let collected = Arc::new(Mutex::new(String::new()));
        let sink = collected.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stderr.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .expect("stderr lock")
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Ok(StreamingChild {
            what,
            child,
            lines,
            seen: Vec::new(),
            stderr: collected,
            partial_json: String::new(),
        })
    }

    /// The process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Everything printed on stderr so far.
    pub fn stderr_text(&self) -> String {
        self.stderr.lock().expect("stderr lock").clone()
    }

    /// Every stdout line read so far.
    pub fn stdout_lines(&self) -> &[String] {
        &self.seen
    }

    /// What was printed, for failure messages.
    pub fn transcript(&self) -> String {
        format!(
            "--- {} ---\n--- stdout (last {TRANSCRIPT_LINES} lines) ---\n{}\n--- stderr ---\n{}",
            self.what,
            tail(&self.seen.join("\n"), TRANSCRIPT_LINES),
            tail(&self.stderr_text(), TRANSCRIPT_LINES)
        )
    }

    /// The next stdout line, waiting at most until `deadline`.
    pub async fn next_line(&mut self, deadline: Instant) -> Result<String> {
        match tokio::time::timeout_at(deadline, self.lines.recv()).await {
            Ok(Some(line)) => {
                self.seen.push(line.clone());
                Ok(line)
            }
            Ok(None) => {
                // stdout closes as the program exits: give it a moment to be reaped.
                let exit =
                    match tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await {
                        Ok(Ok(status)) => status.to_string(),
                        Ok(Err(err)) => format!("unknown: {err}"),
                        Err(_) => "still running".to_owned(),
                    };
                bail!(
                    "stdout ended ({exit}) before the expected output\n{}",
                    self.transcript()
                )
            }
            Err(_) => bail!(
                "the expected output did not arrive in time\n{}",
                self.transcript()
            ),
        }
    }

    /// Reads stdout lines until one satisfies `want`, for at most `timeout`.
    pub async fn wait_for_line(
        &mut self,
        timeout: Duration,
        mut want: impl FnMut(&str) -> bool,
    ) -> Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let line = self.next_line(deadline).await?;
            if want(&line) {
                return Ok(line);
            }
        }
    }

    /// The next JSON value on stdout, whether printed on one line (`pharos -o json`) or
    /// pretty-printed over several (grpcurl).
    pub async fn next_json(&mut self, deadline: Instant) -> Result<Value> {
        loop {
            let line = self.next_line(deadline).await?;
            if self.partial_json.is_empty() && line.trim().is_empty() {
                continue;
            }
            self.partial_json.push_str(&line);
            self.partial_json.push('\n');
            match serde_json::from_str::<Value>(&self.partial_json) {
                Ok(value) => {
                    self.partial_json.clear();
                    return Ok(value);
                }
                Err(err) if err.is_eof() => continue,
                Err(err) => bail!(
                    "stdout is not a stream of JSON values: {err}\n{}",
                    self.transcript()
                ),
            }
        }
    }

    /// Reads JSON values until one satisfies `want`, for at most `timeout`; returns it and
    /// the values read before it.
    pub async fn wait_for_json(
        &mut self,
        timeout: Duration,
        mut want: impl FnMut(&Value) -> bool,
    ) -> Result<(Value, Vec<Value>)> {
        let deadline = Instant::now() + timeout;
        let mut before = Vec::new();
        loop {
            let value = self.next_json(deadline).await?;
            if want(&value) {
                return Ok((value, before));
            }
            before.push(value);
        }
    }

    /// Kills the program and waits for it.
    pub async fn kill(&mut self) -> Result<()> {
        self.child.kill().await.context("kill")
    }
}
