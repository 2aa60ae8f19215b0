//! `pharos context list|use|set|delete|current`.

use std::path::PathBuf;

use serde_json::json;

use crate::config::{Config, Context, Tls, config_path};
use crate::error::CliError;
use crate::output::{Cell, Output, Table, Tone};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// List the contexts; the current one is marked with *
    #[command(after_help = "Example:\n  pharos context list -o json")]
    List,
    /// Make a context the current one
    #[command(after_help = "Example:\n  pharos context use prod")]
    Use { name: String },
    /// Create a context or change some of its settings
    #[command(
        after_help = "Examples:\n  pharos context set local --server http://127.0.0.1:7600\n  pharos context set prod --server https://pharos.example.net --token \"$TOKEN\" --ca-file ca.pem --use"
    )]
    Set(SetArgs),
    /// Delete a context
    #[command(after_help = "Example:\n  pharos context delete old-lab")]
    Delete { name: String },
    /// Print the current context's name
    #[command(after_help = "Example:\n  pharos context current")]
    Current,
}

#[derive(Debug, clap::Args)]
pub struct SetArgs {
    /// The context's name; its address and token come from the global --server and
    /// --token (or PHAROS_SERVER and PHAROS_TOKEN); --server is required for a new one
    name: String,
    /// Remove the stored token
    #[arg(long)]
    clear_token: bool,
    /// PEM file of the CA that signed pharosd's certificate
    #[arg(long)]
    ca_file: Option<PathBuf>,
    /// Name to verify the server certificate against
    #[arg(long)]
    tls_server_name: Option<String>,
    /// Also make it the current context
    #[arg(long = "use")]
    make_current: bool,
}

/// The global flags `context set` stores.
pub struct Given<'a> {
    pub context: Option<&'a str>,
    pub server: Option<&'a str>,
    pub token: Option<&'a str>,
}

pub fn run(command: Command, given: Given<'_>, out: Output) -> Result<(), CliError> {
    let selected = given.context;
    let path = config_path()?;
    let mut config = Config::load(&path)?;
    let not_found = |name: &str| {
        CliError::NotFound(format!(
            "context {name:?} is not defined in {}; `pharos context list` shows the defined ones",
            path.display()
        ))
    };
    match command {
        Command::List => {
            let current = selected.or(config.current_context.as_deref());
            let rows: Vec<_> = config
                .contexts
                .iter()
                .map(|(name, context)| {
                    json!({
                        "name": name,
                        "current": Some(name.as_str()) == current,
                        "server": context.server,
                        "token": context.token.is_some(),
                        "ca_file": context.tls.ca_file,
                        "tls_server_name": context.tls.server_name,
                    })
                })
                .collect();
            out.emit(&json!({ "contexts": rows }), |out| {
                let mut table = Table::new(&["CURRENT", "NAME", "SERVER", "TOKEN"])
                    .wide(&["CA FILE", "TLS SERVER NAME"]);
                for (name, context) in &config.contexts {
                    let current = Some(name.as_str()) == current;
                    table.row(vec![
                        Cell::toned(if current { "*" } else { "" }, Tone::Good),
                        name.as_str().into(),
                        context.server.as_str().into(),
                        if context.token.is_some() { "set" } else { "-" }.into(),
                        context
                            .tls
                            .ca_file
                            .as_ref()
                            .map(|p| p.display().to_string())
                            .unwrap_or_default()
                            .into(),
                        context.tls.server_name.clone().unwrap_or_default().into(),
                    ]);
                }
                if table.is_empty() {
                    return format!(
                        "no contexts in {}; add one with `pharos context set NAME --server URL`\n",
                        path.display()
                    );
                }
                table.render(out)
            });
            Ok(())
        }
        Command::Current => match config.current_context {
            Some(name) => {
                println!("{name}");
                Ok(())
            }
            None => Err(CliError::NotFound(
                "no current context; choose one with `pharos context use NAME`".to_owned(),
            )),
        },
        Command::Use { name } => {
            if !config.contexts.contains_key(&name) {
                return Err(not_found(&name));
            }
            config.current_context = Some(name.clone());
            config.save(&path)?;
            eprintln!("pharos: now using context {name:?}");
            Ok(())
        }
        Command::Delete { name } => {
            if config.contexts.remove(&name).is_none() {
                return Err(not_found(&name));
            }
            if config.current_context.as_deref() == Some(name.as_str()) {
                config.current_context = None;
            }
            config.save(&path)?;
            eprintln!("pharos: deleted context {name:?}");
            Ok(())
        }
        Command::Set(args) => {
            let _ = out;
            let existing = config.contexts.get(&args.name).cloned();
            let mut context = match (existing, given.server) {
                (Some(context), _) => context,
                (None, Some(_)) => Context {
                    server: String::new(),
                    token: None,
                    tls: Tls::default(),
                },
                (None, None) => {
                    return Err(CliError::Invalid(format!(
                        "context {:?} is new: give its address with --server URL",
                        args.name
                    )));
                }
            };
            if let Some(server) = given.server.map(str::to_owned) {
                if !(server.starts_with("http://") || server.starts_with("https://")) {
                    return Err(CliError::Invalid(format!(
                        "--server {server:?} must start with http:// or https://"
                    )));
                }
                context.server = server;
            }
            if let Some(token) = given.token {
                context.token = Some(token.to_owned());
            }
            if args.clear_token {
                context.token = None;
            }
            if let Some(ca_file) = args.ca_file {
                let ca_file = std::path::absolute(&ca_file).unwrap_or(ca_file);
                if !ca_file.is_file() {
                    return Err(CliError::Invalid(format!(
                        "--ca-file {} is not a readable file",
                        ca_file.display()
                    )));
                }
                context.tls.ca_file = Some(ca_file);
            }
            if let Some(name) = args.tls_server_name {
                context.tls.server_name = Some(name);
            }
            config.contexts.insert(args.name.clone(), context);
            if args.make_current || config.current_context.is_none() {
                config.current_context = Some(args.name.clone());
            }
            config.save(&path)?;
            eprintln!(
                "pharos: saved context {:?} in {}{}",
                args.name,
                path.display(),
                if config.current_context.as_deref() == Some(args.name.as_str()) {
                    " (current)"
                } else {
                    ""
                }
            );
            Ok(())
        }
    }
}
