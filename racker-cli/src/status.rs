//! `racker status`: what was provisioned and the state of every node
//! (collected by racker-bootstrap, printed here).

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use racker_bootstrap::{StatusOptions, StatusReport, collect_status};

use crate::context::{self, PlanArgs};
use crate::globals::Globals;
use crate::plan::OutputFormat;

/// Arguments of `racker status`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  racker status
  racker status --full
  racker status --output json")]
pub(crate) struct StatusCmd {
    #[command(flatten)]
    plan: PlanArgs,
    /// Add every node's diagnostics (device, chassis status, boot flags).
    #[arg(long)]
    full: bool,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    output: OutputFormat,
    /// IPMI UDP port of the BMCs.
    #[arg(long, default_value_t = racker_ipmi::DEFAULT_PORT)]
    ipmi_port: u16,
    /// IPMI: seconds per exchange.
    #[arg(long, default_value = "3", value_parser = crate::ipmi::parse_seconds)]
    ipmi_timeout: Duration,
    /// BMCs queried in parallel.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
}

pub(crate) fn run(globals: &Globals, args: StatusCmd) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(run_async(globals, &args))
}

async fn run_async(globals: &Globals, args: &StatusCmd) -> anyhow::Result<ExitCode> {
    let mut options = StatusOptions::default();
    options.full = args.full;
    options.ipmi_port = args.ipmi_port;
    options.ipmi_timeout = args.ipmi_timeout;
    options.concurrency = args.concurrency;
    let bmcs = context::BmcResolver::load(globals)?;
    let status = collect(globals, &args.plan, &bmcs, &options).await?;
    match args.output {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&status)?),
        OutputFormat::Text => print_text(&status, args.full),
    }
    Ok(ExitCode::SUCCESS)
}

/// Print the status table (used by `racker demo` too, whose simulated
/// BMCs answer at `bmcs`).
pub(crate) async fn print_status(
    globals: &Globals,
    plan: &PlanArgs,
    ipmi_port: u16,
    bmcs: std::collections::BTreeMap<racker_inventory::MacAddr, std::net::SocketAddr>,
) -> anyhow::Result<()> {
    let mut options = StatusOptions::default();
    options.ipmi_port = ipmi_port;
    // The demo's nodes are simulated: their planned addresses are not on
    // this machine, so no probe of the API port goes there.
    options.probe_api_port = false;
    let bmcs = context::BmcResolver::with_overrides(globals, bmcs)?;
    let status = collect(globals, plan, &bmcs, &options).await?;
    print_text(&status, false);
    Ok(())
}

async fn collect(
    globals: &Globals,
    plan: &PlanArgs,
    bmcs: &context::BmcResolver,
    options: &StatusOptions,
) -> anyhow::Result<StatusReport> {
    let rack = context::load_rack(globals, plan)?;
    let credentials = context::load_credentials(globals)?;
    let creds =
        racker_ipmi::Credentials::new(credentials.user.clone(), credentials.password.expose());
    // Lease/plan disagreements are warned about once per node.
    for p in rack.plan.nodes() {
        bmcs.resolve(p, options.ipmi_port);
    }
    Ok(collect_status(&rack, &creds, &globals.state_dir, bmcs.inner(), options).await?)
}

fn print_text(status: &StatusReport, full: bool) {
    println!("Provisioned: {}", status.provisioned);
    if let Some(api) = status.kubernetes_api {
        println!(
            "Kubernetes API: {}",
            if api { "answers" } else { "does not answer" }
        );
    }
    println!();
    let header = [
        "PRIMARY MAC",
        "IP",
        "HOSTNAME",
        "BMC",
        "POWER",
        "OS",
        "JOINED",
        "STATE",
    ];
    let rows: Vec<[String; 8]> = status
        .nodes
        .iter()
        .map(|n| {
            [
                n.primary_mac.to_string(),
                n.ip.clone(),
                n.hostname.clone().unwrap_or_else(|| "-".into()),
                if n.bmc_reached {
                    "reached".into()
                } else {
                    "unreachable".into()
                },
                n.power.clone().unwrap_or_else(|| "?".into()),
                match (n.os_up, n.os_provisioned) {
                    (true, _) => "up".into(),
                    (false, true) => "installed".into(),
                    (false, false) => "-".into(),
                },
                match (status.provisioned.as_str(), n.joined) {
                    ("lokomotive", true) => "yes".into(),
                    ("lokomotive", false) => "no".into(),
                    _ => "-".into(),
                },
                n.state.clone(),
            ]
        })
        .collect();
    crate::table::print(header, &rows);
    for n in &status.nodes {
        if let Some(e) = &n.bmc_error {
            println!(
                "  {} BMC {} ({}): {e}",
                n.primary_mac, n.bmc_mac, n.bmc_address
            );
        }
        if full && let Some(e) = &n.last_event {
            println!("  {} last netboot event: {e}", n.primary_mac);
        }
        if full && let Some(d) = &n.diag {
            println!("  {} diag: {d}", n.primary_mac);
        }
    }
}
