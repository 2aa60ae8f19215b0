//! Running programs to completion and capturing what they print.

use anyhow::{Context, Result, bail};
use std::ffi::OsStr;
use std::fmt;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;
use tokio::process::Command;

/// The outcome of a finished command.
#[derive(Debug)]
pub struct CmdOutput {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl CmdOutput {
    pub fn success(&self) -> bool {
        self.status.success()
    }

    /// `self` when the command exited 0, otherwise an error quoting its output.
    pub fn expect_success(self) -> Result<Self> {
        if self.success() {
            Ok(self)
        } else {
            bail!("command failed: {self}")
        }
    }
}

impl fmt::Display for CmdOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

/// Runs `program args..` with no stdin, killing it if it outlives `timeout`.
pub async fn run_cmd<I, S>(
    program: impl AsRef<OsStr>,
    args: I,
    timeout: Duration,
) -> Result<CmdOutput>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = Command::new(program);
    cmd.args(args);
    run_command(cmd, timeout).await
}

/// Like [`run_cmd`] for a prepared command (for env vars or a working directory).
pub async fn run_command(mut cmd: Command, timeout: Duration) -> Result<CmdOutput> {
    let what = format!("{:?}", cmd.as_std());
    // CI has no stdin; never let a program wait on ours. kill_on_drop ends it on timeout.
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = cmd.spawn().with_context(|| format!("spawn {what}"))?;
    let out = tokio::time::timeout(timeout, child.wait_with_output())
        .await
        .with_context(|| format!("{what} did not finish within {timeout:?}"))?
        .with_context(|| format!("wait for {what}"))?;
    Ok(CmdOutput {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

/// Blocking variant for code that cannot be async (setup in `OnceLock`, `Drop`).
pub(crate) fn run_blocking(cmd: &mut std::process::Command) -> Result<CmdOutput> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("run {cmd:?}"))?;
    Ok(CmdOutput {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}
