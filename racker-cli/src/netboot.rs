//! `racker netboot`: the DHCP/PXE server of the rack-internal network, and
//! rendering an equivalent `dnsmasq.conf`.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use racker_netboot::LeaseTable;
use racker_netboot::service::ServiceError;

use crate::context::{PlanArgs, SelectionArgs, load_rack};
use crate::globals::Globals;
use crate::netboot_content::{self, ContentArgs, FetchAssetsArgs, RenderMatchboxArgs};
use crate::output;
use racker_bootstrap::netboot_setup::DhcpSettings;
use racker_bootstrap::serve::{self, Notice, ServeError, ServeSettings};

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

impl DhcpArgs {
    fn settings(&self) -> DhcpSettings {
        let mut settings = DhcpSettings::default();
        settings.proxy = self.proxy;
        settings.dynamic_range = self.dynamic_range;
        settings.lease_time = self.lease_time;
        settings.router = self.router;
        settings.dns.clone_from(&self.dns);
        settings.http_base_url.clone_from(&self.http_base_url);
        settings.arm64_boot_file.clone_from(&self.arm64_boot_file);
        settings
    }
}

fn serve(globals: &Globals, args: ServeArgs) -> anyhow::Result<ExitCode> {
    let rack = load_rack(globals, &args.dhcp.plan)?;
    let mut settings = ServeSettings::new();
    settings.dhcp = args.dhcp.settings();
    settings.no_dhcp = args.content.no_dhcp;
    settings.listen = args.listen;
    settings.interface = args.interface;
    settings.force = args.force;
    settings.proc_net_route = args.proc_net_route;
    settings.content = args.content.options();
    settings.content.matchbox_grpc = args.matchbox_grpc;
    let state_dir = &globals.state_dir;
    let (builder, preflight) =
        serve::serve_builder(state_dir, &globals.sys_class_net, &rack, &settings)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let serving = serve::run(
        builder,
        state_dir,
        &preflight,
        shutdown_signal(),
        print_notice,
    );
    runtime.block_on(serving).map_err(|e| match e {
        ServeError::Start(ServiceError::Tftp { hint, .. }) if !hint.is_empty() => {
            anyhow::Error::new(e).context(
                "TFTP port below 1024 needs root (or use --tftp-listen ADDR:PORT with a high port)",
            )
        }
        e => anyhow::Error::new(e),
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Print a library notice: done on stdout with a check mark, notes and
/// warnings on stderr.
pub(crate) fn print_notice(notice: Notice) {
    match notice {
        Notice::Done(text) => output::line(output::ok_mark(&text)),
        Notice::Note(text) => output::progress(text),
        Notice::Warning(text) => output::warn(text),
    }
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
    let (settings, state_dir) = (args.dhcp.settings(), &globals.state_dir);
    let (interface, tftp_root) = (args.interface, args.tftp_root);
    let path = serve::write_dnsmasq(
        dnsmasq_dir,
        state_dir,
        &rack,
        &settings,
        interface,
        tftp_root,
    )?;
    output::line(output::ok_mark(&format!("wrote {}", path.display())));
    Ok(ExitCode::SUCCESS)
}

fn leases(globals: &Globals, args: &LeasesArgs) -> anyhow::Result<ExitCode> {
    use crate::output::{Format, Tone, paint};

    let doc = LeaseTable::load(&globals.state_dir)?.view(std::time::SystemTime::now());
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
