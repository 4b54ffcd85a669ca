//! `racker bootstrap`: provision the whole rack (SPEC section 5).

mod lokomotive;
mod network;
mod progress;
pub(crate) mod state;
mod wizard;

use std::collections::BTreeMap;
use std::io::IsTerminal as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use futures::StreamExt as _;
use racker_inventory::{MacAddr, SelectedNode, Selection};
use racker_ipmi::{BootDevice, Operation, PowerAction, SessionOptions};
use racker_netboot::report::{ReportStore, Stage as ReportStage};

use crate::context::{self, PlanArgs, Rack, SelectionArgs};
use crate::globals::Globals;
pub(crate) use network::NetbootEndpoints;
use progress::Progress;
use state::{BootstrapState, Event, NodeState, Stage, StateFile};

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
    /// How many times to retry failed nodes (with --on-failure retry/ask).
    #[arg(long, default_value_t = 3)]
    pub(crate) retries: u32,
    /// Nodes handled in parallel.
    #[arg(long, default_value_t = 64)]
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
    /// IPMI: seconds per exchange (retransmissions included).
    #[arg(long, default_value = "5", value_parser = crate::ipmi::parse_seconds)]
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
    rt.block_on(bootstrap(globals, &args))
}

struct Ctx<'a> {
    globals: &'a Globals,
    args: &'a BootstrapCmd,
    rack: Rack,
    credentials: racker_ipmi::Credentials,
    session: SessionOptions,
    progress: Progress,
    cluster_dir: PathBuf,
    bmcs: context::BmcResolver,
}

/// Run the bootstrap; the exit code says whether every stage succeeded.
pub(crate) async fn bootstrap(globals: &Globals, args: &BootstrapCmd) -> anyhow::Result<ExitCode> {
    // Lokomotive needs lokoctl at stage 4: say so before installing anything.
    if args.selection.provision == crate::context::ProvisionArg::Lokomotive {
        lokomotive_available()?;
    }
    let cluster_dir = args
        .cluster_dir
        .clone()
        .unwrap_or_else(|| globals.state_dir.join("cluster"));
    let previous = StateFile::load(&globals.state_dir)?;
    let resuming = previous
        .as_ref()
        .is_some_and(|p| p.cluster_dir == cluster_dir);
    if !resuming && dir_has_entries(&cluster_dir) {
        bail!(
            "the cluster directory {} exists and is not empty.\n  To keep it, pass another --cluster-dir.\n  To start over, move it away (and remove {} if a previous bootstrap left it).",
            cluster_dir.display(),
            StateFile::path(&globals.state_dir).display()
        );
    }
    let stamp = state::now_unix();
    let log_path = cluster_dir
        .join("logs")
        .join(format!("{stamp}-bootstrap.log"));
    let progress = Progress::new(&log_path)?;

    // Exclusions: the operator's plus those a previous run decided.
    let mut plan_args = args.plan.clone();
    if let Some(prev) = &previous
        && resuming
    {
        let excluded = prev.macs_where(|s| matches!(s, NodeState::Excluded { .. }));
        for mac in excluded {
            plan_args.exclude.push(' ');
            plan_args.exclude.push_str(&mac.to_string());
        }
    }
    let (rack, selection) = context::load_selection(globals, &plan_args, &args.selection)?;
    let inv_credentials = context::load_credentials(globals)?;
    let credentials = racker_ipmi::Credentials::new(
        inv_credentials.user.clone(),
        inv_credentials.password.expose(),
    );
    let session = SessionOptions::default().timeout(args.ipmi_timeout);
    let ctx = Ctx {
        globals,
        args,
        rack,
        credentials,
        session,
        progress,
        cluster_dir: cluster_dir.clone(),
        bmcs: context::BmcResolver::load(globals)?,
    };
    if resuming {
        ctx.progress.say(&format!(
            "Resuming the bootstrap recorded in {}",
            StateFile::path(&globals.state_dir).display()
        ));
    }
    ctx.progress.say(&format!(
        "Provisioning {} node(s) with {} (log: {})",
        selection.active().len(),
        selection.provision(),
        log_path.display()
    ));

    // Render the cluster configuration (deterministic, so a resume rewrites
    // identical files).
    render(&ctx, &selection)?;

    let mut state = match previous.filter(|_| resuming) {
        Some(p) => p,
        None => BootstrapState::new(&selection.provision().to_string(), &cluster_dir),
    };
    let now = state::now_unix();
    for n in selection.nodes() {
        let name = n.hostname.clone().unwrap_or_default();
        state.ensure_node(
            n.planned.node.primary_mac,
            n.planned.node.bmc_mac,
            &name,
            now,
        );
    }
    let mut file = StateFile::new(&globals.state_dir, state)?;
    for n in selection.nodes().iter().filter(|n| n.excluded) {
        file.apply(n.planned.node.primary_mac, &Event::Exclude)?;
    }
    // A rerun retries the nodes an earlier run left failed (an installed
    // one from `installed`, never reinstalled).
    let failed_before = file
        .state
        .macs_where(|s| matches!(s, NodeState::Failed { .. }));
    if !failed_before.is_empty() {
        for mac in &failed_before {
            file.apply(*mac, &Event::Reset)?;
        }
        ctx.progress.say(&format!(
            "Retrying {} node(s) that failed in the previous run: {}",
            failed_before.len(),
            join_macs(&failed_before)
        ));
    }

    // Stage 1: network.
    let netboot = if args.no_netboot {
        ctx.progress
            .say("✓ Network: using the running netboot service (--no-netboot)");
        None
    } else {
        let endpoints = endpoints(&ctx);
        let nb = network::start(globals, &ctx.rack, &selection, &cluster_dir, &endpoints).await?;
        if let Some(address) = &nb.address {
            ctx.progress.say(&format!("✓ Network: {address}"));
        }
        ctx.progress.say(&format!(
            "✓ Network: DHCP on {} ({} reservations), HTTP on {} ({})",
            nb.dhcp_addr,
            2 * selection.nodes().len(),
            nb.http_addr,
            nb.base_url
        ));
        Some(nb)
    };
    let reports = match &netboot {
        Some(nb) => nb.reports.clone(),
        None => ReportStore::open(&globals.state_dir)?,
    };

    let result = stages(&ctx, &selection, &mut file, &reports).await;
    if let Some(nb) = netboot {
        nb.stop();
    }
    result
}

/// Check that `lokoctl` can be found (Lokomotive mode).
pub(crate) fn lokomotive_available() -> anyhow::Result<()> {
    lokomotive::find_lokoctl().map(|_| ())
}

fn dir_has_entries(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some())
}

fn endpoints(ctx: &Ctx<'_>) -> NetbootEndpoints {
    let args = ctx.args;
    NetbootEndpoints {
        dhcp_listen: args.dhcp_listen,
        content: crate::netboot_content::ContentArgs {
            http_listen: args.http_listen,
            tftp_listen: args.tftp_listen,
            boot_files: args.boot_files.clone(),
            no_dhcp: false,
            matchbox_data: None,
            boot_hook: None,
            // On plain UDP (simulator, tests) TFTP only runs when asked for.
            without_tftp: args.tftp_listen.is_none() && args.dhcp_listen.is_some(),
        },
        http_url: args.http_url.clone(),
        force: args.force,
        sys_class_net: ctx.globals.sys_class_net.clone(),
    }
}

fn render(ctx: &Ctx<'_>, selection: &Selection) -> anyhow::Result<()> {
    // The management key pair is created on first use.
    crate::factory::ensure_ssh_key(&ctx.globals.state_dir.join("ssh").join("id_ed25519"))?;
    std::fs::create_dir_all(&ctx.cluster_dir)
        .with_context(|| format!("creating {}", ctx.cluster_dir.display()))?;
    let out = std::fs::canonicalize(&ctx.cluster_dir)?;
    let (mut options, public) =
        ctx.args
            .choices
            .resolve(ctx.globals, &ctx.rack, &ctx.args.selection, &out)?;
    if let Some(addr) = ctx.args.http_listen {
        options.netboot_port = addr.port();
    }
    let tree = racker_lokomotive::render_cluster(&ctx.rack.plan, selection, &options, &public)?;
    tree.write_to(&ctx.cluster_dir)?;
    ctx.progress.say(&format!(
        "✓ Configuration rendered into {} ({} files)",
        ctx.cluster_dir.display(),
        tree.len()
    ));
    Ok(())
}

/// The BMC address of a node: from the simulator's table, the DHCP lease
/// table, or the address plan.
fn bmc_of(ctx: &Ctx<'_>, node: &SelectedNode) -> racker_ipmi::BmcAddress {
    ctx.bmcs.address(&node.planned, ctx.args.ipmi_port)
}

async fn stages(
    ctx: &Ctx<'_>,
    selection: &Selection,
    file: &mut StateFile,
    reports: &ReportStore,
) -> anyhow::Result<ExitCode> {
    // Stage 2: BMC connectivity, every active node.
    let active: Vec<&SelectedNode> = selection.active();
    let total = active.len();
    let name = "Checking BMC connectivity";
    ctx.progress.stage(name, total);
    let targets: Vec<(MacAddr, racker_ipmi::BmcAddress)> = active
        .iter()
        .map(|n| (n.planned.node.primary_mac, bmc_of(ctx, n)))
        .collect();
    let op = Operation::ChassisStatus;
    let mut stream = racker_ipmi::fan_out_operation(
        targets,
        &ctx.credentials,
        &ctx.session,
        &op,
        ctx.args.concurrency,
    );
    let mut done = 0;
    let mut unreachable: Vec<(MacAddr, MacAddr, String)> = Vec::new();
    while let Some(r) = stream.next().await {
        done += 1;
        let node = selection.find_by_mac(r.key);
        let bmc_mac = node.map_or(r.key, |n| n.planned.node.bmc_mac);
        match r.result {
            Ok(_) => {
                file.apply(r.key, &Event::Reached(Stage::BmcReachable))?;
                ctx.progress.step(
                    name,
                    done,
                    total,
                    true,
                    &format!("{} BMC {} ({})", r.key, bmc_mac, r.bmc),
                );
            }
            Err(e) => {
                ctx.progress.step(
                    name,
                    done,
                    total,
                    false,
                    &format!("{} BMC {} ({}): {e}", r.key, bmc_mac, r.bmc),
                );
                unreachable.push((r.key, bmc_mac, e.to_string()));
            }
        }
    }
    drop(stream);
    ctx.progress.finish(
        name,
        total - unreachable.len(),
        total,
        unreachable.is_empty(),
    );
    if !unreachable.is_empty() {
        let macs: Vec<String> = unreachable.iter().map(|u| u.1.to_string()).collect();
        ctx.progress.say(&format!(
            "{} BMC(s) could not be reached:",
            unreachable.len()
        ));
        for (mac, bmc, reason) in &unreachable {
            ctx.progress
                .say(&format!("  node {mac} BMC {bmc}: {reason}"));
        }
        ctx.progress.say(&format!(
            "Check their cabling and credentials (racker ipmi <node> diag), or leave them out:\n  racker bootstrap ... --exclude \"{}\"\nLog: {}",
            macs.join(" "),
            ctx.progress.log_path().display()
        ));
        return Ok(ExitCode::FAILURE);
    }

    if selection.provision() == racker_inventory::Provision::Lokomotive {
        // lokoctl installs the nodes itself (through the rendered
        // pxe_commands, which call `racker ipmi`) and brings Kubernetes up.
        let ok = lokomotive::stages(
            &ctx.progress,
            &ctx.cluster_dir,
            &ctx.progress.log_path(),
            selection,
            file,
            ctx.args.retries,
            &lokomotive::JoinOptions {
                kubeconfig: kubeconfig_path(ctx),
                timeout: ctx.args.join_timeout,
                interval: Duration::from_millis(500),
            },
            &|failed: &[MacAddr]| match ctx.args.on_failure {
                OnFailure::Ask => ask_policy(ctx, failed),
                p => Ok(p),
            },
        )
        .await?;
        if !ok {
            return Ok(ExitCode::FAILURE);
        }
        ctx.progress.say(&format!(
            "✓ Lokomotive cluster {} is up. To change it later: edit {} and run `lokoctl cluster apply` there; `racker status` shows every node.",
            selection.api_name(),
            ctx.cluster_dir.display()
        ));
        return Ok(ExitCode::SUCCESS);
    }

    // Stage 3: OS installation via PXE, then the installed OS coming up,
    // with the failure policy.
    let mut attempt = 0u32;
    // Installed nodes whose OS did not come up: power-cycled on a retry.
    let mut repower: Vec<MacAddr> = Vec::new();
    loop {
        attempt += 1;
        let (mut failed, earlier) = pxe_stage(ctx, selection, file, reports).await?;
        if attempt == 1 {
            // Resuming: nodes installed by an earlier run whose OS has not
            // reported up (it may have tried while racker was down) boot
            // their disk again.
            repower = earlier
                .into_iter()
                .filter(|mac| !reports.is_up(*mac))
                .collect();
        }
        if !ctx.args.os_timeout.is_zero() {
            failed.extend(os_up_stage(ctx, selection, file, reports, &repower).await?);
        }
        if failed.is_empty() {
            break;
        }
        let policy = match ctx.args.on_failure {
            OnFailure::Ask => ask_policy(ctx, &failed)?,
            p => p,
        };
        match policy {
            OnFailure::Retry if attempt <= ctx.args.retries => {
                let log = ctx.progress.next_attempt(attempt + 1)?;
                ctx.progress.say(&format!(
                    "Retrying {} node(s) (retry {attempt} of {}; log: {})",
                    failed.len(),
                    ctx.args.retries,
                    log.display()
                ));
                repower.clear();
                for mac in &failed {
                    file.apply(*mac, &Event::Reset)?;
                    let installed = file
                        .state
                        .nodes
                        .get(mac)
                        .is_some_and(|r| r.state.stage() >= Stage::Installed);
                    if installed {
                        // Installed: boot it again, never reinstall it.
                        repower.push(*mac);
                    } else {
                        reports.clear(*mac)?;
                    }
                }
            }
            OnFailure::Exclude => {
                exclude_nodes(&ctx.progress, file, &ctx.cluster_dir, &failed)?;
                break;
            }
            _ => {
                guidance(ctx, selection, file, &failed);
                return Ok(ExitCode::FAILURE);
            }
        }
    }

    let installed = file
        .state
        .macs_where(|s| s.stage() >= Stage::Installed && matches!(s, NodeState::Active { .. }));
    let up = file
        .state
        .macs_where(|s| s.stage() >= Stage::OsUp && matches!(s, NodeState::Active { .. }));
    ctx.progress.say(&format!(
        "✓ {} node(s) provisioned with {}{}",
        installed.len(),
        selection.provision(),
        if !ctx.args.os_timeout.is_zero() {
            format!(", OS up on {}", up.len())
        } else {
            String::new()
        }
    ));
    ctx.progress.say(&format!(
        "To change the cluster later: edit the files in {} and rerun racker, or `racker exclude <MAC> --dir {}`; `racker status` shows every node.",
        ctx.cluster_dir.display(),
        ctx.cluster_dir.display()
    ));
    Ok(ExitCode::SUCCESS)
}

/// The failure policy's `exclude`: mark `failed` excluded, take them out
/// of the rendered configuration (`racker exclude` semantics), say so.
pub(super) fn exclude_nodes(
    progress: &Progress,
    file: &mut StateFile,
    cluster_dir: &Path,
    failed: &[MacAddr],
) -> anyhow::Result<()> {
    for mac in failed {
        file.apply(*mac, &Event::Exclude)?;
        racker_lokomotive::exclude_in_dir(cluster_dir, *mac, true)
            .with_context(|| format!("removing {mac} from the rendered configuration"))?;
    }
    progress.say(&format!(
        "Excluded {} node(s) from the cluster: {}",
        failed.len(),
        join_macs(failed)
    ));
    Ok(())
}

fn join_macs(macs: &[MacAddr]) -> String {
    macs.iter()
        .map(MacAddr::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}

fn ask_policy(ctx: &Ctx<'_>, failed: &[MacAddr]) -> anyhow::Result<OnFailure> {
    if !std::io::stdin().is_terminal() {
        ctx.progress
            .say("(--on-failure ask without a terminal: cancelling)");
        return Ok(OnFailure::Cancel);
    }
    loop {
        eprint!(
            "{} node(s) failed: {}. [r]etry, [e]xclude nodes, [c]ancel? ",
            failed.len(),
            join_macs(failed)
        );
        let mut answer = String::new();
        if std::io::stdin().read_line(&mut answer)? == 0 {
            return Ok(OnFailure::Cancel);
        }
        match answer.trim() {
            "r" | "retry" => return Ok(OnFailure::Retry),
            "e" | "exclude" => return Ok(OnFailure::Exclude),
            "c" | "cancel" => return Ok(OnFailure::Cancel),
            _ => {}
        }
    }
}

fn guidance(ctx: &Ctx<'_>, selection: &Selection, file: &StateFile, failed: &[MacAddr]) {
    ctx.progress
        .say(&format!("× {} node(s) failed:", failed.len()));
    for mac in failed {
        let label = file
            .state
            .nodes
            .get(mac)
            .map_or_else(String::new, |r| r.state.label());
        let name = selection
            .find_by_mac(*mac)
            .and_then(|n| n.hostname.clone())
            .unwrap_or_default();
        ctx.progress.say(&format!("  {mac} {name}: {label}"));
    }
    ctx.progress.say(&format!(
        "Log: {}\nTo debug: racker ipmi <node> diag (BMC state and boot flags), racker ipmi <node> sol (serial console), ssh core@<node ip>.\nTo go on without them: racker bootstrap ... --exclude \"{}\"  (or --on-failure exclude|retry)",
        ctx.progress.log_path().display(),
        join_macs(failed)
    ));
}

/// The selected nodes whose state is active at `from` or later.
pub(super) fn active_nodes<'a>(
    selection: &'a Selection,
    file: &StateFile,
    from: Stage,
) -> Vec<&'a SelectedNode> {
    selection
        .active()
        .into_iter()
        .filter(|n| {
            file.state
                .nodes
                .get(&n.planned.node.primary_mac)
                .is_some_and(|r| matches!(r.state, NodeState::Active { stage } if stage >= from))
        })
        .collect()
}

/// Through every node's BMC, in parallel: boot-flag timeout off, power
/// off, next boot `device` (persistent, EFI), power on.
fn boot_from<'a>(
    ctx: &'a Ctx<'_>,
    nodes: &[&SelectedNode],
    device: BootDevice,
) -> impl futures::Stream<Item = racker_ipmi::FanOutResult<MacAddr, ()>> + 'a {
    let targets: Vec<(MacAddr, racker_ipmi::BmcAddress)> = nodes
        .iter()
        .map(|n| (n.planned.node.primary_mac, bmc_of(ctx, n)))
        .collect();
    let creds = &ctx.credentials;
    let opts = &ctx.session;
    racker_ipmi::fan_out(targets, ctx.args.concurrency, move |bmc| async move {
        let mut s = racker_ipmi::Session::connect(&bmc, creds, opts).await?;
        let result = async {
            s.disable_boot_flag_timeout().await?;
            s.power(PowerAction::Off).await?;
            s.set_boot_device(device, true, true).await?;
            s.power(PowerAction::On).await?;
            Ok::<(), racker_ipmi::Error>(())
        }
        .await;
        let _ = s.close().await;
        result
    })
}

/// A counted stage: its `k/N` progress lines and the nodes that failed.
struct Tally<'p> {
    progress: &'p Progress,
    name: &'static str,
    total: usize,
    done: usize,
    failed: Vec<MacAddr>,
}

impl<'p> Tally<'p> {
    fn start(progress: &'p Progress, name: &'static str, total: usize) -> Self {
        progress.stage(name, total);
        Self {
            progress,
            name,
            total,
            done: 0,
            failed: Vec::new(),
        }
    }

    /// One node done: a ✓ line.
    fn ok(&mut self, line: &str) {
        self.done += 1;
        self.progress
            .step(self.name, self.done, self.total, true, line);
    }

    /// One node failed: its state says why, a × line `<who> <reason>`.
    fn fail(
        &mut self,
        file: &mut StateFile,
        mac: MacAddr,
        who: &str,
        reason: String,
    ) -> anyhow::Result<()> {
        file.apply(mac, &Event::Failed(reason.clone()))?;
        self.done += 1;
        self.progress.step(
            self.name,
            self.done,
            self.total,
            false,
            &format!("{who} {reason}"),
        );
        self.failed.push(mac);
        Ok(())
    }

    /// The ✓/× summary line; the failed nodes.
    fn finish(self) -> Vec<MacAddr> {
        self.progress.finish(
            self.name,
            self.total - self.failed.len(),
            self.total,
            self.failed.is_empty(),
        );
        self.failed
    }
}

/// Request PXE installs for every node that needs one and wait for the
/// installers' reports. Returns the nodes that failed, and those that were
/// installed before this stage started.
async fn pxe_stage(
    ctx: &Ctx<'_>,
    selection: &Selection,
    file: &mut StateFile,
    reports: &ReportStore,
) -> anyhow::Result<(Vec<MacAddr>, Vec<MacAddr>)> {
    let active = active_nodes(selection, file, Stage::Planned);
    let mut tally = Tally::start(&ctx.progress, "OS installation via PXE", active.len());
    let _ = reports.refresh();
    // Nodes whose installer already reported (a previous run crashed after
    // the report) are not reinstalled.
    let mut earlier = Vec::new();
    let mut to_request = Vec::new();
    let mut waiting: BTreeMap<MacAddr, Instant> = BTreeMap::new();
    for n in &active {
        let mac = n.planned.node.primary_mac;
        let stage = file
            .state
            .nodes
            .get(&mac)
            .map_or(Stage::Planned, |r| r.state.stage());
        if stage >= Stage::Installed || reports.is_installed(mac) {
            file.apply(mac, &Event::Reached(Stage::Installed))?;
            earlier.push(mac);
            tally.ok(&format!("{mac} {} already installed", host(n)));
        } else {
            // Not installed yet — also after a crash mid-install: request
            // the PXE boot (again; the power cycle restarts an interrupted
            // installer). A stale report from an earlier attempt must not
            // count.
            if reports.get(mac).is_some() {
                reports.clear(mac)?;
            }
            to_request.push(*n);
        }
    }

    let mut stream = boot_from(ctx, &to_request, BootDevice::Pxe);
    while let Some(r) = stream.next().await {
        match r.result {
            Ok(()) => {
                file.apply(r.key, &Event::Reached(Stage::PxeRequested))?;
                ctx.progress
                    .log(&format!("{} PXE boot requested through {}", r.key, r.bmc));
                waiting.insert(r.key, Instant::now());
            }
            Err(e) => {
                let reason = format!("PXE request through BMC {} failed: {e}", r.bmc);
                tally.fail(file, r.key, &r.key.to_string(), reason)?;
            }
        }
    }
    drop(stream);

    // Wait for the installers' reports.
    let timeout = ctx.args.install_timeout;
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    while !waiting.is_empty() {
        tick.tick().await;
        if ctx.args.no_netboot {
            // Another process records the reports; the in-process server
            // shares this store, so re-reading is only needed then.
            let _ = reports.refresh();
        }
        let mut finished = Vec::new();
        for (mac, since) in &waiting {
            // Ok: installed; Err: failed with this reason; None: not yet.
            let verdict = match reports.get(*mac) {
                Some(r) if r.stage.is_installed() => Some(Ok(())),
                Some(r) if r.stage == ReportStage::Failed => Some(Err(format!(
                    "installer failed: {}",
                    r.reason.unwrap_or_else(|| "no reason given".into())
                ))),
                Some(r) if r.stage == ReportStage::Installing => {
                    if file.apply(*mac, &Event::Reached(Stage::InstallerBooted))? {
                        ctx.progress.log(&format!("{mac} installer booted"));
                    }
                    None
                }
                _ => None,
            }
            .or_else(|| {
                (since.elapsed() > timeout).then(|| {
                    Err(format!(
                        "no installer report within {}",
                        humantime::format_duration(timeout)
                    ))
                })
            });
            let Some(verdict) = verdict else { continue };
            let name_of = selection.find_by_mac(*mac).map(host).unwrap_or_default();
            match verdict {
                Ok(()) => {
                    file.apply(*mac, &Event::Reached(Stage::InstallerBooted))?;
                    file.apply(*mac, &Event::Reached(Stage::Installed))?;
                    tally.ok(&format!("{mac} {name_of} installed"));
                }
                Err(reason) => tally.fail(file, *mac, &format!("{mac} {name_of}"), reason)?,
            }
            finished.push(*mac);
        }
        for mac in finished {
            waiting.remove(&mac);
        }
    }
    Ok((tally.finish(), earlier))
}

/// Wait until every installed node's OS reported `up`; nodes in `repower`
/// (installed, retried after their OS did not come up) are first power
/// cycled to boot from disk. Returns the nodes that failed.
async fn os_up_stage(
    ctx: &Ctx<'_>,
    selection: &Selection,
    file: &mut StateFile,
    reports: &ReportStore,
    repower: &[MacAddr],
) -> anyhow::Result<Vec<MacAddr>> {
    let nodes = active_nodes(selection, file, Stage::Installed);
    if nodes.is_empty() {
        return Ok(Vec::new());
    }
    let mut tally = Tally::start(&ctx.progress, "Waiting for the installed OS", nodes.len());
    let to_repower: Vec<&SelectedNode> = nodes
        .iter()
        .copied()
        .filter(|n| repower.contains(&n.planned.node.primary_mac))
        .collect();
    let mut stream = boot_from(ctx, &to_repower, BootDevice::Disk);
    while let Some(r) = stream.next().await {
        match r.result {
            Ok(()) => ctx.progress.log(&format!(
                "{} power cycled to boot from disk through {}",
                r.key, r.bmc
            )),
            Err(e) => {
                let reason = format!("power cycle through BMC {} failed: {e}", r.bmc);
                tally.fail(file, r.key, &r.key.to_string(), reason)?;
            }
        }
    }
    drop(stream);

    let timeout = ctx.args.os_timeout;
    let started = Instant::now();
    let mut waiting: Vec<&SelectedNode> = nodes
        .into_iter()
        .filter(|n| !tally.failed.contains(&n.planned.node.primary_mac))
        .collect();
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    while !waiting.is_empty() {
        tick.tick().await;
        if ctx.args.no_netboot {
            let _ = reports.refresh();
        }
        let timed_out = started.elapsed() > timeout;
        let mut still = Vec::new();
        for n in waiting {
            let mac = n.planned.node.primary_mac;
            let up = file
                .state
                .nodes
                .get(&mac)
                .is_some_and(|r| r.state.stage() >= Stage::OsUp)
                || reports.is_up(mac);
            if up {
                file.apply(mac, &Event::Reached(Stage::OsUp))?;
                tally.ok(&format!("{mac} {} OS up", host(n)));
            } else if timed_out {
                let reason = format!(
                    "installed, but its OS did not report up within {} (check its console: racker ipmi {mac} sol)",
                    humantime::format_duration(timeout)
                );
                tally.fail(file, mac, &format!("{mac} {}", host(n)), reason)?;
            } else {
                still.push(n);
            }
        }
        waiting = still;
    }
    Ok(tally.finish())
}

/// `--kubeconfig`, or where lokoctl writes it below the asset directory.
fn kubeconfig_path(ctx: &Ctx<'_>) -> PathBuf {
    if let Some(k) = &ctx.args.kubeconfig {
        return k.clone();
    }
    let assets = ctx
        .args
        .choices
        .asset_dir
        .as_ref()
        .map_or_else(|| ctx.cluster_dir.join("lokoctl-assets"), PathBuf::from);
    let path = assets.join(crate::kube::KUBECONFIG_IN_ASSETS);
    std::path::absolute(&path).unwrap_or(path)
}

/// A duration option: plain seconds (`900`, `0.5`) or humantime's units
/// (`90s`, `15m`, `1h 30m`, `500ms`).
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    if let Ok(secs) = t.parse::<f64>() {
        return Duration::try_from_secs_f64(secs)
            .map_err(|_| format!("invalid duration {text:?}: must be 0 or more seconds"));
    }
    humantime::parse_duration(t).map_err(|e| {
        format!("invalid duration {text:?} ({e}): expected seconds or e.g. 90s, 15m, 1h30m")
    })
}

fn host(n: &SelectedNode) -> String {
    n.hostname.clone().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn durations_in_seconds_or_with_units() {
        let d = |s: &str| parse_duration(s).unwrap();
        assert_eq!(d("900"), Duration::from_secs(900));
        assert_eq!(d("0.5"), Duration::from_millis(500));
        assert_eq!(d("0"), Duration::ZERO);
        assert_eq!(d("15m"), Duration::from_secs(900));
        assert_eq!(d("1h30m"), Duration::from_secs(5400));
        assert_eq!(d("1h 30m"), Duration::from_secs(5400));
        assert_eq!(d("500ms"), Duration::from_millis(500));
        for bad in ["", "-1", "15 parsecs", "m", "1e400"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
        assert!(parse_duration("x").unwrap_err().contains("15m"));
    }

    proptest! {
        #[test]
        fn any_text_is_a_duration_or_an_error(s in ".{0,20}") {
            let _ = parse_duration(&s);
        }
    }
}
