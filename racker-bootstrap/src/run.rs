//! The bootstrap itself (docs/bootstrap.md): netboot, BMC check, PXE
//! installs, OS up, or Lokomotive's bring-up and joins; with the failure
//! policy, resume and exclusion.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use racker_inventory::{MacAddr, SelectedNode, Selection};
use racker_ipmi::{BootDevice, Operation, PowerAction, SessionOptions};
use racker_netboot::report::{ReportKey, ReportStore, Stage as ReportStage};
use racker_netboot::service::ServiceMarker;
use racker_netboot::trail::{self, EventTrail};

use crate::bmc::BmcResolver;
use crate::events::{Decision, EventSink, FailedNodes, FailurePolicy, Phase, Reporter, StepResult};
use crate::lokomotive;
use crate::network;
use crate::state::{self, BootstrapState, NodeEvent, NodeState, Stage, StateFile};
use crate::{Config, Error, NetbootMode};

/// How a bootstrap ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// Every stage succeeded (excluded nodes aside).
    Provisioned,
    /// A stage failed and the policy did not go on; the operator was told
    /// what to do. A rerun with the same state directory resumes.
    Failed {
        /// The nodes that failed (empty when the whole stage failed, e.g.
        /// `lokoctl cluster apply`).
        nodes: Vec<MacAddr>,
    },
}

/// The result of [`bootstrap`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Report {
    /// How it ended.
    pub outcome: Outcome,
    /// Every node's final state (as in `<state-dir>/bootstrap.json`).
    pub state: BootstrapState,
    /// The last attempt's log file.
    pub log: PathBuf,
}

impl Report {
    /// True when the bootstrap provisioned the rack.
    pub fn succeeded(&self) -> bool {
        self.outcome == Outcome::Provisioned
    }
}

struct Ctx<'a> {
    config: &'a Config,
    credentials: racker_ipmi::Credentials,
    session: SessionOptions,
    progress: Reporter<'a>,
    policy: &'a dyn FailurePolicy,
    bmcs: BmcResolver,
}

/// Run a bootstrap: every progress line goes to `events` (and to the
/// attempt log in `<cluster-dir>/logs`), failed nodes are put to `policy`.
///
/// A rerun with the same state directory and cluster directory resumes:
/// installed nodes are not reinstalled, excluded ones stay out, failed ones
/// are retried.
pub async fn bootstrap(
    config: &Config,
    events: &dyn EventSink,
    policy: &dyn FailurePolicy,
) -> Result<Report, Error> {
    // Lokomotive needs lokoctl at stage 4: say so before installing anything.
    let lokoctl = match config.selection.provision {
        racker_inventory::Provision::Lokomotive => {
            Some(config.lokoctl.clone().ok_or(Error::LokoctlNotFound)?)
        }
        _ => None,
    };
    let state_dir = &config.state_dir;
    let cluster_dir = config.cluster_dir.clone();
    let previous = StateFile::load(state_dir)?;
    let resuming = previous
        .as_ref()
        .is_some_and(|p| p.cluster_dir == cluster_dir);
    if !resuming && dir_has_entries(&cluster_dir) {
        return Err(Error::ClusterDirNotEmpty {
            cluster_dir,
            state_file: StateFile::path(state_dir),
        });
    }
    let stamp = state::now_unix();
    let log_path = cluster_dir
        .join("logs")
        .join(format!("{stamp}-bootstrap.log"));
    let progress = Reporter::new(&log_path, events)?;
    progress.begin();

    // Exclusions: the operator's plus those a previous run decided.
    let mut options = config.selection.clone();
    if let Some(prev) = &previous
        && resuming
    {
        options
            .exclude
            .extend(prev.macs_where(|s| matches!(s, NodeState::Excluded { .. })));
    }
    let selection = racker_inventory::select(&config.rack.plan, &options)?;
    let session = SessionOptions::default().timeout(config.ipmi_timeout);
    let ctx = Ctx {
        config,
        credentials: config.credentials.clone(),
        session,
        progress,
        policy,
        bmcs: BmcResolver::load(state_dir)?.with_overrides(config.bmc_overrides.clone()),
    };
    if resuming {
        ctx.progress.say(&format!(
            "Resuming the bootstrap recorded in {}",
            StateFile::path(state_dir).display()
        ));
    }
    ctx.progress.say(&format!(
        "Provisioning {} node(s) with {} (log: {})",
        selection.active().len(),
        selection.provision(),
        log_path.display()
    ));

    // Render the cluster configuration (deterministic, so a resume rewrites
    // identical files), each node's install-report token in its own files.
    let key = ReportKey::load_or_create(state_dir)?;
    render(&ctx, &selection, &key)?;

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
    // A new bootstrap is a new generation: install reports of an earlier
    // one never count for it (a resume keeps its generation).
    let generation = state.generation.clone().unwrap_or_else(new_generation);
    state.generation = Some(generation.clone());
    racker_netboot::report::write_generation(state_dir, &generation)?;
    let mut file = StateFile::new(state_dir, state)?;
    for n in selection.nodes().iter().filter(|n| n.excluded) {
        ctx.progress
            .apply(&mut file, n.planned.node.primary_mac, &NodeEvent::Exclude)?;
    }
    // A rerun retries the nodes an earlier run left failed (an installed
    // one from `installed`, never reinstalled).
    let failed_before = file
        .state
        .macs_where(|s| matches!(s, NodeState::Failed { .. }));
    if !failed_before.is_empty() {
        for mac in &failed_before {
            ctx.progress.apply(&mut file, *mac, &NodeEvent::Reset)?;
        }
        ctx.progress.say(&format!(
            "Retrying {} node(s) that failed in the previous run: {}",
            failed_before.len(),
            join_macs(&failed_before)
        ));
    }

    // A `racker netboot serve` of this state directory (the systemd
    // service) already serves the rack: use it, never bind a second one.
    let running = match &config.netboot {
        NetbootMode::Serve(_) if config.use_running_service => {
            ServiceMarker::running(state_dir, Duration::from_secs(2)).await
        }
        _ => None,
    };

    // Preflight: every boot file the nodes will request, before any BMC
    // is touched.
    if config.preflight && lokoctl.is_none() {
        preflight(&ctx, &selection, &file, running.is_some())?;
    }

    // Stage 1: network.
    let netboot = match &config.netboot {
        NetbootMode::External => {
            ctx.progress
                .say("✓ Network: using the running netboot service (--no-netboot)");
            None
        }
        NetbootMode::Serve(_) if let Some(m) = &running => {
            ctx.progress.say(&format!(
                "✓ Network: using the running netboot service (pid {}, HTTP {}, DHCP {})",
                m.pid,
                m.base_url,
                m.dhcp.map_or_else(|| "off".to_owned(), |d| d.to_string())
            ));
            None
        }
        NetbootMode::Serve(endpoints) => {
            let nb = network::start(state_dir, &config.rack, &selection, &cluster_dir, endpoints)
                .await?;
            if let Some(refusal) = &nb.forced_past {
                ctx.progress
                    .say(&format!("  warning: {refusal}; serving anyway (--force)"));
            }
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
            if let Some((addr, client_dir)) = &nb.matchbox_api {
                ctx.progress.say(&format!(
                    "✓ Network: matchbox gRPC API (mutual TLS) on {addr}, client certificates in {}",
                    client_dir.display()
                ));
            }
            Some(nb)
        }
    };
    let reports = match &netboot {
        Some(nb) => nb.reports.clone(),
        None => ReportStore::open(state_dir)?,
    };
    let trail = netboot.as_ref().map(|nb| nb.trail.clone());
    let watch = Watch {
        reports: &reports,
        trail: trail.as_ref(),
        external: netboot.is_none(),
    };

    // The rack view (`/` of the netboot server) reads every node's state
    // and power from `<state-dir>/rack-status.json`.
    let rack_status = crate::RackStatusWriter::spawn(
        state_dir,
        &config.rack,
        ctx.credentials.clone(),
        ctx.bmcs.clone(),
        rack_status_options(config),
    );
    let result = stages(&ctx, &selection, &mut file, &watch, lokoctl.as_deref()).await;
    // Node events are written behind: everything is on disk before the
    // rack view takes its last look and the caller reads the state.
    let flushed = file.flush();
    rack_status.stop();
    if let Some(nb) = netboot {
        nb.stop();
    }
    let outcome = result?;
    flushed?;
    Ok(Report {
        outcome,
        state: file.state.clone(),
        log: ctx.progress.log_path(),
    })
}

fn rack_status_options(config: &Config) -> crate::RackStatusOptions {
    let mut o = crate::RackStatusOptions::default();
    o.ipmi_port = config.ipmi_port;
    o.ipmi_timeout = o.ipmi_timeout.min(config.ipmi_timeout);
    o
}

fn dir_has_entries(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some())
}

fn render(ctx: &Ctx<'_>, selection: &Selection, key: &ReportKey) -> Result<(), Error> {
    let cluster_dir = &ctx.config.cluster_dir;
    std::fs::create_dir_all(cluster_dir).map_err(|e| Error::io("creating", cluster_dir, e))?;
    let mut options = ctx.config.render.clone();
    options.report_tokens = selection
        .nodes()
        .iter()
        .map(|n| {
            let mac = n.planned.node.primary_mac;
            (mac, key.token(mac))
        })
        .collect();
    if let NetbootMode::Serve(endpoints) = &ctx.config.netboot
        && let Some(addr) = endpoints.content.http_listen
    {
        options.netboot_port = addr.port();
    }
    let tree = racker_lokomotive::render_cluster(
        &ctx.config.rack.plan,
        selection,
        &options,
        &ctx.config.public_ips,
    )?;
    let written = crate::rendered::write_keeping_edits(&tree, cluster_dir, false)?;
    for kept in &written.kept {
        ctx.progress.say(&format!(
            "  kept your edit of {}: racker would change it (see `racker render --diff --out {}`; remove the file to take racker's)",
            kept.display(),
            cluster_dir.display()
        ));
    }
    ctx.progress.say(&format!(
        "✓ Configuration rendered into {} ({} files)",
        cluster_dir.display(),
        tree.len()
    ));
    Ok(())
}

/// The BMC address of a node: from the override table, the DHCP lease
/// table, or the address plan.
fn bmc_of(ctx: &Ctx<'_>, node: &SelectedNode) -> racker_ipmi::BmcAddress {
    let resolved = ctx.bmcs.resolve(&node.planned, ctx.config.ipmi_port);
    if let Some(w) = resolved.warning(node.planned.node.bmc_mac) {
        ctx.progress.warn(w);
    }
    resolved.address
}

async fn stages(
    ctx: &Ctx<'_>,
    selection: &Selection,
    file: &mut StateFile,
    watch: &Watch<'_>,
    lokoctl: Option<&Path>,
) -> Result<Outcome, Error> {
    let reports = watch.reports;
    // Stage 2: BMC connectivity, every active node.
    let active: Vec<&SelectedNode> = selection.active();
    let total = active.len();
    let name = Phase::BmcConnectivity;
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
        ctx.config.concurrency,
    );
    let mut done = 0;
    let mut unreachable: Vec<(MacAddr, MacAddr, String)> = Vec::new();
    while let Some(r) = stream.next().await {
        done += 1;
        let node = selection.find_by_mac(r.key);
        let bmc_mac = node.map_or(r.key, |n| n.planned.node.bmc_mac);
        match r.result {
            Ok(_) => {
                ctx.progress
                    .apply(file, r.key, &NodeEvent::Reached(Stage::BmcReachable))?;
                ctx.progress.step(
                    name,
                    r.key,
                    (done, total),
                    StepResult::Ok,
                    format!("{} BMC {} ({})", r.key, bmc_mac, r.bmc),
                );
            }
            Err(e) => {
                ctx.progress.step(
                    name,
                    r.key,
                    (done, total),
                    StepResult::Failed {
                        reason: e.to_string(),
                    },
                    format!("{} BMC {} ({}): {e}", r.key, bmc_mac, r.bmc),
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
        return Ok(Outcome::Failed {
            nodes: unreachable.iter().map(|u| u.0).collect(),
        });
    }

    let cluster_dir = &ctx.config.cluster_dir;
    if let Some(lokoctl) = lokoctl {
        // lokoctl installs the nodes itself (through the rendered
        // pxe_commands, which call `racker ipmi`) and brings Kubernetes up,
        // with the management key in an ssh-agent and the nodes' names in
        // the hosts file (docs/lokomotive.md).
        let env = &ctx.config.lokomotive_env;
        let prepared =
            crate::lokoenv::prepare(env, &ctx.config.state_dir, cluster_dir, &ctx.progress)?;
        let log = ctx.progress.log_path();
        let run = lokomotive::Lokoctl {
            path: lokoctl,
            cluster_dir,
            log: &log,
            env,
            prepared: &prepared,
        };
        let ok = lokomotive::stages(
            &ctx.progress,
            &run,
            selection,
            file,
            ctx.config.retries,
            &lokomotive::JoinOptions {
                kubeconfig: kubeconfig_path(ctx),
                timeout: ctx.config.join_timeout,
                interval: Duration::from_millis(500),
            },
            ctx.policy,
        )
        .await?;
        // lokoctl's pxe_commands left the nodes on PXE boot; every node it
        // installed boots from its disk from now on (as in Flatcar mode,
        // set from here over IPMI LAN; docs/lokomotive.md).
        let installed: Vec<&SelectedNode> = selection
            .active()
            .into_iter()
            .filter(|n| {
                file.state
                    .nodes
                    .get(&n.planned.node.primary_mac)
                    .is_some_and(|r| {
                        !matches!(r.state, NodeState::Excluded { .. })
                            && r.state.stage() >= Stage::OsUp
                    })
            })
            .collect();
        if !installed.is_empty() {
            set_disk_boot_from_management(ctx, &installed, "installed by lokoctl").await;
        }
        if !ok {
            return Ok(Outcome::Failed {
                nodes: file
                    .state
                    .macs_where(|s| matches!(s, NodeState::Failed { .. })),
            });
        }
        ctx.progress.say(&format!(
            "✓ Lokomotive cluster {} is up. To change it later: edit {} and run `lokoctl cluster apply` there; `racker status` shows every node.",
            selection.api_name(),
            cluster_dir.display()
        ));
        return Ok(Outcome::Provisioned);
    }

    // Stage 3: OS installation via PXE, then the installed OS coming up,
    // with the failure policy.
    let mut attempt = 0u32;
    // Installed nodes whose OS did not come up: power-cycled on a retry.
    let mut repower: Vec<MacAddr> = Vec::new();
    loop {
        attempt += 1;
        let (mut failed, earlier) = pxe_stage(ctx, selection, file, watch).await?;
        if attempt == 1 {
            // Resuming: nodes installed by an earlier run whose OS has not
            // reported up (it may have tried while racker was down) boot
            // their disk again.
            repower = earlier
                .into_iter()
                .filter(|mac| !reports.is_up(*mac))
                .collect();
        }
        if !ctx.config.os_timeout.is_zero() {
            failed.extend(os_up_stage(ctx, selection, file, watch, &repower).await?);
        }
        if failed.is_empty() {
            break;
        }
        let question = FailedNodes {
            nodes: &failed,
            attempt,
            retries: ctx.config.retries,
            reporter: &ctx.progress,
        };
        match ctx.policy.decide(&question) {
            Decision::Retry if attempt <= ctx.config.retries => {
                let log = ctx.progress.next_attempt(attempt + 1)?;
                ctx.progress.say(&format!(
                    "Retrying {} node(s) (retry {attempt} of {}; log: {})",
                    failed.len(),
                    ctx.config.retries,
                    log.display()
                ));
                repower.clear();
                for mac in &failed {
                    ctx.progress.apply(file, *mac, &NodeEvent::Reset)?;
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
            Decision::Exclude => {
                exclude_nodes(&ctx.progress, file, cluster_dir, &failed)?;
                break;
            }
            _ => {
                guidance(ctx, selection, file, &failed);
                return Ok(Outcome::Failed { nodes: failed });
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
        if !ctx.config.os_timeout.is_zero() {
            format!(", OS up on {}", up.len())
        } else {
            String::new()
        }
    ));
    ctx.progress.say(&format!(
        "To change the cluster later: edit the files in {} and rerun racker, or `racker exclude <MAC> --dir {}`; `racker status` shows every node.",
        cluster_dir.display(),
        cluster_dir.display()
    ));
    Ok(Outcome::Provisioned)
}

/// The failure policy's `exclude`: mark `failed` excluded, take them out
/// of the rendered configuration (`racker exclude` semantics), say so.
pub(crate) fn exclude_nodes(
    progress: &Reporter<'_>,
    file: &mut StateFile,
    cluster_dir: &Path,
    failed: &[MacAddr],
) -> Result<(), Error> {
    for mac in failed {
        progress.apply(file, *mac, &NodeEvent::Exclude)?;
        racker_lokomotive::exclude_in_dir(cluster_dir, *mac, true)
            .map_err(|source| Error::Exclude { mac: *mac, source })?;
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
pub(crate) fn active_nodes<'a>(
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
    racker_ipmi::fan_out(targets, ctx.config.concurrency, move |bmc| async move {
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

/// Persistent EFI disk boot, set from the management side because nothing
/// on the node talks to its BMC (stock Flatcar has no ipmitool;
/// docs/rendering.md, "Commands on the node"). Through the node's BMC over
/// IPMI LAN: the 60 s boot-flag timeout off, then next boot = disk,
/// persistent, EFI; no power action. Called when a node's `installed`
/// report is seen (pxe_stage) and again on its `up` report (os_up_stage),
/// since some BMCs lose the flags. A failure is a warning, never fatal: an
/// installed node that PXE-boots again gets `exit` from racker's iPXE
/// script and goes on to its disk.
async fn set_disk_boot_from_management(ctx: &Ctx<'_>, nodes: &[&SelectedNode], why: &str) {
    let targets: Vec<(MacAddr, racker_ipmi::BmcAddress)> = nodes
        .iter()
        .map(|n| (n.planned.node.primary_mac, bmc_of(ctx, n)))
        .collect();
    let creds = &ctx.credentials;
    let opts = &ctx.session;
    let mut stream = racker_ipmi::fan_out(targets, ctx.config.concurrency, move |bmc| async move {
        let mut s = racker_ipmi::Session::connect(&bmc, creds, opts).await?;
        let result = async {
            s.disable_boot_flag_timeout().await?;
            s.set_boot_device(BootDevice::Disk, true, true).await?;
            Ok::<(), racker_ipmi::Error>(())
        }
        .await;
        let _ = s.close().await;
        result
    });
    while let Some(r) = stream.next().await {
        match r.result {
            Ok(()) => ctx.progress.log(&format!(
                "{} {why}: persistent EFI disk boot set through {}",
                r.key, r.bmc
            )),
            Err(e) => ctx.progress.say(&format!(
                "  warning: {} {why}: setting disk boot through BMC {} failed: {e}",
                r.key, r.bmc
            )),
        }
    }
}

/// A counted stage: its `k/N` progress lines and the nodes that failed.
struct Tally<'p, 'a> {
    progress: &'p Reporter<'a>,
    name: Phase,
    total: usize,
    done: usize,
    failed: Vec<MacAddr>,
}

impl<'p, 'a> Tally<'p, 'a> {
    fn start(progress: &'p Reporter<'a>, name: Phase, total: usize) -> Self {
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
    fn ok(&mut self, mac: MacAddr, line: String) {
        self.done += 1;
        self.progress.step(
            self.name,
            mac,
            (self.done, self.total),
            StepResult::Ok,
            line,
        );
    }

    /// One node failed: its state says why, a × line `<who> <reason>`.
    fn fail(
        &mut self,
        file: &mut StateFile,
        mac: MacAddr,
        who: &str,
        reason: String,
    ) -> Result<(), Error> {
        self.progress
            .apply(file, mac, &NodeEvent::Failed(reason.clone()))?;
        // What the line reports is on disk before it is shown.
        file.flush()?;
        self.done += 1;
        let line = format!("{who} {reason}");
        self.progress.step(
            self.name,
            mac,
            (self.done, self.total),
            StepResult::Failed { reason },
            line,
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
    watch: &Watch<'_>,
) -> Result<(Vec<MacAddr>, Vec<MacAddr>), Error> {
    let reports = watch.reports;
    let active = active_nodes(selection, file, Stage::Planned);
    let mut tally = Tally::start(&ctx.progress, Phase::PxeInstall, active.len());
    let _ = reports.refresh();
    // Nodes whose installer already reported (a previous run crashed after
    // the report) are not reinstalled.
    let mut earlier = Vec::new();
    let mut to_request = Vec::new();
    let mut waiting: BTreeMap<MacAddr, Instant> = BTreeMap::new();
    // When each node's PXE boot was requested (trail events before it
    // belong to an earlier boot).
    let mut since_ms: BTreeMap<MacAddr, u64> = BTreeMap::new();
    for n in &active {
        let mac = n.planned.node.primary_mac;
        let stage = file
            .state
            .nodes
            .get(&mac)
            .map_or(Stage::Planned, |r| r.state.stage());
        if stage >= Stage::Installed || reports.is_installed(mac) {
            ctx.progress
                .apply(file, mac, &NodeEvent::Reached(Stage::Installed))?;
            earlier.push(mac);
            tally.ok(mac, format!("{mac} {} already installed", host(n)));
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
                ctx.progress
                    .apply(file, r.key, &NodeEvent::Reached(Stage::PxeRequested))?;
                ctx.progress
                    .log(&format!("{} PXE boot requested through {}", r.key, r.bmc));
                waiting.insert(r.key, Instant::now());
                since_ms.insert(r.key, unix_ms().saturating_sub(1000));
            }
            Err(e) => {
                let reason = format!("PXE request through BMC {} failed: {e}", r.bmc);
                tally.fail(file, r.key, &r.key.to_string(), reason)?;
            }
        }
    }
    drop(stream);

    // Wait for the installers' reports.
    let timeout = ctx.config.install_timeout;
    let external = watch.external;
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    let mut trail_checked = Instant::now();
    while !waiting.is_empty() {
        file.save_if_due()?;
        tick.tick().await;
        if external {
            // Another process records the reports; the in-process server
            // shares this store, so re-reading is only needed then.
            let _ = reports.refresh();
        }
        // The event trail: a boot the server could not serve (kernel 404,
        // no Ignition) fails the node now, not at the timeout.
        let check_trail = trail_checked.elapsed() >= Duration::from_millis(250);
        if check_trail {
            trail_checked = Instant::now();
        }
        let mut finished = Vec::new();
        let mut installed_now: Vec<MacAddr> = Vec::new();
        // One look at the reports per tick, not one per node.
        let mut seen = reports.snapshot();
        for (mac, since) in &waiting {
            let from_ms = since_ms.get(mac).copied().unwrap_or(0);
            let events = if (check_trail && watch.may_have_failed(*mac, from_ms))
                || since.elapsed() > timeout
            {
                watch.events(ctx, *mac, from_ms)
            } else {
                Vec::new()
            };
            // Ok: installed; Err: failed with this reason; None: not yet.
            let verdict = match seen.remove(mac) {
                Some(r) if r.stage.is_installed() => Some(Ok(())),
                Some(r) if r.stage == ReportStage::Failed => Some(Err(format!(
                    "installer failed: {}",
                    r.reason.unwrap_or_else(|| "no reason given".into())
                ))),
                Some(r) if r.stage == ReportStage::Installing => {
                    if ctx.progress.apply(
                        file,
                        *mac,
                        &NodeEvent::Reached(Stage::InstallerBooted),
                    )? {
                        ctx.progress.log(&format!("{mac} installer booted"));
                    }
                    None
                }
                _ => None,
            }
            .or_else(|| {
                trail::fatal_failure(&events, from_ms).map(|f| {
                    Err(format!(
                        "its boot failed: {} ({})",
                        f.label(),
                        trail::summarize(&events)
                    ))
                })
            })
            .or_else(|| {
                (since.elapsed() > timeout).then(|| {
                    Err(format!(
                        "no installer report within {} ({})",
                        humantime::format_duration(timeout),
                        heard(&events)
                    ))
                })
            });
            let Some(verdict) = verdict else { continue };
            match verdict {
                Ok(()) => installed_now.push(*mac),
                Err(reason) => {
                    let name_of = selection.find_by_mac(*mac).map(host).unwrap_or_default();
                    tally.fail(file, *mac, &format!("{mac} {name_of}"), reason)?;
                }
            }
            finished.push(*mac);
        }
        // Disk boot for every node installed since the last tick, in one
        // fan-out (one node at a time made large racks slow).
        if !installed_now.is_empty() {
            let nodes: Vec<&SelectedNode> = installed_now
                .iter()
                .filter_map(|mac| selection.find_by_mac(*mac))
                .collect();
            set_disk_boot_from_management(ctx, &nodes, "installed").await;
            for mac in &installed_now {
                ctx.progress
                    .apply(file, *mac, &NodeEvent::Reached(Stage::InstallerBooted))?;
                ctx.progress
                    .apply(file, *mac, &NodeEvent::Reached(Stage::Installed))?;
            }
            // One write for the whole batch, before its lines are shown.
            file.flush()?;
            for mac in installed_now.drain(..) {
                let name_of = selection.find_by_mac(mac).map(host).unwrap_or_default();
                tally.ok(mac, format!("{mac} {name_of} installed"));
            }
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
    watch: &Watch<'_>,
    repower: &[MacAddr],
) -> Result<Vec<MacAddr>, Error> {
    let reports = watch.reports;
    let nodes = active_nodes(selection, file, Stage::Installed);
    if nodes.is_empty() {
        return Ok(Vec::new());
    }
    let mut tally = Tally::start(&ctx.progress, Phase::OsUp, nodes.len());
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

    let timeout = ctx.config.os_timeout;
    let external = watch.external;
    let started = Instant::now();
    let started_ms = unix_ms();
    let mut waiting: Vec<&SelectedNode> = nodes
        .into_iter()
        .filter(|n| !tally.failed.contains(&n.planned.node.primary_mac))
        .collect();
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    while !waiting.is_empty() {
        file.save_if_due()?;
        tick.tick().await;
        if external {
            let _ = reports.refresh();
        }
        let timed_out = started.elapsed() > timeout;
        let mut still = Vec::new();
        let mut up_now: Vec<&SelectedNode> = Vec::new();
        // One look at the reports per tick, not one per node.
        let current = reports.current_reports();
        let reported_up = |mac: MacAddr| {
            current
                .get(&mac)
                .is_some_and(|r| r.stage == ReportStage::Up)
        };
        for n in waiting {
            let mac = n.planned.node.primary_mac;
            let up = file
                .state
                .nodes
                .get(&mac)
                .is_some_and(|r| r.state.stage() >= Stage::OsUp)
                || reported_up(mac);
            if up {
                up_now.push(n);
            } else if timed_out {
                let reason = format!(
                    "installed, but its OS did not report up within {} ({}; check its console: racker ipmi {mac} sol)",
                    humantime::format_duration(timeout),
                    heard(&watch.events(ctx, mac, started_ms))
                );
                tally.fail(file, mac, &format!("{mac} {}", host(n)), reason)?;
            } else {
                still.push(n);
            }
        }
        // Disk boot again for every node up since the last tick, in one
        // fan-out (some BMCs lose the flags on the way).
        let reported: Vec<&SelectedNode> = up_now
            .iter()
            .copied()
            .filter(|n| reported_up(n.planned.node.primary_mac))
            .collect();
        if !reported.is_empty() {
            set_disk_boot_from_management(ctx, &reported, "up").await;
        }
        for n in &up_now {
            ctx.progress.apply(
                file,
                n.planned.node.primary_mac,
                &NodeEvent::Reached(Stage::OsUp),
            )?;
        }
        file.flush()?;
        for n in up_now {
            let mac = n.planned.node.primary_mac;
            tally.ok(mac, format!("{mac} {} OS up", host(n)));
        }
        waiting = still;
    }
    Ok(tally.finish())
}

/// The configured kubeconfig, or where lokoctl writes it below the asset
/// directory.
fn kubeconfig_path(ctx: &Ctx<'_>) -> PathBuf {
    if let Some(k) = &ctx.config.kubeconfig {
        return k.clone();
    }
    let assets = PathBuf::from(&ctx.config.render.asset_dir);
    let path = assets.join(crate::kube::KUBECONFIG_IN_ASSETS);
    std::path::absolute(&path).unwrap_or(path)
}

fn host(n: &SelectedNode) -> String {
    n.hostname.clone().unwrap_or_default()
}

/// Where a bootstrap learns what the nodes did: the install reports and
/// the netboot server's event trail (in this process, or on disk when
/// another process serves).
struct Watch<'a> {
    reports: &'a ReportStore,
    trail: Option<&'a EventTrail>,
    external: bool,
}

impl Watch<'_> {
    /// Whether `mac`'s trail may hold a failed request since `since_ms`
    /// (in this process: a look without copying; else always).
    fn may_have_failed(&self, mac: MacAddr, since_ms: u64) -> bool {
        self.trail.is_none_or(|t| t.failed_since(mac, since_ms))
    }

    /// `mac`'s trail events at or after `since_ms`.
    fn events(&self, ctx: &Ctx<'_>, mac: MacAddr, since_ms: u64) -> Vec<trail::TrailEvent> {
        let all = match self.trail {
            Some(t) => t.events(mac),
            None => trail::load(&ctx.config.state_dir, mac),
        };
        all.into_iter().filter(|e| e.unix_ms >= since_ms).collect()
    }
}

/// What the netboot server heard from a node, for a timeout's reason.
fn heard(events: &[trail::TrailEvent]) -> String {
    if events.is_empty() {
        "the netboot server heard nothing from it: no DHCP request".to_owned()
    } else {
        trail::summarize(events)
    }
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A fresh generation id: `<unix seconds>-<pid>-<nanoseconds>`.
fn new_generation() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format!(
        "{}-{}-{:09}",
        now.as_secs(),
        std::process::id(),
        now.subsec_nanos()
    )
}

/// Stop before any node is powered when a boot file its nodes will request
/// is missing (docs/bootstrap.md, "Preflight").
fn preflight(
    ctx: &Ctx<'_>,
    selection: &Selection,
    file: &StateFile,
    running_service: bool,
) -> Result<(), Error> {
    let to_install: Vec<MacAddr> = selection
        .active()
        .iter()
        .map(|n| n.planned.node.primary_mac)
        .filter(|mac| {
            file.state
                .nodes
                .get(mac)
                .is_none_or(|r| r.state.stage() < Stage::Installed)
        })
        .collect();
    if to_install.is_empty() {
        return Ok(());
    }
    let (assets, boot_files) = match &ctx.config.netboot {
        NetbootMode::Serve(e) if !running_service => (
            ctx.config.state_dir.join("assets"),
            (!e.content.without_tftp).then_some(e.content.boot_files.as_deref()),
        ),
        _ => (ctx.config.state_dir.join("assets"), None),
    };
    let ignition = network::ClusterIgnition {
        cluster_dir: ctx.config.cluster_dir.clone(),
    };
    let missing = racker_netboot::service::preflight(&assets, boot_files, &ignition, &to_install);
    if missing.is_empty() {
        ctx.progress.say(&format!(
            "✓ Preflight: kernel, initrd, image and signature{}, Ignition of {} node(s)",
            if boot_files.is_some() {
                ", iPXE binaries"
            } else {
                ""
            },
            to_install.len()
        ));
        return Ok(());
    }
    Err(Error::Preflight {
        missing: missing.iter().map(ToString::to_string).collect(),
    })
}

/// Install `nodes` (primary MACs) again (`racker reprovision`): their
/// install reports and trails are cleared, their state goes back to
/// `planned`, and the recorded bootstrap resumes — the same stages and
/// failure policy — so they are PXE-installed while every other node is
/// left as it is. Needs a recorded bootstrap with the same cluster
/// directory (`config.cluster_dir`).
pub async fn reprovision(
    config: &Config,
    nodes: &[MacAddr],
    events: &dyn EventSink,
    policy: &dyn FailurePolicy,
) -> Result<Report, Error> {
    let state_dir = &config.state_dir;
    let Some(previous) = StateFile::load(state_dir)? else {
        return Err(Error::Reprovision(format!(
            "no bootstrap is recorded in {}: run `racker bootstrap` first",
            StateFile::path(state_dir).display()
        )));
    };
    if previous.cluster_dir != config.cluster_dir {
        return Err(Error::Reprovision(format!(
            "the recorded bootstrap used the cluster directory {}, not {}",
            previous.cluster_dir.display(),
            config.cluster_dir.display()
        )));
    }
    let reports = ReportStore::open(state_dir)?;
    let mut file = StateFile::new(state_dir, previous)?;
    for mac in nodes {
        match file.state.nodes.get(mac).map(|r| &r.state) {
            None => {
                return Err(Error::Reprovision(format!(
                    "{mac} is not a node of the recorded bootstrap"
                )));
            }
            Some(NodeState::Excluded { .. }) => {
                return Err(Error::Reprovision(format!(
                    "{mac} is excluded from the cluster"
                )));
            }
            Some(_) => {}
        }
    }
    for mac in nodes {
        file.apply(*mac, &NodeEvent::Reprovision)?;
        reports.clear(*mac)?;
        trail::clear(state_dir, *mac);
    }
    drop(file);
    bootstrap(config, events, policy).await
}
