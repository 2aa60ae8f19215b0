use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What the engine says a container is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContainerState {
    Created,
    Running,
    Paused,
    Restarting,
    Removing,
    Exited,
    Dead,
    Unknown,
}

impl ContainerState {
    pub fn parse(engine_state: &str) -> ContainerState {
        match engine_state.to_ascii_lowercase().as_str() {
            "created" | "configured" | "initialized" => ContainerState::Created,
            "running" => ContainerState::Running,
            "paused" => ContainerState::Paused,
            "restarting" => ContainerState::Restarting,
            "removing" => ContainerState::Removing,
            "exited" | "stopped" | "stopping" => ContainerState::Exited,
            "dead" => ContainerState::Dead,
            _ => ContainerState::Unknown,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ContainerState::Created => "created",
            ContainerState::Running => "running",
            ContainerState::Paused => "paused",
            ContainerState::Restarting => "restarting",
            ContainerState::Removing => "removing",
            ContainerState::Exited => "exited",
            ContainerState::Dead => "dead",
            ContainerState::Unknown => "unknown",
        }
    }
}

/// The engine's own healthcheck verdict, when the image or run declares one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContainerHealth {
    /// No healthcheck declared.
    None,
    Starting,
    Healthy,
    Unhealthy,
}

impl ContainerHealth {
    pub fn parse(status: Option<&str>) -> ContainerHealth {
        match status.map(str::to_ascii_lowercase).as_deref() {
            Some("starting") => ContainerHealth::Starting,
            Some("healthy") => ContainerHealth::Healthy,
            Some("unhealthy") => ContainerHealth::Unhealthy,
            _ => ContainerHealth::None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ContainerHealth::None => "none",
            ContainerHealth::Starting => "starting",
            ContainerHealth::Healthy => "healthy",
            ContainerHealth::Unhealthy => "unhealthy",
        }
    }
}

/// A discovered container, as journaled on the containers topic. Stats are not part of it
/// (they change every sample); they are read from the collector's index.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Container {
    pub id: String,
    pub name: String,
    pub image: String,
    pub labels: BTreeMap<String, String>,
    /// The matched deployment (`project/environment`); `None` for a labelled container
    /// that matches no deployment of the catalog.
    pub deployment_id: Option<String>,
    pub project_id: Option<String>,
    pub environment: Option<String>,
    /// The value of the service label, else the project.
    pub service: String,
    pub state: ContainerState,
    pub health: ContainerHealth,
    /// The engine's status text, such as "Exited (1) 3 seconds ago".
    pub status_text: String,
    pub exit_code: Option<i64>,
    pub created_micros: i64,
    pub started_micros: Option<i64>,
    pub restart_count: u64,
}

impl Container {
    /// Running, and not failing its own healthcheck.
    pub fn is_serving(&self) -> bool {
        self.state == ContainerState::Running && self.health != ContainerHealth::Unhealthy
    }
}

/// The last stats sample of a container.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ContainerStats {
    /// Percent of one CPU over the last sampling interval (200 = two cores busy).
    pub cpu_percent: f64,
    pub memory_used_bytes: u64,
    pub memory_limit_bytes: u64,
    pub at_micros: i64,
}

/// Whether pharosd can reach its container engine, journaled on the containers topic.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineStatus {
    /// The endpoint, such as `unix:///run/podman/podman.sock`; empty when none is configured.
    pub endpoint: String,
    pub state: EngineState,
    /// Engine name and version, such as "Podman Engine 4.3.1 (API 1.41)", once connected.
    pub version: String,
    /// Why it is down.
    pub error: String,
    pub since_micros: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineState {
    /// No engine configured: containers are not collected.
    Disabled,
    Connecting,
    Up,
    Down,
}

impl EngineState {
    pub fn as_str(self) -> &'static str {
        match self {
            EngineState::Disabled => "disabled",
            EngineState::Connecting => "connecting",
            EngineState::Up => "up",
            EngineState::Down => "down",
        }
    }
}
