//! Spawning OpenIPMI's `ipmi_sim` BMC simulator for tests.

use std::net::{Ipv4Addr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use racker_ipmi::BmcAddress;

pub(crate) const USER: &str = "admin";
pub(crate) const PASSWORD: &str = "secret";

/// One `ipmi_sim` process serving `n` BMCs on 127.0.0.1 (consecutive
/// ports), each with its own chassis state directory.
pub(crate) struct Sim {
    child: Child,
    pub(crate) dir: tempfile::TempDir,
    pub(crate) bmcs: Vec<BmcAddress>,
    config: PathBuf,
    emu: PathBuf,
}

/// The chassis_control program: `DIR get power boot` / `DIR set power 1 ...`,
/// recording state in DIR/power and DIR/boot.
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
      reset) echo "$2" >> "$dir/resets";;
    esac
    shift 2
  done;;
esac
"#;

fn free_udp_ports(n: usize) -> Vec<u16> {
    // Hold all sockets until every port is chosen so they differ.
    let socks: Vec<UdpSocket> = (0..n)
        .map(|_| UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind"))
        .collect();
    socks
        .iter()
        .map(|s| s.local_addr().expect("addr").port())
        .collect()
}

impl Sim {
    /// Start one BMC; `None` (after printing why) when ipmi_sim is missing.
    pub(crate) fn start(test: &str) -> Option<Sim> {
        Sim::start_many(test, 1)
    }

    /// Start `n` BMCs in one ipmi_sim process.
    pub(crate) fn start_many(test: &str, n: usize) -> Option<Sim> {
        Sim::start_many_with(test, n, |_| String::new())
    }

    /// Start `n` BMCs; `extra(mc)` adds emulator commands (SDRs, sensors,
    /// SEL, FRU) for controller `mc` after it is enabled.
    pub(crate) fn start_many_with(
        test: &str,
        n: usize,
        extra: impl Fn(usize) -> String,
    ) -> Option<Sim> {
        let bin = racker_testsupport::require_tool(test, "ipmi_sim")?;
        let dir = tempfile::tempdir().expect("tempdir");
        let script = dir.path().join("chassis.sh");
        std::fs::write(&script, CHASSIS_SCRIPT).expect("write script");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let ports = free_udp_ports(n);
        let mut conf = String::from("name \"racker-test\"\n");
        let mut emu = String::from("mc_setbmc 0x20\n");
        let mut bmcs = Vec::new();
        for (i, port) in ports.iter().enumerate() {
            let mc = 0x20 + 2 * i;
            let state = dir.path().join(format!("bmc{i}"));
            std::fs::create_dir(&state).expect("state dir");
            conf.push_str(&format!(
                "set_working_mc {mc:#x}\n  startlan 1\n    addr 127.0.0.1 {port}\n    priv_limit admin\n    \
                 allowed_auths_admin none md5 straight\n    allowed_auths_user none md5 straight\n    \
                 allowed_auths_operator none md5 straight\n    allowed_auths_callback none md5 straight\n    \
                 guid a123456789abcdefa123456789ab{i:04x}\n  endlan\n  \
                 chassis_control \"{} {}\"\n  \
                 user 1 true \"\" \"test\" user 10 none md5 straight\n  \
                 user 2 true \"{USER}\" \"{PASSWORD}\" admin 10 none md5 straight\n  \
                 user 3 true \"limited\" \"limitpw\" admin 2 none md5 straight\n",
                script.display(),
                state.display()
            ));
            emu.push_str(&format!(
                "mc_add {mc:#x} 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02\nmc_enable {mc:#x}\n"
            ));
            emu.push_str(&extra(mc));
            bmcs.push(BmcAddress::new("127.0.0.1", *port));
        }
        let config = dir.path().join("lan.conf");
        let emu_path = dir.path().join("bmc.emu");
        std::fs::write(&config, conf).expect("write lan.conf");
        std::fs::write(&emu_path, emu).expect("write emu");
        let child = spawn(&bin, &config, &emu_path, dir.path());
        let sim = Sim {
            child,
            dir,
            bmcs,
            config,
            emu: emu_path,
        };
        sim.wait_ready();
        Some(sim)
    }

    pub(crate) fn bmc(&self) -> &BmcAddress {
        &self.bmcs[0]
    }

    pub(crate) fn state(&self, i: usize, what: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("bmc{i}")).join(what))
            .unwrap_or_default()
            .trim()
            .to_string()
    }

    /// Kill and start ipmi_sim again on the same ports (drops all sessions).
    pub(crate) fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let bin = racker_testsupport::find_tool("ipmi_sim").expect("ipmi_sim");
        self.child = spawn(&bin, &self.config, &self.emu, self.dir.path());
        self.wait_ready();
    }

    /// Wait until every BMC answers a pre-session Get Channel Auth Caps.
    fn wait_ready(&self) {
        // RMCP + IPMI 1.5 no-auth session + Get Channel Auth Caps (8E 04).
        let pkt: [u8; 23] = [
            0x06, 0x00, 0xff, 0x07, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0x09, 0x20, 0x18, 0xc8, 0x81,
            0x04, 0x38, 0x8e, 0x04, 0xb1,
        ];
        let sock = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .expect("timeout");
        for bmc in &self.bmcs {
            let mut ok = false;
            for _ in 0..100 {
                let _ = sock.send_to(&pkt, (bmc.host(), bmc.port()));
                let mut buf = [0u8; 512];
                if sock.recv_from(&mut buf).is_ok() {
                    ok = true;
                    break;
                }
            }
            assert!(ok, "ipmi_sim did not answer on {bmc} within 10 s");
        }
    }
}

fn spawn(bin: &Path, config: &Path, emu: &Path, dir: &Path) -> Child {
    Command::new(bin)
        .arg("-c")
        .arg(config)
        .arg("-f")
        .arg(emu)
        .arg("-n")
        .arg("-s")
        .arg(dir.join("persist"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn ipmi_sim")
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
