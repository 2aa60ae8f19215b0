//! A catalog file in its own temporary directory, edited the way an operator's editor or
//! a config-management tool would: the new text is written beside it and renamed over it,
//! so pharosd's poller never reads a half-written file.

use anyhow::{Context, Result, ensure};
use std::path::{Path, PathBuf};
use tempfile::TempDir;

/// `deploy/demo-catalog.yaml`, the catalog pharosd embeds.
pub fn demo_catalog_text() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/demo-catalog.yaml");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

pub struct CatalogFile {
    dir: TempDir,
    path: PathBuf,
}

impl CatalogFile {
    /// A copy of the demo catalog, as `catalog.yaml` in a fresh temporary directory.
    pub fn demo() -> Result<Self> {
        Self::with_text(&demo_catalog_text())
    }

    pub fn with_text(text: &str) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("pharos-catalog-")
            .tempdir()?;
        let path = dir.path().join("catalog.yaml");
        std::fs::write(&path, text).with_context(|| format!("write {}", path.display()))?;
        Ok(CatalogFile { dir, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The directory holding the file, for other files of the same test.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn text(&self) -> String {
        std::fs::read_to_string(&self.path).expect("read the catalog file")
    }

    /// Replaces the whole file atomically.
    pub fn write(&self, text: &str) -> Result<()> {
        let staging = self.dir.path().join(".catalog.yaml.new");
        std::fs::write(&staging, text).with_context(|| format!("write {}", staging.display()))?;
        std::fs::rename(&staging, &self.path)
            .with_context(|| format!("rename onto {}", self.path.display()))
    }

    /// Replaces the one occurrence of `from` with `to`.
    pub fn replace(&self, from: &str, to: &str) -> Result<()> {
        let text = self.text();
        ensure!(
            text.matches(from).count() == 1,
            "{from:?} should occur once in the catalog:\n{text}"
        );
        self.write(&text.replacen(from, to, 1))
    }

    /// Appends `lines` to the file.
    pub fn append(&self, lines: &str) -> Result<()> {
        self.write(&format!("{}{lines}", self.text()))
    }
}
