//! The steps an operation takes, decided when it is admitted (and all a dry run does).

use crate::containers::ContainerIndex;
use pharos_core::domain::{Container, ContainerState, Deployment, OperationKind, OperationStep};

use super::{ActionError, ActionRequest};

/// Label of a replica's number, on containers created by a scale.
pub const REPLICA_LABEL: &str = "pharos.replica";
/// Label of a replica's port, when the template has a base port.
pub const PORT_LABEL: &str = "pharos.port";

pub fn steps(
    request: &ActionRequest,
    deployment: &Deployment,
    index: &ContainerIndex,
) -> Result<Vec<OperationStep>, ActionError> {
    let mut containers = index.of_deployment(&request.deployment_id);
    containers.sort_by(|a, b| (a.created_micros, &a.name).cmp(&(b.created_micros, &b.name)));
    let step = |verb: &str, c: &Container| {
        OperationStep::new(format!("{verb} {}", c.name), Some(c.id.clone()))
    };
    Ok(match request.kind {
        OperationKind::Restart => containers.iter().map(|c| step("restart", c)).collect(),
        OperationKind::Stop => containers
            .iter()
            .filter(|c| {
                matches!(
                    c.state,
                    ContainerState::Running | ContainerState::Restarting | ContainerState::Paused
                )
            })
            .map(|c| step("stop", c))
            .collect(),
        OperationKind::Start => containers
            .iter()
            .filter(|c| {
                !matches!(
                    c.state,
                    ContainerState::Running | ContainerState::Restarting
                )
            })
            .map(|c| step("start", c))
            .collect(),
        OperationKind::RolloutRestart => containers
            .iter()
            .map(|c| step("restart and wait until ready:", c))
            .collect(),
        OperationKind::Scale => {
            let wanted = request.replicas.unwrap_or_default() as usize;
            if wanted >= containers.len() {
                let missing = wanted - containers.len();
                if missing > 0 && deployment.container_template.is_none() {
                    return Err(ActionError::FailedPrecondition(format!(
                        "deployment {} has no container template to create replicas from; add `template:` (image, command, env, labels) to it in the catalog",
                        request.deployment_id
                    )));
                }
                let used: Vec<u32> = containers
                    .iter()
                    .filter_map(|c| c.labels.get(REPLICA_LABEL)?.parse().ok())
                    .collect();
                let mut next = (1u32..).filter(|n| !used.contains(n));
                (0..missing)
                    .map(|_| {
                        let replica = next.next().expect("unbounded");
                        OperationStep::new(
                            format!(
                                "create replica {replica} ({})",
                                replica_name(deployment, replica)
                            ),
                            None,
                        )
                    })
                    .collect()
            } else {
                // Newest first.
                containers
                    .iter()
                    .rev()
                    .take(containers.len() - wanted)
                    .map(|c| step("remove", c))
                    .collect()
            }
        }
    })
}

pub fn replica_name(deployment: &Deployment, replica: u32) -> String {
    format!(
        "{}-{}-{replica}",
        deployment.project_id, deployment.environment
    )
}

/// The replica number a "create replica N (...)" step names.
pub fn replica_of(description: &str) -> Option<u32> {
    description
        .strip_prefix("create replica ")?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}
