//! `racker factory check` and `racker factory reset --inventory`
//! (docs/installer.md): the rack metadata checked, or back to its factory
//! state.

use std::path::Path;

use racker_inventory::{Credentials, MacAddr, PlanOptions};
use serde::Serialize;

use crate::fsutil::write_atomic;
use crate::{Error, Rack, Result};

/// What [`check`] found (`racker factory check -o json`, docs/output.md
/// kind `factory-check`): filled as far as the check got.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct CheckReport {
    /// Everything checked out.
    pub ok: bool,
    /// The nodes.csv checked.
    pub nodes_csv: String,
    /// Its nodes.
    pub node_count: Option<usize>,
    /// The BMC user.
    pub ipmi_user: Option<String>,
    /// The management node.
    pub management: Option<CheckManagement>,
    /// The rack-internal subnet.
    pub subnet: Option<String>,
    /// Nodes per node type.
    pub node_types: Vec<NodeTypeCount>,
    /// The first problem.
    pub error: Option<CheckError>,
}

/// The management node in a [`CheckReport`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct CheckManagement {
    /// Primary MAC.
    pub mac: MacAddr,
    /// Its nodes.csv line.
    pub line: u64,
    /// Its interface on the rack-internal network.
    pub pxe_interface: String,
    /// Its rack-internal address.
    pub ip: std::net::Ipv4Addr,
}

/// How many nodes have a node type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct NodeTypeCount {
    /// The node type.
    pub node_type: String,
    /// Its nodes.
    pub count: usize,
}

/// The problem a [`CheckReport`] ended with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct CheckError {
    /// `credentials` or `inventory`.
    pub kind: &'static str,
    /// What is wrong.
    pub message: String,
}

impl CheckReport {
    /// A report of checking `nodes_csv`, nothing found yet.
    pub fn new(nodes_csv: &Path) -> Self {
        Self {
            nodes_csv: nodes_csv.display().to_string(),
            ..Self::default()
        }
    }

    /// The check ended with `message` (its kind from how far it got).
    pub fn fail(&mut self, message: String) {
        self.ok = false;
        self.error = Some(CheckError {
            kind: if self.ipmi_user.is_none() {
                "credentials"
            } else {
                "inventory"
            },
            message,
        });
    }
}

/// A finding of [`check`] for people, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CheckLine {
    /// Something to fix that does not fail the check (e.g. a credential
    /// file's permissions).
    Warning(String),
    /// A result line; passed checks start with `✓ `.
    Line(String),
}

/// Check the BMC credentials in `oem_dir`, then the rack (`nodes_csv`, the
/// management node among `sys_class_net`'s interfaces, the address plan),
/// filling `report` and telling `line` each finding as it goes; the first
/// problem is the error (`report.ok` is set on success).
pub fn check(
    oem_dir: &Path,
    nodes_csv: &Path,
    sys_class_net: &Path,
    plan: &PlanOptions,
    report: &mut CheckReport,
    line: &mut dyn FnMut(CheckLine),
) -> Result<()> {
    let credentials = Credentials::load(oem_dir)?;
    for w in &credentials.warnings {
        line(CheckLine::Warning(w.to_string()));
    }
    report.ipmi_user = Some(credentials.user.clone());
    line(CheckLine::Line(format!(
        "✓ BMC credentials found in {} (user \"{}\")",
        oem_dir.display(),
        credentials.user
    )));
    let rack = Rack::load(nodes_csv, sys_class_net, plan)?;
    let count = rack.inventory.nodes().len();
    report.node_count = Some(count);
    line(CheckLine::Line(format!(
        "✓ {}: header and {count} node(s) valid, no duplicate MACs",
        report.nodes_csv
    )));
    let m = &rack.management;
    report.management = Some(CheckManagement {
        mac: m.node.primary_mac,
        line: m.node.line,
        pxe_interface: m.pxe_interface.clone(),
        ip: rack.plan.management_ip(),
    });
    line(CheckLine::Line(format!(
        "✓ management node on line {} ({}), PXE interface {}",
        m.node.line, m.node.primary_mac, m.pxe_interface
    )));
    report.subnet = Some(rack.plan.subnet().to_string());
    line(CheckLine::Line(format!(
        "✓ address plan: {} node(s) in {} (management {})",
        rack.plan.nodes().len(),
        rack.plan.subnet(),
        rack.plan.management_ip()
    )));
    line(CheckLine::Line("Node types:".to_owned()));
    for (node_type, count) in rack.inventory.node_type_counts() {
        line(CheckLine::Line(format!("  {count} \"{node_type}\"")));
        report.node_types.push(NodeTypeCount { node_type, count });
    }
    report.ok = true;
    Ok(())
}

/// What became of the state directory in [`reset_inventory`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StateDirReset {
    /// It was removed.
    Removed,
    /// There was none.
    AlreadyAbsent,
}

/// Reset nodes.csv to its header line and remove the state directory.
pub fn reset_inventory(nodes_csv: &Path, state_dir: &Path) -> Result<StateDirReset> {
    write_atomic(
        nodes_csv,
        format!("{}\n", racker_inventory::NODES_CSV_HEADER).as_bytes(),
        0o644,
    )?;
    match std::fs::remove_dir_all(state_dir) {
        Ok(()) => Ok(StateDirReset::Removed),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(StateDirReset::AlreadyAbsent),
        Err(e) => Err(Error::io("removing", state_dir, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_reports_how_far_it_got() {
        let dir = tempfile::tempdir().unwrap();
        let (oem, net) = (dir.path().join("oem"), dir.path().join("net"));
        let csv = oem.join("nodes.csv");
        let mut report = CheckReport::new(&csv);
        let mut lines = Vec::new();
        let err = check(
            &oem,
            &csv,
            &net,
            &PlanOptions::default(),
            &mut report,
            &mut |l| lines.push(l),
        );
        assert!(err.is_err() && lines.is_empty());
        report.fail("no credentials".into());
        assert_eq!(report.error.as_ref().unwrap().kind, "credentials");

        std::fs::create_dir_all(net.join("eth1")).unwrap();
        std::fs::write(net.join("eth1/address"), "00:11:22:33:44:30\n").unwrap();
        std::fs::create_dir_all(&oem).unwrap();
        std::fs::write(oem.join("ipmi_user"), "admin\n").unwrap();
        std::fs::write(oem.join("ipmi_password"), "pw\n").unwrap();
        let mut report = CheckReport::new(&csv);
        assert!(
            check(
                &oem,
                &csv,
                &net,
                &PlanOptions::default(),
                &mut report,
                &mut |_| ()
            )
            .is_err()
        );
        report.fail("no nodes.csv".into());
        assert_eq!(report.error.as_ref().unwrap().kind, "inventory");

        std::fs::write(
            &csv,
            crate::testutil::nodes_csv(&[crate::testutil::MGMT, crate::testutil::NODE]),
        )
        .unwrap();
        let mut report = CheckReport::new(&csv);
        let mut lines = Vec::new();
        check(
            &oem,
            &csv,
            &net,
            &PlanOptions::default(),
            &mut report,
            &mut |l| lines.push(l),
        )
        .unwrap();
        assert!(report.ok);
        assert_eq!(report.node_count, Some(2));
        assert_eq!(report.node_types[0].count, 2);
        assert_eq!(
            lines.last().unwrap(),
            &CheckLine::Line("  2 \"red\"".into())
        );
        assert!(lines.iter().any(
            |l| matches!(l, CheckLine::Line(t) if t.starts_with("✓ management node on line 2"))
        ));
    }

    #[test]
    fn inventory_and_state_are_reset() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("oem/nodes.csv");
        let state = dir.path().join("state");
        std::fs::create_dir_all(state.join("assets")).unwrap();
        assert_eq!(
            reset_inventory(&csv, &state).unwrap(),
            StateDirReset::Removed
        );
        assert_eq!(
            std::fs::read_to_string(&csv).unwrap(),
            format!("{}\n", racker_inventory::NODES_CSV_HEADER)
        );
        assert!(!state.exists());
        assert_eq!(
            reset_inventory(&csv, &state).unwrap(),
            StateDirReset::AlreadyAbsent
        );
    }
}
