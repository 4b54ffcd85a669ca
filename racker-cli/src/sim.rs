//! `racker sim`: run a simulated rack (one IPMI BMC per nodes.csv row) and
//! show its state.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use racker_inventory::Inventory;
use racker_sim::{
    FaultSpec, FirmwareSetup, Password, STATUS_FILE, ServedRack, SplitFaults, StatusFile,
    node_specs, read_json,
};

use crate::globals::Globals;

/// `racker sim` subcommands.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum SimCmd {
    /// Run a simulated rack in the foreground until Ctrl-C.
    #[command(after_help = UP_HELP)]
    Up(UpArgs),
    /// Show power and boot state of every simulated node.
    #[command(after_help = STATUS_HELP)]
    Status(StatusArgs),
}

const UP_HELP: &str = "\
Every BMC listens on its own loopback address (PREFIX.2, PREFIX.3, ...; a
full IPv4 address instead puts every BMC on that address with consecutive
ports). The BMC table goes to <state-dir>/sim-bmcs.json, live state to
<state-dir>/sim-status.json (see docs/simulator.md); both are removed on
Ctrl-C. Credentials come from <oem-dir>/ipmi_user and ipmi_password, which
are created (USER / PASS, or --user and RACKER_SIM_PASSWORD) when missing.

Examples:
  racker --oem-dir /tmp/rack --state-dir /tmp/state sim up --count 4
  racker sim up --nodes-csv nodes.csv --bind 127.24.213 --ipmi-port 6230 \\
      --fault 00:11:22:33:44:21=unreachable --fault 00:11:22:33:44:11=loss:30
  IPMI_PASSWORD=PASS ipmitool -I lanplus -H 127.24.213.2 -p 6230 -U USER -E chassis status";

const STATUS_HELP: &str = "\
Examples:
  racker --state-dir /tmp/state sim status
  racker --state-dir /tmp/state sim status -o json | jq '.nodes[] | select(.power == \"on\")'";

/// Options of `racker sim up`.
#[derive(Debug, clap::Args)]
pub(crate) struct UpArgs {
    /// nodes.csv to simulate (default: <oem-dir>/nodes.csv).
    #[arg(
        long = "nodes-csv",
        alias = "nodes",
        value_name = "FILE",
        conflicts_with = "count"
    )]
    nodes: Option<std::path::PathBuf>,
    /// Generate N nodes (the first is the management node) and write their
    /// nodes.csv into the OEM directory.
    #[arg(long)]
    count: Option<usize>,
    /// Loopback prefix (three octets, one address per BMC) or one loopback
    /// address (one port per BMC).
    #[arg(long, default_value = "127.24.213")]
    bind: String,
    /// UDP port of every BMC (default 623 as root, else 6230; 0 = any).
    #[arg(long)]
    ipmi_port: Option<u16>,
    /// Inject a fault: MAC=KIND with KIND unreachable, wrong-password,
    /// fan-fail, loss:PERCENT or latency:DURATION (MAC = BMC or primary MAC), or with
    /// --pxe-dhcp a firmware fault: no-lease, download-fail, install-fail, hang, no-os-up.
    #[arg(long = "fault", value_name = "MAC=KIND")]
    faults: Vec<String>,
    /// IPMI user written to ipmi_user when that file is missing.
    #[arg(long, default_value = "USER")]
    user: String,
    /// Overwrite an existing, different nodes.csv with --count.
    #[arg(long)]
    force: bool,
    /// Give every node PXE firmware: powered on with boot device PXE, it
    /// boots from the netboot server whose plain-UDP DHCP listens here
    /// (`racker netboot serve --listen ADDR`), installs, reports and
    /// reboots from disk.
    #[arg(long, value_name = "ADDR:PORT")]
    pxe_dhcp: Option<std::net::SocketAddr>,
    /// How long each simulated installer takes (with --pxe-dhcp).
    #[arg(long, default_value = "300ms", value_parser = racker_inventory::parse_duration, value_name = "DURATION")]
    install_delay: std::time::Duration,
    /// Old spelling of --install-delay, in milliseconds.
    #[arg(long, hide = true, conflicts_with = "install_delay")]
    install_delay_ms: Option<u64>,
}

/// Options of `racker sim status` (none but the global ones).
#[derive(Debug, clap::Args)]
pub(crate) struct StatusArgs {}

pub(crate) fn run(globals: &Globals, cmd: SimCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        SimCmd::Up(args) => up(globals, args),
        SimCmd::Status(args) => status(globals, args),
    }
}

/// Read or create the credential files (the password from
/// RACKER_SIM_PASSWORD, else PASS).
fn credentials(oem_dir: &Path, default_user: &str) -> anyhow::Result<(String, Password)> {
    let password = std::env::var("RACKER_SIM_PASSWORD").unwrap_or_else(|_| "PASS".to_owned());
    let creds = racker_sim::ensure_credentials(oem_dir, default_user, &password)?;
    for w in &creds.warnings {
        crate::output::warn(w);
    }
    Ok((creds.user, Password::new(creds.password.expose())))
}

fn up(globals: &Globals, args: UpArgs) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(&globals.oem_dir)
        .with_context(|| format!("creating {}", globals.oem_dir.display()))?;
    std::fs::create_dir_all(&globals.state_dir)
        .with_context(|| format!("creating {}", globals.state_dir.display()))?;
    let inventory = if let Some(count) = args.count {
        if count == 0 {
            bail!("--count must be at least 1");
        }
        let csv = racker_sim::generated_nodes_csv(count);
        let path = globals.nodes_csv();
        if let Ok(existing) = std::fs::read_to_string(&path)
            && existing != csv
            && !args.force
        {
            bail!(
                "{} exists with other content; pass --force to replace it",
                path.display()
            );
        }
        racker_bootstrap::fsutil::write_atomic(&path, csv.as_bytes(), 0o644)?;
        Inventory::parse(&path.display().to_string(), csv.as_bytes())?
    } else {
        let path = args.nodes.clone().unwrap_or_else(|| globals.nodes_csv());
        Inventory::load(&path)?
    };
    let (user, password) = credentials(&globals.oem_dir, &args.user)?;
    let port = args.ipmi_port.unwrap_or_else(racker_sim::default_ipmi_port);

    let specs: Vec<FaultSpec> = args
        .faults
        .iter()
        .map(|f| f.parse())
        .collect::<Result<_, _>>()
        .context("--fault")?;
    let faults = SplitFaults::of(&specs);
    if !faults.firmware.is_empty() && args.pxe_dhcp.is_none() {
        bail!(
            "firmware faults (no-lease, download-fail, install-fail, hang, no-os-up) need --pxe-dhcp"
        );
    }
    let (specs, firmware_faults) =
        node_specs(&inventory, &args.bind, port, &faults).map_err(|e| match e {
            e @ racker_sim::Error::UnknownMac { .. } => anyhow::anyhow!("--fault: {e}"),
            e => anyhow::anyhow!("--bind: {e}"),
        })?;
    let firmware = args.pxe_dhcp.map(|dhcp| FirmwareSetup {
        dhcp,
        install_delay: args
            .install_delay_ms
            .map_or(args.install_delay, std::time::Duration::from_millis),
        faults: firmware_faults,
    });
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(serve(globals, specs, user, password, firmware))
}

async fn serve(
    globals: &Globals,
    specs: Vec<racker_sim::NodeSpec>,
    user: String,
    password: Password,
    firmware: Option<FirmwareSetup>,
) -> anyhow::Result<ExitCode> {
    let started = std::time::Instant::now();
    let dhcp = firmware.as_ref().map(|f| f.dhcp);
    let rack = ServedRack::start(&globals.state_dir, specs, &user, password, firmware).await?;
    if let Some(dhcp) = dhcp {
        println!(
            "PXE firmware on {} node(s), DHCP server {dhcp}",
            rack.firmware_count()
        );
    }
    let table = rack.table();
    let table_path = rack.table_path();
    println!(
        "{} simulated BMCs up in {} ms (user {user}, password in {}):",
        table.bmcs.len(),
        started.elapsed().as_millis(),
        globals.oem_dir.join("ipmi_password").display()
    );
    for entry in table.bmcs.iter().take(8) {
        println!("  BMC {}  {}", entry.bmc_mac, entry.ipmi_address);
    }
    if table.bmcs.len() > 8 {
        println!(
            "  ... {} more in {}",
            table.bmcs.len() - 8,
            table_path.display()
        );
    }
    if let Some(first) = table.bmcs.first() {
        let a = first.ipmi_address;
        println!("Reach them with:");
        println!(
            "  IPMI_PASSWORD=$(cat {}) ipmitool -I lanplus -H {} -p {} -U {user} -E chassis status",
            globals.oem_dir.join("ipmi_password").display(),
            a.ip(),
            a.port()
        );
        println!(
            "  racker --oem-dir {} ipmi --host {} power status",
            globals.oem_dir.display(),
            a
        );
    }
    println!("BMC table: {}; press Ctrl-C to stop.", table_path.display());

    let (tx, rx) = tokio::sync::oneshot::channel();
    let shutdown = async move {
        let signal = tokio::signal::ctrl_c().await;
        let _ = tx.send(signal);
    };
    rack.run_until(shutdown, |err| crate::output::warn(format_args!("{err:#}")))
        .await;
    if let Ok(signal) = rx.await {
        signal.context("waiting for Ctrl-C")?;
    }
    println!("simulated rack stopped");
    Ok(ExitCode::SUCCESS)
}

/// `racker sim status -o json` (kind `sim-status`, docs/output.md).
#[derive(serde::Serialize)]
struct SimStatusJson {
    nodes: Vec<SimNodeJson>,
}

#[derive(serde::Serialize)]
struct SimNodeJson {
    mac: Option<String>,
    bmc_mac: String,
    bmc_ip: String,
    bmc_port: Option<u16>,
    power: String,
    boot_device: String,
    persistent: bool,
    efi: bool,
    boot_valid: bool,
    boot_flags: String,
    boot_flag_clearing: String,
    sessions: usize,
    faults: Vec<String>,
}

impl From<&racker_sim::NodeStatus> for SimNodeJson {
    fn from(n: &racker_sim::NodeStatus) -> Self {
        let (bmc_ip, bmc_port) = crate::output::split_host_port(&n.ipmi_address);
        Self {
            mac: Some(n.primary_mac.clone()).filter(|m| !m.is_empty()),
            bmc_mac: n.bmc_mac.clone(),
            bmc_ip,
            bmc_port,
            power: n.power.clone(),
            boot_device: n.boot_device.clone(),
            persistent: n.persistent,
            efi: n.efi,
            boot_valid: n.boot_valid,
            boot_flags: n.boot_flags.clone(),
            boot_flag_clearing: n.boot_flag_clearing.clone(),
            sessions: n.sessions,
            faults: n.faults.clone(),
        }
    }
}

/// The table: BMC and boot state; `wide` adds the raw boot flags and
/// the open sessions.
fn print_status_table(view: &SimStatusJson, wide: bool) {
    use crate::output::{Tone, paint};
    let mut header = vec![
        "BMC MAC",
        "PRIMARY MAC",
        "IPMI ADDRESS",
        "POWER",
        "BOOT",
        "PERSISTENT",
        "EFI",
    ];
    if wide {
        header.extend(["BOOT FLAGS", "CLEARING", "SESSIONS"]);
    }
    header.push("FAULTS");
    let yn = |b: bool| if b { "yes" } else { "no" }.to_owned();
    let rows: Vec<Vec<String>> = view
        .nodes
        .iter()
        .map(|n| {
            let address = match n.bmc_port {
                Some(p) => format!("{}:{p}", n.bmc_ip),
                None => n.bmc_ip.clone(),
            };
            let mut row = vec![
                n.bmc_mac.clone(),
                n.mac.clone().unwrap_or_default(),
                address,
                paint(Tone::of_state(&n.power), &n.power),
                n.boot_device.clone(),
                yn(n.persistent),
                yn(n.efi),
            ];
            if wide {
                row.extend([
                    n.boot_flags.clone(),
                    n.boot_flag_clearing.clone(),
                    n.sessions.to_string(),
                ]);
            }
            row.push(if n.faults.is_empty() {
                "-".to_owned()
            } else {
                paint(Tone::Warn, &n.faults.join(","))
            });
            row
        })
        .collect();
    crate::table::print_rows(&header, &rows);
}

fn status(globals: &Globals, _args: StatusArgs) -> anyhow::Result<ExitCode> {
    let file: StatusFile = read_json(&globals.state_dir, STATUS_FILE).with_context(|| {
        format!(
            "no simulated rack is running with state directory {}",
            globals.state_dir.display()
        )
    })?;
    if !Path::new(&format!("/proc/{}", file.pid)).exists() {
        crate::output::warn(format_args!(
            "racker sim up (pid {}) is no longer running; showing its last state",
            file.pid
        ));
    }
    let view = SimStatusJson {
        nodes: file.nodes.iter().map(SimNodeJson::from).collect(),
    };
    crate::output::emit(globals.output, "sim-status", &view, |wide| {
        print_status_table(&view, wide);
        Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}
