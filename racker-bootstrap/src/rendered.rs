//! User edits of a rendered cluster directory are never lost
//! (docs/bootstrap.md, "Editing the rendered files"): every write records
//! the SHA-256 of each file it wrote in `<dir>/.racker-rendered.json`; a
//! later write that would change a file whose contents no longer match that
//! record (the user edited it) keeps the user's file and reports it, unless
//! forced. [`diff`] shows what a write would change.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use racker_lokomotive::Tree;
use serde::{Deserialize, Serialize};
use sha2::Digest as _;

use crate::Error;

/// File name of the record, inside the rendered directory.
pub const RECORD: &str = ".racker-rendered.json";

#[derive(Debug, Default, Serialize, Deserialize)]
struct Record {
    /// Relative path → SHA-256 (hex) of what racker wrote.
    files: BTreeMap<PathBuf, String>,
}

fn sha256(bytes: &[u8]) -> String {
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn load(dir: &Path) -> Option<Record> {
    let bytes = std::fs::read(dir.join(RECORD)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// What [`write_keeping_edits`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Written {
    /// Files written (new or changed).
    pub written: Vec<PathBuf>,
    /// Files the user edited that racker would have changed: left as the
    /// user wrote them.
    pub kept: Vec<PathBuf>,
    /// Files the user edited that were overwritten (`force`).
    pub overwritten: Vec<PathBuf>,
}

/// One file whose contents would change: `(path, on disk, rendered)`.
pub type Change = (PathBuf, Option<Vec<u8>>, Vec<u8>);

/// The files of `tree` whose contents differ from `dir`.
pub fn diff(tree: &Tree, dir: &Path) -> Vec<Change> {
    tree.files()
        .filter_map(|(rel, file)| {
            let current = std::fs::read(dir.join(rel)).ok();
            (current.as_deref() != Some(file.contents.as_slice()))
                .then(|| (rel.to_owned(), current, file.contents.clone()))
        })
        .collect()
}

/// Write `tree` into `dir`, keeping every file the user edited since racker
/// last wrote it (unless `force`), and record what was written. Without a
/// record (a directory rendered before racker kept one) every file is
/// written, as before.
pub fn write_keeping_edits(tree: &Tree, dir: &Path, force: bool) -> Result<Written, Error> {
    let record = load(dir);
    let mut next = Record::default();
    let mut out = Written::default();
    let mut to_write = Tree::new();
    for (rel, file) in tree.files() {
        let new_hash = sha256(&file.contents);
        let current = std::fs::read(dir.join(rel)).ok();
        let Some(current) = current else {
            to_write.insert(rel, file.contents.clone(), file.mode);
            out.written.push(rel.to_owned());
            next.files.insert(rel.to_owned(), new_hash);
            continue;
        };
        if current == file.contents {
            next.files.insert(rel.to_owned(), new_hash);
            continue;
        }
        let recorded = record.as_ref().map(|r| r.files.get(rel));
        let edited = match recorded {
            // No record at all: a directory from before records.
            None => false,
            Some(None) => true,
            Some(Some(h)) => *h != sha256(&current),
        };
        if edited && !force {
            out.kept.push(rel.to_owned());
            if let Some(Some(h)) = recorded {
                next.files.insert(rel.to_owned(), h.clone());
            }
            continue;
        }
        if edited {
            out.overwritten.push(rel.to_owned());
        }
        to_write.insert(rel, file.contents.clone(), file.mode);
        out.written.push(rel.to_owned());
        next.files.insert(rel.to_owned(), new_hash);
    }
    to_write.write_to(dir)?;
    let json = serde_json::to_vec_pretty(&next)
        .map_err(|e| Error::io("writing", dir.join(RECORD), std::io::Error::other(e)))?;
    racker_fsutil::write_atomic(&dir.join(RECORD), &json, 0o600)
        .map_err(|e| Error::io("writing", dir.join(RECORD), e))?;
    Ok(out)
}

/// A short unified-style diff of one change (line based).
pub fn render_change(change: &Change) -> String {
    let (path, old, new) = change;
    let old = old
        .as_deref()
        .map(String::from_utf8_lossy)
        .unwrap_or_default();
    let new = String::from_utf8_lossy(new);
    let mut s = format!("--- {0}\n+++ {0} (racker)\n", path.display());
    let old_lines: Vec<&str> = old.lines().collect();
    let new_lines: Vec<&str> = new.lines().collect();
    for l in &old_lines {
        if !new_lines.contains(l) {
            s.push_str(&format!("-{l}\n"));
        }
    }
    for l in &new_lines {
        if !old_lines.contains(l) {
            s.push_str(&format!("+{l}\n"));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(text: &str) -> Tree {
        let mut t = Tree::new();
        t.insert("cl/node-0.yaml", text.as_bytes().to_vec(), 0o644);
        t.insert("other.txt", b"same".to_vec(), 0o644);
        t
    }

    #[test]
    fn an_edited_file_survives_a_rerun() {
        let dir = tempfile::tempdir().unwrap();
        let w = write_keeping_edits(&tree("a: 1\n"), dir.path(), false).unwrap();
        assert_eq!(w.written.len(), 2);
        // Unedited: a new render replaces it.
        let w = write_keeping_edits(&tree("a: 2\n"), dir.path(), false).unwrap();
        assert_eq!(w.written, [PathBuf::from("cl/node-0.yaml")]);
        // The user edits it; a render that would change it keeps the edit.
        let file = dir.path().join("cl/node-0.yaml");
        std::fs::write(&file, "a: 2\n# mine\n").unwrap();
        let w = write_keeping_edits(&tree("a: 3\n"), dir.path(), false).unwrap();
        assert_eq!(w.kept, [PathBuf::from("cl/node-0.yaml")]);
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "a: 2\n# mine\n");
        // Still edited next time; the diff shows what racker would write.
        let changes = diff(&tree("a: 3\n"), dir.path());
        assert_eq!(changes.len(), 1);
        let shown = render_change(&changes[0]);
        assert!(
            shown.contains("-# mine") && shown.contains("+a: 3"),
            "{shown}"
        );
        let w = write_keeping_edits(&tree("a: 4\n"), dir.path(), false).unwrap();
        assert_eq!(w.kept.len(), 1);
        // Forced: overwritten, and said so.
        let w = write_keeping_edits(&tree("a: 4\n"), dir.path(), true).unwrap();
        assert_eq!(w.overwritten, [PathBuf::from("cl/node-0.yaml")]);
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "a: 4\n");
    }
}
