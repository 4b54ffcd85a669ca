//! `racker netboot`: the DHCP/PXE server of the rack-internal network, and
//! rendering an equivalent `dnsmasq.conf`.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use racker_inventory::AddressPlan;
use racker_netboot::dnsmasq::{self, DnsmasqOptions};
use racker_netboot::iface::RouteSource;
use racker_netboot::service::{DhcpListen, NetbootService, ServiceError};
use racker_netboot::{DhcpConfig, LeaseTable};

use crate::context::{PlanArgs, SelectionArgs, load_rack};
use crate::globals::Globals;
use crate::netboot_content::{self, ContentArgs, FetchAssetsArgs, RenderMatchboxArgs};
use crate::output;
use racker_bootstrap::netboot_setup::{self, DhcpSettings};

const NETBOOT_EXAMPLES: &str = "\
Examples:
  # Serve DHCP/PXE on the management node's PXE interface (found from nodes.csv),
  # TFTP on <management IP>:69 and HTTP on <management IP>:8080:
  racker netboot serve
  # Also hand out .128-.254 to unknown MACs:
  racker netboot serve --dynamic-range
  # Boot information only, next to an existing DHCP server:
  racker netboot serve --proxy
  # Unprivileged, on any address and port (simulator, tests):
  racker netboot serve --listen 127.0.0.1:6767
  # Boot content only, an existing DHCP server points at us:
  racker netboot serve --no-dhcp
  # Keep dnsmasq / matchbox instead: write equivalent configurations:
  racker netboot render --dnsmasq /etc/dnsmasq.d --matchbox /var/lib/matchbox
  # Download and verify the Flatcar kernel, initrd and image:
  racker netboot fetch-assets --signing-key Flatcar_Image_Signing_Key.asc
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
    /// Serve DHCP, TFTP (iPXE binaries) and HTTP (iPXE scripts, Ignition,
    /// assets, install reports) on the rack-internal network.
    #[command(after_help = NETBOOT_EXAMPLES)]
    Serve(Box<ServeArgs>),
    /// Write configuration for external servers (dnsmasq, matchbox).
    #[command(after_help = NETBOOT_EXAMPLES)]
    Render(Box<RenderArgs>),
    /// Download and signature-check the Flatcar PXE kernel, initrd and image
    /// into the state directory.
    FetchAssets(FetchAssetsArgs),
    /// Print the DHCP lease table of the state directory.
    Leases(LeasesArgs),
    /// Write the management node's own install (iPXE script, Ignition,
    /// racker's binary for in-band persistent EFI disk boot) where
    /// `netboot serve` serves it.
    ManagementNode(crate::management_node::ManagementNodeArgs),
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
    /// Lease time (seconds, or e.g. 2m, 12h, 1d) [default: 1 day: BMCs and
    /// nodes keep their reserved address and renew every 12 hours, so a
    /// netboot service that is down for a while loses nothing].
    #[arg(long, default_value = "1d", value_parser = racker_inventory::parse_duration, value_name = "DURATION")]
    lease_time: Duration,
    /// Send this router (option 3); only for single-NIC setups.
    #[arg(long, value_name = "IP")]
    router: Option<Ipv4Addr>,
    /// Send these DNS servers (option 6); only for single-NIC setups.
    #[arg(long, value_name = "IP", value_delimiter = ',')]
    dns: Vec<Ipv4Addr>,
    /// Base URL nodes use to reach the HTTP boot server [default: the HTTP
    /// server started by `serve`, or http://<management IP>:8080].
    #[arg(long, value_name = "URL")]
    http_base_url: Option<String>,
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
    /// Read the routes that detect the default-route interface from this
    /// file in /proc/net/route format instead of asking the kernel (tests).
    #[arg(long, value_name = "FILE", hide = true)]
    proc_net_route: Option<PathBuf>,
    /// Also serve the matchbox-compatible gRPC API (mutual TLS) for
    /// Lokomotive on ADDR:PORT, e.g. 172.24.213.1:8081 [default: off; the
    /// service unit sets it through its environment file after a
    /// Lokomotive bootstrap].
    #[arg(long, value_name = "ADDR:PORT", env = "RACKER_MATCHBOX_GRPC")]
    matchbox_grpc: Option<SocketAddr>,
    #[command(flatten)]
    content: ContentArgs,
}

#[derive(Debug, Args)]
struct RenderArgs {
    #[command(flatten)]
    dhcp: DhcpArgs,
    /// Write `dnsmasq.conf` into this directory.
    #[arg(long, value_name = "DIR", required_unless_present = "matchbox")]
    dnsmasq: Option<PathBuf>,
    /// Write matchbox `profiles/` and `groups/` into this data directory.
    #[arg(long, value_name = "DIR")]
    matchbox: Option<PathBuf>,
    #[command(flatten)]
    selection: SelectionArgs,
    /// Interface for dnsmasq to bind [default: the PXE interface].
    #[arg(long, value_name = "IF")]
    interface: Option<String>,
    /// Let dnsmasq serve TFTP from this directory (the iPXE binaries).
    #[arg(long, value_name = "DIR")]
    tftp_root: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct LeasesArgs {
    /// Old spelling of `-o json`.
    #[arg(long, hide = true)]
    json: bool,
}

pub(crate) fn run(globals: &Globals, cmd: NetbootCmd) -> anyhow::Result<ExitCode> {
    match cmd.command {
        NetbootSub::Serve(args) => serve(globals, *args),
        NetbootSub::Render(args) => render(globals, *args),
        NetbootSub::FetchAssets(args) => netboot_content::run_fetch_assets(globals, &args),
        NetbootSub::Leases(args) => leases(globals, &args),
        NetbootSub::ManagementNode(args) => crate::management_node::run(globals, &args),
    }
}

use racker_bootstrap::network::reservations;

fn dhcp_config(plan: &AddressPlan, args: &DhcpArgs) -> anyhow::Result<DhcpConfig> {
    let mut settings = DhcpSettings::default();
    settings.proxy = args.proxy;
    settings.dynamic_range = args.dynamic_range;
    settings.lease_time = args.lease_time;
    settings.router = args.router;
    settings.dns.clone_from(&args.dns);
    settings.http_base_url.clone_from(&args.http_base_url);
    settings.arm64_boot_file.clone_from(&args.arm64_boot_file);
    Ok(netboot_setup::dhcp_config(plan, &settings)?)
}

fn serve(globals: &Globals, args: ServeArgs) -> anyhow::Result<ExitCode> {
    let rack = load_rack(globals, &args.dhcp.plan)?;
    let config = dhcp_config(&rack.plan, &args.dhcp)?;
    let dhcp = match (args.content.no_dhcp, &args.listen, &args.interface) {
        (true, _, _) => DhcpListen::Off,
        (false, Some(addr), _) => DhcpListen::Socket(*addr),
        (false, None, Some(iface)) => DhcpListen::Interface(iface.clone()),
        (false, None, None) => DhcpListen::Interface(rack.management.pxe_interface.clone()),
    };
    let content = &args.content;
    // Ignition from the cluster directory of the recorded bootstrap (so the
    // service keeps serving what `racker bootstrap` rendered), else
    // <state-dir>/ignition.
    let ignition = netboot_setup::served_ignition(&globals.state_dir);
    let preflight_ignition = ignition.clone();
    let mut builder = NetbootService::builder(&globals.state_dir, config)
        .ignition(ignition)
        .dhcp(dhcp)
        .reservations(reservations(&rack.plan, None))
        .sys_class_net(&globals.sys_class_net)
        .expected_mac(rack.management.secondary_mac)
        .force(args.force)
        .route_source(match &args.proc_net_route {
            Some(file) => RouteSource::ProcNetRoute(file.clone()),
            None => RouteSource::Kernel,
        })
        .base_url(args.dhcp.http_base_url.clone())
        .tftp(!content.without_tftp)
        .boot_files(content.boot_files.clone())
        .kernel_console(racker_bootstrap::network::installer_console(
            &content.kernel_console,
        ))
        .nodes(racker_bootstrap::network::node_entries(&rack.plan, None));
    if let Some(addr) = content.http_listen {
        // A rack on loopback only (the simulator): every node reports from
        // 127.0.0.1 (docs/netboot.md, "Install reports").
        builder = builder
            .http_listen(addr)
            .loopback_reports(addr.ip().is_loopback());
    }
    if let Some(addr) = content.tftp_listen {
        builder = builder.tftp_listen(addr);
    }
    if let Some(dir) = &content.matchbox_data {
        builder = builder.matchbox_data(dir);
    }
    // The matchbox gRPC API's store answers the HTTP boot endpoints before
    // racker's own profiles (docs/lokomotive.md).
    builder = builder.matchbox_grpc(args.matchbox_grpc);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let service = builder.start().await.map_err(|e| match e {
            ServiceError::Tftp { hint, .. } if !hint.is_empty() => anyhow::Error::new(e).context(
                "TFTP port below 1024 needs root (or use --tftp-listen ADDR:PORT with a high port)",
            ),
            e => anyhow::Error::new(e),
        })?;
        if let Some(refusal) = service.forced_past() {
            output::warn(format_args!("{refusal}; serving anyway (--force)"));
        }
        if let Some(address) = service.interface_address() {
            output::progress(format_args!("racker netboot: {address}"));
        }
        // Preflight: say what nodes would miss (their /ipxe is refused
        // until it is there).
        let preflight =
            netboot_setup::serve_preflight(&globals.state_dir, &*preflight_ignition, &rack.plan);
        for m in &preflight.files {
            output::warn(m);
        }
        if !preflight.files.is_empty() {
            output::warn(
                "nodes cannot PXE-install until then (their iPXE script is refused): racker netboot fetch-assets",
            );
        }
        if preflight.without_ignition > 0 {
            output::warn(format_args!(
                "{} of {} node(s) have no install Ignition yet (racker bootstrap or racker render writes it)",
                preflight.without_ignition, preflight.nodes
            ));
        }
        racker_netboot::service::ServiceMarker::of(&service)
            .write(&globals.state_dir)
            .context("writing the service marker")?;
        output::progress(format_args!(
            "racker netboot: HTTP listening on {} (nodes use {}), TFTP on {}",
            service.http_addr(),
            service.base_url(),
            service
                .tftp_addr()
                .map_or_else(|| "-".to_owned(), |a| a.to_string())
        ));
        match service.dhcp_addr() {
            // Tests and scripts learn the bound port from this line.
            Some(addr) => output::progress(format_args!("racker netboot: DHCP listening on {addr}")),
            None => output::progress("racker netboot: DHCP disabled (--no-dhcp)"),
        }
        if let Some(api) = service.matchbox_api() {
            if api.certs_made {
                output::progress(format_args!(
                    "racker netboot: made the matchbox API certificates in {} and {}",
                    api.certs.server_dir.display(),
                    api.certs.client_dir.display()
                ));
            }
            // Tests and scripts learn the bound port from this line.
            output::progress(format_args!(
                "racker netboot: matchbox gRPC API (mutual TLS) listening on {}",
                api.addr
            ));
        }
        let served = service.run_until(shutdown_signal()).await;
        racker_netboot::service::ServiceMarker::remove_own(&globals.state_dir);
        served?;
        anyhow::Ok(())
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
    if let Some(dir) = &args.matchbox {
        let matchbox = RenderMatchboxArgs {
            matchbox: dir.clone(),
            plan: args.dhcp.plan.clone(),
            selection: args.selection.clone(),
            http_base_url: args.dhcp.http_base_url.clone(),
        };
        netboot_content::run_render_matchbox(globals, &matchbox)?;
    }
    let Some(dnsmasq_dir) = &args.dnsmasq else {
        return Ok(ExitCode::SUCCESS);
    };
    let rack = load_rack(globals, &args.dhcp.plan)?;
    let config = dhcp_config(&rack.plan, &args.dhcp)?;
    let mut options = DnsmasqOptions::new();
    options.interface = Some(
        args.interface
            .unwrap_or_else(|| rack.management.pxe_interface.clone()),
    );
    options.tftp_root = args.tftp_root;
    options.lease_file = Some(globals.state_dir.join("dnsmasq.leases"));
    options.installed = netboot_setup::installed_macs(&globals.state_dir);
    let path = dnsmasq::write(
        dnsmasq_dir,
        &config,
        &reservations(&rack.plan, None),
        &options,
    )?;
    output::line(output::ok_mark(&format!("wrote {}", path.display())));
    Ok(ExitCode::SUCCESS)
}

/// `racker netboot leases -o json` (kind `leases`, docs/output.md).
#[derive(serde::Serialize)]
struct LeasesJson {
    leases: Vec<LeaseJson>,
}

#[derive(serde::Serialize)]
struct LeaseJson {
    mac: racker_inventory::MacAddr,
    ip: std::net::Ipv4Addr,
    kind: &'static str,
    state: &'static str,
    expires_at: String,
}

fn leases(globals: &Globals, args: &LeasesArgs) -> anyhow::Result<ExitCode> {
    use crate::output::{Format, Tone, paint};

    let table = LeaseTable::load(&globals.state_dir)?;
    let now = std::time::SystemTime::now();
    let doc = LeasesJson {
        leases: table
            .iter()
            .map(|lease| LeaseJson {
                mac: lease.mac,
                ip: lease.ip,
                kind: if lease.reserved {
                    "reserved"
                } else {
                    "dynamic"
                },
                state: if lease.is_active(now) {
                    "active"
                } else {
                    "expired"
                },
                expires_at: humantime::format_rfc3339_seconds(lease.expires_at()).to_string(),
            })
            .collect(),
    };
    let format = if args.json && !globals.output.is_json() {
        Format::Json
    } else {
        globals.output
    };
    crate::output::emit(format, "leases", &doc, |wide| {
        let mut header = vec!["MAC", "IP", "KIND", "STATE"];
        if wide {
            header.push("EXPIRES");
        }
        let rows: Vec<Vec<String>> = doc
            .leases
            .iter()
            .map(|l| {
                let mut row = vec![
                    l.mac.to_string(),
                    l.ip.to_string(),
                    l.kind.to_owned(),
                    paint(Tone::of_state(l.state), l.state),
                ];
                if wide {
                    row.push(l.expires_at.clone());
                }
                row
            })
            .collect();
        crate::table::print_rows(&header, &rows);
        Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}
