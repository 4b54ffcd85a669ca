//! Simulated nodes PXE-boot against racker-netboot's real DHCP server
//! (plain-UDP transport) and HTTP content server on loopback; the boot
//! device is set over real IPMI (racker-ipmi) to each node's simulated BMC.

#[path = "firmware/rack.rs"]
mod rack;

use racker_inventory::MacAddr;
use racker_netboot::matchbox::{PXE_INITRD, PXE_KERNEL};
use racker_netboot::report::Stage;
use racker_sim::BootDevice;
use racker_sim::firmware::{Firmware, FirmwareFault, FirmwareFaults, OS_UP_MARKER, Phase};

use rack::{INITRD_LEN, KERNEL_LEN, SETTLE, primary, reserved, start};

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
        // The report store recorded the install, then the OS's `up`.
        let report = rack.reports.get(MacAddr::new(primary(i))).unwrap();
        assert_eq!(report.stage, Stage::Up);
        assert_eq!(s.reports, vec!["installing", "installed", "up"]);
        // The BMC's boot flags: disk, persistent, EFI; timer disabled.
        let snap = rack.rack.nodes()[i].snapshot();
        assert!(snap.power_on);
        assert_eq!(snap.boot_flags.device, BootDevice::Disk);
        assert!(snap.boot_flags.valid);
        assert!(snap.boot_flags.persistent);
        assert!(snap.boot_flags.efi);
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
                "Finished racker-report-up.service (reported up)",
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
    // The installed OS reported up (racker-report-up.service).
    assert_eq!(
        rack.reports.get(MacAddr::new(primary(0))).unwrap().stage,
        Stage::Up
    );
    assert!(rack.console(0).contains("reported up"));
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
        if kind == FirmwareFault::NoOsUp {
            // Installed and booted from disk; only the OS's report is missing.
            assert_eq!(s.phase, Phase::OsUp, "{console}");
            assert_eq!(s.installs, 1);
            assert_eq!(flags.device, BootDevice::Disk);
            assert_eq!(rack.reports.get(mac).unwrap().stage, Stage::Installed);
            assert!(
                console.contains("Failed to start racker-report-up.service"),
                "{console}"
            );
            continue;
        }
        // Nobody got to set disk boot.
        assert_eq!(flags.device, BootDevice::Pxe, "{kind}");
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bios_node_with_in_band_bmc_access() {
    let rack = start(1).await;
    let config = rack
        .config()
        .arch(racker_sim::firmware::ClientArch::Bios)
        .bmc(racker_sim::firmware::BmcAccess::InBand);
    let fw = Firmware::spawn(&rack.rack.nodes()[0], config).unwrap();
    rack.pxe_boot(0).await;
    let s = fw.wait_settled(SETTLE).await.unwrap();
    assert_eq!(s.phase, Phase::OsUp, "{}", rack.console(0));
    assert_eq!(s.boot_file.as_deref(), Some("undionly.kpxe"));
    assert!(s.downloads.iter().any(|d| d.url.contains("arch=i386")));
    let flags = rack.rack.nodes()[0].snapshot().boot_flags;
    assert_eq!(flags.device, BootDevice::Disk);
    assert!(flags.persistent && flags.efi);
    // The installed OS reported up (racker-report-up.service).
    assert_eq!(
        rack.reports.get(MacAddr::new(primary(0))).unwrap().stage,
        Stage::Up
    );
    assert!(rack.console(0).contains("reported up"));
}

#[test]
fn spawn_outside_a_runtime_is_an_error() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let rack = rt.block_on(start(1));
    let config = rack.config();
    let err = Firmware::spawn(&rack.rack.nodes()[0], config).unwrap_err();
    assert!(err.to_string().contains("tokio runtime"), "{err}");
    drop(rack);
}
