//! The error type of the DHCP server, lease table and dnsmasq renderer.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Everything that can go wrong in the DHCP side of `racker-netboot`.
///
/// Malformed packets are reported as [`DhcpError::Malformed`] so the
/// transport can drop them with a rate-limited log line; they never stop the
/// server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DhcpError {
    /// A received datagram is not a DHCP request we can handle.
    #[error("malformed DHCP packet ({len} bytes): {reason}")]
    Malformed {
        /// Length of the datagram.
        len: usize,
        /// Why it was rejected.
        reason: String,
    },
    /// A reply could not be encoded (a configured value is too long).
    #[error("cannot encode DHCP reply to {mac}: {reason}")]
    Encode {
        /// The client the reply was for.
        mac: racker_inventory::MacAddr,
        /// The encoder's message.
        reason: String,
    },
    /// The configuration is inconsistent.
    #[error("invalid DHCP configuration: {0}")]
    Config(String),
    /// Reading or writing the lease table failed.
    #[error("lease table {path}: {source}")]
    LeaseIo {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The lease table file is not valid JSON of the documented format.
    #[error("lease table {path} is corrupt: {source}")]
    LeaseFormat {
        /// The lease file.
        path: PathBuf,
        /// The parser's error.
        source: serde_json::Error,
    },
    /// Creating, configuring or binding the server socket failed.
    #[error("cannot bind the DHCP socket on {what}: {source}")]
    Bind {
        /// Address or interface.
        what: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Sending or receiving on the socket failed.
    #[error("DHCP socket error on {local}: {source}")]
    Socket {
        /// The local address of the socket.
        local: SocketAddr,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The interface must not serve DHCP (default route, wrong MAC, missing).
    #[error("refusing to serve DHCP on interface {interface}: {reason} (use --force to override)")]
    RefusedInterface {
        /// The interface name.
        interface: String,
        /// Why.
        reason: String,
    },
    /// Writing the dnsmasq configuration failed.
    #[error("cannot write {path}: {source}")]
    Render {
        /// The file being written.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}
