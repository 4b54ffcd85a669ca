//! `iface::ensure_address` against the kernel, inside a network namespace
//! this test creates (a tap interface, nothing else touched).

use std::net::Ipv4Addr;
use std::process::Command;

use racker_netboot::iface::{AddressChange, IfaceError, ensure_address};
use racker_testsupport::netns::Netns;

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

#[test]
fn ensure_address_brings_the_interface_up_adds_once_and_names_missing_interfaces() {
    let test = "ensure_address_brings_the_interface_up_adds_once_and_names_missing_interfaces";
    if !racker_testsupport::require_root(test)
        || racker_testsupport::require_tool(test, "ip").is_none()
    {
        return;
    }
    let ns = Netns::create("rkif");
    ns.ip(&["tuntap", "add", "dev", "pxe0", "mode", "tap"]);
    let ip = Ipv4Addr::new(172, 24, 213, 1);
    let (first, second, missing) = ns.enter(move || {
        block_on(async {
            (
                ensure_address("pxe0", ip, 24).await,
                ensure_address("pxe0", ip, 24).await,
                ensure_address("nosuch0", ip, 24).await,
            )
        })
    });
    assert_eq!(first.unwrap(), AddressChange::Added);
    assert_eq!(second.unwrap(), AddressChange::AlreadyPresent);
    match missing {
        Err(IfaceError::NoSuchInterface(n)) => assert_eq!(n, "nosuch0"),
        other => panic!("expected NoSuchInterface, got {other:?}"),
    }
    // The kernel agrees: one address, link up.
    let out = Command::new("ip")
        .args(["-n", &ns.0, "-o", "-4", "addr", "show", "dev", "pxe0"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.matches("172.24.213.1/24").count(), 1, "{text}");
    let out = Command::new("ip")
        .args(["-n", &ns.0, "-o", "link", "show", "dev", "pxe0"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(",UP"), "{text}");
}
