//! SimRack behaviour through its Rust API (no external peer needed).

use std::net::SocketAddr;

use racker_sim::{BootDevice, BootFlags, BootRequest, Error, Event, NodeSpec, Password, SimRack};

#[tokio::test]
async fn node_side_actions_emit_events_tagged_with_the_node() {
    let rack = crate::rack(2).await;
    let node = &rack.nodes()[1];
    let mut all = rack.subscribe();
    let mut mine = node.subscribe();
    let mut other = rack.nodes()[0].subscribe();
    node.set_boot_flags(BootFlags::new(BootDevice::Pxe, false, true));
    assert_eq!(
        mine.recv().await,
        Some(Event::BootFlags(BootFlags::new(
            BootDevice::Pxe,
            false,
            true
        )))
    );
    node.set_power(true);
    assert_eq!(mine.recv().await, Some(Event::Power { on: true }));
    assert_eq!(
        mine.recv().await,
        Some(Event::Boot(BootRequest {
            device: BootDevice::Pxe,
            efi: true
        }))
    );
    // The one-shot override was consumed by that boot.
    match mine.recv().await {
        Some(Event::BootFlags(f)) => assert!(!f.valid),
        other => panic!("expected consumed boot flags, got {other:?}"),
    }
    let first = all.recv().await.unwrap();
    assert_eq!(first.bmc_mac, node.bmc_mac());
    assert!(!rack.nodes()[0].snapshot().power_on);
    node.console_write(b"hello\r\n");
    assert_eq!(node.console_log(), b"hello\r\n");
    node.reboot_bmc();
    assert_eq!(mine.recv().await, Some(Event::BmcReboot));
    // Another node's receiver saw none of that: its first event is its own.
    rack.nodes()[0].set_power(true);
    assert_eq!(other.recv().await, Some(Event::Power { on: true }));
    assert!(matches!(other.recv().await, Some(Event::Boot(_))));
    assert!(
        node.snapshot().power_on,
        "a BMC reboot keeps the chassis powered"
    );
    assert_eq!(
        rack.node(node.bmc_mac()).unwrap().ipmi_addr(),
        node.ipmi_addr()
    );
}

#[tokio::test]
async fn duplicate_macs_and_busy_addresses_are_refused() {
    let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let specs = vec![
        NodeSpec::new([2, 0, 0, 0, 0, 1], addr),
        NodeSpec::new([2, 0, 0, 0, 0, 1], addr),
    ];
    let err = SimRack::start(specs, "USER", Password::new("PASS"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::DuplicateMac { .. }), "{err}");
    let rack = crate::rack(1).await;
    let busy = rack.nodes()[0].ipmi_addr();
    let err = SimRack::start(
        vec![NodeSpec::new([2, 0, 0, 0, 0, 9], busy)],
        "USER",
        Password::new("PASS"),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Error::Bind { .. }), "{err}");
    assert!(err.to_string().contains("02:00:00:00:00:09"));
}
