//! SeaORM entities, one module per table (see `migrations/`).

pub mod audit_log;
pub mod check_result;
pub mod check_rollup;
pub mod deployment;
pub mod environment;
pub mod journal;
pub mod metric_rollup;
pub mod operation;
pub mod port_allocation;
pub mod project;
pub mod watch_meta;
pub mod watch_state;
