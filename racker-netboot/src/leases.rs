//! The DHCP lease table and its durable JSON file in the state directory.
//!
//! The file is `<state-dir>/dhcp-leases.json`:
//!
//! ```json
//! {
//!   "version": 1,
//!   "leases": [
//!     { "mac": "00:11:22:33:44:11", "ip": "172.24.213.4", "expires": 1790000000, "reserved": true }
//!   ]
//! }
//! ```
//!
//! `expires` is in seconds since the Unix epoch, `reserved` tells a lease
//! from the address plan from one out of the dynamic range. Leases are
//! sorted by MAC so the file is deterministic. It is replaced atomically
//! (write a temporary file, fsync it, rename it over the old one, fsync the
//! directory), so a reader never sees half a file and a crash never loses
//! an acknowledged lease.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use racker_inventory::MacAddr;
use serde::{Deserialize, Serialize};

use crate::dhcp::DhcpError;

/// Current version of the lease file format.
const FORMAT_VERSION: u32 = 1;

/// One address handed to one client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// The client's hardware address.
    pub mac: MacAddr,
    /// The address leased to it.
    pub ip: Ipv4Addr,
    /// End of the lease, seconds since the Unix epoch.
    pub expires: u64,
    /// True when the address comes from a reservation (the address plan),
    /// false for the dynamic range.
    pub reserved: bool,
}

impl Lease {
    /// End of the lease.
    pub fn expires_at(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(self.expires)
    }

    /// True while the lease has not expired at `now`.
    pub fn is_active(&self, now: SystemTime) -> bool {
        unix_seconds(now) < self.expires
    }
}

/// Seconds since the Unix epoch (0 before it).
pub(crate) fn unix_seconds(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

#[derive(Serialize, Deserialize)]
struct LeaseFile {
    version: u32,
    leases: Vec<Lease>,
}

/// All leases, by MAC, with an index by address.
///
/// ```
/// # fn main() -> Result<(), racker_netboot::DhcpError> {
/// let dir = std::env::temp_dir().join(format!("racker-leases-doc-{}", std::process::id()));
/// let table = racker_netboot::LeaseTable::load(&dir)?; // missing file: empty table
/// let mac = "00:11:22:33:44:11".parse().expect("a MAC");
/// assert!(table.get(mac).is_none());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeaseTable {
    by_mac: BTreeMap<MacAddr, Lease>,
    by_ip: HashMap<Ipv4Addr, MacAddr>,
    generation: u64,
}

impl LeaseTable {
    /// Name of the lease file inside the state directory.
    pub const FILE_NAME: &'static str = "dhcp-leases.json";

    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Path of the lease file in `state_dir`.
    pub fn path(state_dir: &Path) -> PathBuf {
        state_dir.join(Self::FILE_NAME)
    }

    /// Load the table from `state_dir`; a missing file is an empty table.
    pub fn load(state_dir: &Path) -> Result<Self, DhcpError> {
        let path = Self::path(state_dir);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::new()),
            Err(source) => return Err(DhcpError::LeaseIo { path, source }),
        };
        Self::from_json(&bytes).map_err(|source| DhcpError::LeaseFormat { path, source })
    }

    /// Parse the JSON form (see the module documentation).
    pub fn from_json(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        let file: LeaseFile = serde_json::from_slice(bytes)?;
        if file.version != FORMAT_VERSION {
            return Err(serde::de::Error::custom(format!(
                "unsupported lease file version {} (expected {FORMAT_VERSION})",
                file.version
            )));
        }
        let mut table = Self::new();
        for lease in file.leases {
            table.insert(lease);
        }
        table.generation = 0;
        Ok(table)
    }

    /// The JSON form (compact, one line), deterministic (sorted by MAC).
    pub fn to_json(&self) -> Vec<u8> {
        let file = LeaseFile {
            version: FORMAT_VERSION,
            leases: self.by_mac.values().copied().collect(),
        };
        // Serialising plain structs of strings and numbers cannot fail.
        let mut out = serde_json::to_vec(&file).unwrap_or_default();
        out.push(b'\n');
        out
    }

    /// Write the table to `state_dir` atomically and durably.
    pub fn save(&self, state_dir: &Path) -> Result<(), DhcpError> {
        Self::save_json(state_dir, &self.to_json())
    }

    /// Write an already serialised table (see [`LeaseTable::to_json`]), so
    /// the caller can serialise under its lock and write outside it.
    pub fn save_json(state_dir: &Path, json: &[u8]) -> Result<(), DhcpError> {
        write_atomically(state_dir, Self::FILE_NAME, json)
    }

    /// The lease of `mac`, active or not.
    pub fn get(&self, mac: MacAddr) -> Option<&Lease> {
        self.by_mac.get(&mac)
    }

    /// The holder of `ip`, active or not.
    pub fn by_ip(&self, ip: Ipv4Addr) -> Option<&Lease> {
        self.by_ip.get(&ip).and_then(|mac| self.by_mac.get(mac))
    }

    /// All leases, sorted by MAC.
    pub fn iter(&self) -> impl Iterator<Item = &Lease> {
        self.by_mac.values()
    }

    /// Number of leases.
    pub fn len(&self) -> usize {
        self.by_mac.len()
    }

    /// True when there is no lease.
    pub fn is_empty(&self) -> bool {
        self.by_mac.is_empty()
    }

    /// A counter bumped on every change; compare it to decide whether the
    /// table must be saved.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Insert or replace the lease of `lease.mac`. Another MAC holding the
    /// same address loses its lease.
    pub fn insert(&mut self, lease: Lease) {
        if self.by_mac.get(&lease.mac) == Some(&lease) {
            return;
        }
        if let Some(old) = self.by_mac.remove(&lease.mac) {
            self.by_ip.remove(&old.ip);
        }
        if let Some(other) = self.by_ip.insert(lease.ip, lease.mac)
            && other != lease.mac
        {
            self.by_mac.remove(&other);
        }
        self.by_mac.insert(lease.mac, lease);
        self.generation += 1;
    }

    /// Remove the lease of `mac`, returning it.
    pub fn remove(&mut self, mac: MacAddr) -> Option<Lease> {
        let old = self.by_mac.remove(&mac)?;
        self.by_ip.remove(&old.ip);
        self.generation += 1;
        Some(old)
    }
}

/// Write `bytes` to `dir/name` atomically and durably (`racker_fsutil`),
/// creating `dir` first.
fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), DhcpError> {
    let path = dir.join(name);
    racker_fsutil::write_atomic_creating_dir(&path, bytes, 0o644)
        .map_err(|source| DhcpError::LeaseIo { path, source })
}

/// The lease table as `racker netboot leases -o json` shows it (kind
/// `leases`, docs/output.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct LeasesView {
    /// Every lease, by MAC.
    pub leases: Vec<LeaseView>,
}

/// One lease of a [`LeasesView`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct LeaseView {
    /// The client.
    pub mac: MacAddr,
    /// Its address.
    pub ip: Ipv4Addr,
    /// `reserved` (from the address plan) or `dynamic`.
    pub kind: &'static str,
    /// `active` or `expired` (at the time of the view).
    pub state: &'static str,
    /// When it expires, RFC 3339 in UTC to the second.
    pub expires_at: String,
}

impl LeaseTable {
    /// Every lease as it stands at `now`.
    pub fn view(&self, now: SystemTime) -> LeasesView {
        LeasesView {
            leases: self
                .iter()
                .map(|lease| LeaseView {
                    mac: lease.mac,
                    ip: lease.ip,
                    kind: if lease.reserved {
                        "reserved"
                    } else {
                        "dynamic"
                    },
                    state: if lease.is_active(now) {
                        "active"
                    } else {
                        "expired"
                    },
                    expires_at: humantime::format_rfc3339_seconds(lease.expires_at()).to_string(),
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mac(last: u8) -> MacAddr {
        MacAddr::new([0, 0x11, 0x22, 0x33, 0x44, last])
    }

    fn lease(last: u8, ip: [u8; 4], expires: u64) -> Lease {
        Lease {
            mac: mac(last),
            ip: Ipv4Addr::from(ip),
            expires,
            reserved: last < 0x80,
        }
    }

    #[test]
    fn the_view_names_kind_state_and_expiry() {
        let mut t = LeaseTable::new();
        t.insert(lease(0x11, [172, 24, 213, 4], 1_790_000_000));
        t.insert(lease(0x90, [172, 24, 213, 128], 1_700_000_000));
        let view = t.view(UNIX_EPOCH + Duration::from_secs(1_750_000_000));
        assert_eq!(
            serde_json::to_string(&view).unwrap(),
            r#"{"leases":[{"mac":"00:11:22:33:44:11","ip":"172.24.213.4","kind":"reserved","state":"active","expires_at":"2026-09-21T14:13:20Z"},{"mac":"00:11:22:33:44:90","ip":"172.24.213.128","kind":"dynamic","state":"expired","expires_at":"2023-11-14T22:13:20Z"}]}"#
        );
    }

    #[test]
    fn save_load_round_trip_and_format() {
        let dir = tempfile::tempdir().unwrap();
        let mut t = LeaseTable::new();
        t.insert(lease(0x11, [172, 24, 213, 4], 1_790_000_000));
        t.insert(lease(0x90, [172, 24, 213, 128], 1_790_000_100));
        t.save(dir.path()).unwrap();
        let loaded = LeaseTable::load(dir.path()).unwrap();
        assert_eq!(
            loaded.iter().collect::<Vec<_>>(),
            t.iter().collect::<Vec<_>>()
        );
        let json: serde_json::Value =
            serde_json::from_slice(&fs::read(LeaseTable::path(dir.path())).unwrap()).unwrap();
        assert_eq!(json["version"], 1);
        assert_eq!(json["leases"][0]["mac"], "00:11:22:33:44:11");
        assert_eq!(json["leases"][0]["ip"], "172.24.213.4");
        assert_eq!(json["leases"][0]["expires"], 1_790_000_000u64);
        assert_eq!(json["leases"][0]["reserved"], true);
        assert_eq!(json["leases"][1]["reserved"], false);
        // No temporary file is left behind.
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from(LeaseTable::FILE_NAME)]);
    }

    #[test]
    fn missing_file_is_empty_and_corrupt_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        assert!(LeaseTable::load(dir.path()).unwrap().is_empty());
        fs::write(
            LeaseTable::path(dir.path()),
            b"{\"version\":1,\"leases\":[{",
        )
        .unwrap();
        let err = LeaseTable::load(dir.path()).unwrap_err();
        assert!(matches!(err, DhcpError::LeaseFormat { .. }), "{err}");
        fs::write(
            LeaseTable::path(dir.path()),
            b"{\"version\":9,\"leases\":[]}",
        )
        .unwrap();
        assert!(LeaseTable::load(dir.path()).is_err());
    }

    #[test]
    fn an_address_has_one_holder() {
        let mut t = LeaseTable::new();
        t.insert(lease(1, [10, 0, 0, 5], 10));
        let g = t.generation();
        t.insert(lease(1, [10, 0, 0, 5], 10));
        assert_eq!(t.generation(), g, "identical insert is not a change");
        t.insert(lease(2, [10, 0, 0, 5], 20));
        assert!(t.get(mac(1)).is_none());
        assert_eq!(t.by_ip(Ipv4Addr::new(10, 0, 0, 5)).unwrap().mac, mac(2));
        t.insert(lease(2, [10, 0, 0, 6], 20));
        assert!(t.by_ip(Ipv4Addr::new(10, 0, 0, 5)).is_none());
        assert_eq!(t.remove(mac(2)).unwrap().ip, Ipv4Addr::new(10, 0, 0, 6));
        assert!(t.is_empty());
    }

    #[test]
    fn activity_follows_expiry() {
        let l = lease(1, [10, 0, 0, 5], 100);
        assert!(l.is_active(UNIX_EPOCH + Duration::from_secs(99)));
        assert!(!l.is_active(UNIX_EPOCH + Duration::from_secs(100)));
        assert_eq!(l.expires_at(), UNIX_EPOCH + Duration::from_secs(100));
    }
}
