//! `racker install | update | upgrade | get | rollback | version` against a
//! release index and archives served over real HTTP by an in-process
//! server, with a fake `systemctl` recording its calls.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use racker_installer::{ReleaseEntry, ReleaseIndex, Sha256Digest, write_archive};

use racker_testsupport::http::FileServer;

const ARCH: &str = std::env::consts::ARCH;

struct Rack {
    tmp: tempfile::TempDir,
    server: FileServer,
}

impl Rack {
    /// Releases 1.0.0, 1.1.0, 2.0.0 published in `web/` with an index.
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let web = tmp.path().join("web");
        fs::create_dir_all(&web).unwrap();
        let server = FileServer::start(&web);
        let rack = Self { tmp, server };
        let mut index = ReleaseIndex::default();
        for (version, min) in [("1.0.0", "1.0.0"), ("1.1.0", "1.0.0"), ("2.0.0", "2.0.0")] {
            index.insert(rack.publish(version, min, &[]));
        }
        rack.write_index(&index);
        rack
    }

    fn root(&self) -> &Path {
        self.tmp.path()
    }

    fn web(&self) -> PathBuf {
        self.root().join("web")
    }

    fn index_url(&self) -> String {
        format!("{}/index.json", self.server.base)
    }

    fn write_index(&self, index: &ReleaseIndex) {
        fs::write(self.web().join("index.json"), index.to_json()).unwrap();
    }

    /// Build the archive of `version` (plus extra files) into `web/`.
    fn publish(&self, version: &str, min: &str, extra: &[(&str, &[u8])]) -> ReleaseEntry {
        let tree = self.root().join(format!("trees/{version}"));
        fs::create_dir_all(tree.join("bin")).unwrap();
        fs::create_dir_all(tree.join("systemd")).unwrap();
        let racker = tree.join("bin/racker");
        fs::write(&racker, format!("#!/bin/sh\necho racker-test {version}\n")).unwrap();
        fs::set_permissions(&racker, fs::Permissions::from_mode(0o755)).unwrap();
        fs::write(
            tree.join("systemd/racker-netboot.service"),
            format!("[Service]\nExecStart=/opt/bin/racker netboot serve # {version}\n"),
        )
        .unwrap();
        fs::write(tree.join("RACKER_VERSION"), format!("{version}\n")).unwrap();
        for (name, content) in extra {
            fs::write(tree.join(name), content).unwrap();
        }
        let mut bytes = Vec::new();
        write_archive(&tree, 0, &mut bytes).unwrap();
        let sha256 = Sha256Digest::of(&bytes);
        let name = format!("racker-{version}-{ARCH}.tar.gz");
        fs::write(self.web().join(&name), &bytes).unwrap();
        fs::write(
            self.web().join(format!("{name}.sha256")),
            format!("{sha256}  {name}\n"),
        )
        .unwrap();
        ReleaseEntry {
            version: version.parse().unwrap(),
            arch: ARCH.into(),
            archive: name,
            sha256,
            min_compatible_version: min.parse().unwrap(),
        }
    }

    /// A fake systemctl: logs argv, `is-active` succeeds for listed units.
    fn systemctl(&self) -> PathBuf {
        let dir = self.root().join("fake");
        fs::create_dir_all(&dir).unwrap();
        let script = dir.join("systemctl");
        if !script.exists() {
            fs::write(dir.join("active"), "").unwrap();
            fs::write(
                &script,
                format!(
                    "#!/bin/sh\necho \"$*\" >> '{calls}'\n\
                     if [ \"$1\" = is-active ]; then\n  for last; do :; done\n  \
                     grep -qx \"$last\" '{active}' && exit 0\n  exit 3\nfi\nexit 0\n",
                    calls = dir.join("calls").display(),
                    active = dir.join("active").display()
                ),
            )
            .unwrap();
            fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
        }
        script
    }

    fn calls(&self) -> Vec<String> {
        fs::read_to_string(self.root().join("fake/calls"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn command(&self, args: &[&str]) -> Command {
        let fake = self.systemctl();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_racker"));
        cmd.args(args)
            .arg("--prefix")
            .arg(self.root().join("opt/racker"))
            .arg("--bin-dir")
            .arg(self.root().join("opt/bin"))
            .arg("--systemd-dir")
            .arg(self.root().join("etc/systemd/system"));
        // Put the fake on PATH and let `--systemctl systemctl` find it there.
        let path = format!(
            "{}:{}",
            fake.parent().unwrap().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        cmd.env("PATH", path)
            .env("RACKER_SYSTEMCTL", "systemctl")
            .env_remove("RACKER_RELEASE_INDEX");
        cmd
    }

    fn racker(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.racker(args);
        assert!(out.status.success(), "racker {args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap()
    }

    fn fails(&self, args: &[&str]) -> String {
        let out = self.racker(args);
        assert!(!out.status.success(), "racker {args:?} succeeded: {out:?}");
        String::from_utf8(out.stderr).unwrap()
    }

    /// What the installed `/opt/bin/racker` prints.
    fn installed(&self) -> String {
        let out = Command::new(self.root().join("opt/bin/racker"))
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    /// Snapshot of everything an install may touch.
    /// Everything installed, but the (empty) install lock file, which
    /// exists from the first install attempt on.
    fn disk(&self) -> BTreeMap<PathBuf, Vec<u8>> {
        let mut out = BTreeMap::new();
        for top in ["opt", "etc"] {
            walk(&self.root().join(top), &mut out);
        }
        out.retain(|p, bytes| !(p.ends_with(".racker.lock") && bytes.is_empty()));
        out
    }
}

fn walk(dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        let meta = fs::symlink_metadata(&path).unwrap();
        if meta.file_type().is_symlink() {
            let target = fs::read_link(&path).unwrap();
            out.insert(path, format!("-> {}", target.display()).into_bytes());
        } else if meta.is_dir() {
            out.insert(path.clone(), b"dir".to_vec());
            walk(&path, out);
        } else {
            out.insert(path.clone(), fs::read(&path).unwrap());
        }
    }
}

#[test]
fn install_update_upgrade_get_rollback_over_http() {
    let rack = Rack::new();
    let index = rack.index_url();
    let index = index.as_str();

    // Install from a local archive; the checksum comes from ARCHIVE.sha256.
    let archive = rack.web().join(format!("racker-1.0.0-{ARCH}.tar.gz"));
    let out = rack.ok(&["install", archive.to_str().unwrap()]);
    assert!(out.contains("installed racker 1.0.0"), "{out}");
    assert_eq!(rack.installed(), "racker-test 1.0.0");
    let version = rack.ok(&["version"]);
    assert!(version.starts_with(&format!("racker {} (commit ", env!("CARGO_PKG_VERSION"))));
    assert!(version.contains("installed 1.0.0"), "{version}");

    // update: newest with the same major, not 2.0.0. The netboot unit runs
    // now, so it is restarted.
    fs::write(rack.root().join("fake/active"), "racker-netboot.service\n").unwrap();
    let out = rack.ok(&["update", "--release-index", index]);
    assert!(out.contains("installed racker 1.1.0"), "{out}");
    assert!(out.contains("previous 1.0.0 kept"), "{out}");
    assert!(out.contains("restarted racker-netboot.service"), "{out}");
    assert_eq!(rack.installed(), "racker-test 1.1.0");
    assert!(
        fs::read_to_string(
            rack.root()
                .join("etc/systemd/system/racker-netboot.service")
        )
        .unwrap()
        .contains("# 1.1.0")
    );
    assert!(
        rack.calls()
            .contains(&"restart -- racker-netboot.service".to_owned())
    );
    let out = rack.ok(&["update", "--release-index", index]);
    assert!(out.contains("racker 1.1.0 is up to date"), "{out}");

    // upgrade: across the major version.
    fs::write(rack.root().join("fake/active"), "").unwrap();
    let restarts_before = rack
        .calls()
        .iter()
        .filter(|c| c.starts_with("restart"))
        .count();
    let out = rack.ok(&["upgrade", "--release-index", index]);
    assert!(out.contains("installed racker 2.0.0"), "{out}");
    assert_eq!(rack.installed(), "racker-test 2.0.0");
    let restarts_after = rack
        .calls()
        .iter()
        .filter(|c| c.starts_with("restart"))
        .count();
    assert_eq!(
        restarts_before, restarts_after,
        "inactive unit was restarted"
    );

    // get an older version.
    let out = rack.ok(&["get", "1.0.0", "--release-index", index]);
    assert!(out.contains("installed racker 1.0.0"), "{out}");
    assert_eq!(rack.installed(), "racker-test 1.0.0");

    // rollback to the one before.
    let out = rack.ok(&["rollback"]);
    assert!(out.contains("rolled back to racker 2.0.0"), "{out}");
    assert_eq!(rack.installed(), "racker-test 2.0.0");
    let version = rack.ok(&["version"]);
    assert!(
        version.contains("installed 2.0.0") && version.contains("previous 1.0.0"),
        "{version}"
    );
}

/// `racker factory reset --racker-version` on the layout `racker install`
/// writes: the next `update` behaves like `upgrade` (crosses the major
/// version), as in the original racker; after it, `update` is plain again.
#[test]
fn factory_reset_makes_the_next_update_an_upgrade() {
    let rack = Rack::new();
    let index = rack.index_url();
    let index = index.as_str();
    let archive = rack.web().join(format!("racker-1.1.0-{ARCH}.tar.gz"));
    rack.ok(&["install", archive.to_str().unwrap()]);
    let out = rack.ok(&["update", "--release-index", index]);
    assert!(out.contains("racker 1.1.0 is up to date"), "{out}");

    let reset = Command::new(env!("CARGO_BIN_EXE_racker"))
        .args(["--state-dir"])
        .arg(rack.root().join("state"))
        .args(["factory", "reset", "--racker-version", "--yes", "--prefix"])
        .arg(rack.root().join("opt/racker"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&reset.stdout);
    assert!(reset.status.success(), "{reset:?}");
    assert!(stdout.contains("installed version forgotten"), "{stdout}");
    // The installed release keeps working; `version` says what happens next.
    assert_eq!(rack.installed(), "racker-test 1.1.0");
    let version = rack.ok(&["version"]);
    assert!(
        version.contains("next `racker update` installs the newest"),
        "{version}"
    );

    let out = rack.ok(&["update", "--release-index", index]);
    assert!(out.contains("installed racker 2.0.0"), "{out}");
    assert_eq!(rack.installed(), "racker-test 2.0.0");
    assert!(!rack.root().join("opt/racker/FACTORY_RESET").exists());
    let out = rack.ok(&["update", "--release-index", index]);
    assert!(out.contains("racker 2.0.0 is up to date"), "{out}");
}

#[test]
fn install_from_url_and_file_index() {
    let rack = Rack::new();
    let url = format!("{}/racker-1.1.0-{ARCH}.tar.gz", rack.server.base);
    let out = rack.ok(&["install", &url]);
    assert!(out.contains("installed racker 1.1.0"), "{out}");
    // A file:// index works too; upgrade from 1.1.0 reaches 2.0.0.
    let index = format!("file://{}/index.json", rack.web().display());
    rack.ok(&["upgrade", "--release-index", &index]);
    assert_eq!(rack.installed(), "racker-test 2.0.0");
}

#[test]
fn errors_change_nothing() {
    let rack = Rack::new();
    let archive = rack.web().join(format!("racker-1.0.0-{ARCH}.tar.gz"));
    rack.ok(&["install", archive.to_str().unwrap()]);
    let before = rack.disk();
    let index = rack.index_url();

    // Index unreachable: a port nothing listens on.
    let err = rack.fails(&["update", "--release-index", "http://127.0.0.1:9/index.json"]);
    assert!(
        err.contains("release index") && err.contains("unreachable"),
        "{err}"
    );
    assert_eq!(rack.disk(), before);
    // Index missing on the server.
    let err = rack.fails(&[
        "upgrade",
        "--release-index",
        &format!("{}/nope.json", rack.server.base),
    ]);
    assert!(err.contains("404"), "{err}");
    assert_eq!(rack.disk(), before);

    // Unknown version.
    let err = rack.fails(&["get", "9.9.9", "--release-index", &index]);
    assert!(
        err.contains("version 9.9.9 is not in the release index"),
        "{err}"
    );
    assert_eq!(rack.disk(), before);

    // Wrong checksum in the index.
    let mut idx =
        ReleaseIndex::parse("x", &fs::read(rack.web().join("index.json")).unwrap()).unwrap();
    let mut bad = rack.publish("1.2.0", "1.0.0", &[]);
    bad.sha256 = Sha256Digest::of(b"something else");
    idx.insert(bad);
    rack.write_index(&idx);
    let err = rack.fails(&["update", "--release-index", &index]);
    assert!(err.contains("checksum mismatch"), "{err}");
    assert_eq!(rack.disk(), before);

    // Tampered archive behind a correct index entry.
    let entry = rack.publish("1.3.0", "1.0.0", &[]);
    idx.insert(entry.clone());
    rack.write_index(&idx);
    let path = rack.web().join(&entry.archive);
    let mut bytes = fs::read(&path).unwrap();
    let n = bytes.len();
    bytes[n - 20] ^= 1;
    fs::write(&path, bytes).unwrap();
    let err = rack.fails(&["get", "1.3.0", "--release-index", &index]);
    assert!(err.contains("checksum mismatch"), "{err}");
    assert_eq!(rack.disk(), before);

    // `install --sha256` with the wrong digest.
    let other = rack.web().join(format!("racker-2.0.0-{ARCH}.tar.gz"));
    let wrong = Sha256Digest::of(b"x").to_string();
    let err = rack.fails(&["install", other.to_str().unwrap(), "--sha256", &wrong]);
    assert!(err.contains("checksum mismatch"), "{err}");
    assert_eq!(rack.disk(), before);
    assert_eq!(rack.installed(), "racker-test 1.0.0");
}

#[test]
fn tar_slip_archive_is_refused() {
    let rack = Rack::new();
    // A symlink climbing out of the release tree.
    let tree = rack.root().join("evil");
    fs::create_dir_all(tree.join("bin")).unwrap();
    fs::write(tree.join("bin/racker"), "#!/bin/sh\n").unwrap();
    fs::write(tree.join("RACKER_VERSION"), "6.6.6\n").unwrap();
    let mut builder = tar::Builder::new(Vec::new());
    builder.append_dir_all(".", &tree).unwrap();
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Symlink);
    header.set_size(0);
    header.set_mode(0o777);
    builder
        .append_link(&mut header, "bin/escape", "../../../../etc")
        .unwrap();
    let tar_bytes = builder.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &tar_bytes).unwrap();
    let bytes = gz.finish().unwrap();
    let archive = rack.root().join("evil.tar.gz");
    fs::write(&archive, &bytes).unwrap();
    let sha = Sha256Digest::of(&bytes).to_string();
    let err = rack.fails(&["install", archive.to_str().unwrap(), "--sha256", &sha]);
    assert!(
        err.contains("refusing archive entry") && err.contains("escapes the archive root"),
        "{err}"
    );
    assert!(rack.disk().is_empty(), "{:?}", rack.disk().keys());
}

/// Kill `racker install` with SIGKILL at increasing delays: whatever the
/// moment, the installed release is complete — the old one or the new one —
/// and a re-run finishes the job.
#[test]
fn kill_9_mid_install_leaves_a_working_version() {
    let rack = Rack::new();
    let old = rack.web().join(format!("racker-1.0.0-{ARCH}.tar.gz"));
    rack.ok(&["install", old.to_str().unwrap()]);

    // A big, incompressible release so extraction takes a while.
    let mut blob = vec![0u8; 24 << 20];
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for chunk in blob.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
    let big = rack.publish("1.5.0", "1.0.0", &[("blob", &blob), ("zz-last", b"end\n")]);
    let archive = rack.web().join(&big.archive);

    let mut killed_while_running = 0;
    let mut saw_old_mid_install = false;
    for delay_ms in [0u64, 5, 15, 30, 60, 100, 150, 250, 400, 700] {
        let mut child = rack
            .command(&["install", archive.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        if child.try_wait().unwrap().is_none() {
            killed_while_running += 1;
        }
        let _ = child.kill(); // SIGKILL
        child.wait().unwrap();
        let debris = fs::read_dir(rack.root().join("opt"))
            .unwrap()
            .any(|e| e.unwrap().file_name().to_string_lossy().contains("staging"));

        // A complete release is current, either old or new.
        let running = rack.installed();
        let prefix = rack.root().join("opt/racker/current");
        let version = fs::read_to_string(prefix.join("RACKER_VERSION")).unwrap();
        match running.as_str() {
            "racker-test 1.0.0" => {
                assert_eq!(version, "1.0.0\n");
                // Killed after the install had started writing.
                saw_old_mid_install |= debris;
            }
            "racker-test 1.5.0" => {
                assert_eq!(version, "1.5.0\n");
                assert_eq!(fs::read(prefix.join("blob")).unwrap(), blob);
                assert_eq!(fs::read(prefix.join("zz-last")).unwrap(), b"end\n");
                // Go back to the old version for the next round.
                rack.ok(&["rollback"]);
            }
            other => panic!("unexpected installed version {other:?}"),
        }
    }
    assert!(
        killed_while_running > 0,
        "every install finished before the kill"
    );
    assert!(
        saw_old_mid_install,
        "no kill landed mid-install before the switch"
    );
    // A clean run completes and removes the debris of the killed ones.
    rack.ok(&["install", archive.to_str().unwrap()]);
    assert_eq!(rack.installed(), "racker-test 1.5.0");
    let debris: Vec<_> = rack
        .disk()
        .into_keys()
        .filter(|p| p.to_string_lossy().contains("staging"))
        .collect();
    assert!(debris.is_empty(), "{debris:?}");
}

#[test]
fn help_has_examples() {
    let rack = Rack::new();
    for sub in ["install", "update", "upgrade", "get", "rollback", "version"] {
        let out = Command::new(env!("CARGO_BIN_EXE_racker"))
            .args([sub, "--help"])
            .output()
            .unwrap();
        assert!(out.status.success());
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Examples:"),
            "{sub}"
        );
    }
    drop(rack);
}
