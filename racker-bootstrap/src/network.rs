//! Stage 1: the netboot services (DHCP, HTTP, optionally TFTP) started in
//! the bootstrap process through racker-netboot's service builder (the same
//! wiring as `racker netboot serve`), and the pieces `racker netboot serve`
//! shares with it (node entries, DHCP reservations, the installer's console,
//! the internal address on the PXE interface).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use racker_inventory::{AddressPlan, MacAddr, Selection};
use racker_netboot::matchbox::{FlatcarBoot, NodeEntry};
use racker_netboot::report::ReportStore;
use racker_netboot::service::{DhcpListen, NetbootService, ServiceError};
use racker_netboot::{ContentError, DhcpConfig, IgnitionProfile, IgnitionSource, Reservation};

use crate::{Error, Rack};

/// Default HTTP port of the boot server.
pub const HTTP_PORT: u16 = 8080;

/// DHCP lease time (1 day) of bootstrap and `racker netboot serve`: BMCs
/// renew every 12 hours and keep their reserved address for years.
pub const LEASE_TIME_SECS: u64 = 86_400;

/// Where the boot content (TFTP + HTTP) is served.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ContentOptions {
    /// HTTP address (default: `<management internal IP>:8080`).
    pub http_listen: Option<SocketAddr>,
    /// TFTP address (default: `<management internal IP>:69`).
    pub tftp_listen: Option<SocketAddr>,
    /// Directory holding the iPXE binaries (default: found by
    /// `locate_boot_files`).
    pub boot_files: Option<PathBuf>,
    /// Skip TFTP (nodes boot iPXE from elsewhere, e.g. the simulated rack).
    pub without_tftp: bool,
    /// Serve the profiles and groups of this matchbox data directory
    /// instead of the generated Flatcar installer profile.
    pub matchbox_data: Option<PathBuf>,
    /// Serve the matchbox-compatible gRPC API (mutual TLS) that lokoctl's
    /// Terraform stores its profiles in, on this address (Lokomotive:
    /// `<management internal IP>:8081`, what `baremetal.lokocfg` points
    /// at) (default: off).
    pub matchbox_grpc: Option<SocketAddr>,
    /// Kernel console arguments of the PXE-booted installer (the rack's
    /// `--kernel-console`) (default: [`racker_lokomotive::DEFAULT_KERNEL_CONSOLE`],
    /// `ttyS1,57600n8` as the original racker).
    pub kernel_console: Vec<String>,
}

/// The installer's kernel console: the rack's `--kernel-console`, or the
/// original racker's default (`ttyS1,57600n8`, docs/netboot-content.md).
pub fn installer_console(kernel_console: &[String]) -> Vec<String> {
    if kernel_console.is_empty() {
        racker_lokomotive::DEFAULT_KERNEL_CONSOLE
            .iter()
            .map(|s| (*s).to_owned())
            .collect()
    } else {
        kernel_console.to_vec()
    }
}

/// The installer's boot settings with the rack's kernel console.
pub fn flatcar_boot(base_url: &str, kernel_console: &[String]) -> FlatcarBoot {
    let mut boot = FlatcarBoot::new(base_url);
    boot.console = installer_console(kernel_console);
    boot
}

impl ContentOptions {
    /// Defaults everywhere.
    pub fn new() -> Self {
        Self::default()
    }
}

/// Boot entries for the nodes of `plan`, minus excluded ones, with host
/// names and roles from `selection` when given.
pub fn node_entries(plan: &AddressPlan, selection: Option<&Selection>) -> Vec<NodeEntry> {
    match selection {
        Some(sel) => sel
            .nodes()
            .iter()
            .filter(|n| !n.excluded)
            .map(|n| NodeEntry {
                mac: n.planned.node.primary_mac,
                hostname: n.hostname.clone(),
                ip: Some(n.planned.ip),
                role: n.role.map(|r| r.to_string()),
            })
            .collect(),
        None => plan
            .nodes()
            .iter()
            .map(|n| NodeEntry {
                mac: n.node.primary_mac,
                hostname: None,
                ip: Some(n.ip),
                role: None,
            })
            .collect(),
    }
}

/// Every node's primary MAC and every BMC MAC, from the address plan;
/// with a selection, primary MACs also carry the node's short host name.
pub fn reservations(plan: &AddressPlan, selection: Option<&Selection>) -> Vec<Reservation> {
    plan.nodes()
        .iter()
        .flat_map(|n| {
            let hostname = selection
                .and_then(|s| s.find_by_mac(n.node.primary_mac))
                .and_then(|s| s.hostname.as_deref())
                .map(|h| h.split('.').next().unwrap_or(h).to_owned());
            [
                Reservation {
                    mac: n.node.primary_mac,
                    ip: n.ip,
                    hostname,
                },
                Reservation {
                    mac: n.node.bmc_mac,
                    ip: n.bmc_ip,
                    hostname: None,
                },
            ]
        })
        .collect()
}

/// Put the management node's internal address on the interface DHCP serves
/// (stage 1, docs/bootstrap.md); returns
/// `"<ip>/<prefix> on <if> (added|already present)"`.
pub async fn ensure_internal_address(rack: &Rack, iface: &str) -> Result<String, Error> {
    let ip = rack.plan.management_ip();
    let prefix = rack.plan.subnet().prefix_len();
    let change = racker_netboot::iface::ensure_address(iface, ip, prefix)
        .await
        .map_err(|source| Error::InterfaceAddress {
            ip,
            prefix_len: prefix,
            interface: iface.to_owned(),
            source,
        })?;
    Ok(format!(
        "{ip}/{prefix} on {iface} ({})",
        match change {
            racker_netboot::iface::AddressChange::Added => "added",
            racker_netboot::iface::AddressChange::AlreadyPresent => "already present",
        }
    ))
}

/// Where the netboot services of a bootstrap listen.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct NetbootEndpoints {
    /// DHCP: a plain UDP address (simulator, tests) or `None` for the PXE
    /// interface on port 67.
    pub dhcp_listen: Option<SocketAddr>,
    /// HTTP and TFTP, as `racker netboot serve` takes them.
    pub content: ContentOptions,
    /// Base URL nodes use to reach the HTTP server (default: derived from
    /// the bound HTTP address).
    pub http_url: Option<String>,
    /// Serve DHCP on an interface that fails the safety checks.
    pub force: bool,
    /// Where interfaces are listed (for the safety checks).
    pub sys_class_net: PathBuf,
}

impl NetbootEndpoints {
    /// DHCP on the PXE interface, HTTP and TFTP on the management node's
    /// internal address, interfaces listed in `sys_class_net`.
    pub fn new(sys_class_net: impl Into<PathBuf>) -> Self {
        Self {
            dhcp_listen: None,
            content: ContentOptions::default(),
            http_url: None,
            force: false,
            sys_class_net: sys_class_net.into(),
        }
    }

    /// Everything on loopback-style plain sockets: DHCP on `dhcp`, HTTP on
    /// `http`, no TFTP (the simulated rack's firmware boots iPXE itself).
    pub fn plain(dhcp: SocketAddr, http: SocketAddr) -> Self {
        let mut e = Self::new("/sys/class/net");
        e.dhcp_listen = Some(dhcp);
        e.content.http_listen = Some(http);
        e.content.without_tftp = true;
        e
    }
}

/// Ignition configs straight from the rendered cluster directory.
#[derive(Debug)]
pub struct ClusterIgnition {
    /// The cluster directory.
    pub cluster_dir: PathBuf,
}

impl ClusterIgnition {
    /// Ignition from the cluster directory `cluster_dir`.
    pub fn new(cluster_dir: impl Into<PathBuf>) -> Self {
        Self {
            cluster_dir: cluster_dir.into(),
        }
    }
}

impl IgnitionSource for ClusterIgnition {
    fn ignition(
        &self,
        mac: MacAddr,
        profile: IgnitionProfile,
    ) -> Result<Option<Vec<u8>>, ContentError> {
        let rel = match profile {
            IgnitionProfile::Install => racker_lokomotive::install_ignition_path(mac),
            IgnitionProfile::Os => racker_lokomotive::os_ignition_path(mac),
        };
        let path = self.cluster_dir.join(rel);
        match std::fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(ContentError::Io {
                action: "reading",
                path,
                source,
            }),
        }
    }
}

/// The running services.
#[derive(Debug)]
pub(crate) struct Netboot {
    pub(crate) reports: ReportStore,
    pub(crate) http_addr: SocketAddr,
    pub(crate) base_url: String,
    pub(crate) dhcp_addr: SocketAddr,
    /// `"<ip>/<prefix> on <interface> (added|already present)"` when DHCP
    /// serves on the PXE interface.
    pub(crate) address: Option<String>,
    /// The interface check `--force` overrode, for a warning.
    pub(crate) forced_past: Option<String>,
    /// The matchbox gRPC API's address and client certificate directory.
    pub(crate) matchbox_api: Option<(SocketAddr, PathBuf)>,
    /// The services' event trail.
    pub(crate) trail: racker_netboot::trail::EventTrail,
    service: NetbootService,
}

impl Netboot {
    pub(crate) fn stop(self) {
        self.service.stop();
    }
}

/// Start the netboot services of a bootstrap through racker-netboot's
/// service builder — the same wiring as `racker netboot serve`
/// (docs/netboot.md): on the PXE interface the guard runs first (a `--force`d
/// refusal is kept for a warning), the internal address is put on the
/// interface, then TFTP and HTTP bind, then DHCP; Ignition comes from the
/// rendered cluster directory.
pub(crate) async fn start(
    state_dir: &Path,
    rack: &Rack,
    selection: &Selection,
    cluster_dir: &Path,
    endpoints: &NetbootEndpoints,
) -> Result<Netboot, Error> {
    let plan = &rack.plan;
    // Every descriptor the hard limit allows: connection floods are capped
    // per service well below it (see racker_netboot::http::HttpLimits).
    if let Err(e) = racker_netboot::http::raise_nofile_limit() {
        tracing::warn!("cannot raise the open-file limit: {e}");
    }
    let iface = &rack.management.pxe_interface;
    let dhcp = match endpoints.dhcp_listen {
        Some(addr) => DhcpListen::Socket(addr),
        None => DhcpListen::Interface(iface.clone()),
    };
    let content = &endpoints.content;
    let mut config = DhcpConfig::new(plan.management_ip(), plan.subnet().prefix_len());
    // The service the bootstrap hands over to keeps the same long leases.
    config.lease_time = std::time::Duration::from_secs(LEASE_TIME_SECS);
    let builder = NetbootService::builder(state_dir, config).dhcp(dhcp);
    let builder = crate::serve::with_content(builder, content)
        .reservations(reservations(plan, Some(selection)))
        .sys_class_net(&endpoints.sys_class_net)
        .expected_mac(rack.management.secondary_mac)
        .force(endpoints.force)
        .base_url(endpoints.http_url.clone())
        .nodes(node_entries(plan, Some(selection)))
        .ignition(Arc::new(ClusterIgnition {
            cluster_dir: cluster_dir.to_owned(),
        }));
    let service = builder.start().await.map_err(|e| match e {
        ServiceError::Dhcp(source @ racker_netboot::DhcpError::RefusedInterface { .. }) => {
            Error::RefusedInterface {
                interface: iface.clone(),
                source,
            }
        }
        e => Error::Netboot(e),
    })?;
    Ok(Netboot {
        reports: service.reports().clone(),
        http_addr: service.http_addr(),
        base_url: service.base_url().to_owned(),
        // The builder binds DHCP unless told DhcpListen::Off.
        dhcp_addr: service.dhcp_addr().unwrap_or(service.http_addr()),
        address: service.interface_address().map(ToString::to_string),
        forced_past: service.forced_past().map(ToString::to_string),
        matchbox_api: service
            .matchbox_api()
            .map(|api| (api.addr, api.certs.client_dir.clone())),
        trail: service.trail().clone(),
        service,
    })
}
