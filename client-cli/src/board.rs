//! The latest health of every check and deployment, kept from one Watch stream: the state
//! behind `pharos health -w` and the grid of `pharos top`.

use std::collections::BTreeMap;

use pharos_proto::v1 as pb;

use crate::resume::WatchEvent;

#[derive(Debug, Default)]
pub struct HealthBoard {
    /// By journal key (`check/<project>/<env>/<name>`), so deletions find their entry.
    pub checks: BTreeMap<String, pb::CheckHealth>,
    pub deployments: BTreeMap<String, pb::DeploymentHealth>,
    /// Revision up to which everything has been applied.
    pub revision: u64,
    /// The first snapshot has been fully received.
    pub synced: bool,
}

impl HealthBoard {
    /// Applies one event; true when what is shown may have changed.
    pub fn apply(&mut self, event: WatchEvent) -> bool {
        match event {
            WatchEvent::Reset => {
                self.checks.clear();
                self.deployments.clear();
                self.synced = false;
                true
            }
            WatchEvent::Synced(revision) | WatchEvent::Progress(revision) => {
                let first = !self.synced;
                self.synced = true;
                self.revision = revision;
                first
            }
            WatchEvent::Metrics => false,
            WatchEvent::Change(change) => {
                self.revision = self.revision.max(change.revision);
                self.apply_change(*change);
                true
            }
        }
    }

    fn apply_change(&mut self, change: pb::Change) {
        use pb::change::Object;
        if change.kind == pb::ChangeKind::Delete as i32 {
            self.checks.remove(&change.key);
            self.deployments.remove(&change.key);
            return;
        }
        match change.object {
            Some(Object::CheckHealth(check)) => {
                self.checks.insert(change.key, check);
            }
            Some(Object::DeploymentHealth(deployment)) => {
                self.deployments.insert(change.key, deployment);
            }
            _ => {}
        }
    }

    /// Checks by status: healthy, degraded, unhealthy, unknown.
    pub fn counts(&self) -> [usize; 4] {
        let mut counts = [0; 4];
        for check in self.checks.values() {
            let slot = match pb::HealthStatus::try_from(check.status) {
                Ok(pb::HealthStatus::Healthy) => 0,
                Ok(pb::HealthStatus::Degraded) => 1,
                Ok(pb::HealthStatus::Unhealthy) => 2,
                _ => 3,
            };
            counts[slot] += 1;
        }
        counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(revision: u64, kind: pb::ChangeKind, key: &str, status: Option<i32>) -> WatchEvent {
        WatchEvent::Change(Box::new(pb::Change {
            revision,
            topic: pb::WatchTopic::Health as i32,
            kind: kind as i32,
            key: key.to_owned(),
            commit_time: None,
            object: status.map(|status| {
                pb::change::Object::CheckHealth(pb::CheckHealth {
                    check_id: key.trim_start_matches("check/").to_owned(),
                    status,
                    ..Default::default()
                })
            }),
        }))
    }

    #[test]
    fn applies_snapshot_changes_deletions_and_resets() {
        let mut board = HealthBoard::default();
        let healthy = Some(pb::HealthStatus::Healthy as i32);
        let unhealthy = Some(pb::HealthStatus::Unhealthy as i32);
        board.apply(WatchEvent::Reset);
        board.apply(change(3, pb::ChangeKind::Snapshot, "check/a/p/x", healthy));
        board.apply(change(5, pb::ChangeKind::Snapshot, "check/a/p/y", healthy));
        assert!(board.apply(WatchEvent::Synced(7)));
        assert_eq!(board.counts(), [2, 0, 0, 0]);
        board.apply(change(8, pb::ChangeKind::Upsert, "check/a/p/x", unhealthy));
        board.apply(change(9, pb::ChangeKind::Delete, "check/a/p/y", None));
        assert_eq!(board.counts(), [0, 0, 1, 0]);
        assert_eq!(board.revision, 9);
        board.apply(WatchEvent::Reset);
        assert!(board.checks.is_empty() && !board.synced);
    }
}
