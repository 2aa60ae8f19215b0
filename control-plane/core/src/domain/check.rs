//! Health checks: what each kind probes and the settings the catalog accepts for it. The
//! catalog file deserializes these structs, the probes build from them, and the store
//! keeps them, so a setting is declared in this module only.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::catalog::duration_millis;

/// A health check as the catalog declares it. The health engine runs it; the catalog only
/// validates and stores it.
///
/// Stored and journaled as `{"name", "kind", "target", "interval", "timeout", "settings",
/// "unhealthy_after", "healthy_after"}`, with the durations in milliseconds and the
/// settings as the kind's struct: the form written before kinds were typed, so rows and
/// journal entries of earlier versions load unchanged (and an earlier version can read
/// what this one writes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckSpec {
    pub name: String,
    pub kind: CheckKind,
    pub interval: Duration,
    pub timeout: Duration,
    /// Consecutive failing runs before the check turns unhealthy.
    pub unhealthy_after: u32,
    /// Consecutive passing runs before an unhealthy check turns healthy again.
    pub healthy_after: u32,
}

impl CheckSpec {
    /// The kind's name as the catalog writes it, such as `http`.
    pub fn kind_name(&self) -> &'static str {
        self.kind.as_str()
    }

    /// What the check reaches, for display; see [`CheckKind::target`].
    pub fn target(&self) -> String {
        self.kind.target()
    }
}

pub const fn default_unhealthy_after() -> u32 {
    3
}

pub const fn default_healthy_after() -> u32 {
    1
}

/// What a check probes, with its settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckKind {
    /// Boxed: the HTTP settings are several times the size of any other kind's.
    Http(Box<HttpCheck>),
    Tcp(AddressCheck),
    Grpc(GrpcCheck),
    Postgres(PostgresCheck),
    Redis(RedisCheck),
    Mqtt(AddressCheck),
    /// Passive: healthy while heartbeats arrive.
    Heartbeat(HeartbeatCheck),
    /// Passive: follows the state of the deployment's containers.
    Container,
}

impl CheckKind {
    /// The kind's name as the catalog writes it, such as `http`.
    pub fn as_str(&self) -> &'static str {
        match self {
            CheckKind::Http(_) => "http",
            CheckKind::Tcp(_) => "tcp",
            CheckKind::Grpc(_) => "grpc",
            CheckKind::Postgres(_) => "postgres",
            CheckKind::Redis(_) => "redis",
            CheckKind::Mqtt(_) => "mqtt",
            CheckKind::Heartbeat(_) => "heartbeat",
            CheckKind::Container => "container",
        }
    }

    /// What the check reaches, for display: the URL or address, a DSN or Redis URL
    /// without its password, or a description of a passive check.
    pub fn target(&self) -> String {
        match self {
            CheckKind::Http(http) => http.url.clone(),
            CheckKind::Tcp(check) | CheckKind::Mqtt(check) => check.address.clone(),
            CheckKind::Grpc(grpc) if grpc.service.is_empty() => grpc.address.clone(),
            CheckKind::Grpc(grpc) => format!("{} ({})", grpc.address, grpc.service),
            CheckKind::Postgres(postgres) => crate::redact::redact(&postgres.dsn),
            CheckKind::Redis(redis) => crate::redact::redact(&redis.url),
            CheckKind::Heartbeat(heartbeat) => format!("heartbeat within {}", heartbeat.grace),
            CheckKind::Container => "container state".to_owned(),
        }
    }

    /// The kind named `kind` with `settings` as stored. The messages are the ones the
    /// probes gave when they read these settings themselves.
    fn from_stored(kind: &str, settings: serde_json::Value) -> Result<CheckKind, String> {
        fn parse<T: DeserializeOwned>(
            kind: &str,
            settings: serde_json::Value,
        ) -> Result<T, String> {
            T::deserialize(settings).map_err(|err| format!("invalid {kind} check settings: {err}"))
        }
        Ok(match kind {
            "http" => CheckKind::Http(parse(kind, settings)?),
            "tcp" => CheckKind::Tcp(parse(kind, settings)?),
            "grpc" => CheckKind::Grpc(parse(kind, settings)?),
            "postgres" => CheckKind::Postgres(parse(kind, settings)?),
            "redis" => CheckKind::Redis(parse(kind, settings)?),
            "mqtt" => CheckKind::Mqtt(parse(kind, settings)?),
            "heartbeat" => CheckKind::Heartbeat(parse(kind, settings)?),
            "container" => {
                let ContainerCheck {} = parse(kind, settings)?;
                CheckKind::Container
            }
            other => {
                return Err(format!(
                    "unknown check kind {other:?} (expected http, tcp, grpc, postgres, redis, mqtt, heartbeat or container)"
                ));
            }
        })
    }
}

/// An HTTP(S) request and what its response must look like.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpCheck {
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Accepted status codes; empty: any 2xx or 3xx.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expect_status: Vec<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_contains: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_regex: Option<String>,
    /// Latency above which a passing check is degraded, such as `800ms`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub degraded_after: Option<String>,
    /// Fewer days than this before the TLS certificate expires is degraded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_tls_days: Option<u32>,
    /// A condition on the JSON response body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json: Option<JsonCondition>,
    /// PEM file of the CA that signs the server's certificate (default: public roots).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
}

/// The value at a JSON pointer (RFC 6901, such as `/status` or `/checks/0/ok`) must
/// equal `equals`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonCondition {
    pub pointer: String,
    pub equals: serde_json::Value,
}

/// A TCP endpoint, for `tcp` and `mqtt` checks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddressCheck {
    /// `HOST:PORT`.
    pub address: String,
}

/// `grpc.health.v1.Health/Check` on a plaintext (h2c) server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrpcCheck {
    /// `HOST:PORT`.
    pub address: String,
    /// Service name for `grpc.health.v1.Health/Check`; empty for the whole server.
    #[serde(default)]
    pub service: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresCheck {
    /// `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?sslmode=..]`.
    pub dsn: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisCheck {
    /// `redis://[[USER]:PASSWORD@]HOST[:PORT][/DATABASE]`.
    pub url: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeartbeatCheck {
    /// How long without a heartbeat before the check fails, such as `1m`.
    pub grace: String,
}

/// A `container` check has no settings; the catalog writes it `container: {}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContainerCheck {}

/// [`CheckSpec`]'s stored form, for writing. `target` is written although it is derived
/// from the settings, because earlier versions read it.
#[derive(Serialize)]
struct StoredCheckRef<'a> {
    name: &'a str,
    kind: &'static str,
    target: String,
    #[serde(with = "duration_millis")]
    interval: Duration,
    #[serde(with = "duration_millis")]
    timeout: Duration,
    settings: StoredSettings<'a>,
    unhealthy_after: u32,
    healthy_after: u32,
}

/// The settings alone, without the kind around them.
struct StoredSettings<'a>(&'a CheckKind);

impl Serialize for StoredSettings<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            CheckKind::Http(http) => http.serialize(serializer),
            CheckKind::Tcp(check) | CheckKind::Mqtt(check) => check.serialize(serializer),
            CheckKind::Grpc(grpc) => grpc.serialize(serializer),
            CheckKind::Postgres(postgres) => postgres.serialize(serializer),
            CheckKind::Redis(redis) => redis.serialize(serializer),
            CheckKind::Heartbeat(heartbeat) => heartbeat.serialize(serializer),
            CheckKind::Container => ContainerCheck {}.serialize(serializer),
        }
    }
}

/// [`CheckSpec`]'s stored form, for reading. A stored `target` is ignored: it is derived
/// from the settings again.
#[derive(Deserialize)]
struct StoredCheck {
    name: String,
    kind: String,
    #[serde(with = "duration_millis")]
    interval: Duration,
    #[serde(with = "duration_millis")]
    timeout: Duration,
    settings: serde_json::Value,
    // Absent from rows written before the thresholds were configurable.
    #[serde(default = "default_unhealthy_after")]
    unhealthy_after: u32,
    #[serde(default = "default_healthy_after")]
    healthy_after: u32,
}

impl Serialize for CheckSpec {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        StoredCheckRef {
            name: &self.name,
            kind: self.kind.as_str(),
            target: self.kind.target(),
            interval: self.interval,
            timeout: self.timeout,
            settings: StoredSettings(&self.kind),
            unhealthy_after: self.unhealthy_after,
            healthy_after: self.healthy_after,
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for CheckSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let stored = StoredCheck::deserialize(deserializer)?;
        Ok(CheckSpec {
            kind: CheckKind::from_stored(&stored.kind, stored.settings)
                .map_err(D::Error::custom)?,
            name: stored.name,
            interval: stored.interval,
            timeout: stored.timeout,
            unhealthy_after: stored.unhealthy_after,
            healthy_after: stored.healthy_after,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One check of every kind as the version with untyped settings stored them: each line
    /// is what that version's `serde_json::to_string` gave for a check of a catalog it
    /// parsed. Its settings went through `serde_json::Value`, hence the sorted keys.
    const STORED_BEFORE_TYPED_KINDS: &str = r#"[
        {"name":"web","kind":"http","target":"https://shop.example.com/healthz","interval":30000,"timeout":5000,"settings":{"body_contains":"ok","body_regex":"^ok","degraded_after":"800ms","expect_status":[200,204],"headers":{"X-Probe":"1"},"json":{"equals":{"up":[1,true,null]},"pointer":"/status"},"method":"HEAD","min_tls_days":14,"url":"https://shop.example.com/healthz"},"unhealthy_after":3,"healthy_after":1},
        {"name":"plain","kind":"http","target":"http://127.0.0.1:8000/health","interval":5000,"timeout":5000,"settings":{"url":"http://127.0.0.1:8000/health"},"unhealthy_after":2,"healthy_after":4},
        {"name":"port","kind":"tcp","target":"[::1]:22","interval":30000,"timeout":5000,"settings":{"address":"[::1]:22"},"unhealthy_after":3,"healthy_after":1},
        {"name":"rpc","kind":"grpc","target":"orders.internal:50051 (shop.Orders)","interval":30000,"timeout":5000,"settings":{"address":"orders.internal:50051","service":"shop.Orders"},"unhealthy_after":3,"healthy_after":1},
        {"name":"server","kind":"grpc","target":"orders.internal:50051","interval":30000,"timeout":5000,"settings":{"address":"orders.internal:50051","service":""},"unhealthy_after":3,"healthy_after":1},
        {"name":"db","kind":"postgres","target":"postgres://shop:***@db.internal:5432/shop","interval":30000,"timeout":5000,"settings":{"dsn":"postgres://shop:pw@db.internal:5432/shop"},"unhealthy_after":3,"healthy_after":1},
        {"name":"cache","kind":"redis","target":"redis://:***@cache.internal:6379/3","interval":30000,"timeout":5000,"settings":{"url":"redis://:pw@cache.internal:6379/3"},"unhealthy_after":3,"healthy_after":1},
        {"name":"bus","kind":"mqtt","target":"mqtt.internal:1883","interval":30000,"timeout":5000,"settings":{"address":"mqtt.internal:1883"},"unhealthy_after":3,"healthy_after":1},
        {"name":"cron","kind":"heartbeat","target":"heartbeat within 5m","interval":30000,"timeout":5000,"settings":{"grace":"5m"},"unhealthy_after":3,"healthy_after":1},
        {"name":"containers","kind":"container","target":"container state","interval":30000,"timeout":5000,"settings":{},"unhealthy_after":3,"healthy_after":1}
    ]"#;

    #[test]
    fn checks_stored_before_kinds_were_typed_load_and_are_written_back_the_same() {
        let stored: Vec<serde_json::Value> =
            serde_json::from_str(STORED_BEFORE_TYPED_KINDS).unwrap();
        let checks: Vec<CheckSpec> = serde_json::from_str(STORED_BEFORE_TYPED_KINDS).unwrap();
        let kinds: Vec<&str> = checks.iter().map(CheckSpec::kind_name).collect();
        assert_eq!(
            kinds,
            [
                "http",
                "http",
                "tcp",
                "grpc",
                "grpc",
                "postgres",
                "redis",
                "mqtt",
                "heartbeat",
                "container"
            ]
        );
        let CheckKind::Http(http) = &checks[0].kind else {
            panic!("{:?}", checks[0].kind)
        };
        assert_eq!(http.expect_status, [200, 204]);
        assert_eq!(http.degraded_after.as_deref(), Some("800ms"));
        assert_eq!(
            http.json.as_ref().map(|json| &json.equals),
            Some(&serde_json::json!({"up": [1, true, null]}))
        );
        assert_eq!(checks[1].interval, Duration::from_secs(5));
        assert_eq!((checks[1].unhealthy_after, checks[1].healthy_after), (2, 4));
        for (check, old) in checks.iter().zip(&stored) {
            assert_eq!(check.target(), old["target"], "{}", check.name);
            // Written back with the same content (the settings' keys now come in field
            // order, which no reader depends on), so the previous version reads it.
            assert_eq!(&serde_json::to_value(check).unwrap(), old, "{}", check.name);
        }
        assert_eq!(
            serde_json::to_string(&checks[2]).unwrap(),
            r#"{"name":"port","kind":"tcp","target":"[::1]:22","interval":30000,"timeout":5000,"settings":{"address":"[::1]:22"},"unhealthy_after":3,"healthy_after":1}"#
        );
    }

    #[test]
    fn journal_entries_of_the_previous_version_load() {
        let payload = format!(
            r#"{{"type":"deployment","value":{{"project_id":"shop","environment":"prod","checks":{STORED_BEFORE_TYPED_KINDS},"container_selector":{{}},"container_template":null}}}}"#
        );
        let crate::journal::Object::Deployment(deployment) =
            serde_json::from_str(&payload).unwrap()
        else {
            panic!("not a deployment: {payload}")
        };
        assert_eq!(
            deployment.checks,
            serde_json::from_str::<Vec<CheckSpec>>(STORED_BEFORE_TYPED_KINDS).unwrap()
        );
        assert_eq!(deployment.checks[9].kind, CheckKind::Container);
    }

    #[test]
    fn thresholds_missing_from_old_rows_take_their_defaults() {
        let check: CheckSpec = serde_json::from_str(
            r#"{"name":"up","kind":"tcp","target":"h:1","interval":1000,"timeout":500,"settings":{"address":"h:1"}}"#,
        )
        .unwrap();
        assert_eq!(
            (check.unhealthy_after, check.healthy_after),
            (default_unhealthy_after(), default_healthy_after())
        );
    }

    #[test]
    fn stored_settings_that_do_not_fit_their_kind_are_refused() {
        let read = |kind: &str, settings: serde_json::Value| {
            serde_json::from_value::<CheckSpec>(serde_json::json!({
                "name": "c", "kind": kind, "target": "", "interval": 1000, "timeout": 500,
                "settings": settings,
            }))
            .map(|check| check.kind)
            .map_err(|err| err.to_string())
        };
        assert_eq!(
            read("ftp", serde_json::json!({})).unwrap_err(),
            "unknown check kind \"ftp\" (expected http, tcp, grpc, postgres, redis, mqtt, heartbeat or container)"
        );
        assert_eq!(
            read("redis", serde_json::json!({"dsn": "redis://h"})).unwrap_err(),
            "invalid redis check settings: unknown field `dsn`, expected `url`"
        );
        assert_eq!(
            read("heartbeat", serde_json::json!({})).unwrap_err(),
            "invalid heartbeat check settings: missing field `grace`"
        );
        assert!(
            read("container", serde_json::json!({"label": "x"}))
                .unwrap_err()
                .starts_with("invalid container check settings: unknown field `label`")
        );
        assert_eq!(
            read("container", serde_json::json!({})),
            Ok(CheckKind::Container)
        );
    }
}
