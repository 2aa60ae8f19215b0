//! `hello-peer`: the classic helloworld.Greeter/SayHello server, used as the fair
//! reference point for pharosd's unary gRPC throughput.
//!
//! To be a fair peer it adds nothing of its own: the default `#[tokio::main]`
//! multi-thread runtime (one worker per core) and a plain
//! `tonic::transport::Server::builder()` with every default, exactly as pharosd.

use std::net::SocketAddr;

use clap::Parser;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};

mod pb {
    tonic::include_proto!("helloworld");
}

use pb::greeter_server::{Greeter, GreeterServer};
use pb::{HelloReply, HelloRequest};

#[derive(Parser)]
#[command(about = "Minimal tonic Greeter server: the reference peer for pharosd benchmarks")]
struct Args {
    /// Address to serve gRPC on (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:50051")]
    listen: SocketAddr,
}

#[derive(Default)]
struct Hello;

#[tonic::async_trait]
impl Greeter for Hello {
    async fn say_hello(
        &self,
        request: Request<HelloRequest>,
    ) -> Result<Response<HelloReply>, Status> {
        let message = format!("Hello {}!", request.into_inner().name);
        Ok(Response::new(HelloReply { message }))
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // Bind before announcing so "listening on" means ready. TCP_NODELAY on is what
    // `Server::serve(addr)` would apply by default (the builder's tcp_nodelay: true);
    // `serve_with_incoming` would otherwise ignore it.
    let incoming = TcpIncoming::bind(args.listen)?.with_nodelay(Some(true));
    println!("listening on {}", incoming.local_addr()?);
    Server::builder()
        .add_service(GreeterServer::new(Hello))
        .serve_with_incoming_shutdown(incoming, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
