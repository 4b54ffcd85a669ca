//! racker-ipmi against racker-sim's BMC (an independent RMCP+ implementation
//! that, unlike ipmi_sim, offers cipher suite 17, keeps all five boot-flag
//! bytes, models SOL and injects packet loss).

use std::time::Duration;

use racker_ipmi::{
    BmcAddress, BootDevice, CipherPreference, CipherSuite, Credentials, Error, PowerAction,
    Session, SessionOptions, SolConsole,
};
use racker_sim::{Faults, NodeSpec, SimRack};

const USER: &str = "racker";
const PASSWORD: &str = "sim-password";

async fn rack(n: u8) -> SimRack {
    let specs = (0..n)
        .map(|i| NodeSpec::new([0x02, 0, 0, 0, 0, i], "127.0.0.1:0".parse().unwrap()))
        .collect();
    SimRack::start(specs, USER, racker_sim::Password::new(PASSWORD))
        .await
        .expect("start racker-sim")
}

fn addr(rack: &SimRack, i: usize) -> BmcAddress {
    let a = rack.nodes()[i].ipmi_addr();
    BmcAddress::from_ip(a.ip(), a.port())
}

fn creds() -> Credentials {
    Credentials::new(USER, PASSWORD)
}

fn opts() -> SessionOptions {
    SessionOptions::default()
        .timeout(Duration::from_secs(3))
        .retries(3)
}

#[tokio::test]
async fn suite_17_by_default_and_exact_boot_flags() {
    let rack = rack(1).await;
    let node = &rack.nodes()[0];
    let mut s = Session::connect(&addr(&rack, 0), &creds(), &opts())
        .await
        .expect("connect");
    assert_eq!(s.cipher_suite(), CipherSuite::Suite17);
    s.disable_boot_flag_timeout().await.expect("param 3");
    assert_eq!(node.snapshot().boot_flag_clearing, 0x1f);
    s.set_boot_device(BootDevice::Pxe, true, true)
        .await
        .expect("bootdev");
    assert_eq!(node.snapshot().boot_flags.raw, [0xe0, 0x04, 0, 0, 0]);
    let f = s.boot_flags().await.expect("bootparam");
    assert!(f.valid && f.persistent && f.efi, "{f:?}");
    assert_eq!(f.device, BootDevice::Pxe);
    s.set_boot_device(BootDevice::Disk, false, false)
        .await
        .expect("bootdev disk legacy once");
    assert_eq!(node.snapshot().boot_flags.raw, [0x80, 0x08, 0, 0, 0]);
    let f = s.boot_flags().await.expect("bootparam");
    assert!(f.valid && !f.persistent && !f.efi);
    assert_eq!(f.device, BootDevice::Disk);
    s.set_lan_dhcp(1).await.expect("lan dhcp");
    assert_eq!(node.snapshot().lan_ip_source, 2);
    assert_eq!(node.snapshot().active_sessions, 1);
    s.close().await.expect("close");
    assert_eq!(node.snapshot().active_sessions, 0);

    // Suite 3 on request.
    let o3 = opts().cipher(CipherPreference::Only(CipherSuite::Suite3));
    let mut s = Session::connect(&addr(&rack, 0), &creds(), &o3)
        .await
        .expect("suite 3");
    assert_eq!(s.cipher_suite(), CipherSuite::Suite3);
    assert_eq!(
        s.power(PowerAction::On).await.expect("on"),
        racker_ipmi::PowerOutcome::Done
    );
    assert!(node.snapshot().power_on);
    drop(s);
    // Drop sends Close Session without waiting; the simulator has no event
    // for it, so poll its state (bounded).
    let mut closed = false;
    for _ in 0..200 {
        if node.snapshot().active_sessions == 0 {
            closed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(closed, "drop sends Close Session");
}

#[tokio::test]
async fn retransmission_survives_packet_loss() {
    let rack = rack(1).await;
    let node = &rack.nodes()[0];
    node.set_faults(Faults {
        loss_percent: 30,
        ..Faults::default()
    });
    let o = SessionOptions::default()
        .timeout(Duration::from_secs(4))
        .retries(10);
    let mut s = Session::connect(&addr(&rack, 0), &creds(), &o)
        .await
        .expect("connect despite loss");
    for _ in 0..10 {
        s.chassis_status().await.expect("status despite loss");
    }
    s.power(PowerAction::On)
        .await
        .expect("power on despite loss");
    assert!(node.snapshot().power_on);
    node.set_faults(Faults::default());
    s.close().await.expect("close");
}

#[tokio::test]
async fn wrong_credentials_fault_is_an_authentication_error() {
    let rack = rack(1).await;
    rack.nodes()[0].set_faults(Faults {
        wrong_credentials: true,
        ..Faults::default()
    });
    let err = Session::connect(&addr(&rack, 0), &creds(), &opts())
        .await
        .expect_err("refused");
    assert!(matches!(err, Error::Authentication { .. }), "{err:?}");
    assert!(err.to_string().contains(&addr(&rack, 0).to_string()));
}

#[tokio::test]
async fn sol_streams_output_and_sends_input() {
    let rack = rack(1).await;
    let node = &rack.nodes()[0];
    let mut events = node.subscribe();
    let s = Session::connect(&addr(&rack, 0), &creds(), &opts())
        .await
        .expect("connect");
    let mut sol = SolConsole::activate(s).await.expect("activate SOL");
    node.console_write(b"Flatcar login: ");
    let mut seen = Vec::new();
    for _ in 0..20 {
        seen.extend(sol.read(Duration::from_millis(200)).await.expect("read"));
        if seen.windows(6).any(|w| w == b"login:") {
            break;
        }
    }
    assert!(
        String::from_utf8_lossy(&seen).contains("Flatcar login: "),
        "{seen:?}"
    );
    // Output arriving during a keepalive request is kept, not lost.
    node.console_write(b"\r\nbanner-after-keepalive");
    sol.keepalive().await.expect("keepalive");
    let mut more = Vec::new();
    for _ in 0..20 {
        more.extend(sol.read(Duration::from_millis(200)).await.expect("read"));
        if String::from_utf8_lossy(&more).contains("banner-after-keepalive") {
            break;
        }
    }
    assert!(
        String::from_utf8_lossy(&more).contains("banner-after-keepalive"),
        "{more:?}"
    );
    sol.write(b"core\r", Duration::from_secs(2), 3)
        .await
        .expect("write");
    let mut typed = Vec::new();
    while !typed.ends_with(b"core\r") {
        match tokio::time::timeout(Duration::from_secs(3), events.recv()).await {
            Ok(Some(racker_sim::Event::ConsoleInput(b))) => typed.extend(b),
            Ok(Some(_)) => {}
            other => panic!("no console input event: {other:?} (typed {typed:?})"),
        }
    }
    let s = sol.deactivate().await.expect("deactivate");
    s.close().await.expect("close");
}

/// Hold every session slot of `node` with Open Session requests that never
/// continue with RAKP (the issue 18 item 5 lock-out attack).
async fn hold_every_slot(node: &racker_sim::SimNode) {
    use racker_ipmi::codec::{self, Frame, OpenSessionRequest, OpenSessionResponse, payload};
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut last = 0;
    for i in 0..9u32 {
        let req = OpenSessionRequest::new(i as u8, 0, 0x7700_0000 + i, CipherSuite::Suite3);
        let p = codec::encode_v20_plain(payload::OPEN_SESSION_REQUEST, 0, 0, &req.encode());
        sock.send_to(&p, node.ipmi_addr()).await.unwrap();
        let mut buf = [0u8; 512];
        let (n, _) = tokio::time::timeout(Duration::from_secs(2), sock.recv_from(&mut buf))
            .await
            .expect("answered")
            .unwrap();
        let Some(Frame::V20(v)) = codec::parse(&buf[..n]) else {
            panic!("not RMCP+")
        };
        last = OpenSessionResponse::decode(v.payload).unwrap().status;
    }
    assert_eq!(last, 0x01, "the ninth request finds every slot taken");
}

#[tokio::test]
async fn open_session_retries_insufficient_resources_until_slots_expire() {
    let spec = NodeSpec::new([0x02, 0, 0, 0, 0, 0x77], "127.0.0.1:0".parse().unwrap());
    let rack = SimRack::start_with(vec![spec], |s| {
        racker_sim::BmcConfig::new(s.bmc_mac, USER, racker_sim::Password::new(PASSWORD))
            .handshake_timeout(Duration::from_millis(1000))
    })
    .await
    .unwrap();
    hold_every_slot(&rack.nodes()[0]).await;
    let t = std::time::Instant::now();
    let mut s = Session::connect(&addr(&rack, 0), &creds(), &opts())
        .await
        .expect("connect once the unfinished handshakes expired");
    assert!(
        t.elapsed() >= Duration::from_millis(500),
        "{:?}",
        t.elapsed()
    );
    assert!(t.elapsed() < Duration::from_secs(4), "{:?}", t.elapsed());
    s.chassis_status().await.expect("chassis status");
    s.close().await.expect("close");
}

/// Issue 18 item 9: a response network function is refused before
/// anything is sent, instead of waiting out the timeout.
#[tokio::test]
async fn response_netfn_fails_at_once() {
    let rack = rack(1).await;
    let mut s = Session::connect(&addr(&rack, 0), &creds(), &opts())
        .await
        .expect("connect");
    let t = std::time::Instant::now();
    let err = s
        .raw(racker_ipmi::RawRequest::new(0x07, 0x01, vec![]))
        .await
        .expect_err("odd netFn");
    assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
    assert!(
        t.elapsed() < Duration::from_millis(200),
        "{:?}",
        t.elapsed()
    );
    // The session is still usable.
    s.chassis_status().await.expect("chassis status");
}

/// Sensors, SEL, FRU and MC info from racker-sim's BMC over suite 17; the
/// readings follow power state and the `fan-fail` fault, and agree with
/// ipmitool's `sdr list` of the same BMC.
#[tokio::test]
async fn sensors_sel_fru_from_racker_sim_follow_power_and_faults() {
    use racker_ipmi::monitor;
    use racker_ipmi::sdr::{SdrCache, SensorStatus};
    let rack = rack(1).await;
    let bmc = addr(&rack, 0);
    let mut s = Session::connect(&bmc, &creds(), &opts())
        .await
        .expect("connect");
    assert_eq!(s.cipher_suite(), CipherSuite::Suite17);
    let cache = std::sync::Mutex::new(SdrCache::new());
    let off = monitor::sensors(&mut s, Some(&cache))
        .await
        .expect("sensors");
    assert!(off.len() >= 8, "{off:?}");
    let names: Vec<&str> = off.iter().map(|r| r.name.as_str()).collect();
    for n in ["CPU Temp", "Inlet Temp", "FAN1", "12V", "PSU Power"] {
        assert!(names.contains(&n), "{n} missing from {names:?}");
    }
    s.power(PowerAction::On).await.expect("power on");
    let on = monitor::sensors(&mut s, Some(&cache))
        .await
        .expect("sensors on");
    let fan = |list: &[racker_ipmi::sdr::SensorReading]| {
        list.iter()
            .find(|r| r.name == "FAN1")
            .cloned()
            .expect("FAN1")
    };
    assert_eq!(fan(&on).unit, "RPM");
    assert!(fan(&on).reading.unwrap_or(0.0) > 0.0, "{:?}", fan(&on));
    assert_eq!(fan(&on).status, SensorStatus::Ok);
    rack.nodes()[0].set_faults(racker_sim::Faults {
        fan_fail: true,
        ..Default::default()
    });
    let failing = monitor::sensors(&mut s, Some(&cache))
        .await
        .expect("sensors fan-fail");
    assert!(
        matches!(
            fan(&failing).status,
            SensorStatus::Critical | SensorStatus::Nonrecoverable
        ),
        "{:?}",
        fan(&failing)
    );
    let sel = monitor::sel_list(&mut s, None).await.expect("sel");
    assert!(!sel.is_empty(), "power on must be logged");
    let info = monitor::sel_info(&mut s).await.expect("sel info");
    assert_eq!(usize::from(info.entries), sel.len());
    let fru = monitor::fru(&mut s).await.expect("fru");
    assert!(fru.board.is_some() || fru.product.is_some(), "{fru:?}");
    let mc = monitor::mc_info(&mut s).await.expect("mc info");
    assert!(mc.capabilities.contains(&"sdr".to_string()), "{mc:?}");
    monitor::identify(&mut s, monitor::Identify::Seconds(5))
        .await
        .expect("identify");
    monitor::chassis_capabilities(&mut s)
        .await
        .expect("capabilities");

    if let Some(ipmitool) = racker_testsupport::find_tool("ipmitool") {
        // tokio's Command: the simulated BMC runs on this test's runtime.
        let out = tokio::process::Command::new(ipmitool)
            .args(["-I", "lanplus", "-C", "17", "-H", bmc.host(), "-p"])
            .arg(bmc.port().to_string())
            .args(["-U", USER, "-P", PASSWORD, "sdr", "list"])
            .output()
            .await
            .expect("ipmitool");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        let ours = monitor::sensors(&mut s, Some(&cache))
            .await
            .expect("sensors");
        for r in ours.iter().filter(|r| r.reading.is_some()) {
            let line = text
                .lines()
                .find(|l| l.split('|').next().is_some_and(|n| n.trim() == r.name))
                .unwrap_or_else(|| panic!("{} not in ipmitool sdr list:\n{text}", r.name));
            let theirs: f64 = line
                .split('|')
                .nth(1)
                .unwrap()
                .split_whitespace()
                .next()
                .unwrap()
                .parse()
                .unwrap();
            let v = r.reading.unwrap();
            // ipmitool prints 2 decimals at most; sensors may move between reads by one step.
            assert!(
                (theirs - v).abs() <= v.abs() * 0.05 + 0.5,
                "{}: ipmitool {theirs}, racker {v}",
                r.name
            );
        }
    }
    s.close().await.ok();
}
