//! Compiles the peers' protos with protox (no system protoc): helloworld.proto server
//! side only (h2load is its client), broadcast.proto both sides (the Watch benchmark
//! drives it with its own client).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(false)
        .compile_fds(protox::compile(["helloworld.proto"], ["proto"])?)?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_fds(protox::compile(["broadcast.proto"], ["proto"])?)?;
    Ok(())
}
