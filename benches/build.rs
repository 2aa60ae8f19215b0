//! Compiles proto/helloworld.proto with protox (no system protoc), server side only:
//! the load generator is h2load, so no Rust client is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(false)
        .compile_fds(protox::compile(["helloworld.proto"], ["proto"])?)?;
    Ok(())
}
