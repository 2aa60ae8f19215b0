//! MetricsService.GetCapacity against the real host, a real SQLite file and a real
//! PostgreSQL that a catalog check names; each figure checked against an independent
//! tool (`df`, `free`, psql) or a known table.

use crate::common;

use std::time::Duration;

use common::{Backend, Harness};
use pharos_e2e::TestPostgres;
use pharos_proto::v1 as pb;
use tokio::time::Instant;

type Client = pb::metrics_service_client::MetricsServiceClient<tonic::transport::Channel>;

/// Field `n` (1-based) of the last line of `command`'s output, as a number.
fn figure(command: &[&str], n: usize) -> u64 {
    let out = std::process::Command::new(command[0])
        .args(&command[1..])
        .output()
        .unwrap();
    assert!(out.status.success(), "{command:?}: {out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let line = text.lines().rfind(|l| !l.trim().is_empty()).unwrap();
    line.split_whitespace()
        .nth(n - 1)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{command:?}: field {n} of {line:?}"))
}

/// Waits for a sample with a CPU busy ratio (the second one: a ratio needs two readings).
async fn second_sample(client: &mut Client) -> pb::GetCapacityResponse {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match client.get_capacity(pb::GetCapacityRequest {}).await {
            Ok(response) => {
                let sample = response.into_inner();
                if sample
                    .host
                    .as_ref()
                    .is_some_and(|h| h.cpu_busy_ratio.is_some())
                    && sample
                        .postgres
                        .iter()
                        .all(|p| p.size_bytes > 0 || !p.error.is_empty())
                {
                    return sample;
                }
            }
            Err(status) => assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}"),
        }
        assert!(
            Instant::now() < deadline,
            "no second capacity sample in 15 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capacity_reports_host_disks_databases_and_the_largest_tables() {
    let pg = TestPostgres::shared();
    let dsn = pg.unique_database("capacity").unwrap();
    let database = dsn.rsplit('/').next().unwrap().to_owned();
    pg.psql(
        &database,
        "CREATE TABLE big AS SELECT g AS id, repeat('x', 200) AS pad FROM generate_series(1, 20000) g; \
         CREATE TABLE small (id int)",
    )
    .unwrap();
    let catalog = format!(
        "environments:\n  - id: prod\nprojects:\n  - id: shop\n    deployments:\n      - environment: prod\n        checks:\n          - name: db\n            postgres: {{dsn: '{dsn}'}}\n            interval: 1s\n"
    );
    let extra = tempfile::tempdir().unwrap();
    let extra_path = extra.path().to_path_buf();
    let broken = extra.path().join("no-such-dir");
    let harness = Harness::start_with_catalog(Backend::Sqlite, &catalog, |settings| {
        settings.capacity.interval = Duration::from_millis(200);
        settings.capacity.disk_paths = vec![extra_path.clone(), broken.clone()];
        settings.capacity.largest_tables = 2;
    })
    .await;
    let mut client = Client::connect(harness.url()).await.unwrap();
    let sample = second_sample(&mut client).await;

    // Host: what `free -b` and nproc say.
    let host = sample.host.expect("host figures");
    assert!(sample.host_error.is_empty());
    assert_eq!(
        host.memory_total_bytes,
        figure(&["sh", "-c", "free -b | sed -n 2p"], 2)
    );
    assert!(
        host.memory_available_bytes > 0 && host.memory_available_bytes <= host.memory_total_bytes
    );
    assert_eq!(u64::from(host.cpu_cores), figure(&["nproc", "--all"], 1));
    let busy = host.cpu_busy_ratio.unwrap();
    assert!((0.0..=1.0).contains(&busy), "{busy}");

    // Disks: the data directory first, then the configured paths; sizes as `df` has them.
    let paths: Vec<&str> = sample.disks.iter().map(|d| d.path.as_str()).collect();
    assert_eq!(paths.len(), 3, "{paths:?}");
    assert!(paths[0].ends_with("/data"), "{paths:?}");
    let disk = &sample.disks[1];
    assert_eq!(disk.path, extra_path.display().to_string());
    assert!(disk.error.is_empty(), "{disk:?}");
    let df = |field: &str| figure(&["df", "-B1", &format!("--output={field}"), &disk.path], 1);
    assert_eq!(disk.total_bytes, df("size"));
    // Used and available move as files are written: within 64 MiB of df's.
    assert!(disk.used_bytes.abs_diff(df("used")) < 64 << 20, "{disk:?}");
    assert!(
        disk.available_bytes.abs_diff(df("avail")) < 64 << 20,
        "{disk:?}"
    );
    assert!(
        sample.disks[2].error.contains("no-such-dir"),
        "{:?}",
        sample.disks[2]
    );

    // pharosd's own SQLite database: whole pages, as many as sqlite3 counts (the file
    // alone is smaller: in WAL mode recent pages live in the -wal file).
    let own = sample.database.clone().unwrap();
    assert_eq!(own.backend, "sqlite");
    let file = harness.settings.data_dir.join("pharos.db");
    let counted = figure(
        &[
            "sqlite3",
            file.to_str().unwrap(),
            "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()",
        ],
        1,
    );
    assert!(own.size_bytes > 0 && own.size_bytes % 512 == 0, "{own:?}");
    assert!(
        own.size_bytes.abs_diff(counted) < 1 << 20,
        "{own:?} vs {counted}"
    );

    // The PostgreSQL database the check names.
    assert_eq!(sample.postgres.len(), 1);
    let target = &sample.postgres[0];
    assert_eq!(target.check_id, "shop/prod/db");
    assert!(target.error.is_empty(), "{target:?}");
    let size: u64 = pg
        .psql(&database, "SELECT pg_database_size(current_database())")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        target.size_bytes.abs_diff(size) < 1 << 20,
        "{} vs {size}",
        target.size_bytes
    );
    assert!(target.connections_used >= 1 && target.connections_used <= target.connections_max);
    let max: u32 = pg
        .psql(&database, "SHOW max_connections")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(target.connections_max, max);
    let tables: Vec<&str> = target
        .largest_tables
        .iter()
        .map(|t| t.name.as_str())
        .collect();
    assert_eq!(tables, ["public.big", "public.small"]);
    assert!(
        target.largest_tables[0].total_bytes > 4 << 20,
        "{:?}",
        target.largest_tables
    );

    // The same figures are series.
    let points = client
        .query_range(pb::QueryRangeRequest {
            selector: Some(pb::SeriesSelector {
                name: "pharos_disk_total_bytes".into(),
                labels: [("path".to_owned(), disk.path.clone())].into(),
            }),
            start: Some(prost_types::Timestamp {
                seconds: chrono::Utc::now().timestamp() - 60,
                nanos: 0,
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let series = &points.series;
    assert_eq!(series.len(), 1, "{series:?}");
    assert!(
        series[0]
            .points
            .iter()
            .all(|p| p.value == disk.total_bytes as f64)
    );
    harness.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn system_metrics_follow_pharosds_own_calls() {
    let harness = Harness::start(Backend::Sqlite, |settings| {
        settings.telemetry_interval = Duration::from_millis(200);
    })
    .await;
    let channel = tonic::transport::Endpoint::from_shared(harness.url())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut catalog = pb::catalog_service_client::CatalogServiceClient::new(channel.clone());
    let mut client = Client::new(channel);
    let deadline = Instant::now() + Duration::from_secs(15);
    let figures = loop {
        // Traffic: successful calls and refused ones.
        for _ in 0..20 {
            catalog
                .get_overview(pb::GetOverviewRequest {})
                .await
                .unwrap();
        }
        let err = catalog
            .get_project(pb::GetProjectRequest {
                id: "no-such-project".into(),
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), tonic::Code::NotFound);
        let figures = client
            .get_system_metrics(pb::GetSystemMetricsRequest {
                window: Some(prost_types::Duration {
                    seconds: 60,
                    nanos: 0,
                }),
                step: Some(prost_types::Duration {
                    seconds: 1,
                    nanos: 0,
                }),
            })
            .await
            .unwrap()
            .into_inner();
        if figures.requests_per_second.is_some_and(|r| r > 0.0)
            && figures.errors_per_second.is_some_and(|e| e > 0.0)
            && figures.latency_p99_seconds.is_some()
        {
            break figures;
        }
        assert!(Instant::now() < deadline, "no figures in 15 s: {figures:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let (p50, p95, p99) = (
        figures.latency_p50_seconds.unwrap(),
        figures.latency_p95_seconds.unwrap(),
        figures.latency_p99_seconds.unwrap(),
    );
    assert!(
        0.0 < p50 && p50 <= p95 && p95 <= p99 && p99 < 1.0,
        "{figures:?}"
    );
    assert!(
        figures.errors_per_second < figures.requests_per_second,
        "{figures:?}"
    );
    assert!(!figures.throughput.is_empty() && !figures.latency_p95.is_empty());
    assert!(
        figures
            .throughput
            .windows(2)
            .all(|w| w[0].time_unix_ms < w[1].time_unix_ms)
    );

    for (window, step) in [(0, 0), (3600, 0), (60, -1)] {
        let err = client
            .get_system_metrics(pb::GetSystemMetricsRequest {
                window: Some(prost_types::Duration {
                    seconds: window,
                    nanos: 0,
                }),
                step: Some(prost_types::Duration {
                    seconds: step,
                    nanos: 0,
                }),
            })
            .await
            .unwrap_err();
        assert_eq!(
            err.code(),
            tonic::Code::InvalidArgument,
            "{window} {step}: {err:?}"
        );
    }
    harness.shutdown().await;
}
