//! The journal's entries: one ordered log of every change a client may want to see live,
//! each with a global, strictly increasing revision. The store keeps them, one batching
//! writer appends them, and the watch hub fans them out.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::domain::{
    CheckHealth, Deployment, DeploymentHealth, Environment, Event, HealthStatus, PortAllocation,
    Project,
};
use crate::domain::{Container, EngineStatus, Operation};

/// A family of journaled changes; clients subscribe to topics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Topic {
    Catalog,
    Events,
    Health,
    /// Discovered containers and the container engine's status.
    Containers,
    /// Operations (actions on deployments) at every change of their state.
    Operations,
    /// Live metric batches for the series a subscriber selects; never journaled.
    Metrics,
}

impl Topic {
    pub const ALL: [Topic; 6] = [
        Topic::Catalog,
        Topic::Events,
        Topic::Health,
        Topic::Containers,
        Topic::Operations,
        Topic::Metrics,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Topic::Catalog => "catalog",
            Topic::Events => "events",
            Topic::Health => "health",
            Topic::Containers => "containers",
            Topic::Operations => "operations",
            Topic::Metrics => "metrics",
        }
    }

    pub fn parse(name: &str) -> Option<Topic> {
        Topic::ALL.into_iter().find(|topic| topic.as_str() == name)
    }
}

/// What a change does to its key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Created or updated: the object is the new state.
    Upsert,
    /// Removed: the object is the last state.
    Delete,
    /// An entry of a feed (events): never part of a snapshot.
    Append,
}

impl Op {
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Upsert => "upsert",
            Op::Delete => "delete",
            Op::Append => "append",
        }
    }

    pub fn parse(name: &str) -> Option<Op> {
        [Op::Upsert, Op::Delete, Op::Append]
            .into_iter()
            .find(|op| op.as_str() == name)
    }
}

/// The object a change carries.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "snake_case")]
pub enum Object {
    Environment(Environment),
    Project(Project),
    Deployment(Deployment),
    PortAllocation(PortAllocation),
    Event(Event),
    CheckHealth(CheckHealth),
    DeploymentHealth(DeploymentHealth),
    Container(Container),
    ContainerEngine(EngineStatus),
    Operation(Operation),
}

impl Object {
    pub fn topic(&self) -> Topic {
        match self {
            Object::Event(_) => Topic::Events,
            Object::CheckHealth(_) | Object::DeploymentHealth(_) => Topic::Health,
            Object::Container(_) | Object::ContainerEngine(_) => Topic::Containers,
            Object::Operation(_) => Topic::Operations,
            _ => Topic::Catalog,
        }
    }

    /// Unique within the topic.
    pub fn key(&self) -> String {
        match self {
            Object::Environment(env) => format!("environment/{}", env.id),
            Object::Project(project) => format!("project/{}", project.id),
            Object::Deployment(deployment) => format!("deployment/{}", deployment.id()),
            Object::PortAllocation(port) => format!("port/{}/{}", port.environment, port.port),
            Object::Event(event) => format!("event/{}", event.id),
            Object::CheckHealth(check) => format!("check/{}", check.check_id),
            Object::DeploymentHealth(health) => {
                format!("deployment-health/{}", health.deployment_id)
            }
            Object::Container(container) => format!("container/{}", container.id),
            Object::ContainerEngine(_) => "engine".to_owned(),
            Object::Operation(operation) => format!("operation/{}", operation.id),
        }
    }

    /// The project and environments the object concerns, for subscriber filters.
    pub fn scope(&self) -> Scope {
        match self {
            Object::Environment(env) => Scope {
                project: None,
                environments: vec![env.id.clone()],
            },
            Object::Project(project) => Scope {
                project: Some(project.id.clone()),
                environments: project.environments.clone(),
            },
            Object::Deployment(deployment) => Scope {
                project: Some(deployment.project_id.clone()),
                environments: vec![deployment.environment.clone()],
            },
            Object::PortAllocation(port) => Scope {
                project: Some(port.project_id.clone()),
                environments: vec![port.environment.clone()],
            },
            Object::Event(event) => Scope {
                project: event.project_id.clone(),
                environments: event.environment.iter().cloned().collect(),
            },
            Object::CheckHealth(check) => Scope {
                project: Some(check.project_id.clone()),
                environments: vec![check.environment.clone()],
            },
            Object::DeploymentHealth(health) => Scope {
                project: Some(health.project_id.clone()),
                environments: vec![health.environment.clone()],
            },
            Object::Container(container) => Scope {
                project: container.project_id.clone(),
                environments: container.environment.iter().cloned().collect(),
            },
            Object::ContainerEngine(_) => Scope::default(),
            Object::Operation(operation) => Scope {
                project: Some(operation.project_id.clone()),
                environments: vec![operation.environment.clone()],
            },
        }
    }

    /// For health objects: the status now and the status before this change.
    pub fn health_statuses(&self) -> Option<(HealthStatus, Option<HealthStatus>)> {
        match self {
            Object::CheckHealth(check) => Some((check.status, check.previous_status)),
            Object::DeploymentHealth(health) => Some((health.status, health.previous_status)),
            _ => None,
        }
    }
}

/// The project and environments a journal entry concerns. A filter on a dimension only
/// passes entries that name one of the filter's values in that dimension.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Scope {
    pub project: Option<String>,
    pub environments: Vec<String>,
}

/// A change to be journaled; the writer gives it a revision.
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    pub op: Op,
    pub object: Object,
}

impl Change {
    pub fn upsert(object: Object) -> Change {
        Change {
            op: Op::Upsert,
            object,
        }
    }

    pub fn delete(object: Object) -> Change {
        Change {
            op: Op::Delete,
            object,
        }
    }

    pub fn append(event: Event) -> Change {
        Change {
            op: Op::Append,
            object: Object::Event(event),
        }
    }
}

/// A committed change.
#[derive(Clone, Debug, PartialEq)]
pub struct JournalEntry {
    pub revision: u64,
    pub topic: Topic,
    pub op: Op,
    pub key: String,
    pub scope: Scope,
    /// Commit time, microseconds since the Unix epoch.
    pub committed_at_micros: i64,
    pub object: Object,
}

impl JournalEntry {
    pub fn new(revision: u64, committed_at_micros: i64, change: Change) -> JournalEntry {
        JournalEntry {
            revision,
            topic: change.object.topic(),
            op: change.op,
            key: change.object.key(),
            scope: change.object.scope(),
            committed_at_micros,
            object: change.object,
        }
    }
}

pub fn now_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_micros() as i64)
        .unwrap_or_default()
}
