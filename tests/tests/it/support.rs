//! Checks of the support library against the real programs it drives.

use pharos_e2e::{TestPostgres, grpcurl_path, run_cmd};
use std::time::Duration;

#[test]
fn postgres_cluster_runs_queries_and_creates_databases() {
    let pg = TestPostgres::start().expect("start PostgreSQL");
    assert_eq!(pg.psql("postgres", "SELECT 1").unwrap(), "1");
    assert!(pg.url().starts_with("postgres://postgres@127.0.0.1:"));

    let url = pg.unique_database("support").unwrap();
    let name = url.rsplit('/').next().unwrap();
    assert_eq!(pg.psql(name, "SELECT current_database()").unwrap(), name);
    assert_eq!(pg.psql(name, "SHOW server_encoding").unwrap(), "UTF8");

    // The shared instance is a different cluster that works the same way.
    let shared = TestPostgres::shared();
    assert_ne!(shared.port(), pg.port());
    assert_eq!(shared.psql("postgres", "SELECT 40 + 2").unwrap(), "42");
}

#[tokio::test]
async fn grpcurl_is_installed_and_runs() {
    let out = run_cmd(grpcurl_path(), ["-version"], Duration::from_secs(30))
        .await
        .unwrap();
    let out = out.expect_success().unwrap();
    // grpcurl prints its version on stderr.
    assert!(
        format!("{}{}", out.stdout, out.stderr).contains("grpcurl v1.8"),
        "{out}"
    );
}
