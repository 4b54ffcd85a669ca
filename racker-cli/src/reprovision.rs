//! `racker reprovision NODE...`: install nodes of a provisioned rack again
//! (docs/bootstrap.md, "Re-provisioning"). The nodes' install reports are
//! cleared and the recorded bootstrap resumes with the same stages and
//! `--on-failure` policy, so exactly these nodes are PXE-installed.

use std::process::ExitCode;

use anyhow::Context as _;
use racker_inventory::MacAddr;

use crate::bootstrap::progress::coloured_marks;
use crate::bootstrap::{BootstrapCmd, Policy};
use crate::globals::Globals;
use racker_bootstrap::ReprovisionView;

/// How the reprovision ended, on stdout: a table of the reprovisioned
/// nodes and one line, or the `reprovision` document.
fn print_summary(
    format: crate::output::Format,
    report: &racker_bootstrap::Report,
    requested: &[MacAddr],
    elapsed: std::time::Duration,
) -> anyhow::Result<()> {
    let doc = ReprovisionView::new(report, requested, elapsed);
    crate::output::emit(format, "reprovision", &doc, |wide| {
        crate::bootstrap::progress::print_node_table(&doc.nodes, wide);
        crate::output::line(coloured_marks(&doc.closing_line()));
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
    let state = racker_bootstrap::recorded_flatcar_bootstrap(&globals.state_dir)?;
    // The recorded bootstrap's cluster directory.
    if cmd.bootstrap.cluster_dir.is_none() {
        cmd.bootstrap.cluster_dir = Some(state.cluster_dir.clone());
    }
    let inventory = racker_inventory::Inventory::load(&globals.nodes_csv())?;
    let macs = racker_bootstrap::resolve_nodes(&cmd.nodes, &state, &inventory)?;
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
        crate::bootstrap::handover(&cmd.bootstrap, &config);
        print_summary(globals.output, &report, &macs, started.elapsed())?;
        anyhow::Ok(if report.succeeded() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        })
    })
}
