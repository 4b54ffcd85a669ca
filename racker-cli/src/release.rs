//! `racker version | install | update | upgrade | get | rollback`: install
//! and update Racker itself from release archives (see docs/installer.md).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use racker_installer::{
    BuildInfo, Fetcher, Installation, Layout, Selector, Sha256Digest, Version, VersionReport,
    url_or_path,
};

use crate::globals::Globals;

/// Where `update`, `upgrade` and `get` look for releases by default.
pub(crate) const DEFAULT_RELEASE_INDEX: &str =
    "https://github.com/racker-rs/racker/releases/latest/download/index.json";

/// Release management subcommands (flattened into `racker`).
#[derive(Debug, clap::Subcommand)]
pub(crate) enum ReleaseCommand {
    /// Print racker's version and the installed release.
    #[command(after_help = "Examples:\n  racker version\n  racker version --prefix /opt/racker")]
    Version(LayoutArgs),
    /// Install a release archive (file or URL), verifying its SHA-256.
    #[command(
        after_help = "The checksum comes from --sha256, or else from ARCHIVE.sha256 \
        (sha256sum format) next to the archive.\n\nExamples:\n  \
        racker install racker-0.2.0-x86_64.tar.gz\n  \
        racker install https://example.com/racker-0.2.0-x86_64.tar.gz --sha256 3f2c...\n  \
        racker install ./racker.tar.gz --prefix /tmp/r/opt/racker --bin-dir /tmp/r/bin \
        --systemd-dir /tmp/r/units --systemctl none"
    )]
    Install(InstallArgs),
    /// Install the newest compatible release (same major version).
    #[command(after_help = "Examples:\n  racker update\n  \
        racker update --release-index file:///srv/releases/index.json")]
    Update(IndexArgs),
    /// Install the newest release, even a new major version.
    #[command(after_help = "Examples:\n  racker upgrade\n  \
        racker upgrade --release-index http://mirror.local/racker/index.json")]
    Upgrade(IndexArgs),
    /// Install exactly VERSION from the release index (older ones too).
    #[command(after_help = "Examples:\n  racker get 0.1.3")]
    Get(GetArgs),
    /// Switch back to the release that was current before the last install.
    #[command(after_help = "Examples:\n  racker rollback")]
    Rollback(LayoutArgs),
}

/// Where Racker is installed.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct LayoutArgs {
    /// Install prefix: releases under versions/, `current` and `previous` links.
    #[arg(long, env = "RACKER_PREFIX", default_value = "/opt/racker")]
    prefix: PathBuf,
    /// Where executables are linked.
    #[arg(long, env = "RACKER_BIN_DIR", default_value = "/opt/bin")]
    bin_dir: PathBuf,
    /// Where systemd unit files are installed.
    #[arg(
        long,
        env = "RACKER_SYSTEMD_DIR",
        default_value = "/etc/systemd/system"
    )]
    systemd_dir: PathBuf,
    /// `auto` (use systemctl when systemd runs), `none`, or the systemctl
    /// program to use.
    #[arg(long, env = "RACKER_SYSTEMCTL", default_value = "auto")]
    systemctl: String,
}

/// Arguments of `racker install`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct InstallArgs {
    /// Release archive: a path or an http(s):// or file:// URL.
    archive: String,
    /// Expected SHA-256 of the archive (default: read ARCHIVE.sha256).
    #[arg(long)]
    sha256: Option<Sha256Digest>,
    #[command(flatten)]
    layout: LayoutArgs,
}

/// Arguments of commands that read the release index.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct IndexArgs {
    /// Release index URL (http://, https://, file://) or path.
    #[arg(long, env = "RACKER_RELEASE_INDEX", default_value = DEFAULT_RELEASE_INDEX)]
    release_index: String,
    /// Architecture to pick releases for.
    #[arg(long, default_value = std::env::consts::ARCH)]
    arch: String,
    #[command(flatten)]
    layout: LayoutArgs,
}

/// Arguments of `racker get`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct GetArgs {
    /// The version to install.
    version: Version,
    #[command(flatten)]
    index: IndexArgs,
}

pub(crate) fn run(globals: &Globals, command: ReleaseCommand) -> anyhow::Result<ExitCode> {
    let (verb, report, layout) = match command {
        ReleaseCommand::Version(layout) => return version(globals, &layout),
        ReleaseCommand::Install(args) => {
            let url = url_or_path(&args.archive)?;
            let mut target = args.layout.installation();
            let report = runtime()?.block_on(target.install_url(
                &Fetcher::new(),
                &url,
                args.sha256,
                None,
            ))?;
            ("installed", report, args.layout)
        }
        ReleaseCommand::Update(args) => {
            let (selector, note) = args.layout.installation().update_selector()?;
            if let Some(note) = note {
                println!("{note}");
            }
            return from_index(args, selector);
        }
        ReleaseCommand::Upgrade(args) => return from_index(args, Selector::Newest),
        ReleaseCommand::Get(args) => return from_index(args.index, Selector::Exact(args.version)),
        ReleaseCommand::Rollback(layout) => {
            ("rolled back to", layout.installation().rollback()?, layout)
        }
    };
    print_lines(report.lines(verb, &layout.systemd_dir));
    Ok(ExitCode::SUCCESS)
}

impl LayoutArgs {
    fn layout(&self) -> Layout {
        Layout::new(&self.prefix, &self.bin_dir, &self.systemd_dir)
    }

    /// `--systemctl auto`: systemctl when systemd is running (`/run/systemd/system`).
    fn installation(&self) -> Installation {
        Installation::new(self.layout(), &self.systemctl, Path::new("/run"))
    }
}

fn print_lines(lines: Vec<String>) {
    for line in lines {
        println!("{line}");
    }
}

fn version(globals: &Globals, args: &LayoutArgs) -> anyhow::Result<ExitCode> {
    let build = BuildInfo {
        version: env!("CARGO_PKG_VERSION"),
        commit: env!("RACKER_BUILD_COMMIT"),
        build_date: env!("RACKER_BUILD_DATE"),
        target: env!("RACKER_BUILD_TARGET"),
    };
    let doc = VersionReport::new(build, &args.layout());
    crate::output::emit(globals.output, "version", &doc, |_wide| {
        println!("racker {}", crate::LONG_VERSION);
        print_lines(doc.lines());
        Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

fn from_index(args: IndexArgs, selector: Selector) -> anyhow::Result<ExitCode> {
    let index_url = url_or_path(&args.release_index)?;
    let mut target = args.layout.installation();
    let installed = runtime()?.block_on(target.install_from_index(
        &Fetcher::new(),
        &index_url,
        &selector,
        &args.arch,
        |note| println!("{note}"),
    ))?;
    if let Some(report) = installed {
        print_lines(report.lines("installed", &args.layout.systemd_dir));
    }
    Ok(ExitCode::SUCCESS)
}
