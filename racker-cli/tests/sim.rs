//! `racker sim up` / `racker sim status` end to end (ipmitool as the peer).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::cargo::cargo_bin;

fn racker(oem: &Path, state: &Path) -> Command {
    let mut c = Command::new(cargo_bin("racker"));
    c.arg("--oem-dir").arg(oem).arg("--state-dir").arg(state);
    c
}

/// Start `racker sim up` and wait for its ready line.
fn sim_up(oem: &Path, state: &Path, extra: &[&str]) -> (Child, String) {
    racker_testsupport::spawn_until_line(
        racker(oem, state).args(["sim", "up"]).args(extra),
        "press Ctrl-C",
    )
}

fn status_json(oem: &Path, state: &Path) -> serde_json::Value {
    let out = racker(oem, state)
        .args(["sim", "status", "--output", "json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["schema_version"], 1, "{doc}");
    assert_eq!(doc["kind"], "sim-status", "{doc}");
    doc["nodes"].clone()
}

fn interrupt(child: &mut Child) -> std::process::ExitStatus {
    racker_testsupport::interrupt(child, Duration::from_secs(10))
}

#[test]
fn sim_up_count_writes_table_and_status_follows_ipmitool() {
    let dir = tempfile::tempdir().unwrap();
    let (oem, state) = (dir.path().join("oem"), dir.path().join("state"));
    let (mut child, banner) = sim_up(
        &oem,
        &state,
        &[
            "--count",
            "3",
            "--bind",
            "127.89.0",
            "--ipmi-port",
            "0",
            "--fault",
            "02:52:4b:00:00:02=unreachable",
        ],
    );
    assert!(banner.contains("3 simulated BMCs up"), "{banner}");
    assert!(banner.contains("ipmitool -I lanplus"), "{banner}");
    assert_eq!(
        std::fs::read_to_string(oem.join("ipmi_user")).unwrap(),
        "USER\n"
    );
    assert_eq!(
        std::fs::read_to_string(oem.join("ipmi_password")).unwrap(),
        "PASS\n"
    );
    let csv = std::fs::read_to_string(oem.join("nodes.csv")).unwrap();
    assert_eq!(csv.lines().count(), 4, "{csv}");

    let table: serde_json::Value =
        serde_json::from_slice(&std::fs::read(state.join("sim-bmcs.json")).unwrap()).unwrap();
    let bmcs = table["bmcs"].as_array().unwrap();
    assert_eq!(bmcs.len(), 3);
    assert_eq!(bmcs[1]["bmc_mac"], "02:52:4b:01:00:01");
    let addr: std::net::SocketAddr = bmcs[1]["ipmi_address"].as_str().unwrap().parse().unwrap();
    assert_eq!(addr.ip().to_string(), "127.89.0.3");

    let status = status_json(&oem, &state);
    let nodes = status.as_array().unwrap();
    assert_eq!(nodes.len(), 3);
    for key in [
        "bmc_mac",
        "mac",
        "bmc_ip",
        "bmc_port",
        "power",
        "boot_device",
        "persistent",
        "efi",
    ] {
        assert!(nodes[0].get(key).is_some(), "missing {key} in {status}");
    }
    assert_eq!(nodes[1]["power"], "off");
    assert_eq!(nodes[1]["mac"], "02:52:4b:00:00:01");
    assert_eq!(nodes[2]["faults"][0], "unreachable");

    let text = racker(&oem, &state)
        .args(["sim", "status"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&text.stdout).contains("02:52:4b:01:00:01"));

    if racker_testsupport::require_tool(
        "sim_up_count_writes_table_and_status_follows_ipmitool",
        "ipmitool",
    )
    .is_some()
    {
        let ipmitool = |args: &[&str]| {
            let out = Command::new("ipmitool")
                .args([
                    "-I",
                    "lanplus",
                    "-H",
                    &addr.ip().to_string(),
                    "-p",
                    &addr.port().to_string(),
                ])
                .args(["-U", "USER", "-E", "-N", "1", "-R", "2"])
                .args(args)
                .env("IPMI_PASSWORD", "PASS")
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        ipmitool(&["chassis", "bootdev", "pxe", "options=persistent,efiboot"]);
        ipmitool(&["chassis", "power", "on"]);
        // The status file is rewritten after each change: poll it (bounded).
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let s = status_json(&oem, &state);
            let n = &s[1];
            if n["power"] == "on" {
                assert_eq!(n["boot_device"], "pxe");
                assert_eq!(n["persistent"], true);
                assert_eq!(n["efi"], true);
                assert_eq!(s[0]["power"], "off");
                break;
            }
            assert!(
                Instant::now() < deadline,
                "status never showed power on: {s}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    let status = interrupt(&mut child);
    assert!(status.success(), "{status:?}");
    assert!(
        !state.join("sim-bmcs.json").exists(),
        "table removed on a clean stop"
    );
    let out = racker(&oem, &state)
        .args(["sim", "status"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no simulated rack is running"));
}

#[test]
fn sim_up_refuses_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let (oem, state) = (dir.path().join("oem"), dir.path().join("state"));
    std::fs::create_dir_all(&oem).unwrap();
    std::fs::write(
        oem.join("nodes.csv"),
        "Primary MAC address, BMC MAC address\n00:11:22:33:44:00, 00:11:22:33:44:01\n",
    )
    .unwrap();
    // Each invocation must fail before serving; a regression that starts
    // the rack instead is killed after a bounded wait rather than hanging.
    let run = |args: &[&str]| {
        let mut child = racker(&oem, &state)
            .args(["sim", "up"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                child.kill().unwrap();
                panic!("racker sim up {args:?} kept running");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        child.wait_with_output().unwrap()
    };
    let out = run(&["--count", "2", "--ipmi-port", "0"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--force"));
    let out = run(&[
        "--ipmi-port",
        "0",
        "--fault",
        "00:11:22:33:44:99=unreachable",
    ]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no node has MAC"),
        "{out:?}"
    );
    let out = run(&["--ipmi-port", "0", "--fault", "00:11:22:33:44:01=fire"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("invalid fault"),
        "{out:?}"
    );
    let out = run(&["--ipmi-port", "0", "--bind", "10.1.2"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("loopback"),
        "{out:?}"
    );
}

/// `racker ipmi --all power status` as JSON: every target's `address_source`,
/// address and success.
fn ipmi_all(oem: &Path, state: &Path, net: &Path) -> Vec<(String, String, bool)> {
    let out = racker(oem, state)
        .arg("--sys-class-net")
        .arg(net)
        .args(["ipmi", "--all", "--timeout", "1", "--retries", "0"])
        .args(["--output", "json", "power", "status"])
        .output()
        .unwrap();
    let docs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    docs["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["address_source"].as_str().unwrap().to_owned(),
                format!("{}:{}", d["bmc_ip"].as_str().unwrap(), d["bmc_port"]),
                d["ok"].as_bool().unwrap(),
            )
        })
        .collect()
}

#[test]
fn a_stale_simulator_table_never_redirects_ipmi() {
    let dir = tempfile::tempdir().unwrap();
    let (oem, state, net) = (
        dir.path().join("oem"),
        dir.path().join("state"),
        dir.path().join("net"),
    );
    let (mut child, _) = sim_up(
        &oem,
        &state,
        &["--count", "3", "--bind", "127.89.7", "--ipmi-port", "0"],
    );
    // This machine is the generated management node (first row).
    let csv = std::fs::read_to_string(oem.join("nodes.csv")).unwrap();
    let secondary = csv
        .lines()
        .nth(1)
        .unwrap()
        .split(',')
        .nth(2)
        .unwrap()
        .trim();
    std::fs::create_dir_all(net.join("eth1")).unwrap();
    std::fs::write(net.join("eth1/address"), format!("{secondary}\n")).unwrap();

    // While the simulated rack runs, its state directory sends IPMI to it.
    let live = ipmi_all(&oem, &state, &net);
    assert_eq!(live.len(), 2, "{live:?}");
    for (source, bmc, ok) in &live {
        assert_eq!(source, "simulator", "{live:?}");
        assert!(bmc.starts_with("127.89.7."), "{live:?}");
        assert!(ok, "{live:?}");
    }

    // A real state directory that happens to hold a copy of the table
    // (no marker): the plan's addresses, never the simulator's.
    let real = dir.path().join("real-state");
    std::fs::create_dir_all(&real).unwrap();
    std::fs::copy(state.join("sim-bmcs.json"), real.join("sim-bmcs.json")).unwrap();
    for (source, bmc, ok) in ipmi_all(&oem, &real, &net) {
        assert_eq!(source, "plan");
        assert!(bmc.starts_with("172.24.213."), "{bmc}");
        assert!(!ok, "nothing answers at the planned address {bmc}");
    }

    // The simulator killed: its table and marker stay behind, stale.
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(state.join("sim-bmcs.json").exists());
    for (source, bmc, _) in ipmi_all(&oem, &state, &net) {
        assert_eq!(source, "plan", "{bmc}");
        assert!(bmc.starts_with("172.24.213."), "{bmc}");
    }
}
