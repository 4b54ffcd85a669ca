//! What `racker sim status` shows (docs/output.md kind `sim-status`):
//! [`StatusView`] is the JSON document, with the table's rows (the caller
//! lays out and colours the table), and [`served_lines`] says where a
//! served rack's BMCs answer.

use std::path::Path;

use serde::Serialize;

use crate::{BmcTable, ChassisState, NodeStatus, StatusFile};

/// The simulated rack's nodes (`racker sim status -o json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct StatusView {
    /// Every node.
    pub nodes: Vec<NodeView>,
}

/// One node of a [`StatusView`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct NodeView {
    /// Primary MAC, when known.
    pub mac: Option<String>,
    /// BMC MAC.
    pub bmc_mac: String,
    /// BMC IP address (or the whole address when it has no port).
    pub bmc_ip: String,
    /// BMC UDP port.
    pub bmc_port: Option<u16>,
    /// Power, boot flags, sessions and faults.
    #[serde(flatten)]
    pub chassis: ChassisState,
}

impl From<&NodeStatus> for NodeView {
    fn from(n: &NodeStatus) -> Self {
        let (bmc_ip, bmc_port) = match n.ipmi_address.parse::<std::net::SocketAddr>() {
            Ok(sa) => (sa.ip().to_string(), Some(sa.port())),
            Err(_) => (n.ipmi_address.clone(), None),
        };
        Self {
            mac: Some(n.primary_mac.clone()).filter(|m| !m.is_empty()),
            bmc_mac: n.bmc_mac.clone(),
            bmc_ip,
            bmc_port,
            chassis: n.chassis.clone(),
        }
    }
}

impl From<&StatusFile> for StatusView {
    fn from(file: &StatusFile) -> Self {
        Self {
            nodes: file.nodes.iter().map(NodeView::from).collect(),
        }
    }
}

impl StatusView {
    /// The table's header; `wide` adds the raw boot flags and the open
    /// sessions.
    pub fn header(wide: bool) -> Vec<&'static str> {
        let mut header = vec![
            "BMC MAC",
            "PRIMARY MAC",
            "IPMI ADDRESS",
            "POWER",
            "BOOT",
            "PERSISTENT",
            "EFI",
        ];
        if wide {
            header.extend(["BOOT FLAGS", "CLEARING", "SESSIONS"]);
        }
        header.push("FAULTS");
        header
    }

    /// The table's rows, columns as [`StatusView::header`] (faults
    /// comma-separated, `-` for none).
    pub fn rows(&self, wide: bool) -> Vec<Vec<String>> {
        let yn = |b: bool| if b { "yes" } else { "no" }.to_owned();
        self.nodes
            .iter()
            .map(|v| {
                let n = &v.chassis;
                let mut row = vec![
                    v.bmc_mac.clone(),
                    v.mac.clone().unwrap_or_default(),
                    match v.bmc_port {
                        Some(p) => format!("{}:{p}", v.bmc_ip),
                        None => v.bmc_ip.clone(),
                    },
                    n.power.clone(),
                    n.boot_device.clone(),
                    yn(n.persistent),
                    yn(n.efi),
                ];
                if wide {
                    row.extend([
                        n.boot_flags.clone(),
                        n.boot_flag_clearing.clone(),
                        n.sessions.to_string(),
                    ]);
                }
                row.push(if n.faults.is_empty() {
                    "-".to_owned()
                } else {
                    n.faults.join(",")
                });
                row
            })
            .collect()
    }
}

/// What `racker sim up` says once its BMCs answer: the nodes with PXE
/// firmware and their DHCP server (`pxe`), how many BMCs, the first eight
/// addresses, and how to reach them (`user`, the password file in
/// `oem_dir`, the BMC table at `table_path`).
pub fn served_lines(
    pxe: Option<(usize, std::net::SocketAddr)>,
    table: &BmcTable,
    table_path: &Path,
    oem_dir: &Path,
    user: &str,
    elapsed_ms: u128,
) -> Vec<String> {
    let password = oem_dir.join("ipmi_password");
    let mut out: Vec<String> = pxe
        .map(|(n, dhcp)| format!("PXE firmware on {n} node(s), DHCP server {dhcp}"))
        .into_iter()
        .collect();
    out.push(format!(
        "{} simulated BMCs up in {elapsed_ms} ms (user {user}, password in {}):",
        table.bmcs.len(),
        password.display()
    ));
    for entry in table.bmcs.iter().take(8) {
        out.push(format!("  BMC {}  {}", entry.bmc_mac, entry.ipmi_address));
    }
    if table.bmcs.len() > 8 {
        out.push(format!(
            "  ... {} more in {}",
            table.bmcs.len() - 8,
            table_path.display()
        ));
    }
    if let Some(first) = table.bmcs.first() {
        let a = first.ipmi_address;
        out.push("Reach them with:".to_owned());
        out.push(format!(
            "  IPMI_PASSWORD=$(cat {}) ipmitool -I lanplus -H {} -p {} -U {user} -E chassis status",
            password.display(),
            a.ip(),
            a.port()
        ));
        out.push(format!(
            "  racker --oem-dir {} ipmi --host {} power status",
            oem_dir.display(),
            a
        ));
    }
    out.push(format!(
        "BMC table: {}; press Ctrl-C to stop.",
        table_path.display()
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn status(addr: &str, faults: &[&str]) -> NodeStatus {
        NodeStatus {
            bmc_mac: "02:00:00:01:00:01".into(),
            primary_mac: String::new(),
            ipmi_address: addr.into(),
            chassis: ChassisState {
                power: "on".into(),
                boot_device: "pxe".into(),
                persistent: false,
                efi: true,
                boot_valid: true,
                boot_flags: "a004000000".into(),
                boot_flag_clearing: "00".into(),
                sessions: 2,
                faults: faults.iter().map(|f| (*f).to_owned()).collect(),
            },
        }
    }

    #[test]
    fn rows_follow_the_header() {
        let file = StatusFile {
            pid: 1,
            nodes: vec![
                status("127.0.0.1:6230", &[]),
                status("x", &["unreachable", "loss:5"]),
            ],
        };
        let view = StatusView::from(&file);
        assert_eq!(view.nodes[0].bmc_port, Some(6230));
        assert_eq!(
            (view.nodes[1].bmc_ip.as_str(), view.nodes[1].bmc_port),
            ("x", None)
        );
        assert_eq!(view.nodes[0].mac, None);
        let rows = view.rows(false);
        assert_eq!(
            rows[0],
            [
                "02:00:00:01:00:01",
                "",
                "127.0.0.1:6230",
                "on",
                "pxe",
                "no",
                "yes",
                "-"
            ]
        );
        assert_eq!(rows[1][7], "unreachable,loss:5");
        assert_eq!(view.rows(true)[0].len(), StatusView::header(true).len());
    }

    #[test]
    fn served_lines_name_the_first_bmcs() {
        let table = BmcTable {
            pid: 1,
            user: "USER".into(),
            bmcs: (0..10)
                .map(|i| crate::BmcEntry {
                    bmc_mac: format!("02:00:00:01:00:{i:02x}"),
                    primary_mac: None,
                    ipmi_address: format!("127.0.0.1:{}", 7000 + i).parse().unwrap(),
                })
                .collect(),
        };
        let lines = served_lines(
            None,
            &table,
            Path::new("/s/sim-bmcs.json"),
            Path::new("/oem"),
            "USER",
            5,
        );
        assert_eq!(
            lines[0],
            "10 simulated BMCs up in 5 ms (user USER, password in /oem/ipmi_password):"
        );
        assert_eq!(lines[9], "  ... 2 more in /s/sim-bmcs.json");
        assert!(lines[11].contains("-H 127.0.0.1 -p 7000 -U USER"));
        assert_eq!(
            lines.last().unwrap(),
            "BMC table: /s/sim-bmcs.json; press Ctrl-C to stop."
        );
        let dhcp = "127.0.0.1:67".parse().unwrap();
        let lines = served_lines(
            Some((3, dhcp)),
            &table,
            Path::new("/t"),
            Path::new("/o"),
            "U",
            5,
        );
        assert_eq!(
            lines[0],
            "PXE firmware on 3 node(s), DHCP server 127.0.0.1:67"
        );
    }

    proptest! {
        /// Any address text: the view never panics and an `IP:PORT` splits
        /// back into the same address.
        #[test]
        fn addresses_split(addr in ".{0,30}", port in any::<u16>(), ip in any::<[u8; 4]>()) {
            let any = NodeView::from(&status(&addr, &[]));
            prop_assert!(any.bmc_port.is_some() || any.bmc_ip == addr);
            let sa = std::net::SocketAddr::from((ip, port));
            let v = NodeView::from(&status(&sa.to_string(), &[]));
            prop_assert_eq!(format!("{}:{}", v.bmc_ip, v.bmc_port.unwrap()), sa.to_string());
        }
    }
}
