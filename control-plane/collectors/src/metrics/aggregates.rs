//! Platform totals for `GetAggregates`: counts pharosd already holds (catalog, health,
//! containers, firing alerts, recent events) and the latest values of every SQL KPI.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use super::kpi::KpiStatuses;
use super::store::{Labels, now_ms};
use crate::catalog::CatalogView;
use crate::containers::{ContainerIndex, ContainerQuery};
use crate::health::engine::SharedHealth;
use pharos_core::domain::{EngineState, Severity};
use pharos_store::events::{EventFilter, EventHistory};

/// Alerts firing now: rule name, severity and since when (ms).
pub type FiringAlerts = Arc<Mutex<BTreeMap<String, (Severity, i64)>>>;

/// One group of totals.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Group {
    pub name: String,
    pub values: Vec<(String, Labels, f64)>,
    pub updated_ms: Option<i64>,
    pub error: Option<String>,
    pub notes: Vec<String>,
    pub project_id: Option<String>,
    pub environment: Option<String>,
}

impl Group {
    fn new(name: &str, updated_ms: i64) -> Group {
        Group {
            name: name.to_owned(),
            updated_ms: Some(updated_ms),
            ..Group::default()
        }
    }

    fn add(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        let labels = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        self.values.push((name.to_owned(), labels, value));
    }
}

/// Where the totals come from.
#[derive(Clone)]
pub struct Aggregates {
    pub view: watch::Receiver<Arc<CatalogView>>,
    pub health: SharedHealth,
    pub containers: Arc<ContainerIndex>,
    pub firing: FiringAlerts,
    pub kpis: KpiStatuses,
    pub events: EventHistory,
}

impl Aggregates {
    pub async fn read(&self) -> Vec<Group> {
        let now = now_ms();
        let mut groups = Vec::new();
        let view = self.view.borrow().clone();

        let mut catalog = Group::new("catalog", now);
        catalog.add("projects", &[], view.catalog.projects.len() as f64);
        catalog.add("environments", &[], view.catalog.environments.len() as f64);
        catalog.add("deployments", &[], view.catalog.deployments.len() as f64);
        groups.push(catalog);

        let mut health = Group::new("health", now);
        {
            let state = self.health.read().unwrap_or_else(|p| p.into_inner());
            let mut deployments: BTreeMap<&str, usize> = BTreeMap::new();
            for (_, status) in crate::health::engine::deployment_statuses(&view, &state) {
                *deployments.entry(status.as_str()).or_default() += 1;
            }
            let mut checks: BTreeMap<&str, usize> = BTreeMap::new();
            for check in state.checks.values() {
                *checks.entry(check.status.as_str()).or_default() += 1;
            }
            for status in ["healthy", "degraded", "unhealthy", "unknown"] {
                let count = |counts: &BTreeMap<&str, usize>| {
                    counts.get(status).copied().unwrap_or(0) as f64
                };
                health.add("deployments", &[("status", status)], count(&deployments));
                health.add("checks", &[("status", status)], count(&checks));
            }
            let flapping = state.checks.values().filter(|c| c.flapping).count();
            health.add("checks_flapping", &[], flapping as f64);
        }
        groups.push(health);

        let engine = self.containers.engine();
        if engine.state != EngineState::Disabled {
            let mut containers = Group::new("containers", now);
            let mut states: BTreeMap<&str, usize> = BTreeMap::new();
            let mut unmatched = 0;
            for (container, _) in self.containers.query(&ContainerQuery::default()) {
                *states.entry(container.state.as_str()).or_default() += 1;
                unmatched += usize::from(container.deployment_id.is_none());
            }
            for (state, count) in states {
                containers.add("containers", &[("state", state)], count as f64);
            }
            containers.add("containers_unmatched", &[], unmatched as f64);
            if engine.state != EngineState::Up {
                containers.error = Some(format!(
                    "container engine is {}: {}",
                    engine.state.as_str(),
                    engine.error
                ));
            }
            groups.push(containers);
        }

        let mut alerts = Group::new("alerts", now);
        {
            let firing = self.firing.lock().unwrap_or_else(|p| p.into_inner());
            let mut by_severity: BTreeMap<&str, usize> = BTreeMap::new();
            for (severity, _) in firing.values() {
                *by_severity.entry(severity.as_str()).or_default() += 1;
            }
            alerts.add("alerts_firing", &[], firing.len() as f64);
            for (severity, count) in by_severity {
                alerts.add("alerts_firing", &[("severity", severity)], count as f64);
            }
        }
        groups.push(alerts);

        let mut events = Group::new("events", now);
        match self.events.counts(&EventFilter::default()).await {
            Ok((counts, capped)) => {
                for (kind, count) in &counts {
                    events.add(
                        "events",
                        &[("kind", kind), ("window", "1h")],
                        count.last_hour as f64,
                    );
                    events.add(
                        "events",
                        &[("kind", kind), ("window", "24h")],
                        count.last_day as f64,
                    );
                }
                if capped {
                    events.notes.push(
                        "more events than one scan reads; the counts cover the newest".to_owned(),
                    );
                }
            }
            Err(err) => events.error = Some(format!("the event history did not answer: {err}")),
        }
        groups.push(events);

        let kpis = self.kpis.lock().unwrap_or_else(|p| p.into_inner()).clone();
        for kpi in view.catalog.metrics.kpis.iter() {
            let mut group = Group {
                name: format!("kpi:{}", kpi.name),
                project_id: kpi.project_id.clone(),
                environment: kpi.environment.clone(),
                ..Group::default()
            };
            match kpis.get(&kpi.name) {
                Some(status) => {
                    group.values = status
                        .values
                        .iter()
                        .map(|v| (v.name.clone(), v.labels.clone(), v.value))
                        .collect();
                    group.updated_ms = status.last_success_ms;
                    group.error = status.last_error.clone();
                    group.notes = status.notes.clone();
                }
                None => group.notes.push("not run yet".to_owned()),
            }
            groups.push(group);
        }
        groups
    }
}
