//! Faults injected on purpose, so supervision can be tested against the real binary.

use std::collections::BTreeMap;

/// Panics injected on purpose, to test supervision against the real binary:
/// `PHAROS_FAILPOINT=panic:<task>` makes every start of the task panic,
/// `panic:<task>:<n>` only the first n; several are separated by commas.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Failpoints {
    /// Task name -> how many starts panic (`None`: every one).
    panics: BTreeMap<String, Option<u32>>,
}

#[derive(Debug, thiserror::Error)]
pub enum FailpointError {
    #[error(
        "{} {spec:?}: expected panic:<task> or panic:<task>:<count>",
        Failpoints::VARIABLE
    )]
    Malformed { spec: String },
    #[error("{} {spec:?}: the count is not a whole number", Failpoints::VARIABLE)]
    Count {
        spec: String,
        #[source]
        source: std::num::ParseIntError,
    },
}

impl Failpoints {
    pub const VARIABLE: &str = "PHAROS_FAILPOINT";

    /// The failpoints named by `PHAROS_FAILPOINT`. Only debug builds read it (the
    /// end-to-end tests run those), so no stray variable can make a release build fail.
    pub fn from_env() -> Result<Failpoints, FailpointError> {
        #[cfg(debug_assertions)]
        if let Ok(spec) = std::env::var(Self::VARIABLE) {
            let failpoints = Failpoints::parse(&spec)?;
            tracing::warn!(failpoints = %spec, "fault injection armed");
            return Ok(failpoints);
        }
        #[cfg(not(debug_assertions))]
        if std::env::var_os(Self::VARIABLE).is_some() {
            tracing::warn!(
                "{} is ignored: only debug builds inject faults",
                Self::VARIABLE
            );
        }
        Ok(Failpoints::default())
    }

    pub fn parse(spec: &str) -> Result<Failpoints, FailpointError> {
        let mut failpoints = Failpoints::default();
        for item in spec
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
        {
            let malformed = || FailpointError::Malformed {
                spec: item.to_owned(),
            };
            let mut parts = item.split(':');
            let (Some("panic"), Some(task)) = (parts.next(), parts.next()) else {
                return Err(malformed());
            };
            if task.is_empty() {
                return Err(malformed());
            }
            let times = match parts.next() {
                None => None,
                Some(count) => Some(count.parse().map_err(|source| FailpointError::Count {
                    spec: item.to_owned(),
                    source,
                })?),
            };
            if parts.next().is_some() {
                return Err(malformed());
            }
            failpoints = failpoints.panic(task, times);
        }
        Ok(failpoints)
    }

    /// Makes the first `times` starts of `task` panic, or every start with `None`.
    pub fn panic(mut self, task: &str, times: Option<u32>) -> Failpoints {
        self.panics.insert(task.to_owned(), times);
        self
    }

    /// Whether start number `start` (0 for the first) of `task` panics.
    pub(crate) fn panics_on(&self, task: &str, start: u32) -> bool {
        match self.panics.get(task) {
            Some(None) => true,
            Some(Some(times)) => start < *times,
            None => false,
        }
    }
}
