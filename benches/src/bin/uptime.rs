//! 30-day uptime of 1,000 checks: read from day rollups (what pharosd does) against the
//! peer, the same figure computed from raw results with one GROUP BY (what a dashboard
//! without rollups does). Both run on the same SQLite file in the same run, and their
//! answers are compared before anything is timed.
//!
//! Usage: uptime [--checks 1000] [--days 30] [--results-per-hour 2] [--rounds 15]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use clap::Parser;
use pharos_control_plane::health::history::{HistoryStore, Resolution};
use pharos_control_plane::journal::now_micros;
use pharos_control_plane::storage;
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement, TransactionTrait};

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 1000)]
    checks: usize,
    #[arg(long, default_value_t = 30)]
    days: i64,
    /// Raw results per check per hour (a 30 s interval would be 120; fewer keeps the
    /// data set quick to build, and only makes the peer faster)
    #[arg(long, default_value_t = 2)]
    results_per_hour: i64,
    #[arg(long, default_value_t = 15)]
    rounds: usize,
}

const DAY: i64 = 86_400_000_000;
const HOUR: i64 = 3_600_000_000;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let dir = tempfile::tempdir()?;
    let db = storage::connect(&storage::default_url(dir.path())).await?;
    storage::migrate(&db).await?;

    let started = Instant::now();
    let raw_rows = fill(&db, &args).await?;
    eprintln!(
        "built {raw_rows} raw results and {} day rollups for {} checks in {:.1?}",
        args.checks as i64 * args.days,
        args.checks,
        started.elapsed()
    );

    let store = HistoryStore::new(storage::history::CheckHistory::new(db.clone()));
    let rollups = store.window(&[], Resolution::Day, args.days, false).await?;
    let raw = raw_uptime(&db, args.days).await?;
    ensure!(
        rollups.len() == args.checks && raw.len() == args.checks,
        "both see every check"
    );
    for (check, (runs, passing)) in &raw {
        let rollup = &rollups[check];
        ensure!(
            rollup.runs == *runs && rollup.healthy + rollup.degraded == *passing,
            "{check}: rollups say {}/{} passing, raw results say {passing}/{runs}",
            rollup.healthy + rollup.degraded,
            rollup.runs
        );
    }

    let pharos = time(args.rounds, || async {
        store
            .window(&[], Resolution::Day, args.days, false)
            .await
            .map(|w| w.len())
    })
    .await?;
    let pharos_latency = time(args.rounds, || async {
        store
            .window(&[], Resolution::Day, args.days, true)
            .await
            .map(|w| w.len())
    })
    .await?;
    let peer = time(args.rounds, || async {
        raw_uptime(&db, args.days).await.map(|w| w.len())
    })
    .await?;

    println!(
        "30-day uptime of {} checks, SQLite, median of {} rounds",
        args.checks, args.rounds
    );
    println!("{:<46} {:>10} {:>10}", "reader", "median", "max");
    for (name, figures) in [
        ("pharos: day rollups (uptime only)", &pharos),
        (
            "pharos: day rollups (with latency histograms)",
            &pharos_latency,
        ),
        ("peer: GROUP BY over raw results", &peer),
    ] {
        println!("{name:<46} {:>10.2?} {:>10.2?}", figures.0, figures.1);
    }
    println!(
        "ratio peer/pharos (uptime only): {:.1}x faster; raw rows scanned by the peer: {raw_rows}",
        peer.0.as_secs_f64() / pharos.0.as_secs_f64()
    );
    Ok(())
}

/// Median and max wall time of `rounds` runs.
async fn time<F, Fut, E>(rounds: usize, mut run: F) -> anyhow::Result<(Duration, Duration)>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<usize, E>>,
    E: std::error::Error + Send + Sync + 'static,
{
    let mut samples = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let started = Instant::now();
        std::hint::black_box(run().await?);
        samples.push(started.elapsed());
    }
    samples.sort();
    Ok((samples[samples.len() / 2], samples[samples.len() - 1]))
}

/// Per check: (runs, passing) over the window, straight from raw results.
async fn raw_uptime(
    db: &DatabaseConnection,
    days: i64,
) -> Result<HashMap<String, (u64, u64)>, sea_orm::DbErr> {
    let since = day_start(now_micros()) - (days - 1) * DAY;
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            "SELECT check_id, COUNT(*) AS runs, \
             SUM(CASE WHEN outcome IN ('healthy', 'degraded') THEN 1 ELSE 0 END) AS passing \
             FROM check_results WHERE at_micros >= $1 GROUP BY check_id",
            [since.into()],
        ))
        .await?;
    rows.into_iter()
        .map(|row| {
            let check: String = row.try_get("", "check_id")?;
            let runs: i64 = row.try_get("", "runs")?;
            let passing: i64 = row.try_get("", "passing")?;
            Ok((check, (runs as u64, passing as u64)))
        })
        .collect()
}

fn day_start(micros: i64) -> i64 {
    micros - micros.rem_euclid(DAY)
}

/// Writes raw results and the matching day rollups: every 17th run of a check fails.
async fn fill(db: &DatabaseConnection, args: &Args) -> anyhow::Result<i64> {
    let today = day_start(now_micros());
    let step = HOUR / args.results_per_hour;
    let mut raw_rows = 0;
    let mut txn = db.begin().await?;
    for check in 0..args.checks {
        let check_id = format!("project-{}/prod/check-{check}", check / 10);
        if check % 100 == 99 {
            txn.commit().await?;
            txn = db.begin().await?;
        }
        let mut values = Vec::new();
        let mut rollups = Vec::new();
        for day in 0..args.days {
            let start = today - day * DAY;
            let (mut runs, mut passing) = (0i64, 0i64);
            let mut at = start;
            while at < start + DAY {
                let ok = (at / step + check as i64) % 17 != 0;
                values.push(format!(
                    "('{check_id}', {at}, '{}', '', {}, '{{}}')",
                    if ok { "healthy" } else { "unhealthy" },
                    1000 + (at / step) % 5000
                ));
                runs += 1;
                passing += i64::from(ok);
                at += step;
            }
            rollups.push(format!(
                "('d', {start}, '{check_id}', {runs}, {passing}, 0, {}, '')",
                runs - passing
            ));
        }
        raw_rows += values.len() as i64;
        for chunk in values.chunks(2000) {
            txn.execute_unprepared(&format!(
                "INSERT INTO check_results (check_id, at_micros, outcome, message, total_micros, measurements) VALUES {}",
                chunk.join(",")
            ))
            .await
            .context("inserting raw results")?;
        }
        txn.execute_unprepared(&format!(
            "INSERT INTO check_rollups (resolution, bucket_start_micros, check_id, runs, healthy, degraded, unhealthy, latency_histogram) VALUES {}",
            rollups.join(",")
        ))
        .await
        .context("inserting rollups")?;
    }
    txn.commit().await?;
    Ok(raw_rows)
}
