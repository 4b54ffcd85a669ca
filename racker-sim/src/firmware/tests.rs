//! Unit tests of the firmware state machine with scripted HTTP answers and
//! racker-netboot's real (sans-IO) DHCP server core as the DHCP peer.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant, SystemTime};

use racker_inventory::MacAddr;
use racker_netboot::{BootConfig, DhcpConfig, DhcpServer, LeaseTable, Reservation};

use super::*;
use crate::chassis::BootDevice;

const MAC: [u8; 6] = [0x00, 0x11, 0x22, 0x33, 0x44, 0x10];
const BASE: &str = "http://127.0.0.1:8080";
const KERNEL: u64 = 70_001;
const INITRD: u64 = 12_345;

fn server() -> DhcpServer {
    let mut config = DhcpConfig::new(Ipv4Addr::new(172, 24, 213, 1), 24);
    config.boot = BootConfig::new(BASE);
    let r = Reservation {
        mac: MacAddr::new(MAC),
        ip: Ipv4Addr::new(172, 24, 213, 2),
        hostname: Some("node-0".into()),
    };
    DhcpServer::new(config, [r], LeaseTable::new()).unwrap()
}

fn node_script() -> String {
    format!(
        "#!ipxe\nkernel {BASE}/assets/flatcar/current/flatcar_production_pxe.vmlinuz initrd=flatcar_production_pxe_image.cpio.gz flatcar.first_boot=1 ignition.config.url={BASE}/ignition?mac=${{mac:hexhyp}}&profile=install console=ttyS0,115200n8\ninitrd {BASE}/assets/flatcar/current/flatcar_production_pxe_image.cpio.gz\nboot\n"
    )
}

fn ok(body: &[u8]) -> HttpOutcome {
    HttpOutcome::Response {
        status: 200,
        content_length: Some(body.len() as u64),
        received: body.len() as u64,
        body: body.to_vec(),
    }
}

fn sized(n: u64) -> HttpOutcome {
    HttpOutcome::Response {
        status: 200,
        content_length: Some(n),
        received: n,
        body: Vec::new(),
    }
}

/// The netboot server's answers, as racker-netboot's HTTP routes give them.
fn content(req: &HttpRequest) -> HttpOutcome {
    let url = url::Url::parse(&req.url).unwrap();
    if req.break_connection {
        return HttpOutcome::Failed("connection reset (test)".into());
    }
    match (req.method, url.path()) {
        (HttpMethod::Get, "/boot.ipxe") => {
            ok(b"#!ipxe\nchain /ipxe?mac=${mac:hexhyp}&arch=${buildarch:uristring}\n")
        }
        (HttpMethod::Get, "/ipxe") => {
            let q = url.query().unwrap_or_default();
            assert!(q.starts_with("mac=00-11-22-33-44-10&arch="), "{q}");
            ok(node_script().as_bytes())
        }
        (HttpMethod::Get, p) if p.ends_with(".vmlinuz") => sized(KERNEL),
        (HttpMethod::Get, p) if p.ends_with(".cpio.gz") => sized(INITRD),
        (HttpMethod::Get, "/ignition") => {
            assert_eq!(url.query(), Some("mac=00-11-22-33-44-10&profile=install"));
            ok(br#"{"ignition":{"version":"3.4.0"}}"#)
        }
        (HttpMethod::Post, "/report") => ok(b"recorded\n"),
        _ => HttpOutcome::Response {
            status: 404,
            content_length: Some(0),
            received: 0,
            body: Vec::new(),
        },
    }
}

struct Harness {
    m: FirmwareMachine,
    now: Instant,
    dhcp: DhcpServer,
    installed: BTreeSet<MacAddr>,
    console: String,
    requests: Vec<HttpRequest>,
    dhcp_sent: usize,
    bmc_calls: usize,
    reboots: usize,
    bmc_result: Result<(), String>,
}

impl Harness {
    fn new(cfg: MachineConfig) -> Self {
        Harness {
            m: FirmwareMachine::new(cfg),
            now: Instant::now(),
            dhcp: server(),
            installed: BTreeSet::new(),
            console: String::new(),
            requests: Vec::new(),
            dhcp_sent: 0,
            bmc_calls: 0,
            reboots: 0,
            bmc_result: Ok(()),
        }
    }

    fn default() -> Self {
        let mut cfg = MachineConfig::new(MAC);
        cfg.retry_delay = Duration::from_millis(10);
        cfg.dhcp_timeout = Duration::from_millis(100);
        Self::new(cfg)
    }

    /// Run the machine against the peers until it waits for nothing but
    /// a timer that is not due; `http` answers HTTP requests.
    fn pump(&mut self, http: &mut dyn FnMut(&HttpRequest) -> HttpOutcome) {
        for _ in 0..10_000 {
            if let Some(a) = self.m.poll_action() {
                match a {
                    Action::Console(t) => self.console.push_str(&t),
                    Action::SendDhcp(bytes) => {
                        self.dhcp_sent += 1;
                        let h = self
                            .dhcp
                            .handle(&bytes, SystemTime::now(), &self.installed)
                            .unwrap();
                        if let Some(reply) = h.reply {
                            self.m.handle_dhcp(self.now, &reply.bytes);
                        }
                    }
                    Action::Http(req) => {
                        self.requests.push(req.clone());
                        let out = http(&req);
                        self.m.handle_http(self.now, req.id, out);
                    }
                    Action::SetDiskBoot => {
                        self.bmc_calls += 1;
                        self.m.handle_bmc(self.now, self.bmc_result.clone());
                    }
                    Action::Reboot => {
                        self.reboots += 1;
                        self.m.power_off(self.now);
                        self.m.boot(self.now, BootDevice::Disk, true);
                    }
                }
                continue;
            }
            match self.m.poll_timeout() {
                Some(d) => {
                    self.now = self.now.max(d);
                    self.m.handle_timeout(self.now);
                }
                None => return,
            }
        }
        panic!("the machine never settled");
    }

    fn urls(&self) -> Vec<String> {
        self.requests.iter().map(|r| r.url.clone()).collect()
    }
}

#[test]
fn happy_path_installs_reports_and_boots_from_disk() {
    let mut h = Harness::default();
    h.m.boot(h.now, BootDevice::Pxe, true);
    h.pump(&mut content);
    let s = h.m.status().clone();
    assert_eq!(s.phase, Phase::OsUp, "{}", h.console);
    assert_eq!(s.lease, Some(Ipv4Addr::new(172, 24, 213, 2)));
    assert_eq!(s.ipxe_lease, Some(Ipv4Addr::new(172, 24, 213, 2)));
    assert_eq!(s.boot_file.as_deref(), Some("ipxe.efi"));
    assert_eq!(
        s.script_url.as_deref(),
        Some("http://127.0.0.1:8080/boot.ipxe")
    );
    assert_eq!(s.reports, vec!["installing", "installed", "up"]);
    assert_eq!(s.installs, 1);
    assert!(s.disk_installed);
    assert_eq!(s.boots, 2);
    assert_eq!(h.bmc_calls, 1);
    assert_eq!(h.reboots, 1);
    // Two DORA exchanges: PXE ROM and iPXE.
    assert_eq!(h.dhcp_sent, 4);
    let bytes: Vec<u64> = s.downloads.iter().map(|d| d.bytes).collect();
    assert!(bytes.contains(&KERNEL) && bytes.contains(&INITRD));
    assert_eq!(
        h.urls(),
        vec![
            format!("{BASE}/boot.ipxe"),
            format!("{BASE}/ipxe?mac=00-11-22-33-44-10&arch=x86_64"),
            format!("{BASE}/assets/flatcar/current/flatcar_production_pxe.vmlinuz"),
            format!("{BASE}/assets/flatcar/current/flatcar_production_pxe_image.cpio.gz"),
            format!("{BASE}/ignition?mac=00-11-22-33-44-10&profile=install"),
            format!("{BASE}/report?mac=00%3A11%3A22%3A33%3A44%3A10&stage=installing"),
            format!("{BASE}/report?mac=00%3A11%3A22%3A33%3A44%3A10&stage=installed"),
            format!("{BASE}/report?mac=00%3A11%3A22%3A33%3A44%3A10&stage=up"),
        ]
    );
    for step in [
        ">>Start PXE over IPv4",
        "Station IP address is 172.24.213.2",
        "NBP filename is ipxe.efi",
        "Configuring (net0 00:11:22:33:44:10)",
        "ignition[fetch]: GET",
        "flatcar-install: Success!",
        "next boot set to disk (persistent, EFI)",
        "reported stage installed",
        "booted from disk",
        OS_UP_MARKER,
        "node-0 login:",
        "Finished racker-report-up.service (reported up)",
    ] {
        assert!(
            h.console.contains(step),
            "console lacks {step:?}:\n{}",
            h.console
        );
    }
    // The server's lease table agrees.
    assert_eq!(
        h.dhcp.leases().get(MacAddr::new(MAC)).map(|l| l.ip),
        Some(Ipv4Addr::new(172, 24, 213, 2))
    );
}

/// `no-os-up`: installed and booted from disk, but the OS never reports up;
/// a failing `up` POST is shown on the console and the OS stays up.
#[test]
fn os_that_cannot_report_stays_up_and_says_so() {
    let mut h = Harness::default();
    h.m.set_faults(FirmwareFaults::only(FirmwareFault::NoOsUp));
    h.m.boot(h.now, BootDevice::Pxe, true);
    h.pump(&mut content);
    let s = h.m.status().clone();
    assert_eq!(s.phase, Phase::OsUp, "{}", h.console);
    assert_eq!(s.reports, vec!["installing", "installed"]);
    assert!(
        h.console
            .contains("Failed to start racker-report-up.service")
    );

    // A server that refuses the report: the OS still counts as up.
    let mut h = Harness::default();
    h.m.boot(h.now, BootDevice::Pxe, true);
    h.pump(&mut |req: &HttpRequest| {
        if req.url.contains("stage=up") {
            HttpOutcome::Response {
                status: 400,
                content_length: Some(0),
                received: 0,
                body: Vec::new(),
            }
        } else {
            content(req)
        }
    });
    assert_eq!(h.m.status().phase, Phase::OsUp);
    assert!(
        h.console
            .contains("racker-report-up.service: could not report: HTTP status 400")
    );
}

#[test]
fn bios_client_gets_undionly() {
    let mut cfg = MachineConfig::new(MAC);
    cfg.arch = ClientArch::Bios;
    let mut h = Harness::new(cfg);
    h.m.boot(h.now, BootDevice::Pxe, false);
    h.pump(&mut content);
    assert_eq!(h.m.status().boot_file.as_deref(), Some("undionly.kpxe"));
    assert!(h.urls().iter().any(|u| u.ends_with("arch=i386")));
    assert_eq!(h.m.status().phase, Phase::OsUp);
}

#[test]
fn install_delay_is_a_timer() {
    let mut cfg = MachineConfig::new(MAC);
    cfg.install_delay = Duration::from_secs(90);
    let mut h = Harness::new(cfg);
    let t0 = h.now;
    h.m.boot(t0, BootDevice::Pxe, true);
    // Run until the installer starts, without firing timers.
    while let Some(a) = h.m.poll_action() {
        match a {
            Action::SendDhcp(b) => {
                let r = h.dhcp.handle(&b, SystemTime::now(), &h.installed).unwrap();
                h.m.handle_dhcp(t0, &r.reply.unwrap().bytes);
            }
            Action::Http(req) => h.m.handle_http(t0, req.id, content(&req)),
            Action::Console(_) => {}
            other => panic!("unexpected {other:?}"),
        }
        if h.m.status().phase == Phase::Installing {
            break;
        }
    }
    assert_eq!(h.m.status().phase, Phase::Installing);
    assert_eq!(h.m.poll_timeout(), Some(t0 + Duration::from_secs(90)));
    h.m.handle_timeout(t0 + Duration::from_secs(89));
    assert_eq!(h.m.status().phase, Phase::Installing);
    h.m.handle_timeout(t0 + Duration::from_secs(90));
    assert_eq!(h.m.status().phase, Phase::Finishing);
}

#[test]
fn no_lease_fault_gives_up_after_bounded_retries() {
    let mut h = Harness::default();
    h.m.set_faults(FirmwareFaults::only(FirmwareFault::NoLease));
    let t0 = h.now;
    h.m.boot(t0, BootDevice::Pxe, true);
    h.pump(&mut content);
    assert_eq!(h.dhcp_sent, 0);
    assert!(h.requests.is_empty());
    assert!(h.console.contains("PXE-E51"), "{}", h.console);
    assert!(matches!(h.m.status().phase, Phase::Halted { .. }));
    assert_eq!(h.m.status().lease, None);
    // 4 attempts: 100 + 200 + 400 + 800 ms.
    assert_eq!(h.now - t0, Duration::from_millis(1500));
}

#[test]
fn silent_server_is_retransmitted_to_then_given_up() {
    let mut h = Harness::default();
    h.m.boot(h.now, BootDevice::Pxe, true);
    let mut sent = 0;
    for _ in 0..100 {
        while let Some(a) = h.m.poll_action() {
            if matches!(a, Action::SendDhcp(_)) {
                sent += 1;
            }
        }
        let Some(d) = h.m.poll_timeout() else { break };
        h.m.handle_timeout(d);
    }
    assert_eq!(sent, 4);
    assert!(matches!(h.m.status().phase, Phase::Halted { .. }));
}

#[test]
fn download_fault_retries_then_exits_without_report() {
    let mut h = Harness::default();
    h.m.set_faults(FirmwareFaults::only(FirmwareFault::DownloadFail));
    h.m.boot(h.now, BootDevice::Pxe, true);
    h.pump(&mut content);
    let kernel_tries = h
        .requests
        .iter()
        .filter(|r| r.url.ends_with(".vmlinuz"))
        .count();
    assert_eq!(kernel_tries, 4, "1 try + 3 retries");
    assert!(h.requests.iter().all(|r| r.method == HttpMethod::Get));
    assert!(h.console.contains("Could not boot"), "{}", h.console);
    assert!(matches!(h.m.status().phase, Phase::Halted { .. }));
    assert_eq!(h.bmc_calls, 0);
}

#[test]
fn size_mismatch_is_a_failed_download() {
    let mut h = Harness::default();
    h.m.boot(h.now, BootDevice::Pxe, true);
    h.pump(&mut |req: &HttpRequest| {
        if req.url.ends_with(".cpio.gz") {
            HttpOutcome::Response {
                status: 200,
                content_length: Some(INITRD),
                received: INITRD - 1,
                body: Vec::new(),
            }
        } else {
            content(req)
        }
    });
    assert!(
        h.console
            .contains("size mismatch: Content-Length 12345, received 12344"),
        "{}",
        h.console
    );
    assert!(matches!(h.m.status().phase, Phase::Halted { .. }));
    assert!(h.m.status().reports.is_empty());
}

#[test]
fn missing_content_length_is_refused_and_404_not_retried() {
    let mut h = Harness::default();
    h.m.boot(h.now, BootDevice::Pxe, true);
    h.pump(&mut |req: &HttpRequest| {
        if req.url.ends_with(".vmlinuz") {
            HttpOutcome::Response {
                status: 404,
                content_length: Some(0),
                received: 0,
                body: Vec::new(),
            }
        } else {
            content(req)
        }
    });
    assert_eq!(
        h.requests
            .iter()
            .filter(|r| r.url.ends_with(".vmlinuz"))
            .count(),
        1
    );
    assert!(h.console.contains("HTTP status 404"));

    let mut h = Harness::default();
    h.m.boot(h.now, BootDevice::Pxe, true);
    h.pump(&mut |req: &HttpRequest| match content(req) {
        HttpOutcome::Response {
            status,
            received,
            body,
            ..
        } if req.url.ends_with(".vmlinuz") => HttpOutcome::Response {
            status,
            content_length: None,
            received,
            body,
        },
        other => other,
    });
    assert!(h.console.contains("no Content-Length"));
}

#[test]
fn install_fault_reports_failed_with_reason() {
    let mut h = Harness::default();
    h.m.set_faults(FirmwareFaults::only(FirmwareFault::InstallFail));
    h.m.boot(h.now, BootDevice::Pxe, true);
    h.pump(&mut content);
    let last = h.requests.last().unwrap();
    assert_eq!(last.method, HttpMethod::Post);
    let url = url::Url::parse(&last.url).unwrap();
    let q: std::collections::BTreeMap<String, String> = url.query_pairs().into_owned().collect();
    assert_eq!(q["stage"], "failed");
    assert_eq!(q["mac"], "00:11:22:33:44:10");
    assert!(q["reason"].contains("Input/output error"));
    assert_eq!(h.m.status().reports, vec!["installing", "failed"]);
    assert!(matches!(h.m.status().phase, Phase::Halted { .. }));
    assert!(!h.m.status().disk_installed);
    assert_eq!(h.bmc_calls, 0);
    assert_eq!(h.reboots, 0);
}

#[test]
fn hang_fault_goes_silent() {
    let mut h = Harness::default();
    h.m.set_faults(FirmwareFaults::only(FirmwareFault::Hang));
    h.m.boot(h.now, BootDevice::Pxe, true);
    h.pump(&mut content);
    assert_eq!(h.m.status().phase, Phase::Hung);
    assert_eq!(h.m.poll_timeout(), None);
    assert!(h.m.poll_action().is_none());
    assert_eq!(h.m.status().reports, vec!["installing"]);
    // A power cycle by the BMC restarts it (and it hangs again).
    h.m.power_off(h.now);
    h.m.boot(h.now, BootDevice::Pxe, true);
    h.pump(&mut content);
    assert_eq!(h.m.status().phase, Phase::Hung);
    assert_eq!(h.m.status().boots, 2);
}

#[test]
fn bmc_failure_reports_failed() {
    let mut h = Harness::default();
    h.bmc_result = Err("timeout".into());
    h.m.boot(h.now, BootDevice::Pxe, true);
    h.pump(&mut content);
    assert_eq!(h.m.status().reports, vec!["installing", "failed"]);
    let last = h.requests.last().unwrap();
    assert!(last.url.contains("stage=failed"));
    assert!(last.url.contains("BMC"));
}

#[test]
fn installed_node_exits_to_disk() {
    // The HTTP server says "installed": its script exits.
    let mut cfg = MachineConfig::new(MAC);
    cfg.preinstalled = true;
    let mut h = Harness::new(cfg);
    h.m.boot(h.now, BootDevice::Pxe, true);
    h.pump(&mut |req: &HttpRequest| {
        if req.url.contains("/ipxe?") {
            ok(b"#!ipxe\necho racker: 00:11:22:33:44:10 is installed, booting from its local disk\nexit\n")
        } else {
            content(req)
        }
    });
    assert_eq!(h.m.status().phase, Phase::OsUp);
    assert!(
        h.console
            .contains("is installed, booting from its local disk")
    );
    assert!(h.console.contains("booted from disk"));
    assert_eq!(h.requests.len(), 2);
    assert_eq!(h.m.status().installs, 0);

    // The DHCP server knows it is installed: no boot file at all.
    let mut cfg = MachineConfig::new(MAC);
    cfg.preinstalled = true;
    let mut h = Harness::new(cfg);
    h.installed.insert(MacAddr::new(MAC));
    h.m.boot(h.now, BootDevice::Pxe, true);
    h.pump(&mut content);
    assert!(h.console.contains("PXE-E53"), "{}", h.console);
    assert_eq!(h.m.status().phase, Phase::OsUp);
    assert!(h.requests.is_empty());

    // Same, with an empty disk: nothing to boot.
    let mut h = Harness::default();
    h.installed.insert(MacAddr::new(MAC));
    h.m.boot(h.now, BootDevice::Pxe, true);
    h.pump(&mut content);
    assert!(matches!(h.m.status().phase, Phase::Halted { .. }));
    assert!(h.console.contains("No bootable device"));
}

#[test]
fn disk_boot_and_default_order() {
    let mut h = Harness::default();
    h.m.boot(h.now, BootDevice::Disk, true);
    h.pump(&mut content);
    assert!(matches!(h.m.status().phase, Phase::Halted { .. }));
    assert!(h.requests.is_empty() && h.dhcp_sent == 0);
    // No override and an empty disk: the network.
    h.m.boot(h.now, BootDevice::None, false);
    h.pump(&mut content);
    assert_eq!(h.m.status().phase, Phase::OsUp);
    assert_eq!(h.m.status().installs, 1);
    // No override, installed disk: the disk.
    let sent = h.dhcp_sent;
    h.m.boot(h.now, BootDevice::None, false);
    h.pump(&mut content);
    assert_eq!(h.m.status().phase, Phase::OsUp);
    assert_eq!(h.dhcp_sent, sent);
}

#[test]
fn power_off_abandons_the_download() {
    let mut h = Harness::default();
    h.m.boot(h.now, BootDevice::Pxe, true);
    let mut kernel = None;
    for _ in 0..100 {
        let Some(a) = h.m.poll_action() else { break };
        match a {
            Action::SendDhcp(b) => {
                let r = h.dhcp.handle(&b, SystemTime::now(), &h.installed).unwrap();
                h.m.handle_dhcp(h.now, &r.reply.unwrap().bytes);
            }
            Action::Http(req) if req.url.ends_with(".vmlinuz") => {
                kernel = Some(req);
                break;
            }
            Action::Http(req) => h.m.handle_http(h.now, req.id, content(&req)),
            _ => {}
        }
    }
    let kernel = kernel.unwrap();
    h.m.power_off(h.now);
    assert_eq!(h.m.status().phase, Phase::Off);
    h.m.handle_http(h.now, kernel.id, sized(KERNEL));
    assert_eq!(h.m.status().phase, Phase::Off);
    assert!(h.m.poll_timeout().is_none());
    assert!(
        !h.m.status()
            .downloads
            .iter()
            .any(|d| d.url.ends_with(".vmlinuz"))
    );
}

#[test]
fn chain_loops_are_bounded() {
    let mut h = Harness::default();
    h.m.boot(h.now, BootDevice::Pxe, true);
    h.pump(&mut |req: &HttpRequest| {
        if req.url.contains("boot.ipxe") {
            ok(b"#!ipxe\nchain /boot.ipxe\n")
        } else {
            content(req)
        }
    });
    assert_eq!(h.requests.len(), 9);
    assert!(h.console.contains("more than 8 chained scripts"));
}

#[test]
fn ipxe_offered_a_tftp_file_is_a_loop() {
    // A DHCP server that ignores the iPXE user class.
    let mut h = Harness::default();
    h.m.boot(h.now, BootDevice::Pxe, true);
    for _ in 0..100 {
        let Some(a) = h.m.poll_action() else { break };
        if let Action::SendDhcp(b) = a {
            let without_user_class = {
                let mut m = <dhcproto::v4::Message as dhcproto::Decodable>::from_bytes(&b).unwrap();
                m.opts_mut().remove(dhcproto::v4::OptionCode::UserClass);
                dhcproto::Encodable::to_vec(&m).unwrap()
            };
            let r = h
                .dhcp
                .handle(&without_user_class, SystemTime::now(), &h.installed)
                .unwrap();
            h.m.handle_dhcp(h.now, &r.reply.unwrap().bytes);
        } else if let Action::Console(t) = a {
            h.console.push_str(&t);
        }
    }
    assert!(h.console.contains("chainload loop"), "{}", h.console);
    assert!(matches!(h.m.status().phase, Phase::Halted { .. }));
}

proptest::proptest! {
    /// Arbitrary inputs in any order never panic and never leave a timer
    /// that re-arms forever.
    #[test]
    fn arbitrary_inputs_never_panic(ops in proptest::collection::vec((0u8..7, proptest::collection::vec(proptest::num::u8::ANY, 0..300), 0u64..5), 0..60)) {
        let mut h = Harness::default();
        let t0 = h.now;
        let mut t = t0;
        for (op, data, n) in ops {
            t += Duration::from_millis(n * 100);
            match op {
                0 => h.m.boot(t, [BootDevice::Pxe, BootDevice::Disk, BootDevice::None][n as usize % 3], n % 2 == 0),
                1 => h.m.power_off(t),
                2 => h.m.handle_dhcp(t, &data),
                3 => h.m.handle_http(t, n, HttpOutcome::Response { status: 200, content_length: Some(data.len() as u64), received: data.len() as u64, body: data }),
                4 => h.m.handle_http(t, n, HttpOutcome::Failed("x".into())),
                5 => h.m.handle_bmc(t, Ok(())),
                _ => h.m.handle_timeout(t),
            }
            while h.m.poll_action().is_some() {}
        }
        // Whatever state it is in, timers run out within a bounded number of firings.
        for _ in 0..64 {
            while h.m.poll_action().is_some() {}
            match h.m.poll_timeout() {
                Some(d) => { t = t.max(d); h.m.handle_timeout(t); }
                None => break,
            }
        }
    }
}

#[test]
fn preinstalled_disk_from_a_known_server_reports_up() {
    let mut cfg = MachineConfig::new(MAC);
    cfg.preinstalled = true;
    cfg.installed_from = Some(BASE.to_owned());
    let mut h = Harness::new(cfg);
    h.m.boot(h.now, BootDevice::Disk, true);
    h.pump(&mut content);
    assert_eq!(h.m.status().phase, Phase::OsUp);
    assert_eq!(
        h.urls(),
        vec![format!(
            "{BASE}/report?mac=00%3A11%3A22%3A33%3A44%3A10&stage=up"
        )]
    );
    assert_eq!(h.m.status().reports, vec!["up"]);
    // Without `preinstalled`, the URL means nothing (empty disk).
    let mut cfg = MachineConfig::new(MAC);
    cfg.installed_from = Some(BASE.to_owned());
    let mut h = Harness::new(cfg);
    h.m.boot(h.now, BootDevice::Disk, true);
    h.pump(&mut content);
    assert!(matches!(h.m.status().phase, Phase::Halted { .. }));
    assert!(h.requests.is_empty());
}

/// Racker's rendered install config for the harness's node (MAC
/// 00:11:22:33:44:10), with `edit` applied to its installer script.
fn rendered_install_config(edit: impl Fn(String) -> String) -> Vec<u8> {
    use racker_inventory::{
        AddressPlan, Inventory, LocalInterface, PlanOptions, SelectionOptions, select,
    };
    let csv = "Primary, BMC, Secondary, Type, Comment\n\
               00:11:22:33:44:00, 00:11:22:33:44:01, 00:11:22:33:44:30, red, mgmt\n\
               00:11:22:33:44:10, 00:11:22:33:44:11, 00:11:22:33:44:40, red, node\n";
    let inventory = Inventory::parse("nodes.csv", csv.as_bytes()).unwrap();
    let local = [LocalInterface {
        name: "eth1".into(),
        mac: "00:11:22:33:44:30".parse().unwrap(),
    }];
    let plan = AddressPlan::new(
        &inventory,
        &inventory.management(&local).unwrap(),
        &PlanOptions::default(),
    )
    .unwrap();
    let selection = select(&plan, &SelectionOptions::default()).unwrap();
    let options = racker_lokomotive::RenderOptions::new(vec![
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ7example admin".into(),
    ]);
    let tree = racker_lokomotive::render_cluster(&plan, &selection, &options, &Default::default())
        .unwrap();
    let text = tree
        .get(racker_lokomotive::install_ignition_path(MacAddr::new(MAC)))
        .unwrap()
        .text();
    let mut config: racker_lokomotive::ignition::Config = serde_json::from_str(text).unwrap();
    for f in &mut config.storage.as_mut().unwrap().files {
        if f.path == racker_lokomotive::ignition::INSTALL_SCRIPT_PATH {
            let c = f.contents.as_mut().unwrap();
            let script =
                String::from_utf8(racker_lokomotive::decode_data_url(&c.source).unwrap()).unwrap();
            c.source = racker_lokomotive::data_url(edit(script).as_bytes());
        }
    }
    config.to_json().unwrap().into_bytes()
}

fn serving(install: Vec<u8>) -> impl FnMut(&HttpRequest) -> HttpOutcome {
    move |req: &HttpRequest| {
        if req.url.contains("/ignition?") {
            ok(&install)
        } else {
            content(req)
        }
    }
}

#[test]
fn the_rendered_installer_runs_step_by_step_without_touching_the_bmc() {
    let mut h = Harness::default();
    h.m.boot(h.now, BootDevice::Pxe, true);
    h.pump(&mut serving(rendered_install_config(|s| s)));
    let s = h.m.status().clone();
    assert_eq!(s.phase, Phase::OsUp, "{}", h.console);
    assert_eq!(s.reports, vec!["installing", "installed", "up"]);
    assert_eq!(s.installs, 1);
    // Nothing on the node sets boot flags: racker does, over IPMI LAN.
    assert_eq!(h.bmc_calls, 0, "{}", h.console);
    assert_eq!(h.reboots, 1);
    for step in [
        "[  OK  ] Started the installer /opt/racker/install.",
        "+ flatcar-install -s -b http://172.24.213.1:8080/assets/flatcar -V current -k /tmp/racker-image-signing-key.asc -i /opt/racker/os.ign",
        "+ udevadm settle",
        "+ mount $oem /tmp/oemfs",
        "+ echo set linux_console=\"console=ttyS1,57600n8 earlyprintk=serial,ttyS1,57600n8\"",
        "installer: reported stage installed",
    ] {
        assert!(h.console.contains(step), "{step}\n{}", h.console);
    }
    let posts: Vec<&str> = h
        .requests
        .iter()
        .filter(|r| r.method == HttpMethod::Post)
        .map(|r| r.url.as_str())
        .collect();
    assert_eq!(
        posts,
        vec![
            format!("{BASE}/report?mac=00%3A11%3A22%3A33%3A44%3A10&stage=installing"),
            format!("{BASE}/report?mac=00%3A11%3A22%3A33%3A44%3A10&stage=installed"),
            format!("{BASE}/report?mac=00%3A11%3A22%3A33%3A44%3A10&stage=up"),
        ]
    );
}

#[test]
fn an_installer_command_flatcar_lacks_fails_like_bash_and_reports_failed() {
    let mut h = Harness::default();
    h.m.boot(h.now, BootDevice::Pxe, true);
    let config = rendered_install_config(|s| {
        s.replace(
            "udevadm settle",
            "ipmitool raw 0x00 0x08 0x05 0xe0 0x08 0x00 0x00 0x00",
        )
    });
    h.pump(&mut serving(config));
    let s = h.m.status().clone();
    let Phase::Halted { reason } = &s.phase else {
        panic!("{:?}\n{}", s.phase, h.console);
    };
    assert!(
        reason.contains("/opt/racker/install: line 18: ipmitool: command not found"),
        "{reason}\n{}",
        h.console
    );
    // The disk was written, but the ERR trap reported the failure and the
    // script stopped before its own `report installed` and the reboot.
    assert_eq!(s.reports, vec!["installing", "failed"], "{}", h.console);
    assert_eq!(h.reboots, 0);
    let failed = h
        .requests
        .iter()
        .rev()
        .find(|r| r.method == HttpMethod::Post)
        .unwrap();
    assert!(
        failed.url.contains("stage=failed&reason="),
        "{}",
        failed.url
    );
    assert!(failed.url.contains("ipmitool"), "{}", failed.url);
}

#[test]
fn a_failing_flatcar_install_runs_the_err_trap() {
    let mut h = Harness::default();
    h.m.set_faults(FirmwareFaults::only(FirmwareFault::InstallFail));
    h.m.boot(h.now, BootDevice::Pxe, true);
    h.pump(&mut serving(rendered_install_config(|s| s)));
    let s = h.m.status().clone();
    assert!(matches!(s.phase, Phase::Halted { .. }), "{:?}", s.phase);
    assert_eq!(s.reports, vec!["installing", "failed"], "{}", h.console);
    assert_eq!(s.installs, 0);
    assert!(!s.disk_installed);
}
