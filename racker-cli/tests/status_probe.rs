//! `racker status` derives "OS up" from a report sent since the node's last
//! boot, else from a live probe (TCP port 22 of its internal address),
//! never from an old file (docs/bootstrap.md, "racker status"). In a
//! network namespace of its own (root): a simulated rack is bootstrapped;
//! one node installs but its OS never reports up (`no-os-up`). Its
//! internal address is put on the namespace's loopback with a listener on
//! port 22 standing in for its sshd: `status -o json` says `os_up` with
//! `up_source: "probe"`; without the listener it is not up; the other node
//! is up by its `report`.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::cargo::cargo_bin;
use serde_json::Value;

mod common;

const SILENT: &str = "02:52:4b:00:00:01";
const REPORTING: &str = "02:52:4b:00:00:02";

/// Interrupted (Ctrl-C) on drop: `racker sim up` cleans up.
struct Interrupt(Child);

impl Drop for Interrupt {
    fn drop(&mut self) {
        common::stop(&mut self.0);
    }
}

/// Killed on drop.
struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `racker ...` inside the namespace, with the rack's directories.
fn racker(ns: &str, dir: &Path) -> Command {
    let mut cmd = Command::new("ip");
    cmd.env_clear()
        .args(["netns", "exec", ns])
        .arg(cargo_bin("racker"))
        .env("RACKER_OEM_DIR", dir.join("oem"))
        .env("RACKER_STATE_DIR", dir.join("state"))
        .env("RACKER_SYS_CLASS_NET", dir.join("net"))
        .stdin(Stdio::null());
    cmd
}

fn status(ns: &str, dir: &Path) -> (Value, Duration) {
    let started = Instant::now();
    let out = racker(ns, dir)
        .args(["status", "-o", "json"])
        .output()
        .unwrap();
    let took = started.elapsed();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (serde_json::from_slice(&out.stdout).unwrap(), took)
}

fn node<'a>(doc: &'a Value, mac: &str) -> &'a Value {
    doc["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["mac"] == mac)
        .unwrap()
}

#[test]
fn os_up_comes_from_a_fresh_report_or_a_live_probe() {
    let test = "os_up_comes_from_a_fresh_report_or_a_live_probe";
    if !racker_testsupport::require_root(test) {
        return;
    }
    let Some(python) = racker_testsupport::require_tool(test, "python3") else {
        return;
    };
    let ns = racker_testsupport::netns::Netns::create("rkprobe");
    let dir = tempfile::tempdir().unwrap();
    let (sim, _) = racker_testsupport::spawn_until_line(
        racker(&ns.0, dir.path())
            .args(["sim", "up", "--count", "3"])
            .args(["--ipmi-port", "0", "--install-delay-ms", "0"])
            .args(["--fault", &format!("{SILENT}=no-os-up")])
            .args(["--pxe-dhcp", "127.0.0.1:40067"]),
        "press Ctrl-C",
    );
    let _sim = Interrupt(sim);
    common::manage_from_here(dir.path());
    let out = racker(&ns.0, dir.path())
        .args(["bootstrap", "--provision", "flatcar"])
        .args(["--install-timeout", "30s", "--os-timeout", "2s"])
        .args(["--on-failure", "exclude"])
        .args(["--dhcp-listen", "127.0.0.1:40067"])
        .args(["--http-listen", "127.0.0.1:40080"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The silent node is installed (its report says so) but never said up.
    let (doc, took) = status(&ns.0, dir.path());
    let silent = node(&doc, SILENT);
    let ip = silent["ip"].as_str().unwrap().to_owned();
    assert_eq!(silent["os_installed"], true, "{silent}");
    assert_eq!(silent["os_up"], false, "{silent}");
    assert_eq!(silent["up_source"], Value::Null, "{silent}");
    let reporting = node(&doc, REPORTING);
    assert_eq!(reporting["os_up"], true, "{reporting}");
    assert_eq!(reporting["up_source"], "report", "{reporting}");
    eprintln!("status with one unanswered probe: {took:.2?}");
    assert!(took < Duration::from_secs(10), "{took:?}");

    // Its sshd answers now: up by the probe.
    ns.ip(&["addr", "add", &format!("{ip}/32"), "dev", "lo"]);
    let listener = format!(
        "import socket,sys,time\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\ns.bind(('{ip}',22))\ns.listen(16)\nprint('listening',flush=True)\ntime.sleep(120)\n"
    );
    let mut sshd = Command::new("ip");
    sshd.args(["netns", "exec", &ns.0])
        .arg(&python)
        .args(["-c", &listener]);
    let (sshd, _) = racker_testsupport::spawn_until_line(&mut sshd, "listening");
    let _sshd = Kill(sshd);
    let (doc, took) = status(&ns.0, dir.path());
    let silent = node(&doc, SILENT);
    assert_eq!(silent["os_up"], true, "{silent}");
    assert_eq!(silent["up_source"], "probe", "{silent}");
    assert_eq!(node(&doc, REPORTING)["up_source"], "report");
    eprintln!("status with one answered probe: {took:.2?}");
    // The wide table says where "up" comes from.
    let out = racker(&ns.0, dir.path())
        .args(["status", "-o", "wide"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let row = |mac: &str| {
        text.lines()
            .find(|l| l.contains(mac))
            .unwrap_or_default()
            .to_owned()
    };
    assert!(row(SILENT).contains("up (probe)"), "{text}");
    assert!(row(REPORTING).contains("up (report)"), "{text}");
}
