//! Installing a release archive atomically, and rolling back.
//!
//! Layout under the prefix (default `/opt/racker`):
//!
//! ```text
//! versions/<version>-<sha256 prefix>/   one extracted release each
//! current  -> versions/...              the installed release (the switch)
//! previous -> versions/...              kept for `racker rollback`
//! ```
//!
//! An install copies the archive (hashing it) into a staging folder beside
//! the prefix (`<parent>/.<name>.staging-<pid>`), verifies the checksum,
//! extracts there, renames the tree into `versions/` and then flips
//! `current` by renaming a fresh symlink over it — the one atomic commit
//! point. Executables are linked from the bin dir through `current`, so they
//! follow the flip. Until the flip the previous release is untouched and
//! still current; after it the new one is complete. Leftovers of an
//! interrupted install are removed by the next one.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use semver::Version;

use crate::archive::unpack_archive;
use crate::digest::{Hasher, Sha256Digest};
use crate::error::{Error, IoContext, Result};
use crate::systemd::{ServiceManager, is_unit_name};

/// Stages of an install, in order; see [`Installer::stop_at`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Stage {
    /// The archive checksum matched.
    Verified,
    /// The archive is extracted into the staging folder.
    Extracted,
    /// The extracted tree is in `versions/`, not yet current.
    Moved,
    /// `current` points at the new release.
    Switched,
    /// Executables are linked into the bin dir.
    Linked,
    /// Unit files are installed and active units restarted.
    UnitsRefreshed,
}

/// Where things go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// Install prefix (`/opt/racker`).
    pub prefix: PathBuf,
    /// Where executables are linked (`/opt/bin`).
    pub bin_dir: PathBuf,
    /// Where unit files go (`/etc/systemd/system`).
    pub systemd_dir: PathBuf,
}

/// One installed release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    /// Its version (from `RACKER_VERSION`).
    pub version: Version,
    /// Its folder under `versions/`.
    pub dir: PathBuf,
}

/// What is installed under a prefix.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InstalledState {
    /// The current release.
    pub current: Option<Installed>,
    /// The release kept for rollback.
    pub previous: Option<Installed>,
}

impl Layout {
    /// A layout with the three folders.
    pub fn new(
        prefix: impl Into<PathBuf>,
        bin_dir: impl Into<PathBuf>,
        systemd_dir: impl Into<PathBuf>,
    ) -> Self {
        Self {
            prefix: prefix.into(),
            bin_dir: bin_dir.into(),
            systemd_dir: systemd_dir.into(),
        }
    }

    /// `<prefix>/versions`.
    pub fn versions_dir(&self) -> PathBuf {
        self.prefix.join("versions")
    }
    /// `<prefix>/current`.
    pub fn current_link(&self) -> PathBuf {
        self.prefix.join("current")
    }
    /// `<prefix>/previous`.
    pub fn previous_link(&self) -> PathBuf {
        self.prefix.join("previous")
    }

    /// `<prefix>/FACTORY_RESET`: written by `racker factory reset
    /// --racker-version`; while it exists the installed version counts as
    /// unknown, so the next update installs the newest release (as the
    /// original racker did once its `RACKER_VERSION` file was removed). An
    /// install of any release removes it. See docs/installer.md.
    pub fn factory_reset_marker(&self) -> PathBuf {
        self.prefix.join("FACTORY_RESET")
    }

    /// Whether [`Layout::mark_factory_reset`] was called since the last
    /// install.
    pub fn factory_reset_pending(&self) -> bool {
        fs::symlink_metadata(self.factory_reset_marker()).is_ok()
    }

    /// Forget the installed version for the purpose of updates: the next
    /// `update` selects the newest release like `upgrade`. The installed
    /// tree itself stays as it is (executables keep working).
    pub fn mark_factory_reset(&self) -> Result<()> {
        fs::create_dir_all(&self.prefix).ctx("create directory", &self.prefix)?;
        write_atomic(
            &self.factory_reset_marker(),
            b"the next `racker update` installs the newest release\n",
            0o644,
        )
    }

    /// `<prefix parent>/.<prefix name>.lock`: held (flock, exclusive) for
    /// the whole of an install or rollback, so two of them never race on
    /// `current`. The kernel drops it when the holder dies.
    pub fn lock_path(&self) -> PathBuf {
        let name = self
            .prefix
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "racker".into());
        self.staging_parent().join(format!(".{name}.lock"))
    }

    /// Take the install lock, waiting up to [`LOCK_WAIT`] for another
    /// holder, else fail with [`Error::Busy`]. (The wait also covers a
    /// just-released lock whose descriptor a concurrently forked child of
    /// this process still holds until its `exec`.)
    pub fn lock(&self) -> Result<InstallLock> {
        let parent = self.staging_parent();
        fs::create_dir_all(&parent).ctx("create directory", &parent)?;
        let path = self.lock_path();
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .ctx("open", &path)?;
        let deadline = std::time::Instant::now() + LOCK_WAIT;
        loop {
            match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => return Ok(InstallLock { _file: file }),
                Err(e) if e == rustix::io::Errno::WOULDBLOCK => {
                    if std::time::Instant::now() >= deadline {
                        return Err(Error::Busy {
                            prefix: self.prefix.clone(),
                            lock: path,
                        });
                    }
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(e) => return Err(std::io::Error::from(e)).ctx("lock", &path),
            }
        }
    }

    fn staging_prefix(&self) -> String {
        let name = self
            .prefix
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "racker".into());
        format!(".{name}.staging-")
    }

    fn staging_parent(&self) -> PathBuf {
        match self.prefix.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        }
    }

    /// What is installed (nothing when the prefix does not exist).
    pub fn state(&self) -> Result<InstalledState> {
        Ok(InstalledState {
            current: self.read_link(&self.current_link())?,
            previous: self.read_link(&self.previous_link())?,
        })
    }

    fn read_link(&self, link: &Path) -> Result<Option<Installed>> {
        let target = match fs::read_link(link) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).ctx("read link", link),
        };
        let dir = self.prefix.join(target);
        if !dir.is_dir() {
            return Ok(None);
        }
        Ok(Some(Installed {
            version: read_version(&dir)?,
            dir,
        }))
    }

    /// Start an install: remove leftovers of interrupted installs and
    /// create a fresh staging folder beside the prefix.
    pub fn begin(&self) -> Result<Staging> {
        let lock = self.lock()?;
        let parent = self.staging_parent();
        self.remove_leftovers()?;
        let dir = parent.join(format!("{}{}", self.staging_prefix(), std::process::id()));
        fs::create_dir(&dir).ctx("create directory", &dir)?;
        Ok(Staging {
            dir,
            keep: false,
            lock: Some(lock),
        })
    }

    fn remove_leftovers(&self) -> Result<()> {
        let parent = self.staging_parent();
        let marker = self.staging_prefix();
        let own = std::process::id().to_string();
        for entry in fs::read_dir(&parent).ctx("list", &parent)? {
            let entry = entry.ctx("list", &parent)?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(pid) = name.strip_prefix(&marker) else {
                continue;
            };
            // Another live process's install is left alone.
            if pid == own || !Path::new("/proc").join(pid).exists() {
                let path = entry.path();
                fs::remove_dir_all(&path).ctx("remove leftover", &path)?;
            }
        }
        if let Ok(entries) = fs::read_dir(&self.prefix) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with('.') && name.contains(".tmp-") {
                    let path = entry.path();
                    fs::remove_file(&path).ctx("remove leftover", &path)?;
                }
            }
        }
        Ok(())
    }
}

/// How long [`Layout::lock`] waits for another holder.
pub const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// The install lock of a prefix ([`Layout::lock`]); released when dropped
/// (or when the process dies).
#[derive(Debug)]
pub struct InstallLock {
    _file: fs::File,
}

/// A staging folder beside the prefix, holding the install lock; removed
/// when dropped unless an install was deliberately stopped in it.
#[derive(Debug)]
pub struct Staging {
    dir: PathBuf,
    keep: bool,
    lock: Option<InstallLock>,
}

impl Staging {
    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
    /// Where the archive copy goes.
    pub fn archive_path(&self) -> PathBuf {
        self.dir.join("archive.tar.gz")
    }
    fn tree(&self) -> PathBuf {
        self.dir.join("tree")
    }

    /// Copy a local archive into the staging folder, returning its digest.
    pub fn receive_file(&self, archive: &Path) -> Result<Sha256Digest> {
        let mut input = fs::File::open(archive).ctx("open", archive)?;
        let dest = self.archive_path();
        let mut out = fs::File::create(&dest).ctx("create", &dest)?;
        let mut hasher = Hasher::default();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = input.read(&mut buf).ctx("read", archive)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            out.write_all(&buf[..n]).ctx("write", &dest)?;
        }
        out.sync_all().ctx("sync", &dest)?;
        Ok(hasher.finish())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.keep {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// What an install or rollback did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct InstallReport {
    /// The now current version.
    pub version: Version,
    /// Its folder.
    pub dir: PathBuf,
    /// The version kept for rollback.
    pub previous: Option<Version>,
    /// The release was already current: nothing switched.
    pub already_current: bool,
    /// Links created or refreshed in the bin dir.
    pub linked: Vec<PathBuf>,
    /// Unit files written (new or changed).
    pub units_written: Vec<String>,
    /// Units restarted because they were active.
    pub units_restarted: Vec<String>,
    /// Whether a service manager was used (false: systemd absent).
    pub systemd_used: bool,
}

/// Performs installs and rollbacks on a [`Layout`].
pub struct Installer<'a> {
    layout: Layout,
    services: Option<&'a mut dyn ServiceManager>,
    stop_at: Option<Stage>,
}

impl std::fmt::Debug for Installer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Installer")
            .field("layout", &self.layout)
            .field("systemd", &self.services.is_some())
            .field("stop_at", &self.stop_at)
            .finish()
    }
}

impl<'a> Installer<'a> {
    /// An installer; `services` is `None` where systemd is absent (unit
    /// files are still written, nothing is restarted).
    pub fn new(layout: Layout, services: Option<&'a mut dyn ServiceManager>) -> Self {
        Self {
            layout,
            services,
            stop_at: None,
        }
    }

    /// Stop right after `stage`, leaving the disk exactly as a crash at that
    /// point would (the staging folder is kept), and return
    /// [`Error::Interrupted`]. For crash-safety tests and drills.
    pub fn stop_at(mut self, stage: Stage) -> Self {
        self.stop_at = Some(stage);
        self
    }

    /// The layout.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    fn checkpoint(&self, staging: Option<&mut Staging>, stage: Stage) -> Result<()> {
        tracing::debug!(prefix = %self.layout.prefix.display(), ?stage, "install step done");
        if self.stop_at == Some(stage) {
            if let Some(s) = staging {
                s.keep = true;
            }
            return Err(Error::Interrupted(stage));
        }
        Ok(())
    }

    /// Install the archive received into `staging` whose digest is
    /// `actual`. Nothing outside the staging folder changes unless `actual`
    /// equals `expected`, the archive unpacks safely, holds `bin/racker` and
    /// `RACKER_VERSION`, and (when given) that version is
    /// `expected_version`. `what` names the archive in errors.
    pub fn install(
        &mut self,
        mut staging: Staging,
        actual: Sha256Digest,
        expected: Sha256Digest,
        expected_version: Option<&Version>,
        what: &str,
    ) -> Result<InstallReport> {
        if actual != expected {
            return Err(Error::ChecksumMismatch {
                what: what.to_owned(),
                expected,
                actual,
            });
        }
        self.checkpoint(Some(&mut staging), Stage::Verified)?;

        let tree = staging.tree();
        fs::create_dir(&tree).ctx("create directory", &tree)?;
        let archive = staging.archive_path();
        let file = fs::File::open(&archive).ctx("open", &archive)?;
        unpack_archive(std::io::BufReader::new(file), &tree, what)?;
        let version = read_version(&tree)?;
        if !tree.join("bin/racker").is_file() {
            return Err(Error::IncompleteRelease {
                what: what.to_owned(),
                missing: "bin/racker",
            });
        }
        if let Some(expected) = expected_version
            && expected != &version
        {
            return Err(Error::VersionMismatch {
                what: what.to_owned(),
                expected: expected.clone(),
                found: version,
            });
        }
        self.checkpoint(Some(&mut staging), Stage::Extracted)?;

        let state = self.layout.state()?;
        let short = &actual.to_string()[..12];
        let dir_name = format!("{version}-{short}");
        let versions = self.layout.versions_dir();
        fs::create_dir_all(&versions).ctx("create directory", &versions)?;
        let dest = versions.join(&dir_name);
        if !dest.is_dir() {
            fs::rename(&tree, &dest).ctx("rename", &tree)?;
            sync_dir(&versions)?;
        }
        self.checkpoint(Some(&mut staging), Stage::Moved)?;
        // The lock outlives the staging folder until `current` is flipped.
        let _lock = staging.lock.take();
        drop(staging);

        let already_current = state.current.as_ref().is_some_and(|c| c.dir == dest);
        let previous = if already_current {
            state.previous
        } else {
            state.current
        };
        self.switch(&dest, previous.as_ref(), already_current)
    }

    /// Make the kept previous release current again (and keep the one that
    /// was current as the new previous).
    pub fn rollback(&mut self) -> Result<InstallReport> {
        let _lock = self.layout.lock()?;
        let state = self.layout.state()?;
        let current = state.current.ok_or_else(|| Error::NotInstalled {
            prefix: self.layout.prefix.clone(),
        })?;
        let previous = state.previous.ok_or_else(|| Error::NoPrevious {
            prefix: self.layout.prefix.clone(),
        })?;
        if previous.dir == current.dir {
            return Err(Error::NoPrevious {
                prefix: self.layout.prefix.clone(),
            });
        }
        self.switch(&previous.dir, Some(&current), false)
    }

    /// Flip `current` to `dest`, keep `previous`, then links and units.
    fn switch(
        &mut self,
        dest: &Path,
        previous: Option<&Installed>,
        already_current: bool,
    ) -> Result<InstallReport> {
        let version = read_version(dest)?;
        let units = unit_files(dest)?;
        // Which of the release's units run now: only those get restarted.
        let mut active = Vec::new();
        if let Some(services) = self.services.as_deref_mut() {
            for (name, _) in &units {
                if services.is_active(name)? {
                    active.push(name.clone());
                }
            }
        }
        if !already_current {
            if let Some(prev) = previous {
                atomic_symlink(
                    &relative_to_prefix(&self.layout, &prev.dir),
                    &self.layout.previous_link(),
                )?;
            }
            // The commit point.
            atomic_symlink(
                &relative_to_prefix(&self.layout, dest),
                &self.layout.current_link(),
            )?;
            sync_dir(&self.layout.prefix)?;
        }
        // A release is installed again: the factory reset is consumed.
        match fs::remove_file(self.layout.factory_reset_marker()) {
            Ok(()) => sync_dir(&self.layout.prefix)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).ctx("remove", &self.layout.factory_reset_marker()),
        }
        self.checkpoint(None, Stage::Switched)?;

        let linked = self.link_executables(dest)?;
        self.checkpoint(None, Stage::Linked)?;

        let mut units_written = Vec::new();
        fs::create_dir_all(&self.layout.systemd_dir)
            .ctx("create directory", &self.layout.systemd_dir)?;
        for (name, path) in &units {
            let content = fs::read(path).ctx("read", path)?;
            let target = self.layout.systemd_dir.join(name);
            if fs::read(&target).ok().as_deref() != Some(&content[..]) {
                write_atomic(&target, &content, 0o644)?;
                units_written.push(name.clone());
            }
        }
        let mut units_restarted = Vec::new();
        let systemd_used = self.services.is_some();
        if let Some(services) = self.services.as_deref_mut() {
            if !units_written.is_empty() {
                services.daemon_reload()?;
            }
            // Re-running an install of the current release (e.g. after a
            // crash past the switch) restarts only units it had to rewrite.
            for name in active
                .iter()
                .filter(|n| !already_current || units_written.contains(n))
            {
                services.restart(name)?;
                units_restarted.push(name.clone());
            }
        }
        self.checkpoint(None, Stage::UnitsRefreshed)?;

        let state = self.layout.state()?;
        self.collect_garbage(&state)?;
        Ok(InstallReport {
            version,
            dir: dest.to_path_buf(),
            previous: state.previous.map(|p| p.version),
            already_current,
            linked,
            units_written,
            units_restarted,
            systemd_used,
        })
    }

    /// Link every executable of `<release>/bin` as
    /// `<bin_dir>/<name> -> <prefix>/current/bin/<name>`, and drop links of
    /// ours whose target no longer exists.
    fn link_executables(&self, release: &Path) -> Result<Vec<PathBuf>> {
        let bin = release.join("bin");
        let bin_dir = &self.layout.bin_dir;
        fs::create_dir_all(bin_dir).ctx("create directory", bin_dir)?;
        let through = self.layout.current_link().join("bin");
        let mut linked = Vec::new();
        let mut names: Vec<_> = fs::read_dir(&bin)
            .ctx("list", &bin)?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name())
            .collect();
        names.sort();
        for name in names {
            let target = through.join(&name);
            let link = bin_dir.join(&name);
            if fs::read_link(&link).ok().as_deref() != Some(target.as_path()) {
                if fs::symlink_metadata(&link).is_ok_and(|m| m.is_dir()) {
                    return Err(Error::Io {
                        op: "link executable over directory",
                        path: link,
                        source: std::io::ErrorKind::AlreadyExists.into(),
                    });
                }
                atomic_symlink(&target, &link)?;
                linked.push(link);
            }
        }
        for entry in fs::read_dir(bin_dir).ctx("list", bin_dir)?.flatten() {
            let link = entry.path();
            if let Ok(target) = fs::read_link(&link)
                && target.starts_with(&through)
                && !link.exists()
            {
                fs::remove_file(&link).ctx("remove stale link", &link)?;
            }
        }
        Ok(linked)
    }

    /// Keep only the current and previous releases.
    fn collect_garbage(&self, state: &InstalledState) -> Result<()> {
        let keep: Vec<&Path> = [&state.current, &state.previous]
            .into_iter()
            .flatten()
            .map(|i| i.dir.as_path())
            .collect();
        let versions = self.layout.versions_dir();
        for entry in fs::read_dir(&versions).ctx("list", &versions)?.flatten() {
            let path = entry.path();
            if !keep.contains(&path.as_path()) {
                fs::remove_dir_all(&path).ctx("remove old release", &path)?;
            }
        }
        Ok(())
    }
}

fn relative_to_prefix(layout: &Layout, dir: &Path) -> PathBuf {
    dir.strip_prefix(&layout.prefix)
        .map(Path::to_path_buf)
        .unwrap_or_else(|_| dir.to_path_buf())
}

/// Read and parse `<dir>/RACKER_VERSION`.
pub fn read_version(dir: &Path) -> Result<Version> {
    let path = dir.join("RACKER_VERSION");
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::IncompleteRelease {
                what: dir.display().to_string(),
                missing: "RACKER_VERSION",
            });
        }
        Err(e) => return Err(e).ctx("read", &path),
    };
    text.trim().parse().map_err(|source| Error::InvalidVersion {
        what: path.display().to_string(),
        text: text.trim().to_owned(),
        source,
    })
}

/// Unit files in `<release>/systemd`, sorted by name.
fn unit_files(release: &Path) -> Result<Vec<(String, PathBuf)>> {
    let dir = release.join("systemd");
    let mut units = Vec::new();
    let entries = match fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(units),
        Err(e) => return Err(e).ctx("list", &dir),
    };
    for entry in entries {
        let entry = entry.ctx("list", &dir)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if is_unit_name(&name) && entry.path().is_file() {
            units.push((name, entry.path()));
        }
    }
    units.sort();
    Ok(units)
}

/// Point `link` at `target` atomically and durably (`racker_fsutil`).
fn atomic_symlink(target: &Path, link: &Path) -> Result<()> {
    racker_fsutil::symlink_atomic(target, link).ctx("link", link)
}

/// Replace `path` with `content` atomically and durably (`racker_fsutil`).
fn write_atomic(path: &Path, content: &[u8], mode: u32) -> Result<()> {
    racker_fsutil::write_atomic(path, content, mode).ctx("write", path)
}

fn sync_dir(dir: &Path) -> Result<()> {
    racker_fsutil::sync_dir(dir).ctx("sync", dir)
}
