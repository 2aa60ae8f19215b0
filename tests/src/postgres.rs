//! A throwaway PostgreSQL cluster, started as in shared/ENVIRONMENT.md: initdb as the
//! `postgres` user (initdb refuses root) in a fresh temporary directory, then pg_ctl on
//! a free loopback port with its socket in that directory.

use crate::cmd::run_blocking;
use crate::{free_port, tail};
use anyhow::{Context, Result, bail, ensure};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use tempfile::TempDir;

pub struct TestPostgres {
    /// `/usr/lib/postgresql/<version>/bin`
    bin: PathBuf,
    /// Owned by `postgres`: `data/`, the unix socket and `pg.log`.
    dir: TempDir,
    port: u16,
}

impl TestPostgres {
    /// Starts a new cluster, stopped again on drop.
    pub fn start() -> Result<Self> {
        let bin = pg_bin_dir()?;
        let dir = tempfile::Builder::new().prefix("pharos-pg-").tempdir()?;
        chown_postgres(dir.path())?;
        let data = dir.path().join("data");
        // Copying a cached initdb result takes ~0.1 s instead of ~1.2 s for initdb.
        run_blocking(Command::new("cp").arg("-a").arg(template(&bin)?).arg(&data))?
            .expect_success()?;

        // free_port can race with another process; a retry with a new port settles it.
        let mut last_error = String::new();
        for _ in 0..3 {
            let port = free_port();
            let options = server_options(port, dir.path());
            let log = dir.path().join("pg.log");
            let out = run_blocking(
                as_postgres(&bin.join("pg_ctl"))
                    .arg("-D")
                    .arg(&data)
                    .arg("-o")
                    .arg(options)
                    .arg("-l")
                    .arg(&log)
                    .args(["-w", "-t", "30", "start"]),
            )?;
            if out.success() {
                let pg = TestPostgres { bin, dir, port };
                pg.spawn_watchdog()?;
                return Ok(pg);
            }
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            last_error = format!("{out}\n--- pg.log ---\n{}", tail(&log, 20));
        }
        bail!("pg_ctl start failed 3 times; last attempt: {last_error}")
    }

    /// Stops the server (fast shutdown), keeping its data, for outage tests.
    pub fn stop(&self) -> Result<()> {
        let mut cmd = as_postgres(&self.bin.join("pg_ctl"));
        cmd.arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-m", "fast", "-w", "stop"]);
        run_blocking(&mut cmd)?.expect_success()?;
        Ok(())
    }

    /// Starts a stopped server again on the same port.
    pub fn restart(&self) -> Result<()> {
        let mut cmd = as_postgres(&self.bin.join("pg_ctl"));
        cmd.arg("-D")
            .arg(self.dir.path().join("data"))
            .arg("-o")
            .arg(server_options(self.port, self.dir.path()))
            .arg("-l")
            .arg(self.dir.path().join("pg.log"))
            .args(["-w", "-t", "30", "start"]);
        run_blocking(&mut cmd)?.expect_success()?;
        Ok(())
    }

    /// One cluster per test process, started on first use. nextest runs every test in
    /// its own process, so tests should each use their own database
    /// ([`TestPostgres::unique_database`]) rather than rely on sharing across tests.
    pub fn shared() -> &'static TestPostgres {
        static SHARED: OnceLock<TestPostgres> = OnceLock::new();
        SHARED.get_or_init(|| TestPostgres::start().expect("start shared PostgreSQL"))
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// URL of the default `postgres` database.
    pub fn url(&self) -> String {
        self.url_for("postgres")
    }

    pub fn url_for(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// Creates database `name` (lowercase letters, digits, `_`) and returns its URL.
    pub fn create_database(&self, name: &str) -> Result<String> {
        ensure!(
            !name.is_empty()
                && name.len() <= 63
                && name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
            "database name {name:?}: use 1-63 of [a-z0-9_]"
        );
        self.psql("postgres", &format!("CREATE DATABASE \"{name}\""))?;
        Ok(self.url_for(name))
    }

    /// Creates a database named `<prefix>_<pid>_<n>`, unique in this cluster, and
    /// returns its URL. A CREATE DATABASE takes a few tens of milliseconds.
    pub fn unique_database(&self, prefix: &str) -> Result<String> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        self.create_database(&format!("{prefix}_{}_{n}", std::process::id()))
    }

    /// Creates login role `role` (lowercase letters, digits, `_`) with `password`, and makes
    /// TCP connections as that role (only) authenticate with it (scram-sha-256): the
    /// cluster otherwise trusts everyone, so a wrong password would go unnoticed. Returns
    /// once the server applies the new rule.
    pub fn create_password_role(&self, role: &str, password: &str) -> Result<()> {
        ensure!(
            !role.is_empty()
                && role.len() <= 63
                && role
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
            "role name {role:?}: use 1-63 of [a-z0-9_]"
        );
        ensure!(
            !password.contains(['\'', '\\']),
            "password {password:?}: no quotes or backslashes"
        );
        self.psql(
            "postgres",
            &format!("CREATE ROLE \"{role}\" LOGIN PASSWORD '{password}'"),
        )?;
        {
            // Tests of one process may share the cluster: one pg_hba.conf edit at a time.
            static HBA: std::sync::Mutex<()> = std::sync::Mutex::new(());
            let _guard = HBA.lock().unwrap_or_else(|e| e.into_inner());
            let hba = self.dir.path().join("data/pg_hba.conf");
            let text =
                std::fs::read_to_string(&hba).with_context(|| format!("read {}", hba.display()))?;
            // The first matching line wins, so the role's rule goes on top.
            let text = format!("host all {role} 127.0.0.1/32 scram-sha-256\n{text}");
            std::fs::write(&hba, text).with_context(|| format!("write {}", hba.display()))?;
            self.psql("postgres", "SELECT pg_reload_conf()")?;
        }
        // The reload is asynchronous: wait until a connection without a password fails.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let out = run_blocking(
                Command::new(self.bin.join("psql"))
                    .args(["-X", "-w", "-h", "127.0.0.1", "-U", role, "-d", "postgres"])
                    .args(["-p", &self.port.to_string(), "-c", "SELECT 1"])
                    .env_remove("PGPASSWORD"),
            )?;
            if !out.success() {
                return Ok(());
            }
            ensure!(
                std::time::Instant::now() < deadline,
                "pg_hba.conf reload not applied within 10 s"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// Runs `sql` in `database` with psql and returns its unaligned, tuples-only output.
    pub fn psql(&self, database: &str, sql: &str) -> Result<String> {
        let out = run_blocking(
            Command::new(self.bin.join("psql"))
                .args([
                    "-X",
                    "-q",
                    "-t",
                    "-A",
                    "-v",
                    "ON_ERROR_STOP=1",
                    "-h",
                    "127.0.0.1",
                    "-U",
                    "postgres",
                ])
                .args(["-p", &self.port.to_string(), "-d", database, "-c", sql]),
        )?
        .expect_success()
        .with_context(|| format!("psql -c {sql:?}"))?;
        Ok(out.stdout.trim_end().to_owned())
    }

    /// The server log, for assertions and failure messages.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("pg.log")).unwrap_or_default()
    }

    fn stop_command(&self) -> Command {
        let mut cmd = as_postgres(&self.bin.join("pg_ctl"));
        cmd.arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-m", "immediate", "-w", "stop"]);
        cmd
    }

    /// postmaster outlives a killed test process (pg_ctl detaches it), and the shared
    /// instance is never dropped. A detached shell therefore waits for this process to
    /// exit, for any reason, then stops the cluster and removes its directory. `setsid`
    /// keeps it out of the process group that nextest kills on timeout.
    fn spawn_watchdog(&self) -> Result<()> {
        let script = r#"while kill -0 "$1" 2>/dev/null; do sleep 1; done
            dir=$2; shift 2; "$@" >/dev/null 2>&1; rm -rf "$dir""#;
        let stop = self.stop_command();
        let mut child = Command::new("setsid")
            .args(["--fork", "sh", "-c", script, "pharos-pg-watchdog"])
            .arg(std::process::id().to_string())
            .arg(self.dir.path())
            .arg(stop.get_program())
            .args(stop.get_args())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("spawn setsid watchdog")?;
        // With --fork, setsid returns at once, leaving the watchdog running detached.
        child.wait()?;
        Ok(())
    }
}

impl Drop for TestPostgres {
    fn drop(&mut self) {
        if let Err(e) = run_blocking(&mut self.stop_command()) {
            eprintln!("stopping PostgreSQL on port {}: {e:#}", self.port);
        }
    }
}

/// The bin directory of the highest PostgreSQL version installed by Debian's packages.
fn pg_bin_dir() -> Result<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .context("/usr/lib/postgresql: is postgresql installed? run scripts/install-test-deps.sh")?
        .filter_map(|e| {
            let e = e.ok()?;
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, bin)| bin)
        .context("no /usr/lib/postgresql/*/bin/initdb")
}

/// An initdb'ed data directory, made once per machine and copied by every cluster.
/// Test processes may race to make it: each builds its own copy and renames it into
/// place, which is atomic, and a loser's rename fails harmlessly.
fn template(bin: &Path) -> Result<PathBuf> {
    let version = bin
        .parent()
        .and_then(Path::file_name)
        .context("version dir")?
        .to_string_lossy();
    // The suffix names the initdb options below: change it when they change.
    let dest = std::env::temp_dir().join(format!("pharos-e2e-pg{version}-template-utf8-c"));
    if dest.join("PG_VERSION").is_file() {
        return Ok(dest);
    }
    let staging = tempfile::Builder::new()
        .prefix("pharos-pg-initdb-")
        .tempdir()?;
    chown_postgres(staging.path())?;
    let data = staging.path().join("data");
    // UTF8 and the C locale regardless of the caller's LANG (CI may have none); -N skips fsync.
    run_blocking(as_postgres(&bin.join("initdb")).arg("-D").arg(&data).args([
        "-A",
        "trust",
        "-U",
        "postgres",
        "-E",
        "UTF8",
        "--locale=C",
        "-N",
    ]))?
    .expect_success()
    .context("initdb")?;
    if let Err(e) = std::fs::rename(&data, &dest) {
        ensure!(
            dest.join("PG_VERSION").is_file(),
            "rename {} to {}: {e}",
            data.display(),
            dest.display()
        );
    }
    Ok(dest)
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// PostgreSQL's tools refuse to run as root, so root runs them as `postgres`.
/// Durability is pointless for a throwaway cluster and fsync is slow.
fn server_options(port: u16, dir: &Path) -> String {
    format!(
        "-p {port} -k '{}' -c listen_addresses=127.0.0.1 -c fsync=off \
         -c synchronous_commit=off -c full_page_writes=off",
        dir.display()
    )
}

fn as_postgres(program: &Path) -> Command {
    if is_root() {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "postgres", "--"]).arg(program);
        cmd
    } else {
        Command::new(program)
    }
}

fn chown_postgres(dir: &Path) -> Result<()> {
    if is_root() {
        run_blocking(Command::new("chown").arg("postgres:postgres").arg(dir))?.expect_success()?;
    }
    Ok(())
}
