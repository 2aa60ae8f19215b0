//! Anomaly detection on the series the catalog's `anomaly_detectors` select. Every
//! second, each new value of a selected series is scored against that series' earlier
//! values:
//!
//! - `robust_z` (default): `0.6745 * (x - median) / MAD` over the values of the last
//!   `window` (Iglewicz and Hoaglin's modified z-score; 0.6745 makes it comparable to a
//!   standard score for normal data). When more than half the values are equal (MAD 0),
//!   the mean absolute deviation stands in, scaled by 1.2533; a value that departs from
//!   a constant series scores infinitely.
//! - `ewma`: `(x - mean) / stddev`, where mean and variance are exponentially weighted
//!   with weight `alpha` per value (West's incremental form), updated after scoring.
//!
//! Fewer than `min_samples` earlier values: the value is not judged. A score beyond the
//! threshold (either side) raises one `anomaly.detected` event with the detector's
//! severity; the first value back within it raises `anomaly.cleared`.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::store::{MetricStore, Point, SeriesId, SeriesSelector, now_ms};
use crate::catalog::CatalogView;
use pharos_core::domain::{AnomalyDetector, AnomalyMethod, Event, Severity};
use pharos_store::journal::{Change, WriterHandle};

const EVALUATE_EVERY: Duration = Duration::from_secs(1);
/// New points read per detector per round.
const BUDGET: usize = 200_000;

/// The modified z-score of `x` against `earlier`; `None` when `earlier` is empty.
pub fn robust_z(earlier: &[f64], x: f64) -> Option<(f64, f64)> {
    let median = median(&mut earlier.to_vec())?;
    let deviations: Vec<f64> = earlier.iter().map(|v| (v - median).abs()).collect();
    let mad = median_of(deviations.clone())?;
    let score = if mad > 0.0 {
        0.6745 * (x - median) / mad
    } else {
        let mean_ad = deviations.iter().sum::<f64>() / deviations.len() as f64;
        departure(x - median, 1.2533 * mean_ad)
    };
    Some((score, median))
}

/// `difference / scale`, where a zero scale makes any departure infinite.
fn departure(difference: f64, scale: f64) -> f64 {
    if scale > 0.0 {
        difference / scale
    } else if difference == 0.0 {
        0.0
    } else {
        f64::INFINITY.copysign(difference)
    }
}

fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    Some(if values.len().is_multiple_of(2) {
        (values[mid - 1] + values[mid]) / 2.0
    } else {
        values[mid]
    })
}

fn median_of(mut values: Vec<f64>) -> Option<f64> {
    median(&mut values)
}

/// Exponentially weighted mean and variance.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Ewma {
    pub mean: f64,
    pub variance: f64,
    pub count: usize,
}

impl Ewma {
    /// The score of `x` against the state so far.
    pub fn score(&self, x: f64) -> f64 {
        departure(x - self.mean, self.variance.sqrt())
    }

    pub fn update(&mut self, x: f64, alpha: f64) {
        if self.count == 0 {
            self.mean = x;
        } else {
            let difference = x - self.mean;
            let increment = alpha * difference;
            self.mean += increment;
            self.variance = (1.0 - alpha) * (self.variance + difference * increment);
        }
        self.count += 1;
    }
}

#[derive(Default)]
struct SeriesState {
    /// `robust_z`: the values of the window.
    window: VecDeque<Point>,
    ewma: Ewma,
    /// The open anomaly: its event id.
    open: Option<String>,
}

#[derive(Default)]
struct DetectorState {
    definition: Option<AnomalyDetector>,
    cursors: HashMap<SeriesId, u64>,
    series: HashMap<SeriesId, SeriesState>,
}

pub struct AnomalyWatcher {
    view: watch::Receiver<Arc<CatalogView>>,
    store: Arc<MetricStore>,
    writer: WriterHandle,
    detectors: HashMap<String, DetectorState>,
}

/// A judged value that crossed the threshold one way or the other.
struct Crossing {
    series: SeriesId,
    point: Point,
    score: f64,
    baseline: f64,
    detected: bool,
    opened_by: Option<String>,
}

impl AnomalyWatcher {
    pub fn new(
        view: watch::Receiver<Arc<CatalogView>>,
        store: Arc<MetricStore>,
        writer: WriterHandle,
    ) -> AnomalyWatcher {
        AnomalyWatcher {
            view,
            store,
            writer,
            detectors: HashMap::new(),
        }
    }

    pub async fn run(mut self, shutdown: CancellationToken) {
        let mut ticker = tokio::time::interval(EVALUATE_EVERY);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = ticker.tick() => self.evaluate().await,
            }
        }
    }

    async fn evaluate(&mut self) {
        let detectors = self.view.borrow().catalog.metrics.anomaly_detectors.clone();
        // A changed or removed detector starts over.
        self.detectors.retain(|name, state| {
            detectors
                .iter()
                .any(|d| d.name == *name && state.definition.as_ref() == Some(d))
        });
        for detector in detectors {
            let state = self.detectors.entry(detector.name.clone()).or_default();
            state.definition = Some(detector.clone());
            let crossings = scan(&self.store, &detector, state);
            for crossing in crossings {
                let event = anomaly_event(&detector, &crossing);
                if crossing.detected
                    && let Some(series) = state.series.get_mut(&crossing.series)
                {
                    series.open = Some(event.id.clone());
                }
                if let Err(err) = self.writer.append(vec![Change::append(event)]).await {
                    tracing::warn!(error = %err, "cannot journal an anomaly event");
                }
            }
        }
    }
}

/// Scores the new points of every series the detector selects.
fn scan(
    store: &MetricStore,
    detector: &AnomalyDetector,
    state: &mut DetectorState,
) -> Vec<Crossing> {
    let selector = SeriesSelector {
        name: detector.metric.clone(),
        labels: detector.labels.clone(),
    };
    let history = match detector.method {
        AnomalyMethod::RobustZ { window } => window,
        AnomalyMethod::Ewma { .. } => store.config().recent,
    };
    let mut budget = BUDGET;
    let fresh = store.points_after(
        &selector,
        &mut state.cursors,
        now_ms() - history.as_millis() as i64,
        &mut budget,
    );
    let mut out = Vec::new();
    for (id, points) in fresh {
        let series = state.series.entry(id.clone()).or_default();
        for point in points {
            let judged = match detector.method {
                AnomalyMethod::RobustZ { window } => {
                    let from = point.ms - window.as_millis() as i64;
                    while series.window.front().is_some_and(|p| p.ms <= from) {
                        series.window.pop_front();
                    }
                    let earlier: Vec<f64> = series.window.iter().map(|p| p.value).collect();
                    series.window.push_back(point);
                    (earlier.len() >= detector.min_samples)
                        .then(|| robust_z(&earlier, point.value))
                        .flatten()
                }
                AnomalyMethod::Ewma { alpha } => {
                    let judged = (series.ewma.count >= detector.min_samples)
                        .then(|| (series.ewma.score(point.value), series.ewma.mean));
                    series.ewma.update(point.value, alpha);
                    judged
                }
            };
            let Some((score, baseline)) = judged else {
                continue;
            };
            let beyond = score.abs() > detector.threshold;
            if beyond != series.open.is_some() {
                out.push(Crossing {
                    series: id.clone(),
                    point,
                    score,
                    baseline,
                    detected: beyond,
                    opened_by: series.open.take(),
                });
                if beyond {
                    // Marked open now so later points of this round compare right; the
                    // event id is filled in when the event is made.
                    series.open = Some(String::new());
                }
            }
        }
    }
    out
}

fn anomaly_event(detector: &AnomalyDetector, crossing: &Crossing) -> Event {
    let series = crossing.series.key();
    let method = match detector.method {
        AnomalyMethod::RobustZ { .. } => "robust_z",
        AnomalyMethod::Ewma { .. } => "ewma",
    };
    let (kind, severity, message) = if crossing.detected {
        (
            "anomaly.detected",
            detector.severity,
            format!(
                "anomaly {}: {series} = {} scores {:.1} ({method}, threshold {}; baseline {})",
                detector.name,
                crossing.point.value,
                crossing.score,
                detector.threshold,
                crossing.baseline
            ),
        )
    } else {
        (
            "anomaly.cleared",
            Severity::Info,
            format!(
                "anomaly {} cleared: {series} = {} scores {:.1}",
                detector.name, crossing.point.value, crossing.score
            ),
        )
    };
    let mut attributes = BTreeMap::from([
        ("detector".to_owned(), detector.name.clone()),
        ("series".to_owned(), series),
        ("value".to_owned(), crossing.point.value.to_string()),
        ("score".to_owned(), format!("{:.3}", crossing.score)),
        ("baseline".to_owned(), crossing.baseline.to_string()),
        ("method".to_owned(), method.to_owned()),
        ("time_unix_ms".to_owned(), crossing.point.ms.to_string()),
    ]);
    if let Some(opened) = crossing.opened_by.as_ref().filter(|id| !id.is_empty()) {
        attributes.insert("detected_event".to_owned(), opened.clone());
    }
    Event {
        id: super::event_id(kind),
        kind: kind.to_owned(),
        severity,
        message,
        source: "anomaly".to_owned(),
        project_id: detector.project_id.clone(),
        environment: detector.environment.clone(),
        attributes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn robust_z_matches_a_hand_computation() {
        // median 10, deviations 0,1,1,2,2 -> MAD 1; (16 - 10) * 0.6745 = 4.047.
        let (score, median) = robust_z(&[10.0, 9.0, 11.0, 8.0, 12.0], 16.0).unwrap();
        assert_eq!(median, 10.0);
        assert!((score - 4.047).abs() < 1e-9, "{score}");
        // Within the spread: small.
        assert!(
            robust_z(&[10.0, 9.0, 11.0, 8.0, 12.0], 10.5)
                .unwrap()
                .0
                .abs()
                < 1.0
        );
        // One outlier among the earlier values barely moves the baseline.
        let (score, _) = robust_z(&[10.0, 9.0, 11.0, 8.0, 12.0, 1000.0], 10.0).unwrap();
        assert!(score.abs() < 1.0, "{score}");
        assert!(robust_z(&[], 1.0).is_none());
    }

    #[test]
    fn constant_series_use_the_mean_deviation_or_score_infinitely() {
        // MAD 0 (most values equal), mean absolute deviation 0.5 / 4 = 0.125.
        let (score, _) = robust_z(&[5.0, 5.0, 5.0, 5.5], 6.0).unwrap();
        assert!((score - 1.0 / (1.2533 * 0.125)).abs() < 1e-9, "{score}");
        assert_eq!(robust_z(&[5.0, 5.0, 5.0], 5.0).unwrap().0, 0.0);
        assert_eq!(
            robust_z(&[5.0, 5.0, 5.0], 4.0).unwrap().0,
            f64::NEG_INFINITY
        );
    }

    #[test]
    fn ewma_tracks_mean_and_variance() {
        let mut ewma = Ewma::default();
        for x in [10.0, 12.0, 10.0, 12.0, 10.0, 12.0, 10.0, 12.0] {
            ewma.update(x, 0.5);
        }
        // Alternating 10/12 with alpha 0.5: mean near 11.33, stddev near 0.94.
        assert!((ewma.mean - 11.33).abs() < 0.05, "{ewma:?}");
        assert!((ewma.variance.sqrt() - 0.94).abs() < 0.1, "{ewma:?}");
        assert!(ewma.score(30.0) > 10.0);
        assert!(ewma.score(11.0).abs() < 1.0);
    }
}
