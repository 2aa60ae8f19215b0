//! Schema migrations. `pharosd` runs them at start-up and with `pharosd migrate`; the same
//! migrations serve SQLite and PostgreSQL.

pub use sea_orm_migration::prelude::*;

mod m0001_catalog_and_journal;
mod m0002_health_history;
mod m0003_containers_operations;

/// Every migration, oldest first.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m0001_catalog_and_journal::Migration),
            Box::new(m0002_health_history::Migration),
            Box::new(m0003_containers_operations::Migration),
        ]
    }
}
