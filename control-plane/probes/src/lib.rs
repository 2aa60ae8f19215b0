//! Health probes: one attempt at reaching a dependency the way its clients do, and a
//! verdict on what came back.
//!
//! [`build`] turns a catalog [`CheckSpec`] into a [`ProbeKind`]: an active [`Probe`] for
//! `http`, `tcp`, `grpc`, `postgres`, `redis` and `mqtt` checks, or a marker for the
//! passive kinds (`heartbeat`, `container`) whose state comes from elsewhere. Everything
//! that can be wrong with the settings (a bad URL, an unreadable CA file, a bad regex) is
//! reported then, so [`Probe::run`] only meets the dependency's own failures.
//!
//! A probe has no time limit of its own: the caller wraps [`Probe::run`] in
//! [`tokio::time::timeout`] ([`run_with_timeout`] does exactly that). Probes are
//! cancel-safe: all their state, sockets included, lives in the future, so dropping it
//! closes every connection. They never block the runtime.

mod exchange;
mod grpc;
mod http;
pub mod http_client;
mod mqtt;
mod postgres;
mod redis;
mod tcp;
mod x509;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pharos_core::domain::{CheckKind, CheckSpec};

/// What a probe concluded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Verdict {
    Healthy,
    /// Working, but close to failing: slow, or a certificate about to expire.
    Degraded,
    Unhealthy,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Healthy => "healthy",
            Verdict::Degraded => "degraded",
            Verdict::Unhealthy => "unhealthy",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// When each phase of a probe ended, measured from the probe's start, like curl's
/// `time_connect`, `time_appconnect`, `time_starttransfer` and `time_total`; so
/// `connect <= tls <= first_byte <= total`, and the TLS handshake alone took
/// `tls - connect`. A phase is `None` when the probe has no such phase or did not get
/// that far.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Timings {
    /// TCP connection established (name resolution included).
    pub connect: Option<Duration>,
    /// TLS handshake done.
    pub tls: Option<Duration>,
    /// First answer received: the HTTP response head, the gRPC health response, the
    /// result of `SELECT 1`, Redis' `+PONG`, MQTT's CONNACK.
    pub first_byte: Option<Duration>,
    /// The whole probe, up to the verdict (for HTTP: body read).
    pub total: Duration,
}

/// The result of one probe run.
#[derive(Clone, Debug, PartialEq)]
pub struct ProbeOutcome {
    pub verdict: Verdict,
    pub timings: Timings,
    /// One line for humans: `"ok"`, or what is wrong, such as `"HTTP 503 (expected 200)"`.
    pub message: String,
    /// Numbers read along the way, such as `("http_status", 200.0)`,
    /// `("tls_days_left", 41.5)`, `("connections_used", 7.0)`,
    /// `("connected_clients", 3.0)`.
    pub measurements: Vec<(String, f64)>,
}

impl ProbeOutcome {
    /// The measurement called `name`, if the probe recorded it.
    pub fn measurement(&self, name: &str) -> Option<f64> {
        self.measurements
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, value)| *value)
    }

    /// The outcome of a probe that did not finish within `timeout`.
    pub fn timed_out(timeout: Duration) -> Self {
        ProbeOutcome {
            verdict: Verdict::Unhealthy,
            timings: Timings {
                total: timeout,
                ..Timings::default()
            },
            message: format!("timed out after {}", format_duration(timeout)),
            measurements: Vec::new(),
        }
    }
}

/// One active check of a dependency.
#[async_trait::async_trait]
pub trait Probe: Send + Sync + 'static {
    /// Probes once. Never fails: every failure is an [`Verdict::Unhealthy`] outcome.
    /// Unbounded in time; see [`run_with_timeout`].
    async fn run(&self) -> ProbeOutcome;
}

/// `probe.run()`, or an Unhealthy "timed out after …" outcome once `timeout` passes (the
/// probe's future, and with it every socket it opened, is dropped then).
pub async fn run_with_timeout(probe: &dyn Probe, timeout: Duration) -> ProbeOutcome {
    tokio::time::timeout(timeout, probe.run())
        .await
        .unwrap_or_else(|_| ProbeOutcome::timed_out(timeout))
}

/// How a check is evaluated.
#[derive(Clone)]
pub enum ProbeKind {
    /// Run the probe every interval.
    Active(Arc<dyn Probe>),
    /// Healthy while a heartbeat arrived within `grace`.
    Heartbeat { grace: Duration },
    /// Follows the state of the deployment's containers.
    Container,
}

impl fmt::Debug for ProbeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProbeKind::Active(_) => f.write_str("Active(..)"),
            ProbeKind::Heartbeat { grace } => {
                f.debug_struct("Heartbeat").field("grace", grace).finish()
            }
            ProbeKind::Container => f.write_str("Container"),
        }
    }
}

/// Why a check's settings cannot make a probe.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProbeError {
    #[error("invalid URL {url:?}: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("invalid address {address:?}: {reason}")]
    BadAddress { address: String, reason: String },
    #[error("invalid HTTP method {0:?}")]
    BadMethod(String),
    #[error("invalid HTTP header {name:?}: {reason}")]
    BadHeader { name: String, reason: String },
    #[error("invalid expect_status {0}: HTTP status codes run from 100 to 599")]
    BadStatus(u16),
    #[error("invalid body_regex {pattern:?}: {reason}")]
    BadRegex { pattern: String, reason: String },
    #[error(
        "invalid JSON pointer {0:?}: it must be empty or start with '/' (RFC 6901), such as \"/status\""
    )]
    BadPointer(String),
    #[error("invalid {field} {value:?} ({reason}); use forms such as 500ms, 10s, 1m")]
    BadDuration {
        field: &'static str,
        value: String,
        reason: String,
    },
    #[error("ca_file {path:?}: {reason}")]
    CaFile { path: String, reason: String },
    #[error("invalid PostgreSQL DSN {dsn:?}: {reason}")]
    BadDsn { dsn: String, reason: String },
}

/// The probe for `spec`. Reads `ca_file` if an HTTP check names one; does no network I/O.
pub fn build(spec: &CheckSpec) -> Result<ProbeKind, ProbeError> {
    let active = |probe: Arc<dyn Probe>| Ok(ProbeKind::Active(probe));
    match &spec.kind {
        CheckKind::Http(http) => active(Arc::new(http::HttpProbe::build(http)?)),
        CheckKind::Tcp(tcp) => active(Arc::new(tcp::TcpProbe::build(tcp)?)),
        CheckKind::Grpc(grpc) => active(Arc::new(grpc::GrpcProbe::build(grpc)?)),
        CheckKind::Postgres(postgres) => {
            active(Arc::new(postgres::PostgresProbe::build(postgres)?))
        }
        CheckKind::Redis(redis) => active(Arc::new(redis::RedisProbe::build(redis)?)),
        CheckKind::Mqtt(mqtt) => active(Arc::new(mqtt::MqttProbe::build(mqtt, spec.timeout)?)),
        CheckKind::Heartbeat(heartbeat) => Ok(ProbeKind::Heartbeat {
            grace: parse_duration("grace", &heartbeat.grace)?,
        }),
        CheckKind::Container => Ok(ProbeKind::Container),
    }
}

fn parse_duration(field: &'static str, value: &str) -> Result<Duration, ProbeError> {
    humantime::parse_duration(value).map_err(|e| ProbeError::BadDuration {
        field,
        value: value.to_owned(),
        reason: e.to_string(),
    })
}

/// Checks `HOST:PORT` (a name, an IPv4 address or a bracketed IPv6 address, and a port
/// from 1 to 65535) and returns the port.
fn check_address(address: &str) -> Result<u16, ProbeError> {
    let bad = |reason: &str| ProbeError::BadAddress {
        address: address.to_owned(),
        reason: reason.to_owned(),
    };
    let (host, port) = address
        .rsplit_once(':')
        .ok_or_else(|| bad("expected HOST:PORT, such as db.internal:5432"))?;
    if host.is_empty() {
        return Err(bad("the host is empty"));
    }
    if host.contains(':') && !(host.starts_with('[') && host.ends_with(']')) {
        return Err(bad("write an IPv6 address in brackets, such as [::1]:8080"));
    }
    if host.contains(['/', '@', ' ']) {
        return Err(bad("expected HOST:PORT without a scheme or path"));
    }
    match port.parse::<u16>() {
        Ok(port) if port > 0 => Ok(port),
        _ => Err(bad("the port must be a number from 1 to 65535")),
    }
}

/// Records the phases of one probe run.
struct Run {
    start: Instant,
    timings: Timings,
    total: Option<Duration>,
    measurements: Vec<(String, f64)>,
}

impl Run {
    fn start() -> Self {
        Run {
            start: Instant::now(),
            timings: Timings::default(),
            total: None,
            measurements: Vec::new(),
        }
    }

    fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    fn connected(&mut self) {
        self.timings.connect = Some(self.elapsed());
    }

    fn tls_done(&mut self) {
        self.timings.tls = Some(self.elapsed());
    }

    fn first_byte(&mut self) {
        self.timings.first_byte = Some(self.elapsed());
    }

    /// Ends the measured part, before the verdict is worked out.
    fn stop_clock(&mut self) {
        self.total.get_or_insert(self.start.elapsed());
    }

    fn measure(&mut self, name: &str, value: f64) {
        self.measurements.push((name.to_owned(), value));
    }

    fn finish(mut self, verdict: Verdict, message: impl Into<String>) -> ProbeOutcome {
        self.stop_clock();
        self.timings.total = self.total.unwrap_or_default();
        ProbeOutcome {
            verdict,
            timings: self.timings,
            message: one_line(&message.into()),
            measurements: self.measurements,
        }
    }

    fn healthy(self) -> ProbeOutcome {
        self.finish(Verdict::Healthy, "ok")
    }

    fn unhealthy(self, message: impl Into<String>) -> ProbeOutcome {
        self.finish(Verdict::Unhealthy, message)
    }
}

/// `error: cause: cause`, leaving out causes the message already quotes (hyper, rustls
/// and tonic nest the useful part).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// At most 300 characters on one line.
fn one_line(text: &str) -> String {
    const MAX: usize = 300;
    let mut line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.chars().count() > MAX {
        line = line.chars().take(MAX - 1).collect();
        line.push('…');
    }
    line
}

/// Such as `750ms` or `2s 500ms`.
fn format_duration(duration: Duration) -> String {
    let millis = Duration::from_millis(duration.as_millis().try_into().unwrap_or(u64::MAX));
    if millis.is_zero() {
        return format!("{}us", duration.as_micros());
    }
    humantime::format_duration(millis).to_string()
}

/// A random suffix for client ids, from std's per-process random hash keys.
fn random_suffix() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A check of `kind` with a 10 s interval and a 5 s timeout, read from its stored
    /// form, so that fields added to `CheckSpec` take their defaults.
    fn read(kind: &str, settings: serde_json::Value) -> Result<CheckSpec, serde_json::Error> {
        serde_json::from_value(serde_json::json!({
            "name": format!("{kind}-check"),
            "kind": kind,
            "target": "",
            "interval": 10_000,
            "timeout": 5_000,
            "settings": settings,
        }))
    }

    pub(super) fn spec(kind: &str, settings: serde_json::Value) -> CheckSpec {
        read(kind, settings).expect("a CheckSpec")
    }

    /// The active probe for a check of `kind`; panics on a build error.
    pub(super) fn probe(kind: &str, settings: serde_json::Value) -> Arc<dyn Probe> {
        match build(&spec(kind, settings)) {
            Ok(ProbeKind::Active(probe)) => probe,
            Ok(other) => panic!("expected an active probe, got {other:?}"),
            Err(e) => panic!("build {kind} probe: {e}"),
        }
    }

    /// Why a check of `kind` with `settings` cannot run: settings that do not fit the kind
    /// are refused when the check is read, the rest when its probe is built.
    pub(super) fn build_error(kind: &str, settings: serde_json::Value) -> String {
        let spec = match read(kind, settings) {
            Ok(spec) => spec,
            Err(e) => return e.to_string(),
        };
        match build(&spec) {
            Ok(probe) => panic!("expected a build error, got {probe:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn passive_kinds() {
        let kind = build(&spec("heartbeat", serde_json::json!({"grace": "90s"}))).unwrap();
        assert!(matches!(kind, ProbeKind::Heartbeat { grace } if grace == Duration::from_secs(90)));
        let kind = build(&spec("container", serde_json::json!({}))).unwrap();
        assert!(matches!(kind, ProbeKind::Container));
        assert_eq!(
            build_error("heartbeat", serde_json::json!({"grace": "soon"})),
            "invalid grace \"soon\" (expected number at 0); use forms such as 500ms, 10s, 1m"
        );
    }

    #[test]
    fn settings_errors() {
        assert!(
            build_error("ftp", serde_json::json!({})).starts_with("unknown check kind \"ftp\"")
        );
        let err = build_error("tcp", serde_json::json!({"address": "a:1", "port": 2}));
        assert!(
            err.starts_with("invalid tcp check settings: unknown field `port`"),
            "{err}"
        );
        let err = build_error("tcp", serde_json::json!({"address": "localhost"}));
        assert_eq!(
            err,
            "invalid address \"localhost\": expected HOST:PORT, such as db.internal:5432"
        );
        let err = build_error("tcp", serde_json::json!({"address": "::1:80"}));
        assert!(err.contains("brackets"), "{err}");
        let err = build_error("mqtt", serde_json::json!({"address": "host:0"}));
        assert!(err.contains("from 1 to 65535"), "{err}");
    }

    #[test]
    fn messages_are_one_bounded_line() {
        assert_eq!(one_line("a\n  b\r\nc"), "a b c");
        assert_eq!(one_line(&"x".repeat(1000)).chars().count(), 300);
        assert_eq!(format_duration(Duration::from_millis(2500)), "2s 500ms");
        assert_eq!(format_duration(Duration::from_micros(1500)), "1ms");
        assert_eq!(
            ProbeOutcome::timed_out(Duration::from_millis(800)).message,
            "timed out after 800ms"
        );
    }
}
