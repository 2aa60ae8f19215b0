//! Pharos' collectors: everything pharosd learns and does on its own. The catalog
//! (file, validation, sync into the store), the health engine and its history, the
//! containers collector and logs, operations (actions on deployments), metrics
//! (scraping, pushed samples, rollups, alerts, KPIs, anomalies) and capacity. They write
//! through the store's journal writer; the gRPC layer above reads their state.

pub mod capacity;
pub mod catalog;
pub mod containers;
pub mod health;
pub mod metrics;
pub mod operations;
