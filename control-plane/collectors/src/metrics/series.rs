//! What a series is (a name and labels), how one is selected, and its points.

use std::collections::BTreeMap;

pub type Labels = BTreeMap<String, String>;

/// A series: a name and its labels.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeriesId {
    pub name: String,
    pub labels: Labels,
}

impl SeriesId {
    /// `name{k="v",...}`, labels sorted, values escaped as in the exposition format.
    pub fn key(&self) -> String {
        let mut out = self.name.clone();
        out.push('{');
        for (i, (k, v)) in self.labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(k);
            out.push_str("=\"");
            out.push_str(&v.replace('\\', "\\\\").replace('"', "\\\""));
            out.push('"');
        }
        out.push('}');
        out
    }
}

/// Series with this name whose labels include every one of `labels`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SeriesSelector {
    pub name: String,
    pub labels: Labels,
}

impl SeriesSelector {
    pub fn matches_labels(&self, labels: &Labels) -> bool {
        self.labels
            .iter()
            .all(|(k, v)| labels.get(k).is_some_and(|have| have == v))
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point {
    pub ms: i64,
    pub value: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Memory,
    Rollups,
    /// A Prometheus of the catalog's `prometheus_backends`.
    Prometheus,
}

#[derive(Clone, Debug, PartialEq)]
pub struct SeriesPoints {
    pub id: SeriesId,
    pub points: Vec<Point>,
    pub source: Source,
}
