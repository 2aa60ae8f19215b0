use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The validated catalog: everything pharosd knows it should be watching.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Catalog {
    pub environments: Vec<Environment>,
    pub projects: Vec<Project>,
    pub deployments: Vec<Deployment>,
    pub ports: Vec<PortAllocation>,
    /// Scrape targets, alert rules and webhooks; read from the file, not stored.
    pub metrics: super::MetricsCatalog,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Environment {
    pub id: String,
    pub name: String,
    pub port_range: Option<PortRange>,
}

/// An inclusive range of ports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortRange {
    pub start: u16,
    pub end: u16,
}

impl PortRange {
    /// How many ports the range holds.
    pub fn size(&self) -> u32 {
        u32::from(self.end) - u32::from(self.start) + 1
    }

    pub fn contains(&self, port: u16) -> bool {
        (self.start..=self.end).contains(&port)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Project {
    pub id: String,
    pub name: String,
    pub project_type: String,
    pub subdomain: String,
    pub description: String,
    /// Environments the project is deployed in, in catalog order.
    pub environments: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deployment {
    pub project_id: String,
    pub environment: String,
    pub checks: Vec<super::CheckSpec>,
    pub container_selector: BTreeMap<String, String>,
    /// How ScaleDeployment creates containers; `None`: the deployment cannot scale up.
    #[serde(default)]
    pub container_template: Option<ContainerTemplate>,
}

/// How a deployment's replicas are created. Replica N (from 1) is labelled
/// `pharos.replica=N`; with a base `port` it gets `PORT=port+N-1` in its environment
/// and the label `pharos.port`, which a rolling restart probes at `health_path`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerTemplate {
    pub image: String,
    pub command: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    pub network: String,
    pub port: Option<u16>,
    pub health_path: Option<String>,
    #[serde(with = "duration_millis")]
    pub ready_timeout: Duration,
}

impl Deployment {
    /// `<project>/<environment>`, the deployment's id everywhere.
    pub fn id(&self) -> String {
        format!("{}/{}", self.project_id, self.environment)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortAllocation {
    pub environment: String,
    pub port: u16,
    pub port_type: PortType,
    pub project_id: String,
    pub service: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PortType {
    Http,
    Https,
    Grpc,
    Metrics,
    Database,
    Tcp,
}

impl PortType {
    pub const NAMES: &'static [&'static str] =
        &["http", "https", "grpc", "metrics", "database", "tcp"];

    pub fn as_str(self) -> &'static str {
        match self {
            PortType::Http => "http",
            PortType::Https => "https",
            PortType::Grpc => "grpc",
            PortType::Metrics => "metrics",
            PortType::Database => "database",
            PortType::Tcp => "tcp",
        }
    }

    pub fn parse(name: &str) -> Option<PortType> {
        Some(match name {
            "http" => PortType::Http,
            "https" => PortType::Https,
            "grpc" => PortType::Grpc,
            "metrics" => PortType::Metrics,
            "database" => PortType::Database,
            "tcp" => PortType::Tcp,
            _ => return None,
        })
    }
}

pub(super) mod duration_millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(value.as_millis() as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        u64::deserialize(deserializer).map(Duration::from_millis)
    }
}
