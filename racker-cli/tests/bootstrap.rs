//! End-to-end: `racker demo` runs a native Flatcar bootstrap of a simulated
//! rack (simulated BMCs over real IPMI, PXE firmware doing real DHCP and
//! HTTP against racker's netboot server) — and the failure policies, and a
//! `kill -9` mid-install followed by a resume.

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::Stdio;

use assert_cmd::Command;
use predicates::prelude::*;

fn demo(dir: &Path) -> Command {
    let mut cmd = Command::cargo_bin("racker").unwrap();
    cmd.env_clear()
        .arg("demo")
        .arg("--dir")
        .arg(dir)
        .args(["--install-delay-ms", "0"]);
    cmd
}

fn json(path: impl AsRef<Path>) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path.as_ref()).unwrap()).unwrap()
}

/// Primary and BMC MAC of demo node `i`.
fn macs(i: usize) -> (String, String) {
    (
        format!("02:00:00:01:00:{i:02x}"),
        format!("02:00:00:02:00:{i:02x}"),
    )
}

fn node_state<'a>(state: &'a serde_json::Value, mac: &str) -> &'a serde_json::Value {
    &state["nodes"][mac]
}

#[test]
fn happy_path_eight_nodes() {
    let dir = tempfile::tempdir().unwrap();
    demo(dir.path())
        .args(["--nodes", "8"])
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "✓ Checking BMC connectivity (8/8)",
        ))
        .stderr(predicate::str::contains("✓ OS installation via PXE (8/8)"))
        .stderr(predicate::str::contains(
            "✓ 8 node(s) provisioned with flatcar",
        ));
    let state_dir = dir.path().join("state");
    let state = json(state_dir.join("bootstrap.json"));
    let leases = racker_netboot::LeaseTable::load(&state_dir).unwrap();
    let sim = json(state_dir.join("sim-status.json"));
    for i in 0..8 {
        let (primary, bmc) = macs(i);
        let n = node_state(&state, &primary);
        assert_eq!(n["state"], "active", "{n}");
        assert_eq!(n["stage"], "os-up", "{n}");
        assert_eq!(n["attempts"], 1);
        // The installed OS phoned home (racker-report-up.service).
        let report = json(state_dir.join(format!("netboot/reports/{primary}.json")));
        assert_eq!(report["stage"], "up", "{report}");
        // The node got its reserved address: .2 + i in primary-MAC order.
        let lease = leases.get(primary.parse().unwrap()).expect("lease");
        assert_eq!(lease.ip.to_string(), format!("172.24.213.{}", 2 + i));
        // Its BMC ends with persistent EFI disk boot.
        let node = sim["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["bmc_mac"] == bmc)
            .unwrap();
        assert_eq!(node["boot_device"], "disk", "{node}");
        assert_eq!(node["persistent"], true, "{node}");
        assert_eq!(node["efi"], true, "{node}");
        assert_eq!(node["power"], "on", "{node}");
    }
    // The attempt log and the rendered configuration are in the cluster directory.
    let cluster = state_dir.join("cluster");
    assert!(cluster.join("cl/node-0.yaml").exists());
    let logs: Vec<_> = std::fs::read_dir(cluster.join("logs")).unwrap().collect();
    assert_eq!(logs.len(), 1);
}

#[test]
fn unreachable_bmc_stops_with_exclude_hint_and_exclude_completes() {
    let dir = tempfile::tempdir().unwrap();
    let (primary, bmc) = macs(2);
    demo(dir.path())
        .args(["--nodes", "4", "--fault", &format!("{primary}=unreachable")])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("1 BMC(s) could not be reached"))
        .stderr(predicate::str::contains(format!("--exclude \"{bmc}\"")));
    let dir = tempfile::tempdir().unwrap();
    demo(dir.path())
        .args([
            "--nodes",
            "4",
            "--fault",
            &format!("{primary}=unreachable"),
            "--exclude",
            &bmc,
        ])
        .assert()
        .success()
        .stderr(predicate::str::contains("✓ 3 node(s) provisioned"));
    let state = json(dir.path().join("state/bootstrap.json"));
    assert_eq!(node_state(&state, &primary)["state"], "excluded");
}

#[test]
fn failed_install_is_excluded_with_on_failure_exclude() {
    let dir = tempfile::tempdir().unwrap();
    let (primary, _) = macs(1);
    demo(dir.path())
        .args([
            "--nodes",
            "3",
            "--fault",
            &format!("{primary}=install-fails"),
            "--on-failure",
            "exclude",
        ])
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "Excluded 1 node(s) from the cluster",
        ));
    let state_dir = dir.path().join("state");
    let state = json(state_dir.join("bootstrap.json"));
    assert_eq!(node_state(&state, &primary)["state"], "excluded");
    for i in [0, 2] {
        assert_eq!(node_state(&state, &macs(i).0)["stage"], "os-up");
    }
    // The failed node left the rendered configuration; the others stay.
    let cluster = state_dir.join("cluster");
    assert!(!cluster.join("cl/node-1.yaml").exists());
    assert!(cluster.join("cl/node-0.yaml").exists());
    let hosts = std::fs::read_to_string(cluster.join("management-hosts")).unwrap();
    assert!(hosts.contains("node-0"), "{hosts}");
    assert!(!hosts.contains("node-1"), "{hosts}");
}

#[test]
fn failed_install_retries_then_cancels_with_guidance() {
    let dir = tempfile::tempdir().unwrap();
    let (primary, _) = macs(0);
    demo(dir.path())
        .args([
            "--nodes",
            "2",
            "--fault",
            &format!("{primary}=install-fails"),
            "--on-failure",
            "retry",
            "--retries",
            "2",
        ])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "Retrying 1 node(s) (retry 2 of 2; log: ",
        ))
        .stderr(predicate::str::contains("racker ipmi <node> diag"));
    // One log per attempt.
    let mut logs: Vec<String> = std::fs::read_dir(dir.path().join("state/cluster/logs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    logs.sort();
    assert_eq!(logs.len(), 3, "{logs:?}");
    for suffix in [
        "-bootstrap.log",
        "-bootstrap-attempt-2.log",
        "-bootstrap-attempt-3.log",
    ] {
        assert!(logs.iter().any(|l| l.ends_with(suffix)), "{logs:?}");
    }
    let state = json(dir.path().join("state/bootstrap.json"));
    let n = node_state(&state, &primary);
    assert_eq!(n["state"], "failed");
    assert_eq!(n["attempts"], 3, "{n}");
    assert!(
        n["reason"].as_str().unwrap().contains("installer failed"),
        "{n}"
    );
    // cancel stops at once with guidance, naming the node and its reason.
    let dir = tempfile::tempdir().unwrap();
    demo(dir.path())
        .args([
            "--nodes",
            "2",
            "--fault",
            &format!("{primary}=install-fails"),
            "--on-failure",
            "cancel",
        ])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(format!(
            "{primary} node-0: failed after"
        )))
        .stderr(predicate::str::contains("--exclude"));
    // Rerun once the cause is gone: the failed node is retried, the
    // installed one is left alone.
    demo(dir.path())
        .args(["--nodes", "2", "--on-failure", "cancel"])
        .assert()
        .success()
        .stderr(predicate::str::contains(format!(
            "Retrying 1 node(s) that failed in the previous run: {primary}"
        )))
        .stderr(predicate::str::contains("node-1 already installed"))
        .stderr(predicate::str::contains("✓ 2 node(s) provisioned"));
    let state = json(dir.path().join("state/bootstrap.json"));
    assert_eq!(node_state(&state, &primary)["stage"], "os-up");
    assert_eq!(node_state(&state, &primary)["attempts"], 2);
    assert_eq!(node_state(&state, &macs(1).0)["attempts"], 1);
}

#[test]
fn kill_mid_install_then_rerun_resumes_without_reinstalling() {
    let dir = tempfile::tempdir().unwrap();
    let bin = assert_cmd::cargo::cargo_bin("racker");
    let mut child = std::process::Command::new(&bin)
        .env_clear()
        .arg("demo")
        .arg("--dir")
        .arg(dir.path())
        .args(["--nodes", "6", "--install-delay-ms", "400", "--stagger"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Progress is on stderr.
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    // Wait (bounded by the demo's own timeouts) for the first installed node.
    let mut seen = false;
    for line in lines.by_ref().take(200) {
        if line.unwrap().contains(" installed") {
            seen = true;
            break;
        }
    }
    assert!(seen, "no node installed before the demo ended");
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let state_dir = dir.path().join("state");
    let before = json(state_dir.join("bootstrap.json"));
    let installed_before: Vec<String> = before["nodes"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, n)| n["stage"] == "installed")
        .map(|(m, _)| m.clone())
        .collect();
    assert!(
        !installed_before.is_empty() && installed_before.len() < 6,
        "{before}"
    );

    demo(dir.path())
        .args(["--nodes", "6"])
        .assert()
        .success()
        .stderr(predicate::str::contains("Resuming the bootstrap"))
        .stderr(predicate::str::contains("already installed"))
        .stderr(predicate::str::contains("✓ 6 node(s) provisioned"));
    let after = json(state_dir.join("bootstrap.json"));
    for (mac, n) in after["nodes"].as_object().unwrap() {
        assert_eq!(n["stage"], "os-up", "{mac}: {n}");
        if installed_before.contains(mac) {
            // Not reinstalled: still the one PXE request of the first run.
            assert_eq!(n["attempts"], 1, "{mac}: {n}");
        }
    }
    // Every node is installed and its OS reported up.
    let reports = racker_netboot::report::ReportStore::open(&state_dir).unwrap();
    assert_eq!(
        reports
            .reports()
            .iter()
            .filter(|r| r.stage == racker_netboot::report::Stage::Up)
            .count(),
        6
    );
}

/// A node installs but its OS never reports up: `--on-failure exclude`
/// drops it after --os-timeout; `retry` power-cycles it to its disk
/// (never reinstalls it) and gives up with guidance.
#[test]
fn os_that_never_comes_up_is_excluded_or_retried_without_reinstall() {
    let dir = tempfile::tempdir().unwrap();
    let (bad, _) = macs(1);
    demo(dir.path())
        .args([
            "--nodes",
            "3",
            "--os-timeout",
            "2s",
            "--on-failure",
            "exclude",
        ])
        .args(["--fault", &format!("{bad}=no-os-up")])
        .assert()
        .success()
        .stderr(predicate::str::contains("✓ OS installation via PXE (3/3)"))
        .stderr(predicate::str::contains(
            "× Waiting for the installed OS (2/3)",
        ))
        .stderr(predicate::str::contains("did not report up within 2s"))
        .stderr(predicate::str::contains(format!(
            "Excluded 1 node(s) from the cluster: {bad}"
        )))
        .stderr(predicate::str::contains(
            "✓ 2 node(s) provisioned with flatcar, OS up on 2",
        ));
    let state = json(dir.path().join("state/bootstrap.json"));
    assert_eq!(node_state(&state, &bad)["state"], "excluded");
    assert_eq!(node_state(&state, &bad)["stage"], "installed");
    assert_eq!(node_state(&state, &macs(0).0)["stage"], "os-up");

    let dir = tempfile::tempdir().unwrap();
    demo(dir.path())
        .args([
            "--nodes",
            "2",
            "--os-timeout",
            "2s",
            "--on-failure",
            "retry",
        ])
        .args(["--retries", "1", "--fault", &format!("{bad}=no-os-up")])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "Retrying 1 node(s) (retry 1 of 1; log: ",
        ))
        .stderr(predicate::str::contains(format!(
            "{bad} node-1: failed after installed: installed, but its OS did not report up"
        )));
    let state = json(dir.path().join("state/bootstrap.json"));
    // One PXE request: the retry booted the installed disk again.
    assert_eq!(node_state(&state, &bad)["attempts"], 1, "{state}");
    let sim = json(dir.path().join("state/sim-status.json"));
    let (_, bad_bmc) = macs(1);
    let node = sim["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["bmc_mac"] == bad_bmc)
        .unwrap();
    assert_eq!(node["boot_device"], "disk", "{node}");
    assert_eq!(node["power"], "on", "{node}");
    let log = std::fs::read_dir(dir.path().join("state/cluster/logs"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect::<String>();
    assert!(log.contains("power cycled to boot from disk"), "{log}");

    // Rerun without the fault: the installed node is not reinstalled but
    // power-cycled into its disk, whose OS now reports up.
    demo(dir.path())
        .args([
            "--nodes",
            "2",
            "--os-timeout",
            "10",
            "--on-failure",
            "cancel",
        ])
        .assert()
        .success()
        .stderr(predicate::str::contains(format!(
            "Retrying 1 node(s) that failed in the previous run: {bad}"
        )))
        .stderr(predicate::str::contains(format!(
            "{bad} node-1 already installed"
        )))
        .stderr(predicate::str::contains(format!("{bad} node-1 OS up")));
    let state = json(dir.path().join("state/bootstrap.json"));
    assert_eq!(node_state(&state, &bad)["stage"], "os-up", "{state}");
    assert_eq!(node_state(&state, &bad)["attempts"], 1, "{state}");
}
