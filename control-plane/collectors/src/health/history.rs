//! Check results and their rollups. Every result is written (in batches) to
//! `check_results`; rollups per minute, hour and day keep counts by outcome and a latency
//! histogram, so uptime and percentiles over 1 h, 24 h, 7 d and 30 d read a few dozen
//! rows per check, not every result. The rows are the store's
//! ([`pharos_store::history`]); what goes into them, and when, is decided here.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use pharos_core::domain::Resolution;
use pharos_core::domain::{CheckResult, HealthStatus};
use pharos_store::QueryError;
pub use pharos_store::history::ResultsPage;
use pharos_store::history::{CheckHistory, RollupBucket, RollupCounts};
use pharos_store::journal::now_micros;

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

    /// Runs per bucket, as stored.
    pub fn counts(&self) -> &[u64] {
        &self.counts
    }

    /// The histogram of stored `counts`; missing buckets count zero.
    pub fn from_counts(counts: &[u64]) -> LatencyHistogram {
        let mut histogram = LatencyHistogram::default();
        for (slot, value) in histogram.counts.iter_mut().zip(counts) {
            *slot = *value;
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

    fn from_counts(counts: &RollupCounts) -> Rollup {
        Rollup {
            runs: counts.runs,
            healthy: counts.healthy,
            degraded: counts.degraded,
            unhealthy: counts.unhealthy,
            latency: LatencyHistogram::from_counts(&counts.latency),
        }
    }

    fn counts(&self) -> RollupCounts {
        RollupCounts {
            runs: self.runs,
            healthy: self.healthy,
            degraded: self.degraded,
            unhealthy: self.unhealthy,
            latency: self.latency.counts().to_vec(),
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
    history: CheckHistory,
}

impl HistoryStore {
    pub fn new(history: CheckHistory) -> HistoryStore {
        HistoryStore { history }
    }

    /// Results of `check_id` in `[start, end)`, newest first, after `after` (a cursor).
    pub async fn results(
        &self,
        check_id: &str,
        start_micros: Option<i64>,
        end_micros: Option<i64>,
        after: Option<(i64, i64)>,
        limit: u64,
    ) -> Result<ResultsPage, QueryError> {
        self.history
            .results(check_id, start_micros, end_micros, after, limit)
            .await
    }

    /// The latest unhealthy results of any check, newest first.
    pub async fn recent_failures(&self, limit: u64) -> Result<Vec<CheckResult>, QueryError> {
        self.history.recent_failures(limit).await
    }

    /// Each check's rollup over the last `buckets` buckets of `resolution`, with
    /// latency histograms when `with_latency`.
    pub async fn window(
        &self,
        check_ids: &[String],
        resolution: Resolution,
        buckets: i64,
        with_latency: bool,
    ) -> Result<HashMap<String, Rollup>, QueryError> {
        let since = resolution.bucket(now_micros()) - (buckets - 1) * resolution.width_micros();
        let mut windows: HashMap<String, Rollup> = HashMap::new();
        if with_latency {
            for bucket in self
                .history
                .buckets_since(check_ids, resolution, since)
                .await?
            {
                windows
                    .entry(bucket.check_id)
                    .or_default()
                    .merge(&Rollup::from_counts(&bucket.counts));
            }
        } else {
            for (check_id, counts) in self
                .history
                .totals_since(check_ids, resolution, since)
                .await?
            {
                windows.insert(check_id, Rollup::from_counts(&counts));
            }
        }
        Ok(windows)
    }

    /// Deletes what is older than the retention allows.
    pub async fn apply_retention(&self, retention: Retention) -> Result<(), QueryError> {
        let now = now_micros();
        self.history
            .delete_results_before(now - retention.raw.as_micros() as i64)
            .await?;
        for (resolution, keep) in [
            (Resolution::Minute, retention.minute),
            (Resolution::Hour, retention.hour),
            (Resolution::Day, retention.day),
        ] {
            self.history
                .delete_buckets_before(resolution, now - keep.as_micros() as i64)
                .await?;
        }
        Ok(())
    }
}

/// Writes results in batches and keeps the open rollup buckets in memory, so each flush
/// is one transaction of inserts and upserts.
pub struct HistoryWriter {
    history: CheckHistory,
    results: mpsc::Receiver<CheckResult>,
    open: HashMap<(Resolution, i64, String), Rollup>,
    flush_every: Duration,
}

/// Results per flush at most.
const FLUSH_BATCH: usize = 512;

impl HistoryWriter {
    pub fn new(
        history: CheckHistory,
        flush_every: Duration,
    ) -> (HistoryWriter, mpsc::Sender<CheckResult>) {
        let (sender, results) = mpsc::channel(8192);
        (
            HistoryWriter {
                history,
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

    async fn load_open_buckets(&mut self) -> Result<(), QueryError> {
        let now = now_micros();
        for resolution in Resolution::ALL {
            for bucket in self
                .history
                .buckets_at(resolution, resolution.bucket(now))
                .await?
            {
                self.open.insert(
                    (resolution, bucket.bucket_start_micros, bucket.check_id),
                    Rollup::from_counts(&bucket.counts),
                );
            }
        }
        Ok(())
    }

    async fn flush(&mut self, batch: Vec<CheckResult>) -> Result<(), QueryError> {
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
        touched.sort();
        touched.dedup();
        let buckets: Vec<RollupBucket> = touched
            .into_iter()
            .map(|key| {
                let counts = self.open[&key].counts();
                let (resolution, bucket_start_micros, check_id) = key;
                RollupBucket {
                    resolution,
                    bucket_start_micros,
                    check_id,
                    counts,
                }
            })
            .collect();
        self.history.write(&batch, &buckets).await?;

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
        assert_eq!(LatencyHistogram::from_counts(histogram.counts()), histogram);
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

    async fn database() -> (tempfile::TempDir, CheckHistory) {
        let dir = tempfile::tempdir().unwrap();
        let db = pharos_store::connect(&pharos_store::default_url(dir.path()))
            .await
            .unwrap();
        pharos_store::migrate(&db).await.unwrap();
        (dir, CheckHistory::new(db))
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
