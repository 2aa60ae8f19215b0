//! Recent samples in memory and one-minute rollups in the database.
//!
//! Every series keeps its samples of the last [`StoreConfig::recent`] (15 min) at
//! collection resolution, and an open one-minute rollup (count, sum, min, max, last).
//! Closed minutes are written to `metric_rollups` by [`MetricStore::flush`] (every few
//! seconds, and at shutdown); rollups older than the retention are deleted. A range query
//! that starts inside the memory window is answered from memory; an older one from the
//! rollups, with the minutes not yet written taken from memory.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use pharos_store::QueryError;
use pharos_store::metric_rollups::{MetricRollups, MinuteRollup};

pub use super::series::{Labels, Point, SeriesId, SeriesPoints, SeriesSelector, Source};

const MINUTE_MS: i64 = 60_000;

#[derive(Clone, Copy, Debug)]
pub struct StoreConfig {
    /// How long samples stay in memory at collection resolution.
    pub recent: Duration,
    /// Series held at once; samples of further new series are rejected and counted.
    pub max_series: usize,
    /// How long minute rollups are kept.
    pub retention: Duration,
}

impl Default for StoreConfig {
    fn default() -> StoreConfig {
        StoreConfig {
            recent: Duration::from_secs(15 * 60),
            max_series: 200_000,
            retention: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

/// What happened to a batch of samples.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecordOutcome {
    pub accepted: u64,
    /// New series past [`StoreConfig::max_series`].
    pub over_series_limit: u64,
    pub non_finite: u64,
    /// Older than the series' latest sample, or outside the memory window.
    pub out_of_order: u64,
}

#[derive(Clone, Copy, Debug, PartialEq)]
struct Minute {
    start_ms: i64,
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
    last: f64,
}

impl Minute {
    fn new(start_ms: i64, value: f64) -> Minute {
        Minute {
            start_ms,
            count: 1,
            sum: value,
            min: value,
            max: value,
            last: value,
        }
    }

    fn add(&mut self, value: f64) {
        self.count += 1;
        self.sum += value;
        self.min = self.min.min(value);
        self.max = self.max.max(value);
        self.last = value;
    }

    fn mean(&self) -> f64 {
        self.sum / self.count as f64
    }
}

#[derive(Default)]
struct Buffer {
    points: VecDeque<Point>,
    open: Option<Minute>,
    /// Minutes up to this one are written; late samples for them are refused.
    closed_through: i64,
    /// Points ever appended: a live subscriber's cursor into `points`.
    appended: u64,
}

#[derive(Default)]
struct Inner {
    /// name -> labels -> buffer, so a selector reads only its name's series.
    by_name: HashMap<String, HashMap<Labels, Buffer>>,
    series: usize,
    /// Closed minutes not yet written.
    pending: Vec<(SeriesId, Minute)>,
}

/// Counters of what the store holds and refused.
#[derive(Debug, Default)]
pub struct StoreStats {
    pub accepted: AtomicU64,
    pub rejected: AtomicU64,
    pub flush_errors: AtomicU64,
}

pub struct MetricStore {
    inner: Mutex<Inner>,
    rollups: MetricRollups,
    config: StoreConfig,
    pub stats: StoreStats,
}

fn minute_of(ms: i64) -> i64 {
    ms - ms.rem_euclid(MINUTE_MS)
}

pub fn now_ms() -> i64 {
    pharos_store::journal::now_micros() / 1000
}

impl MetricStore {
    pub fn new(rollups: MetricRollups, config: StoreConfig) -> MetricStore {
        MetricStore {
            inner: Mutex::new(Inner::default()),
            rollups,
            config,
            stats: StoreStats::default(),
        }
    }

    pub fn config(&self) -> StoreConfig {
        self.config
    }

    pub fn series_count(&self) -> usize {
        self.lock().series
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Records samples; each is (series, time in ms, value).
    pub fn record<'a>(
        &self,
        samples: impl IntoIterator<Item = (&'a str, &'a Labels, i64, f64)>,
    ) -> RecordOutcome {
        let mut outcome = RecordOutcome::default();
        let oldest = now_ms() - self.config.recent.as_millis() as i64;
        let mut inner = self.lock();
        let inner = &mut *inner;
        for (name, labels, ms, value) in samples {
            if !value.is_finite() {
                outcome.non_finite += 1;
                continue;
            }
            if ms < oldest {
                outcome.out_of_order += 1;
                continue;
            }
            let buffer = match inner
                .by_name
                .get_mut(name)
                .and_then(|series| series.get_mut(labels))
            {
                Some(buffer) => buffer,
                None => {
                    if inner.series >= self.config.max_series {
                        outcome.over_series_limit += 1;
                        continue;
                    }
                    inner.series += 1;
                    inner
                        .by_name
                        .entry(name.to_owned())
                        .or_default()
                        .entry(labels.clone())
                        .or_default()
                }
            };
            if buffer.points.back().is_some_and(|last| last.ms > ms)
                || minute_of(ms) <= buffer.closed_through
            {
                outcome.out_of_order += 1;
                continue;
            }
            while buffer.points.front().is_some_and(|first| first.ms < oldest) {
                buffer.points.pop_front();
            }
            buffer.points.push_back(Point { ms, value });
            buffer.appended += 1;
            let minute = minute_of(ms);
            match &mut buffer.open {
                Some(open) if open.start_ms == minute => open.add(value),
                open => {
                    if let Some(closed) = open.replace(Minute::new(minute, value)) {
                        inner.pending.push((
                            SeriesId {
                                name: name.to_owned(),
                                labels: labels.clone(),
                            },
                            closed,
                        ));
                    }
                }
            }
            outcome.accepted += 1;
        }
        self.stats
            .accepted
            .fetch_add(outcome.accepted, Ordering::Relaxed);
        self.stats.rejected.fetch_add(
            outcome.over_series_limit + outcome.non_finite + outcome.out_of_order,
            Ordering::Relaxed,
        );
        outcome
    }

    /// The latest value of every series matching `selector`.
    pub fn latest(&self, selector: &SeriesSelector) -> Vec<(SeriesId, Point)> {
        let inner = self.lock();
        let Some(series) = inner.by_name.get(&selector.name) else {
            return Vec::new();
        };
        series
            .iter()
            .filter(|(labels, _)| selector.matches_labels(labels))
            .filter_map(|(labels, buffer)| {
                buffer.points.back().map(|point| {
                    (
                        SeriesId {
                            name: selector.name.clone(),
                            labels: labels.clone(),
                        },
                        *point,
                    )
                })
            })
            .collect()
    }

    /// For live batches: points of series matching `selector` appended since the
    /// series' cursor in `cursors` (for a series seen the first time: points at or
    /// after `default_after`), at most `budget` points in all; cursors advance past what is
    /// returned, so each point is returned once.
    pub fn points_after(
        &self,
        selector: &SeriesSelector,
        cursors: &mut HashMap<SeriesId, u64>,
        default_after: i64,
        budget: &mut usize,
    ) -> Vec<(SeriesId, Vec<Point>)> {
        let inner = self.lock();
        let Some(series) = inner.by_name.get(&selector.name) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (labels, buffer) in series {
            if *budget == 0 {
                break;
            }
            if !selector.matches_labels(labels) {
                continue;
            }
            let id = SeriesId {
                name: selector.name.clone(),
                labels: labels.clone(),
            };
            let held = buffer.points.len();
            let new = match cursors.get(&id) {
                // A series dropped and created again restarts its count.
                Some(&seen) if seen <= buffer.appended => {
                    ((buffer.appended - seen) as usize).min(held)
                }
                _ => buffer
                    .points
                    .iter()
                    .rev()
                    .take_while(|p| p.ms >= default_after)
                    .count(),
            };
            let take = new.min(*budget);
            cursors.insert(id.clone(), buffer.appended - (new - take) as u64);
            if take == 0 {
                continue;
            }
            *budget -= take;
            let points: Vec<Point> = buffer
                .points
                .iter()
                .skip(held - new)
                .take(take)
                .copied()
                .collect();
            out.push((id, points));
        }
        out
    }

    /// Points of every matching series in `[start_ms, end_ms]`; with `step_ms > 0`,
    /// averaged per step (each point at the start of its step).
    pub async fn query_range(
        &self,
        selector: &SeriesSelector,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
    ) -> Result<Vec<SeriesPoints>, QueryError> {
        let memory_from = now_ms() - self.config.recent.as_millis() as i64;
        let mut out = if start_ms >= memory_from {
            self.read_memory(selector, start_ms, end_ms)
        } else {
            self.read_rollups(selector, start_ms, end_ms).await?
        };
        if step_ms > 0 {
            for series in &mut out {
                series.points = downsample(&series.points, start_ms, step_ms);
            }
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    fn read_memory(
        &self,
        selector: &SeriesSelector,
        start_ms: i64,
        end_ms: i64,
    ) -> Vec<SeriesPoints> {
        let inner = self.lock();
        let Some(series) = inner.by_name.get(&selector.name) else {
            return Vec::new();
        };
        series
            .iter()
            .filter(|(labels, _)| selector.matches_labels(labels))
            .map(|(labels, buffer)| SeriesPoints {
                id: SeriesId {
                    name: selector.name.clone(),
                    labels: labels.clone(),
                },
                points: buffer
                    .points
                    .iter()
                    .filter(|p| p.ms >= start_ms && p.ms <= end_ms)
                    .copied()
                    .collect(),
                source: Source::Memory,
            })
            .filter(|series| !series.points.is_empty())
            .collect()
    }

    async fn read_rollups(
        &self,
        selector: &SeriesSelector,
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<SeriesPoints>, QueryError> {
        let stored = self
            .rollups
            .read(&selector.name, minute_of(start_ms), end_ms)
            .await?;
        let mut by_series: BTreeMap<Labels, BTreeMap<i64, f64>> = BTreeMap::new();
        for minute in stored {
            if selector.matches_labels(&minute.labels) && minute.count > 0 {
                by_series
                    .entry(minute.labels)
                    .or_default()
                    .insert(minute.minute_ms, minute.sum / minute.count as f64);
            }
        }
        // Minutes not yet written (and the open ones) come from memory.
        {
            let inner = self.lock();
            let in_range = |m: &Minute| m.start_ms >= minute_of(start_ms) && m.start_ms <= end_ms;
            for (id, minute) in &inner.pending {
                if id.name == selector.name
                    && selector.matches_labels(&id.labels)
                    && in_range(minute)
                {
                    by_series
                        .entry(id.labels.clone())
                        .or_default()
                        .insert(minute.start_ms, minute.mean());
                }
            }
            if let Some(series) = inner.by_name.get(&selector.name) {
                for (labels, buffer) in series {
                    if let Some(open) = &buffer.open
                        && selector.matches_labels(labels)
                        && in_range(open)
                    {
                        by_series
                            .entry(labels.clone())
                            .or_default()
                            .insert(open.start_ms, open.mean());
                    }
                }
            }
        }
        Ok(by_series
            .into_iter()
            .map(|(labels, minutes)| SeriesPoints {
                id: SeriesId {
                    name: selector.name.clone(),
                    labels,
                },
                points: minutes
                    .into_iter()
                    .map(|(ms, value)| Point { ms, value })
                    .collect(),
                source: Source::Rollups,
            })
            .collect())
    }

    /// Writes closed minutes (every minute too, with `all`, at shutdown), drops series
    /// with nothing in the memory window, and deletes rollups past the retention.
    pub async fn flush(&self, all: bool) -> Result<usize, QueryError> {
        let now = now_ms();
        let oldest = now - self.config.recent.as_millis() as i64;
        let pending = {
            let mut inner = self.lock();
            let inner = &mut *inner;
            let mut pending = std::mem::take(&mut inner.pending);
            let mut removed = 0;
            for (name, series) in inner.by_name.iter_mut() {
                series.retain(|labels, buffer| {
                    let stale = buffer.points.back().is_none_or(|last| last.ms < oldest);
                    let closed = buffer
                        .open
                        .is_some_and(|open| open.start_ms + MINUTE_MS <= now);
                    if (stale || closed || all)
                        && let Some(open) = buffer.open.take()
                    {
                        buffer.closed_through = open.start_ms;
                        pending.push((
                            SeriesId {
                                name: name.clone(),
                                labels: labels.clone(),
                            },
                            open,
                        ));
                    }
                    if stale {
                        removed += 1;
                    }
                    !stale
                });
            }
            inner.by_name.retain(|_, series| !series.is_empty());
            inner.series -= removed;
            pending
        };
        let written = pending.len();
        if !pending.is_empty()
            && let Err(err) = self.write(&pending).await
        {
            self.stats.flush_errors.fetch_add(1, Ordering::Relaxed);
            // Keep them for the next attempt, bounded by the series limit.
            let mut inner = self.lock();
            if inner.pending.len() < self.config.max_series {
                inner.pending.extend(pending);
            }
            return Err(err);
        }
        Ok(written)
    }

    async fn write(&self, pending: &[(SeriesId, Minute)]) -> Result<(), QueryError> {
        let minutes: Vec<MinuteRollup<'_>> = pending
            .iter()
            .map(|(id, minute)| MinuteRollup {
                series_key: id.key(),
                name: &id.name,
                labels: &id.labels,
                minute_ms: minute.start_ms,
                count: minute.count,
                sum: minute.sum,
                min: minute.min,
                max: minute.max,
                last: minute.last,
            })
            .collect();
        self.rollups.write(&minutes).await
    }

    pub async fn apply_retention(&self) -> Result<u64, QueryError> {
        let cutoff = now_ms() - self.config.retention.as_millis() as i64;
        self.rollups.delete_before(cutoff).await
    }
}

fn downsample(points: &[Point], start_ms: i64, step_ms: i64) -> Vec<Point> {
    let mut out: Vec<Point> = Vec::new();
    let mut count = 0u64;
    for point in points {
        let bucket = start_ms + (point.ms - start_ms).div_euclid(step_ms) * step_ms;
        match out.last_mut() {
            Some(last) if last.ms == bucket => {
                count += 1;
                last.value += (point.value - last.value) / count as f64;
            }
            _ => {
                out.push(Point {
                    ms: bucket,
                    value: point.value,
                });
                count = 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downsample_averages_per_step() {
        let points = [(0, 1.0), (500, 3.0), (1000, 10.0), (2500, 4.0)]
            .map(|(ms, value)| Point { ms, value });
        let out = downsample(&points, 0, 1000);
        assert_eq!(
            out,
            [(0, 2.0), (1000, 10.0), (2000, 4.0)].map(|(ms, value)| Point { ms, value })
        );
    }

    #[test]
    fn series_key_is_canonical() {
        let id = SeriesId {
            name: "x".into(),
            labels: [("b".into(), "q\"".into()), ("a".into(), "1".into())]
                .into_iter()
                .collect(),
        };
        assert_eq!(id.key(), "x{a=\"1\",b=\"q\\\"\"}");
    }
}
