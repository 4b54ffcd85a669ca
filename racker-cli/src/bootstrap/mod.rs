//! `racker bootstrap`: the command line of a bootstrap (docs/bootstrap.md).
//! The bootstrap itself is racker-bootstrap's; this module parses the
//! options, runs the wizard, prints the progress and asks what to do with
//! failed nodes.

pub(crate) mod progress;
mod wizard;

use std::collections::BTreeMap;
use std::io::IsTerminal as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use racker_bootstrap::{
    Config, Decision, FailedNodes, FailurePolicy, NetbootEndpoints, NetbootMode,
};
use racker_inventory::MacAddr;

use crate::context::{self, PlanArgs, SelectionArgs};
use crate::globals::Globals;
use progress::Progress;
use racker_installer::Systemctl;

/// What to do when nodes fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum OnFailure {
    /// Ask (falls back to cancel when stdin is not a terminal).
    Ask,
    /// Retry the failed nodes up to --retries times.
    Retry,
    /// Drop the failed nodes from the cluster and continue.
    Exclude,
    /// Stop with guidance.
    Cancel,
}

/// Arguments of `racker bootstrap`.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "Examples:
  racker bootstrap --provision flatcar
  racker bootstrap --provision flatcar --exclude \"00:11:22:33:44:21\" --on-failure exclude
  racker bootstrap --provision flatcar --public-ips public-ips.ini --retries 2

A rerun after a crash or Ctrl-C resumes: installed nodes are not reinstalled.")]
pub(crate) struct BootstrapCmd {
    #[command(flatten)]
    pub(crate) plan: PlanArgs,
    #[command(flatten)]
    pub(crate) selection: SelectionArgs,
    /// Cluster directory for the rendered configuration and logs
    /// [default: <state-dir>/cluster].
    #[arg(long)]
    pub(crate) cluster_dir: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) choices: crate::render::RenderChoices,
    /// What to do when nodes fail.
    #[arg(long, value_enum, default_value = "ask")]
    pub(crate) on_failure: OnFailure,
    /// How many times to retry failed nodes (with --on-failure retry/ask;
    /// 0-20: each retry waits out the install timeout again).
    #[arg(long, default_value_t = racker_bootstrap::DEFAULT_RETRIES, value_parser = clap::value_parser!(u32).range(0..=i64::from(racker_bootstrap::MAX_RETRIES)))]
    pub(crate) retries: u32,
    /// Nodes handled in parallel.
    #[arg(long, default_value_t = racker_bootstrap::DEFAULT_CONCURRENCY)]
    pub(crate) concurrency: usize,
    /// How long a node may take from PXE request to its installer's report
    /// (seconds, or e.g. 90s, 30m, 1h30m).
    #[arg(long, default_value = "30m", value_parser = parse_duration, value_name = "DURATION")]
    pub(crate) install_timeout: Duration,
    /// How long an installed node's OS may take to report that it is up
    /// (racker-report-up.service, sent once Flatcar booted from its disk);
    /// 0 = do not wait for it.
    #[arg(long, default_value = "15m", value_parser = parse_duration, value_name = "DURATION")]
    pub(crate) os_timeout: Duration,
    /// Lokomotive: how long every node may take to appear as a Ready
    /// Kubernetes node after `lokoctl cluster apply`.
    #[arg(long, default_value = "20m", value_parser = parse_duration, value_name = "DURATION")]
    pub(crate) join_timeout: Duration,
    /// Lokomotive: the kubeconfig to follow joins with [default:
    /// <asset dir>/cluster-assets/auth/kubeconfig, as lokoctl writes it].
    #[arg(long, value_name = "FILE")]
    pub(crate) kubeconfig: Option<PathBuf>,
    /// IPMI: time per exchange, retransmissions included (seconds, or
    /// e.g. 500ms, 5s).
    #[arg(long, default_value = crate::flags::IPMI_TIMEOUT, value_parser = crate::flags::ipmi_timeout, value_name = "DURATION")]
    pub(crate) ipmi_timeout: Duration,
    /// IPMI UDP port of the BMCs.
    #[arg(long, default_value_t = racker_ipmi::DEFAULT_PORT)]
    pub(crate) ipmi_port: u16,
    /// Use an already running netboot service instead of starting one.
    #[arg(long)]
    pub(crate) no_netboot: bool,
    /// Serve DHCP on this plain UDP address instead of the PXE interface's
    /// port 67 (simulator, tests).
    #[arg(long)]
    pub(crate) dhcp_listen: Option<SocketAddr>,
    /// HTTP listen address [default: <management internal IP>:8080].
    #[arg(long)]
    pub(crate) http_listen: Option<SocketAddr>,
    /// Base URL nodes use to reach the HTTP server [default: http://<http-listen>].
    #[arg(long)]
    pub(crate) http_url: Option<String>,
    /// Serve TFTP (iPXE binaries) on this address [default: <management internal IP>:69
    /// when not using --dhcp-listen].
    #[arg(long)]
    pub(crate) tftp_listen: Option<SocketAddr>,
    /// Directory of the iPXE binaries [default: /usr/lib/ipxe].
    #[arg(long)]
    pub(crate) boot_files: Option<PathBuf>,
    /// Serve DHCP even on an interface that fails the safety checks.
    #[arg(long)]
    pub(crate) force: bool,
    /// Lokomotive: serve the matchbox gRPC API (mutual TLS) lokoctl's
    /// Terraform stores its profiles in on this address
    /// [default: <management internal IP>:8081].
    #[arg(long, env = "RACKER_MATCHBOX_GRPC", value_name = "ADDR")]
    pub(crate) matchbox_grpc: Option<SocketAddr>,
    /// Lokomotive: hosts file that gets the cluster's names (API, etcd,
    /// every node) between racker's markers, for lokoctl and kubectl.
    #[arg(
        long,
        env = "RACKER_HOSTS_FILE",
        value_name = "FILE",
        default_value = "/etc/hosts"
    )]
    pub(crate) hosts_file: PathBuf,
    /// Lokomotive: link the cluster's kubeconfig here once lokoctl wrote
    /// it (never over an existing file) [default: ~/.kube/config].
    #[arg(long, env = "RACKER_KUBECONFIG_LINK", value_name = "FILE")]
    pub(crate) kubeconfig_link: Option<PathBuf>,
    /// Do not check the boot files (kernel, initrd, image, iPXE binaries,
    /// Ignition) before powering nodes.
    #[arg(long)]
    pub(crate) skip_preflight: bool,
    /// At the end, keep the rack network up: write the PXE interface's
    /// `10-pxe.network` and `systemctl enable --now racker-netboot.service`.
    /// `auto`: when DHCP served on the PXE interface and systemd runs;
    /// `none`: never.
    #[arg(long, value_enum, default_value = "auto")]
    pub(crate) handover: Handover,
    /// systemctl for the handover (`auto`: `systemctl` when systemd runs).
    #[arg(long, env = "RACKER_SYSTEMCTL", default_value = "auto", hide = true)]
    pub(crate) systemctl: String,
    /// Directory of the PXE interface's systemd-networkd file.
    #[arg(long, default_value = "/etc/systemd/network", hide = true)]
    pub(crate) networkd_dir: PathBuf,
}

/// `--handover`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Handover {
    /// When DHCP served on the PXE interface and systemd runs.
    Auto,
    /// Never.
    None,
}

/// `racker bootstrap`; `given` holds the ids of the options the user set
/// (flag or environment), which the wizard does not ask for.
pub(crate) fn run(
    globals: &Globals,
    mut args: BootstrapCmd,
    given: &std::collections::BTreeSet<String>,
) -> anyhow::Result<ExitCode> {
    if std::io::stdin().is_terminal() && std::io::stdout().is_terminal() {
        let inventory = racker_inventory::Inventory::load(&globals.nodes_csv())?;
        wizard::ask(&mut args, given, &inventory, &globals.state_dir)?;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    // A simulated rack running with this state directory (`racker sim
    // up`) answers IPMI on loopback.
    let simulated = context::running_simulator_bmcs(&globals.state_dir);
    rt.block_on(bootstrap(globals, &args, simulated))
}

/// The bootstrap's configuration from its options.
pub(crate) fn config(
    globals: &Globals,
    args: &BootstrapCmd,
    bmc_overrides: BTreeMap<MacAddr, SocketAddr>,
) -> anyhow::Result<Config> {
    // Lokomotive needs lokoctl at stage 4: say so before installing anything.
    let lokoctl = match args.selection.provision {
        context::ProvisionArg::Lokomotive => Some(racker_bootstrap::find_lokoctl()?),
        context::ProvisionArg::Flatcar => None,
    };
    let cluster_dir =
        (args.cluster_dir.clone()).unwrap_or_else(|| globals.state_dir.join("cluster"));
    let rack = context::load_rack(globals, &args.plan)?;
    let selection = args.selection.selection_options(&args.plan)?;
    let inv = context::load_credentials(globals)?;
    let credentials = racker_ipmi::Credentials::new(inv.user.clone(), inv.password.expose());
    // The management key pair is created on first use.
    crate::factory::ensure_ssh_key(&globals.state_dir.join("ssh").join("id_ed25519"))?;
    let out = racker_bootstrap::render_dir::resolved_dir(&cluster_dir);
    let (render, public_ips) = args
        .choices
        .resolve(globals, &rack, &args.selection, &out)?;
    let mut config = Config::new(&globals.state_dir, rack, selection, credentials, render);
    config.cluster_dir = cluster_dir;
    config.public_ips = public_ips;
    config.retries = args.retries;
    config.concurrency = args.concurrency;
    config.install_timeout = args.install_timeout;
    config.os_timeout = args.os_timeout;
    config.join_timeout = args.join_timeout;
    config.kubeconfig.clone_from(&args.kubeconfig);
    config.ipmi_timeout = args.ipmi_timeout;
    config.ipmi_port = args.ipmi_port;
    config.bmc_overrides = bmc_overrides;
    config.preflight = !args.skip_preflight;
    if let Some(lokoctl) = lokoctl {
        let (hosts, link) = (args.hosts_file.clone(), args.kubeconfig_link.clone());
        config.lokomotive(lokoctl, hosts, link, std::env::var_os("HOME").as_deref());
    }
    if args.no_netboot {
        config.netboot = NetbootMode::External;
    } else {
        let mut endpoints = NetbootEndpoints::new(&globals.sys_class_net);
        endpoints.dhcp_listen = args.dhcp_listen;
        endpoints.http_url.clone_from(&args.http_url);
        endpoints.force = args.force;
        let content = &mut endpoints.content;
        content.http_listen = args.http_listen;
        content.tftp_listen = args.tftp_listen;
        content.boot_files.clone_from(&args.boot_files);
        // The installer's console is the rack's (--kernel-console).
        content
            .kernel_console
            .clone_from(&args.choices.kernel_console);
        content.matchbox_grpc = args.matchbox_grpc;
        config.serve_netboot(endpoints);
    }
    config.validate()?;
    Ok(config)
}

/// Run the bootstrap; the exit code says whether every stage succeeded.
/// `bmc_overrides`: the BMC addresses of a simulated rack.
pub(crate) async fn bootstrap(
    globals: &Globals,
    args: &BootstrapCmd,
    bmc_overrides: BTreeMap<MacAddr, SocketAddr>,
) -> anyhow::Result<ExitCode> {
    let config = config(globals, args, bmc_overrides)?;
    let progress = Progress::new();
    let started = std::time::Instant::now();
    let report = racker_bootstrap::bootstrap(&config, &progress, &Policy(args.on_failure)).await?;
    handover(args, &config);
    progress::print_summary(globals.output, &report, started.elapsed())?;
    Ok(if report.succeeded() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Keep the rack network up after the bootstrap process ends
/// (docs/operating.md): see [`racker_bootstrap::handover::after_bootstrap`].
/// Failures are warnings with the commands to run by hand.
pub(crate) fn handover(args: &BootstrapCmd, config: &Config) {
    if args.handover == Handover::None {
        return;
    }
    let systemctl = Systemctl::from_setting(&args.systemctl, std::path::Path::new("/run"));
    let program = systemctl.as_ref().map(Systemctl::program);
    for notice in racker_bootstrap::handover::after_bootstrap(config, &args.networkd_dir, program) {
        crate::netboot::print_notice(notice);
    }
}

/// The progress display of `racker bootstrap` (also `racker reprovision`'s).
pub(crate) fn progress_sink() -> impl racker_bootstrap::EventSink {
    Progress::new()
}

/// Check that `lokoctl` can be found (Lokomotive mode).
pub(crate) fn lokomotive_available() -> anyhow::Result<()> {
    racker_bootstrap::find_lokoctl().map(|_| ())?;
    Ok(())
}

/// `--on-failure`: a fixed answer, or the operator's.
pub(crate) struct Policy(pub(crate) OnFailure);

impl FailurePolicy for Policy {
    fn decide(&self, failed: &FailedNodes<'_>) -> Decision {
        match self.0 {
            OnFailure::Ask => ask_policy(failed),
            OnFailure::Retry => Decision::Retry,
            OnFailure::Exclude => Decision::Exclude,
            OnFailure::Cancel => Decision::Cancel,
        }
    }
}

fn ask_policy(failed: &FailedNodes<'_>) -> Decision {
    if !std::io::stdin().is_terminal() {
        failed.note("(--on-failure ask without a terminal: cancelling)");
        return Decision::Cancel;
    }
    let macs = failed
        .nodes
        .iter()
        .map(MacAddr::to_string)
        .collect::<Vec<_>>()
        .join(" ");
    loop {
        eprint!(
            "{} node(s) failed: {macs}. [r]etry, [e]xclude nodes, [c]ancel? ",
            failed.nodes.len(),
        );
        let mut answer = String::new();
        match std::io::stdin().read_line(&mut answer) {
            Ok(0) | Err(_) => return Decision::Cancel,
            Ok(_) => {}
        }
        match answer.trim() {
            "r" | "retry" => return Decision::Retry,
            "e" | "exclude" => return Decision::Exclude,
            "c" | "cancel" => return Decision::Cancel,
            _ => {}
        }
    }
}

/// The one duration syntax (seconds, or e.g. 90s, 15m, 1h30m), from
/// racker-inventory.
pub(crate) use racker_inventory::parse_duration;
