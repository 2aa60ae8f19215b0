//! gRPC adapters: proto <-> domain conversions and the service implementations. Proto
//! types stop here; nothing below this module sees them.

mod actions;
mod catalog;
mod containers;
mod convert;
pub mod error;
mod events;
mod export;
pub mod health;
mod live_metrics;
pub mod metrics;
mod paging;
mod session;
mod watch;

pub use actions::ActionApi;
pub use catalog::CatalogApi;
pub use containers::ContainerApi;
pub use error::{ApiError, code_name, grpc_code, status};
pub use events::EventsApi;
pub use export::ExportApi;
pub use health::HealthApi;
pub use metrics::MetricsApi;
pub use session::SessionApi;
pub use watch::WatchApi;
