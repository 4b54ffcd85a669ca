//! Real DHCP clients (`udhcpc`, `dhclient`) against the server across a veth
//! pair between two network namespaces created by each test:
//! server side `172.24.213.1/24` on interface `rk-srv` (bound with
//! `SO_BINDTODEVICE`, port 67), client side `rk-cli` with a chosen MAC.
//! Needs root; skips (or fails under `RACKER_REQUIRE_PRIVILEGED_TESTS=1`).

use std::collections::BTreeSet;
use std::fs;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use racker_inventory::MacAddr;
use racker_netboot::dhcp::transport::{self, DhcpSocket};
use racker_netboot::{DhcpConfig, DhcpServer, InstalledNodes, LeaseTable, Reservation};

const SERVER_IP: Ipv4Addr = Ipv4Addr::new(172, 24, 213, 1);
const NODE_MAC: &str = "02:11:22:33:44:10";
const NODE_IP: Ipv4Addr = Ipv4Addr::new(172, 24, 213, 2);
const BMC_MAC: &str = "02:11:22:33:44:11";
const BMC_IP: Ipv4Addr = Ipv4Addr::new(172, 24, 213, 3);
const UNKNOWN_MAC: &str = "02:99:99:99:99:01";

/// Two namespaces joined by a veth pair (`rk-srv` / `rk-cli`); deleted on
/// drop, even on failure.
struct Netns {
    server: racker_testsupport::netns::Netns,
    client: racker_testsupport::netns::Netns,
}

impl Netns {
    fn new(client_mac: &str) -> Self {
        let server = racker_testsupport::netns::Netns::create("rkdhcps");
        let client = racker_testsupport::netns::Netns::create("rkdhcpc");
        racker_testsupport::netns::veth(&server, "rk-srv", &client, "rk-cli");
        server.ip(&["addr", "add", "172.24.213.1/24", "dev", "rk-srv"]);
        let ns = Self { server, client };
        ns.set_client_mac(client_mac);
        ns
    }

    fn set_client_mac(&self, mac: &str) {
        let c = &self.client;
        c.ip(&["link", "set", "rk-cli", "down"]);
        c.ip(&["addr", "flush", "dev", "rk-cli"]);
        c.ip(&["link", "set", "rk-cli", "address", mac]);
        c.ip(&["link", "set", "rk-cli", "up"]);
    }

    fn exec(&self, tool: &Path) -> Command {
        self.client.exec(tool)
    }
}

/// The DHCP server running in the server namespace on its own thread.
struct Server {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<DhcpServer>>,
}

impl Server {
    fn start(
        ns: &Netns,
        config: DhcpConfig,
        state_dir: &Path,
        installed: BTreeSet<MacAddr>,
    ) -> Self {
        let ns_path = PathBuf::from("/run/netns").join(ns.server.name());
        let state_dir = state_dir.to_owned();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let file = fs::File::open(&ns_path).expect("netns file");
            nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let leases = LeaseTable::load(&state_dir).expect("lease table");
                let server = DhcpServer::new(config, reservations(), leases).expect("server");
                let socket =
                    DhcpSocket::bind_interface("rk-srv", transport::SERVER_PORT).expect("bind");
                ready_tx.send(()).expect("ready");
                let installed: Arc<dyn InstalledNodes + Send + Sync> = Arc::new(installed);
                transport::serve(socket, server, Some(state_dir), installed, async {
                    let _ = stopped.await;
                })
                .await
                .expect("serve")
            })
        });
        ready_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("server ready");
        Self {
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    fn stop(mut self) -> DhcpServer {
        let _ = self.stop.take().map(|s| s.send(()));
        self.thread
            .take()
            .expect("thread")
            .join()
            .expect("server thread")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

fn reservations() -> Vec<Reservation> {
    vec![
        Reservation {
            mac: NODE_MAC.parse().unwrap(),
            ip: NODE_IP,
            hostname: Some("node-0".into()),
        },
        Reservation {
            mac: BMC_MAC.parse().unwrap(),
            ip: BMC_IP,
            hostname: None,
        },
    ]
}

fn config(dynamic: bool) -> DhcpConfig {
    let mut c = DhcpConfig::new(SERVER_IP, 24);
    if dynamic {
        c.dynamic_range = Some((
            Ipv4Addr::new(172, 24, 213, 128),
            Ipv4Addr::new(172, 24, 213, 254),
        ));
    }
    c
}

/// A client hook script appending one line per event to `log`.
fn hook_script(dir: &Path, body: &str) -> (PathBuf, PathBuf) {
    let script = dir.join("hook.sh");
    let log = dir.join("events.log");
    fs::write(
        &script,
        format!("#!/bin/sh\n{body} >> '{}'\n", log.display()),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    (script, log)
}

/// Configures the address like the distribution scripts do (renewals and
/// releases are unicast from it), and logs the event.
const UDHCPC_HOOK: &str = r#"case "$1" in
  bound) ip addr flush dev "$interface"; ip addr add "$ip/24" dev "$interface" ;;
  deconfig) ip addr flush dev "$interface" ;;
esac
echo "$1 ip=$ip siaddr=$siaddr boot_file=$boot_file mask=$subnet router=$router""#;
const DHCLIENT_HOOK: &str = r#"case "$reason" in
  BOUND|REBOOT) ip addr flush dev "$interface"; ip addr add "$new_ip_address/24" dev "$interface" ;;
  RELEASE|EXPIRE|STOP) ip addr flush dev "$interface" ;;
esac
echo "$reason ip=$new_ip_address file=$new_filename mask=$new_subnet_mask""#;

fn events(log: &Path) -> Vec<String> {
    fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Wait (bounded) until the hook log has a line starting with `prefix`.
fn wait_event(log: &Path, prefix: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(l) = events(log).into_iter().find(|l| l.starts_with(prefix)) {
            return l;
        }
        assert!(
            Instant::now() < deadline,
            "no {prefix:?} event; log: {:?}",
            events(log)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn udhcpc_once(
    ns: &Netns,
    udhcpc: &Path,
    script: &Path,
    extra: &[&str],
) -> std::process::ExitStatus {
    ns.exec(udhcpc)
        .args(["-i", "rk-cli", "-f", "-q", "-n", "-t", "3", "-T", "1", "-s"])
        .arg(script)
        .args(extra)
        .status()
        .expect("udhcpc")
}

fn prerequisites(test: &str, tool: &str) -> Option<PathBuf> {
    if !racker_testsupport::require_root(test) {
        return None;
    }
    racker_testsupport::require_tool(test, "ip")?;
    racker_testsupport::require_tool(test, tool)
}

fn lease_of(server: &DhcpServer, mac: &str) -> Option<Ipv4Addr> {
    server.leases().get(mac.parse().unwrap()).map(|l| l.ip)
}

#[test]
fn udhcpc_gets_reservation_renews_and_releases() {
    let Some(udhcpc) = prerequisites("udhcpc_gets_reservation_renews_and_releases", "udhcpc")
    else {
        return;
    };
    let ns = Netns::new(NODE_MAC);
    let state = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let (script, log) = hook_script(work.path(), UDHCPC_HOOK);
    let server = Server::start(&ns, config(false), state.path(), BTreeSet::new());
    let mut child: Child = ns
        .exec(&udhcpc)
        .args(["-i", "rk-cli", "-f", "-t", "5", "-T", "1", "-s"])
        .arg(&script)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("udhcpc");
    let bound = wait_event(&log, "bound");
    assert!(bound.contains("ip=172.24.213.2 "), "{bound}");
    assert!(bound.contains("mask=255.255.255.0 "), "{bound}");
    assert!(bound.contains("router="), "{bound}");
    assert!(!bound.contains("router=172"), "no router option: {bound}");
    // The lease is on disk before the ACK left.
    let on_disk = LeaseTable::load(state.path()).unwrap();
    assert_eq!(
        on_disk.get(NODE_MAC.parse().unwrap()).map(|l| l.ip),
        Some(NODE_IP)
    );
    let before = on_disk.get(NODE_MAC.parse().unwrap()).unwrap().expires;

    // Renew (SIGUSR1): unicast REQUEST, ACK with the same address.
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap());
    std::thread::sleep(Duration::from_millis(1100)); // let the expiry second tick
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGUSR1).unwrap();
    let renew = wait_event(&log, "renew");
    assert!(renew.contains("ip=172.24.213.2 "), "{renew}");
    let after = LeaseTable::load(state.path())
        .unwrap()
        .get(NODE_MAC.parse().unwrap())
        .unwrap()
        .expires;
    assert!(
        after > before,
        "renewal extended the lease ({before} -> {after})"
    );

    // Release (SIGUSR2): the server forgets the lease.
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGUSR2).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while LeaseTable::load(state.path())
        .unwrap()
        .get(NODE_MAC.parse().unwrap())
        .is_some()
    {
        assert!(Instant::now() < deadline, "lease not released");
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    let server = server.stop();
    assert_eq!(lease_of(&server, NODE_MAC), None);
}

#[test]
fn udhcpc_unknown_mac_gets_nothing_and_bmc_gets_its_address() {
    let Some(udhcpc) = prerequisites(
        "udhcpc_unknown_mac_gets_nothing_and_bmc_gets_its_address",
        "udhcpc",
    ) else {
        return;
    };
    let ns = Netns::new(UNKNOWN_MAC);
    let state = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let (script, log) = hook_script(work.path(), UDHCPC_HOOK);
    let server = Server::start(&ns, config(false), state.path(), BTreeSet::new());
    let status = udhcpc_once(&ns, &udhcpc, &script, &["-t", "2"]);
    assert!(!status.success(), "udhcpc got a lease for an unknown MAC");
    assert!(
        events(&log).iter().all(|l| !l.starts_with("bound")),
        "{:?}",
        events(&log)
    );
    assert!(LeaseTable::load(state.path()).unwrap().is_empty());

    ns.set_client_mac(BMC_MAC);
    assert!(udhcpc_once(&ns, &udhcpc, &script, &[]).success());
    let bound = wait_event(&log, "bound");
    assert!(bound.contains("ip=172.24.213.3 "), "{bound}");
    let server = server.stop();
    assert_eq!(lease_of(&server, BMC_MAC), Some(BMC_IP));
    assert_eq!(lease_of(&server, UNKNOWN_MAC), None);
}

#[test]
fn udhcpc_boot_file_by_arch_and_ipxe_user_class() {
    let Some(udhcpc) = prerequisites("udhcpc_boot_file_by_arch_and_ipxe_user_class", "udhcpc")
    else {
        return;
    };
    let ns = Netns::new(NODE_MAC);
    let state = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let (script, log) = hook_script(work.path(), UDHCPC_HOOK);
    let installed: BTreeSet<MacAddr> = [BMC_MAC.parse().unwrap()].into();
    let server = Server::start(&ns, config(false), state.path(), installed);
    let pxe = "PXEClient:Arch:00000:UNDI:002001";
    let cases: [(&[&str], &str); 4] = [
        (&["-V", pxe, "-x", "0x5d:0000"], "boot_file=undionly.kpxe "),
        (&["-V", pxe, "-x", "0x5d:0007"], "boot_file=ipxe.efi "),
        (&["-V", pxe, "-x", "0x5d:000b"], "boot_file=ipxe-arm64.efi "),
        // iPXE sends user class 77 as the bare bytes "iPXE".
        (
            &["-V", pxe, "-x", "0x5d:0007", "-x", "0x4d:69505845"],
            "boot_file=http://172.24.213.1:8080/boot.ipxe ",
        ),
    ];
    for (args, want) in cases {
        fs::write(&log, "").unwrap();
        assert!(
            udhcpc_once(&ns, &udhcpc, &script, args).success(),
            "{args:?}"
        );
        let bound = wait_event(&log, "bound");
        assert!(bound.contains(want), "{args:?}: {bound}");
        assert!(bound.contains("siaddr=172.24.213.1 "), "{bound}");
    }
    // An installed node gets its address but no boot file.
    ns.set_client_mac(BMC_MAC);
    fs::write(&log, "").unwrap();
    assert!(udhcpc_once(&ns, &udhcpc, &script, &["-V", pxe, "-x", "0x5d:0000"]).success());
    let bound = wait_event(&log, "bound");
    assert!(
        bound.contains("ip=172.24.213.3 ") && bound.contains("boot_file= "),
        "{bound}"
    );
    drop(server);
}

#[test]
fn dhclient_gets_reservation_reboots_and_releases() {
    let Some(dhclient) =
        prerequisites("dhclient_gets_reservation_reboots_and_releases", "dhclient")
    else {
        return;
    };
    let ns = Netns::new(NODE_MAC);
    let state = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let (script, log) = hook_script(work.path(), DHCLIENT_HOOK);
    let lease_file = work.path().join("dhclient.leases");
    let pid_file = work.path().join("dhclient.pid");
    let server = Server::start(&ns, config(false), state.path(), BTreeSet::new());
    let dhclient_run = |extra: &[&str]| {
        ns.exec(&dhclient)
            .args(["-1", "-d", "-sf"])
            .arg(&script)
            .arg("-lf")
            .arg(&lease_file)
            .arg("-pf")
            .arg(&pid_file)
            .args(extra)
            .arg("rk-cli")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("dhclient")
    };
    // -1 -d: try once, stay in the foreground; stop it after it is bound.
    let mut first = dhclient_run(&[]);
    let bound = wait_event(&log, "BOUND");
    let _ = first.kill();
    let _ = first.wait();
    assert!(bound.contains("ip=172.24.213.2 "), "{bound}");
    assert!(bound.contains("mask=255.255.255.0"), "{bound}");
    // Second start with the lease file: INIT-REBOOT REQUEST, same address.
    let mut second = dhclient_run(&[]);
    let reboot = wait_event(&log, "REBOOT");
    let _ = second.kill();
    let _ = second.wait();
    assert!(reboot.contains("ip=172.24.213.2 "), "{reboot}");
    // Release.
    let status = ns
        .exec(&dhclient)
        .args(["-r", "-sf"])
        .arg(&script)
        .arg("-lf")
        .arg(&lease_file)
        .arg("-pf")
        .arg(&pid_file)
        .arg("rk-cli")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("dhclient -r");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    while LeaseTable::load(state.path())
        .unwrap()
        .get(NODE_MAC.parse().unwrap())
        .is_some()
    {
        assert!(Instant::now() < deadline, "lease not released");
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(server.stop());
}

#[test]
fn restarted_server_keeps_dynamic_leases() {
    let Some(udhcpc) = prerequisites("restarted_server_keeps_dynamic_leases", "udhcpc") else {
        return;
    };
    let ns = Netns::new(UNKNOWN_MAC);
    let state = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let (script, log) = hook_script(work.path(), UDHCPC_HOOK);
    let server = Server::start(&ns, config(true), state.path(), BTreeSet::new());
    assert!(udhcpc_once(&ns, &udhcpc, &script, &[]).success());
    let first = wait_event(&log, "bound");
    assert!(first.contains("ip=172.24.213.128 "), "{first}");
    drop(server.stop());

    // A new server process state: only the lease file survives.
    let server = Server::start(&ns, config(true), state.path(), BTreeSet::new());
    ns.set_client_mac("02:99:99:99:99:02");
    fs::write(&log, "").unwrap();
    assert!(udhcpc_once(&ns, &udhcpc, &script, &[]).success());
    let other = wait_event(&log, "bound");
    assert!(
        other.contains("ip=172.24.213.129 "),
        "address handed twice? {other}"
    );
    ns.set_client_mac(UNKNOWN_MAC);
    fs::write(&log, "").unwrap();
    assert!(udhcpc_once(&ns, &udhcpc, &script, &[]).success());
    let again = wait_event(&log, "bound");
    assert!(again.contains("ip=172.24.213.128 "), "{again}");
    let server = server.stop();
    assert_eq!(
        lease_of(&server, UNKNOWN_MAC),
        Some(Ipv4Addr::new(172, 24, 213, 128))
    );
    assert_eq!(
        lease_of(&server, "02:99:99:99:99:02"),
        Some(Ipv4Addr::new(172, 24, 213, 129))
    );
}
