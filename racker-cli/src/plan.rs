//! `racker plan`: the address plan and roles, without touching the network.

use std::process::ExitCode;

use std::net::Ipv4Addr;

use racker_inventory::{MacAddr, Selection};
use serde::Serialize;

use crate::context::{PlanArgs, Rack, SelectionArgs, load_selection};
use crate::globals::Globals;

/// Arguments of `racker plan`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  racker plan
  racker plan --provision lokomotive --num-controllers 3 --controller-type red
  racker plan --exclude \"00:11:22:33:44:10 00:11:22:33:44:21\" -o json
  racker plan --subnet-prefix 10.20.0 --prefix-length 22")]
pub(crate) struct PlanCmd {
    #[command(flatten)]
    plan: PlanArgs,
    #[command(flatten)]
    selection: SelectionArgs,
}

/// `racker plan -o json` (kind `plan`, docs/output.md).
#[derive(Serialize)]
struct PlanJson {
    management: ManagementJson,
    pxe_interface: String,
    subnet: String,
    dynamic_range: RangeJson,
    nodes: Vec<NodeJson>,
}

#[derive(Serialize)]
struct ManagementJson {
    mac: MacAddr,
    bmc_mac: MacAddr,
    secondary_mac: MacAddr,
    ip: Ipv4Addr,
}

#[derive(Serialize)]
struct RangeJson {
    first: Ipv4Addr,
    last: Ipv4Addr,
}

#[derive(Serialize)]
struct NodeJson {
    node: String,
    mac: MacAddr,
    bmc_mac: MacAddr,
    secondary_mac: Option<MacAddr>,
    node_type: String,
    ip: Ipv4Addr,
    bmc_ip: Ipv4Addr,
    role: Option<String>,
    hostname: Option<String>,
    storage: bool,
    excluded: bool,
}

fn to_json(rack: &Rack, selection: &Selection) -> PlanJson {
    let m = &rack.management;
    let (first, last) = rack.plan.dynamic_range();
    PlanJson {
        management: ManagementJson {
            mac: m.node.primary_mac,
            bmc_mac: m.node.bmc_mac,
            secondary_mac: m.secondary_mac,
            ip: rack.plan.management_ip(),
        },
        pxe_interface: m.pxe_interface.clone(),
        subnet: rack.plan.subnet().to_string(),
        dynamic_range: RangeJson { first, last },
        nodes: selection
            .nodes()
            .iter()
            .map(|n| NodeJson {
                node: crate::output::node_name(n.hostname.as_deref(), n.planned.node.primary_mac),
                mac: n.planned.node.primary_mac,
                bmc_mac: n.planned.node.bmc_mac,
                secondary_mac: n.planned.node.secondary_mac,
                node_type: n.planned.node.node_type.clone(),
                ip: n.planned.ip,
                bmc_ip: n.planned.bmc_ip,
                role: n.role.map(|r| r.to_string()),
                hostname: n.hostname.clone(),
                storage: n.storage,
                excluded: n.excluded,
            })
            .collect(),
    }
}

pub(crate) fn run(globals: &Globals, args: PlanCmd) -> anyhow::Result<ExitCode> {
    let (rack, selection) = load_selection(globals, &args.plan, &args.selection)?;
    let json = to_json(&rack, &selection);
    crate::output::emit(globals.output, "plan", &json, |wide| {
        print_text(&rack, &json, wide);
        Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// The text and wide forms are the same: the table already has every column.
fn print_text(rack: &Rack, json: &PlanJson, _wide: bool) {
    let m = &json.management;
    println!(
        "Management node: primary {} BMC {} secondary {} (line {})",
        m.mac, m.bmc_mac, m.secondary_mac, rack.management.node.line
    );
    println!(
        "PXE interface:   {} ({}/{}, internal subnet {})",
        json.pxe_interface,
        rack.plan.management_ip(),
        rack.plan.subnet().prefix_len(),
        json.subnet
    );
    let r = &json.dynamic_range;
    println!("Dynamic range:   {} - {}", r.first, r.last);
    println!();
    let header = [
        "PRIMARY MAC",
        "BMC MAC",
        "SECONDARY MAC",
        "TYPE",
        "IP",
        "BMC IP",
        "ROLE",
        "HOSTNAME",
        "STORAGE",
        "EXCLUDED",
    ];
    let rows: Vec<[String; 10]> = json
        .nodes
        .iter()
        .map(|n| {
            [
                n.mac.to_string(),
                n.bmc_mac.to_string(),
                n.secondary_mac
                    .map_or_else(|| "-".to_owned(), |m| m.to_string()),
                if n.node_type.is_empty() {
                    "-".to_owned()
                } else {
                    n.node_type.clone()
                },
                n.ip.to_string(),
                n.bmc_ip.to_string(),
                n.role.clone().unwrap_or_else(|| "-".to_owned()),
                n.hostname.clone().unwrap_or_else(|| "-".to_owned()),
                yes_no(n.storage),
                yes_no(n.excluded),
            ]
        })
        .collect();
    crate::table::print(header, &rows);
}

fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.to_owned()
}
