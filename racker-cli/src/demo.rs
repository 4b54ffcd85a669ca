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
use racker_bootstrap::demo::{self, DemoBootstrap, DemoFolder, DemoOptions, DemoRack, DemoText};

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

pub(crate) fn run(globals: &Globals, given: &[&str], args: DemoCmd) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let given: Vec<(DemoFolder, &Path)> = given
        .iter()
        .map(|id| match *id {
            "oem_dir" => (DemoFolder::Oem, globals.oem_dir.as_path()),
            "state_dir" => (DemoFolder::State, globals.state_dir.as_path()),
            _ => (DemoFolder::Net, globals.sys_class_net.as_path()),
        })
        .collect();
    let (dir, default) = demo::choose_dir(args.dir.as_deref(), &given, &std::env::temp_dir())?;
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
    let text = DemoText::new(&dir, default_dir, args.nodes);
    if let Some(line) = text.prepared(demo::prepare_dir(&dir, default_dir)?) {
        println!("{line}");
    }
    let dirs = demo::write_demo_rack(&dir, args.nodes)?;
    text.explain(args.keep_running)
        .iter()
        .for_each(|l| println!("{l}"));

    // As `racker bootstrap --old-lokomotive` reads it.
    let old_lokomotive = match std::env::var("RACKER_OLD_LOKOMOTIVE").as_deref() {
        Err(_) | Ok("false") => false,
        Ok("true") => true,
        Ok(v) => {
            bail!("invalid value '{v}' for RACKER_OLD_LOKOMOTIVE [possible values: true, false]")
        }
    };
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
    run.old_lokomotive = old_lokomotive;
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
    let report = match interrupted {
        None => {
            println!("\n{}", text.interrupted(started.elapsed()));
            rack.stop().await;
            return Ok(ExitCode::from(130));
        }
        Some(Err(e)) => {
            rack.stop().await;
            return Err(e.context(text.bootstrap_failed()));
        }
        Some(Ok(report)) => report,
    };
    bootstrap::progress::print_summary(Default::default(), &report, started.elapsed())?;
    drop(progress);
    println!();
    let status = rack.status(&bootstrap::progress_sink()).await?;
    crate::status::print_text(&status, false, false);
    for line in text.after_status(report.succeeded(), args.keep_running) {
        println!("{line}");
    }
    let outcome = if report.succeeded() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    };
    if !args.keep_running {
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
    for line in text.kept(&example, kept.base_url()) {
        println!("{line}");
    }
    use std::io::Write as _;
    let _ = std::io::stdout().flush();

    let signal = tokio::signal::ctrl_c().await;
    let final_state = kept.stop().await;
    signal.context("waiting for Ctrl-C")?;
    let counts = demo::state_counts(final_state.as_ref());
    println!("\n{}", text.stopped(started.elapsed(), &counts));
    Ok(outcome)
}
