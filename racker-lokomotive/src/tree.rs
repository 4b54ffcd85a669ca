//! A rendered directory in memory: relative path → contents + mode.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::RenderError;

/// One rendered file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedFile {
    /// The bytes.
    pub contents: Vec<u8>,
    /// Unix permission bits (0o644, or 0o600 for credentials).
    pub mode: u32,
}

impl RenderedFile {
    /// The contents as text (rendered files are UTF-8).
    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.contents).unwrap_or_default()
    }
}

/// A rendered directory, ordered by path.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Tree {
    files: BTreeMap<PathBuf, RenderedFile>,
}

impl Tree {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add (or replace) a file.
    pub fn insert(&mut self, path: impl Into<PathBuf>, contents: impl Into<Vec<u8>>, mode: u32) {
        self.files.insert(
            path.into(),
            RenderedFile {
                contents: contents.into(),
                mode,
            },
        );
    }

    /// The file at `path`.
    pub fn get(&self, path: impl AsRef<Path>) -> Option<&RenderedFile> {
        self.files.get(path.as_ref())
    }

    /// Remove the file at `path`.
    pub fn remove(&mut self, path: impl AsRef<Path>) -> Option<RenderedFile> {
        self.files.remove(path.as_ref())
    }

    /// Every file, ordered by path.
    pub fn files(&self) -> impl Iterator<Item = (&Path, &RenderedFile)> {
        self.files.iter().map(|(p, f)| (p.as_path(), f))
    }

    /// Number of files.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// True when there is no file.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Write every file under `dir` (creating directories), each through a
    /// temporary file and a rename so a crash never leaves half a file, with
    /// its mode set before the contents are written.
    ///
    /// Large trees share one durability barrier
    /// ([`racker_fsutil::write_atomic_all`]): a crash leaves each file old
    /// or new, and everything is durable when this returns.
    pub fn write_to(&self, dir: &Path) -> Result<(), RenderError> {
        let paths: Vec<PathBuf> = self.files.keys().map(|rel| dir.join(rel)).collect();
        racker_fsutil::write_atomic_all(
            paths
                .iter()
                .zip(self.files.values())
                .map(|(p, f)| (p.as_path(), f.contents.as_slice(), f.mode)),
        )
        .map_err(|e| RenderError::io(dir, e))?;
        for (path, file) in paths.iter().zip(self.files.values()) {
            tracing::debug!(file = %path.display(), mode = format_args!("{:o}", file.mode), "rendered");
        }
        Ok(())
    }
}

/// Write one file atomically and durably with its mode (`racker_fsutil`).
pub(crate) fn write_file(path: &Path, file: &RenderedFile) -> Result<(), RenderError> {
    racker_fsutil::write_atomic_creating_dir(path, &file.contents, file.mode)
        .map_err(|e| RenderError::io(path, e))
}
