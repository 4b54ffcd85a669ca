//! The error type of the crate.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use racker_inventory::MacAddr;

use crate::state::TransitionError;

/// Why a bootstrap (or a status collection) could not run.
///
/// Node failures are not errors: they are reported as events, decided on
/// through the [`FailurePolicy`](crate::FailurePolicy), and end in an
/// [`Outcome`](crate::Outcome). An `Error` means the bootstrap itself could
/// not go on (bad input, a file that cannot be written, a port in use).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The inventory, address plan or selection was refused.
    #[error(transparent)]
    Inventory(#[from] racker_inventory::Error),
    /// An IPMI session could not be set up.
    #[error(transparent)]
    Ipmi(#[from] racker_ipmi::Error),
    /// The DHCP server refused its configuration or could not bind.
    #[error(transparent)]
    Dhcp(#[from] racker_netboot::DhcpError),
    /// The boot content (HTTP, TFTP, reports) failed.
    #[error(transparent)]
    Content(#[from] racker_netboot::ContentError),
    /// Rendering or writing the cluster configuration failed.
    #[error(transparent)]
    Render(#[from] racker_lokomotive::RenderError),
    /// A node state transition was refused (a bug, or a hand-edited state file).
    #[error(transparent)]
    Transition(#[from] TransitionError),
    /// A file could not be read or written.
    #[error("{action} {path}")]
    Io {
        /// What was being done (`"reading"`, `"writing"`, ...).
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Boot files the nodes will request are missing (nothing was powered).
    #[error(
        "preflight: {} boot file(s) the nodes will request are missing; no node was powered:\n{}\nFetch the Flatcar files with: racker netboot fetch-assets{}",
        missing.len(),
        missing.iter().map(|m| format!("  {m}")).collect::<Vec<_>>().join("\n"),
        if missing.iter().any(|m| m.starts_with("iPXE")) { "\nInstall the iPXE binaries (Debian: apt-get install ipxe) or pass --boot-files DIR" } else { "" }
    )]
    Preflight {
        /// What is missing, one line each (`kernel: <path> missing`).
        missing: Vec<String>,
    },
    /// `racker reprovision` without a recorded bootstrap, or of a node it
    /// does not know.
    #[error("{0}")]
    Reprovision(String),
    /// Handing the rack network over to the service failed.
    #[error("{0}")]
    Service(String),
    /// The state file exists but does not parse.
    #[error("{path} is corrupt")]
    CorruptState {
        /// The state file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// The cluster directory belongs to no resumable bootstrap and is not empty.
    #[error(
        "the cluster directory {} exists and is not empty.\n  To keep it, pass another --cluster-dir.\n  To start over, move it away (and remove {} if a previous bootstrap left it).",
        cluster_dir.display(),
        state_file.display()
    )]
    ClusterDirNotEmpty {
        /// The cluster directory.
        cluster_dir: PathBuf,
        /// The state file of the earlier bootstrap.
        state_file: PathBuf,
    },
    /// A Lokomotive bootstrap needs `lokoctl`.
    #[error(
        "lokoctl was not found on PATH; install Lokomotive's lokoctl (racker's installer can ship it) or set RACKER_LOKOCTL"
    )]
    LokoctlNotFound,
    /// `RACKER_LOKOCTL` names no file.
    #[error("RACKER_LOKOCTL={} is not a file", .0.display())]
    LokoctlNotAFile(PathBuf),
    /// A program could not be started.
    #[error("starting {}", program.display())]
    Spawn {
        /// The program.
        program: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The netboot services could not start.
    #[error(transparent)]
    Netboot(#[from] racker_netboot::service::ServiceError),
    /// The PXE interface failed the safety checks.
    #[error("refusing to serve DHCP on {interface} (--force overrides)")]
    RefusedInterface {
        /// The interface.
        interface: String,
        /// What the check found.
        #[source]
        source: racker_netboot::DhcpError,
    },
    /// The management node's internal address could not be put on the PXE interface.
    #[error("putting {ip}/{prefix_len} on the PXE interface {interface}")]
    InterfaceAddress {
        /// The address.
        ip: Ipv4Addr,
        /// Its prefix length.
        prefix_len: u8,
        /// The interface.
        interface: String,
        /// The cause.
        #[source]
        source: racker_netboot::iface::IfaceError,
    },
    /// TFTP could not start.
    #[error("{}", if addr.port() < 1024 {
        "TFTP port below 1024 needs root (or use --tftp-listen ADDR:PORT with a high port)"
    } else {
        "starting TFTP"
    })]
    Tftp {
        /// Where TFTP was to listen.
        addr: SocketAddr,
        /// The cause.
        #[source]
        source: racker_netboot::ContentError,
    },
    /// HTTP could not bind.
    #[error("binding HTTP on {addr}")]
    HttpBind {
        /// Where HTTP was to listen.
        addr: SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The DHCP lease table could not be read.
    #[error("reading the DHCP lease table in {}", state_dir.display())]
    Leases {
        /// The state directory.
        state_dir: PathBuf,
        /// The cause.
        #[source]
        source: racker_netboot::DhcpError,
    },
    /// An excluded node could not be removed from the rendered configuration.
    #[error("removing {mac} from the rendered configuration")]
    Exclude {
        /// The node.
        mac: MacAddr,
        /// The cause.
        #[source]
        source: racker_lokomotive::RenderError,
    },
    /// The configuration is inconsistent.
    #[error("{0}")]
    Config(String),
    /// A configuration value is out of range or incomplete.
    #[error(transparent)]
    Invalid(#[from] crate::config::ConfigError),
    /// The simulated rack of the demo failed.
    #[cfg(feature = "demo")]
    #[error(transparent)]
    Sim(#[from] racker_sim::Error),
    /// The demo's folder cannot be used.
    #[error("{reason}")]
    DemoDir {
        /// The folder.
        dir: PathBuf,
        /// Why not.
        reason: String,
    },
    /// The management SSH key pair cannot be read or made.
    #[error("SSH key {}: {reason}", path.display())]
    SshKey {
        /// The key file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// No SSH public key was given and the management key is missing.
    #[error(
        "no SSH public key: {} is missing; create it with `racker factory gen-ssh-key` or pass --ssh-public-key FILE",
        path.display()
    )]
    NoSshPublicKey {
        /// The management public key file.
        path: PathBuf,
    },
    /// The local network interfaces cannot be listed.
    #[error("listing the local network interfaces in {}", dir.display())]
    Interfaces {
        /// The folder listing them (`/sys/class/net`).
        dir: PathBuf,
        /// Why.
        #[source]
        source: racker_inventory::Error,
    },
}

impl Error {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        Self::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
