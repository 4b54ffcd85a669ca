//! Crash-safe file writes, shared by the library and the `racker` CLI:
//! racker-netboot's writer plus the clean-up of a killed writer's leftovers.

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
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| Error::io("creating", dir, e))?;
    racker_netboot::report::write_atomic_mode(path, contents, mode)
        .map_err(|e| Error::io("writing", path, e))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    remove_stale_temporaries(dir, &name);
    Ok(())
}

/// Remove `.<name>.tmp.<pid>` files in `dir` whose process no longer runs.
fn remove_stale_temporaries(dir: &Path, name: &str) {
    let prefix = format!(".{name}.tmp.");
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let file = entry.file_name();
        let Some(pid) = file
            .to_str()
            .and_then(|f| f.strip_prefix(&prefix))
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !Path::new("/proc").join(pid.to_string()).exists() {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer killed between create and rename leaves its temporary file;
    /// the next write removes it (and leaves a live writer's alone).
    #[test]
    fn stale_temporaries_of_dead_writers_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bootstrap.json");
        // No process has pid 4194304 + 1 (above the kernel's pid_max limit).
        let dead = dir.path().join(".bootstrap.json.tmp.4194305");
        std::fs::write(&dead, b"torn").unwrap();
        let mut live_child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let live = dir
            .path()
            .join(format!(".bootstrap.json.tmp.{}", live_child.id()));
        std::fs::write(&live, b"in progress").unwrap();
        let other = dir.path().join(".other.json.tmp.4194305");
        std::fs::write(&other, b"not ours").unwrap();

        write_atomic(&path, b"{}", 0o644).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"{}");
        assert!(!dead.exists(), "the dead writer's temporary file stays");
        assert!(live.exists(), "a running writer's file was removed");
        assert!(other.exists(), "another file's temporary was removed");
        let _ = live_child.kill();
        let _ = live_child.wait();
    }
}
