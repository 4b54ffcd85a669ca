//! The demo rack (`racker demo`, feature `demo`): a whole rack on this
//! machine — simulated BMCs on loopback and simulated PXE firmware booting
//! from racker's netboot server — for a real bootstrap to provision
//! (docs/simulator.md).
//!
//! [`write_demo_rack`] writes the rack's inputs into a folder,
//! [`DemoRack::start`] starts the BMCs and the firmware,
//! [`DemoRack::bootstrap`] provisions them as `racker demo` does (or the
//! caller runs its own [`crate::bootstrap`] against [`DemoRack::dhcp`] and
//! [`DemoRack::http`] with [`DemoRack::bmcs`] as BMC overrides),
//! [`DemoRack::status`] collects what `racker status` shows, and then the
//! caller either [`DemoRack::stop`]s the rack or
//! [`DemoRack::keep_running`] it with racker's netboot server and the rack
//! view.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use racker_inventory::{MacAddr, PlanOptions, Provision, SelectionOptions};
use racker_netboot::service::{DhcpListen, NetbootService};
use racker_sim::firmware::{BmcAccess, Firmware, FirmwareConfig, HttpClient};
use racker_sim::{FaultSpec, NodeSpec, Password, SimRack, SplitFaults};

pub use crate::demo_text::{DemoFolder, DemoText, choose_dir, human_duration};
use crate::fsutil::write_atomic;
use crate::{
    BmcResolver, BootstrapState, Config, Error, Event, EventSink, FailurePolicy, NetbootEndpoints,
    NetbootMode, NodeState, Rack, RackStatusOptions, RackStatusWriter, Report, Result, StateFile,
    StatusOptions, StatusReport,
};

/// The IPMI user of every demo BMC.
pub const DEMO_USER: &str = "USER";
/// The IPMI password of every demo BMC.
pub const DEMO_PASSWORD: &str = "PASS";

/// The folders of a demo rack in its directory: `oem`, `state`, `net`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoDirs {
    /// nodes.csv and the BMC credentials (`DIR/oem`).
    pub oem_dir: PathBuf,
    /// racker's state (`DIR/state`).
    pub state_dir: PathBuf,
    /// The management node's interfaces (`DIR/net`).
    pub sys_class_net: PathBuf,
}

impl DemoDirs {
    /// The folders inside `dir`.
    pub fn in_dir(dir: &Path) -> Self {
        Self {
            oem_dir: dir.join("oem"),
            state_dir: dir.join("state"),
            sys_class_net: dir.join("net"),
        }
    }

    /// The folder names a demo directory may hold.
    pub const LEAVES: [&'static str; 3] = ["oem", "state", "net"];
}

/// MACs (primary, BMC, secondary) of demo node `i`; the management node is
/// `None`.
pub fn demo_macs(i: Option<usize>) -> [MacAddr; 3] {
    let (hi, lo) = match i {
        None => (0xff, 0xff),
        Some(i) => ((i >> 8) as u8, i as u8),
    };
    [1u8, 2, 3].map(|kind| MacAddr::new([0x02, 0, 0, kind, hi, lo]))
}

/// The rack-internal network of a demo of `nodes` nodes: the subnet
/// prefix and prefix length that fit them.
pub fn demo_network(nodes: usize) -> (&'static str, u8) {
    if nodes <= 63 {
        ("172.24.213", 24)
    } else if nodes <= 447 {
        ("172.24.212", 22)
    } else {
        ("172.24.192", 18)
    }
}

/// Write the demo rack's inputs into `dir`: nodes.csv, credentials, the
/// management node's interfaces, and small stand-ins for Flatcar's PXE
/// kernel, initrd, image and signature.
pub fn write_demo_rack(dir: &Path, nodes: usize) -> Result<DemoDirs> {
    let dirs = DemoDirs::in_dir(dir);
    let mut csv = String::from(racker_inventory::NODES_CSV_HEADER);
    csv.push('\n');
    let [p, b, s] = demo_macs(None);
    csv.push_str(&format!("{p}, {b}, {s}, mgmt, management node\n"));
    for i in 0..nodes {
        let [p, b, s] = demo_macs(Some(i));
        let kind = if i % 2 == 0 { "red" } else { "purple" };
        csv.push_str(&format!("{p}, {b}, {s}, {kind}, simulated node {i}\n"));
    }
    write_atomic(&dirs.oem_dir.join("nodes.csv"), csv.as_bytes(), 0o644)?;
    write_atomic(
        &dirs.oem_dir.join("ipmi_user"),
        format!("{DEMO_USER}\n").as_bytes(),
        0o644,
    )?;
    write_atomic(
        &dirs.oem_dir.join("ipmi_password"),
        format!("{DEMO_PASSWORD}\n").as_bytes(),
        0o600,
    )?;
    for (name, mac) in [("eth0", p), ("eth1", s)] {
        write_atomic(
            &dirs.sys_class_net.join(name).join("address"),
            format!("{mac}\n").as_bytes(),
            0o644,
        )?;
    }
    let assets = dirs
        .state_dir
        .join("assets")
        .join("flatcar")
        .join("current");
    for (name, size) in [
        (racker_netboot::matchbox::PXE_KERNEL, 256 * 1024),
        (racker_netboot::matchbox::PXE_INITRD, 1024 * 1024),
        // What flatcar-install fetches (the simulated installer does not).
        ("flatcar_production_image.bin.bz2", 4096),
        ("flatcar_production_image.bin.bz2.sig", 64),
    ] {
        let path = assets.join(name);
        if !path.exists() {
            let bytes: Vec<u8> = (0..size).map(|i: usize| (i % 251) as u8).collect();
            write_atomic(&path, &bytes, 0o644)?;
        }
    }
    Ok(dirs)
}

/// What [`prepare_dir`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Prepared {
    /// A new folder, or one without an earlier bootstrap.
    Fresh,
    /// An earlier demo's bootstrap is resumed (installed nodes stay
    /// installed).
    Resumed,
    /// The default folder held an earlier demo's rack, which was cleared.
    Cleared,
}

/// Make `dir` ready for a demo: refuse one a live simulated rack uses; the
/// default folder (`default`) is cleared when it holds only a demo's
/// folders, an explicit one is resumed.
pub fn prepare_dir(dir: &Path, default: bool) -> Result<Prepared> {
    let dirs = DemoDirs::in_dir(dir);
    if let Some(pid) = racker_sim::live_rack_pid(&dirs.state_dir) {
        return Err(Error::DemoDir {
            dir: dir.to_owned(),
            reason: format!(
                "a simulated rack (pid {pid}) is running in {}: stop it (Ctrl-C in its terminal, or kill -INT {pid}) or pass another --dir",
                dir.display()
            ),
        });
    }
    if !default || !dir.exists() {
        return Ok(if dirs.state_dir.join("bootstrap.json").exists() {
            Prepared::Resumed
        } else {
            Prepared::Fresh
        });
    }
    let foreign: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| Error::io("reading", dir, e))?
        .filter_map(std::result::Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !DemoDirs::LEAVES.contains(&n.as_str()))
        .collect();
    if !foreign.is_empty() {
        return Err(Error::DemoDir {
            dir: dir.to_owned(),
            reason: format!(
                "{} holds more than a demo rack ({}); pass --dir",
                dir.display(),
                foreign.join(", ")
            ),
        });
    }
    std::fs::remove_dir_all(dir).map_err(|e| Error::io("clearing", dir, e))?;
    Ok(Prepared::Cleared)
}

/// How the demo's simulated nodes behave.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DemoOptions {
    /// Number of nodes (the management node comes on top).
    pub nodes: usize,
    /// How long each simulated installer "writes the disk".
    pub install_delay: Duration,
    /// Node i's installer takes (i + 1) times `install_delay` instead.
    pub stagger: bool,
    /// Injected faults, by primary MAC.
    pub faults: Vec<FaultSpec>,
}

impl DemoOptions {
    /// `nodes` nodes, the other options at `racker demo`'s defaults.
    pub fn new(nodes: usize) -> Self {
        Self {
            nodes,
            install_delay: Duration::from_millis(300),
            stagger: false,
            faults: Vec::new(),
        }
    }
}

/// How the demo's bootstrap runs (the options `racker demo` passes on).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DemoBootstrap {
    /// The demo folder (the Lokomotive hosts file and kubeconfig link go
    /// there, never the machine's).
    pub dir: PathBuf,
    /// Install a Lokomotive cluster (`lokoctl` from PATH or
    /// `RACKER_LOKOCTL`) instead of plain Flatcar.
    pub lokomotive: bool,
    /// Nodes to leave out (primary, BMC or secondary MACs).
    pub exclude: Vec<MacAddr>,
    /// How many times failed nodes may be retried (default: 1).
    pub retries: u32,
    /// Installed to OS up, per node (default: 30 s).
    pub os_timeout: Duration,
    /// Lokomotive: every node Ready (default: 60 s).
    pub join_timeout: Duration,
    /// Render for a Lokomotive older than v0.9.
    pub old_lokomotive: bool,
}

impl DemoBootstrap {
    /// A Flatcar bootstrap of the demo in `dir` with `racker demo`'s
    /// defaults.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            lokomotive: false,
            exclude: Vec::new(),
            retries: 1,
            os_timeout: Duration::from_secs(30),
            join_timeout: Duration::from_secs(60),
            old_lokomotive: false,
        }
    }
}

/// A running demo rack: simulated BMCs on loopback, each node's firmware,
/// and the loopback addresses a bootstrap's netboot services must use.
#[derive(Debug)]
pub struct DemoRack {
    dirs: DemoDirs,
    nodes: usize,
    rack: SimRack,
    // The firmware runs as long as these live.
    firmware: Vec<Firmware>,
    dhcp: SocketAddr,
    http: SocketAddr,
    bmcs: BTreeMap<MacAddr, SocketAddr>,
}

fn free_udp_port() -> Result<SocketAddr> {
    std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|s| s.local_addr())
        .map_err(|e| Error::io("finding a free UDP port on", "127.0.0.1", e))
}

fn free_tcp_port() -> Result<SocketAddr> {
    std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|s| s.local_addr())
        .map_err(|e| Error::io("finding a free TCP port on", "127.0.0.1", e))
}

impl DemoRack {
    /// Start the simulated BMCs (one UDP port each on loopback) and every
    /// node's firmware; the BMC table and the simulated-rack marker go into
    /// the state directory, so `racker status` finds the BMCs while the
    /// rack runs.
    pub async fn start(dirs: &DemoDirs, options: &DemoOptions) -> Result<Self> {
        let faults = SplitFaults::of(&options.faults);
        let mut specs = Vec::new();
        for i in 0..options.nodes {
            let [p, b, _] = demo_macs(Some(i));
            let spec = NodeSpec::new(b.octets(), SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
                .primary_mac(p.octets())
                .faults(faults.bmc_of(|mac| mac == p));
            specs.push(spec);
        }
        let password = Password::new(DEMO_PASSWORD);
        let rack = SimRack::start(specs, DEMO_USER, password.clone()).await?;
        let pid = std::process::id();
        let table = racker_sim::BmcTable::of(&rack, pid, DEMO_USER);
        racker_sim::write_json_atomic(&dirs.state_dir, racker_sim::BMC_TABLE_FILE, &table)?;
        racker_sim::mark_simulated(&dirs.state_dir, pid)?;
        let bmcs = table.addresses();

        // Netboot endpoints on loopback, and each node's firmware.
        let dhcp = free_udp_port()?;
        let http = free_tcp_port()?;
        let config = FirmwareConfig::new(dhcp)
            .bmc(BmcAccess::Lan {
                user: DEMO_USER.into(),
                password,
            })
            .install_delay(options.install_delay);
        let client = HttpClient::new(&config).map_err(racker_sim::Error::from)?;
        // The simulated disks live only as long as this process: resuming
        // in an existing folder, nodes the report store knows as installed
        // get their OS back, installed from this run's netboot server (a
        // new port each run; a real server's address is stable).
        let reports = racker_netboot::report::ReportStore::open(&dirs.state_dir)?;
        let base_url = format!("http://{http}");
        let mut firmware = Vec::new();
        for (i, node) in rack.nodes().iter().enumerate() {
            let mut cfg = config.clone();
            if options.stagger {
                let factor = u32::try_from(i + 1).unwrap_or(u32::MAX);
                cfg = cfg.install_delay(options.install_delay.saturating_mul(factor));
            }
            let primary = node.primary_mac().map(MacAddr::new);
            if let Some(f) = primary.and_then(|mac| faults.firmware_of(|m| m == mac)) {
                cfg = cfg.faults(f);
            }
            if let Some(mac) = primary.filter(|mac| reports.is_installed(*mac)) {
                // The installed OS reports with the token of its Ignition.
                let key = racker_netboot::report::ReportKey::load_or_create(&dirs.state_dir)?;
                cfg = cfg.installed_from(format!("{base_url}/?token={}", key.token(mac)));
            }
            firmware
                .push(Firmware::spawn_with(node, cfg, &client).map_err(racker_sim::Error::from)?);
        }
        Ok(Self {
            dirs: dirs.clone(),
            nodes: options.nodes,
            rack,
            firmware,
            dhcp,
            http,
            bmcs,
        })
    }

    /// The plain-UDP DHCP address the firmware asks (the bootstrap's
    /// `dhcp_listen`).
    pub fn dhcp(&self) -> SocketAddr {
        self.dhcp
    }

    /// The HTTP address the bootstrap's netboot server must listen on.
    pub fn http(&self) -> SocketAddr {
        self.http
    }

    /// The simulated BMCs' addresses by BMC MAC (the bootstrap's BMC
    /// overrides).
    pub fn bmcs(&self) -> &BTreeMap<MacAddr, SocketAddr> {
        &self.bmcs
    }

    /// The demo's folders.
    pub fn dirs(&self) -> &DemoDirs {
        &self.dirs
    }

    /// The address plan's options: the network of [`demo_network`].
    pub fn plan_options(&self) -> PlanOptions {
        let (subnet_prefix, prefix_len) = demo_network(self.nodes);
        PlanOptions {
            subnet_prefix: subnet_prefix.to_owned(),
            prefix_len,
        }
    }

    /// The demo rack as loaded from its folders.
    pub fn load_rack(&self) -> Result<Rack> {
        Rack::load(
            &self.dirs.oem_dir.join("nodes.csv"),
            &self.dirs.sys_class_net,
            &self.plan_options(),
        )
    }

    /// The configuration of the demo's bootstrap: `racker bootstrap`'s
    /// defaults with the demo's netboot addresses and BMCs, short timeouts,
    /// and the Lokomotive names and kubeconfig inside the demo folder. The
    /// management SSH key pair is created on first use (said through
    /// `events`, as are credential warnings).
    pub fn config(&self, options: &DemoBootstrap, events: &dyn EventSink) -> Result<Config> {
        let dirs = &self.dirs;
        let lokoctl = if options.lokomotive {
            Some(crate::find_lokoctl()?)
        } else {
            None
        };
        let cluster_dir = dirs.state_dir.join("cluster");
        let rack = self.load_rack()?;
        let selection = SelectionOptions {
            provision: if options.lokomotive {
                Provision::Lokomotive
            } else {
                Provision::Flatcar
            },
            exclude: options.exclude.clone(),
            ..SelectionOptions::default()
        };
        let credentials = racker_inventory::Credentials::load(&dirs.oem_dir)?;
        for w in &credentials.warnings {
            events.event(&Event::Warning(w.to_string()));
        }
        let credentials =
            racker_ipmi::Credentials::new(credentials.user.clone(), credentials.password.expose());
        let key = dirs.state_dir.join("ssh").join("id_ed25519");
        if crate::ssh::ensure_key_pair(&key)?.created {
            events.event(&Event::Message(format!(
                "Created the management SSH key {}",
                key.display()
            )));
        }
        let public_ips = crate::render_dir::load_public_ips(None, &rack.inventory)?;
        let mut render = racker_lokomotive::RenderOptions::new(crate::render_dir::core_ssh_keys(
            &dirs.state_dir,
            &[],
        )?);
        render.old_lokomotive = options.old_lokomotive;
        render.matchbox_client_dir = dirs.state_dir.join("matchbox-client").display().to_string();
        render.asset_dir = crate::render_dir::resolved_dir(&cluster_dir)
            .join("lokoctl-assets")
            .display()
            .to_string();

        let mut config = Config::new(dirs.state_dir.clone(), rack, selection, credentials, render);
        config.cluster_dir = cluster_dir;
        config.public_ips = public_ips;
        config.retries = options.retries;
        config.install_timeout = Duration::from_secs(60);
        config.os_timeout = options.os_timeout;
        config.join_timeout = options.join_timeout;
        if lokoctl.is_some() {
            // lokoctl's SSH steps and kubectl, inside the demo folder.
            let mut env = crate::LokomotiveEnv::new();
            env.ssh_key = Some(key);
            env.hosts_file = Some(options.dir.join("hosts"));
            env.kubeconfig_link = Some(options.dir.join("kube").join("config"));
            config.lokomotive_env = env;
        }
        config.ipmi_timeout = Duration::from_secs(2);
        config.bmc_overrides = self.bmcs.clone();
        let mut endpoints = NetbootEndpoints::new(&dirs.sys_class_net);
        endpoints.dhcp_listen = Some(self.dhcp);
        endpoints.content.http_listen = Some(self.http);
        endpoints.content.without_tftp = true;
        if lokoctl.is_some() {
            // The gRPC API on loopback.
            endpoints.content.matchbox_grpc = Some(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)));
        }
        config.lokoctl = lokoctl;
        config.netboot = NetbootMode::Serve(endpoints);
        Ok(config)
    }

    /// Provision the demo rack ([`DemoRack::config`], then
    /// [`crate::bootstrap`]).
    pub async fn bootstrap(
        &self,
        options: &DemoBootstrap,
        events: &dyn EventSink,
        policy: &dyn FailurePolicy,
    ) -> Result<Report> {
        let config = self.config(options, events)?;
        crate::bootstrap(&config, events, policy).await
    }

    /// What `racker status` shows of the demo rack, asking the simulated
    /// BMCs (their nodes' planned addresses are not on this machine, so the
    /// API port is not probed). Lease/plan disagreements are warnings
    /// through `events`.
    pub async fn status(&self, events: &dyn EventSink) -> Result<StatusReport> {
        let options = StatusOptions {
            probe_api_port: false,
            ..StatusOptions::default()
        };
        let resolver = BmcResolver::load(&self.dirs.state_dir)?.with_overrides(self.bmcs.clone());
        let files = crate::RackFiles::new(
            &self.dirs.oem_dir,
            &self.dirs.state_dir,
            &self.dirs.sys_class_net,
            self.plan_options(),
        );
        crate::collect_rack_status(&files, &resolver, &options, events).await
    }

    /// Write the simulated nodes' power and boot flags as `racker sim
    /// status` shows them.
    pub fn write_status(&self) -> Result<()> {
        racker_sim::write_json_atomic(
            &self.dirs.state_dir,
            racker_sim::STATUS_FILE,
            &racker_sim::StatusFile::of(&self.rack, std::process::id()),
        )?;
        Ok(())
    }

    /// Stop the firmware and the BMCs; the state directory no longer
    /// claims a running simulated rack.
    pub async fn stop(self) {
        drop(self.firmware);
        self.rack.shutdown().await;
        let _ = std::fs::remove_file(self.dirs.state_dir.join(racker_sim::SIMULATED_RACK_MARKER));
    }

    /// Keep the rack running after the bootstrap: racker's netboot server
    /// again (the bootstrap's own stopped with it) on the same addresses,
    /// so a power-cycled node boots and the rack view stays up, and the
    /// rack status for the view. `rack` is the demo rack as loaded from its
    /// folders.
    pub async fn keep_running(self, rack: &Rack) -> Result<KeptDemo> {
        let netboot = match keep_netboot(&self.dirs.state_dir, rack, self.dhcp, self.http).await {
            Ok(n) => n,
            Err(e) => {
                self.stop().await;
                return Err(e);
            }
        };
        let credentials = racker_ipmi::Credentials::new(DEMO_USER, DEMO_PASSWORD);
        let resolver = BmcResolver::load(&self.dirs.state_dir)?.with_overrides(self.bmcs.clone());
        let writer = RackStatusWriter::spawn(
            &self.dirs.state_dir,
            rack,
            credentials,
            resolver,
            RackStatusOptions::default(),
        );
        Ok(KeptDemo {
            demo: self,
            netboot,
            writer,
        })
    }
}

/// racker's netboot services for the kept demo rack, on the bootstrap's
/// addresses (retried briefly while the bootstrap's sockets close).
async fn keep_netboot(
    state_dir: &Path,
    rack: &Rack,
    dhcp: SocketAddr,
    http: SocketAddr,
) -> Result<NetbootService> {
    let plan = &rack.plan;
    let config = racker_netboot::DhcpConfig::new(plan.management_ip(), plan.subnet().prefix_len());
    let builder = NetbootService::builder(state_dir, config)
        .dhcp(DhcpListen::Socket(dhcp))
        .http_listen(http)
        // The simulated nodes report from loopback.
        .loopback_reports(true)
        .tftp(false)
        .reservations(crate::network::reservations(plan, None))
        .nodes(crate::network::node_entries(plan, None))
        .ignition(Arc::new(crate::network::ClusterIgnition::new(
            state_dir.join("cluster"),
        )));
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match builder.clone().start().await {
            Ok(s) => return Ok(s),
            Err(e) if Instant::now() < deadline => {
                tracing::debug!("netboot for the kept demo rack: {e}; retrying");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// A demo rack kept running with racker's netboot server and the rack
/// view, until [`KeptDemo::stop`].
#[derive(Debug)]
pub struct KeptDemo {
    demo: DemoRack,
    netboot: NetbootService,
    writer: RackStatusWriter,
}

impl KeptDemo {
    /// The netboot server's base URL (the rack view is at `/`).
    pub fn base_url(&self) -> &str {
        self.netboot.base_url()
    }

    /// Stop everything; the bootstrap's final state as it was then.
    pub async fn stop(self) -> Option<BootstrapState> {
        self.writer.stop();
        let _ = self.netboot.shutdown().await;
        let state = StateFile::load(&self.demo.dirs.state_dir).ok().flatten();
        self.demo.stop().await;
        state
    }
}

/// How many nodes of `state` are in each state (`failed` for every failed
/// one), by label.
pub fn state_counts(state: Option<&BootstrapState>) -> BTreeMap<String, usize> {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for n in state.iter().flat_map(|s| s.nodes.values()) {
        let label = match &n.state {
            NodeState::Failed { .. } => "failed".to_owned(),
            other => other.label(),
        };
        *counts.entry(label).or_default() += 1;
    }
    counts
}

/// A host name of the demo rack to show in examples (the fourth node's,
/// else the last's, else `node-0`).
pub fn example_hostname(state_dir: &Path) -> String {
    StateFile::load(state_dir)
        .ok()
        .flatten()
        .and_then(|s| {
            let names: Vec<String> = s
                .nodes
                .values()
                .map(|n| n.hostname.clone())
                .filter(|h| !h.is_empty())
                .collect();
            names.get(3).or(names.last()).cloned()
        })
        .unwrap_or_else(|| "node-0".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_rack_files_describe_a_rack() {
        let dir = tempfile::tempdir().unwrap();
        let dirs = write_demo_rack(dir.path(), 3).unwrap();
        assert_eq!(dirs, DemoDirs::in_dir(dir.path()));
        let inventory = racker_inventory::Inventory::load(&dirs.oem_dir.join("nodes.csv")).unwrap();
        assert_eq!(inventory.nodes().len(), 4);
        let interfaces = racker_inventory::read_local_interfaces(&dirs.sys_class_net).unwrap();
        let management = inventory.management(&interfaces).unwrap();
        assert_eq!(management.node.primary_mac, demo_macs(None)[0]);
        assert!(
            dirs.state_dir
                .join("assets/flatcar/current")
                .join(racker_netboot::matchbox::PXE_KERNEL)
                .exists()
        );
    }

    #[test]
    fn networks_grow_with_the_rack() {
        assert_eq!(demo_network(8), ("172.24.213", 24));
        assert_eq!(demo_network(64), ("172.24.212", 22));
        assert_eq!(demo_network(1000), ("172.24.192", 18));
    }

    #[test]
    fn the_default_folder_is_cleared_only_when_it_holds_a_demo() {
        let dir = tempfile::tempdir().unwrap();
        let demo = dir.path().join("racker-demo");
        assert_eq!(prepare_dir(&demo, true).unwrap(), Prepared::Fresh);
        write_demo_rack(&demo, 1).unwrap();
        assert_eq!(prepare_dir(&demo, true).unwrap(), Prepared::Cleared);
        assert!(!demo.exists());
        write_demo_rack(&demo, 1).unwrap();
        std::fs::write(demo.join("state/bootstrap.json"), "{}").unwrap();
        assert_eq!(prepare_dir(&demo, false).unwrap(), Prepared::Resumed);
        std::fs::write(demo.join("notes.txt"), "mine").unwrap();
        let err = prepare_dir(&demo, true).unwrap_err();
        assert!(err.to_string().contains("notes.txt"), "{err}");
    }
}
