use std::collections::BTreeSet;

use crate::domain::HealthStatus;
use crate::journal::{JournalEntry, Topic};

/// What a subscriber wants: topics, and optional project and environment filters. A filter
/// passes an entry only when the entry names one of the filter's values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selector {
    pub topics: BTreeSet<Topic>,
    pub projects: BTreeSet<String>,
    pub environments: BTreeSet<String>,
    /// Health objects only: pass those whose status, now or before the change, is one
    /// of these, so a watcher also learns when something leaves the set.
    pub health_statuses: BTreeSet<HealthStatus>,
}

impl Selector {
    /// Every topic, no filters.
    pub fn everything() -> Selector {
        Selector {
            topics: Topic::ALL.into_iter().collect(),
            projects: BTreeSet::new(),
            environments: BTreeSet::new(),
            health_statuses: BTreeSet::new(),
        }
    }

    /// Every change of one topic.
    pub fn topic(topic: Topic) -> Selector {
        Selector {
            topics: [topic].into_iter().collect(),
            ..Selector::everything()
        }
    }

    pub fn matches(&self, entry: &JournalEntry) -> bool {
        if !self.topics.contains(&entry.topic) {
            return false;
        }
        if !self.projects.is_empty()
            && !entry
                .scope
                .project
                .as_ref()
                .is_some_and(|project| self.projects.contains(project))
        {
            return false;
        }
        if !self.environments.is_empty()
            && !entry
                .scope
                .environments
                .iter()
                .any(|env| self.environments.contains(env))
        {
            return false;
        }
        match entry.object.health_statuses() {
            Some((now, before)) if !self.health_statuses.is_empty() => {
                self.health_statuses.contains(&now)
                    || before.is_some_and(|before| self.health_statuses.contains(&before))
            }
            _ => true,
        }
    }

    /// The hub's index keys under which this selector is woken: per topic, and per project
    /// when it filters by project.
    pub fn interests(&self) -> Vec<Interest> {
        let mut interests = Vec::new();
        for &topic in &self.topics {
            if self.projects.is_empty() {
                interests.push((topic, None));
            } else {
                interests.extend(self.projects.iter().map(|p| (topic, Some(p.clone()))));
            }
        }
        interests
    }
}

/// A key of the hub's wake-up index.
pub type Interest = (Topic, Option<String>);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Deployment, Environment};
    use crate::journal::{Change, Object};

    fn entry(object: Object) -> JournalEntry {
        JournalEntry::new(1, 0, Change::upsert(object))
    }

    fn deployment(project: &str, env: &str) -> Object {
        Object::Deployment(Deployment {
            project_id: project.into(),
            environment: env.into(),
            checks: Vec::new(),
            container_selector: Default::default(),
            container_template: None,
        })
    }

    #[test]
    fn filters_need_the_entry_to_name_a_value() {
        let mut selector = Selector::everything();
        selector.projects.insert("api".into());
        assert!(selector.matches(&entry(deployment("api", "prod"))));
        assert!(!selector.matches(&entry(deployment("web", "prod"))));
        let env = Object::Environment(Environment {
            id: "prod".into(),
            name: "Production".into(),
            port_range: None,
        });
        assert!(!selector.matches(&entry(env.clone())));

        let mut by_env = Selector::everything();
        by_env.environments.insert("prod".into());
        assert!(by_env.matches(&entry(env)));
        assert!(by_env.matches(&entry(deployment("web", "prod"))));
        assert!(!by_env.matches(&entry(deployment("web", "dev"))));
    }

    #[test]
    fn topics_restrict_and_index_interests() {
        let mut selector = Selector::everything();
        selector.topics = [Topic::Events].into_iter().collect();
        assert!(!selector.matches(&entry(deployment("api", "prod"))));
        assert_eq!(selector.interests(), vec![(Topic::Events, None)]);
        selector.projects = ["a".to_owned(), "b".to_owned()].into_iter().collect();
        assert_eq!(
            selector.interests(),
            vec![
                (Topic::Events, Some("a".into())),
                (Topic::Events, Some("b".into()))
            ]
        );
    }
}
