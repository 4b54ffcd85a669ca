//! What a bootstrap needs to know: plain data, no command-line types.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use racker_inventory::{AddressPlan, Inventory, MacAddr, Management, PublicIps, SelectionOptions};
use racker_lokomotive::RenderOptions;

use crate::lokoenv::LokomotiveEnv;
use crate::network::NetbootEndpoints;

/// The rack as racker sees it: nodes.csv, the management node found among
/// the local interfaces, and the address plan.
#[derive(Debug, Clone)]
pub struct Rack {
    /// The nodes.
    pub inventory: Inventory,
    /// The management node (this machine).
    pub management: Management,
    /// The internal addresses.
    pub plan: AddressPlan,
}

impl Rack {
    /// A rack from its parts.
    pub fn new(inventory: Inventory, management: Management, plan: AddressPlan) -> Self {
        Self {
            inventory,
            management,
            plan,
        }
    }
}

/// How the nodes reach racker's netboot services during the bootstrap.
#[derive(Debug, Clone)]
#[non_exhaustive]
#[allow(clippy::large_enum_variant)] // one per bootstrap; no boxing in the API
pub enum NetbootMode {
    /// Start DHCP, HTTP (and TFTP) in the bootstrap itself, here.
    Serve(NetbootEndpoints),
    /// A netboot service already runs (`racker netboot serve`) with the
    /// same state directory; its installer reports are read from there.
    External,
}

/// Everything a bootstrap needs. [`Config::new`] fills in the defaults of
/// `racker bootstrap`; set the public fields to change them.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// Racker's state directory (the state file, leases, reports, assets).
    pub state_dir: PathBuf,
    /// The rendered cluster configuration and the attempt logs
    /// [default: `<state-dir>/cluster`].
    pub cluster_dir: PathBuf,
    /// The rack.
    pub rack: Rack,
    /// What to install and how nodes are split into roles; its `exclude`
    /// list grows by the nodes an earlier run excluded.
    pub selection: SelectionOptions,
    /// BMC user and password.
    pub credentials: racker_ipmi::Credentials,
    /// How the cluster configuration is rendered.
    pub render: RenderOptions,
    /// Public addresses of the nodes [default: DHCP].
    pub public_ips: PublicIps,
    /// How many times failed nodes may be retried [default: 3].
    pub retries: u32,
    /// Nodes handled in parallel [default: 64].
    pub concurrency: usize,
    /// PXE request to installer report, per node [default: 30 min].
    pub install_timeout: Duration,
    /// Installed to OS up, per node; zero skips the wait [default: 15 min].
    pub os_timeout: Duration,
    /// Lokomotive: every node Ready after `lokoctl cluster apply` [default: 20 min].
    pub join_timeout: Duration,
    /// Lokomotive: the kubeconfig to follow joins with [default: the one
    /// lokoctl writes below `render.asset_dir`].
    pub kubeconfig: Option<PathBuf>,
    /// Lokomotive: the `lokoctl` binary (see [`find_lokoctl`](crate::find_lokoctl)).
    pub lokoctl: Option<PathBuf>,
    /// Lokomotive: the ssh-agent, hosts file and kubeconfig link lokoctl
    /// and kubectl rely on [default: none of them].
    pub lokomotive_env: LokomotiveEnv,
    /// IPMI: time per exchange, retransmissions included [default: 5 s].
    pub ipmi_timeout: Duration,
    /// IPMI UDP port of the BMCs [default: 623].
    pub ipmi_port: u16,
    /// Where BMCs answer instead of their lease or planned address (a
    /// simulated rack's loopback BMCs), by BMC MAC [default: none].
    pub bmc_overrides: BTreeMap<MacAddr, SocketAddr>,
    /// Netboot services [default: served on the PXE interface].
    pub netboot: NetbootMode,
    /// Check every boot file the nodes will request before any node is
    /// powered, and stop naming what is missing [default: on].
    pub preflight: bool,
    /// Hand the rack network over to a running `racker netboot serve`
    /// found in the state directory instead of binding a second server
    /// [default: on].
    pub use_running_service: bool,
}

impl Config {
    /// A bootstrap of `rack` as `selection` says, with `racker bootstrap`'s
    /// defaults, state in `state_dir`.
    pub fn new(
        state_dir: impl Into<PathBuf>,
        rack: Rack,
        selection: SelectionOptions,
        credentials: racker_ipmi::Credentials,
        render: RenderOptions,
    ) -> Self {
        let state_dir = state_dir.into();
        Self {
            cluster_dir: state_dir.join("cluster"),
            state_dir,
            rack,
            selection,
            credentials,
            render,
            public_ips: PublicIps::dhcp(),
            retries: 3,
            concurrency: 64,
            install_timeout: Duration::from_secs(30 * 60),
            os_timeout: Duration::from_secs(15 * 60),
            join_timeout: Duration::from_secs(20 * 60),
            kubeconfig: None,
            lokoctl: None,
            lokomotive_env: LokomotiveEnv::new(),
            ipmi_timeout: Duration::from_secs(5),
            ipmi_port: racker_ipmi::DEFAULT_PORT,
            bmc_overrides: BTreeMap::new(),
            netboot: NetbootMode::Serve(NetbootEndpoints::new("/sys/class/net")),
            preflight: true,
            use_running_service: true,
        }
    }
}
