//! Debian's Prometheus server (`prometheus`), its node exporter
//! (`prometheus-node-exporter`) and Alertmanager (`prometheus-alertmanager`), each run in
//! the foreground on a loopback port in its own temporary directory, stopped on drop.

use crate::daemon::Daemon;
use anyhow::Result;
use std::process::Command;

/// A node exporter, serving `/metrics`.
pub struct TestNodeExporter {
    daemon: Daemon,
}

impl TestNodeExporter {
    pub fn start() -> Result<Self> {
        let daemon = Daemon::start("node-exporter", |_, port| {
            let mut cmd = Command::new("prometheus-node-exporter");
            cmd.arg(format!("--web.listen-address=127.0.0.1:{port}"));
            Ok(cmd)
        })?;
        Ok(TestNodeExporter { daemon })
    }

    /// `127.0.0.1:PORT`
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.daemon.port())
    }
}

/// A Prometheus scraping the given `host:port` targets (job `node`) every `interval`.
pub struct TestPrometheus {
    daemon: Daemon,
}

impl TestPrometheus {
    pub fn scraping(targets: &[String], interval: &str) -> Result<Self> {
        let targets = targets
            .iter()
            .map(|t| format!("'{t}'"))
            .collect::<Vec<_>>()
            .join(", ");
        let config = format!(
            "global:\n  scrape_interval: {interval}\n  scrape_timeout: {interval}\n\
             scrape_configs:\n  - job_name: node\n    static_configs:\n      - targets: [{targets}]\n"
        );
        let daemon = Daemon::start("prometheus", move |dir, port| {
            let path = dir.join("prometheus.yml");
            std::fs::write(&path, &config)?;
            let mut cmd = Command::new("prometheus");
            cmd.arg(format!("--config.file={}", path.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.join("tsdb").display()
                ))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"));
            Ok(cmd)
        })?;
        Ok(TestPrometheus { daemon })
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.daemon.port())
    }

    /// `127.0.0.1:PORT`
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.daemon.port())
    }
}

/// An Alertmanager with one receiver that sends nowhere, and no cluster.
pub struct TestAlertmanager {
    daemon: Daemon,
}

impl TestAlertmanager {
    pub fn start() -> Result<Self> {
        let daemon = Daemon::start("alertmanager", |dir, port| {
            let path = dir.join("alertmanager.yml");
            std::fs::write(
                &path,
                "route:\n  receiver: nowhere\n  group_wait: 1s\nreceivers:\n  - name: nowhere\n",
            )?;
            let mut cmd = Command::new("prometheus-alertmanager");
            cmd.arg(format!("--config.file={}", path.display()))
                .arg(format!("--storage.path={}", dir.join("data").display()))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg("--cluster.listen-address=");
            Ok(cmd)
        })?;
        Ok(TestAlertmanager { daemon })
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.daemon.port())
    }

    /// `127.0.0.1:PORT`
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.daemon.port())
    }
}
