//! Racker netboot library (see the workspace README).
#![deny(missing_docs)]
#![deny(clippy::unwrap_used)]

// DHCP/PXE server, lease table, dnsmasq rendering: issue 5.
pub mod dhcp;
pub mod dnsmasq;
pub mod iface;
mod leases;
pub use dhcp::{
    BootConfig, DhcpConfig, DhcpError, DhcpServer, InstalledNodes, Mode, NoneInstalled, Reservation,
};
pub use leases::{Lease, LeaseTable};

// Boot content (TFTP, HTTP, assets, reports, matchbox): issue 6.
pub mod assets;
pub mod http;
pub mod matchbox;
#[cfg(feature = "grpc")]
pub mod matchbox_api;
mod profile;
pub mod report;
pub mod tftp;
pub use profile::{ContentError, IgnitionDir, IgnitionProfile, IgnitionSource};
