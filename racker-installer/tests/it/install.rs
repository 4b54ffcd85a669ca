//! Atomic install, rollback, checksum refusal, interrupted installs, units.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use racker_installer::{Error, Installer, Layout, Sha256Digest, Stage, Systemctl};

use crate::support::{fake_systemctl, release_archive, snapshot, systemctl_calls};

struct Fixture {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    layout: Layout,
    fake: PathBuf,
}

impl Fixture {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        let layout = Layout::new(
            root.join("opt/racker"),
            root.join("opt/bin"),
            root.join("etc/systemd/system"),
        );
        let fake = fake_systemctl(&root.join("fake"));
        Self {
            _tmp: tmp,
            root,
            layout,
            fake,
        }
    }

    fn archive(&self, version: &str) -> (PathBuf, Sha256Digest) {
        let (bytes, digest) = release_archive(&self.root.join("scratch"), version);
        let path = self.root.join(format!("racker-{version}.tar.gz"));
        fs::write(&path, bytes).unwrap();
        (path, digest)
    }

    fn install_with(
        &self,
        archive: &Path,
        expected: Sha256Digest,
        stop: Option<Stage>,
    ) -> racker_installer::Result<racker_installer::InstallReport> {
        let mut systemctl = Systemctl::new(&self.fake);
        let mut installer = Installer::new(self.layout.clone(), Some(&mut systemctl));
        if let Some(stage) = stop {
            installer = installer.stop_at(stage);
        }
        let staging = self.layout.begin()?;
        let actual = staging.receive_file(archive)?;
        installer.install(
            staging,
            actual,
            expected,
            None,
            &archive.display().to_string(),
        )
    }

    /// What `/opt/bin/racker` prints: proves the installed tree works.
    fn run_racker(&self) -> String {
        let out = Command::new(self.layout.bin_dir.join("racker"))
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    /// Everything the installer may touch: the prefix's parent (prefix +
    /// staging), the bin dir and the unit dir.
    fn disk(&self) -> impl PartialEq + std::fmt::Debug {
        (
            snapshot(&self.root.join("opt")),
            snapshot(&self.root.join("etc")),
        )
    }

    fn set_active(&self, units: &str) {
        fs::write(self.root.join("fake/active"), units).unwrap();
    }
}

#[test]
fn install_upgrade_rollback_with_units() {
    let fx = Fixture::new();
    let (a1, d1) = fx.archive("1.0.0");
    let report = fx.install_with(&a1, d1, None).unwrap();
    assert_eq!(report.version.to_string(), "1.0.0");
    assert_eq!(report.previous, None);
    assert_eq!(report.units_written, ["racker-netboot.service"]);
    assert!(report.units_restarted.is_empty(), "nothing was active");
    assert_eq!(fx.run_racker(), "racker-test 1.0.0");
    let unit = fx.layout.systemd_dir.join("racker-netboot.service");
    assert!(fs::read_to_string(&unit).unwrap().contains("netboot 1.0.0"));
    assert_eq!(
        systemctl_calls(&fx.root.join("fake")),
        [
            "is-active --quiet -- racker-netboot.service",
            "daemon-reload"
        ]
    );

    // The unit is running now: the upgrade restarts it.
    fx.set_active("racker-netboot.service\n");
    let (a2, d2) = fx.archive("1.1.0");
    let report = fx.install_with(&a2, d2, None).unwrap();
    assert_eq!(report.version.to_string(), "1.1.0");
    assert_eq!(
        report.previous.map(|v| v.to_string()).as_deref(),
        Some("1.0.0")
    );
    assert_eq!(report.units_restarted, ["racker-netboot.service"]);
    assert_eq!(fx.run_racker(), "racker-test 1.1.0");
    assert!(fs::read_to_string(&unit).unwrap().contains("netboot 1.1.0"));
    let calls = systemctl_calls(&fx.root.join("fake"));
    assert_eq!(
        &calls[2..],
        [
            "is-active --quiet -- racker-netboot.service",
            "daemon-reload",
            "restart -- racker-netboot.service"
        ]
    );
    // The link is relative inside the prefix and atomic flips left no temp
    // files behind.
    assert_eq!(
        fs::read_link(fx.layout.current_link()).unwrap(),
        Path::new("versions").join(format!("1.1.0-{}", &d2.to_string()[..12]))
    );
    let leftovers: Vec<_> = snapshot(&fx.root.join("opt"))
        .into_keys()
        .filter(|p| {
            p.to_string_lossy().contains(".tmp-") || p.to_string_lossy().contains("staging")
        })
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // Rollback: 1.0.0 is current again, 1.1.0 kept as previous; the
    // inactive unit is not restarted.
    fx.set_active("");
    let mut systemctl = Systemctl::new(&fx.fake);
    let report = Installer::new(fx.layout.clone(), Some(&mut systemctl))
        .rollback()
        .unwrap();
    assert_eq!(report.version.to_string(), "1.0.0");
    assert_eq!(
        report.previous.map(|v| v.to_string()).as_deref(),
        Some("1.1.0")
    );
    assert!(report.units_restarted.is_empty());
    assert_eq!(fx.run_racker(), "racker-test 1.0.0");
    assert!(fs::read_to_string(&unit).unwrap().contains("netboot 1.0.0"));

    // A third version: the oldest unused release is removed.
    let (a3, d3) = fx.archive("2.0.0");
    fx.install_with(&a3, d3, None).unwrap();
    let versions: Vec<_> = fs::read_dir(fx.layout.versions_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(versions.len(), 2, "{versions:?}");
    assert!(
        versions.iter().all(|v| !v.starts_with("1.1.0")),
        "{versions:?}"
    );
}

#[test]
fn reinstalling_current_release_changes_nothing() {
    let fx = Fixture::new();
    let (a1, d1) = fx.archive("1.0.0");
    fx.install_with(&a1, d1, None).unwrap();
    let before = fx.disk();
    let report = fx.install_with(&a1, d1, None).unwrap();
    assert!(report.already_current);
    assert!(report.units_written.is_empty() && report.linked.is_empty());
    assert_eq!(fx.disk(), before);
}

#[test]
fn checksum_mismatch_changes_nothing() {
    let fx = Fixture::new();
    let (a1, d1) = fx.archive("1.0.0");
    fx.install_with(&a1, d1, None).unwrap();
    let before = fx.disk();

    // Wrong expected checksum.
    let (a2, _) = fx.archive("1.1.0");
    let err = fx.install_with(&a2, d1, None).unwrap_err();
    assert!(matches!(err, Error::ChecksumMismatch { .. }), "{err}");
    assert_eq!(fx.disk(), before);

    // Tampered archive: one flipped byte.
    let (a3, d3) = fx.archive("1.2.0");
    let mut bytes = fs::read(&a3).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    fs::write(&a3, bytes).unwrap();
    let err = fx.install_with(&a3, d3, None).unwrap_err();
    assert!(matches!(err, Error::ChecksumMismatch { .. }), "{err}");
    assert_eq!(fx.disk(), before);
    assert_eq!(fx.run_racker(), "racker-test 1.0.0");
}

#[test]
fn first_install_mismatch_leaves_no_prefix() {
    let fx = Fixture::new();
    let (a1, _) = fx.archive("1.0.0");
    let err = fx
        .install_with(&a1, Sha256Digest::of(b"other"), None)
        .unwrap_err();
    assert!(matches!(err, Error::ChecksumMismatch { .. }));
    assert!(!fx.layout.prefix.exists());
    // Nothing but the (empty) install lock file beside the prefix.
    let left: Vec<_> = snapshot(&fx.root.join("opt")).into_keys().collect();
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(fx.layout.lock_path().ends_with(".racker.lock"));
    assert_eq!(fs::metadata(fx.layout.lock_path()).unwrap().len(), 0);
}

#[test]
fn a_second_install_or_rollback_waits_for_the_lock() {
    let fx = Fixture::new();
    let (a1, d1) = fx.archive("1.0.0");
    fx.install_with(&a1, d1, None).unwrap();
    let (a2, d2) = fx.archive("1.1.0");
    fx.install_with(&a2, d2, None).unwrap();
    let before = fx.disk();
    // Another installer holds the lock (as a concurrent `racker update`).
    let held = fx.layout.begin().unwrap();
    let (a3, d3) = fx.archive("1.2.0");
    let err = fx.install_with(&a3, d3, None).unwrap_err();
    assert!(matches!(err, Error::Busy { .. }), "{err}");
    assert!(err.to_string().contains("another racker install"), "{err}");
    let mut installer = Installer::new(fx.layout.clone(), None);
    assert!(matches!(installer.rollback(), Err(Error::Busy { .. })));
    drop(held);
    // Nothing changed meanwhile; with the lock free both work again.
    assert_eq!(fx.disk(), before);
    assert_eq!(fx.run_racker(), "racker-test 1.1.0");
    installer.rollback().unwrap();
    assert_eq!(fx.run_racker(), "racker-test 1.0.0");
    fx.install_with(&a3, d3, None).unwrap();
    assert_eq!(fx.run_racker(), "racker-test 1.2.0");
}

#[test]
fn interrupted_before_switch_keeps_old_version() {
    for stage in [Stage::Verified, Stage::Extracted, Stage::Moved] {
        let fx = Fixture::new();
        let (a1, d1) = fx.archive("1.0.0");
        fx.install_with(&a1, d1, None).unwrap();
        let (a2, d2) = fx.archive("1.1.0");
        let err = fx.install_with(&a2, d2, Some(stage)).unwrap_err();
        assert!(matches!(err, Error::Interrupted(s) if s == stage));
        // The crash left debris, but the old version is intact and current.
        assert_eq!(fx.run_racker(), "racker-test 1.0.0", "after {stage:?}");
        let state = fx.layout.state().unwrap();
        assert_eq!(state.current.unwrap().version.to_string(), "1.0.0");
        // The next install cleans up and completes.
        fx.install_with(&a2, d2, None).unwrap();
        assert_eq!(fx.run_racker(), "racker-test 1.1.0");
        let debris: Vec<_> = snapshot(&fx.root.join("opt"))
            .into_keys()
            .filter(|p| p.to_string_lossy().contains("staging"))
            .collect();
        assert!(debris.is_empty(), "{debris:?}");
    }
}

#[test]
fn interrupted_after_switch_runs_new_version() {
    for stage in [Stage::Switched, Stage::Linked] {
        let fx = Fixture::new();
        let (a1, d1) = fx.archive("1.0.0");
        fx.install_with(&a1, d1, None).unwrap();
        let (a2, d2) = fx.archive("1.1.0");
        fx.install_with(&a2, d2, Some(stage)).unwrap_err();
        // Past the commit point the new release is complete and in use.
        assert_eq!(fx.run_racker(), "racker-test 1.1.0", "after {stage:?}");
        // Re-running the install finishes the unit refresh.
        let report = fx.install_with(&a2, d2, None).unwrap();
        assert!(report.already_current);
        assert_eq!(report.units_written, ["racker-netboot.service"]);
    }
}

#[test]
fn without_systemd_units_are_written_not_restarted() {
    let fx = Fixture::new();
    let (a1, d1) = fx.archive("1.0.0");
    let staging = fx.layout.begin().unwrap();
    let actual = staging.receive_file(&a1).unwrap();
    let report = Installer::new(fx.layout.clone(), None)
        .install(staging, actual, d1, None, "a1")
        .unwrap();
    assert!(!report.systemd_used);
    assert!(
        fx.layout
            .systemd_dir
            .join("racker-netboot.service")
            .is_file()
    );
    assert!(systemctl_calls(&fx.root.join("fake")).is_empty());
}

#[test]
fn expected_version_is_enforced() {
    let fx = Fixture::new();
    let (a1, d1) = fx.archive("1.0.0");
    let staging = fx.layout.begin().unwrap();
    let actual = staging.receive_file(&a1).unwrap();
    let wanted = "1.5.0".parse().unwrap();
    let err = Installer::new(fx.layout.clone(), None)
        .install(staging, actual, d1, Some(&wanted), "a1")
        .unwrap_err();
    assert!(matches!(err, Error::VersionMismatch { .. }), "{err}");
    assert!(!fx.layout.prefix.exists());
}

#[test]
fn rollback_needs_a_previous_version() {
    let fx = Fixture::new();
    let err = Installer::new(fx.layout.clone(), None)
        .rollback()
        .unwrap_err();
    assert!(matches!(err, Error::NotInstalled { .. }));
    let (a1, d1) = fx.archive("1.0.0");
    fx.install_with(&a1, d1, None).unwrap();
    let err = Installer::new(fx.layout.clone(), None)
        .rollback()
        .unwrap_err();
    assert!(matches!(err, Error::NoPrevious { .. }));
}
