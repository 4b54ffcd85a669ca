//! Local network interfaces and management-node detection.

use std::path::Path;

use crate::error::{Error, Result};
use crate::{Inventory, MacAddr, Node};

/// A network interface of this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalInterface {
    /// Interface name (e.g. `eth1`).
    pub name: String,
    /// Its MAC address.
    pub mac: MacAddr,
}

/// Read interfaces from a sysfs-like directory: `<dir>/<ifname>/address`.
/// Entries without a readable MAC (or with the all-zero MAC of `lo`) are
/// skipped. The result is sorted by name.
pub fn read_local_interfaces(dir: &Path) -> Result<Vec<LocalInterface>> {
    let entries = std::fs::read_dir(dir).map_err(|source| Error::Io {
        path: dir.to_owned(),
        source,
    })?;
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Ok(text) = std::fs::read_to_string(entry.path().join("address")) else {
            continue;
        };
        if let Ok(mac) = text.parse::<MacAddr>()
            && !mac.is_zero()
        {
            out.push(LocalInterface { name, mac });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// The management node and its PXE interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Management {
    /// The management node's row.
    pub node: Node,
    /// Its secondary MAC (on the rack-internal network).
    pub secondary_mac: MacAddr,
    /// The local interface carrying the secondary MAC.
    pub pxe_interface: String,
}

impl Inventory {
    /// Find the management node: the row with a MAC (any column) of a local
    /// interface; its secondary MAC names the PXE interface.
    pub fn management(&self, interfaces: &[LocalInterface]) -> Result<Management> {
        let file = self.source().to_owned();
        let mut matches = self
            .nodes()
            .iter()
            .filter(|n| interfaces.iter().any(|i| n.has_mac(i.mac)));
        let Some(node) = matches.next() else {
            let list: Vec<String> = interfaces
                .iter()
                .map(|i| format!("{}={}", i.name, i.mac))
                .collect();
            return Err(Error::NoManagementNode {
                file,
                interfaces: if list.is_empty() {
                    "none found".to_owned()
                } else {
                    list.join(", ")
                },
            });
        };
        if let Some(other) = matches.next() {
            return Err(Error::AmbiguousManagementNode {
                file,
                first_line: node.line,
                second_line: other.line,
            });
        }
        let secondary_mac = node
            .secondary_mac
            .ok_or(Error::ManagementWithoutSecondary {
                file: file.clone(),
                line: node.line,
            })?;
        let pxe = interfaces.iter().find(|i| i.mac == secondary_mac).ok_or(
            Error::PxeInterfaceNotFound {
                file,
                line: node.line,
                mac: secondary_mac,
            },
        )?;
        Ok(Management {
            node: node.clone(),
            secondary_mac,
            pxe_interface: pxe.name.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iface(name: &str, mac: &str) -> LocalInterface {
        LocalInterface {
            name: name.into(),
            mac: mac.parse().unwrap(),
        }
    }

    #[test]
    fn finds_management_and_pxe_interface() {
        let inv =
            Inventory::parse("nodes.csv", include_bytes!("../../docs/examples/nodes.csv")).unwrap();
        let ifs = [
            iface("eth0", "00:11:22:33:44:00"),
            iface("eth1", "00:11:22:33:44:30"),
        ];
        let m = inv.management(&ifs).unwrap();
        assert_eq!(m.node.line, 2);
        assert_eq!(m.pxe_interface, "eth1");

        let e = inv
            .management(&[iface("eth0", "00:11:22:33:44:99")])
            .unwrap_err();
        assert!(e.to_string().contains("no row matches"), "{e}");
        let e = inv
            .management(&[iface("eth0", "00:11:22:33:44:00")])
            .unwrap_err();
        assert!(
            matches!(e, Error::PxeInterfaceNotFound { line: 2, .. }),
            "{e}"
        );
        let e = inv
            .management(&[
                iface("a", "00:11:22:33:44:00"),
                iface("b", "00:11:22:33:44:10"),
            ])
            .unwrap_err();
        assert!(matches!(e, Error::AmbiguousManagementNode { .. }), "{e}");
    }

    #[test]
    fn reads_sysfs_like_dir() {
        let dir = std::env::temp_dir().join(format!("racker-ifs-{}", std::process::id()));
        for (name, mac) in [
            ("lo", "00:00:00:00:00:00"),
            ("eth1", "AA:BB:CC:DD:EE:FF"),
            ("eth0", "00:11:22:33:44:00"),
        ] {
            std::fs::create_dir_all(dir.join(name)).unwrap();
            std::fs::write(dir.join(name).join("address"), format!("{mac}\n")).unwrap();
        }
        std::fs::create_dir_all(dir.join("bonding_masters_dir")).unwrap();
        let ifs = read_local_interfaces(&dir).unwrap();
        assert_eq!(
            ifs,
            vec![
                iface("eth0", "00:11:22:33:44:00"),
                iface("eth1", "aa:bb:cc:dd:ee:ff")
            ]
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
