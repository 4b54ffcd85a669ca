//! Boot content of `racker netboot`: the TFTP and HTTP servers started by
//! `racker netboot serve`, `racker netboot fetch-assets` and
//! `racker netboot render --matchbox DIR`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use racker_netboot::assets::{
    FLATCAR_KEY_FINGERPRINT, FetchEvent, FetchOptions, FetchOutcome, SIGNING_KEY_FILE,
    fetch_flatcar,
};
use racker_netboot::matchbox::{Catalog, NodeEntry};

use crate::context::{PlanArgs, SelectionArgs, load_selection};
use crate::globals::Globals;

/// Default HTTP port of the boot server.
pub(crate) use racker_bootstrap::network::HTTP_PORT;

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

pub(crate) use racker_bootstrap::network::flatcar_boot;

/// Boot entries for the nodes of `plan`, minus excluded ones, with host
/// names and roles from `selection` when given.
pub(crate) use racker_bootstrap::network::node_entries;

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
    match outcome {
        FetchOutcome::AlreadyCurrent { version } => {
            println!("✓ Flatcar {version} is already installed and current");
        }
        FetchOutcome::Installed { version, dir } => {
            println!("✓ Flatcar {version} installed in {}", dir.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_event(e: FetchEvent) {
    match e {
        FetchEvent::Resolved(v) => eprintln!("current release: {v}"),
        FetchEvent::Start {
            file,
            resumed_from,
            total,
        } => {
            let size = total
                .map(|t| format!(" ({} MiB)", t >> 20))
                .unwrap_or_default();
            if resumed_from > 0 {
                eprintln!("downloading {file}{size}, resuming at {resumed_from} bytes");
            } else {
                eprintln!("downloading {file}{size}");
            }
        }
        FetchEvent::Progress { file, done, total } => match total {
            Some(t) if t > 0 => eprintln!("  {file}: {}% ({} MiB)", done * 100 / t, done >> 20),
            _ => eprintln!("  {file}: {} MiB", done >> 20),
        },
        FetchEvent::Verified(file) => eprintln!("✓ signature of {file} verified"),
    }
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

/// Write the matchbox layout for `nodes` into `dir`.
pub(crate) fn render_matchbox(
    dir: &Path,
    nodes: &[NodeEntry],
    base_url: &str,
) -> anyhow::Result<Vec<PathBuf>> {
    let catalog = Catalog::flatcar(nodes, &flatcar_boot(base_url, &[]));
    Ok(catalog.write_dir(dir)?)
}

/// Run `racker netboot render --matchbox DIR`.
pub(crate) fn run_render_matchbox(
    globals: &Globals,
    args: &RenderMatchboxArgs,
) -> anyhow::Result<ExitCode> {
    let (rack, selection) = load_selection(globals, &args.plan, &args.selection)?;
    let base = args
        .http_base_url
        .clone()
        .unwrap_or_else(|| format!("http://{}:{HTTP_PORT}", rack.plan.management_ip()));
    let nodes = node_entries(&rack.plan, Some(&selection));
    let written = render_matchbox(&args.matchbox, &nodes, &base)?;
    for path in &written {
        println!("✓ wrote {}", path.display());
    }
    println!(
        "{} profile(s) and {} group(s) in matchbox format",
        1,
        written.len().saturating_sub(1)
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rack_fixture(dir: &Path) -> Globals {
        let oem = dir.join("oem");
        let net = dir.join("net");
        std::fs::create_dir_all(&oem).unwrap();
        std::fs::write(
            oem.join("nodes.csv"),
            "Primary MAC address, BMC MAC address, Secondary MAC address, Node Type, Comments\n\
             00:11:22:33:44:00, 00:11:22:33:44:01, 00:11:22:33:44:30, red, mgmt node\n\
             00:11:22:33:44:10, 00:11:22:33:44:11, 00:11:22:33:44:40, red, node\n\
             00:11:22:33:44:20, 00:11:22:33:44:21, 00:11:22:33:44:50, red, node\n",
        )
        .unwrap();
        std::fs::create_dir_all(net.join("eth1")).unwrap();
        std::fs::write(net.join("eth1/address"), "00:11:22:33:44:30\n").unwrap();
        Globals::for_dirs(oem, dir.join("state"), net)
    }

    #[test]
    fn render_writes_matchbox_layout() {
        let dir = tempfile::tempdir().unwrap();
        let globals = rack_fixture(dir.path());
        let out = dir.path().join("matchbox");
        let args = RenderMatchboxArgs {
            matchbox: out.clone(),
            plan: PlanArgs {
                subnet_prefix: racker_inventory::DEFAULT_SUBNET_PREFIX.into(),
                prefix_length: racker_inventory::DEFAULT_PREFIX_LEN,
                exclude: "00:11:22:33:44:21".into(),
            },
            selection: SelectionArgs {
                provision: crate::context::ProvisionArg::Flatcar,
                num_controllers: None,
                controller_type: racker_inventory::ANY_NODE_TYPE.into(),
                storage_provider: crate::context::StorageArg::None,
                storage_node_type: racker_inventory::ANY_NODE_TYPE.into(),
                number_of_storage_nodes: "all".into(),
                cluster_name: "lokomotive".into(),
                k8s_domain: "k8s.localdomain".into(),
            },
            http_base_url: None,
        };
        run_render_matchbox(&globals, &args).unwrap();
        let catalog = Catalog::load_dir(&out).unwrap();
        assert_eq!(catalog.groups.len(), 1, "the excluded node has no group");
        let (g, p) = catalog
            .select_mac("00:11:22:33:44:10".parse().unwrap())
            .unwrap();
        assert_eq!(g.metadata["ip"], "172.24.213.2");
        assert!(
            p.boot
                .kernel
                .starts_with("http://172.24.213.1:8080/assets/")
        );
    }
}
