//! `pharos-bench`: benchmarks of pharosd that run the peer they compare against in the
//! same run and report the ratio.
//!
//! `pharos-bench watch` is the orchestrator (see `scripts/bench-watch.sh`); it starts
//! itself as `pharos-bench watch-server` once per server under test.

mod procfs;
mod watch;

use clap::{Parser, Subcommand};

/// The `bench.v1` broadcast peer (benches/proto/broadcast.proto).
pub mod pb {
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("bench.v1");
}

#[derive(Parser)]
#[command(
    name = "pharos-bench",
    about = "Benchmarks of pharosd against a peer run in the same run"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Watch-path benchmark: many concurrent Watch streams on one pharosd against a plain
    /// tonic broadcast server, delivery latency and memory per idle stream
    Watch(watch::WatchArgs),
    /// A server under test, driven over stdin by `watch` (internal)
    #[command(hide = true)]
    WatchServer(watch::server::ServerArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Watch(args) => watch::run(args).await,
        Command::WatchServer(args) => watch::server::run(args).await,
    }
}
