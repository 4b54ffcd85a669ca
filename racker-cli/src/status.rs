//! `racker status`: what was provisioned and the state of every node
//! (SPEC section 9).

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use futures::StreamExt as _;
use racker_inventory::MacAddr;
use racker_ipmi::{Operation, Output, SessionOptions};
use serde::Serialize;

use crate::bootstrap::state::{NodeState, Stage, StateFile};
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

#[derive(Debug, Serialize)]
struct StatusJson {
    provisioned: String,
    kubernetes_api: Option<bool>,
    nodes: Vec<NodeStatus>,
}

#[derive(Debug, Serialize)]
struct NodeStatus {
    primary_mac: MacAddr,
    bmc_mac: MacAddr,
    ip: String,
    bmc_address: String,
    hostname: Option<String>,
    bmc_reached: bool,
    bmc_error: Option<String>,
    power: Option<String>,
    state: String,
    os_provisioned: bool,
    /// The installed OS reported up (racker-report-up.service).
    os_up: bool,
    joined: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    diag: Option<serde_json::Value>,
}

pub(crate) fn run(globals: &Globals, args: StatusCmd) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(run_async(globals, &args))
}

async fn run_async(globals: &Globals, args: &StatusCmd) -> anyhow::Result<ExitCode> {
    let status = collect(
        globals,
        &args.plan,
        args.full,
        args.ipmi_port,
        args.ipmi_timeout,
        args.concurrency,
        true,
    )
    .await?;
    match args.output {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&status)?),
        OutputFormat::Text => print_text(&status, args.full),
    }
    Ok(ExitCode::SUCCESS)
}

/// Print the status table (used by `racker demo` too).
pub(crate) async fn print_status(
    globals: &Globals,
    plan: &PlanArgs,
    ipmi_port: u16,
) -> anyhow::Result<()> {
    // The demo's nodes are simulated: their planned addresses are not on
    // this machine, so no probe of the API port goes there.
    let status = collect(
        globals,
        plan,
        false,
        ipmi_port,
        Duration::from_secs(3),
        64,
        false,
    )
    .await?;
    print_text(&status, false);
    Ok(())
}

async fn collect(
    globals: &Globals,
    plan: &PlanArgs,
    full: bool,
    ipmi_port: u16,
    ipmi_timeout: Duration,
    concurrency: usize,
    probe_api_port: bool,
) -> anyhow::Result<StatusJson> {
    let rack = context::load_rack(globals, plan)?;
    let credentials = context::load_credentials(globals)?;
    let creds =
        racker_ipmi::Credentials::new(credentials.user.clone(), credentials.password.expose());
    let state = StateFile::load(&globals.state_dir)?;
    let reports = racker_netboot::report::ReportStore::open(&globals.state_dir).ok();
    let opts = SessionOptions::default().timeout(ipmi_timeout);
    let bmcs = context::BmcResolver::load(globals)?;
    let op = if full {
        Operation::Diag
    } else {
        Operation::ChassisStatus
    };
    let targets: Vec<(MacAddr, racker_ipmi::BmcAddress)> = rack
        .plan
        .nodes()
        .iter()
        .map(|p| (p.node.primary_mac, bmcs.address(p, ipmi_port)))
        .collect();
    let mut results: BTreeMap<MacAddr, (String, Result<Output, String>)> = BTreeMap::new();
    let mut stream = racker_ipmi::fan_out_operation(targets, &creds, &opts, &op, concurrency);
    while let Some(r) = stream.next().await {
        results.insert(
            r.key,
            (r.bmc.to_string(), r.result.map_err(|e| e.to_string())),
        );
    }
    drop(stream);

    let mut nodes = Vec::new();
    for p in rack.plan.nodes() {
        let mac = p.node.primary_mac;
        let record = state.as_ref().and_then(|s| s.nodes.get(&mac));
        let reported = reports.as_ref().is_some_and(|r| r.is_installed(mac));
        let reported_up = reports.as_ref().is_some_and(|r| r.is_up(mac));
        let (bmc_address, result) = results
            .remove(&mac)
            .unwrap_or_else(|| (String::new(), Err("not queried".to_owned())));
        let (power, diag) = match &result {
            Ok(Output::ChassisStatus(c)) => (Some(on_off(c.power_on)), None),
            Ok(Output::Diag(d)) => (
                Some(on_off(d.chassis.power_on)),
                serde_json::to_value(d).ok(),
            ),
            _ => (None, None),
        };
        let stage = record.map(|r| r.state.stage());
        nodes.push(NodeStatus {
            primary_mac: mac,
            bmc_mac: p.node.bmc_mac,
            ip: p.ip.to_string(),
            bmc_address,
            hostname: record.map(|r| r.hostname.clone()).filter(|h| !h.is_empty()),
            bmc_reached: result.is_ok(),
            bmc_error: result.as_ref().err().cloned(),
            power,
            state: record.map_or_else(|| "planned".to_owned(), |r| r.state.label()),
            os_provisioned: reported
                || (stage >= Some(Stage::Installed)
                    && matches!(record.map(|r| &r.state), Some(NodeState::Active { .. }))),
            os_up: reported_up || stage >= Some(Stage::OsUp),
            joined: stage == Some(Stage::Joined),
            diag,
        });
    }
    let provisioned = state
        .as_ref()
        .map_or_else(|| "nothing".to_owned(), |s| s.provision.clone());
    let kubeconfig = state.as_ref().and_then(|s| s.kubeconfig.clone());
    let kubernetes_api = match (provisioned.as_str(), &kubeconfig) {
        // Ask the API itself with the cluster's kubeconfig: reachable, and
        // which nodes are Ready members.
        ("lokomotive", Some(path)) if path.exists() => match kube_nodes(path).await {
            Ok(seen) => {
                for n in &mut nodes {
                    let host = n.hostname.clone().unwrap_or_default();
                    let ip = n.ip.parse().unwrap_or(std::net::Ipv4Addr::UNSPECIFIED);
                    n.joined = seen.iter().any(|k| k.ready && k.is(&host, ip));
                }
                Some(true)
            }
            Err(e) => {
                tracing::debug!("Kubernetes API: {e}");
                Some(false)
            }
        },
        // No kubeconfig (yet): is anything listening on the API port?
        ("lokomotive", _) if probe_api_port => Some(kube_api_answers(&rack).await),
        _ => None,
    };
    Ok(StatusJson {
        provisioned,
        kubernetes_api,
        nodes,
    })
}

/// The API's node list, with the kubeconfig at `path`.
async fn kube_nodes(
    path: &std::path::Path,
) -> Result<Vec<crate::kube::KubeNode>, crate::kube::KubeError> {
    crate::kube::Client::from_file(path, std::time::Duration::from_secs(3))?
        .nodes()
        .await
}

fn on_off(on: bool) -> String {
    if on { "on" } else { "off" }.to_owned()
}

/// True when any node accepts TCP connections on the API port (6443).
/// Every node is tried at once under one 2-second deadline, so a rack of
/// unreachable nodes costs 2 s, not 2 s per node.
async fn kube_api_answers(rack: &context::Rack) -> bool {
    use futures::stream::{FuturesUnordered, StreamExt as _};
    let mut attempts: FuturesUnordered<_> = rack
        .plan
        .nodes()
        .iter()
        .map(|p| tokio::net::TcpStream::connect(std::net::SocketAddr::from((p.ip, 6443))))
        .collect();
    let any = async {
        while let Some(r) = attempts.next().await {
            if r.is_ok() {
                return true;
            }
        }
        false
    };
    tokio::time::timeout(Duration::from_secs(2), any)
        .await
        .unwrap_or(false)
}

fn print_text(status: &StatusJson, full: bool) {
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
        if full && let Some(d) = &n.diag {
            println!("  {} diag: {d}", n.primary_mac);
        }
    }
}
