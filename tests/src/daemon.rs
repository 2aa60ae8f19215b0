//! A server program run in the foreground as a child of the test process, on a loopback
//! port inside its own temporary directory: the common part of [`TestRedis`] and
//! [`TestMosquitto`]. It can be stopped and started again on the same port, for tests of
//! outages, and is killed on drop.
//!
//! [`TestRedis`]: crate::TestRedis
//! [`TestMosquitto`]: crate::TestMosquitto

use crate::{free_port, tail};
use anyhow::{Context, Result, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// How long a server may take to accept connections after it is spawned.
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a server may take to exit after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// Builds the command line that runs the server on a port, given its directory (and
/// writes any configuration file naming the port).
type CommandFn = Box<dyn Fn(&Path, u16) -> Result<Command> + Send + Sync>;

pub(crate) struct Daemon {
    name: &'static str,
    dir: TempDir,
    port: u16,
    command: CommandFn,
    running: Option<Running>,
}

struct Running {
    server: Child,
    /// Kills the server if the test process dies without dropping it (SIGKILL from a
    /// test runner's timeout); killed itself when the server is stopped normally.
    watchdog: Option<Child>,
}

impl Daemon {
    /// Starts `name` on a free port in a fresh directory; `command` builds its command
    /// line for a port.
    pub(crate) fn start(
        name: &'static str,
        command: impl Fn(&Path, u16) -> Result<Command> + Send + Sync + 'static,
    ) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix(&format!("pharos-{name}-"))
            .tempdir()?;
        let mut daemon = Daemon {
            name,
            dir,
            port: 0,
            command: Box::new(command),
            running: None,
        };
        // free_port can race with another process; a retry with a new port settles it.
        let mut last_error = None;
        for _ in 0..3 {
            daemon.port = free_port();
            match daemon.spawn() {
                Ok(()) => return Ok(daemon),
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.expect("three attempts")).context(format!("start {name} (3 attempts)"))
    }

    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    pub(crate) fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub(crate) fn is_running(&self) -> bool {
        self.running.is_some()
    }

    /// Everything the server printed, across restarts.
    pub(crate) fn log_text(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn log_path(&self) -> std::path::PathBuf {
        self.dir.path().join(format!("{}.log", self.name))
    }

    /// Starts the server again on the same port after [`Daemon::stop`]. Does nothing if
    /// it is running.
    pub(crate) fn restart(&mut self) -> Result<()> {
        if self.running.is_some() {
            return Ok(());
        }
        self.spawn()
            .with_context(|| format!("restart {} on port {}", self.name, self.port))
    }

    /// Stops the server (SIGTERM, then SIGKILL after 5 s) and waits for it to exit, so
    /// the port refuses connections when this returns.
    pub(crate) fn stop(&mut self) {
        let Some(mut running) = self.running.take() else {
            return;
        };
        if let Some(mut watchdog) = running.watchdog.take() {
            let _ = watchdog.kill();
            let _ = watchdog.wait();
        }
        let server = &mut running.server;
        if let Ok(None) = server.try_wait() {
            let _ = kill(pid(server), Signal::SIGTERM);
            let deadline = Instant::now() + STOP_TIMEOUT;
            while matches!(server.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = server.kill();
        }
        let _ = server.wait();
    }

    fn spawn(&mut self) -> Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .context("open the log file")?;
        let mut cmd = (self.command)(self.dir.path(), self.port)?;
        let what = format!("{cmd:?}");
        let mut server = cmd
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| {
                format!("spawn {what} (is it installed? run scripts/install-test-deps.sh)")
            })?;
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = server.try_wait()? {
                bail!(
                    "{what} exited with {status} before accepting connections\n--- log ---\n{}",
                    tail(&self.log_text(), 20)
                );
            }
            if TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok() {
                break;
            }
            if Instant::now() > deadline {
                let _ = server.kill();
                let _ = server.wait();
                bail!(
                    "{what} did not accept connections on {address} within {READY_TIMEOUT:?}\n--- log ---\n{}",
                    tail(&self.log_text(), 20)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let watchdog = spawn_watchdog(&server)
            .map_err(|e| eprintln!("{}: no watchdog: {e:#}", self.name))
            .ok();
        self.running = Some(Running { server, watchdog });
        Ok(())
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}

fn pid(child: &Child) -> Pid {
    Pid::from_raw(i32::try_from(child.id()).expect("pid fits in i32"))
}

/// A shell in its own session (out of reach of a test runner killing the process group)
/// that kills the server once this test process has gone.
pub(crate) fn spawn_watchdog(server: &Child) -> Result<Child> {
    let script = r#"while kill -0 "$2" 2>/dev/null; do
            kill -0 "$1" 2>/dev/null || { kill -9 "$2"; exit 0; }
            sleep 1
        done"#;
    // Without --fork, setsid execs in place (a fresh child is no group leader), so the
    // Child handle is the watchdog itself.
    Command::new("setsid")
        .args(["sh", "-c", script, "pharos-daemon-watchdog"])
        .arg(std::process::id().to_string())
        .arg(server.id().to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("spawn setsid watchdog")
}
