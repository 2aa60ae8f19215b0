//! gRPC adapters: proto <-> domain conversions and the service implementations. Proto
//! types stop here; nothing below this module sees them.

mod catalog;
mod convert;
mod error;
mod events;
mod health;
mod live_metrics;
mod metrics;
mod watch;

pub use catalog::CatalogApi;
pub use error::ApiError;
pub use events::EventsApi;
pub use health::HealthApi;
pub use metrics::MetricsApi;
pub use watch::WatchApi;
