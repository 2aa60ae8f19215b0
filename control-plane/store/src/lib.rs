//! Pharos' store: the only crate that speaks SQL through SeaORM. The connection and
//! schema (SQLite embedded by default, PostgreSQL for production and several replicas,
//! the same migrations for both), the journal and its one writer, the catalog's tables,
//! check history and its rollups, metric rollups, event history, operations and their
//! audit, bulk export, the database's own size, and the decoding of every stored row.

pub mod capacity;
pub mod catalog;
pub mod entities;
mod error;
pub mod events;
pub mod export;
pub mod history;
pub mod journal;
pub mod metric_rollups;
pub mod operations;
pub mod rows;

pub use error::QueryError;

use std::path::Path;
use std::time::Duration;

use pharos_migrations::{Migrator, MigratorTrait};
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbErr};

/// The SQLite file inside the data directory.
pub const SQLITE_FILE: &str = "pharos.db";

#[derive(Debug, thiserror::Error)]
pub enum DatabaseError {
    #[error("unsupported database url {0:?}: use postgres://… or sqlite://…")]
    UnsupportedUrl(String),
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot connect to {url}: {source}")]
    Connect {
        url: String,
        #[source]
        source: DbErr,
    },
    #[error("migrations failed: {0}")]
    Migrate(#[source] DbErr),
}

/// The URL pharosd uses when none is given: SQLite in the data directory.
pub fn default_url(data_dir: &Path) -> String {
    format!("sqlite://{}?mode=rwc", data_dir.join(SQLITE_FILE).display())
}

/// Connects to `url` and tunes the connection: WAL and a busy timeout for SQLite.
pub async fn connect(url: &str) -> Result<DatabaseConnection, DatabaseError> {
    let is_sqlite = url.starts_with("sqlite:");
    if !is_sqlite && !url.starts_with("postgres://") && !url.starts_with("postgresql://") {
        return Err(DatabaseError::UnsupportedUrl(redact(url)));
    }
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .sqlx_logging(false)
        .connect_timeout(Duration::from_secs(10))
        .acquire_timeout(Duration::from_secs(10));
    if is_sqlite {
        // One writer at a time is SQLite's rule; readers run beside it thanks to WAL.
        options.max_connections(4).map_sqlx_sqlite_opts(|opts| {
            opts.journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(5))
                .create_if_missing(true)
        });
    } else {
        options.max_connections(16);
    }
    Database::connect(options)
        .await
        .map_err(|source| DatabaseError::Connect {
            url: redact(url),
            source,
        })
}

/// Creates the data directory (for SQLite) and returns the database URL to use.
pub fn resolve_url(database_url: Option<&str>, data_dir: &Path) -> Result<String, DatabaseError> {
    if let Some(url) = database_url {
        return Ok(url.to_owned());
    }
    std::fs::create_dir_all(data_dir).map_err(|source| DatabaseError::DataDir {
        path: data_dir.display().to_string(),
        source,
    })?;
    Ok(default_url(data_dir))
}

pub async fn migrate(db: &DatabaseConnection) -> Result<(), DatabaseError> {
    Migrator::up(db, None).await.map_err(DatabaseError::Migrate)
}

pub use pharos_core::redact::redact;
