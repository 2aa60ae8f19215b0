//! `pharosd` with no catalog serves the embedded demo catalog, whose checks watch this
//! very server wherever it listens: a newcomer sees live health at once.

use std::time::{Duration, Instant};

use pharos_e2e::Pharosd;
use pharos_proto::v1 as pb;
use pharos_proto::v1::health_service_client::HealthServiceClient;

#[tokio::test]
async fn the_embedded_demo_monitors_pharosd_itself() -> anyhow::Result<()> {
    let pharosd = Pharosd::builder().spawn().await?;
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
