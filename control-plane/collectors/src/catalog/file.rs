//! The catalog file as written: serde structs that reject unknown fields. `validate`
//! turns them into the domain [`Catalog`](pharos_core::domain::Catalog).

use std::collections::BTreeMap;

use pharos_core::domain::{
    AddressCheck, ContainerCheck, GrpcCheck, HeartbeatCheck, HttpCheck, PostgresCheck, RedisCheck,
};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogFile {
    #[serde(default)]
    pub environments: Vec<EnvironmentFile>,
    #[serde(default)]
    pub projects: Vec<ProjectFile>,
    #[serde(default)]
    pub scrape_targets: Vec<crate::metrics::catalog::ScrapeTargetFile>,
    #[serde(default)]
    pub alert_rules: Vec<crate::metrics::catalog::AlertRuleFile>,
    #[serde(default)]
    pub webhooks: Vec<crate::metrics::catalog::WebhookFile>,
    #[serde(default)]
    pub alertmanagers: Vec<crate::metrics::catalog::AlertmanagerFile>,
    #[serde(default)]
    pub kpis: Vec<crate::metrics::catalog::KpiFile>,
    #[serde(default)]
    pub anomaly_detectors: Vec<crate::metrics::catalog::AnomalyDetectorFile>,
    #[serde(default)]
    pub prometheus_backends: Vec<crate::metrics::catalog::PrometheusBackendFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvironmentFile {
    pub id: String,
    pub name: Option<String>,
    /// `START-END`, inclusive.
    pub port_range: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectFile {
    pub id: String,
    pub name: Option<String>,
    #[serde(rename = "type", default = "default_project_type")]
    pub project_type: String,
    #[serde(default)]
    pub subdomain: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub deployments: Vec<DeploymentFile>,
}

fn default_project_type() -> String {
    "service".to_owned()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeploymentFile {
    pub environment: String,
    #[serde(default)]
    pub ports: Vec<PortFile>,
    #[serde(default)]
    pub checks: Vec<CheckFile>,
    /// Container labels that select this deployment's containers.
    #[serde(default)]
    pub containers: BTreeMap<String, String>,
    /// How ScaleDeployment creates this deployment's containers.
    pub template: Option<ContainerTemplateFile>,
}

/// A deployment's container template, for scaling.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContainerTemplateFile {
    pub image: String,
    #[serde(default)]
    pub command: Vec<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Extra labels; the deployment's selector labels are always added.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Container network mode (default `host`).
    pub network: Option<String>,
    /// Base port: replica N listens on `port + N - 1`, given to it as `PORT`.
    pub port: Option<u16>,
    /// HTTP path a rolling restart checks on the replica's port before the next one.
    pub health_path: Option<String>,
    /// How long a rolling restart waits for a replica to be ready (default 30s).
    pub ready_timeout: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortFile {
    pub port: u16,
    #[serde(rename = "type")]
    pub port_type: String,
    pub service: String,
}

/// One check: common settings plus exactly one kind. A kind's settings deserialize
/// straight into the domain's struct for it, the one the probes build from.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckFile {
    pub name: String,
    /// Such as `30s` or `500ms`.
    pub interval: Option<String>,
    pub timeout: Option<String>,
    /// Consecutive failing runs before the check turns unhealthy (default 3).
    pub unhealthy_after: Option<u32>,
    /// Consecutive passing runs before an unhealthy check turns healthy (default 1).
    pub healthy_after: Option<u32>,
    pub http: Option<HttpCheck>,
    pub tcp: Option<AddressCheck>,
    pub grpc: Option<GrpcCheck>,
    pub postgres: Option<PostgresCheck>,
    pub redis: Option<RedisCheck>,
    pub mqtt: Option<AddressCheck>,
    pub heartbeat: Option<HeartbeatCheck>,
    pub container: Option<ContainerCheck>,
}
