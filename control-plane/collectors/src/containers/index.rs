//! The containers collector's state in memory: every tracked container, its latest stats
//! sample and the engine's status. Readers take a copy; nothing holds the lock across an
//! `.await`.

use std::collections::{BTreeMap, HashMap};
use std::sync::RwLock;

use tokio::sync::watch;

use pharos_core::domain::{Container, ContainerState, ContainerStats, EngineState, EngineStatus};

/// Stats summed over the containers of one service of one deployment.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ServiceStats {
    pub deployment_id: String,
    pub project_id: String,
    pub environment: String,
    pub service: String,
    pub containers: u32,
    pub running: u32,
    pub cpu_percent: f64,
    pub memory_used_bytes: u64,
    pub memory_limit_bytes: u64,
    pub restart_count: u64,
}

/// Filters for [`ContainerIndex::query`]; every filter that is set must match.
#[derive(Clone, Debug, Default)]
pub struct ContainerQuery {
    pub projects: Vec<String>,
    pub environments: Vec<String>,
    pub deployment_id: Option<String>,
    pub states: Vec<ContainerState>,
    pub unmatched_only: bool,
    pub labels: BTreeMap<String, String>,
}

impl ContainerQuery {
    fn matches(&self, c: &Container) -> bool {
        let within = |wanted: &[String], value: &Option<String>| {
            wanted.is_empty() || value.as_ref().is_some_and(|v| wanted.contains(v))
        };
        within(&self.projects, &c.project_id)
            && within(&self.environments, &c.environment)
            && self
                .deployment_id
                .as_ref()
                .is_none_or(|id| c.deployment_id.as_ref() == Some(id))
            && (self.states.is_empty() || self.states.contains(&c.state))
            && (!self.unmatched_only || c.deployment_id.is_none())
            && self
                .labels
                .iter()
                .all(|(key, value)| c.labels.get(key) == Some(value))
    }
}

#[derive(Debug)]
struct State {
    engine: EngineStatus,
    containers: BTreeMap<String, Container>,
    stats: HashMap<String, ContainerStats>,
}

/// The collector's shared state. `changes()` wakes whoever follows container state (the
/// health engine's container checks) after every change of a container or the engine.
#[derive(Debug)]
pub struct ContainerIndex {
    state: RwLock<State>,
    generation: watch::Sender<u64>,
}

impl ContainerIndex {
    pub fn new(engine: EngineStatus) -> ContainerIndex {
        ContainerIndex {
            state: RwLock::new(State {
                engine,
                containers: BTreeMap::new(),
                stats: HashMap::new(),
            }),
            generation: watch::Sender::new(0),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|p| p.into_inner())
    }

    fn bump(&self) {
        self.generation.send_modify(|g| *g += 1);
    }

    /// A receiver that sees a new value after every change.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.generation.subscribe()
    }

    pub fn engine(&self) -> EngineStatus {
        self.read().engine.clone()
    }

    pub fn engine_up(&self) -> bool {
        self.read().engine.state == EngineState::Up
    }

    pub fn get(&self, id: &str) -> Option<Container> {
        self.read().containers.get(id).cloned()
    }

    /// A tracked container by id, id prefix (12 characters or more) or name.
    pub fn find(&self, key: &str) -> Option<Container> {
        let state = self.read();
        if let Some(found) = state.containers.get(key) {
            return Some(found.clone());
        }
        let mut matches = state
            .containers
            .values()
            .filter(|c| c.name == key || (key.len() >= 12 && c.id.starts_with(key)));
        let found = matches.next()?;
        matches.next().is_none().then(|| found.clone())
    }

    /// Containers that match, sorted by deployment then name, with their latest stats.
    pub fn query(&self, query: &ContainerQuery) -> Vec<(Container, Option<ContainerStats>)> {
        let state = self.read();
        let mut found: Vec<(Container, Option<ContainerStats>)> = state
            .containers
            .values()
            .filter(|c| query.matches(c))
            .map(|c| (c.clone(), state.stats.get(&c.id).copied()))
            .collect();
        found.sort_by(|(a, _), (b, _)| {
            (&a.deployment_id, &a.name, &a.id).cmp(&(&b.deployment_id, &b.name, &b.id))
        });
        found
    }

    /// Containers of one deployment.
    pub fn of_deployment(&self, deployment_id: &str) -> Vec<Container> {
        self.read()
            .containers
            .values()
            .filter(|c| c.deployment_id.as_deref() == Some(deployment_id))
            .cloned()
            .collect()
    }

    /// Ids of running containers, for the stats sampler.
    pub fn running_ids(&self) -> Vec<String> {
        self.read()
            .containers
            .values()
            .filter(|c| c.state == ContainerState::Running)
            .map(|c| c.id.clone())
            .collect()
    }

    pub fn stats(&self, id: &str) -> Option<ContainerStats> {
        self.read().stats.get(id).copied()
    }

    /// Stats summed per deployment and service (matched containers only), sorted.
    pub fn service_stats(&self) -> Vec<ServiceStats> {
        let state = self.read();
        let mut sums: BTreeMap<(String, String), ServiceStats> = BTreeMap::new();
        for c in state.containers.values() {
            let Some(deployment_id) = &c.deployment_id else {
                continue;
            };
            let entry = sums
                .entry((deployment_id.clone(), c.service.clone()))
                .or_insert_with(|| ServiceStats {
                    deployment_id: deployment_id.clone(),
                    project_id: c.project_id.clone().unwrap_or_default(),
                    environment: c.environment.clone().unwrap_or_default(),
                    service: c.service.clone(),
                    ..Default::default()
                });
            entry.containers += 1;
            entry.restart_count += c.restart_count;
            if c.state == ContainerState::Running {
                entry.running += 1;
                if let Some(stats) = state.stats.get(&c.id) {
                    entry.cpu_percent += stats.cpu_percent;
                    entry.memory_used_bytes += stats.memory_used_bytes;
                    entry.memory_limit_bytes += stats.memory_limit_bytes;
                }
            }
        }
        sums.into_values().collect()
    }

    /// Records a container; returns whether anything journaled about it changed.
    pub(crate) fn upsert(&self, container: Container) -> bool {
        let changed = {
            let mut state = self.write();
            if container.state != ContainerState::Running {
                state.stats.remove(&container.id);
            }
            let previous = state
                .containers
                .insert(container.id.clone(), container.clone());
            previous.as_ref() != Some(&container)
        };
        if changed {
            self.bump();
        }
        changed
    }

    /// Forgets a container; returns its last state if it was known.
    pub(crate) fn remove(&self, id: &str) -> Option<Container> {
        let removed = {
            let mut state = self.write();
            state.stats.remove(id);
            state.containers.remove(id)
        };
        if removed.is_some() {
            self.bump();
        }
        removed
    }

    pub(crate) fn ids(&self) -> Vec<String> {
        self.read().containers.keys().cloned().collect()
    }

    /// Records a stats sample of a container that is still known.
    pub(crate) fn set_stats(&self, id: &str, stats: ContainerStats) {
        let mut state = self.write();
        if state.containers.contains_key(id) {
            state.stats.insert(id.to_owned(), stats);
        }
    }

    /// Sets the engine's status; returns whether it changed (besides its time).
    pub(crate) fn set_engine(&self, engine: EngineStatus) -> bool {
        let changed = {
            let mut state = self.write();
            let same = EngineStatus {
                since_micros: state.engine.since_micros,
                ..engine.clone()
            } == state.engine;
            if !same {
                state.engine = engine;
            }
            !same
        };
        if changed {
            self.bump();
        }
        changed
    }
}
