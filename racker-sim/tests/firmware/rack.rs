//! Fixture shared by the firmware integration tests and benchmark: a
//! simulated rack, racker-netboot's DHCP server on its plain-UDP transport
//! and its HTTP content server, all on loopback.
#![allow(dead_code, unreachable_pub)]

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use racker_inventory::MacAddr;
use racker_netboot::dhcp::transport::{self, DhcpSocket};
use racker_netboot::http::metrics::Metrics;
use racker_netboot::http::{HttpContent, HttpServer};
use racker_netboot::matchbox::{Catalog, FlatcarBoot, NodeEntry, PXE_INITRD, PXE_KERNEL};
use racker_netboot::report::ReportStore;
use racker_netboot::{
    BootConfig, DhcpConfig, DhcpServer, IgnitionDir, IgnitionProfile, InstalledNodes, LeaseTable,
    Reservation,
};
use racker_sim::NodeSpec;
use racker_sim::firmware::{BmcAccess, FirmwareConfig};
use racker_sim::{Password, SimRack};
use tokio::sync::oneshot;

pub const KERNEL_LEN: usize = 3 * 1024 * 1024 + 17;
pub const INITRD_LEN: usize = 1024 * 1024 + 3;
pub const SETTLE: Duration = Duration::from_secs(30);

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

pub fn primary(i: usize) -> [u8; 6] {
    [0x00, 0x11, 0x22, 0x33, 0x44, 0x10 + i as u8]
}

pub fn bmc(i: usize) -> [u8; 6] {
    [0x02, 0x11, 0x22, 0x33, 0x55, 0x10 + i as u8]
}

pub fn reserved(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(172, 24, 213, 10 + i as u8)
}

pub struct Rack {
    _dir: tempfile::TempDir,
    pub state: PathBuf,
    pub reports: ReportStore,
    pub dhcp_addr: SocketAddr,
    pub rack: SimRack,
    stop_dhcp: Option<oneshot::Sender<()>>,
}

pub async fn start(nodes: usize) -> Rack {
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
    pub fn config(&self) -> FirmwareConfig {
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
    pub async fn pxe_boot(&self, i: usize) {
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

    pub fn console(&self, i: usize) -> String {
        String::from_utf8_lossy(&self.rack.nodes()[i].console_log()).into_owned()
    }

    pub fn lease(&self, i: usize) -> Option<Ipv4Addr> {
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
