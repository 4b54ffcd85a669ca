//! The simulated nodes' firmware: what a server does between power-on and
//! its installed OS, against racker's real netboot services.
//!
//! When the chassis boots with boot device PXE, the firmware runs a real
//! DHCP exchange as a PXE ROM (option 93 client architecture, vendor class
//! `PXEClient:Arch:...`), takes the TFTP boot file name, then, "as iPXE",
//! a second exchange with the raw user class `iPXE` that yields the HTTP
//! URL of `/boot.ipxe`; it follows the script's `chain` to the node's own
//! script, downloads the kernel and initrds (checking `Content-Length`
//! against the bytes received), fetches the Ignition config named by
//! `ignition.config.url=` on the kernel command line, reports `installing`,
//! "installs" for a configurable delay, sets persistent EFI disk boot
//! through its BMC, POSTs `/report?...&stage=installed` and reboots into
//! the disk, where it prints `booted from disk` and [`OS_UP_MARKER`].
//! Every step is written to the node's serial console (visible over SOL).
//!
//! * [`FirmwareMachine`] is the sans-IO state machine (no sockets, no
//!   clock): boots, datagrams, HTTP outcomes and the time go in,
//!   [`Action`]s come out.
//! * [`Firmware::spawn`] is the tokio driver for one [`SimNode`]: a UDP
//!   socket on loopback for DHCP, `reqwest` for HTTP, and IPMI over LAN
//!   (`racker-ipmi`) to the node's own simulated BMC for the boot device.
//! * [`FirmwareFault`]s inject the failures a rack sees: no lease,
//!   broken downloads, failed installs, hung installers.
//!
//! ```no_run
//! # async fn demo(rack: &racker_sim::SimRack) -> Result<(), racker_sim::firmware::FirmwareError> {
//! use racker_sim::firmware::{BmcAccess, Firmware, FirmwareConfig};
//! use racker_sim::Password;
//! let config = FirmwareConfig::new("127.0.0.1:6767".parse().expect("address"))
//!     .bmc(BmcAccess::Lan { user: "USER".into(), password: Password::new("PASS") });
//! let firmware: Vec<Firmware> = rack
//!     .nodes()
//!     .iter()
//!     .map(|node| Firmware::spawn(node, config.clone()))
//!     .collect::<Result<_, _>>()?;
//! // Power the nodes on with boot device PXE through their BMCs, then:
//! for fw in &firmware {
//!     fw.wait_for(std::time::Duration::from_secs(30), |s| s.phase == racker_sim::firmware::Phase::OsUp).await?;
//! }
//! # Ok(()) }
//! ```

mod dhcp;
mod driver;
mod fault;
mod ipxe;
mod machine;

#[cfg(test)]
mod tests;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::time::Duration;

pub use driver::{Firmware, HttpClient};
pub use fault::{FirmwareFault, FirmwareFaults, NodeFault};
pub use machine::{
    Action, Download, FirmwareMachine, FirmwareStatus, HttpMethod, HttpOutcome, HttpRequest,
    MachineConfig, OS_UP_MARKER, Phase,
};

use crate::Password;
#[cfg(doc)]
use crate::SimNode;

/// Client system architecture (DHCP option 93, RFC 4578).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum ClientArch {
    /// 0: x86 legacy BIOS (gets `undionly.kpxe`).
    Bios,
    /// 7: x64 UEFI (gets `ipxe.efi`).
    #[default]
    EfiX64,
    /// 11: ARM64 UEFI.
    EfiArm64,
    /// Any other code.
    Other(u16),
}

impl ClientArch {
    /// The option 93 value.
    pub fn code(self) -> u16 {
        match self {
            ClientArch::Bios => 0,
            ClientArch::EfiX64 => 7,
            ClientArch::EfiArm64 => 11,
            ClientArch::Other(c) => c,
        }
    }

    /// From the option 93 value.
    pub fn from_code(code: u16) -> Self {
        match code {
            0 => ClientArch::Bios,
            7 => ClientArch::EfiX64,
            11 => ClientArch::EfiArm64,
            c => ClientArch::Other(c),
        }
    }

    /// True for UEFI clients.
    pub fn is_efi(self) -> bool {
        !matches!(self, ClientArch::Bios)
    }

    /// iPXE's `${buildarch}`.
    pub(crate) fn ipxe_buildarch(self) -> &'static str {
        match self {
            ClientArch::Bios => "i386",
            ClientArch::EfiArm64 => "arm64",
            _ => "x86_64",
        }
    }

    /// iPXE's `${platform}`.
    pub(crate) fn ipxe_platform(self) -> &'static str {
        if self.is_efi() { "efi" } else { "pcbios" }
    }
}

impl fmt::Display for ClientArch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientArch::Bios => f.write_str("bios"),
            ClientArch::EfiX64 => f.write_str("efi"),
            ClientArch::EfiArm64 => f.write_str("arm64"),
            ClientArch::Other(c) => write!(f, "{c}"),
        }
    }
}

impl FromStr for ClientArch {
    type Err = FirmwareError;

    /// `bios`, `efi`/`uefi`/`x64`, `arm64`, or a number.
    fn from_str(s: &str) -> Result<Self, FirmwareError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "bios" | "legacy" => Ok(ClientArch::Bios),
            "efi" | "uefi" | "x64" | "efi-x64" => Ok(ClientArch::EfiX64),
            "arm64" | "aarch64" | "efi-arm64" => Ok(ClientArch::EfiArm64),
            n => n
                .parse::<u16>()
                .map(ClientArch::from_code)
                .map_err(|_| FirmwareError::InvalidArch { spec: s.to_owned() }),
        }
    }
}

/// How the installer sets the boot device.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BmcAccess {
    /// IPMI over LAN (RMCP+) to the node's own simulated BMC with these
    /// credentials, through `racker-ipmi`: the protocol path a real
    /// installer's `ipmitool -I lanplus` takes.
    Lan {
        /// BMC user.
        user: String,
        /// BMC password (redacted in `Debug`).
        password: Password,
    },
    /// In-band, like `ipmitool` over `/dev/ipmi0` on the host: the node's
    /// chassis state is changed directly (no credentials needed).
    InBand,
}

/// Settings of one node's firmware driver.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct FirmwareConfig {
    /// The DHCP server's plain-UDP transport address.
    pub dhcp_server: SocketAddr,
    /// Local address of the firmware's DHCP socket (an ephemeral port).
    pub bind: IpAddr,
    /// Option 93 architecture.
    pub arch: ClientArch,
    /// How long the installer writes the disk.
    pub install_delay: Duration,
    /// First DHCP retransmission timeout (doubles each time).
    pub dhcp_timeout: Duration,
    /// Transmissions per DHCP phase before the ROM gives up.
    pub dhcp_attempts: u32,
    /// Whole-request HTTP timeout (connect, headers and body).
    pub http_timeout: Duration,
    /// Retries of a failed download.
    pub http_retries: u32,
    /// Pause between HTTP retries.
    pub retry_delay: Duration,
    /// How the installer reaches the BMC.
    pub bmc: BmcAccess,
    /// Total time for each IPMI exchange (retransmissions included).
    pub bmc_timeout: Duration,
    /// Faults from the start.
    pub faults: FirmwareFaults,
    /// The disk already holds an installed OS.
    pub preinstalled: bool,
    /// Base URL of the netboot server the preinstalled OS was installed
    /// from: it reports `up` there on every boot (without it, a
    /// preinstalled disk reports nothing).
    pub installed_from: Option<String>,
}

impl FirmwareConfig {
    /// Defaults: loopback socket, UEFI x64, no install delay, DHCP 1 s
    /// doubling over 4 attempts, 30 s HTTP timeout with 3 retries 500 ms
    /// apart, in-band BMC access, no faults, empty disk.
    pub fn new(dhcp_server: SocketAddr) -> Self {
        FirmwareConfig {
            dhcp_server,
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            arch: ClientArch::EfiX64,
            install_delay: Duration::ZERO,
            dhcp_timeout: Duration::from_secs(1),
            dhcp_attempts: 4,
            http_timeout: Duration::from_secs(30),
            http_retries: 3,
            retry_delay: Duration::from_millis(500),
            bmc: BmcAccess::InBand,
            bmc_timeout: Duration::from_secs(5),
            faults: FirmwareFaults::default(),
            preinstalled: false,
            installed_from: None,
        }
    }
    /// Set the client architecture.
    pub fn arch(mut self, arch: ClientArch) -> Self {
        self.arch = arch;
        self
    }
    /// Set the install delay.
    pub fn install_delay(mut self, d: Duration) -> Self {
        self.install_delay = d;
        self
    }
    /// Set the first DHCP timeout and the number of transmissions.
    pub fn dhcp_retries(mut self, first_timeout: Duration, attempts: u32) -> Self {
        self.dhcp_timeout = first_timeout;
        self.dhcp_attempts = attempts.max(1);
        self
    }
    /// Set the HTTP timeout, retries and pause between them.
    pub fn http_retries(mut self, timeout: Duration, retries: u32, delay: Duration) -> Self {
        self.http_timeout = timeout;
        self.http_retries = retries;
        self.retry_delay = delay;
        self
    }
    /// Set how the installer reaches the BMC.
    pub fn bmc(mut self, bmc: BmcAccess) -> Self {
        self.bmc = bmc;
        self
    }
    /// Set the IPMI exchange timeout.
    pub fn bmc_timeout(mut self, t: Duration) -> Self {
        self.bmc_timeout = t;
        self
    }
    /// Set the initial faults.
    pub fn faults(mut self, faults: FirmwareFaults) -> Self {
        self.faults = faults;
        self
    }
    /// Start with an installed OS on the disk.
    pub fn preinstalled(mut self, yes: bool) -> Self {
        self.preinstalled = yes;
        self
    }
    /// Start with an OS on the disk that was installed from the netboot
    /// server at `base_url` (e.g. `http://127.0.0.1:8080`), so it reports
    /// `up` there on every boot, like a node racker installed earlier (a
    /// `token` query parameter is sent with each report, as its Ignition
    /// would).
    pub fn installed_from(mut self, base_url: impl Into<String>) -> Self {
        self.preinstalled = true;
        self.installed_from = Some(base_url.into());
        self
    }
    /// Bind the DHCP socket to this local address.
    pub fn bind(mut self, ip: IpAddr) -> Self {
        self.bind = ip;
        self
    }

    pub(crate) fn machine(&self, mac: [u8; 6], xid_seed: u32) -> MachineConfig {
        let mut m = MachineConfig::new(mac);
        m.arch = self.arch;
        m.dhcp_timeout = self.dhcp_timeout;
        m.dhcp_attempts = self.dhcp_attempts.max(1);
        m.http_retries = self.http_retries;
        m.retry_delay = self.retry_delay;
        m.install_delay = self.install_delay;
        m.preinstalled = self.preinstalled;
        m.installed_from = self.installed_from.clone();
        m.xid_seed = xid_seed;
        m
    }
}

/// Errors of the simulated firmware.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FirmwareError {
    /// A fault name was not recognised.
    #[error(
        "invalid firmware fault {spec:?}: expected no-lease, download-fail, install-fail or hang"
    )]
    InvalidFault {
        /// What was given.
        spec: String,
    },
    /// An architecture name was not recognised.
    #[error("invalid client architecture {spec:?}: expected bios, efi, arm64 or a number")]
    InvalidArch {
        /// What was given.
        spec: String,
    },
    /// The node has no primary (PXE) MAC to boot with.
    #[error("simulated node with BMC {bmc_mac} has no primary MAC; it cannot PXE boot")]
    NoPrimaryMac {
        /// The node's BMC MAC.
        bmc_mac: String,
    },
    /// The DHCP socket could not be bound.
    #[error("firmware of {mac}: cannot bind a DHCP socket on {addr}: {source}")]
    Bind {
        /// The node's primary MAC.
        mac: String,
        /// Requested local address.
        addr: IpAddr,
        /// Underlying error.
        source: std::io::Error,
    },
    /// [`Firmware::spawn`] was called outside a tokio runtime.
    #[error("firmware of {mac}: must be started inside a tokio runtime")]
    NoRuntime {
        /// The node's primary MAC.
        mac: String,
    },
    /// The HTTP client could not be built.
    #[error("cannot build the firmware HTTP client: {reason}")]
    HttpClient {
        /// Why.
        reason: String,
    },
    /// [`Firmware::wait_for`] ran out of time.
    #[error("firmware of {mac}: condition not reached within {waited:?} (phase {phase:?})")]
    Timeout {
        /// The node's primary MAC.
        mac: String,
        /// How long it waited.
        waited: Duration,
        /// The phase at the end.
        phase: Phase,
    },
    /// The firmware task is gone.
    #[error("firmware of {mac} stopped")]
    Stopped {
        /// The node's primary MAC.
        mac: String,
    },
}
