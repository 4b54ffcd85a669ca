//! `racker reprovision NODE...`: install nodes of a provisioned rack again
//! (docs/bootstrap.md, "Re-provisioning"). The nodes' install reports are
//! cleared and the recorded bootstrap resumes with the same stages and
//! `--on-failure` policy, so exactly these nodes are PXE-installed.

use std::process::ExitCode;

use anyhow::Context as _;
use racker_inventory::MacAddr;

use crate::bootstrap::{BootstrapCmd, Policy};
use crate::globals::Globals;
use crate::output::{fail_mark, ok_mark};

/// `racker reprovision -o json` (kind `reprovision`, docs/output.md): the
/// bootstrap summary's keys, `nodes` limited to the reprovisioned nodes.
#[derive(Debug, serde::Serialize)]
struct ReprovisionJson {
    provision: String,
    ok: bool,
    outcome: &'static str,
    /// The nodes asked for, in the order given (primary MACs).
    requested: Vec<MacAddr>,
    failed_nodes: Vec<MacAddr>,
    cluster_dir: std::path::PathBuf,
    log: std::path::PathBuf,
    elapsed_ms: u128,
    nodes: Vec<racker_bootstrap::SummaryNode>,
}

impl ReprovisionJson {
    fn new(
        report: &racker_bootstrap::Report,
        requested: &[MacAddr],
        elapsed: std::time::Duration,
    ) -> Self {
        let s = report.summary();
        Self {
            provision: s.provision,
            ok: s.ok,
            outcome: s.outcome,
            requested: requested.to_vec(),
            failed_nodes: s.failed_nodes,
            cluster_dir: s.cluster_dir,
            log: s.log,
            elapsed_ms: elapsed.as_millis(),
            nodes: s
                .nodes
                .into_iter()
                .filter(|n| requested.contains(&n.mac))
                .collect(),
        }
    }
}

/// How the reprovision ended, on stdout: a table of the reprovisioned
/// nodes and one line, or the `reprovision` document.
fn print_summary(
    format: crate::output::Format,
    report: &racker_bootstrap::Report,
    requested: &[MacAddr],
    elapsed: std::time::Duration,
) -> anyhow::Result<()> {
    let doc = ReprovisionJson::new(report, requested, elapsed);
    crate::output::emit(format, "reprovision", &doc, |wide| {
        crate::bootstrap::progress::print_node_table(&doc.nodes, wide);
        let took = crate::bootstrap::progress::tenths(elapsed);
        crate::output::line(if doc.ok {
            ok_mark(&format!(
                "{} node(s) reprovisioned in {took}",
                doc.requested.len()
            ))
        } else {
            fail_mark(&format!(
                "reprovision failed after {took} (log: {})",
                doc.log.display()
            ))
        });
        Ok(())
    })
}

/// Arguments of `racker reprovision`.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "Examples:
  racker reprovision node-1
  racker reprovision 00:11:22:33:44:20 node-3 --on-failure retry

Nodes are named by host name (as `racker status` shows them) or by their
primary, BMC or secondary MAC. The other options are `racker bootstrap`'s.")]
pub(crate) struct ReprovisionCmd {
    /// The nodes to install again.
    #[arg(required = true, value_name = "NODE")]
    nodes: Vec<String>,
    #[command(flatten)]
    bootstrap: BootstrapCmd,
}

pub(crate) fn run(globals: &Globals, mut cmd: ReprovisionCmd) -> anyhow::Result<ExitCode> {
    let state = racker_bootstrap::StateFile::load(&globals.state_dir)?.with_context(|| {
        format!(
            "no bootstrap is recorded in {}: run `racker bootstrap` first",
            racker_bootstrap::StateFile::path(&globals.state_dir).display()
        )
    })?;
    if state.provision != "flatcar" {
        anyhow::bail!(
            "racker reprovision installs Flatcar nodes; this rack was provisioned with {} (reinstall through lokoctl)",
            state.provision
        );
    }
    // The recorded bootstrap's cluster directory.
    if cmd.bootstrap.cluster_dir.is_none() {
        cmd.bootstrap.cluster_dir = Some(state.cluster_dir.clone());
    }
    let inventory = racker_inventory::Inventory::load(&globals.nodes_csv())?;
    let macs = resolve(&cmd.nodes, &state, &inventory)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let simulated = crate::context::running_simulator_bmcs(&globals.state_dir);
    rt.block_on(async {
        let config = crate::bootstrap::config(globals, &cmd.bootstrap, simulated)?;
        let progress = crate::bootstrap::progress_sink();
        // Progress on stderr; stdout carries only the summary (docs/output.md).
        eprintln!(
            "Reprovisioning {} node(s): {}",
            macs.len(),
            macs.iter()
                .map(MacAddr::to_string)
                .collect::<Vec<_>>()
                .join(" ")
        );
        let started = std::time::Instant::now();
        let report = racker_bootstrap::reprovision(
            &config,
            &macs,
            &progress,
            &Policy(cmd.bootstrap.on_failure),
        )
        .await?;
        crate::bootstrap::handover(globals, &cmd.bootstrap, &config);
        print_summary(globals.output, &report, &macs, started.elapsed())?;
        anyhow::Ok(if report.succeeded() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        })
    })
}

/// Host names or MACs (primary, BMC, secondary) → primary MACs of the
/// recorded bootstrap's nodes.
fn resolve(
    names: &[String],
    state: &racker_bootstrap::BootstrapState,
    inventory: &racker_inventory::Inventory,
) -> anyhow::Result<Vec<MacAddr>> {
    let mut out = Vec::new();
    for name in names {
        let by_mac = name.parse::<MacAddr>().ok().and_then(|mac| {
            inventory
                .nodes()
                .iter()
                .find(|n| n.primary_mac == mac || n.bmc_mac == mac || n.secondary_mac == Some(mac))
                .map(|n| n.primary_mac)
        });
        let by_name = state
            .nodes
            .iter()
            .find(|(_, r)| {
                !r.hostname.is_empty()
                    && (r.hostname == *name || r.hostname.split('.').next() == Some(name.as_str()))
            })
            .map(|(mac, _)| *mac);
        match by_mac.or(by_name) {
            Some(mac) if !out.contains(&mac) => out.push(mac),
            Some(_) => {}
            None => anyhow::bail!(
                "{name} is neither a host name of the recorded bootstrap nor a MAC in nodes.csv"
            ),
        }
    }
    Ok(out)
}
