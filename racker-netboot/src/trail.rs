//! Per-node event trail: what the netboot server saw of each node (DHCP
//! messages, TFTP and HTTP requests with their status, install reports),
//! so a node that never reports says why (docs/netboot.md, "Event trail").
//!
//! Bounded to [`MAX_EVENTS`] per node and kept for the nodes the server
//! knows (their primary MACs), in memory and on disk as
//! `<state-dir>/netboot/events/<mac>.json` (a JSON array, oldest first,
//! replaced atomically), which `racker bootstrap` and `racker status
//! --full` read and `GET /api/events?mac=<mac>` serves:
//!
//! ```json
//! [{"unix_ms":1700000000123,"kind":"dhcp","what":"DHCPDISCOVER -> DHCPOFFER 172.24.213.2"},
//!  {"unix_ms":1700000002000,"kind":"http","what":"GET /assets/flatcar/current/flatcar_production_pxe.vmlinuz","status":404}]
//! ```
//!
//! Requests that carry no MAC (TFTP, assets) are attributed by the client
//! address: the address DHCP acknowledged to exactly one node, else the
//! node that last fetched its iPXE script from that address.
//!
//! The files are written behind: recording an event only marks its node,
//! and a writer thread replaces the file of every marked node at most every
//! [`WRITE_INTERVAL`] (a node's burst of events is one write; recording
//! never waits for the disk, which made large racks slow). The trail is a
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
    /// Nodes with events not written to disk yet.
    dirty: HashSet<MacAddr>,
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

/// Write the file of every node with new events.
fn write_pending(dir: &Path, shared: &Shared) {
    let _io = lock(&shared.io);
    let pending: Vec<(MacAddr, Vec<TrailEvent>)> = {
        let mut state = lock(&shared.state);
        let dirty: Vec<MacAddr> = state.dirty.drain().collect();
        dirty
            .into_iter()
            .filter_map(|mac| {
                state
                    .nodes
                    .get(&mac)
                    .map(|l| (mac, l.iter().cloned().collect()))
            })
            .collect()
    };
    for (mac, events) in pending {
        if let Err(e) = save(dir, mac, &events) {
            tracing::warn!(%mac, "event trail: {e}");
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
        crate::report::remove_stale_temporaries(&dir);
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
                inner.dirty.insert(mac);
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
        }
        if let Some(dir) = &self.dir {
            // After any write of its old events that already started.
            let _io = lock(&self.inner.io);
            let _ = std::fs::remove_file(dir.join(format!("{mac}.json")));
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

/// Replace `<dir>/<mac>.json` atomically (a temporary file renamed over
/// it; readers never see half a file). Not fsynced: the trail is a
/// diagnostic (see the module docs).
fn save(dir: &Path, mac: MacAddr, events: &[TrailEvent]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let json = serde_json::to_vec(events).map_err(std::io::Error::other)?;
    let path = dir.join(format!("{mac}.json"));
    let tmp = dir.join(format!(".{mac}.json.tmp.{}", std::process::id()));
    let write = |tmp: &Path| -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .open(tmp)?;
        std::io::Write::write_all(&mut f, &json)?;
        std::fs::rename(tmp, &path)
    };
    let result = match write(&tmp) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir)?;
            write(&tmp)
        }
        other => other,
    };
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// The events of `mac` as the server last wrote them (another process).
pub fn load(state_dir: &Path, mac: MacAddr) -> Vec<TrailEvent> {
    std::fs::read(events_dir(state_dir).join(format!("{mac}.json")))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
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
            .strip_suffix(".json")
            .and_then(|m| m.parse::<MacAddr>().ok())
        {
            out.insert(mac, load(state_dir, mac));
        }
    }
    out
}

/// Forget `mac`'s events on disk.
pub fn clear(state_dir: &Path, mac: MacAddr) {
    let _ = std::fs::remove_file(events_dir(state_dir).join(format!("{mac}.json")));
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
        assert_eq!(names, vec![format!("{b}.json")]);
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
