//! `racker-installer`: build release archives and maintain a release index.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use racker_installer::{BuildOptions, Definition, Fetcher, ReleaseEntry, ReleaseIndex, build};

/// Build Racker release archives from an installer definition.
#[derive(Debug, Parser)]
#[command(name = "racker-installer", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Build `racker-<version>-<arch>.tar.gz`, its `.sha256` and index entry.
    #[command(after_help = "Examples:\n  \
        cargo build --release -p racker-cli\n  \
        racker-installer build --definition installer/racker.toml --out-dir dist\n  \
        racker-installer build --with lokomotive --index dist/index.json \\\n    \
        --base-url https://github.com/racker-rs/racker/releases/download/v0.1.0")]
    Build {
        /// The installer definition.
        #[arg(long, default_value = "installer/racker.toml")]
        definition: PathBuf,
        /// Output folder.
        #[arg(long, default_value = "dist")]
        out_dir: PathBuf,
        /// Download cache (content-addressed by SHA-256).
        #[arg(
            long,
            env = "RACKER_INSTALLER_CACHE",
            default_value = "target/racker-installer-cache"
        )]
        cache_dir: PathBuf,
        /// Target architecture (Rust's name: x86_64, aarch64).
        #[arg(long, default_value = std::env::consts::ARCH)]
        arch: String,
        /// URL prefix of the archive in the index entry (default: relative).
        #[arg(long)]
        base_url: Option<String>,
        /// Include an optional module (repeatable).
        #[arg(long = "with")]
        with: Vec<String>,
        /// Also add the entry to this release index file (created if absent).
        #[arg(long)]
        index: Option<PathBuf>,
    },
    /// Add index entries (`racker-<version>-<arch>.json`) to an index file.
    IndexAdd {
        /// The index file (created if absent).
        #[arg(long)]
        index: PathBuf,
        /// Entry files written by `build`.
        entries: Vec<PathBuf>,
    },
}

fn add_to_index(index_path: &std::path::Path, entries: Vec<ReleaseEntry>) -> anyhow::Result<()> {
    let mut index = match std::fs::read(index_path) {
        Ok(bytes) => ReleaseIndex::parse(&index_path.display().to_string(), &bytes)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => ReleaseIndex::default(),
        Err(e) => return Err(e).with_context(|| format!("read {}", index_path.display())),
    };
    for entry in entries {
        index.insert(entry);
    }
    std::fs::write(index_path, index.to_json())
        .with_context(|| format!("write {}", index_path.display()))?;
    Ok(())
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Build {
            definition,
            out_dir,
            cache_dir,
            arch,
            base_url,
            with,
            index,
        } => {
            let def = Definition::load(&definition)?;
            let mut opts = BuildOptions::new(out_dir, cache_dir);
            opts.arch = arch;
            opts.base_url = base_url;
            opts.with = with;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let out = runtime.block_on(build(&def, &opts, &Fetcher::new()))?;
            println!("{}", out.archive.display());
            println!("sha256 {}", out.entry.sha256);
            println!("{}", out.entry_file.display());
            if let Some(index) = index {
                add_to_index(&index, vec![out.entry])?;
                println!("{} updated", index.display());
            }
        }
        Command::IndexAdd { index, entries } => {
            let mut parsed = Vec::new();
            for path in entries {
                let bytes =
                    std::fs::read(&path).with_context(|| format!("read {}", path.display()))?;
                parsed.push(
                    serde_json::from_slice(&bytes)
                        .with_context(|| format!("parse {}", path.display()))?,
                );
            }
            add_to_index(&index, parsed)?;
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
