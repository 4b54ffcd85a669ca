//! The PXE interface over rtnetlink (feature `iface`).
//!
//! - [`ensure_address`]: the management node's internal address on its PXE
//!   interface (stage 1 of `racker bootstrap`, and `racker netboot serve`):
//!   the interface is brought up and `<management IP>/<prefix>` added when
//!   missing. Nothing else on the interface is touched; an address added
//!   here lasts until the interface goes down or the machine reboots
//!   (persistent configuration belongs to the OS's network configuration).
//! - [`check_interface`]: the guard that refuses to serve DHCP on the wrong
//!   NIC: the interface must exist, carry the management node's secondary
//!   MAC and carry no default route. Routes come from the kernel
//!   ([`RouteSource::Kernel`]): every routing table, IPv4 and IPv6, so an
//!   IPv6 default route (router advertisements) or one in a policy-routing
//!   table on the public NIC is found too.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use futures::TryStreamExt as _;
use racker_inventory::MacAddr;
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteType,
};

use crate::dhcp::DhcpError;

/// Why the address could not be put in place.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IfaceError {
    /// The rtnetlink socket could not be opened.
    #[error("cannot open a netlink socket: {0}")]
    Socket(#[source] std::io::Error),
    /// No interface of that name exists.
    #[error("network interface {0} does not exist")]
    NoSuchInterface(String),
    /// The kernel refused a request (typically: not root / no CAP_NET_ADMIN).
    #[error("{action} on {interface} failed: {reason}{hint}")]
    Netlink {
        /// What was asked.
        action: &'static str,
        /// The interface.
        interface: String,
        /// The kernel's answer.
        reason: String,
        /// A hint for the operator.
        hint: &'static str,
    },
}

/// What [`ensure_address`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressChange {
    /// The address was already on the interface.
    AlreadyPresent,
    /// The address was added.
    Added,
}

fn netlink(action: &'static str, interface: &str, e: rtnetlink::Error) -> IfaceError {
    let reason = e.to_string();
    let hint = if reason.contains("Operation not permitted") || reason.contains("EPERM") {
        " (needs root or CAP_NET_ADMIN)"
    } else {
        ""
    };
    IfaceError::Netlink {
        action,
        interface: interface.to_owned(),
        reason,
        hint,
    }
}

/// Bring `interface` up and make sure it carries `ip/prefix_len`.
pub async fn ensure_address(
    interface: &str,
    ip: Ipv4Addr,
    prefix_len: u8,
) -> Result<AddressChange, IfaceError> {
    let (connection, handle, _) = rtnetlink::new_connection().map_err(IfaceError::Socket)?;
    let conn = tokio::spawn(connection);
    let result = ensure_with(&handle, interface, ip, prefix_len).await;
    conn.abort();
    result
}

async fn ensure_with(
    handle: &rtnetlink::Handle,
    interface: &str,
    ip: Ipv4Addr,
    prefix_len: u8,
) -> Result<AddressChange, IfaceError> {
    let Some(index) = link_index(handle, interface).await? else {
        return Err(IfaceError::NoSuchInterface(interface.to_owned()));
    };
    handle
        .link()
        .set(rtnetlink::LinkUnspec::new_with_index(index).up().build())
        .execute()
        .await
        .map_err(|e| netlink("bringing the interface up", interface, e))?;
    let present = handle
        .address()
        .get()
        .set_link_index_filter(index)
        .set_address_filter(IpAddr::V4(ip))
        .execute()
        .try_next()
        .await
        .map_err(|e| netlink("listing addresses", interface, e))?
        .is_some();
    if present {
        return Ok(AddressChange::AlreadyPresent);
    }
    handle
        .address()
        .add(index, IpAddr::V4(ip), prefix_len)
        .execute()
        .await
        .map_err(|e| netlink("adding the address", interface, e))?;
    Ok(AddressChange::Added)
}

/// Where [`check_interface`] learns the routes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum RouteSource {
    /// Ask the kernel over rtnetlink: every table, IPv4 and IPv6.
    #[default]
    Kernel,
    /// A file in `/proc/net/route` format (IPv4 only; for tests that fake
    /// the machine's interfaces).
    ProcNetRoute(PathBuf),
}

/// A default route (destination `0.0.0.0/0` or `::/0`) found on an
/// interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefaultRoute {
    /// `true` for IPv6.
    pub ipv6: bool,
    /// The routing table (254 is `main`).
    pub table: u32,
    /// The gateway, when the route has one.
    pub gateway: Option<IpAddr>,
}

impl std::fmt::Display for DefaultRoute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.ipv6 { "IPv6" } else { "IPv4" })?;
        f.write_str(" default route")?;
        if let Some(gw) = self.gateway {
            write!(f, " via {gw}")?;
        }
        match self.table {
            254 => f.write_str(" (table main)"),
            t => write!(f, " (table {t})"),
        }
    }
}

/// The interface index of `interface`, `None` when the kernel has no such
/// interface.
async fn link_index(
    handle: &rtnetlink::Handle,
    interface: &str,
) -> Result<Option<u32>, IfaceError> {
    let link = handle
        .link()
        .get()
        .match_name(interface.to_owned())
        .execute()
        .try_next()
        .await;
    match link {
        Ok(link) => Ok(link.map(|l| l.header.index)),
        // The kernel answers ENODEV for an unknown name.
        Err(e) if e.to_string().contains("No such device") => Ok(None),
        Err(e) => Err(netlink("looking up the interface", interface, e)),
    }
}

/// The default route `route` describes when it leaves through interface
/// `index` (directly or as one of its multipath next hops).
fn default_route_via(route: &RouteMessage, index: u32) -> Option<DefaultRoute> {
    let header = &route.header;
    if header.destination_prefix_length != 0 || header.kind != RouteType::Unicast {
        return None;
    }
    let mut table = u32::from(header.table);
    let mut through = false;
    let mut gateway = None;
    for attr in &route.attributes {
        match attr {
            RouteAttribute::Table(t) => table = *t,
            RouteAttribute::Oif(i) => through |= *i == index,
            RouteAttribute::Gateway(gw) => gateway = gateway.or(ip_of(gw)),
            RouteAttribute::MultiPath(hops) => {
                for hop in hops.iter().filter(|h| h.interface_index == index) {
                    through = true;
                    gateway = gateway.or_else(|| {
                        hop.attributes.iter().find_map(|a| match a {
                            RouteAttribute::Gateway(gw) => ip_of(gw),
                            _ => None,
                        })
                    });
                }
            }
            _ => {}
        }
    }
    through.then_some(DefaultRoute {
        ipv6: header.address_family == AddressFamily::Inet6,
        table,
        gateway,
    })
}

fn ip_of(address: &RouteAddress) -> Option<IpAddr> {
    match address {
        RouteAddress::Inet(ip) => Some(IpAddr::V4(*ip)),
        RouteAddress::Inet6(ip) => Some(IpAddr::V6(*ip)),
        _ => None,
    }
}

/// Every default route (IPv4 and IPv6, in every routing table) that leaves
/// through `interface`, as the kernel reports them; empty when the kernel
/// has no such interface.
pub async fn default_routes(interface: &str) -> Result<Vec<DefaultRoute>, IfaceError> {
    let (connection, handle, _) = rtnetlink::new_connection().map_err(IfaceError::Socket)?;
    let conn = tokio::spawn(connection);
    let result = default_routes_with(&handle, interface).await;
    conn.abort();
    result
}

async fn default_routes_with(
    handle: &rtnetlink::Handle,
    interface: &str,
) -> Result<Vec<DefaultRoute>, IfaceError> {
    let Some(index) = link_index(handle, interface).await? else {
        return Ok(Vec::new());
    };
    let mut found = Vec::new();
    for family in [AddressFamily::Inet, AddressFamily::Inet6] {
        // A dump request with table RT_TABLE_UNSPEC (and no strict
        // checking) returns the routes of every table.
        let mut request = RouteMessage::default();
        request.header.address_family = family;
        request.header.table = RouteHeader::RT_TABLE_UNSPEC;
        let mut routes = handle.route().get(request).execute();
        while let Some(route) = routes
            .try_next()
            .await
            .map_err(|e| netlink("listing routes", interface, e))?
        {
            found.extend(default_route_via(&route, index));
        }
    }
    Ok(found)
}

/// The IPv4 default routes of `interface` in a `/proc/net/route`-format
/// table (`None` when the file cannot be read).
fn proc_default_routes(interface: &str, proc_net_route: &Path) -> Option<Vec<DefaultRoute>> {
    let routes = std::fs::read_to_string(proc_net_route).ok()?;
    // Columns: Iface Destination Gateway Flags RefCnt Use Metric Mask ...
    Some(
        routes
            .lines()
            .skip(1)
            .filter_map(|line| {
                let cols: Vec<&str> = line.split_whitespace().collect();
                let default = cols.first() == Some(&interface)
                    && cols.get(1) == Some(&"00000000")
                    && cols.get(7) == Some(&"00000000");
                default.then(|| DefaultRoute {
                    ipv6: false,
                    table: 254,
                    gateway: cols
                        .get(2)
                        .and_then(|g| u32::from_str_radix(g, 16).ok())
                        .filter(|&g| g != 0)
                        // The kernel prints the network-order word as a
                        // native integer.
                        .map(|g| IpAddr::V4(Ipv4Addr::from(g.to_ne_bytes()))),
                })
            })
            .collect(),
    )
}

/// Refuse to serve DHCP on `interface` when it does not exist, when its MAC
/// (read from `<sys_class_net>/<interface>/address`) is not `expected_mac`
/// (the management node's secondary MAC), or when it carries a default
/// route (IPv4 or IPv6, any routing table) according to `routes`.
///
/// A route table that cannot be read proves nothing: only the kernel's
/// routes or the file's lines count.
pub async fn check_interface(
    interface: &str,
    sys_class_net: &Path,
    expected_mac: Option<MacAddr>,
    routes: &RouteSource,
) -> Result<(), DhcpError> {
    crate::dhcp::transport::check_name_and_mac(interface, sys_class_net, expected_mac)?;
    let refuse = |reason: String| DhcpError::RefusedInterface {
        interface: interface.to_owned(),
        reason,
    };
    let defaults = match routes {
        RouteSource::Kernel => default_routes(interface)
            .await
            .map_err(|e| refuse(format!("cannot list its routes: {e}")))?,
        RouteSource::ProcNetRoute(path) => proc_default_routes(interface, path).unwrap_or_default(),
    };
    match defaults.first() {
        None => Ok(()),
        Some(route) => Err(refuse(format!(
            "it carries the default route (the public network?): {route}"
        ))),
    }
}
