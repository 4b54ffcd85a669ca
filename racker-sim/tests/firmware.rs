//! Simulated nodes PXE-boot against racker-netboot's real DHCP server
//! (plain-UDP transport) and HTTP content server on loopback; the boot
//! device is set over real IPMI (racker-ipmi) to each node's simulated BMC.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use racker_inventory::MacAddr;
use racker_netboot::dhcp::transport::{self, DhcpSocket};
use racker_netboot::http::metrics::Metrics;
use racker_netboot::http::{HttpContent, HttpServer};
use racker_netboot::matchbox::{Catalog, FlatcarBoot, NodeEntry, PXE_INITRD, PXE_KERNEL};
use racker_netboot::report::{ReportStore, Stage};
use racker_netboot::{
    BootConfig, DhcpConfig, DhcpServer, IgnitionDir, IgnitionProfile, InstalledNodes, LeaseTable,
    Reservation,
};
use racker_sim::firmware::{
    BmcAccess, Firmware, FirmwareConfig, FirmwareFault, FirmwareFaults, OS_UP_MARKER, Phase,
};
use racker_sim::{BootDevice, NodeSpec, Password, SimRack};
use tokio::sync::oneshot;

const KERNEL_LEN: usize = 3 * 1024 * 1024 + 17;
const INITRD_LEN: usize = 1024 * 1024 + 3;
const SETTLE: Duration = Duration::from_secs(30);

fn pseudo_random(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.max(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// Installed according to the report store, as `racker netboot serve` does.
struct Installed(ReportStore);

impl InstalledNodes for Installed {
    fn is_installed(&self, mac: MacAddr) -> bool {
        self.0.is_installed(mac)
    }
}

fn primary(i: usize) -> [u8; 6] {
    [0x00, 0x11, 0x22, 0x33, 0x44, 0x10 + i as u8]
}

fn bmc(i: usize) -> [u8; 6] {
    [0x02, 0x11, 0x22, 0x33, 0x55, 0x10 + i as u8]
}

fn reserved(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(172, 24, 213, 10 + i as u8)
}

struct Rack {
    _dir: tempfile::TempDir,
    state: PathBuf,
    reports: ReportStore,
    dhcp_addr: SocketAddr,
    rack: SimRack,
    stop_dhcp: Option<oneshot::Sender<()>>,
}

async fn start(nodes: usize) -> Rack {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let version = state.join("assets/flatcar/4081.2.0");
    std::fs::create_dir_all(&version).unwrap();
    std::fs::write(version.join(PXE_KERNEL), pseudo_random(KERNEL_LEN, 7)).unwrap();
    std::fs::write(version.join(PXE_INITRD), pseudo_random(INITRD_LEN, 9)).unwrap();
    std::os::unix::fs::symlink("4081.2.0", state.join("assets/flatcar/current")).unwrap();
    let ign = IgnitionDir::in_state_dir(&state);
    for i in 0..nodes {
        let mac = MacAddr::new(primary(i));
        let p = ign.path(mac, IgnitionProfile::Install);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, br#"{"ignition":{"version":"3.4.0"}}"#).unwrap();
    }

    // HTTP: the base URL must be known before the catalog is built.
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let http_addr = probe.local_addr().unwrap();
    drop(probe);
    let base = format!("http://{http_addr}");
    let entries: Vec<NodeEntry> = (0..nodes)
        .map(|i| NodeEntry {
            mac: MacAddr::new(primary(i)),
            hostname: Some(format!("node-{i}")),
            ip: Some(reserved(i)),
            role: Some("flatcar".into()),
        })
        .collect();
    let reports = ReportStore::open(&state).unwrap();
    let content = HttpContent::new(
        Catalog::flatcar(&entries, &FlatcarBoot::new(&base)),
        reports.clone(),
        Arc::new(ign),
        &state.join("assets"),
        Arc::new(Metrics::default()),
    );
    let http = HttpServer::bind(http_addr, content).await.unwrap();
    tokio::spawn(http.run());

    // DHCP on the plain-UDP transport, with a reservation per node.
    let mut config = DhcpConfig::new(Ipv4Addr::new(172, 24, 213, 1), 24);
    config.boot = BootConfig::new(base.clone());
    let reservations = (0..nodes).map(|i| Reservation {
        mac: MacAddr::new(primary(i)),
        ip: reserved(i),
        hostname: Some(format!("node-{i}")),
    });
    let server = DhcpServer::new(config, reservations, LeaseTable::new()).unwrap();
    let socket = DhcpSocket::bind_plain("127.0.0.1:0".parse().unwrap()).unwrap();
    let dhcp_addr = socket.local_addr();
    let (stop_dhcp, stopped) = oneshot::channel::<()>();
    let installed: Arc<dyn InstalledNodes + Send + Sync> = Arc::new(Installed(reports.clone()));
    let state_dir = state.clone();
    tokio::spawn(async move {
        transport::serve(socket, server, Some(state_dir), installed, async {
            let _ = stopped.await;
        })
        .await
    });

    let specs = (0..nodes)
        .map(|i| NodeSpec::new(bmc(i), "127.0.0.1:0".parse().unwrap()).primary_mac(primary(i)))
        .collect();
    let rack = SimRack::start(specs, "USER", Password::new("PASS"))
        .await
        .unwrap();
    Rack {
        _dir: dir,
        state,
        reports,
        dhcp_addr,
        rack,
        stop_dhcp: Some(stop_dhcp),
    }
}

impl Rack {
    fn config(&self) -> FirmwareConfig {
        FirmwareConfig::new(self.dhcp_addr)
            .bmc(BmcAccess::Lan {
                user: "USER".into(),
                password: Password::new("PASS"),
            })
            .dhcp_retries(Duration::from_millis(100), 3)
            .http_retries(Duration::from_secs(10), 2, Duration::from_millis(20))
    }

    /// What the orchestrator does over IPMI: disable the 60-s timer, next
    /// boot PXE (persistent, EFI), power on (or cycle).
    async fn pxe_boot(&self, i: usize) {
        let node = &self.rack.nodes()[i];
        let addr = node.ipmi_addr();
        let bmc = racker_ipmi::BmcAddress::from_ip(addr.ip(), addr.port());
        let creds = racker_ipmi::Credentials::new("USER", "PASS");
        let mut s = racker_ipmi::Session::connect(&bmc, &creds, &Default::default())
            .await
            .unwrap();
        s.disable_boot_flag_timeout().await.unwrap();
        s.set_boot_device(racker_ipmi::BootDevice::Pxe, true, true)
            .await
            .unwrap();
        let action = if node.snapshot().power_on {
            racker_ipmi::PowerAction::Cycle
        } else {
            racker_ipmi::PowerAction::On
        };
        s.power(action).await.unwrap();
        s.close().await.unwrap();
    }

    fn console(&self, i: usize) -> String {
        String::from_utf8_lossy(&self.rack.nodes()[i].console_log()).into_owned()
    }

    fn lease(&self, i: usize) -> Option<Ipv4Addr> {
        LeaseTable::load(&self.state)
            .unwrap()
            .get(MacAddr::new(primary(i)))
            .map(|l| l.ip)
    }
}

impl Drop for Rack {
    fn drop(&mut self) {
        if let Some(stop) = self.stop_dhcp.take() {
            let _ = stop.send(());
        }
    }
}

fn assert_console_steps(console: &str, steps: &[&str]) {
    let mut at = 0;
    for step in steps {
        match console[at..].find(step) {
            Some(p) => at += p + step.len(),
            None => panic!("console lacks {step:?} (in order):\n{console}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_pxe_install_report_and_boot_from_disk() {
    let rack = start(2).await;
    let fw: Vec<Firmware> = rack
        .rack
        .nodes()
        .iter()
        .map(|n| Firmware::spawn(n, rack.config()).unwrap())
        .collect();
    for i in 0..2 {
        rack.pxe_boot(i).await;
    }
    for (i, f) in fw.iter().enumerate() {
        let s = f.wait_settled(SETTLE).await.unwrap();
        assert_eq!(s.phase, Phase::OsUp, "node {i}:\n{}", rack.console(i));
        // The reserved address, on both DHCP exchanges and in the lease table.
        assert_eq!(s.lease, Some(reserved(i)));
        assert_eq!(s.ipxe_lease, Some(reserved(i)));
        assert_eq!(rack.lease(i), Some(reserved(i)));
        assert_eq!(s.boot_file.as_deref(), Some("ipxe.efi"));
        // Kernel, initrd and Ignition fetched whole.
        let size = |suffix: &str| {
            s.downloads
                .iter()
                .find(|d| d.url.contains(suffix))
                .map(|d| d.bytes)
        };
        assert_eq!(size(PXE_KERNEL), Some(KERNEL_LEN as u64));
        assert_eq!(size(PXE_INITRD), Some(INITRD_LEN as u64));
        assert!(size("/ignition?").is_some_and(|n| n > 0));
        // The report store recorded the install.
        let report = rack.reports.get(MacAddr::new(primary(i))).unwrap();
        assert_eq!(report.stage, Stage::Installed);
        // The BMC's boot flags: disk, persistent, EFI; timer disabled.
        let snap = rack.rack.nodes()[i].snapshot();
        assert!(snap.power_on);
        assert_eq!(snap.boot_flags.device(), BootDevice::Disk);
        assert!(snap.boot_flags.valid());
        assert!(snap.boot_flags.persistent());
        assert!(snap.boot_flags.efi());
        assert_eq!(snap.boot_flag_clearing, 0x1F);
        assert_eq!(s.boots, 2);
        assert_console_steps(
            &rack.console(i),
            &[
                "boot device pxe",
                ">>Start PXE over IPv4",
                &format!("Station IP address is {}", reserved(i)),
                "NBP filename is ipxe.efi",
                "Configuring (net0",
                "/boot.ipxe",
                "/ipxe?mac=",
                PXE_KERNEL,
                PXE_INITRD,
                "ignition[fetch]: GET",
                "reported stage installing",
                "flatcar-install: Success!",
                "next boot set to disk (persistent, EFI)",
                "reported stage installed",
                "rebooting",
                "boot device disk",
                "booted from disk",
                OS_UP_MARKER,
                &format!("node-{i} login:"),
            ],
        );
    }

    // PXE again: the server knows the node is installed, so it boots its
    // disk and is not reinstalled.
    rack.pxe_boot(0).await;
    let s = fw[0]
        .wait_for(SETTLE, |s| s.boots == 3 && s.phase == Phase::OsUp)
        .await
        .unwrap();
    assert_eq!(s.installs, 1);
    assert!(
        rack.console(0)
            .contains("PXE-E53: No boot filename received")
    );
    assert_eq!(
        rack.reports.get(MacAddr::new(primary(0))).unwrap().stage,
        Stage::Installed
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_fault_kind() {
    let kinds = FirmwareFault::ALL;
    let rack = start(kinds.len()).await;
    let fw: Vec<Firmware> = rack
        .rack
        .nodes()
        .iter()
        .zip(kinds)
        .map(|(n, k)| Firmware::spawn(n, rack.config().faults(FirmwareFaults::only(k))).unwrap())
        .collect();
    for i in 0..kinds.len() {
        rack.pxe_boot(i).await;
    }
    for (i, (f, kind)) in fw.iter().zip(kinds).enumerate() {
        let s = f.wait_settled(SETTLE).await.unwrap();
        let console = rack.console(i);
        let mac = MacAddr::new(primary(i));
        let flags = rack.rack.nodes()[i].snapshot().boot_flags;
        // Nobody got to set disk boot.
        assert_eq!(flags.device(), BootDevice::Pxe, "{kind}");
        assert_eq!(s.installs, 0, "{kind}");
        match kind {
            FirmwareFault::NoLease => {
                assert!(matches!(s.phase, Phase::Halted { .. }));
                assert_eq!(s.lease, None);
                assert_eq!(rack.lease(i), None);
                assert!(console.contains("PXE-E51"), "{console}");
                assert!(rack.reports.get(mac).is_none());
            }
            FirmwareFault::DownloadFail => {
                assert!(matches!(s.phase, Phase::Halted { .. }));
                assert_eq!(s.lease, Some(reserved(i)));
                assert!(!s.downloads.iter().any(|d| d.url.contains(PXE_KERNEL)));
                assert!(console.contains("connection reset"), "{console}");
                assert!(console.contains("Could not boot"), "{console}");
                assert!(rack.reports.get(mac).is_none());
            }
            FirmwareFault::InstallFail => {
                assert!(matches!(s.phase, Phase::Halted { .. }));
                let report = rack.reports.get(mac).unwrap();
                assert_eq!(report.stage, Stage::Failed);
                assert!(
                    report
                        .reason
                        .as_deref()
                        .unwrap_or_default()
                        .contains("Input/output error"),
                    "{report:?}"
                );
            }
            FirmwareFault::Hang => {
                assert_eq!(s.phase, Phase::Hung);
                assert_eq!(rack.reports.get(mac).unwrap().stage, Stage::Installing);
                assert!(console.ends_with("/dev/sda...\r\n"), "{console}");
            }
            _ => unreachable!(),
        }
    }
}
