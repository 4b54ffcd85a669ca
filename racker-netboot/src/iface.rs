//! The management node's internal address on its PXE interface (stage 1 of
//! `racker bootstrap`, and `racker netboot serve`): the interface is brought
//! up and `<management IP>/<prefix>` added over rtnetlink when missing.
//! Nothing else on the interface is touched; an address added here lasts
//! until the interface goes down or the machine reboots (persistent
//! configuration belongs to the OS's network configuration).

use std::net::{IpAddr, Ipv4Addr};

use futures::TryStreamExt as _;

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
    let link = handle
        .link()
        .get()
        .match_name(interface.to_owned())
        .execute()
        .try_next()
        .await;
    let index = match link {
        Ok(Some(link)) => link.header.index,
        Ok(None) => return Err(IfaceError::NoSuchInterface(interface.to_owned())),
        // The kernel answers ENODEV for an unknown name.
        Err(e) if e.to_string().contains("No such device") => {
            return Err(IfaceError::NoSuchInterface(interface.to_owned()));
        }
        Err(e) => return Err(netlink("looking up the interface", interface, e)),
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
