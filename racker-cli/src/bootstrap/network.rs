//! Stage 1: the netboot services (DHCP, HTTP, optionally TFTP) started in
//! the bootstrap process itself.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use racker_inventory::{MacAddr, Selection};
use racker_netboot::http::metrics::Metrics;
use racker_netboot::http::{HttpContent, HttpServer};
use racker_netboot::matchbox::{Catalog, FlatcarBoot, NodeEntry};
use racker_netboot::report::ReportStore;
use racker_netboot::{
    BootConfig, ContentError, DhcpConfig, DhcpServer, IgnitionProfile, IgnitionSource,
    InstalledNodes, LeaseTable, Reservation,
};
use tokio::task::JoinHandle;

use crate::context::Rack;

/// Where the netboot services listen.
#[derive(Debug, Clone)]
pub(crate) struct NetbootEndpoints {
    /// DHCP: a plain UDP address (simulator, tests) or `None` for the PXE
    /// interface on port 67.
    pub(crate) dhcp_listen: Option<SocketAddr>,
    /// HTTP listen address.
    pub(crate) http_listen: SocketAddr,
    /// Base URL nodes use to reach the HTTP server.
    pub(crate) http_url: String,
    /// TFTP listen address and root, when TFTP is served.
    pub(crate) tftp: Option<(SocketAddr, PathBuf)>,
    /// Serve DHCP on an interface that fails the safety checks.
    pub(crate) force: bool,
    /// Where interfaces are listed (for the safety checks).
    pub(crate) sys_class_net: PathBuf,
}

/// Ignition configs straight from the rendered cluster directory.
#[derive(Debug)]
pub(crate) struct ClusterIgnition {
    pub(crate) cluster_dir: PathBuf,
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

/// Installed = reported `installed` to `/report`.
#[derive(Debug, Clone)]
struct ReportedInstalled(ReportStore);

impl InstalledNodes for ReportedInstalled {
    fn is_installed(&self, mac: MacAddr) -> bool {
        self.0.is_installed(mac)
    }
}

/// The running services.
pub(crate) struct Netboot {
    pub(crate) reports: ReportStore,
    pub(crate) http_addr: SocketAddr,
    pub(crate) dhcp_addr: Option<SocketAddr>,
    tasks: Vec<JoinHandle<()>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Netboot {
    pub(crate) fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// DHCP reservations for every planned node and BMC.
pub(crate) fn reservations(selection: &Selection) -> Vec<Reservation> {
    let mut out = Vec::new();
    for n in selection.nodes() {
        let p = &n.planned;
        out.push(Reservation {
            mac: p.node.primary_mac,
            ip: p.ip,
            hostname: n
                .hostname
                .as_ref()
                .map(|h| h.split('.').next().unwrap_or(h).to_owned()),
        });
        out.push(Reservation {
            mac: p.node.bmc_mac,
            ip: p.bmc_ip,
            hostname: None,
        });
    }
    out
}

pub(crate) async fn start(
    rack: &Rack,
    selection: &Selection,
    state_dir: &Path,
    cluster_dir: &Path,
    endpoints: &NetbootEndpoints,
) -> anyhow::Result<Netboot> {
    let reports = ReportStore::open(state_dir)?;
    let nodes: Vec<NodeEntry> = selection
        .nodes()
        .iter()
        .filter(|n| !n.excluded)
        .map(|n| NodeEntry {
            mac: n.planned.node.primary_mac,
            hostname: n.hostname.clone(),
            ip: Some(n.planned.ip),
            role: n.role.map(|r| r.to_string()),
        })
        .collect();
    let catalog = Catalog::flatcar(&nodes, &FlatcarBoot::new(&endpoints.http_url));
    let metrics = Arc::new(Metrics::default());
    let ignition = Arc::new(ClusterIgnition {
        cluster_dir: cluster_dir.to_owned(),
    });
    let mut content = HttpContent::new(
        catalog,
        reports.clone(),
        ignition,
        &state_dir.join("assets"),
        metrics.clone(),
    );
    let mut tasks = Vec::new();
    if let Some((addr, root)) = &endpoints.tftp {
        content = content.with_boot_files(root);
        let tftp = racker_netboot::tftp::server::TftpServer::bind(
            *addr,
            root,
            Default::default(),
            metrics.tftp.clone(),
        )
        .await?;
        tasks.push(tokio::spawn(async move {
            if let Err(e) = tftp.run().await {
                tracing::error!("TFTP stopped: {e}");
            }
        }));
    }
    let http = HttpServer::bind(endpoints.http_listen, content).await?;
    let http_addr = http.local_addr();
    tasks.push(tokio::spawn(async move {
        if let Err(e) = http.run().await {
            tracing::error!("HTTP stopped: {e}");
        }
    }));

    let plan = &rack.plan;
    let mut config = DhcpConfig::new(plan.management_ip(), plan.subnet().prefix_len());
    config.boot = BootConfig::new(endpoints.http_url.clone());
    let leases = LeaseTable::load(state_dir)?;
    let server = DhcpServer::new(config, reservations(selection), leases)?;
    let socket = match endpoints.dhcp_listen {
        Some(addr) => racker_netboot::dhcp::transport::DhcpSocket::bind_plain(addr)?,
        None => {
            let iface = &rack.management.pxe_interface;
            if !endpoints.force {
                racker_netboot::dhcp::transport::check_interface(
                    iface,
                    &endpoints.sys_class_net,
                    Path::new("/proc/net/route"),
                    Some(rack.management.secondary_mac),
                )
                .with_context(|| {
                    format!("refusing to serve DHCP on {iface} (--force overrides)")
                })?;
            }
            racker_netboot::dhcp::transport::DhcpSocket::bind_interface(iface, 67)?
        }
    };
    let dhcp_addr = socket.local_addr();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let installed: Arc<dyn InstalledNodes + Send + Sync> =
        Arc::new(ReportedInstalled(reports.clone()));
    let state_dir = state_dir.to_owned();
    tasks.push(tokio::spawn(async move {
        let shutdown = async {
            let _ = rx.await;
        };
        if let Err(e) = racker_netboot::dhcp::transport::serve(
            socket,
            server,
            Some(state_dir),
            installed,
            shutdown,
        )
        .await
        {
            tracing::error!("DHCP stopped: {e}");
        }
    }));
    Ok(Netboot {
        reports,
        http_addr,
        dhcp_addr: Some(dhcp_addr),
        tasks,
        shutdown: Some(tx),
    })
}

/// Default HTTP listen address: the management node's internal IP, 8080.
pub(crate) fn default_http_listen(management_ip: Ipv4Addr) -> SocketAddr {
    SocketAddr::from((management_ip, racker_lokomotive::DEFAULT_NETBOOT_PORT))
}
