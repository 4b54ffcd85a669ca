//! `racker reprovision` through the binary (docs/operating.md,
//! "Reprovisioning a node"): a simulated rack (`racker sim up --pxe-dhcp`)
//! is bootstrapped, then one node is installed again by host name and by
//! MAC: exactly it gets a new install report and PXE attempt, the others'
//! reports, trails and attempts stay as they were. Its `--on-failure`
//! policies act as bootstrap's.

use std::path::PathBuf;
use std::process::Output;
use std::time::{Duration, SystemTime};

use serde_json::Value;

/// `racker sim up --count 4`: management node + node-0..node-2, primary
/// MACs 02:52:4b:00:00:01..03, BMC MACs 02:52:4b:01:00:01..03.
const NODES: [&str; 3] = [
    "02:52:4b:00:00:01",
    "02:52:4b:00:00:02",
    "02:52:4b:00:00:03",
];

mod common;

use common::{SimRack, racker_in};

/// reprovision's own helpers on the shared rack.
trait Day2 {
    fn run(&self, command: &[&str], args: &[&str]) -> Output;
    fn state(&self) -> Value;
    fn report_path(&self, mac: &str) -> PathBuf;
    fn reports(&self) -> Vec<(String, SystemTime)>;
    fn trails(&self) -> Vec<String>;
    fn bootstrap(&self);
}

impl Day2 for SimRack {
    /// `racker <command> <args> --dhcp-listen .. --http-listen ..`.
    fn run(&self, command: &[&str], args: &[&str]) -> Output {
        racker_in(self.dir.path())
            .args(command)
            .args(["--install-timeout", "30s"])
            .args(["--dhcp-listen", &self.dhcp.to_string()])
            .args(["--http-listen", &self.http.to_string()])
            .args(args)
            .output()
            .unwrap()
    }

    fn state(&self) -> Value {
        serde_json::from_slice(&std::fs::read(self.path("state/bootstrap.json")).unwrap()).unwrap()
    }

    fn report_path(&self, mac: &str) -> PathBuf {
        self.path(&format!("state/netboot/reports/{mac}.json"))
    }

    /// Each node's report file: its text and modification time.
    fn reports(&self) -> Vec<(String, SystemTime)> {
        NODES
            .iter()
            .map(|mac| {
                let path = self.report_path(mac);
                (
                    std::fs::read_to_string(&path).unwrap(),
                    std::fs::metadata(&path).unwrap().modified().unwrap(),
                )
            })
            .collect()
    }

    /// Each node's event trail, as JSON text.
    fn trails(&self) -> Vec<String> {
        NODES
            .iter()
            .map(|mac| {
                let events = racker_netboot::trail::load(&self.path("state"), mac.parse().unwrap());
                serde_json::to_string(&events).unwrap()
            })
            .collect()
    }

    fn bootstrap(&self) {
        let out = self.run(&["bootstrap"], &["--provision", "flatcar"]);
        assert!(
            out.status.success(),
            "bootstrap: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        for mac in NODES {
            assert_eq!(self.state()["nodes"][mac]["stage"], "os-up");
        }
    }
}

fn attempts(state: &Value) -> Vec<u64> {
    NODES
        .iter()
        .map(|m| state["nodes"][m]["attempts"].as_u64().unwrap())
        .collect()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn reprovision_by_name_and_by_mac_installs_exactly_that_node() {
    let rack = SimRack::start(4);
    rack.bootstrap();
    assert_eq!(attempts(&rack.state()), [1, 1, 1]);
    let reports_before = rack.reports();
    let trails_before = rack.trails();
    // Report times have one-second resolution.
    std::thread::sleep(Duration::from_millis(1100));

    // By host name, the text summary on stdout.
    let started = std::time::Instant::now();
    let out = rack.run(&["reprovision", "node-1"], &[]);
    let took = started.elapsed();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(&format!("Reprovisioning 1 node(s): {}", NODES[1])),
        "{stderr}"
    );
    assert!(stdout.contains("1 node(s) reprovisioned in"), "{stdout}");
    assert!(stdout.contains("node-1"), "{stdout}");
    assert!(!stdout.contains("node-0"), "only node-1 in\n{stdout}");
    eprintln!("reprovision node-1 took {took:?}");

    let state = rack.state();
    assert_eq!(attempts(&state), [1, 2, 1], "{state}");
    for mac in NODES {
        assert_eq!(state["nodes"][mac]["stage"], "os-up", "{state}");
    }
    let reports = rack.reports();
    let trails = rack.trails();
    for i in [0, 2] {
        assert_eq!(reports[i], reports_before[i], "node-{i}'s report changed");
        assert_eq!(trails[i], trails_before[i], "node-{i}'s trail changed");
    }
    // node-1 reported again: a new report, up, since the reprovision.
    assert_ne!(reports[1].1, reports_before[1].1);
    let report: Value = serde_json::from_str(&reports[1].0).unwrap();
    assert_eq!(report["stage"], "up", "{report}");
    let before: Value = serde_json::from_str(&reports_before[1].0).unwrap();
    assert!(
        report["first_unix"].as_u64() > before["first_unix"].as_u64(),
        "{before} -> {report}"
    );
    // Its new trail starts over (cleared) with a new install.
    assert!(trails[1].contains("report"), "{}", trails[1]);
    assert_ne!(trails[1], trails_before[1]);

    // By a MAC (its BMC's), `-o json`.
    std::thread::sleep(Duration::from_millis(1100));
    let out = rack.run(
        &["reprovision", "02:52:4b:01:00:03"],
        &["-o", "json", "--on-failure", "cancel"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["kind"], "reprovision", "{doc}");
    assert_eq!(doc["ok"], true);
    assert_eq!(doc["outcome"], "provisioned");
    assert_eq!(doc["requested"], serde_json::json!([NODES[2]]));
    let nodes = doc["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 1, "{doc}");
    assert_eq!(nodes[0]["node"], "node-2");
    assert_eq!(nodes[0]["mac"], NODES[2]);
    assert_eq!(nodes[0]["state"], "os-up");
    assert_eq!(nodes[0]["reason"], Value::Null);
    assert_eq!(nodes[0]["attempts"], 2);
    assert_eq!(attempts(&rack.state()), [1, 2, 2]);
    let after = rack.reports();
    assert_eq!(after[0], reports_before[0]);
    assert_eq!(after[1], reports[1]);
    assert_ne!(after[2].1, reports_before[2].1);

    // Unknown names stop before anything happens.
    let out = rack.run(&["reprovision", "node-9"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("node-9 is neither a host name"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(attempts(&rack.state()), [1, 2, 2]);
}

/// A reprovisioned node that cannot boot (its kernel is gone, preflight
/// skipped): `--on-failure exclude` excludes it and succeeds, like
/// bootstrap; `cancel` fails with exit code 1 and the reason.
#[test]
fn reprovision_on_failure_policies_act_as_bootstrap() {
    let rack = SimRack::start(4);
    rack.bootstrap();
    let kernel = rack.path("state/assets/flatcar/current/flatcar_production_pxe.vmlinuz");
    std::fs::remove_file(&kernel).unwrap();

    let out = rack.run(
        &["reprovision", "node-0"],
        &["--skip-preflight", "--on-failure", "cancel", "-o", "json"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["ok"], false, "{doc}");
    assert_eq!(doc["outcome"], "failed");
    assert_eq!(doc["failed_nodes"], serde_json::json!([NODES[0]]));
    assert_eq!(doc["nodes"][0]["state"], "failed", "{doc}");
    let reason = doc["nodes"][0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("flatcar_production_pxe.vmlinuz"),
        "{reason}"
    );
    assert_eq!(attempts(&rack.state()), [2, 1, 1]);

    let out = rack.run(
        &["reprovision", "node-0"],
        &["--skip-preflight", "--on-failure", "exclude"],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "Excluded 1 node(s) from the cluster: {}",
            NODES[0]
        )),
        "{stderr}"
    );
    let state = rack.state();
    assert_eq!(state["nodes"][NODES[0]]["state"], "excluded", "{state}");
    for mac in &NODES[1..] {
        assert_eq!(state["nodes"][mac]["stage"], "os-up", "{state}");
        assert_eq!(state["nodes"][mac]["attempts"], 1, "{state}");
    }
    // Its rendered configuration left the cluster, as with bootstrap.
    assert!(!rack.path("state/cluster/cl/node-0.yaml").exists());
    assert!(rack.path("state/cluster/cl/node-1.yaml").exists());
}
