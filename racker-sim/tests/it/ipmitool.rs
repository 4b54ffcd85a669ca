//! ipmitool -I lanplus against simulated BMCs.

use std::process::Output;
use std::time::Duration;

use racker_sim::{BootDevice, Event, Faults, SimNode};
use racker_testsupport::require_tool;

pub(crate) async fn ipmitool_with(
    node: &SimNode,
    suite: u8,
    password: &str,
    args: &[&str],
) -> Output {
    let tool = racker_testsupport::find_tool("ipmitool").unwrap();
    let addr = node.ipmi_addr();
    tokio::process::Command::new(tool)
        .args([
            "-I",
            "lanplus",
            "-H",
            &addr.ip().to_string(),
            "-p",
            &addr.port().to_string(),
        ])
        .args([
            "-U",
            "USER",
            "-E",
            "-C",
            &suite.to_string(),
            "-N",
            "1",
            "-R",
            "2",
        ])
        .args(args)
        .env("IPMI_PASSWORD", password)
        .kill_on_drop(true)
        .output()
        .await
        .unwrap()
}

pub(crate) async fn ipmitool(node: &SimNode, suite: u8, args: &[&str]) -> String {
    let out = ipmitool_with(node, suite, "PASS", args).await;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "ipmitool {args:?} failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chassis_status_and_power_with_suites_3_and_17() {
    if require_tool("chassis_status_and_power_with_suites_3_and_17", "ipmitool").is_none() {
        return;
    }
    let rack = crate::rack(1).await;
    let node = &rack.nodes()[0];
    let mut events = node.subscribe();
    for suite in [3, 17] {
        let status = ipmitool(node, suite, &["chassis", "status"]).await;
        assert!(status.contains("System Power         : off"), "{status}");
    }
    let out = ipmitool(node, 17, &["chassis", "power", "on"]).await;
    assert!(out.contains("Chassis Power Control: Up/On"), "{out}");
    assert_eq!(events.recv().await, Some(Event::Power { on: true }));
    assert!(node.snapshot().power_on);
    let out = ipmitool(node, 3, &["chassis", "power", "status"]).await;
    assert!(out.contains("Chassis Power is on"), "{out}");
    let status = ipmitool(node, 3, &["chassis", "status"]).await;
    assert!(status.contains("System Power         : on"), "{status}");
    ipmitool(node, 3, &["chassis", "power", "off"]).await;
    assert!(!node.snapshot().power_on);
    let out = ipmitool(node, 17, &["chassis", "power", "status"]).await;
    assert!(out.contains("Chassis Power is off"), "{out}");
    // Every ipmitool run closed its session.
    assert_eq!(node.snapshot().active_sessions, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootdev_pxe_persistent_efiboot_and_bootparam_5() {
    if require_tool("bootdev_pxe_persistent_efiboot_and_bootparam_5", "ipmitool").is_none() {
        return;
    }
    let rack = crate::rack(1).await;
    let node = &rack.nodes()[0];
    ipmitool(node, 3, &["raw", "0x00", "0x08", "0x03", "0x1f"]).await;
    assert_eq!(node.snapshot().boot_flag_clearing, 0x1f);
    ipmitool(
        node,
        3,
        &["chassis", "bootdev", "pxe", "options=persistent,efiboot"],
    )
    .await;
    let flags = node.snapshot().boot_flags;
    assert_eq!(flags.raw, [0xE0, 0x04, 0x00, 0x00, 0x00]);
    let out = ipmitool(node, 17, &["chassis", "bootparam", "get", "5"]).await;
    for line in [
        "Boot Flag Valid",
        "Options apply to all future boots",
        "BIOS EFI boot",
        "Force PXE",
    ] {
        assert!(out.contains(line), "missing {line:?} in\n{out}");
    }
    // Powering on boots PXE and the persistent flag stays.
    let mut events = node.subscribe();
    ipmitool(node, 3, &["chassis", "power", "on"]).await;
    assert_eq!(events.recv().await, Some(Event::Power { on: true }));
    match events.recv().await {
        Some(Event::Boot(req)) => assert_eq!((req.device, req.efi), (BootDevice::Pxe, true)),
        other => panic!("expected a Boot event, got {other:?}"),
    }
    assert!(node.snapshot().boot_flags.valid);
    // Disk, one-shot, via raw bytes as `racker ipmi` does.
    ipmitool(
        node,
        3,
        &[
            "raw", "0x00", "0x08", "0x05", "0xa0", "0x08", "0x00", "0x00", "0x00",
        ],
    )
    .await;
    let out = ipmitool(node, 3, &["chassis", "bootparam", "get", "5"]).await;
    assert!(out.contains("Options apply to only next boot"), "{out}");
    assert!(out.contains("Force Boot from default Hard-Drive"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_list_lan_and_raw() {
    if require_tool("user_list_lan_and_raw", "ipmitool").is_none() {
        return;
    }
    let rack = crate::rack(1).await;
    let node = &rack.nodes()[0];
    let out = ipmitool(node, 3, &["user", "list", "1"]).await;
    let user_line = out
        .lines()
        .find(|l| l.starts_with("2 "))
        .unwrap_or_default();
    assert!(
        user_line.contains("USER") && user_line.contains("ADMINISTRATOR"),
        "{out}"
    );
    // Device ID through raw.
    let out = ipmitool(node, 3, &["raw", "0x06", "0x01"]).await;
    assert!(out.trim_start().starts_with("20 81"), "{out}");
    // An unknown command is refused with 0xC1, not a hang.
    let out = super::ipmitool::ipmitool_with(node, 3, "PASS", &["raw", "0x30", "0x99"]).await;
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("rsp=0xc1"),
        "{:?}",
        out
    );
    // LAN IP address source.
    ipmitool(node, 3, &["lan", "set", "1", "ipsrc", "static"]).await;
    assert_eq!(node.snapshot().lan_ip_source, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_and_faults_fail_promptly() {
    if require_tool("wrong_password_and_faults_fail_promptly", "ipmitool").is_none() {
        return;
    }
    let rack = crate::rack(1).await;
    let node = &rack.nodes()[0];
    let started = std::time::Instant::now();
    let out = ipmitool_with(node, 3, "WRONG", &["chassis", "status"]).await;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Unable to establish IPMI v2 / RMCP+ session"),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(5), "must not hang");
    node.set_faults(Faults {
        wrong_credentials: true,
        ..Faults::default()
    });
    assert!(
        !ipmitool_with(node, 17, "PASS", &["chassis", "status"])
            .await
            .status
            .success()
    );
    node.set_faults(Faults {
        unreachable: true,
        ..Faults::default()
    });
    assert!(
        !ipmitool_with(node, 3, "PASS", &["chassis", "status"])
            .await
            .status
            .success()
    );
    node.set_faults(Faults {
        loss_percent: 20,
        latency: Duration::from_millis(20),
        ..Faults::default()
    });
    // ipmitool retries through moderate loss.
    let out = ipmitool_with(node, 3, "PASS", &["-R", "8", "chassis", "power", "status"]).await;
    assert!(out.status.success(), "{out:?}");
    node.set_faults(Faults::default());
    ipmitool(node, 3, &["chassis", "status"]).await;
}

/// Read from `r` until `needle` appears (bounded by a timeout).
pub(crate) async fn read_until(
    r: &mut (impl tokio::io::AsyncRead + Unpin),
    seen: &mut Vec<u8>,
    needle: &[u8],
) {
    use tokio::io::AsyncReadExt;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !seen.windows(needle.len()).any(|w| w == needle) {
        let mut buf = [0u8; 1024];
        let n = tokio::time::timeout_at(deadline, r.read(&mut buf))
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "timed out waiting for {:?}; got {:?}",
                    String::from_utf8_lossy(needle),
                    String::from_utf8_lossy(seen)
                )
            })
            .unwrap();
        assert!(
            n > 0,
            "EOF before {:?}; got {:?}",
            String::from_utf8_lossy(needle),
            String::from_utf8_lossy(seen)
        );
        seen.extend_from_slice(&buf[..n]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sol_activate_through_a_pty() {
    use tokio::io::AsyncWriteExt;
    if require_tool("sol_activate_through_a_pty", "ipmitool").is_none()
        || require_tool("sol_activate_through_a_pty", "script").is_none()
    {
        return;
    }
    let rack = crate::rack(1).await;
    let node = &rack.nodes()[0];
    let mut events = node.subscribe();
    let addr = node.ipmi_addr();
    let cmd = format!(
        "ipmitool -I lanplus -H {} -p {} -U USER -E -C 3 sol activate",
        addr.ip(),
        addr.port()
    );
    let mut child = tokio::process::Command::new("script")
        .args(["-qfec", &cmd, "/dev/null"])
        .env("IPMI_PASSWORD", "PASS")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut seen = Vec::new();
    read_until(&mut stdout, &mut seen, b"SOL Session operational").await;
    assert_eq!(events.recv().await, Some(Event::SolActivated));
    node.console_write(b"Flatcar Container Linux\r\nnode-1 login: ");
    read_until(&mut stdout, &mut seen, b"node-1 login: ").await;
    stdin.write_all(b"core\r").await.unwrap();
    let mut typed = Vec::new();
    while !typed.ends_with(b"core\r") {
        match events.recv().await {
            Some(Event::ConsoleInput(b)) => typed.extend_from_slice(&b),
            other => panic!("unexpected event {other:?}"),
        }
    }
    stdin.write_all(b"\r~.").await.unwrap();
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(
        status.success(),
        "{status:?}: {}",
        String::from_utf8_lossy(&seen)
    );
    // The escape was not sent to the node; the session is gone.
    loop {
        match events.recv().await {
            Some(Event::SolDeactivated) => break,
            Some(Event::ConsoleInput(b)) => assert!(!b.contains(&b'~'), "escape leaked: {b:?}"),
            other => panic!("unexpected event {other:?}"),
        }
    }
    assert_eq!(node.snapshot().active_sessions, 0);
}

/// Flood `node` with Open Session requests (distinct console session ids)
/// that never continue with RAKP Message 1; returns the RMCP+ status of
/// each reply.
pub(crate) async fn open_session_flood(node: &SimNode, count: u32) -> Vec<u8> {
    use racker_ipmi::codec::{
        self, CipherSuite, Frame, OpenSessionRequest, OpenSessionResponse, payload,
    };
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut statuses = Vec::new();
    for i in 0..count {
        let req = OpenSessionRequest::new(i as u8, 0, 0x5100_0000 + i, CipherSuite::Suite17);
        let p = codec::encode_v20_plain(payload::OPEN_SESSION_REQUEST, 0, 0, &req.encode());
        sock.send_to(&p, node.ipmi_addr()).await.unwrap();
        let mut buf = [0u8; 512];
        let (n, _) = tokio::time::timeout(Duration::from_secs(2), sock.recv_from(&mut buf))
            .await
            .expect("Open Session answered")
            .unwrap();
        let Some(Frame::V20(v)) = codec::parse(&buf[..n]) else {
            panic!("not an RMCP+ reply")
        };
        statuses.push(
            OpenSessionResponse::decode(v.payload)
                .expect("response")
                .status,
        );
    }
    statuses
}

/// Issue 18 item 5: eight unauthenticated Open Session requests used to
/// hold every slot for the 60-s idle timeout. Unfinished handshakes now
/// expire after the (here shortened) handshake timeout and ipmitool gets in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_session_flood_does_not_lock_out_ipmitool() {
    if require_tool("open_session_flood_does_not_lock_out_ipmitool", "ipmitool").is_none() {
        return;
    }
    let spec = racker_sim::NodeSpec::new(
        [0x02, 0x52, 0x4B, 0, 0, 0x51],
        "127.0.0.1:0".parse().unwrap(),
    );
    let rack = racker_sim::SimRack::start_with(vec![spec], |s| {
        racker_sim::BmcConfig::new(s.bmc_mac, "USER", racker_sim::Password::new("PASS"))
            .handshake_timeout(Duration::from_millis(1500))
    })
    .await
    .unwrap();
    let node = &rack.nodes()[0];
    let statuses = open_session_flood(node, 10).await;
    assert_eq!(&statuses[..8], &[0; 8], "eight slots granted");
    assert_eq!(&statuses[8..], &[0x01, 0x01], "then insufficient resources");
    // The attack works while the slots are held...
    let out = ipmitool_with(node, 17, "PASS", &["chassis", "status"]).await;
    assert!(
        !out.status.success(),
        "ipmitool got in while every slot was held"
    );
    // ...but not for long: after the handshake timeout ipmitool succeeds.
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let t = std::time::Instant::now();
    let status = ipmitool(node, 17, &["chassis", "status"]).await;
    assert!(status.contains("System Power"), "{status}");
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    assert_eq!(
        node.snapshot().active_sessions,
        0,
        "ipmitool closed its session"
    );
}
