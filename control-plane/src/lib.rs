//! pharosd, the Pharos control plane: configuration, wiring and the entry point. The
//! parts live in the crates below it (core, probes, store, hub, collectors, grpc,
//! supervisor; see `docs/architecture.md`); they are re-exported here under the names
//! the integration tests and benchmarks use.

pub mod config;
pub mod server;

pub use pharos_collectors::{capacity, catalog, containers, health, metrics, operations};
pub use pharos_core::domain;
pub use pharos_grpc::{api, auth, jwt, ratelimit, telemetry, tls, web};
pub use pharos_hub as watch;
pub use pharos_store as storage;
pub use pharos_store::{events, export, journal};
pub use pharos_supervisor as supervisor;

use std::io::Read;

use clap::Parser;

use config::{Cli, Command, LogFormat, Settings};

/// Runs the command line and returns the process exit code.
pub async fn main_with_args() -> i32 {
    let cli = Cli::parse();
    init_logging(cli.options.log_format);
    match run(cli).await {
        Ok(code) => code,
        Err(err) => {
            tracing::error!("{err:#}");
            eprintln!("pharosd: {err:#}");
            1
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<i32> {
    let settings = Settings::resolve(&cli.options)?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => server::run(settings).await.map(|()| 0),
        Command::Migrate => {
            let url = storage::resolve_url(settings.database_url.as_deref(), &settings.data_dir)?;
            let db = storage::connect(&url).await?;
            storage::migrate(&db).await?;
            println!("migrations applied to {}", storage::redact(&url));
            Ok(0)
        }
        Command::Validate => {
            let result = settings
                .catalog
                .read(settings.listen)
                .and_then(|text| catalog::parse(&text, &settings.catalog.name()));
            match result {
                Ok(parsed) => {
                    println!(
                        "{}: valid ({} environments, {} projects, {} deployments, {} ports)",
                        settings.catalog.name(),
                        parsed.environments.len(),
                        parsed.projects.len(),
                        parsed.deployments.len(),
                        parsed.ports.len()
                    );
                    Ok(0)
                }
                Err(err) => {
                    eprintln!("{err}");
                    Ok(1)
                }
            }
        }
        Command::HashToken => {
            let mut token = String::new();
            std::io::stdin().read_to_string(&mut token)?;
            let token = token.trim_end_matches(['\n', '\r']);
            anyhow::ensure!(
                !token.is_empty(),
                "no token on stdin: pipe the token in, e.g. `echo -n \"$TOKEN\" | pharosd hash-token`"
            );
            println!("{}", auth::hash_token(token));
            Ok(0)
        }
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("PHAROS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}
