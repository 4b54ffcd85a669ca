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

use std::collections::BTreeSet;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::cargo::cargo_bin;

const TEST: &str = "a_vm_pxe_boots_through_racker_and_reports_installed";
const NODES_CSV: &str = "\
Primary MAC address, BMC MAC address, Secondary MAC address, Node Type, Comments
02:11:22:33:44:00, 02:11:22:33:44:01, 02:11:22:33:44:30, red, mgmt node
02:11:22:33:44:20, 02:11:22:33:44:21, 02:11:22:33:44:50, purple, worker
02:11:22:33:44:10, 02:11:22:33:44:11, 02:11:22:33:44:40, red, controller
";
const MGMT_SECONDARY: &str = "02:11:22:33:44:30";
const MGMT_IP: &str = "172.24.213.1";
const VM_MAC: &str = "02:11:22:33:44:20";
/// The address the plan reserves for VM_MAC (nodes sorted by MAC: .2 is
/// 02:..:10, .3 is 02:..:20).
const VM_IP: &str = "172.24.213.3";
/// Kernel modules the initramfs loads (with their dependencies).
const MODULES: &[&str] = &["virtio_net", "virtio_pci"];
/// Upper bound for the whole boot under software emulation.
const VM_DEADLINE: Duration = Duration::from_secs(300);

/// Kills and reaps a child on drop.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A network namespace, deleted on drop.
struct Netns(String);

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn run(args: &[&str]) {
    let status = Command::new(args[0]).args(&args[1..]).status().unwrap();
    assert!(status.success(), "{args:?}");
}

fn kernel_dir() -> PathBuf {
    std::env::var_os("RACKER_TEST_KERNEL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/racker/test-kernel"))
}

/// `(vmlinuz, modules directory)` of the unpacked kernel package.
fn find_kernel(dir: &Path) -> Option<(PathBuf, PathBuf)> {
    let vmlinuz = fs::read_dir(dir.join("boot"))
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("vmlinuz-"))
        })?;
    let version = vmlinuz
        .file_name()?
        .to_string_lossy()
        .trim_start_matches("vmlinuz-")
        .to_owned();
    let modules = dir.join("lib/modules").join(version).join("kernel");
    modules.is_dir().then_some((vmlinuz, modules))
}

/// Every `.ko` below `dir`, by module name (`-` and `_` are the same).
fn index_modules(dir: &Path, out: &mut std::collections::BTreeMap<String, PathBuf>) {
    for entry in fs::read_dir(dir).unwrap().filter_map(Result::ok) {
        let path = entry.path();
        if path.is_dir() {
            index_modules(&path, out);
        } else if let Some(name) = path.file_name().and_then(|n| n.to_str())
            && let Some(stem) = name.strip_suffix(".ko")
        {
            out.insert(stem.replace('-', "_"), path);
        }
    }
}

/// The `depends=` entry of a module's `.modinfo` section.
fn module_depends(bytes: &[u8]) -> Vec<String> {
    let key = b"depends=";
    bytes
        .split(|b| *b == 0)
        .find_map(|s| s.strip_prefix(key.as_slice()))
        .map(|deps| {
            String::from_utf8_lossy(deps)
                .split(',')
                .filter(|d| !d.is_empty())
                .map(|d| d.replace('-', "_"))
                .collect()
        })
        .unwrap_or_default()
}

/// Modules to load, dependencies first.
fn load_order(
    index: &std::collections::BTreeMap<String, PathBuf>,
    wanted: &[&str],
) -> Vec<(String, Vec<u8>)> {
    fn visit(
        name: &str,
        index: &std::collections::BTreeMap<String, PathBuf>,
        seen: &mut BTreeSet<String>,
        out: &mut Vec<(String, Vec<u8>)>,
    ) {
        if !seen.insert(name.to_owned()) {
            return;
        }
        let path = index
            .get(name)
            .unwrap_or_else(|| panic!("module {name} is not in the test kernel"));
        let bytes = fs::read(path).unwrap();
        for dep in module_depends(&bytes) {
            visit(&dep, index, seen, out);
        }
        out.push((name.to_owned(), bytes));
    }
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for name in wanted {
        visit(name, index, &mut seen, &mut out);
    }
    out
}

/// Writer of the `newc` cpio format the kernel unpacks as initramfs.
#[derive(Default)]
struct Cpio {
    out: Vec<u8>,
    ino: u32,
}

impl Cpio {
    fn entry(&mut self, name: &str, mode: u32, data: &[u8], rdev: (u32, u32)) {
        self.ino += 1;
        let header = format!(
            "070701{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}",
            self.ino,
            mode,
            0,
            0,
            1,
            0,
            data.len(),
            0,
            0,
            rdev.0,
            rdev.1,
            name.len() + 1,
            0
        );
        self.out.extend_from_slice(header.as_bytes());
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(0);
        self.pad();
        self.out.extend_from_slice(data);
        self.pad();
    }
    fn pad(&mut self) {
        while !self.out.len().is_multiple_of(4) {
            self.out.push(0);
        }
    }
    fn dir(&mut self, name: &str) {
        self.entry(name, 0o040755, &[], (0, 0));
    }
    fn file(&mut self, name: &str, perm: u32, data: &[u8]) {
        self.entry(name, 0o100000 | perm, data, (0, 0));
    }
    fn finish(mut self) -> Vec<u8> {
        self.entry("TRAILER!!!", 0, &[], (0, 0));
        self.out
    }
}

/// The "installer": what the VM runs once Linux is up.
const INIT: &str = r#"#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
echo "racker-vm: installer started"
while read -r m; do
  insmod "/modules/$m.ko" || echo "racker-vm: insmod $m failed"
done < /modules.order
ip link set lo up
i=0
while [ ! -e /sys/class/net/eth0 ] && [ $i -lt 50 ]; do sleep 0.2; i=$((i+1)); done
ip link set eth0 up
url=$(sed -n 's/.*ignition.config.url=\([^ ]*\).*/\1/p' /proc/cmdline)
base=${url%%/ignition*}
server=${base#http://}
server=${server%%:*}
mac=$(cat /sys/class/net/eth0/address)
echo "racker-vm: mac=$mac base=$base"
udhcpc -i eth0 -f -q -n -t 10 -T 2 -s /udhcpc.sh
echo "racker-vm: ip=$(cat /tmp/ip)"
if tftp -g -r undionly.kpxe -l /tmp/undionly.kpxe "$server"; then
  echo "racker-vm: tftp-sha256=$(sha256sum /tmp/undionly.kpxe | cut -d' ' -f1)"
fi
if wget -q -O /tmp/ignition "$url"; then
  echo "racker-vm: ignition-sha256=$(sha256sum /tmp/ignition | cut -d' ' -f1)"
fi
if wget -q -O /tmp/reply --post-data "" "$base/report?mac=$mac&stage=installed"; then
  echo "racker-vm: reported: $(cat /tmp/reply)"
fi
echo "racker-vm: done"
poweroff -f
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

/// QEMU's accelerator: `RACKER_TEST_QEMU_ACCEL`, else software emulation
/// (TCG). KVM is opt-in: nested KVM on CI machines has been seen to reset
/// the guest during early boot.
fn accelerator() -> String {
    std::env::var("RACKER_TEST_QEMU_ACCEL").unwrap_or_else(|_| "tcg".to_owned())
}

/// True when an ELF64 file has a PT_INTERP program header (is dynamically
/// linked).
fn has_interpreter(elf: &[u8]) -> bool {
    let u16_at = |o: usize| {
        elf.get(o..o + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]) as usize)
    };
    let u64_at = |o: usize| {
        elf.get(o..o + 8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap()) as usize)
    };
    let (Some(phoff), Some(phentsize), Some(phnum)) = (u64_at(0x20), u16_at(0x36), u16_at(0x38))
    else {
        return true;
    };
    (0..phnum).any(|i| {
        elf.get(phoff + i * phentsize..phoff + i * phentsize + 4)
            .is_some_and(|t| t == 3u32.to_le_bytes())
    })
}

/// Everything the test needs, or `None` after a printed skip reason.
struct Peers {
    qemu: PathBuf,
    busybox: PathBuf,
    vmlinuz: PathBuf,
    modules: PathBuf,
}

fn peers() -> Option<Peers> {
    if !racker_testsupport::require_root(TEST) {
        return None;
    }
    racker_testsupport::require_tool(TEST, "ip")?;
    let qemu = racker_testsupport::require_tool(TEST, "qemu-system-x86_64")?;
    let busybox = racker_testsupport::require_tool(TEST, "busybox")?;
    // Debian's busybox-static is linked statically; a dynamic busybox would
    // not run in an initramfs without its libraries.
    let bytes = fs::read(&busybox).ok()?;
    if has_interpreter(&bytes) {
        racker_testsupport::skip_or_fail(TEST, "busybox is not static (install busybox-static)");
        return None;
    }
    let Some((vmlinuz, modules)) = find_kernel(&kernel_dir()) else {
        racker_testsupport::skip_or_fail(
            TEST,
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

#[test]
fn a_vm_pxe_boots_through_racker_and_reports_installed() {
    let Some(peers) = peers() else { return };
    let work = tempfile::tempdir().unwrap();
    let oem = work.path().join("oem");
    let state = work.path().join("state");
    fs::create_dir_all(&oem).unwrap();
    fs::write(oem.join("nodes.csv"), NODES_CSV).unwrap();
    fs::write(oem.join("ipmi_user"), "admin\n").unwrap();
    fs::write(oem.join("ipmi_password"), "secret\n").unwrap();

    // The "Flatcar" release the netboot server hands out: Debian's kernel
    // and our installer initramfs.
    let assets = state.join("assets/flatcar/current");
    fs::create_dir_all(&assets).unwrap();
    fs::copy(
        &peers.vmlinuz,
        assets.join("flatcar_production_pxe.vmlinuz"),
    )
    .unwrap();
    let mut index = std::collections::BTreeMap::new();
    index_modules(&peers.modules, &mut index);
    let modules = load_order(&index, MODULES);
    fs::write(
        assets.join("flatcar_production_pxe_image.cpio.gz"),
        initramfs(&peers.busybox, &modules),
    )
    .unwrap();
    // Its install-time Ignition config.
    let ignition = br#"{"ignition":{"version":"3.3.0"}}"#;
    let ignition_dir = state.join("ignition").join(VM_MAC);
    fs::create_dir_all(&ignition_dir).unwrap();
    fs::write(ignition_dir.join("install.ign"), ignition).unwrap();
    // The TFTP root: the iPXE loader that real PXE firmware would fetch.
    let boot = work.path().join("boot-files");
    fs::create_dir_all(&boot).unwrap();
    let undionly = fs::read("/usr/lib/ipxe/undionly.kpxe")
        .unwrap_or_else(|_| b"stand-in for undionly.kpxe".repeat(4000));
    fs::write(boot.join("undionly.kpxe"), &undionly).unwrap();
    fs::write(boot.join("ipxe.efi"), b"not used by this test").unwrap();

    let ns = Netns(format!("rkvm{}", std::process::id()));
    run(&["ip", "netns", "add", &ns.0]);
    run(&["ip", "-n", &ns.0, "link", "set", "lo", "up"]);
    run(&[
        "ip", "-n", &ns.0, "tuntap", "add", "dev", "pxe0", "mode", "tap",
    ]);
    run(&[
        "ip",
        "-n",
        &ns.0,
        "link",
        "set",
        "pxe0",
        "address",
        MGMT_SECONDARY,
    ]);
    run(&[
        "ip",
        "-n",
        &ns.0,
        "addr",
        "add",
        &format!("{MGMT_IP}/24"),
        "dev",
        "pxe0",
    ]);
    run(&["ip", "-n", &ns.0, "link", "set", "pxe0", "up"]);

    let mut server = Command::new("ip")
        .args(["netns", "exec", &ns.0])
        .arg(cargo_bin("racker"))
        .arg("--oem-dir")
        .arg(&oem)
        .arg("--state-dir")
        .arg(&state)
        .args([
            "--sys-class-net",
            "/sys/class/net",
            "netboot",
            "serve",
            "--boot-files",
        ])
        .arg(&boot)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(server.stderr.take().unwrap()).lines();
    let server = Reaped(server);
    let ready = lines.find_map(|l| {
        l.ok()
            .filter(|l| l.starts_with("racker netboot: DHCP listening"))
    });
    assert!(ready.is_some(), "racker netboot serve did not start");
    let server_log = work.path().join("server.log");
    let log_path = server_log.clone();
    std::thread::spawn(move || {
        let mut log = fs::File::create(log_path).unwrap();
        for line in lines.map_while(Result::ok) {
            use std::io::Write as _;
            let _ = writeln!(log, "{line}");
        }
    });

    let serial = work.path().join("serial.log");
    let qemu_log = work.path().join("qemu.log");
    let accel = accelerator();
    let mut vm = Command::new("ip");
    vm.args(["netns", "exec", &ns.0])
        .arg(&peers.qemu)
        .args(["-accel", &accel, "-m", "512", "-smp", "1"])
        .args(["-display", "none", "-monitor", "none", "-no-reboot"])
        .arg("-serial")
        .arg(format!("file:{}", serial.display()))
        .args(["-boot", "n"])
        .args(["-netdev", "tap,id=n0,ifname=pxe0,script=no,downscript=no"])
        .args(["-device", &format!("virtio-net-pci,netdev=n0,mac={VM_MAC}")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(&qemu_log).unwrap());
    let started = Instant::now();
    let mut vm = Reaped(vm.spawn().unwrap());
    let exited = loop {
        if let Some(status) = vm.0.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > VM_DEADLINE {
            break None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let console = fs::read_to_string(&serial).unwrap_or_default();
    let diag = || {
        format!(
            "--- qemu ---\n{}\n--- serial console ---\n{}\n--- racker netboot serve ---\n{}",
            fs::read_to_string(&qemu_log).unwrap_or_default(),
            console
                .lines()
                .rev()
                .take(60)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n"),
            fs::read_to_string(&server_log).unwrap_or_default()
        )
    };
    assert!(
        exited.is_some(),
        "the VM did not power off within {VM_DEADLINE:?}\n{}",
        diag()
    );
    eprintln!(
        "{TEST}: VM ({accel}) booted, reported and powered off in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    for line in console.lines().filter(|l| l.contains("racker-vm:")) {
        eprintln!("  {line}");
    }

    // The installer in the VM saw the reserved address, the TFTP file and
    // its Ignition config, and its report was recorded.
    assert!(
        console.contains(&format!("racker-vm: ip={VM_IP}")),
        "{}",
        diag()
    );
    assert!(
        console.contains(&format!("racker-vm: tftp-sha256={}", sha256_hex(&undionly))),
        "{}",
        diag()
    );
    assert!(
        console.contains(&format!(
            "racker-vm: ignition-sha256={}",
            sha256_hex(ignition)
        )),
        "{}",
        diag()
    );
    assert!(
        console.contains(&format!("racker-vm: reported: recorded {VM_MAC} installed")),
        "{}",
        diag()
    );
    let report: serde_json::Value = serde_json::from_slice(
        &fs::read(state.join(format!("netboot/reports/{VM_MAC}.json"))).unwrap(),
    )
    .unwrap();
    assert_eq!(report["stage"], "installed");
    // The lease the VM's firmware and installer got is the reserved one.
    let leases = fs::read_to_string(state.join("dhcp-leases.json")).unwrap();
    assert!(
        leases.contains(VM_IP) && leases.contains(VM_MAC),
        "{leases}"
    );
    drop(server);
}
