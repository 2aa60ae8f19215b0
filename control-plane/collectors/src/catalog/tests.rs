use super::*;
use crate::health::probe;
use std::time::Duration;

const VALID: &str = "\
environments:
  - id: prod
    name: Production
    port_range: 8000-8009
  - id: dev
projects:
  - id: api
    name: API
    deployments:
      - environment: prod
        ports:
          - {port: 8000, type: http, service: api}
          - {port: 8001, type: grpc, service: api-grpc}
        checks:
          - name: up
            http: {url: 'http://127.0.0.1:8000/health'}
            interval: 5s
      - environment: dev
  - id: web
    deployments:
      - environment: prod
        ports:
          - {port: 8002, type: https, service: web}
";

fn problems(text: &str) -> Vec<String> {
    parse(text, "catalog.yaml")
        .expect_err("catalog should be rejected")
        .problems
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn valid_catalog_becomes_domain_objects() {
    let catalog = parse(VALID, "catalog.yaml").unwrap();
    assert_eq!(catalog.environments.len(), 2);
    assert_eq!(
        catalog.environments[1].name, "dev",
        "name defaults to the id"
    );
    assert_eq!(catalog.projects[0].environments, vec!["prod", "dev"]);
    assert_eq!(catalog.projects[1].project_type, "service");
    assert_eq!(catalog.deployments.len(), 3);
    assert_eq!(catalog.ports.len(), 3);
    let check = &catalog.deployments[0].checks[0];
    assert_eq!((check.kind.as_str(), check.interval.as_secs()), ("http", 5));
    assert_eq!(
        check.timeout.as_secs(),
        5,
        "timeout defaults to min(5s, interval)"
    );
}

#[test]
fn the_demo_catalog_is_valid() {
    parse(
        &expand(DEMO_CATALOG, "127.0.0.1:7600".parse().unwrap()),
        "demo",
    )
    .unwrap();
}

#[test]
fn the_demo_catalog_checks_the_address_pharosd_listens_on() {
    let at = |listen: &str| {
        let catalog = parse(&expand(DEMO_CATALOG, listen.parse().unwrap()), "demo").unwrap();
        let checks = &catalog.deployments[0].checks;
        checks
            .iter()
            .map(|check| format!("{:?}", check.kind))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let on_7700 = at("127.0.0.1:7700");
    assert!(on_7700.contains("127.0.0.1:7700"), "{on_7700}");
    assert!(
        on_7700.contains("http://127.0.0.1:7700/healthz"),
        "{on_7700}"
    );
    assert!(!on_7700.contains("7600"), "{on_7700}");
    // Listening on every interface, the checks go through loopback.
    assert!(at("0.0.0.0:7601").contains("127.0.0.1:7601"));
    assert!(at("[::]:7602").contains("[::1]:7602"));
}

#[test]
fn unknown_fields_point_at_their_place() {
    let text = VALID.replace("    name: API\n", "    name: API\n    owner: team-a\n");
    let found = problems(&text);
    assert_eq!(found.len(), 1);
    assert!(
        found[0].starts_with(
            "catalog.yaml:9:5: projects[0].owner: unknown field `owner`, expected one of"
        ),
        "{found:?}"
    );
}

#[test]
fn malformed_values_name_the_field() {
    let text = VALID.replace("port: 8001", "port: eighty");
    let found = problems(&text);
    assert!(
        found[0].starts_with("catalog.yaml:13:20: projects[0].deployments[0].ports[1].port: invalid type: string \"eighty\", expected u16"),
        "{found:?}"
    );
}

#[test]
fn duplicate_ids_and_port_conflicts_are_all_reported() {
    let text = format!(
        "{VALID}  - id: api\n    deployments: []\n  - id: cache\n    deployments:\n      - environment: prod\n        ports:\n          - {{port: 8000, type: tcp, service: redis}}\n"
    );
    let found = problems(&text);
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(
        found[0].contains("projects[2].id: duplicate project id \"api\""),
        "{found:?}"
    );
    assert!(found[0].starts_with("catalog.yaml:24:9:"), "{found:?}");
    assert!(found[1].starts_with("catalog.yaml:30:20:"), "{found:?}");
    assert!(
        found[1].contains("projects[3].deployments[0].ports[0].port: port 8000 in environment \"prod\" is already allocated to api/api"),
        "{found:?}"
    );
}

#[test]
fn semantic_errors_cover_references_ranges_and_checks() {
    let text = VALID
        .replace(
            "      - environment: dev\n",
            "      - environment: staging\n",
        )
        .replace("port: 8002", "port: 9000")
        .replace("interval: 5s", "interval: soon");
    let found = problems(&text);
    assert_eq!(found.len(), 3, "{found:?}");
    assert!(
        found
            .iter()
            .any(|p| p.contains("checks[0].interval: invalid duration \"soon\""))
    );
    assert!(
        found
            .iter()
            .any(|p| p.contains("deployments[1].environment: unknown environment \"staging\""))
    );
    assert!(found.iter().any(|p| p.contains("port 9000 is outside environment \"prod\"'s port range 8000-8009")));
}

#[test]
fn a_check_needs_exactly_one_kind() {
    let text = VALID.replace(
        "            http: {url: 'http://127.0.0.1:8000/health'}\n",
        "            http: {url: 'http://127.0.0.1:8000/health'}\n            tcp: {address: '127.0.0.1:8000'}\n",
    );
    let found = problems(&text);
    assert!(found[0].contains("needs exactly one kind"), "{found:?}");
    assert!(found[0].contains("found http, tcp"), "{found:?}");
}

#[test]
fn diff_upserts_in_dependency_order_and_deletes_in_reverse() {
    use pharos_store::journal::{Object, Op};
    let old = parse(VALID, "old").unwrap();
    let text = VALID
        .replace("  - id: web\n    deployments:\n      - environment: prod\n        ports:\n          - {port: 8002, type: https, service: web}\n", "")
        .replace("    name: API\n", "    name: API v2\n");
    let new = parse(&text, "new").unwrap();
    let changes = sync::diff(&old, &new);
    let summary: Vec<(Op, String)> = changes.iter().map(|c| (c.op, c.object.key())).collect();
    assert_eq!(
        summary,
        vec![
            (Op::Upsert, "project/api".to_owned()),
            (Op::Delete, "port/prod/8002".to_owned()),
            (Op::Delete, "deployment/web/prod".to_owned()),
            (Op::Delete, "project/web".to_owned()),
        ]
    );
    assert!(matches!(&changes[0].object, Object::Project(p) if p.name == "API v2"));
    assert!(sync::diff(&new, &new).is_empty());
}

#[test]
fn checks_the_prober_cannot_run_are_rejected_with_their_field() {
    let cases = [
        (
            "http: {url: 'http://127.0.0.1:8000/health'}",
            "http: {url: 'not a url'}",
            "checks[0].http.url: invalid URL",
        ),
        (
            "http: {url: 'http://127.0.0.1:8000/health'}",
            "http: {url: 'http://x/', body_regex: '(['}",
            "checks[0].http.body_regex: invalid body_regex",
        ),
        (
            "http: {url: 'http://127.0.0.1:8000/health'}",
            "tcp: {address: 'no-port'}",
            "checks[0].tcp.address: invalid address",
        ),
        (
            "interval: 5s",
            "interval: -5s",
            "checks[0].interval: invalid duration \"-5s\"",
        ),
        (
            "http: {url: 'http://127.0.0.1:8000/health'}",
            "smtp: {host: x}",
            "checks[0].smtp: unknown field `smtp`",
        ),
    ];
    for (from, to, expected) in cases {
        let text = VALID.replace(from, to);
        let found = problems(&text);
        assert!(
            found
                .iter()
                .any(|p| p.contains(expected) && p.starts_with("catalog.yaml:1")),
            "{to}: {found:?}"
        );
    }
}

#[test]
fn metrics_sections_are_validated_with_their_fields() {
    let text = r#"environments:
  - id: prod
projects: []
scrape_targets:
  - name: plain
    url: http://127.0.0.1:9100/metrics
    ca_file: /etc/ssl/ca.pem
  - name: missing-ca
    url: https://127.0.0.1:9100/metrics
    ca_file: /no/such/ca.pem
kpis:
  - name: tenants
    dsn: mysql://db/tenants
    query: SELECT 1 AS one
    interval: 10s
    timeout: 20s
anomaly_detectors:
  - name: spiky
    metric: latency
    method: ewma
    window: 5m
    alpha: 1.5
prometheus_backends:
  - name: main
    url: ftp://prometheus:9090
    series: ['9bad']
"#;
    let found = problems(text);
    let expect = [
        "scrape_targets[0].ca_file: applies to https:// URLs only",
        "scrape_targets[1].ca_file: ",
        "kpis[0].dsn: not a postgres:// URL",
        "kpis[0].timeout: must be more than zero and at most the interval",
        "anomaly_detectors[0].window: `window` belongs to method `robust_z`",
        "anomaly_detectors[0].alpha: must be between 0 and 1",
        "prometheus_backends[0].url: unsupported URL",
        "prometheus_backends[0].series[0]: \"9bad\" is not a series name",
    ];
    assert_eq!(found.len(), expect.len(), "{found:#?}");
    for (problem, expected) in found.iter().zip(expect) {
        assert!(problem.contains(expected), "{problem:?} lacks {expected:?}");
    }
    assert!(found[1].contains("/no/such/ca.pem"), "{found:?}");
}

/// Every field of every kind, through the real catalog parser, makes a probe.
#[test]
fn every_catalog_setting_builds() {
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    let key = rcgen::KeyPair::generate().unwrap();
    let ca = rcgen::CertificateParams::new(vec!["ca.test".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    std::fs::write(&ca_file, ca.pem()).unwrap();
    let text = format!(
        r#"
environments:
  - id: prod
projects:
  - id: shop
    deployments:
      - environment: prod
        checks:
          - name: web
            http:
              url: https://shop.example.com:8443/healthz?deep=1
              method: HEAD
              headers: {{ Authorization: Bearer x, X-Probe: "1" }}
              expect_status: [200, 204]
              body_contains: ok
              body_regex: '^ok\s+v\d+'
              degraded_after: 800ms
              min_tls_days: 14
              json: {{ pointer: /status, equals: {{ up: [1, true, null] }} }}
              ca_file: {ca_file}
          - name: port
            tcp: {{ address: "[::1]:22" }}
          - name: rpc
            grpc: {{ address: orders.internal:50051, service: shop.Orders }}
          - name: db
            postgres: {{ dsn: "postgres://shop:pw@db.internal:5432/shop?sslmode=require" }}
          - name: cache
            redis: {{ url: "redis://:pw@cache.internal:6379/3" }}
          - name: bus
            mqtt: {{ address: mqtt.internal:1883 }}
          - name: cron
            heartbeat: {{ grace: 5m }}
          - name: containers
            container: {{}}
"#,
        ca_file = ca_file.display()
    );
    let catalog = parse(&text, "test").expect("a valid catalog");
    let checks = &catalog.deployments[0].checks;
    assert_eq!(checks.len(), 8);
    for check in checks {
        let kind = probe::build(check).unwrap_or_else(|e| panic!("{}: {e}", check.name));
        match check.kind.as_str() {
            "heartbeat" => assert!(matches!(kind, probe::ProbeKind::Heartbeat { grace }
                    if grace == Duration::from_secs(300))),
            "container" => assert!(matches!(kind, probe::ProbeKind::Container)),
            _ => assert!(
                matches!(kind, probe::ProbeKind::Active(_)),
                "{}",
                check.name
            ),
        }
    }

    let demo_text = expand(DEMO_CATALOG, "[::]:7600".parse().unwrap());
    let demo = parse(&demo_text, "demo").unwrap();
    for check in demo.deployments.iter().flat_map(|d| &d.checks) {
        probe::build(check).unwrap_or_else(|e| panic!("demo check {}: {e}", check.name));
    }
}

const BAD_SETTINGS: &str = r#"environments:
  - id: prod
projects:
  - id: shop
    deployments:
      - environment: prod
        checks:
          - name: a
            http: {url: 'http://h/', json: {pointer: status, equals: 1}}
          - name: b
            http: {url: 'http://h/', degraded_after: fast}
          - name: c
            http: {url: 'https://h/', ca_file: /no/such/ca.pem}
          - name: d
            http: {url: 'http://h/', method: 'GE T'}
          - name: e
            http: {url: 'http://h/', headers: {'bad header': x}}
          - name: f
            http: {url: 'http://h/', expect_status: [42]}
          - name: g
            grpc: {address: 'h'}
          - name: h
            postgres: {dsn: 'mysql://u:pw@h/db'}
          - name: i
            redis: {url: 'rediss://h'}
          - name: j
            mqtt: {address: 'h:0'}
          - name: k
            heartbeat: {grace: soon}
          - name: l
            tcp: {address: 'h:1'}
            container: {}
          - name: m
            http: {url: 'http://h/', body_regex: '(['}
          - name: n
            http: {url: 'ftp://h/'}
"#;

/// Settings problems of every kind, each at its field and place, worded as when the
/// probes read their settings from JSON (these strings were recorded then).
#[test]
fn settings_problems_keep_their_place_and_wording() {
    let expected = [
        (
            "9:54",
            "[0].http.json.pointer: invalid JSON pointer \"status\": it must be empty or start with '/' (RFC 6901), such as \"/status\"",
        ),
        (
            "11:54",
            "[1].http.degraded_after: invalid degraded_after \"fast\" (expected number at 0); use forms such as 500ms, 10s, 1m",
        ),
        (
            "13:48",
            "[2].http.ca_file: ca_file \"/no/such/ca.pem\": cannot read it: ",
        ),
        ("15:46", "[3].http.method: invalid HTTP method \"GE T\""),
        (
            "17:47",
            "[4].http.headers: invalid HTTP header \"bad header\": not a valid header name",
        ),
        (
            "19:53",
            "[5].http.expect_status: invalid expect_status 42: HTTP status codes run from 100 to 599",
        ),
        (
            "21:29",
            "[6].grpc.address: invalid address \"h\": expected HOST:PORT, such as db.internal:5432",
        ),
        (
            "23:29",
            "[7].postgres.dsn: invalid PostgreSQL DSN \"mysql://u:***@h/db\": not a postgres:// URL; expected postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?sslmode=..]",
        ),
        (
            "25:26",
            "[8].redis.url: invalid URL \"rediss://h\": TLS (rediss://) is not supported",
        ),
        (
            "27:29",
            "[9].mqtt.address: invalid address \"h:0\": the port must be a number from 1 to 65535",
        ),
        (
            "29:32",
            "[10].heartbeat.grace: invalid duration \"soon\"; use forms such as 30s or 5m",
        ),
        (
            "29:32",
            "[10].heartbeat.grace: invalid grace \"soon\" (expected number at 0); use forms such as 500ms, 10s, 1m",
        ),
        (
            "30:17",
            "[11]: a check needs exactly one kind (http, tcp, grpc, postgres, redis, mqtt, heartbeat or container); found tcp, container",
        ),
        (
            "34:50",
            "[12].http.body_regex: invalid body_regex \"([\": regex parse error:",
        ),
        (
            "36:25",
            "[13].http.url: invalid URL \"ftp://h/\": unsupported scheme \"ftp\": use http or https",
        ),
    ];
    let found = problems(BAD_SETTINGS);
    assert_eq!(found.len(), expected.len(), "{found:#?}");
    for (problem, (place, check)) in found.iter().zip(expected) {
        let expected = format!("catalog.yaml:{place}: projects[0].deployments[0].checks{check}");
        assert!(
            problem.starts_with(&expected),
            "{problem:?}\nexpected {expected:?}"
        );
    }
    // Complete messages, where nothing depends on the platform or the regex crate.
    assert!(found[0].ends_with("such as \"/status\""), "{}", found[0]);
    assert!(found[14].ends_with("use http or https"), "{}", found[14]);

    // Fields a kind does not have stop the parse, at their own place.
    for (from, to, expected) in [
        (
            "http: {url: 'http://h/', degraded_after: fast}",
            "http: {url: 'http://h/', timeout: 1s}",
            "catalog.yaml:11:38: projects[0].deployments[0].checks[1].http.timeout: unknown field `timeout`, expected one of `url`, `method`, `headers`, `expect_status`, `body_contains`, `body_regex`, `degraded_after`, `min_tls_days`, `json`, `ca_file`",
        ),
        (
            "grpc: {address: 'h'}",
            "grpc: {address: 'h:1', services: x}",
            "catalog.yaml:21:36: projects[0].deployments[0].checks[6].grpc.services: unknown field `services`, expected `address` or `service`",
        ),
        (
            "container: {}",
            "container: {label: x}",
            "catalog.yaml:32:25: projects[0].deployments[0].checks[11].container.label: unknown field `label`, there are no fields",
        ),
        (
            "heartbeat: {grace: soon}",
            "heartbeat: {}",
            "catalog.yaml:29:24: projects[0].deployments[0].checks[10].heartbeat: missing field `grace`",
        ),
    ] {
        let found = problems(&BAD_SETTINGS.replace(from, to));
        assert_eq!(found, [expected], "{to}");
    }
}

#[test]
fn an_empty_file_is_refused_but_an_explicitly_empty_catalog_is_not() {
    for blank in ["", "\n\n", "# only a comment\n", "---\n# nothing\n"] {
        let found = problems(blank);
        assert_eq!(
            found,
            [
                "catalog.yaml:1:1: the catalog file is empty; to run with no projects, write `projects: []`"
            ],
            "{blank:?}"
        );
    }
    let empty = parse("projects: []\n", "catalog.yaml").unwrap();
    assert!(empty.projects.is_empty() && empty.environments.is_empty());
}
