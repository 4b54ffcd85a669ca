//! The deterministic address plan (docs/inventory.md).
//!
//! The internal network is `<subnet prefix>.0/<prefix length>` (default
//! `172.24.213.0/24`). The management node is the network address + 1.
//! Every other node, sorted by primary MAC, gets network + 2 + i; the BMCs
//! follow in the same order. The dynamic DHCP range is the upper half of the
//! *last* /24 of the subnet (`.128`–`.254` of it), so with the default /24 it
//! is `.128`–`.254`, and with a /22 such as `172.24.212.0/22` it is
//! `172.24.215.128`–`172.24.215.254`. The static plan must end below the
//! dynamic range: 63 nodes fit a /24, 447 a /22, 8,127 a /18.

use std::fmt;
use std::net::Ipv4Addr;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::{Inventory, MacAddr, Management, Node};

/// Default first three octets of the internal network.
pub const DEFAULT_SUBNET_PREFIX: &str = "172.24.213";
/// Default prefix length.
pub const DEFAULT_PREFIX_LEN: u8 = 24;

/// Inputs of the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanOptions {
    /// First three octets of the network address, e.g. `172.24.213`.
    pub subnet_prefix: String,
    /// Prefix length, 16 to 24.
    pub prefix_len: u8,
}

impl Default for PlanOptions {
    fn default() -> Self {
        Self {
            subnet_prefix: DEFAULT_SUBNET_PREFIX.to_owned(),
            prefix_len: DEFAULT_PREFIX_LEN,
        }
    }
}

/// An IPv4 subnet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subnet {
    network: Ipv4Addr,
    prefix_len: u8,
}

impl Subnet {
    /// The subnet of `options`, validated.
    pub fn from_options(options: &PlanOptions) -> Result<Self> {
        let bad = || Error::InvalidSubnetPrefix {
            value: options.subnet_prefix.clone(),
        };
        let parts: Vec<&str> = options.subnet_prefix.trim().split('.').collect();
        if parts.len() != 3 {
            return Err(bad());
        }
        let mut octets = [0u8; 3];
        for (o, p) in octets.iter_mut().zip(&parts) {
            if p.is_empty() || p.len() > 3 || !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            *o = p.parse().map_err(|_| bad())?;
        }
        if !(16..=24).contains(&options.prefix_len) {
            return Err(Error::InvalidPrefixLength {
                value: options.prefix_len,
            });
        }
        let network = Ipv4Addr::new(octets[0], octets[1], octets[2], 0);
        let mask = u32::MAX << (32 - u32::from(options.prefix_len));
        let aligned = Ipv4Addr::from(u32::from(network) & mask);
        if aligned != network {
            return Err(Error::UnalignedSubnet {
                network,
                prefix_len: options.prefix_len,
                aligned,
            });
        }
        Ok(Self {
            network,
            prefix_len: options.prefix_len,
        })
    }

    /// The network address.
    pub fn network(&self) -> Ipv4Addr {
        self.network
    }

    /// The prefix length.
    pub fn prefix_len(&self) -> u8 {
        self.prefix_len
    }

    /// The netmask, e.g. `255.255.255.0`.
    pub fn netmask(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::MAX << (32 - u32::from(self.prefix_len)))
    }

    /// The broadcast address.
    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) | !u32::from(self.netmask()))
    }

    /// Number of addresses in the subnet.
    pub fn size(&self) -> u32 {
        1u32 << (32 - u32::from(self.prefix_len))
    }

    /// True when `addr` lies inside the subnet.
    pub fn contains(&self, addr: Ipv4Addr) -> bool {
        u32::from(addr) & u32::from(self.netmask()) == u32::from(self.network)
    }

    /// Network address + `offset`.
    fn nth(&self, offset: u32) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) + offset)
    }

    /// First address of the dynamic range: `.128` of the last /24.
    fn dynamic_offset(&self) -> u32 {
        self.size() - 128
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix_len)
    }
}

impl Serialize for Subnet {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// A node with its planned addresses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedNode {
    /// Position in primary-MAC order (0-based), stable under exclusion.
    pub index: usize,
    /// The nodes.csv row.
    pub node: Node,
    /// Internal address of the primary NIC.
    pub ip: Ipv4Addr,
    /// Internal address of the BMC.
    pub bmc_ip: Ipv4Addr,
}

/// The address plan of the rack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressPlan {
    subnet: Subnet,
    management: Management,
    nodes: Vec<PlannedNode>,
}

impl AddressPlan {
    /// Plan addresses for every row of `inventory` except the management
    /// node.
    pub fn new(
        inventory: &Inventory,
        management: &Management,
        options: &PlanOptions,
    ) -> Result<Self> {
        let subnet = Subnet::from_options(options)?;
        let mut nodes: Vec<&Node> = inventory
            .nodes()
            .iter()
            .filter(|n| n.primary_mac != management.node.primary_mac)
            .collect();
        nodes.sort_by_key(|n| n.primary_mac);
        let n = nodes.len();
        // .0 network, .1 management, then 2n addresses.
        let needed = 2 * n + 1;
        let available = subnet.dynamic_offset() as usize - 1;
        if needed > available {
            return Err(Error::PlanCapacity {
                nodes: n,
                needed,
                available,
                subnet: subnet.to_string(),
            });
        }
        let nodes = nodes
            .into_iter()
            .enumerate()
            .map(|(i, node)| PlannedNode {
                index: i,
                node: node.clone(),
                ip: subnet.nth(2 + i as u32),
                bmc_ip: subnet.nth(2 + (n + i) as u32),
            })
            .collect();
        Ok(Self {
            subnet,
            management: management.clone(),
            nodes,
        })
    }

    /// The internal subnet.
    pub fn subnet(&self) -> Subnet {
        self.subnet
    }

    /// The management node.
    pub fn management(&self) -> &Management {
        &self.management
    }

    /// The management node's internal address (network + 1).
    pub fn management_ip(&self) -> Ipv4Addr {
        self.subnet.nth(1)
    }

    /// The dynamic DHCP range (inclusive): `.128`–`.254` of the last /24.
    pub fn dynamic_range(&self) -> (Ipv4Addr, Ipv4Addr) {
        let start = self.subnet.dynamic_offset();
        (
            self.subnet.nth(start),
            self.subnet.nth(self.subnet.size() - 2),
        )
    }

    /// Every node but the management node, sorted by primary MAC.
    pub fn nodes(&self) -> &[PlannedNode] {
        &self.nodes
    }

    /// The planned node holding `mac` (primary, BMC or secondary).
    pub fn find_by_mac(&self, mac: MacAddr) -> Option<&PlannedNode> {
        self.nodes.iter().find(|p| p.node.has_mac(mac))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LocalInterface;
    use proptest::prelude::*;

    pub(crate) fn rack(n: usize) -> (Inventory, Management) {
        let mut text = String::from("Primary, BMC, Secondary, Type, Comment\n");
        text.push_str("00:00:00:00:ff:00, 00:00:00:00:ff:01, 00:00:00:00:ff:02, mgmt, m\n");
        // Reverse order in the file: the plan must sort.
        for i in (0..n).rev() {
            let [a, b] = (i as u16).to_be_bytes();
            text.push_str(&format!(
                "02:00:00:{a:02x}:{b:02x}:01, 02:00:00:{a:02x}:{b:02x}:02, 02:00:00:{a:02x}:{b:02x}:03, t{}, \n",
                i % 3
            ));
        }
        let inv = Inventory::parse("nodes.csv", text.as_bytes()).unwrap();
        let m = inv
            .management(&[LocalInterface {
                name: "eth1".into(),
                mac: "00:00:00:00:ff:02".parse().unwrap(),
            }])
            .unwrap();
        (inv, m)
    }

    #[test]
    fn example_rack_plan() {
        let inv =
            Inventory::parse("nodes.csv", include_bytes!("../../docs/examples/nodes.csv")).unwrap();
        let m = inv
            .management(&[LocalInterface {
                name: "eth1".into(),
                mac: "00:11:22:33:44:30".parse().unwrap(),
            }])
            .unwrap();
        let plan = AddressPlan::new(&inv, &m, &PlanOptions::default()).unwrap();
        assert_eq!(plan.subnet().to_string(), "172.24.213.0/24");
        assert_eq!(plan.management_ip(), Ipv4Addr::new(172, 24, 213, 1));
        let got: Vec<(String, String, String)> = plan
            .nodes()
            .iter()
            .map(|p| {
                (
                    p.node.primary_mac.to_string(),
                    p.ip.to_string(),
                    p.bmc_ip.to_string(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    "00:11:22:33:44:10".into(),
                    "172.24.213.2".into(),
                    "172.24.213.4".into()
                ),
                (
                    "00:11:22:33:44:20".into(),
                    "172.24.213.3".into(),
                    "172.24.213.5".into()
                ),
            ]
        );
        assert_eq!(
            plan.dynamic_range(),
            (
                Ipv4Addr::new(172, 24, 213, 128),
                Ipv4Addr::new(172, 24, 213, 254)
            )
        );
    }

    #[test]
    fn capacity_limits() {
        let (inv, m) = rack(63);
        let plan = AddressPlan::new(&inv, &m, &PlanOptions::default()).unwrap();
        assert_eq!(
            plan.nodes().last().unwrap().bmc_ip,
            Ipv4Addr::new(172, 24, 213, 127)
        );
        let (inv, m) = rack(64);
        let e = AddressPlan::new(&inv, &m, &PlanOptions::default()).unwrap_err();
        assert!(
            e.to_string().contains("64 nodes need 129 static addresses"),
            "{e}"
        );
        let opts = PlanOptions {
            subnet_prefix: "172.24.212".into(),
            prefix_len: 22,
        };
        let plan = AddressPlan::new(&inv, &m, &opts).unwrap();
        assert_eq!(plan.dynamic_range().0, Ipv4Addr::new(172, 24, 215, 128));
        let (inv, m) = rack(448);
        assert!(AddressPlan::new(&inv, &m, &opts).is_err());
        let (inv, m) = rack(447);
        assert!(AddressPlan::new(&inv, &m, &opts).is_ok());
    }

    #[test]
    fn bad_options() {
        let (inv, m) = rack(1);
        for (p, l) in [
            ("172.24", 24),
            ("172.24.256", 24),
            ("a.b.c", 24),
            ("172.24.213.0", 24),
            ("172.24.213", 25),
            ("172.24.213", 8),
        ] {
            let opts = PlanOptions {
                subnet_prefix: p.into(),
                prefix_len: l,
            };
            assert!(AddressPlan::new(&inv, &m, &opts).is_err(), "{p}/{l}");
        }
        let opts = PlanOptions {
            subnet_prefix: "172.24.213".into(),
            prefix_len: 22,
        };
        let e = AddressPlan::new(&inv, &m, &opts).unwrap_err().to_string();
        assert!(e.contains("did you mean 172.24.212.0/22"), "{e}");
    }

    proptest! {
        #[test]
        fn plan_is_injective_inside_and_below_dynamic(n in 0usize..200, len in 17u8..=24) {
            let (inv, m) = rack(n);
            let opts = PlanOptions { subnet_prefix: "10.0.0".into(), prefix_len: len };
            let Ok(plan) = AddressPlan::new(&inv, &m, &opts) else {
                // Only a capacity error is acceptable.
                prop_assert!(2 * n + 1 > plan_capacity(len));
                return Ok(());
            };
            let (dyn_start, _) = plan.dynamic_range();
            let mut seen = std::collections::BTreeSet::new();
            seen.insert(plan.management_ip());
            for p in plan.nodes() {
                for a in [p.ip, p.bmc_ip] {
                    prop_assert!(plan.subnet().contains(a));
                    prop_assert!(a < dyn_start);
                    prop_assert!(a != plan.subnet().network());
                    prop_assert!(seen.insert(a), "duplicate {}", a);
                }
            }
        }
    }

    fn plan_capacity(len: u8) -> usize {
        (1usize << (32 - len)) - 128 - 1
    }
}
