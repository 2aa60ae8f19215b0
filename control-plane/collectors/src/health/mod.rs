//! Health: probes of every kind, the per-check state machine, the engine that schedules
//! checks and journals transitions, and the history of results with rollups.

mod container;
pub mod engine;
pub mod heartbeats;
pub mod history;
pub mod machine;
mod runs;
mod schedule;
pub use pharos_probes as probe;
