//! Fixtures shared by the library's unit tests: a small nodes.csv and a
//! rack whose management node is "this machine".

use std::path::Path;

use racker_inventory::{AddressPlan, Inventory, PlanOptions, read_local_interfaces};

use crate::Rack;

/// The management node's row (its secondary MAC ..:30 is `eno2` here).
pub(crate) const MGMT: &str = "00:11:22:33:44:00, 00:11:22:33:44:01, 00:11:22:33:44:30, red, mgmt";
/// A second node's row.
pub(crate) const NODE: &str = "00:11:22:33:44:10, 00:11:22:33:44:11, 00:11:22:33:44:40, red, node";

/// nodes.csv text: the header, then `rows`.
pub(crate) fn nodes_csv(rows: &[&str]) -> String {
    let mut text = format!("{}\n", racker_inventory::NODES_CSV_HEADER);
    for row in rows {
        text.push_str(row);
        text.push('\n');
    }
    text
}

/// The inventory of `rows`.
pub(crate) fn inventory(rows: &[&str]) -> Inventory {
    Inventory::parse("nodes.csv", nodes_csv(rows).as_bytes()).unwrap()
}

/// The rack of `rows` planned with the default options, managed from this
/// machine: `<dir>/net/eno2` carries [`MGMT`]'s secondary MAC.
pub(crate) fn rack(dir: &Path, rows: &[&str]) -> Rack {
    let net = dir.join("net");
    std::fs::create_dir_all(net.join("eno2")).unwrap();
    std::fs::write(net.join("eno2/address"), "00:11:22:33:44:30\n").unwrap();
    let inventory = inventory(rows);
    let management = inventory
        .management(&read_local_interfaces(&net).unwrap())
        .unwrap();
    let plan = AddressPlan::new(&inventory, &management, &PlanOptions::default()).unwrap();
    Rack::new(inventory, management, plan)
}
