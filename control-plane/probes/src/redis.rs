//! `redis` checks, speaking RESP over a plain TCP connection: `AUTH` with the URL's
//! credentials, `SELECT` its database, `PING`, then `INFO` for a few gauges.

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use super::{Probe, ProbeError, ProbeOutcome, Run};
use pharos_core::domain::RedisCheck;
use pharos_core::redact::redact;

/// The largest reply read (INFO sections are a few kilobytes).
const MAX_REPLY: usize = 1024 * 1024;

pub(super) struct RedisProbe {
    /// `host:port` for messages.
    authority: String,
    host: String,
    port: u16,
    /// `(username, password)`; no username for the `requirepass` password.
    auth: Option<(Option<String>, String)>,
    database: Option<u32>,
}

impl RedisProbe {
    /// `redis://[[USER]:PASSWORD@]HOST[:PORT][/DATABASE]`, port 6379 by default.
    pub(super) fn build(settings: &RedisCheck) -> Result<Self, ProbeError> {
        let bad = |reason: &str| ProbeError::BadUrl {
            url: redact(&settings.url),
            reason: reason.to_owned(),
        };
        let url = url::Url::parse(&settings.url).map_err(|e| {
            bad(&format!(
                "{e}; expected redis://[:PASSWORD@]HOST[:PORT][/DATABASE]"
            ))
        })?;
        match url.scheme() {
            "redis" => {}
            "rediss" => return Err(bad("TLS (rediss://) is not supported")),
            "unix" | "redis+unix" => return Err(bad("unix sockets are not supported")),
            _ => return Err(bad("expected redis://[:PASSWORD@]HOST[:PORT][/DATABASE]")),
        }
        let host = match url.host() {
            Some(url::Host::Domain(name)) if !name.is_empty() => name.to_owned(),
            Some(url::Host::Ipv4(ip)) => ip.to_string(),
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            _ => return Err(bad("no host")),
        };
        let port = url.port().unwrap_or(6379);
        let username = percent_decode(url.username()).map_err(|e| bad(&e))?;
        let password = url
            .password()
            .map(percent_decode)
            .transpose()
            .map_err(|e| bad(&e))?;
        let auth = match (username.is_empty(), password) {
            (_, Some(password)) => Some(((!username.is_empty()).then_some(username), password)),
            (true, None) => None,
            (false, None) => return Err(bad("a user name without a password")),
        };
        let database = match url.path().trim_start_matches('/') {
            "" => None,
            number => Some(
                number
                    .parse()
                    .map_err(|_| bad("the path must be a database number, such as /0"))?,
            ),
        };
        Ok(RedisProbe {
            authority: format!("{}:{port}", url.host_str().unwrap_or_default()),
            host,
            port,
            auth,
            database,
        })
    }
}

#[async_trait::async_trait]
impl Probe for RedisProbe {
    async fn run(&self) -> ProbeOutcome {
        let mut run = Run::start();
        let stream = match TcpStream::connect((self.host.as_str(), self.port)).await {
            Ok(stream) => stream,
            Err(e) => return run.unhealthy(format!("connect to {}: {e}", self.authority)),
        };
        run.connected();
        let _ = stream.set_nodelay(true);
        let mut conn = Resp(BufReader::new(stream));

        if let Some((username, password)) = &self.auth {
            let mut command = vec!["AUTH"];
            command.extend(username.as_deref());
            command.push(password);
            if let Err(e) = conn.expect_ok(&command, "OK").await {
                return run.unhealthy(format!("AUTH: {e}"));
            }
        }
        if let Some(database) = self.database {
            let database = database.to_string();
            if let Err(e) = conn.expect_ok(&["SELECT", &database], "OK").await {
                return run.unhealthy(format!("SELECT {database}: {e}"));
            }
        }
        if let Err(e) = conn.expect_ok(&["PING"], "PONG").await {
            return run.unhealthy(format!("PING: {e}"));
        }
        run.first_byte();

        // Best effort: INFO may be renamed or denied by an ACL.
        for (section, field, name) in [
            ("clients", "connected_clients", "connected_clients"),
            ("memory", "used_memory", "used_memory_bytes"),
        ] {
            match conn.info(section).await {
                Ok(Some(info)) => {
                    if let Some(value) = info_field(&info, field) {
                        run.measure(name, value);
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::debug!("redis probe INFO {section}: {e}");
                    break;
                }
            }
        }
        run.healthy()
    }
}

/// A RESP2 connection.
struct Resp(BufReader<TcpStream>);

enum Reply {
    Simple(String),
    Error(String),
    Integer,
    Bulk(Option<Vec<u8>>),
    Array,
}

impl Resp {
    async fn send(&mut self, args: &[&str]) -> std::io::Result<()> {
        let mut frame = format!("*{}\r\n", args.len()).into_bytes();
        for arg in args {
            frame.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
            frame.extend_from_slice(arg.as_bytes());
            frame.extend_from_slice(b"\r\n");
        }
        self.0.get_mut().write_all(&frame).await
    }

    /// Sends a command whose reply must be the simple string `expected`; an error reply
    /// or anything else is the error.
    async fn expect_ok(&mut self, args: &[&str], expected: &str) -> Result<(), String> {
        self.send(args).await.map_err(|e| e.to_string())?;
        match self.reply().await.map_err(|e| e.to_string())? {
            Reply::Simple(text) if text == expected => Ok(()),
            Reply::Simple(text) => Err(format!("unexpected reply +{text}")),
            Reply::Error(text) => Err(text),
            _ => Err(format!("unexpected reply (expected +{expected})")),
        }
    }

    /// `INFO section`: the text, or `None` for an error reply.
    async fn info(&mut self, section: &str) -> std::io::Result<Option<String>> {
        self.send(&["INFO", section]).await?;
        Ok(match self.reply().await? {
            Reply::Bulk(Some(bytes)) => Some(String::from_utf8_lossy(&bytes).into_owned()),
            _ => None,
        })
    }

    async fn reply(&mut self) -> std::io::Result<Reply> {
        let mut line = Vec::new();
        (&mut self.0)
            .take(64 * 1024)
            .read_until(b'\n', &mut line)
            .await?;
        let Some(line) = line.strip_suffix(b"\r\n") else {
            return Err(protocol_error("connection closed or reply not terminated"));
        };
        let (kind, rest) = line
            .split_first()
            .ok_or_else(|| protocol_error("empty reply"))?;
        let text = String::from_utf8_lossy(rest).into_owned();
        Ok(match kind {
            b'+' => Reply::Simple(text),
            b'-' => Reply::Error(text),
            b':' => Reply::Integer,
            b'*' => Reply::Array,
            b'$' => {
                let len: i64 = text
                    .parse()
                    .map_err(|_| protocol_error("bad bulk length"))?;
                if len < 0 {
                    Reply::Bulk(None)
                } else {
                    let len = usize::try_from(len).unwrap_or(usize::MAX);
                    if len > MAX_REPLY {
                        return Err(protocol_error("reply too large"));
                    }
                    let mut bytes = vec![0; len + 2];
                    self.0.read_exact(&mut bytes).await?;
                    bytes.truncate(len);
                    Reply::Bulk(Some(bytes))
                }
            }
            _ => {
                return Err(protocol_error(
                    "not a Redis reply (is this a Redis server?)",
                ));
            }
        })
    }
}

fn protocol_error(message: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, message)
}

/// `field:value` from INFO's text.
fn info_field(info: &str, field: &str) -> Option<f64> {
    info.lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|value| value.trim().parse().ok())
}

/// `%XX` escapes of a URL's user name or password.
fn percent_decode(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text
                .get(i + 1..i + 3)
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
                .ok_or("a % not followed by two hex digits in the credentials")?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "credentials are not UTF-8".to_owned())
}

#[cfg(test)]
mod tests {
    use super::super::Verdict;
    use super::super::tests::{build_error, probe};
    use super::*;
    use pharos_e2e::TestRedis;
    use serde_json::json;

    #[tokio::test]
    async fn healthy_then_down_then_back() {
        let mut redis = TestRedis::new().unwrap();
        let check = probe("redis", json!({ "url": redis.url() }));

        let outcome = check.run().await;
        assert_eq!(outcome.verdict, Verdict::Healthy, "{outcome:?}");
        assert_eq!(outcome.message, "ok");
        assert!(outcome.measurement("connected_clients").unwrap() >= 1.0);
        assert!(outcome.measurement("used_memory_bytes").unwrap() > 100_000.0);
        let timings = &outcome.timings;
        assert!(timings.connect.unwrap() <= timings.first_byte.unwrap());
        assert!(timings.first_byte.unwrap() <= timings.total);

        redis.stop();
        let outcome = check.run().await;
        assert_eq!(outcome.verdict, Verdict::Unhealthy, "{outcome:?}");
        assert!(
            outcome
                .message
                .starts_with(&format!("connect to {}: ", redis.address()))
                && outcome.message.contains("refused"),
            "{}",
            outcome.message
        );

        redis.start().unwrap();
        let outcome = check.run().await;
        assert_eq!(outcome.verdict, Verdict::Healthy, "{outcome:?}");
    }

    #[tokio::test]
    async fn password_and_database() {
        let redis = TestRedis::with_password("p@ss word").unwrap();
        let address = redis.address();

        let encoded = format!("redis://:p%40ss%20word@{address}/2");
        let outcome = probe("redis", json!({ "url": encoded })).run().await;
        assert_eq!(outcome.verdict, Verdict::Healthy, "{outcome:?}");

        let outcome = probe("redis", json!({ "url": format!("redis://{address}") }))
            .run()
            .await;
        assert_eq!(outcome.verdict, Verdict::Unhealthy, "{outcome:?}");
        assert!(
            outcome.message.starts_with("PING: NOAUTH"),
            "{}",
            outcome.message
        );

        let wrong = format!("redis://:guess@{address}");
        let outcome = probe("redis", json!({ "url": wrong })).run().await;
        assert_eq!(outcome.verdict, Verdict::Unhealthy, "{outcome:?}");
        assert!(
            outcome.message.starts_with("AUTH: WRONGPASS"),
            "{}",
            outcome.message
        );
        assert!(!outcome.message.contains("guess"));

        let outcome = probe(
            "redis",
            json!({ "url": format!("redis://:p%40ss%20word@{address}/99") }),
        )
        .run()
        .await;
        assert_eq!(outcome.verdict, Verdict::Unhealthy, "{outcome:?}");
        assert!(
            outcome.message.starts_with("SELECT 99: ERR"),
            "{}",
            outcome.message
        );
    }

    #[tokio::test]
    async fn a_server_that_is_not_redis_is_unhealthy() {
        use tokio::io::AsyncWriteExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let _ = socket.write_all(b"SSH-2.0-OpenSSH_9.2\r\n").await;
        });
        let outcome = probe("redis", json!({ "url": format!("redis://{address}") }))
            .run()
            .await;
        assert_eq!(outcome.verdict, Verdict::Unhealthy, "{outcome:?}");
        assert!(
            outcome.message.contains("not a Redis reply"),
            "{}",
            outcome.message
        );
    }

    #[test]
    fn url_errors() {
        let err = build_error("redis", json!({ "url": "rediss://:pw@cache:6380" }));
        assert_eq!(
            err,
            "invalid URL \"rediss://:***@cache:6380\": TLS (rediss://) is not supported"
        );
        let err = build_error("redis", json!({ "url": "redis://cache/x" }));
        assert!(
            err.ends_with("the path must be a database number, such as /0"),
            "{err}"
        );
        let err = build_error("redis", json!({ "url": "cache:6379" }));
        assert!(err.contains("expected redis://"), "{err}");
    }

    #[test]
    fn info_fields() {
        let info = "# Clients\r\nconnected_clients:3\r\nconnected_clients_x:9\r\n";
        assert_eq!(info_field(info, "connected_clients"), Some(3.0));
        assert_eq!(info_field(info, "blocked_clients"), None);
        assert_eq!(percent_decode("a%2Fb%40").unwrap(), "a/b@");
        assert!(percent_decode("a%2").is_err());
    }
}
