//! DORA/s with `perfdhcp` (Debian `kea-admin`) across a veth pair between
//! two network namespaces, against this server (1,000 reservations, leases
//! fsynced before every ACK batch), dnsmasq (the configuration our renderer
//! writes) and, when installed, ISC Kea (memfile). Prints perfdhcp's own
//! reports; needs root, skips otherwise.
//!
//! `cargo bench -p racker-netboot --bench dhcp_perfdhcp`; rates via
//! `RACKER_BENCH_RATES=5000,10000` and seconds per rate via
//! `RACKER_BENCH_SECONDS=5`.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::fmt::Write as _;
use std::fs;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use racker_inventory::MacAddr;
use racker_netboot::dhcp::transport::{self, DhcpSocket};
use racker_netboot::dnsmasq::{self, DnsmasqOptions};
use racker_netboot::{
    DhcpConfig, DhcpServer, InstalledNodes, LeaseTable, NoneInstalled, Reservation,
};

const SERVER_IP: Ipv4Addr = Ipv4Addr::new(172, 24, 212, 1);
const CLIENT_CIDR: &str = "172.24.215.254/22";
const CLIENTS: u32 = 1000;

/// The server and client namespaces (deleted on drop).
struct Netns(
    racker_testsupport::netns::Netns,
    racker_testsupport::netns::Netns,
);

fn reservations() -> Vec<Reservation> {
    (0..CLIENTS)
        .map(|i| {
            let b = i.to_be_bytes();
            Reservation {
                mac: MacAddr::new([0x02, 0xbe, b[0], b[1], b[2], b[3]]),
                ip: Ipv4Addr::from(u32::from(SERVER_IP) + 9 + i),
                hostname: None,
            }
        })
        .collect()
}

fn config() -> DhcpConfig {
    DhcpConfig::new(SERVER_IP, 22)
}

fn rss_kib() -> String {
    fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .unwrap_or("VmRSS: ?")
        .to_owned()
}

fn perfdhcp(ns: &Netns, perfdhcp: &Path, macs: &Path, rate: u32, seconds: u32) {
    println!("--- perfdhcp -r {rate} -p {seconds} ---");
    let status = Command::new("ip")
        .args(["netns", "exec", ns.1.name()])
        .arg(perfdhcp)
        .args([
            "-4",
            "-l",
            "rk-cli",
            "-r",
            &rate.to_string(),
            "-p",
            &seconds.to_string(),
            "-R",
        ])
        .arg(CLIENTS.to_string())
        .arg("-M")
        .arg(macs)
        .arg(SERVER_IP.to_string())
        .status()
        .expect("perfdhcp");
    println!("(perfdhcp exit status {status})");
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    if !racker_testsupport::require_root("dhcp_perfdhcp bench") {
        return;
    }
    let Some(perf) = racker_testsupport::require_tool("dhcp_perfdhcp bench", "perfdhcp") else {
        return;
    };
    let rates: Vec<u32> = std::env::var("RACKER_BENCH_RATES")
        .unwrap_or_else(|_| "5000,10000,20000,40000".into())
        .split(',')
        .filter_map(|r| r.trim().parse().ok())
        .collect();
    let seconds: u32 = std::env::var("RACKER_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let work = tempfile::tempdir().expect("tempdir");
    let ns = Netns(
        racker_testsupport::netns::Netns::create("rkbenchs"),
        racker_testsupport::netns::Netns::create("rkbenchc"),
    );
    racker_testsupport::netns::veth(&ns.0, "rk-srv", &ns.1, "rk-cli");
    ns.0.ip(&["addr", "add", "172.24.212.1/22", "dev", "rk-srv"]);
    ns.1.ip(&["addr", "add", CLIENT_CIDR, "dev", "rk-cli"]);
    let res = reservations();
    let macs = work.path().join("macs.txt");
    fs::write(
        &macs,
        res.iter()
            .map(|r| format!("{}\n", r.mac))
            .collect::<String>(),
    )
    .expect("macs");

    // 1. racker-netboot, in this process, in the server namespace.
    {
        println!("=== racker-netboot ({CLIENTS} reservations, durable leases) ===");
        let state = work.path().join("racker-state");
        let ns_path = PathBuf::from("/run/netns").join(ns.0.name());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let state2 = state.clone();
        let server_res = res.clone();
        let thread = std::thread::spawn(move || {
            let file = fs::File::open(&ns_path).expect("netns");
            nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("rt");
            rt.block_on(async move {
                let server = DhcpServer::new(
                    config(),
                    server_res,
                    LeaseTable::load(&state2).expect("leases"),
                )
                .expect("server");
                let socket =
                    DhcpSocket::bind_interface("rk-srv", transport::SERVER_PORT).expect("bind");
                ready_tx.send(()).expect("ready");
                let installed: Arc<dyn InstalledNodes + Send + Sync> = Arc::new(NoneInstalled);
                transport::serve(socket, server, Some(state2), installed, async {
                    let _ = stopped.await;
                })
                .await
                .expect("serve")
            })
        });
        ready_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("ready");
        println!(
            "RSS with {CLIENTS} reservations, before traffic: {}",
            rss_kib()
        );
        for &rate in &rates {
            perfdhcp(&ns, &perf, &macs, rate, seconds);
        }
        println!("RSS after traffic: {}", rss_kib());
        let _ = stop.send(());
        let server = thread.join().expect("server thread");
        println!(
            "leases on disk: {}",
            LeaseTable::load(&state).expect("leases").len()
        );
        drop(server);
    }

    // 2. dnsmasq with the configuration we render.
    if let Some(dnsmasq_bin) = racker_testsupport::find_tool("dnsmasq") {
        println!("=== dnsmasq ===");
        let mut options = DnsmasqOptions::new();
        options.interface = Some("rk-srv".into());
        options.lease_file = Some(work.path().join("dnsmasq.leases"));
        let mut conf = dnsmasq::render(&config(), &res, &options).expect("render");
        conf = conf.replace("log-dhcp\n", "");
        conf.push_str("dhcp-lease-max=10000\nno-ping\n");
        let conf_path = work.path().join("dnsmasq.conf");
        fs::write(&conf_path, conf).expect("conf");
        let child = Command::new("ip")
            .args(["netns", "exec", ns.0.name()])
            .arg(dnsmasq_bin)
            .args([
                "--keep-in-foreground",
                "--user=root",
                "--pid-file",
                "--log-facility=-",
            ])
            .arg(format!("--conf-file={}", conf_path.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("dnsmasq");
        let child = KillOnDrop(child);
        std::thread::sleep(Duration::from_millis(500));
        for &rate in &rates {
            perfdhcp(&ns, &perf, &macs, rate, seconds);
        }
        println!("dnsmasq RSS: {}", child_rss(&child.0));
    }

    // 3. ISC Kea (memfile), when installed.
    if let Some(kea) = racker_testsupport::find_tool("kea-dhcp4") {
        println!("=== kea-dhcp4 (memfile) ===");
        let mut reservations = String::new();
        for (i, r) in res.iter().enumerate() {
            let sep = if i == 0 { "" } else { "," };
            let _ = write!(
                reservations,
                "{sep}{{\"hw-address\":\"{}\",\"ip-address\":\"{}\"}}",
                r.mac, r.ip
            );
        }
        let conf = format!(
            r#"{{"Dhcp4":{{
  "interfaces-config":{{"interfaces":["rk-srv"],"dhcp-socket-type":"udp"}},
  "lease-database":{{"type":"memfile","persist":true,"name":"{leases}","lfc-interval":0}},
  "valid-lifetime":120,
  "host-reservation-identifiers":["hw-address"],
  "subnet4":[{{"id":1,"subnet":"172.24.212.0/22","reservations":[{reservations}]}}],
  "loggers":[{{"name":"kea-dhcp4","output_options":[{{"output":"stderr"}}],"severity":"ERROR"}}]
}}}}"#,
            leases = work.path().join("kea-leases4.csv").display()
        );
        let conf_path = work.path().join("kea.json");
        fs::write(&conf_path, conf).expect("kea conf");
        let child = Command::new("ip")
            .args(["netns", "exec", ns.0.name()])
            .arg(kea)
            .arg("-c")
            .arg(&conf_path)
            .env("KEA_PIDFILE_DIR", work.path())
            .env("KEA_LOCKFILE_DIR", work.path())
            .stdout(Stdio::null())
            .spawn()
            .expect("kea");
        let child = KillOnDrop(child);
        std::thread::sleep(Duration::from_millis(1000));
        for &rate in &rates {
            perfdhcp(&ns, &perf, &macs, rate, seconds);
        }
        println!("kea RSS: {}", child_rss(&child.0));
    }
}

/// RSS of the process `ip netns exec` replaced itself with.
fn child_rss(child: &Child) -> String {
    fs::read_to_string(format!("/proc/{}/status", child.id()))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .unwrap_or("VmRSS: ?")
        .to_owned()
}

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
