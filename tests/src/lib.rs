//! Support code for Pharos end-to-end tests (`tests/tests/*.rs`).
//!
//! Everything here drives real programs: the `pharosd` and `pharos` binaries built by
//! `cargo build --workspace --bins`, a throwaway PostgreSQL cluster, Redis and Mosquitto,
//! grpcurl. Servers listen on free loopback ports inside temporary directories and are
//! stopped on drop.

mod bins;
mod catalog;
mod cmd;
mod daemon;
pub mod grpc;
mod http;
mod mosquitto;
mod pharosd;
mod pki;
mod podman;
mod postgres;
mod prometheus;
mod redis;
mod stream;

pub use bins::{bin_path, grpcurl_path};
pub use catalog::{CatalogFile, demo_catalog_text};
pub use cmd::{CmdOutput, run_cmd, run_command};
pub use http::{HttpResponse, http_get, http_get_with};
pub use mosquitto::TestMosquitto;
pub use pharosd::{Pharosd, PharosdBuilder};
pub use pki::{Issued, TestPki};
pub use podman::{BUSYBOX_IMAGE, TestPodman};
pub use postgres::TestPostgres;
pub use prometheus::{TestAlertmanager, TestNodeExporter, TestPrometheus};
pub use redis::TestRedis;
pub use stream::StreamingChild;

use std::net::{Ipv4Addr, TcpListener};

/// A loopback TCP port that was free a moment ago: bound to port 0, read, released.
/// Another process may take it before the caller binds it; servers started here are
/// few and short-lived, so callers that can retry (TestPostgres) do, the rest accept it.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local_addr").port()
}

/// The last `n` lines of `text`, for error messages that quote a log.
pub(crate) fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
