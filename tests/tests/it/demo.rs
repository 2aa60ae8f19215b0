//! `pharosd` with no catalog serves the embedded demo catalog, whose checks watch this
//! very server wherever it listens: a newcomer sees live health at once.

use std::time::{Duration, Instant};

use pharos_e2e::{CatalogFile, Pharosd};
use pharos_proto::v1 as pb;
use pharos_proto::v1::health_service_client::HealthServiceClient;

#[tokio::test]
async fn the_embedded_demo_monitors_pharosd_itself() -> anyhow::Result<()> {
    let pharosd = Pharosd::builder().spawn().await?;
    let project = wait_until_the_demo_is_healthy(&pharosd).await?;
    let kinds: Vec<&str> = project.deployments[0]
        .checks
        .iter()
        .map(|c| c.check.as_ref().unwrap().kind.as_str())
        .collect();
    assert_eq!(kinds, ["grpc", "http"]);
    let overview = pharos_e2e::grpc::overview(&pharosd.url()).await?;
    assert_eq!(overview.healthy_deployments, 1);
    Ok(())
}

/// `deploy/demo-catalog.yaml` passed as a file to a pharosd on another port (the test's
/// free port, never 7600) checks that pharosd, not whatever answers on 7600.
#[tokio::test]
async fn the_demo_file_follows_the_listen_address() -> anyhow::Result<()> {
    let catalog = CatalogFile::demo()?;
    let pharosd = Pharosd::builder().catalog(catalog.path()).spawn().await?;
    assert_ne!(pharosd.port(), 7600);
    wait_until_the_demo_is_healthy(&pharosd).await?;
    let project = pharos_e2e::grpc::catalog_client(&pharosd.url())
        .await?
        .get_project(pb::GetProjectRequest {
            id: "pharos".into(),
        })
        .await?
        .into_inner();
    let targets: Vec<&str> = project.deployments[0]
        .checks
        .iter()
        .map(|c| c.target.as_str())
        .collect();
    assert_eq!(
        targets,
        [pharosd.addr(), format!("http://{}/healthz", pharosd.addr())],
        "{project:?}"
    );
    Ok(())
}

/// Waits until every check of the demo's one deployment is healthy.
async fn wait_until_the_demo_is_healthy(
    pharosd: &Pharosd,
) -> anyhow::Result<pb::GetProjectHealthResponse> {
    let mut health = HealthServiceClient::connect(pharosd.url()).await?;
    let deadline = Instant::now() + Duration::from_secs(20);
    let project = loop {
        let project = health
            .get_project_health(pb::GetProjectHealthRequest {
                project_id: "pharos".into(),
            })
            .await?
            .into_inner();
        let checks = &project.deployments[0].checks;
        let healthy = checks
            .iter()
            .filter(|c| c.check.as_ref().unwrap().status == pb::HealthStatus::Healthy as i32)
            .count();
        if healthy == checks.len() && healthy > 0 {
            break project;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "demo checks not healthy in 20 s: {project:?}\n{}",
            pharosd.log_text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    Ok(project)
}
