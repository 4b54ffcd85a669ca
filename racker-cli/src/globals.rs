//! Options accepted by every subcommand.

use std::path::PathBuf;

/// Global options; each is also an environment variable so tests and the
/// simulator never touch `/usr` or `/opt`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct Globals {
    /// Rack metadata directory holding nodes.csv, ipmi_user and ipmi_password.
    #[arg(
        long,
        global = true,
        env = "RACKER_OEM_DIR",
        default_value = "/usr/share/oem"
    )]
    pub(crate) oem_dir: PathBuf,
    /// Directory where racker keeps its state (leases, node states, assets).
    #[arg(
        long,
        global = true,
        env = "RACKER_STATE_DIR",
        default_value = "/opt/racker-state"
    )]
    pub(crate) state_dir: PathBuf,
    /// Directory listing the local network interfaces (`<dir>/<ifname>/address`).
    #[arg(
        long,
        global = true,
        env = "RACKER_SYS_CLASS_NET",
        default_value = "/sys/class/net"
    )]
    pub(crate) sys_class_net: PathBuf,
}

impl Globals {
    /// Path of nodes.csv.
    pub(crate) fn nodes_csv(&self) -> PathBuf {
        self.oem_dir.join("nodes.csv")
    }
}
