//! Domain types of the catalog and the journal. No prost, no SeaORM: the gRPC adapters
//! and the storage layer convert to and from these.

mod catalog;
mod event;

pub use catalog::{
    Catalog, CheckSpec, Deployment, Environment, PortAllocation, PortRange, PortType, Project,
};
pub use event::{Event, Severity};
