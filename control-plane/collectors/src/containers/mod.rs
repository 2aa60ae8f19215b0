//! The containers collector: discovers containers on a Docker Engine API (Docker or
//! Podman) through bollard, matches them to catalog deployments by labels, follows their
//! state from the engine's event stream (with a periodic full resync that heals missed
//! events), samples their CPU and memory, and feeds `container` health checks.
//!
//! - [`ContainerIndex`]: the current state in memory (containers, stats, engine status);
//!   the API, the health engine and the metrics side read it.
//! - [`collector`]: the task that keeps the index and the containers topic up to date.
//! - [`stats`]: the task that samples stats.

pub mod collector;
mod index;
pub mod logs;
mod matching;
pub mod stats;

use std::time::Duration;

pub use collector::ContainerCollector;
pub use index::{ContainerIndex, ContainerQuery, ServiceStats};
pub use matching::Matcher;

/// Label keys that place a container in the catalog. Configuration, not code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LabelKeys {
    pub project: String,
    pub environment: String,
    pub service: String,
}

impl Default for LabelKeys {
    fn default() -> Self {
        LabelKeys {
            project: "pharos.project".to_owned(),
            environment: "pharos.environment".to_owned(),
            service: "pharos.service".to_owned(),
        }
    }
}

/// `containers:` settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainersConfig {
    /// The engine endpoint (`unix:///path`, `tcp://host:port`, `http://host:port`);
    /// `None` disables the collector.
    pub docker_host: Option<String>,
    pub labels: LabelKeys,
    /// Full list of containers, healing any missed event.
    pub resync_interval: Duration,
    /// How often running containers' stats are sampled.
    pub stats_interval: Duration,
    /// Longest wait between reconnection attempts when the engine is down.
    pub max_backoff: Duration,
}

impl Default for ContainersConfig {
    fn default() -> Self {
        ContainersConfig {
            docker_host: None,
            labels: LabelKeys::default(),
            resync_interval: Duration::from_secs(30),
            stats_interval: Duration::from_secs(5),
            max_backoff: Duration::from_secs(5),
        }
    }
}
