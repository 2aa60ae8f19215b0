//! Which deployment a container belongs to.

use std::collections::BTreeMap;

use super::LabelKeys;
use crate::catalog::CatalogView;

/// Placement of a container in the catalog.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    pub deployment_id: Option<String>,
    pub project_id: Option<String>,
    pub environment: Option<String>,
    pub service: String,
}

/// Matches labels to deployments. A deployment with a `containers:` selector takes the
/// containers whose labels include every pair of the selector; a deployment without one
/// takes the containers labelled with its project and environment under the configured
/// keys. The first deployment in catalog order wins.
#[derive(Clone, Debug, Default)]
pub struct Matcher {
    keys: LabelKeys,
    /// (deployment id, project, environment, selector)
    rules: Vec<(String, String, String, BTreeMap<String, String>)>,
}

impl Matcher {
    pub fn new(view: &CatalogView, keys: &LabelKeys) -> Matcher {
        let rules = view
            .catalog
            .deployments
            .iter()
            .map(|d| {
                let selector = if d.container_selector.is_empty() {
                    BTreeMap::from([
                        (keys.project.clone(), d.project_id.clone()),
                        (keys.environment.clone(), d.environment.clone()),
                    ])
                } else {
                    d.container_selector.clone()
                };
                (
                    d.id(),
                    d.project_id.clone(),
                    d.environment.clone(),
                    selector,
                )
            })
            .collect();
        Matcher {
            keys: keys.clone(),
            rules,
        }
    }

    /// Whether pharosd tracks a container with these labels at all: it matches a
    /// deployment or carries one of the configured keys (then it is reported unmatched).
    pub fn tracks(&self, labels: &BTreeMap<String, String>) -> bool {
        labels.contains_key(&self.keys.project)
            || labels.contains_key(&self.keys.environment)
            || labels.contains_key(&self.keys.service)
            || self.find(labels).is_some()
    }

    fn find(
        &self,
        labels: &BTreeMap<String, String>,
    ) -> Option<&(String, String, String, BTreeMap<String, String>)> {
        self.rules.iter().find(|(_, _, _, selector)| {
            selector
                .iter()
                .all(|(key, value)| labels.get(key) == Some(value))
        })
    }

    pub fn place(&self, labels: &BTreeMap<String, String>) -> Placement {
        let service_label = labels.get(&self.keys.service).cloned();
        match self.find(labels) {
            Some((id, project, environment, _)) => Placement {
                deployment_id: Some(id.clone()),
                project_id: Some(project.clone()),
                environment: Some(environment.clone()),
                service: service_label.unwrap_or_else(|| project.clone()),
            },
            None => Placement {
                deployment_id: None,
                project_id: labels.get(&self.keys.project).cloned(),
                environment: labels.get(&self.keys.environment).cloned(),
                service: service_label
                    .or_else(|| labels.get(&self.keys.project).cloned())
                    .unwrap_or_default(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pharos_core::domain::{Catalog, Deployment};

    fn view() -> CatalogView {
        let deployment = |project: &str, env: &str, selector: &[(&str, &str)]| Deployment {
            project_id: project.into(),
            environment: env.into(),
            checks: vec![],
            container_selector: selector
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            container_template: None,
        };
        CatalogView::new(
            Catalog {
                deployments: vec![
                    deployment("api", "prod", &[("app", "api"), ("tier", "prod")]),
                    deployment("web", "prod", &[]),
                ],
                ..Default::default()
            },
            1,
        )
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn selector_then_label_keys_then_unmatched() {
        let matcher = Matcher::new(&view(), &LabelKeys::default());
        let api = matcher.place(&labels(&[("app", "api"), ("tier", "prod"), ("x", "y")]));
        assert_eq!(api.deployment_id.as_deref(), Some("api/prod"));
        assert_eq!(api.service, "api");

        let web = labels(&[
            ("pharos.project", "web"),
            ("pharos.environment", "prod"),
            ("pharos.service", "frontend"),
        ]);
        let placed = matcher.place(&web);
        assert_eq!(placed.deployment_id.as_deref(), Some("web/prod"));
        assert_eq!(placed.service, "frontend");

        let stray = labels(&[("pharos.project", "ghost"), ("pharos.environment", "prod")]);
        assert!(matcher.tracks(&stray));
        let placed = matcher.place(&stray);
        assert_eq!(placed.deployment_id, None);
        assert_eq!(placed.project_id.as_deref(), Some("ghost"));

        assert!(!matcher.tracks(&labels(&[("app", "api")])));
    }
}
