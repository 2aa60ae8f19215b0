//! The running catalog in memory, with the totals that `GetOverview` serves. Replaced as a
//! whole on every sync, so readers never see a half-applied catalog.

use std::collections::BTreeMap;

use pharos_core::domain::{Catalog, Deployment, PortAllocation, Project};

#[derive(Clone, Debug, Default, PartialEq)]
pub struct CatalogView {
    pub catalog: Catalog,
    /// The journal revision this catalog was committed at.
    pub revision: u64,
    pub overview: Overview,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Overview {
    pub projects: u32,
    pub deployments: u32,
    pub healthy: u32,
    pub degraded: u32,
    pub unhealthy: u32,
    pub unknown: u32,
    pub ports_allocated: u32,
    pub ports_available: u32,
    pub environments: Vec<EnvironmentTotals>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EnvironmentTotals {
    pub id: String,
    pub name: String,
    pub deployments: u32,
    pub ports_allocated: u32,
    pub ports_available: u32,
}

/// A page of results and the key to continue after, if any.
pub struct Page<'a, T> {
    pub items: Vec<&'a T>,
    pub next_after: Option<String>,
    pub total: usize,
}

impl CatalogView {
    pub fn new(mut catalog: Catalog, revision: u64) -> CatalogView {
        catalog.projects.sort_by(|a, b| a.id.cmp(&b.id));
        catalog
            .ports
            .sort_by(|a, b| (&a.environment, a.port).cmp(&(&b.environment, b.port)));
        let overview = overview(&catalog);
        CatalogView {
            catalog,
            revision,
            overview,
        }
    }

    pub fn project(&self, id: &str) -> Option<(&Project, Vec<&Deployment>)> {
        let project = self.catalog.projects.iter().find(|p| p.id == id)?;
        let deployments = self
            .catalog
            .deployments
            .iter()
            .filter(|d| d.project_id == id)
            .collect();
        Some((project, deployments))
    }

    pub fn ports_of(&self, project_id: &str, environment: &str) -> Vec<&PortAllocation> {
        self.catalog
            .ports
            .iter()
            .filter(|p| p.project_id == project_id && p.environment == environment)
            .collect()
    }

    pub fn has_environment(&self, id: &str) -> bool {
        self.catalog.environments.iter().any(|env| env.id == id)
    }

    /// Projects ordered by id, after the project `after`, optionally only those deployed
    /// in `environment`.
    pub fn projects_page(
        &self,
        environment: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Page<'_, Project> {
        let matching: Vec<&Project> = self
            .catalog
            .projects
            .iter()
            .filter(|p| environment.is_empty() || p.environments.iter().any(|e| e == environment))
            .collect();
        page(matching, after, limit, |p| p.id.clone())
    }

    /// Port allocations ordered by environment and port.
    pub fn ports_page(
        &self,
        environment: &str,
        project_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Page<'_, PortAllocation> {
        let matching: Vec<&PortAllocation> = self
            .catalog
            .ports
            .iter()
            .filter(|p| environment.is_empty() || p.environment == environment)
            .filter(|p| project_id.is_empty() || p.project_id == project_id)
            .collect();
        page(matching, after, limit, port_key)
    }
}

fn port_key(port: &PortAllocation) -> String {
    // A space sorts below every id character and the port is zero-padded, so string
    // order is (environment, port) order.
    format!("{} {:05}", port.environment, port.port)
}

fn page<'a, T>(
    matching: Vec<&'a T>,
    after: Option<&str>,
    limit: usize,
    key: impl Fn(&T) -> String,
) -> Page<'a, T> {
    let total = matching.len();
    let start = match after {
        Some(after) => matching.partition_point(|item| key(item).as_str() <= after),
        None => 0,
    };
    let items: Vec<&T> = matching.into_iter().skip(start).take(limit).collect();
    let next_after = (start + items.len() < total)
        .then(|| items.last().map(|item| key(item)))
        .flatten();
    Page {
        items,
        next_after,
        total,
    }
}

fn overview(catalog: &Catalog) -> Overview {
    let mut per_env: BTreeMap<&str, (u32, u32)> = BTreeMap::new();
    for deployment in &catalog.deployments {
        per_env.entry(&deployment.environment).or_default().0 += 1;
    }
    for port in &catalog.ports {
        per_env.entry(&port.environment).or_default().1 += 1;
    }
    let environments: Vec<EnvironmentTotals> = catalog
        .environments
        .iter()
        .map(|env| {
            let (deployments, ports_allocated) =
                per_env.get(env.id.as_str()).copied().unwrap_or_default();
            EnvironmentTotals {
                id: env.id.clone(),
                name: env.name.clone(),
                deployments,
                ports_allocated,
                ports_available: env
                    .port_range
                    .map_or(0, |range| range.size().saturating_sub(ports_allocated)),
            }
        })
        .collect();
    let deployments = catalog.deployments.len() as u32;
    Overview {
        projects: catalog.projects.len() as u32,
        deployments,
        // Health counts are filled in per request from the health engine's state.
        healthy: 0,
        degraded: 0,
        unhealthy: 0,
        unknown: deployments,
        ports_allocated: catalog.ports.len() as u32,
        ports_available: environments.iter().map(|env| env.ports_available).sum(),
        environments,
    }
}
