//! Rendering a cluster directory (`racker render`, and the inputs of
//! `racker bootstrap`'s render stage): the public addresses, the SSH keys,
//! and writing a rendered [`Tree`] over an earlier render (files of the
//! earlier render that no longer belong are removed, edits kept unless
//! forced; see [`crate::rendered`]).

use std::path::{Path, PathBuf};

use racker_inventory::{Inventory, PublicIps};
use racker_lokomotive::{MANIFEST, Tree, read_manifest, render};

use crate::{Error, Result};

/// The public addresses: `None` or `dhcp` for DHCP, else an INI file
/// (`[<secondary MAC>]` sections) checked against the inventory.
pub fn load_public_ips(source: Option<&Path>, inventory: &Inventory) -> Result<PublicIps> {
    match source {
        None => Ok(PublicIps::dhcp()),
        Some(path) if path.as_os_str().eq_ignore_ascii_case("dhcp") => Ok(PublicIps::dhcp()),
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| Error::io("reading", path, e))?;
            let source = path.display().to_string();
            let ips = PublicIps::parse(&source, &text)?;
            ips.check_against(&source, &text, inventory)?;
            Ok(ips)
        }
    }
}

/// The SSH public keys of the `core` user: those of `files`, or when none
/// are given the management key's (`<state-dir>/ssh/id_ed25519.pub`),
/// which must exist.
pub fn core_ssh_keys(state_dir: &Path, files: &[PathBuf]) -> Result<Vec<String>> {
    if !files.is_empty() {
        return crate::ssh::read_public_keys(files);
    }
    let default = state_dir.join("ssh").join("id_ed25519.pub");
    match std::fs::read_to_string(&default) {
        Ok(text) => Ok(crate::ssh::public_keys_in(&text).collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(Error::NoSshPublicKey { path: default })
        }
        Err(e) => Err(Error::io("reading", &default, e)),
    }
}

/// `dir` does not exist or is empty.
pub fn is_empty_dir(dir: &Path) -> Result<bool> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => Ok(entries.next().is_none()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(Error::io("reading", dir, e)),
    }
}

/// `dir` absolute with symbolic links resolved, also when it does not
/// exist yet (its nearest existing ancestor resolved, the rest appended).
pub fn resolved_dir(dir: &Path) -> PathBuf {
    let absolute = std::path::absolute(dir).unwrap_or_else(|_| dir.to_owned());
    let mut missing = Vec::new();
    let mut base = absolute.as_path();
    loop {
        if let Ok(real) = std::fs::canonicalize(base) {
            return missing
                .iter()
                .rev()
                .fold(real, |p: PathBuf, name| p.join(name));
        }
        match (base.parent(), base.file_name()) {
            (Some(parent), Some(name)) => {
                missing.push(name.to_owned());
                base = parent;
            }
            _ => return absolute,
        }
    }
}

/// Files of an earlier render in `out` (its manifest) that `tree` no
/// longer has.
pub fn stale_files(out: &Path, tree: &Tree) -> Vec<PathBuf> {
    if !out.join(MANIFEST).exists() {
        return Vec::new();
    }
    let Ok(old) = read_manifest(out).and_then(|spec| render(&spec, None)) else {
        return Vec::new();
    };
    old.files()
        .filter(|(p, _)| tree.get(p).is_none())
        .map(|(p, _)| p.to_owned())
        .collect()
}

/// What [`write_render`] did.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct RenderWritten {
    /// Files the user had edited that `force` overwrote.
    pub overwritten: Vec<PathBuf>,
    /// Files of the earlier render removed (relative to the directory).
    pub removed: Vec<PathBuf>,
}

/// Write `tree` into `out` (an earlier render there is replaced: its files
/// that `tree` no longer has are removed; files the user edited are kept
/// unless `force`).
pub fn write_render(tree: &Tree, out: &Path, force: bool) -> Result<RenderWritten> {
    let stale = stale_files(out, tree);
    let written = crate::rendered::write_keeping_edits(tree, out, force)?;
    for rel in &stale {
        let _ = std::fs::remove_file(out.join(rel));
    }
    Ok(RenderWritten {
        overwritten: written.overwritten,
        removed: stale,
    })
}

/// How many nodes a rendered tree configures (its `cl*` node files).
pub fn rendered_nodes(tree: &Tree) -> usize {
    tree.files()
        .filter(|(p, _)| p.starts_with("cl") && !p.to_string_lossy().ends_with("-custom.yaml"))
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_key_must_exist() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            core_ssh_keys(dir.path(), &[]),
            Err(Error::NoSshPublicKey { .. })
        ));
        let err = core_ssh_keys(dir.path(), &[]).unwrap_err().to_string();
        assert!(err.contains("racker factory gen-ssh-key"), "{err}");
        crate::ssh::ensure_key_pair(&dir.path().join("ssh/id_ed25519")).unwrap();
        let keys = core_ssh_keys(dir.path(), &[]).unwrap();
        assert_eq!(keys.len(), 1);
        assert!(keys[0].starts_with("ssh-ed25519 "));
    }

    #[test]
    fn dirs_resolve_through_links_even_when_missing() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        std::fs::create_dir(&real).unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let resolved = resolved_dir(&link.join("a/b"));
        assert_eq!(
            resolved,
            std::fs::canonicalize(&real).unwrap().join("a").join("b")
        );
        assert!(is_empty_dir(&link.join("a")).unwrap());
        assert!(is_empty_dir(&real).unwrap());
        std::fs::write(real.join("f"), "x").unwrap();
        assert!(!is_empty_dir(&link).unwrap());
    }

    #[test]
    fn dhcp_needs_no_file() {
        let inv = crate::testutil::inventory(&[crate::testutil::MGMT]);
        assert_eq!(load_public_ips(None, &inv).unwrap(), PublicIps::dhcp());
        assert_eq!(
            load_public_ips(Some(Path::new("DHCP")), &inv).unwrap(),
            PublicIps::dhcp()
        );
        assert!(matches!(
            load_public_ips(Some(Path::new("/nonexistent/ips.ini")), &inv),
            Err(Error::Io { .. })
        ));
    }
}
