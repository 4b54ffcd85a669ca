//! `racker netboot management-node`: the management node's own install
//! (iPXE script + Ignition, the counterpart of the original's
//! `management-node-ipxe/`), written where `racker netboot serve` serves it
//! (docs/lokomotive.md, "Installing the management node").

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::Args;
use racker_lokomotive::management::{FLATCAR_STABLE, IGNITION_FILE, IPXE_FILE};
use racker_lokomotive::{ManagementInstall, RackerBinary, render_management_install};
use sha2::{Digest as _, Sha512};

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

/// Write the management node's install files.
pub(crate) fn run(globals: &Globals, args: &ManagementNodeArgs) -> anyhow::Result<ExitCode> {
    let assets = globals.state_dir.join("assets");
    let (out, served_from, base) = match (&args.out, &args.served_from, &args.base_url) {
        (Some(out), Some(from), _) => (out.clone(), from.trim_end_matches('/').to_owned(), None),
        (None, None, Some(base)) => {
            let base = base.trim_end_matches('/').to_owned();
            (
                assets.join("management-node"),
                format!("{base}/assets/management-node"),
                Some(base),
            )
        }
        _ => bail!(
            "say where the management node installs from: --base-url URL (racker netboot serve \
             on another machine), or --out DIR with --served-from URL"
        ),
    };
    let mut install = ManagementInstall::new(served_from.clone());
    let flatcar = assets.join("flatcar").join("current");
    install.pxe_base_url = match (&args.pxe_url, &base) {
        (Some(url), _) => url.clone(),
        (None, Some(base)) if flatcar.join("flatcar_production_pxe.vmlinuz").is_file() => {
            format!("{base}/assets/flatcar/current")
        }
        _ => FLATCAR_STABLE.to_owned(),
    };
    install.image_base_url = match (&args.image_url, &base) {
        (Some(url), _) => Some(url.clone()),
        (None, Some(base)) if flatcar.join("flatcar_production_image.bin.bz2").is_file() => {
            Some(format!("{base}/assets/flatcar"))
        }
        _ => None,
    };
    if !args.kernel_console.is_empty() {
        install.kernel_console.clone_from(&args.kernel_console);
    }
    install.autologin = !args.no_autologin;
    for file in &args.ssh_public_key {
        let text =
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        install.ssh_public_keys.extend(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(str::to_owned),
        );
    }
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    if !args.no_racker_binary {
        // This very binary: the node runs it for the in-band IPMI step.
        let exe = std::env::current_exe().context("finding racker's own binary")?;
        let bytes = std::fs::read(&exe).with_context(|| format!("reading {}", exe.display()))?;
        let sha512 = hex(&Sha512::digest(&bytes));
        racker_bootstrap::fsutil::write_atomic(&out.join("racker"), &bytes, 0o755)?;
        install.racker = Some(RackerBinary {
            url: format!("{served_from}/racker"),
            sha512,
        });
    }
    let tree = render_management_install(&install)?;
    tree.write_to(&out)?;
    println!(
        "✓ management node install written to {} ({}, {}{})",
        out.display(),
        IPXE_FILE,
        IGNITION_FILE,
        if args.no_racker_binary {
            ""
        } else {
            ", racker"
        }
    );
    println!("  Flatcar PXE image from {}", install.pxe_base_url);
    match &install.image_base_url {
        Some(u) => println!("  disk image from {u}"),
        None => println!("  disk image: flatcar-install downloads the stable release"),
    }
    println!("  In the management node's iPXE shell:\n    dhcp && chain {served_from}/{IPXE_FILE}");
    if base.is_some() {
        println!("  Serve it with: racker netboot serve (the /assets/ endpoint)");
    }
    Ok(ExitCode::SUCCESS)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
