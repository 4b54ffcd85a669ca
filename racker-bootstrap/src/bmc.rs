//! Where each node's BMC answers: a caller-given address table (a
//! simulated rack's), the BMC's active DHCP lease, or the address plan;
//! and which BMCs a command names ([`select_targets`]: host names, MACs,
//! ranges, `--all`, `--exclude`).

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;

use racker_inventory::{Host, MacAddr, PlannedNode, SelectedNode, Selection};
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
    /// Given by the user (`--host`).
    Host,
    /// This machine's own BMC through its IPMI device (`--local`).
    Local,
}

impl BmcSource {
    /// `simulator`, `lease` or `plan`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Simulator => "simulator",
            Self::Lease => "lease",
            Self::Plan => "plan",
            Self::Host => "host",
            Self::Local => "local",
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

/// One BMC a command talks to, with what the rack knows about its node.
///
/// JSON (docs/output.md, kind `ipmi`): `node` (host name, else primary
/// MAC; null with `--host`), `mac`, `bmc_mac`, `ip`, `hostname`, `bmc_ip`,
/// `bmc_port`, `address_source`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BmcTarget {
    /// How racker names it in progress lines: the BMC MAC, or the
    /// `--host` text.
    pub label: String,
    /// Where to send IPMI.
    pub address: BmcAddress,
    /// The BMC's MAC (from nodes.csv).
    pub bmc_mac: Option<MacAddr>,
    /// The node's primary MAC.
    pub mac: Option<MacAddr>,
    /// The node's internal IP.
    pub ip: Option<Ipv4Addr>,
    /// The node's host name.
    pub hostname: Option<String>,
    /// Where the address came from.
    pub source: BmcSource,
    /// A warning for the user (a lease that disagrees with the plan).
    pub warning: Option<String>,
}

impl BmcTarget {
    /// A BMC given by address (`--host ADDR[:PORT]`; `port` unless the
    /// text names one).
    pub fn host(text: &str, port: u16) -> Result<BmcTarget, Error> {
        let parsed: BmcAddress = text
            .parse()
            .map_err(|e| Error::Config(format!("--host {text:?}: {e}")))?;
        let has_port = if text.starts_with('[') {
            text.contains("]:")
        } else {
            text.matches(':').count() == 1
        };
        Ok(Self::unplanned(
            text,
            if has_port {
                parsed
            } else {
                parsed.with_port(port)
            },
            BmcSource::Host,
        ))
    }

    /// This machine's BMC through `device` (e.g. `/dev/ipmi0`).
    pub fn local(device: &Path) -> BmcTarget {
        Self::unplanned(
            &device.display().to_string(),
            BmcAddress::new("localhost", 0),
            BmcSource::Local,
        )
    }

    fn unplanned(label: &str, address: BmcAddress, source: BmcSource) -> BmcTarget {
        BmcTarget {
            label: label.to_owned(),
            address,
            bmc_mac: None,
            mac: None,
            ip: None,
            hostname: None,
            source,
            warning: None,
        }
    }

    /// The node's short host name, else its BMC MAC (or the `--host`
    /// text): what one-line and consolidated output print.
    pub fn host_label(&self) -> String {
        self.hostname
            .as_deref()
            .and_then(|h| h.split('.').next())
            .map_or_else(|| self.label.clone(), str::to_string)
    }

    /// The `node` of docs/output.md: host name, else primary MAC.
    pub fn node(&self) -> Option<String> {
        self.mac.map(|mac| match self.hostname.as_deref() {
            Some(h) if !h.is_empty() => h.to_owned(),
            _ => mac.to_string(),
        })
    }
}

impl serde::Serialize for BmcTarget {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct as _;
        let mut m = s.serialize_struct("BmcTarget", 8)?;
        m.serialize_field("node", &self.node())?;
        m.serialize_field("mac", &self.mac)?;
        m.serialize_field("bmc_mac", &self.bmc_mac)?;
        m.serialize_field("ip", &self.ip)?;
        m.serialize_field("hostname", &self.hostname)?;
        m.serialize_field("bmc_ip", self.address.host())?;
        m.serialize_field("bmc_port", &self.address.port())?;
        m.serialize_field("address_source", self.source.as_str())?;
        m.end()
    }
}

/// Which BMCs a command names.
#[derive(Debug, Clone, Default)]
pub struct TargetQuery {
    /// The hosts asked for (names, MACs, expanded ranges); `None` with
    /// `all`.
    pub wanted: Option<Vec<Host>>,
    /// Every node of the plan.
    pub all: bool,
    /// Hosts left out: MACs (any of a node's) and names. They filter
    /// `all` and lists of several hosts, never a single named node.
    pub exclude: Vec<Host>,
    /// The BMC port for addresses from the lease table and the plan.
    pub port: u16,
}

/// True when `want` names the node `selected` (host name, short host
/// name or alias, case-insensitive).
fn name_matches(selected: Option<&SelectedNode>, want: &str) -> bool {
    let Some(s) = selected else {
        return false;
    };
    s.aliases
        .iter()
        .map(String::as_str)
        .chain(s.hostname.as_deref())
        .any(|n| {
            n.eq_ignore_ascii_case(want)
                || n.split('.')
                    .next()
                    .is_some_and(|short| short.eq_ignore_ascii_case(want))
        })
}

fn host_matches(node: &PlannedNode, selected: Option<&SelectedNode>, host: &Host) -> bool {
    match host {
        Host::Mac(mac) => *mac == node.node.primary_mac || *mac == node.node.bmc_mac,
        Host::Name(n) => name_matches(selected, n),
    }
}

/// The BMCs `query` names among the plan's `nodes`, in plan order, with
/// their addresses from `resolver`. Host names need the cluster
/// `selection` (without one only MACs match). Unknown hosts, a single
/// name matching several nodes and an empty result are errors.
pub fn select_targets(
    nodes: &[PlannedNode],
    selection: Option<&Selection>,
    resolver: &BmcResolver,
    query: &TargetQuery,
) -> Result<Vec<BmcTarget>, Error> {
    let wanted = query.wanted.as_deref();
    let filter_excluded = query.all || wanted.is_some_and(|w| w.len() > 1);
    let mut targets = Vec::new();
    let mut matched = vec![false; wanted.map_or(0, <[Host]>::len)];
    for planned in nodes {
        let node = &planned.node;
        let selected = selection.and_then(|s| {
            s.nodes()
                .iter()
                .find(|n| n.planned.node.primary_mac == node.primary_mac)
        });
        let is_excluded = selected.is_some_and(|s| s.excluded)
            || query.exclude.iter().any(|h| match h {
                Host::Mac(m) => node.has_mac(*m),
                Host::Name(_) => host_matches(planned, selected, h),
            });
        let is_wanted = match wanted {
            None => query.all,
            Some(list) => {
                let mut any = false;
                for (i, h) in list.iter().enumerate() {
                    if host_matches(planned, selected, h) {
                        matched[i] = true;
                        any = true;
                    }
                }
                any
            }
        };
        if !is_wanted || (filter_excluded && is_excluded) {
            continue;
        }
        let r = resolver.resolve(planned, query.port);
        targets.push(BmcTarget {
            label: node.bmc_mac.to_string(),
            warning: r.warning(node.bmc_mac),
            address: r.address,
            bmc_mac: Some(node.bmc_mac),
            mac: Some(node.primary_mac),
            ip: Some(planned.ip),
            hostname: selected.and_then(|s| s.hostname.clone()),
            source: r.source,
        });
    }
    if let Some(list) = wanted {
        let unknown: Vec<String> = list
            .iter()
            .zip(&matched)
            .filter(|(_, m)| !**m)
            .map(|(h, _)| format!("{:?}", h.to_string()))
            .collect();
        if !unknown.is_empty() {
            return Err(Error::Config(format!(
                "no node {} in the inventory (give a host name, primary MAC or BMC MAC; the management node has no plan entry)",
                unknown.join(", ")
            )));
        }
        if list.len() == 1 && targets.len() > 1 {
            return Err(Error::Config(format!(
                "{:?} matches {} nodes",
                list[0].to_string(),
                targets.len()
            )));
        }
    }
    if targets.is_empty() {
        return Err(Error::Config("no nodes selected".into()));
    }
    Ok(targets)
}

#[cfg(test)]
mod tests {
    use super::*;
    use racker_inventory::{
        AddressPlan, HostList, Inventory, LocalInterface, PlanOptions, Provision, SelectionOptions,
    };

    const CSV: &str = "Primary MAC address, BMC MAC address, Secondary MAC address, Node Type, Comments\n\
        00:11:22:33:44:00, 00:11:22:33:44:01, 00:11:22:33:44:30, red, mgmt\n\
        00:11:22:33:44:10, 00:11:22:33:44:11, , red, a\n\
        00:11:22:33:44:20, 00:11:22:33:44:21, , red, b\n\
        00:11:22:33:44:40, 00:11:22:33:44:41, , red, c\n";

    fn rack() -> (AddressPlan, Selection) {
        let inventory = Inventory::parse("nodes.csv", CSV.as_bytes()).unwrap();
        let management = inventory
            .management(&[
                LocalInterface {
                    name: "eth0".into(),
                    mac: "00:11:22:33:44:00".parse().unwrap(),
                },
                LocalInterface {
                    name: "eth1".into(),
                    mac: "00:11:22:33:44:30".parse().unwrap(),
                },
            ])
            .unwrap();
        let plan = AddressPlan::new(&inventory, &management, &PlanOptions::default()).unwrap();
        let selection = racker_inventory::select(
            &plan,
            &SelectionOptions {
                provision: Provision::Flatcar,
                ..SelectionOptions::default()
            },
        )
        .unwrap();
        (plan, selection)
    }

    fn names(query: &TargetQuery) -> Result<Vec<String>, String> {
        let (plan, selection) = rack();
        let resolver = BmcResolver::new(racker_netboot::LeaseTable::default());
        select_targets(plan.nodes(), Some(&selection), &resolver, query)
            .map(|t| t.iter().map(BmcTarget::host_label).collect())
            .map_err(|e| e.to_string())
    }

    fn hosts(text: &str) -> Vec<Host> {
        text.parse::<HostList>().unwrap().expand()
    }

    #[test]
    fn names_macs_ranges_all_and_exclude() {
        let q = |wanted: Option<&str>, all: bool, exclude: &str| TargetQuery {
            wanted: wanted.map(hosts),
            all,
            exclude: hosts(exclude),
            port: 623,
        };
        let (plan, _) = rack();
        let first = plan.nodes()[0].node.bmc_mac.to_string();
        let all = names(&q(None, true, "")).unwrap();
        assert_eq!(all.len(), 3, "{all:?}");
        assert_eq!(
            names(&q(Some(&all[1]), false, "")).unwrap(),
            [all[1].clone()]
        );
        assert_eq!(
            names(&q(Some(&first), false, "")).unwrap(),
            [all[0].clone()]
        );
        let range = format!("{},{}", all[0], all[2]);
        assert_eq!(names(&q(Some(&range), false, "")).unwrap().len(), 2);
        // --exclude by name or MAC filters --all and lists, not one node.
        assert_eq!(names(&q(None, true, &all[1])).unwrap().len(), 2);
        assert_eq!(names(&q(None, true, &first)).unwrap().len(), 2);
        assert_eq!(
            names(&q(Some(&range), false, &all[0])).unwrap(),
            [all[2].clone()]
        );
        assert_eq!(
            names(&q(Some(&all[0]), false, &all[0])).unwrap(),
            [all[0].clone()]
        );
        let unknown = names(&q(Some("node-9"), false, "")).unwrap_err();
        assert!(unknown.starts_with("no node \"node-9\""), "{unknown}");
        let empty = names(&q(None, true, &format!("{},{},{}", all[0], all[1], all[2])));
        assert_eq!(empty.unwrap_err(), "no nodes selected");
    }

    #[test]
    fn host_targets_take_the_default_port_unless_given() {
        let t = BmcTarget::host("10.0.0.9", 623).unwrap();
        assert_eq!(t.address.to_string(), "10.0.0.9:623");
        assert_eq!(t.source, BmcSource::Host);
        assert_eq!(t.node(), None);
        let t = BmcTarget::host("10.0.0.9:6230", 623).unwrap();
        assert_eq!(t.address.port(), 6230);
        let json = serde_json::to_value(&t).unwrap();
        assert_eq!(json["address_source"], "host");
        assert_eq!(json["bmc_ip"], "10.0.0.9");
        assert_eq!(json["bmc_port"], 6230);
    }
}
