//! `pharos health -w` (and `pharos top`) in a real terminal: tmux runs the CLI in a
//! detached pane on its own socket; the test reads the screen with capture-pane, polling
//! with a deadline until it shows what the server just changed.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use pharos_e2e::{CatalogFile, Pharosd, bin_path};
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::time::Instant;

const WAIT: Duration = Duration::from_secs(15);

/// A tmux server of its own (`-L`), killed on drop.
pub struct Tmux {
    socket: String,
    _home: TempDir,
}

impl Tmux {
    /// Starts `program args..` in a detached 140x40 pane with an empty config.
    pub fn start(program: &Path, args: &[&str]) -> Tmux {
        let home = tempfile::Builder::new()
            .prefix("pharos-tty-")
            .tempdir()
            .unwrap();
        let socket = format!("pharos-test-{}", std::process::id())
            + &home.path().file_name().unwrap().to_string_lossy();
        let mut command = Command::new("tmux");
        command
            .args([
                "-L",
                &socket,
                "-f",
                "/dev/null",
                "new-session",
                "-d",
                "-x",
                "140",
                "-y",
                "40",
            ])
            .args(["env", "TERM=xterm-256color", "NO_COLOR="])
            .arg(format!("HOME={}", home.path().display()))
            .arg(format!("XDG_CONFIG_HOME={}/.config", home.path().display()))
            .arg(program)
            .args(args);
        let status = command
            .status()
            .expect("run tmux (scripts/install-test-deps.sh installs it)");
        assert!(status.success(), "tmux new-session failed");
        Tmux {
            socket,
            _home: home,
        }
    }

    pub fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket, "capture-pane", "-p"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn send_keys(&self, keys: &[&str]) {
        let status = Command::new("tmux")
            .args(["-L", &self.socket, "send-keys"])
            .args(keys)
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Polls the screen until `want` holds, for at most `timeout`.
    pub async fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        want: impl Fn(&str) -> bool,
    ) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let screen = self.screen();
            if want(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "the screen never showed {what}:\n{screen}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Whether the pane's program is still running.
    pub fn alive(&self) -> bool {
        Command::new("tmux")
            .args(["-L", &self.socket, "has-session"])
            .status()
            .is_ok_and(|s| s.success())
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .status();
    }
}

/// The row of `check` in the screen, split into cells.
fn row<'a>(screen: &'a str, project: &str) -> Option<Vec<&'a str>> {
    screen
        .lines()
        .find(|line| line.starts_with(&format!("{project} ")))
        .map(|line| line.split_whitespace().collect())
}

/// A port that accepts connections until the handle is aborted, and a pharosd whose one
/// check (shop/prod/port) probes it every 100 ms.
async fn server_with_a_port() -> (Pharosd, CatalogFile, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accept = tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            drop(socket);
        }
    });
    let catalog = CatalogFile::with_text(&format!(
        "environments:\n  - id: prod\nprojects:\n  - id: shop\n    deployments:\n      - environment: prod\n        checks:\n          - {{name: port, interval: 100ms, timeout: 100ms, unhealthy_after: 1, tcp: {{address: '127.0.0.1:{port}'}}}}\n"
    ))
    .unwrap();
    // pharosd records its own figures and capacity often, for `top`'s panels.
    let config = catalog.dir().join("pharosd.yaml");
    std::fs::write(
        &config,
        "telemetry:\n  interval: 200ms\ncapacity:\n  interval: 300ms\n",
    )
    .unwrap();
    let server = Pharosd::builder()
        .catalog(catalog.path())
        .config(&config)
        .spawn()
        .await
        .unwrap();

    (server, catalog, accept)
}

async fn wait_until_gone(tmux: &Tmux) {
    let deadline = Instant::now() + WAIT;
    while tmux.alive() {
        assert!(Instant::now() < deadline, "the program did not stop");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn health_watch_redraws_in_place_when_a_check_changes() {
    let (server, _catalog, accept) = server_with_a_port().await;
    let tmux = Tmux::start(
        &bin_path("pharos"),
        &["--server", &server.url(), "health", "-w"],
    );
    let screen = tmux
        .wait_for("the check healthy", WAIT, |s| {
            row(s, "shop").is_some_and(|r| r.get(4) == Some(&"healthy"))
        })
        .await;
    assert!(
        screen.starts_with("PROJECT"),
        "drawn from the top:\n{screen}"
    );
    assert!(screen.contains("· live"), "{screen}");

    accept.abort();
    let _ = accept.await;
    let screen = tmux
        .wait_for("the check unhealthy", WAIT, |s| {
            row(s, "shop").is_some_and(|r| r.get(4) == Some(&"unhealthy"))
        })
        .await;
    // Redrawn in place: one header, one row, not a scrolling log of tables.
    assert_eq!(screen.matches("PROJECT").count(), 1, "{screen}");
    assert_eq!(
        screen.lines().filter(|l| l.starts_with("shop ")).count(),
        1,
        "{screen}"
    );
    assert!(
        screen.contains("0 healthy, 0 degraded, 1 unhealthy"),
        "{screen}"
    );

    tmux.send_keys(&["C-c"]);
    wait_until_gone(&tmux).await;
}

#[tokio::test]
async fn top_shows_the_grid_and_the_feed_change_live() {
    let (server, _catalog, accept) = server_with_a_port().await;
    let tmux = Tmux::start(&bin_path("pharos"), &["--server", &server.url(), "top"]);
    let screen = tmux
        .wait_for("the check healthy in the grid", WAIT, |s| {
            s.contains("✓ shop/prod/port")
        })
        .await;
    assert!(screen.starts_with("pharos top  "), "{screen}");
    assert!(screen.contains("Error feed"), "{screen}");
    // The throughput and capacity panels fill in as the stream brings new points of
    // pharosd's own series: calls per second and latency, then a bar per resource.
    let screen = tmux
        .wait_for("throughput and capacity figures", WAIT, |s| {
            s.contains(" calls/s ") && s.contains("p95 ") && s.contains("Memory ")
        })
        .await;
    assert!(screen.contains("Throughput (pharosd API)"), "{screen}");
    assert!(screen.contains("Disk "), "{screen}");
    assert!(
        screen.contains("CPU 2 cores") || screen.contains("CPU "),
        "{screen}"
    );

    accept.abort();
    let _ = accept.await;
    let screen = tmux
        .wait_for("the check failing, in the grid and the feed", WAIT, |s| {
            s.contains("✗ shop/prod/port") && s.contains("shop/prod/port unhealthy")
        })
        .await;
    assert!(
        screen.contains("0 healthy 0 degraded 1 unhealthy"),
        "{screen}"
    );

    tmux.send_keys(&["q"]);
    wait_until_gone(&tmux).await;
}
