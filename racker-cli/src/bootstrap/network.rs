//! Stage 1: the netboot services (DHCP, HTTP, optionally TFTP) started in
//! the bootstrap process itself.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use racker_inventory::{MacAddr, Selection};
use racker_netboot::dhcp::transport::{self, DhcpSocket};
use racker_netboot::report::ReportStore;
use racker_netboot::{
    BootConfig, ContentError, DhcpConfig, DhcpServer, IgnitionProfile, IgnitionSource,
    InstalledNodes, LeaseTable,
};

use crate::context::Rack;
use crate::globals::Globals;
use crate::netboot_content::{self, ContentArgs};

/// Where the netboot services listen.
#[derive(Debug, Clone)]
pub(crate) struct NetbootEndpoints {
    /// DHCP: a plain UDP address (simulator, tests) or `None` for the PXE
    /// interface on port 67.
    pub(crate) dhcp_listen: Option<SocketAddr>,
    /// HTTP and TFTP, as `racker netboot serve` takes them.
    pub(crate) content: ContentArgs,
    /// Base URL nodes use to reach the HTTP server (default: derived from
    /// the bound HTTP address).
    pub(crate) http_url: Option<String>,
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

/// The running services.
pub(crate) struct Netboot {
    pub(crate) reports: ReportStore,
    pub(crate) http_addr: SocketAddr,
    pub(crate) base_url: String,
    pub(crate) dhcp_addr: SocketAddr,
    /// `"<ip>/<prefix> on <interface> (added|present)"` when DHCP serves on
    /// the PXE interface.
    pub(crate) address: Option<String>,
    tasks: Vec<tokio::task::AbortHandle>,
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

/// Start HTTP (+TFTP) through `racker netboot serve`'s content start-up,
/// with Ignition from the rendered cluster directory, then DHCP.
pub(crate) async fn start(
    globals: &Globals,
    rack: &Rack,
    selection: &Selection,
    cluster_dir: &Path,
    endpoints: &NetbootEndpoints,
) -> anyhow::Result<Netboot> {
    let plan = &rack.plan;
    // The internal address must be on the PXE interface before HTTP and
    // TFTP bind to it.
    let address = match endpoints.dhcp_listen {
        Some(_) => None,
        None => Some(
            crate::netboot::ensure_internal_address(rack, &rack.management.pxe_interface).await?,
        ),
    };
    let content = netboot_content::start_for(
        globals,
        &endpoints.content,
        plan,
        &netboot_content::node_entries(plan, Some(selection)),
        endpoints.http_url.as_deref(),
        Some(Arc::new(ClusterIgnition {
            cluster_dir: cluster_dir.to_owned(),
        })),
    )
    .await?;
    let mut tasks: Vec<tokio::task::AbortHandle> =
        content.tasks.iter().map(|t| t.abort_handle()).collect();

    let mut config = DhcpConfig::new(plan.management_ip(), plan.subnet().prefix_len());
    config.boot = BootConfig::new(content.base_url.clone());
    let leases = LeaseTable::load(&globals.state_dir)?;
    let server = DhcpServer::new(
        config,
        crate::netboot::reservations(plan, Some(selection)),
        leases,
    )?;
    let socket = match endpoints.dhcp_listen {
        Some(addr) => DhcpSocket::bind_plain(addr)?,
        None => {
            let iface = &rack.management.pxe_interface;
            if !endpoints.force {
                transport::check_interface(
                    iface,
                    &endpoints.sys_class_net,
                    Path::new("/proc/net/route"),
                    Some(rack.management.secondary_mac),
                )
                .with_context(|| {
                    format!("refusing to serve DHCP on {iface} (--force overrides)")
                })?;
            }
            DhcpSocket::bind_interface(iface, transport::SERVER_PORT)?
        }
    };
    let dhcp_addr = socket.local_addr();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    // The report store knows which nodes are installed.
    let installed: Arc<dyn InstalledNodes + Send + Sync> = Arc::new(content.reports.clone());
    let state_dir = globals.state_dir.clone();
    // DHCP counters appear on the HTTP server's /metrics.
    let stats = Arc::new(racker_netboot::dhcp::DhcpStats::default());
    content.metrics.register(stats.clone());
    let dhcp = tokio::spawn(async move {
        let shutdown = async {
            let _ = rx.await;
        };
        if let Err(e) =
            transport::serve_counted(socket, server, Some(state_dir), installed, stats, shutdown)
                .await
        {
            tracing::error!("DHCP stopped: {e}");
        }
    });
    tasks.push(dhcp.abort_handle());
    Ok(Netboot {
        reports: content.reports,
        http_addr: content.http_addr,
        base_url: content.base_url,
        dhcp_addr,
        address,
        tasks,
        shutdown: Some(tx),
    })
}
