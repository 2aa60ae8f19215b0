//! pharosd's integration tests, one binary: each module starts real servers (SQLite files,
//! PostgreSQL, Podman, HTTP targets) around an in-process pharosd and checks what its
//! API answers. `common` holds the harness they share.

// First, so the modules below see its macros (`on_both_backends!`).
#[macro_use]
mod common;

mod actions;
mod alerts;
mod backends;
mod capacity;
mod containers;
mod events;
mod health_api;
mod health_transitions;
mod metrics;
mod platform;
mod watch_contract;
