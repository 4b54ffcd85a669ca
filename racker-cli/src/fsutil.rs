//! Small file-system helpers for the CLI.

use std::path::Path;

/// Write `contents` to `path` atomically (temporary file, fsync, rename,
/// fsync of the directory): racker-bootstrap's writer, so the CLI and the
/// library give the same crash guarantee.
pub(crate) fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> anyhow::Result<()> {
    Ok(racker_bootstrap::fsutil::write_atomic(
        path, contents, mode,
    )?)
}
