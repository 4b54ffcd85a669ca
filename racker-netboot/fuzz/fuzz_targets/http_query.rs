//! Fuzz the HTTP query handling without the HTTP stack: any query string
//! (`/ipxe?...`, `/ignition?...`, `/report?...`) must decode into labels
//! that encode back to the same labels, and the MAC, stage and profile
//! parsing and the boot profile selection must never panic, and a
//! selected profile renders an iPXE script.
//!
//! `cargo +nightly fuzz run http_query` (from `racker-netboot/`).
#![no_main]

use std::net::Ipv4Addr;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use racker_inventory::MacAddr;
use racker_netboot::IgnitionProfile;
use racker_netboot::matchbox::{Catalog, FlatcarBoot, NodeEntry, ipxe_script};
use racker_netboot::query::{encode_labels, mac_label, parse_labels};
use racker_netboot::report::Stage;

fn catalog() -> &'static Catalog {
    static CATALOG: OnceLock<Catalog> = OnceLock::new();
    CATALOG.get_or_init(|| {
        let nodes: Vec<NodeEntry> = (0..4u8)
            .map(|i| NodeEntry {
                mac: MacAddr::new([0, 0x11, 0x22, 0x33, 0x44, 0x10 + i]),
                hostname: Some(format!("node{i}.rack")),
                ip: Some(Ipv4Addr::new(172, 24, 213, 2 + i)),
                role: Some("worker".into()),
            })
            .collect();
        Catalog::flatcar(&nodes, &FlatcarBoot::new("http://172.24.213.1:8080"))
    })
}

fuzz_target!(|data: &[u8]| {
    let query = String::from_utf8_lossy(data);
    let labels = parse_labels(&query);
    assert_eq!(parse_labels(&encode_labels(&labels)), labels);
    if let Some(stage) = labels.get("stage") {
        let _ = stage.parse::<Stage>();
    }
    if let Some(profile) = labels.get("profile") {
        let _ = IgnitionProfile::parse(profile);
    }
    let Ok(mac) = mac_label(&labels) else {
        return;
    };
    let mut labels = labels;
    labels.insert("mac".into(), mac.to_string());
    if let Some((_, profile)) = catalog().select(&labels) {
        let script = ipxe_script(profile);
        assert!(script.starts_with("#!ipxe"), "{script}");
    }
});
