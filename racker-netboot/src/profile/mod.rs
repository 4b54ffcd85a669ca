//! Shared types of the boot-content side: the error type and the pluggable
//! source of per-node Ignition configs.

mod error;

use std::path::{Path, PathBuf};

pub use error::ContentError;
use racker_inventory::MacAddr;

/// Which Ignition config a node asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum IgnitionProfile {
    /// Config for the PXE-booted installer (writes Flatcar to disk, reports).
    Install,
    /// Config for the installed OS on its first boot from disk.
    Os,
}

impl IgnitionProfile {
    /// `install` or `os`.
    pub fn as_str(self) -> &'static str {
        match self {
            IgnitionProfile::Install => "install",
            IgnitionProfile::Os => "os",
        }
    }

    /// Parse `install` / `os` (case-insensitive).
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "install" | "installer" => Some(IgnitionProfile::Install),
            "os" | "installed" => Some(IgnitionProfile::Os),
            _ => None,
        }
    }
}

/// Where the HTTP server gets each node's Ignition JSON from. The bootstrap
/// fills it (e.g. with configs rendered by `racker-lokomotive`).
pub trait IgnitionSource: Send + Sync + std::fmt::Debug {
    /// The config for `mac` and `profile`, `None` when there is none.
    fn ignition(
        &self,
        mac: MacAddr,
        profile: IgnitionProfile,
    ) -> Result<Option<Vec<u8>>, ContentError>;
}

/// Ignition files on disk: `<dir>/<mac>/install.ign` and `<dir>/<mac>/os.ign`
/// (MAC in lower-case colon form); by default `<state-dir>/ignition`.
#[derive(Debug, Clone)]
pub struct IgnitionDir {
    dir: PathBuf,
}

impl IgnitionDir {
    /// Files under `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The conventional location under a state directory.
    pub fn in_state_dir(state_dir: &Path) -> Self {
        Self::new(state_dir.join("ignition"))
    }

    /// The file a config is read from.
    pub fn path(&self, mac: MacAddr, profile: IgnitionProfile) -> PathBuf {
        self.dir
            .join(mac.to_string())
            .join(format!("{}.ign", profile.as_str()))
    }
}

impl IgnitionSource for IgnitionDir {
    fn ignition(
        &self,
        mac: MacAddr,
        profile: IgnitionProfile,
    ) -> Result<Option<Vec<u8>>, ContentError> {
        let path = self.path(mac, profile);
        match std::fs::read(&path) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(ContentError::io("reading", path, e)),
        }
    }
}
