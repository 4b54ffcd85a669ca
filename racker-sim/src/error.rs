//! The crate's error type.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Errors from the simulator's IO edge (the sans-IO BMC core never fails:
/// it answers or ignores every datagram).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A BMC's UDP socket could not be bound.
    #[error("cannot bind simulated BMC {mac} to {addr}: {source}")]
    Bind {
        /// BMC MAC address (lower-case colon form).
        mac: String,
        /// Address that was requested.
        addr: SocketAddr,
        /// Underlying IO error.
        source: std::io::Error,
    },
    /// Two nodes share a BMC MAC address.
    #[error("duplicate BMC MAC address {mac}")]
    DuplicateMac {
        /// The repeated MAC.
        mac: String,
    },
    /// A fault specification could not be parsed.
    #[error("invalid fault {spec:?}: {reason}")]
    InvalidFault {
        /// What was given.
        spec: String,
        /// Why it was rejected.
        reason: String,
    },
    /// A bind prefix / address plan could not place the requested node count.
    #[error("cannot place {count} BMCs under bind prefix {prefix}: {reason}")]
    AddressPlan {
        /// Bind prefix given.
        prefix: String,
        /// Number of nodes.
        count: usize,
        /// Why.
        reason: String,
    },
    /// A state file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Underlying IO error.
        source: std::io::Error,
    },
    /// A state file is not the expected JSON.
    #[error("{path}: {source}")]
    Json {
        /// The file.
        path: PathBuf,
        /// Parser error.
        source: serde_json::Error,
    },
    /// A fault names a MAC that no node of the inventory has.
    #[error("no node has MAC {mac}")]
    UnknownMac {
        /// The MAC given.
        mac: racker_inventory::MacAddr,
    },
    /// The BMC credential files are invalid.
    #[error(transparent)]
    Credentials(Box<racker_inventory::Error>),
    /// nodes.csv could not be read or is invalid.
    #[error(transparent)]
    Inventory(Box<racker_inventory::Error>),
    /// A file could not be written.
    #[error("{action} {}", path.display())]
    Write {
        /// What was being done (`creating`, `writing`).
        action: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The options of a served rack do not fit together (the message names
    /// the command-line flag).
    #[error("{0}")]
    Options(String),
    /// The simulated firmware could not start.
    #[error(transparent)]
    Firmware(#[from] crate::firmware::FirmwareError),
}
