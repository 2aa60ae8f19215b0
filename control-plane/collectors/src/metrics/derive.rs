//! From scraped samples to stored series: counters become per-second rates
//! (`<name>:rate`, a decrease is a reset and counts from zero), histograms become
//! `<family>:p50`, `:p95` and `:p99` over the observations between two scrapes (plus
//! `<family>_count:rate`), gauges, untyped samples and summary quantiles stay as they are.
//! Rates and percentiles need two scrapes; the state kept is one scrape's worth.

use std::collections::HashMap;

/// Series keys hash their name and labels on every sample: a fast non-cryptographic
/// hash (the keys come from scraped targets, but a target can only slow its own state).
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

use super::exposition::{Exposition, MetricType};
use super::store::{Labels, SeriesId};

/// Per-target state between scrapes.
#[derive(Default)]
pub struct Deriver {
    /// Per counter: the scrape time and value, and the scrape that last saw it.
    counters: FastMap<SeriesId, (i64, f64, u64)>,
    histograms: FastMap<SeriesId, (i64, Vec<(f64, f64)>)>,
    scrapes: u64,
}

pub const QUANTILES: [(f64, &str); 3] = [(0.5, "p50"), (0.95, "p95"), (0.99, "p99")];

impl Deriver {
    /// The series values of one scrape taken at `at_ms`; `extra` labels are added to
    /// every series (they win over scraped labels of the same name).
    pub fn derive(
        &mut self,
        exposition: &Exposition,
        at_ms: i64,
        extra: &Labels,
    ) -> Vec<(SeriesId, f64)> {
        let mut out = Vec::with_capacity(exposition.samples.len());
        self.scrapes += 1;
        let scrape = self.scrapes;
        // (family, labels without `le`) -> buckets (le, cumulative count)
        let mut buckets: FastMap<SeriesId, Vec<(f64, f64)>> = FastMap::default();
        for sample in &exposition.samples {
            let (family, kind) = exposition.family_of(&sample.name);
            let mut labels: Labels = sample.labels.iter().cloned().collect();
            for (k, v) in extra {
                labels.insert(k.clone(), v.clone());
            }
            let name = sample.name.as_str();
            let counter_name = match kind {
                MetricType::Counter if !name.ends_with("_created") => Some(name.to_owned()),
                MetricType::Histogram | MetricType::Summary
                    if name.strip_suffix("_count") == Some(family) =>
                {
                    Some(name.to_owned())
                }
                _ => None,
            };
            if let Some(counter) = counter_name {
                let id = SeriesId {
                    name: format!("{counter}:rate"),
                    labels,
                };
                match self.counters.get_mut(&id) {
                    Some(state) => {
                        let (prev_ms, prev, _) = *state;
                        *state = (at_ms, sample.value, scrape);
                        if at_ms > prev_ms {
                            let increase = if sample.value >= prev {
                                sample.value - prev
                            } else {
                                sample.value // reset: the counter restarted from zero
                            };
                            out.push((id, increase * 1000.0 / (at_ms - prev_ms) as f64));
                        }
                    }
                    None => {
                        self.counters.insert(id, (at_ms, sample.value, scrape));
                    }
                }
                continue;
            }
            match kind {
                MetricType::Histogram => {
                    if name.len() == family.len() + "_bucket".len() && name.ends_with("_bucket") {
                        let Some(le) = labels.remove("le") else {
                            continue;
                        };
                        let Some(le) = parse_le(&le) else {
                            continue;
                        };
                        buckets
                            .entry(SeriesId {
                                name: family.to_owned(),
                                labels,
                            })
                            .or_default()
                            .push((le, sample.value));
                    }
                    // `_sum` and `_created` are not kept.
                }
                MetricType::Summary if name != family => {}
                MetricType::Counter => {} // `_created`
                _ => out.push((
                    SeriesId {
                        name: name.to_owned(),
                        labels,
                    },
                    sample.value,
                )),
            }
        }
        let mut histograms = FastMap::with_capacity_and_hasher(buckets.len(), Default::default());
        for (id, mut current) in buckets {
            current.sort_by(|a, b| a.0.total_cmp(&b.0));
            current.dedup_by(|a, b| a.0 == b.0);
            // Cumulative counts must not decrease; float noise can make them.
            let mut running = 0.0f64;
            for bucket in &mut current {
                running = running.max(bucket.1);
                bucket.1 = running;
            }
            if let Some((prev_ms, prev)) = self.histograms.get(&id)
                && at_ms > *prev_ms
            {
                let same_layout = prev.len() == current.len()
                    && prev.iter().zip(&current).all(|(a, b)| a.0 == b.0);
                let window: Vec<(f64, f64)> =
                    if same_layout && prev.iter().zip(&current).all(|(a, b)| b.1 >= a.1) {
                        prev.iter()
                            .zip(&current)
                            .map(|(a, b)| (b.0, b.1 - a.1))
                            .collect()
                    } else {
                        current.clone() // reset or new layout: everything since zero
                    };
                for (q, suffix) in QUANTILES {
                    if let Some(value) = quantile(q, &window) {
                        out.push((
                            SeriesId {
                                name: format!("{}:{suffix}", id.name),
                                labels: id.labels.clone(),
                            },
                            value,
                        ));
                    }
                }
            }
            histograms.insert(id, (at_ms, current));
        }
        // Counters the target no longer exposes are forgotten.
        self.counters.retain(|_, state| state.2 == scrape);
        self.histograms = histograms;
        out
    }
}

fn parse_le(text: &str) -> Option<f64> {
    match text {
        "+Inf" | "Inf" | "inf" | "+inf" => Some(f64::INFINITY),
        _ => text.parse::<f64>().ok().filter(|v| v.is_finite()),
    }
}

/// The `q` quantile of cumulative `buckets` (upper bound, count), sorted by bound and
/// ending with `+Inf`, interpolating linearly inside the bucket that holds the rank, as
/// Prometheus's `histogram_quantile` does. `None` without observations or `+Inf`.
pub fn quantile(q: f64, buckets: &[(f64, f64)]) -> Option<f64> {
    let &(last_le, total) = buckets.last()?;
    if last_le != f64::INFINITY || total <= 0.0 || !(0.0..=1.0).contains(&q) {
        return None;
    }
    let rank = q * total;
    let index = buckets.iter().position(|&(_, count)| count >= rank)?;
    let (upper, count) = buckets[index];
    if upper == f64::INFINITY {
        // The rank is past the last finite bound: that bound is the best estimate.
        return Some(if index == 0 {
            0.0
        } else {
            buckets[index - 1].0
        });
    }
    let (lower, below) = if index == 0 {
        (if upper > 0.0 { 0.0 } else { upper }, 0.0)
    } else {
        buckets[index - 1]
    };
    let in_bucket = count - below;
    if in_bucket <= 0.0 {
        return Some(upper);
    }
    Some(lower + (upper - lower) * (rank - below) / in_bucket)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::exposition::{Limits, parse};

    #[test]
    fn quantile_interpolates_inside_the_bucket() {
        // 10 observations <= 0.1, 20 in (0.1, 0.5], 10 in (0.5, 1], none above.
        let buckets = [(0.1, 10.0), (0.5, 30.0), (1.0, 40.0), (f64::INFINITY, 40.0)];
        // rank 20 -> (0.1, 0.5], 10 of 20 in: 0.1 + 0.4 * 0.5
        assert!((quantile(0.5, &buckets).unwrap() - 0.3).abs() < 1e-12);
        // rank 38 -> (0.5, 1], 8 of 10 in: 0.5 + 0.5 * 0.8
        assert!((quantile(0.95, &buckets).unwrap() - 0.9).abs() < 1e-12);
        assert_eq!(quantile(0.5, &[(f64::INFINITY, 0.0)]), None);
        assert_eq!(quantile(0.5, &[(1.0, 3.0)]), None);
    }

    #[test]
    fn counters_become_rates_with_resets() {
        let mut deriver = Deriver::default();
        let extra = Labels::new();
        let scrape = |v: f64| {
            parse(
                &format!("# TYPE c counter\nc_total{{a=\"x\"}} {v}\n"),
                &Limits::default(),
            )
        };
        assert!(deriver.derive(&scrape(100.0), 0, &extra).is_empty());
        let out = deriver.derive(&scrape(150.0), 10_000, &extra);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].0.name, "c_total:rate");
        assert_eq!(out[0].1, 5.0);
        // Reset: 150 -> 20 means 20 since the restart.
        let out = deriver.derive(&scrape(20.0), 20_000, &extra);
        assert_eq!(out[0].1, 2.0);
    }

    #[test]
    fn histograms_become_percentiles_of_the_window() {
        let mut deriver = Deriver::default();
        let extra: Labels = [("target".to_owned(), "t".to_owned())].into();
        let scrape = |k: f64| {
            parse(
                &format!(
                    "# TYPE h histogram\nh_bucket{{le=\"0.1\"}} {}\nh_bucket{{le=\"0.5\"}} {}\nh_bucket{{le=\"1\"}} {}\nh_bucket{{le=\"+Inf\"}} {}\nh_sum 1\nh_count {}\n",
                    10.0 * k,
                    30.0 * k,
                    40.0 * k,
                    40.0 * k,
                    40.0 * k
                ),
                &Limits::default(),
            )
        };
        assert!(deriver.derive(&scrape(1.0), 0, &extra).is_empty());
        let out: HashMap<String, f64> = deriver
            .derive(&scrape(2.0), 1000, &extra)
            .into_iter()
            .map(|(id, v)| (id.name, v))
            .collect();
        assert!((out["h:p50"] - 0.3).abs() < 1e-12);
        assert!((out["h:p95"] - 0.9).abs() < 1e-12);
        assert!((out["h:p99"] - 0.98).abs() < 1e-12);
        assert_eq!(out["h_count:rate"], 40.0);
    }
}
