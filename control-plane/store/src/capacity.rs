//! pharosd's own database, as capacity reports it: which backend it is and how much
//! space it takes.

use sea_orm::{ConnectionTrait, DatabaseBackend, DatabaseConnection, Statement};

use crate::QueryError;

#[derive(Clone)]
pub struct DatabaseSize {
    db: DatabaseConnection,
}

impl DatabaseSize {
    pub fn new(db: DatabaseConnection) -> DatabaseSize {
        DatabaseSize { db }
    }

    /// "sqlite" or "postgres".
    pub fn backend(&self) -> &'static str {
        match self.db.get_database_backend() {
            DatabaseBackend::Postgres => "postgres",
            _ => "sqlite",
        }
    }

    /// The database's size in bytes: the whole PostgreSQL database, or the SQLite file's
    /// pages.
    pub async fn bytes(&self) -> Result<u64, QueryError> {
        let backend = self.db.get_database_backend();
        let sql = match backend {
            DatabaseBackend::Postgres => {
                "SELECT pg_database_size(current_database())::bigint AS size"
            }
            _ => {
                "SELECT page_count * page_size AS size FROM pragma_page_count(), pragma_page_size()"
            }
        };
        let row = self
            .db
            .query_one_raw(Statement::from_string(backend, sql))
            .await?
            .ok_or_else(|| QueryError::Corrupt("the size query returned no row".to_owned()))?;
        let size: i64 = row.try_get("", "size")?;
        u64::try_from(size).map_err(|_| QueryError::Corrupt(format!("negative size {size}")))
    }
}
