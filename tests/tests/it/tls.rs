//! TLS, mutual TLS and CORS on the one port, checked with the real grpcurl and curl:
//! gRPC over HTTP/2, plain HTTP/1.1 (`/healthz`) and browsers' CORS preflights.

use pharos_e2e::grpc::{json_stdout, pharosd};
use pharos_e2e::{CmdOutput, Pharosd, TestPki, grpcurl_path, run_command};
use std::path::Path;
use std::time::Duration;
use tokio::process::Command;

const TIMEOUT: Duration = Duration::from_secs(15);

/// A CA, a server certificate for 127.0.0.1 and localhost, and a client certificate,
/// all as PEM files in a temporary directory.
fn pki() -> TestPki {
    let pki = TestPki::new("Pharos TLS test CA");
    pki.issue("server", &["127.0.0.1", "localhost"]);
    pki.issue("client", &["operator.example"]);
    pki
}

async fn tls_pharosd(pki: &TestPki, mutual: bool) -> Pharosd {
    let mut builder = Pharosd::builder()
        .arg("--tls-cert")
        .arg(pki.path("server.pem"))
        .arg("--tls-key")
        .arg(pki.path("server.key"))
        .ready_when_logged("pharosd listening");
    if mutual {
        builder = builder.arg("--tls-client-ca").arg(pki.path("ca.pem"));
    }
    builder.spawn().await.expect("start pharosd with TLS")
}

async fn run(program: impl AsRef<std::ffi::OsStr>, args: &[&str]) -> CmdOutput {
    let mut cmd = Command::new(program);
    cmd.args(args);
    run_command(cmd, TIMEOUT).await.unwrap()
}

fn arg(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[tokio::test]
async fn tls_serves_grpc_and_http1_and_refuses_plain_text() {
    let pki = pki();
    let server = tls_pharosd(&pki, false).await;
    let ca = pki.path("ca.pem");

    let out = run(
        grpcurl_path(),
        &[
            "-cacert",
            arg(&ca),
            &server.addr(),
            "pharos.v1.CatalogService/GetOverview",
        ],
    )
    .await
    .expect_success()
    .unwrap();
    let overview = json_stdout(&out).unwrap();
    assert_eq!(overview["projects"], 1, "{overview}");

    // HTTP/1.1 over the same TLS port: ALPN offers http/1.1 as well as h2.
    let health = run(
        "curl",
        &[
            "-sS",
            "--http1.1",
            "--cacert",
            arg(&ca),
            &format!("https://{}/healthz", server.addr()),
            "-w",
            " %{http_version}",
        ],
    )
    .await
    .expect_success()
    .unwrap();
    assert_eq!(health.stdout, "ok\n 1.1");

    let plain = run(
        grpcurl_path(),
        &[
            "-plaintext",
            &server.addr(),
            "pharos.v1.CatalogService/GetOverview",
        ],
    )
    .await;
    assert!(
        !plain.success(),
        "plain text must fail on a TLS port: {plain}"
    );
    let untrusted = run(
        grpcurl_path(),
        &[&server.addr(), "pharos.v1.CatalogService/GetOverview"],
    )
    .await;
    assert!(
        untrusted.stderr.contains("certificate"),
        "a client that does not trust the CA must fail verification: {untrusted}"
    );
}

#[tokio::test]
async fn mutual_tls_refuses_clients_without_a_certificate() {
    let pki = pki();
    let server = tls_pharosd(&pki, true).await;
    let ca = pki.path("ca.pem");
    let call = |with_cert: bool| {
        let mut args = vec![
            "-max-time".to_owned(),
            "5".to_owned(),
            "-cacert".to_owned(),
            arg(&ca).to_owned(),
        ];
        if with_cert {
            args.extend([
                "-cert".into(),
                arg(&pki.path("client.pem")).into(),
                "-key".into(),
                arg(&pki.path("client.key")).into(),
            ]);
        }
        args.extend([server.addr(), "pharos.v1.CatalogService/GetOverview".into()]);
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            run(grpcurl_path(), &args).await
        }
    };
    let refused = call(false).await;
    assert!(!refused.success(), "no client certificate: {refused}");
    let accepted = call(true).await.expect_success().unwrap();
    assert_eq!(json_stdout(&accepted).unwrap()["projects"], 1);
}

#[tokio::test]
async fn bad_tls_files_stop_startup_naming_the_flag() {
    let pki = pki();
    let data = tempfile::tempdir().unwrap();
    let missing = pki.path("missing.pem");
    let out = pharosd([
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        arg(data.path()),
        "--tls-cert",
        arg(&missing),
        "--tls-key",
        arg(&pki.path("server.key")),
    ])
    .await
    .unwrap();
    assert!(!out.success());
    assert!(
        out.stderr.contains("--tls-cert") && out.stderr.contains("missing.pem"),
        "{out}"
    );

    // A key that is not the certificate's.
    let out = pharosd([
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        arg(data.path()),
        "--tls-cert",
        arg(&pki.path("server.pem")),
        "--tls-key",
        arg(&pki.path("client.key")),
    ])
    .await
    .unwrap();
    assert!(!out.success());
    assert!(out.stderr.contains("do not form a usable pair"), "{out}");

    let out = pharosd(["--tls-cert", arg(&pki.path("server.pem")), "validate"])
        .await
        .unwrap();
    assert!(!out.success());
    assert!(out.stderr.contains("--tls-key"), "{out}");
}

async fn preflight(server: &Pharosd, origin: &str) -> String {
    run(
        "curl",
        &[
            "-sS",
            "-o",
            "/dev/null",
            "-D",
            "-",
            "-X",
            "OPTIONS",
            "-H",
            &format!("Origin: {origin}"),
            "-H",
            "Access-Control-Request-Method: POST",
            "-H",
            "Access-Control-Request-Headers: content-type,x-grpc-web,authorization",
            &format!(
                "http://{}/pharos.v1.CatalogService/GetOverview",
                server.addr()
            ),
        ],
    )
    .await
    .expect_success()
    .unwrap()
    .stdout
    .to_ascii_lowercase()
}

#[tokio::test]
async fn cors_allows_only_the_listed_origins() {
    let server = Pharosd::builder()
        .arg("--cors-origin")
        .arg("https://ops.example.com,http://localhost:5173")
        .spawn()
        .await
        .unwrap();
    let allowed = preflight(&server, "https://ops.example.com").await;
    assert!(
        allowed.contains("access-control-allow-origin: https://ops.example.com"),
        "{allowed}"
    );
    assert!(allowed.contains("authorization"), "{allowed}");
    let other = preflight(&server, "https://elsewhere.example").await;
    assert!(!other.contains("access-control-allow-origin"), "{other}");

    let out = pharosd(["--cors-origin", "ops.example.com", "validate"])
        .await
        .unwrap();
    assert!(!out.success());
    assert!(
        out.stderr.contains("--cors-origin \"ops.example.com\""),
        "{out}"
    );
}
