//! Boot content of `racker netboot`: the TFTP and HTTP servers started by
//! `racker netboot serve`, `racker netboot fetch-assets` and
//! `racker netboot render --matchbox DIR`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use racker_netboot::assets::{
    FetchEvent, FetchOptions, SIGNING_KEY_FILE, fetch_flatcar, read_signing_key,
};

use racker_bootstrap::network::ContentOptions;

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

impl ContentArgs {
    /// The library's content options.
    pub(crate) fn options(&self) -> ContentOptions {
        let mut options = ContentOptions::new();
        options.http_listen = self.http_listen;
        options.tftp_listen = self.tftp_listen;
        options.boot_files.clone_from(&self.boot_files);
        options.matchbox_data.clone_from(&self.matchbox_data);
        options.kernel_console.clone_from(&self.kernel_console);
        options
    }
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
    let key_path = (args.signing_key.clone())
        .unwrap_or_else(|| globals.state_dir.join("keys").join(SIGNING_KEY_FILE));
    let key = read_signing_key(&key_path)?;
    let mut options = FetchOptions::default();
    options.channel = args.channel.clone();
    options.version = args.version.clone();
    options.base_url = args.base_url.clone();
    options.signing_key = key;
    let assets = globals.state_dir.join("assets");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let outcome = runtime.block_on(fetch_flatcar(&assets, &options, |event| {
        let line = event.to_string();
        match event {
            FetchEvent::Verified(_) => output::progress(output::ok_mark(&line)),
            _ => output::progress(line),
        }
    }))?;
    output::line(output::ok_mark(&outcome.to_string()));
    Ok(ExitCode::SUCCESS)
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
