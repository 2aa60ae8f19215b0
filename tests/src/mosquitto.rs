//! A throwaway MQTT broker (`mosquitto`), run in the foreground as in
//! shared/ENVIRONMENT.md but without `-d`: anonymous access, loopback only, no
//! persistence, and `$SYS` topics every second instead of every ten.

use crate::daemon::Daemon;
use anyhow::{Context, Result};
use std::process::Command;

pub struct TestMosquitto {
    daemon: Daemon,
}

impl TestMosquitto {
    /// Starts a broker, stopped on drop.
    pub fn new() -> Result<Self> {
        let daemon = Daemon::start("mosquitto", |dir, port| {
            // The port changes only between attempts of the first start, so the file
            // is rewritten for each; mosquitto reads it before it drops root.
            let conf = dir.join("mosquitto.conf");
            let text = format!(
                "listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n\
                     sys_interval 1\nlog_dest stderr\n"
            );
            std::fs::write(&conf, text).with_context(|| format!("write {}", conf.display()))?;
            let mut cmd = Command::new("mosquitto");
            cmd.arg("-c").arg(conf);
            Ok(cmd)
        })?;
        Ok(TestMosquitto { daemon })
    }

    pub fn port(&self) -> u16 {
        self.daemon.port()
    }

    /// `127.0.0.1:PORT`
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port())
    }

    pub fn is_running(&self) -> bool {
        self.daemon.is_running()
    }

    /// Stops the broker; the port refuses connections when this returns.
    pub fn stop(&mut self) {
        self.daemon.stop();
    }

    /// Starts the stopped broker again on the same port.
    pub fn start(&mut self) -> Result<()> {
        self.daemon.restart()
    }

    /// What the broker printed, across restarts.
    pub fn log_text(&self) -> String {
        self.daemon.log_text()
    }

    /// The broker's directory (its configuration file and log).
    pub fn dir(&self) -> &std::path::Path {
        self.daemon.dir()
    }
}
