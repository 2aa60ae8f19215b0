//! The HTTP probe against real servers on loopback: status, body and JSON expectations,
//! slow and refused servers, timings, and TLS with a CA of its own.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::routing::{any, get};
use serde_json::json;
use tokio::io::AsyncReadExt;

use super::super::tests::{build_error, probe};
use super::super::{ProbeOutcome, Verdict, run_with_timeout};
use super::MAX_BODY;

const JSON_BODY: &str =
    r#"{"status":"up","version":3,"checks":[{"name":"db","ok":true}],"ratio":0.5}"#;

/// An HTTP server on a free loopback port; returns its `http://127.0.0.1:PORT`.
async fn http_server() -> String {
    let app = Router::new()
        .route("/ok", get(|| async { "hello pharos v1.2.3" }))
        .route(
            "/status/{code}",
            get(|Path(code): Path<u16>| async move {
                (
                    StatusCode::from_u16(code).unwrap(),
                    format!("status {code}"),
                )
            }),
        )
        .route(
            "/json",
            get(|| async { ([(header::CONTENT_TYPE, "application/json")], JSON_BODY) }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_millis(300)).await;
                "finally"
            }),
        )
        .route(
            "/big",
            get(|| async {
                let mut body = "a".repeat(3 * MAX_BODY);
                body.push_str("needle");
                body
            }),
        )
        .route(
            "/echo",
            any(|method: Method, headers: HeaderMap| async move {
                let probe = headers
                    .get("x-probe")
                    .map(|v| v.to_str().unwrap().to_owned());
                let agent = headers
                    .get(header::USER_AGENT)
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .to_owned();
                format!("{method} {} {agent}", probe.unwrap_or_default())
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{address}")
}

async fn check(settings: serde_json::Value) -> ProbeOutcome {
    probe("http", settings).run().await
}

fn assert_verdict(outcome: &ProbeOutcome, verdict: Verdict, message: &str) {
    assert_eq!(
        (outcome.verdict, outcome.message.as_str()),
        (verdict, message),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn status_expectations() {
    let base = http_server().await;
    let ok = check(json!({ "url": format!("{base}/ok") })).await;
    assert_verdict(&ok, Verdict::Healthy, "ok");
    assert_eq!(ok.measurement("http_status"), Some(200.0));
    assert_eq!(ok.measurement("tls_days_left"), None);

    let outcome = check(json!({ "url": format!("{base}/status/503") })).await;
    assert_verdict(
        &outcome,
        Verdict::Unhealthy,
        "HTTP 503 (expected 2xx or 3xx)",
    );
    assert_eq!(outcome.measurement("http_status"), Some(503.0));
    // Redirects are not followed: a 3xx passes by default.
    let outcome = check(json!({ "url": format!("{base}/status/302") })).await;
    assert_verdict(&outcome, Verdict::Healthy, "ok");

    let outcome =
        check(json!({ "url": format!("{base}/status/503"), "expect_status": [503] })).await;
    assert_verdict(&outcome, Verdict::Healthy, "ok");
    let outcome = check(json!({ "url": format!("{base}/ok"), "expect_status": [204] })).await;
    assert_verdict(&outcome, Verdict::Unhealthy, "HTTP 200 (expected 204)");
    let outcome =
        check(json!({ "url": format!("{base}/status/404"), "expect_status": [200, 204] })).await;
    assert_verdict(
        &outcome,
        Verdict::Unhealthy,
        "HTTP 404 (expected 200 or 204)",
    );
}

#[tokio::test]
async fn body_substring_and_regex() {
    let base = http_server().await;
    let url = format!("{base}/ok");
    let outcome = check(json!({ "url": url, "body_contains": "pharos" })).await;
    assert_verdict(&outcome, Verdict::Healthy, "ok");
    let outcome = check(json!({ "url": url, "body_contains": "Pharos" })).await;
    assert_verdict(
        &outcome,
        Verdict::Unhealthy,
        "HTTP 200, but the body does not contain \"Pharos\"",
    );
    let outcome = check(json!({ "url": url, "body_regex": r"v\d+\.\d+\.\d+$" })).await;
    assert_verdict(&outcome, Verdict::Healthy, "ok");
    let outcome = check(json!({ "url": url, "body_regex": "^goodbye" })).await;
    assert_verdict(
        &outcome,
        Verdict::Unhealthy,
        "HTTP 200, but the body does not match /^goodbye/",
    );
    // The status is checked first.
    let outcome =
        check(json!({ "url": format!("{base}/status/500"), "body_contains": "status" })).await;
    assert_verdict(
        &outcome,
        Verdict::Unhealthy,
        "HTTP 500 (expected 2xx or 3xx)",
    );
}

#[tokio::test]
async fn json_condition() {
    let base = http_server().await;
    let url = format!("{base}/json");
    for (pointer, equals) in [
        ("/status", json!("up")),
        ("/version", json!(3)),
        ("/checks/0/ok", json!(true)),
        ("/ratio", json!(0.5)),
        ("/checks/0", json!({"ok": true, "name": "db"})),
    ] {
        let outcome =
            check(json!({ "url": url, "json": { "pointer": pointer, "equals": equals } })).await;
        assert_verdict(&outcome, Verdict::Healthy, "ok");
    }
    let outcome =
        check(json!({ "url": url, "json": { "pointer": "/status", "equals": "down" } })).await;
    assert_verdict(
        &outcome,
        Verdict::Unhealthy,
        r#"JSON "/status" is "up" (expected "down")"#,
    );
    // serde_json equality: the number 3 is not the string "3".
    let outcome =
        check(json!({ "url": url, "json": { "pointer": "/version", "equals": "3" } })).await;
    assert_verdict(
        &outcome,
        Verdict::Unhealthy,
        r#"JSON "/version" is 3 (expected "3")"#,
    );
    let outcome =
        check(json!({ "url": url, "json": { "pointer": "/checks/1/ok", "equals": true } })).await;
    assert_verdict(
        &outcome,
        Verdict::Unhealthy,
        r#"JSON "/checks/1/ok" is missing (expected true)"#,
    );
    let outcome =
        check(json!({ "url": format!("{base}/ok"), "json": { "pointer": "", "equals": {} } }))
            .await;
    assert_eq!(outcome.verdict, Verdict::Unhealthy);
    assert!(
        outcome
            .message
            .starts_with("HTTP 200, but the body is not JSON: "),
        "{}",
        outcome.message
    );
}

#[tokio::test]
async fn slow_responses_are_degraded() {
    let base = http_server().await;
    let outcome = check(json!({ "url": format!("{base}/slow"), "degraded_after": "100ms" })).await;
    assert_eq!(outcome.verdict, Verdict::Degraded, "{outcome:?}");
    assert!(
        outcome.message.starts_with("slow: ")
            && outcome.message.ends_with(" (degraded after 100ms)"),
        "{}",
        outcome.message
    );
    assert_eq!(outcome.measurement("http_status"), Some(200.0));

    let outcome = check(json!({ "url": format!("{base}/slow"), "degraded_after": "1m" })).await;
    assert_verdict(&outcome, Verdict::Healthy, "ok");
    // Slow and failing is unhealthy.
    let outcome = check(json!({
        "url": format!("{base}/slow"),
        "degraded_after": "100ms",
        "expect_status": [204],
    }))
    .await;
    assert_verdict(&outcome, Verdict::Unhealthy, "HTTP 200 (expected 204)");
}

#[tokio::test]
async fn timings_are_split_and_ordered() {
    let base = http_server().await;
    for path in ["/ok", "/slow", "/big"] {
        let outcome = check(json!({ "url": format!("{base}{path}") })).await;
        let t = &outcome.timings;
        let (connect, first_byte) = (t.connect.unwrap(), t.first_byte.unwrap());
        assert!(connect <= first_byte && first_byte <= t.total, "{t:?}");
        assert_eq!(t.tls, None);
        if path == "/slow" {
            // The server sleeps before sending the head.
            assert!(first_byte >= Duration::from_millis(300), "{t:?}");
        }
    }
}

#[tokio::test]
async fn method_headers_and_body_limit() {
    let base = http_server().await;
    let outcome = check(json!({
        "url": format!("{base}/echo"),
        "method": "post",
        "headers": { "X-Probe": "hello" },
        "body_regex": "^POST hello pharos-probe/",
    }))
    .await;
    assert_verdict(&outcome, Verdict::Healthy, "ok");
    let outcome = check(json!({ "url": format!("{base}/ok"), "method": "HEAD" })).await;
    assert_verdict(&outcome, Verdict::Healthy, "ok");

    // Only the first MiB is read: the needle past it is never seen.
    let url = format!("{base}/big");
    let outcome = check(json!({ "url": url, "body_contains": "needle" })).await;
    assert_verdict(
        &outcome,
        Verdict::Unhealthy,
        "HTTP 200, but the body does not contain \"needle\"",
    );
    let outcome = check(json!({ "url": url, "body_regex": "^a+$" })).await;
    assert_verdict(&outcome, Verdict::Healthy, "ok");
}

#[tokio::test]
async fn refused_and_timed_out() {
    let port = pharos_e2e::free_port();
    let outcome = check(json!({ "url": format!("http://127.0.0.1:{port}/") })).await;
    assert_eq!(outcome.verdict, Verdict::Unhealthy);
    assert!(
        outcome
            .message
            .starts_with(&format!("connect to 127.0.0.1:{port}: "))
            && outcome.message.contains("refused"),
        "{}",
        outcome.message
    );
    assert_eq!(outcome.timings.connect, None);

    // A server that reads the request and never answers: the caller's timeout ends
    // the probe, and dropping it closes the connection.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address: SocketAddr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut buf = vec![0; 4096];
        // Request bytes, then end of stream once the probe is dropped.
        while socket.read(&mut buf).await.unwrap() > 0 {}
    });
    let hung = probe("http", json!({ "url": format!("http://{address}/hang") }));
    let outcome = run_with_timeout(hung.as_ref(), Duration::from_millis(300)).await;
    assert_verdict(&outcome, Verdict::Unhealthy, "timed out after 300ms");
    assert_eq!(outcome.timings.total, Duration::from_millis(300));
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("the probe's connection was closed")
        .unwrap();
}

#[test]
fn settings_errors() {
    let error = |settings| build_error("http", settings);
    assert!(error(json!({ "url": "not a url" })).starts_with("invalid URL \"not a url\": "),);
    assert_eq!(
        error(json!({ "url": "ftp://files/x" })),
        "invalid URL \"ftp://files/x\": unsupported scheme \"ftp\": use http or https"
    );
    assert_eq!(
        error(json!({ "url": "/healthz" })),
        "invalid URL \"/healthz\": no scheme: start it with http:// or https://"
    );
    assert!(error(json!({ "url": "http://u:p@h/" })).contains("Authorization header"));
    assert_eq!(
        error(json!({ "url": "http://h/", "method": "GE T" })),
        "invalid HTTP method \"GE T\""
    );
    assert_eq!(
        error(json!({ "url": "http://h/", "headers": { "bad header": "x" } })),
        "invalid HTTP header \"bad header\": not a valid header name"
    );
    assert_eq!(
        error(json!({ "url": "http://h/", "expect_status": [200, 42] })),
        "invalid expect_status 42: HTTP status codes run from 100 to 599"
    );
    let err = error(json!({ "url": "http://h/", "body_regex": "(unclosed" }));
    assert!(
        err.starts_with("invalid body_regex \"(unclosed\": ") && err.contains("unclosed group"),
        "{err}"
    );
    assert!(
        error(json!({ "url": "http://h/", "json": { "pointer": "status", "equals": 1 } }))
            .starts_with("invalid JSON pointer \"status\": it must be empty or start with '/'")
    );
    assert!(
        error(json!({ "url": "http://h/", "degraded_after": "fast" }))
            .starts_with("invalid degraded_after \"fast\" (")
    );
    assert!(
        error(json!({ "url": "http://h/", "timeout": "1s" }))
            .starts_with("invalid http check settings: unknown field `timeout`")
    );
}

mod tls {
    use std::sync::Arc;

    use bytes::Bytes;
    use http_body_util::Full;
    use hyper_util::rt::TokioIo;
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    use tempfile::TempDir;
    use tokio_rustls::TlsAcceptor;
    use tokio_rustls::rustls::ServerConfig;
    use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

    use super::*;

    struct HttpsServer {
        url: String,
        /// Holds `ca.pem`, the CA that signed the server's certificate.
        dir: TempDir,
        /// The certificate's notAfter, in days from now.
        days_left: f64,
    }

    impl HttpsServer {
        fn ca_file(&self) -> String {
            self.dir.path().join("ca.pem").display().to_string()
        }
    }

    /// An HTTPS server on a free loopback port whose certificate, for 127.0.0.1 and
    /// localhost, is signed by a CA made for the test and expires in `days` days
    /// (at midnight UTC).
    async fn https_server(days: u64) -> HttpsServer {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "Pharos probe test CA");
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let ca = Issuer::new(ca_params, ca_key);

        let today = chrono::Utc::now().date_naive();
        let expiry = today + chrono::Days::new(days);
        let date = |d: chrono::NaiveDate| {
            use chrono::Datelike;
            rcgen::date_time_ymd(d.year(), d.month() as u8, d.day() as u8)
        };
        let leaf_key = KeyPair::generate().unwrap();
        let mut leaf_params =
            CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
        leaf_params.not_before = date(today - chrono::Days::new(1));
        leaf_params.not_after = date(expiry);
        let leaf = leaf_params.signed_by(&leaf_key, &ca).unwrap();
        let days_left = (expiry.and_hms_opt(0, 0, 0).unwrap().and_utc() - chrono::Utc::now())
            .as_seconds_f64()
            / 86_400.0;

        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), ca_cert.pem()).unwrap();

        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![leaf.der().clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
            )
            .unwrap();
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (socket, _) = listener.accept().await.unwrap();
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    // Failed handshakes (an untrusting client) just end here.
                    let Ok(tls) = acceptor.accept(socket).await else {
                        return;
                    };
                    let service = hyper::service::service_fn(|_request| async {
                        Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(
                            Bytes::from_static(b"secure hello"),
                        )))
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        HttpsServer {
            url: format!("https://{address}/"),
            dir,
            days_left,
        }
    }

    #[tokio::test]
    async fn trusted_ca_file() {
        let server = https_server(30).await;
        let outcome = check(json!({
            "url": server.url,
            "ca_file": server.ca_file(),
            "body_contains": "secure hello",
        }))
        .await;
        assert_verdict(&outcome, Verdict::Healthy, "ok");
        let t = &outcome.timings;
        let (connect, tls, first_byte) =
            (t.connect.unwrap(), t.tls.unwrap(), t.first_byte.unwrap());
        assert!(
            connect <= tls && tls <= first_byte && first_byte <= t.total,
            "{t:?}"
        );
        let days_left = outcome.measurement("tls_days_left").unwrap();
        assert!(
            (days_left - server.days_left).abs() < 0.01 && days_left > 29.0,
            "tls_days_left {days_left}, expected {}",
            server.days_left
        );
        assert_eq!(outcome.measurement("http_status"), Some(200.0));

        // localhost is in the certificate too.
        let port = server.url.rsplit(':').next().unwrap();
        let outcome = check(json!({
            "url": format!("https://localhost:{port}"),
            "ca_file": server.ca_file(),
        }))
        .await;
        assert_verdict(&outcome, Verdict::Healthy, "ok");
    }

    #[tokio::test]
    async fn expiring_certificate_is_degraded() {
        let server = https_server(10).await;
        let outcome = check(json!({
            "url": server.url,
            "ca_file": server.ca_file(),
            "min_tls_days": 14,
        }))
        .await;
        assert_eq!(outcome.verdict, Verdict::Degraded, "{outcome:?}");
        assert_eq!(
            outcome.message,
            format!(
                "TLS certificate expires in {:.1} days (minimum 14)",
                outcome.measurement("tls_days_left").unwrap()
            )
        );
        let outcome = check(json!({
            "url": server.url,
            "ca_file": server.ca_file(),
            "min_tls_days": 7,
        }))
        .await;
        assert_verdict(&outcome, Verdict::Healthy, "ok");
    }

    #[tokio::test]
    async fn unknown_issuer_is_unhealthy() {
        // Without ca_file the public roots are trusted, and the test CA is not one.
        let server = https_server(30).await;
        let outcome = check(json!({ "url": server.url })).await;
        assert_eq!(outcome.verdict, Verdict::Unhealthy, "{outcome:?}");
        assert!(
            outcome.message.starts_with("TLS handshake with 127.0.0.1:")
                && outcome.message.contains("UnknownIssuer"),
            "{}",
            outcome.message
        );
        let t = &outcome.timings;
        assert!(t.connect.is_some() && t.tls.is_none() && t.first_byte.is_none());
        assert!(outcome.measurements.is_empty());
    }

    #[test]
    fn ca_file_errors() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem").display().to_string();
        let err = build_error("http", json!({ "url": "https://h/", "ca_file": missing }));
        assert!(
            err.starts_with(&format!("ca_file {missing:?}: cannot read it: "))
                && err.contains("No such file"),
            "{err}"
        );
        let garbage = dir.path().join("garbage.pem");
        std::fs::write(&garbage, "not a certificate\n").unwrap();
        let garbage = garbage.display().to_string();
        let err = build_error("http", json!({ "url": "https://h/", "ca_file": garbage }));
        assert_eq!(
            err,
            format!("ca_file {garbage:?}: no PEM certificate (-----BEGIN CERTIFICATE-----) in it")
        );
        let broken = dir.path().join("broken.pem");
        std::fs::write(
            &broken,
            "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let broken = broken.display().to_string();
        let err = build_error("http", json!({ "url": "https://h/", "ca_file": broken }));
        assert!(
            err.starts_with(&format!("ca_file {broken:?}: certificate 1: ")),
            "{err}"
        );
    }
}
