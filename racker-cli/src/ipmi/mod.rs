//! `racker ipmi`: talk IPMI 2.0 (RMCP+) to one BMC or to every BMC of the rack.

use std::io::Write as _;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};
use futures::StreamExt as _;
use racker_inventory::{Host, HostList, MacAddr};
use racker_ipmi::monitor::Identify;
use racker_ipmi::{
    BmcAddress, BootDevice, BootFlags, ChassisStatus, CipherPreference, CipherSuite, Credentials,
    Operation, Output, Password, PowerAction, PowerOutcome, Privilege, RawRequest, RestorePolicy,
    Session, SessionOptions, SolConsole,
};
use serde::Serialize;

mod exporter;
mod render;

use crate::context::{PlanArgs, SelectionArgs, load_credentials, load_rack};
use crate::globals::Globals;
use crate::output::{Tone, paint};

/// Arguments of `racker ipmi`.
#[derive(Debug, clap::Args)]
#[command(
    subcommand_precedence_over_arg = true,
    after_help = "Examples:
  racker ipmi node-3                      # serial console (detach with ~.)
  racker ipmi 00:11:22:33:44:10 power status
  racker ipmi --all power on --concurrency 32
  racker ipmi --all bootdev pxe           # persistent + EFI unless told otherwise
  racker ipmi --all boot-timeout off
  racker ipmi node-3 bootparam
  racker ipmi --host 172.24.213.40:623 diag --output json
  racker ipmi --host 10.0.0.9 raw 0x06 0x01
  racker ipmi --all user set-password 2 --password-file /root/new-ipmi-password
  racker ipmi 'node-[0-7]' --exclude node-3 power status --one-line --consolidate
  racker ipmi node-2 sensors -o json
  racker ipmi --all sel list --last 5
  racker ipmi node-1 identify 30
  racker ipmi --local mc info               # this machine's BMC via /dev/ipmi0
  racker ipmi exporter --listen 0.0.0.0:9290

The BMC address comes from the DHCP lease table in --state-dir when the BMC
holds a lease there, else from the address plan. Credentials always come from
--oem-dir (ipmi_user, ipmi_password); passwords are never taken from the
command line."
)]
pub(crate) struct IpmiCmd {
    /// The nodes: host names, primary or BMC MACs from nodes.csv, comma
    /// lists and ranges like `node-[0-7]` or `lokomotive-worker-[1,3-5]`.
    #[arg(value_name = "NODES", required_unless_present_any = ["all", "host", "local"])]
    node: Option<String>,
    /// Every node of the plan (excluded ones left out), in parallel.
    #[arg(long, conflicts_with_all = ["node", "host", "local"])]
    all: bool,
    /// Address a BMC directly, without looking it up in nodes.csv.
    #[arg(long, value_name = "ADDR[:PORT]", conflicts_with_all = ["node", "local"])]
    host: Option<String>,
    /// This machine's own BMC, in-band through the kernel's IPMI device.
    #[arg(long, conflicts_with = "node")]
    local: bool,
    /// The IPMI device for --local.
    #[arg(long, default_value = racker_ipmi::DEFAULT_DEVICE, requires = "local")]
    device: PathBuf,
    #[command(flatten)]
    plan: PlanArgs,
    #[command(flatten)]
    selection: SelectionArgs,
    /// BMC UDP port (unless --host names one).
    #[arg(long = "ipmi-port", alias = "port", global = true, default_value_t = racker_ipmi::DEFAULT_PORT)]
    port: u16,
    /// RMCP+ cipher suite: 17, 3, or auto (17, then 3 if refused).
    #[arg(long, global = true, value_enum, default_value = "auto")]
    cipher_suite: CipherArg,
    /// Time allowed per request/reply exchange, retransmissions included
    /// (seconds, or e.g. 500ms, 5s).
    #[arg(long = "ipmi-timeout", alias = "timeout", global = true, default_value = crate::flags::IPMI_TIMEOUT, value_parser = crate::flags::ipmi_timeout, value_name = "DURATION")]
    timeout: Duration,
    /// Retransmissions of an unanswered packet.
    #[arg(
        long = "ipmi-retries",
        alias = "retries",
        global = true,
        default_value_t = 3
    )]
    retries: u32,
    /// BMCs talked to at the same time with --all.
    #[arg(long, global = true, default_value_t = 64)]
    concurrency: usize,
    /// One line per host: `host: result`.
    #[arg(long, global = true)]
    one_line: bool,
    /// Print hosts with identical results once, as a host range
    /// (`node-[0-3]: on`), like ipmipower's consolidated output.
    #[arg(long, global = true)]
    consolidate: bool,
    /// What to do; the serial console when omitted.
    #[command(subcommand)]
    command: Option<IpmiSub>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum CipherArg {
    Auto,
    #[value(name = "3")]
    Suite3,
    #[value(name = "17")]
    Suite17,
}

#[derive(Debug, clap::Subcommand)]
enum IpmiSub {
    /// BMC MAC and IP, node MAC, internal IP, host name, chassis status and boot parameter 5.
    Diag,
    /// Serial-over-LAN console (the default). Detach with `~.` at the start of a line.
    Sol,
    /// Chassis power.
    Power {
        #[arg(value_enum)]
        action: PowerArg,
    },
    /// Boot device override (System Boot Options parameter 5).
    Bootdev {
        #[arg(value_enum)]
        device: BootdevArg,
        /// Next boot only (default: all future boots).
        #[arg(long)]
        no_persistent: bool,
        /// Legacy BIOS boot (default: EFI).
        #[arg(long)]
        legacy: bool,
    },
    /// Read boot parameter 5 (valid, persistent, EFI, device).
    Bootparam,
    /// `boot-timeout off`: stop the BMC from clearing the boot flags after 60 s (parameter 3 = 0x1f).
    BootTimeout {
        #[arg(value_enum)]
        state: OffArg,
    },
    /// `lan dhcp`: LAN channel address source back to DHCP; `lan print`: its configuration.
    Lan {
        #[arg(value_enum)]
        mode: LanArg,
        /// LAN channel.
        #[arg(long, default_value_t = 1)]
        channel: u8,
    },
    /// BMC users.
    #[command(subcommand)]
    User(UserSub),
    /// Raw request: NETFN CMD [DATA...] as hex bytes (0x06 or 06).
    Raw {
        #[arg(value_parser = parse_hex_byte)]
        netfn: u8,
        #[arg(value_parser = parse_hex_byte)]
        cmd: u8,
        #[arg(value_parser = parse_hex_byte)]
        data: Vec<u8>,
    },
    /// Every sensor: name, type, reading with unit, status, thresholds.
    Sensors,
    /// System Event Log.
    #[command(subcommand)]
    Sel(SelSub),
    /// FRU inventory (chassis, board, product).
    Fru,
    /// Chassis identify light: `on`, `off` or a number of seconds (default 15).
    Identify {
        #[arg(default_value = "15", value_parser = parse_identify)]
        state: Identify,
    },
    /// Management controller.
    #[command(subcommand)]
    Mc(McSub),
    /// Chassis capabilities, restart cause and power restore policy.
    #[command(subcommand)]
    Chassis(ChassisSub),
    /// Prometheus exporter for every BMC (ipmi_exporter metric names plus node/mac labels).
    Exporter(exporter::ExporterArgs),
}

#[derive(Debug, clap::Subcommand)]
enum SelSub {
    /// SEL entries, oldest first.
    List {
        /// Only the newest N entries.
        #[arg(long)]
        last: Option<usize>,
    },
    /// Entries, free space, last addition and erase.
    Info,
    /// Erase every entry.
    Clear,
}

#[derive(Debug, clap::Subcommand)]
enum McSub {
    /// Device id, firmware, IPMI version, manufacturer, GUID.
    Info,
}

#[derive(Debug, clap::Subcommand)]
enum ChassisSub {
    /// Get Chassis Capabilities.
    Capabilities,
    /// Get System Restart Cause.
    RestartCause,
    /// Power restore policy: set one, or `list` the supported ones.
    Policy {
        #[arg(value_enum)]
        policy: PolicyArg,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum PolicyArg {
    AlwaysOn,
    AlwaysOff,
    Previous,
    List,
}

fn parse_identify(s: &str) -> Result<Identify, String> {
    match s {
        "on" | "force" => Ok(Identify::On),
        "off" => Ok(Identify::Off),
        n => match n.parse::<u8>() {
            Ok(0) => Ok(Identify::Off),
            Ok(v) => Ok(Identify::Seconds(v)),
            Err(_) => Err(format!("{s:?}: expected on, off or 1-255 seconds")),
        },
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum PowerArg {
    On,
    Off,
    Cycle,
    Reset,
    Soft,
    Status,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum BootdevArg {
    Pxe,
    Disk,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum OffArg {
    Off,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LanArg {
    Dhcp,
    Print,
}

#[derive(Debug, clap::Subcommand)]
enum UserSub {
    /// List the users of a channel.
    List {
        #[arg(long, default_value_t = 1)]
        channel: u8,
    },
    /// Name user slot ID.
    SetName { id: u8, name: String },
    /// Set user ID's password, read from --password-file or the first line of stdin.
    SetPassword {
        id: u8,
        /// File holding the new password (trailing newline ignored).
        #[arg(long)]
        password_file: Option<PathBuf>,
    },
    /// Enable user ID.
    Enable { id: u8 },
    /// Disable user ID.
    Disable { id: u8 },
    /// Set user ID's privilege limit on a channel (user, operator, administrator...).
    Priv {
        id: u8,
        privilege: String,
        #[arg(long, default_value_t = 1)]
        channel: u8,
    },
}

fn parse_hex_byte(s: &str) -> Result<u8, String> {
    let t = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .unwrap_or(s);
    u8::from_str_radix(t, 16).map_err(|_| format!("{s:?} is not a hex byte"))
}

/// One BMC to talk to, with what the rack knows about its node.
#[derive(Debug, Clone)]
struct Target {
    /// BMC MAC (or the --host text).
    label: String,
    bmc: String,
    addr: BmcAddress,
    bmc_mac: Option<MacAddr>,
    node_mac: Option<MacAddr>,
    internal_ip: Option<Ipv4Addr>,
    hostname: Option<String>,
    /// Where the BMC address came from: "lease", "plan" or "host".
    address_source: &'static str,
}

impl Target {
    /// The node's short host name, else its BMC MAC (or the --host text).
    fn host_label(&self) -> String {
        self.hostname
            .as_deref()
            .and_then(|h| h.split('.').next())
            .map_or_else(|| self.label.clone(), str::to_string)
    }
}

pub(crate) fn run(globals: &Globals, args: IpmiCmd) -> anyhow::Result<ExitCode> {
    let command = args.command.as_ref().unwrap_or(&IpmiSub::Sol);
    if args.all && matches!(command, IpmiSub::Sol) {
        bail!(
            "the serial console needs one node: give NODE or --host instead of --all (or a command)"
        );
    }
    let op = operation(command)?;
    if args.local {
        let op = op.context("the serial console is not available with --local")?;
        return run_local(&args, globals.output, command, &op);
    }
    let targets =
        if matches!(command, IpmiSub::Exporter(_)) && args.node.is_none() && args.host.is_none() {
            resolve_all(globals, &args)?
        } else {
            resolve_targets(globals, &args)?
        };
    if targets.len() > 1 && matches!(command, IpmiSub::Sol) {
        bail!(
            "the serial console needs one node, but {:?} names {}",
            args.node.as_deref().unwrap_or_default(),
            targets.len()
        );
    }
    let creds = load_credentials(globals)?;
    let creds = Credentials::new(creds.user.clone(), creds.password.expose());
    let opts = SessionOptions::default()
        .timeout(args.timeout)
        .retries(args.retries)
        .cipher(match args.cipher_suite {
            CipherArg::Auto => CipherPreference::Auto,
            CipherArg::Suite3 => CipherPreference::Only(CipherSuite::Suite3),
            CipherArg::Suite17 => CipherPreference::Only(CipherSuite::Suite17),
        });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    if let IpmiSub::Exporter(e) = command {
        let result = runtime.block_on(exporter::run(e, targets, &creds, &opts, args.concurrency));
        runtime.shutdown_background();
        return result;
    }
    let result = match op {
        None => {
            let target = targets.into_iter().next().context("no node selected")?;
            runtime.block_on(console(&target, &creds, &opts))
        }
        Some(op) => runtime.block_on(run_many(
            &args,
            globals.output,
            command,
            targets,
            &creds,
            &opts,
            &op,
        )),
    };
    // The console's stdin reader may still block in a read(2): don't wait for it.
    runtime.shutdown_background();
    result
}

/// One command against this machine's BMC through /dev/ipmi0.
fn run_local(
    args: &IpmiCmd,
    format: crate::output::Format,
    command: &IpmiSub,
    op: &Operation,
) -> anyhow::Result<ExitCode> {
    use racker_ipmi::monitor;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let device = args.device.display().to_string();
    let result: anyhow::Result<Output> = runtime.block_on(async {
        let mut bmc = racker_ipmi::LocalBmc::open(&args.device, args.timeout)?;
        let b = &mut bmc;
        Ok(match op {
            Operation::Sensors => Output::Sensors(monitor::sensors(b, None).await?),
            Operation::SelInfo => Output::SelInfo(monitor::sel_info(b).await?),
            Operation::SelList { last } => Output::Sel(monitor::sel_list(b, *last).await?),
            Operation::SelClear => {
                monitor::sel_clear(b).await?;
                Output::Done
            }
            Operation::Fru => Output::Fru(Box::new(monitor::fru(b).await?)),
            Operation::Identify(w) => {
                monitor::identify(b, *w).await?;
                Output::Done
            }
            Operation::LanPrint { channel } => {
                Output::Lan(Box::new(monitor::lan_print(b, *channel).await?))
            }
            Operation::McInfo => Output::McInfo(Box::new(monitor::mc_info(b).await?)),
            Operation::ChassisCapabilities => {
                Output::ChassisCapabilities(monitor::chassis_capabilities(b).await?)
            }
            Operation::RestartCause => Output::RestartCause(monitor::restart_cause(b).await?),
            Operation::SetPolicy(p) => Output::Policies(monitor::set_restore_policy(b, *p).await?),
            Operation::Raw(r) => {
                use racker_ipmi::Transport as _;
                Output::Raw(b.raw(r.clone()).await?)
            }
            // The management node's own install sets its disk boot this
            // way (docs/lokomotive.md, "Installing the management node").
            Operation::SetBootDevice {
                device,
                persistent,
                efi,
            } => {
                use racker_ipmi::Transport as _;
                let flags = racker_ipmi::BootFlags::new(*device, *persistent, *efi);
                b.raw(racker_ipmi::RawRequest::new(0x00, 0x08, flags.encode_request()))
                    .await?;
                Output::BootFlags(flags)
            }
            Operation::DisableBootFlagTimeout => {
                use racker_ipmi::Transport as _;
                b.raw(racker_ipmi::RawRequest::new(0x00, 0x08, vec![0x03, 0x1F]))
                    .await?;
                Output::Done
            }
            _ => bail!(
                "--local supports sensors, sel, fru, identify, lan print, mc info, chassis, bootdev, boot-timeout and raw"
            ),
        })
    });
    let target = Target {
        label: device.clone(),
        bmc: device,
        addr: BmcAddress::new("localhost", 0),
        bmc_mac: None,
        node_mac: None,
        internal_ip: None,
        hostname: None,
        address_source: "local",
    };
    let ok = result.is_ok();
    if format.is_json() {
        let error = result.as_ref().err().map(|e| JsonError {
            kind: "local",
            message: format!("{e:#}"),
        });
        let doc = JsonDoc {
            results: vec![JsonResult::new(
                &target,
                result.as_ref().ok(),
                error,
                Duration::ZERO,
            )],
        };
        crate::output::print_json(format, "ipmi", &doc)?;
    } else {
        match &result {
            Ok(o) if args.one_line => println!("{}: {}", target.label, render::one_line(o)),
            Ok(o) => {
                let mut text = String::new();
                render(&mut text, &target, command, o);
                print!("{text}");
            }
            Err(e) => anstream::println!("{} {e:#}", paint(Tone::Bad, "error:")),
        }
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The library operation for a command; `None` for the console.
fn operation(command: &IpmiSub) -> anyhow::Result<Option<Operation>> {
    Ok(Some(match command {
        IpmiSub::Sol => return Ok(None),
        IpmiSub::Diag => Operation::Diag,
        IpmiSub::Power { action } => match action {
            PowerArg::Status => Operation::ChassisStatus,
            PowerArg::On => Operation::Power(PowerAction::On),
            PowerArg::Off => Operation::Power(PowerAction::Off),
            PowerArg::Cycle => Operation::Power(PowerAction::Cycle),
            PowerArg::Reset => Operation::Power(PowerAction::Reset),
            PowerArg::Soft => Operation::Power(PowerAction::Soft),
        },
        IpmiSub::Bootdev {
            device,
            no_persistent,
            legacy,
        } => Operation::SetBootDevice {
            device: match device {
                BootdevArg::Pxe => BootDevice::Pxe,
                BootdevArg::Disk => BootDevice::Disk,
            },
            persistent: !no_persistent,
            efi: !legacy,
        },
        IpmiSub::Bootparam => Operation::BootFlags,
        IpmiSub::BootTimeout { state: OffArg::Off } => Operation::DisableBootFlagTimeout,
        IpmiSub::Lan {
            mode: LanArg::Dhcp,
            channel,
        } => Operation::LanDhcp { channel: *channel },
        IpmiSub::Lan {
            mode: LanArg::Print,
            channel,
        } => Operation::LanPrint { channel: *channel },
        IpmiSub::Sensors => Operation::Sensors,
        IpmiSub::Sel(SelSub::List { last }) => Operation::SelList { last: *last },
        IpmiSub::Sel(SelSub::Info) => Operation::SelInfo,
        IpmiSub::Sel(SelSub::Clear) => Operation::SelClear,
        IpmiSub::Fru => Operation::Fru,
        IpmiSub::Identify { state } => Operation::Identify(*state),
        IpmiSub::Mc(McSub::Info) => Operation::McInfo,
        IpmiSub::Chassis(ChassisSub::Capabilities) => Operation::ChassisCapabilities,
        IpmiSub::Chassis(ChassisSub::RestartCause) => Operation::RestartCause,
        IpmiSub::Chassis(ChassisSub::Policy { policy }) => Operation::SetPolicy(match policy {
            PolicyArg::AlwaysOn => RestorePolicy::AlwaysOn,
            PolicyArg::AlwaysOff => RestorePolicy::AlwaysOff,
            PolicyArg::Previous => RestorePolicy::Previous,
            PolicyArg::List => RestorePolicy::Unknown,
        }),
        // The exporter is not one operation; run() handles it.
        IpmiSub::Exporter(_) => Operation::Diag,
        IpmiSub::User(u) => match u {
            UserSub::List { channel } => Operation::ListUsers { channel: *channel },
            UserSub::SetName { id, name } => Operation::SetUserName {
                user: *id,
                name: name.clone(),
            },
            UserSub::SetPassword { id, password_file } => Operation::SetUserPassword {
                user: *id,
                password: read_new_password(password_file.as_ref())?,
            },
            UserSub::Enable { id } => Operation::SetUserEnabled {
                user: *id,
                enabled: true,
            },
            UserSub::Disable { id } => Operation::SetUserEnabled {
                user: *id,
                enabled: false,
            },
            UserSub::Priv {
                id,
                privilege,
                channel,
            } => Operation::SetUserPrivilege {
                channel: *channel,
                user: *id,
                privilege: privilege.parse::<Privilege>()?,
            },
        },
        IpmiSub::Raw { netfn, cmd, data } => {
            Operation::Raw(RawRequest::new(*netfn, *cmd, data.clone()))
        }
    }))
}

fn read_new_password(file: Option<&PathBuf>) -> anyhow::Result<Password> {
    let text = match file {
        Some(p) => {
            std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?
        }
        None => {
            let mut line = String::new();
            std::io::stdin()
                .read_line(&mut line)
                .context("reading the new password from stdin")?;
            line
        }
    };
    let pw = text.lines().next().unwrap_or("").to_string();
    if pw.is_empty() {
        bail!("the new password is empty");
    }
    if pw.len() > 20 {
        bail!("IPMI passwords are at most 20 bytes");
    }
    Ok(Password::new(pw))
}

/// `ADDR` → `ADDR:port`; `ADDR:PORT` / `[V6]:PORT` kept.
fn host_address(text: &str, port: u16) -> anyhow::Result<BmcAddress> {
    let parsed: BmcAddress = text.parse()?;
    let has_port = if text.starts_with('[') {
        text.contains("]:")
    } else {
        text.matches(':').count() == 1
    };
    Ok(if has_port {
        parsed
    } else {
        parsed.with_port(port)
    })
}

/// The exporter without NODES or --host: every node, like --all.
fn resolve_all(globals: &Globals, args: &IpmiCmd) -> anyhow::Result<Vec<Target>> {
    resolve(globals, args, None, true)
}

fn resolve_targets(globals: &Globals, args: &IpmiCmd) -> anyhow::Result<Vec<Target>> {
    if let Some(host) = &args.host {
        let addr = host_address(host, args.port)?;
        return Ok(vec![Target {
            label: host.clone(),
            bmc: addr.to_string(),
            addr,
            bmc_mac: None,
            node_mac: None,
            internal_ip: None,
            hostname: None,
            address_source: "host",
        }]);
    }
    let wanted = match &args.node {
        Some(text) if !args.all => Some(
            text.parse::<HostList>()
                .with_context(|| format!("NODES {text:?}"))?
                .expand(),
        ),
        _ => None,
    };
    resolve(globals, args, wanted, args.all)
}

/// True when `name` (as typed) names the node `selected` (host name, short
/// host name or alias, case-insensitive).
fn name_matches(selected: Option<&racker_inventory::SelectedNode>, want: &str) -> bool {
    let Some(s) = selected else {
        return false;
    };
    s.aliases
        .iter()
        .map(String::as_str)
        .chain(s.hostname.as_deref())
        .any(|n| {
            n.eq_ignore_ascii_case(want)
                || n.split('.')
                    .next()
                    .is_some_and(|short| short.eq_ignore_ascii_case(want))
        })
}

fn host_matches(
    node: &racker_inventory::Node,
    selected: Option<&racker_inventory::SelectedNode>,
    host: &Host,
) -> bool {
    match host {
        Host::Mac(mac) => *mac == node.primary_mac || *mac == node.bmc_mac,
        Host::Name(n) => name_matches(selected, n),
    }
}

/// Targets for `wanted` hosts (a NODES list) or, with `all`, every node.
/// `--exclude` takes MACs (they also leave the cluster selection, as
/// before) and names or ranges; it filters --all and multi-host lists, never
/// a single named node.
fn resolve(
    globals: &Globals,
    args: &IpmiCmd,
    wanted: Option<Vec<Host>>,
    all: bool,
) -> anyhow::Result<Vec<Target>> {
    let rack = load_rack(globals, &args.plan)?;
    let exclude: Vec<Host> = args
        .plan
        .exclude
        .parse::<HostList>()
        .with_context(|| format!("--exclude {:?}", args.plan.exclude))?
        .expand();
    let excluded_macs: Vec<MacAddr> = exclude
        .iter()
        .filter_map(|h| match h {
            Host::Mac(m) => Some(*m),
            Host::Name(_) => None,
        })
        .collect();
    let mut plan_args = args.plan.clone();
    plan_args.exclude = excluded_macs
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" ");
    // Host names need the selection; without one (e.g. too few controllers
    // for the given options) only MACs match.
    let selection =
        racker_inventory::select(&rack.plan, &args.selection.selection_options(&plan_args)?).ok();
    let bmcs = crate::context::BmcResolver::load(globals)?;
    let filter_excluded = all || wanted.as_ref().is_some_and(|w| w.len() > 1);
    let mut targets = Vec::new();
    let mut matched = vec![false; wanted.as_ref().map_or(0, Vec::len)];
    for planned in rack.plan.nodes() {
        let node = &planned.node;
        let selected = selection.as_ref().and_then(|s| {
            s.nodes()
                .iter()
                .find(|n| n.planned.node.primary_mac == node.primary_mac)
        });
        let hostname = selected.and_then(|s| s.hostname.clone());
        let is_excluded = selected.is_some_and(|s| s.excluded)
            || excluded_macs.iter().any(|m| {
                *m == node.primary_mac || *m == node.bmc_mac || Some(*m) == node.secondary_mac
            })
            || exclude
                .iter()
                .any(|h| matches!(h, Host::Name(_)) && host_matches(node, selected, h));
        let is_wanted = match &wanted {
            None => all,
            Some(list) => {
                let mut any = false;
                for (i, h) in list.iter().enumerate() {
                    if host_matches(node, selected, h) {
                        matched[i] = true;
                        any = true;
                    }
                }
                any
            }
        };
        if !is_wanted || (filter_excluded && is_excluded) {
            continue;
        }
        let (addr, source) = bmcs.resolve(planned, args.port);
        targets.push(Target {
            label: node.bmc_mac.to_string(),
            bmc: addr.to_string(),
            addr,
            bmc_mac: Some(node.bmc_mac),
            node_mac: Some(node.primary_mac),
            internal_ip: Some(planned.ip),
            hostname,
            address_source: source.as_str(),
        });
    }
    if let Some(list) = &wanted {
        let unknown: Vec<String> = list
            .iter()
            .zip(&matched)
            .filter(|(_, m)| !**m)
            .map(|(h, _)| format!("{:?}", h.to_string()))
            .collect();
        if !unknown.is_empty() {
            bail!(
                "no node {} in {} (give a host name, primary MAC or BMC MAC; the management node has no plan entry)",
                unknown.join(", "),
                globals.nodes_csv().display()
            );
        }
        if list.len() == 1 && targets.len() > 1 {
            bail!("{:?} matches {} nodes", list[0].to_string(), targets.len());
        }
    }
    if targets.is_empty() {
        bail!("no nodes selected");
    }
    Ok(targets)
}

/// `racker ipmi -o json` (kind `ipmi`, docs/output.md).
#[derive(Serialize)]
struct JsonDoc<'a> {
    results: Vec<JsonResult<'a>>,
}

/// One BMC's result in the contract's vocabulary.
#[derive(Serialize)]
struct JsonResult<'a> {
    node: Option<String>,
    mac: Option<MacAddr>,
    bmc_mac: Option<MacAddr>,
    ip: Option<Ipv4Addr>,
    hostname: Option<&'a str>,
    bmc_ip: &'a str,
    bmc_port: u16,
    address_source: &'static str,
    ok: bool,
    error: Option<JsonError>,
    elapsed_ms: u128,
    result: Option<&'a Output>,
}

impl<'a> JsonResult<'a> {
    fn new(
        t: &'a Target,
        result: Option<&'a Output>,
        error: Option<JsonError>,
        elapsed: Duration,
    ) -> Self {
        Self {
            node: t
                .node_mac
                .map(|mac| crate::output::node_name(t.hostname.as_deref(), mac)),
            mac: t.node_mac,
            bmc_mac: t.bmc_mac,
            ip: t.internal_ip,
            hostname: t.hostname.as_deref(),
            bmc_ip: t.addr.host(),
            bmc_port: t.addr.port(),
            address_source: t.address_source,
            ok: error.is_none(),
            error,
            elapsed_ms: elapsed.as_millis(),
            result,
        }
    }
}

#[derive(Serialize)]
struct JsonError {
    kind: &'static str,
    message: String,
}

async fn run_many(
    args: &IpmiCmd,
    format: crate::output::Format,
    command: &IpmiSub,
    targets: Vec<Target>,
    creds: &Credentials,
    opts: &SessionOptions,
    op: &Operation,
) -> anyhow::Result<ExitCode> {
    let total = targets.len();
    let jobs: Vec<(Target, BmcAddress)> = targets
        .into_iter()
        .map(|t| (t.clone(), t.addr.clone()))
        .collect();
    let mut stream = std::pin::pin!(racker_ipmi::fan_out_operation(
        jobs,
        creds,
        opts,
        op,
        args.concurrency
    ));
    let mut failures = 0usize;
    let mut json = Vec::new();
    let mut lines: Vec<(String, String, bool)> = Vec::new();
    let mut done = 0usize;
    // anstream drops the colour codes where colour is off (docs/output.md).
    let mut stdout = anstream::stdout();
    while let Some(r) = stream.next().await {
        done += 1;
        // A raw reply with a non-zero completion code is a failure too.
        let outcome: Result<Output, String> = match &r.result {
            Ok(Output::Raw(raw)) if raw.completion_code != 0 => Err(format!(
                "{}: completion code {:#04x}",
                r.bmc, raw.completion_code
            )),
            Ok(o) => Ok(o.clone()),
            Err(e) => Err(e.to_string()),
        };
        if outcome.is_err() {
            failures += 1;
        }
        match format.is_json() {
            true => {
                let (ok, result, error) = match &outcome {
                    Ok(o) => (true, Some(o.clone()), None),
                    Err(m) => (false, None, Some(m.clone())),
                };
                let kind = match &r.result {
                    Err(e) => e.kind(),
                    Ok(_) => "completion-code",
                };
                json.push((
                    r.key,
                    ok,
                    result,
                    error.map(|message| JsonError { kind, message }),
                    r.elapsed,
                ));
            }
            false => {
                let multi = args.all || total > 1;
                if args.one_line || args.consolidate {
                    let text = match &outcome {
                        Ok(o) if args.one_line => render::one_line(o),
                        Ok(o) => {
                            let mut t = String::new();
                            render(&mut t, &r.key, command, o);
                            t
                        }
                        Err(m) => format!("{} {m}", paint(Tone::Bad, "error:")),
                    };
                    let host = r.key.host_label();
                    if args.consolidate {
                        lines.push((host, text, outcome.is_ok()));
                    } else {
                        writeln!(stdout, "{host}: {text}")?;
                    }
                    continue;
                }
                let mut text = String::new();
                match &outcome {
                    Ok(o) => render(&mut text, &r.key, command, o),
                    Err(m) => text.push_str(&format!("{} {m}\n", paint(Tone::Bad, "error:"))),
                }
                let out = &mut stdout;
                if multi {
                    writeln!(out, "== {} ({}) ==", r.key.label, r.key.bmc)?;
                }
                out.write_all(text.as_bytes())?;
                if multi {
                    writeln!(out)?;
                    anstream::eprintln!(
                        "[{done}/{total}] {} {}",
                        r.key.label,
                        if outcome.is_ok() {
                            paint(Tone::Good, "ok")
                        } else {
                            paint(Tone::Bad, "FAILED")
                        }
                    );
                }
            }
        }
    }
    if args.consolidate {
        let out = &mut stdout;
        for (hosts, text) in render::consolidate(&lines) {
            if args.one_line {
                writeln!(out, "{hosts}: {text}")?;
            } else {
                writeln!(out, "== {hosts} ==")?;
                out.write_all(text.as_bytes())?;
                if !text.ends_with('\n') {
                    writeln!(out)?;
                }
            }
        }
    }
    if format.is_json() {
        json.sort_by(|a, b| a.0.label.cmp(&b.0.label));
        let doc = JsonDoc {
            results: json
                .iter()
                .map(|(t, _ok, result, error, elapsed)| {
                    JsonResult::new(
                        t,
                        result.as_ref(),
                        error.as_ref().map(|e| JsonError {
                            kind: e.kind,
                            message: e.message.clone(),
                        }),
                        *elapsed,
                    )
                })
                .collect(),
        };
        crate::output::print_json(format, "ipmi", &doc)?;
    }
    if total > 1 {
        let summary = format!("{} of {total} succeeded", total - failures);
        let tone = if failures == 0 { Tone::Good } else { Tone::Bad };
        anstream::eprintln!("{}", paint(tone, &summary));
    }
    Ok(if failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

fn render_chassis(out: &mut String, s: &ChassisStatus) {
    out.push_str(&format!(
        "System Power         : {}\n",
        if s.power_on { "on" } else { "off" }
    ));
    out.push_str(&format!("Power Overload       : {}\n", s.power_overload));
    out.push_str(&format!(
        "Power Interlock      : {}\n",
        if s.interlock { "active" } else { "inactive" }
    ));
    out.push_str(&format!("Main Power Fault     : {}\n", s.power_fault));
    out.push_str(&format!(
        "Power Control Fault  : {}\n",
        s.power_control_fault
    ));
    let policy = match s.restore_policy {
        racker_ipmi::RestorePolicy::AlwaysOff => "always-off",
        racker_ipmi::RestorePolicy::Previous => "previous",
        racker_ipmi::RestorePolicy::AlwaysOn => "always-on",
        _ => "unknown",
    };
    out.push_str(&format!("Power Restore Policy : {policy}\n"));
    let e = &s.last_power_event;
    let mut events = Vec::new();
    for (set, name) in [
        (e.ac_failed, "ac-failed"),
        (e.overload, "overload"),
        (e.interlock, "interlock"),
        (e.fault, "fault"),
        (e.on_via_ipmi, "command"),
    ] {
        if set {
            events.push(name);
        }
    }
    out.push_str(&format!("Last Power Event     : {}\n", events.join(", ")));
    out.push_str(&format!(
        "Chassis Intrusion    : {}\n",
        if s.intrusion { "active" } else { "inactive" }
    ));
    out.push_str(&format!(
        "Front-Panel Lockout  : {}\n",
        if s.front_panel_lockout {
            "active"
        } else {
            "inactive"
        }
    ));
    out.push_str(&format!("Drive Fault          : {}\n", s.drive_fault));
    out.push_str(&format!("Cooling/Fan Fault    : {}\n", s.fan_fault));
}

fn render_boot(out: &mut String, f: &BootFlags) {
    let raw: Vec<String> = f.raw.iter().map(|b| format!("{b:02x}")).collect();
    out.push_str(&format!(
        "Boot flags: valid={} persistent={} efi={} device={} (data {})\n",
        yes_no(f.valid),
        yes_no(f.persistent),
        yes_no(f.efi),
        f.device,
        raw.join(" ")
    ));
}

fn opt<T: std::fmt::Display>(v: &Option<T>) -> String {
    v.as_ref()
        .map_or_else(|| "-".to_string(), ToString::to_string)
}

fn render(out: &mut String, t: &Target, command: &IpmiSub, o: &Output) {
    match (command, o) {
        (
            IpmiSub::Power {
                action: PowerArg::Status,
            },
            Output::ChassisStatus(s),
        ) => {
            out.push_str(&format!(
                "Chassis Power is {}\n",
                if s.power_on { "on" } else { "off" }
            ));
        }
        (IpmiSub::Power { action }, Output::Power(p)) => {
            let what = format!("{action:?}").to_lowercase();
            match p {
                PowerOutcome::Done => out.push_str(&format!("power {what}: done\n")),
                PowerOutcome::AlreadyInState => {
                    out.push_str(&format!("power {what}: already in that state\n"))
                }
                PowerOutcome::PoweredOn => {
                    out.push_str(&format!("power {what}: chassis was off, powered on\n"))
                }
            }
        }
        (_, Output::ChassisStatus(s)) => render_chassis(out, s),
        (IpmiSub::Bootdev { .. }, Output::BootFlags(f)) => {
            out.push_str("Set boot device. ");
            render_boot(out, f);
        }
        (_, Output::BootFlags(f)) => render_boot(out, f),
        (_, Output::AddressSource(s)) => out.push_str(&format!("IP address source: {s:?}\n")),
        (_, Output::Users(users)) => {
            out.push_str("ID  Name              Enabled  IPMI Msg  Link Auth  Privilege\n");
            for u in users {
                out.push_str(&format!(
                    "{:<3} {:<17} {:<8} {:<9} {:<10} {:?}\n",
                    u.id,
                    u.name,
                    u.access.enabled.map_or("-", yes_no),
                    yes_no(u.access.ipmi_messaging),
                    yes_no(u.access.link_auth),
                    u.access.privilege
                ));
            }
        }
        (_, Output::Raw(r)) => {
            let hex: Vec<String> = r.data.iter().map(|b| format!("{b:02x}")).collect();
            out.push_str(&format!(" {}\n", hex.join(" ")));
        }
        (_, Output::Diag(d)) => {
            out.push_str(&format!("BMC MAC              : {}\n", opt(&t.bmc_mac)));
            out.push_str(&format!(
                "BMC address          : {} (from {})\n",
                t.bmc, t.address_source
            ));
            out.push_str(&format!("Node MAC             : {}\n", opt(&t.node_mac)));
            out.push_str(&format!("Internal IP          : {}\n", opt(&t.internal_ip)));
            out.push_str(&format!("Host name            : {}\n", opt(&t.hostname)));
            out.push_str(&format!("Cipher suite         : {}\n", d.cipher_suite));
            out.push_str(&format!(
                "BMC firmware         : {}.{:02x} (manufacturer {}, product {:#06x})\n",
                d.device.firmware_major,
                d.device.firmware_minor,
                d.device.manufacturer,
                d.device.product
            ));
            render_chassis(out, &d.chassis);
            match &d.boot_flags {
                Ok(f) => render_boot(out, f),
                Err(e) => out.push_str(&format!("Boot flags: unavailable ({e})\n")),
            }
            render::diag_extras(out, &d.sensors, &d.sel);
        }
        (_, Output::Sensors(list)) => render::sensors(out, list),
        (_, Output::SelInfo(i)) => render::sel_info(out, i),
        (_, Output::Sel(list)) => render::sel_entries(out, list),
        (_, Output::Fru(f)) => render::fru(out, f),
        (_, Output::McInfo(m)) => render::mc_info(out, m),
        (_, Output::Lan(l)) => render::lan(out, l),
        (_, Output::ChassisCapabilities(c)) => render::capabilities(out, c),
        (_, Output::RestartCause(r)) => render::restart_cause(out, r),
        (_, Output::Policies(p)) => {
            out.push_str(&format!("Supported restore policies: {}\n", p.join(", ")))
        }
        (_, Output::Done) => out.push_str("done\n"),
        (_, other) => out.push_str(&format!("{other:?}\n")),
    }
}

/// The serial console: stdin → BMC, BMC → stdout, until `~.` or EOF.
async fn console(
    target: &Target,
    creds: &Credentials,
    opts: &SessionOptions,
) -> anyhow::Result<ExitCode> {
    use tokio::io::AsyncReadExt as _;
    let session = Session::connect(&target.addr, creds, opts).await?;
    let mut sol = SolConsole::activate(session).await?;
    eprintln!(
        "[SOL session to {} active; type ~. at the start of a line to detach]",
        target.label
    );
    let raw_mode = RawTerminal::enable();
    let mut stdin = tokio::io::stdin();
    let mut scanner = racker_ipmi::EscapeScanner::new();
    let mut buf = [0u8; 512];
    let mut stdin_open = true;
    let mut keepalive = tokio::time::interval(Duration::from_secs(15));
    keepalive.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    keepalive.tick().await; // the first tick is immediate
    loop {
        tokio::select! {
            _ = keepalive.tick() => sol.keepalive().await?,
            n = stdin.read(&mut buf), if stdin_open => {
                let n = n.context("reading stdin")?;
                if n == 0 {
                    stdin_open = false;
                    continue;
                }
                let (forward, detach) = scanner.feed(&buf[..n]);
                if !forward.is_empty() {
                    sol.write(&forward, opts.timeout, opts.retries).await?;
                }
                if detach {
                    break;
                }
            }
            out = sol.read(Duration::from_millis(200)) => {
                let out = out?;
                if !out.is_empty() {
                    let mut so = std::io::stdout().lock();
                    so.write_all(&out)?;
                    so.flush()?;
                }
            }
        }
    }
    drop(raw_mode);
    let session = sol.deactivate().await?;
    session.close().await?;
    eprintln!("[SOL session closed]");
    Ok(ExitCode::SUCCESS)
}

/// Puts an interactive stdin into raw mode (keys go to the node as typed,
/// no local echo) and restores it on drop. Does nothing when stdin is not
/// a terminal.
struct RawTerminal {
    saved: Option<libc::termios>,
}

impl RawTerminal {
    #[allow(unsafe_code)]
    fn enable() -> RawTerminal {
        // SAFETY: isatty/tcgetattr/tcsetattr on fd 0 with a zero-initialised
        // termios that tcgetattr fills in; no pointers are kept.
        unsafe {
            if libc::isatty(0) != 1 {
                return RawTerminal { saved: None };
            }
            let mut t: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(0, &mut t) != 0 {
                return RawTerminal { saved: None };
            }
            let saved = t;
            libc::cfmakeraw(&mut t);
            if libc::tcsetattr(0, libc::TCSANOW, &t) != 0 {
                return RawTerminal { saved: None };
            }
            RawTerminal { saved: Some(saved) }
        }
    }
}

impl Drop for RawTerminal {
    #[allow(unsafe_code)]
    fn drop(&mut self) {
        if let Some(t) = self.saved {
            // SAFETY: restores the settings read in `enable` on fd 0.
            unsafe {
                libc::tcsetattr(0, libc::TCSANOW, &t);
            }
        }
    }
}
