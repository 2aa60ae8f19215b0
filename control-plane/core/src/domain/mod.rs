//! Domain types of the catalog and the journal. No prost, no SeaORM: the gRPC adapters
//! and the storage layer convert to and from these.

mod catalog;
mod check;
mod event;
mod health;
mod metrics;

pub use catalog::{
    Catalog, ContainerTemplate, Deployment, Environment, PortAllocation, PortRange, PortType,
    Project,
};
pub use check::{
    AddressCheck, CheckKind, CheckSpec, ContainerCheck, GrpcCheck, HeartbeatCheck, HttpCheck,
    JsonCondition, PostgresCheck, RedisCheck, default_healthy_after, default_unhealthy_after,
};
pub use event::{Event, Severity};
pub use health::{CheckHealth, CheckResult, DeploymentHealth, HealthStatus, Resolution, check_id};
mod container;
pub use container::{
    Container, ContainerHealth, ContainerState, ContainerStats, EngineState, EngineStatus,
};
mod operation;
pub use metrics::{
    AlertCondition, AlertRule, Alertmanager, AnomalyDetector, AnomalyMethod, Comparison, Kpi,
    MetricsCatalog, PrometheusBackend, ScrapeTarget, Webhook, valid_metric_name,
};
pub use operation::{Operation, OperationKind, OperationState, OperationStep, StepState};
