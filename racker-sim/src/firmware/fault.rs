//! Faults of a simulated node's firmware and installer.

use std::fmt;
use std::str::FromStr;

use super::FirmwareError;

/// One firmware fault, as given on the command line (`--fault MAC=KIND`):
/// `no-lease`, `download-fail`, `install-fail`, `hang`, `no-os-up`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FirmwareFault {
    /// The node never gets a DHCP lease: its DHCP packets never reach the
    /// server (like an unplugged cable). The PXE ROM gives up with
    /// `PXE-E51` after its bounded retries and tries the disk.
    NoLease,
    /// The connection breaks during the kernel download (every attempt);
    /// iPXE gives up and the firmware tries the disk. No report is sent,
    /// like real hardware.
    DownloadFail,
    /// The installer fails after its delay and POSTs
    /// `/report?...&stage=failed&reason=...`.
    InstallFail,
    /// The installer stops responding after it started writing the disk:
    /// no more console output, no report, no reboot (until the BMC power
    /// cycles the node, which then hangs again).
    Hang,
    /// The install succeeds, but the installed OS never reports `up`
    /// (booted with its network down, say): the console shows the OS
    /// booting and the report failing.
    NoOsUp,
}

impl FirmwareFault {
    /// Every kind, for help texts.
    pub const ALL: [FirmwareFault; 5] = [
        FirmwareFault::NoLease,
        FirmwareFault::DownloadFail,
        FirmwareFault::InstallFail,
        FirmwareFault::Hang,
        FirmwareFault::NoOsUp,
    ];
}

impl fmt::Display for FirmwareFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FirmwareFault::NoLease => "no-lease",
            FirmwareFault::DownloadFail => "download-fail",
            FirmwareFault::InstallFail => "install-fail",
            FirmwareFault::Hang => "hang",
            FirmwareFault::NoOsUp => "no-os-up",
        })
    }
}

impl FromStr for FirmwareFault {
    type Err = FirmwareError;

    fn from_str(s: &str) -> Result<Self, FirmwareError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "no-lease" | "never-lease" | "no-dhcp" => Ok(FirmwareFault::NoLease),
            "download-fail" | "download-fails" | "download" => Ok(FirmwareFault::DownloadFail),
            "install-fail" | "install-fails" | "install" => Ok(FirmwareFault::InstallFail),
            "hang" | "hangs" => Ok(FirmwareFault::Hang),
            "no-os-up" | "os-down" | "no-up" => Ok(FirmwareFault::NoOsUp),
            _ => Err(FirmwareError::InvalidFault { spec: s.to_owned() }),
        }
    }
}

/// The firmware faults active on one node.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FirmwareFaults {
    /// See [`FirmwareFault::NoLease`].
    pub no_lease: bool,
    /// See [`FirmwareFault::DownloadFail`].
    pub download_fail: bool,
    /// See [`FirmwareFault::InstallFail`].
    pub install_fail: bool,
    /// See [`FirmwareFault::Hang`].
    pub hang: bool,
    /// See [`FirmwareFault::NoOsUp`].
    pub no_os_up: bool,
}

impl FirmwareFaults {
    /// Add `fault` to the set.
    pub fn apply(&mut self, fault: FirmwareFault) {
        match fault {
            FirmwareFault::NoLease => self.no_lease = true,
            FirmwareFault::DownloadFail => self.download_fail = true,
            FirmwareFault::InstallFail => self.install_fail = true,
            FirmwareFault::Hang => self.hang = true,
            FirmwareFault::NoOsUp => self.no_os_up = true,
        }
    }

    /// The set with only `fault`.
    pub fn only(fault: FirmwareFault) -> Self {
        let mut f = Self::default();
        f.apply(fault);
        f
    }

    /// True when no fault is active.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// Any per-node fault `racker sim up --fault MAC=KIND` accepts: a BMC
/// fault ([`crate::Fault`]) or a firmware fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NodeFault {
    /// A fault of the simulated BMC.
    Bmc(crate::Fault),
    /// A fault of the node's firmware or installer.
    Firmware(FirmwareFault),
}

impl fmt::Display for NodeFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NodeFault::Bmc(b) => b.fmt(f),
            NodeFault::Firmware(w) => w.fmt(f),
        }
    }
}

impl FromStr for NodeFault {
    type Err = FirmwareError;

    fn from_str(s: &str) -> Result<Self, FirmwareError> {
        if let Ok(f) = s.parse::<FirmwareFault>() {
            return Ok(NodeFault::Firmware(f));
        }
        s.parse::<crate::Fault>()
            .map(NodeFault::Bmc)
            .map_err(|_| FirmwareError::InvalidFault { spec: s.to_owned() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_round_trip() {
        for f in FirmwareFault::ALL {
            assert_eq!(f.to_string().parse::<FirmwareFault>().unwrap(), f);
            assert!(!FirmwareFaults::only(f).is_empty());
        }
        assert_eq!(
            "Hangs".parse::<FirmwareFault>().unwrap(),
            FirmwareFault::Hang
        );
        assert!("unreachable".parse::<FirmwareFault>().is_err());
        assert_eq!(
            "unreachable".parse::<NodeFault>().unwrap(),
            NodeFault::Bmc(crate::Fault::Unreachable)
        );
        assert_eq!(
            "hang".parse::<NodeFault>().unwrap(),
            NodeFault::Firmware(FirmwareFault::Hang)
        );
        assert_eq!("loss:5".parse::<NodeFault>().unwrap().to_string(), "loss:5");
        assert!("fire".parse::<NodeFault>().is_err());
    }
}
