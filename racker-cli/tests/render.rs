//! `racker render` and `racker exclude` through the binary, on the
//! repository's example rack.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::prelude::*;

const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBclitestclitestclitestclitestclit cli@test\n";

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/examples")
}

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("state/ssh")).unwrap();
        std::fs::write(dir.path().join("state/ssh/id_ed25519.pub"), KEY).unwrap();
        Self { dir }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn racker(&self) -> Command {
        let mut cmd = Command::cargo_bin("racker").unwrap();
        cmd.env("RACKER_OEM_DIR", examples())
            .env("RACKER_SYS_CLASS_NET", examples().join("sys-class-net"))
            .env("RACKER_STATE_DIR", self.path("state"))
            .env_remove("RACKER_BACKUP_ACCESS_KEY_ID")
            .env_remove("RACKER_BACKUP_SECRET_ACCESS_KEY")
            .env_remove("RACKER_EXCLUDE");
        cmd
    }

    fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path(rel)).unwrap()
    }
}

#[test]
fn render_flatcar_writes_terraform_ignition_and_refuses_to_overwrite() {
    let env = Env::new();
    let out = env.path("flatcar");
    env.racker()
        .args(["render", "--provision", "flatcar", "--out"])
        .arg(&out)
        .args(["--public-ips"])
        .arg(examples().join("public-ips.ini"))
        .assert()
        .success()
        .stdout(predicate::str::contains("rendered").and(predicate::str::contains("for 2 nodes")));
    for f in [
        "flatcar.tf",
        "variables.tf",
        "versions.tf",
        "terraform.tfvars",
        "templates/base.yaml.tmpl",
        "cl/node-0.yaml",
        "cl/node-1-custom.yaml",
        "ignition/00-11-22-33-44-10-install.ign",
        "ignition/00-11-22-33-44-20-os.ign",
        "management-hosts",
        "racker-cluster.json",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    assert!(
        env.read("flatcar/cl/node-1-custom.yaml")
            .contains("Address=203.0.113.11/24")
    );
    assert!(env.read("flatcar/terraform.tfvars").contains(KEY.trim()));
    assert!(env.read("flatcar/terraform.tfvars").contains(&format!(
        "matchbox_client_dir = \"{}\"",
        env.path("state/matchbox-client").display()
    )));

    // A second render into the now non-empty directory is refused...
    env.racker()
        .args(["render", "--provision", "flatcar", "--out"])
        .arg(&out)
        .assert()
        .failure()
        .stderr(predicate::str::contains("not empty").and(predicate::str::contains("--force")));
    // ...unless forced; a node excluded now loses its stale files, and
    // unrelated files stay.
    std::fs::write(out.join("notes.txt"), "mine").unwrap();
    env.racker()
        .args([
            "render",
            "--provision",
            "flatcar",
            "--force",
            "--exclude",
            "00:11:22:33:44:21",
            "--out",
        ])
        .arg(&out)
        .assert()
        .success();
    assert!(!out.join("cl/node-1.yaml").exists());
    assert!(!out.join("ignition/00-11-22-33-44-20-os.ign").exists());
    assert!(out.join("cl/node-0.yaml").exists());
    assert_eq!(env.read("flatcar/notes.txt"), "mine");
}

#[test]
fn render_lokomotive_with_backups_keeps_the_secret_in_one_private_file() {
    let env = Env::new();
    let out = env.path("lokomotive");
    let hosts = env.path("hosts");
    std::fs::write(&hosts, "127.0.0.1 localhost\n10.9.9.9 mine\n").unwrap();
    env.racker()
        .args([
            "render",
            "--provision",
            "lokomotive",
            "--web-ui",
            "--storage-provider",
            "rook",
        ])
        .args([
            "--backup-bucket",
            "b",
            "--backup-region",
            "eu-central-1",
            "--out",
        ])
        .arg(&out)
        .arg("--update-hosts")
        .arg(&hosts)
        .env("RACKER_BACKUP_ACCESS_KEY_ID", "AKIACLI")
        .env("RACKER_BACKUP_SECRET_ACCESS_KEY", "cli-secret/123")
        .assert()
        .success()
        .stdout(predicate::str::contains("cli-secret").not());
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(out.join("backup-credentials"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(
        env.read("lokomotive/backup-credentials")
            .contains("aws_secret_access_key=cli-secret/123")
    );
    for f in [
        "baremetal.lokocfg",
        "lokocfg.vars",
        "web-ui.lokocfg",
        "rook.lokocfg",
        "velero.lokocfg",
    ] {
        assert!(
            !env.read(&format!("lokomotive/{f}")).contains("cli-secret"),
            "{f}"
        );
    }
    let vars = env.read("lokomotive/lokocfg.vars");
    assert!(vars.contains(&format!(
        "asset_dir        = \"{}\"",
        out.canonicalize().unwrap().join("lokoctl-assets").display()
    )));
    let h = std::fs::read_to_string(&hosts).unwrap();
    assert!(
        h.starts_with("127.0.0.1 localhost\n10.9.9.9 mine\n# BEGIN racker"),
        "{h}"
    );
    assert!(
        h.contains("172.24.213.3 lokomotive-worker-0.k8s.localdomain\n"),
        "{h}"
    );

    // Backups without credentials are refused before anything is written.
    let out2 = env.path("lokomotive2");
    env.racker()
        .args([
            "render",
            "--provision",
            "lokomotive",
            "--backup-bucket",
            "b",
            "--out",
        ])
        .arg(&out2)
        .assert()
        .failure()
        .stderr(predicate::str::contains("RACKER_BACKUP_ACCESS_KEY_ID"));

    // Exclude the worker by its BMC MAC: its files and host entries go.
    env.racker()
        .args(["exclude", "00:11:22:33:44:21", "--dir"])
        .arg(&out)
        .arg("--update-hosts")
        .arg(&hosts)
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "excluded lokomotive-worker-0.k8s.localdomain (00:11:22:33:44:20)",
        ));
    assert!(
        !out.join("cl/lokomotive-worker-0.k8s.localdomain.yaml")
            .exists()
    );
    assert!(
        !env.read("lokomotive/lokocfg.vars")
            .contains("00:11:22:33:44:20")
    );
    let h = std::fs::read_to_string(&hosts).unwrap();
    assert!(
        !h.contains("worker-0") && h.contains("10.9.9.9 mine\n") && h.contains("controller-0"),
        "{h}"
    );
    // The last node cannot be excluded.
    env.racker()
        .args(["exclude", "00:11:22:33:44:10", "--dir"])
        .arg(&out)
        .assert()
        .failure()
        .stderr(predicate::str::contains("last node"));
}

#[test]
fn render_refuses_hostile_choices_and_missing_keys() {
    let env = Env::new();
    env.racker()
        .args([
            "render",
            "--provision",
            "lokomotive",
            "--cluster-name",
            "evil\"${x}",
            "--out",
        ])
        .arg(env.path("x"))
        .assert()
        .failure();
    env.racker()
        .args([
            "render",
            "--provision",
            "flatcar",
            "--kernel-console",
            "console=ttyS0 init=/bin/sh",
            "--out",
        ])
        .arg(env.path("y"))
        .assert()
        .failure()
        .stderr(predicate::str::contains("kernel console"));
    std::fs::remove_file(env.path("state/ssh/id_ed25519.pub")).unwrap();
    env.racker()
        .args(["render", "--provision", "flatcar", "--out"])
        .arg(env.path("z"))
        .assert()
        .failure()
        .stderr(predicate::str::contains("racker factory gen-ssh-key"));
    env.racker()
        .args(["exclude", "00:11:22:33:44:20", "--dir"])
        .arg(env.path("nothing-here"))
        .assert()
        .failure()
        .stderr(predicate::str::contains("not a rendered cluster directory"));
}

/// `--old-lokomotive` (the original's OLD_LOKOMOTIVE=1) prefixes the
/// domain with the cluster name; without it lokoctl v0.9 gets the plain
/// domain.
#[test]
fn old_lokomotive_prefixes_the_domain_only_when_asked() {
    let env = Env::new();
    for (flag, expected) in [
        (None, "k8s_domain_name  = \"k8s.localdomain\""),
        (
            Some("--old-lokomotive"),
            "k8s_domain_name  = \"lokomotive.k8s.localdomain\"",
        ),
    ] {
        let out = env.path(if flag.is_some() { "old" } else { "new" });
        env.racker()
            .args(["render", "--provision", "lokomotive", "--out"])
            .arg(&out)
            .args(flag)
            .env_remove("RACKER_OLD_LOKOMOTIVE")
            .assert()
            .success();
        let vars = std::fs::read_to_string(out.join("lokocfg.vars")).unwrap();
        assert!(vars.contains(expected), "{flag:?}: {vars}");
    }
}

/// `-v`/`-q` and `RUST_LOG` reach the libraries' own `tracing` events: at
/// `-vv` racker-lokomotive logs each rendered file on stderr; by default,
/// and with `RUST_LOG=off`, it does not; stdout keeps only the data.
#[test]
fn verbose_shows_the_libraries_debug_events_on_stderr() {
    let env = Env::new();
    let render = |dir: &str, extra: &[&str], rust_log: Option<&str>| {
        let mut cmd = env.racker();
        cmd.env_remove("RUST_LOG");
        if let Some(filter) = rust_log {
            cmd.env("RUST_LOG", filter);
        }
        let out = cmd
            .args(extra)
            .args(["render", "--provision", "flatcar", "--out"])
            .arg(env.path(dir))
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        (
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    };
    let (stdout, stderr) = render("verbose", &["-vv"], None);
    let line = stderr
        .lines()
        .find(|l| l.contains("rendered") && l.contains("flatcar.tf"))
        .unwrap_or_else(|| panic!("no debug line for flatcar.tf in:\n{stderr}"));
    assert!(line.contains("DEBUG"), "{line}");
    assert!(line.contains("mode=644"), "{line}");
    assert!(!stdout.contains("DEBUG"), "log lines on stdout:\n{stdout}");

    let (_, quiet) = render("default", &[], None);
    assert!(!quiet.contains("DEBUG"), "debug lines without -v:\n{quiet}");
    let (_, off) = render("off", &["-vv"], Some("off"));
    assert!(!off.contains("DEBUG"), "RUST_LOG=off ignored:\n{off}");
}
