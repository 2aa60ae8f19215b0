//! Pharos' domain: plain types for the catalog, health, containers, operations, metrics
//! and the journal's entries, the selectors watchers use, and the one error vocabulary
//! every layer maps onto. Nothing here knows gRPC or the database: the store and the
//! gRPC adapters convert to and from these types.

pub mod domain;
pub mod error;
pub mod journal;
pub mod redact;
pub mod selector;
