//! A `pharos` context with a CA file reaches `pharosd --tls-cert/--tls-key` over TLS; the
//! same server without that CA is refused.

use std::path::Path;

use pharos_e2e::grpc::{COMMAND_TIMEOUT, command, json_stdout};
use pharos_e2e::{CmdOutput, Pharosd, TestPki, run_command};

async fn pharos(home: &Path, args: &[&str]) -> CmdOutput {
    let mut cmd = command("pharos");
    cmd.env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env_remove("PHAROS_SERVER")
        .args(args);
    run_command(cmd, COMMAND_TIMEOUT).await.unwrap()
}

#[tokio::test]
async fn a_context_with_a_ca_file_speaks_tls_to_pharosd() {
    // A CA and a server certificate for 127.0.0.1 and localhost.
    let certs = TestPki::new("Pharos CLI test CA");
    certs.issue("server", &["127.0.0.1", "localhost"]);
    let server = Pharosd::builder()
        .arg("--tls-cert")
        .arg(certs.path("server.pem"))
        .arg("--tls-key")
        .arg(certs.path("server.key"))
        .ready_when_logged("pharosd listening")
        .spawn()
        .await
        .unwrap();
    let url = format!("https://localhost:{}", server.port());
    let home = tempfile::tempdir().unwrap();
    let ca = certs.path("ca.pem");
    pharos(
        home.path(),
        &[
            "context",
            "set",
            "tls",
            "--server",
            &url,
            "--ca-file",
            ca.to_str().unwrap(),
            "--use",
        ],
    )
    .await
    .expect_success()
    .unwrap();
    let out = pharos(home.path(), &["status", "-o", "json"]).await;
    let value = json_stdout(&out.expect_success().unwrap()).unwrap();
    assert!(value.is_object(), "{value}");

    // Without the CA the server's certificate is not trusted: one line, no success.
    let out = pharos(
        home.path(),
        &["--server", &url, "--context", "none", "status"],
    )
    .await;
    assert!(!out.status.success(), "{out:?}");
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
}
