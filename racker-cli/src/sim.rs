//! `racker sim`: run a simulated rack (one IPMI BMC per nodes.csv row) and
//! show its state.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use racker_inventory::{Inventory, MacAddr, NODES_CSV_HEADER};
use racker_sim::firmware::{FirmwareFault, FirmwareFaults, NodeFault};
use racker_sim::{
    BMC_TABLE_FILE, BmcTable, Fault, Faults, NodeSpec, Password, STATUS_FILE, SimRack, StatusFile,
    format_mac, read_json, write_json_atomic,
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
    /// loss:PERCENT or latency:DURATION (MAC = BMC or primary MAC), or with
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

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// Generated MACs: 02:52:4b:<column>:<hi>:<lo> (locally administered).
fn generated_csv(count: usize) -> String {
    let mut csv = format!("{NODES_CSV_HEADER}\n");
    for i in 0..count {
        let (hi, lo) = ((i >> 8) as u8, i as u8);
        let mac = |col: u8| format_mac([0x02, 0x52, 0x4B, col, hi, lo]);
        let comment = if i == 0 { "mgmt node" } else { "simulated" };
        csv.push_str(&format!(
            "{}, {}, {}, sim, {comment}\n",
            mac(0),
            mac(1),
            mac(2)
        ));
    }
    csv
}

/// Address of BMC `i`.
fn bmc_addr(bind: &str, port: u16, i: usize) -> anyhow::Result<SocketAddr> {
    let octets: Vec<&str> = bind.split('.').collect();
    let parse = |s: &str| {
        s.parse::<u8>()
            .with_context(|| format!("--bind {bind:?}: {s:?} is not an octet"))
    };
    let addr = match octets.len() {
        3 => {
            let base = u32::from(Ipv4Addr::new(
                parse(octets[0])?,
                parse(octets[1])?,
                parse(octets[2])?,
                0,
            ));
            // Skip .0, .1 and .255 of every /24: .2, .3, ... .254, then the next /24.
            let per = 253u32;
            let i = u32::try_from(i)?;
            let ip = base + (i / per) * 256 + 2 + i % per;
            SocketAddr::new(IpAddr::V4(Ipv4Addr::from(ip)), port)
        }
        4 => {
            let ip: Ipv4Addr = bind.parse().with_context(|| format!("--bind {bind:?}"))?;
            let port = if port == 0 {
                0
            } else {
                u16::try_from(usize::from(port) + i).context("port range exceeds 65535")?
            };
            SocketAddr::new(IpAddr::V4(ip), port)
        }
        _ => bail!("--bind {bind:?}: give three octets (127.24.213) or one address (127.0.0.1)"),
    };
    if !addr.ip().is_loopback() {
        bail!("--bind {bind:?}: the simulator only listens on loopback addresses (127.0.0.0/8)");
    }
    Ok(addr)
}

fn parse_fault(spec: &str) -> anyhow::Result<(MacAddr, NodeFault)> {
    let (mac, kind) = spec
        .split_once('=')
        .with_context(|| format!("--fault {spec:?}: expected MAC=KIND"))?;
    let mac: MacAddr = mac
        .parse()
        .with_context(|| format!("--fault {spec:?}: bad MAC"))?;
    let fault = kind
        .parse()
        .map_err(|_| {
            anyhow::anyhow!(
                "--fault {spec:?}: invalid fault {:?}: expected unreachable, wrong-password, loss:PERCENT, latency:DURATION, or (with --pxe-dhcp) no-lease, download-fail, install-fail, hang, no-os-up",
                kind.trim()
            )
        })?;
    Ok((mac, fault))
}

/// Read or create the credential files.
fn credentials(oem_dir: &Path, default_user: &str) -> anyhow::Result<(String, Password)> {
    let user_file = oem_dir.join("ipmi_user");
    let pw_file = oem_dir.join("ipmi_password");
    if !user_file.exists() {
        std::fs::write(&user_file, format!("{default_user}\n"))
            .with_context(|| format!("writing {}", user_file.display()))?;
    }
    if !pw_file.exists() {
        let pw = std::env::var("RACKER_SIM_PASSWORD").unwrap_or_else(|_| "PASS".to_owned());
        crate::fsutil::write_atomic(&pw_file, format!("{pw}\n").as_bytes(), 0o600)?;
    }
    let creds = racker_inventory::Credentials::load(oem_dir)?;
    for w in &creds.warnings {
        eprintln!("warning: {w}");
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
        let csv = generated_csv(count);
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
        crate::fsutil::write_atomic(&path, csv.as_bytes(), 0o644)?;
        Inventory::parse(&path.display().to_string(), csv.as_bytes())?
    } else {
        let path = args.nodes.clone().unwrap_or_else(|| globals.nodes_csv());
        Inventory::load(&path)?
    };
    let (user, password) = credentials(&globals.oem_dir, &args.user)?;
    let port = args.ipmi_port.unwrap_or(if is_root() { 623 } else { 6230 });

    let mut faults: Vec<(MacAddr, Fault)> = Vec::new();
    let mut firmware_faults: Vec<(MacAddr, FirmwareFault)> = Vec::new();
    for f in &args.faults {
        match parse_fault(f)? {
            (mac, NodeFault::Bmc(b)) => faults.push((mac, b)),
            (mac, NodeFault::Firmware(w)) => firmware_faults.push((mac, w)),
            (_, other) => bail!("--fault {f:?}: {other} is not supported here"),
        }
    }
    if !firmware_faults.is_empty() && args.pxe_dhcp.is_none() {
        bail!(
            "firmware faults (no-lease, download-fail, install-fail, hang, no-os-up) need --pxe-dhcp"
        );
    }
    let mut specs = Vec::new();
    let mut node_firmware_faults = std::collections::BTreeMap::new();
    for (i, node) in inventory.nodes().iter().enumerate() {
        let mut nf = Faults::default();
        for (mac, fault) in &faults {
            if node.has_mac(*mac) {
                nf.apply(*fault);
            }
        }
        for (mac, fault) in &firmware_faults {
            if node.has_mac(*mac) {
                node_firmware_faults
                    .entry(node.primary_mac.octets())
                    .or_insert_with(FirmwareFaults::default)
                    .apply(*fault);
            }
        }
        specs.push(
            NodeSpec::new(node.bmc_mac.octets(), bmc_addr(&args.bind, port, i)?)
                .primary_mac(node.primary_mac.octets())
                .faults(nf),
        );
    }
    for mac in faults
        .iter()
        .map(|f| f.0)
        .chain(firmware_faults.iter().map(|f| f.0))
    {
        if inventory.find_by_mac(mac).is_none() {
            bail!("--fault: no node has MAC {mac}");
        }
    }

    let runtime = tokio::runtime::Runtime::new()?;
    let firmware = args.pxe_dhcp.map(|dhcp| {
        (
            dhcp,
            args.install_delay_ms
                .map_or(args.install_delay, std::time::Duration::from_millis),
            node_firmware_faults,
        )
    });
    runtime.block_on(serve(globals, specs, user, password, firmware))
}

async fn serve(
    globals: &Globals,
    specs: Vec<NodeSpec>,
    user: String,
    password: Password,
    firmware: Option<(
        std::net::SocketAddr,
        std::time::Duration,
        std::collections::BTreeMap<[u8; 6], FirmwareFaults>,
    )>,
) -> anyhow::Result<ExitCode> {
    let started = std::time::Instant::now();
    let rack = SimRack::start(specs, &user, password.clone()).await?;
    // Keep the firmware tasks alive as long as the rack runs.
    let mut _firmware = Vec::new();
    if let Some((dhcp, delay, node_faults)) = firmware {
        use racker_sim::firmware::{BmcAccess, Firmware, FirmwareConfig, HttpClient};
        let config = FirmwareConfig::new(dhcp)
            .bmc(BmcAccess::Lan {
                user: user.clone(),
                password: password.clone(),
            })
            .install_delay(delay);
        let client = HttpClient::new(&config)?;
        for node in rack.nodes() {
            let Some(mac) = node.primary_mac() else {
                continue;
            };
            let faults = node_faults.get(&mac).copied().unwrap_or_default();
            _firmware.push(Firmware::spawn_with(
                node,
                config.clone().faults(faults),
                &client,
            )?);
        }
        println!(
            "PXE firmware on {} node(s), DHCP server {dhcp}",
            _firmware.len()
        );
    }
    let mut events = rack.subscribe();
    let pid = std::process::id();
    let table = BmcTable::of(&rack, pid, &user);
    let write_status = |rack: &SimRack| -> anyhow::Result<()> {
        write_json_atomic(&globals.state_dir, STATUS_FILE, &StatusFile::of(rack, pid))?;
        Ok(())
    };
    write_status(&rack)?;
    let table_path = write_json_atomic(&globals.state_dir, BMC_TABLE_FILE, &table)?;
    // Only a state directory with this marker (and this process alive)
    // sends racker's IPMI to the table's addresses.
    crate::context::mark_simulated(&globals.state_dir, pid)?;

    println!(
        "{} simulated BMCs up in {} ms (user {user}, password in {}):",
        rack.nodes().len(),
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
            "  racker --oem-dir {} --state-dir {} ipmi {} status",
            globals.oem_dir.display(),
            globals.state_dir.display(),
            first.bmc_mac
        );
    }
    println!("BMC table: {}; press Ctrl-C to stop.", table_path.display());

    let result = loop {
        tokio::select! {
            r = tokio::signal::ctrl_c() => break r.context("waiting for Ctrl-C"),
            e = events.recv() => {
                if let Err(tokio::sync::broadcast::error::RecvError::Closed) = e {
                    break Ok(());
                }
                // Coalesce bursts into one write.
                while events.try_recv().is_ok() {}
                if let Err(err) = write_status(&rack) {
                    eprintln!("warning: {err:#}");
                }
            }
        }
    };
    rack.shutdown().await;
    for name in [
        crate::context::SIMULATED_RACK_MARKER,
        BMC_TABLE_FILE,
        STATUS_FILE,
    ] {
        let _ = std::fs::remove_file(globals.state_dir.join(name));
    }
    result?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_skip_network_and_broadcast() {
        assert_eq!(
            bmc_addr("127.24.213", 6230, 0).unwrap(),
            "127.24.213.2:6230".parse().unwrap()
        );
        assert_eq!(
            bmc_addr("127.24.213", 6230, 252).unwrap(),
            "127.24.213.254:6230".parse().unwrap()
        );
        assert_eq!(
            bmc_addr("127.24.213", 6230, 253).unwrap(),
            "127.24.214.2:6230".parse().unwrap()
        );
        assert_eq!(
            bmc_addr("127.0.0.1", 7000, 3).unwrap(),
            "127.0.0.1:7003".parse().unwrap()
        );
        assert!(bmc_addr("10.0.0", 623, 0).is_err());
        assert!(bmc_addr("127.0", 623, 0).is_err());
        assert!(bmc_addr("127.0.0.1", 65535, 1).is_err());
    }

    #[test]
    fn generated_inventory_parses() {
        let csv = generated_csv(300);
        let inv = Inventory::parse("gen", csv.as_bytes()).unwrap();
        assert_eq!(inv.nodes().len(), 300);
        assert_eq!(inv.nodes()[299].bmc_mac.to_string(), "02:52:4b:01:01:2b");
    }

    #[test]
    fn fault_flags() {
        let (mac, f) = parse_fault("02:52:4B:01:00:01=loss:25").unwrap();
        assert_eq!(mac.to_string(), "02:52:4b:01:00:01");
        assert_eq!(f, NodeFault::Bmc(Fault::PacketLoss(25)));
        assert!(parse_fault("02:52:4b:01:00:01").is_err());
        assert!(parse_fault("nope=unreachable").is_err());
    }
}
