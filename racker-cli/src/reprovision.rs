//! `racker reprovision NODE...`: install nodes of a provisioned rack again
//! (docs/bootstrap.md, "Re-provisioning"). The nodes' install reports are
//! cleared and the recorded bootstrap resumes with the same stages and
//! `--on-failure` policy, so exactly these nodes are PXE-installed.

use std::process::ExitCode;

use anyhow::Context as _;
use racker_inventory::MacAddr;

use crate::bootstrap::{BootstrapCmd, Policy};
use crate::globals::Globals;

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
        println!(
            "Reprovisioning {} node(s): {}",
            macs.len(),
            macs.iter()
                .map(MacAddr::to_string)
                .collect::<Vec<_>>()
                .join(" ")
        );
        let report = racker_bootstrap::reprovision(
            &config,
            &macs,
            &progress,
            &Policy(cmd.bootstrap.on_failure),
        )
        .await?;
        crate::bootstrap::handover(globals, &cmd.bootstrap, &config);
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
