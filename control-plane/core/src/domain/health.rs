use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Health of a check, deployment, project or environment. Ordered from best to worst, so
/// the aggregate of several is their maximum (with `Unknown` only when nothing is known).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    Healthy,
    Degraded,
    #[default]
    Unknown,
    Unhealthy,
}

impl HealthStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            HealthStatus::Healthy => "healthy",
            HealthStatus::Degraded => "degraded",
            HealthStatus::Unknown => "unknown",
            HealthStatus::Unhealthy => "unhealthy",
        }
    }

    /// Passing runs count towards uptime.
    pub fn is_passing(self) -> bool {
        matches!(self, HealthStatus::Healthy | HealthStatus::Degraded)
    }

    /// The status of a group: the worst known member; unknown only if no member is known.
    pub fn aggregate(statuses: impl IntoIterator<Item = HealthStatus>) -> HealthStatus {
        let worst = statuses
            .into_iter()
            .filter(|status| *status != HealthStatus::Unknown)
            .max();
        worst.unwrap_or(HealthStatus::Unknown)
    }
}

/// One run of a check.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckResult {
    pub check_id: String,
    pub at_micros: i64,
    pub outcome: HealthStatus,
    pub message: String,
    pub connect_micros: Option<i64>,
    pub tls_micros: Option<i64>,
    pub first_byte_micros: Option<i64>,
    pub total_micros: i64,
    pub measurements: BTreeMap<String, f64>,
}

/// The current state of one check, as journaled on the health topic.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckHealth {
    pub check_id: String,
    pub project_id: String,
    pub environment: String,
    pub name: String,
    pub kind: String,
    pub status: HealthStatus,
    /// The status before the change this state was journaled for.
    pub previous_status: Option<HealthStatus>,
    pub flapping: bool,
    pub since_micros: i64,
    pub last_result: Option<CheckResult>,
}

/// The health of a deployment: the aggregate of its checks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentHealth {
    pub deployment_id: String,
    pub project_id: String,
    pub environment: String,
    pub status: HealthStatus,
    pub previous_status: Option<HealthStatus>,
    pub healthy_checks: u32,
    pub degraded_checks: u32,
    pub unhealthy_checks: u32,
    pub unknown_checks: u32,
}

/// A rollup's time resolution: check history is counted per minute, hour and day.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Resolution {
    Minute,
    Hour,
    Day,
}

impl Resolution {
    pub const ALL: [Resolution; 3] = [Resolution::Minute, Resolution::Hour, Resolution::Day];

    pub fn width_micros(self) -> i64 {
        match self {
            Resolution::Minute => 60_000_000,
            Resolution::Hour => 3_600_000_000,
            Resolution::Day => 86_400_000_000,
        }
    }

    /// The start of the bucket holding `at_micros`.
    pub fn bucket(self, at_micros: i64) -> i64 {
        at_micros - at_micros.rem_euclid(self.width_micros())
    }
}

/// `<project>/<environment>/<check name>`.
pub fn check_id(project_id: &str, environment: &str, name: &str) -> String {
    format!("{project_id}/{environment}/{name}")
}

#[cfg(test)]
mod tests {
    use super::HealthStatus::*;
    use super::*;

    #[test]
    fn aggregate_is_the_worst_known_status() {
        assert_eq!(HealthStatus::aggregate([Healthy, Degraded]), Degraded);
        assert_eq!(HealthStatus::aggregate([Healthy, Unknown]), Healthy);
        assert_eq!(
            HealthStatus::aggregate([Unknown, Unhealthy, Healthy]),
            Unhealthy
        );
        assert_eq!(HealthStatus::aggregate([Unknown]), Unknown);
        assert_eq!(HealthStatus::aggregate([]), Unknown);
    }
}
