//! Shared fixtures: release trees, archives, tree snapshots, a fake
//! `systemctl`.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use racker_installer::{Sha256Digest, write_archive};

/// What a path is, for comparing trees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Node {
    Dir,
    File { content: Vec<u8>, exec: bool },
    Link(PathBuf),
}

/// Every path under `root` (relative) with its kind/content. A missing root
/// is an empty map.
pub(crate) fn snapshot(root: &Path) -> BTreeMap<PathBuf, Node> {
    let mut out = BTreeMap::new();
    if fs::symlink_metadata(root).is_ok() {
        walk(root, Path::new(""), &mut out);
    }
    out
}

fn walk(root: &Path, rel: &Path, out: &mut BTreeMap<PathBuf, Node>) {
    for entry in fs::read_dir(root.join(rel)).unwrap() {
        let entry = entry.unwrap();
        let child = rel.join(entry.file_name());
        let meta = fs::symlink_metadata(entry.path()).unwrap();
        if meta.file_type().is_symlink() {
            out.insert(child, Node::Link(fs::read_link(entry.path()).unwrap()));
        } else if meta.is_dir() {
            out.insert(child.clone(), Node::Dir);
            walk(root, &child, out);
        } else {
            out.insert(
                child,
                Node::File {
                    content: fs::read(entry.path()).unwrap(),
                    exec: meta.permissions().mode() & 0o111 != 0,
                },
            );
        }
    }
}

/// Write a release tree for `version` under `dir`: an executable
/// `bin/racker` that prints its version, a unit file, `RACKER_VERSION`.
pub(crate) fn release_tree(dir: &Path, version: &str) {
    fs::create_dir_all(dir.join("bin")).unwrap();
    fs::create_dir_all(dir.join("systemd")).unwrap();
    let racker = dir.join("bin/racker");
    fs::write(&racker, format!("#!/bin/sh\necho racker-test {version}\n")).unwrap();
    fs::set_permissions(&racker, fs::Permissions::from_mode(0o755)).unwrap();
    fs::write(
        dir.join("systemd/racker-netboot.service"),
        format!("[Unit]\nDescription=Racker netboot {version}\n[Service]\nExecStart=/opt/bin/racker netboot serve\n"),
    )
    .unwrap();
    fs::write(dir.join("RACKER_VERSION"), format!("{version}\n")).unwrap();
}

/// Build an archive of a fresh release tree; returns (bytes, digest).
pub(crate) fn release_archive(scratch: &Path, version: &str) -> (Vec<u8>, Sha256Digest) {
    let tree = scratch.join(format!("tree-{version}"));
    release_tree(&tree, version);
    let mut bytes = Vec::new();
    write_archive(&tree, 0, &mut bytes).unwrap();
    let digest = Sha256Digest::of(&bytes);
    (bytes, digest)
}

/// A fake `systemctl` in `dir`: appends its argv to `dir/calls`, answers
/// `is-active` with 0 for units listed in `dir/active`.
pub(crate) fn fake_systemctl(dir: &Path) -> PathBuf {
    fs::create_dir_all(dir).unwrap();
    let script = dir.join("systemctl");
    let calls = dir.join("calls");
    let active = dir.join("active");
    fs::write(&active, "").unwrap();
    fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"$*\" >> '{}'\n\
             if [ \"$1\" = is-active ]; then\n  \
               for last; do :; done\n  \
               grep -qx \"$last\" '{}' && exit 0\n  exit 3\nfi\nexit 0\n",
            calls.display(),
            active.display()
        ),
    )
    .unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    script
}

/// The calls recorded by [`fake_systemctl`].
pub(crate) fn systemctl_calls(dir: &Path) -> Vec<String> {
    fs::read_to_string(dir.join("calls"))
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}
