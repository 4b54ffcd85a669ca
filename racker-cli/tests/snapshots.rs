//! insta snapshots of what operators read and scripts parse: `racker plan`
//! (text and JSON), `racker sim status` against a simulated rack, and
//! the dnsmasq/matchbox files `racker netboot render`
//! writes. A change to any of them must be reviewed (`CI=true` fails on a
//! difference). Addresses and ports the simulator picks are redacted.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use assert_cmd::cargo::cargo_bin;

/// The example rack of docs/examples with a fake `/sys/class/net`.
struct ExampleRack {
    dir: tempfile::TempDir,
}

impl ExampleRack {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let oem = dir.path().join("oem");
        std::fs::create_dir_all(&oem).unwrap();
        let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/examples");
        std::fs::copy(docs.join("nodes.csv"), oem.join("nodes.csv")).unwrap();
        std::fs::write(oem.join("ipmi_user"), "admin\n").unwrap();
        std::fs::write(oem.join("ipmi_password"), "secret\n").unwrap();
        for (name, mac) in [("eth0", "00:11:22:33:44:00"), ("eth1", "00:11:22:33:44:30")] {
            let d = dir.path().join("net").join(name);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("address"), format!("{mac}\n")).unwrap();
        }
        Self { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn racker(&self) -> Command {
        let mut cmd = Command::new(cargo_bin("racker"));
        cmd.env_clear()
            .env("RACKER_OEM_DIR", self.path("oem"))
            .env("RACKER_STATE_DIR", self.path("state"))
            .env("RACKER_SYS_CLASS_NET", self.path("net"));
        cmd
    }

    fn ok(&self, args: &[&str]) -> String {
        let out: Output = self.racker().args(args).output().unwrap();
        assert!(out.status.success(), "racker {args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap()
    }

    /// Replace the temporary directory in `text`.
    fn redact(&self, text: &str) -> String {
        text.replace(&self.dir.path().display().to_string(), "[TMP]")
    }
}

#[test]
fn plan_text_and_json() {
    let rack = ExampleRack::new();
    insta::assert_snapshot!("plan_flatcar", rack.ok(&["plan"]));
    insta::assert_snapshot!(
        "plan_lokomotive_excluding_one",
        rack.ok(&[
            "plan",
            "--provision",
            "lokomotive",
            "--exclude",
            "00:11:22:33:44:21",
        ])
    );
    insta::assert_snapshot!(
        "plan_lokomotive_json",
        rack.ok(&["plan", "--provision", "lokomotive", "--output", "json"])
    );
}

#[test]
fn netboot_render_dnsmasq_and_matchbox_files() {
    let rack = ExampleRack::new();
    let (dnsmasq, matchbox) = (rack.path("dnsmasq"), rack.path("matchbox"));
    rack.ok(&[
        "netboot",
        "render",
        "--dnsmasq",
        dnsmasq.to_str().unwrap(),
        "--matchbox",
        matchbox.to_str().unwrap(),
    ]);
    let mut files = Vec::new();
    walk(&rack.path(""), &mut files);
    let rendered: Vec<&PathBuf> = files
        .iter()
        .filter(|p| p.starts_with(&dnsmasq) || p.starts_with(&matchbox))
        .collect();
    assert!(!rendered.is_empty(), "nothing rendered: {files:?}");
    for path in rendered {
        let name = path
            .strip_prefix(rack.path(""))
            .unwrap()
            .display()
            .to_string()
            .replace('/', "__");
        let text = std::fs::read_to_string(path).unwrap();
        insta::assert_snapshot!(format!("netboot_render__{name}"), rack.redact(&text));
    }
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            walk(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// `racker sim status` (text and JSON) against a running simulated
/// rack of three nodes (one unreachable), on loopback addresses with
/// kernel-chosen IPMI ports (redacted).
#[test]
fn sim_status_against_a_simulated_rack() {
    let dir = tempfile::tempdir().unwrap();
    let (oem, state) = (dir.path().join("oem"), dir.path().join("state"));
    let racker = || {
        let mut c = Command::new(cargo_bin("racker"));
        c.arg("--oem-dir").arg(&oem).arg("--state-dir").arg(&state);
        c
    };
    let (mut child, _banner) = racker_testsupport::spawn_until_line(
        racker().args([
            "sim",
            "up",
            "--count",
            "3",
            "--bind",
            "127.91.0",
            "--ipmi-port",
            "0",
            "--fault",
            "02:52:4b:00:00:02=unreachable",
        ]),
        "press Ctrl-C",
    );
    let ports = regex_free_port_redactor();
    let run = |args: &[&str]| {
        let out = racker().args(args).output().unwrap();
        ports(&String::from_utf8_lossy(&out.stdout))
    };
    let sim_text = run(&["sim", "status"]);
    let sim_json = redact_bmc_ports(&run(&["sim", "status", "--output", "json"]));
    let _ = racker_testsupport::interrupt(&mut child, Duration::from_secs(10));
    insta::assert_snapshot!("sim_status_text", sim_text);
    insta::assert_snapshot!("sim_status_json", sim_json);
}

/// `"bmc_port": <n>` → `"bmc_port": "[PORT]"` in a JSON document.
fn redact_bmc_ports(json: &str) -> String {
    let mut v: serde_json::Value = serde_json::from_str(json).unwrap();
    for n in v["nodes"].as_array_mut().unwrap() {
        assert!(n["bmc_port"].is_u64(), "{n}");
        n["bmc_port"] = "[PORT]".into();
    }
    serde_json::to_string_pretty(&v).unwrap()
}

/// Replaces `:<port>` after the simulator's loopback addresses with `:[PORT]`.
fn regex_free_port_redactor() -> impl Fn(&str) -> String {
    |text: &str| {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(i) = rest.find("127.91.0.") {
            let (head, tail) = rest.split_at(i);
            out.push_str(head);
            let addr_len = tail
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .unwrap_or(tail.len());
            out.push_str(&tail[..addr_len]);
            let after = &tail[addr_len..];
            if let Some(port) = after.strip_prefix(':') {
                let digits = port
                    .find(|c: char| !c.is_ascii_digit())
                    .unwrap_or(port.len());
                out.push_str(":[PORT]");
                rest = &port[digits..];
            } else {
                rest = after;
            }
        }
        out.push_str(rest);
        out
    }
}
