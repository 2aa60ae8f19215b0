//! Runs an admitted operation step by step, storing and journaling each change, and
//! halting at the first failed step.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bollard::Docker;
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    CreateContainerOptions, RemoveContainerOptions, RestartContainerOptions, StopContainerOptions,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::Operations;
use super::plan::{PORT_LABEL, REPLICA_LABEL, replica_name, replica_of};
use crate::containers::collector::describe;
use pharos_core::domain::{
    ContainerHealth, ContainerState, Deployment, Operation, OperationKind, OperationState,
    StepState,
};
use pharos_store::journal::now_micros;

/// Seconds the engine waits after SIGTERM before it kills a container being stopped.
const STOP_GRACE_SECONDS: i32 = 5;
/// How long a created or started container may take to be running.
const RUNNING_TIMEOUT: Duration = Duration::from_secs(30);
/// Default wait for a replica to be ready in a rolling restart.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

pub(super) struct Runner {
    pub(super) operations: Arc<Operations>,
    pub(super) docker: Docker,
    pub(super) deployment: Deployment,
    pub(super) sender: watch::Sender<Operation>,
}

impl Runner {
    pub(super) async fn run(self, mut op: Operation, shutdown: CancellationToken) {
        op.state = OperationState::Running;
        op.started_micros = Some(now_micros());
        self.publish(&mut op).await;
        let total = op.steps.len();
        let mut failure = None;
        for i in 0..total {
            op.steps[i].state = StepState::Running;
            op.steps[i].started_micros = Some(now_micros());
            self.publish(&mut op).await;
            let outcome = tokio::select! {
                // Left "running": marked interrupted at the next start.
                _ = shutdown.cancelled() => return,
                outcome = self.execute(&op, i) => outcome,
            };
            let step = &mut op.steps[i];
            step.finished_micros = Some(now_micros());
            match outcome {
                Ok((message, container_id)) => {
                    step.state = StepState::Succeeded;
                    step.message = message;
                    if container_id.is_some() {
                        step.container_id = container_id;
                    }
                }
                Err(message) => {
                    step.state = StepState::Failed;
                    step.message = message.clone();
                    failure = Some((i, message));
                }
            }
            if failure.is_some() {
                break;
            }
            self.publish(&mut op).await;
        }
        match failure {
            Some((i, message)) => {
                for step in &mut op.steps[i + 1..] {
                    step.state = StepState::Skipped;
                }
                op.state = OperationState::Failed;
                op.result = format!(
                    "stopped at step {} of {total} ({}): {message}",
                    i + 1,
                    op.steps[i].description
                );
            }
            None => {
                op.state = OperationState::Succeeded;
                op.result = if total == 0 {
                    "nothing to do".to_owned()
                } else {
                    format!("{total} step(s) done")
                };
            }
        }
        op.finished_micros = Some(now_micros());
        self.publish(&mut op).await;
        tracing::info!(operation = %op.id, state = op.state.as_str(), result = %op.result, "operation finished");
        self.operations.finished(&op);
    }

    /// Stores and journals the new state, then shows it to watchers.
    async fn publish(&self, op: &mut Operation) {
        op.version += 1;
        if let Err(err) = self.operations.store.save(op).await {
            tracing::error!(operation = %op.id, error = %err, "storing operation progress failed");
        }
        self.sender.send_replace(op.clone());
    }

    /// Runs step `i`; returns a message and the container it created, or why it failed.
    async fn execute(&self, op: &Operation, i: usize) -> Result<(String, Option<String>), String> {
        let step = &op.steps[i];
        let id = step.container_id.clone().unwrap_or_default();
        let docker = &self.docker;
        let engine = |err: bollard::errors::Error| describe(&err);
        match op.kind {
            OperationKind::Restart => {
                docker
                    .restart_container(&id, Some(restart_options()))
                    .await
                    .map_err(engine)?;
                Ok(("restarted".to_owned(), None))
            }
            OperationKind::Stop => {
                docker
                    .stop_container(
                        &id,
                        Some(StopContainerOptions {
                            t: Some(STOP_GRACE_SECONDS),
                            signal: None,
                        }),
                    )
                    .await
                    .map_err(engine)?;
                Ok(("stopped".to_owned(), None))
            }
            OperationKind::Start => {
                docker.start_container(&id, None).await.map_err(engine)?;
                wait_running(docker, &id).await?;
                Ok(("running".to_owned(), None))
            }
            OperationKind::Scale if step.container_id.is_some() => {
                docker
                    .remove_container(
                        &id,
                        Some(RemoveContainerOptions {
                            force: true,
                            ..Default::default()
                        }),
                    )
                    .await
                    .map_err(engine)?;
                Ok(("removed".to_owned(), None))
            }
            OperationKind::Scale => {
                let replica = replica_of(&step.description)
                    .ok_or_else(|| format!("cannot read the replica of {:?}", step.description))?;
                let created = self.create_replica(replica).await?;
                wait_running(docker, &created).await?;
                Ok((
                    format!("created and running ({})", short(&created)),
                    Some(created),
                ))
            }
            OperationKind::RolloutRestart => {
                let started = Instant::now();
                docker
                    .restart_container(&id, Some(restart_options()))
                    .await
                    .map_err(engine)?;
                self.wait_ready(&id).await?;
                Ok((
                    format!(
                        "ready after {}",
                        humantime::format_duration(round(started.elapsed()))
                    ),
                    None,
                ))
            }
        }
    }

    async fn create_replica(&self, replica: u32) -> Result<String, String> {
        let deployment = &self.deployment;
        let template = deployment
            .container_template
            .as_ref()
            .ok_or("the deployment has no container template")?;
        let mut labels: HashMap<String, String> = template.labels.clone().into_iter().collect();
        if deployment.container_selector.is_empty() {
            let keys = &self.operations.labels;
            labels.insert(keys.project.clone(), deployment.project_id.clone());
            labels.insert(keys.environment.clone(), deployment.environment.clone());
        } else {
            labels.extend(deployment.container_selector.clone());
        }
        labels.insert(REPLICA_LABEL.to_owned(), replica.to_string());
        let mut env: Vec<String> = template
            .env
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        if let Some(base) = template.port {
            let port = u32::from(base) + replica - 1;
            let port = u16::try_from(port)
                .map_err(|_| format!("replica {replica}'s port {port} is above 65535"))?;
            labels.insert(PORT_LABEL.to_owned(), port.to_string());
            env.push(format!("PORT={port}"));
        }
        let body = ContainerCreateBody {
            image: Some(template.image.clone()),
            cmd: (!template.command.is_empty()).then(|| template.command.clone()),
            env: Some(env),
            labels: Some(labels),
            host_config: Some(HostConfig {
                network_mode: Some(template.network.clone()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let name = replica_name(deployment, replica);
        let created = self
            .docker
            .create_container(
                Some(CreateContainerOptions {
                    name: Some(name.clone()),
                    ..Default::default()
                }),
                body,
            )
            .await
            .map_err(|err| format!("creating {name}: {}", describe(&err)))?;
        self.docker
            .start_container(&created.id, None)
            .await
            .map_err(|err| format!("starting {name}: {}", describe(&err)))?;
        Ok(created.id)
    }

    /// Running, not failing (or still starting) its own healthcheck, and answering 2xx
    /// on its port at the template's health path when both are known.
    async fn wait_ready(&self, id: &str) -> Result<(), String> {
        let template = self.deployment.container_template.as_ref();
        let timeout = template.map_or(READY_TIMEOUT, |t| t.ready_timeout);
        let health_path = template.and_then(|t| t.health_path.clone());
        let deadline = Instant::now() + timeout;
        let mut last;
        loop {
            last = match self.docker.inspect_container(id, None).await {
                Err(err) => describe(&err),
                Ok(inspect) => {
                    let state = inspect.state.unwrap_or_default();
                    let status = ContainerState::parse(
                        &state.status.map(|s| s.to_string()).unwrap_or_default(),
                    );
                    let health = ContainerHealth::parse(
                        state
                            .health
                            .and_then(|h| h.status)
                            .map(|s| s.to_string())
                            .as_deref(),
                    );
                    let port = inspect
                        .config
                        .and_then(|c| c.labels)
                        .and_then(|l| l.get(PORT_LABEL).and_then(|p| p.parse::<u16>().ok()));
                    if status != ContainerState::Running {
                        format!("container is {}", status.as_str())
                    } else if matches!(
                        health,
                        ContainerHealth::Unhealthy | ContainerHealth::Starting
                    ) {
                        format!("engine healthcheck: {}", health.as_str())
                    } else if let (Some(port), Some(path)) = (port, &health_path) {
                        match http_status(port, path).await {
                            Ok(code) if (200..300).contains(&code) => return Ok(()),
                            Ok(code) => format!("GET 127.0.0.1:{port}{path} answered {code}"),
                            Err(err) => format!("GET 127.0.0.1:{port}{path}: {err}"),
                        }
                    } else {
                        return Ok(());
                    }
                }
            };
            if Instant::now() >= deadline {
                return Err(format!(
                    "not ready within {}: {last}",
                    humantime::format_duration(timeout)
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn restart_options() -> RestartContainerOptions {
    RestartContainerOptions {
        t: Some(STOP_GRACE_SECONDS),
        signal: None,
    }
}

async fn wait_running(docker: &Docker, id: &str) -> Result<(), String> {
    let deadline = Instant::now() + RUNNING_TIMEOUT;
    loop {
        let inspect = docker
            .inspect_container(id, None)
            .await
            .map_err(|err| describe(&err))?;
        let state = inspect.state.unwrap_or_default();
        let status =
            ContainerState::parse(&state.status.map(|s| s.to_string()).unwrap_or_default());
        match status {
            ContainerState::Running => return Ok(()),
            ContainerState::Exited | ContainerState::Dead => {
                return Err(format!(
                    "container exited with code {}",
                    state.exit_code.unwrap_or_default()
                ));
            }
            _ if Instant::now() >= deadline => {
                return Err(format!(
                    "not running within {} (state {})",
                    humantime::format_duration(RUNNING_TIMEOUT),
                    status.as_str()
                ));
            }
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// The status code of `GET http://127.0.0.1:PORT/PATH` (HTTP/1.0, 1 s timeout).
async fn http_status(port: u16, path: &str) -> Result<u16, String> {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .map_err(|e| e.to_string())?;
        stream
            .write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n").as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut head = [0u8; 64];
        let mut read = 0;
        while read < 12 {
            let n = stream
                .read(&mut head[read..])
                .await
                .map_err(|e| e.to_string())?;
            if n == 0 {
                break;
            }
            read += n;
        }
        let line = String::from_utf8_lossy(&head[..read]);
        line.split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| format!("not an HTTP response: {line:?}"))
    };
    tokio::time::timeout(Duration::from_secs(1), exchange)
        .await
        .map_err(|_| "timed out after 1s".to_owned())?
}

fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}

fn round(d: Duration) -> Duration {
    Duration::from_millis(d.as_millis() as u64)
}
