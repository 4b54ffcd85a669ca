//! Durable record of installer progress reports (`POST /report`).
//!
//! On disk: one JSON file per node, `<state-dir>/netboot/reports/<mac>.json`
//! (MAC in lower-case colon form), replaced atomically (temporary file,
//! rename):
//!
//! ```json
//! {"mac":"00:11:22:33:44:10","stage":"installed","reason":null,
//!  "first_unix":1700000000,"updated_unix":1700000042}
//! ```
//!
//! The durable record behind them is the journal
//! `<state-dir>/netboot/reports.journal`: one such line per change (or
//! `{"clear":"<mac>"}`), appended under an exclusive `flock` and fsynced
//! before a report is acknowledged. Reports arriving together share one
//! append and one fsync (group commit; a file fsynced per report made
//! large racks slow). Every store applies the lines it has not seen yet, so
//! another process's reports show up at the next look; the node files are
//! written after the journal and rebuilt from it. A large journal is
//! rewritten with only the current reports when a store opens it.
//!
//! `stage` is `installing`, `installed`, `up` (the installed OS booted and
//! phoned home: the rendered `racker-report-up.service`) or `failed` (with
//! `reason`). Reporting the same stage and reason again changes nothing
//! (idempotent); a node that is `up` counts as installed.
//!
//! Generations: a bootstrap writes its generation id to
//! `<state-dir>/netboot/generation` ([`write_generation`]); every report is
//! stamped with the generation current when it arrived, and only reports
//! of the current generation count as installed or up. Within a generation
//! stages only move forward (`installing` → `installed` → `up`; `failed`
//! only before `installed`); going back needs [`ReportStore::clear`]
//! (`racker reprovision`).
//!
//! Tokens: a report must carry `token=<hex>`, the node's
//! [`ReportKey::token`] (HMAC-SHA256 of its MAC under the secret
//! `<state-dir>/netboot/report.key`), which racker renders into that node's
//! own Ignition (docs/netboot.md, "Install reports").
//!
//! Sources: the HTTP server accepts a node's report only from its planned
//! or leased address ([`ReportSources`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use racker_inventory::MacAddr;
use serde::{Deserialize, Serialize};

use crate::profile::ContentError;

mod journal;
mod source;
pub use source::{ReportSources, SourceMatch, SourceRefusal};

/// Installer stage reported by a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    /// The installer started writing the disk.
    Installing,
    /// Flatcar is on the disk; the node must now boot from it.
    Installed,
    /// The installed OS booted from disk and reported in.
    Up,
    /// The installer gave up (see the reason).
    Failed,
}

impl Stage {
    /// Lower-case name as used in URLs, files and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Installing => "installing",
            Stage::Installed => "installed",
            Stage::Up => "up",
            Stage::Failed => "failed",
        }
    }

    /// Every stage, in order.
    pub const ALL: [Stage; 4] = [
        Stage::Installing,
        Stage::Installed,
        Stage::Up,
        Stage::Failed,
    ];

    /// True for the stages that mean "Flatcar is on the disk".
    pub fn is_installed(self) -> bool {
        matches!(self, Stage::Installed | Stage::Up)
    }
}

/// Longest failure reason kept, in bytes, wherever it came from (query
/// string or body); longer ones are cut at a character boundary.
pub const MAX_REASON_BYTES: usize = 4096;

fn cap_reason(mut reason: String) -> String {
    if reason.len() > MAX_REASON_BYTES {
        let mut end = MAX_REASON_BYTES;
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        reason.truncate(end);
    }
    reason
}

impl FromStr for Stage {
    type Err = ContentError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "installing" | "started" => Ok(Stage::Installing),
            "installed" | "done" => Ok(Stage::Installed),
            "up" | "os-up" => Ok(Stage::Up),
            "failed" | "error" => Ok(Stage::Failed),
            _ => Err(ContentError::UnknownStage(s.to_owned())),
        }
    }
}

/// The latest report of one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Report {
    /// The node's MAC.
    pub mac: MacAddr,
    /// Its stage.
    pub stage: Stage,
    /// Failure reason (only for `failed`).
    pub reason: Option<String>,
    /// When this stage was first reported (seconds since the epoch).
    pub first_unix: u64,
    /// When the report last changed.
    pub updated_unix: u64,
    /// The bootstrap generation current when it arrived (absent: before
    /// generations, or no bootstrap ran).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<String>,
}

/// Why a report was not recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// The stage would go backwards within the generation.
    Backwards {
        /// The recorded stage.
        from: Stage,
        /// The reported one.
        to: Stage,
    },
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Backwards { from, to } => write!(
                f,
                "stage {} after {} (stages only move forward; `racker reprovision` starts over)",
                to.as_str(),
                from.as_str()
            ),
        }
    }
}

/// Whether `to` may follow `from` within one generation.
fn moves_forward(from: Stage, to: Stage) -> bool {
    let rank = |s: Stage| match s {
        Stage::Installing | Stage::Failed => 0,
        Stage::Installed => 1,
        Stage::Up => 2,
    };
    from == to || rank(to) > rank(from) || (rank(from) == 0 && rank(to) == 0)
}

/// File holding the current bootstrap generation.
pub fn generation_path(state_dir: &Path) -> PathBuf {
    state_dir.join("netboot").join("generation")
}

/// Make `generation` current (a new bootstrap, or a resumed one).
pub fn write_generation(state_dir: &Path, generation: &str) -> Result<(), ContentError> {
    let path = generation_path(state_dir);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| ContentError::io("creating", dir, e))?;
    }
    write_atomic(&path, format!("{generation}\n").as_bytes())
}

/// The current generation, if a bootstrap set one.
pub fn read_generation(state_dir: &Path) -> Option<String> {
    std::fs::read_to_string(generation_path(state_dir))
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

/// The secret behind the per-node report tokens.
#[derive(Clone)]
pub struct ReportKey([u8; 32]);

impl std::fmt::Debug for ReportKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReportKey(<redacted>)")
    }
}

/// File of the report key (mode 0600).
pub fn report_key_path(state_dir: &Path) -> PathBuf {
    state_dir.join("netboot").join("report.key")
}

impl ReportKey {
    /// A key from its bytes (tests).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Load `<state-dir>/netboot/report.key`, creating it (32 random bytes,
    /// hex, mode 0600) on first use.
    pub fn load_or_create(state_dir: &Path) -> Result<Self, ContentError> {
        let path = report_key_path(state_dir);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let text = text.trim();
                let mut key = [0u8; 32];
                if text.len() != 64 {
                    return Err(ContentError::io(
                        "reading",
                        &path,
                        std::io::Error::new(std::io::ErrorKind::InvalidData, "not 64 hex digits"),
                    ));
                }
                for (i, k) in key.iter_mut().enumerate() {
                    *k = text
                        .get(2 * i..2 * i + 2)
                        .and_then(|h| u8::from_str_radix(h, 16).ok())
                        .ok_or_else(|| {
                            ContentError::io(
                                "reading",
                                &path,
                                std::io::Error::new(
                                    std::io::ErrorKind::InvalidData,
                                    "not 64 hex digits",
                                ),
                            )
                        })?;
                }
                Ok(Self(key))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                use rand_core::RngCore as _;
                let mut key = [0u8; 32];
                rand_core::OsRng.fill_bytes(&mut key);
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir)
                        .map_err(|e| ContentError::io("creating", dir, e))?;
                }
                racker_fsutil::write_atomic(&path, format!("{}\n", hex(&key)).as_bytes(), 0o600)
                    .map_err(|e| ContentError::io("writing", &path, e))?;
                Ok(Self(key))
            }
            Err(e) => Err(ContentError::io("reading", &path, e)),
        }
    }

    /// The report token of `mac`: 32 hex digits.
    pub fn token(&self, mac: MacAddr) -> String {
        use hmac::Mac as _;
        #[allow(clippy::expect_used)] // HMAC takes keys of any length
        let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(&self.0)
            .expect("HMAC accepts any key length");
        m.update(b"racker-report:");
        m.update(mac.to_string().as_bytes());
        let out = m.finalize().into_bytes();
        hex(out.get(..16).unwrap_or_default())
    }

    /// Whether `token` is `mac`'s (constant time).
    pub fn verify(&self, mac: MacAddr, token: &str) -> bool {
        let want = self.token(mac);
        want.len() == token.len()
            && want
                .bytes()
                .zip(token.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// The report store; cheap to clone, shared between the HTTP server, the
/// DHCP core and the CLI.
#[derive(Debug, Clone)]
pub struct ReportStore {
    dir: PathBuf,
    state_dir: PathBuf,
    journal: PathBuf,
    reports: Arc<Mutex<BTreeMap<MacAddr, Report>>>,
    /// The generation file's modification time and content, re-read when
    /// it changes (another process starts a bootstrap).
    generation: Arc<Mutex<(Option<SystemTime>, Option<String>)>>,
    /// How far the journal is applied to `reports`; held while a batch is
    /// written and applied.
    position: Arc<Mutex<journal::Position>>,
    /// Reports recorded at the same time share one write.
    commit: Arc<journal::Commit>,
}

/// Directory of the report files under a state directory.
pub fn reports_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("netboot").join("reports")
}

/// The journal is rewritten with only the current reports when it is
/// larger than this at open and mostly holds superseded lines.
const COMPACT_BYTES: u64 = 256 * 1024;

impl ReportStore {
    /// Open (creating) the store under `state_dir` and load every report.
    pub fn open(state_dir: &Path) -> Result<Self, ContentError> {
        let dir = reports_dir(state_dir);
        std::fs::create_dir_all(&dir).map_err(|e| ContentError::io("creating", &dir, e))?;
        racker_fsutil::remove_stale_temporaries_in(&dir);
        let store = Self {
            dir,
            state_dir: state_dir.to_owned(),
            journal: journal::journal_path(state_dir),
            reports: Arc::default(),
            generation: Arc::default(),
            position: Arc::default(),
            commit: Arc::default(),
        };
        {
            let mut pos = lock(&store.position);
            store.reload(&mut pos)?;
        }
        if journal::stat(&store.journal).is_some_and(|(_, len)| len > COMPACT_BYTES) {
            store.compact()?;
        }
        Ok(store)
    }

    /// Read everything again: the per-node files, then the journal over
    /// them (it is the durable record; a file may be older than its line).
    fn reload(&self, pos: &mut journal::Position) -> Result<(), ContentError> {
        let has_journal = self.journal.exists();
        let mut map = BTreeMap::new();
        let entries =
            std::fs::read_dir(&self.dir).map_err(|e| ContentError::io("reading", &self.dir, e))?;
        for entry in entries.filter_map(Result::ok) {
            let path = entry.path();
            if path.extension().is_none_or(|x| x != "json") {
                continue;
            }
            let bytes = std::fs::read(&path).map_err(|e| ContentError::io("reading", &path, e))?;
            match serde_json::from_slice::<Report>(&bytes) {
                Ok(report) => {
                    map.insert(report.mac, report);
                }
                // The journal has the report (the file is only its view,
                // and not fsynced).
                Err(e) if has_journal => {
                    tracing::warn!("{}: {e}; the report journal has it", path.display());
                }
                Err(source) => {
                    return Err(ContentError::Json {
                        path: path.clone(),
                        source,
                    });
                }
            }
        }
        let (lines, read, _) = journal::read_from(&self.journal, journal::Position::default())
            .map_err(|e| ContentError::io("reading", &self.journal, e))?;
        for line in &lines {
            line.apply(&mut map);
        }
        *self.lock() = map;
        *pos = read;
        Ok(())
    }

    /// Apply the journal lines written since the last look (by this
    /// process or another); everything again when it was replaced.
    fn catch_up(&self, pos: &mut journal::Position) -> Result<(), ContentError> {
        let (lines, read, restarted) = journal::read_from(&self.journal, *pos)
            .map_err(|e| ContentError::io("reading", &self.journal, e))?;
        if restarted {
            return self.reload(pos);
        }
        if !lines.is_empty() {
            let mut map = self.lock();
            for line in &lines {
                line.apply(&mut map);
            }
        }
        *pos = read;
        Ok(())
    }

    /// Apply what another process wrote since the last look: one `stat`
    /// of the journal when nothing changed. Skipped while this store
    /// writes a batch (which applies everything before it returns).
    fn refresh_if_changed(&self) {
        let Ok(mut pos) = self.position.try_lock() else {
            return;
        };
        let now = journal::stat(&self.journal);
        if now.map(|(ino, len)| (Some(ino), len)) != Some((pos.ino, pos.offset))
            && !(now.is_none() && pos.ino.is_none())
        {
            let _ = self.catch_up(&mut pos);
        }
    }

    /// Apply what another process wrote since the last look.
    pub fn refresh(&self) -> Result<(), ContentError> {
        let mut pos = lock(&self.position);
        self.catch_up(&mut pos)
    }

    /// Rewrite the journal with only the current reports (under its lock;
    /// other writers wait and then append to the new one).
    fn compact(&self) -> Result<(), ContentError> {
        let io = |e| ContentError::io("compacting", &self.journal, e);
        let mut pos = lock(&self.position);
        let (_locked, _) = journal::open_locked(&self.journal).map_err(io)?;
        self.reload(&mut pos)?;
        let mut bytes = Vec::new();
        let map = self.lock().clone();
        for report in map.values() {
            bytes.extend(journal::Entry::Record(report.clone()).line().map_err(io)?);
        }
        write_atomic(&self.journal, &bytes)?;
        *pos = journal::Position {
            ino: journal::stat(&self.journal).map(|(ino, _)| ino),
            offset: bytes.len() as u64,
        };
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<MacAddr, Report>> {
        lock(&self.reports)
    }

    /// Make `entry` durable (the journal, with whatever other reports
    /// arrived meanwhile), apply it and update its node's file; wait for
    /// it.
    fn commit(&self, entry: journal::Entry) -> Result<(), ContentError> {
        let (tx, rx) = std::sync::mpsc::channel();
        self.submit(
            entry,
            Box::new(move |r| {
                let _ = tx.send(r);
            }),
        );
        rx.recv()
            .unwrap_or_else(|_| Err("the report writer stopped".into()))
            .map_err(|e| self.commit_error(e))
    }

    fn commit_error(&self, e: String) -> ContentError {
        ContentError::io("writing", &self.journal, std::io::Error::other(e))
    }

    /// Queue `entry`; `done` gets the result of the batch that writes it.
    /// When no batch is being written the caller writes the queue itself
    /// (inside a multi-threaded tokio runtime through `block_in_place`):
    /// one thread writes, the others' reports join its next batch.
    fn submit(&self, entry: journal::Entry, done: journal::Done) {
        if self.commit.push(entry, done) {
            blocking(|| {
                self.commit
                    .drain(|batch| self.write_batch(batch).map_err(|e| e.to_string()));
            });
        }
    }

    /// Append `batch` to the journal (one fsync), apply it (and anything
    /// another process appended before it), then replace the per-node
    /// files of its nodes.
    fn write_batch(&self, batch: &[journal::Entry]) -> Result<(), ContentError> {
        let io = |e| ContentError::io("writing", &self.journal, e);
        let mut bytes = Vec::new();
        for entry in batch {
            bytes.extend(entry.line().map_err(io)?);
        }
        let mut pos = lock(&self.position);
        let (mut file, created) = journal::open_locked(&self.journal).map_err(io)?;
        journal::append(&mut file, &self.journal, created, &bytes).map_err(io)?;
        self.catch_up(&mut pos)?;
        let macs: std::collections::BTreeSet<MacAddr> = batch
            .iter()
            .map(|e| match e {
                journal::Entry::Record(r) => r.mac,
                journal::Entry::Clear { clear } => *clear,
            })
            .collect();
        for mac in macs {
            let view = self.lock().get(&mac).cloned();
            let path = self.path_of(mac);
            match view {
                Some(report) => {
                    let mut text =
                        serde_json::to_vec(&report).map_err(|source| ContentError::Json {
                            path: path.clone(),
                            source,
                        })?;
                    text.push(b'\n');
                    // A view, not fsynced: the journal is the durable record.
                    racker_fsutil::replace_unsynced(&path, &text, 0o644)
                        .map_err(|e| ContentError::io("writing", &path, e))?;
                }
                None => match std::fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(ContentError::io("removing", &path, e)),
                },
            }
        }
        Ok(())
    }

    /// The current bootstrap generation (see the [module docs](self)).
    pub fn current_generation(&self) -> Option<String> {
        let path = generation_path(&self.state_dir);
        let mtime = std::fs::metadata(&path).and_then(|m| m.modified()).ok();
        let mut cached = self
            .generation
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if cached.0 != mtime || (mtime.is_some() && cached.1.is_none()) {
            *cached = (mtime, read_generation(&self.state_dir));
        }
        cached.1.clone()
    }

    /// Whether `report` belongs to the current generation (always, when no
    /// bootstrap set one).
    pub fn is_current(&self, report: &Report) -> bool {
        match self.current_generation() {
            None => true,
            Some(g) => report.generation.as_deref() == Some(g.as_str()),
        }
    }

    /// The latest report of `mac` if it belongs to the current generation.
    pub fn current(&self, mac: MacAddr) -> Option<Report> {
        self.get(mac).filter(|r| self.is_current(r))
    }

    /// Record a report; returns whether anything changed. A stage going
    /// backwards within the current generation is refused.
    pub fn record_checked(
        &self,
        mac: MacAddr,
        stage: Stage,
        reason: Option<String>,
        now: SystemTime,
    ) -> Result<Result<bool, Refusal>, ContentError> {
        match self.prepare_checked(mac, stage, reason, now) {
            Err(refusal) => Ok(Err(refusal)),
            Ok(None) => Ok(Ok(false)),
            Ok(Some(report)) => self
                .commit(journal::Entry::Record(report))
                .map(|()| Ok(true)),
        }
    }

    /// [`ReportStore::record_checked`] for async callers (the HTTP
    /// server): while the report's batch is written, the task waits
    /// without holding a thread.
    #[cfg(feature = "net")]
    pub async fn record_checked_async(
        &self,
        mac: MacAddr,
        stage: Stage,
        reason: Option<String>,
        now: SystemTime,
    ) -> Result<Result<bool, Refusal>, ContentError> {
        let report = match self.prepare_checked(mac, stage, reason, now) {
            Err(refusal) => return Ok(Err(refusal)),
            Ok(None) => return Ok(Ok(false)),
            Ok(Some(report)) => report,
        };
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.submit(
            journal::Entry::Record(report),
            Box::new(move |r| {
                let _ = tx.send(r);
            }),
        );
        let result = rx
            .await
            .unwrap_or_else(|_| Err("the report writer stopped".into()));
        result.map(|()| Ok(true)).map_err(|e| self.commit_error(e))
    }

    /// The report to write, `None` when nothing changes, or why it is
    /// refused.
    fn prepare_checked(
        &self,
        mac: MacAddr,
        stage: Stage,
        reason: Option<String>,
        now: SystemTime,
    ) -> Result<Option<Report>, Refusal> {
        if let Some(old) = self.current(mac)
            && !moves_forward(old.stage, stage)
        {
            return Err(Refusal::Backwards {
                from: old.stage,
                to: stage,
            });
        }
        Ok(self.prepare(mac, stage, reason, now))
    }

    /// Record a report, stamped with the current generation; returns
    /// whether anything changed.
    pub fn record(
        &self,
        mac: MacAddr,
        stage: Stage,
        reason: Option<String>,
        now: SystemTime,
    ) -> Result<bool, ContentError> {
        match self.prepare(mac, stage, reason, now) {
            None => Ok(false),
            Some(report) => self.commit(journal::Entry::Record(report)).map(|()| true),
        }
    }

    /// The report to write for `mac`, or `None` when it is what is
    /// recorded already.
    fn prepare(
        &self,
        mac: MacAddr,
        stage: Stage,
        reason: Option<String>,
        now: SystemTime,
    ) -> Option<Report> {
        let generation = self.current_generation();
        let reason = if stage == Stage::Failed {
            reason.map(cap_reason).filter(|r| !r.is_empty())
        } else {
            None
        };
        let secs = now
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        self.refresh_if_changed();
        let map = self.lock();
        if let Some(old) = map.get(&mac)
            && old.stage == stage
            && old.reason == reason
            && old.generation == generation
        {
            return None;
        }
        let first_unix = map
            .get(&mac)
            .filter(|o| o.stage == stage && o.generation == generation)
            .map_or(secs, |o| o.first_unix);
        Some(Report {
            mac,
            stage,
            reason,
            first_unix,
            updated_unix: secs,
            generation,
        })
    }

    /// Forget a node's report (before reinstalling it).
    pub fn clear(&self, mac: MacAddr) -> Result<(), ContentError> {
        self.refresh_if_changed();
        if !self.lock().contains_key(&mac) && !self.path_of(mac).exists() {
            return Ok(());
        }
        self.commit(journal::Entry::Clear { clear: mac })
    }

    fn path_of(&self, mac: MacAddr) -> PathBuf {
        self.dir.join(format!("{mac}.json"))
    }

    /// The latest report of `mac` (re-read when another process changed
    /// the directory).
    pub fn get(&self, mac: MacAddr) -> Option<Report> {
        self.refresh_if_changed();
        self.lock().get(&mac).cloned()
    }

    /// True once `mac` reported `installed` (or `up`) in the current
    /// generation.
    pub fn is_installed(&self, mac: MacAddr) -> bool {
        self.current(mac).is_some_and(|r| r.stage.is_installed())
    }

    /// True once `mac`'s installed OS reported `up` in the current
    /// generation.
    pub fn is_up(&self, mac: MacAddr) -> bool {
        self.current(mac).is_some_and(|r| r.stage == Stage::Up)
    }

    /// Every report, ordered by MAC.
    pub fn reports(&self) -> Vec<Report> {
        self.lock().values().cloned().collect()
    }

    /// Every report, by MAC, as [`ReportStore::get`] sees them (re-read when
    /// another process changed the directory): one look for a whole rack.
    pub fn snapshot(&self) -> BTreeMap<MacAddr, Report> {
        self.refresh_if_changed();
        self.lock().clone()
    }

    /// Every report of the current generation, by MAC (re-read when
    /// another process changed the directory): one look for a whole rack,
    /// where [`ReportStore::current`] per node looks at the files per node.
    pub fn current_reports(&self) -> BTreeMap<MacAddr, Report> {
        self.refresh_if_changed();
        let generation = self.current_generation();
        self.lock()
            .iter()
            .filter(|(_, r)| generation.is_none() || r.generation == generation)
            .map(|(m, r)| (*m, r.clone()))
            .collect()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Run `f`, which waits for the disk: inside a multi-threaded tokio
/// runtime through `block_in_place`, so the worker's other tasks go on.
#[cfg(feature = "net")]
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

#[cfg(not(feature = "net"))]
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    f()
}

/// The DHCP core asks this to stop offering a boot file to installed nodes.
impl crate::dhcp::InstalledNodes for ReportStore {
    fn is_installed(&self, mac: MacAddr) -> bool {
        ReportStore::is_installed(self, mac)
    }
}

/// Write `bytes` to `path` atomically and durably, mode 0644
/// (`racker_fsutil::write_atomic`, the workspace's one writer).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ContentError> {
    racker_fsutil::write_atomic(path, bytes, 0o644)
        .map_err(|e| ContentError::io("writing", path, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn long_reasons_capped_and_stage_error_lists_every_stage() {
        let dir = tempfile::tempdir().unwrap();
        let mac: MacAddr = "00:11:22:33:44:10".parse().unwrap();
        let store = ReportStore::open(dir.path()).unwrap();
        // 60 KB, with a multi-byte character straddling the limit.
        let reason = format!(
            "{}é{}",
            "x".repeat(MAX_REASON_BYTES - 1),
            "y".repeat(60_000)
        );
        store
            .record(mac, Stage::Failed, Some(reason), UNIX_EPOCH)
            .unwrap();
        let kept = store.get(mac).unwrap().reason.unwrap();
        assert_eq!(kept, "x".repeat(MAX_REASON_BYTES - 1));
        let on_disk = std::fs::metadata(store.path_of(mac)).unwrap().len();
        assert!(on_disk < 5000, "{on_disk}");
        let e = "bogus".parse::<Stage>().unwrap_err().to_string();
        for stage in Stage::ALL {
            assert!(e.contains(stage.as_str()), "{e}");
        }
    }

    #[test]
    fn records_survive_reopen_and_are_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let mac: MacAddr = "00:11:22:33:44:10".parse().unwrap();
        let t0 = UNIX_EPOCH + Duration::from_secs(1000);
        let store = ReportStore::open(dir.path()).unwrap();
        assert!(!store.is_installed(mac));
        assert!(
            store
                .record(mac, Stage::Installing, Some("ignored".into()), t0)
                .unwrap()
        );
        assert!(
            store
                .record(mac, Stage::Installed, None, t0 + Duration::from_secs(5))
                .unwrap()
        );
        assert!(
            !store
                .record(mac, Stage::Installed, None, t0 + Duration::from_secs(9))
                .unwrap()
        );
        let again = ReportStore::open(dir.path()).unwrap();
        assert!(again.is_installed(mac));
        let dhcp_view: &dyn crate::dhcp::InstalledNodes = &again;
        assert!(dhcp_view.is_installed(mac));
        let r = again.get(mac).unwrap();
        assert_eq!((r.first_unix, r.updated_unix, r.reason), (1005, 1005, None));
        let raw = std::fs::read_to_string(reports_dir(dir.path()).join("00:11:22:33:44:10.json"))
            .unwrap();
        assert!(raw.contains(r#""stage":"installed""#), "{raw}");
        again.clear(mac).unwrap();
        assert!(ReportStore::open(dir.path()).unwrap().reports().is_empty());
    }

    #[test]
    fn concurrent_reports_share_the_journal_and_other_stores_see_them() {
        let dir = tempfile::tempdir().unwrap();
        let a = ReportStore::open(dir.path()).unwrap();
        // Another process's store of the same state directory.
        let b = ReportStore::open(dir.path()).unwrap();
        let mac = |i: usize| MacAddr::new([2, 0, 0, 1, (i >> 8) as u8, i as u8]);
        let t0 = UNIX_EPOCH + Duration::from_secs(1000);
        std::thread::scope(|s| {
            for t in 0..8 {
                let a = a.clone();
                s.spawn(move || {
                    for i in (t..200).step_by(8) {
                        assert!(a.record(mac(i), Stage::Installing, None, t0).unwrap());
                        assert!(a.record(mac(i), Stage::Installed, None, t0).unwrap());
                    }
                });
            }
        });
        // One journal line per report (appended in groups).
        let journal = std::fs::read_to_string(journal::journal_path(dir.path())).unwrap();
        assert_eq!(journal.lines().count(), 400);
        for i in 0..200 {
            assert!(b.is_installed(mac(i)), "{i}");
            // The readable file of every node.
            let raw = std::fs::read_to_string(a.path_of(mac(i))).unwrap();
            assert!(raw.contains(r#""stage":"installed""#), "{raw}");
        }
        b.clear(mac(7)).unwrap();
        assert!(a.get(mac(7)).is_none());
        assert!(!a.path_of(mac(7)).exists());
        assert!(b.record(mac(7), Stage::Up, None, t0).unwrap());
        assert!(a.is_up(mac(7)));
        assert_eq!(a.snapshot().len(), 200);
        // The journal is the record: a node's file lost or broken (not
        // fsynced, a power cut) changes nothing.
        std::fs::write(a.path_of(mac(3)), b"").unwrap();
        std::fs::remove_file(a.path_of(mac(4))).unwrap();
        let again = ReportStore::open(dir.path()).unwrap();
        assert_eq!(again.reports().len(), 200);
        assert!(again.is_installed(mac(3)) && again.is_installed(mac(4)));
    }

    #[test]
    fn a_large_journal_is_compacted_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let mac: MacAddr = "00:11:22:33:44:10".parse().unwrap();
        let other: MacAddr = "00:11:22:33:44:11".parse().unwrap();
        let store = ReportStore::open(dir.path()).unwrap();
        store.record(other, Stage::Up, None, UNIX_EPOCH).unwrap();
        for i in 0..400 {
            let reason = format!("attempt {i}: {}", "x".repeat(1000));
            store
                .record(mac, Stage::Failed, Some(reason), UNIX_EPOCH)
                .unwrap();
        }
        store.clear(mac).unwrap();
        let path = journal::journal_path(dir.path());
        assert!(std::fs::metadata(&path).unwrap().len() > COMPACT_BYTES);
        let again = ReportStore::open(dir.path()).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 1);
        assert_eq!(again.reports().len(), 1);
        assert!(again.is_up(other));
        // The first store goes on after the compaction (it reads the new
        // journal from its start) and its next report lands in it.
        assert!(store.get(mac).is_none());
        store
            .record(mac, Stage::Installing, None, UNIX_EPOCH)
            .unwrap();
        assert!(again.get(mac).is_some());
        assert_eq!(ReportStore::open(dir.path()).unwrap().reports().len(), 2);
    }

    #[test]
    fn failures_keep_reason_and_stages_parse() {
        let dir = tempfile::tempdir().unwrap();
        let mac: MacAddr = "00:11:22:33:44:20".parse().unwrap();
        let store = ReportStore::open(dir.path()).unwrap();
        store
            .record(mac, Stage::Failed, Some("no disk".into()), UNIX_EPOCH)
            .unwrap();
        assert_eq!(store.reports()[0].reason.as_deref(), Some("no disk"));
        assert_eq!("Installed".parse::<Stage>().unwrap(), Stage::Installed);
        assert_eq!("os-up".parse::<Stage>().unwrap(), Stage::Up);
        for stage in Stage::ALL {
            assert_eq!(stage.as_str().parse::<Stage>().unwrap(), stage);
        }
        store.record(mac, Stage::Up, None, UNIX_EPOCH).unwrap();
        assert!(store.is_installed(mac) && store.is_up(mac));
        assert!("bogus".parse::<Stage>().is_err());
    }
}
