//! The report journal: `<state-dir>/netboot/reports.journal`, one JSON line
//! per change (a report, or `{"clear":"<mac>"}`), appended under an
//! exclusive `flock` and fsynced once per batch of concurrent reports
//! (group commit). Readers apply the lines they have not seen yet; the
//! journal is the durable record, the per-node files are its readable view.

use std::collections::BTreeMap;
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use racker_inventory::MacAddr;
use serde::{Deserialize, Serialize};

use super::Report;

/// One line of the journal.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub(super) enum Entry {
    /// The node's latest report.
    Record(Report),
    /// The node's report was cleared.
    Clear {
        /// The node.
        clear: MacAddr,
    },
}

impl Entry {
    /// Apply to `map`.
    pub(super) fn apply(&self, map: &mut BTreeMap<MacAddr, Report>) {
        match self {
            Entry::Record(r) => {
                map.insert(r.mac, r.clone());
            }
            Entry::Clear { clear } => {
                map.remove(clear);
            }
        }
    }

    /// The JSON line.
    pub(super) fn line(&self) -> std::io::Result<Vec<u8>> {
        let mut line = serde_json::to_vec(self).map_err(std::io::Error::other)?;
        line.push(b'\n');
        Ok(line)
    }
}

/// How far this process read the journal.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Position {
    /// The journal's inode (a compaction replaces it).
    pub(super) ino: Option<u64>,
    /// Bytes read (complete lines only).
    pub(super) offset: u64,
}

/// File of the journal under a state directory.
pub(super) fn journal_path(state_dir: &Path) -> PathBuf {
    state_dir.join("netboot").join("reports.journal")
}

/// The journal's inode and length, if it exists.
pub(super) fn stat(path: &Path) -> Option<(u64, u64)> {
    std::fs::metadata(path).ok().map(|m| (m.ino(), m.len()))
}

/// The complete lines of `path` from `from.offset` (from the start when
/// the file was replaced or shrank): the entries, the new position, and
/// whether it started over.
pub(super) fn read_from(
    path: &Path,
    from: Position,
) -> std::io::Result<(Vec<Entry>, Position, bool)> {
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok((Vec::new(), Position::default(), from.ino.is_some()));
        }
        Err(e) => return Err(e),
    };
    let meta = f.metadata()?;
    let restart = from.ino != Some(meta.ino()) || meta.len() < from.offset;
    let start = if restart { 0 } else { from.offset };
    f.seek(SeekFrom::Start(start))?;
    let mut bytes = Vec::new();
    f.read_to_end(&mut bytes)?;
    // Only complete lines: an append may be under way.
    let complete = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    let mut entries = Vec::new();
    for line in bytes[..complete].split(|b| *b == b'\n') {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice(line) {
            Ok(e) => entries.push(e),
            Err(e) => tracing::warn!("{}: skipping a bad line: {e}", path.display()),
        }
    }
    Ok((
        entries,
        Position {
            ino: Some(meta.ino()),
            offset: start + complete as u64,
        },
        restart,
    ))
}

/// Open the journal for appending and lock it exclusively (`flock`),
/// reopening when a compaction replaced it meanwhile.
pub(super) fn open_locked(path: &Path) -> std::io::Result<(std::fs::File, bool)> {
    use std::os::unix::fs::OpenOptionsExt as _;
    loop {
        let created = !path.exists();
        let f = std::fs::OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .mode(0o644)
            .open(path)?;
        rustix::fs::flock(&f, rustix::fs::FlockOperation::LockExclusive)?;
        if stat(path).map(|(ino, _)| ino) == Some(f.metadata()?.ino()) {
            return Ok((f, created));
        }
    }
}

/// Append `bytes` to the locked journal and make it durable; returns where
/// the append started.
pub(super) fn append(
    f: &mut std::fs::File,
    path: &Path,
    created: bool,
    bytes: &[u8],
) -> std::io::Result<u64> {
    let start = f.seek(SeekFrom::End(0))?;
    f.write_all(bytes)?;
    f.sync_data()?;
    if created && let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(start)
}

/// Called with the result of the batch that wrote an entry.
pub(super) type Done = Box<dyn FnOnce(Result<(), String>) + Send>;

/// Group commit: reports recorded at the same time share one append and
/// one fsync. Whoever finds no batch being written writes the queue (and
/// what arrives meanwhile); the others only wait for their callback.
#[derive(Default)]
pub(super) struct Commit {
    state: Mutex<CommitState>,
}

impl std::fmt::Debug for Commit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Commit").finish_non_exhaustive()
    }
}

#[derive(Default)]
struct CommitState {
    /// Entries waiting for the next batch, with their callbacks.
    queue: Vec<(Entry, Done)>,
    /// A caller is writing batches.
    writing: bool,
}

impl Commit {
    /// Queue `entry`; true when the caller is to [`Commit::drain`] the
    /// queue (nobody else writes).
    pub(super) fn push(&self, entry: Entry, done: Done) -> bool {
        let mut st = super::lock(&self.state);
        st.queue.push((entry, done));
        !std::mem::replace(&mut st.writing, true)
    }

    /// Write batches with `write` until the queue is empty, calling every
    /// entry's callback with its batch's result.
    pub(super) fn drain(&self, write: impl Fn(&[Entry]) -> Result<(), String>) {
        loop {
            let batch = {
                let mut st = super::lock(&self.state);
                if st.queue.is_empty() {
                    st.writing = false;
                    return;
                }
                std::mem::take(&mut st.queue)
            };
            let (entries, dones): (Vec<Entry>, Vec<Done>) = batch.into_iter().unzip();
            let result = write(&entries);
            for done in dones {
                done(result.clone());
            }
        }
    }
}
