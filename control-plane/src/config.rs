//! Command line, environment and config file, resolved into one [`Settings`] with every
//! default in one place. Precedence: flag, then `PHAROS_*` variable, then config file.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::Deserialize;

use crate::auth::TokenConfig;
use crate::catalog::CatalogSource;
use crate::watch::WatchOptions;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:7600";

#[derive(Debug, Parser)]
#[command(
    name = "pharosd",
    version,
    about = "Pharos control plane: catalog, collectors, history and live Watch streams over gRPC",
    long_about = "Pharos control plane: catalog, collectors, history and live Watch streams over gRPC.\n\n\
        With no arguments pharosd serves the embedded demo catalog on 127.0.0.1:7600 with SQLite in\n\
        the data directory ($XDG_DATA_HOME/pharos, or ~/.local/share/pharos).",
    after_help = "Examples:\n  pharosd\n  pharosd --catalog deploy/demo-catalog.yaml --listen 127.0.0.1:7700\n  \
        pharosd --database-url postgres://pharos@db/pharos migrate\n  \
        pharosd validate --catalog catalog.yaml\n  echo -n \"$TOKEN\" | pharosd hash-token"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub options: Options,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve gRPC, grpc-web and the dashboard (the default)
    Serve,
    /// Apply database migrations and exit
    Migrate,
    /// Validate the catalog file and exit (0 when valid, 1 with the problems otherwise)
    Validate,
    /// Read an API token on stdin and print its SHA-256 for the config file's `tokens`
    HashToken,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct Options {
    /// Address to serve gRPC, grpc-web, /healthz and the dashboard on
    #[arg(long, env = "PHAROS_LISTEN", default_value = DEFAULT_LISTEN, global = true)]
    pub listen: SocketAddr,
    /// Directory for the SQLite database [default: $XDG_DATA_HOME/pharos or ~/.local/share/pharos]
    #[arg(long, env = "PHAROS_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// Catalog YAML file, reloaded when it changes [default: the embedded demo catalog]
    #[arg(long, env = "PHAROS_CATALOG", global = true)]
    pub catalog: Option<PathBuf>,
    /// Database URL, such as postgres://user@host/db [default: SQLite in the data directory]
    #[arg(
        long,
        env = "PHAROS_DATABASE_URL",
        global = true,
        hide_env_values = true
    )]
    pub database_url: Option<String>,
    /// Server config YAML file: API tokens and tuning
    #[arg(long, env = "PHAROS_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// How often idle Watch streams receive a progress marker [default: 10s]
    #[arg(long, env = "PHAROS_PROGRESS_INTERVAL", value_parser = humantime::parse_duration, global = true)]
    pub progress_interval: Option<Duration>,
    /// How often the catalog file is checked for edits [default: 1s]
    #[arg(long, env = "PHAROS_CATALOG_POLL_INTERVAL", value_parser = humantime::parse_duration, global = true)]
    pub catalog_poll_interval: Option<Duration>,
    /// Journal entries kept in memory for fast replay [default: 16384]
    #[arg(long, env = "PHAROS_JOURNAL_RING", global = true)]
    pub journal_ring: Option<usize>,
    /// Journal entries kept in the database; older ones are compacted [default: 1000000]
    #[arg(long, env = "PHAROS_JOURNAL_RETENTION", global = true)]
    pub journal_retention: Option<u64>,
    /// Directory of the built dashboard [default: web-client/dist, if built]
    #[arg(long, env = "PHAROS_WEB_ROOT", global = true)]
    pub web_root: Option<PathBuf>,
    /// Container engine (Docker Engine API, Docker or Podman), such as
    /// unix:///run/podman/podman.sock [default: $DOCKER_HOST; none disables containers]
    #[arg(long, env = "PHAROS_DOCKER_HOST", global = true)]
    pub docker_host: Option<String>,
    /// Log format
    #[arg(
        long,
        env = "PHAROS_LOG_FORMAT",
        value_enum,
        default_value = "text",
        global = true
    )]
    pub log_format: LogFormat,
    /// PEM certificate chain: serve TLS (gRPC, grpc-web and the dashboard) instead of plain text
    #[arg(long, env = "PHAROS_TLS_CERT", requires = "tls_key", global = true)]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert
    #[arg(long, env = "PHAROS_TLS_KEY", requires = "tls_cert", global = true)]
    pub tls_key: Option<PathBuf>,
    /// PEM CA certificates: require every client to present a certificate they signed (mutual TLS)
    #[arg(
        long,
        env = "PHAROS_TLS_CLIENT_CA",
        requires = "tls_cert",
        global = true
    )]
    pub tls_client_ca: Option<PathBuf>,
    /// Origins allowed to call the API from a browser page they serve (grpc-web CORS), such as https://ops.example.com; repeat or separate with commas
    #[arg(
        long = "cors-origin",
        env = "PHAROS_CORS_ORIGINS",
        value_delimiter = ',',
        global = true
    )]
    pub cors_origins: Vec<String>,
}

/// The config file. Every field is optional; unknown fields are errors.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    #[serde(default)]
    pub tokens: Vec<TokenConfig>,
    #[serde(default)]
    pub watch: WatchFile,
    pub catalog_poll_interval: Option<String>,
    #[serde(default)]
    pub health: HealthFile,
    /// JSON Web Tokens from an identity provider, besides the static `tokens`.
    pub jwt: Option<crate::jwt::JwtConfig>,
    /// Calls per second per caller.
    pub limits: Option<crate::ratelimit::RateLimitConfig>,
    #[serde(default)]
    pub containers: ContainersFile,
    #[serde(default)]
    pub capacity: CapacityFile,
    #[serde(default)]
    pub telemetry: TelemetryFile,
}

/// `telemetry:` in the config file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetryFile {
    /// How often pharosd records its own figures as series (default 5s; 0s: never).
    pub interval: Option<String>,
}

/// `capacity:` in the config file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapacityFile {
    /// How often capacity is sampled (default 10s).
    pub interval: Option<String>,
    /// File systems to report besides the data directory's, by a path on each.
    #[serde(default)]
    pub disk_paths: Vec<PathBuf>,
    /// Tables listed per PostgreSQL database (default 5).
    pub largest_tables: Option<u32>,
}

/// `containers:` in the config file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContainersFile {
    /// Engine endpoint; --docker-host and PHAROS_DOCKER_HOST take precedence, DOCKER_HOST
    /// is the fallback.
    pub docker_host: Option<String>,
    /// Label keys naming a container's project, environment and service (defaults
    /// pharos.project, pharos.environment, pharos.service).
    pub project_label: Option<String>,
    pub environment_label: Option<String>,
    pub service_label: Option<String>,
    /// Full resync of the container list (default 30s) and stats sampling (default 5s).
    pub resync_interval: Option<String>,
    pub stats_interval: Option<String>,
}

/// `health:` in the config file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthFile {
    /// Checks running at once, at most (default 64).
    pub concurrency: Option<usize>,
    /// Flap detection: `changes` status changes within `window` (defaults 6 and 10m).
    pub flap_window: Option<String>,
    pub flap_changes: Option<usize>,
    /// How long raw results and minute, hour and day rollups are kept
    /// (defaults 48h, 7d, 90d, 400d).
    pub keep_results: Option<String>,
    pub keep_minutes: Option<String>,
    pub keep_hours: Option<String>,
    pub keep_days: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatchFile {
    pub progress_interval: Option<String>,
    pub ring_capacity: Option<usize>,
    pub journal_retention: Option<u64>,
    pub compaction_interval: Option<String>,
}

/// Everything pharosd runs with.
#[derive(Clone, Debug)]
pub struct Settings {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub database_url: Option<String>,
    pub catalog: CatalogSource,
    pub tokens: Vec<TokenConfig>,
    pub watch: WatchOptions,
    pub ring_capacity: usize,
    pub journal_retention: u64,
    pub compaction_interval: Duration,
    pub catalog_poll_interval: Duration,
    /// Longest a shutdown may take before pharosd exits anyway.
    pub shutdown_deadline: Duration,
    pub health: crate::health::engine::HealthConfig,
    pub retention: crate::health::history::Retention,
    /// How often check results are written to the database.
    pub history_flush: Duration,
    pub web_root: Option<PathBuf>,
    /// Serve TLS with these files; plain text when absent.
    pub tls: Option<crate::tls::TlsFiles>,
    /// Origins allowed by CORS (none: same-origin only).
    pub cors_origins: Vec<http::HeaderValue>,
    /// Verifies JWTs, when the config file has `jwt:`.
    pub jwt: Option<crate::jwt::JwtVerifier>,
    /// Limits calls per caller, when the config file has `limits:`.
    pub rate_limit: Option<crate::ratelimit::RateLimitConfig>,
    pub containers: crate::containers::ContainersConfig,
    pub capacity: crate::capacity::CapacityConfig,
    /// How often pharosd's own figures are recorded as series (target "pharosd").
    pub telemetry_interval: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Jwt {
        path: String,
        #[source]
        source: crate::jwt::JwtSetupError,
    },
    #[error("--cors-origin {0:?}: not an origin; use the form https://host[:port]")]
    CorsOrigin(String),
    #[error("{path}:{line}:{column}: {field}{message}")]
    Invalid {
        path: String,
        line: usize,
        column: usize,
        field: String,
        message: String,
    },
}

impl Settings {
    pub fn resolve(options: &Options) -> Result<Settings, ConfigError> {
        let (file, text) = match &options.config {
            Some(path) => load_config(path)?,
            None => (ConfigFile::default(), String::new()),
        };
        let config_path = options.config.as_deref().unwrap_or(Path::new("config"));
        let index = crate::catalog::locate::PathIndex::build(&text);
        let duration =
            |field: &str, value: &Option<String>| -> Result<Option<Duration>, ConfigError> {
                let Some(value) = value.as_deref() else {
                    return Ok(None);
                };
                humantime::parse_duration(value).map(Some).map_err(|err| {
                    let location = index.locate(field);
                    ConfigError::Invalid {
                        path: config_path.display().to_string(),
                        line: location.map_or(1, |l| l.line),
                        column: location.map_or(1, |l| l.column),
                        field: format!("{field}: "),
                        message: format!(
                            "invalid duration {value:?} ({err}); use forms such as 500ms, 10s, 1m"
                        ),
                    }
                })
            };
        let defaults = WatchOptions::default();
        let progress_interval = options
            .progress_interval
            .or(duration(
                "watch.progress_interval",
                &file.watch.progress_interval,
            )?)
            .unwrap_or(defaults.progress_interval);
        Ok(Settings {
            listen: options.listen,
            data_dir: options.data_dir.clone().unwrap_or_else(default_data_dir),
            database_url: options.database_url.clone(),
            catalog: match &options.catalog {
                Some(path) => CatalogSource::File(path.clone()),
                None => CatalogSource::Embedded,
            },
            tokens: file.tokens,
            watch: WatchOptions {
                progress_interval,
                ..defaults
            },
            ring_capacity: options
                .journal_ring
                .or(file.watch.ring_capacity)
                .unwrap_or(16_384),
            journal_retention: options
                .journal_retention
                .or(file.watch.journal_retention)
                .unwrap_or(1_000_000),
            compaction_interval: duration(
                "watch.compaction_interval",
                &file.watch.compaction_interval,
            )?
            .unwrap_or(Duration::from_secs(60)),
            catalog_poll_interval: options
                .catalog_poll_interval
                .or(duration(
                    "catalog_poll_interval",
                    &file.catalog_poll_interval,
                )?)
                .unwrap_or(Duration::from_secs(1)),
            shutdown_deadline: Duration::from_secs(4),
            health: {
                let defaults = crate::health::engine::HealthConfig::default();
                crate::health::engine::HealthConfig {
                    concurrency: file
                        .health
                        .concurrency
                        .unwrap_or(defaults.concurrency)
                        .max(1),
                    flap: crate::health::machine::FlapPolicy {
                        window: duration("health.flap_window", &file.health.flap_window)?
                            .unwrap_or(defaults.flap.window),
                        changes: file
                            .health
                            .flap_changes
                            .unwrap_or(defaults.flap.changes)
                            .max(2),
                    },
                }
            },
            retention: {
                let defaults = crate::health::history::Retention::default();
                crate::health::history::Retention {
                    raw: duration("health.keep_results", &file.health.keep_results)?
                        .unwrap_or(defaults.raw),
                    minute: duration("health.keep_minutes", &file.health.keep_minutes)?
                        .unwrap_or(defaults.minute),
                    hour: duration("health.keep_hours", &file.health.keep_hours)?
                        .unwrap_or(defaults.hour),
                    day: duration("health.keep_days", &file.health.keep_days)?
                        .unwrap_or(defaults.day),
                }
            },
            history_flush: Duration::from_secs(1),
            web_root: options.web_root.clone(),
            tls: options
                .tls_cert
                .clone()
                .zip(options.tls_key.clone())
                .map(|(cert, key)| crate::tls::TlsFiles {
                    cert,
                    key,
                    client_ca: options.tls_client_ca.clone(),
                }),
            cors_origins: options
                .cors_origins
                .iter()
                .map(|origin| cors_origin(origin))
                .collect::<Result<_, _>>()?,
            jwt: file
                .jwt
                .as_ref()
                .map(crate::jwt::JwtVerifier::new)
                .transpose()
                .map_err(|source| ConfigError::Jwt {
                    path: config_path.display().to_string(),
                    source,
                })?,
            rate_limit: match file.limits {
                Some(limits) => {
                    crate::ratelimit::RateLimiter::new(&limits).map_err(|message| {
                        let location = index.locate("limits.calls_per_second");
                        ConfigError::Invalid {
                            path: config_path.display().to_string(),
                            line: location.map_or(1, |l| l.line),
                            column: location.map_or(1, |l| l.column),
                            field: String::new(),
                            message,
                        }
                    })?;
                    Some(limits)
                }
                None => None,
            },
            containers: {
                let defaults = crate::containers::ContainersConfig::default();
                let c = &file.containers;
                crate::containers::ContainersConfig {
                    docker_host: options
                        .docker_host
                        .clone()
                        .or(c.docker_host.clone())
                        .or_else(|| std::env::var("DOCKER_HOST").ok())
                        .filter(|host| !host.is_empty()),
                    labels: crate::containers::LabelKeys {
                        project: c.project_label.clone().unwrap_or(defaults.labels.project),
                        environment: c
                            .environment_label
                            .clone()
                            .unwrap_or(defaults.labels.environment),
                        service: c.service_label.clone().unwrap_or(defaults.labels.service),
                    },
                    resync_interval: duration("containers.resync_interval", &c.resync_interval)?
                        .unwrap_or(defaults.resync_interval),
                    stats_interval: duration("containers.stats_interval", &c.stats_interval)?
                        .unwrap_or(defaults.stats_interval),
                    max_backoff: defaults.max_backoff,
                }
            },
            telemetry_interval: duration("telemetry.interval", &file.telemetry.interval)?
                .unwrap_or(Duration::from_secs(5)),
            capacity: {
                let defaults = crate::capacity::CapacityConfig::default();
                let c = &file.capacity;
                crate::capacity::CapacityConfig {
                    interval: duration("capacity.interval", &c.interval)?
                        .unwrap_or(defaults.interval),
                    disk_paths: c.disk_paths.clone(),
                    largest_tables: c.largest_tables.unwrap_or(defaults.largest_tables).min(100),
                }
            },
        })
    }
}

/// An origin as browsers send it: scheme, host and optional port, nothing else.
fn cors_origin(origin: &str) -> Result<http::HeaderValue, ConfigError> {
    let invalid = || ConfigError::CorsOrigin(origin.to_owned());
    let uri: http::Uri = origin.parse().map_err(|_| invalid())?;
    let plain_origin = matches!(uri.scheme_str(), Some("http" | "https"))
        && uri.host().is_some()
        && uri.path_and_query().is_none_or(|path| path.as_str() == "/")
        && !origin.ends_with('/');
    if !plain_origin {
        return Err(invalid());
    }
    http::HeaderValue::from_str(origin).map_err(|_| invalid())
}

/// The parsed config file and its text (for locating later errors).
fn load_config(path: &Path) -> Result<(ConfigFile, String), ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.display().to_string(),
        source,
    })?;
    let deserializer = serde_yaml::Deserializer::from_str(&text);
    let file = serde_path_to_error::deserialize(deserializer).map_err(|err| {
        let field = err.path().to_string();
        let inner = err.into_inner();
        let (line, column) = inner.location().map_or((1, 1), |l| (l.line(), l.column()));
        let message = crate::catalog::strip_location(&inner.to_string(), &field);
        ConfigError::Invalid {
            path: path.display().to_string(),
            line,
            column,
            field: if field == "." {
                String::new()
            } else {
                format!("{field}: ")
            },
            message,
        }
    })?;
    Ok((file, text))
}

/// `$XDG_DATA_HOME/pharos`, else `~/.local/share/pharos`, else `./pharos-data`.
pub fn default_data_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("XDG_DATA_HOME").filter(|dir| !dir.is_empty()) {
        return PathBuf::from(dir).join("pharos");
    }
    if let Some(home) = std::env::var_os("HOME").filter(|home| !home.is_empty()) {
        return PathBuf::from(home).join(".local/share/pharos");
    }
    PathBuf::from("pharos-data")
}
