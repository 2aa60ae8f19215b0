//! Where an export's rows go. A file is written under a hidden partial name beside the
//! final one and renamed only when complete, so a failed or interrupted export never
//! leaves a truncated file under the name a user asked for.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::error::CliError;

/// Where rows go: stdout, or a file written under a temporary name and renamed when done.
pub(super) enum Sink {
    Stdout(BufWriter<std::io::Stdout>),
    File {
        writer: BufWriter<std::fs::File>,
        partial: PathBuf,
        path: PathBuf,
    },
}

impl Sink {
    pub(super) fn open(file: Option<&str>) -> Result<Sink, CliError> {
        let Some(file) = file.filter(|f| *f != "-") else {
            return Ok(Sink::Stdout(BufWriter::with_capacity(
                1 << 16,
                std::io::stdout(),
            )));
        };
        let path = PathBuf::from(file);
        let name = path
            .file_name()
            .ok_or_else(|| CliError::Usage(format!("--output {file:?} is not a file name")))?;
        let partial = path.with_file_name(format!(".{}.partial", name.to_string_lossy()));
        let handle = std::fs::File::create(&partial).map_err(|err| {
            CliError::Invalid(format!("cannot create {}: {err}", partial.display()))
        })?;
        Ok(Sink::File {
            writer: BufWriter::with_capacity(1 << 16, handle),
            partial,
            path,
        })
    }

    pub(super) fn line(&mut self, text: &str) -> Result<(), CliError> {
        let result = match self {
            Sink::Stdout(writer) => writeln!(writer, "{text}"),
            Sink::File { writer, .. } => writeln!(writer, "{text}"),
        };
        result.map_err(|err| self.write_error(err))
    }

    fn write_error(&self, err: std::io::Error) -> CliError {
        match self {
            Sink::Stdout(_) => CliError::Other(format!("cannot write to stdout: {err}")),
            Sink::File { partial, .. } => {
                let _ = std::fs::remove_file(partial);
                CliError::Other(format!("cannot write {}: {err}", partial.display()))
            }
        }
    }

    pub(super) fn discard(self) {
        if let Sink::File { partial, .. } = self {
            let _ = std::fs::remove_file(partial);
        }
    }

    /// Flushes, and moves a file to its final name.
    pub(super) fn finish(self) -> Result<Option<PathBuf>, CliError> {
        match self {
            Sink::Stdout(mut writer) => writer
                .flush()
                .map(|()| None)
                .map_err(|err| CliError::Other(format!("cannot write to stdout: {err}"))),
            Sink::File {
                writer,
                partial,
                path,
            } => {
                let fail = |err: std::io::Error, at: &Path| {
                    let _ = std::fs::remove_file(&partial);
                    CliError::Other(format!("cannot write {}: {err}", at.display()))
                };
                let file = writer
                    .into_inner()
                    .map_err(|err| fail(err.into_error(), &partial))?;
                file.sync_all().map_err(|err| fail(err, &partial))?;
                std::fs::rename(&partial, &path).map_err(|err| fail(err, &path))?;
                Ok(Some(path))
            }
        }
    }
}
