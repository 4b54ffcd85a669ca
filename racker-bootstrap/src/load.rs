//! Loading a [`Rack`] from its files.

use std::path::Path;

use racker_inventory::{AddressPlan, Inventory, PlanOptions, read_local_interfaces};

use crate::{Error, Rack, Result};

impl Rack {
    /// Load `nodes_csv`, find the management node (this machine) among the
    /// interfaces listed in `sys_class_net` (`<dir>/<ifname>/address`,
    /// `/sys/class/net` on a real machine) and compute the address plan.
    pub fn load(nodes_csv: &Path, sys_class_net: &Path, options: &PlanOptions) -> Result<Self> {
        let inventory = Inventory::load(nodes_csv)?;
        let interfaces =
            read_local_interfaces(sys_class_net).map_err(|source| Error::Interfaces {
                dir: sys_class_net.to_owned(),
                source,
            })?;
        let management = inventory.management(&interfaces)?;
        let plan = AddressPlan::new(&inventory, &management, options)?;
        Ok(Rack::new(inventory, management, plan))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rack_loads_from_its_files() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("nodes.csv");
        std::fs::write(
            &csv,
            crate::testutil::nodes_csv(&[crate::testutil::MGMT, crate::testutil::NODE]),
        )
        .unwrap();
        let net = dir.path().join("net");
        assert!(matches!(
            Rack::load(&csv, &net, &PlanOptions::default()),
            Err(Error::Interfaces { .. })
        ));
        std::fs::create_dir_all(net.join("eth1")).unwrap();
        std::fs::write(net.join("eth1/address"), "00:11:22:33:44:30\n").unwrap();
        let rack = Rack::load(&csv, &net, &PlanOptions::default()).unwrap();
        assert_eq!(rack.management.pxe_interface, "eth1");
        assert_eq!(rack.plan.nodes().len(), 1);
    }
}
