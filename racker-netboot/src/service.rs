//! DHCP, TFTP and HTTP wired together: one builder for `racker netboot
//! serve`, `racker bootstrap` and the demo (features `http` and `iface`).
//!
//! [`NetbootService::builder`] takes the state directory and the DHCP core's
//! configuration; [`NetbootServiceBuilder::start`] then, in this order:
//!
//! 1. loads the lease table (`<state-dir>/netboot/leases.json`);
//! 2. on an interface, checks it ([`crate::iface::check_interface`]: it
//!    exists, carries the expected MAC, carries no default route in any
//!    table or family) and refuses to go on unless forced — before anything
//!    touches the interface; a forced refusal is kept in
//!    [`NetbootService::forced_past`] for the caller to warn about;
//! 3. on an interface, brings it up and puts the server address on it
//!    ([`crate::iface::ensure_address`]), so TFTP and HTTP can bind to it;
//! 4. binds TFTP (the iPXE binaries, unless turned off) and HTTP, and
//!    chooses the base URL nodes use (the override, or the bound HTTP
//!    address with the server address for `0.0.0.0`);
//! 5. points DHCP at them: the boot URLs use that base URL and, when TFTP
//!    listens on one address of its own, `next-server` (`siaddr`) names it;
//! 6. binds DHCP (`SO_BINDTODEVICE` on the interface, or a plain socket)
//!    and serves, counting into the same `/metrics`, with installed nodes
//!    taken from the installer reports.
//!
//! ```no_run
//! use std::net::SocketAddr;
//! use std::path::Path;
//! use std::sync::Arc;
//!
//! use racker_inventory::MacAddr;
//! use racker_netboot::matchbox::NodeEntry;
//! use racker_netboot::service::{DhcpListen, NetbootService};
//! use racker_netboot::{DhcpConfig, IgnitionSource, Reservation};
//!
//! /// What `racker bootstrap` stage 1 needs (bootstrap/network.rs).
//! async fn bootstrap_network(
//!     state_dir: &Path,
//!     sys_class_net: &Path,
//!     pxe_interface: &str,
//!     secondary_mac: MacAddr,   // the management node's PXE NIC
//!     dhcp_listen: Option<SocketAddr>, // Some: plain UDP (simulator, tests)
//!     http_listen: Option<SocketAddr>,
//!     tftp_listen: Option<SocketAddr>,
//!     boot_files: Option<std::path::PathBuf>,
//!     http_url: Option<String>, // the base URL nodes use, if not the bound one
//!     force: bool,
//!     reservations: Vec<Reservation>,  // primary + BMC MACs, with host names
//!     nodes: Vec<NodeEntry>,           // the selection, minus excluded nodes
//!     ignition: Arc<dyn IgnitionSource>, // the rendered cluster directory
//! ) -> Result<NetbootService, Box<dyn std::error::Error>> {
//!     let config = DhcpConfig::new("172.24.213.1".parse()?, 24);
//!     let mut builder = NetbootService::builder(state_dir, config)
//!         .dhcp(match dhcp_listen {
//!             Some(addr) => DhcpListen::Socket(addr),
//!             None => DhcpListen::Interface(pxe_interface.to_owned()),
//!         })
//!         .sys_class_net(sys_class_net)
//!         .expected_mac(secondary_mac)
//!         .force(force)
//!         .reservations(reservations)
//!         .nodes(nodes)
//!         .ignition(ignition)
//!         .base_url(http_url)
//!         .boot_files(boot_files)
//!         // On plain UDP (simulator, tests) TFTP only runs when asked for.
//!         .tftp(tftp_listen.is_some() || dhcp_listen.is_none());
//!     if let Some(addr) = http_listen {
//!         builder = builder.http_listen(addr);
//!     }
//!     if let Some(addr) = tftp_listen {
//!         builder = builder.tftp_listen(addr);
//!     }
//!     let service = builder.start().await?;
//!     if let Some(refusal) = service.forced_past() {
//!         eprintln!("warning: {refusal}; serving anyway (--force)");
//!     }
//!     if let Some(address) = service.interface_address() {
//!         println!("✓ Network: {address}"); // 172.24.213.1/24 on eno2 (added)
//!     }
//!     println!(
//!         "✓ Network: DHCP on {:?}, HTTP on {} ({})",
//!         service.dhcp_addr(),
//!         service.http_addr(),
//!         service.base_url()
//!     );
//!     // Drive the nodes, watching `service.reports()`; at the end
//!     // `service.shutdown().await` (lease table saved) or `service.stop()`.
//!     Ok(service)
//! }
//! ```

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use racker_inventory::MacAddr;
use tokio::task::{JoinHandle, JoinSet};

use crate::dhcp::DhcpStats;
use crate::dhcp::transport::{self, DhcpSocket};
use crate::http::metrics::Metrics;
use crate::http::rackview::{RackPlan, RackStatusFile, RackStatusSource};
use crate::http::{HttpContent, HttpServer};
use crate::iface::{AddressChange, IfaceError, RouteSource};
use crate::matchbox::{Catalog, FlatcarBoot, NodeEntry};
use crate::report::{ReportKey, ReportSources, ReportStore};
use crate::tftp::server::{TftpServer, locate_boot_files};
use crate::tftp::transfer::TftpConfig;
use crate::trail::EventTrail;
use crate::{
    ContentError, DhcpConfig, DhcpError, DhcpServer, IgnitionDir, IgnitionSource, InstalledNodes,
    LeaseTable, Reservation,
};

/// Default HTTP port of the boot server.
pub const HTTP_PORT: u16 = 8080;
/// Default TFTP port.
pub const TFTP_PORT: u16 = 69;

/// Where DHCP listens.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DhcpListen {
    /// No DHCP: another DHCP server points nodes at us.
    Off,
    /// Port 67 (see [`NetbootServiceBuilder::dhcp_port`]) on this interface
    /// only (`SO_BINDTODEVICE`, needs root); replies go to the relay, the
    /// client or the interface's broadcast address. The interface is
    /// checked first and gets the server address.
    Interface(String),
    /// A plain UDP socket on any address and port (no root; replies go back
    /// to the sender): the simulator and tests.
    Socket(SocketAddr),
}

/// Why the netboot services could not start or stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// The DHCP side (configuration, lease table, interface guard, socket).
    #[error(transparent)]
    Dhcp(#[from] DhcpError),
    /// The PXE interface could not be brought up or given its address.
    #[error("putting {ip}/{prefix_len} on the PXE interface {interface}: {source}")]
    Address {
        /// The interface.
        interface: String,
        /// The server address.
        ip: Ipv4Addr,
        /// Its prefix length.
        prefix_len: u8,
        /// What rtnetlink said.
        #[source]
        source: IfaceError,
    },
    /// TFTP could not start (boot files missing, bind failed).
    #[error("starting TFTP on {addr}{hint}: {source}")]
    Tftp {
        /// The requested address.
        addr: SocketAddr,
        /// A hint for privileged ports.
        hint: &'static str,
        /// The underlying error.
        #[source]
        source: ContentError,
    },
    /// The HTTP side or the boot content (reports, matchbox data).
    #[error(transparent)]
    Content(#[from] ContentError),
    /// The matchbox gRPC API could not start (certificates, store, socket).
    #[cfg(feature = "grpc")]
    #[error("starting the matchbox gRPC API: {0}")]
    MatchboxApi(#[from] crate::matchbox_api::MatchboxApiError),
    /// A server task stopped unexpectedly (they serve until shut down).
    #[error("the {0} server stopped")]
    Stopped(&'static str),
    /// A server task panicked or was cancelled.
    #[error("the {what} server task failed: {source}")]
    Task {
        /// Which server.
        what: &'static str,
        /// The runtime's error.
        #[source]
        source: tokio::task::JoinError,
    },
}

/// Where the boot menu comes from.
#[derive(Debug, Clone)]
enum CatalogSource {
    /// racker's Flatcar installer profile for these nodes.
    Flatcar(Vec<NodeEntry>),
    /// A matchbox data directory (`profiles/`, `groups/`).
    MatchboxDir(PathBuf),
    /// A ready catalog.
    Ready(Catalog),
}

/// Options of the netboot services; see the [module docs](self).
#[derive(Debug, Clone)]
#[must_use = "call .start() to run the services"]
pub struct NetbootServiceBuilder {
    state_dir: PathBuf,
    config: DhcpConfig,
    dhcp: DhcpListen,
    dhcp_port: u16,
    reservations: Vec<Reservation>,
    persist_leases: bool,
    sys_class_net: PathBuf,
    expected_mac: Option<MacAddr>,
    routes: RouteSource,
    force: bool,
    ensure_address: bool,
    http: Option<SocketAddr>,
    base_url: Option<String>,
    tftp: bool,
    tftp_listen: Option<SocketAddr>,
    boot_files: Option<PathBuf>,
    tftp_config: TftpConfig,
    catalog: CatalogSource,
    kernel_console: Option<Vec<String>>,
    #[cfg(feature = "grpc")]
    boot_hook: Option<Arc<dyn crate::http::BootHook>>,
    #[cfg(feature = "grpc")]
    matchbox_grpc: Option<SocketAddr>,
    ignition: Option<Arc<dyn IgnitionSource>>,
    assets_dir: Option<PathBuf>,
    report_tokens: bool,
    report_sources: bool,
    loopback_reports: bool,
    rack_status: Option<Arc<dyn RackStatusSource>>,
}

/// The server address as put on the PXE interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceAddress {
    /// The interface.
    pub interface: String,
    /// The address.
    pub ip: Ipv4Addr,
    /// Its prefix length.
    pub prefix_len: u8,
    /// Whether it was added or already there.
    pub change: AddressChange,
}

impl std::fmt::Display for InterfaceAddress {
    /// `172.24.213.1/24 on eno2 (added|already present)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}/{} on {} ({})",
            self.ip,
            self.prefix_len,
            self.interface,
            match self.change {
                AddressChange::Added => "added",
                AddressChange::AlreadyPresent => "already present",
            }
        )
    }
}

/// The running services. Dropping it stops them (DHCP saves its lease
/// table first when the runtime keeps running).
#[derive(Debug)]
pub struct NetbootService {
    http_addr: SocketAddr,
    tftp_addr: Option<SocketAddr>,
    dhcp_addr: Option<SocketAddr>,
    base_url: String,
    reports: ReportStore,
    metrics: Arc<Metrics>,
    dhcp_stats: Option<Arc<DhcpStats>>,
    interface_address: Option<InterfaceAddress>,
    forced_past: Option<DhcpError>,
    content: JoinSet<(&'static str, Result<(), ContentError>)>,
    dhcp: Option<JoinHandle<Result<DhcpServer, DhcpError>>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    trail: EventTrail,
    #[cfg(feature = "grpc")]
    matchbox_api: Option<MatchboxApiInfo>,
}

/// The running matchbox gRPC API (see
/// [`NetbootServiceBuilder::matchbox_grpc`]).
#[cfg(feature = "grpc")]
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct MatchboxApiInfo {
    /// The bound address (port 0 resolved).
    pub addr: SocketAddr,
    /// Where its certificates are (server side and the client's).
    pub certs: crate::matchbox_api::CertPaths,
    /// Whether they were made by this start (first use).
    pub certs_made: bool,
}

/// Certificates (made on first use), store, boot hook and bound server of
/// the matchbox gRPC API.
#[cfg(feature = "grpc")]
async fn start_matchbox_api(
    state_dir: &std::path::Path,
    server_ip: IpAddr,
    addr: SocketAddr,
) -> Result<
    (
        MatchboxApiInfo,
        Arc<dyn crate::http::BootHook>,
        crate::matchbox_api::GrpcServer,
    ),
    ServiceError,
> {
    use crate::matchbox_api::{CertPaths, GrpcServer, Store, store_dir};
    let certs = CertPaths::in_state_dir(state_dir);
    let mut ips = vec![server_ip];
    if !addr.ip().is_unspecified() && addr.ip() != server_ip {
        ips.push(addr.ip());
    }
    let certs_made = certs.ensure(&ips)?;
    let store = Arc::new(Store::open(&store_dir(state_dir))?);
    let server = GrpcServer::bind(addr, store.clone(), &certs).await?;
    let info = MatchboxApiInfo {
        addr: server.local_addr(),
        certs,
        certs_made,
    };
    Ok((info, store, server))
}

impl NetbootService {
    /// Options for the services of `state_dir` (lease table, reports,
    /// Ignition and assets live there), DHCP configured by `dhcp` (its
    /// `boot.http_base` is replaced by the service's base URL, and its
    /// `boot.next_server`, when unset, by TFTP's address). Defaults: no DHCP
    /// ([`DhcpListen::Off`]), TFTP on `<server>:69` with the iPXE binaries
    /// of `/usr/lib/ipxe`, HTTP on `<server>:8080`, the Flatcar profile for
    /// no nodes, Ignition from `<state-dir>/ignition`, assets from
    /// `<state-dir>/assets`, routes from the kernel, not forced.
    pub fn builder(state_dir: impl Into<PathBuf>, dhcp: DhcpConfig) -> NetbootServiceBuilder {
        NetbootServiceBuilder {
            state_dir: state_dir.into(),
            config: dhcp,
            dhcp: DhcpListen::Off,
            dhcp_port: transport::SERVER_PORT,
            reservations: Vec::new(),
            persist_leases: true,
            sys_class_net: PathBuf::from("/sys/class/net"),
            expected_mac: None,
            routes: RouteSource::Kernel,
            force: false,
            ensure_address: true,
            http: None,
            base_url: None,
            tftp: true,
            tftp_listen: None,
            boot_files: None,
            tftp_config: TftpConfig::default(),
            catalog: CatalogSource::Flatcar(Vec::new()),
            kernel_console: None,
            #[cfg(feature = "grpc")]
            boot_hook: None,
            #[cfg(feature = "grpc")]
            matchbox_grpc: None,
            ignition: None,
            assets_dir: None,
            report_tokens: true,
            report_sources: true,
            loopback_reports: false,
            rack_status: None,
        }
    }

    /// The per-node event trail (also on disk and at `/api/events`).
    pub fn trail(&self) -> &EventTrail {
        &self.trail
    }

    /// Where HTTP listens.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// Where TFTP listens, when it runs.
    pub fn tftp_addr(&self) -> Option<SocketAddr> {
        self.tftp_addr
    }

    /// Where DHCP listens, when it runs.
    pub fn dhcp_addr(&self) -> Option<SocketAddr> {
        self.dhcp_addr
    }

    /// The matchbox gRPC API, when it was asked for.
    #[cfg(feature = "grpc")]
    pub fn matchbox_api(&self) -> Option<&MatchboxApiInfo> {
        self.matchbox_api.as_ref()
    }

    /// The base URL handed to nodes (no trailing slash).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The installer reports (also DHCP's "installed" predicate).
    pub fn reports(&self) -> &ReportStore {
        &self.reports
    }

    /// The counters behind `/metrics` (register more sources here).
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// DHCP's counters, when DHCP runs.
    pub fn dhcp_stats(&self) -> Option<&Arc<DhcpStats>> {
        self.dhcp_stats.as_ref()
    }

    /// The server address on the PXE interface, when DHCP serves one and
    /// [`NetbootServiceBuilder::ensure_address`] is on.
    pub fn interface_address(&self) -> Option<&InterfaceAddress> {
        self.interface_address.as_ref()
    }

    /// The interface guard's refusal that [`NetbootServiceBuilder::force`]
    /// overrode (warn the operator about it).
    pub fn forced_past(&self) -> Option<&DhcpError> {
        self.forced_past.as_ref()
    }

    /// Serve until `signal` completes (then stop as [`Self::shutdown`]
    /// does) or a server fails (the others are stopped and the failure
    /// returned).
    pub async fn run_until(mut self, signal: impl Future<Output = ()>) -> Result<(), ServiceError> {
        let mut content = std::mem::take(&mut self.content);
        let mut dhcp = self.dhcp.take();
        let outcome = tokio::select! {
            () = signal => None,
            failed = first_failure(&mut content) => Some(failed),
            ended = async {
                match dhcp.as_mut() {
                    Some(task) => task.await,
                    None => std::future::pending().await,
                }
            } => Some(match ended {
                Ok(Ok(_)) => Err(ServiceError::Stopped("DHCP")),
                Ok(Err(e)) => Err(e.into()),
                Err(source) => Err(ServiceError::Task { what: "DHCP", source }),
            }),
        };
        content.abort_all();
        match outcome {
            // The signal: DHCP saves its lease table and ends.
            None => self.finish_dhcp(dhcp).await,
            Some(failed) => {
                // DHCP (if still running) saves its lease table and ends
                // on its own.
                self.stop_now();
                failed
            }
        }
    }

    /// Stop: DHCP finishes (its lease table on disk), TFTP and HTTP are
    /// aborted.
    pub async fn shutdown(mut self) -> Result<(), ServiceError> {
        self.content.abort_all();
        let dhcp = self.dhcp.take();
        self.finish_dhcp(dhcp).await
    }

    /// Stop without waiting: DHCP is told to shut down (it saves its lease
    /// table on the runtime), TFTP and HTTP are aborted.
    pub fn stop(mut self) {
        self.content.abort_all();
        self.dhcp = None;
        self.stop_now();
    }

    fn stop_now(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }

    async fn finish_dhcp(
        &mut self,
        dhcp: Option<JoinHandle<Result<DhcpServer, DhcpError>>>,
    ) -> Result<(), ServiceError> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        match dhcp {
            None => Ok(()),
            Some(task) => match task.await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) => Err(e.into()),
                Err(source) => Err(ServiceError::Task {
                    what: "DHCP",
                    source,
                }),
            },
        }
    }
}

impl Drop for NetbootService {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        // `content` (a JoinSet) aborts its tasks when dropped.
    }
}

/// Completes when the first content server ends (always a failure: they
/// serve forever); pending forever when there is none.
async fn first_failure(
    tasks: &mut JoinSet<(&'static str, Result<(), ContentError>)>,
) -> Result<(), ServiceError> {
    let Some(done) = tasks.join_next().await else {
        return std::future::pending().await;
    };
    match done {
        Ok((what, Ok(()))) => Err(ServiceError::Stopped(what)),
        Ok((_, Err(e))) => Err(e.into()),
        Err(source) => Err(ServiceError::Task {
            what: "boot content",
            source,
        }),
    }
}

impl NetbootServiceBuilder {
    /// Where DHCP listens (default [`DhcpListen::Off`]).
    pub fn dhcp(mut self, listen: DhcpListen) -> Self {
        self.dhcp = listen;
        self
    }

    /// The port DHCP binds on an interface (default 67).
    pub fn dhcp_port(mut self, port: u16) -> Self {
        self.dhcp_port = port;
        self
    }

    /// Static addresses: every node's primary MAC and every BMC MAC.
    pub fn reservations(mut self, reservations: impl IntoIterator<Item = Reservation>) -> Self {
        self.reservations = reservations.into_iter().collect();
        self
    }

    /// Load and save the lease table in the state directory (default on;
    /// off keeps leases in memory only).
    pub fn persist_leases(mut self, on: bool) -> Self {
        self.persist_leases = on;
        self
    }

    /// Where the interface guard reads MACs (default `/sys/class/net`).
    pub fn sys_class_net(mut self, dir: impl Into<PathBuf>) -> Self {
        self.sys_class_net = dir.into();
        self
    }

    /// The MAC the DHCP interface must carry (the management node's
    /// secondary MAC); `None` by default (any MAC).
    pub fn expected_mac(mut self, mac: MacAddr) -> Self {
        self.expected_mac = Some(mac);
        self
    }

    /// Where the interface guard learns routes (default: the kernel).
    pub fn route_source(mut self, routes: RouteSource) -> Self {
        self.routes = routes;
        self
    }

    /// Serve DHCP on an interface the guard refuses (default off); the
    /// refusal is kept in [`NetbootService::forced_past`].
    pub fn force(mut self, force: bool) -> Self {
        self.force = force;
        self
    }

    /// Put the server address on the DHCP interface (default on).
    pub fn ensure_address(mut self, on: bool) -> Self {
        self.ensure_address = on;
        self
    }

    /// HTTP address (default `<server>:8080`; port 0 picks one).
    pub fn http_listen(mut self, addr: SocketAddr) -> Self {
        self.http = Some(addr);
        self
    }

    /// The base URL nodes use to reach HTTP (default: the bound address,
    /// with the server address for `0.0.0.0`). Used by DHCP's boot URLs
    /// and the generated boot profile alike.
    pub fn base_url(mut self, url: Option<String>) -> Self {
        self.base_url = url.map(|u| u.trim_end_matches('/').to_owned());
        self
    }

    /// Serve the iPXE binaries over TFTP (default on); off for nodes that
    /// get iPXE elsewhere (the simulated rack).
    pub fn tftp(mut self, on: bool) -> Self {
        self.tftp = on;
        self
    }

    /// TFTP address (default `<server>:69`; port 0 picks one).
    pub fn tftp_listen(mut self, addr: SocketAddr) -> Self {
        self.tftp_listen = Some(addr);
        self
    }

    /// Directory holding `undionly.kpxe` and `ipxe.efi` (default
    /// `/usr/lib/ipxe`); also served over HTTP for UEFI HTTP boot.
    pub fn boot_files(mut self, dir: Option<PathBuf>) -> Self {
        self.boot_files = dir;
        self
    }

    /// TFTP transfer settings.
    pub fn tftp_config(mut self, config: TftpConfig) -> Self {
        self.tftp_config = config;
        self
    }

    /// Ask `hook` first on the HTTP boot endpoints (the matchbox gRPC
    /// API's store, docs/lokomotive.md).
    #[cfg(feature = "grpc")]
    pub fn boot_hook(mut self, hook: Arc<dyn crate::http::BootHook>) -> Self {
        self.boot_hook = Some(hook);
        self
    }

    /// Also serve the matchbox-compatible gRPC API (mutual TLS) on `addr`
    /// (docs/lokomotive.md): its certificates are made on first use in
    /// `<state-dir>/matchbox/certs` and `<state-dir>/matchbox-client` (for
    /// the service's address and `addr`'s), the stored objects live in
    /// `<state-dir>/matchbox`, and the HTTP boot endpoints answer from them
    /// first (replacing a [`boot_hook`](Self::boot_hook)).
    #[cfg(feature = "grpc")]
    pub fn matchbox_grpc(mut self, addr: Option<SocketAddr>) -> Self {
        self.matchbox_grpc = addr;
        self
    }

    /// Kernel console arguments of the generated Flatcar installer profile
    /// (the rack's console, e.g. `console=ttyS1,57600n8`, so the install
    /// shows over serial-over-LAN) instead of [`FlatcarBoot`]'s default.
    pub fn kernel_console(mut self, args: Vec<String>) -> Self {
        self.kernel_console = Some(args);
        self
    }

    /// Boot these nodes with racker's Flatcar installer profile (the
    /// default, for no nodes).
    pub fn nodes(mut self, nodes: impl IntoIterator<Item = NodeEntry>) -> Self {
        self.catalog = CatalogSource::Flatcar(nodes.into_iter().collect());
        self
    }

    /// Use the profiles and groups of a matchbox data directory instead.
    pub fn matchbox_data(mut self, dir: impl Into<PathBuf>) -> Self {
        self.catalog = CatalogSource::MatchboxDir(dir.into());
        self
    }

    /// Use this catalog instead.
    pub fn catalog(mut self, catalog: Catalog) -> Self {
        self.catalog = CatalogSource::Ready(catalog);
        self
    }

    /// Where Ignition configs come from (default `<state-dir>/ignition`).
    pub fn ignition(mut self, source: Arc<dyn IgnitionSource>) -> Self {
        self.ignition = Some(source);
        self
    }

    /// Directory served under `/assets/` (default `<state-dir>/assets`).
    pub fn assets_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.assets_dir = Some(dir.into());
        self
    }

    /// Require each install report to carry the node's token (default
    /// on; the key is `<state-dir>/netboot/report.key`, created on first
    /// use).
    pub fn report_tokens(mut self, on: bool) -> Self {
        self.report_tokens = on;
        self
    }

    /// Accept a node's install report only from its planned address (its
    /// reservation) or the address DHCP leased to it (default on; see
    /// [`crate::report::ReportSources`]). Not with ProxyDHCP, where another
    /// server assigns the addresses.
    pub fn report_sources(mut self, on: bool) -> Self {
        self.report_sources = on;
        self
    }

    /// Also accept reports from loopback clients: a simulated rack whose
    /// nodes all report from 127.0.0.1. Honoured only when the HTTP server
    /// listens on a loopback address (default off; never for a real
    /// interface).
    pub fn loopback_reports(mut self, on: bool) -> Self {
        self.loopback_reports = on;
        self
    }

    /// Where the rack view (`/`, `/api/rack`) learns each node's state and
    /// power (default: `<state-dir>/rack-status.json`, which a bootstrap
    /// keeps current).
    pub fn rack_status(mut self, source: Arc<dyn RackStatusSource>) -> Self {
        self.rack_status = Some(source);
        self
    }

    /// Start the services (see the [module docs](self) for the order).
    /// Must be called inside a multi-threaded or current-thread tokio
    /// runtime, which then runs them.
    pub async fn start(self) -> Result<NetbootService, ServiceError> {
        let Self {
            state_dir,
            mut config,
            dhcp,
            dhcp_port,
            reservations,
            persist_leases,
            sys_class_net,
            expected_mac,
            routes,
            force,
            ensure_address,
            http,
            base_url,
            tftp,
            tftp_listen,
            boot_files,
            tftp_config,
            catalog,
            kernel_console,
            #[cfg(feature = "grpc")]
            boot_hook,
            #[cfg(feature = "grpc")]
            matchbox_grpc,
            ignition,
            assets_dir,
            report_tokens,
            report_sources,
            loopback_reports,
            rack_status,
        } = self;
        let server_ip = config.server_ip;
        if dhcp != DhcpListen::Off {
            config.validate()?;
        }
        let leases = match (&dhcp, persist_leases) {
            (DhcpListen::Off, _) => None,
            (_, true) => Some(LeaseTable::load(&state_dir)?),
            (_, false) => Some(LeaseTable::new()),
        };

        // The guard runs before anything touches the interface.
        let mut forced_past = None;
        let mut interface_address = None;
        if let DhcpListen::Interface(interface) = &dhcp {
            let checked =
                crate::iface::check_interface(interface, &sys_class_net, expected_mac, &routes)
                    .await;
            match checked {
                Ok(()) => {}
                Err(e) if force => forced_past = Some(e),
                Err(e) => return Err(e.into()),
            }
            if ensure_address {
                let prefix_len = config.prefix_len;
                let change = crate::iface::ensure_address(interface, server_ip, prefix_len)
                    .await
                    .map_err(|source| ServiceError::Address {
                        interface: interface.clone(),
                        ip: server_ip,
                        prefix_len,
                        source,
                    })?;
                interface_address = Some(InterfaceAddress {
                    interface: interface.clone(),
                    ip: server_ip,
                    prefix_len,
                    change,
                });
            }
        }

        let server = IpAddr::V4(server_ip);
        let metrics = Arc::new(Metrics::default());
        let reports = ReportStore::open(&state_dir)?;
        let mut known: Vec<MacAddr> = reservations.iter().map(|r| r.mac).collect();
        if let CatalogSource::Flatcar(nodes) = &catalog {
            known.extend(nodes.iter().map(|n| n.mac));
        }
        let trail = EventTrail::open(&state_dir, known);
        let tftp = if tftp {
            let addr = tftp_listen.unwrap_or(SocketAddr::new(server, TFTP_PORT));
            let hint = if addr.port() < 1024 {
                " (a port below 1024 needs root)"
            } else {
                ""
            };
            let tftp_err = |source| ServiceError::Tftp { addr, hint, source };
            // The iPXE binaries are resolved (links followed) at start-up;
            // a missing or unreadable one stops the service by name.
            let root = locate_boot_files(boot_files.as_deref()).map_err(tftp_err)?;
            let server = TftpServer::bind(addr, root.dir(), tftp_config, metrics.tftp.clone())
                .await
                .map_err(tftp_err)?
                .with_boot_files(root.clone())
                .with_trail(trail.clone());
            Some((server, root))
        } else {
            None
        };
        // HTTP is bound before the base URL is chosen, so port 0 resolves.
        let http_addr = http.unwrap_or(SocketAddr::new(server, HTTP_PORT));
        let listener = tokio::net::TcpListener::bind(http_addr)
            .await
            .map_err(|source| ContentError::Socket {
                what: "binding HTTP",
                addr: http_addr,
                source,
            })?;
        let http_server_addr = listener
            .local_addr()
            .map_err(|source| ContentError::Socket {
                what: "binding HTTP",
                addr: http_addr,
                source,
            })?;
        let base_url = base_url.unwrap_or_else(|| {
            let host = if http_server_addr.ip().is_unspecified() {
                server
            } else {
                http_server_addr.ip()
            };
            format!("http://{}", SocketAddr::new(host, http_server_addr.port()))
        });
        let rack_nodes = match &catalog {
            CatalogSource::Flatcar(nodes) => nodes.clone(),
            _ => Vec::new(),
        };
        let rack_plan = RackPlan {
            nodes: rack_nodes,
            reservations: reservations.clone(),
        };
        let rack_status =
            rack_status.unwrap_or_else(|| Arc::new(RackStatusFile::in_state_dir(&state_dir)));
        let catalog = match catalog {
            CatalogSource::Flatcar(nodes) => {
                let mut boot = FlatcarBoot::new(&base_url);
                if let Some(console) = kernel_console {
                    boot.console = console;
                }
                Catalog::flatcar(&nodes, &boot)
            }
            CatalogSource::MatchboxDir(dir) => Catalog::load_dir(&dir)?,
            CatalogSource::Ready(c) => c,
        };
        let ignition = ignition.unwrap_or_else(|| Arc::new(IgnitionDir::in_state_dir(&state_dir)));
        let assets = assets_dir.unwrap_or_else(|| state_dir.join("assets"));
        let mut content =
            HttpContent::new(catalog, reports.clone(), ignition, &assets, metrics.clone())
                .with_trail(trail.clone())
                .with_rack_view(rack_plan, rack_status);
        if report_tokens {
            content = content.with_report_key(ReportKey::load_or_create(&state_dir)?);
        }
        // ProxyDHCP: another server hands out the addresses, so racker
        // knows neither the planned nor the leased one; the token alone
        // vouches for a report then.
        let proxy = dhcp != DhcpListen::Off && config.mode == crate::dhcp::Mode::Proxy;
        if report_sources && proxy {
            tracing::info!(
                "ProxyDHCP: install reports are checked by token only (another server assigns the nodes' addresses)"
            );
        }
        if report_sources && !proxy {
            let loopback = loopback_reports && http_server_addr.ip().is_loopback();
            if loopback_reports && !loopback {
                tracing::warn!(
                    "install reports from loopback are allowed only when HTTP listens on loopback, not on {http_server_addr}"
                );
            }
            let planned = reservations.iter().map(|r| (r.mac, IpAddr::V4(r.ip)));
            let mut sources = ReportSources::new(planned).allow_loopback(loopback);
            if leases.is_some() && persist_leases {
                sources = sources.with_leases(&state_dir);
            }
            content = content.with_report_sources(sources);
        }
        let mut tasks = JoinSet::new();
        #[cfg(feature = "grpc")]
        let mut matchbox_api = None;
        #[cfg(feature = "grpc")]
        {
            let mut boot_hook = boot_hook;
            if let Some(addr) = matchbox_grpc {
                let (info, hook, server) = start_matchbox_api(&state_dir, server, addr).await?;
                boot_hook = Some(hook);
                let local = info.addr;
                tasks.spawn(async move {
                    let result = server.run().await.map_err(|e| ContentError::Socket {
                        what: "serving the matchbox gRPC API",
                        addr: local,
                        source: std::io::Error::other(e),
                    });
                    ("matchbox gRPC", result)
                });
                matchbox_api = Some(info);
            }
            if let Some(hook) = boot_hook {
                content = content.with_hook(hook);
            }
        }
        let mut tftp_addr = None;
        if let Some((tftp, root)) = tftp {
            content = content.with_boot_files(&root);
            tftp_addr = Some(tftp.local_addr());
            tasks.spawn(async move { ("TFTP", tftp.run().await) });
        }
        let http = HttpServer::from_listener(listener, content)?;
        tasks.spawn(async move { ("HTTP", http.run().await) });

        let mut service = NetbootService {
            http_addr: http_server_addr,
            tftp_addr,
            dhcp_addr: None,
            base_url,
            reports,
            metrics,
            dhcp_stats: None,
            interface_address,
            forced_past,
            content: tasks,
            dhcp: None,
            shutdown: None,
            #[cfg(feature = "grpc")]
            matchbox_api,
            trail,
        };
        let Some(leases) = leases else {
            return Ok(service);
        };
        // DHCP points at the content servers just started.
        config.boot.http_base.clone_from(&service.base_url);
        if config.boot.next_server.is_none()
            && let Some(IpAddr::V4(ip)) = tftp_addr.map(|a| a.ip())
            && !ip.is_unspecified()
            && !ip.is_loopback()
        {
            config.boot.next_server = Some(ip);
        }
        let dhcp_server = DhcpServer::new(config, reservations, leases)?;
        let socket = match &dhcp {
            DhcpListen::Interface(interface) => DhcpSocket::bind_interface(interface, dhcp_port)?,
            DhcpListen::Socket(addr) => DhcpSocket::bind_plain(*addr)?,
            DhcpListen::Off => return Ok(service),
        };
        service.dhcp_addr = Some(socket.local_addr());
        let stats = Arc::new(DhcpStats::default());
        stats.attach_trail(service.trail.clone());
        service.metrics.register(stats.clone());
        service.dhcp_stats = Some(stats.clone());
        let installed: Arc<dyn InstalledNodes + Send + Sync> = Arc::new(service.reports.clone());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        service.shutdown = Some(tx);
        let lease_dir = persist_leases.then(|| state_dir.clone());
        service.dhcp = Some(tokio::spawn(async move {
            let shutdown = async {
                let _ = rx.await;
            };
            transport::serve_counted(socket, dhcp_server, lease_dir, installed, stats, shutdown)
                .await
        }));
        Ok(service)
    }
}

/// What a running `racker netboot serve` leaves in its state directory
/// (`<state-dir>/netboot/service.json`) so `racker bootstrap` uses it
/// instead of binding a second server (docs/netboot.md, "As a service").
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct ServiceMarker {
    /// The serving process.
    pub pid: u32,
    /// Where HTTP listens.
    pub http: SocketAddr,
    /// The base URL nodes use.
    pub base_url: String,
    /// Where DHCP listens, when it runs.
    pub dhcp: Option<SocketAddr>,
}

/// Path of the service marker.
pub fn marker_path(state_dir: &std::path::Path) -> PathBuf {
    state_dir.join("netboot").join("service.json")
}

impl ServiceMarker {
    /// The marker of `service`, run by this process.
    pub fn of(service: &NetbootService) -> Self {
        Self {
            pid: std::process::id(),
            http: service.http_addr(),
            base_url: service.base_url().to_owned(),
            dhcp: service.dhcp_addr(),
        }
    }

    /// Write it (atomically).
    pub fn write(&self, state_dir: &std::path::Path) -> Result<(), ContentError> {
        let path = marker_path(state_dir);
        let json = serde_json::to_vec(self).map_err(|source| ContentError::Json {
            path: path.clone(),
            source,
        })?;
        crate::report::write_atomic(&path, &json)
    }

    /// Remove it if it is this process's.
    pub fn remove_own(state_dir: &std::path::Path) {
        if Self::read(state_dir).is_some_and(|m| m.pid == std::process::id()) {
            let _ = std::fs::remove_file(marker_path(state_dir));
        }
    }

    /// The marker, if one is there.
    pub fn read(state_dir: &std::path::Path) -> Option<Self> {
        let bytes = std::fs::read(marker_path(state_dir)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// The marker of a service that runs and answers `GET /api/health`
    /// with its pid within `timeout`; `None` when there is none (a stale
    /// marker of a dead process is ignored).
    pub async fn running(
        state_dir: &std::path::Path,
        timeout: std::time::Duration,
    ) -> Option<Self> {
        let marker = Self::read(state_dir)?;
        if !std::path::Path::new(&format!("/proc/{}", marker.pid)).exists() {
            return None;
        }
        let probe = async {
            use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
            let mut stream = tokio::net::TcpStream::connect(marker.http).await.ok()?;
            stream
                .write_all(b"GET /api/health HTTP/1.0\r\nHost: racker\r\nConnection: close\r\n\r\n")
                .await
                .ok()?;
            let mut reply = Vec::new();
            stream.read_to_end(&mut reply).await.ok()?;
            let text = String::from_utf8_lossy(&reply);
            (text.starts_with("HTTP/1.") && text.contains(&format!("\"pid\":{}", marker.pid)))
                .then_some(())
        };
        tokio::time::timeout(timeout, probe).await.ok().flatten()?;
        Some(marker)
    }
}

/// A boot file nodes will request that the server cannot serve.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Missing {
    /// What it is: `kernel`, `initrd`, `image`, `image signature`,
    /// `iPXE binaries`, `Ignition of 00:11:...`.
    pub what: String,
    /// Where it should be, or why it cannot be used.
    pub detail: String,
}

impl std::fmt::Display for Missing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.what, self.detail)
    }
}

/// The Flatcar files a PXE install requests below `<assets>/flatcar/current`
/// (kernel and initrd by iPXE, image and signature by `flatcar-install`).
pub const PREFLIGHT_ASSETS: [(&str, &str); 4] = [
    ("kernel", crate::matchbox::PXE_KERNEL),
    ("initrd", crate::matchbox::PXE_INITRD),
    ("image", "flatcar_production_image.bin.bz2"),
    ("image signature", "flatcar_production_image.bin.bz2.sig"),
];

/// Check every boot file the `nodes` will request before any of them is
/// powered: the Flatcar kernel, initrd, image and its signature under
/// `assets_dir/flatcar/current`, the iPXE binaries when TFTP serves them
/// (`boot_files`: `Some(dir or default)`), and each node's install
/// Ignition. Empty: all there.
pub fn preflight(
    assets_dir: &std::path::Path,
    boot_files: Option<Option<&std::path::Path>>,
    ignition: &dyn IgnitionSource,
    nodes: &[MacAddr],
) -> Vec<Missing> {
    let mut missing = Vec::new();
    let jail = crate::tftp::jail::Jail::new(assets_dir).ok();
    for (what, file) in PREFLIGHT_ASSETS {
        let rel = format!("flatcar/current/{file}");
        let ok = jail
            .as_ref()
            .and_then(|j| j.resolve(&rel).ok())
            .and_then(|p| std::fs::metadata(p).ok())
            .is_some_and(|m| m.is_file() && m.len() > 0);
        if !ok {
            missing.push(Missing {
                what: what.to_owned(),
                detail: format!("{} missing", assets_dir.join(&rel).display()),
            });
        }
    }
    if let Some(dir) = boot_files
        && let Err(e) = locate_boot_files(dir)
    {
        missing.push(Missing {
            what: "iPXE binaries".to_owned(),
            detail: e.to_string(),
        });
    }
    for mac in nodes {
        match ignition.ignition(*mac, crate::IgnitionProfile::Install) {
            Ok(Some(_)) => {}
            Ok(None) => missing.push(Missing {
                what: format!("Ignition of {mac}"),
                detail: "not rendered".to_owned(),
            }),
            Err(e) => missing.push(Missing {
                what: format!("Ignition of {mac}"),
                detail: e.to_string(),
            }),
        }
    }
    missing
}
