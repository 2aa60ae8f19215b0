//! A private Podman serving the Docker Engine API on a unix socket, as in
//! shared/ENVIRONMENT.md: its own root, runroot and tmpdir, runc with cgroupfs, the file
//! events logger, and a `localhost/busybox:latest` image imported from Debian's static
//! busybox. Containers run with `--network host`, so anything they serve is on
//! 127.0.0.1. Everything is removed on drop.

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// The image every test container runs.
pub const BUSYBOX_IMAGE: &str = "localhost/busybox:latest";

const CONTAINERS_CONF: &str = r#"[containers]
default_ulimits = ["nofile=10000:10000", "nproc=10000:10000"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
"#;

const READY_TIMEOUT: Duration = Duration::from_secs(20);

pub struct TestPodman {
    dir: TempDir,
    service: Option<Child>,
    watchdog: Option<Child>,
}

impl TestPodman {
    /// Imports the busybox image and starts `podman system service` on a socket.
    pub fn start() -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("pharos-podman-")
            .tempdir()?;
        std::fs::write(dir.path().join("containers.conf"), CONTAINERS_CONF)?;
        let mut podman = TestPodman {
            dir,
            service: None,
            watchdog: None,
        };
        podman.import_busybox()?;
        podman.start_service()?;
        Ok(podman)
    }

    /// `unix:///.../podman.sock`, for DOCKER_HOST or `--docker-host`.
    pub fn docker_host(&self) -> String {
        format!("unix://{}", self.socket().display())
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("podman.sock")
    }

    /// A `podman` command on this private store.
    pub fn command(&self) -> Command {
        let d = self.dir.path();
        let mut cmd = Command::new("podman");
        cmd.env("CONTAINERS_CONF", d.join("containers.conf"))
            .arg("--root")
            .arg(d.join("root"))
            .arg("--runroot")
            .arg(d.join("run"))
            .arg("--tmpdir")
            .arg(d.join("tmp"));
        cmd
    }

    /// Runs `podman ARGS` to completion and returns its trimmed stdout.
    pub async fn podman(&self, args: &[&str]) -> Result<String> {
        let mut cmd = tokio::process::Command::from(self.command());
        cmd.args(args).stdin(Stdio::null());
        let output = cmd
            .output()
            .await
            .with_context(|| format!("spawn podman {args:?}"))?;
        if !output.status.success() {
            bail!(
                "podman {args:?} failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    }

    /// `podman run -d --network host --label K=V... busybox CMD...`; returns the id.
    pub async fn run(&self, labels: &[(&str, &str)], cmd: &[&str]) -> Result<String> {
        self.run_with(labels, &[], cmd).await
    }

    /// Like [`run`](Self::run) with extra `podman run` options (before the image).
    pub async fn run_with(
        &self,
        labels: &[(&str, &str)],
        options: &[&str],
        cmd: &[&str],
    ) -> Result<String> {
        let mut args: Vec<String> =
            vec!["run".into(), "-d".into(), "--network".into(), "host".into()];
        for (key, value) in labels {
            args.push("--label".into());
            args.push(format!("{key}={value}"));
        }
        args.extend(options.iter().map(|o| o.to_string()));
        args.push(BUSYBOX_IMAGE.into());
        args.extend(cmd.iter().map(|c| c.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.podman(&args).await
    }

    /// Stops the API service (containers keep running); the socket refuses connections.
    pub fn stop_service(&mut self) {
        if let Some(mut watchdog) = self.watchdog.take() {
            let _ = watchdog.kill();
            let _ = watchdog.wait();
        }
        if let Some(mut service) = self.service.take() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(service.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let deadline = Instant::now() + Duration::from_secs(5);
            while matches!(service.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = service.kill();
            let _ = service.wait();
        }
        let _ = std::fs::remove_file(self.socket());
    }

    /// Starts the API service and waits until it answers `/_ping`.
    pub fn start_service(&mut self) -> Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("service.log"))?;
        let mut cmd = self.command();
        cmd.args(["system", "service", "--time=0"])
            .arg(format!("unix://{}", self.socket().display()))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        let service = cmd.spawn().context("spawn podman system service")?;
        self.watchdog = crate::daemon::spawn_watchdog(&service).ok();
        self.service = Some(service);
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if ping(&self.socket()) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "podman system service not answering after {READY_TIMEOUT:?}\n{}",
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("service.log")).unwrap_or_default()
    }

    fn import_busybox(&self) -> Result<()> {
        let rootfs = self.dir.path().join("rootfs");
        let bin = rootfs.join("bin");
        std::fs::create_dir_all(&bin)?;
        let busybox = ["/bin/busybox", "/usr/bin/busybox"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .context("busybox not installed (apt-get install busybox-static)")?;
        std::fs::copy(busybox, bin.join("busybox"))?;
        for applet in [
            "sh", "sleep", "httpd", "echo", "cat", "yes", "kill", "mkdir", "rm",
        ] {
            std::os::unix::fs::symlink("busybox", bin.join(applet))?;
        }
        let tar = self.dir.path().join("busybox.tar");
        let status = Command::new("tar")
            .arg("-C")
            .arg(&rootfs)
            .arg("-cf")
            .arg(&tar)
            .arg(".")
            .status()?;
        anyhow::ensure!(status.success(), "tar of the busybox rootfs failed");
        let output = self
            .command()
            .args(["import", "-q"])
            .arg(&tar)
            .arg(BUSYBOX_IMAGE)
            .output()?;
        anyhow::ensure!(
            output.status.success(),
            "podman import failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        Ok(())
    }
}

/// Whether the Docker API answers `GET /_ping` on the socket.
fn ping(socket: &Path) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::os::unix::net::UnixStream::connect(socket) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream
        .write_all(b"GET /_ping HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response.starts_with("HTTP/1.1 200")
}

impl Drop for TestPodman {
    fn drop(&mut self) {
        let _ = self.command().args(["rm", "-af", "-t", "0"]).output();
        self.stop_service();
        // Unmounts and deletes the store, so the temporary directory can go.
        let _ = self.command().args(["system", "reset", "-f"]).output();
    }
}
