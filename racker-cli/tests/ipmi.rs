//! `racker ipmi` through the binary against OpenIPMI's `ipmi_sim` BMCs on
//! loopback addresses (the address plan uses subnet 127.0.0 so planned BMC
//! addresses are loopback ones).

use std::net::{Ipv4Addr, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command as StdCommand, Stdio};
use std::time::Duration;

use assert_cmd::Command;
use predicates::prelude::*;

const HEADER: &str =
    "Primary MAC address, BMC MAC address, Secondary MAC address, Node Type, Comments\n";
// Management node + three nodes. Sorted by primary MAC the nodes get
// 127.0.0.2-4 and their BMCs 127.0.0.5-7.
const NODES: &str = "00:11:22:33:44:00, 00:11:22:33:44:01, 00:11:22:33:44:30, red, mgmt\n\
00:11:22:33:44:10, 00:11:22:33:44:11, , red, a\n\
00:11:22:33:44:20, 00:11:22:33:44:21, , red, b\n\
00:11:22:33:44:40, 00:11:22:33:44:41, , red, c (BMC answers only at its leased address)\n";

const CHASSIS_SCRIPT: &str = r#"#!/bin/sh
dir=$1; shift
op=$1; shift
case "$op" in
get)
  for p in "$@"; do
    case "$p" in
      power) echo "power:$(cat "$dir/power" 2>/dev/null || echo 0)";;
      boot) echo "boot:$(cat "$dir/boot" 2>/dev/null || echo default)";;
    esac
  done;;
set)
  while [ $# -ge 2 ]; do
    case "$1" in
      power) echo "$2" > "$dir/power";;
      boot) echo "$2" > "$dir/boot";;
    esac
    shift 2
  done;;
esac
"#;

/// BMC listen addresses: the plan's .5 and .6, and 127.0.0.9 for the third
/// node (whose planned .7 has no BMC: only the lease table finds it).
const BMC_IPS: [&str; 3] = ["127.0.0.5", "127.0.0.6", "127.0.0.9"];

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:#04x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// SDRs, sensors, two SEL entries and FRU data for controller `mc`.
fn monitoring_emu(mc: usize) -> String {
    let mut e = String::new();
    for (i, (num, ty, unit, m, raw, name)) in [
        (0x30u8, 0x01u8, 1u8, 1i16, 45u8, "CPU Temp"),
        (0x40, 0x04, 18, 50, 100, "FAN1"),
    ]
    .into_iter()
    .enumerate()
    {
        let mut rec = racker_ipmi::sdr::full_sensor_record(
            i as u16 + 1,
            num,
            ty,
            unit,
            m,
            0,
            [250, 240, 230, 0, 1, 2],
            name,
        );
        rec[5] = mc as u8;
        e.push_str(&format!("main_sdr_add {mc:#x} {}\n", hex(&rec)));
        e.push_str(&format!("sensor_add {mc:#x} 0 {num:#x} {ty:#x} 0x01\n"));
        e.push_str(&format!("sensor_set_value {mc:#x} 0 {num:#x} {raw:#x} 0\n"));
    }
    e.push_str(&format!("sel_enable {mc:#x} 1000 0x0a\n"));
    e.push_str(&format!(
        "sel_add {mc:#x} 0x02 0x10 0x00 0x00 0x60 {mc:#x} 0x00 0x04 0x01 0x30 0x01 0x09 0xff 0xff\n"
    ));
    let fru = racker_ipmi::fru::encode(
        &racker_ipmi::fru::BoardInfo {
            manufacturer: "Racker".into(),
            product: "Sim Board".into(),
            serial: "SN0001".into(),
            ..Default::default()
        },
        &racker_ipmi::fru::ProductInfo {
            manufacturer: "Racker".into(),
            name: "Sim Node".into(),
            serial: "NODE0001".into(),
            ..Default::default()
        },
    );
    e.push_str(&format!(
        "mc_add_fru_data {mc:#x} 0 {:#x} data {}\n",
        fru.len(),
        hex(&fru)
    ));
    e
}

struct Rig {
    dir: tempfile::TempDir,
    port: u16,
    child: Child,
}

impl Rig {
    fn start(test: &str) -> Option<Rig> {
        let bin = racker_testsupport::require_tool(test, "ipmi_sim")?;
        let dir = tempfile::tempdir().unwrap();
        let oem = dir.path().join("oem");
        std::fs::create_dir_all(&oem).unwrap();
        std::fs::write(oem.join("nodes.csv"), format!("{HEADER}{NODES}")).unwrap();
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
        std::fs::create_dir_all(dir.path().join("state")).unwrap();
        let script = dir.path().join("chassis.sh");
        std::fs::write(&script, CHASSIS_SCRIPT).unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let port = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut conf = String::from("name \"racker-cli-test\"\n");
        let mut emu = String::from("mc_setbmc 0x20\n");
        for (i, ip) in BMC_IPS.iter().enumerate() {
            let mc = 0x20 + 2 * i;
            let state = dir.path().join(format!("bmc{i}"));
            std::fs::create_dir(&state).unwrap();
            conf.push_str(&format!(
                "set_working_mc {mc:#x}\n  startlan 1\n    addr {ip} {port}\n    priv_limit admin\n    \
                 allowed_auths_admin none md5 straight\n    guid a123456789abcdefa123456789ab{i:04x}\n  endlan\n  \
                 chassis_control \"{} {}\"\n  user 2 true \"admin\" \"secret\" admin 10 none md5 straight\n",
                script.display(),
                state.display()
            ));
            emu.push_str(&format!(
                "mc_add {mc:#x} 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02\nmc_enable {mc:#x}\n"
            ));
            if i == 0 {
                emu.push_str(&monitoring_emu(mc));
            }
        }
        std::fs::write(dir.path().join("lan.conf"), conf).unwrap();
        std::fs::write(dir.path().join("bmc.emu"), emu).unwrap();
        let child = StdCommand::new(bin)
            .args(["-n", "-c"])
            .arg(dir.path().join("lan.conf"))
            .arg("-f")
            .arg(dir.path().join("bmc.emu"))
            .arg("-s")
            .arg(dir.path().join("persist"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let rig = Rig { dir, port, child };
        rig.wait_ready();
        Some(rig)
    }

    /// Every BMC answers a pre-session Get Channel Auth Caps (bounded wait).
    fn wait_ready(&self) {
        let pkt: [u8; 23] = [
            0x06, 0x00, 0xff, 0x07, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0x09, 0x20, 0x18, 0xc8, 0x81,
            0x04, 0x38, 0x8e, 0x04, 0xb1,
        ];
        let sock = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        for ip in BMC_IPS {
            let ok = (0..100).any(|_| {
                let _ = sock.send_to(&pkt, (ip, self.port));
                let mut buf = [0u8; 512];
                sock.recv_from(&mut buf).is_ok()
            });
            assert!(ok, "ipmi_sim did not answer on {ip}:{}", self.port);
        }
    }

    fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    fn bmc_state(&self, i: usize, what: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("bmc{i}")).join(what))
            .unwrap_or_default()
            .trim()
            .to_string()
    }

    fn racker(&self) -> Command {
        let mut cmd = Command::cargo_bin("racker").unwrap();
        cmd.env_clear()
            .env("RACKER_OEM_DIR", self.dir.path().join("oem"))
            .env("RACKER_STATE_DIR", self.state_dir())
            .env("RACKER_SYS_CLASS_NET", self.dir.path().join("net"))
            .timeout(Duration::from_secs(60));
        cmd
    }

    fn ipmi(&self, args: &[&str]) -> Command {
        let mut cmd = self.racker();
        cmd.args([
            "ipmi",
            "--subnet-prefix",
            "127.0.0",
            "--port",
            &self.port.to_string(),
            "--timeout",
            "1.5",
        ]);
        cmd.args(args);
        cmd
    }

    fn write_lease(&self, mac: &str, ip: &str) {
        let json = format!(
            "{{\"version\":1,\"leases\":[{{\"mac\":\"{mac}\",\"ip\":\"{ip}\",\"expires\":4102444800,\"reserved\":true}}]}}"
        );
        std::fs::write(self.state_dir().join("dhcp-leases.json"), json).unwrap();
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn stdout_of(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn power_bootdev_and_status_by_mac_and_host_name() {
    let Some(rig) = Rig::start("power_bootdev_and_status_by_mac_and_host_name") else {
        return;
    };
    rig.ipmi(&["00:11:22:33:44:10", "power", "on"])
        .assert()
        .success()
        .stdout(predicate::str::contains("power on: done"));
    assert_eq!(rig.bmc_state(0, "power"), "1");
    rig.ipmi(&["00:11:22:33:44:11", "power", "on"]) // BMC MAC works too; idempotent
        .assert()
        .success()
        .stdout(predicate::str::contains("already in that state"));
    rig.ipmi(&["00:11:22:33:44:10", "power", "status"])
        .assert()
        .success()
        .stdout(predicate::str::contains("Chassis Power is on"));
    // Flatcar host names: node-<i> in plan order.
    rig.ipmi(&["node-1", "bootdev", "pxe"]).assert().success();
    assert_eq!(rig.bmc_state(1, "boot"), "pxe");
    rig.ipmi(&["node-1", "bootparam"])
        .assert()
        .success()
        .stdout(predicate::str::contains("device=pxe"));
    rig.ipmi(&["node-1", "boot-timeout", "off"])
        .assert()
        .success();
    rig.ipmi(&["node-1", "raw", "0x06", "0x01"])
        .assert()
        .success()
        .stdout(predicate::str::starts_with(" 00 03 09 08 02"));
    rig.ipmi(&["node-1", "user", "list"])
        .assert()
        .success()
        .stdout(predicate::str::contains("admin").and(predicate::str::contains("Administrator")));
    rig.ipmi(&["node-9", "power", "status"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("no node \"node-9\""));
}

#[test]
fn host_option_json_and_diag() {
    let Some(rig) = Rig::start("host_option_json_and_diag") else {
        return;
    };
    let host = format!("127.0.0.6:{}", rig.port);
    let out = stdout_of(&mut rig.ipmi(&["--host", &host, "power", "status", "--output", "json"]));
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["schema_version"], 1);
    assert_eq!(v["kind"], "ipmi");
    let r = &v["results"][0];
    assert_eq!(r["ok"], true);
    assert_eq!(r["result"]["type"], "chassis-status");
    assert_eq!(r["result"]["value"]["power"], "off");
    assert_eq!(
        format!("{}:{}", r["bmc_ip"].as_str().unwrap(), r["bmc_port"]),
        host
    );
    rig.ipmi(&["00:11:22:33:44:20", "diag"])
        .assert()
        .success()
        .stdout(
            predicate::str::contains("BMC MAC              : 00:11:22:33:44:21")
                .and(predicate::str::contains("BMC address          : 127.0.0.6"))
                .and(predicate::str::contains("(from plan)"))
                .and(predicate::str::contains("Internal IP          : 127.0.0.3"))
                .and(predicate::str::contains("Host name            : node-1"))
                .and(predicate::str::contains("System Power         : off"))
                .and(predicate::str::contains("Boot flags:")),
        );
}

#[test]
fn all_runs_in_parallel_reports_failures_and_uses_leases() {
    let Some(rig) = Rig::start("all_runs_in_parallel_reports_failures_and_uses_leases") else {
        return;
    };
    // Without a lease the third BMC (planned 127.0.0.7) does not answer.
    let out = rig
        .ipmi(&["--all", "power", "on", "--retries", "1", "--timeout", "0.6"])
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "one BMC failed: exit code must say so"
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("== 00:11:22:33:44:11 (127.0.0.5:"), "{text}");
    assert!(text.contains("== 00:11:22:33:44:21 (127.0.0.6:"), "{text}");
    assert!(text.contains("== 00:11:22:33:44:41 (127.0.0.7:"), "{text}");
    assert!(
        text.contains("no answer to Get Channel Authentication Capabilities"),
        "{text}"
    );
    assert_eq!(text.matches("power on: done").count(), 2, "{text}");
    assert_eq!(
        (
            rig.bmc_state(0, "power").as_str(),
            rig.bmc_state(1, "power").as_str()
        ),
        ("1", "1")
    );
    // The DHCP server leased 127.0.0.9 to that BMC: the lease wins over the plan.
    rig.write_lease("00:11:22:33:44:41", "127.0.0.9");
    rig.ipmi(&["--all", "power", "on"])
        .assert()
        .success()
        .stdout(predicate::str::contains("== 00:11:22:33:44:41 (127.0.0.9:"))
        .stderr(predicate::str::contains(
            "holds a DHCP lease for 127.0.0.9 but the plan says 127.0.0.7",
        ));
    assert_eq!(rig.bmc_state(2, "power"), "1");
    // --exclude leaves a node out of --all.
    let out =
        stdout_of(&mut rig.ipmi(&["--exclude", "00:11:22:33:44:10", "--all", "power", "status"]));
    assert!(!out.contains("00:11:22:33:44:11"), "{out}");
    assert_eq!(out.matches("Chassis Power is on").count(), 2, "{out}");
    // The console needs one node.
    rig.ipmi(&["--all", "sol"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("needs one node"));
    rig.ipmi(&["--all"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("needs one node"));
}

#[test]
fn wrong_password_names_the_bmc() {
    let Some(rig) = Rig::start("wrong_password_names_the_bmc") else {
        return;
    };
    std::fs::write(rig.dir.path().join("oem/ipmi_password"), "wrong\n").unwrap();
    rig.ipmi(&["node-0", "power", "status"])
        .assert()
        .failure()
        .stdout(
            predicate::str::contains("127.0.0.5:")
                .and(predicate::str::contains("authentication failed")),
        );
}

/// The serial console through the binary, against racker-sim's BMC (which
/// models SOL): BMC output reaches stdout, stdin reaches the node, `~.`
/// detaches and deactivates SOL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sol_console_streams_both_ways_and_detaches() {
    use std::io::{Read, Write};
    let spec = racker_sim::NodeSpec::new([0x02, 0, 0, 0, 0, 0x01], "127.0.0.1:0".parse().unwrap());
    let rack = racker_sim::SimRack::start(vec![spec], "admin", racker_sim::Password::new("secret"))
        .await
        .unwrap();
    let node = rack.nodes()[0].clone();
    let mut events = node.subscribe();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ipmi_user"), "admin\n").unwrap();
    std::fs::write(dir.path().join("ipmi_password"), "secret\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        dir.path().join("ipmi_password"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let host = node.ipmi_addr().to_string();
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("racker"))
        .env_clear()
        .env("RACKER_OEM_DIR", dir.path())
        .env("RACKER_STATE_DIR", dir.path().join("state"))
        .args(["ipmi", "--host", &host])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    assert!(
        wait_for(&mut events, |e| matches!(
            e,
            racker_sim::Event::SolActivated
        ))
        .await,
        "SOL activated"
    );
    node.console_write(b"Flatcar Container Linux\r\nlocalhost login: ");
    stdin.write_all(b"core\n").unwrap();
    stdin.flush().unwrap();
    let mut typed = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), async {
        while !typed.windows(4).any(|w| w == b"core") {
            if let Some(racker_sim::Event::ConsoleInput(b)) = events.recv().await {
                typed.extend(b);
            }
        }
    })
    .await
    .expect("console input reached the node");
    stdin.write_all(b"~.\n").unwrap();
    drop(stdin);
    assert!(
        wait_for(&mut events, |e| matches!(
            e,
            racker_sim::Event::SolDeactivated
        ))
        .await,
        "SOL deactivated on detach"
    );
    let status = tokio::task::spawn_blocking(move || {
        let status = child.wait().unwrap();
        let mut out = String::new();
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        (status, out)
    })
    .await
    .unwrap();
    assert!(status.0.success());
    assert!(status.1.contains("localhost login: "), "{:?}", status.1);
}

/// Wait (at most 10 s) for a node event matching `want`.
async fn wait_for(
    events: &mut racker_sim::NodeEvents,
    want: fn(&racker_sim::Event) -> bool,
) -> bool {
    let found = async {
        loop {
            match events.recv().await {
                Some(e) if want(&e) => return true,
                Some(_) => {}
                None => return false,
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), found)
        .await
        .unwrap_or(false)
}

/// The credential rotation of docs/ipmi.md: new account on every BMC, the
/// password from a file (never an argument), switch the OEM files, check.
#[test]
fn credential_rotation_across_the_rack() {
    let Some(rig) = Rig::start("credential_rotation_across_the_rack") else {
        return;
    };
    rig.write_lease("00:11:22:33:44:41", "127.0.0.9");
    let pw_file = rig.dir.path().join("new-password");
    std::fs::write(&pw_file, "rotated-16bytes!\n").unwrap();
    let pw_arg = pw_file.to_str().unwrap();
    for step in [
        vec!["--all", "user", "set-name", "4", "racker2"],
        vec![
            "--all",
            "user",
            "set-password",
            "4",
            "--password-file",
            pw_arg,
        ],
        vec!["--all", "user", "priv", "4", "administrator"],
        vec!["--all", "user", "enable", "4"],
    ] {
        rig.ipmi(&step).assert().success();
    }
    rig.ipmi(&["node-0", "user", "list"])
        .assert()
        .success()
        .stdout(predicate::str::contains("racker2"));
    std::fs::write(rig.dir.path().join("oem/ipmi_user"), "racker2\n").unwrap();
    std::fs::copy(&pw_file, rig.dir.path().join("oem/ipmi_password")).unwrap();
    let out = stdout_of(&mut rig.ipmi(&["--all", "power", "status"]));
    assert_eq!(out.matches("Chassis Power is off").count(), 3, "{out}");
    // The old account is retired; the new one keeps working.
    rig.ipmi(&["--all", "user", "disable", "2"])
        .assert()
        .success();
    rig.ipmi(&["--all", "power", "status"]).assert().success();
    std::fs::write(rig.dir.path().join("oem/ipmi_user"), "admin\n").unwrap();
    std::fs::write(rig.dir.path().join("oem/ipmi_password"), "secret\n").unwrap();
    rig.ipmi(&["node-0", "power", "status"]).assert().failure();
}

#[test]
fn host_ranges_one_line_consolidation_and_exit_codes() {
    let Some(rig) = Rig::start("host_ranges_one_line_consolidation_and_exit_codes") else {
        return;
    };
    let out = stdout_of(&mut rig.ipmi(&["node-[0-1]", "power", "status", "--one-line"]));
    let mut lines: Vec<&str> = out.lines().collect();
    lines.sort();
    assert_eq!(lines, ["node-0: power off", "node-1: power off"], "{out}");
    rig.ipmi(&[
        "node-[0-1]",
        "power",
        "status",
        "--one-line",
        "--consolidate",
    ])
    .assert()
    .success()
    .stdout("node-[0-1]: power off\n");
    // Names and ranges in --exclude filter a list; MACs and names mix in NODES.
    rig.ipmi(&[
        "--exclude",
        "node-1",
        "node-[0-1],00:11:22:33:44:20",
        "power",
        "status",
        "--one-line",
    ])
    .assert()
    .success()
    .stdout("node-0: power off\n");
    // node-2's BMC does not answer at its planned address: exit code 1,
    // its failure consolidated apart from the others.
    let out = rig
        .ipmi(&[
            "node-[0-2]",
            "power",
            "status",
            "--one-line",
            "--consolidate",
            "--retries",
            "1",
            "--timeout",
            "0.6",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("node-[0-1]: power off"), "{text}");
    assert!(text.contains("node-2: error: "), "{text}");
    rig.ipmi(&["node-[0-9]", "power", "status"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("no node \"node-3\""));
    rig.ipmi(&["node-[1-0]", "power", "status"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("runs backwards"));
}

#[test]
fn sensors_sel_fru_mc_info_text_and_json() {
    let Some(rig) = Rig::start("sensors_sel_fru_mc_info_text_and_json") else {
        return;
    };
    // ipmi_sim applies sensor values a moment after its LAN answers.
    let mut v = serde_json::Value::Null;
    for _ in 0..50 {
        let out = stdout_of(&mut rig.ipmi(&["node-0", "sensors", "-o", "json"]));
        v = serde_json::from_str(&out).expect("json");
        if v["results"][0]["result"]["value"][0]["reading"].is_number() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(v["schema_version"], 1);
    assert_eq!(v["kind"], "ipmi");
    let r = &v["results"][0];
    assert_eq!(r["ok"], true);
    assert_eq!(r["node"], "node-0");
    assert_eq!(r["result"]["type"], "sensors");
    let sensors = r["result"]["value"].as_array().unwrap();
    assert_eq!(sensors.len(), 2, "{v}");
    assert_eq!(sensors[0]["name"], "CPU Temp");
    assert_eq!(sensors[0]["reading"], 45.0);
    assert_eq!(sensors[0]["unit"], "celsius");
    assert_eq!(sensors[0]["sensor_type"], "temperature");
    assert_eq!(sensors[0]["status"], "ok");
    assert_eq!(sensors[0]["thresholds"]["upper_critical"], 240.0);
    assert_eq!(sensors[1]["reading"], 5000.0);
    rig.ipmi(&["node-0", "sensors"])
        .assert()
        .success()
        .stdout(predicate::str::contains("CPU Temp").and(predicate::str::contains("45 degrees C")));
    rig.ipmi(&["node-0", "sel", "list"])
        .assert()
        .success()
        .stdout(
            predicate::str::contains("Temperature #0x30").and(predicate::str::contains("asserted")),
        );
    rig.ipmi(&["node-0", "sel", "info"])
        .assert()
        .success()
        .stdout(predicate::str::contains("Entries          : 1"));
    rig.ipmi(&["node-0", "fru"])
        .assert()
        .success()
        .stdout(predicate::str::contains("Product Name          : Sim Node"));
    rig.ipmi(&["node-0", "mc", "info"])
        .assert()
        .success()
        .stdout(predicate::str::contains("Firmware Revision         : 9.08"));
    rig.ipmi(&["node-0", "chassis", "capabilities"])
        .assert()
        .success()
        .stdout(predicate::str::contains("SDR Device Address"));
    rig.ipmi(&["node-0", "diag"]).assert().success().stdout(
        predicate::str::contains("Sensors              : 2 (2 ok")
            .and(predicate::str::contains("Last SEL entries     : 1")),
    );
    rig.ipmi(&["node-0", "sel", "clear"]).assert().success();
    rig.ipmi(&["node-0", "sel", "info"])
        .assert()
        .success()
        .stdout(predicate::str::contains("Entries          : 0"));
    // In-band access needs /dev/ipmi0: a clear error without it.
    if !std::path::Path::new("/dev/ipmi0").exists() {
        rig.racker()
            .args(["ipmi", "--local", "mc", "info"])
            .assert()
            .failure()
            .stdout(predicate::str::contains("/dev/ipmi0"));
    }
}

fn http_get(addr: &str, path: &str) -> Option<String> {
    use std::io::{Read as _, Write as _};
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    Some(body)
}

#[test]
fn exporter_serves_metrics_for_the_selected_nodes() {
    let Some(rig) = Rig::start("exporter_serves_metrics_for_the_selected_nodes") else {
        return;
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let mut cmd = StdCommand::new(assert_cmd::cargo::cargo_bin("racker"));
    cmd.env_clear()
        .env("RACKER_OEM_DIR", rig.dir.path().join("oem"))
        .env("RACKER_STATE_DIR", rig.state_dir())
        .env("RACKER_SYS_CLASS_NET", rig.dir.path().join("net"))
        .args([
            "ipmi",
            "--subnet-prefix",
            "127.0.0",
            "--port",
            &rig.port.to_string(),
        ])
        .args(["--timeout", "1", "--retries", "1", "node-[0-1]", "exporter"])
        .args(["--listen", &listen, "--interval", "1", "--bmc-timeout", "3"])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = cmd.spawn().unwrap();
    let mut text = String::new();
    for _ in 0..100 {
        std::thread::sleep(Duration::from_millis(100));
        if let Some(body) = http_get(&listen, "/metrics")
            && body.contains("ipmi_temperature_celsius{node=\"node-0\"")
        {
            text = body;
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
    assert!(
        text.contains("ipmi_up{node=\"node-0\",mac=\"00:11:22:33:44:11\",collector=\"ipmi\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("ipmi_temperature_celsius{node=\"node-0\",mac=\"00:11:22:33:44:11\",id=\"1\",name=\"CPU Temp\"} 45"),
        "{text}"
    );
    assert!(
        text.contains("ipmi_chassis_power_state{node=\"node-1\""),
        "{text}"
    );
    assert!(
        !text.contains("node=\"node-2\""),
        "only the selected nodes: {text}"
    );
}

/// One sample of a Prometheus text exposition: metric, labels, value.
type Sample = (String, std::collections::BTreeMap<String, String>, f64);

/// The samples of `text` (label values without escapes, enough here).
fn samples(text: &str) -> Vec<Sample> {
    let line = regex::Regex::new(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$").unwrap();
    let label = regex::Regex::new(r#"([a-zA-Z_][a-zA-Z0-9_]*)="([^"]*)""#).unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let c = line.captures(l)?;
            let labels = c
                .get(2)
                .map(|m| {
                    label
                        .captures_iter(m.as_str())
                        .map(|l| (l[1].to_owned(), l[2].to_owned()))
                        .collect()
                })
                .unwrap_or_default();
            Some((c[1].to_owned(), labels, c[3].parse().ok()?))
        })
        .collect()
}

/// `curl -s URL` (the body), or None when nothing answers.
fn curl(url: &str) -> Option<String> {
    let out = StdCommand::new("curl")
        .args(["-sf", "--max-time", "30", url])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Kills and reaps a child process on drop.
struct Reap(Child);

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = racker_testsupport::interrupt(&mut self.0, Duration::from_secs(5));
    }
}

/// The real `ipmi_exporter` (Debian's prometheus-ipmi-exporter, FreeIPMI
/// inside) and `racker ipmi --all exporter`, scraped against the same
/// simulated BMCs (`racker sim up`, one node with a `fan-fail` fault),
/// agree: `ipmi_up` 1, the same sensors with the same ids, names and
/// values for temperature, fan, voltage and power, and the same sensor
/// states.
#[test]
fn exporter_agrees_with_prometheus_ipmi_exporter() {
    let test = "exporter_agrees_with_prometheus_ipmi_exporter";
    for tool in ["prometheus-ipmi-exporter", "ipmi-sensors", "curl"] {
        if racker_testsupport::require_tool(test, tool).is_none() {
            return;
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let racker = || {
        let mut cmd = StdCommand::new(assert_cmd::cargo::cargo_bin("racker"));
        cmd.env_clear()
            .env("RACKER_OEM_DIR", dir.path().join("oem"))
            .env("RACKER_STATE_DIR", dir.path().join("state"))
            .env("RACKER_SYS_CLASS_NET", dir.path().join("net"))
            .stdin(Stdio::null());
        cmd
    };
    // Three rows: the management node and two nodes; node-1's BMC
    // (02:52:4b:01:00:02) has a failed fan.
    let (sim, _) = racker_testsupport::spawn_until_line(
        racker()
            .args(["sim", "up", "--count", "3", "--bind", "127.95.0"])
            .args(["--ipmi-port", "0", "--fault", "02:52:4b:01:00:02=fan-fail"]),
        "press Ctrl-C",
    );
    let _sim = Reap(sim);
    let net = dir.path().join("net/eth1");
    std::fs::create_dir_all(&net).unwrap();
    std::fs::write(net.join("address"), "02:52:4b:02:00:00\n").unwrap();
    let on = racker()
        .args(["ipmi", "--all", "power", "on"])
        .output()
        .unwrap();
    assert!(on.status.success(), "{on:?}");
    // The BMCs' addresses, from the simulator's table.
    let table: serde_json::Value = serde_json::from_slice(
        &racker()
            .args(["sim", "status", "-o", "json"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let bmcs: Vec<(String, String)> = table["nodes"]
        .as_array()
        .unwrap()
        .iter()
        // The management node's BMC is simulated too; it is not a node.
        .filter(|n| n["mac"] != "02:52:4b:00:00:00")
        .map(|n| {
            (
                n["bmc_mac"].as_str().unwrap().to_owned(),
                format!("{}:{}", n["bmc_ip"].as_str().unwrap(), n["bmc_port"]),
            )
        })
        .collect();
    assert_eq!(bmcs.len(), 2, "{table}");

    let free_port = || racker_testsupport::free_tcp().port();
    // racker's exporter.
    let racker_listen = format!("127.0.0.1:{}", free_port());
    let exporter = racker()
        .args(["ipmi", "--all", "exporter", "--listen", &racker_listen])
        .args(["--interval", "1s"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _exporter = Reap(exporter);
    // The real one.
    let password = std::fs::read_to_string(dir.path().join("oem/ipmi_password")).unwrap();
    let config = dir.path().join("ipmi.yml");
    std::fs::write(
        &config,
        format!(
            "modules:\n  default:\n    user: \"USER\"\n    pass: \"{}\"\n    driver: \"LAN_2_0\"\n    \
             privilege: \"user\"\n    timeout: 10000\n    collectors:\n    - bmc\n    - ipmi\n    \
             - chassis\n    - sel\n",
            password.trim()
        ),
    )
    .unwrap();
    let real_port = free_port();
    let real = StdCommand::new("prometheus-ipmi-exporter")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{real_port}"))
        .arg("--freeipmi.path=/usr/sbin")
        .env("HOME", dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _real = Reap(real);

    // racker's view: both BMCs up and node-1's fan already failed.
    let mut ours = Vec::new();
    for _ in 0..100 {
        std::thread::sleep(Duration::from_millis(200));
        if let Some(text) = curl(&format!("http://{racker_listen}/metrics")) {
            ours = samples(&text);
            let up = ours
                .iter()
                .filter(|(m, l, v)| m == "ipmi_up" && l["collector"] == "ipmi" && *v == 1.0)
                .count();
            let failed_fan = ours.iter().any(|(m, l, v)| {
                m == "ipmi_fan_speed_state" && l["mac"] == "02:52:4b:01:00:02" && *v == 2.0
            });
            let powered = ours
                .iter()
                .filter(|(m, _, v)| m == "ipmi_chassis_power_state" && *v == 1.0)
                .count();
            if up == 2 && failed_fan && powered == 2 {
                break;
            }
        }
    }
    let families = [
        "ipmi_temperature_celsius",
        "ipmi_fan_speed_rpm",
        "ipmi_voltage_volts",
        "ipmi_power_watts",
    ];
    let mut compared = 0;
    for (bmc_mac, addr) in &bmcs {
        let url = format!("http://127.0.0.1:{real_port}/ipmi?module=default&target={addr}");
        let mut theirs = Vec::new();
        for _ in 0..50 {
            if let Some(text) = curl(&url) {
                theirs = samples(&text);
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        // ipmi_up 1 for every collector of both.
        for collector in ["ipmi", "bmc", "chassis", "sel"] {
            let up = |s: &[Sample], mine: bool| {
                s.iter()
                    .find(|(m, l, _)| {
                        m == "ipmi_up"
                            && l.get("collector").map(String::as_str) == Some(collector)
                            && (!mine || l["mac"] == *bmc_mac)
                    })
                    .map(|s| s.2)
            };
            assert_eq!(
                up(&theirs, false),
                Some(1.0),
                "ipmi_exporter {collector}: {theirs:?}"
            );
            assert_eq!(up(&ours, true), Some(1.0), "racker {collector}: {ours:?}");
        }
        // Our samples of this BMC with ipmi_exporter's labels (no node/mac).
        let mine: Vec<Sample> = ours
            .iter()
            .filter(|(_, l, _)| l.get("mac") == Some(bmc_mac))
            .map(|(m, l, v)| {
                let mut l = l.clone();
                l.remove("node");
                l.remove("mac");
                (m.clone(), l, *v)
            })
            .collect();
        let pick = |s: &[Sample], family: &str| -> Vec<(String, String, f64)> {
            let mut v: Vec<_> = s
                .iter()
                .filter(|(m, _, _)| m == family)
                .map(|(_, l, v)| {
                    let labels: Vec<String> = l.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    (
                        labels.join(","),
                        l.get("name").cloned().unwrap_or_default(),
                        *v,
                    )
                })
                .collect();
            v.sort_by(|a, b| a.0.cmp(&b.0));
            v
        };
        for family in families {
            let (a, b) = (pick(&mine, family), pick(&theirs, family));
            assert!(!b.is_empty(), "{family}: ipmi_exporter has none");
            let keys =
                |v: &[(String, String, f64)]| v.iter().map(|x| x.0.clone()).collect::<Vec<_>>();
            assert_eq!(keys(&a), keys(&b), "{bmc_mac} {family}: sensor sets differ");
            for (x, y) in a.iter().zip(&b) {
                // FreeIPMI prints readings with two decimals.
                assert!(
                    (x.2 - y.2).abs() <= 0.005,
                    "{bmc_mac} {family} {}: racker {} vs ipmi_exporter {}",
                    x.0,
                    x.2,
                    y.2
                );
                compared += 1;
            }
        }
        // Chassis power, SEL and the BMC's identity.
        let one = |s: &[Sample], metric: &str| {
            s.iter()
                .find(|(m, _, _)| m == metric)
                .unwrap_or_else(|| panic!("{bmc_mac}: no {metric} in {s:?}"))
                .clone()
        };
        for metric in [
            "ipmi_chassis_power_state",
            "ipmi_sel_logs_count",
            "ipmi_sel_free_space_bytes",
        ] {
            assert_eq!(
                one(&mine, metric).2,
                one(&theirs, metric).2,
                "{bmc_mac} {metric}"
            );
        }
        let (a, b) = (one(&mine, "ipmi_bmc_info"), one(&theirs, "ipmi_bmc_info"));
        for label in ["firmware_revision", "system_firmware_version"] {
            assert_eq!(a.1[label], b.1[label], "{bmc_mac} ipmi_bmc_info {label}");
        }
        // Sensor states: every *_state family but the chassis power.
        let states = |s: &[Sample]| -> Vec<(String, String, f64)> {
            let mut v: Vec<_> = s
                .iter()
                .filter(|(m, _, _)| m.ends_with("_state") && m != "ipmi_chassis_power_state")
                .map(|(m, l, v)| {
                    let labels: Vec<String> = l.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    (m.clone(), labels.join(","), *v)
                })
                .collect();
            v.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
            v
        };
        assert_eq!(
            states(&mine),
            states(&theirs),
            "{bmc_mac}: sensor states differ"
        );
        let fan1 = states(&theirs)
            .into_iter()
            .find(|(m, l, _)| m == "ipmi_fan_speed_state" && l.contains("name=FAN1"))
            .unwrap();
        let failed = bmc_mac == "02:52:4b:01:00:02";
        assert_eq!(fan1.2, if failed { 2.0 } else { 0.0 }, "{bmc_mac}");
    }
    assert!(compared >= 16, "{compared} values compared");
}
