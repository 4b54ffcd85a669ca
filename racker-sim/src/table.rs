//! Files a running simulated rack leaves in the state directory so other
//! processes (`racker ipmi`, `racker sim status`, ipmitool users) find it.
//!
//! * [`BMC_TABLE_FILE`] (`sim-bmcs.json`): written once at start-up,
//!   removed on a clean stop: `{"pid": 1234, "user": "USER", "bmcs":
//!   [{"bmc_mac": "02:52:4b:01:00:00", "primary_mac": "02:52:4b:00:00:00",
//!   "ipmi_address": "127.24.213.2:6230"}, ...]}`.
//! * [`STATUS_FILE`] (`sim-status.json`): rewritten atomically (temporary
//!   file + rename) after every power or boot-flag change: `{"pid": 1234,
//!   "nodes": [NodeStatus, ...]}`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::Error;
use racker_inventory::MacAddr;

use crate::rack::NodeSnapshot;

/// File name of the BMC table inside the state directory.
pub const BMC_TABLE_FILE: &str = "sim-bmcs.json";
/// File name of the live status snapshot inside the state directory.
pub const STATUS_FILE: &str = "sim-status.json";

/// One simulated BMC and where it listens.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BmcEntry {
    /// BMC MAC, lower-case colon form.
    pub bmc_mac: String,
    /// Primary MAC of the server, when known.
    pub primary_mac: Option<String>,
    /// `IP:PORT` of the BMC.
    pub ipmi_address: SocketAddr,
}

/// The table of a running simulated rack.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BmcTable {
    /// Process id of `racker sim up`.
    pub pid: u32,
    /// IPMI user name of every BMC (the password is in the OEM directory).
    pub user: String,
    /// Every BMC.
    pub bmcs: Vec<BmcEntry>,
}

/// One node's state as `racker sim status` reports it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NodeStatus {
    /// BMC MAC.
    pub bmc_mac: String,
    /// Primary MAC (empty string when unknown).
    pub primary_mac: String,
    /// `IP:PORT` of the BMC.
    pub ipmi_address: String,
    /// Power, boot flags, sessions and faults.
    #[serde(flatten)]
    pub chassis: ChassisState,
}

/// What a simulated node's BMC reports of its chassis: one node of
/// `sim-status.json` and of `racker sim status -o json` (flattened into
/// both).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChassisState {
    /// `"on"` or `"off"`.
    pub power: String,
    /// Device a boot would use now: the override when its valid bit is set
    /// (`"pxe"`, `"disk"`, ...), else `"none"`.
    pub boot_device: String,
    /// The override applies to all future boots.
    pub persistent: bool,
    /// The override asks for EFI boot.
    pub efi: bool,
    /// Boot-flag-valid bit.
    pub boot_valid: bool,
    /// All five bytes of boot parameter 5, hex.
    pub boot_flags: String,
    /// Parameter 3 (`1f` = valid bit never cleared automatically), hex.
    pub boot_flag_clearing: String,
    /// Established IPMI sessions.
    pub sessions: usize,
    /// Injected faults, in `--fault` syntax.
    pub faults: Vec<String>,
}

impl From<&NodeSnapshot> for NodeStatus {
    fn from(s: &NodeSnapshot) -> Self {
        let f = &s.boot_flags;
        let mut faults = Vec::new();
        if s.faults.unreachable {
            faults.push("unreachable".to_owned());
        }
        if s.faults.wrong_credentials {
            faults.push("wrong-password".to_owned());
        }
        if s.faults.loss_percent > 0 {
            faults.push(format!("loss:{}", s.faults.loss_percent));
        }
        if !s.faults.latency.is_zero() {
            faults.push(format!("latency:{}ms", s.faults.latency.as_millis()));
        }
        if s.faults.fan_fail {
            faults.push("fan-fail".to_owned());
        }
        NodeStatus {
            bmc_mac: MacAddr::new(s.bmc_mac).to_string(),
            primary_mac: s
                .primary_mac
                .map(|m| MacAddr::new(m).to_string())
                .unwrap_or_default(),
            ipmi_address: s.ipmi_addr.to_string(),
            chassis: ChassisState {
                power: if s.power_on { "on" } else { "off" }.to_owned(),
                boot_device: if f.valid {
                    f.device.to_string()
                } else {
                    "none".to_owned()
                },
                persistent: f.persistent,
                efi: f.efi,
                boot_valid: f.valid,
                boot_flags: f.raw.iter().map(|b| format!("{b:02x}")).collect(),
                boot_flag_clearing: format!("{:02x}", s.boot_flag_clearing),
                sessions: s.active_sessions,
                faults,
            },
        }
    }
}

/// The status snapshot file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StatusFile {
    /// Process id of `racker sim up`.
    pub pid: u32,
    /// Every node.
    pub nodes: Vec<NodeStatus>,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_owned(),
        source,
    }
}

/// Write `value` as pretty JSON to `dir/name` atomically and durably.
pub fn write_json_atomic<T: serde::Serialize>(
    dir: &Path,
    name: &str,
    value: &T,
) -> Result<PathBuf, Error> {
    let path = dir.join(name);
    let mut text = serde_json::to_string_pretty(value).map_err(|source| Error::Json {
        path: path.clone(),
        source,
    })?;
    text.push('\n');
    racker_fsutil::write_atomic(&path, text.as_bytes(), 0o644).map_err(io_err(&path))?;
    Ok(path)
}

/// Read JSON from `dir/name`.
pub fn read_json<T: serde::de::DeserializeOwned>(dir: &Path, name: &str) -> Result<T, Error> {
    let path = dir.join(name);
    let text = std::fs::read(&path).map_err(io_err(&path))?;
    serde_json::from_slice(&text).map_err(|source| Error::Json { path, source })
}

impl StatusFile {
    /// A snapshot of every node of `rack`, written by process `pid`.
    pub fn of(rack: &crate::SimRack, pid: u32) -> Self {
        let nodes = rack
            .nodes()
            .iter()
            .map(|n| NodeStatus::from(&n.snapshot()))
            .collect();
        StatusFile { pid, nodes }
    }
}

impl BmcTable {
    /// The table of a running `rack` (process `pid`, IPMI user `user`).
    pub fn of(rack: &crate::SimRack, pid: u32, user: &str) -> Self {
        BmcTable {
            pid,
            user: user.to_owned(),
            bmcs: rack
                .nodes()
                .iter()
                .map(|n| BmcEntry {
                    bmc_mac: MacAddr::new(n.bmc_mac()).to_string(),
                    primary_mac: n.primary_mac().map(|m| MacAddr::new(m).to_string()),
                    ipmi_address: n.ipmi_addr(),
                })
                .collect(),
        }
    }

    /// Load `state_dir/sim-bmcs.json`.
    pub fn load(state_dir: &Path) -> Result<Self, Error> {
        read_json(state_dir, BMC_TABLE_FILE)
    }

    /// Address of the BMC with this MAC (lower-case colon form or any
    /// accepted spelling).
    pub fn address_of(&self, bmc_mac: &str) -> Option<SocketAddr> {
        let want: MacAddr = bmc_mac.parse().ok()?;
        self.bmcs
            .iter()
            .find(|b| b.bmc_mac.parse::<MacAddr>().ok() == Some(want))
            .map(|b| b.ipmi_address)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_round_trip_and_lookup() {
        let dir = tempfile::tempdir().unwrap();
        let table = BmcTable {
            pid: 1,
            user: "USER".into(),
            bmcs: vec![BmcEntry {
                bmc_mac: "02:00:00:00:00:01".into(),
                primary_mac: None,
                ipmi_address: "127.0.0.2:6230".parse().unwrap(),
            }],
        };
        write_json_atomic(dir.path(), BMC_TABLE_FILE, &table).unwrap();
        let back = BmcTable::load(dir.path()).unwrap();
        assert_eq!(back, table);
        assert_eq!(
            back.address_of("02-00-00-00-00-01"),
            Some("127.0.0.2:6230".parse().unwrap())
        );
        assert_eq!(back.address_of("02:00:00:00:00:02"), None);
        let raw: serde_json::Value = read_json(dir.path(), BMC_TABLE_FILE).unwrap();
        assert_eq!(raw["bmcs"][0]["ipmi_address"], "127.0.0.2:6230");
        assert!(matches!(
            BmcTable::load(&dir.path().join("nope")),
            Err(Error::Io { .. })
        ));
    }
}
