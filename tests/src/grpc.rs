//! gRPC clients for pharosd, built from the `pharos.v1` contract (pharos-proto), and the
//! commands that call it from outside: grpcurl and the `pharos` CLI.

use crate::{CmdOutput, bin_path, grpcurl_path, run_command};
use anyhow::{Context, Result, bail};
use pharos_proto::v1 as pb;
use pharos_proto::v1::catalog_service_client::CatalogServiceClient;
use pharos_proto::v1::watch_service_client::WatchServiceClient;
use std::ffi::OsStr;
use std::time::Duration;
use tokio::process::Command;
use tokio::time::Instant;
use tonic::transport::Channel;

/// How long one command run by a test may take before it counts as hung.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// `CatalogServiceClient` connected to `url` (such as `Pharosd::url()`).
pub async fn catalog_client(url: &str) -> Result<CatalogServiceClient<Channel>> {
    CatalogServiceClient::connect(url.to_owned())
        .await
        .with_context(|| format!("connect to {url}"))
}

/// `WatchServiceClient` connected to `url`.
pub async fn watch_client(url: &str) -> Result<WatchServiceClient<Channel>> {
    WatchServiceClient::connect(url.to_owned())
        .await
        .with_context(|| format!("connect to {url}"))
}

/// `message` with `authorization: Bearer <token>`.
pub fn with_token<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("ascii token"),
    );
    request
}

/// `GetOverview` over a fresh connection.
pub async fn overview(url: &str) -> Result<pb::GetOverviewResponse> {
    Ok(catalog_client(url)
        .await?
        .get_overview(pb::GetOverviewRequest {})
        .await
        .context("GetOverview")?
        .into_inner())
}

/// Polls `GetOverview` until `settled` holds, and returns that overview; fails with
/// the last one seen after `timeout`.
pub async fn wait_for_overview(
    url: &str,
    timeout: Duration,
    settled: impl Fn(&pb::GetOverviewResponse) -> bool,
) -> Result<pb::GetOverviewResponse> {
    let deadline = Instant::now() + timeout;
    loop {
        let seen = overview(url).await?;
        if settled(&seen) {
            return Ok(seen);
        }
        if Instant::now() >= deadline {
            bail!("overview not settled after {timeout:?}: {seen:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The demo catalog's one deployment checks the pharosd under test itself (its checks
/// follow `--listen`), so it turns healthy within one check interval (5 s); waits for
/// that, so a test can compare counts that no longer move.
pub async fn wait_until_demo_is_healthy(url: &str) -> Result<pb::GetOverviewResponse> {
    wait_for_overview(url, Duration::from_secs(20), |overview| {
        overview.healthy_deployments == 1
    })
    .await
}

/// One message of a Watch stream, or how it ended.
#[derive(Debug)]
pub enum WatchMessage {
    Change(Box<pb::Change>),
    SnapshotComplete(u64),
    Progress(u64),
    /// The stream ended with this status.
    End(tonic::Status),
    /// The stream ended with OK, which the contract never does.
    Closed,
}

/// Reads a Watch stream message by message, each wait bounded by a deadline.
pub struct WatchReader {
    stream: tonic::Streaming<pb::WatchResponse>,
}

impl WatchReader {
    /// Opens `Watch` on `url` with `request`.
    pub async fn open(url: &str, request: pb::WatchRequest) -> Result<Self> {
        let stream = watch_client(url)
            .await?
            .watch(request)
            .await
            .context("Watch")?
            .into_inner();
        Ok(WatchReader { stream })
    }

    /// `Watch { since_revision }` over every topic.
    pub async fn since(url: &str, since_revision: u64) -> Result<Self> {
        Self::open(
            url,
            pb::WatchRequest {
                since_revision,
                ..Default::default()
            },
        )
        .await
    }

    pub async fn next(&mut self, deadline: Instant) -> Result<WatchMessage> {
        use pb::watch_response::Message;
        let item = tokio::time::timeout_at(deadline, self.stream.message())
            .await
            .context("no Watch message before the deadline")?;
        Ok(match item {
            Ok(Some(response)) => match response.message {
                Some(Message::Change(change)) => WatchMessage::Change(Box::new(change)),
                Some(Message::SnapshotComplete(done)) => {
                    WatchMessage::SnapshotComplete(done.revision)
                }
                Some(Message::Progress(progress)) => WatchMessage::Progress(progress.revision),
                Some(Message::Metrics(_)) => {
                    bail!("a metrics batch: this reader never selects metric series")
                }
                None => bail!("a WatchResponse without a message"),
            },
            Ok(None) => WatchMessage::Closed,
            Err(status) => WatchMessage::End(status),
        })
    }

    /// Reads the initial snapshot; returns its changes and the snapshot_complete revision.
    pub async fn snapshot(&mut self, timeout: Duration) -> Result<(Vec<pb::Change>, u64)> {
        let deadline = Instant::now() + timeout;
        let mut changes = Vec::new();
        loop {
            match self.next(deadline).await? {
                WatchMessage::Change(change) => changes.push(*change),
                WatchMessage::SnapshotComplete(revision) => return Ok((changes, revision)),
                other => bail!("unexpected message during the snapshot: {other:?}"),
            }
        }
    }

    /// Reads until the stream ends, for at most `timeout`; returns the changes read and
    /// the final status (`None` for an OK end).
    pub async fn until_end(
        &mut self,
        timeout: Duration,
    ) -> Result<(Vec<pb::Change>, Option<tonic::Status>)> {
        let deadline = Instant::now() + timeout;
        let mut changes = Vec::new();
        loop {
            match self.next(deadline).await? {
                WatchMessage::Change(change) => changes.push(*change),
                WatchMessage::End(status) => return Ok((changes, Some(status))),
                WatchMessage::Closed => return Ok((changes, None)),
                WatchMessage::SnapshotComplete(_) | WatchMessage::Progress(_) => {}
            }
        }
    }
}

/// The first status a Watch request ends with: the call itself failing, or the first
/// stream message being an error. Fails if the stream yields a message instead.
pub async fn watch_error(url: &str, request: pb::WatchRequest) -> Result<tonic::Status> {
    let mut client = watch_client(url).await?;
    let mut stream = match client.watch(request).await {
        Err(status) => return Ok(status),
        Ok(response) => response.into_inner(),
    };
    match tokio::time::timeout(Duration::from_secs(10), stream.message())
        .await
        .context("Watch neither failed nor sent a message within 10 s")?
    {
        Err(status) => Ok(status),
        Ok(message) => bail!("Watch should have failed, but sent {message:?}"),
    }
}

/// A command for a workspace binary, with the caller's `PHAROS_*` variables removed
/// (every pharosd flag and the CLI's server and token read one).
pub fn command(bin: &str) -> Command {
    let mut cmd = Command::new(bin_path(bin));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("PHAROS_") {
            cmd.env_remove(key);
        }
    }
    cmd
}

/// Runs the `pharos` CLI with `args` to completion.
pub async fn pharos<I, S>(args: I) -> Result<CmdOutput>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = command("pharos");
    cmd.args(args).env("RUST_BACKTRACE", "1");
    run_command(cmd, COMMAND_TIMEOUT).await
}

/// Runs `pharosd` with `args` to completion (for subcommands and start-up failures).
pub async fn pharosd<I, S>(args: I) -> Result<CmdOutput>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = command("pharosd");
    cmd.args(args);
    run_command(cmd, COMMAND_TIMEOUT).await
}

/// Runs the real grpcurl with `-plaintext` and `args` to completion.
pub async fn grpcurl<I, S>(args: I) -> Result<CmdOutput>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = Command::new(grpcurl_path());
    cmd.arg("-plaintext").args(args);
    run_command(cmd, COMMAND_TIMEOUT).await
}

/// A grpcurl command with `-plaintext` and `args`, for [`crate::StreamingChild`].
pub fn grpcurl_command<I, S>(args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = Command::new(grpcurl_path());
    cmd.arg("-plaintext").args(args);
    cmd
}

/// Parses the stdout of a successful command as one JSON value.
pub fn json_stdout(out: &CmdOutput) -> Result<serde_json::Value> {
    serde_json::from_str(&out.stdout).with_context(|| format!("stdout is not JSON: {out}"))
}
