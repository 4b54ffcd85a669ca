//! A real virtual machine PXE-boots through `racker netboot serve`.
//!
//! QEMU (software emulation when /dev/kvm is unusable) runs in a network
//! namespace on a tap device whose other end is the management node's PXE
//! interface. Its iPXE ROM gets its lease and boot script from racker's
//! DHCP, iPXE loads Debian's cloud kernel and an initramfs built here (busybox
//! plus the virtio network modules) from racker's HTTP server, and the
//! initramfs plays the installer: it leases its address again with busybox
//! udhcpc, fetches `undionly.kpxe` from racker's TFTP server and its Ignition
//! config over HTTP, POSTs `/report?stage=installed`, prints what it saw on
//! the serial console and powers off.
//!
//! Needs root, `qemu-system-x86_64`, `busybox` (static) and the kernel that
//! `.ci/test-kernel` unpacks (directory: `RACKER_TEST_KERNEL_DIR`, default
//! `/var/cache/racker/test-kernel`).

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::cargo::cargo_bin;
use racker_testsupport::vm::{
    Cpio, Netns, Reaped, accelerator, find_kernel, has_interpreter, kernel_dir, load_order, run,
};

/// Management node, the VM and a node that never boots (netboot test).
const NODES_CSV: &str = "\
Primary MAC address, BMC MAC address, Secondary MAC address, Node Type, Comments
02:11:22:33:44:00, 02:11:22:33:44:01, 02:11:22:33:44:30, red, mgmt node
02:11:22:33:44:20, 02:11:22:33:44:21, 02:11:22:33:44:50, purple, worker
02:11:22:33:44:10, 02:11:22:33:44:11, 02:11:22:33:44:40, red, controller
";
/// Management node and the VM (bootstrap test).
const ONE_NODE_CSV: &str = "\
Primary MAC address, BMC MAC address, Secondary MAC address, Node Type, Comments
02:11:22:33:44:00, 02:11:22:33:44:01, 02:11:22:33:44:30, red, mgmt node
02:11:22:33:44:20, 02:11:22:33:44:21, 02:11:22:33:44:50, purple, worker
";
const MGMT_SECONDARY: &str = "02:11:22:33:44:30";
const MGMT_IP: &str = "172.24.213.1";
const VM_MAC: &str = "02:11:22:33:44:20";
/// Kernel modules the initramfs loads (with their dependencies).
const MODULES: &[&str] = &["virtio_net", "virtio_blk", "virtio_pci"];
/// Upper bound for the whole boot under software emulation.
const VM_DEADLINE: Duration = Duration::from_secs(300);

/// The VM's userland. PXE-booted (the kernel command line carries racker's
/// `ignition.config.url`) it plays the Flatcar installer: lease, fetch over
/// TFTP and HTTP, write the "installed" mark to its disk when it has one,
/// report `installed`, then reboot (poweroff without a disk). Booted "from
/// disk" (`racker.boot=disk`) it plays the installed OS and does what the
/// rendered `racker-report-up.service` does on Flatcar: report `up`.
const INIT: &str = r#"#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
while read -r m; do
  insmod "/modules/$m.ko" || echo "racker-vm: insmod $m failed"
done < /modules.order
ip link set lo up
i=0
while [ ! -e /sys/class/net/eth0 ] && [ $i -lt 50 ]; do sleep 0.2; i=$((i+1)); done
ip link set eth0 up
mac=$(cat /sys/class/net/eth0/address)
if grep -q racker.boot=disk /proc/cmdline; then
  read -r mark base token rest < /dev/vda
  echo "racker-vm: booted from disk ($mark) mac=$mac base=$base"
  udhcpc -i eth0 -f -q -n -t 10 -T 2 -s /udhcpc.sh
  echo "racker-vm: ip=$(cat /tmp/ip)"
  if wget -q -O /tmp/reply --post-data "" "$base/report?mac=$mac&stage=up&token=$token"; then
    echo "racker-vm: reported: $(cat /tmp/reply)"
  fi
  echo "racker-vm: os up"
  while :; do sleep 3600; done
fi
url=$(sed -n 's/.*ignition.config.url=\([^ ]*\).*/\1/p' /proc/cmdline)
base=${url%%/ignition*}
server=${base#http://}
server=${server%%:*}
echo "racker-vm: installer started mac=$mac base=$base"
udhcpc -i eth0 -f -q -n -t 10 -T 2 -s /udhcpc.sh
echo "racker-vm: ip=$(cat /tmp/ip)"
if tftp -g -r undionly.kpxe -l /tmp/undionly.kpxe "$server"; then
  echo "racker-vm: tftp-sha256=$(sha256sum /tmp/undionly.kpxe | cut -d' ' -f1)"
fi
if wget -q -O /tmp/ignition "$url"; then
  echo "racker-vm: ignition-sha256=$(sha256sum /tmp/ignition | cut -d' ' -f1)"
  echo "racker-vm: ignition-head=$(tr -d " \n" < /tmp/ignition | head -c 32)"
fi
# The node's install-report token, as racker rendered it into its Ignition
# (racker-report-up.service and the installer script send it).
token=$(sed -nE 's/.*token(=|%3[dD]|%253[dD])([0-9a-f]{32}).*/\2/p' /tmp/ignition | head -n 1)
if [ -b /dev/vda ]; then
  echo "RACKER-INSTALLED $base $token" | dd of=/dev/vda bs=512 count=1 conv=sync 2>/dev/null && sync
  echo "racker-vm: disk written"
fi
if wget -q -O /tmp/reply --post-data "" "$base/report?mac=$mac&stage=installed&token=$token"; then
  echo "racker-vm: reported: $(cat /tmp/reply)"
fi
echo "racker-vm: done"
if [ -b /dev/vda ]; then reboot -f; else poweroff -f; fi
"#;

const UDHCPC_SCRIPT: &str = r#"#!/bin/sh
case "$1" in
  bound|renew)
    ip addr add "$ip/$mask" dev "$interface"
    echo "$ip" > /tmp/ip
    ;;
esac
"#;

fn initramfs(busybox: &Path, modules: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut c = Cpio::default();
    for d in ["bin", "dev", "proc", "sys", "tmp", "modules"] {
        c.dir(d);
    }
    // The kernel opens /dev/console for init before devtmpfs is mounted.
    c.entry("dev/console", 0o020600, &[], (5, 1));
    c.file("bin/busybox", 0o755, &fs::read(busybox).unwrap());
    c.file("init", 0o755, INIT.as_bytes());
    c.file("udhcpc.sh", 0o755, UDHCPC_SCRIPT.as_bytes());
    let mut order = String::new();
    for (name, bytes) in modules {
        c.file(&format!("modules/{name}.ko"), 0o644, bytes);
        order.push_str(name);
        order.push('\n');
    }
    c.file("modules.order", 0o644, order.as_bytes());
    c.finish()
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Everything the test needs, or `None` after a printed skip reason.
struct Peers {
    qemu: PathBuf,
    busybox: PathBuf,
    vmlinuz: PathBuf,
    modules: PathBuf,
}

fn peers(test: &str) -> Option<Peers> {
    if !racker_testsupport::require_root(test) {
        return None;
    }
    racker_testsupport::require_tool(test, "ip")?;
    let qemu = racker_testsupport::require_tool(test, "qemu-system-x86_64")?;
    let busybox = racker_testsupport::require_tool(test, "busybox")?;
    // Debian's busybox-static is linked statically; a dynamic busybox would
    // not run in an initramfs without its libraries.
    let bytes = fs::read(&busybox).ok()?;
    if has_interpreter(&bytes) {
        racker_testsupport::skip_or_fail(test, "busybox is not static (install busybox-static)");
        return None;
    }
    let Some((vmlinuz, modules)) = find_kernel(&kernel_dir()) else {
        racker_testsupport::skip_or_fail(
            test,
            &format!(
                "no test kernel in {} (run .ci/test-kernel)",
                kernel_dir().display()
            ),
        );
        return None;
    };
    Some(Peers {
        qemu,
        busybox,
        vmlinuz,
        modules,
    })
}

/// One test's world: rack metadata, state directory with the boot assets,
/// the TFTP root, and a network namespace whose tap `pxe0` is the management
/// node's PXE interface.
struct Lab {
    work: tempfile::TempDir,
    oem: PathBuf,
    state: PathBuf,
    boot: PathBuf,
    undionly: Vec<u8>,
    vmlinuz: PathBuf,
    initramfs: PathBuf,
    ns: Netns,
}

impl Lab {
    fn new(peers: &Peers, nodes_csv: &str) -> Lab {
        let work = tempfile::tempdir().unwrap();
        let oem = work.path().join("oem");
        let state = work.path().join("state");
        fs::create_dir_all(&oem).unwrap();
        fs::write(oem.join("nodes.csv"), nodes_csv).unwrap();
        fs::write(oem.join("ipmi_user"), "admin\n").unwrap();
        fs::write(oem.join("ipmi_password"), "secret\n").unwrap();
        // The "Flatcar" release the netboot server hands out: Debian's
        // kernel and our installer initramfs.
        let assets = state.join("assets/flatcar/current");
        fs::create_dir_all(&assets).unwrap();
        let vmlinuz = assets.join("flatcar_production_pxe.vmlinuz");
        fs::copy(&peers.vmlinuz, &vmlinuz).unwrap();
        let initramfs = assets.join("flatcar_production_pxe_image.cpio.gz");
        fs::write(
            &initramfs,
            self::initramfs(&peers.busybox, &load_order(&peers.modules, MODULES)),
        )
        .unwrap();
        // What flatcar-install would fetch (this initramfs does not; the
        // bootstrap's preflight checks they are there).
        for name in [
            "flatcar_production_image.bin.bz2",
            "flatcar_production_image.bin.bz2.sig",
        ] {
            fs::write(assets.join(name), b"stand-in").unwrap();
        }
        // The TFTP root: the iPXE loader that real PXE firmware would fetch.
        let boot = work.path().join("boot-files");
        fs::create_dir_all(&boot).unwrap();
        let undionly = fs::read("/usr/lib/ipxe/undionly.kpxe")
            .unwrap_or_else(|_| b"stand-in for undionly.kpxe".repeat(4000));
        fs::write(boot.join("undionly.kpxe"), &undionly).unwrap();
        fs::write(boot.join("ipxe.efi"), b"not used by this test").unwrap();

        let ns = Netns(format!("rkvm{}{}", std::process::id(), nodes_csv.len()));
        let ip = |args: &[&str]| {
            let mut all = vec!["ip", "-n", &ns.0];
            all.extend_from_slice(args);
            run(&all);
        };
        run(&["ip", "netns", "add", &ns.0]);
        ip(&["link", "set", "lo", "up"]);
        ip(&["tuntap", "add", "dev", "pxe0", "mode", "tap"]);
        ip(&["link", "set", "pxe0", "address", MGMT_SECONDARY]);
        // Down and without an address: racker brings it up and adds the
        // management node's internal address itself.
        Lab {
            work,
            oem,
            state,
            boot,
            undionly,
            vmlinuz,
            initramfs,
            ns,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.work.path().join(name)
    }

    /// `racker <args>` inside the namespace, with this lab's directories.
    fn racker(&self, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ns.0])
            .arg(cargo_bin("racker"))
            .arg("--oem-dir")
            .arg(&self.oem)
            .arg("--state-dir")
            .arg(&self.state)
            .args(["--sys-class-net", "/sys/class/net"])
            .args(args)
            .arg("--boot-files")
            .arg(&self.boot)
            .env("RUST_LOG", "info")
            .env_remove("RACKER_EXCLUDE")
            .stdin(Stdio::null());
        c
    }

    /// The reserved address of VM_MAC according to `racker plan`.
    fn lease_of_vm(&self) -> Option<String> {
        let leases: serde_json::Value =
            serde_json::from_slice(&fs::read(self.state.join("dhcp-leases.json")).ok()?).ok()?;
        let text = leases.to_string();
        text.contains(VM_MAC).then_some(text)
    }

    fn tail(&self, name: &str, lines: usize) -> String {
        let text = fs::read_to_string(self.path(name)).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    fn diag(&self) -> String {
        [
            "qemu.log",
            "serial.log",
            "machine.log",
            "events",
            "server.log",
        ]
        .iter()
        .map(|f| format!("--- {f} ---\n{}\n", self.tail(f, 60)))
        .collect()
    }
}

/// `(ip, bmc_ip)` the plan gives `mac` (`racker plan --output json`, run
/// in the namespace whose tap carries the management node's MAC).
fn planned(lab: &Lab, mac: &str) -> (String, String) {
    let out = Command::new("ip")
        .args(["netns", "exec", &lab.ns.0])
        .arg(cargo_bin("racker"))
        .arg("--oem-dir")
        .arg(&lab.oem)
        .args([
            "--sys-class-net",
            "/sys/class/net",
            "plan",
            "--output",
            "json",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let nodes = plan["nodes"].as_array().expect("plan nodes");
    let node = nodes
        .iter()
        .find(|n| n["mac"] == mac)
        .unwrap_or_else(|| panic!("{mac} not in {plan}"));
    let field = |k: &str| node[k].as_str().unwrap().to_owned();
    (field("ip"), field("bmc_ip"))
}

/// Copy a child's stderr lines into a file until it closes.
fn log_lines(lines: impl Iterator<Item = std::io::Result<String>> + Send + 'static, path: PathBuf) {
    std::thread::spawn(move || {
        use std::io::Write as _;
        let mut log = fs::File::create(path).unwrap();
        for line in lines.map_while(Result::ok) {
            let _ = writeln!(log, "{line}");
        }
    });
}

fn wait_until(child: &mut Child, deadline: Duration) -> Option<std::process::ExitStatus> {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if started.elapsed() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `racker netboot serve` alone; QEMU started by the test.
#[test]
fn a_vm_pxe_boots_through_racker_and_reports_installed() {
    let test = "a_vm_pxe_boots_through_racker_and_reports_installed";
    let Some(peers) = peers(test) else { return };
    let lab = Lab::new(&peers, NODES_CSV);
    let (vm_ip, _) = planned(&lab, VM_MAC);
    // Its install-time Ignition config.
    // It carries the VM's install-report token, as racker's rendered
    // Ignition does (the VM's init finds it there).
    let token = racker_netboot::report::ReportKey::load_or_create(&lab.state)
        .unwrap()
        .token(VM_MAC.parse().unwrap());
    let ignition = format!(r#"{{"ignition":{{"version":"3.3.0"}},"racker":"&token={token}"}}"#);
    let ignition = ignition.as_bytes();
    let ignition_dir = lab.state.join("ignition").join(VM_MAC);
    fs::create_dir_all(&ignition_dir).unwrap();
    fs::write(ignition_dir.join("install.ign"), ignition).unwrap();

    let mut server = lab
        // QEMU's serial console is its first port.
        .racker(&[
            "netboot",
            "serve",
            "--kernel-console",
            "console=ttyS0,115200n8",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(server.stderr.take().unwrap()).lines();
    let _server = Reaped(server);
    let ready = lines.find_map(|l| {
        l.ok()
            .filter(|l| l.starts_with("racker netboot: DHCP listening"))
    });
    assert!(ready.is_some(), "racker netboot serve did not start");
    log_lines(lines, lab.path("server.log"));

    let accel = accelerator();
    let mut vm = Command::new("ip");
    vm.args(["netns", "exec", &lab.ns.0])
        .arg(&peers.qemu)
        .args(["-accel", &accel, "-m", "512", "-smp", "1"])
        .args(["-display", "none", "-monitor", "none", "-no-reboot"])
        .arg("-serial")
        .arg(format!("file:{}", lab.path("serial.log").display()))
        .args(["-boot", "n"])
        .args(["-netdev", "tap,id=n0,ifname=pxe0,script=no,downscript=no"])
        .args(["-device", &format!("virtio-net-pci,netdev=n0,mac={VM_MAC}")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(lab.path("qemu.log")).unwrap());
    let started = Instant::now();
    let mut vm = Reaped(vm.spawn().unwrap());
    let exited = wait_until(&mut vm.0, VM_DEADLINE);
    assert!(
        exited.is_some(),
        "the VM did not power off within {VM_DEADLINE:?}\n{}",
        lab.diag()
    );
    let console = fs::read_to_string(lab.path("serial.log")).unwrap_or_default();
    eprintln!(
        "{test}: VM ({accel}) booted, reported and powered off in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    for line in console.lines().filter(|l| l.contains("racker-vm:")) {
        eprintln!("  {line}");
    }
    // The installer in the VM saw the reserved address, the TFTP file and
    // its Ignition config, and its report was recorded.
    for expected in [
        format!("racker-vm: ip={vm_ip}"),
        format!("racker-vm: tftp-sha256={}", sha256_hex(&lab.undionly)),
        format!("racker-vm: ignition-sha256={}", sha256_hex(ignition)),
        format!("racker-vm: reported: recorded {VM_MAC} installed"),
    ] {
        assert!(console.contains(&expected), "{expected}\n{}", lab.diag());
    }
    let report: serde_json::Value = serde_json::from_slice(
        &fs::read(lab.state.join(format!("netboot/reports/{VM_MAC}.json"))).unwrap(),
    )
    .unwrap();
    assert_eq!(report["stage"], "installed");
    // The lease the VM's firmware and installer got is the reserved one.
    let leases = lab.lease_of_vm().expect("no lease for the VM");
    assert!(leases.contains(&vm_ip), "{leases}");
}

/// The machine behind the BMC: boots QEMU again whenever the guest reboots
/// (QEMU runs with -no-reboot), from the network until the installer has
/// written its mark to the disk, then "from disk" (the installed OS is
/// played by the same kernel and initramfs, loaded directly by QEMU). A real
/// machine would PXE first when the boot flag says so; racker then tells an
/// installed node to boot from its disk, so the outcome is the same.
const MACHINE: &str = r#"#!/bin/sh
dir=$1
. "$dir/machine.env"
n=0
while [ $n -lt 6 ]; do
  n=$((n+1))
  common="-accel $ACCEL -m 512 -smp 1 -display none -monitor none -no-reboot
    -chardev file,id=s0,path=$dir/serial.log,append=on -serial chardev:s0
    -drive file=$dir/disk.img,format=raw,if=virtio
    -netdev tap,id=n0,ifname=pxe0,script=no,downscript=no
    -device virtio-net-pci,netdev=n0,mac=$MAC"
  if head -c 16 "$dir/disk.img" | grep -q RACKER-INSTALLED; then
    echo "machine: boot $n from disk"
    $QEMU $common -kernel "$KERNEL" -initrd "$INITRD" -append "console=ttyS0 racker.boot=disk"
  else
    echo "machine: boot $n from the network"
    $QEMU $common -boot n
  fi
  echo "machine: qemu exited with $?"
done
"#;

/// Kills the machine's process group on drop.
struct Machine(PathBuf);

impl Drop for Machine {
    fn drop(&mut self) {
        if let Ok(pid) = fs::read_to_string(self.0.join("machine.pid")) {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", pid.trim())])
                .status();
        }
    }
}

/// `racker bootstrap` drives a VM through OpenIPMI's ipmi_sim: the BMC
/// stage reaches it, the PXE stage powers the VM on through it, the VM
/// PXE-boots the installer from bootstrap's own DHCP/TFTP/HTTP, reports
/// `installed`, reboots from its disk and reports `up`, which bootstrap
/// waits for.
#[test]
fn bootstrap_installs_a_vm_behind_ipmi_sim() {
    let test = "bootstrap_installs_a_vm_behind_ipmi_sim";
    let Some(peers) = peers(test) else { return };
    let Some(ipmi_sim) = racker_testsupport::require_tool(test, "ipmi_sim") else {
        return;
    };
    let lab = Lab::new(&peers, ONE_NODE_CSV);
    let (vm_ip, bmc_ip) = planned(&lab, VM_MAC);

    // The BMC: ipmi_sim on the planned BMC address inside the namespace.
    let bmc = lab.path("bmc");
    fs::create_dir_all(&bmc).unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    for (name, text) in [
        ("chassis", racker_testsupport::vm::IPMI_SIM_CHASSIS),
        ("machine", MACHINE),
    ] {
        fs::write(bmc.join(name), text).unwrap();
        fs::set_permissions(bmc.join(name), fs::Permissions::from_mode(0o755)).unwrap();
    }
    fs::write(bmc.join("disk.img"), vec![0u8; 1 << 20]).unwrap();
    fs::write(
        bmc.join("machine.env"),
        format!(
            "QEMU={}\nACCEL={}\nMAC={VM_MAC}\nKERNEL={}\nINITRD={}\n",
            peers.qemu.display(),
            accelerator(),
            lab.vmlinuz.display(),
            lab.initramfs.display()
        ),
    )
    .unwrap();
    let _machine = Machine(bmc.clone());
    run(&[
        "ip",
        "-n",
        &lab.ns.0,
        "addr",
        "add",
        &format!("{bmc_ip}/32"),
        "dev",
        "lo",
    ]);
    fs::write(
        bmc.join("lan.conf"),
        format!(
            "name \"racker-vm\"\nset_working_mc 0x20\n  startlan 1\n    addr {bmc_ip} 623\n    \
             priv_limit admin\n    allowed_auths_admin none md5 straight\n    \
             guid a123456789abcdefa123456789ab0001\n  endlan\n  \
             chassis_control \"{} {}\"\n  \
             user 2 true \"admin\" \"secret\" admin 10 none md5 straight\n",
            bmc.join("chassis").display(),
            bmc.display()
        ),
    )
    .unwrap();
    fs::write(
        bmc.join("bmc.emu"),
        "mc_setbmc 0x20\nmc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02\nmc_enable 0x20\n",
    )
    .unwrap();
    let sim = Command::new("ip")
        .args(["netns", "exec", &lab.ns.0])
        .arg(&ipmi_sim)
        .arg("-c")
        .arg(bmc.join("lan.conf"))
        .arg("-f")
        .arg(bmc.join("bmc.emu"))
        .arg("-n")
        .arg("-s")
        .arg(bmc.join("persist"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _sim = Reaped(sim);

    let cluster = lab.path("cluster");
    let started = Instant::now();
    let mut boot = lab
        .racker(&[
            "bootstrap",
            "--provision",
            "flatcar",
            "--on-failure",
            "cancel",
            "--install-timeout",
            "240",
            "--cluster-dir",
            cluster.to_str().unwrap(),
            "--kernel-console",
            "console=ttyS0,115200n8",
        ])
        .stdout(fs::File::create(lab.path("bootstrap.out")).unwrap())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    log_lines(
        BufReader::new(boot.stderr.take().unwrap()).lines(),
        lab.path("server.log"),
    );
    let mut boot = Reaped(boot);
    let status = wait_until(&mut boot.0, VM_DEADLINE);
    // The summary is on stdout, the progress on stderr (copied into
    // server.log by a thread that may still be draining it).
    let read_out = || {
        fs::read_to_string(lab.path("bootstrap.out")).unwrap_or_default()
            + &fs::read_to_string(lab.path("server.log")).unwrap_or_default()
    };
    let settle = Instant::now() + Duration::from_secs(3);
    while !read_out().contains("node(s) provisioned") && Instant::now() < settle {
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = read_out();
    let diag = || {
        let serial = fs::read_to_string(bmc.join("serial.log")).unwrap_or_default();
        let tail: Vec<&str> = serial.lines().collect();
        format!(
            "--- bootstrap ---\n{out}\n--- serial ---\n{}\n--- machine ---\n{}\n--- chassis events ---\n{}\n--- stderr ---\n{}",
            tail[tail.len().saturating_sub(60)..].join("\n"),
            fs::read_to_string(bmc.join("machine.log")).unwrap_or_default(),
            fs::read_to_string(bmc.join("events")).unwrap_or_default(),
            lab.tail("server.log", 60),
        )
    };
    assert!(
        status.is_some_and(|s| s.success()),
        "bootstrap: {status:?}\n{}",
        diag()
    );
    eprintln!(
        "{test}: bootstrap of one VM ({}) took {:.1} s",
        accelerator(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        out.contains("✓ 1 node(s) provisioned with flatcar"),
        "{}",
        diag()
    );
    assert!(
        out.contains(&format!("✓ Network: {MGMT_IP}/24 on pxe0 (added)")),
        "{}",
        diag()
    );
    // The BMC was told: PXE next, power on.
    let events = fs::read_to_string(bmc.join("events")).unwrap();
    assert!(events.contains("boot pxe"), "{}", diag());
    assert!(events.contains("power 1"), "{}", diag());
    // The installer got its Ignition config from the cluster directory
    // bootstrap rendered, and the reserved lease.
    let serial = fs::read_to_string(bmc.join("serial.log")).unwrap();
    assert!(
        serial.contains("racker-vm: ignition-head={\"ignition\":{\"version\":\"3."),
        "{}",
        diag()
    );
    assert!(
        serial.contains(&format!("racker-vm: ip={vm_ip}")),
        "{}",
        diag()
    );
    assert!(
        serial.contains(&format!("racker-vm: reported: recorded {VM_MAC} installed")),
        "{}",
        diag()
    );
    let state: serde_json::Value =
        serde_json::from_slice(&fs::read(lab.state.join("bootstrap.json")).unwrap()).unwrap();
    let node = &state["nodes"][VM_MAC];
    assert_eq!(node["state"], "active", "{node}");
    // Rebooted "from disk", the OS reported up and bootstrap waited for it.
    assert_eq!(node["stage"], "os-up", "{node}");
    assert!(
        serial.contains(&format!("racker-vm: reported: recorded {VM_MAC} up")),
        "{}",
        diag()
    );
    assert!(out.contains("OS up on 1"), "{}", diag());
    let leases = lab.lease_of_vm().expect("no lease for the VM");
    assert!(leases.contains(&vm_ip), "{leases}");

    // `racker status` asks ipmi_sim and reads the state.
    let out = Command::new("ip")
        .args(["netns", "exec", &lab.ns.0])
        .arg(cargo_bin("racker"))
        .arg("--oem-dir")
        .arg(&lab.oem)
        .arg("--state-dir")
        .arg(&lab.state)
        .args(["--sys-class-net", "/sys/class/net"])
        .args(["status", "--full", "--output", "json"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["provisioned"], "flatcar", "{status}");
    let node = &status["nodes"][0];
    assert_eq!(status["schema_version"], 1, "{status}");
    assert_eq!(node["mac"], VM_MAC, "{status}");
    assert_eq!(node["bmc_reachable"], true, "{status}");
    assert_eq!(node["power"], "on", "{status}");
    assert_eq!(node["os_installed"], true, "{status}");
    assert!(node["diag"].is_object(), "{status}");
}
