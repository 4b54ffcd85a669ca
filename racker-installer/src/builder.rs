//! Building a release archive from a [`Definition`].

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::archive::write_archive;
use crate::definition::{AssetSource, Definition, Module};
use crate::digest::Hasher;
use crate::error::{Error, IoContext, Result};
use crate::fetch::{Fetcher, fetch_pinned};
use crate::index::ReleaseEntry;

/// Where and how to build.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct BuildOptions {
    /// Output folder for the archive, its `.sha256` and the index entry.
    pub out_dir: PathBuf,
    /// Content-addressed download cache.
    pub cache_dir: PathBuf,
    /// Target architecture name (default: this machine's).
    pub arch: String,
    /// URL prefix for the archive in the index entry (default: the bare
    /// file name, resolved relative to the index).
    pub base_url: Option<String>,
    /// Optional modules to include.
    pub with: Vec<String>,
}

impl BuildOptions {
    /// Options writing to `out_dir`, caching in `cache_dir`, for this
    /// machine's architecture.
    pub fn new(out_dir: impl Into<PathBuf>, cache_dir: impl Into<PathBuf>) -> Self {
        Self {
            out_dir: out_dir.into(),
            cache_dir: cache_dir.into(),
            arch: std::env::consts::ARCH.to_owned(),
            base_url: None,
            with: Vec::new(),
        }
    }
}

/// What a build wrote.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct BuildOutput {
    /// `racker-<version>-<arch>.tar.gz`.
    pub archive: PathBuf,
    /// `<archive>.sha256` (`sha256sum` format).
    pub checksum_file: PathBuf,
    /// `racker-<version>-<arch>.json`: the index entry.
    pub entry_file: PathBuf,
    /// The index entry.
    pub entry: ReleaseEntry,
}

/// Archive file name for a version and architecture.
pub fn archive_name(version: &semver::Version, arch: &str) -> String {
    format!("racker-{version}-{arch}.tar.gz")
}

/// Build the release described by `def`.
pub async fn build(
    def: &Definition,
    opts: &BuildOptions,
    fetcher: &Fetcher,
) -> Result<BuildOutput> {
    for name in &opts.with {
        if !def.modules.iter().any(|m| &m.name == name) {
            return Err(Error::DefinitionInvalid {
                path: def.base_dir.clone(),
                reason: format!("--with {name}: no such module"),
            });
        }
    }
    let modules: Vec<&Module> = def
        .modules
        .iter()
        .filter(|m| !m.optional || opts.with.contains(&m.name))
        .collect();

    // Fetch every pinned download first, so a bad pin fails before work.
    let mut downloads = Vec::new();
    for module in &modules {
        for asset in &module.assets {
            if let AssetSource::Url { url, sha256 } = &asset.source {
                downloads.push(fetch_pinned(fetcher, &opts.cache_dir, url, sha256).await?);
            }
        }
    }

    fs::create_dir_all(&opts.out_dir).ctx("create directory", &opts.out_dir)?;
    let staging = opts
        .out_dir
        .join(format!(".staging-{}", std::process::id()));
    if staging.exists() {
        fs::remove_dir_all(&staging).ctx("remove", &staging)?;
    }
    let root = staging.join("root");
    let work = staging.join("work");
    fs::create_dir_all(&root).ctx("create directory", &root)?;
    fs::create_dir_all(&work).ctx("create directory", &work)?;
    let result = build_in(def, opts, &modules, downloads, &root, &work);
    let _ = fs::remove_dir_all(&staging);
    result
}

fn build_in(
    def: &Definition,
    opts: &BuildOptions,
    modules: &[&Module],
    downloads: Vec<PathBuf>,
    root: &Path,
    work: &Path,
) -> Result<BuildOutput> {
    let mut downloads = downloads.into_iter();
    let source = fs::canonicalize(&def.base_dir).ctx("resolve", &def.base_dir)?;
    let version = def.version.to_string();
    let substitute = |arg: &str| {
        arg.replace("{root}", &root.to_string_lossy())
            .replace("{work}", &work.to_string_lossy())
            .replace("{source}", &source.to_string_lossy())
            .replace("{version}", &version)
            .replace("{arch}", &opts.arch)
    };
    for module in modules {
        for asset in &module.assets {
            let dest = if asset.scratch { work } else { root }.join(&asset.target);
            if let Some(parent) = dest.parent() {
                fs::create_dir_all(parent).ctx("create directory", parent)?;
            }
            match &asset.source {
                AssetSource::Path(path) => copy_tree(path, &dest)?,
                AssetSource::Url { .. } => {
                    let cached = downloads.next().ok_or_else(|| Error::DefinitionInvalid {
                        path: def.base_dir.clone(),
                        reason: "download list out of step".into(),
                    })?;
                    fs::copy(&cached, &dest).ctx("copy", &cached)?;
                    use std::os::unix::fs::PermissionsExt;
                    fs::set_permissions(&dest, fs::Permissions::from_mode(0o644))
                        .ctx("chmod", &dest)?;
                }
                AssetSource::Git { url, tag, commit } => {
                    git_checkout(&module.name, url, tag, commit.as_deref(), &dest)?;
                }
            }
        }
        for step in &module.steps {
            let argv: Vec<String> = step.argv.iter().map(|a| substitute(a)).collect();
            let status = Command::new(&argv[0])
                .args(&argv[1..])
                .current_dir(root)
                .env("RACKER_ROOT", root)
                .env("RACKER_WORK", work)
                .env("RACKER_SOURCE", &source)
                .env("RACKER_RELEASE_VERSION", &version)
                .env("RACKER_ARCH", &opts.arch)
                .status()
                .map_err(|source| Error::Spawn {
                    module: module.name.clone(),
                    argv: argv.clone(),
                    source,
                })?;
            if !status.success() {
                return Err(Error::StepFailed {
                    module: module.name.clone(),
                    argv,
                    status,
                });
            }
        }
    }

    let version_file = root.join("RACKER_VERSION");
    fs::write(&version_file, format!("{version}\n")).ctx("write", &version_file)?;
    let racker = root.join("bin/racker");
    if !racker.is_file() {
        return Err(Error::IncompleteRelease {
            what: root.display().to_string(),
            missing: "bin/racker",
        });
    }

    let name = archive_name(&def.version, &opts.arch);
    let archive = opts.out_dir.join(&name);
    let part = opts.out_dir.join(format!(".{name}.part"));
    let file = fs::File::create(&part).ctx("create", &part)?;
    let mut writer = HashingWriter {
        inner: std::io::BufWriter::new(file),
        hasher: Hasher::default(),
    };
    write_archive(root, def.mtime, &mut writer)?;
    writer.inner.flush().ctx("write", &part)?;
    let sha256 = writer.hasher.finish();
    fs::rename(&part, &archive).ctx("rename", &part)?;

    let checksum_file = opts.out_dir.join(format!("{name}.sha256"));
    fs::write(&checksum_file, format!("{sha256}  {name}\n")).ctx("write", &checksum_file)?;
    let entry = ReleaseEntry {
        version: def.version.clone(),
        arch: opts.arch.clone(),
        archive: match &opts.base_url {
            Some(base) => format!("{}/{name}", base.trim_end_matches('/')),
            None => name.clone(),
        },
        sha256,
        min_compatible_version: def.min_compatible_version.clone(),
    };
    let entry_file = opts
        .out_dir
        .join(format!("racker-{}-{}.json", def.version, opts.arch));
    let mut json = serde_json::to_string_pretty(&entry).unwrap_or_default();
    json.push('\n');
    fs::write(&entry_file, json).ctx("write", &entry_file)?;
    Ok(BuildOutput {
        archive,
        checksum_file,
        entry_file,
        entry,
    })
}

struct HashingWriter<W> {
    inner: W,
    hasher: Hasher,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Copy a file, symlink or folder (recursively) to `dest`, keeping
/// symlinks as symlinks and executable bits.
fn copy_tree(src: &Path, dest: &Path) -> Result<()> {
    let meta = fs::symlink_metadata(src).ctx("stat", src)?;
    let ft = meta.file_type();
    if ft.is_symlink() {
        let target = fs::read_link(src).ctx("read link", src)?;
        std::os::unix::fs::symlink(&target, dest).ctx("create symlink", dest)?;
    } else if ft.is_dir() {
        fs::create_dir_all(dest).ctx("create directory", dest)?;
        let mut names: Vec<_> = fs::read_dir(src)
            .ctx("list", src)?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<std::io::Result<_>>()
            .ctx("list", src)?;
        names.sort();
        for name in names {
            copy_tree(&src.join(&name), &dest.join(&name))?;
        }
    } else {
        fs::copy(src, dest).ctx("copy", src)?;
    }
    Ok(())
}

fn git_checkout(
    module: &str,
    url: &str,
    tag: &str,
    commit: Option<&str>,
    dest: &Path,
) -> Result<()> {
    let argv: Vec<String> = [
        "git",
        "-c",
        "advice.detachedHead=false",
        "clone",
        "--quiet",
        "--depth",
        "1",
        "--branch",
        tag,
        "--",
        url,
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .chain(std::iter::once(dest.to_string_lossy().into_owned()))
    .collect();
    let status = Command::new(&argv[0])
        .args(&argv[1..])
        .env("GIT_TERMINAL_PROMPT", "0")
        .status()
        .map_err(|source| Error::Spawn {
            module: module.to_owned(),
            argv: argv.clone(),
            source,
        })?;
    if !status.success() {
        return Err(Error::StepFailed {
            module: module.to_owned(),
            argv,
            status,
        });
    }
    let git_dir = dest.join(".git");
    if let Some(expected) = commit {
        // A clone of a tag has a detached HEAD: the file holds the commit.
        let head_file = git_dir.join("HEAD");
        let head = fs::read_to_string(&head_file).ctx("read", &head_file)?;
        let found = head.trim().to_ascii_lowercase();
        if found != expected {
            return Err(Error::GitCommitMismatch {
                url: url.to_owned(),
                tag: tag.to_owned(),
                expected: expected.to_owned(),
                found,
            });
        }
    }
    fs::remove_dir_all(&git_dir).ctx("remove", &git_dir)?;
    Ok(())
}
