//! API tokens from a `--config` file: which calls need one, what a bad one gets, and how
//! the `pharos` CLI reports it.

use pharos_e2e::grpc::{catalog_client, command, grpcurl, json_stdout, pharos, with_token};
use pharos_e2e::{CatalogFile, Pharosd};
use pharos_proto::v1 as pb;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tonic::Code;

const VIEWER_TOKEN: &str = "viewer-secret-0123456789";

/// The health service's contract, for grpcurl: reflection needs a token, health does not.
const HEALTH_PROTO: &str = r#"syntax = "proto3";
package grpc.health.v1;
message HealthCheckRequest { string service = 1; }
message HealthCheckResponse {
  enum ServingStatus { UNKNOWN = 0; SERVING = 1; NOT_SERVING = 2; SERVICE_UNKNOWN = 3; }
  ServingStatus status = 1;
}
service Health { rpc Check(HealthCheckRequest) returns (HealthCheckResponse); }
"#;

/// `echo -n TOKEN | pharosd hash-token`
async fn hash_token(token: &str) -> String {
    let mut cmd = command("pharosd");
    cmd.arg("hash-token")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(token.as_bytes()).await.unwrap();
    drop(stdin);
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("hash-token finishes")
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let hash = String::from_utf8(out.stdout).unwrap().trim_end().to_owned();
    assert_eq!(hash.len(), 64, "a hex SHA-256: {hash:?}");
    assert!(hash.bytes().all(|b| b.is_ascii_hexdigit()), "{hash:?}");
    hash
}

/// pharosd with a config file that holds one viewer token. The config file lives beside
/// the catalog, in that file's temporary directory.
async fn server_with_viewer_token(files: &CatalogFile) -> Pharosd {
    let config = files.dir().join("pharosd.yaml");
    let hash = hash_token(VIEWER_TOKEN).await;
    std::fs::write(
        &config,
        format!("tokens:\n  - name: ci-viewer\n    role: viewer\n    sha256: {hash}\n"),
    )
    .unwrap();
    Pharosd::builder()
        .catalog(files.path())
        .config(&config)
        .spawn()
        .await
        .expect("start pharosd")
}

#[tokio::test]
async fn hash_token_prints_the_sha256_of_stdin_without_its_newline() {
    // SHA-256 of "secret", as `printf secret | sha256sum` prints it.
    let expected = "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b";
    assert_eq!(hash_token("secret").await, expected);
    assert_eq!(hash_token("secret\n").await, expected);
}

#[tokio::test]
async fn calls_without_a_token_are_unauthenticated() {
    let files = CatalogFile::demo().unwrap();
    let server = server_with_viewer_token(&files).await;

    let status = catalog_client(&server.url())
        .await
        .unwrap()
        .get_overview(pb::GetOverviewRequest {})
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    assert!(
        status
            .message()
            .starts_with("this server requires an API token"),
        "{status:?}"
    );
}

#[tokio::test]
async fn a_wrong_token_is_unauthenticated() {
    let files = CatalogFile::demo().unwrap();
    let server = server_with_viewer_token(&files).await;

    let status = catalog_client(&server.url())
        .await
        .unwrap()
        .get_overview(with_token(pb::GetOverviewRequest {}, "not-the-token"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    assert_eq!(status.message(), "unknown or revoked API token");
}

#[tokio::test]
async fn a_viewer_token_reads_the_catalog() {
    let files = CatalogFile::demo().unwrap();
    let server = server_with_viewer_token(&files).await;

    let overview = catalog_client(&server.url())
        .await
        .unwrap()
        .get_overview(with_token(pb::GetOverviewRequest {}, VIEWER_TOKEN))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((overview.projects, overview.deployments), (1, 1));
}

#[tokio::test]
async fn the_health_check_needs_no_token() {
    let files = CatalogFile::demo().unwrap();
    let server = server_with_viewer_token(&files).await;
    std::fs::write(files.dir().join("health.proto"), HEALTH_PROTO).unwrap();

    let out = grpcurl([
        "-import-path",
        files.dir().to_str().unwrap(),
        "-proto",
        "health.proto",
        &server.addr(),
        "grpc.health.v1.Health/Check",
    ])
    .await
    .unwrap()
    .expect_success()
    .unwrap();
    assert_eq!(json_stdout(&out).unwrap()["status"], "SERVING");

    // Reflection is not open like health: without a token grpcurl cannot even list.
    let out = grpcurl([&server.addr(), "list"]).await.unwrap();
    assert!(!out.success(), "{out}");
    assert!(out.stderr.contains("Unauthenticated"), "{out}");
}

#[tokio::test]
async fn the_cli_works_with_a_token() {
    let files = CatalogFile::demo().unwrap();
    let server = server_with_viewer_token(&files).await;

    let out = pharos([
        "--server",
        &server.url(),
        "--token",
        VIEWER_TOKEN,
        "status",
        "-o",
        "json",
    ])
    .await
    .unwrap()
    .expect_success()
    .unwrap();
    assert_eq!(json_stdout(&out).unwrap()["projects"], 1);
}

#[tokio::test]
async fn the_cli_without_a_token_exits_4_with_one_line() {
    let files = CatalogFile::demo().unwrap();
    let server = server_with_viewer_token(&files).await;

    let out = pharos(["--server", &server.url(), "status"]).await.unwrap();
    assert_eq!(out.status.code(), Some(4), "{out}");
    assert_eq!(out.stdout, "", "{out}");
    assert_eq!(
        out.stderr,
        "pharos: this server requires an API token: send `authorization: Bearer <token>` (pharos: --token or PHAROS_TOKEN)\n"
    );
}

/// A JWT signed with `key` (ES256) for `sub` with `claims` added.
fn es256_jwt(key: &rcgen::KeyPair, sub: &str, claims: serde_json::Value) -> String {
    let mut body = serde_json::json!({
        "sub": sub,
        "iss": "https://id.example",
        "exp": chrono::Utc::now().timestamp() + 600,
    });
    body.as_object_mut()
        .unwrap()
        .extend(claims.as_object().unwrap().clone());
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256),
        &body,
        &jsonwebtoken::EncodingKey::from_ec_pem(key.serialize_pem().as_bytes()).unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn jwts_from_an_identity_provider_carry_the_role() {
    let files = CatalogFile::demo().unwrap();
    let idp = rcgen::KeyPair::generate().unwrap();
    let public_key = files.dir().join("idp.pub.pem");
    std::fs::write(&public_key, idp.public_key_pem()).unwrap();
    let config = files.dir().join("pharosd.yaml");
    std::fs::write(
        &config,
        format!(
            "jwt:\n  public_key_file: {}\n  issuer: https://id.example\n",
            public_key.display()
        ),
    )
    .unwrap();
    let server = Pharosd::builder()
        .catalog(files.path())
        .config(&config)
        .spawn()
        .await
        .unwrap();
    let client = catalog_client(&server.url()).await.unwrap();
    let call = |token: Option<String>| {
        let mut client = client.clone();
        async move {
            let request = match token {
                Some(token) => with_token(pb::GetOverviewRequest::default(), &token),
                None => tonic::Request::new(pb::GetOverviewRequest::default()),
            };
            client.get_overview(request).await
        }
    };

    let viewer = es256_jwt(&idp, "ana", serde_json::json!({"role": "viewer"}));
    let overview = call(Some(viewer.clone())).await.unwrap().into_inner();
    assert_eq!(overview.projects, 1);

    // With an identity provider configured, nobody is anonymous, even on loopback.
    let anonymous = call(None).await.unwrap_err();
    assert_eq!(anonymous.code(), Code::Unauthenticated);

    let expired = es256_jwt(
        &idp,
        "ana",
        serde_json::json!({"role": "viewer", "exp": 1_000_000}),
    );
    let err = call(Some(expired)).await.unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    assert_eq!(err.message(), "the JWT has expired");

    let other_idp = rcgen::KeyPair::generate().unwrap();
    let forged = es256_jwt(&other_idp, "mallory", serde_json::json!({"role": "admin"}));
    let err = call(Some(forged)).await.unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    assert!(err.message().contains("signature"), "{}", err.message());

    // A viewer may not send heartbeats (operator), and is told so.
    let mut health = pb::health_service_client::HealthServiceClient::connect(server.url())
        .await
        .unwrap();
    let err = health
        .heartbeat(with_token(pb::HeartbeatRequest::default(), &viewer))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert!(
        err.message().contains("\"ana\" has viewer"),
        "{}",
        err.message()
    );
}

#[tokio::test]
async fn calls_over_the_rate_limit_are_refused_with_the_wait() {
    let files = CatalogFile::demo().unwrap();
    let config = files.dir().join("pharosd.yaml");
    let hash = hash_token(VIEWER_TOKEN).await;
    std::fs::write(
        &config,
        format!(
            "tokens:\n  - name: ci-viewer\n    role: viewer\n    sha256: {hash}\nlimits:\n  calls_per_second: 5\n  burst: 5\n"
        ),
    )
    .unwrap();
    let server = Pharosd::builder()
        .catalog(files.path())
        .config(&config)
        .spawn()
        .await
        .unwrap();
    let mut client = catalog_client(&server.url()).await.unwrap();
    let started = std::time::Instant::now();
    let (mut admitted, mut refused) = (0u32, Vec::new());
    for _ in 0..30 {
        match client
            .get_overview(with_token(pb::GetOverviewRequest::default(), VIEWER_TOKEN))
            .await
        {
            Ok(_) => admitted += 1,
            Err(status) => refused.push(status),
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    // The burst, plus what the sustained rate allowed while the calls ran.
    let allowed = 5 + (elapsed * 5.0).ceil() as u32;
    assert!(
        (5..=allowed).contains(&admitted),
        "{admitted} admitted in {elapsed:.2} s"
    );
    let first = refused.first().expect("calls beyond the burst are refused");
    assert_eq!(first.code(), Code::ResourceExhausted);
    assert!(
        first
            .message()
            .starts_with("rate limit of 5 calls/s for \"ci-viewer\" exceeded; retry in "),
        "{}",
        first.message()
    );
}

/// WhoAmI names the caller and its role (through grpcurl and reflection, as another
/// service would call it); without a token on a server that requires one, it is refused.
#[tokio::test]
async fn who_am_i_names_the_token_and_its_role() {
    let files = CatalogFile::demo().unwrap();
    let server = server_with_viewer_token(&files).await;
    let address = server.url().trim_start_matches("http://").to_owned();
    let out = grpcurl([
        "-H",
        &format!("authorization: Bearer {VIEWER_TOKEN}"),
        "-d",
        "{}",
        &address,
        "pharos.v1.SessionService/WhoAmI",
    ])
    .await
    .unwrap();
    let value = json_stdout(&out.expect_success().unwrap()).unwrap();
    assert_eq!(value["name"], "ci-viewer", "{value}");
    assert_eq!(value["role"], "ROLE_VIEWER", "{value}");
    assert!(value.get("anonymous").is_none(), "{value}");

    let out = grpcurl([
        "-H",
        "authorization: Bearer eyJ-not-a-token",
        "-d",
        "{}",
        &address,
        "pharos.v1.SessionService/WhoAmI",
    ])
    .await
    .unwrap();
    assert!(!out.status.success());
    assert!(out.stderr.contains("Unauthenticated"), "{out:?}");
}
