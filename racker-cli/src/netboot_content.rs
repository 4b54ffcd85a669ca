//! Boot content of `racker netboot`: the TFTP and HTTP servers started by
//! `racker netboot serve`, `racker netboot fetch-assets` and
//! `racker netboot render --matchbox DIR`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use racker_netboot::assets::{
    FLATCAR_KEY_FINGERPRINT, FetchEvent, FetchOptions, FetchOutcome, SIGNING_KEY_FILE,
    fetch_flatcar,
};

use crate::context::{PlanArgs, SelectionArgs, load_selection};
use crate::globals::Globals;
use crate::output;

/// Options of `racker netboot serve` for the boot content (TFTP + HTTP).
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ContentArgs {
    /// HTTP address for iPXE scripts, Ignition, assets and reports
    /// [default: <management internal IP>:8080].
    #[arg(long, value_name = "ADDR:PORT")]
    pub(crate) http_listen: Option<SocketAddr>,
    /// TFTP address for the iPXE binaries [default: <management internal IP>:69].
    #[arg(long, value_name = "ADDR:PORT")]
    pub(crate) tftp_listen: Option<SocketAddr>,
    /// Directory holding undionly.kpxe and ipxe.efi [default: /usr/lib/ipxe,
    /// from Debian's `ipxe` package].
    #[arg(long, value_name = "DIR", env = "RACKER_BOOT_FILES")]
    pub(crate) boot_files: Option<PathBuf>,
    /// Serve boot content only (TFTP + HTTP), no DHCP: for networks that
    /// already have a DHCP server pointing at us.
    #[arg(long)]
    pub(crate) no_dhcp: bool,
    /// Skip TFTP (set by callers whose nodes boot iPXE from elsewhere, e.g.
    /// the simulated rack); not a command-line option.
    #[arg(skip)]
    pub(crate) without_tftp: bool,
    /// Use the profiles and groups of this matchbox data directory instead
    /// of the generated Flatcar installer profile.
    #[arg(long, value_name = "DIR")]
    pub(crate) matchbox_data: Option<PathBuf>,
    /// Kernel console argument of the PXE-booted installer (repeatable; the
    /// same as the rack's rendered `--kernel-console`)
    /// [default: console=ttyS1,57600n8 earlyprintk=serial,ttyS1,57600n8].
    #[arg(long, value_name = "ARG")]
    pub(crate) kernel_console: Vec<String>,
}

const CONTENT_EXAMPLES: &str = "\
Examples:
  # Download, verify and install the current stable Flatcar release:
  racker netboot fetch-assets --signing-key Flatcar_Image_Signing_Key.asc
  # A given version from a mirror:
  racker netboot fetch-assets --version 4081.2.0 --base-url http://mirror/amd64-usr
  # Write matchbox profiles and groups for the rack:
  racker netboot render --matchbox /var/lib/matchbox";

/// `racker netboot fetch-assets`.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = CONTENT_EXAMPLES)]
pub(crate) struct FetchAssetsArgs {
    /// Flatcar release channel.
    #[arg(long, default_value = "stable")]
    pub(crate) channel: String,
    /// Version to fetch, or "current".
    #[arg(long, default_value = "current")]
    pub(crate) version: String,
    /// Base URL holding <version>/<file> [default:
    /// https://<channel>.release.flatcar-linux.net/amd64-usr].
    #[arg(long, value_name = "URL")]
    pub(crate) base_url: Option<String>,
    /// Flatcar's image-signing key (ASCII armour) [default:
    /// <state-dir>/keys/Flatcar_Image_Signing_Key.asc].
    #[arg(long, value_name = "FILE")]
    pub(crate) signing_key: Option<PathBuf>,
}

/// Run `racker netboot fetch-assets`.
pub(crate) fn run_fetch_assets(
    globals: &Globals,
    args: &FetchAssetsArgs,
) -> anyhow::Result<ExitCode> {
    let key_path = args
        .signing_key
        .clone()
        .unwrap_or_else(|| globals.state_dir.join("keys").join(SIGNING_KEY_FILE));
    let key = std::fs::read_to_string(&key_path).with_context(|| {
        format!(
            "reading the signing key {}: download Flatcar's image-signing key \
             (primary fingerprint {FLATCAR_KEY_FINGERPRINT}) from \
             https://www.flatcar.org/security/image-signing-key/ and pass --signing-key FILE \
             or put it there",
            key_path.display()
        )
    })?;
    let mut options = FetchOptions::default();
    options.channel = args.channel.clone();
    options.version = args.version.clone();
    options.base_url = args.base_url.clone();
    options.signing_key = key;
    let assets = globals.state_dir.join("assets");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let outcome = runtime.block_on(fetch_flatcar(&assets, &options, print_event))?;
    let done = match outcome {
        FetchOutcome::AlreadyCurrent { version } => {
            format!("Flatcar {version} is already installed and current")
        }
        FetchOutcome::Installed { version, dir } => {
            format!("Flatcar {version} installed in {}", dir.display())
        }
    };
    output::line(output::ok_mark(&done));
    Ok(ExitCode::SUCCESS)
}

fn print_event(e: FetchEvent) {
    let line = match e {
        FetchEvent::Resolved(v) => format!("current release: {v}"),
        FetchEvent::Start {
            file,
            resumed_from,
            total,
        } => {
            let size = total
                .map(|t| format!(" ({} MiB)", t >> 20))
                .unwrap_or_default();
            if resumed_from > 0 {
                format!("downloading {file}{size}, resuming at {resumed_from} bytes")
            } else {
                format!("downloading {file}{size}")
            }
        }
        FetchEvent::Progress { file, done, total } => match total {
            Some(t) if t > 0 => format!("  {file}: {}% ({} MiB)", done * 100 / t, done >> 20),
            _ => format!("  {file}: {} MiB", done >> 20),
        },
        FetchEvent::Verified(file) => output::ok_mark(&format!("signature of {file} verified")),
    };
    output::progress(line);
}

/// `racker netboot render --matchbox DIR`.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = CONTENT_EXAMPLES)]
pub(crate) struct RenderMatchboxArgs {
    /// Write matchbox `profiles/` and `groups/` into this data directory.
    #[arg(long, value_name = "DIR")]
    pub(crate) matchbox: PathBuf,
    #[command(flatten)]
    pub(crate) plan: PlanArgs,
    #[command(flatten)]
    pub(crate) selection: SelectionArgs,
    /// Base URL nodes use to reach the HTTP server [default:
    /// http://<management IP>:8080].
    #[arg(long, value_name = "URL")]
    pub(crate) http_base_url: Option<String>,
}

/// Run `racker netboot render --matchbox DIR`.
pub(crate) fn run_render_matchbox(
    globals: &Globals,
    args: &RenderMatchboxArgs,
) -> anyhow::Result<ExitCode> {
    let (rack, selection) = load_selection(globals, &args.plan, &args.selection)?;
    let written = racker_bootstrap::netboot_setup::write_matchbox(
        &args.matchbox,
        &rack.plan,
        Some(&selection),
        args.http_base_url.as_deref(),
    )?;
    for path in &written {
        output::line(output::ok_mark(&format!("wrote {}", path.display())));
    }
    println!(
        "{} profile(s) and {} group(s) in matchbox format",
        1,
        written.len().saturating_sub(1)
    );
    Ok(ExitCode::SUCCESS)
}
