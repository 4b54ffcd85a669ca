//! What `racker netboot serve` and `racker netboot render` set up before
//! serving or writing (docs/netboot.md): the DHCP configuration from plain
//! settings, the Ignition the service serves, what nodes would miss, the
//! installed nodes for dnsmasq, and the matchbox layout of a rack.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use racker_inventory::{AddressPlan, MacAddr, Selection};
use racker_netboot::matchbox::Catalog;
use racker_netboot::service::Missing;
use racker_netboot::{BootConfig, DhcpConfig, IgnitionDir, IgnitionSource, Mode};

use crate::network::{ClusterIgnition, HTTP_PORT, flatcar_boot, node_entries};
use crate::{Result, StateFile};

/// DHCP settings of `racker netboot serve` and `render`.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DhcpSettings {
    /// ProxyDHCP: boot information only, next to another DHCP server.
    pub proxy: bool,
    /// Hand out the plan's dynamic range to unknown MACs.
    pub dynamic_range: bool,
    /// Lease time.
    pub lease_time: Duration,
    /// Router (option 3).
    pub router: Option<Ipv4Addr>,
    /// DNS servers (option 6).
    pub dns: Vec<Ipv4Addr>,
    /// Base URL of the HTTP boot server (default:
    /// `http://<management IP>:8080`).
    pub http_base_url: Option<String>,
    /// TFTP file for ARM64 UEFI clients.
    pub arm64_boot_file: String,
}

impl Default for DhcpSettings {
    fn default() -> Self {
        Self {
            proxy: false,
            dynamic_range: false,
            lease_time: Duration::from_secs(crate::network::LEASE_TIME_SECS),
            router: None,
            dns: Vec::new(),
            http_base_url: None,
            arm64_boot_file: "ipxe-arm64.efi".to_owned(),
        }
    }
}

/// The DHCP server's configuration for `plan` (validated).
pub fn dhcp_config(plan: &AddressPlan, settings: &DhcpSettings) -> Result<DhcpConfig> {
    let server_ip = plan.management_ip();
    let mut config = DhcpConfig::new(server_ip, plan.subnet().prefix_len());
    config.lease_time = settings.lease_time;
    config.dynamic_range = settings.dynamic_range.then(|| plan.dynamic_range());
    config.router = settings.router;
    config.dns.clone_from(&settings.dns);
    config.mode = if settings.proxy {
        Mode::Proxy
    } else {
        Mode::Full
    };
    let base = settings
        .http_base_url
        .clone()
        .unwrap_or_else(|| format!("http://{server_ip}:{HTTP_PORT}"));
    config.boot = BootConfig::new(base);
    config.boot.arm64_file = Some(settings.arm64_boot_file.clone());
    config.validate()?;
    Ok(config)
}

/// The Ignition a standing netboot service serves: the cluster directory
/// of the recorded bootstrap (so it keeps serving what `racker bootstrap`
/// rendered), else `<state-dir>/ignition`.
pub fn served_ignition(state_dir: &Path) -> Arc<dyn IgnitionSource> {
    match StateFile::load(state_dir).ok().flatten() {
        Some(state) => Arc::new(ClusterIgnition::new(state.cluster_dir)),
        None => Arc::new(IgnitionDir::in_state_dir(state_dir)),
    }
}

/// What the nodes of a rack would miss from a netboot service (their
/// `/ipxe` is refused until it is there).
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ServePreflight {
    /// Boot files (Flatcar kernel, initrd, image, signature) missing.
    pub files: Vec<Missing>,
    /// How many nodes have no install Ignition yet.
    pub without_ignition: usize,
    /// How many nodes the plan has.
    pub nodes: usize,
}

/// Check the assets in `<state-dir>/assets` and every planned node's
/// Ignition from `ignition`.
pub fn serve_preflight(
    state_dir: &Path,
    ignition: &dyn IgnitionSource,
    plan: &AddressPlan,
) -> ServePreflight {
    let macs: Vec<MacAddr> = plan.nodes().iter().map(|n| n.node.primary_mac).collect();
    let missing =
        racker_netboot::service::preflight(&state_dir.join("assets"), None, ignition, &macs);
    let (ignition_missing, files): (Vec<_>, Vec<_>) = missing
        .into_iter()
        .partition(|m| m.what.starts_with("Ignition"));
    ServePreflight {
        files,
        without_ignition: ignition_missing.len(),
        nodes: macs.len(),
    }
}

/// The nodes whose install was reported (dnsmasq then boots them from
/// disk); empty when there is no report store.
pub fn installed_macs(state_dir: &Path) -> BTreeSet<MacAddr> {
    match racker_netboot::report::ReportStore::open(state_dir) {
        Ok(store) => store
            .reports()
            .iter()
            .filter(|r| store.is_installed(r.mac))
            .map(|r| r.mac)
            .collect(),
        Err(_) => BTreeSet::new(),
    }
}

/// Write matchbox `profiles/` and `groups/` for the (not excluded) nodes
/// of `plan` into `dir`, booting from `base_url` (default:
/// `http://<management IP>:8080`). Returns the files written.
pub fn write_matchbox(
    dir: &Path,
    plan: &AddressPlan,
    selection: Option<&Selection>,
    base_url: Option<&str>,
) -> Result<Vec<PathBuf>> {
    let base = base_url.map_or_else(
        || format!("http://{}:{HTTP_PORT}", plan.management_ip()),
        str::to_owned,
    );
    let nodes = node_entries(plan, selection);
    let catalog = Catalog::flatcar(&nodes, &flatcar_boot(&base, &[]));
    Ok(catalog.write_dir(dir)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use racker_inventory::{
        Inventory, PlanOptions, SelectionOptions, read_local_interfaces, select,
    };

    fn plan(dir: &Path) -> AddressPlan {
        let net = dir.join("net");
        std::fs::create_dir_all(net.join("eth1")).unwrap();
        std::fs::write(net.join("eth1/address"), "00:11:22:33:44:30\n").unwrap();
        let inventory = Inventory::parse(
            "nodes.csv",
            b"Primary MAC address, BMC MAC address, Secondary MAC address, Node Type, Comments\n\
             00:11:22:33:44:00, 00:11:22:33:44:01, 00:11:22:33:44:30, red, mgmt node\n\
             00:11:22:33:44:10, 00:11:22:33:44:11, 00:11:22:33:44:40, red, node\n\
             00:11:22:33:44:20, 00:11:22:33:44:21, 00:11:22:33:44:50, red, node\n",
        )
        .unwrap();
        let management = inventory
            .management(&read_local_interfaces(&net).unwrap())
            .unwrap();
        AddressPlan::new(&inventory, &management, &PlanOptions::default()).unwrap()
    }

    #[test]
    fn matchbox_layout_leaves_out_excluded_nodes() {
        let dir = tempfile::tempdir().unwrap();
        let plan = plan(dir.path());
        let options = SelectionOptions {
            exclude: vec!["00:11:22:33:44:21".parse().unwrap()],
            ..SelectionOptions::default()
        };
        let selection = select(&plan, &options).unwrap();
        let out = dir.path().join("matchbox");
        let written = write_matchbox(&out, &plan, Some(&selection), None).unwrap();
        assert_eq!(written.len(), 2, "one profile and one group");
        let catalog = Catalog::load_dir(&out).unwrap();
        assert_eq!(catalog.groups.len(), 1, "the excluded node has no group");
        let (g, p) = catalog
            .select_mac("00:11:22:33:44:10".parse().unwrap())
            .unwrap();
        assert_eq!(g.metadata["ip"], "172.24.213.2");
        assert!(
            p.boot
                .kernel
                .starts_with("http://172.24.213.1:8080/assets/")
        );
    }

    #[test]
    fn dhcp_settings_shape_the_config() {
        let dir = tempfile::tempdir().unwrap();
        let plan = plan(dir.path());
        let mut settings = DhcpSettings {
            proxy: true,
            dynamic_range: true,
            ..DhcpSettings::default()
        };
        let config = dhcp_config(&plan, &settings).unwrap();
        assert_eq!(config.mode, Mode::Proxy);
        assert_eq!(config.dynamic_range, Some(plan.dynamic_range()));
        assert_eq!(config.lease_time, Duration::from_secs(86_400));
        settings.lease_time = Duration::ZERO;
        assert!(dhcp_config(&plan, &settings).is_err());
    }

    #[test]
    fn a_fresh_state_dir_misses_assets_and_ignition() {
        let dir = tempfile::tempdir().unwrap();
        let plan = plan(dir.path());
        let state = dir.path().join("state");
        let ignition = served_ignition(&state);
        let preflight = serve_preflight(&state, &*ignition, &plan);
        assert_eq!(preflight.nodes, 2);
        assert_eq!(preflight.without_ignition, 2);
        assert!(!preflight.files.is_empty());
        assert!(installed_macs(&state).is_empty());
    }
}
