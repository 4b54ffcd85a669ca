//! `racker demo`: a whole rack on this machine — simulated BMCs and
//! PXE-booting nodes, racker's netboot server on loopback, and a native
//! Flatcar bootstrap of every node — then `racker status`. No root, no
//! internet, no containers. It says what is simulated and what is real;
//! with `--keep-running` the rack stays up (BMCs, firmware, netboot server,
//! rack view) for `racker status`, `racker ipmi` and a browser, until
//! Ctrl-C. The default folder (`$TMPDIR/racker-demo`) is reused by the next
//! demo, never piled up.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Parser as _;
use clap::parser::ValueSource;
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
  racker demo --count 60 --install-delay 0
  racker demo --count 4 --fault 02:00:00:01:00:02=install-fail --on-failure exclude

The demo rack lives in --dir (default: racker-demo in the temporary directory,
cleared and reused by every demo; an explicit --dir is resumed). Its nodes.csv
is DIR/oem, its state DIR/state, its interfaces DIR/net: --oem-dir,
--state-dir and --sys-class-net (or RACKER_OEM_DIR, RACKER_STATE_DIR,
RACKER_SYS_CLASS_NET) must name those folders or be left out.

With --keep-running the simulated BMCs, the firmware and racker's netboot
server (with the rack view) stay up after the bootstrap, and the demo prints
the `export RACKER_...` lines that point racker at it: `racker status`,
`racker ipmi node-3 sol`, `racker ipmi --all power status` then work from
another shell. Ctrl-C stops everything and prints a summary.")]
pub(crate) struct DemoCmd {
    /// Number of nodes (the management node comes on top).
    #[arg(long = "count", alias = "nodes", default_value_t = 8)]
    nodes: usize,
    /// What to provision (lokomotive drives `lokoctl` from PATH or RACKER_LOKOCTL).
    #[arg(long, value_enum, default_value = "flatcar")]
    provision: crate::context::ProvisionArg,
    /// Working directory [default: racker-demo in the temporary directory,
    /// cleared and reused].
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Keep the simulated rack and racker's netboot server running after
    /// the bootstrap (until Ctrl-C), for `racker status`, `racker ipmi` and
    /// the rack view.
    #[arg(long)]
    keep_running: bool,
    /// How long each simulated installer "writes the disk".
    #[arg(long, default_value = "300ms", value_parser = bootstrap::parse_duration, value_name = "DURATION")]
    install_delay: Duration,
    /// Old spelling of --install-delay, in milliseconds.
    #[arg(long, hide = true, conflicts_with = "install_delay")]
    install_delay_ms: Option<u64>,
    /// Node i's installer takes (i + 1) times --install-delay instead, so
    /// installs finish one after the other.
    #[arg(long)]
    stagger: bool,
    /// Inject a fault (repeatable): PRIMARY_MAC=KIND, KIND a firmware fault
    /// (no-lease, download-fail, install-fail, hang, no-os-up) or a BMC fault
    /// (unreachable, wrong-password, loss:PERCENT, latency:DURATION), as
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
/// node's interfaces, and small stand-ins for Flatcar's PXE kernel,
/// initrd, image and signature.
pub(crate) fn write_demo_rack(dir: &Path, nodes: usize) -> anyhow::Result<Globals> {
    let globals = Globals::for_dirs(dir.join("oem"), dir.join("state"), dir.join("net"));
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

/// The global folder options given on the command line or in the
/// environment (`oem_dir`, `state_dir`, `sys_class_net`).
pub(crate) fn given_globals(matches: &clap::ArgMatches) -> Vec<&'static str> {
    let Some(m) = matches.subcommand_matches("demo") else {
        return Vec::new();
    };
    ["oem_dir", "state_dir", "sys_class_net"]
        .into_iter()
        .filter(|id| {
            matches!(
                m.value_source(id),
                Some(ValueSource::CommandLine | ValueSource::EnvVariable)
            )
        })
        .collect()
}

/// The demo's folders for `dir`.
fn demo_globals(dir: &Path) -> Globals {
    Globals::for_dirs(dir.join("oem"), dir.join("state"), dir.join("net"))
}

/// The demo folder: `--dir`, else the one the given folder options name
/// (`DIR/oem`, `DIR/state`, `DIR/net`, e.g. the demo's own exports), else
/// the default. Folder options naming anything else are refused: the demo
/// writes its own nodes.csv and never touches a real rack's.
fn choose_dir(
    dir: Option<&Path>,
    globals: &Globals,
    given: &[&str],
) -> anyhow::Result<(PathBuf, bool)> {
    let value = |id: &str| match id {
        "oem_dir" => (&globals.oem_dir, "--oem-dir", "RACKER_OEM_DIR", "oem"),
        "state_dir" => (
            &globals.state_dir,
            "--state-dir",
            "RACKER_STATE_DIR",
            "state",
        ),
        _ => (
            &globals.sys_class_net,
            "--sys-class-net",
            "RACKER_SYS_CLASS_NET",
            "net",
        ),
    };
    let Some(first) = given.first() else {
        return Ok(match dir {
            Some(d) => (d.to_owned(), false),
            None => (std::env::temp_dir().join("racker-demo"), true),
        });
    };
    let chosen = match dir {
        Some(d) => d.to_owned(),
        None => {
            let (path, ..) = value(first);
            path.parent().map(Path::to_owned).unwrap_or_default()
        }
    };
    for id in given {
        let (path, flag, env, leaf) = value(id);
        if *path != chosen.join(leaf) {
            bail!(
                "racker demo builds its own rack in --dir DIR (nodes.csv in DIR/oem, state in \
                 DIR/state, interfaces in DIR/net), so {flag}/{env} must be {} or left out (got {}); \
                 unset RACKER_OEM_DIR, RACKER_STATE_DIR and RACKER_SYS_CLASS_NET or pass --dir",
                chosen.join(leaf).display(),
                path.display()
            );
        }
    }
    Ok((chosen, false))
}

/// The process id of a live simulated rack (a running demo or `racker sim
/// up`) in `state_dir`, other than this process.
fn live_rack_pid(state_dir: &Path) -> Option<u32> {
    let pid: u32 = std::fs::read_to_string(state_dir.join(crate::context::SIMULATED_RACK_MARKER))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    (pid != std::process::id() && Path::new(&format!("/proc/{pid}")).exists()).then_some(pid)
}

/// Make `dir` ready: refuse one a live rack uses; the default folder is
/// cleared (when it holds only a demo's folders), an explicit one resumed.
fn prepare_dir(dir: &Path, default: bool) -> anyhow::Result<()> {
    let globals = demo_globals(dir);
    if let Some(pid) = live_rack_pid(&globals.state_dir) {
        bail!(
            "a simulated rack (pid {pid}) is running in {}: stop it (Ctrl-C in its terminal, or kill -INT {pid}) or pass another --dir",
            dir.display()
        );
    }
    if !default || !dir.exists() {
        if globals.state_dir.join("bootstrap.json").exists() {
            println!(
                "Resuming the demo rack in {} (installed nodes stay installed)",
                dir.display()
            );
        }
        return Ok(());
    }
    let foreign: Vec<String> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !["oem", "state", "net"].contains(&n.as_str()))
        .collect();
    if !foreign.is_empty() {
        bail!(
            "{} holds more than a demo rack ({}); pass --dir",
            dir.display(),
            foreign.join(", ")
        );
    }
    std::fs::remove_dir_all(dir).with_context(|| format!("clearing {}", dir.display()))?;
    println!(
        "Reusing {} (the previous demo's rack was cleared)",
        dir.display()
    );
    Ok(())
}

/// What the demo simulates and what is real racker.
fn explain(nodes: usize, dir: &Path, keep_running: bool) {
    println!(
        "racker demo: {nodes} simulated server(s) and a simulated management node, provisioned by the real racker, all on this machine."
    );
    println!(
        "  Simulated: every server's BMC (real IPMI 2.0 over UDP on 127.0.0.1, one port each: power, boot device, serial-over-LAN) \
         and its firmware (a PXE ROM and iPXE doing real DHCP and HTTP against racker, an installer that \"writes the disk\" \
         by waiting, then reports like Flatcar's and boots \"from disk\"); Flatcar's kernel and initrd are small stand-in files."
    );
    println!(
        "  Real: racker's own bootstrap, as on a rack: the address plan from {}, the rendered Flatcar configuration and Ignition, \
         racker's DHCP and HTTP boot server (on 127.0.0.1 instead of the PXE interface), IPMI to every BMC, the state file and logs in {}.",
        dir.join("oem/nodes.csv").display(),
        dir.join("state").display()
    );
    if !keep_running {
        println!(
            "  The simulated rack stops when the demo ends; --keep-running keeps it up for racker status, racker ipmi and the rack view."
        );
    }
    println!();
}

pub(crate) fn run(globals: &Globals, given: &[&str], args: DemoCmd) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let (dir, default) = choose_dir(args.dir.as_deref(), globals, given)?;
    rt.block_on(run_async(args, dir, default))
}

async fn run_async(args: DemoCmd, dir: PathBuf, default_dir: bool) -> anyhow::Result<ExitCode> {
    let provision = match args.provision {
        crate::context::ProvisionArg::Flatcar => "flatcar",
        crate::context::ProvisionArg::Lokomotive => {
            // Fail before starting anything when lokoctl is missing.
            bootstrap::lokomotive_available()?;
            "lokomotive"
        }
    };
    if args.nodes == 0 {
        bail!("--count must be at least 1");
    }
    let started = std::time::Instant::now();
    prepare_dir(&dir, default_dir)?;
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
    explain(args.nodes, &dir, args.keep_running);
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
    let install_delay = args
        .install_delay_ms
        .map_or(args.install_delay, Duration::from_millis);
    let config = FirmwareConfig::new(dhcp)
        .bmc(BmcAccess::Lan {
            user: "USER".into(),
            password: Password::new("PASS"),
        })
        .install_delay(install_delay);
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
            cfg = cfg.install_delay(install_delay * (i as u32 + 1));
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
        // Lokomotive: the gRPC API on loopback, the cluster's names and
        // kubeconfig link inside the demo folder (never the machine's).
        "--matchbox-grpc".into(),
        "127.0.0.1:0".into(),
        "--hosts-file".into(),
        dir.join("hosts").to_string_lossy().into_owned(),
        "--kubeconfig-link".into(),
        dir.join("kube")
            .join("config")
            .to_string_lossy()
            .into_owned(),
    ])?;
    let flags = format!(
        "--oem-dir {} --state-dir {} --sys-class-net {}",
        globals.oem_dir.display(),
        globals.state_dir.display(),
        globals.sys_class_net.display()
    );
    let plan_flags = format!("--subnet-prefix {subnet_prefix} --prefix-length {prefix_length}");
    let interrupted = tokio::select! {
        outcome = bootstrap::bootstrap(&globals, &wrap.cmd, bmcs.clone()) => Some(outcome),
        _ = tokio::signal::ctrl_c() => None,
    };
    // The simulated nodes' final power and boot flags, as `racker sim status` shows them.
    racker_sim::write_json_atomic(
        &globals.state_dir,
        racker_sim::STATUS_FILE,
        &racker_sim::StatusFile::of(&rack, std::process::id()),
    )?;
    let Some(outcome) = interrupted else {
        println!();
        println!(
            "Interrupted during the bootstrap after {}: the simulated rack is stopped. What was done is in {}; \
             `racker demo --dir {}` resumes it (installed nodes stay installed).",
            human_duration(started.elapsed()),
            globals.state_dir.join("bootstrap.json").display(),
            dir.display()
        );
        drop(firmware);
        rack.shutdown().await;
        remove_marker(&globals.state_dir);
        return Ok(ExitCode::from(130));
    };
    let outcome = match outcome {
        Ok(code) => code,
        Err(e) => {
            drop(firmware);
            rack.shutdown().await;
            remove_marker(&globals.state_dir);
            return Err(e.context(format!(
                "the demo's bootstrap failed; its rack is in {} (look with `racker {flags} {plan_flags} plan`, logs in {})",
                dir.display(),
                globals.state_dir.join("cluster/logs").display()
            )));
        }
    };
    println!();
    crate::status::print_status(&globals, &plan, racker_ipmi::DEFAULT_PORT, bmcs.clone()).await?;
    if outcome != ExitCode::SUCCESS {
        println!(
            "\nThe demo's commands take its folders: racker {flags} {plan_flags} status (with --keep-running, while the rack runs); \
             the logs are in {}; `racker demo --dir {}` resumes.",
            globals.state_dir.join("cluster/logs").display(),
            dir.display()
        );
    }
    if !args.keep_running {
        println!(
            "\nThe simulated BMCs and firmware stop with the demo, so a later `racker status` finds them unreachable; \
             `racker demo --keep-running` keeps them up. The demo's files stay in {}{}.",
            dir.display(),
            if default_dir {
                " (the next `racker demo` clears and reuses it)"
            } else {
                ""
            }
        );
        drop(firmware);
        rack.shutdown().await;
        remove_marker(&globals.state_dir);
        return Ok(outcome);
    }

    // --keep-running: racker's netboot server again (the bootstrap's own
    // stopped with it) on the same addresses, so a power-cycled node boots
    // and the rack view stays up, and the rack status for the view.
    let rack_def = crate::context::load_rack(&globals, &plan)?;
    let netboot = keep_netboot(&globals, &rack_def, dhcp, http).await?;
    let inv = crate::context::load_credentials(&globals)?;
    let credentials = racker_ipmi::Credentials::new(inv.user.clone(), inv.password.expose());
    let resolver = racker_bootstrap::BmcResolver::load(&globals.state_dir)?.with_overrides(bmcs);
    let writer = racker_bootstrap::RackStatusWriter::spawn(
        &globals.state_dir,
        &rack_def,
        credentials,
        resolver,
        racker_bootstrap::RackStatusOptions::default(),
    );
    let example = racker_bootstrap::StateFile::load(&globals.state_dir)
        .ok()
        .flatten()
        .and_then(|s| {
            let names: Vec<String> = s
                .nodes
                .values()
                .map(|n| n.hostname.clone())
                .filter(|h| !h.is_empty())
                .collect();
            names.get(3).or(names.last()).cloned()
        })
        .unwrap_or_else(|| "node-0".to_owned());
    println!();
    println!(
        "The demo rack keeps running: {} simulated BMC(s), their firmware and racker's netboot server. In another shell:",
        args.nodes
    );
    println!();
    println!("  export RACKER_OEM_DIR={}", globals.oem_dir.display());
    println!("  export RACKER_STATE_DIR={}", globals.state_dir.display());
    println!(
        "  export RACKER_SYS_CLASS_NET={}",
        globals.sys_class_net.display()
    );
    println!("  export RACKER_SUBNET_PREFIX={subnet_prefix} RACKER_PREFIX_LENGTH={prefix_length}");
    for (cmd, what) in [
        ("racker status".to_owned(), "every node: state, power, OS"),
        (
            format!("racker ipmi {example} sol"),
            "its serial console over SOL (detach with ~.)",
        ),
        (
            "racker ipmi --all sensors".to_owned(),
            "every BMC's sensors",
        ),
        (
            "racker ipmi --all power status".to_owned(),
            "every node's power",
        ),
    ] {
        println!("  {cmd:<32} # {what}");
    }
    println!();
    println!("Ctrl-C here stops the rack.");
    println!("Rack view: {}/", netboot.base_url());
    use std::io::Write as _;
    let _ = std::io::stdout().flush();

    let signal = tokio::signal::ctrl_c().await;
    writer.stop();
    let _ = netboot.shutdown().await;
    let final_state = racker_bootstrap::StateFile::load(&globals.state_dir)
        .ok()
        .flatten();
    drop(firmware);
    rack.shutdown().await;
    remove_marker(&globals.state_dir);
    signal.context("waiting for Ctrl-C")?;
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for n in final_state.iter().flat_map(|s| s.nodes.values()) {
        let label = match &n.state {
            racker_bootstrap::NodeState::Failed { .. } => "failed".to_owned(),
            other => other.label(),
        };
        *counts.entry(label).or_default() += 1;
    }
    let counts: Vec<String> = counts.iter().map(|(k, n)| format!("{n} {k}")).collect();
    println!();
    println!(
        "Demo stopped after {}: {} node(s) ({}); the simulated BMCs, their firmware and the netboot server are down. \
         The rack's files stay in {}{}.",
        human_duration(started.elapsed()),
        args.nodes,
        counts.join(", "),
        dir.display(),
        if default_dir {
            " (the next `racker demo` clears and reuses it)"
        } else {
            "; `racker demo --dir` with it resumes"
        }
    );
    Ok(outcome)
}

/// "42 s", "3 min 5 s".
fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s < 60 {
        format!("{s} s")
    } else {
        format!("{} min {} s", s / 60, s % 60)
    }
}

/// The simulated rack is gone: `racker status` must not look for it.
fn remove_marker(state_dir: &Path) {
    let _ = std::fs::remove_file(state_dir.join(crate::context::SIMULATED_RACK_MARKER));
}

/// racker's netboot services for the kept demo rack, on the bootstrap's
/// addresses (retried briefly while the bootstrap's sockets close).
async fn keep_netboot(
    globals: &Globals,
    rack: &racker_bootstrap::Rack,
    dhcp: SocketAddr,
    http: SocketAddr,
) -> anyhow::Result<racker_netboot::service::NetbootService> {
    use racker_netboot::service::{DhcpListen, NetbootService};
    let plan = &rack.plan;
    let config = racker_netboot::DhcpConfig::new(plan.management_ip(), plan.subnet().prefix_len());
    let builder = NetbootService::builder(&globals.state_dir, config)
        .dhcp(DhcpListen::Socket(dhcp))
        .http_listen(http)
        // The simulated nodes report from loopback.
        .loopback_reports(true)
        .tftp(false)
        .reservations(racker_bootstrap::network::reservations(plan, None))
        .nodes(racker_bootstrap::network::node_entries(plan, None))
        .ignition(std::sync::Arc::new(
            racker_bootstrap::network::ClusterIgnition::new(globals.state_dir.join("cluster")),
        ));
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        match builder.clone().start().await {
            Ok(s) => return Ok(s),
            Err(e) if std::time::Instant::now() < deadline => {
                tracing::debug!("netboot for the kept demo rack: {e}; retrying");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => return Err(e).context("restarting the netboot server for --keep-running"),
        }
    }
}
