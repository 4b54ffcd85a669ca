//! Crash-safe file writes, shared by the library and the `racker` CLI:
//! `racker_fsutil`'s writer plus the clean-up of a killed writer's leftovers.

use std::path::Path;

use crate::Error;

/// Write `contents` to `path` atomically: write a temporary file beside it,
/// fsync, set `mode`, rename over the target, fsync the directory. A crash
/// leaves either the old or the new file, never a torn one.
///
/// Temporary files that a killed writer (`kill -9` between create and
/// rename) left beside `path` are removed on the next write, when the
/// process that made them is gone.
pub fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> Result<(), Error> {
    if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::io("creating", dir, e))?;
    }
    racker_fsutil::write_atomic(path, contents, mode).map_err(|e| Error::io("writing", path, e))?;
    racker_fsutil::remove_stale_temporaries(path);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A temporary file an older racker left when it was killed between
    /// create and rename goes away with the next write.
    #[test]
    fn a_dead_writers_temporary_goes_away_on_the_next_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state").join("bootstrap.json");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        // No process has pid 4194305 (above the kernel's pid_max limit).
        let dead = path.with_file_name(".bootstrap.json.tmp.4194305");
        std::fs::write(&dead, b"torn").unwrap();
        write_atomic(&path, b"{}", 0o644).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"{}");
        assert!(!dead.exists(), "the dead writer's temporary file stays");
    }
}
