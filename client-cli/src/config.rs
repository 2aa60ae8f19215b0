//! Contexts: named servers in `$XDG_CONFIG_HOME/pharos/config.yaml` (or
//! `~/.config/pharos/config.yaml`), like kubectl's. Flags and `PHAROS_*` variables override
//! the context for one command.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::CliError;

/// The server a command talks to when nothing else names one.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:7600";

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The context used when `--context` is not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_context: Option<String>,
    #[serde(default)]
    pub contexts: BTreeMap<String, Context>,
}

/// One named server.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Context {
    pub server: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    #[serde(default, skip_serializing_if = "Tls::is_default")]
    pub tls: Tls,
}

/// TLS settings for an `https://` server.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    /// PEM file of the CA that signed the server's certificate (default: the web PKI roots).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// The name to verify the certificate against, when it differs from the address's host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
}

impl Tls {
    fn is_default(&self) -> bool {
        self == &Tls::default()
    }
}

/// Where the config file lives: `$XDG_CONFIG_HOME/pharos/config.yaml`, else
/// `$HOME/.config/pharos/config.yaml`.
pub fn config_path() -> Result<PathBuf, CliError> {
    let base = match std::env::var_os("XDG_CONFIG_HOME").filter(|dir| !dir.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => match std::env::var_os("HOME").filter(|dir| !dir.is_empty()) {
            Some(home) => Path::new(&home).join(".config"),
            None => {
                return Err(CliError::Invalid(
                    "neither XDG_CONFIG_HOME nor HOME is set: cannot locate the config file"
                        .to_owned(),
                ));
            }
        },
    };
    Ok(base.join("pharos").join("config.yaml"))
}

impl Config {
    /// The config file, or an empty config when there is none.
    pub fn load(path: &Path) -> Result<Config, CliError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Config::default());
            }
            Err(err) => {
                return Err(CliError::Invalid(format!(
                    "cannot read {}: {err}",
                    path.display()
                )));
            }
        };
        if text.trim().is_empty() {
            return Ok(Config::default());
        }
        serde_yaml::from_str(&text)
            .map_err(|err| CliError::Invalid(format!("{}: {err}", path.display())))
    }

    /// Writes the file atomically, readable only by its owner (it holds tokens).
    pub fn save(&self, path: &Path) -> Result<(), CliError> {
        let fail = |err: std::io::Error| {
            CliError::Other(format!("cannot write {}: {err}", path.display()))
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(fail)?;
        }
        let text = serde_yaml::to_string(self).expect("config serializes");
        let staging = path.with_extension("yaml.new");
        {
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&staging)
                .map_err(fail)?;
            file.write_all(text.as_bytes()).map_err(fail)?;
        }
        std::fs::rename(&staging, path).map_err(fail)
    }
}

/// What a command connects to once flags, variables and the config file are combined.
#[derive(Debug)]
pub struct Target {
    pub server: String,
    pub token: Option<String>,
    pub tls: Tls,
}

/// Flags and variables (clap has already merged `--server` with `PHAROS_SERVER`, and so
/// on) win over the selected context, which wins over the default address.
pub fn resolve(
    server: Option<&str>,
    token: Option<&str>,
    context: Option<&str>,
) -> Result<Target, CliError> {
    let path = config_path()?;
    let config = Config::load(&path)?;
    let chosen = match context.or(config.current_context.as_deref()) {
        Some(name) => match config.contexts.get(name) {
            Some(context) => Some(context.clone()),
            None => {
                return Err(CliError::NotFound(format!(
                    "context {name:?} is not defined in {}; `pharos context list` shows the defined ones",
                    path.display()
                )));
            }
        },
        None => None,
    };
    let chosen = chosen.unwrap_or_default();
    let from_context = !chosen.server.is_empty();
    Ok(Target {
        server: server
            .map(str::to_owned)
            .or(from_context.then(|| chosen.server.clone()))
            .unwrap_or_else(|| DEFAULT_SERVER.to_owned()),
        token: token.map(str::to_owned).or(chosen.token),
        tls: chosen.tls,
    })
}
