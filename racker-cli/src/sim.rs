//! `racker sim`: run a simulated rack (one IPMI BMC per nodes.csv row) and
//! show its state.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use racker_sim::{
    FaultSpec, FirmwareSetup, Password, STATUS_FILE, ServedRack, StatusFile, StatusView, read_json,
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
    let nodes_csv = args.nodes.clone().unwrap_or_else(|| globals.nodes_csv());
    let inventory = racker_sim::up_inventory(&nodes_csv, args.count, args.force)?;
    let (user, password) = credentials(&globals.oem_dir, &args.user)?;
    let port = args.ipmi_port.unwrap_or_else(racker_sim::default_ipmi_port);
    let faults: Vec<FaultSpec> = args
        .faults
        .iter()
        .map(|f| f.parse())
        .collect::<Result<_, _>>()
        .context("--fault")?;
    let install_delay = args
        .install_delay_ms
        .map_or(args.install_delay, std::time::Duration::from_millis);
    let (specs, firmware) = racker_sim::up_nodes(
        &inventory,
        &args.bind,
        port,
        &faults,
        args.pxe_dhcp,
        install_delay,
    )?;
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
    let pxe = dhcp.map(|d| (rack.firmware_count(), d));
    let elapsed = started.elapsed().as_millis();
    let (table, path) = (rack.table(), rack.table_path());
    for line in racker_sim::served_lines(pxe, table, path, &globals.oem_dir, &user, elapsed) {
        println!("{line}");
    }

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
    let view = StatusView::from(&file);
    crate::output::emit(globals.output, "sim-status", &view, |wide| {
        let (header, mut rows) = (StatusView::header(wide), view.rows(wide));
        crate::status::paint_states(&header, &mut rows);
        crate::table::print_rows(&header, &rows);
        Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}
