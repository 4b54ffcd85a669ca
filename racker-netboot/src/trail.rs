//! Per-node event trail: what the netboot server saw of each node (DHCP
//! messages, TFTP and HTTP requests with their status, install reports),
//! so a node that never reports says why (docs/netboot.md, "Event trail").
//!
//! Bounded to [`MAX_EVENTS`] per node and kept for the nodes the server
//! knows (their primary MACs), in memory and on disk as
//! `<state-dir>/netboot/events/<mac>.jsonl` (one JSON object per line,
//! oldest first, appended to), which `racker bootstrap` and `racker status
//! --full` read ([`load`]) and `GET /api/events?mac=<mac>` serves as an
//! array:
//!
//! ```json
//! {"unix_ms":1700000000123,"kind":"dhcp","what":"DHCPDISCOVER -> DHCPOFFER 172.24.213.2"}
//! {"unix_ms":1700000002000,"kind":"http","what":"GET /assets/flatcar/current/flatcar_production_pxe.vmlinuz","status":404}
//! ```
//!
//! A file holds at most [`COMPACT_LINES`] lines: past that it is replaced
//! atomically by the node's last [`MAX_EVENTS`] events; readers keep the
//! last [`MAX_EVENTS`] lines and skip a torn last line.
//!
//! Requests that carry no MAC (TFTP, assets) are attributed by the client
//! address: the address DHCP acknowledged to exactly one node, else the
//! node that last fetched its iPXE script from that address.
//!
//! The files are written behind: recording an event only marks its node,
//! and a writer thread appends the new events of every marked node at most
//! every [`WRITE_INTERVAL`] (a node's burst of events is one append;
//! recording never waits for the disk, and appending creates no file,
//! which made large racks slow). The trail is a
//! diagnostic, not a record: the files are not fsynced, and a crash loses
//! at most the last interval's events. [`EventTrail::flush`] (and dropping
//! the last handle) writes what is pending.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use racker_inventory::MacAddr;
use serde::{Deserialize, Serialize};

/// Most events kept per node.
pub const MAX_EVENTS: usize = 32;

/// How often the trail files of nodes with new events are written at most.
pub const WRITE_INTERVAL: Duration = Duration::from_millis(200);

/// Most lines a trail file grows to before it is rewritten with only the
/// node's last [`MAX_EVENTS`] events.
pub const COMPACT_LINES: usize = 4 * MAX_EVENTS;

/// Where an event came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TrailKind {
    /// A DHCP transaction.
    Dhcp,
    /// A TFTP read request.
    Tftp,
    /// An HTTP request.
    Http,
    /// An install report (accepted or refused).
    Report,
}

/// One event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrailEvent {
    /// When (milliseconds since the epoch).
    pub unix_ms: u64,
    /// What kind.
    pub kind: TrailKind,
    /// What happened, e.g. `GET /ipxe?mac=...` or `DHCPREQUEST -> DHCPACK 172.24.213.2`.
    pub what: String,
    /// HTTP status, or 0/404-like codes for TFTP (0 ok), when any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
}

impl TrailEvent {
    /// True for a request the server could not serve (status 400 or more).
    pub fn failed(&self) -> bool {
        self.status.is_some_and(|s| s >= 400)
    }

    /// A short label: `got its lease`, `iPXE script`, `kernel 404 (...)`.
    pub fn label(&self) -> String {
        let what = self.what.as_str();
        let request = what.split_once(NOTE_SEPARATOR).map_or(what, |(r, _)| r);
        let path = request.split_once(' ').map_or(request, |(_, p)| p);
        let thing = if self.kind == TrailKind::Dhcp {
            if what.contains("-> DHCPACK") {
                return "got its lease".into();
            }
            if what.contains("-> DHCPOFFER") {
                return "DHCP offer".into();
            }
            return format!("DHCP {}", what.split(' ').next().unwrap_or(what));
        } else if self.kind == TrailKind::Report {
            return format!("report {what}");
        } else if path.starts_with("/ipxe") || path.starts_with("/boot.ipxe") {
            "iPXE script"
        } else if path.starts_with("/ignition") {
            "Ignition"
        } else if path.ends_with(".vmlinuz") || path.contains("vmlinuz") {
            "kernel"
        } else if path.contains(".cpio") || path.contains("initrd") {
            "initrd"
        } else if path.contains(".bin.bz2") {
            "image"
        } else if self.kind == TrailKind::Tftp {
            "TFTP"
        } else {
            "HTTP"
        };
        match self.status {
            Some(s) if s >= 400 => {
                let file = path
                    .split('?')
                    .next()
                    .unwrap_or(path)
                    .trim_start_matches('/');
                if thing == "iPXE script" || thing == "Ignition" {
                    match what.split_once(NOTE_SEPARATOR) {
                        Some((_, note)) => format!("{thing} {s} ({note})"),
                        None => format!("{thing} {s}"),
                    }
                } else {
                    format!("{thing} {s} ({file} missing)")
                }
            }
            _ => thing.to_owned(),
        }
    }
}

/// Separates a request from the server's note on why it failed in
/// [`TrailEvent::what`]: `GET /ipxe?mac=.. — assets/... is missing (...)`.
pub const NOTE_SEPARATOR: &str = " — ";

/// `14:02:11` (UTC) of a millisecond timestamp.
pub fn clock(unix_ms: u64) -> String {
    let secs = (unix_ms / 1000) % 86_400;
    format!(
        "{:02}:{:02}:{:02}",
        secs / 3600,
        (secs / 60) % 60,
        secs % 60
    )
}

/// `got its lease 14:02:11, iPXE script 14:02:13, kernel 404 (...)`: the
/// first time of each distinct label, in order; empty for no events.
pub fn summarize(events: &[TrailEvent]) -> String {
    let mut seen = HashSet::new();
    let mut parts = Vec::new();
    for e in events {
        let label = e.label();
        if seen.insert(label.clone()) {
            if e.failed() {
                parts.push(label);
            } else {
                parts.push(format!("{label} {}", clock(e.unix_ms)));
            }
        }
    }
    parts.join(", ")
}

/// The first request at or after `since_ms` that the server could not
/// serve and that stops a PXE boot (iPXE script, kernel, initrd, Ignition).
pub fn fatal_failure(events: &[TrailEvent], since_ms: u64) -> Option<&TrailEvent> {
    events.iter().find(|e| {
        e.unix_ms >= since_ms
            && e.failed()
            && matches!(e.kind, TrailKind::Http | TrailKind::Tftp)
            && {
                let l = e.label();
                ["iPXE script", "kernel", "initrd", "Ignition"]
                    .iter()
                    .any(|p| l.starts_with(p))
            }
    })
}

#[derive(Debug, Default)]
struct Inner {
    nodes: HashMap<MacAddr, VecDeque<TrailEvent>>,
    known: HashSet<MacAddr>,
    /// Address acknowledged by DHCP → node; `None` when several nodes share it.
    leased: HashMap<IpAddr, Option<MacAddr>>,
    /// The node that last fetched its iPXE script from an address.
    last_ipxe: HashMap<IpAddr, MacAddr>,
    /// Nodes with events not written to disk yet, and how many.
    dirty: HashMap<MacAddr, usize>,
    /// Lines in each node's file as this trail wrote it (none: unknown,
    /// the next write replaces the file).
    on_disk: HashMap<MacAddr, usize>,
    /// The writer thread is to write what is pending and stop.
    closing: bool,
}

/// The trail of every known node; cheap to clone (shared by DHCP, TFTP and
/// HTTP).
#[derive(Debug, Clone)]
pub struct EventTrail {
    dir: Option<PathBuf>,
    inner: Arc<Shared>,
    /// The writer thread (on disk only); the last clone dropped stops it
    /// after a last write.
    writer: Option<Arc<Writer>>,
}

#[derive(Debug, Default)]
struct Shared {
    state: Mutex<Inner>,
    /// Signalled when a node gets dirty or the trail closes.
    wake: Condvar,
    /// Held while files are written or removed, so a cleared node's file
    /// is never written again by a write that started before the clear.
    io: Mutex<()>,
}

#[derive(Debug)]
struct Writer {
    shared: Arc<Shared>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Drop for Writer {
    fn drop(&mut self) {
        lock(&self.shared.state).closing = true;
        self.shared.wake.notify_all();
        if let Some(t) = lock(&self.thread).take() {
            let _ = t.join();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The writer thread: every [`WRITE_INTERVAL`] at most, the files of the
/// nodes with new events; at close, what is pending.
fn write_behind(dir: &Path, shared: &Shared) {
    loop {
        {
            let mut state = lock(&shared.state);
            while state.dirty.is_empty() && !state.closing {
                state = shared
                    .wake
                    .wait(state)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
            }
            if !state.closing {
                // Let the burst gather: one write per node per interval.
                let (s, _) = shared
                    .wake
                    .wait_timeout_while(state, WRITE_INTERVAL, |s| !s.closing)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                state = s;
            }
            if state.closing && state.dirty.is_empty() {
                return;
            }
        }
        write_pending(dir, shared);
    }
}

/// Append the new events of every node that has some (or replace its
/// file when it would grow past [`COMPACT_LINES`] or was not written by
/// this trail yet).
fn write_pending(dir: &Path, shared: &Shared) {
    let _io = lock(&shared.io);
    let pending: Vec<(MacAddr, Vec<TrailEvent>, Option<usize>)> = {
        let mut state = lock(&shared.state);
        let dirty: Vec<(MacAddr, usize)> = state.dirty.drain().collect();
        dirty
            .into_iter()
            .filter_map(|(mac, new)| {
                let list = state.nodes.get(&mac)?;
                let on_disk = state.on_disk.get(&mac).copied();
                let whole = on_disk.is_none_or(|n| n + new > COMPACT_LINES);
                let skip = if whole {
                    0
                } else {
                    list.len().saturating_sub(new)
                };
                let events = list.iter().skip(skip).cloned().collect();
                Some((mac, events, on_disk.filter(|_| !whole)))
            })
            .collect()
    };
    let mut lines = Vec::with_capacity(pending.len());
    for (mac, events, append_to) in pending {
        let result = match append_to {
            Some(n) => append(dir, mac, &events).map(|()| n + events.len()),
            None => save(dir, mac, &events).map(|()| events.len()),
        };
        match result {
            Ok(n) => lines.push((mac, n)),
            Err(e) => tracing::warn!(%mac, "event trail: {e}"),
        }
    }
    let mut state = lock(&shared.state);
    for (mac, n) in lines {
        if state.nodes.contains_key(&mac) {
            state.on_disk.insert(mac, n);
        }
    }
}

/// Directory of the trail files under a state directory.
pub fn events_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("netboot").join("events")
}

impl EventTrail {
    /// A trail written below `state_dir` for `nodes` (their primary MACs).
    /// Its files are written behind by a thread of its own (see the
    /// [module docs](self)).
    pub fn open(state_dir: &Path, nodes: impl IntoIterator<Item = MacAddr>) -> Self {
        let dir = events_dir(state_dir);
        racker_fsutil::remove_stale_temporaries_in(&dir);
        let shared: Arc<Shared> = Arc::default();
        let thread = {
            let (dir, shared) = (dir.clone(), shared.clone());
            std::thread::Builder::new()
                .name("racker-trail".into())
                .spawn(move || write_behind(&dir, &shared))
        };
        let writer = match thread {
            Ok(t) => Some(Arc::new(Writer {
                shared: shared.clone(),
                thread: Mutex::new(Some(t)),
            })),
            Err(e) => {
                // Without the thread every record writes at once.
                tracing::warn!("event trail: no writer thread ({e}); writing at once");
                None
            }
        };
        let t = Self {
            dir: Some(dir),
            inner: shared,
            writer,
        };
        t.know(nodes);
        t
    }

    /// A trail kept in memory only.
    pub fn in_memory(nodes: impl IntoIterator<Item = MacAddr>) -> Self {
        let t = Self {
            dir: None,
            inner: Arc::default(),
            writer: None,
        };
        t.know(nodes);
        t
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        lock(&self.inner.state)
    }

    /// Write the files of the nodes with new events now (they are also
    /// written within [`WRITE_INTERVAL`], and when the last handle drops).
    pub fn flush(&self) {
        if let Some(dir) = &self.dir {
            write_pending(dir, &self.inner);
        }
    }

    /// Record events of these MACs too.
    pub fn know(&self, nodes: impl IntoIterator<Item = MacAddr>) {
        self.lock().known.extend(nodes);
    }

    /// Whether `mac` is a node the trail records.
    pub fn knows(&self, mac: MacAddr) -> bool {
        self.lock().known.contains(&mac)
    }

    /// DHCP acknowledged `ip` to `mac`.
    pub fn leased(&self, ip: IpAddr, mac: MacAddr) {
        let mut inner = self.lock();
        if !inner.known.contains(&mac) {
            return;
        }
        let entry = inner.leased.entry(ip).or_insert(Some(mac));
        if *entry != Some(mac) {
            *entry = None;
        }
    }

    /// The node behind a client address, if it can be told.
    pub fn mac_of(&self, ip: IpAddr) -> Option<MacAddr> {
        let inner = self.lock();
        inner
            .leased
            .get(&ip)
            .copied()
            .flatten()
            .or_else(|| inner.last_ipxe.get(&ip).copied())
    }

    /// `mac` fetched its iPXE script from `ip`.
    pub fn ipxe_from(&self, ip: IpAddr, mac: MacAddr) {
        let mut inner = self.lock();
        if inner.known.contains(&mac) {
            inner.last_ipxe.insert(ip, mac);
        }
    }

    /// Record an event of a known node (others are ignored).
    pub fn record(
        &self,
        mac: MacAddr,
        kind: TrailKind,
        what: impl Into<String>,
        status: Option<u16>,
        now: SystemTime,
    ) {
        let event = TrailEvent {
            unix_ms: now
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            kind,
            what: cap(what.into()),
            status,
        };
        {
            let mut inner = self.lock();
            if !inner.known.contains(&mac) {
                return;
            }
            let list = inner.nodes.entry(mac).or_default();
            if list.len() >= MAX_EVENTS {
                list.pop_front();
            }
            list.push_back(event);
            if self.dir.is_some() {
                let new = inner.dirty.entry(mac).or_default();
                *new = (*new + 1).min(MAX_EVENTS);
            }
        }
        if self.writer.is_some() {
            self.inner.wake.notify_all();
        } else {
            self.flush();
        }
    }

    /// Record an event of whichever node `ip` belongs to.
    pub fn record_from(
        &self,
        ip: IpAddr,
        kind: TrailKind,
        what: impl Into<String>,
        status: Option<u16>,
        now: SystemTime,
    ) {
        if let Some(mac) = self.mac_of(ip) {
            self.record(mac, kind, what, status, now);
        }
    }

    /// The events of `mac`, oldest first (from memory).
    pub fn events(&self, mac: MacAddr) -> Vec<TrailEvent> {
        self.lock()
            .nodes
            .get(&mac)
            .map(|l| l.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Whether `mac` has an event at or after `since_ms` that the server
    /// could not serve (a look without copying the events).
    pub fn failed_since(&self, mac: MacAddr, since_ms: u64) -> bool {
        self.lock()
            .nodes
            .get(&mac)
            .is_some_and(|l| l.iter().any(|e| e.unix_ms >= since_ms && e.failed()))
    }

    /// Every node's events, by MAC.
    pub fn all(&self) -> BTreeMap<MacAddr, Vec<TrailEvent>> {
        self.lock()
            .nodes
            .iter()
            .map(|(m, l)| (*m, l.iter().cloned().collect()))
            .collect()
    }

    /// Forget `mac`'s events (before reinstalling it).
    pub fn clear(&self, mac: MacAddr) {
        {
            let mut inner = self.lock();
            inner.nodes.remove(&mac);
            inner.dirty.remove(&mac);
            inner.on_disk.remove(&mac);
        }
        if let Some(dir) = &self.dir {
            // After any write of its old events that already started.
            let _io = lock(&self.inner.io);
            remove_files(dir, mac);
            // Such a write may have counted its lines meanwhile.
            self.lock().on_disk.remove(&mac);
        }
    }
}

fn cap(mut s: String) -> String {
    const MAX: usize = 200;
    if s.len() > MAX {
        let mut end = MAX;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

fn file_of(dir: &Path, mac: MacAddr) -> PathBuf {
    dir.join(format!("{mac}.jsonl"))
}

/// The file earlier versions wrote: one JSON array.
fn legacy_file_of(dir: &Path, mac: MacAddr) -> PathBuf {
    dir.join(format!("{mac}.json"))
}

fn remove_files(dir: &Path, mac: MacAddr) {
    let _ = std::fs::remove_file(file_of(dir, mac));
    let _ = std::fs::remove_file(legacy_file_of(dir, mac));
}

fn lines(events: &[TrailEvent]) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(events.len() * 96);
    for e in events {
        serde_json::to_writer(&mut out, e).map_err(std::io::Error::other)?;
        out.push(b'\n');
    }
    Ok(out)
}

/// Append `events` to `<dir>/<mac>.jsonl` in one write. Not fsynced: the
/// trail is a diagnostic (see the module docs).
fn append(dir: &Path, mac: MacAddr, events: &[TrailEvent]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let bytes = lines(events)?;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o644)
        .open(file_of(dir, mac))?;
    std::io::Write::write_all(&mut f, &bytes)
}

/// Replace `<dir>/<mac>.jsonl` atomically (a temporary file renamed over
/// it; readers never see half a file). Not fsynced: the trail is a
/// diagnostic (see the module docs).
fn save(dir: &Path, mac: MacAddr, events: &[TrailEvent]) -> std::io::Result<()> {
    let json = lines(events)?;
    let path = file_of(dir, mac);
    let result = match racker_fsutil::replace_unsynced(&path, &json, 0o644) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir)?;
            racker_fsutil::replace_unsynced(&path, &json, 0o644)
        }
        other => other,
    };
    if result.is_ok() {
        let _ = std::fs::remove_file(legacy_file_of(dir, mac));
    }
    result
}

/// The last [`MAX_EVENTS`] events of `mac` as the server last wrote them
/// (another process), oldest first; unreadable lines (a torn last line)
/// are skipped.
pub fn load(state_dir: &Path, mac: MacAddr) -> Vec<TrailEvent> {
    let dir = events_dir(state_dir);
    match std::fs::read(file_of(&dir, mac)) {
        Ok(bytes) => {
            let mut events: VecDeque<TrailEvent> = VecDeque::new();
            for line in bytes.split(|b| *b == b'\n') {
                if let Ok(e) = serde_json::from_slice(line) {
                    if events.len() == MAX_EVENTS {
                        events.pop_front();
                    }
                    events.push_back(e);
                }
            }
            events.into()
        }
        Err(_) => std::fs::read(legacy_file_of(&dir, mac))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default(),
    }
}

/// Every node's events on disk, by MAC.
pub fn load_all(state_dir: &Path) -> BTreeMap<MacAddr, Vec<TrailEvent>> {
    let mut out = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(events_dir(state_dir)) else {
        return out;
    };
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(mac) = name
            .strip_suffix(".jsonl")
            .or_else(|| name.strip_suffix(".json"))
            .and_then(|m| m.parse::<MacAddr>().ok())
        {
            out.entry(mac).or_insert_with(|| load(state_dir, mac));
        }
    }
    out
}

/// Forget `mac`'s events on disk.
pub fn clear(state_dir: &Path, mac: MacAddr) {
    remove_files(&events_dir(state_dir), mac);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bounded_persisted_and_summarised() {
        let dir = tempfile::tempdir().unwrap();
        let mac: MacAddr = "00:11:22:33:44:10".parse().unwrap();
        let stranger: MacAddr = "00:11:22:33:44:99".parse().unwrap();
        let t = EventTrail::open(dir.path(), [mac]);
        let t0 = UNIX_EPOCH + Duration::from_secs(14 * 3600 + 2 * 60 + 11);
        t.record(
            mac,
            TrailKind::Dhcp,
            "DHCPREQUEST -> DHCPACK 172.24.213.2",
            None,
            t0,
        );
        t.leased("172.24.213.2".parse().unwrap(), mac);
        t.record_from(
            "172.24.213.2".parse().unwrap(),
            TrailKind::Http,
            "GET /ipxe?mac=00-11-22-33-44-10",
            Some(200),
            t0 + Duration::from_secs(2),
        );
        t.record_from(
            "172.24.213.2".parse().unwrap(),
            TrailKind::Http,
            "GET /assets/flatcar/current/flatcar_production_pxe.vmlinuz",
            Some(404),
            t0 + Duration::from_secs(3),
        );
        t.record(stranger, TrailKind::Dhcp, "x", None, t0);
        // Written behind: on disk within the interval, or at a flush.
        t.flush();
        let events = load(dir.path(), mac);
        assert_eq!(events.len(), 3);
        assert_eq!(
            summarize(&events),
            "got its lease 14:02:11, iPXE script 14:02:13, kernel 404 (assets/flatcar/current/flatcar_production_pxe.vmlinuz missing)"
        );
        assert!(fatal_failure(&events, 0).is_some());
        assert!(load(dir.path(), stranger).is_empty());
        for i in 0..100 {
            t.record(mac, TrailKind::Dhcp, format!("m{i}"), None, t0);
        }
        t.flush();
        assert_eq!(load(dir.path(), mac).len(), MAX_EVENTS);
        assert_eq!(load_all(dir.path()).len(), 1);
        t.clear(mac);
        assert!(load(dir.path(), mac).is_empty());
    }

    #[test]
    fn written_behind_within_the_interval_and_at_the_last_drop() {
        let dir = tempfile::tempdir().unwrap();
        let a: MacAddr = "00:11:22:33:44:10".parse().unwrap();
        let b: MacAddr = "00:11:22:33:44:11".parse().unwrap();
        let t = EventTrail::open(dir.path(), [a, b]);
        let t0 = UNIX_EPOCH + Duration::from_secs(1000);
        // A burst of events: on disk within the interval, without a flush.
        for i in 0..10 {
            t.record(a, TrailKind::Dhcp, format!("m{i}"), None, t0);
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while load(dir.path(), a).len() < 10 {
            assert!(std::time::Instant::now() < deadline, "never written");
            std::thread::sleep(Duration::from_millis(20));
        }
        // A clear is never undone by a pending write.
        t.record(a, TrailKind::Dhcp, "late", None, t0);
        t.clear(a);
        // The last handle dropped: what is pending is on disk.
        let other = t.clone();
        drop(t);
        other.record(b, TrailKind::Http, "GET /ipxe", Some(200), t0);
        drop(other);
        assert_eq!(load(dir.path(), b).len(), 1);
        assert!(load(dir.path(), a).is_empty());
        // No temporary files are left.
        let names: Vec<String> = std::fs::read_dir(events_dir(dir.path()))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec![format!("{b}.jsonl")]);
        // What a killed writer left is removed at the next open; a live
        // writer's temporary file is kept.
        let dead = events_dir(dir.path()).join(format!(".{a}.json.tmp.{}", u32::MAX - 1));
        let live = events_dir(dir.path()).join(format!(".{a}.json.tmp.{}", std::process::id()));
        std::fs::write(&dead, b"[").unwrap();
        std::fs::write(&live, b"[").unwrap();
        drop(EventTrail::open(dir.path(), [a]));
        assert!(!dead.exists());
        assert!(live.exists());
    }

    /// New events are appended (the file is not replaced); the file is
    /// rewritten with the last events before it passes COMPACT_LINES;
    /// readers skip a torn line and read a legacy JSON array.
    #[test]
    fn appended_compacted_and_read_back() {
        use std::os::unix::fs::MetadataExt as _;
        let dir = tempfile::tempdir().unwrap();
        let mac: MacAddr = "00:11:22:33:44:10".parse().unwrap();
        let path = events_dir(dir.path()).join(format!("{mac}.jsonl"));
        let line_count = || std::fs::read_to_string(&path).unwrap().lines().count();
        let t = EventTrail::open(dir.path(), [mac]);
        let t0 = UNIX_EPOCH + Duration::from_secs(1000);
        for i in 0..10 {
            t.record(mac, TrailKind::Dhcp, format!("m{i}"), None, t0);
        }
        t.flush();
        assert_eq!(line_count(), 10);
        let inode = std::fs::metadata(&path).unwrap().ino();
        for i in 10..15 {
            t.record(mac, TrailKind::Dhcp, format!("m{i}"), None, t0);
        }
        t.flush();
        assert_eq!(line_count(), 15);
        assert_eq!(
            std::fs::metadata(&path).unwrap().ino(),
            inode,
            "replaced, not appended"
        );
        let mut max_lines = 0;
        for i in 15..400 {
            t.record(mac, TrailKind::Dhcp, format!("m{i}"), None, t0);
            if i % 7 == 0 {
                t.flush();
                max_lines = max_lines.max(line_count());
            }
        }
        t.flush();
        assert!(max_lines <= COMPACT_LINES, "{max_lines} lines");
        let events = load(dir.path(), mac);
        let whats: Vec<&str> = events.iter().map(|e| e.what.as_str()).collect();
        let expected: Vec<String> = (400 - MAX_EVENTS..400).map(|i| format!("m{i}")).collect();
        assert_eq!(whats, expected);
        assert_eq!(events, t.events(mac));
        // A torn last line (a crash mid-append) is skipped.
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        std::io::Write::write_all(&mut f, b"{\"unix_ms\":12").unwrap();
        assert_eq!(load(dir.path(), mac), events);
        // A trail an earlier version wrote (a JSON array) is read until
        // the next write replaces it.
        drop(t);
        std::fs::remove_file(&path).unwrap();
        let legacy = events_dir(dir.path()).join(format!("{mac}.json"));
        std::fs::write(&legacy, serde_json::to_vec(&events[..3]).unwrap()).unwrap();
        assert_eq!(load(dir.path(), mac), events[..3]);
        assert_eq!(load_all(dir.path()).get(&mac).map(Vec::len), Some(3));
        let t = EventTrail::open(dir.path(), [mac]);
        t.record(mac, TrailKind::Http, "GET /ipxe", Some(200), t0);
        t.flush();
        assert!(!legacy.exists());
        assert_eq!(load(dir.path(), mac).len(), 1);
    }

    #[test]
    fn shared_addresses_fall_back_to_the_last_ipxe_fetch() {
        let a: MacAddr = "00:11:22:33:44:10".parse().unwrap();
        let b: MacAddr = "00:11:22:33:44:11".parse().unwrap();
        let t = EventTrail::in_memory([a, b]);
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        t.leased(lo, a);
        t.leased(lo, b);
        assert_eq!(t.mac_of(lo), None);
        t.ipxe_from(lo, b);
        assert_eq!(t.mac_of(lo), Some(b));
    }
}
