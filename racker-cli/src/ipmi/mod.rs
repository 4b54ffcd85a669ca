//! `racker ipmi`: talk IPMI 2.0 (RMCP+) to one BMC or to every BMC of the rack.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};
use futures::{Stream, StreamExt as _};
use racker_inventory::{Host, HostList};
use racker_ipmi::monitor::Identify;
use racker_ipmi::text::{self, Layout, Listing};
use racker_ipmi::{
    BootDevice, CipherPreference, CipherSuite, Credentials, FanOutReport, FanOutResult, LocalBmc,
    Operation, Output, Password, PowerAction, Privilege, RawRequest, RestorePolicy, Session,
    SessionOptions, SolConsole,
};

mod exporter;

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
        #[arg(default_value = "15")]
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
    RawRequest::parse_byte(s).ok_or_else(|| format!("{s:?} is not a hex byte"))
}

/// One BMC to talk to, with what the rack knows about its node.
type Target = racker_bootstrap::BmcTarget;

pub(crate) fn run(globals: &Globals, args: IpmiCmd) -> anyhow::Result<ExitCode> {
    let command = args.command.as_ref().unwrap_or(&IpmiSub::Sol);
    if args.all && matches!(command, IpmiSub::Sol) {
        bail!(
            "the serial console needs one node: give NODE or --host instead of --all (or a command)"
        );
    }
    let op = operation(command)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    if args.local {
        let op = op.context("the serial console is not available with --local")?;
        // This machine's BMC through /dev/ipmi0, as a fan-out of one.
        let local = Target::local(&args.device);
        let results = racker_ipmi::fan_out([(local.clone(), local.address)], 1, |_| async {
            LocalBmc::open(&args.device, args.timeout)?
                .execute(&op)
                .await
        });
        return runtime.block_on(report(&args, globals.output, &op, results, 1));
    }
    let targets = targets(globals, &args, matches!(command, IpmiSub::Exporter(_)))?;
    for w in targets.iter().filter_map(|t| t.warning.as_ref()) {
        crate::output::warn(w);
    }
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
    let result = match (command, op) {
        (IpmiSub::Exporter(e), _) => {
            runtime.block_on(exporter::run(e, targets, &creds, &opts, args.concurrency))
        }
        (_, None) => {
            let target = targets.into_iter().next().context("no node selected")?;
            runtime.block_on(console(&target, &creds, &opts))
        }
        (_, Some(op)) => {
            let total = targets.len();
            let jobs = targets
                .into_iter()
                .map(|t| (t.clone(), t.address))
                .collect();
            let results =
                racker_ipmi::fan_out_operation(jobs, &creds, &opts, &op, args.concurrency);
            runtime.block_on(report(&args, globals.output, &op, results, total))
        }
    };
    // The console's stdin reader may still block in a read(2): don't wait for it.
    runtime.shutdown_background();
    result
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

/// The BMCs the command names: `--host`, NODES, `--all` (also the
/// exporter without NODES), minus `--exclude`.
fn targets(globals: &Globals, args: &IpmiCmd, exporter: bool) -> anyhow::Result<Vec<Target>> {
    if let Some(host) = &args.host {
        return Ok(vec![Target::host(host, args.port)?]);
    }
    let all = args.all || (exporter && args.node.is_none());
    let wanted = match &args.node {
        Some(text) if !all => Some(
            text.parse::<HostList>()
                .with_context(|| format!("NODES {text:?}"))?
                .expand(),
        ),
        _ => None,
    };
    let rack = load_rack(globals, &args.plan)?;
    let exclude: Vec<Host> = args
        .plan
        .exclude
        .parse::<HostList>()
        .with_context(|| format!("--exclude {:?}", args.plan.exclude))?
        .expand();
    // Excluded MACs also leave the cluster selection (host names follow
    // it); without a selection (e.g. too few controllers for the given
    // options) only MACs match.
    let mut plan_args = args.plan.clone();
    plan_args.exclude = exclude
        .iter()
        .filter(|h| matches!(h, Host::Mac(_)))
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" ");
    let selection =
        racker_inventory::select(&rack.plan, &args.selection.selection_options(&plan_args)?).ok();
    let query = racker_bootstrap::TargetQuery {
        wanted,
        all,
        exclude,
        port: args.port,
    };
    let resolver = crate::context::BmcResolver::load(globals)?;
    Ok(racker_bootstrap::select_targets(
        rack.plan.nodes(),
        selection.as_ref(),
        resolver.inner(),
        &query,
    )?)
}

/// Prints results on stdout as they arrive (racker_ipmi::text's layout,
/// or one JSON document sorted by BMC at the end) and `[n/total] label ok`
/// progress on stderr when there are several BMCs.
async fn report(
    args: &IpmiCmd,
    format: crate::output::Format,
    op: &Operation,
    results: impl Stream<Item = FanOutResult<Target, Output>>,
    total: usize,
) -> anyhow::Result<ExitCode> {
    let multi = args.all || total > 1;
    let style = |tone, text: &str| paint(cli_tone(tone), text);
    let layout = Layout::default()
        .one_line(args.one_line)
        .consolidate(args.consolidate)
        .headed(multi);
    let mut listing = Listing::new(op, layout, &style);
    let mut json = FanOutReport::default();
    // anstream drops the colour codes where colour is off (docs/output.md).
    let mut out = anstream::stdout();
    let (mut done, mut failures) = (0usize, 0usize);
    let mut results = std::pin::pin!(results);
    while let Some(r) = results.next().await {
        done += 1;
        let word = match r.failure() {
            None => paint(Tone::Good, "ok"),
            Some(_) => {
                failures += 1;
                paint(Tone::Bad, "FAILED")
            }
        };
        let label = r.key.label.clone();
        if format.is_json() {
            json.push(r);
        } else {
            out.write_all(listing.push(&node(&r.key), &r).as_bytes())?;
        }
        if multi {
            anstream::eprintln!("[{done}/{total}] {label} {word}");
        }
    }
    if format.is_json() {
        json.sort_by(|a, b| a.label.cmp(&b.label));
        crate::output::print_json(format, "ipmi", &json)?;
    } else {
        out.write_all(listing.finish().as_bytes())?;
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

fn cli_tone(tone: text::Tone) -> Tone {
    match tone {
        text::Tone::Good => Tone::Good,
        text::Tone::Warn => Tone::Warn,
        text::Tone::Bad => Tone::Bad,
        _ => Tone::Plain,
    }
}

/// What `diag` and the block headers print about a target's node.
fn node(t: &Target) -> text::Node {
    let mut n = text::Node::new(t.label.clone(), t.address.clone());
    n.short_name = t.host_label();
    n.address_source = t.source.as_str().into();
    n.bmc_mac = t.bmc_mac.map(|m| m.to_string());
    n.mac = t.mac.map(|m| m.to_string());
    n.ip = t.ip.map(|ip| ip.to_string());
    n.hostname = t.hostname.clone();
    n
}

/// The serial console: stdin → BMC, BMC → stdout, until `~.`.
async fn console(
    target: &Target,
    creds: &Credentials,
    opts: &SessionOptions,
) -> anyhow::Result<ExitCode> {
    let session = Session::connect(&target.address, creds, opts).await?;
    let sol = SolConsole::activate(session).await?;
    eprintln!(
        "[SOL session to {} active; type ~. at the start of a line to detach]",
        target.label
    );
    let raw_mode = RawTerminal::enable();
    let (stdin, stdout) = (tokio::io::stdin(), tokio::io::stdout());
    let result = sol.attach(stdin, stdout, opts.timeout, opts.retries).await;
    drop(raw_mode);
    result?;
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
