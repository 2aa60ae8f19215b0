//! The catalog: loaded from a YAML file, validated with precise errors, synced into the
//! database and the journal, and reloaded when the file changes.

pub mod file;
pub mod locate;
pub(crate) mod sync;
mod validate;
mod view;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

pub use sync::{CatalogSource, CatalogSync};
pub use view::{CatalogView, EnvironmentTotals, Overview};

use pharos_core::domain::Catalog;

/// The demo catalog compiled into pharosd, used when no catalog file is given.
pub const DEMO_CATALOG: &str = include_str!("../../../../deploy/demo-catalog.yaml");

/// Everything wrong with a catalog text, each with its place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogError {
    pub problems: Vec<Problem>,
}

/// One thing wrong, at `source:line:column`, in the field at `path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub source: String,
    pub line: usize,
    pub column: usize,
    pub path: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.source, self.line, self.column)?;
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)
    }
}

impl fmt::Display for CatalogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for CatalogError {}

/// Parses and validates catalog `text`; `source` names it in errors (a file path).
pub fn parse(text: &str, source: &str) -> Result<Catalog, CatalogError> {
    // A file with nothing in it is almost always one being written in place (`cat >`
    // truncates first) or a mistake; applying it would delete the whole catalog. An
    // intended empty catalog says so with its keys.
    if is_blank(text) {
        return Err(CatalogError {
            problems: vec![Problem {
                source: source.to_owned(),
                line: 1,
                column: 1,
                path: String::new(),
                message: "the catalog file is empty; to run with no projects, write `projects: []`"
                    .to_owned(),
            }],
        });
    }
    let deserializer = serde_yaml::Deserializer::from_str(text);
    let parsed: Result<file::CatalogFile, _> = serde_path_to_error::deserialize(deserializer);
    let catalog_file = match parsed {
        Ok(catalog_file) => catalog_file,
        Err(err) => {
            let path = err.path().to_string();
            let inner = err.into_inner();
            let (line, column) = inner
                .location()
                .map_or((1, 1), |location| (location.line(), location.column()));
            return Err(CatalogError {
                problems: vec![Problem {
                    source: source.to_owned(),
                    line,
                    column,
                    message: strip_location(&inner.to_string(), &path),
                    path: if path == "." { String::new() } else { path },
                }],
            });
        }
    };
    validate::validate(catalog_file).map_err(|issues| {
        let index = locate::PathIndex::build(text);
        CatalogError {
            problems: issues
                .into_iter()
                .map(|(path, message)| {
                    let location = index
                        .locate(&path)
                        .unwrap_or(locate::Location { line: 1, column: 1 });
                    Problem {
                        source: source.to_owned(),
                        line: location.line,
                        column: location.column,
                        path,
                        message,
                    }
                })
                .collect(),
        }
    })
}

/// Reads and validates the catalog file at `path`.
/// The one substitution a catalog text gets before parsing: `${listen}` becomes the
/// address pharosd serves on, so a catalog (the demo's, for one) can check this very
/// server whatever `--listen` says. An unspecified listen address (`0.0.0.0`, `::`) is
/// reached through loopback.
pub const LISTEN_PLACEHOLDER: &str = "${listen}";

/// `text` with every `${listen}` replaced by the address that reaches `listen`.
pub fn expand(text: &str, listen: SocketAddr) -> String {
    if !text.contains(LISTEN_PLACEHOLDER) {
        return text.to_owned();
    }
    let reachable = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::from((Ipv4Addr::LOCALHOST, listen.port()))
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::from((Ipv6Addr::LOCALHOST, listen.port()))
        }
        _ => listen,
    };
    text.replace(LISTEN_PLACEHOLDER, &reachable.to_string())
}

/// Whether `text` holds no YAML content at all: only blank lines, comments and
/// document markers.
fn is_blank(text: &str) -> bool {
    text.lines()
        .map(str::trim)
        .all(|line| line.is_empty() || line.starts_with('#') || line == "---" || line == "...")
}

/// serde_yaml puts the field path in front of its messages and " at line L column C"
/// behind; both are printed separately, so they are cut here.
pub fn strip_location(message: &str, path: &str) -> String {
    let message = match message.split_once(": ") {
        Some((head, rest)) if !head.is_empty() && path.starts_with(head) => rest,
        _ => message,
    };
    match message.rfind(" at line ") {
        Some(cut) => message[..cut].to_owned(),
        None => message.to_owned(),
    }
}

#[cfg(test)]
mod tests;
