//! Where each node's BMC answers: a caller-given address table (a
//! simulated rack's), the BMC's active DHCP lease, or the address plan.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;

use racker_inventory::{MacAddr, PlannedNode};
use racker_ipmi::BmcAddress;

use crate::Error;

/// Where a BMC address came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BmcSource {
    /// The caller's table ([`BmcResolver::with_overrides`]), e.g. a running
    /// simulated rack's.
    Simulator,
    /// The BMC's active DHCP lease.
    Lease,
    /// The address plan.
    Plan,
}

impl BmcSource {
    /// `simulator`, `lease` or `plan`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Simulator => "simulator",
            Self::Lease => "lease",
            Self::Plan => "plan",
        }
    }
}

/// A resolved BMC address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedBmc {
    /// Where to send IPMI.
    pub address: BmcAddress,
    /// Where the address came from.
    pub source: BmcSource,
    /// The BMC holds a lease for another address than the plan's
    /// (`(lease, plan)`); the lease wins.
    pub lease_disagrees: Option<(Ipv4Addr, Ipv4Addr)>,
}

impl ResolvedBmc {
    /// The warning to show when the lease and the plan disagree.
    pub fn warning(&self, bmc_mac: MacAddr) -> Option<String> {
        self.lease_disagrees.map(|(lease, plan)| {
            format!(
                "BMC {bmc_mac} holds a DHCP lease for {lease} but the plan says {plan}; using the lease"
            )
        })
    }
}

/// Finds BMC addresses: the override table first (only what the caller
/// put there: racker reads a simulator's table only for a simulated
/// rack), else the BMC's active DHCP lease, else the address plan.
#[derive(Debug, Clone)]
pub struct BmcResolver {
    overrides: BTreeMap<MacAddr, SocketAddr>,
    leases: racker_netboot::LeaseTable,
}

impl BmcResolver {
    /// Read the lease table of `state_dir` (a missing file is empty; a
    /// corrupt one is an error). No override table.
    pub fn load(state_dir: &Path) -> Result<Self, Error> {
        let leases =
            racker_netboot::LeaseTable::load(state_dir).map_err(|source| Error::Leases {
                state_dir: state_dir.to_owned(),
                source,
            })?;
        Ok(Self::new(leases))
    }

    /// A resolver over `leases`.
    pub fn new(leases: racker_netboot::LeaseTable) -> Self {
        Self {
            overrides: BTreeMap::new(),
            leases,
        }
    }

    /// Send IPMI for these BMC MACs to these addresses (a simulated rack's
    /// BMCs on loopback) instead of their lease or planned address.
    #[must_use]
    pub fn with_overrides(mut self, overrides: BTreeMap<MacAddr, SocketAddr>) -> Self {
        self.overrides = overrides;
        self
    }

    /// The BMC address of `node` (on `port` unless overridden) and where
    /// it came from. A lease that disagrees with the plan wins.
    pub fn resolve(&self, node: &PlannedNode, port: u16) -> ResolvedBmc {
        let bmc_mac = node.node.bmc_mac;
        if let Some(addr) = self.overrides.get(&bmc_mac) {
            return ResolvedBmc {
                address: BmcAddress::from_ip(addr.ip(), addr.port()),
                source: BmcSource::Simulator,
                lease_disagrees: None,
            };
        }
        let now = std::time::SystemTime::now();
        match self.leases.get(bmc_mac).filter(|l| l.is_active(now)) {
            Some(l) => ResolvedBmc {
                address: BmcAddress::from_ip(l.ip.into(), port),
                source: BmcSource::Lease,
                lease_disagrees: (l.ip != node.bmc_ip).then_some((l.ip, node.bmc_ip)),
            },
            None => ResolvedBmc {
                address: BmcAddress::from_ip(node.bmc_ip.into(), port),
                source: BmcSource::Plan,
                lease_disagrees: None,
            },
        }
    }
}
