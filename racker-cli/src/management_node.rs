//! `racker netboot management-node`: the management node's own install
//! (iPXE script + Ignition, the counterpart of the original's
//! `management-node-ipxe/`), written where `racker netboot serve` serves it
//! (docs/lokomotive.md, "Installing the management node").

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;
use racker_bootstrap::management_node::{
    ManagementNodeOptions, ManagementTarget, write_management_install,
};

use crate::globals::Globals;

const EXAMPLES: &str = "\
Examples:
  # On a machine that already runs racker (e.g. a laptop on the rack network),
  # serving from http://192.168.1.10:8080:
  racker netboot management-node --base-url http://192.168.1.10:8080
  racker netboot serve --no-dhcp --http-listen 192.168.1.10:8080
  # then, in the management node's iPXE shell:
  #   dhcp && chain http://192.168.1.10:8080/assets/management-node/install.ipxe";

/// Options of `racker netboot management-node`.
#[derive(Debug, Args)]
#[command(after_help = EXAMPLES)]
pub(crate) struct ManagementNodeArgs {
    /// Base URL of the racker HTTP server the management node installs from
    /// (`racker netboot serve` on another machine), e.g.
    /// http://192.168.1.10:8080. The files go to
    /// <state-dir>/assets/management-node/, served as /assets/management-node/.
    #[arg(long, env = "RACKER_MANAGEMENT_BASE_URL", value_name = "URL")]
    base_url: Option<String>,
    /// Write the files here instead (served by something else)...
    #[arg(long, value_name = "DIR", requires = "served_from")]
    out: Option<PathBuf>,
    /// ... from where the node fetches them (the URL of that directory).
    #[arg(long, value_name = "URL", requires = "out")]
    served_from: Option<String>,
    /// Where the Flatcar PXE kernel and initrd are [default: racker's
    /// /assets/flatcar/current when `racker netboot fetch-assets` put them
    /// into the state directory, else the upstream stable release].
    #[arg(long, value_name = "URL")]
    pxe_url: Option<String>,
    /// `flatcar-install -b`: where the disk image is [default: racker's
    /// /assets/flatcar when the state directory has it, else
    /// flatcar-install's own download of the stable release].
    #[arg(long, value_name = "URL")]
    image_url: Option<String>,
    /// Kernel console argument of the installer and the installed system
    /// (repeatable) [default: console=ttyS1,57600n8 earlyprintk=serial,ttyS1,57600n8].
    #[arg(long, value_name = "ARG")]
    kernel_console: Vec<String>,
    /// Do not log in automatically on the console (the original did).
    #[arg(long)]
    no_autologin: bool,
    /// SSH public key file for the `core` user (repeatable).
    #[arg(long, value_name = "FILE")]
    ssh_public_key: Vec<PathBuf>,
    /// Leave out racker's binary: no in-band persistent EFI disk boot (set
    /// the boot order in the firmware setup instead).
    #[arg(long)]
    no_racker_binary: bool,
}

/// Write the management node's install files (racker-bootstrap's) and say
/// how to boot from them.
pub(crate) fn run(globals: &Globals, args: &ManagementNodeArgs) -> anyhow::Result<ExitCode> {
    let target = ManagementTarget::choose(
        args.out.clone(),
        args.served_from.clone(),
        args.base_url.clone(),
    )?;
    let mut options = ManagementNodeOptions::new(target);
    options.pxe_url.clone_from(&args.pxe_url);
    options.image_url.clone_from(&args.image_url);
    options.kernel_console.clone_from(&args.kernel_console);
    options.autologin = !args.no_autologin;
    options.ssh_public_keys = racker_bootstrap::ssh::read_public_keys(&args.ssh_public_key)?;
    if !args.no_racker_binary {
        // This very binary: the node runs it for the in-band IPMI step.
        options.racker_binary =
            Some(std::env::current_exe().context("finding racker's own binary")?);
    }
    let written = write_management_install(&globals.state_dir, &options)?;
    for (i, line) in written.lines().iter().enumerate() {
        if i == 0 {
            crate::output::line(crate::bootstrap::progress::coloured_marks(line));
        } else {
            println!("{line}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
