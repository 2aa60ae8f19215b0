//! A target farm for the probing benchmark: one tiny HTTP server answering 200 "ok" on
//! many loopback addresses and ports (127.0.0.2 and up). Prints `ready` once every
//! listener is bound; runs until stdin closes.

use std::net::{Ipv4Addr, SocketAddr};

use clap::Parser;
use tokio::io::AsyncReadExt;

#[derive(Parser)]
struct Args {
    /// Loopback addresses to listen on, from 127.0.0.2
    #[arg(long, default_value_t = 20)]
    addresses: u8,
    /// Ports per address, from --base-port
    #[arg(long, default_value_t = 5)]
    ports: u16,
    #[arg(long)]
    base_port: u16,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let router = axum::Router::new().fallback(|| async { "ok" });
    for a in 0..args.addresses {
        for p in 0..args.ports {
            let addr = SocketAddr::from((Ipv4Addr::new(127, 0, 0, 2 + a), args.base_port + p));
            let listener = tokio::net::TcpListener::bind(addr).await?;
            let router = router.clone();
            tokio::spawn(async move { axum::serve(listener, router).await });
        }
    }
    println!("ready");
    // Stop when the benchmark closes our stdin (or dies).
    let mut sink = Vec::new();
    let _ = tokio::io::stdin().read_to_end(&mut sink).await;
    Ok(())
}
