//! Per-node event trail: what the netboot server saw of each node (DHCP
//! messages, TFTP and HTTP requests with their status, install reports),
//! so a node that never reports says why (docs/netboot.md, "Event trail").
//!
//! Bounded to [`MAX_EVENTS`] per node and kept for the nodes the server
//! knows (their primary MACs), in memory and on disk as
//! `<state-dir>/netboot/events/<mac>.json` (a JSON array, oldest first,
//! rewritten atomically), which `racker bootstrap` and `racker status
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

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use racker_inventory::MacAddr;
use serde::{Deserialize, Serialize};

/// Most events kept per node.
pub const MAX_EVENTS: usize = 32;

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
}

/// The trail of every known node; cheap to clone (shared by DHCP, TFTP and
/// HTTP).
#[derive(Debug, Clone)]
pub struct EventTrail {
    dir: Option<PathBuf>,
    inner: Arc<Mutex<Inner>>,
}

/// Directory of the trail files under a state directory.
pub fn events_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("netboot").join("events")
}

impl EventTrail {
    /// A trail written below `state_dir` for `nodes` (their primary MACs).
    pub fn open(state_dir: &Path, nodes: impl IntoIterator<Item = MacAddr>) -> Self {
        let t = Self {
            dir: Some(events_dir(state_dir)),
            inner: Arc::default(),
        };
        t.know(nodes);
        t
    }

    /// A trail kept in memory only.
    pub fn in_memory(nodes: impl IntoIterator<Item = MacAddr>) -> Self {
        let t = Self {
            dir: None,
            inner: Arc::default(),
        };
        t.know(nodes);
        t
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
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
        let snapshot = {
            let mut inner = self.lock();
            if !inner.known.contains(&mac) {
                return;
            }
            let list = inner.nodes.entry(mac).or_default();
            if list.len() >= MAX_EVENTS {
                list.pop_front();
            }
            list.push_back(event);
            self.dir
                .as_ref()
                .map(|_| list.iter().cloned().collect::<Vec<_>>())
        };
        if let (Some(dir), Some(events)) = (&self.dir, snapshot)
            && let Err(e) = save(dir, mac, &events)
        {
            tracing::warn!(%mac, "event trail: {e}");
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
        self.lock().nodes.remove(&mac);
        if let Some(dir) = &self.dir {
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

fn save(dir: &Path, mac: MacAddr, events: &[TrailEvent]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let json = serde_json::to_vec(events).map_err(std::io::Error::other)?;
    racker_fsutil::write_atomic(&dir.join(format!("{mac}.json")), &json, 0o644)
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
        assert_eq!(load(dir.path(), mac).len(), MAX_EVENTS);
        assert_eq!(load_all(dir.path()).len(), 1);
        t.clear(mac);
        assert!(load(dir.path(), mac).is_empty());
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
