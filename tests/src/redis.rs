//! A throwaway Redis server (`redis-server`), run in the foreground as in
//! shared/ENVIRONMENT.md but without `--daemonize`: no persistence, loopback only.

use crate::daemon::Daemon;
use anyhow::Result;
use std::process::Command;

pub struct TestRedis {
    daemon: Daemon,
    password: Option<String>,
}

impl TestRedis {
    /// Starts a server without authentication, stopped on drop.
    pub fn new() -> Result<Self> {
        Self::launch(None)
    }

    /// Starts a server that requires `password` (`requirepass`).
    pub fn with_password(password: &str) -> Result<Self> {
        Self::launch(Some(password.to_owned()))
    }

    fn launch(password: Option<String>) -> Result<Self> {
        let requirepass = password.clone();
        let daemon = Daemon::start("redis", move |dir, port| {
            let mut cmd = Command::new("redis-server");
            cmd.args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
                .arg("--dir")
                .arg(dir);
            if let Some(password) = &requirepass {
                cmd.args(["--requirepass", password]);
            }
            Ok(cmd)
        })?;
        Ok(TestRedis { daemon, password })
    }

    pub fn port(&self) -> u16 {
        self.daemon.port()
    }

    /// `127.0.0.1:PORT`
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port())
    }

    /// `redis://[:PASSWORD@]127.0.0.1:PORT`
    pub fn url(&self) -> String {
        match &self.password {
            Some(password) => format!("redis://:{password}@{}", self.address()),
            None => format!("redis://{}", self.address()),
        }
    }

    pub fn is_running(&self) -> bool {
        self.daemon.is_running()
    }

    /// Stops the server; the port refuses connections when this returns.
    pub fn stop(&mut self) {
        self.daemon.stop();
    }

    /// Starts the stopped server again on the same port (empty: nothing is persisted).
    pub fn start(&mut self) -> Result<()> {
        self.daemon.restart()
    }

    /// What the server printed, across restarts.
    pub fn log_text(&self) -> String {
        self.daemon.log_text()
    }
}
