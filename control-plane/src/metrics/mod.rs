//! Metrics: the exposition parser, scraping, pushed samples, recent samples in memory
//! and one-minute rollups in the database. See `docs/architecture.md`, "Metrics".

pub mod exposition;
