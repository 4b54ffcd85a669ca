//! Crash-safe file writes for every Racker crate: one guarantee everywhere.
//!
//! A file written with [`write_atomic`] or a link replaced with
//! [`symlink_atomic`] is, after a crash or `kill -9` at any instant, either
//! the old one or the new one, never torn or missing, and the change is
//! durable once the call returns:
//!
//! 1. the new content goes to a temporary file in the same directory (an
//!    unnamed `O_TMPFILE` file where the file system supports it, so a
//!    killed writer leaves nothing behind; otherwise a hidden random name),
//! 2. the file is fsynced and gets its mode explicitly (the umask does not
//!    narrow it),
//! 3. it is renamed over the target,
//! 4. the directory is fsynced so that the rename itself survives a crash.
//!
//! Files are written with the `atomic-write-file` crate; symlinks (which it
//! does not cover) by the same steps here.
//!
//! ```
//! # fn main() -> std::io::Result<()> {
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("bootstrap.json");
//! racker_fsutil::write_atomic(&path, b"{}", 0o600)?;
//! racker_fsutil::symlink_atomic("bootstrap.json".as_ref(), &dir.path().join("current"))?;
//! assert_eq!(std::fs::read(dir.path().join("current"))?, b"{}");
//! # Ok(()) }
//! ```

use std::io::Write as _;
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::Path;

use atomic_write_file::AtomicWriteFile;
use atomic_write_file::unix::OpenOptionsExt as _AtomicOpenOptionsExt;

/// Write `bytes` to `path` atomically and durably with permission bits
/// `mode` (see the crate docs for the steps). The parent directory must
/// exist. On error the target is untouched and no temporary file remains.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    let mut file = AtomicWriteFile::options()
        .preserve_mode(false)
        .preserve_owner(false)
        .mode(mode)
        .open(path)?;
    file.write_all(bytes)?;
    // The create mode passes through the umask; the caller's mode is meant
    // exactly (e.g. 0644 for files nodes fetch, 0600 for secrets).
    file.as_file()
        .set_permissions(std::fs::Permissions::from_mode(mode))?;
    let inode = file.as_file().metadata()?.ino();
    let result = file.commit();
    if result.is_err() {
        remove_failed_temporary(path, inode);
    }
    result
}

/// Replace `path` atomically but not durably: a temporary
/// `.<name>.tmp.<pid>` beside it, renamed over it, no fsync. Readers never
/// see half a file; after a crash the file may be the old one (or the
/// temporary may be left for [`remove_stale_temporaries_in`]). For views
/// and diagnostics whose durable record is elsewhere.
pub fn replace_unsynced(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    let dir = parent(path).unwrap_or(Path::new("."));
    let tmp = dir.join(format!(".{}.tmp.{}", file_name(path), std::process::id()));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)?;
        f.write_all(bytes)?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Files written together with [`write_atomic_all`] below this many are
/// written one by one with [`write_atomic`] (a file system sync costs more
/// than a few fsyncs).
pub const BATCH_MIN: usize = 16;

/// Write many files with [`write_atomic`]'s guarantee for each, but one
/// durability barrier for all of them: every file goes to a temporary
/// `.<name>.tmp.<pid>` beside its target, then one `syncfs` per file
/// system makes all the contents durable, then each temporary is renamed
/// over its target, and each directory is fsynced once. A crash leaves
/// every target either old or new (some may be new and others old, as with
/// one call per file); temporaries a killed writer left are removed by the
/// next batch writing into the same directory. Parent directories are
/// created. With fewer than [`BATCH_MIN`] files each is written with
/// [`write_atomic_creating_dir`]. On error the files not yet renamed are
/// untouched and their temporaries removed.
///
/// A thousand-node rack renders 4,000 files: one fsync each (plus two
/// directory fsyncs, as `atomic-write-file` does) took a second or more.
pub fn write_atomic_all<'a>(
    files: impl IntoIterator<Item = (&'a Path, &'a [u8], u32)>,
) -> std::io::Result<()> {
    let files: Vec<(&Path, &[u8], u32)> = files.into_iter().collect();
    if files.len() < BATCH_MIN {
        for (path, bytes, mode) in files {
            write_atomic_creating_dir(path, bytes, mode)?;
        }
        return Ok(());
    }
    let mut dirs: Vec<&Path> = files
        .iter()
        .map(|(p, _, _)| parent(p).unwrap_or(Path::new(".")))
        .collect();
    dirs.sort();
    dirs.dedup();
    for dir in &dirs {
        std::fs::create_dir_all(dir)?;
        remove_stale_temporaries_in(dir);
    }
    let pid = std::process::id();
    let temporary = |path: &Path| {
        parent(path)
            .unwrap_or(Path::new("."))
            .join(format!(".{}.tmp.{pid}", file_name(path)))
    };
    let mut written: Vec<(std::path::PathBuf, &Path)> = Vec::with_capacity(files.len());
    let mut renamed = 0;
    let result = (|| {
        for (path, bytes, mode) in &files {
            let tmp = temporary(path);
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(*mode)
                .open(&tmp)?;
            written.push((tmp, path));
            f.write_all(bytes)?;
            f.set_permissions(std::fs::Permissions::from_mode(*mode))?;
        }
        // One barrier per file system: the contents are durable before any
        // rename makes them visible under their names.
        let mut devices = Vec::new();
        for dir in &dirs {
            let d = std::fs::File::open(dir)?;
            let dev = d.metadata()?.dev();
            if !devices.contains(&dev) {
                rustix::fs::syncfs(&d)?;
                devices.push(dev);
            }
        }
        for (tmp, path) in &written {
            std::fs::rename(tmp, path)?;
            renamed += 1;
        }
        for dir in &dirs {
            sync_dir(dir)?;
        }
        Ok(())
    })();
    if result.is_err() {
        for (tmp, _) in written.iter().skip(renamed) {
            let _ = std::fs::remove_file(tmp);
        }
    }
    result
}

/// `atomic-write-file` leaves its temporary file behind when the final
/// rename fails (for example a directory in the way): it has already linked
/// the unnamed file as `.<name>.<random>` and marked itself finalized.
/// Remove that entry, found by our file's inode so that another writer's
/// temporary file is never touched.
fn remove_failed_temporary(path: &Path, inode: u64) {
    let dir = parent(path).unwrap_or(Path::new("."));
    let prefix = format!(".{}.", file_name(path));
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let ours = entry
            .file_name()
            .to_str()
            .is_some_and(|f| f.starts_with(&prefix))
            && entry.metadata().is_ok_and(|m| m.ino() == inode);
        if ours {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// [`write_atomic`] after creating the parent directory (and its parents).
pub fn write_atomic_creating_dir(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    if let Some(dir) = parent(path) {
        std::fs::create_dir_all(dir)?;
    }
    write_atomic(path, bytes, mode)
}

/// Point `link` at `target` atomically: a new symlink beside `link` is
/// renamed over it and the directory is fsynced. Readers see the old or the
/// new target, never a missing link.
pub fn symlink_atomic(target: &Path, link: &Path) -> std::io::Result<()> {
    let dir = parent(link).unwrap_or(Path::new("."));
    let name = file_name(link);
    let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let result = std::os::unix::fs::symlink(target, &tmp)
        .and_then(|()| std::fs::rename(&tmp, link))
        .and_then(|()| sync_dir(dir));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// fsync a directory, making renames and new entries in it durable.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Remove `.<name>.tmp.<pid>` files beside `path` whose process no longer
/// runs: what a writer killed between create and rename left on a file
/// system without `O_TMPFILE`, or what older racker versions (which named
/// their temporary files so) left. A live writer's file is kept.
pub fn remove_stale_temporaries(path: &Path) {
    let dir = parent(path).unwrap_or(Path::new("."));
    let prefix = format!(".{}.tmp.", file_name(path));
    remove_stale(dir, |f| f.strip_prefix(prefix.as_str()));
}

/// [`remove_stale_temporaries`] for every file in `dir`: each
/// `.<name>.tmp.<pid>` of a process that no longer runs.
pub fn remove_stale_temporaries_in(dir: &Path) {
    remove_stale(dir, |f| {
        f.strip_prefix('.')
            .and_then(|f| f.rfind(".tmp.").map(|i| &f[i + ".tmp.".len()..]))
    });
}

fn remove_stale(dir: &Path, pid_of: impl Fn(&str) -> Option<&str>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let file = entry.file_name();
        let Some(pid) = file
            .to_str()
            .and_then(&pid_of)
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !Path::new("/proc").join(pid.to_string()).exists() {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

fn parent(path: &Path) -> Option<&Path> {
    path.parent().filter(|p| !p.as_os_str().is_empty())
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn replaces_content_sets_mode_exactly_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("report.json");
        write_atomic(&path, b"old", 0o644).unwrap();
        write_atomic(&path, b"new", 0o600).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        // 0o666 is wider than any usual umask: it must not be narrowed.
        write_atomic(&path, b"wide", 0o666).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o666);
        assert_eq!(entries(dir.path()), ["report.json"]);
    }

    #[test]
    fn a_failed_write_keeps_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("no-such-dir").join("file");
        assert!(write_atomic(&missing, b"x", 0o644).is_err());
        write_atomic_creating_dir(&missing, b"x", 0o644).unwrap();
        assert_eq!(std::fs::read(&missing).unwrap(), b"x");
        // A directory in the way: the rename fails, nothing is left over.
        let blocked = dir.path().join("blocked");
        std::fs::create_dir(&blocked).unwrap();
        std::fs::write(blocked.join("inside"), b"keep").unwrap();
        assert!(write_atomic(&blocked, b"x", 0o644).is_err());
        assert_eq!(std::fs::read(blocked.join("inside")).unwrap(), b"keep");
        assert_eq!(entries(dir.path()), ["blocked", "no-such-dir"]);
    }

    #[test]
    fn symlinks_are_replaced_in_place() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("v1"), b"1").unwrap();
        std::fs::write(dir.path().join("v2"), b"2").unwrap();
        let link = dir.path().join("current");
        symlink_atomic(Path::new("v1"), &link).unwrap();
        assert_eq!(std::fs::read(&link).unwrap(), b"1");
        symlink_atomic(Path::new("v2"), &link).unwrap();
        assert_eq!(std::fs::read_link(&link).unwrap(), Path::new("v2"));
        assert_eq!(entries(dir.path()), ["current", "v1", "v2"]);
    }

    #[test]
    fn a_batch_writes_every_file_with_its_mode_and_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        // A dead writer's leftover in one of the directories goes.
        std::fs::create_dir(dir.path().join("cl")).unwrap();
        std::fs::write(dir.path().join("cl/.node-9.yaml.tmp.4194305"), b"torn").unwrap();
        std::fs::write(dir.path().join("cl/node-0.yaml"), b"old").unwrap();
        let files: Vec<(PathBuf, Vec<u8>, u32)> = (0..40)
            .map(|i| {
                let sub = if i % 2 == 0 { "cl" } else { "ignition" };
                let mode = if i % 4 == 1 { 0o600 } else { 0o644 };
                (
                    dir.path().join(sub).join(format!("node-{i}.yaml")),
                    format!("node {i}").into_bytes(),
                    mode,
                )
            })
            .collect();
        write_atomic_all(
            files
                .iter()
                .map(|(p, b, m)| (p.as_path(), b.as_slice(), *m)),
        )
        .unwrap();
        for (path, bytes, mode) in &files {
            assert_eq!(&std::fs::read(path).unwrap(), bytes);
            assert_eq!(std::fs::metadata(path).unwrap().mode() & 0o777, *mode);
        }
        assert_eq!(entries(&dir.path().join("cl")).len(), 20);
        assert_eq!(entries(&dir.path().join("ignition")).len(), 20);
    }

    #[test]
    fn a_failed_batch_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let blocked = dir.path().join("node-3.yaml");
        std::fs::create_dir(&blocked).unwrap();
        std::fs::write(blocked.join("inside"), b"keep").unwrap();
        let files: Vec<(PathBuf, Vec<u8>)> = (0..20)
            .map(|i| (dir.path().join(format!("node-{i}.yaml")), vec![b'x'; i]))
            .collect();
        assert!(
            write_atomic_all(
                files
                    .iter()
                    .map(|(p, b)| (p.as_path(), b.as_slice(), 0o644))
            )
            .is_err()
        );
        assert!(
            entries(dir.path()).iter().all(|e| !e.contains(".tmp.")),
            "{:?}",
            entries(dir.path())
        );
        assert_eq!(std::fs::read(blocked.join("inside")).unwrap(), b"keep");
    }

    /// A writer killed between create and rename (old versions, or file
    /// systems without O_TMPFILE) leaves its temporary file; it is removed,
    /// a live writer's and another file's are kept.
    #[test]
    fn stale_temporaries_of_dead_writers_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bootstrap.json");
        // No process has pid 4194305 (above the kernel's pid_max limit).
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

        remove_stale_temporaries(&path);
        assert!(!dead.exists(), "the dead writer's temporary file stays");
        assert!(live.exists(), "a running writer's file was removed");
        assert!(other.exists(), "another file's temporary was removed");
        let _ = live_child.kill();
        let _ = live_child.wait();
    }
}
