//! `racker demo`: a whole rack on this machine — simulated BMCs and
//! PXE-booting nodes, racker's netboot server on loopback, and a native
//! Flatcar bootstrap of every node — then `racker status`. No root, no
//! internet, no containers. It says what is simulated and what is real;
//! with `--keep-running` the rack stays up (BMCs, firmware, netboot server,
//! rack view) for `racker status`, `racker ipmi` and a browser, until
//! Ctrl-C. The default folder (`$TMPDIR/racker-demo`) is reused by the next
//! demo, never piled up.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::parser::ValueSource;
use racker_bootstrap::demo::{self, DemoBootstrap, DemoOptions, DemoRack, Prepared};

use crate::bootstrap;
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

/// Make `dir` ready (racker-bootstrap's demo) and say what became of it.
fn prepare_dir(dir: &Path, default: bool) -> anyhow::Result<()> {
    match demo::prepare_dir(dir, default)? {
        Prepared::Resumed => println!(
            "Resuming the demo rack in {} (installed nodes stay installed)",
            dir.display()
        ),
        Prepared::Cleared => println!(
            "Reusing {} (the previous demo's rack was cleared)",
            dir.display()
        ),
        _ => {}
    }
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
    if args.provision == crate::context::ProvisionArg::Lokomotive {
        // Fail before starting anything when lokoctl is missing.
        bootstrap::lokomotive_available()?;
    }
    if args.nodes == 0 {
        bail!("--count must be at least 1");
    }
    let started = std::time::Instant::now();
    prepare_dir(&dir, default_dir)?;
    let (subnet_prefix, prefix_length) = demo::demo_network(args.nodes);
    let dirs = demo::write_demo_rack(&dir, args.nodes)?;
    explain(args.nodes, &dir, args.keep_running);
    println!("Demo rack of {} node(s) in {}", args.nodes, dir.display());

    let mut options = DemoOptions::new(args.nodes);
    options.faults = args
        .fault
        .iter()
        .map(|f| f.parse())
        .collect::<Result<_, _>>()
        .context("--fault")?;
    options.install_delay = args
        .install_delay_ms
        .map_or(args.install_delay, Duration::from_millis);
    options.stagger = args.stagger;
    let rack = DemoRack::start(&dirs, &options).await?;

    let mut run = DemoBootstrap::new(&dir);
    run.lokomotive = args.provision == crate::context::ProvisionArg::Lokomotive;
    run.retries = args.retries;
    run.os_timeout = args.os_timeout;
    run.join_timeout = args.join_timeout;
    run.old_lokomotive = std::env::var("RACKER_OLD_LOKOMOTIVE").is_ok_and(|v| {
        !matches!(
            v.to_lowercase().as_str(),
            "" | "0" | "n" | "no" | "f" | "false" | "off"
        )
    });
    let flags = format!(
        "--oem-dir {} --state-dir {} --sys-class-net {}",
        dirs.oem_dir.display(),
        dirs.state_dir.display(),
        dirs.sys_class_net.display()
    );
    let plan_flags = format!("--subnet-prefix {subnet_prefix} --prefix-length {prefix_length}");
    let progress = bootstrap::progress_sink();
    let policy = bootstrap::Policy(args.on_failure);
    let provision = async {
        run.exclude = racker_inventory::parse_mac_list(&args.exclude)?;
        anyhow::Ok(rack.bootstrap(&run, &progress, &policy).await?)
    };
    let interrupted = tokio::select! {
        outcome = provision => Some(outcome),
        _ = tokio::signal::ctrl_c() => None,
    };
    // The simulated nodes' final power and boot flags, as `racker sim status` shows them.
    rack.write_status()?;
    let Some(outcome) = interrupted else {
        println!();
        println!(
            "Interrupted during the bootstrap after {}: the simulated rack is stopped. What was done is in {}; \
             `racker demo --dir {}` resumes it (installed nodes stay installed).",
            human_duration(started.elapsed()),
            dirs.state_dir.join("bootstrap.json").display(),
            dir.display()
        );
        rack.stop().await;
        return Ok(ExitCode::from(130));
    };
    let logs = dirs.state_dir.join("cluster/logs");
    let report = match outcome {
        Ok(report) => report,
        Err(e) => {
            rack.stop().await;
            return Err(e.context(format!(
                "the demo's bootstrap failed; its rack is in {} (look with `racker {flags} {plan_flags} plan`, logs in {})",
                dir.display(),
                logs.display()
            )));
        }
    };
    bootstrap::progress::print_summary(Default::default(), &report, started.elapsed())?;
    drop(progress);
    println!();
    let status = rack.status(&bootstrap::progress_sink()).await?;
    crate::status::print_text(&status, false, false);
    if !report.succeeded() {
        println!(
            "\nThe demo's commands take its folders: racker {flags} {plan_flags} status (with --keep-running, while the rack runs); \
             the logs are in {}; `racker demo --dir {}` resumes.",
            logs.display(),
            dir.display()
        );
    }
    let outcome = if report.succeeded() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    };
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
        rack.stop().await;
        return Ok(outcome);
    }

    // --keep-running: racker's netboot server again (the bootstrap's own
    // stopped with it) on the same addresses, and the rack view.
    let rack_def = rack.load_rack()?;
    let kept = rack
        .keep_running(&rack_def)
        .await
        .context("restarting the netboot server for --keep-running")?;
    let example = demo::example_hostname(&dirs.state_dir);
    println!();
    println!(
        "The demo rack keeps running: {} simulated BMC(s), their firmware and racker's netboot server. In another shell:",
        args.nodes
    );
    println!();
    println!("  export RACKER_OEM_DIR={}", dirs.oem_dir.display());
    println!("  export RACKER_STATE_DIR={}", dirs.state_dir.display());
    println!(
        "  export RACKER_SYS_CLASS_NET={}",
        dirs.sys_class_net.display()
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
    println!("Rack view: {}/", kept.base_url());
    use std::io::Write as _;
    let _ = std::io::stdout().flush();

    let signal = tokio::signal::ctrl_c().await;
    let final_state = kept.stop().await;
    signal.context("waiting for Ctrl-C")?;
    let counts = demo::state_counts(final_state.as_ref());
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
