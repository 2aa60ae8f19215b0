//! `mqtt` checks, speaking MQTT 3.1.1 over a plain TCP connection: CONNECT and its
//! CONNACK decide the verdict (and end the timings: `total` is the CONNACK's arrival);
//! then, time permitting, the broker's `$SYS/broker/clients/connected` gives a gauge;
//! then DISCONNECT.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::time::Instant;

use pharos_core::domain::AddressCheck;

use super::{Probe, ProbeError, ProbeOutcome, Run, check_address};

/// The broker's count of connected clients (Mosquitto, and brokers that copy it).
const CLIENTS_TOPIC: &str = "$SYS/broker/clients/connected";
/// How long to wait for that topic's message after subscribing.
const SYS_WAIT: Duration = Duration::from_millis(500);
/// Packets larger than this are not read (the probe expects a few bytes).
const MAX_PACKET: usize = 64 * 1024;

const CONNECT: u8 = 0x10;
const CONNACK: u8 = 0x20;
const PUBLISH: u8 = 0x30;
const SUBSCRIBE: u8 = 0x82; // type 8, reserved flags 0b0010
const SUBACK: u8 = 0x90;
const DISCONNECT: u8 = 0xe0;

pub(super) struct MqttProbe {
    address: String,
    /// The check's timeout: the optional part of the probe ends well before it.
    timeout: Duration,
}

impl MqttProbe {
    pub(super) fn build(settings: &AddressCheck, timeout: Duration) -> Result<Self, ProbeError> {
        check_address(&settings.address)?;
        Ok(MqttProbe {
            address: settings.address.clone(),
            timeout,
        })
    }
}

#[async_trait::async_trait]
impl Probe for MqttProbe {
    async fn run(&self) -> ProbeOutcome {
        let mut run = Run::start();
        // The optional $SYS read must leave a quarter of the timeout unused.
        let optional_until = Instant::now() + self.timeout.saturating_sub(self.timeout / 4);
        let stream = match TcpStream::connect(self.address.as_str()).await {
            Ok(stream) => stream,
            Err(e) => return run.unhealthy(format!("connect to {}: {e}", self.address)),
        };
        run.connected();
        let _ = stream.set_nodelay(true);
        let mut conn = BufReader::new(stream);

        let client_id = format!(
            "pharos-probe-{:010x}",
            super::random_suffix() & 0xff_ffff_ffff
        );
        if let Err(e) = conn.get_mut().write_all(&connect_packet(&client_id)).await {
            return run.unhealthy(format!("CONNECT: {e}"));
        }
        match read_packet(&mut conn).await {
            Ok((header, body)) if header & 0xf0 == CONNACK && body.len() == 2 => {
                run.first_byte();
                // The verdict is known: the optional part below is not timed.
                run.stop_clock();
                if body[1] != 0 {
                    return run.unhealthy(format!(
                        "CONNACK refused the connection: {} (code {})",
                        connack_meaning(body[1]),
                        body[1]
                    ));
                }
            }
            Ok((header, _)) => {
                return run.unhealthy(format!(
                    "expected CONNACK, got packet type {} (is this an MQTT broker?)",
                    header >> 4
                ));
            }
            Err(e) => return run.unhealthy(format!("waiting for CONNACK: {e}")),
        }

        let deadline = optional_until.min(Instant::now() + SYS_WAIT);
        if let Ok(Some(clients)) =
            tokio::time::timeout_at(deadline, connected_clients(&mut conn)).await
        {
            run.measure("connected_clients", clients);
        }
        let disconnect = conn.get_mut().write_all(&[DISCONNECT, 0]);
        let _ = tokio::time::timeout_at(optional_until, disconnect).await;
        run.healthy()
    }
}

/// Subscribes to [`CLIENTS_TOPIC`] and returns the number it carries: the retained
/// message arrives at once if the broker published one. Runs until cancelled otherwise.
async fn connected_clients(conn: &mut BufReader<TcpStream>) -> Option<f64> {
    let mut packet = vec![SUBSCRIBE];
    let mut body = vec![0, 1]; // packet identifier 1
    push_string(&mut body, CLIENTS_TOPIC);
    body.push(0); // QoS 0
    push_length(&mut packet, body.len());
    packet.extend_from_slice(&body);
    conn.get_mut().write_all(&packet).await.ok()?;
    loop {
        let (header, body) = read_packet(conn).await.ok()?;
        match header & 0xf0 {
            SUBACK if body.get(2).is_some_and(|&code| code & 0x80 != 0) => return None,
            PUBLISH => {
                let topic_len = usize::from(u16::from_be_bytes([*body.first()?, *body.get(1)?]));
                let topic = body.get(2..2 + topic_len)?;
                // QoS 1 and 2 messages carry a packet identifier after the topic.
                let mut payload = 2 + topic_len;
                if header & 0x06 != 0 {
                    payload += 2;
                }
                if topic == CLIENTS_TOPIC.as_bytes() {
                    let text = std::str::from_utf8(body.get(payload..)?).ok()?;
                    return text.trim().parse().ok();
                }
            }
            _ => {}
        }
    }
}

/// CONNECT, MQTT 3.1.1: clean session, keep-alive 30 s, no credentials.
fn connect_packet(client_id: &str) -> Vec<u8> {
    let mut body = Vec::new();
    push_string(&mut body, "MQTT");
    body.push(4); // protocol level 3.1.1
    body.push(0x02); // clean session
    body.extend_from_slice(&30u16.to_be_bytes());
    push_string(&mut body, client_id);
    let mut packet = vec![CONNECT];
    push_length(&mut packet, body.len());
    packet.extend_from_slice(&body);
    packet
}

fn push_string(out: &mut Vec<u8>, text: &str) {
    let len = u16::try_from(text.len()).expect("short MQTT string");
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(text.as_bytes());
}

/// The variable-length "remaining length" of a fixed header.
fn push_length(out: &mut Vec<u8>, mut len: usize) {
    loop {
        let mut byte = (len % 128) as u8;
        len /= 128;
        if len > 0 {
            byte |= 0x80;
        }
        out.push(byte);
        if len == 0 {
            return;
        }
    }
}

/// One packet: its first header byte and its body.
async fn read_packet(conn: &mut BufReader<TcpStream>) -> std::io::Result<(u8, Vec<u8>)> {
    let header = conn.read_u8().await?;
    let mut len = 0usize;
    for shift in (0..4).map(|i| 7 * i) {
        let byte = conn.read_u8().await?;
        len |= usize::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            if len > MAX_PACKET {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("a {len}-byte packet"),
                ));
            }
            let mut body = vec![0; len];
            conn.read_exact(&mut body).await?;
            return Ok((header, body));
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        "malformed packet length (is this an MQTT broker?)",
    ))
}

/// CONNACK return codes, MQTT 3.1.1 §3.2.2.3.
fn connack_meaning(code: u8) -> &'static str {
    match code {
        1 => "unacceptable protocol version",
        2 => "client identifier rejected",
        3 => "server unavailable",
        4 => "bad user name or password",
        5 => "not authorized",
        _ => "unknown return code",
    }
}

#[cfg(test)]
mod tests {
    use super::super::Verdict;
    use super::super::tests::probe;
    use super::*;
    use pharos_e2e::TestMosquitto;
    use serde_json::json;

    #[tokio::test]
    async fn healthy_then_down_then_back() {
        let mut broker = TestMosquitto::new().unwrap();
        let check = probe("mqtt", json!({ "address": broker.address() }));

        let outcome = check.run().await;
        assert_eq!(outcome.verdict, Verdict::Healthy, "{outcome:?}");
        assert_eq!(outcome.message, "ok");
        let timings = &outcome.timings;
        assert!(timings.connect.unwrap() <= timings.first_byte.unwrap());
        assert!(timings.first_byte.unwrap() <= timings.total);
        // The broker publishes $SYS every second (sys_interval 1), retained: counting
        // the probe itself, at least one client. The first publication may be pending
        // when the broker has just started, so the probe is given a few tries.
        let mut clients = outcome.measurement("connected_clients");
        for _ in 0..20 {
            if clients.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
            clients = check.run().await.measurement("connected_clients");
        }
        let clients = clients.expect("connected_clients from $SYS");
        assert!(clients >= 0.0, "{clients}");

        broker.stop();
        let outcome = check.run().await;
        assert_eq!(outcome.verdict, Verdict::Unhealthy, "{outcome:?}");
        assert!(
            outcome
                .message
                .starts_with(&format!("connect to {}: ", broker.address()))
                && outcome.message.contains("refused"),
            "{}",
            outcome.message
        );

        broker.start().unwrap();
        let outcome = check.run().await;
        assert_eq!(outcome.verdict, Verdict::Healthy, "{outcome:?}");
        // Each probe said DISCONNECT: the broker logs a clean disconnect for every probe
        // client (soon after the probe returns), never a lost connection.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let log = broker.log_text();
            let connected = log.matches(" as pharos-probe-").count();
            let ended: Vec<&str> = log
                .lines()
                .filter(|line| line.contains("Client pharos-probe-"))
                .collect();
            assert!(
                ended.iter().all(|line| line.ends_with(" disconnected.")),
                "{log}"
            );
            if connected >= 2 && ended.len() == connected {
                break;
            }
            assert!(Instant::now() < deadline, "{log}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test]
    async fn refused_connack_is_unhealthy() {
        // A broker that refuses everyone: a real one configured to refuse anonymous
        // clients would do, but the return code is what matters.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (socket, _) = listener.accept().await.unwrap();
            let mut socket = BufReader::new(socket);
            let (header, _) = read_packet(&mut socket).await.unwrap();
            assert_eq!(header, CONNECT);
            socket
                .get_mut()
                .write_all(&[CONNACK, 2, 0, 5])
                .await
                .unwrap();
        });
        let outcome = probe("mqtt", json!({ "address": address.to_string() }))
            .run()
            .await;
        assert_eq!(outcome.verdict, Verdict::Unhealthy, "{outcome:?}");
        assert_eq!(
            outcome.message,
            "CONNACK refused the connection: not authorized (code 5)"
        );
    }

    #[test]
    fn remaining_length_encoding() {
        for (len, bytes) in [
            (0, vec![0x00]),
            (127, vec![0x7f]),
            (128, vec![0x80, 0x01]),
            (16_383, vec![0xff, 0x7f]),
            (16_384, vec![0x80, 0x80, 0x01]),
        ] {
            let mut out = Vec::new();
            push_length(&mut out, len);
            assert_eq!(out, bytes, "{len}");
        }
        let packet = connect_packet("pharos-probe-0123456789");
        assert_eq!(packet[0], CONNECT);
        assert_eq!(usize::from(packet[1]), packet.len() - 2);
        assert_eq!(&packet[2..8], b"\x00\x04MQTT");
        assert_eq!(&packet[8..12], &[4, 0x02, 0, 30]);
    }
}
