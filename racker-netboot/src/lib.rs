//! Racker netboot library (see the workspace README).
//!
//! The protocol cores are sans-IO and compile without any feature: the
//! DHCP server ([`DhcpServer`]), its lease table, the DHCP input pre-check
//! ([`dhcp::precheck`]), the TFTP packets and transfers ([`tftp`]), the
//! matchbox catalog, installer reports and the HTTP query parsing
//! ([`query`]). The IO edges sit behind cargo features, all on by default:
//!
//! - `net`: the tokio DHCP and TFTP sockets and serve loops;
//! - `http`: the HTTP server (axum), `/metrics` and the
//!   [`service::NetbootService`] builder that wires DHCP, TFTP and HTTP
//!   together (with `iface`);
//! - `assets`: downloading and verifying Flatcar (reqwest, pgp);
//! - `iface`: the PXE interface's address and the default-route guard
//!   (rtnetlink).
#![deny(missing_docs)]
#![deny(clippy::unwrap_used)]

// DHCP/PXE server, lease table, dnsmasq rendering: issue 5.
pub mod dhcp;
pub mod dnsmasq;
#[cfg(feature = "iface")]
pub mod iface;
mod leases;
pub use dhcp::{
    BootConfig, DhcpConfig, DhcpError, DhcpServer, InstalledNodes, Mode, NoneInstalled, Reservation,
};
pub use leases::{Lease, LeaseTable, LeaseView, LeasesView};

// Boot content (TFTP, HTTP, assets, reports, matchbox): issue 6.
#[cfg(feature = "assets")]
pub mod assets;
#[cfg(feature = "http")]
pub mod http;
pub mod matchbox;
#[cfg(feature = "grpc")]
pub mod matchbox_api;
mod profile;
pub mod query;
pub mod report;
pub mod tftp;
pub mod trail;
pub use profile::{ContentError, IgnitionDir, IgnitionProfile, IgnitionSource};

// DHCP + TFTP + HTTP in one builder (`racker netboot serve`, bootstrap).
#[cfg(all(feature = "http", feature = "iface"))]
pub mod service;
