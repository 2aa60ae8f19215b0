//! A third-party client that knows nothing but what server reflection tells it:
//! tests/python/reflection_client.py (grpcio, no generated code) against pharosd.

use pharos_e2e::grpc::COMMAND_TIMEOUT;
use pharos_e2e::{CmdOutput, Pharosd, run_cmd};
use serde_json::{Value, json};
use std::path::Path;

/// Runs reflection_client.py against `server`, calling `method` with `request` (JSON).
async fn call(server: &Pharosd, method: &str, request: &str) -> CmdOutput {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/reflection_client.py");
    let addr = server.addr();
    run_cmd(
        "python3",
        [
            script.to_str().unwrap(),
            "--addr",
            &addr,
            "--method",
            method,
            "--json",
            request,
        ],
        COMMAND_TIMEOUT,
    )
    .await
    .unwrap()
}

fn json(out: &CmdOutput) -> Value {
    assert!(out.success(), "{out}");
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

async fn demo_server() -> Pharosd {
    // No --catalog: the embedded demo catalog.
    Pharosd::builder().spawn().await.expect("start pharosd")
}

#[tokio::test]
async fn get_overview_through_reflection() {
    let server = demo_server().await;

    let mut overview = json(&call(&server, "pharos.v1.CatalogService/GetOverview", "{}").await);
    // protobuf's JSON mapping prints uint64 as a string.
    let revision: u64 = overview["revision"].as_str().unwrap().parse().unwrap();
    assert!(revision > 0, "{overview}");
    let fields = overview.as_object_mut().unwrap();
    fields.remove("revision");
    // The one deployment is counted under exactly one health status; which one depends
    // on whether its first check has run yet (proto3 JSON leaves out zero counts).
    let by_health: u64 = [
        "healthy_deployments",
        "degraded_deployments",
        "unhealthy_deployments",
        "unknown_deployments",
    ]
    .iter()
    .filter_map(|k| fields.remove(*k))
    .map(|v| v.as_u64().unwrap())
    .sum();
    assert_eq!(by_health, 1, "{overview}");
    assert_eq!(
        overview,
        json!({
            "projects": 1,
            "deployments": 1,
            "ports_allocated": 1,
            "ports_available": 99,
            "environments": [{
                "id": "local",
                "name": "Local machine",
                "deployments": 1,
                "ports_allocated": 1,
                "ports_available": 99
            }]
        })
    );
}

#[tokio::test]
async fn get_project_through_reflection() {
    let server = demo_server().await;

    let response = json(
        &call(
            &server,
            "pharos.v1.CatalogService/GetProject",
            r#"{"id":"pharos"}"#,
        )
        .await,
    );
    assert_eq!(
        response["project"],
        json!({
            "id": "pharos",
            "name": "Pharos control plane",
            "type": "infrastructure",
            "subdomain": "pharos",
            "description": "pharosd itself, serving gRPC, grpc-web and the dashboard.",
            "environments": ["local"]
        })
    );
    let deployments = response["deployments"].as_array().unwrap();
    assert_eq!(deployments.len(), 1, "{response}");
    let deployment = &deployments[0];
    assert_eq!(deployment["id"], "pharos/local");
    assert_eq!(
        deployment["ports"],
        json!([{
            "environment": "local",
            "port": 7600,
            "type": "PORT_TYPE_GRPC",
            "project_id": "pharos",
            "service": "pharosd"
        }])
    );
    let checks: Vec<(&str, &str)> = deployment["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap(), c["kind"].as_str().unwrap()))
        .collect();
    assert_eq!(checks, [("grpc-health", "grpc"), ("healthz", "http")]);
    assert_eq!(
        deployment["container_selector"],
        json!({"pharos.project": "pharos"})
    );
}

#[tokio::test]
async fn unknown_project_is_a_not_found_error() {
    let server = demo_server().await;

    let out = call(
        &server,
        "pharos.v1.CatalogService/GetProject",
        r#"{"id":"nope"}"#,
    )
    .await;
    // The script exits 2 and prints `CODE: message` for gRPC errors.
    assert_eq!(out.status.code(), Some(2), "{out}");
    assert!(
        out.stderr.starts_with("NOT_FOUND: project \"nope\""),
        "{out}"
    );
}
