#[tokio::main]
async fn main() {
    std::process::exit(pharos_control_plane::main_with_args().await);
}
