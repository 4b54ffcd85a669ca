//! What racker's release commands do (`racker version`, `install`,
//! `update`, `upgrade`, `get`, `rollback`; docs/installer.md): typed
//! results and the report lines a command-line front end prints.

use std::path::{Path, PathBuf};

use semver::Version;
use url::Url;

use crate::{
    Error, Fetcher, IndexChoice, InstallReport, Installed, Installer, Layout, Result, Selector,
    ServiceManager, Sha256Digest, Systemctl, choose_from_index, fetch_and_install,
    published_checksum,
};

/// Facts about the running binary, for [`VersionReport`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuildInfo {
    /// Its version.
    pub version: &'static str,
    /// The commit it was built from.
    pub commit: &'static str,
    /// When it was built.
    pub build_date: &'static str,
    /// The target triple.
    pub target: &'static str,
}

/// `racker version -o json` (kind `version`, docs/output.md): the running
/// binary and what is installed under a prefix.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct VersionReport {
    /// The running binary's version.
    pub version: &'static str,
    /// Its commit.
    pub commit: &'static str,
    /// Its build date.
    pub build_date: &'static str,
    /// Its target triple.
    pub target: &'static str,
    /// The current release.
    pub installed: Option<ReleaseView>,
    /// The release kept for rollback.
    pub previous: Option<ReleaseView>,
    /// The next `racker update` installs the newest release (factory reset).
    pub factory_reset_pending: bool,
    /// Why the installed releases could not be read.
    pub installed_error: Option<String>,
}

/// One installed release in a [`VersionReport`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ReleaseView {
    /// Its version.
    pub version: String,
    /// Its folder.
    pub dir: PathBuf,
}

impl From<Installed> for ReleaseView {
    fn from(r: Installed) -> Self {
        Self {
            version: r.version.to_string(),
            dir: r.dir,
        }
    }
}

impl VersionReport {
    /// The running binary (`build`) and what `layout` has installed.
    pub fn new(build: BuildInfo, layout: &Layout) -> Self {
        let mut report = Self {
            version: build.version,
            commit: build.commit,
            build_date: build.build_date,
            target: build.target,
            installed: None,
            previous: None,
            factory_reset_pending: layout.factory_reset_pending(),
            installed_error: None,
        };
        match layout.state() {
            Ok(state) => {
                report.installed = state.current.map(ReleaseView::from);
                report.previous = state.previous.map(ReleaseView::from);
            }
            Err(err) => report.installed_error = Some(err.to_string()),
        }
        report
    }

    /// The text form's lines after the `racker <version>` line.
    pub fn lines(&self) -> Vec<String> {
        if let Some(err) = &self.installed_error {
            return vec![format!("installed release unknown: {err}")];
        }
        let mut lines = Vec::new();
        if let Some(current) = &self.installed {
            lines.push(format!(
                "installed {} ({})",
                current.version,
                current.dir.display()
            ));
        }
        if self.factory_reset_pending {
            lines.push(
                "factory reset: the next `racker update` installs the newest release".to_owned(),
            );
        }
        if let Some(previous) = &self.previous {
            lines.push(format!("previous {} (racker rollback)", previous.version));
        }
        lines
    }
}

/// An installation to change: where it lives and the service manager that
/// restarts its units (none without systemd).
#[derive(Debug)]
pub struct Installation {
    layout: Layout,
    systemctl: Option<Systemctl>,
}

impl Installation {
    /// `layout`, with units restarted through `systemctl` as
    /// [`Systemctl::from_setting`] reads it (`auto`: when systemd runs,
    /// seen in `run_dir`, normally `/run`).
    pub fn new(layout: Layout, systemctl: &str, run_dir: &Path) -> Self {
        Self {
            layout,
            systemctl: Systemctl::from_setting(systemctl, run_dir),
        }
    }

    /// Where it lives.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    fn services(&mut self) -> Option<&mut dyn ServiceManager> {
        self.systemctl
            .as_mut()
            .map(|s| s as &mut dyn ServiceManager)
    }

    /// The current release's version ([`Error::NotInstalled`] without one).
    pub fn installed_version(&self) -> Result<Version> {
        self.layout
            .state()?
            .current
            .map(|c| c.version)
            .ok_or_else(|| Error::NotInstalled {
                prefix: self.layout.prefix.clone(),
            })
    }

    /// What `racker update` installs: a release compatible with the
    /// installed one, or after a factory reset the newest, with a note
    /// saying so.
    pub fn update_selector(&self) -> Result<(Selector, Option<&'static str>)> {
        if self.layout.factory_reset_pending() {
            return Ok((
                Selector::Newest,
                Some(
                    "installed version forgotten by a factory reset: installing the newest release",
                ),
            ));
        }
        Ok((Selector::Compatible(self.installed_version()?), None))
    }

    /// Switch back to the release that was current before the last install.
    pub fn rollback(&mut self) -> Result<InstallReport> {
        let layout = self.layout.clone();
        Installer::new(layout, self.services()).rollback()
    }

    /// Fetch the archive at `url` and install it, checking `expected` (or
    /// else the checksum published beside it) and the version, when the
    /// index named one.
    pub async fn install_url(
        &mut self,
        fetcher: &Fetcher,
        url: &Url,
        expected: Option<Sha256Digest>,
        expected_version: Option<&Version>,
    ) -> Result<InstallReport> {
        let expected = match expected {
            Some(d) => d,
            None => published_checksum(fetcher, url).await?,
        };
        let layout = self.layout.clone();
        fetch_and_install(
            fetcher,
            url,
            expected,
            expected_version,
            layout,
            self.services(),
        )
        .await
    }

    /// Read the release index at `index_url`, choose a release for
    /// `selector` on `arch` and install it. `note` receives what the
    /// operator should read before the install starts (or instead of it).
    pub async fn install_from_index(
        &mut self,
        fetcher: &Fetcher,
        index_url: &Url,
        selector: &Selector,
        arch: &str,
        note: impl FnOnce(String),
    ) -> Result<Option<InstallReport>> {
        let choice = choose_from_index(fetcher, index_url, selector, arch, &self.layout).await?;
        if let Some(message) = choice.message(index_url) {
            note(message);
        }
        let IndexChoice::Install { entry, archive, .. } = choice else {
            return Ok(None);
        };
        let report = self
            .install_url(fetcher, &archive, Some(entry.sha256), Some(&entry.version))
            .await?;
        Ok(Some(report))
    }
}

impl IndexChoice {
    /// What to tell the operator about this choice of the index at
    /// `index_url`: why nothing is installed, or that an upgrade crosses
    /// a compatibility boundary.
    pub fn message(&self, index_url: &Url) -> Option<String> {
        match self {
            Self::Install {
                entry,
                incompatible: Some((installed, min)),
                ..
            } => Some(format!(
                "note: {} is not compatible with {installed} (needs at least {min}); upgrading anyway",
                entry.version
            )),
            Self::Install { .. } => None,
            Self::UpToDate { installed, newest } => Some(format!(
                "racker {installed} is up to date (newest in index: {newest})"
            )),
            Self::NoneCompatible { installed } => Some(format!(
                "no compatible release in {index_url}; racker {} stays installed",
                installed
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default()
            )),
        }
    }
}

impl InstallReport {
    /// What happened, one line each; `verb` names the change
    /// (`"installed"`, `"rolled back to"`), unit files are named in
    /// `systemd_dir`.
    pub fn lines(&self, verb: &str, systemd_dir: &Path) -> Vec<String> {
        let mut lines = vec![if self.already_current {
            format!(
                "racker {} is already installed ({})",
                self.version,
                self.dir.display()
            )
        } else {
            format!("{verb} racker {} ({})", self.version, self.dir.display())
        }];
        if let Some(previous) = &self.previous {
            lines.push(format!("previous {previous} kept for `racker rollback`"));
        }
        lines.extend(
            self.linked
                .iter()
                .map(|l| format!("linked {}", l.display())),
        );
        lines.extend(
            self.units_written
                .iter()
                .map(|u| format!("unit {}", systemd_dir.join(u).display())),
        );
        if self.systemd_used {
            lines.extend(
                self.units_restarted
                    .iter()
                    .map(|u| format!("restarted {u}")),
            );
        } else if !self.units_written.is_empty() {
            lines.push(
                "systemd is not running here: unit files written, no service restarted".to_owned(),
            );
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> InstallReport {
        InstallReport {
            version: Version::new(1, 2, 0),
            dir: PathBuf::from("/opt/racker/versions/1.2.0"),
            previous: Some(Version::new(1, 1, 0)),
            already_current: false,
            linked: vec![PathBuf::from("/opt/bin/racker")],
            units_written: vec!["racker-netboot.service".to_owned()],
            units_restarted: vec!["racker-netboot.service".to_owned()],
            systemd_used: false,
        }
    }

    #[test]
    fn report_lines_name_every_change() {
        let mut r = report();
        let units = Path::new("/etc/systemd/system");
        assert_eq!(
            r.lines("installed", units),
            [
                "installed racker 1.2.0 (/opt/racker/versions/1.2.0)",
                "previous 1.1.0 kept for `racker rollback`",
                "linked /opt/bin/racker",
                "unit /etc/systemd/system/racker-netboot.service",
                "systemd is not running here: unit files written, no service restarted",
            ]
        );
        r.systemd_used = true;
        r.already_current = true;
        let lines = r.lines("installed", units);
        assert_eq!(
            lines[0],
            "racker 1.2.0 is already installed (/opt/racker/versions/1.2.0)"
        );
        assert_eq!(lines.last().unwrap(), "restarted racker-netboot.service");
    }

    #[test]
    fn an_empty_prefix_is_not_installed() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path().join("p"), dir.path().join("b"), dir.path());
        let install = Installation::new(layout.clone(), "none", dir.path());
        assert!(matches!(
            install.installed_version(),
            Err(Error::NotInstalled { .. })
        ));
        assert!(install.update_selector().is_err());
        let build = BuildInfo {
            version: "1.0.0",
            commit: "abc",
            build_date: "2026-01-01",
            target: "x86_64-unknown-linux-gnu",
        };
        let v = VersionReport::new(build, &layout);
        assert_eq!(v.installed, None);
        assert!(v.lines().is_empty());
        let json = serde_json::to_string(&v).unwrap();
        assert!(json.starts_with(r#"{"version":"1.0.0","commit":"abc","build_date""#));
        layout.mark_factory_reset().unwrap();
        let (selector, note) = install.update_selector().unwrap();
        assert_eq!(selector, Selector::Newest);
        assert!(note.unwrap().contains("factory reset"));
    }

    #[test]
    fn choices_say_why_nothing_is_installed() {
        let url = Url::parse("http://mirror/index.json").unwrap();
        let none = IndexChoice::NoneCompatible { installed: None };
        assert_eq!(
            none.message(&url).unwrap(),
            "no compatible release in http://mirror/index.json; racker  stays installed"
        );
        let up = IndexChoice::UpToDate {
            installed: Version::new(1, 0, 0),
            newest: Version::new(1, 0, 0),
        };
        assert_eq!(
            up.message(&url).unwrap(),
            "racker 1.0.0 is up to date (newest in index: 1.0.0)"
        );
    }
}
