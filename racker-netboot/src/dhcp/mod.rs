//! DHCP and PXE for the rack-internal network.
//!
//! [`DhcpServer`] is the sans-IO core: datagram bytes and the current time
//! in, a [`Reply`] (bytes and where to send them) and a [`Transaction`] log
//! record out. [`precheck`] is the input check run before dhcproto decodes
//! a datagram (racker-sim's firmware runs it on replies too). `transport`
//! (feature `net`) holds the tokio edge: a plain UDP socket for tests and
//! the simulator, and the interface-bound socket on port 67.

mod boot;
mod error;
mod server;
mod stats;
#[cfg(feature = "net")]
pub mod transport;

#[cfg(test)]
mod tests;

use std::collections::{BTreeSet, HashSet};
use std::net::Ipv4Addr;
use std::time::Duration;

use racker_inventory::MacAddr;

pub use boot::{BootConfig, BootFile};
pub use error::DhcpError;
pub use server::{Destination, DhcpServer, Handled, MessageKind, Reply, Transaction, precheck};
pub use stats::DhcpStats;

/// The library's default lease time, two minutes (the original's dnsmasq
/// value); `racker netboot serve` and bootstrap ask for a day (docs/netboot.md).
pub const DEFAULT_LEASE_TIME: Duration = Duration::from_secs(120);

/// A static address for one MAC (a node's primary NIC or a BMC).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    /// The client's hardware address.
    pub mac: MacAddr,
    /// The address it always gets.
    pub ip: Ipv4Addr,
    /// Host name sent in option 12, if any.
    pub hostname: Option<String>,
}

/// Whether the server hands out addresses or only boot information.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Mode {
    /// A full DHCP server: addresses and boot information.
    #[default]
    Full,
    /// ProxyDHCP: another server hands out addresses; answer PXE clients
    /// with boot information only.
    Proxy,
}

/// Configuration of the DHCP core.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DhcpConfig {
    /// Our address on the internal network: server identifier and, unless
    /// [`BootConfig::next_server`] says otherwise, `siaddr`.
    pub server_ip: Ipv4Addr,
    /// Prefix length of the internal subnet.
    pub prefix_len: u8,
    /// Lease time of every lease.
    pub lease_time: Duration,
    /// Inclusive range for unknown MACs; `None` (the default) answers known
    /// MACs only.
    pub dynamic_range: Option<(Ipv4Addr, Ipv4Addr)>,
    /// Option 3, only when configured (single-NIC mode).
    pub router: Option<Ipv4Addr>,
    /// Option 6, only when configured.
    pub dns: Vec<Ipv4Addr>,
    /// Full DHCP or ProxyDHCP.
    pub mode: Mode,
    /// PXE and HTTP boot.
    pub boot: BootConfig,
}

impl DhcpConfig {
    /// A full-mode configuration with 2-minute leases, no dynamic range, no
    /// router or DNS, and boot files served by `server_ip` (HTTP on port 8080).
    pub fn new(server_ip: Ipv4Addr, prefix_len: u8) -> Self {
        Self {
            server_ip,
            prefix_len,
            lease_time: DEFAULT_LEASE_TIME,
            dynamic_range: None,
            router: None,
            dns: Vec::new(),
            mode: Mode::Full,
            boot: BootConfig::new(format!("http://{server_ip}:8080")),
        }
    }

    /// The subnet mask.
    pub fn netmask(&self) -> Ipv4Addr {
        let bits = u32::from(self.prefix_len.min(32));
        Ipv4Addr::from(u32::MAX.checked_shl(32 - bits).unwrap_or(0))
    }

    /// True when `ip` lies in the served subnet.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        let mask = u32::from(self.netmask());
        u32::from(ip) & mask == u32::from(self.server_ip) & mask
    }

    /// Check the configuration is consistent.
    pub fn validate(&self) -> Result<(), DhcpError> {
        if !(8..=30).contains(&self.prefix_len) {
            return Err(DhcpError::Config(format!(
                "prefix length /{} is not between /8 and /30",
                self.prefix_len
            )));
        }
        if self.lease_time < Duration::from_secs(10)
            || self.lease_time.as_secs() > u64::from(u32::MAX)
        {
            return Err(DhcpError::Config(format!(
                "lease time {}s is out of range",
                self.lease_time.as_secs()
            )));
        }
        if let Some((first, last)) = self.dynamic_range {
            if first > last || !self.contains(first) || !self.contains(last) {
                return Err(DhcpError::Config(format!(
                    "dynamic range {first}-{last} is empty or outside {}/{}",
                    self.server_ip, self.prefix_len
                )));
            }
            if (first..=last).contains(&self.server_ip) {
                return Err(DhcpError::Config(format!(
                    "dynamic range {first}-{last} contains the server address {}",
                    self.server_ip
                )));
            }
        }
        self.boot.validate()
    }
}

/// Which MACs the state marks as installed: they get no boot file, so a
/// PXE-first machine boots from its disk instead of reinstalling in a loop.
pub trait InstalledNodes {
    /// True when `mac` (a primary MAC) has been installed.
    fn is_installed(&self, mac: MacAddr) -> bool;
}

/// No node is installed.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoneInstalled;

impl InstalledNodes for NoneInstalled {
    fn is_installed(&self, _mac: MacAddr) -> bool {
        false
    }
}

impl InstalledNodes for BTreeSet<MacAddr> {
    fn is_installed(&self, mac: MacAddr) -> bool {
        self.contains(&mac)
    }
}

impl<S: std::hash::BuildHasher> InstalledNodes for HashSet<MacAddr, S> {
    fn is_installed(&self, mac: MacAddr) -> bool {
        self.contains(&mac)
    }
}

impl<T: InstalledNodes + ?Sized> InstalledNodes for &T {
    fn is_installed(&self, mac: MacAddr) -> bool {
        (**self).is_installed(mac)
    }
}

impl<T: InstalledNodes + ?Sized> InstalledNodes for std::sync::Arc<T> {
    fn is_installed(&self, mac: MacAddr) -> bool {
        (**self).is_installed(mac)
    }
}
