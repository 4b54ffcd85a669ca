//! `racker demo`: a whole rack on this machine — simulated BMCs and
//! PXE-booting nodes, racker's netboot server on loopback, and a native
//! Flatcar bootstrap of every node — then `racker status`. No root, no
//! internet, no containers.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Parser as _;
use racker_inventory::MacAddr;
use racker_sim::firmware::{BmcAccess, Firmware, FirmwareConfig, FirmwareFaults, NodeFault};
use racker_sim::{NodeSpec, Password, SimRack};

use crate::bootstrap::{self, BootstrapCmd};
use crate::context::PlanArgs;
use crate::fsutil::write_atomic;
use crate::globals::Globals;

/// Arguments of `racker demo`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  racker demo
  racker demo --nodes 60 --install-delay-ms 0
  racker demo --nodes 4 --fault 02:00:00:01:00:02=install-fail --on-failure exclude

The demo rack lives in --dir (a new directory under /tmp by default) and is
left there so `racker --oem-dir DIR/oem --state-dir DIR/state --sys-class-net
DIR/net status` can be rerun while a demo runs.")]
pub(crate) struct DemoCmd {
    /// Number of nodes (the management node comes on top).
    #[arg(long, default_value_t = 8)]
    nodes: usize,
    /// What to provision (lokomotive drives `lokoctl` from PATH or RACKER_LOKOCTL).
    #[arg(long, value_enum, default_value = "flatcar")]
    provision: crate::context::ProvisionArg,
    /// Working directory [default: a new directory under /tmp].
    #[arg(long)]
    dir: Option<PathBuf>,
    /// How long each simulated installer "writes the disk".
    #[arg(long, default_value_t = 300)]
    install_delay_ms: u64,
    /// Node i's installer takes (i + 1) times --install-delay-ms instead, so
    /// installs finish one after the other.
    #[arg(long)]
    stagger: bool,
    /// Inject a fault (repeatable): PRIMARY_MAC=KIND, KIND a firmware fault
    /// (no-lease, download-fail, install-fail, hang, no-os-up) or a BMC fault
    /// (unreachable, wrong-password, loss=PERCENT, latency=MS), as
    /// `racker sim up --fault`.
    #[arg(long, value_name = "MAC=KIND")]
    fault: Vec<String>,
    /// MACs of nodes to leave out (as `racker bootstrap --exclude`).
    #[arg(long, default_value = "")]
    exclude: String,
    /// What to do when nodes fail (as `racker bootstrap`).
    #[arg(long, value_enum, default_value = "cancel")]
    on_failure: bootstrap::OnFailure,
    /// Retries with --on-failure retry.
    #[arg(long, default_value_t = 1)]
    retries: u32,
    /// Seconds an installed node's OS may take to report up (as
    /// `racker bootstrap --os-timeout`).
    #[arg(long, default_value = "30s", value_parser = bootstrap::parse_duration, value_name = "DURATION")]
    os_timeout: Duration,
    /// Lokomotive: seconds every node may take to join (as `racker
    /// bootstrap --join-timeout`).
    #[arg(long, default_value = "60s", value_parser = bootstrap::parse_duration, value_name = "DURATION")]
    join_timeout: Duration,
}

/// MACs of demo node `i` (the management node is `i = None`).
fn demo_macs(i: Option<usize>) -> [MacAddr; 3] {
    let (hi, lo) = match i {
        None => (0xff, 0xff),
        Some(i) => ((i >> 8) as u8, i as u8),
    };
    [1u8, 2, 3].map(|kind| MacAddr::new([0x02, 0, 0, kind, hi, lo]))
}

fn free_udp_port() -> anyhow::Result<SocketAddr> {
    Ok(std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?.local_addr()?)
}

fn free_tcp_port() -> anyhow::Result<SocketAddr> {
    Ok(std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?.local_addr()?)
}

/// Write the demo rack's inputs: nodes.csv, credentials, the management
/// node's interfaces, and small stand-ins for Flatcar's PXE kernel and
/// initrd.
pub(crate) fn write_demo_rack(dir: &Path, nodes: usize) -> anyhow::Result<Globals> {
    let globals = Globals {
        oem_dir: dir.join("oem"),
        state_dir: dir.join("state"),
        sys_class_net: dir.join("net"),
    };
    let mut csv = String::from(racker_inventory::NODES_CSV_HEADER);
    csv.push('\n');
    let [p, b, s] = demo_macs(None);
    csv.push_str(&format!("{p}, {b}, {s}, mgmt, management node\n"));
    for i in 0..nodes {
        let [p, b, s] = demo_macs(Some(i));
        let kind = if i % 2 == 0 { "red" } else { "purple" };
        csv.push_str(&format!("{p}, {b}, {s}, {kind}, simulated node {i}\n"));
    }
    write_atomic(&globals.nodes_csv(), csv.as_bytes(), 0o644)?;
    write_atomic(&globals.oem_dir.join("ipmi_user"), b"USER\n", 0o644)?;
    write_atomic(&globals.oem_dir.join("ipmi_password"), b"PASS\n", 0o600)?;
    for (name, mac) in [("eth0", p), ("eth1", s)] {
        write_atomic(
            &globals.sys_class_net.join(name).join("address"),
            format!("{mac}\n").as_bytes(),
            0o644,
        )?;
    }
    let assets = globals
        .state_dir
        .join("assets")
        .join("flatcar")
        .join("current");
    for (name, size) in [
        (racker_netboot::matchbox::PXE_KERNEL, 256 * 1024),
        (racker_netboot::matchbox::PXE_INITRD, 1024 * 1024),
        // What flatcar-install fetches (the simulated installer does not).
        ("flatcar_production_image.bin.bz2", 4096),
        ("flatcar_production_image.bin.bz2.sig", 64),
    ] {
        let path = assets.join(name);
        if !path.exists() {
            let bytes: Vec<u8> = (0..size).map(|i: usize| (i % 251) as u8).collect();
            write_atomic(&path, &bytes, 0o644)?;
        }
    }
    Ok(globals)
}

fn parse_fault(text: &str) -> anyhow::Result<(MacAddr, NodeFault)> {
    let (mac, kind) = text
        .split_once('=')
        .with_context(|| format!("--fault {text:?}: expected MAC=KIND"))?;
    let fault = kind
        .trim()
        .parse()
        .map_err(|e| anyhow::anyhow!("--fault {text:?}: {e}"))?;
    Ok((mac.trim().parse()?, fault))
}

pub(crate) fn run(args: DemoCmd) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(run_async(args))
}

async fn run_async(args: DemoCmd) -> anyhow::Result<ExitCode> {
    let provision = match args.provision {
        crate::context::ProvisionArg::Flatcar => "flatcar",
        crate::context::ProvisionArg::Lokomotive => {
            // Fail before starting anything when lokoctl is missing.
            bootstrap::lokomotive_available()?;
            "lokomotive"
        }
    };
    if args.nodes == 0 {
        bail!("--nodes must be at least 1");
    }
    let dir = match &args.dir {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!(
            "racker-demo-{}-{}",
            std::process::id(),
            racker_bootstrap::now_unix()
        )),
    };
    let prefix_length = if args.nodes <= 63 {
        24
    } else if args.nodes <= 447 {
        22
    } else {
        18
    };
    let subnet_prefix = match prefix_length {
        24 => "172.24.213",
        22 => "172.24.212",
        _ => "172.24.192",
    };
    let globals = write_demo_rack(&dir, args.nodes)?;
    println!("Demo rack of {} node(s) in {}", args.nodes, dir.display());

    // Faults per primary MAC: the BMC's and the firmware's.
    let mut bmc_faults: BTreeMap<MacAddr, racker_sim::Faults> = BTreeMap::new();
    let mut fw_faults: BTreeMap<MacAddr, FirmwareFaults> = BTreeMap::new();
    for f in &args.fault {
        match parse_fault(f)? {
            (mac, NodeFault::Bmc(b)) => bmc_faults.entry(mac).or_default().apply(b),
            (mac, NodeFault::Firmware(w)) => fw_faults.entry(mac).or_default().apply(w),
            (_, other) => bail!("--fault {f:?}: {other} is not supported by the demo"),
        }
    }
    // The simulated BMCs, one UDP port each on loopback.
    let mut specs = Vec::new();
    for i in 0..args.nodes {
        let [p, b, _] = demo_macs(Some(i));
        let mut spec = NodeSpec::new(b.octets(), SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
            .primary_mac(p.octets());
        if let Some(f) = bmc_faults.get(&p) {
            spec = spec.faults(*f);
        }
        specs.push(spec);
    }
    let rack = SimRack::start(specs, "USER", Password::new("PASS")).await?;
    let table = racker_sim::BmcTable::of(&rack, std::process::id(), "USER");
    racker_sim::write_json_atomic(&globals.state_dir, racker_sim::BMC_TABLE_FILE, &table)?;
    // `racker status` in the demo's state directory finds the simulated
    // BMCs while the demo runs.
    crate::context::mark_simulated(&globals.state_dir, std::process::id())?;
    let bmcs = crate::context::sim_table_addresses(&table);

    // Netboot endpoints on loopback, and each node's firmware.
    let dhcp = free_udp_port()?;
    let http = free_tcp_port()?;
    let config = FirmwareConfig::new(dhcp)
        .bmc(BmcAccess::Lan {
            user: "USER".into(),
            password: Password::new("PASS"),
        })
        .install_delay(Duration::from_millis(args.install_delay_ms));
    let client = racker_sim::firmware::HttpClient::new(&config)?;
    // The simulated disks live only as long as this process: resuming in
    // an existing --dir, nodes the report store knows as installed get
    // their OS back, installed from this run's netboot server (a new port
    // each run; a real server's address is stable).
    let reports = racker_netboot::report::ReportStore::open(&globals.state_dir)?;
    let base_url = format!("http://{http}");
    let mut firmware = Vec::new();
    for (i, node) in rack.nodes().iter().enumerate() {
        let mut cfg = config.clone();
        if args.stagger {
            cfg = cfg.install_delay(Duration::from_millis(
                args.install_delay_ms * (i as u64 + 1),
            ));
        }
        let primary = node.primary_mac().map(MacAddr::new);
        if let Some(f) = primary.and_then(|mac| fw_faults.get(&mac)) {
            cfg = cfg.faults(*f);
        }
        if let Some(mac) = primary.filter(|mac| reports.is_installed(*mac)) {
            // The installed OS reports with the token of its Ignition.
            let key = racker_netboot::report::ReportKey::load_or_create(&globals.state_dir)?;
            cfg = cfg.installed_from(format!("{base_url}/?token={}", key.token(mac)));
        }
        firmware.push(Firmware::spawn_with(node, cfg, &client)?);
    }

    let plan = PlanArgs {
        subnet_prefix: subnet_prefix.to_owned(),
        prefix_length,
        exclude: args.exclude.clone(),
    };
    #[derive(clap::Parser)]
    struct Wrap {
        #[command(flatten)]
        cmd: BootstrapCmd,
    }
    let on_failure = format!("{:?}", args.on_failure).to_lowercase();
    let wrap = Wrap::try_parse_from([
        "bootstrap".to_owned(),
        "--subnet-prefix".into(),
        subnet_prefix.into(),
        "--prefix-length".into(),
        prefix_length.to_string(),
        "--provision".into(),
        provision.into(),
        "--dhcp-listen".into(),
        dhcp.to_string(),
        "--http-listen".into(),
        http.to_string(),
        "--on-failure".into(),
        on_failure,
        "--retries".into(),
        args.retries.to_string(),
        "--exclude".into(),
        args.exclude.clone(),
        "--install-timeout".into(),
        "60".into(),
        "--os-timeout".into(),
        args.os_timeout.as_secs_f64().to_string(),
        "--join-timeout".into(),
        args.join_timeout.as_secs_f64().to_string(),
        "--ipmi-timeout".into(),
        "2".into(),
    ])?;
    let outcome = bootstrap::bootstrap(&globals, &wrap.cmd, bmcs.clone()).await;
    // The simulated nodes' final power and boot flags, as `racker sim status` shows them.
    racker_sim::write_json_atomic(
        &globals.state_dir,
        racker_sim::STATUS_FILE,
        &racker_sim::StatusFile::of(&rack, std::process::id()),
    )?;
    let outcome = outcome?;
    println!();
    crate::status::print_status(&globals, &plan, racker_ipmi::DEFAULT_PORT, bmcs).await?;
    println!(
        "\nThe demo rack stays in {}; e.g. racker --oem-dir {} --state-dir {} --sys-class-net {} plan --subnet-prefix {subnet_prefix} --prefix-length {prefix_length}",
        dir.display(),
        globals.oem_dir.display(),
        globals.state_dir.display(),
        globals.sys_class_net.display()
    );
    drop(firmware);
    rack.shutdown().await;
    Ok(outcome)
}
