//! `pharos`, the command-line client of pharosd. A thin client: everything it shows comes
//! from the gRPC API that the dashboard and grpcurl use too.

mod client;
mod output;
mod watch;

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "pharos",
    version,
    about = "Command-line client of the Pharos control plane",
    after_help = "Examples:\n  pharos status\n  pharos watch catalog events\n  pharos --server http://10.0.0.5:7600 --token \"$TOKEN\" status -o json"
)]
struct Cli {
    /// pharosd address
    #[arg(
        long,
        env = "PHAROS_SERVER",
        default_value = "http://127.0.0.1:7600",
        global = true
    )]
    server: String,
    /// API token (sent as `authorization: Bearer <token>`)
    #[arg(long, env = "PHAROS_TOKEN", hide_env_values = true, global = true)]
    token: Option<String>,
    /// Output format
    #[arg(short, long, value_enum, default_value = "table", global = true)]
    output: Format,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Platform overview: projects, deployments, health counts and ports
    #[command(after_help = "Example:\n  pharos status -o json")]
    Status,
    /// Print changes as they happen; reconnects and resumes after interruptions
    #[command(
        after_help = "Examples:\n  pharos watch\n  pharos watch events --project api\n  pharos watch --since 1200 -o json"
    )]
    Watch(watch::WatchArgs),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let client = client::Client::new(&cli.server, cli.token.as_deref());
    let result = match cli.command {
        Command::Status => output::status(&client, cli.output).await,
        Command::Watch(args) => watch::run(&client, args, cli.output).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("pharos: {err}");
            ExitCode::from(err.exit_code())
        }
    }
}
