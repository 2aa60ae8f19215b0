//! `pharos`, the command-line client of pharosd. A thin client: everything it shows comes
//! from the gRPC API that the dashboard and grpcurl use too.

mod board;
mod capabilities;
mod client;
mod commands;
mod config;
mod error;
mod output;
mod resume;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = match commands::Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => return commands::usage_error(err),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    match runtime.block_on(commands::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("pharos: {err}");
            ExitCode::from(err.exit_code())
        }
    }
}
