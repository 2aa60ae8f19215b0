//! `pharos completion bash|zsh|fish`.

use clap::CommandFactory;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The shell to complete for
    shell: clap_complete::Shell,
}

pub fn run(args: Args) {
    let mut command = super::Cli::command();
    clap_complete::generate(args.shell, &mut command, "pharos", &mut std::io::stdout());
}
