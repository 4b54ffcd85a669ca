//! A simulated rack as a service (what `racker sim up` and `racker demo`
//! run): a nodes.csv generated for N nodes, one BMC address per node on
//! loopback, `MAC=KIND` fault flags, the marker and files that let other
//! racker commands find the running rack, and the loop that keeps
//! `sim-status.json` current until shutdown (docs/simulator.md).

use std::collections::BTreeMap;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use racker_inventory::{Inventory, MacAddr, NODES_CSV_HEADER};

use crate::firmware::{
    BmcAccess, Firmware, FirmwareConfig, FirmwareFault, FirmwareFaults, HttpClient, NodeFault,
};
use crate::{
    BMC_TABLE_FILE, BmcTable, Error, Fault, Faults, NodeSpec, Password, STATUS_FILE, SimRack,
    StatusFile, format_mac, write_json_atomic,
};

/// The marker `racker sim up` and `racker demo` leave in the state
/// directory while their simulated rack runs: the process id, which must
/// also be the BMC table's.
pub const SIMULATED_RACK_MARKER: &str = "sim-rack.pid";

/// The kinds a `--fault` flag accepts, for error messages.
const FAULT_KINDS: &str = "expected unreachable, wrong-password, fan-fail, loss:PERCENT, \
     latency:DURATION, or (with --pxe-dhcp) no-lease, download-fail, install-fail, hang, no-os-up";

/// A nodes.csv of `count` generated nodes (the first is the management
/// node): MACs `02:52:4b:<column>:<hi>:<lo>`, locally administered.
pub fn generated_nodes_csv(count: usize) -> String {
    let mut csv = format!("{NODES_CSV_HEADER}\n");
    for i in 0..count {
        let (hi, lo) = ((i >> 8) as u8, i as u8);
        let mac = |col: u8| format_mac([0x02, 0x52, 0x4B, col, hi, lo]);
        let comment = if i == 0 { "mgmt node" } else { "simulated" };
        csv.push_str(&format!(
            "{}, {}, {}, sim, {comment}\n",
            mac(0),
            mac(1),
            mac(2)
        ));
    }
    csv
}

/// The address of BMC number `index` under `bind`: three octets give one
/// loopback address per BMC (.2 to .254 of every /24, then the next /24),
/// a full address gives every BMC that address with consecutive ports
/// from `port` (0 = any).
pub fn bmc_address(bind: &str, port: u16, index: usize) -> Result<SocketAddr, Error> {
    let refuse = |reason: String| Error::AddressPlan {
        prefix: bind.to_owned(),
        count: index.saturating_add(1),
        reason,
    };
    let octets: Vec<&str> = bind.split('.').collect();
    let parse = |s: &str| {
        s.parse::<u8>()
            .map_err(|_| refuse(format!("{s:?} is not an octet")))
    };
    let addr = match octets.as_slice() {
        [a, b, c] => {
            let base = u32::from(Ipv4Addr::new(parse(a)?, parse(b)?, parse(c)?, 0));
            // Skip .0, .1 and .255 of every /24.
            let per = 253u32;
            let i = u32::try_from(index).map_err(|_| refuse("too many BMCs".to_owned()))?;
            let ip = base
                .checked_add((i / per) * 256 + 2 + i % per)
                .ok_or_else(|| refuse("addresses run past 255.255.255.255".to_owned()))?;
            SocketAddr::new(IpAddr::V4(Ipv4Addr::from(ip)), port)
        }
        [_, _, _, _] => {
            let ip: Ipv4Addr = bind
                .parse()
                .map_err(|e| refuse(format!("not an IPv4 address: {e}")))?;
            let port = if port == 0 {
                0
            } else {
                u16::try_from(usize::from(port) + index)
                    .map_err(|_| refuse("port range exceeds 65535".to_owned()))?
            };
            SocketAddr::new(IpAddr::V4(ip), port)
        }
        _ => {
            return Err(refuse(
                "give three octets (127.24.213) or one address (127.0.0.1)".to_owned(),
            ));
        }
    };
    if !addr.ip().is_loopback() {
        return Err(refuse(
            "the simulator only listens on loopback addresses (127.0.0.0/8)".to_owned(),
        ));
    }
    Ok(addr)
}

/// One `--fault MAC=KIND` flag: a BMC or firmware fault of the node with
/// that MAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FaultSpec {
    /// A MAC of the node (primary, BMC or secondary).
    pub mac: MacAddr,
    /// What goes wrong.
    pub fault: NodeFault,
}

impl FromStr for FaultSpec {
    type Err = Error;

    fn from_str(spec: &str) -> Result<Self, Error> {
        let invalid = |reason: String| Error::InvalidFault {
            spec: spec.to_owned(),
            reason,
        };
        let (mac, kind) = spec
            .split_once('=')
            .ok_or_else(|| invalid("expected MAC=KIND".to_owned()))?;
        let mac: MacAddr = mac
            .trim()
            .parse()
            .map_err(|e| invalid(format!("bad MAC: {e}")))?;
        let fault = kind
            .trim()
            .parse()
            .map_err(|_| invalid(format!("{:?}: {FAULT_KINDS}", kind.trim())))?;
        Ok(FaultSpec { mac, fault })
    }
}

/// Fault flags split into the BMCs' and the firmware's, by the MAC given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SplitFaults {
    /// BMC faults, in the order given.
    pub bmc: Vec<(MacAddr, Fault)>,
    /// Firmware faults, in the order given.
    pub firmware: Vec<(MacAddr, FirmwareFault)>,
}

impl SplitFaults {
    /// Split `specs`.
    pub fn of(specs: &[FaultSpec]) -> Self {
        let mut split = SplitFaults::default();
        for spec in specs {
            match spec.fault {
                NodeFault::Bmc(b) => split.bmc.push((spec.mac, b)),
                NodeFault::Firmware(w) => split.firmware.push((spec.mac, w)),
            }
        }
        split
    }

    /// The BMC faults of the node that has the MACs `has_mac` accepts, merged.
    pub fn bmc_of(&self, has_mac: impl Fn(MacAddr) -> bool) -> Faults {
        let mut faults = Faults::default();
        for (mac, fault) in &self.bmc {
            if has_mac(*mac) {
                faults.apply(*fault);
            }
        }
        faults
    }

    /// The firmware faults of that node, merged (`None`
    /// when it has none).
    pub fn firmware_of(&self, has_mac: impl Fn(MacAddr) -> bool) -> Option<FirmwareFaults> {
        let mut faults: Option<FirmwareFaults> = None;
        for (mac, fault) in &self.firmware {
            if has_mac(*mac) {
                faults
                    .get_or_insert_with(FirmwareFaults::default)
                    .apply(*fault);
            }
        }
        faults
    }
}

/// Firmware faults by primary MAC.
pub type FirmwareFaultsByMac = BTreeMap<[u8; 6], FirmwareFaults>;

/// One simulated BMC per node of `inventory`, at [`bmc_address`]`(bind,
/// port, row)`, with its faults; and the firmware faults by primary MAC.
/// A fault naming a MAC no node has is refused.
pub fn node_specs(
    inventory: &Inventory,
    bind: &str,
    port: u16,
    faults: &SplitFaults,
) -> Result<(Vec<NodeSpec>, FirmwareFaultsByMac), Error> {
    let mut specs = Vec::new();
    let mut firmware = BTreeMap::new();
    for (i, node) in inventory.nodes().iter().enumerate() {
        if let Some(f) = faults.firmware_of(|mac| node.has_mac(mac)) {
            firmware.insert(node.primary_mac.octets(), f);
        }
        specs.push(
            NodeSpec::new(node.bmc_mac.octets(), bmc_address(bind, port, i)?)
                .primary_mac(node.primary_mac.octets())
                .faults(faults.bmc_of(|mac| node.has_mac(mac))),
        );
    }
    for mac in faults
        .bmc
        .iter()
        .map(|f| f.0)
        .chain(faults.firmware.iter().map(|f| f.0))
    {
        if inventory.find_by_mac(mac).is_none() {
            return Err(Error::UnknownMac { mac });
        }
    }
    Ok((specs, firmware))
}

/// The BMCs' default UDP port: IPMI's 623 when this process runs as root
/// (effective user 0), else 6230.
pub fn default_ipmi_port() -> u16 {
    let root = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false);
    if root { 623 } else { 6230 }
}

/// The BMC credentials of a simulated rack from `oem_dir` (`ipmi_user`,
/// `ipmi_password`); missing files are created first with `user` and
/// `password`.
pub fn ensure_credentials(
    oem_dir: &Path,
    user: &str,
    password: &str,
) -> Result<racker_inventory::Credentials, Error> {
    let write = |name: &str, text: &str, mode: u32| {
        let path = oem_dir.join(name);
        if path.exists() {
            return Ok(());
        }
        racker_fsutil::write_atomic(&path, format!("{text}\n").as_bytes(), mode)
            .map_err(|source| Error::Io { path, source })
    };
    write("ipmi_user", user, 0o644)?;
    write("ipmi_password", password, 0o600)?;
    racker_inventory::Credentials::load(oem_dir).map_err(|e| Error::Credentials(Box::new(e)))
}

/// Mark `state_dir` as the state of the simulated rack of process `pid`.
pub fn mark_simulated(state_dir: &Path, pid: u32) -> Result<(), Error> {
    let path = state_dir.join(SIMULATED_RACK_MARKER);
    racker_fsutil::write_atomic(&path, format!("{pid}\n").as_bytes(), 0o644)
        .map_err(|source| Error::Io { path, source })
}

/// The process id of a live simulated rack (a running demo or `racker sim
/// up`) in `state_dir`, other than this process.
pub fn live_rack_pid(state_dir: &Path) -> Option<u32> {
    let pid = marker_pid(state_dir)?;
    (pid != std::process::id() && process_runs(pid)).then_some(pid)
}

fn marker_pid(state_dir: &Path) -> Option<u32> {
    std::fs::read_to_string(state_dir.join(SIMULATED_RACK_MARKER))
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn process_runs(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// The simulator's BMC addresses (`<state-dir>/sim-bmcs.json`) — only
/// while that simulated rack runs: the state directory carries the marker
/// of a live process and the table is that process's. A table without the
/// marker, or one left behind by a simulator that is gone, is ignored, so
/// it never redirects a real rack's IPMI traffic. Empty when there is no
/// simulated rack.
pub fn running_simulator_bmcs(state_dir: &Path) -> BTreeMap<MacAddr, SocketAddr> {
    let Some(pid) = marker_pid(state_dir).filter(|pid| process_runs(*pid)) else {
        return BTreeMap::new();
    };
    match BmcTable::load(state_dir) {
        Ok(t) if t.pid == pid => t.addresses(),
        _ => BTreeMap::new(),
    }
}

impl BmcTable {
    /// The BMC addresses of the table, by BMC MAC.
    pub fn addresses(&self) -> BTreeMap<MacAddr, SocketAddr> {
        self.bmcs
            .iter()
            .filter_map(|b| Some((b.bmc_mac.parse().ok()?, b.ipmi_address)))
            .collect()
    }
}

/// Remove the marker and the files of the simulated rack of `state_dir`
/// (after it stopped): other commands must not look for it any more.
pub fn remove_rack_files(state_dir: &Path) {
    for name in [SIMULATED_RACK_MARKER, BMC_TABLE_FILE, STATUS_FILE] {
        let _ = std::fs::remove_file(state_dir.join(name));
    }
}

/// PXE firmware for every node of a served rack.
#[derive(Debug, Clone)]
pub struct FirmwareSetup {
    /// The netboot server's plain-UDP DHCP address.
    pub dhcp: SocketAddr,
    /// How long each simulated installer takes.
    pub install_delay: Duration,
    /// Firmware faults by primary MAC.
    pub faults: FirmwareFaultsByMac,
}

/// A simulated rack that runs as a service for other processes: its BMC
/// table, live status and marker are in the state directory while it runs
/// (see [`ServedRack::run_until`]).
#[derive(Debug)]
pub struct ServedRack {
    rack: SimRack,
    // Kept alive as long as the rack runs.
    firmware: Vec<Firmware>,
    state_dir: PathBuf,
    table: BmcTable,
    table_path: PathBuf,
    pid: u32,
}

impl ServedRack {
    /// Start the BMCs of `specs` (and with `firmware` their PXE firmware),
    /// write the BMC table, the status file and the marker into
    /// `state_dir`.
    pub async fn start(
        state_dir: &Path,
        specs: Vec<NodeSpec>,
        user: &str,
        password: Password,
        firmware: Option<FirmwareSetup>,
    ) -> Result<Self, Error> {
        let rack = SimRack::start(specs, user, password.clone()).await?;
        let mut spawned = Vec::new();
        if let Some(setup) = firmware {
            let config = FirmwareConfig::new(setup.dhcp)
                .bmc(BmcAccess::Lan {
                    user: user.to_owned(),
                    password,
                })
                .install_delay(setup.install_delay);
            let client = HttpClient::new(&config)?;
            for node in rack.nodes() {
                let Some(mac) = node.primary_mac() else {
                    continue;
                };
                let faults = setup.faults.get(&mac).copied().unwrap_or_default();
                spawned.push(Firmware::spawn_with(
                    node,
                    config.clone().faults(faults),
                    &client,
                )?);
            }
        }
        let pid = std::process::id();
        let table = BmcTable::of(&rack, pid, user);
        write_json_atomic(state_dir, STATUS_FILE, &StatusFile::of(&rack, pid))?;
        let table_path = write_json_atomic(state_dir, BMC_TABLE_FILE, &table)?;
        // Only a state directory with this marker (and this process alive)
        // sends racker's IPMI to the table's addresses.
        mark_simulated(state_dir, pid)?;
        Ok(ServedRack {
            rack,
            firmware: spawned,
            state_dir: state_dir.to_owned(),
            table,
            table_path,
            pid,
        })
    }

    /// The BMC table (every BMC's address).
    pub fn table(&self) -> &BmcTable {
        &self.table
    }

    /// Where the BMC table was written.
    pub fn table_path(&self) -> &Path {
        &self.table_path
    }

    /// How many nodes run PXE firmware.
    pub fn firmware_count(&self) -> usize {
        self.firmware.len()
    }

    /// The running rack.
    pub fn rack(&self) -> &SimRack {
        &self.rack
    }

    /// Keep the status file current (bursts of changes coalesced into one
    /// write; a failed write goes to `on_error`) until `shutdown`
    /// completes or the rack stops; then stop the rack and remove its
    /// files from the state directory.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()>,
        mut on_error: impl FnMut(Error),
    ) {
        let mut events = self.rack.subscribe();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                e = events.recv() => {
                    if let Err(tokio::sync::broadcast::error::RecvError::Closed) = e {
                        break;
                    }
                    while events.try_recv().is_ok() {}
                    let status = StatusFile::of(&self.rack, self.pid);
                    if let Err(err) = write_json_atomic(&self.state_dir, STATUS_FILE, &status) {
                        on_error(err);
                    }
                }
            }
        }
        drop(self.firmware);
        self.rack.shutdown().await;
        remove_rack_files(&self.state_dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_skip_network_and_broadcast() {
        assert_eq!(
            bmc_address("127.24.213", 6230, 0).unwrap(),
            "127.24.213.2:6230".parse().unwrap()
        );
        assert_eq!(
            bmc_address("127.24.213", 6230, 252).unwrap(),
            "127.24.213.254:6230".parse().unwrap()
        );
        assert_eq!(
            bmc_address("127.24.213", 6230, 253).unwrap(),
            "127.24.214.2:6230".parse().unwrap()
        );
        assert_eq!(
            bmc_address("127.0.0.1", 7000, 3).unwrap(),
            "127.0.0.1:7003".parse().unwrap()
        );
        assert!(bmc_address("10.0.0", 623, 0).is_err());
        assert!(bmc_address("127.0", 623, 0).is_err());
        assert!(bmc_address("127.0.0.1", 65535, 1).is_err());
        assert!(bmc_address("127.255.255", 1, 100_000).is_err());
    }

    #[test]
    fn credentials_are_created_once() {
        let dir = tempfile::tempdir().unwrap();
        let creds = ensure_credentials(dir.path(), "ADMIN", "secret").unwrap();
        assert_eq!(creds.user, "ADMIN");
        assert_eq!(creds.password.expose(), "secret");
        let again = ensure_credentials(dir.path(), "OTHER", "other").unwrap();
        assert_eq!(again.user, "ADMIN");
        assert!([623, 6230].contains(&default_ipmi_port()));
    }

    #[test]
    fn generated_inventory_parses() {
        let csv = generated_nodes_csv(300);
        let inv = Inventory::parse("gen", csv.as_bytes()).unwrap();
        assert_eq!(inv.nodes().len(), 300);
        assert_eq!(inv.nodes()[299].bmc_mac.to_string(), "02:52:4b:01:01:2b");
    }

    #[test]
    fn fault_flags() {
        let f: FaultSpec = "02:52:4B:01:00:01=loss:25".parse().unwrap();
        assert_eq!(f.mac.to_string(), "02:52:4b:01:00:01");
        assert_eq!(f.fault, NodeFault::Bmc(Fault::PacketLoss(25)));
        assert!("02:52:4b:01:00:01".parse::<FaultSpec>().is_err());
        assert!("nope=unreachable".parse::<FaultSpec>().is_err());
        let err = "02:52:4b:01:00:01=fire".parse::<FaultSpec>().unwrap_err();
        assert!(err.to_string().contains("invalid fault"), "{err}");
    }

    #[test]
    fn faults_go_to_the_node_with_the_mac() {
        let inv = Inventory::parse("gen", generated_nodes_csv(3).as_bytes()).unwrap();
        let specs: Vec<FaultSpec> = ["02:52:4b:01:00:01=unreachable", "02:52:4b:00:00:02=hang"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let split = SplitFaults::of(&specs);
        let (nodes, firmware) = node_specs(&inv, "127.0.0.1", 0, &split).unwrap();
        assert_eq!(nodes.len(), 3);
        assert_eq!(firmware.len(), 1);
        assert!(firmware.contains_key(&[0x02, 0x52, 0x4b, 0, 0, 2]));
        let unknown = SplitFaults::of(&["02:00:00:00:00:09=unreachable".parse().unwrap()]);
        assert!(matches!(
            node_specs(&inv, "127.0.0.1", 0, &unknown),
            Err(Error::UnknownMac { .. })
        ));
    }

    fn write_table(state: &Path, pid: u32) {
        std::fs::create_dir_all(state).unwrap();
        let table = BmcTable {
            pid,
            user: "USER".into(),
            bmcs: vec![crate::BmcEntry {
                bmc_mac: "02:00:00:02:00:00".into(),
                primary_mac: Some("02:00:00:01:00:00".into()),
                ipmi_address: "127.0.0.1:6230".parse().unwrap(),
            }],
        };
        write_json_atomic(state, BMC_TABLE_FILE, &table).unwrap();
    }

    #[test]
    fn a_stale_simulator_table_never_redirects_ipmi() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path();
        let me = std::process::id();
        // A real state directory with a simulator's table left in it (even
        // one naming a live process): no marker, so no redirection.
        write_table(state, me);
        assert!(running_simulator_bmcs(state).is_empty());
        // A marker whose process is gone (a simulator that crashed).
        let gone = u32::try_from(i32::MAX).unwrap();
        write_table(state, gone);
        mark_simulated(state, gone).unwrap();
        assert!(running_simulator_bmcs(state).is_empty());
        assert_eq!(live_rack_pid(state), None);
        // A marker of a live process that is not the table's.
        mark_simulated(state, me).unwrap();
        assert!(running_simulator_bmcs(state).is_empty());
        // This process's own marker is not "another live rack".
        assert_eq!(live_rack_pid(state), None);
        // The running simulator's own table: used.
        write_table(state, me);
        let bmcs = running_simulator_bmcs(state);
        assert_eq!(
            bmcs.get(&"02:00:00:02:00:00".parse().unwrap()),
            Some(&"127.0.0.1:6230".parse().unwrap())
        );
        remove_rack_files(state);
        assert!(running_simulator_bmcs(state).is_empty());
    }
}
