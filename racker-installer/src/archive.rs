//! Reproducible `.tar.gz` writing and tar-slip-safe unpacking.
//!
//! Writing: entries in byte order of their paths, directories before their
//! content, owner 0:0 with empty user/group names, one fixed mtime,
//! permissions normalised to 0755 (directories, executables), 0644 (other
//! files) or 0777 (symlinks), gzip header with mtime 0 and no file name.
//!
//! Unpacking accepts only regular files, directories and symlinks; it refuses
//! absolute paths, `..` components, symlink targets that are absolute or
//! climb above the archive root, writing through a symlink and duplicate
//! entries.

use std::fs;
use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};

use crate::error::{Error, IoContext, Result};

/// The modification time stamped on every entry unless the definition says
/// otherwise: 1980-01-01T00:00:00Z (the earliest a zip can hold, a common
/// choice for reproducible builds).
pub const DEFAULT_MTIME: u64 = 315_532_800;

/// Write a reproducible gzip-compressed tar of everything under `root`
/// (entry names are relative to `root`, without a leading `./`).
pub fn write_archive(root: &Path, mtime: u64, out: impl Write) -> Result<()> {
    let gz = flate2::GzBuilder::new()
        .mtime(0)
        .operating_system(255)
        .write(out, flate2::Compression::new(9));
    let mut builder = tar::Builder::new(gz);
    builder.mode(tar::HeaderMode::Deterministic);
    builder.follow_symlinks(false);
    let mut entries = Vec::new();
    collect(root, Path::new(""), &mut entries)?;
    for rel in entries {
        let full = root.join(&rel);
        let meta = fs::symlink_metadata(&full).ctx("stat", &full)?;
        let mut header = tar::Header::new_gnu();
        header.set_mtime(mtime);
        header.set_uid(0);
        header.set_gid(0);
        let write_err = |source: std::io::Error| Error::Io {
            op: "write archive entry",
            path: full.clone(),
            source,
        };
        let ft = meta.file_type();
        if ft.is_dir() {
            header.set_entry_type(tar::EntryType::Directory);
            header.set_mode(0o755);
            header.set_size(0);
            let mut name = rel.clone().into_os_string();
            name.push("/");
            builder
                .append_data(&mut header, Path::new(&name), std::io::empty())
                .map_err(write_err)?;
        } else if ft.is_symlink() {
            let target = fs::read_link(&full).ctx("read link", &full)?;
            check_link_target(&rel, &target).map_err(|reason| Error::Unarchivable {
                path: full.clone(),
                reason,
            })?;
            header.set_entry_type(tar::EntryType::Symlink);
            header.set_mode(0o777);
            header.set_size(0);
            builder
                .append_link(&mut header, &rel, &target)
                .map_err(write_err)?;
        } else if ft.is_file() {
            use std::os::unix::fs::PermissionsExt;
            let exec = meta.permissions().mode() & 0o111 != 0;
            header.set_entry_type(tar::EntryType::Regular);
            header.set_mode(if exec { 0o755 } else { 0o644 });
            header.set_size(meta.len());
            let file = fs::File::open(&full).ctx("open", &full)?;
            builder
                .append_data(&mut header, &rel, file.take(meta.len()))
                .map_err(write_err)?;
        } else {
            return Err(Error::Unarchivable {
                path: full,
                reason: "only regular files, directories and symlinks can be archived".into(),
            });
        }
    }
    let gz = builder.into_inner().map_err(|source| Error::Io {
        op: "finish archive",
        path: root.to_path_buf(),
        source,
    })?;
    gz.finish().map_err(|source| Error::Io {
        op: "finish gzip stream",
        path: root.to_path_buf(),
        source,
    })?;
    Ok(())
}

/// Depth-first, children sorted by name bytes, directories listed before
/// their content.
fn collect(root: &Path, rel: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let dir = root.join(rel);
    let mut names = Vec::new();
    for entry in fs::read_dir(&dir).ctx("list", &dir)? {
        let entry = entry.ctx("list", &dir)?;
        names.push(entry.file_name());
    }
    names.sort();
    for name in names {
        let child = rel.join(&name);
        let full = root.join(&child);
        let is_dir = fs::symlink_metadata(&full)
            .ctx("stat", &full)?
            .file_type()
            .is_dir();
        out.push(child.clone());
        if is_dir {
            collect(root, &child, out)?;
        }
    }
    Ok(())
}

/// Validate an entry path: relative, no `..`, not empty. Returns the path
/// without `.` components.
pub fn check_entry_path(path: &Path) -> std::result::Result<PathBuf, String> {
    let mut clean = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => clean.push(part),
            Component::CurDir => {}
            Component::ParentDir => return Err("path contains `..`".into()),
            Component::RootDir | Component::Prefix(_) => {
                return Err("absolute path".into());
            }
        }
    }
    if clean.as_os_str().is_empty() {
        return Err("empty path".into());
    }
    Ok(clean)
}

/// Validate a symlink target for a link stored at `entry` (relative to the
/// archive root): it must be relative, may only start with `..` components
/// (never `..` after a normal component, which could climb out through
/// another symlink) and those may not climb above the archive root.
pub fn check_link_target(entry: &Path, target: &Path) -> std::result::Result<(), String> {
    // Number of real directories above the link, inside the root.
    let depth = entry
        .components()
        .filter(|c| matches!(c, Component::Normal(_)))
        .count()
        .saturating_sub(1);
    let mut ups = 0usize;
    let mut seen_normal = false;
    for component in target.components() {
        match component {
            Component::ParentDir if seen_normal => {
                return Err(format!(
                    "symlink target {} has `..` after a name",
                    target.display()
                ));
            }
            Component::ParentDir => ups += 1,
            Component::Normal(_) => seen_normal = true,
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => {
                return Err(format!("absolute symlink target {}", target.display()));
            }
        }
    }
    if target.as_os_str().is_empty() {
        return Err("empty symlink target".into());
    }
    if ups > depth {
        return Err(format!(
            "symlink target {} escapes the archive root",
            target.display()
        ));
    }
    Ok(())
}

/// Unpack a gzip-compressed tar read from `input` into `dest` (which must
/// exist and should be empty). `what` names the archive in errors.
pub fn unpack_archive(input: impl Read, dest: &Path, what: &str) -> Result<()> {
    let corrupt = |source: std::io::Error| Error::CorruptArchive {
        what: what.to_owned(),
        source,
    };
    let gz = flate2::read::GzDecoder::new(input);
    let mut archive = tar::Archive::new(gz);
    for entry in archive.entries().map_err(corrupt)? {
        let mut entry = entry.map_err(corrupt)?;
        let raw_path = entry.path().map_err(corrupt)?.into_owned();
        let shown = raw_path.display().to_string();
        let refuse = |reason: String| Error::UnsafeArchiveEntry {
            entry: shown.clone(),
            reason,
        };
        let kind = entry.header().entry_type();
        // `./` (as written by `tar -C dir .`) is the destination itself.
        if kind == tar::EntryType::Directory
            && raw_path.components().all(|c| c == Component::CurDir)
        {
            continue;
        }
        let rel = check_entry_path(&raw_path).map_err(&refuse)?;
        let target_path = dest.join(&rel);
        // Every ancestor inside dest must be a real directory (never a
        // symlink), created on demand.
        ensure_real_parents(dest, &rel).map_err(&refuse)?;
        let existing = fs::symlink_metadata(&target_path).ok();
        match kind {
            tar::EntryType::Directory => match existing {
                Some(m) if m.file_type().is_dir() => {}
                Some(_) => return Err(refuse("duplicate entry".into())),
                None => fs::create_dir(&target_path).ctx("create directory", &target_path)?,
            },
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                if existing.is_some() {
                    return Err(refuse("duplicate entry".into()));
                }
                let mode = entry.header().mode().map_err(corrupt)? & 0o755;
                let mut file = fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&target_path)
                    .ctx("create", &target_path)?;
                std::io::copy(&mut entry, &mut file).map_err(corrupt)?;
                use std::os::unix::fs::PermissionsExt;
                file.set_permissions(fs::Permissions::from_mode(mode))
                    .ctx("chmod", &target_path)?;
                file.sync_all().ctx("sync", &target_path)?;
            }
            tar::EntryType::Symlink => {
                if existing.is_some() {
                    return Err(refuse("duplicate entry".into()));
                }
                let link = entry
                    .link_name()
                    .map_err(corrupt)?
                    .ok_or_else(|| refuse("symlink without target".into()))?
                    .into_owned();
                check_link_target(&rel, &link).map_err(&refuse)?;
                std::os::unix::fs::symlink(&link, &target_path)
                    .ctx("create symlink", &target_path)?;
            }
            other => {
                return Err(refuse(format!(
                    "entry type {other:?} is not allowed (only files, directories, symlinks)"
                )));
            }
        }
    }
    Ok(())
}

fn ensure_real_parents(dest: &Path, rel: &Path) -> std::result::Result<(), String> {
    let mut current = dest.to_path_buf();
    let Some(parent) = rel.parent() else {
        return Ok(());
    };
    for component in parent.components() {
        current.push(component);
        match fs::symlink_metadata(&current) {
            Ok(m) if m.file_type().is_dir() => {}
            Ok(m) if m.file_type().is_symlink() => {
                return Err(format!(
                    "would write through symlink {}",
                    current.strip_prefix(dest).unwrap_or(&current).display()
                ));
            }
            Ok(_) => {
                return Err(format!(
                    "{} is not a directory",
                    current.strip_prefix(dest).unwrap_or(&current).display()
                ));
            }
            Err(_) => fs::create_dir(&current)
                .map_err(|e| format!("create directory {}: {e}", current.display()))?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_paths() {
        assert_eq!(
            check_entry_path(Path::new("./bin/racker")).ok(),
            Some(PathBuf::from("bin/racker"))
        );
        assert!(check_entry_path(Path::new("../x")).is_err());
        assert!(check_entry_path(Path::new("a/../../x")).is_err());
        assert!(check_entry_path(Path::new("/etc/passwd")).is_err());
        assert!(check_entry_path(Path::new(".")).is_err());
    }

    #[test]
    fn link_targets() {
        let ok = |e: &str, t: &str| check_link_target(Path::new(e), Path::new(t)).is_ok();
        assert!(ok("bin/lokoctl", "../libexec/lokoctl"));
        assert!(ok("a/b/c", "../../x/y"));
        assert!(ok("link", "bin/racker"));
        assert!(!ok("link", "../x"));
        assert!(!ok("a/link", "../../x"));
        assert!(!ok("link", "/etc/passwd"));
        assert!(!ok("link", "s/.."));
        assert!(!ok("link", "s/../x"));
        assert!(!ok("link", ""));
    }
}
