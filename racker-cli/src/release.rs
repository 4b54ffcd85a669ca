//! `racker version | install | update | upgrade | get | rollback`: install
//! and update Racker itself from release archives (see docs/installer.md).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use racker_installer::{
    Fetcher, IndexChoice, InstallReport, Installer, Layout, Selector, ServiceManager, Sha256Digest,
    Systemctl, Url, Version, choose_from_index, fetch_and_install, published_checksum, url_or_path,
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
    match command {
        ReleaseCommand::Version(layout) => version(globals, &layout),
        ReleaseCommand::Install(args) => install(args),
        ReleaseCommand::Update(args) => {
            if layout(&args.layout).factory_reset_pending() {
                // After `racker factory reset --racker-version` the first
                // update behaves like `upgrade` (docs/installer.md).
                println!(
                    "installed version forgotten by a factory reset: installing the newest release"
                );
                return from_index(&args, Selector::Newest);
            }
            let installed = installed_version(&args.layout)?;
            from_index(&args, Selector::Compatible(installed))
        }
        ReleaseCommand::Upgrade(args) => from_index(&args, Selector::Newest),
        ReleaseCommand::Get(args) => from_index(&args.index, Selector::Exact(args.version)),
        ReleaseCommand::Rollback(layout) => {
            let mut systemctl = service_manager(&layout);
            let report =
                Installer::new(self::layout(&layout), as_manager(&mut systemctl)).rollback()?;
            print_report("rolled back to", &report, &layout);
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn layout(args: &LayoutArgs) -> Layout {
    Layout::new(&args.prefix, &args.bin_dir, &args.systemd_dir)
}

/// `racker version -o json` (kind `version`, docs/output.md).
#[derive(Debug, serde::Serialize)]
struct VersionJson {
    version: &'static str,
    commit: &'static str,
    build_date: &'static str,
    target: &'static str,
    installed: Option<ReleaseJson>,
    previous: Option<ReleaseJson>,
    factory_reset_pending: bool,
    installed_error: Option<String>,
}

#[derive(Debug, serde::Serialize)]
struct ReleaseJson {
    version: String,
    dir: PathBuf,
}

fn version(globals: &Globals, args: &LayoutArgs) -> anyhow::Result<ExitCode> {
    let mut doc = VersionJson {
        version: env!("CARGO_PKG_VERSION"),
        commit: env!("RACKER_BUILD_COMMIT"),
        build_date: env!("RACKER_BUILD_DATE"),
        target: env!("RACKER_BUILD_TARGET"),
        installed: None,
        previous: None,
        factory_reset_pending: layout(args).factory_reset_pending(),
        installed_error: None,
    };
    match layout(args).state() {
        Ok(state) => {
            let release = |r: racker_installer::Installed| ReleaseJson {
                version: r.version.to_string(),
                dir: r.dir,
            };
            doc.installed = state.current.map(release);
            doc.previous = state.previous.map(release);
        }
        Err(err) => doc.installed_error = Some(err.to_string()),
    }
    crate::output::emit(globals.output, "version", &doc, |_wide| {
        println!("racker {}", crate::LONG_VERSION);
        if let Some(err) = &doc.installed_error {
            println!("installed release unknown: {err}");
            return Ok(());
        }
        if let Some(current) = &doc.installed {
            println!("installed {} ({})", current.version, current.dir.display());
        }
        if doc.factory_reset_pending {
            println!("factory reset: the next `racker update` installs the newest release");
        }
        if let Some(previous) = &doc.previous {
            println!("previous {} (racker rollback)", previous.version);
        }
        Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

fn installed_version(args: &LayoutArgs) -> anyhow::Result<Version> {
    layout(args)
        .state()?
        .current
        .map(|c| c.version)
        .ok_or_else(|| {
            racker_installer::Error::NotInstalled {
                prefix: args.prefix.clone(),
            }
            .into()
        })
}

/// `auto`: systemctl when systemd is running (`/run/systemd/system`).
fn service_manager(args: &LayoutArgs) -> Option<Systemctl> {
    Systemctl::from_setting(&args.systemctl, Path::new("/run"))
}

fn as_manager(systemctl: &mut Option<Systemctl>) -> Option<&mut dyn ServiceManager> {
    systemctl.as_mut().map(|s| s as &mut dyn ServiceManager)
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

fn install(args: InstallArgs) -> anyhow::Result<ExitCode> {
    let url = url_or_path(&args.archive)?;
    let rt = runtime()?;
    let fetcher = Fetcher::new();
    let expected = match args.sha256 {
        Some(d) => d,
        None => rt.block_on(published_checksum(&fetcher, &url))?,
    };
    let report = install_from(&rt, &fetcher, &url, expected, None, &args.layout)?;
    print_report("installed", &report, &args.layout);
    Ok(ExitCode::SUCCESS)
}

fn from_index(args: &IndexArgs, selector: Selector) -> anyhow::Result<ExitCode> {
    let index_url = url_or_path(&args.release_index)?;
    let rt = runtime()?;
    let fetcher = Fetcher::new();
    let layout = layout(&args.layout);
    let choice = rt.block_on(choose_from_index(
        &fetcher, &index_url, &selector, &args.arch, &layout,
    ))?;
    let (entry, archive_url) = match choice {
        IndexChoice::Install {
            entry,
            archive,
            incompatible,
        } => {
            if let Some((installed, min)) = incompatible {
                println!(
                    "note: {} is not compatible with {installed} (needs at least {min}); upgrading anyway",
                    entry.version
                );
            }
            (entry, archive)
        }
        IndexChoice::UpToDate { installed, newest } => {
            println!("racker {installed} is up to date (newest in index: {newest})");
            return Ok(ExitCode::SUCCESS);
        }
        IndexChoice::NoneCompatible { installed } => {
            println!(
                "no compatible release in {index_url}; racker {} stays installed",
                installed.map(|v| v.to_string()).unwrap_or_default()
            );
            return Ok(ExitCode::SUCCESS);
        }
        other => anyhow::bail!("unexpected release index choice {other:?}"),
    };
    let report = install_from(
        &rt,
        &fetcher,
        &archive_url,
        entry.sha256,
        Some(&entry.version),
        &args.layout,
    )?;
    print_report("installed", &report, &args.layout);
    Ok(ExitCode::SUCCESS)
}

fn install_from(
    rt: &tokio::runtime::Runtime,
    fetcher: &Fetcher,
    url: &Url,
    expected: Sha256Digest,
    expected_version: Option<&Version>,
    args: &LayoutArgs,
) -> anyhow::Result<InstallReport> {
    let mut systemctl = service_manager(args);
    Ok(rt.block_on(fetch_and_install(
        fetcher,
        url,
        expected,
        expected_version,
        layout(args),
        as_manager(&mut systemctl),
    ))?)
}

fn print_report(verb: &str, report: &InstallReport, args: &LayoutArgs) {
    if report.already_current {
        println!(
            "racker {} is already installed ({})",
            report.version,
            report.dir.display()
        );
    } else {
        println!(
            "{verb} racker {} ({})",
            report.version,
            report.dir.display()
        );
    }
    if let Some(previous) = &report.previous {
        println!("previous {previous} kept for `racker rollback`");
    }
    for link in &report.linked {
        println!("linked {}", link.display());
    }
    for unit in &report.units_written {
        println!("unit {}", args.systemd_dir.join(unit).display());
    }
    if report.systemd_used {
        for unit in &report.units_restarted {
            println!("restarted {unit}");
        }
    } else if !report.units_written.is_empty() {
        println!("systemd is not running here: unit files written, no service restarted");
    }
}
