//! The address plan and roles as data (`racker plan`, docs/output.md kind
//! `plan`): [`PlanView`] is the JSON document, and its text form as lines
//! and table rows (the caller lays out and colours the table).

use std::net::Ipv4Addr;

use racker_inventory::{MacAddr, Selection};
use serde::Serialize;

use crate::Rack;

/// The plan of a rack and its selection (`racker plan -o json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct PlanView {
    /// The management node.
    pub management: ManagementView,
    /// The management node's interface on the rack-internal network.
    pub pxe_interface: String,
    /// The rack-internal subnet (`a.b.c.d/len`).
    pub subnet: String,
    /// The DHCP range for unknown machines.
    pub dynamic_range: RangeView,
    /// Every node of the selection, in plan order.
    pub nodes: Vec<PlanNode>,
    /// nodes.csv line of the management node (text form only).
    #[serde(skip)]
    pub management_line: u64,
    /// Prefix length of the subnet (text form only).
    #[serde(skip)]
    pub prefix_len: u8,
}

/// The management node in a [`PlanView`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ManagementView {
    /// Primary MAC.
    pub mac: MacAddr,
    /// BMC MAC.
    pub bmc_mac: MacAddr,
    /// Secondary MAC (on the rack-internal network).
    pub secondary_mac: MacAddr,
    /// Its rack-internal address.
    pub ip: Ipv4Addr,
}

/// An address range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct RangeView {
    /// First address.
    pub first: Ipv4Addr,
    /// Last address.
    pub last: Ipv4Addr,
}

/// One node in a [`PlanView`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct PlanNode {
    /// Its host name, else its primary MAC.
    pub node: String,
    /// Primary MAC.
    pub mac: MacAddr,
    /// BMC MAC.
    pub bmc_mac: MacAddr,
    /// Secondary MAC.
    pub secondary_mac: Option<MacAddr>,
    /// Node type (empty when not given).
    pub node_type: String,
    /// Internal address.
    pub ip: Ipv4Addr,
    /// BMC's internal address.
    pub bmc_ip: Ipv4Addr,
    /// Lokomotive role.
    pub role: Option<String>,
    /// Host name.
    pub hostname: Option<String>,
    /// A storage node.
    pub storage: bool,
    /// Left out of the cluster.
    pub excluded: bool,
}

/// The header of [`PlanView::rows`].
pub const PLAN_TABLE_HEADER: [&str; 10] = [
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

impl PlanView {
    /// The view of `rack` with `selection` (made from `rack.plan`).
    pub fn new(rack: &Rack, selection: &Selection) -> Self {
        let m = &rack.management;
        let (first, last) = rack.plan.dynamic_range();
        Self {
            management: ManagementView {
                mac: m.node.primary_mac,
                bmc_mac: m.node.bmc_mac,
                secondary_mac: m.secondary_mac,
                ip: rack.plan.management_ip(),
            },
            pxe_interface: m.pxe_interface.clone(),
            subnet: rack.plan.subnet().to_string(),
            dynamic_range: RangeView { first, last },
            nodes: selection
                .nodes()
                .iter()
                .map(|n| PlanNode {
                    node: match n.hostname.as_deref() {
                        Some(h) if !h.is_empty() => h.to_owned(),
                        _ => n.planned.node.primary_mac.to_string(),
                    },
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
            management_line: m.node.line,
            prefix_len: rack.plan.subnet().prefix_len(),
        }
    }

    /// The lines above the table (the last one empty).
    pub fn head_lines(&self) -> Vec<String> {
        let m = &self.management;
        let r = &self.dynamic_range;
        vec![
            format!(
                "Management node: primary {} BMC {} secondary {} (line {})",
                m.mac, m.bmc_mac, m.secondary_mac, self.management_line
            ),
            format!(
                "PXE interface:   {} ({}/{}, internal subnet {})",
                self.pxe_interface, m.ip, self.prefix_len, self.subnet
            ),
            format!("Dynamic range:   {} - {}", r.first, r.last),
            String::new(),
        ]
    }

    /// The table's rows (columns of [`PLAN_TABLE_HEADER`]; `-` for none).
    pub fn rows(&self) -> Vec<Vec<String>> {
        let dash = |s: Option<String>| s.unwrap_or_else(|| "-".to_owned());
        let yes_no = |b: bool| if b { "yes" } else { "no" }.to_owned();
        self.nodes
            .iter()
            .map(|n| {
                vec![
                    n.mac.to_string(),
                    n.bmc_mac.to_string(),
                    dash(n.secondary_mac.map(|m| m.to_string())),
                    dash(Some(n.node_type.clone()).filter(|t| !t.is_empty())),
                    n.ip.to_string(),
                    n.bmc_ip.to_string(),
                    dash(n.role.clone()),
                    dash(n.hostname.clone()),
                    yes_no(n.storage),
                    yes_no(n.excluded),
                ]
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use racker_inventory::{
        AddressPlan, Inventory, LocalInterface, PlanOptions, Provision, SelectionOptions, select,
    };

    fn rack(nodes: &[(u8, Option<u8>, &str)]) -> Rack {
        let mut csv = format!(
            "{}\n02:00:00:00:ff:00, 02:00:00:01:ff:00, 02:00:00:02:ff:00, mgmt, management\n",
            racker_inventory::NODES_CSV_HEADER
        );
        for (i, secondary, kind) in nodes {
            let secondary =
                secondary.map_or(String::new(), |s| format!("02:00:00:03:{s:02x}:{i:02x}"));
            csv.push_str(&format!(
                "02:00:00:00:00:{i:02x}, 02:00:00:01:00:{i:02x}, {secondary}, {kind}, node\n"
            ));
        }
        let inventory = Inventory::parse("nodes.csv", csv.as_bytes()).unwrap();
        let management = inventory
            .management(&[LocalInterface {
                name: "eth1".into(),
                mac: "02:00:00:02:ff:00".parse().unwrap(),
            }])
            .unwrap();
        let plan = AddressPlan::new(&inventory, &management, &PlanOptions::default()).unwrap();
        Rack::new(inventory, management, plan)
    }

    #[test]
    fn text_and_json_of_a_small_rack() {
        let rack = rack(&[(1, Some(1), "red"), (2, None, "")]);
        let selection = select(&rack.plan, &SelectionOptions::default()).unwrap();
        let view = PlanView::new(&rack, &selection);
        assert_eq!(
            view.head_lines()[0],
            "Management node: primary 02:00:00:00:ff:00 BMC 02:00:00:01:ff:00 secondary 02:00:00:02:ff:00 (line 2)"
        );
        assert_eq!(
            view.head_lines()[1],
            format!(
                "PXE interface:   eth1 ({}/24, internal subnet {})",
                view.management.ip, view.subnet
            )
        );
        let rows = view.rows();
        assert_eq!(rows[1][2..4], ["-", "-"]);
        assert_eq!(rows[0][3], "red");
        let text = serde_json::to_string(&view).unwrap();
        let at = |k: &str| text.find(&format!("\"{k}\":")).unwrap();
        let order = [
            "management",
            "pxe_interface",
            "subnet",
            "dynamic_range",
            "nodes",
        ];
        assert!(order.windows(2).all(|w| at(w[0]) < at(w[1])), "{text}");
        assert!(!text.contains("management_line") && !text.contains("prefix_len"));
        let json = serde_json::to_value(&view).unwrap();
        assert_eq!(json["nodes"][0]["node"], "node-0");
        assert_eq!(json["nodes"][0]["mac"], "02:00:00:00:00:01");
    }

    proptest! {
        /// Any rack and selection: the view never panics, lists every
        /// planned node once, and has one row per node as wide as the header.
        #[test]
        fn every_node_once(
            nodes in proptest::collection::btree_map(0u8..200, (proptest::option::of(0u8..4), "[a-z]{0,6}"), 0..40),
            lokomotive in any::<bool>(),
        ) {
            let nodes: Vec<(u8, Option<u8>, &str)> =
                nodes.iter().map(|(i, (s, k))| (*i, *s, k.as_str())).collect();
            let rack = rack(&nodes);
            let options = SelectionOptions {
                provision: if lokomotive { Provision::Lokomotive } else { Provision::Flatcar },
                ..SelectionOptions::default()
            };
            let Ok(selection) = select(&rack.plan, &options) else { return Ok(()) };
            let view = PlanView::new(&rack, &selection);
            let mut macs: Vec<MacAddr> = view.nodes.iter().map(|n| n.mac).collect();
            macs.sort();
            let mut planned: Vec<MacAddr> = rack.plan.nodes().iter().map(|p| p.node.primary_mac).collect();
            planned.sort();
            prop_assert_eq!(macs, planned);
            let rows = view.rows();
            prop_assert_eq!(rows.len(), nodes.len());
            prop_assert!(rows.iter().all(|r| r.len() == PLAN_TABLE_HEADER.len()));
            prop_assert!(serde_json::to_string(&view).is_ok());
        }
    }
}
