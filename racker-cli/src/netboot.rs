//! `racker netboot`: the DHCP/PXE server of the rack-internal network, and
//! rendering an equivalent `dnsmasq.conf`.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use racker_inventory::AddressPlan;
use racker_netboot::dhcp::transport::{self, DhcpSocket};
use racker_netboot::dnsmasq::{self, DnsmasqOptions};
use racker_netboot::{DhcpConfig, DhcpServer, InstalledNodes, LeaseTable, Mode, Reservation};

use crate::context::{PlanArgs, load_rack};
use crate::globals::Globals;

const NETBOOT_EXAMPLES: &str = "\
Examples:
  # Serve DHCP/PXE on the management node's PXE interface (found from nodes.csv):
  racker netboot serve
  # Also hand out .128-.254 to unknown MACs:
  racker netboot serve --dynamic-range
  # Boot information only, next to an existing DHCP server:
  racker netboot serve --proxy
  # Unprivileged, on any address and port (simulator, tests):
  racker netboot serve --listen 127.0.0.1:6767
  # Keep dnsmasq instead: write an equivalent configuration:
  racker netboot render --dnsmasq /etc/dnsmasq.d
  # Show the DHCP leases:
  racker netboot leases";

/// `racker netboot ...`.
#[derive(Debug, Args)]
#[command(after_help = NETBOOT_EXAMPLES)]
pub(crate) struct NetbootCmd {
    #[command(subcommand)]
    command: NetbootSub,
}

#[derive(Debug, Subcommand)]
enum NetbootSub {
    /// Serve DHCP and PXE boot information on the rack-internal network.
    #[command(after_help = NETBOOT_EXAMPLES)]
    Serve(ServeArgs),
    /// Write configuration files for external servers (dnsmasq).
    #[command(after_help = NETBOOT_EXAMPLES)]
    Render(RenderArgs),
    /// Print the DHCP lease table of the state directory.
    Leases(LeasesArgs),
}

/// DHCP options shared by `serve` and `render`.
#[derive(Debug, Clone, Args)]
struct DhcpArgs {
    #[command(flatten)]
    plan: PlanArgs,
    /// ProxyDHCP: answer known PXE clients with boot information only (for
    /// networks that already have a DHCP server).
    #[arg(long)]
    proxy: bool,
    /// Hand out the dynamic range (.128-.254 of a /24) to unknown MACs.
    #[arg(long)]
    dynamic_range: bool,
    /// Lease time in seconds.
    #[arg(long, default_value_t = 120, value_name = "SECONDS")]
    lease_time: u64,
    /// Send this router (option 3); only for single-NIC setups.
    #[arg(long, value_name = "IP")]
    router: Option<Ipv4Addr>,
    /// Send these DNS servers (option 6); only for single-NIC setups.
    #[arg(long, value_name = "IP", value_delimiter = ',')]
    dns: Vec<Ipv4Addr>,
    /// Base URL of the HTTP boot server [default: http://<management IP>:8080].
    #[arg(long, value_name = "URL")]
    http_base: Option<String>,
    /// TFTP file for ARM64 UEFI clients (option 93 = 11).
    #[arg(long, default_value = "ipxe-arm64.efi", value_name = "FILE")]
    arm64_boot_file: String,
}

#[derive(Debug, Args)]
struct ServeArgs {
    #[command(flatten)]
    dhcp: DhcpArgs,
    /// Serve on this interface, port 67 [default: the management node's PXE
    /// interface, whose MAC is its secondary MAC in nodes.csv].
    #[arg(long, value_name = "IF", conflicts_with = "listen")]
    interface: Option<String>,
    /// Serve on a plain UDP socket instead (any address and port, no root;
    /// replies go back to the sender).
    #[arg(long, value_name = "ADDR:PORT")]
    listen: Option<SocketAddr>,
    /// Serve even on an interface that carries the default route or whose
    /// MAC is not the management node's secondary MAC.
    #[arg(long)]
    force: bool,
    /// Route table used to detect the default-route interface.
    #[arg(long, default_value = "/proc/net/route", hide = true)]
    proc_net_route: PathBuf,
}

#[derive(Debug, Args)]
struct RenderArgs {
    #[command(flatten)]
    dhcp: DhcpArgs,
    /// Write `dnsmasq.conf` into this directory.
    #[arg(long, value_name = "DIR", required = true)]
    dnsmasq: PathBuf,
    /// Interface for dnsmasq to bind [default: the PXE interface].
    #[arg(long, value_name = "IF")]
    interface: Option<String>,
    /// Let dnsmasq serve TFTP from this directory (the iPXE binaries).
    #[arg(long, value_name = "DIR")]
    tftp_root: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct LeasesArgs {
    /// Print JSON (the lease file format) instead of a table.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(globals: &Globals, cmd: NetbootCmd) -> anyhow::Result<ExitCode> {
    match cmd.command {
        NetbootSub::Serve(args) => serve(globals, args),
        NetbootSub::Render(args) => render(globals, args),
        NetbootSub::Leases(args) => leases(globals, &args),
    }
}

/// Every node's primary MAC and every BMC MAC, from the address plan.
fn reservations(plan: &AddressPlan) -> Vec<Reservation> {
    plan.nodes()
        .iter()
        .flat_map(|n| {
            [
                Reservation { mac: n.node.primary_mac, ip: n.ip, hostname: None },
                Reservation { mac: n.node.bmc_mac, ip: n.bmc_ip, hostname: None },
            ]
        })
        .collect()
}

fn dhcp_config(plan: &AddressPlan, args: &DhcpArgs) -> anyhow::Result<DhcpConfig> {
    let server_ip = plan.management_ip();
    let mut config = DhcpConfig::new(server_ip, plan.subnet().prefix_len());
    config.lease_time = Duration::from_secs(args.lease_time);
    config.dynamic_range = args.dynamic_range.then(|| plan.dynamic_range());
    config.router = args.router;
    config.dns.clone_from(&args.dns);
    config.mode = if args.proxy { Mode::Proxy } else { Mode::Full };
    if let Some(base) = &args.http_base {
        config.boot = racker_netboot::BootConfig::new(base.clone());
    }
    config.boot.arm64_file = Some(args.arm64_boot_file.clone());
    config.validate()?;
    Ok(config)
}

/// Installed nodes according to the boot-content report store (`/report`
/// callbacks recorded in the state directory).
struct ReportedInstalled(racker_netboot::report::ReportStore);

impl InstalledNodes for ReportedInstalled {
    fn is_installed(&self, mac: racker_inventory::MacAddr) -> bool {
        self.0.is_installed(mac)
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

fn serve(globals: &Globals, args: ServeArgs) -> anyhow::Result<ExitCode> {
    let rack = load_rack(globals, &args.dhcp.plan)?;
    let config = dhcp_config(&rack.plan, &args.dhcp)?;
    let leases = LeaseTable::load(&globals.state_dir)?;
    let server = DhcpServer::new(config, reservations(&rack.plan), leases)?;
    let interface = match (&args.listen, &args.interface) {
        (Some(_), _) => None,
        (None, Some(i)) => Some(i.clone()),
        (None, None) => Some(rack.management.pxe_interface.clone()),
    };
    if let Some(iface) = &interface {
        let checked = transport::check_interface(
            iface,
            &globals.sys_class_net,
            &args.proc_net_route,
            Some(rack.management.secondary_mac),
        );
        match checked {
            Ok(()) => {}
            Err(e) if args.force => eprintln!("warning: {e}; serving anyway (--force)"),
            Err(e) => return Err(e.into()),
        }
    }
    let installed = racker_netboot::report::ReportStore::open(&globals.state_dir)
        .context("opening the install reports in the state directory")?;
    let installed: Arc<dyn InstalledNodes + Send + Sync> = Arc::new(ReportedInstalled(installed));
    init_logging();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let state_dir = globals.state_dir.clone();
    runtime.block_on(async move {
        let socket = match (&args.listen, &interface) {
            (Some(addr), _) => DhcpSocket::bind_plain(*addr)?,
            (None, Some(iface)) => DhcpSocket::bind_interface(iface, transport::SERVER_PORT)?,
            (None, None) => anyhow::bail!("no interface to serve on"),
        };
        // Tests and scripts learn the bound port from this line.
        eprintln!("racker netboot: DHCP listening on {}", socket.local_addr());
        transport::serve(socket, server, Some(state_dir), installed, shutdown_signal()).await?;
        Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

fn render(globals: &Globals, args: RenderArgs) -> anyhow::Result<ExitCode> {
    let rack = load_rack(globals, &args.dhcp.plan)?;
    let config = dhcp_config(&rack.plan, &args.dhcp)?;
    let mut options = DnsmasqOptions::new();
    options.interface = Some(args.interface.unwrap_or_else(|| rack.management.pxe_interface.clone()));
    options.tftp_root = args.tftp_root;
    options.lease_file = Some(globals.state_dir.join("dnsmasq.leases"));
    if let Ok(store) = racker_netboot::report::ReportStore::open(&globals.state_dir) {
        options.installed = store.reports().iter().filter(|r| store.is_installed(r.mac)).map(|r| r.mac).collect();
    }
    let path = dnsmasq::write(&args.dnsmasq, &config, &reservations(&rack.plan), &options)?;
    println!("wrote {}", path.display());
    Ok(ExitCode::SUCCESS)
}

fn leases(globals: &Globals, args: &LeasesArgs) -> anyhow::Result<ExitCode> {
    let table = LeaseTable::load(&globals.state_dir)?;
    if args.json {
        print!("{}", String::from_utf8_lossy(&table.to_json()));
        return Ok(ExitCode::SUCCESS);
    }
    let now = std::time::SystemTime::now();
    println!("{:<17}  {:<15}  {:<8}  {}", "MAC", "IP", "KIND", "STATE");
    for lease in table.iter() {
        let kind = if lease.reserved { "reserved" } else { "dynamic" };
        let state = if lease.is_active(now) { "active" } else { "expired" };
        println!("{:<17}  {:<15}  {:<8}  {state}", lease.mac.to_string(), lease.ip.to_string(), kind);
    }
    Ok(ExitCode::SUCCESS)
}
