//! Every `pharos` command: one module each, sharing the connection (`client`), the errors
//! and their exit codes (`error`), the output layer (`output`) and the contexts
//! (`config`). Adding a command is a module with an `Args` struct and a `run`, plus one
//! variant below.

mod actions;
mod checks;
mod completion;
mod containers;
mod context;
mod events;
mod export;
mod health;
mod logs;
mod metrics;
mod operations;
mod project;
mod projects;
mod status;
mod top;
mod watch;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::client::Client;
use crate::config;
use crate::error::CliError;
use crate::output::{Format, Output};

#[derive(Debug, Parser)]
#[command(
    name = "pharos",
    version,
    about = "Command-line client of the Pharos control plane",
    after_help = "Examples:\n  pharos status\n  pharos context set prod --server https://pharos.example.net:7600 --token \"$TOKEN\"\n  pharos --context prod health -w\n  pharos projects --env staging -o json"
)]
pub struct Cli {
    /// pharosd address [default: the current context's, else http://127.0.0.1:7600]
    #[arg(long, env = "PHAROS_SERVER", global = true)]
    server: Option<String>,
    /// API token, sent as `authorization: Bearer <token>` [default: the context's]
    #[arg(long, env = "PHAROS_TOKEN", hide_env_values = true, global = true)]
    token: Option<String>,
    /// Use this context of the config file instead of the current one
    #[arg(long, env = "PHAROS_CONTEXT", global = true)]
    context: Option<String>,
    /// Output format: table, wide, json or yaml (for `export`: the file to write)
    #[arg(short, long, global = true, value_name = "FORMAT")]
    output: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Platform overview: projects, deployments, health counts, uptime and ports
    #[command(after_help = "Examples:\n  pharos status\n  pharos status -o json")]
    Status,
    /// List projects, optionally those deployed in one environment
    #[command(after_help = "Examples:\n  pharos projects\n  pharos projects --env prod -o wide")]
    Projects(projects::Args),
    /// One project: its deployments, ports and checks
    #[command(after_help = "Example:\n  pharos project billing -o yaml")]
    Project(project::Args),
    /// Health of every check, or of one project with uptime windows; -w keeps it live
    #[command(
        after_help = "Examples:\n  pharos health\n  pharos health billing\n  pharos health -w --env prod"
    )]
    Health(health::Args),
    /// Check results history
    #[command(
        subcommand,
        after_help = "Example:\n  pharos checks history billing/prod/http --since 6h"
    )]
    Checks(checks::Command),
    /// Print changes as they happen; reconnects and resumes after interruptions
    #[command(
        after_help = "Examples:\n  pharos watch\n  pharos watch events --project api\n  pharos watch --since 1200 -o json"
    )]
    Watch(watch::WatchArgs),
    /// Full-screen live dashboard: health grid, error feed, throughput and capacity
    #[command(
        after_help = "Examples:\n  pharos top\n  pharos top --env prod\n\nKeys: q, Esc or Ctrl-C quits."
    )]
    Top(top::Args),
    /// Export check results or events as CSV or JSON lines, streamed in bounded memory
    #[command(
        after_help = "Examples:\n  pharos export checks --since 24h --format csv --output checks.csv\n  pharos export events --since 7d --format json > events.jsonl"
    )]
    Export(export::Args),
    /// Containers pharosd discovered, with state, health and their latest stats
    #[command(
        after_help = "Examples:\n  pharos containers\n  pharos containers --project billing --env prod -o wide\n  pharos containers --unmatched -o json"
    )]
    Containers(containers::Args),
    /// A container's log lines; -f keeps following
    #[command(
        after_help = "Examples:\n  pharos logs billing-web-1 --tail 100\n  pharos logs billing-web-1 -f --stderr --grep timeout\n  pharos logs billing-web-1 --since 10m --regex 'status=5\\d\\d'"
    )]
    Logs(logs::Args),
    /// Operations (restart, stop, start, scale, rolling restart), or one with its steps
    #[command(
        after_help = "Examples:\n  pharos operations\n  pharos operations --deployment billing/prod -o json\n  pharos operations op-01JD3..."
    )]
    Operations(operations::Args),
    /// Event history (newest last); -f follows new events; --counts shows error counts
    #[command(
        after_help = "Examples:\n  pharos events --since 1h\n  pharos events --kind catalog. -f\n  pharos events --counts -o json"
    )]
    Events(events::Args),
    /// A metric's series over time, each with a sparkline
    #[command(
        after_help = "Examples:\n  pharos metrics 'node_load1' --since 1h --step 1m\n  pharos metrics 'http_requests:rate{project=\"billing\"}' --since 6h --step 5m -o json"
    )]
    Metrics(metrics::Args),
    /// Restart a deployment's containers
    #[command(
        after_help = "Examples:\n  pharos restart billing/prod --reason \"memory leak\"\n  pharos restart billing/prod --reason test --dry-run\n  pharos restart billing/prod --reason nightly --yes --request-id nightly-2026-11-23"
    )]
    Restart(actions::Args),
    /// Stop a deployment's containers
    #[command(
        after_help = "Example:\n  pharos stop billing/staging --reason \"maintenance window\" --yes"
    )]
    Stop(actions::Args),
    /// Start a deployment's stopped containers
    #[command(
        after_help = "Example:\n  pharos start billing/staging --reason \"maintenance done\""
    )]
    Start(actions::Args),
    /// Scale a deployment to a number of containers
    #[command(
        after_help = "Example:\n  pharos scale billing/prod --replicas 3 --reason \"black friday\""
    )]
    Scale(actions::ScaleArgs),
    /// Rolling operations on a deployment
    #[command(
        subcommand,
        after_help = "Example:\n  pharos rollout restart billing/prod --reason \"pick up new config\""
    )]
    Rollout(actions::Rollout),
    /// Named servers in the config file, like kubectl contexts
    #[command(
        subcommand,
        after_help = "Examples:\n  pharos context set prod --server https://pharos.example.net --token \"$TOKEN\"\n  pharos context use prod\n  pharos context list"
    )]
    Context(context::Command),
    /// Print a shell completion script
    #[command(
        after_help = "Examples:\n  pharos completion bash > /etc/bash_completion.d/pharos\n  pharos completion zsh > \"${fpath[1]}/_pharos\"\n  pharos completion fish > ~/.config/fish/completions/pharos.fish"
    )]
    Completion(completion::Args),
}

pub async fn run(cli: Cli) -> Result<(), CliError> {
    // `export` writes files: its -o/--output names the file, like curl's.
    let (format, export_file) = match &cli.command {
        Command::Export(_) => (Format::Table, cli.output.clone()),
        _ => (parse_format(cli.output.as_deref())?, None),
    };
    let out = Output::new(format);
    // Commands that manage the local configuration need no server.
    match cli.command {
        Command::Context(command) => {
            let given = context::Given {
                context: cli.context.as_deref(),
                server: cli.server.as_deref(),
                token: cli.token.as_deref(),
            };
            return context::run(command, given, out);
        }
        Command::Completion(args) => {
            completion::run(args);
            return Ok(());
        }
        _ => {}
    }
    let target = config::resolve(
        cli.server.as_deref(),
        cli.token.as_deref(),
        cli.context.as_deref(),
    )?;
    let client = Client::new(&target);
    match cli.command {
        Command::Status => status::run(&client, out).await,
        Command::Projects(args) => projects::run(&client, args, out).await,
        Command::Project(args) => project::run(&client, args, out).await,
        Command::Health(args) => health::run(&client, args, out).await,
        Command::Checks(command) => checks::run(&client, command, out).await,
        Command::Watch(args) => watch::run(&client, args, out).await,
        Command::Top(args) => top::run(&client, args).await,
        Command::Export(args) => export::run(&client, args, export_file).await,
        Command::Containers(args) => containers::run(&client, args, out).await,
        Command::Logs(args) => logs::run(&client, args, out).await,
        Command::Events(args) => events::run(&client, args, out).await,
        Command::Metrics(args) => metrics::run(&client, args, out).await,
        Command::Operations(args) => operations::run(&client, args, out).await,
        Command::Restart(args) => actions::run(&client, actions::Action::Restart(args), out).await,
        Command::Stop(args) => actions::run(&client, actions::Action::Stop(args), out).await,
        Command::Start(args) => actions::run(&client, actions::Action::Start(args), out).await,
        Command::Scale(args) => actions::run(&client, actions::Action::Scale(args), out).await,
        Command::Rollout(actions::Rollout::Restart(args)) => {
            actions::run(&client, actions::Action::RolloutRestart(args), out).await
        }
        Command::Context(_) | Command::Completion(_) => unreachable!("handled above"),
    }
}

fn parse_format(value: Option<&str>) -> Result<Format, CliError> {
    use clap::ValueEnum;
    match value {
        None => Ok(Format::Table),
        Some(text) => Format::from_str(text, true).map_err(|_| {
            CliError::Usage(format!(
                "invalid value {text:?} for -o/--output: use table, wide, json or yaml (see `pharos --help`)"
            ))
        }),
    }
}

/// A bad command line: `--help` and `--version` print as usual; anything else is one line
/// on stderr and exit code 2.
pub fn usage_error(err: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        err.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = err.print();
        return if err.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
            ExitCode::from(2)
        } else {
            ExitCode::SUCCESS
        };
    }
    let rendered = err.render().to_string();
    let first = rendered
        .lines()
        .next()
        .unwrap_or("invalid command line")
        .trim_start_matches("error: ");
    eprintln!("pharos: {first} (see `pharos --help`)");
    ExitCode::from(2)
}

/// Parses "15m", "2h", "7d" into a duration.
pub fn parse_since(text: &str) -> Result<std::time::Duration, String> {
    humantime::parse_duration(text)
        .map_err(|err| format!("{err}; use a duration such as 30s, 15m, 2h or 7d"))
}

/// A timestamp `ago` before now.
pub fn timestamp_ago(ago: std::time::Duration) -> prost_types::Timestamp {
    let at = std::time::SystemTime::now()
        .checked_sub(ago)
        .unwrap_or(std::time::UNIX_EPOCH);
    prost_types::Timestamp::from(at)
}
