use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Something that happened and is worth showing on the events feed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub id: String,
    /// Dotted kind such as `catalog.invalid`.
    pub kind: String,
    pub severity: Severity,
    pub message: String,
    pub source: String,
    pub project_id: Option<String>,
    pub environment: Option<String>,
    pub attributes: BTreeMap<String, String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Error,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
            Severity::Critical => "critical",
        }
    }
}
