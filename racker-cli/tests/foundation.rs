//! `racker factory` and `racker plan` through the binary.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::prelude::*;

const HEADER: &str =
    "Primary MAC address, BMC MAC address, Secondary MAC address, Node Type, Comments\n";
const MGMT: &str = "00:11:22:33:44:00, 00:11:22:33:44:01, 00:11:22:33:44:30, red, mgmt node\n";

struct Rack {
    dir: tempfile::TempDir,
}

impl Rack {
    fn new(nodes_csv: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let oem = dir.path().join("oem");
        std::fs::create_dir_all(&oem).unwrap();
        std::fs::write(oem.join("nodes.csv"), nodes_csv).unwrap();
        std::fs::write(oem.join("ipmi_user"), "admin\n").unwrap();
        std::fs::write(oem.join("ipmi_password"), "secret\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            oem.join("ipmi_password"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        for (name, mac) in [("eth0", "00:11:22:33:44:00"), ("eth1", "00:11:22:33:44:30")] {
            let d = dir.path().join("net").join(name);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("address"), format!("{mac}\n")).unwrap();
        }
        Self { dir }
    }

    fn oem(&self) -> PathBuf {
        self.dir.path().join("oem")
    }

    fn racker(&self) -> Command {
        let mut cmd = Command::cargo_bin("racker").unwrap();
        cmd.env_clear()
            .env("RACKER_OEM_DIR", self.oem())
            .env("RACKER_STATE_DIR", self.dir.path().join("state"))
            .env("RACKER_SYS_CLASS_NET", self.dir.path().join("net"));
        cmd
    }
}

fn example() -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/examples/nodes.csv"),
    )
    .unwrap()
}

#[test]
fn factory_check_succeeds_with_summary() {
    let rack = Rack::new(&example());
    rack.racker()
        .args(["factory", "check"])
        .assert()
        .success()
        .stdout(predicate::str::contains("✓ BMC credentials found"))
        .stdout(predicate::str::contains("PXE interface eth1"))
        .stdout(predicate::str::contains("  2 \"red\"\n  1 \"purple\"\n"));
}

#[test]
fn factory_check_reports_every_error_class_with_line() {
    let cases: Vec<(String, &str)> = vec![
        (String::new(), "fewer than two lines"),
        (HEADER.to_owned(), "fewer than two lines"),
        (
            format!("{MGMT}{MGMT}"),
            "nodes.csv:1: the header line contains the MAC address",
        ),
        (
            format!("{HEADER}{MGMT}, 00:11:22:33:44:11\n"),
            "nodes.csv:3: \"Primary MAC address\" is not set",
        ),
        (
            format!("{HEADER}{MGMT}00:11:22:33:44:10, 00:11:22:33:44\n"),
            "nodes.csv:3: \"BMC MAC address\" is set as \"00:11:22:33:44\" and does not look like a MAC address",
        ),
        (
            format!("{HEADER}{MGMT}00:11:22:33:44:10, 00:11:22:33:44:11, 00:11:22:33:44\n"),
            "nodes.csv:3: \"Secondary MAC address\" is set as \"00:11:22:33:44\"",
        ),
        (
            format!(
                "{HEADER}{MGMT}00:11:22:33:44:10, 00:11:22:33:44:11, 00:11:22:33:44:12, 00:11:22:33:44:13\n"
            ),
            "nodes.csv:3: \"Node Type\" is set as \"00:11:22:33:44:13\", which is a MAC address",
        ),
        (
            format!("{HEADER}{MGMT}\n00:11:22:33:44:10, 00:11:22:33:44:01\n"),
            "nodes.csv:4: \"BMC MAC address\" 00:11:22:33:44:01 is already used on line 2 (\"BMC MAC address\")",
        ),
        (
            format!("{HEADER}00:11:22:33:44:10, 00:11:22:33:44:11, 00:11:22:33:44:12\n"),
            "no row matches a MAC address of this machine's network interfaces",
        ),
    ];
    for (csv, want) in cases {
        let rack = Rack::new(&csv);
        rack.racker()
            .args(["factory", "check"])
            .assert()
            .code(1)
            .stderr(predicate::str::contains(want).and(predicate::str::contains("panicked").not()));
    }
}

#[test]
fn factory_check_reports_credentials() {
    let rack = Rack::new(&example());
    std::fs::remove_file(rack.oem().join("ipmi_password")).unwrap();
    rack.racker()
        .args(["factory", "check"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "ipmi_password: credential file is missing",
        ));
    std::fs::write(rack.oem().join("ipmi_password"), "").unwrap();
    rack.racker()
        .args(["factory", "check"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "ipmi_password: credential file is empty",
        ));
    std::fs::write(rack.oem().join("ipmi_password"), "pw\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        rack.oem().join("ipmi_password"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    rack.racker()
        .args(["factory", "check"])
        .assert()
        .success()
        .stderr(predicate::str::contains("is readable by other users"));
}

#[test]
fn plan_json_has_exactly_the_documented_keys() {
    let rack = Rack::new(&example());
    let out = rack
        .racker()
        .args([
            "plan",
            "--provision",
            "lokomotive",
            "--exclude",
            "00:11:22:33:44:21",
            "--output",
            "json",
        ])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "dynamic_range",
            "kind",
            "management",
            "nodes",
            "pxe_interface",
            "schema_version",
            "subnet"
        ]
    );
    assert_eq!(v["schema_version"], 1);
    assert_eq!(v["kind"], "plan");
    assert_eq!(v["pxe_interface"], "eth1");
    assert_eq!(v["subnet"], "172.24.213.0/24");
    assert_eq!(v["management"]["secondary_mac"], "00:11:22:33:44:30");
    let nodes = v["nodes"].as_array().unwrap();
    let mut node_keys: Vec<&str> = nodes[0]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    node_keys.sort();
    assert_eq!(
        node_keys,
        [
            "bmc_ip",
            "bmc_mac",
            "excluded",
            "hostname",
            "ip",
            "mac",
            "node",
            "node_type",
            "role",
            "secondary_mac",
            "storage"
        ]
    );
    assert_eq!(nodes[0]["role"], "controller");
    assert_eq!(
        nodes[0]["hostname"],
        "lokomotive-controller-0.k8s.localdomain"
    );
    assert_eq!(nodes[0]["ip"], "172.24.213.2");
    assert_eq!(nodes[1]["excluded"], true);
    // Excluding a node never moves an address.
    assert_eq!(nodes[1]["ip"], "172.24.213.3");
    assert_eq!(nodes[1]["bmc_ip"], "172.24.213.5");
}

#[test]
fn plan_errors_are_clear() {
    let rack = Rack::new(&example());
    rack.racker()
        .args([
            "plan",
            "--provision",
            "lokomotive",
            "--num-controllers",
            "3",
        ])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "3 controller(s) of node type \"any\" are needed but only 2",
        ));
    rack.racker()
        .args(["plan", "--exclude", "00:11:22:33:44:99"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("does not belong to any node"));
    rack.racker()
        .args(["plan", "--subnet-prefix", "10.0"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("must be three octets"));
    rack.racker()
        .args(["plan", "--help"])
        .assert()
        .success()
        .stdout(predicate::str::contains("Examples:"));
}

#[test]
fn plan_text_lists_every_node() {
    let rack = Rack::new(&example());
    rack.racker().args(["plan"]).assert().success()
        .stdout(predicate::str::contains("PXE interface:   eth1"))
        .stdout(predicate::str::contains("00:11:22:33:44:20  00:11:22:33:44:21  00:11:22:33:44:50  purple  172.24.213.3  172.24.213.5  node  node-1"));
}

#[test]
fn factory_reset_and_ssh_key() {
    let rack = Rack::new(&example());
    let state = rack.dir.path().join("state");
    std::fs::create_dir_all(state.join("leases")).unwrap();
    // Non-interactive without --yes refuses and changes nothing.
    rack.racker()
        .args(["factory", "reset", "--nodes"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("--yes"));
    assert!(state.exists());
    rack.racker()
        .args(["factory", "reset", "--nodes", "--yes"])
        .assert()
        .success();
    assert!(!state.exists());
    let csv = std::fs::read_to_string(rack.oem().join("nodes.csv")).unwrap();
    assert_eq!(csv, HEADER);

    // The installer's layout: the reset is a marker the next update reads
    // (tests/release.rs follows it through `racker update`).
    let prefix = rack.dir.path().join("prefix");
    rack.racker()
        .args(["factory", "reset", "--racker-version", "--yes", "--prefix"])
        .arg(&prefix)
        .assert()
        .success();
    assert!(prefix.join("FACTORY_RESET").exists());

    let first = rack
        .racker()
        .args(["factory", "gen-ssh-key"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(first.clone()).unwrap();
    assert!(
        text.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----"),
        "{text}"
    );
    let key = state.join("ssh/id_ed25519");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let public = std::fs::read_to_string(state.join("ssh/id_ed25519.pub")).unwrap();
    assert!(public.starts_with("ssh-ed25519 "), "{public}");
    // A second run keeps the existing key.
    let second = rack
        .racker()
        .args(["factory", "gen-ssh-key"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    assert_eq!(first, second);
}

/// `--retries` is bounded: every retry waits out the install timeout again,
/// so a huge count would outlive any timeout the operator chose.
#[test]
fn bootstrap_retries_are_bounded() {
    let rack = Rack::new(&example());
    rack.racker()
        .args(["bootstrap", "--provision", "flatcar", "--retries", "21"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("21 is not in 0..=20"));
}

/// The original racker's spellings (`-provision`, `-exclude=...`) are
/// hidden aliases: the same result as racker's, with a note on stderr.
#[test]
fn original_flag_spellings_are_accepted_with_a_note() {
    let rack = Rack::new(&example());
    let run = |args: &[&str]| {
        rack.racker()
            .args(args)
            .assert()
            .success()
            .get_output()
            .clone()
    };
    let ours = run(&[
        "plan",
        "--provision",
        "lokomotive",
        "--exclude",
        "00:11:22:33:44:21",
        "-o",
        "json",
    ]);
    let original = run(&[
        "plan",
        "-provision",
        "lokomotive",
        "-exclude=00:11:22:33:44:21",
        "-o",
        "json",
    ]);
    assert_eq!(ours.stdout, original.stdout);
    let stderr = String::from_utf8_lossy(&original.stderr);
    assert!(
        stderr.contains("note: -provision is the original racker's spelling of --provision"),
        "{stderr}"
    );
    // A secret is never taken from the command line, not even this way.
    rack.racker()
        .args(["bootstrap", "-aws-secret-key", "s3cr3t"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("RACKER_BACKUP_SECRET_ACCESS_KEY"))
        .stderr(predicate::str::contains("s3cr3t").not());
}
