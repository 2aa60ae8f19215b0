//! Check results and their rollups. Every result is written (in batches) to
//! `check_results`; rollups per minute, hour and day keep counts by outcome and a latency
//! histogram, so uptime and percentiles over 1 h, 24 h, 7 d and 30 d read a few dozen
//! rows per check, not every result.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ColumnTrait, Condition, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set, TransactionTrait,
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use pharos_core::domain::{CheckResult, HealthStatus};
use pharos_store::entities::{check_result, check_rollup};
use pharos_store::journal::now_micros;

/// A rollup's time resolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Resolution {
    Minute,
    Hour,
    Day,
}

impl Resolution {
    pub const ALL: [Resolution; 3] = [Resolution::Minute, Resolution::Hour, Resolution::Day];

    fn code(self) -> &'static str {
        match self {
            Resolution::Minute => "m",
            Resolution::Hour => "h",
            Resolution::Day => "d",
        }
    }

    fn width_micros(self) -> i64 {
        match self {
            Resolution::Minute => 60_000_000,
            Resolution::Hour => 3_600_000_000,
            Resolution::Day => 86_400_000_000,
        }
    }

    fn bucket(self, at_micros: i64) -> i64 {
        at_micros - at_micros.rem_euclid(self.width_micros())
    }
}

/// The windows reported per check, each read from the coarsest rollup that fits it.
pub const WINDOWS: [(&str, Resolution, i64); 4] = [
    ("1h", Resolution::Minute, 60),
    ("24h", Resolution::Hour, 24),
    ("7d", Resolution::Hour, 7 * 24),
    ("30d", Resolution::Day, 30),
];

/// Latency counts in logarithmic buckets: bucket `i` holds latencies up to
/// 100 µs × 1.4^i, so a percentile is known within 40 %.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LatencyHistogram {
    counts: Vec<u64>,
}

const HISTOGRAM_BUCKETS: usize = 40;

fn bucket_bound_micros(i: usize) -> f64 {
    100.0 * 1.4f64.powi(i as i32)
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        LatencyHistogram {
            counts: vec![0; HISTOGRAM_BUCKETS],
        }
    }
}

impl LatencyHistogram {
    pub fn record(&mut self, micros: i64) {
        let micros = micros.max(1) as f64;
        let index = (0..HISTOGRAM_BUCKETS)
            .find(|&i| micros <= bucket_bound_micros(i))
            .unwrap_or(HISTOGRAM_BUCKETS - 1);
        self.counts[index] += 1;
    }

    pub fn merge(&mut self, other: &LatencyHistogram) {
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine += theirs;
        }
    }

    /// The upper bound of the bucket holding quantile `q` (0..1); `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        let total: u64 = self.counts.iter().sum();
        if total == 0 {
            return None;
        }
        let rank = ((q * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return Some(Duration::from_micros(bucket_bound_micros(i) as u64));
            }
        }
        None
    }

    fn encode(&self) -> String {
        self.counts
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(",")
    }

    fn decode(text: &str) -> LatencyHistogram {
        let mut histogram = LatencyHistogram::default();
        for (slot, value) in histogram.counts.iter_mut().zip(text.split(',')) {
            *slot = value.parse().unwrap_or(0);
        }
        histogram
    }
}

/// Counts of one check over one bucket or window.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rollup {
    pub runs: u64,
    pub healthy: u64,
    pub degraded: u64,
    pub unhealthy: u64,
    pub latency: LatencyHistogram,
}

impl Rollup {
    fn add(&mut self, result: &CheckResult) {
        self.runs += 1;
        match result.outcome {
            HealthStatus::Healthy => self.healthy += 1,
            HealthStatus::Degraded => self.degraded += 1,
            _ => self.unhealthy += 1,
        }
        self.latency.record(result.total_micros);
    }

    fn merge(&mut self, other: &Rollup) {
        self.runs += other.runs;
        self.healthy += other.healthy;
        self.degraded += other.degraded;
        self.unhealthy += other.unhealthy;
        self.latency.merge(&other.latency);
    }

    /// Passing runs over all runs, in percent.
    pub fn uptime_percent(&self) -> Option<f64> {
        (self.runs > 0).then(|| (self.healthy + self.degraded) as f64 * 100.0 / self.runs as f64)
    }

    fn from_row(row: &check_rollup::Model) -> Rollup {
        Rollup {
            runs: row.runs as u64,
            healthy: row.healthy as u64,
            degraded: row.degraded as u64,
            unhealthy: row.unhealthy as u64,
            latency: LatencyHistogram::decode(&row.latency_histogram),
        }
    }
}

/// How long history is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retention {
    pub raw: Duration,
    pub minute: Duration,
    pub hour: Duration,
    pub day: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            raw: Duration::from_secs(48 * 3600),
            minute: Duration::from_secs(7 * 86_400),
            hour: Duration::from_secs(90 * 86_400),
            day: Duration::from_secs(400 * 86_400),
        }
    }
}

/// Reads of the history.
#[derive(Clone)]
pub struct HistoryStore {
    db: DatabaseConnection,
}

/// A page of results and where the next one starts.
pub struct ResultsPage {
    pub results: Vec<CheckResult>,
    /// (at_micros, id) of the last result, when more follow.
    pub next: Option<(i64, i64)>,
}

impl HistoryStore {
    pub fn new(db: DatabaseConnection) -> HistoryStore {
        HistoryStore { db }
    }

    /// Results of `check_id` in `[start, end)`, newest first, after `after` (a cursor).
    pub async fn results(
        &self,
        check_id: &str,
        start_micros: Option<i64>,
        end_micros: Option<i64>,
        after: Option<(i64, i64)>,
        limit: u64,
    ) -> Result<ResultsPage, DbErr> {
        let mut query =
            check_result::Entity::find().filter(check_result::Column::CheckId.eq(check_id));
        if let Some(start) = start_micros {
            query = query.filter(check_result::Column::AtMicros.gte(start));
        }
        if let Some(end) = end_micros {
            query = query.filter(check_result::Column::AtMicros.lt(end));
        }
        if let Some((at, id)) = after {
            query = query.filter(
                Condition::any()
                    .add(check_result::Column::AtMicros.lt(at))
                    .add(
                        Condition::all()
                            .add(check_result::Column::AtMicros.eq(at))
                            .add(check_result::Column::Id.lt(id)),
                    ),
            );
        }
        let mut rows = query
            .order_by_desc(check_result::Column::AtMicros)
            .order_by_desc(check_result::Column::Id)
            .limit(limit + 1)
            .all(&self.db)
            .await?;
        let more = rows.len() as u64 > limit;
        rows.truncate(limit as usize);
        let next = more
            .then(|| rows.last().map(|row| (row.at_micros, row.id)))
            .flatten();
        Ok(ResultsPage {
            results: rows
                .into_iter()
                .map(pharos_store::rows::check_result)
                .collect(),
            next,
        })
    }

    /// The latest unhealthy results of any check, newest first.
    pub async fn recent_failures(&self, limit: u64) -> Result<Vec<CheckResult>, DbErr> {
        let rows = check_result::Entity::find()
            .filter(check_result::Column::Outcome.eq(HealthStatus::Unhealthy.as_str()))
            .order_by_desc(check_result::Column::AtMicros)
            .limit(limit)
            .all(&self.db)
            .await?;
        Ok(rows
            .into_iter()
            .map(pharos_store::rows::check_result)
            .collect())
    }

    /// Each check's rollup over the last `buckets` buckets of `resolution`, with
    /// latency histograms when `with_latency`.
    pub async fn window(
        &self,
        check_ids: &[String],
        resolution: Resolution,
        buckets: i64,
        with_latency: bool,
    ) -> Result<HashMap<String, Rollup>, DbErr> {
        let since = resolution.bucket(now_micros()) - (buckets - 1) * resolution.width_micros();
        let mut query = check_rollup::Entity::find()
            .filter(check_rollup::Column::Resolution.eq(resolution.code()))
            .filter(check_rollup::Column::BucketStartMicros.gte(since));
        if !check_ids.is_empty() {
            query = query.filter(check_rollup::Column::CheckId.is_in(check_ids.iter().cloned()));
        }
        let mut windows: HashMap<String, Rollup> = HashMap::new();
        if with_latency {
            for row in query.all(&self.db).await? {
                windows
                    .entry(row.check_id.clone())
                    .or_default()
                    .merge(&Rollup::from_row(&row));
            }
        } else {
            // Summed in the database: one row per check instead of one per bucket.
            let sum = |column: &str| Expr::cust(format!("CAST(SUM({column}) AS BIGINT)"));
            let rows: Vec<(String, i64, i64, i64, i64)> = query
                .select_only()
                .column(check_rollup::Column::CheckId)
                .column_as(sum("runs"), "runs")
                .column_as(sum("healthy"), "healthy")
                .column_as(sum("degraded"), "degraded")
                .column_as(sum("unhealthy"), "unhealthy")
                .group_by(check_rollup::Column::CheckId)
                .into_tuple()
                .all(&self.db)
                .await?;
            for (check_id, runs, healthy, degraded, unhealthy) in rows {
                windows.insert(
                    check_id,
                    Rollup {
                        runs: runs as u64,
                        healthy: healthy as u64,
                        degraded: degraded as u64,
                        unhealthy: unhealthy as u64,
                        latency: LatencyHistogram::default(),
                    },
                );
            }
        }
        Ok(windows)
    }

    /// Deletes what is older than the retention allows.
    pub async fn apply_retention(&self, retention: Retention) -> Result<(), DbErr> {
        let now = now_micros();
        check_result::Entity::delete_many()
            .filter(check_result::Column::AtMicros.lt(now - retention.raw.as_micros() as i64))
            .exec(&self.db)
            .await?;
        for (resolution, keep) in [
            (Resolution::Minute, retention.minute),
            (Resolution::Hour, retention.hour),
            (Resolution::Day, retention.day),
        ] {
            check_rollup::Entity::delete_many()
                .filter(check_rollup::Column::Resolution.eq(resolution.code()))
                .filter(check_rollup::Column::BucketStartMicros.lt(now - keep.as_micros() as i64))
                .exec(&self.db)
                .await?;
        }
        Ok(())
    }
}

/// Writes results in batches and keeps the open rollup buckets in memory, so each flush
/// is one transaction of inserts and upserts.
pub struct HistoryWriter {
    db: DatabaseConnection,
    results: mpsc::Receiver<CheckResult>,
    open: HashMap<(Resolution, i64, String), Rollup>,
    flush_every: Duration,
}

/// Results per flush at most.
const FLUSH_BATCH: usize = 512;

impl HistoryWriter {
    pub fn new(
        db: DatabaseConnection,
        flush_every: Duration,
    ) -> (HistoryWriter, mpsc::Sender<CheckResult>) {
        let (sender, results) = mpsc::channel(8192);
        (
            HistoryWriter {
                db,
                results,
                open: HashMap::new(),
                flush_every,
            },
            sender,
        )
    }

    /// Runs until `shutdown`, then writes what is left.
    pub async fn run(mut self, shutdown: CancellationToken) {
        if let Err(err) = self.load_open_buckets().await {
            tracing::warn!(error = %err, "cannot load open rollup buckets; they restart from zero");
        }
        let mut ticker = tokio::time::interval(self.flush_every);
        let mut batch = Vec::new();
        loop {
            let (flush, stop) = tokio::select! {
                _ = shutdown.cancelled() => (true, true),
                _ = ticker.tick() => (true, false),
                received = self.results.recv_many(&mut batch, FLUSH_BATCH) => {
                    (received == 0 || batch.len() >= FLUSH_BATCH, received == 0)
                }
            };
            if stop {
                while let Ok(result) = self.results.try_recv() {
                    batch.push(result);
                }
            }
            if flush
                && !batch.is_empty()
                && let Err(err) = self.flush(std::mem::take(&mut batch)).await
            {
                tracing::error!(error = %err, "writing check results failed");
            }
            if stop {
                return;
            }
        }
    }

    async fn load_open_buckets(&mut self) -> Result<(), DbErr> {
        let now = now_micros();
        for resolution in Resolution::ALL {
            let rows = check_rollup::Entity::find()
                .filter(check_rollup::Column::Resolution.eq(resolution.code()))
                .filter(check_rollup::Column::BucketStartMicros.eq(resolution.bucket(now)))
                .all(&self.db)
                .await?;
            for row in rows {
                self.open.insert(
                    (resolution, row.bucket_start_micros, row.check_id.clone()),
                    Rollup::from_row(&row),
                );
            }
        }
        Ok(())
    }

    async fn flush(&mut self, batch: Vec<CheckResult>) -> Result<(), DbErr> {
        let mut touched = Vec::new();
        for result in &batch {
            for resolution in Resolution::ALL {
                let key = (
                    resolution,
                    resolution.bucket(result.at_micros),
                    result.check_id.clone(),
                );
                self.open.entry(key.clone()).or_default().add(result);
                touched.push(key);
            }
        }
        touched.sort_by(|a, b| (a.0.code(), a.1, &a.2).cmp(&(b.0.code(), b.1, &b.2)));
        touched.dedup();

        let txn = self.db.begin().await?;
        for chunk in batch.chunks(200) {
            let rows = chunk.iter().map(|result| check_result::ActiveModel {
                check_id: Set(result.check_id.clone()),
                at_micros: Set(result.at_micros),
                outcome: Set(result.outcome.as_str().to_owned()),
                message: Set(result.message.clone()),
                connect_micros: Set(result.connect_micros),
                tls_micros: Set(result.tls_micros),
                first_byte_micros: Set(result.first_byte_micros),
                total_micros: Set(result.total_micros),
                measurements: Set(
                    serde_json::to_string(&result.measurements).unwrap_or_else(|_| "{}".to_owned())
                ),
                ..Default::default()
            });
            check_result::Entity::insert_many(rows).exec(&txn).await?;
        }
        for chunk in touched.chunks(200) {
            let rows = chunk.iter().map(|key| {
                let rollup = &self.open[key];
                check_rollup::ActiveModel {
                    resolution: Set(key.0.code().to_owned()),
                    bucket_start_micros: Set(key.1),
                    check_id: Set(key.2.clone()),
                    runs: Set(rollup.runs as i64),
                    healthy: Set(rollup.healthy as i64),
                    degraded: Set(rollup.degraded as i64),
                    unhealthy: Set(rollup.unhealthy as i64),
                    latency_histogram: Set(rollup.latency.encode()),
                }
            });
            check_rollup::Entity::insert_many(rows)
                .on_conflict(
                    OnConflict::columns([
                        check_rollup::Column::Resolution,
                        check_rollup::Column::BucketStartMicros,
                        check_rollup::Column::CheckId,
                    ])
                    .update_columns([
                        check_rollup::Column::Runs,
                        check_rollup::Column::Healthy,
                        check_rollup::Column::Degraded,
                        check_rollup::Column::Unhealthy,
                        check_rollup::Column::LatencyHistogram,
                    ])
                    .to_owned(),
                )
                .exec(&txn)
                .await?;
        }
        txn.commit().await?;

        // Buckets that closed before the current one will not be written again.
        let now = now_micros();
        self.open.retain(|(resolution, bucket, _), _| {
            *bucket >= resolution.bucket(now) - resolution.width_micros()
        });
        Ok(())
    }
}

/// Measurements as a sorted map, for results.
pub fn measurements(pairs: Vec<(String, f64)>) -> BTreeMap<String, f64> {
    pairs.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_quantiles_are_bucket_bounds() {
        let mut histogram = LatencyHistogram::default();
        for micros in [1_000, 1_000, 1_000, 1_000, 50_000] {
            histogram.record(micros);
        }
        let p50 = histogram.quantile(0.5).unwrap();
        assert!(
            p50 >= Duration::from_micros(1_000) && p50 < Duration::from_micros(1_400),
            "{p50:?}"
        );
        let p99 = histogram.quantile(0.99).unwrap();
        assert!(
            p99 >= Duration::from_micros(50_000) && p99 < Duration::from_micros(70_000),
            "{p99:?}"
        );
        assert_eq!(LatencyHistogram::decode(&histogram.encode()), histogram);
        assert_eq!(LatencyHistogram::default().quantile(0.5), None);
    }

    #[test]
    fn buckets_align_to_their_resolution() {
        let at = 1_700_000_123_456_789;
        assert_eq!(Resolution::Minute.bucket(at) % 60_000_000, 0);
        assert!(
            Resolution::Hour.bucket(at) <= at && at - Resolution::Hour.bucket(at) < 3_600_000_000
        );
    }
}

#[cfg(test)]
mod store_tests {
    use std::collections::BTreeMap;

    use super::*;

    fn result(
        check_id: &str,
        at_micros: i64,
        outcome: HealthStatus,
        total_micros: i64,
    ) -> CheckResult {
        CheckResult {
            check_id: check_id.to_owned(),
            at_micros,
            outcome,
            message: String::new(),
            connect_micros: None,
            tls_micros: None,
            first_byte_micros: None,
            total_micros,
            measurements: BTreeMap::new(),
        }
    }

    async fn database() -> (tempfile::TempDir, DatabaseConnection) {
        let dir = tempfile::tempdir().unwrap();
        let db = pharos_store::connect(&pharos_store::default_url(dir.path()))
            .await
            .unwrap();
        pharos_store::migrate(&db).await.unwrap();
        (dir, db)
    }

    #[tokio::test]
    async fn rollups_feed_windows_and_retention_prunes_old_history() {
        let (_dir, db) = database().await;
        let (mut writer, _sender) = HistoryWriter::new(db.clone(), Duration::from_secs(1));
        let now = now_micros();
        let hour = 3_600_000_000;
        let old = now - 3 * 86_400_000_000;
        writer
            .flush(vec![
                result("a/b/c", now, HealthStatus::Healthy, 2_000),
                result("a/b/c", now, HealthStatus::Degraded, 4_000),
                result("a/b/c", now, HealthStatus::Unhealthy, 8_000),
                result("a/b/c", now - 2 * hour, HealthStatus::Healthy, 1_000),
                result("a/b/c", old, HealthStatus::Unhealthy, 1_000),
            ])
            .await
            .unwrap();
        let store = HistoryStore::new(db);

        let last_hour = store
            .window(&["a/b/c".to_owned()], Resolution::Minute, 60, true)
            .await
            .unwrap();
        let rollup = &last_hour["a/b/c"];
        assert_eq!(
            (
                rollup.runs,
                rollup.healthy,
                rollup.degraded,
                rollup.unhealthy
            ),
            (3, 1, 1, 1)
        );
        assert!((rollup.uptime_percent().unwrap() - 66.666).abs() < 0.01);
        let day = store
            .window(&[], Resolution::Hour, 24, false)
            .await
            .unwrap();
        assert_eq!(day["a/b/c"].runs, 4);
        let month = store.window(&[], Resolution::Day, 30, false).await.unwrap();
        assert_eq!(month["a/b/c"].runs, 5);

        store
            .apply_retention(Retention {
                raw: Duration::from_secs(86_400),
                minute: Duration::from_secs(86_400),
                hour: Duration::from_secs(86_400),
                day: Duration::from_secs(400 * 86_400),
            })
            .await
            .unwrap();
        let page = store.results("a/b/c", None, None, None, 100).await.unwrap();
        assert_eq!(page.results.len(), 4, "the 3-day-old result is gone");
        assert!(
            page.results
                .windows(2)
                .all(|w| w[0].at_micros >= w[1].at_micros),
            "newest first"
        );
        let month = store.window(&[], Resolution::Day, 30, false).await.unwrap();
        assert_eq!(
            month["a/b/c"].runs, 5,
            "day rollups are kept longer than raw results"
        );
    }
}
