//! Options accepted by every subcommand.

use std::path::PathBuf;

use crate::output::{ColorWhen, Format};

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
    /// Output format of commands that report: text, wide (every column),
    /// json (one document with `schema_version`, see docs/output.md) or
    /// jsonl (the same on one line).
    #[arg(
        short = 'o',
        long,
        global = true,
        env = "RACKER_OUTPUT",
        value_enum,
        default_value = "text"
    )]
    pub(crate) output: Format,
    /// Colour: auto (terminals, unless NO_COLOR is set; CLICOLOR_FORCE=1
    /// forces it), always or never.
    #[arg(
        long,
        global = true,
        env = "RACKER_COLOR",
        value_enum,
        default_value = "auto"
    )]
    pub(crate) color: ColorWhen,
    /// More log output on stderr (-v debug, -vv trace); RUST_LOG overrides.
    #[arg(short = 'v', long, global = true, action = clap::ArgAction::Count)]
    pub(crate) verbose: u8,
    /// Less log output on stderr (-q errors only, -qq nothing).
    #[arg(
        short = 'q',
        long,
        global = true,
        action = clap::ArgAction::Count,
        conflicts_with = "verbose"
    )]
    pub(crate) quiet: u8,
}

impl Globals {
    /// Path of nodes.csv.
    pub(crate) fn nodes_csv(&self) -> PathBuf {
        self.oem_dir.join("nodes.csv")
    }
}
