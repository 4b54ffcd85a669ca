//! Excluding a node after rendering (what the old `exclude.sh` did, without
//! `sed`): the cluster is re-rendered from its manifest without the node,
//! under the names and addresses it already had, and only the files that
//! change are written or removed. Every other file stays byte-identical.

use std::path::{Path, PathBuf};

use racker_inventory::MacAddr;

use crate::error::RenderError;
use crate::hosts::hosts_block;
use crate::render::render;
use crate::spec::{ClusterSpec, MANIFEST};
use crate::tree::{Tree, write_file};

/// What excluding a node changes in a cluster directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exclusion {
    /// The node's host name.
    pub name: String,
    /// The node's primary MAC.
    pub mac: MacAddr,
    /// The cluster without the node.
    pub spec: ClusterSpec,
    /// Files to (re)write.
    pub write: Tree,
    /// Files to remove (relative paths).
    pub remove: Vec<PathBuf>,
    /// The new management `/etc/hosts` block.
    pub hosts_block: String,
}

/// Compute the exclusion of `mac` (primary, BMC or secondary MAC) from the
/// cluster described by `spec`. `on_disk` returns the current contents of a
/// rendered file (`None` when missing); a file that would be rewritten but
/// differs from what racker rendered is refused unless `force`.
pub fn plan_exclusion(
    spec: &ClusterSpec,
    mac: MacAddr,
    force: bool,
    on_disk: impl Fn(&Path) -> Option<Vec<u8>>,
) -> Result<Exclusion, RenderError> {
    let node = spec
        .find(mac)
        .ok_or(RenderError::NotInCluster { mac })?
        .clone();
    let new_spec = spec.without(mac)?;
    let old = render(spec, None)?;
    let new = render(&new_spec, None)?;
    let mut write = Tree::new();
    for (path, file) in new.files() {
        let before = old.get(path);
        if before == Some(file) {
            continue;
        }
        if let Some(before) = before
            && !force
            && path != Path::new(MANIFEST)
            && let Some(current) = on_disk(path)
            && current != before.contents
            && current != file.contents
        {
            return Err(RenderError::ModifiedFile {
                path: path.to_owned(),
            });
        }
        write.insert(path, file.contents.clone(), file.mode);
    }
    let remove = old
        .files()
        .filter(|(p, _)| new.get(p).is_none())
        .map(|(p, _)| p.to_owned())
        .collect();
    Ok(Exclusion {
        name: node.name,
        mac: node.mac,
        hosts_block: hosts_block(&new_spec)?,
        spec: new_spec,
        write,
        remove,
    })
}

/// Read the manifest of the cluster rendered into `dir`.
pub fn read_manifest(dir: &Path) -> Result<ClusterSpec, RenderError> {
    let path = dir.join(MANIFEST);
    let text = std::fs::read_to_string(&path).map_err(|e| RenderError::BadManifest {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    ClusterSpec::from_json(&text).map_err(|reason| RenderError::BadManifest { path, reason })
}

/// Exclude `mac` from the cluster rendered into `dir`: rewrite the changed
/// files, remove the node's own files. Returns what was done.
pub fn exclude_in_dir(dir: &Path, mac: MacAddr, force: bool) -> Result<Exclusion, RenderError> {
    let spec = read_manifest(dir)?;
    let exclusion = plan_exclusion(&spec, mac, force, |p| std::fs::read(dir.join(p)).ok())?;
    for (rel, file) in exclusion.write.files() {
        // The manifest last: a crash before it leaves a directory that a
        // second run still knows how to finish.
        if rel != Path::new(MANIFEST) {
            write_file(&dir.join(rel), file)?;
        }
    }
    for rel in &exclusion.remove {
        let path = dir.join(rel);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(RenderError::io(path, e)),
        }
    }
    if let Some(file) = exclusion.write.get(MANIFEST) {
        write_file(&dir.join(MANIFEST), file)?;
    }
    Ok(exclusion)
}
