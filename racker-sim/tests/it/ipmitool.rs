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
    assert!(node.snapshot().boot_flags.valid());
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
