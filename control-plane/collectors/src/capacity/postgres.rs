//! PostgreSQL databases the catalog's `postgres` checks point at: size, connections used
//! of the limit, and the largest tables (seed 002's capacity queries), read with one
//! short connection per database per sampling round.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, Connection, Row};

use crate::catalog::CatalogView;
use pharos_core::domain::CheckKind;
use pharos_store::redact;

/// Longest a database may take to answer one round.
const TIMEOUT: Duration = Duration::from_secs(5);

const FIGURES: &str = "SELECT \
    pg_database_size(current_database())::bigint, \
    (SELECT count(*) FROM pg_stat_activity WHERE datname IS NOT NULL)::bigint, \
    current_setting('max_connections')::bigint";

const LARGEST: &str = "SELECT n.nspname || '.' || c.relname, pg_total_relation_size(c.oid)::bigint \
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
    WHERE c.relkind IN ('r', 'm', 'p') \
      AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
      AND n.nspname NOT LIKE 'pg_toast%' \
    ORDER BY 2 DESC, 1 LIMIT $1";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Table {
    /// schema.table
    pub name: String,
    /// Table, indexes and TOAST together.
    pub total_bytes: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Figures {
    pub size_bytes: u64,
    pub connections_used: u32,
    pub connections_max: u32,
    pub largest_tables: Vec<Table>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PostgresCapacity {
    /// The check that names the database: `<project>/<environment>/<check>`.
    pub check_id: String,
    /// The DSN without its password.
    pub dsn: String,
    pub figures: Result<Figures, String>,
}

/// The (check id, DSN) of every `postgres` check in the catalog.
pub fn targets(view: &CatalogView) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for deployment in &view.catalog.deployments {
        for check in &deployment.checks {
            if let CheckKind::Postgres(postgres) = &check.kind {
                found.push((
                    format!("{}/{}", deployment.id(), check.name),
                    postgres.dsn.clone(),
                ));
            }
        }
    }
    found
}

pub async fn sample(targets: Vec<(String, String)>, largest: u32) -> Vec<PostgresCapacity> {
    let rounds = targets.into_iter().map(|(check_id, dsn)| async move {
        let figures = match tokio::time::timeout(TIMEOUT, read(&dsn, largest)).await {
            Ok(result) => result,
            Err(_) => Err(format!("no answer within {TIMEOUT:?}")),
        };
        PostgresCapacity {
            check_id,
            dsn: redact(&dsn),
            figures,
        }
    });
    futures::future::join_all(rounds).await
}

async fn read(dsn: &str, largest: u32) -> Result<Figures, String> {
    let options = PgConnectOptions::from_str(dsn)
        .map_err(|err| format!("bad DSN: {err}"))?
        .application_name("pharos-capacity")
        .disable_statement_logging();
    let mut conn = PgConnection::connect_with(&options)
        .await
        .map_err(|err| format!("connect: {err}"))?;
    let result = async {
        let row = sqlx::query(FIGURES)
            .fetch_one(&mut conn)
            .await
            .map_err(|err| err.to_string())?;
        let size: i64 = row.try_get(0).map_err(|err| err.to_string())?;
        let used: i64 = row.try_get(1).map_err(|err| err.to_string())?;
        let max: i64 = row.try_get(2).map_err(|err| err.to_string())?;
        let tables = sqlx::query(LARGEST)
            .bind(i64::from(largest))
            .fetch_all(&mut conn)
            .await
            .map_err(|err| err.to_string())?
            .into_iter()
            .map(|row| {
                let name: String = row.try_get(0).map_err(|err| err.to_string())?;
                let bytes: i64 = row.try_get(1).map_err(|err| err.to_string())?;
                Ok(Table {
                    name,
                    total_bytes: u64::try_from(bytes).unwrap_or(0),
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Figures {
            size_bytes: u64::try_from(size).unwrap_or(0),
            connections_used: u32::try_from(used).unwrap_or(u32::MAX),
            connections_max: u32::try_from(max).unwrap_or(u32::MAX),
            largest_tables: tables,
        })
    }
    .await;
    let _ = conn.close().await;
    result
}
