//! Which client addresses may report for a node (docs/netboot.md,
//! "Install reports").
//!
//! A report's token proves the sender read the node's Ignition, which any
//! host on the rack network can fetch. So the HTTP server also checks where
//! a report comes from: a node reports only from its planned address (its
//! DHCP reservation) or the address DHCP leased to it. A simulated rack,
//! whose nodes all report from 127.0.0.1, needs an explicit allowance for
//! loopback clients, which the netboot service grants only when its HTTP
//! server listens on loopback (nobody else can reach it then).
//!
//! [`ReportSources::check`] is sans-IO (the lease is passed in);
//! [`ReportSources::check_from`] reads the lease table when the planned
//! address does not match.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::SystemTime;

use racker_inventory::MacAddr;

/// The addresses each node may report from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReportSources {
    planned: BTreeMap<MacAddr, IpAddr>,
    leases_dir: Option<PathBuf>,
    loopback: bool,
}

/// Why a report's source address was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SourceRefusal {
    /// The node the report was for.
    pub mac: MacAddr,
    /// Where it came from (`None`: the server could not tell).
    pub peer: Option<IpAddr>,
    /// The node's planned address, if it has one.
    pub planned: Option<IpAddr>,
    /// The address DHCP leased to it, if any.
    pub leased: Option<IpAddr>,
}

impl std::fmt::Display for SourceRefusal {
    /// `sent from 172.24.213.9, not from 00:11:..'s address (planned
    /// 172.24.213.5, no lease)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.peer {
            Some(peer) => write!(f, "sent from {peer}, not from {}'s address (", self.mac)?,
            None => write!(f, "sender's address unknown, {}'s address is (", self.mac)?,
        }
        match self.planned {
            Some(ip) => write!(f, "planned {ip}, ")?,
            None => write!(f, "no planned address, ")?,
        }
        match self.leased {
            Some(ip) => write!(f, "leased {ip})"),
            None => write!(f, "no lease)"),
        }
    }
}

/// How a report's source was accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SourceMatch {
    /// The node's planned address.
    Planned,
    /// The address DHCP leased to it.
    Leased,
    /// A loopback client of a loopback-only (simulated) rack.
    Loopback,
}

/// `::ffff:a.b.c.d` → `a.b.c.d`.
fn canonical(ip: IpAddr) -> IpAddr {
    ip.to_canonical()
}

impl ReportSources {
    /// Reports of each node only from its planned address.
    pub fn new(planned: impl IntoIterator<Item = (MacAddr, IpAddr)>) -> Self {
        Self {
            planned: planned
                .into_iter()
                .map(|(m, ip)| (m, canonical(ip)))
                .collect(),
            leases_dir: None,
            loopback: false,
        }
    }

    /// Also from the address in the lease table of `state_dir`
    /// ([`crate::LeaseTable::load`]) while the lease is active.
    pub fn with_leases(mut self, state_dir: impl Into<PathBuf>) -> Self {
        self.leases_dir = Some(state_dir.into());
        self
    }

    /// Also from any loopback address (a simulated rack on loopback only).
    pub fn allow_loopback(mut self, on: bool) -> Self {
        self.loopback = on;
        self
    }

    /// Whether loopback clients are allowed.
    pub fn loopback_allowed(&self) -> bool {
        self.loopback
    }

    /// Whether `mac` may report from `peer`, given the address DHCP leased
    /// to it (`leased`).
    pub fn check(
        &self,
        mac: MacAddr,
        peer: Option<IpAddr>,
        leased: Option<IpAddr>,
    ) -> Result<SourceMatch, SourceRefusal> {
        let peer = peer.map(canonical);
        let planned = self.planned.get(&mac).copied();
        let leased = leased.map(canonical);
        match peer {
            Some(p) if Some(p) == planned => Ok(SourceMatch::Planned),
            Some(p) if Some(p) == leased => Ok(SourceMatch::Leased),
            Some(p) if self.loopback && p.is_loopback() => Ok(SourceMatch::Loopback),
            _ => Err(SourceRefusal {
                mac,
                peer,
                planned,
                leased,
            }),
        }
    }

    /// [`check`](Self::check), reading `mac`'s active lease from the lease
    /// table when the planned address does not match.
    pub fn check_from(
        &self,
        mac: MacAddr,
        peer: Option<IpAddr>,
        now: SystemTime,
    ) -> Result<SourceMatch, SourceRefusal> {
        match self.check(mac, peer, None) {
            Ok(m) => Ok(m),
            Err(refusal) => {
                let leased = self.leases_dir.as_ref().and_then(|dir| {
                    let table = crate::LeaseTable::load(dir).ok()?;
                    let lease = table.get(mac)?;
                    lease.is_active(now).then_some(IpAddr::V4(lease.ip))
                });
                match leased {
                    Some(_) => self.check(mac, peer, leased),
                    None => Err(refusal),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn mac(i: u8) -> MacAddr {
        MacAddr::new([2, 0, 0, 0, 0, i])
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn planned_leased_and_loopback() {
        let s = ReportSources::new([(mac(1), ip("172.24.213.2"))]);
        assert_eq!(
            s.check(mac(1), Some(ip("172.24.213.2")), None),
            Ok(SourceMatch::Planned)
        );
        // IPv4-mapped form of the same address.
        assert_eq!(
            s.check(mac(1), Some(ip("::ffff:172.24.213.2")), None),
            Ok(SourceMatch::Planned)
        );
        let forged = s.check(mac(1), Some(ip("172.24.213.9")), None).unwrap_err();
        assert_eq!(
            forged.to_string(),
            "sent from 172.24.213.9, not from 02:00:00:00:00:01's address (planned 172.24.213.2, no lease)"
        );
        assert_eq!(
            s.check(mac(1), Some(ip("172.24.213.9")), Some(ip("172.24.213.9"))),
            Ok(SourceMatch::Leased)
        );
        // Another node's planned address is not this node's.
        assert!(s.check(mac(2), Some(ip("172.24.213.2")), None).is_err());
        // Unknown peer: refused.
        assert!(s.check(mac(1), None, None).is_err());
        // Loopback only when allowed.
        assert!(s.check(mac(1), Some(ip("127.0.0.1")), None).is_err());
        let sim = s.clone().allow_loopback(true);
        assert_eq!(
            sim.check(mac(1), Some(ip("127.0.0.1")), None),
            Ok(SourceMatch::Loopback)
        );
        assert_eq!(
            sim.check(mac(9), Some(ip("::1")), None),
            Ok(SourceMatch::Loopback)
        );
        assert!(sim.check(mac(1), Some(ip("10.0.0.1")), None).is_err());
    }

    proptest::proptest! {
        /// A report is accepted exactly from the planned address, the
        /// leased one, or (when allowed) loopback; whatever the peer's
        /// spelling (IPv4 or IPv4-mapped IPv6).
        #[test]
        fn accepted_exactly_from_the_nodes_addresses(
            planned in proptest::option::of(proptest::prelude::any::<u32>()),
            leased in proptest::option::of(proptest::prelude::any::<u32>()),
            peer in proptest::prelude::any::<u32>(),
            mapped in proptest::prelude::any::<bool>(),
            loopback in proptest::prelude::any::<bool>(),
        ) {
            let v4 = |n: u32| IpAddr::V4(std::net::Ipv4Addr::from(n));
            let s = ReportSources::new(planned.map(|p| (mac(1), v4(p)))).allow_loopback(loopback);
            let seen = match v4(peer) {
                IpAddr::V4(a) if mapped => IpAddr::V6(a.to_ipv6_mapped()),
                other => other,
            };
            let result = s.check(mac(1), Some(seen), leased.map(v4));
            let expected = planned == Some(peer)
                || leased == Some(peer)
                || (loopback && v4(peer).is_loopback());
            proptest::prop_assert_eq!(result.is_ok(), expected, "{:?}", result);
            if let Err(refusal) = result {
                proptest::prop_assert_eq!(refusal.peer, Some(v4(peer)));
            }
        }
    }

    #[test]
    fn leases_come_from_the_lease_table_while_active() {
        let dir = tempfile::tempdir().unwrap();
        let mut table = crate::LeaseTable::new();
        table.insert(crate::Lease {
            mac: mac(3),
            ip: "172.24.213.200".parse().unwrap(),
            expires: 1_000,
            reserved: false,
        });
        table.save(dir.path()).unwrap();
        let s = ReportSources::new([]).with_leases(dir.path());
        let before = UNIX_EPOCH + Duration::from_secs(999);
        let after = UNIX_EPOCH + Duration::from_secs(1_000);
        assert_eq!(
            s.check_from(mac(3), Some(ip("172.24.213.200")), before),
            Ok(SourceMatch::Leased)
        );
        let expired = s
            .check_from(mac(3), Some(ip("172.24.213.200")), after)
            .unwrap_err();
        assert_eq!(expired.leased, None);
        assert!(
            s.check_from(mac(4), Some(ip("172.24.213.200")), before)
                .is_err()
        );
    }
}
