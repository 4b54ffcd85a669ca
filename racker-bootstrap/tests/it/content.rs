//! The boot content as bootstrap wires it (racker-netboot's service builder
//! with bootstrap's node entries and the rack's default console), on
//! loopback, with a real HTTP client exchange.

use std::net::SocketAddr;
use std::path::Path;

use racker_bootstrap::network::{installer_console, node_entries};
use racker_inventory::{AddressPlan, Inventory, LocalInterface, PlanOptions};
use racker_netboot::DhcpConfig;
use racker_netboot::service::{DhcpListen, NetbootService, NetbootServiceBuilder};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

fn plan() -> AddressPlan {
    let inventory = Inventory::parse(
        "nodes.csv",
        b"Primary MAC address, BMC MAC address, Secondary MAC address, Node Type, Comments\n\
          00:11:22:33:44:00, 00:11:22:33:44:01, 00:11:22:33:44:30, red, mgmt node\n\
          00:11:22:33:44:10, 00:11:22:33:44:11, 00:11:22:33:44:40, red, node\n\
          00:11:22:33:44:20, 00:11:22:33:44:21, 00:11:22:33:44:50, red, node\n"
            .as_slice(),
    )
    .unwrap();
    let management = inventory
        .management(&[LocalInterface {
            name: "eth1".into(),
            mac: "00:11:22:33:44:30".parse().unwrap(),
        }])
        .unwrap();
    AddressPlan::new(&inventory, &management, &PlanOptions::default()).unwrap()
}

/// Content only (no DHCP), on loopback, as bootstrap's stage 1 builds it.
fn builder(state: &Path, plan: &AddressPlan, boot_files: &Path) -> NetbootServiceBuilder {
    NetbootService::builder(
        state,
        DhcpConfig::new(plan.management_ip(), plan.subnet().prefix_len()),
    )
    .dhcp(DhcpListen::Off)
    .http_listen("127.0.0.1:0".parse().unwrap())
    .tftp_listen("127.0.0.1:0".parse().unwrap())
    .boot_files(Some(boot_files.to_owned()))
    .kernel_console(installer_console(&[]))
    .nodes(node_entries(plan, None))
}

async fn get(addr: SocketAddr, path: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

#[tokio::test]
async fn start_serves_plan_nodes_on_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let boot = dir.path().join("boot");
    std::fs::create_dir_all(&boot).unwrap();
    std::fs::write(boot.join("undionly.kpxe"), b"bios").unwrap();
    std::fs::write(boot.join("ipxe.efi"), b"efi").unwrap();
    let plan = plan();
    let service = builder(&dir.path().join("state"), &plan, &boot)
        .start()
        .await
        .unwrap();
    let http = service.http_addr();
    assert_eq!(service.base_url(), format!("http://{http}"));
    assert!(service.tftp_addr().is_some());
    assert_eq!(service.dhcp_addr(), None);
    // Nothing to boot yet: the script is refused, naming what is missing.
    let reply = get(http, "/ipxe?mac=00-11-22-33-44-20").await;
    assert!(reply.starts_with("HTTP/1.1 503"), "{reply}");
    assert!(reply.contains("racker netboot fetch-assets"), "{reply}");
    let state = dir.path().join("state");
    let assets = state.join("assets/flatcar/current");
    std::fs::create_dir_all(&assets).unwrap();
    for f in [
        racker_netboot::matchbox::PXE_KERNEL,
        racker_netboot::matchbox::PXE_INITRD,
    ] {
        std::fs::write(assets.join(f), b"x").unwrap();
    }
    let reply = get(http, "/ipxe?mac=00-11-22-33-44-20").await;
    assert!(reply.starts_with("HTTP/1.1 503"), "{reply}");
    assert!(reply.contains("no install Ignition config"), "{reply}");
    let mac = "00:11:22:33:44:20".parse().unwrap();
    let ign = racker_netboot::IgnitionDir::in_state_dir(&state)
        .path(mac, racker_netboot::IgnitionProfile::Install);
    std::fs::create_dir_all(ign.parent().unwrap()).unwrap();
    std::fs::write(&ign, br#"{"ignition":{"version":"3.4.0"}}"#).unwrap();
    let reply = get(http, "/ipxe?mac=00-11-22-33-44-20").await;
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(reply.contains(&format!(
        "ignition.config.url={}/ignition",
        service.base_url()
    )));
    // The rack's console (default as the original racker), not ttyS0.
    assert!(
        reply.contains(" console=ttyS1,57600n8 earlyprintk=serial,ttyS1,57600n8 "),
        "{reply}"
    );
    assert!(!reply.contains("ttyS0"), "{reply}");
    // The management node itself is not a boot target.
    let reply = get(http, "/ipxe?mac=00:11:22:33:44:00").await;
    assert!(reply.starts_with("HTTP/1.1 404"), "{reply}");
    let reply = get(http, "/ipxe.efi").await;
    assert!(reply.ends_with("\r\n\r\nefi"), "{reply}");
    service.shutdown().await.unwrap();
}

#[tokio::test]
async fn missing_boot_files_are_explained() {
    let dir = tempfile::tempdir().unwrap();
    let plan = plan();
    let err = builder(
        &dir.path().join("state"),
        &plan,
        &dir.path().join("nowhere"),
    )
    .start()
    .await
    .unwrap_err();
    let mut text = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    assert!(text.contains("--boot-files"), "{text}");
}
