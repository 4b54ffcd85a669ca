//! The node side against its real counterparts (docs/testing.md, "Real
//! VMs"): `racker bootstrap` drives a QEMU machine behind OpenIPMI's
//! `ipmi_sim`; the PXE-booted installer runs real Ignition on racker's
//! install config and the real `flatcar-install`, which writes the signed
//! test image (`.ci/test-image`) from racker's `/assets` to the VM's disk;
//! the machine then boots that disk's root file system, real Ignition
//! applies the OS config from the OEM partition, and real systemd runs
//! racker's units up to `racker-report-up.service`.
//!
//! Needs root, `qemu-system-x86_64`, static `busybox`, `ipmi_sim`,
//! `ipmitool`, `sfdisk`, `debugfs`, the kernel of `.ci/test-kernel`, the
//! image of `.ci/test-image` (`RACKER_TEST_IMAGE_DIR`, default
//! `/var/cache/racker/test-image`) and Flatcar's `flatcar-install`
//! (`RACKER_FLATCAR_INSTALL`, default `shared/peers/flatcar-install/` in a
//! directory above the workspace).

use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::cargo::cargo_bin;
use racker_testsupport::vm::{
    Cpio, Netns, Reaped, accelerator, find_kernel, has_interpreter, kernel_dir, load_order, run,
};

const NODES_CSV: &str = "\
Primary MAC address, BMC MAC address, Secondary MAC address, Node Type, Comments
02:11:22:33:44:00, 02:11:22:33:44:01, 02:11:22:33:44:30, red, mgmt node
02:11:22:33:44:20, 02:11:22:33:44:21, 02:11:22:33:44:50, purple, worker
";
const MGMT_SECONDARY: &str = "02:11:22:33:44:30";
const VM_MAC: &str = "02:11:22:33:44:20";
const VM_PUBLIC_MAC: &str = "02:11:22:33:44:50";
const VM_PUBLIC_ADDRESS: &str = "203.0.113.11/24";
const PUBLIC_IPS: &str = "\
[02:11:22:33:44:50]
ip_addr = 203.0.113.11/24
gateway = 203.0.113.1
dns = 203.0.113.53
";
/// The extra systemd-resolved listener racker's units point resolv.conf at.
const RESOLVE_ADDRESS: &str = "192.0.2.254";
/// Kernel modules both initramfs archives load (with their dependencies).
const MODULES: &[&str] = &["virtio_net", "virtio_blk", "virtio_pci"];
/// Upper bound for install and first boot under software emulation on a
/// loaded 2-core machine.
const DEADLINE: Duration = Duration::from_secs(1500);

/// `/init` of the PXE-booted installer, appended to the test image's root
/// (what Flatcar's initramfs does before it starts systemd): the network,
/// then real Ignition with platform `metal` (its config from
/// `ignition.config.url` on the kernel command line, racker's `/ignition`),
/// then systemd, which runs the units Ignition enabled.
const LIVE_INIT: &str = r#"#!/bin/sh
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
bb=/racker/busybox
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs -o mode=755 run /run
while read -r m; do
  $bb insmod "/racker/modules/$m.ko" || echo "racker-live: insmod $m failed"
done < /racker/modules.order
ip link set lo up
i=0
while [ ! -e /sys/class/net/eth0 ] && [ $i -lt 100 ]; do $bb sleep 0.1; i=$((i+1)); done
ip link set eth0 up
$bb udhcpc -i eth0 -f -q -n -t 20 -T 2 -s /racker/udhcpc.sh
echo "racker-live: ip=$(cat /run/racker-ip)"
ignition=/usr/lib/dracut/modules.d/30ignition/ignition
for stage in fetch disks mount files umount; do
  if ! $ignition -platform metal -stage $stage -root / -log-to-stdout > /run/ignition-$stage.log 2>&1; then
    cat /run/ignition-$stage.log
    echo "racker-live: ignition $stage failed"
    exec $bb poweroff -f
  fi
  echo "racker-live: ignition $stage done"
done
grep -h -E 'files: (op|createFiles|createUnits|createUsers|createResultFile)|parsing config|fetched' /run/ignition-fetch.log /run/ignition-files.log | sed 's/^/racker-live: /' | head -n 40
# systemd takes the link over (Flatcar's zz-default.network: DHCP); down,
# so that udev can give it its predictable name first.
ip addr flush dev eth0
ip link set eth0 down
exec /sbin/init
"#;

const UDHCPC_SCRIPT: &str = r#"#!/bin/sh
case "$1" in
  bound|renew)
    /racker/busybox ip addr add "$ip/$mask" dev "$interface"
    echo "$ip" > /run/racker-ip
    ;;
esac
"#;

/// `/init` of the installed system's boot (what Flatcar's initramfs does
/// for a disk boot): mount the root by label; on the first boot (no
/// `/etc/machine-id` yet) let real Ignition apply the OEM partition's
/// `config.ign` (copied to `/usr/lib/ignition/user.ign`, as Flatcar's
/// initramfs does, platform `metal`), then hand over to systemd. It also
/// drops the test's probe unit into the root.
const OS_INIT: &str = r#"#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
while read -r m; do
  insmod "/modules/$m.ko" || echo "racker-os: insmod $m failed"
done < /modules.order
i=0
while ! root=$(findfs LABEL=ROOT 2>/dev/null) && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done
mkdir -p /sysroot
mount -t ext4 "$root" /sysroot || { echo "racker-os: cannot mount ROOT"; poweroff -f; }
echo "racker-os: root $root"
if [ ! -e /sysroot/etc/machine-id ]; then
  echo "racker-os: first boot: Ignition applies the OEM partition's config.ign"
  mount -t ext4 "$(findfs LABEL=OEM)" /sysroot/usr/share/oem
  mkdir -p /sysroot/usr/lib/ignition
  mount -t tmpfs tmpfs /sysroot/usr/lib/ignition
  cp /sysroot/usr/share/oem/config.ign /sysroot/usr/lib/ignition/user.ign
  mount --bind /proc /sysroot/proc
  mount --bind /sys /sysroot/sys
  mount --bind /dev /sysroot/dev
  mount -t tmpfs tmpfs /sysroot/run
  for stage in fetch disks mount files umount; do
    if ! chroot /sysroot /usr/bin/env PATH=/usr/sbin:/usr/bin:/sbin:/bin /usr/lib/dracut/modules.d/30ignition/ignition -platform metal -stage $stage -root / -log-to-stdout > /ignition-$stage.log 2>&1; then
      cat /ignition-$stage.log
      echo "racker-os: ignition $stage failed"
      poweroff -f
    fi
    echo "racker-os: ignition $stage done"
  done
  grep -h -E 'files: (op|createFiles|createUnits|createUsers)|parsing config|fetched' /ignition-fetch.log /ignition-files.log | sed 's/^/racker-os: /' | head -n 40
  umount /sysroot/run /sysroot/dev /sysroot/sys /sysroot/proc /sysroot/usr/lib/ignition /sysroot/usr/share/oem
fi
cp /probe /sysroot/usr/local/sbin/racker-test-probe
cp /probe.service /sysroot/etc/systemd/system/racker-test-probe.service
mkdir -p /sysroot/etc/systemd/system/multi-user.target.wants
ln -sf ../racker-test-probe.service /sysroot/etc/systemd/system/multi-user.target.wants/racker-test-probe.service
mount --move /dev /sysroot/dev
mount --move /sys /sysroot/sys
mount --move /proc /sysroot/proc
exec switch_root /sysroot /sbin/init
"#;

/// The test's probe in the installed OS: runs after racker's up report
/// (ordering on the oneshot unit) and prints what the test asserts on the
/// serial port, before the serial getty takes the port over.
const PROBE_UNIT: &str = "[Unit]
Description=racker VM test probe
After=racker-report-up.service use-systemd-resolved.service systemd-resolved.service systemd-networkd.service
Before=serial-getty@ttyS0.service
[Service]
Type=oneshot
ExecStart=/bin/sh /usr/local/sbin/racker-test-probe
StandardOutput=tty
StandardError=tty
TTYPath=/dev/ttyS0
";

const PROBE: &str = r#"#!/bin/sh
say() { echo "racker-probe: $*"; }
say "hostname=$(hostname)"
for dev in /sys/class/net/*; do
  name=${dev##*/}
  [ "$name" = lo ] && continue
  say "link $(cat "$dev/address") $name $(ip -o -4 addr show dev "$name" | awk '{print $4}' | tr '\n' ' ')"
done
say "default route: $(ip route show default | head -n 1)"
# use-systemd-resolved.service rewrites the stub file every second.
i=0
while ! grep -q '^nameserver 192.0.2.254' /etc/resolv.conf 2>/dev/null && [ $i -lt 300 ]; do sleep 0.2; i=$((i+1)); done
say "resolv.conf -> $(readlink /etc/resolv.conf)"
say "nameservers $(awk '/^nameserver/ {print $2}' /etc/resolv.conf | tr '\n' ' ')"
say "resolved listens on $(ss -Hlun 2>/dev/null | awk '$4 ~ /:53$/ {print $4}' | sort | tr '\n' ' ')"
for unit in racker-report-up.service use-systemd-resolved.service systemd-networkd.service systemd-resolved.service; do
  say "unit $unit enabled=$(systemctl is-enabled $unit 2>&1) $(systemctl show -p ActiveState -p Result -p ExecMainStatus $unit | tr '\n' ' ')"
done
say "report-up output: $(journalctl -b -u racker-report-up.service -o cat --no-pager | grep -v -e '^Starting' -e '^Finished' -e 'Deactivated' | tr '\n' ' ')"
say "core user: $(id core 2>&1) keys=$(cat /home/core/.ssh/authorized_keys 2>/dev/null | wc -l)"
say "failed units: $(systemctl list-units --failed --plain --no-legend | awk '{print $1}' | tr '\n' ' ')"
say done
"#;

/// The machine behind the BMC, playing its firmware: at every (re)boot it
/// reads the BMC's boot device. `pxe`: boot from the network (SeaBIOS with
/// iPXE). Anything else: boot the disk the way Flatcar's GRUB would — the
/// kernel console from the OEM partition's `grub.cfg`, which the installer
/// wrote — with the test kernel and the disk-boot initramfs, root on the
/// disk. A server's POST takes a minute or more before it reads the boot
/// flags; after a reboot the machine gives the management side up to 60 s
/// to change them (racker sets disk boot when the installer reports
/// `installed`, just before it reboots).
const MACHINE: &str = r#"#!/bin/sh
dir=$1
. "$dir/machine.env"
n=0
while [ $n -lt 4 ]; do
  n=$((n+1))
  boot=$(cat "$dir/boot" 2>/dev/null || echo default)
  if [ $n -gt 1 ] && [ "$boot" = pxe ]; then
    i=0
    while [ "$(cat "$dir/boot")" = pxe ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done
    boot=$(cat "$dir/boot")
  fi
  common="-accel $ACCEL -m 1536 -smp 2 -display none -monitor none -no-reboot
    -chardev file,id=s0,path=$dir/serial.log,append=on -serial chardev:s0
    -drive file=$dir/disk.img,format=raw,if=virtio
    -netdev tap,id=n0,ifname=pxe0,script=no,downscript=no
    -device virtio-net-pci,netdev=n0,mac=$MAC,bootindex=1
    -netdev tap,id=n1,ifname=pub0,script=no,downscript=no
    -device virtio-net-pci,netdev=n1,mac=$PUBLIC_MAC,romfile="
  if [ "$boot" = pxe ]; then
    echo "machine: boot $n from the network"
    $QEMU $common -boot n
  else
    echo "machine: boot $n from disk (boot device $boot)"
    line=$(sfdisk -d "$dir/disk.img" 2>/dev/null | grep 'name="OEM"')
    start=$(echo "$line" | sed -n 's/.*start= *\([0-9]*\).*/\1/p')
    size=$(echo "$line" | sed -n 's/.*size= *\([0-9]*\).*/\1/p')
    console=""
    if [ -n "$start" ]; then
      dd if="$dir/disk.img" of="$dir/oem.img" bs=512 skip="$start" count="$size" status=none
      console=$(debugfs -R 'cat /grub.cfg' "$dir/oem.img" 2>/dev/null | sed -n 's/^set linux_console="\(.*\)"$/\1/p' | tail -n 1)
    fi
    echo "machine: kernel console from the OEM grub.cfg: $console"
    $QEMU $common -kernel "$KERNEL" -initrd "$dir/os-initrd.cpio" -append "root=LABEL=ROOT $console"
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

/// The test image `.ci/test-image` built.
struct Image {
    dir: PathBuf,
    version: String,
}

fn image() -> Option<Image> {
    let dir = std::env::var_os("RACKER_TEST_IMAGE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/racker/test-image"));
    let version = fs::read_to_string(dir.join("current/version.txt"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("FLATCAR_VERSION="))?
        .trim()
        .to_owned();
    for f in [
        "live-root.cpio.zst",
        "signing-key.asc",
        &format!("{version}/flatcar_production_image.bin.bz2"),
        &format!("{version}/flatcar_production_image.bin.bz2.sig"),
    ] {
        if !dir.join(f).is_file() {
            return None;
        }
    }
    Some(Image { dir, version })
}

/// Flatcar's installer script: `RACKER_FLATCAR_INSTALL`, else
/// `shared/peers/flatcar-install/flatcar-install` in a directory above the
/// workspace (a real peer no package provides; not copied into the
/// project).
fn flatcar_install() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("RACKER_FLATCAR_INSTALL") {
        return Some(PathBuf::from(p)).filter(|p| p.is_file());
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .map(|d| d.join("shared/peers/flatcar-install/flatcar-install"))
        .find(|p| p.is_file())
}

struct Peers {
    qemu: PathBuf,
    busybox: PathBuf,
    ipmi_sim: PathBuf,
    ipmitool: PathBuf,
    vmlinuz: PathBuf,
    modules: PathBuf,
    image: Image,
    flatcar_install: PathBuf,
}

fn peers(test: &str) -> Option<Peers> {
    if !racker_testsupport::require_root(test) {
        return None;
    }
    racker_testsupport::require_tool(test, "ip")?;
    racker_testsupport::require_tool(test, "sfdisk")?;
    racker_testsupport::require_tool(test, "debugfs")?;
    let qemu = racker_testsupport::require_tool(test, "qemu-system-x86_64")?;
    let busybox = racker_testsupport::require_tool(test, "busybox")?;
    let ipmi_sim = racker_testsupport::require_tool(test, "ipmi_sim")?;
    let ipmitool = racker_testsupport::require_tool(test, "ipmitool")?;
    if has_interpreter(&fs::read(&busybox).ok()?) {
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
    let Some(image) = image() else {
        racker_testsupport::skip_or_fail(test, "no test image (run .ci/test-image)");
        return None;
    };
    let Some(flatcar_install) = flatcar_install() else {
        racker_testsupport::skip_or_fail(
            test,
            "flatcar-install not found (RACKER_FLATCAR_INSTALL or shared/peers/flatcar-install/)",
        );
        return None;
    };
    Some(Peers {
        qemu,
        busybox,
        ipmi_sim,
        ipmitool,
        vmlinuz,
        modules,
        image,
        flatcar_install,
    })
}

fn modules_into(c: &mut Cpio, dir: &str, modules: &[(String, Vec<u8>)]) -> String {
    let mut order = String::new();
    for (name, bytes) in modules {
        c.file(&format!("{dir}/{name}.ko"), 0o644, bytes);
        order.push_str(name);
        order.push('\n');
    }
    order
}

/// The PXE initrd: our uncompressed archive (init, busybox, modules,
/// flatcar-install) followed by the image's root (zstd); the kernel
/// unpacks both, in that order.
fn live_initrd(peers: &Peers, modules: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut c = Cpio::default();
    for d in ["dev", "racker", "racker/modules"] {
        c.dir(d);
    }
    c.entry("dev/console", 0o020600, &[], (5, 1));
    c.file("init", 0o755, LIVE_INIT.as_bytes());
    c.file("racker/busybox", 0o755, &fs::read(&peers.busybox).unwrap());
    c.file("racker/udhcpc.sh", 0o755, UDHCPC_SCRIPT.as_bytes());
    let order = modules_into(&mut c, "racker/modules", modules);
    c.file("racker/modules.order", 0o644, order.as_bytes());
    let mut out = c.finish();
    // flatcar-install goes where Flatcar has it, after the root's /usr/bin
    // exists: a second small archive after the root.
    let root = fs::read(peers.image.dir.join("live-root.cpio.zst")).unwrap();
    out.extend_from_slice(&root);
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
    let mut tail = Cpio::default();
    tail.file(
        "usr/bin/flatcar-install",
        0o755,
        &fs::read(&peers.flatcar_install).unwrap(),
    );
    out.extend_from_slice(&tail.finish());
    out
}

fn os_initrd(peers: &Peers, modules: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut c = Cpio::default();
    for d in ["bin", "dev", "proc", "sys", "tmp", "modules"] {
        c.dir(d);
    }
    c.entry("dev/console", 0o020600, &[], (5, 1));
    c.file("bin/busybox", 0o755, &fs::read(&peers.busybox).unwrap());
    c.file("init", 0o755, OS_INIT.as_bytes());
    c.file("probe", 0o755, PROBE.as_bytes());
    c.file("probe.service", 0o644, PROBE_UNIT.as_bytes());
    let order = modules_into(&mut c, "modules", modules);
    c.file("modules.order", 0o644, order.as_bytes());
    c.finish()
}

/// `(ip, bmc_ip)` the plan gives `mac`.
fn planned(ns: &str, oem: &Path, mac: &str) -> (String, String) {
    let out = Command::new("ip")
        .args(["netns", "exec", ns])
        .arg(cargo_bin("racker"))
        .arg("--oem-dir")
        .arg(oem)
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
    let node = plan["nodes"]
        .as_array()
        .expect("plan nodes")
        .iter()
        .find(|n| n["mac"] == mac)
        .unwrap_or_else(|| panic!("{mac} not in {plan}"))
        .clone();
    let field = |k: &str| node[k].as_str().unwrap().to_owned();
    (field("ip"), field("bmc_ip"))
}

/// The host name in the OS config nested in the install config racker
/// served.
fn hostname_in(install_ign: &Path) -> String {
    let install: serde_json::Value =
        serde_json::from_slice(&fs::read(install_ign).unwrap()).unwrap();
    let file = |cfg: &serde_json::Value, path: &str| -> Vec<u8> {
        let f = cfg["storage"]["files"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["path"] == path)
            .unwrap_or_else(|| panic!("no {path} in {cfg}"));
        racker_lokomotive::decode_data_url(f["contents"]["source"].as_str().unwrap()).unwrap()
    };
    let os: serde_json::Value = serde_json::from_slice(&file(
        &install,
        racker_lokomotive::ignition::INSTALL_OS_CONFIG_PATH,
    ))
    .unwrap();
    String::from_utf8(file(&os, "/etc/hostname"))
        .unwrap()
        .trim()
        .to_owned()
}

fn tail(path: &Path, lines: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Wait until `path` contains `marker`, the child exits or `deadline`
/// passes; true when the marker appeared.
fn wait_for_marker(path: &Path, marker: &str, deadline: Instant) -> bool {
    loop {
        if fs::read_to_string(path).is_ok_and(|t| t.contains(marker)) {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn bootstrap_installs_the_real_image_with_real_ignition_and_flatcar_install() {
    let test = "bootstrap_installs_the_real_image_with_real_ignition_and_flatcar_install";
    let Some(peers) = peers(test) else { return };
    let work = tempfile::tempdir().unwrap();
    let path = |n: &str| work.path().join(n);
    let oem = path("oem");
    let state = path("state");
    fs::create_dir_all(&oem).unwrap();
    fs::write(oem.join("nodes.csv"), NODES_CSV).unwrap();
    fs::write(oem.join("ipmi_user"), "admin\n").unwrap();
    fs::write(oem.join("ipmi_password"), "secret\n").unwrap();
    fs::write(path("public-ips.ini"), PUBLIC_IPS).unwrap();

    // racker's Flatcar mirror: the test release, as `racker netboot
    // fetch-assets` lays it out (version.txt and the key it verified
    // with next to the files), with Debian's kernel and the installer
    // initramfs as the PXE pair.
    let modules = load_order(&peers.modules, MODULES);
    let v = &peers.image.version;
    let release = state.join("assets/flatcar").join(v);
    fs::create_dir_all(&release).unwrap();
    std::os::unix::fs::symlink(v, state.join("assets/flatcar/current")).unwrap();
    for f in [
        "flatcar_production_image.bin.bz2",
        "flatcar_production_image.bin.bz2.sig",
    ] {
        fs::copy(peers.image.dir.join(v).join(f), release.join(f)).unwrap();
    }
    fs::write(
        release.join("version.txt"),
        format!("FLATCAR_VERSION={v}\n"),
    )
    .unwrap();
    fs::copy(
        peers.image.dir.join("signing-key.asc"),
        release.join(racker_lokomotive::ignition::IMAGE_SIGNING_KEY_FILE),
    )
    .unwrap();
    fs::copy(
        &peers.vmlinuz,
        release.join("flatcar_production_pxe.vmlinuz"),
    )
    .unwrap();
    fs::write(
        release.join("flatcar_production_pxe_image.cpio.gz"),
        live_initrd(&peers, &modules),
    )
    .unwrap();
    let boot_files = path("boot-files");
    fs::create_dir_all(&boot_files).unwrap();
    fs::write(
        boot_files.join("undionly.kpxe"),
        fs::read("/usr/lib/ipxe/undionly.kpxe").unwrap_or_else(|_| b"stand-in".to_vec()),
    )
    .unwrap();
    fs::write(boot_files.join("ipxe.efi"), b"not used by this test").unwrap();

    // The namespace: the management node's PXE tap (racker configures it)
    // and the public network's tap.
    let ns = Netns(format!("rkin{}", std::process::id()));
    let ip = |args: &[&str]| {
        let mut all = vec!["ip", "-n", &ns.0];
        all.extend_from_slice(args);
        run(&all);
    };
    run(&["ip", "netns", "add", &ns.0]);
    ip(&["link", "set", "lo", "up"]);
    ip(&["tuntap", "add", "dev", "pxe0", "mode", "tap"]);
    ip(&["link", "set", "pxe0", "address", MGMT_SECONDARY]);
    ip(&["tuntap", "add", "dev", "pub0", "mode", "tap"]);
    ip(&["addr", "add", "203.0.113.1/24", "dev", "pub0"]);
    ip(&["link", "set", "pub0", "up"]);
    let (vm_ip, bmc_ip) = planned(&ns.0, &oem, VM_MAC);
    // The public network's gateway with a DHCP server (dnsmasq), as a
    // public network may have: the PXE-booted installer leases there too
    // (Flatcar's catch-all unit) instead of waiting out
    // systemd-networkd-wait-online; the installed OS uses the static
    // address and routes through this gateway.
    let Some(dnsmasq) = racker_testsupport::require_tool(test, "dnsmasq") else {
        return;
    };
    let _public_dhcp = Reaped(
        Command::new("ip")
            .args(["netns", "exec", &ns.0])
            .arg(dnsmasq)
            .args([
                "--no-daemon",
                "--conf-file=/dev/null",
                "--port=0",
                "--interface=pub0",
                "--bind-interfaces",
                "--dhcp-range=203.0.113.100,203.0.113.199,255.255.255.0,10m",
            ])
            .arg(format!(
                "--dhcp-leasefile={}",
                path("public.leases").display()
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );

    // The BMC and the machine behind it.
    let bmc = path("bmc");
    fs::create_dir_all(&bmc).unwrap();
    for (name, text) in [
        ("chassis", racker_testsupport::vm::IPMI_SIM_CHASSIS),
        ("machine", MACHINE),
    ] {
        fs::write(bmc.join(name), text).unwrap();
        fs::set_permissions(bmc.join(name), fs::Permissions::from_mode(0o755)).unwrap();
    }
    // flatcar-install wants a disk of more than 10 GB (sparse here).
    fs::File::create(bmc.join("disk.img"))
        .unwrap()
        .set_len(12 << 30)
        .unwrap();
    fs::write(bmc.join("os-initrd.cpio"), os_initrd(&peers, &modules)).unwrap();
    fs::write(
        bmc.join("machine.env"),
        format!(
            "QEMU={}\nACCEL={}\nMAC={VM_MAC}\nPUBLIC_MAC={VM_PUBLIC_MAC}\nKERNEL={}\n",
            peers.qemu.display(),
            accelerator(),
            peers.vmlinuz.display(),
        ),
    )
    .unwrap();
    let _machine = Machine(bmc.clone());
    ip(&["addr", "add", &format!("{bmc_ip}/32"), "dev", "lo"]);
    fs::write(
        bmc.join("lan.conf"),
        format!(
            "name \"racker-vm\"\nset_working_mc 0x20\n  startlan 1\n    addr {bmc_ip} 623\n    \
             priv_limit admin\n    allowed_auths_admin none md5 straight\n    \
             guid a123456789abcdefa123456789ab0002\n  endlan\n  \
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
        .args(["netns", "exec", &ns.0])
        .arg(&peers.ipmi_sim)
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

    let cluster = path("cluster");
    let started = Instant::now();
    let mut boot = Command::new("ip");
    boot.args(["netns", "exec", &ns.0])
        .arg(cargo_bin("racker"))
        .arg("--oem-dir")
        .arg(&oem)
        .arg("--state-dir")
        .arg(&state)
        .args(["--sys-class-net", "/sys/class/net"])
        .args([
            "bootstrap",
            "--provision",
            "flatcar",
            "--on-failure",
            "cancel",
            "--install-timeout",
            &DEADLINE.as_secs().to_string(),
            "--cluster-dir",
            cluster.to_str().unwrap(),
            // QEMU's serial console is its first port.
            "--kernel-console",
            "console=ttyS0,115200n8",
            "--public-ips",
            path("public-ips.ini").to_str().unwrap(),
            "--boot-files",
            boot_files.to_str().unwrap(),
        ])
        .env("RUST_LOG", "info")
        .env_remove("RACKER_EXCLUDE")
        .stdin(Stdio::null())
        .stdout(fs::File::create(path("bootstrap.out")).unwrap())
        .stderr(Stdio::piped());
    let mut boot = boot.spawn().unwrap();
    let stderr = boot.stderr.take().unwrap();
    let log = path("server.log");
    std::thread::spawn(move || {
        use std::io::Write as _;
        let mut out = fs::File::create(log).unwrap();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = writeln!(out, "{line}");
        }
    });
    let mut boot = Reaped(boot);
    let serial_path = bmc.join("serial.log");
    let diag = || {
        format!(
            "--- bootstrap ---\n{}\n--- serial ---\n{}\n--- machine ---\n{}\n--- chassis events ---\n{}\n--- stderr ---\n{}",
            fs::read_to_string(path("bootstrap.out")).unwrap_or_default(),
            tail(&serial_path, 120),
            fs::read_to_string(bmc.join("machine.log")).unwrap_or_default(),
            fs::read_to_string(bmc.join("events")).unwrap_or_default(),
            tail(&path("server.log"), 60),
        )
    };
    let status = loop {
        if let Some(status) = boot.0.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > DEADLINE {
            break None;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(
        status.is_some_and(|s| s.success()),
        "bootstrap: {status:?}\n{}",
        diag()
    );
    let bootstrap_done = started.elapsed();
    // The probe runs right after the up report.
    assert!(
        wait_for_marker(
            &serial_path,
            "racker-probe: done",
            Instant::now() + Duration::from_secs(300)
        ),
        "no probe output\n{}",
        diag()
    );
    eprintln!(
        "{test}: bootstrap ({}) installed and booted the VM in {:.1} s (probe after {:.1} s)",
        accelerator(),
        bootstrap_done.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    let serial = fs::read_to_string(&serial_path).unwrap();
    for line in serial.lines().filter(|l| {
        l.contains("racker-live:")
            || l.contains("racker-os:")
            || l.contains("racker-probe:")
            || l.contains("Success!")
            || l.contains("recorded ")
    }) {
        eprintln!("  {line}");
    }
    let out = fs::read_to_string(path("bootstrap.out")).unwrap();
    assert!(
        out.lines()
            .any(|l| l.contains(VM_MAC) && l.contains("os-up")),
        "{}",
        diag()
    );

    // Installer: real Ignition fetched racker's config and wrote its files
    // and units; the real flatcar-install verified and wrote the image.
    for expected in [
        format!("racker-live: ip={vm_ip}"),
        "racker-live: ignition files done".to_owned(),
        "Success! Flatcar Container Linux".to_owned(),
        format!("recorded {VM_MAC} installed"),
        "racker-os: first boot: Ignition applies".to_owned(),
        "racker-os: ignition files done".to_owned(),
    ] {
        assert!(serial.contains(&expected), "{expected}\n{}", diag());
    }
    let machine = fs::read_to_string(bmc.join("machine.log")).unwrap();
    assert!(
        machine.contains("kernel console from the OEM grub.cfg: console=ttyS0,115200n8"),
        "{}",
        diag()
    );

    // The installed OS, as its probe saw it.
    // The install config bootstrap rendered into its cluster directory.
    let hostname = hostname_in(&cluster.join(racker_lokomotive::install_ignition_path(
        VM_MAC.parse().unwrap(),
    )));
    let probe = |s: &str| serial.contains(&format!("racker-probe: {s}"));
    for expected in [
        format!("hostname={hostname}"),
        "resolv.conf -> /run/systemd/resolve/stub-resolv.conf".to_owned(),
        format!("nameservers {RESOLVE_ADDRESS} "),
        "unit racker-report-up.service enabled=enabled Result=success ExecMainStatus=0 ActiveState=inactive".to_owned(),
        format!("report-up output: recorded {VM_MAC} up"),
        "default route: default via 203.0.113.1".to_owned(),
    ] {
        assert!(probe(&expected), "{expected}\n{}", diag());
    }
    let link = |mac: &str| {
        serial
            .lines()
            .find_map(|l| {
                l.split_once(&format!("racker-probe: link {mac} "))
                    .map(|(_, r)| r.to_owned())
            })
            .unwrap_or_default()
    };
    assert!(link(VM_MAC).contains(&format!("{vm_ip}/24")), "{}", diag());
    assert!(
        link(VM_PUBLIC_MAC).contains(VM_PUBLIC_ADDRESS),
        "{}",
        diag()
    );

    // racker recorded the up report, and the state says os-up.
    let report: serde_json::Value = serde_json::from_slice(
        &fs::read(state.join(format!("netboot/reports/{VM_MAC}.json"))).unwrap(),
    )
    .unwrap();
    assert_eq!(report["stage"], "up");
    let st: serde_json::Value =
        serde_json::from_slice(&fs::read(state.join("bootstrap.json")).unwrap()).unwrap();
    assert_eq!(st["nodes"][VM_MAC]["stage"], "os-up", "{st}");

    // The BMC ends at persistent EFI disk boot, set by the management side
    // (nothing on the node talks to it).
    let events = fs::read_to_string(bmc.join("events")).unwrap();
    assert!(events.contains("boot pxe"), "{events}");
    let out = Command::new("ip")
        .args(["netns", "exec", &ns.0])
        .arg(&peers.ipmitool)
        .args([
            "-I",
            "lan",
            "-H",
            &bmc_ip,
            "-U",
            "admin",
            "-P",
            "secret",
            "chassis",
            "bootparam",
            "get",
            "5",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    eprintln!("{test}: ipmitool chassis bootparam get 5:\n{text}");
    // ipmi_sim keeps only the device of parameter 5 (its data 1 reads back
    // 0: neither valid, persistent nor EFI, docs/testing.md), so the
    // persistent EFI flags are checked where racker sent them: its attempt
    // log records the request the BMC acknowledged.
    assert!(
        text.contains("Force Boot from default Hard-Drive"),
        "{text}\n{events}"
    );
    let logs = cluster.join("logs");
    let log: String = fs::read_dir(&logs)
        .unwrap()
        .flatten()
        .map(|e| fs::read_to_string(e.path()).unwrap_or_default())
        .collect();
    assert!(
        log.lines()
            .any(|l| l.contains(VM_MAC)
                && l.contains("installed: persistent EFI disk boot set through")),
        "no disk boot on the installed report in the attempt log:\n{log}"
    );
}
