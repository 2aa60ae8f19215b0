//! Containers and the container engine's status, domain <-> proto.

use pharos_core::domain::{
    Container, ContainerHealth, ContainerState, ContainerStats, EngineState, EngineStatus,
};
use pharos_proto::v1 as pb;

use super::timestamp;

pub fn container(c: &Container, stats: Option<&ContainerStats>) -> pb::Container {
    pb::Container {
        id: c.id.clone(),
        name: c.name.clone(),
        image: c.image.clone(),
        labels: c
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        deployment_id: c.deployment_id.clone().unwrap_or_default(),
        project_id: c.project_id.clone().unwrap_or_default(),
        environment: c.environment.clone().unwrap_or_default(),
        service: c.service.clone(),
        state: state(c.state) as i32,
        health: match c.health {
            ContainerHealth::None => pb::ContainerHealth::Unspecified,
            ContainerHealth::Starting => pb::ContainerHealth::Starting,
            ContainerHealth::Healthy => pb::ContainerHealth::Healthy,
            ContainerHealth::Unhealthy => pb::ContainerHealth::Unhealthy,
        } as i32,
        status_text: c.status_text.clone(),
        exit_code: c.exit_code,
        created: (c.created_micros > 0).then(|| timestamp(c.created_micros)),
        started: c.started_micros.map(timestamp),
        restart_count: c.restart_count,
        stats: stats.map(|s| pb::ContainerStats {
            cpu_percent: s.cpu_percent,
            memory_used_bytes: s.memory_used_bytes,
            memory_limit_bytes: s.memory_limit_bytes,
            time: Some(timestamp(s.at_micros)),
        }),
    }
}

pub fn engine_status(engine: &EngineStatus) -> pb::EngineStatus {
    pb::EngineStatus {
        endpoint: engine.endpoint.clone(),
        state: match engine.state {
            EngineState::Disabled => pb::EngineState::Disabled,
            EngineState::Connecting => pb::EngineState::Connecting,
            EngineState::Up => pb::EngineState::Up,
            EngineState::Down => pb::EngineState::Down,
        } as i32,
        version: engine.version.clone(),
        error: engine.error.clone(),
        since: Some(timestamp(engine.since_micros)),
    }
}

fn state(state: ContainerState) -> pb::ContainerState {
    match state {
        ContainerState::Created => pb::ContainerState::Created,
        ContainerState::Running => pb::ContainerState::Running,
        ContainerState::Paused => pb::ContainerState::Paused,
        ContainerState::Restarting => pb::ContainerState::Restarting,
        ContainerState::Removing => pb::ContainerState::Removing,
        ContainerState::Exited => pb::ContainerState::Exited,
        ContainerState::Dead => pb::ContainerState::Dead,
        ContainerState::Unknown => pb::ContainerState::Unspecified,
    }
}

pub fn state_from_proto(value: i32) -> Option<ContainerState> {
    Some(match pb::ContainerState::try_from(value).ok()? {
        pb::ContainerState::Created => ContainerState::Created,
        pb::ContainerState::Running => ContainerState::Running,
        pb::ContainerState::Paused => ContainerState::Paused,
        pb::ContainerState::Restarting => ContainerState::Restarting,
        pb::ContainerState::Removing => ContainerState::Removing,
        pb::ContainerState::Exited => ContainerState::Exited,
        pb::ContainerState::Dead => ContainerState::Dead,
        pb::ContainerState::Unspecified => return None,
    })
}
