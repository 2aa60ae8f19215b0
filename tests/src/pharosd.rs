//! The real `pharosd` binary, started on a free loopback port.

use crate::{bin_path, free_port, http_get, tail};
use anyhow::{Context, Result, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::ffi::OsString;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;
use tokio::process::{Child, Command};

const READY_TIMEOUT: Duration = Duration::from_secs(20);
const POLL_INTERVAL: Duration = Duration::from_millis(50);
const LOG_TAIL_LINES: usize = 40;

/// Options for [`Pharosd`]; each becomes a command-line flag.
#[derive(Debug, Default)]
pub struct PharosdBuilder {
    catalog: Option<PathBuf>,
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    config: Option<PathBuf>,
    args: Vec<OsString>,
    envs: Vec<(OsString, OsString)>,
    /// Ready once the log shows this line (instead of `GET /healthz` in plain text).
    ready_log_line: Option<&'static str>,
}

impl PharosdBuilder {
    pub fn catalog(mut self, path: impl Into<PathBuf>) -> Self {
        self.catalog = Some(path.into());
        self
    }

    /// Without one, a temporary data dir is made and kept across [`Pharosd::restart`].
    pub fn data_dir(mut self, path: impl Into<PathBuf>) -> Self {
        self.data_dir = Some(path.into());
        self
    }

    pub fn database_url(mut self, url: impl Into<String>) -> Self {
        self.database_url = Some(url.into());
        self
    }

    pub fn config(mut self, path: impl Into<PathBuf>) -> Self {
        self.config = Some(path.into());
        self
    }

    /// An extra command-line argument, after the flags above.
    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.envs.push((key.into(), value.into()));
        self
    }

    /// For servers that do not answer plain-text HTTP (TLS): ready once a new log line
    /// contains `line` rather than when `GET /healthz` answers.
    pub fn ready_when_logged(mut self, line: &'static str) -> Self {
        self.ready_log_line = Some(line);
        self
    }

    /// Starts pharosd and waits until `GET /healthz` answers 200.
    pub async fn spawn(self) -> Result<Pharosd> {
        let (data_dir, owned_data_dir) = match &self.data_dir {
            Some(dir) => (dir.clone(), None),
            None => {
                let dir = tempfile::Builder::new().prefix("pharosd-data-").tempdir()?;
                (dir.path().to_owned(), Some(dir))
            }
        };
        let mut pharosd = Pharosd {
            options: self,
            port: free_port(),
            data_dir,
            _owned_data_dir: owned_data_dir,
            log_dir: tempfile::Builder::new().prefix("pharosd-log-").tempdir()?,
            child: None,
            pid: 0,
        };
        pharosd.start().await?;
        Ok(pharosd)
    }
}

/// A running pharosd. Dropping it kills the process; if the test is panicking, the
/// tail of the server's log is printed first so the failure can be understood.
pub struct Pharosd {
    options: PharosdBuilder,
    port: u16,
    data_dir: PathBuf,
    _owned_data_dir: Option<TempDir>,
    log_dir: TempDir,
    child: Option<Child>,
    pid: u32,
}

impl Pharosd {
    pub fn builder() -> PharosdBuilder {
        PharosdBuilder::default()
    }

    /// `127.0.0.1:PORT`, for gRPC clients and grpcurl.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr())
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// stdout and stderr, interleaved in one file so their order is kept.
    pub fn log_path(&self) -> PathBuf {
        self.log_dir.path().join("pharosd.log")
    }

    /// Everything pharosd printed so far, across restarts.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child_mut().try_wait(), Ok(None))
    }

    /// Sends SIGTERM (a graceful shutdown) and waits up to 20 s for the exit.
    pub async fn terminate(&mut self) -> Result<ExitStatus> {
        self.signal(Signal::SIGTERM)?;
        self.wait_exit(READY_TIMEOUT).await
    }

    /// Sends SIGKILL (a crash) and waits for the exit.
    pub async fn kill(&mut self) -> Result<ExitStatus> {
        self.signal(Signal::SIGKILL)?;
        self.wait_exit(READY_TIMEOUT).await
    }

    /// Waits for the process to exit by itself.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Result<ExitStatus> {
        match tokio::time::timeout(timeout, self.child_mut().wait()).await {
            Ok(status) => Ok(status?),
            Err(_) => bail!(
                "pharosd still running after {timeout:?}\n{}",
                self.log_tail()
            ),
        }
    }

    /// Starts a new process with the same options, data dir and port, after
    /// terminating the current one if it still runs. Its log is appended to the same file.
    pub async fn restart(&mut self) -> Result<()> {
        if self.is_running() {
            self.terminate().await?;
        }
        self.start().await
    }

    async fn start(&mut self) -> Result<()> {
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())?;
        if self.child.is_some() {
            writeln!(log, "--- pharos-e2e: pharosd restarted ---")?;
        }
        let mut cmd = Command::new(bin_path("pharosd"));
        // Every flag also reads a PHAROS_* variable: keep the caller's out of the test.
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("PHAROS_") {
                cmd.env_remove(key);
            }
        }
        cmd.arg("--listen")
            .arg(self.addr())
            .arg("--data-dir")
            .arg(&self.data_dir);
        let o = &self.options;
        if let Some(path) = &o.catalog {
            cmd.arg("--catalog").arg(path);
        }
        if let Some(url) = &o.database_url {
            cmd.arg("--database-url").arg(url);
        }
        if let Some(path) = &o.config {
            cmd.arg("--config").arg(path);
        }
        cmd.args(&o.args).envs(o.envs.iter().map(|(k, v)| (k, v)));
        cmd.stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true);
        let child = cmd.spawn().context("spawn pharosd")?;
        self.pid = child.id().context("pharosd pid")?;
        self.child = Some(child);
        self.wait_ready().await
    }

    async fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let addr = self.addr();
        let ready_line = self.options.ready_log_line;
        let logged_before = ready_line.map_or(0, |line| self.log_text().matches(line).count());
        loop {
            if let Some(status) = self.child_mut().try_wait()? {
                bail!(
                    "pharosd exited during startup ({status})\n{}",
                    self.log_tail()
                );
            }
            if let Some(line) = ready_line {
                if self.log_text().matches(line).count() > logged_before {
                    return Ok(());
                }
            } else if let Ok(Ok(response)) =
                // Any failure (refused, reset, timeout) just means "not ready yet".
                tokio::time::timeout(
                    Duration::from_secs(1),
                    http_get(&addr, "/healthz"),
                )
                .await
                && response.status == 200
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "pharosd not healthy on {addr} within {READY_TIMEOUT:?}\n{}",
                    self.log_tail()
                );
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    fn signal(&mut self, signal: Signal) -> Result<()> {
        if !self.is_running() {
            return Ok(()); // already exited: wait_exit reports how
        }
        let pid = i32::try_from(self.pid).context("pid out of range")?;
        kill(Pid::from_raw(pid), signal).with_context(|| format!("kill -{signal} {pid}"))
    }

    fn child_mut(&mut self) -> &mut Child {
        self.child.as_mut().expect("pharosd was started")
    }

    fn log_tail(&self) -> String {
        format!(
            "--- pharosd {} log, last {LOG_TAIL_LINES} lines ({}) ---\n{}",
            self.addr(),
            self.log_path().display(),
            tail(&self.log_text(), LOG_TAIL_LINES)
        )
    }
}

impl Drop for Pharosd {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.log_tail());
        }
        if let Some(child) = &mut self.child {
            // kill_on_drop would do it too; doing it here makes the order explicit.
            let _ = child.start_kill();
        }
    }
}
