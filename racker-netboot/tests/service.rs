//! `service::NetbootService`: DHCP, TFTP and HTTP started by one builder.
//!
//! On loopback (no root): a DHCP client gets an offer pointing at the HTTP
//! server the builder bound, `/ipxe` and `/metrics` answer, TFTP serves the
//! iPXE binaries, the guard refuses a wrong interface and shutdown saves the
//! lease table. In a network namespace this test creates (root): the
//! default-route guard sees an IPv6 default route and one in table 100,
//! `force` overrides it, and DHCP then binds to the interface.

use std::fs;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use dhcproto::v4::{DhcpOption, Message, MessageType, OptionCode};
use dhcproto::{Decodable, Encodable};
use racker_inventory::MacAddr;
use racker_netboot::iface::{RouteSource, check_interface, default_routes};
use racker_netboot::matchbox::NodeEntry;
use racker_netboot::service::{DhcpListen, NetbootService, ServiceError};
use racker_netboot::{DhcpConfig, DhcpError, LeaseTable, Reservation};

const SERVER: Ipv4Addr = Ipv4Addr::new(172, 24, 213, 1);
const NODE: [u8; 6] = [2, 0x11, 0x22, 0x33, 0x44, 0x10];
const NODE_IP: Ipv4Addr = Ipv4Addr::new(172, 24, 213, 2);

fn reservation() -> Reservation {
    Reservation {
        mac: MacAddr::new(NODE),
        ip: NODE_IP,
        hostname: Some("node1".into()),
    }
}

fn node() -> NodeEntry {
    NodeEntry {
        mac: MacAddr::new(NODE),
        hostname: Some("node1.rack".into()),
        ip: Some(NODE_IP),
        role: None,
    }
}

fn boot_files(dir: &Path) -> std::path::PathBuf {
    let boot = dir.join("boot");
    fs::create_dir_all(&boot).unwrap();
    fs::write(boot.join("undionly.kpxe"), b"bios iPXE").unwrap();
    fs::write(boot.join("ipxe.efi"), b"efi iPXE").unwrap();
    boot
}

/// An iPXE DHCPDISCOVER from `mac`.
fn discover(mac: [u8; 6]) -> Vec<u8> {
    let mut msg = Message::new_with_id(
        0x5eed,
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::UNSPECIFIED,
        &mac,
    );
    let opts = msg.opts_mut();
    opts.insert(DhcpOption::MessageType(MessageType::Discover));
    opts.insert(DhcpOption::ClassIdentifier(
        b"PXEClient:Arch:00000:UNDI:002001".to_vec(),
    ));
    opts.insert(DhcpOption::UserClass(b"iPXE".to_vec()));
    msg.to_vec().unwrap()
}

/// Kernel, initrd and the node's install Ignition in `state`, so its iPXE
/// script is handed out.
fn bootable(state: &Path) {
    let assets = state.join("assets/flatcar/current");
    fs::create_dir_all(&assets).unwrap();
    for f in [
        racker_netboot::matchbox::PXE_KERNEL,
        racker_netboot::matchbox::PXE_INITRD,
    ] {
        fs::write(assets.join(f), b"x").unwrap();
    }
    let ign = racker_netboot::IgnitionDir::in_state_dir(state)
        .path(MacAddr::new(NODE), racker_netboot::IgnitionProfile::Install);
    fs::create_dir_all(ign.parent().unwrap()).unwrap();
    fs::write(&ign, br#"{"ignition":{"version":"3.4.0"}}"#).unwrap();
}

fn http_req(addr: SocketAddr, method: &str, path: &str) -> String {
    use std::io::{Read as _, Write as _};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.0\r\nHost: {addr}\r\nContent-Length: 0\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

fn http_get(addr: SocketAddr, path: &str) -> String {
    use std::io::{Read as _, Write as _};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// One RRQ for `name`; the first DATA block's payload.
fn tftp_first_block(addr: SocketAddr, name: &str) -> Vec<u8> {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut rrq = vec![0, 1];
    rrq.extend(name.as_bytes());
    rrq.push(0);
    rrq.extend(b"octet\0");
    sock.send_to(&rrq, addr).unwrap();
    let mut buf = [0u8; 1024];
    let (n, from) = sock.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..4], &[0, 3, 0, 1], "DATA 1 expected");
    sock.send_to(&[0, 4, 0, 1], from).unwrap();
    buf[4..n].to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn builder_wires_dhcp_tftp_and_http_on_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    bootable(&state);
    let loopback = |port| SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let service = NetbootService::builder(&state, DhcpConfig::new(SERVER, 24))
        .dhcp(DhcpListen::Socket(loopback(0)))
        .reservations([reservation()])
        .nodes([node()])
        .http_listen(loopback(0))
        // The reports below come from 127.0.0.1, not the node's address.
        .loopback_reports(true)
        .tftp_listen(loopback(0))
        .boot_files(Some(boot_files(dir.path())))
        .start()
        .await
        .unwrap();
    let http = service.http_addr();
    assert_eq!(service.base_url(), format!("http://{http}"));
    assert!(service.interface_address().is_none());
    assert!(service.forced_past().is_none());

    // DHCP points iPXE at the HTTP server the builder bound; TFTP is on
    // loopback, so next-server stays the server address.
    let dhcp = service.dhcp_addr().unwrap();
    let client = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    client.send_to(&discover(NODE), dhcp).await.unwrap();
    let mut buf = vec![0u8; 1500];
    let (n, _) = tokio::time::timeout(Duration::from_secs(5), client.recv_from(&mut buf))
        .await
        .expect("an offer")
        .unwrap();
    let offer = Message::from_bytes(&buf[..n]).unwrap();
    assert_eq!(offer.opts().msg_type(), Some(MessageType::Offer));
    assert_eq!(offer.yiaddr(), NODE_IP);
    assert_eq!(offer.siaddr(), SERVER);
    let boot_file = match offer.opts().get(OptionCode::BootfileName) {
        Some(DhcpOption::BootfileName(b)) => String::from_utf8_lossy(b).into_owned(),
        _ => String::from_utf8_lossy(offer.fname().unwrap_or_default())
            .trim_end_matches('\0')
            .to_owned(),
    };
    assert_eq!(boot_file, format!("http://{http}/boot.ipxe"));

    let (script, metrics) = tokio::task::spawn_blocking(move || {
        (
            http_get(http, "/ipxe?mac=02-11-22-33-44-10"),
            http_get(http, "/metrics"),
        )
    })
    .await
    .unwrap();
    assert!(script.starts_with("HTTP/1.1 200"), "{script}");
    assert!(
        script.contains(&format!("http://{http}/assets/")),
        "{script}"
    );
    assert!(
        metrics.contains("racker_dhcp_requests_total{type=\"discover\"} 1"),
        "{metrics}"
    );
    let tftp_addr = service.tftp_addr().unwrap();
    let block = tokio::task::spawn_blocking(move || tftp_first_block(tftp_addr, "ipxe.efi"))
        .await
        .unwrap();
    assert_eq!(block, b"efi iPXE");

    // The offer is held, not leased: request it, then stop; the lease is on disk.
    let mut request = Message::from_bytes(&discover(NODE)).unwrap();
    request
        .opts_mut()
        .insert(DhcpOption::MessageType(MessageType::Request));
    request
        .opts_mut()
        .insert(DhcpOption::RequestedIpAddress(NODE_IP));
    request
        .opts_mut()
        .insert(DhcpOption::ServerIdentifier(SERVER));
    client
        .send_to(&request.to_vec().unwrap(), dhcp)
        .await
        .unwrap();
    let (n, _) = tokio::time::timeout(Duration::from_secs(5), client.recv_from(&mut buf))
        .await
        .expect("an ack")
        .unwrap();
    let ack = Message::from_bytes(&buf[..n]).unwrap();
    assert_eq!(ack.opts().msg_type(), Some(MessageType::Ack));

    // Install reports: refused without the node's token (forged), with a
    // wrong one, and going backwards; accepted with it.
    let key = racker_netboot::report::ReportKey::load_or_create(&state).unwrap();
    let token = key.token(MacAddr::new(NODE));
    let (forged, wrong, good, back, events, health) = tokio::task::spawn_blocking(move || {
        let report =
            |q: &str| http_req(http, "POST", &format!("/report?mac=02:11:22:33:44:10&{q}"));
        (
            report("stage=installed"),
            report(&format!("stage=installed&token={}", "0".repeat(32))),
            report(&format!("stage=installed&token={token}")),
            report(&format!("stage=installing&token={token}")),
            http_get(http, "/api/events?mac=02:11:22:33:44:10"),
            http_get(http, "/api/health"),
        )
    })
    .await
    .unwrap();
    assert!(forged.starts_with("HTTP/1.1 403"), "{forged}");
    assert!(wrong.starts_with("HTTP/1.1 403"), "{wrong}");
    assert!(good.starts_with("HTTP/1.1 200"), "{good}");
    assert!(back.starts_with("HTTP/1.1 409"), "{back}");
    assert!(service.reports().is_installed(MacAddr::new(NODE)));
    // The event trail: the DHCP exchange, the script, TFTP and the
    // reports (never the token), in memory, on disk (written behind:
    // flushed here) and over HTTP.
    service.trail().flush();
    let trail = racker_netboot::trail::load(&state, MacAddr::new(NODE));
    let text = format!("{trail:?}");
    for want in [
        "DHCPDISCOVER -> DHCPOFFER",
        "DHCPREQUEST -> DHCPACK",
        "GET /ipxe",
        "RRQ ipxe.efi",
        "installed (403)",
        "installed (200)",
    ] {
        assert!(text.contains(want), "{want}: {text}");
    }
    assert!(!text.contains(&key.token(MacAddr::new(NODE))), "{text}");
    assert_eq!(trail, service.trail().events(MacAddr::new(NODE)));
    assert!(
        events.starts_with("HTTP/1.1 200") && events.contains("DHCPACK"),
        "{events}"
    );
    assert!(
        health.contains(&format!("\"pid\":{}", std::process::id())),
        "{health}"
    );
    service.shutdown().await.unwrap();
    let leases = LeaseTable::load(&state).unwrap();
    assert_eq!(
        leases.iter().map(|l| (l.mac, l.ip)).collect::<Vec<_>>(),
        vec![(MacAddr::new(NODE), NODE_IP)]
    );
}

#[tokio::test]
async fn no_dhcp_serves_content_only_and_base_url_override_reaches_the_profile() {
    let dir = tempfile::tempdir().unwrap();
    bootable(dir.path());
    let service = NetbootService::builder(dir.path(), DhcpConfig::new(SERVER, 24))
        .nodes([node()])
        .http_listen("127.0.0.1:0".parse().unwrap())
        .base_url(Some("http://boot.example:8080/".into()))
        .tftp(false)
        .start()
        .await
        .unwrap();
    assert_eq!(service.dhcp_addr(), None);
    assert_eq!(service.tftp_addr(), None);
    assert_eq!(service.base_url(), "http://boot.example:8080");
    let http = service.http_addr();
    let script = tokio::task::spawn_blocking(move || http_get(http, "/ipxe?mac=02:11:22:33:44:10"))
        .await
        .unwrap();
    assert!(
        script.contains("kernel http://boot.example:8080/assets/"),
        "{script}"
    );
    // No UEFI HTTP-boot binary without TFTP's boot files.
    let efi = tokio::task::spawn_blocking(move || http_get(http, "/ipxe.efi"))
        .await
        .unwrap();
    assert!(efi.starts_with("HTTP/1.1 404"), "{efi}");
    service.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_guard_refuses_a_wrong_mac_before_touching_anything_and_missing_boot_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let sys = dir.path().join("sys");
    fs::create_dir_all(sys.join("eth0")).unwrap();
    fs::write(sys.join("eth0/address"), "02:11:22:33:44:00\n").unwrap();
    let err = NetbootService::builder(dir.path().join("state"), DhcpConfig::new(SERVER, 24))
        .dhcp(DhcpListen::Interface("eth0".into()))
        .sys_class_net(&sys)
        .expected_mac("02:11:22:33:44:30".parse().unwrap())
        .start()
        .await
        .unwrap_err();
    match &err {
        ServiceError::Dhcp(DhcpError::RefusedInterface { interface, reason }) => {
            assert_eq!(interface, "eth0");
            assert!(
                reason.contains("not the management node's secondary MAC"),
                "{reason}"
            );
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    // Nothing was written: the state directory does not even exist.
    assert!(!dir.path().join("state").exists());

    // A /proc/net/route file naming the interface's default route.
    fs::write(sys.join("eth0/address"), "02:11:22:33:44:30\n").unwrap();
    let routes = dir.path().join("route");
    fs::write(
        &routes,
        "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\tWindow\tIRTT\n\
         eth0\t00000000\t0101A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n",
    )
    .unwrap();
    let err = check_interface(
        "eth0",
        &sys,
        None,
        &RouteSource::ProcNetRoute(routes.clone()),
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("IPv4 default route via 192.168.1.1 (table main)"),
        "{err}"
    );

    let err = NetbootService::builder(dir.path().join("state"), DhcpConfig::new(SERVER, 24))
        .http_listen("127.0.0.1:0".parse().unwrap())
        .tftp_listen("127.0.0.1:0".parse().unwrap())
        .boot_files(Some(dir.path().join("nowhere")))
        .start()
        .await
        .unwrap_err();
    assert!(matches!(err, ServiceError::Tftp { .. }), "{err:?}");
    assert!(err.to_string().contains("undionly.kpxe"), "{err}");
}

// --- in a network namespace (root) ---

use racker_testsupport::netns::Netns;

fn ip(ns: &Netns, args: &str) {
    ns.ip(&args.split_whitespace().collect::<Vec<_>>());
}

/// Run `f` on a thread inside namespace `ns` with a current-thread
/// runtime, so every socket (netlink, DHCP, HTTP) opens there.
fn in_netns<T: Send + 'static>(
    ns: &str,
    f: impl FnOnce() -> std::pin::Pin<Box<dyn std::future::Future<Output = T>>> + Send + 'static,
) -> T {
    racker_testsupport::netns::enter(ns, move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(f())
    })
}

#[test]
fn default_routes_in_any_table_and_family_are_refused_unless_forced() {
    let test = "default_routes_in_any_table_and_family_are_refused_unless_forced";
    if !racker_testsupport::require_root(test)
        || racker_testsupport::require_tool(test, "ip").is_none()
    {
        return;
    }
    let ns = Netns::create("rkroute");
    ip(&ns, "link add pxe0 type veth peer name pxe0p");
    ip(&ns, "link set pxe0p up");
    ip(&ns, "link set pxe0 address 02:11:22:33:44:30 up");
    let dir = tempfile::tempdir().unwrap();
    // sysfs shows the namespace of its mount, not the thread's: fake it.
    let sys = dir.path().join("sys");
    fs::create_dir_all(sys.join("pxe0")).unwrap();
    fs::write(sys.join("pxe0/address"), "02:11:22:33:44:30\n").unwrap();
    let mac: MacAddr = "02:11:22:33:44:30".parse().unwrap();

    let check = |ns: &str| {
        let sys = sys.clone();
        in_netns(ns, move || {
            Box::pin(async move {
                (
                    default_routes("pxe0").await.unwrap(),
                    check_interface("pxe0", &sys, Some(mac), &RouteSource::Kernel)
                        .await
                        .map_err(|e| e.to_string()),
                    default_routes("nosuch0").await.unwrap(),
                )
            })
        })
    };

    // No default route: accepted; an unknown interface has no routes.
    let (routes, checked, missing) = check(&ns.0);
    assert!(routes.is_empty(), "{routes:?}");
    assert_eq!(checked, Ok(()));
    assert!(missing.is_empty());

    // An IPv6 default route (what router advertisements install): the
    // /proc/net/route guard could not see it.
    ip(&ns, "-6 addr add 2001:db8::2/64 dev pxe0 nodad");
    ip(&ns, "-6 route add default via 2001:db8::1 dev pxe0");
    let (routes, checked, _) = check(&ns.0);
    assert_eq!(routes.len(), 1, "{routes:?}");
    assert!(routes[0].ipv6);
    assert_eq!(routes[0].table, 254);
    let err = checked.unwrap_err();
    assert!(
        err.contains("IPv6 default route via 2001:db8::1 (table main)"),
        "{err}"
    );
    ip(&ns, "-6 route del default via 2001:db8::1 dev pxe0");

    // An IPv4 default route in policy-routing table 100.
    ip(&ns, "addr add 10.99.0.2/24 dev pxe0");
    ip(&ns, "route add default via 10.99.0.1 dev pxe0 table 100");
    let (routes, checked, _) = check(&ns.0);
    assert_eq!(routes.len(), 1, "{routes:?}");
    assert!(!routes[0].ipv6);
    assert_eq!(routes[0].table, 100);
    let err = checked.unwrap_err();
    assert!(
        err.contains("IPv4 default route via 10.99.0.1 (table 100)"),
        "{err}"
    );
    // The old reader of /proc/net/route (main table only) misses it.
    let proc_route = Command::new("ip")
        .args(["netns", "exec", &ns.0, "cat", "/proc/net/route"])
        .output()
        .unwrap();
    let proc_file = dir.path().join("proc-route");
    fs::write(&proc_file, &proc_route.stdout).unwrap();
    assert!(
        racker_netboot::dhcp::transport::check_interface("pxe0", &sys, &proc_file, Some(mac))
            .is_ok(),
        "{}",
        String::from_utf8_lossy(&proc_route.stdout)
    );

    // The service refuses it, and serves anyway when forced: the address
    // goes on the interface and DHCP binds port 67 there.
    let state = dir.path().join("state");
    let boot = boot_files(dir.path());
    let (refused, forced) = in_netns(&ns.0, move || {
        Box::pin(async move {
            let builder = NetbootService::builder(&state, DhcpConfig::new(SERVER, 24))
                .dhcp(DhcpListen::Interface("pxe0".into()))
                .sys_class_net(&sys)
                .expected_mac(mac)
                .reservations([reservation()])
                .boot_files(Some(boot));
            let refused = builder
                .clone()
                .start()
                .await
                .map(|_| ())
                .map_err(|e| e.to_string());
            let service = builder.force(true).start().await.unwrap();
            let forced = (
                service.forced_past().map(ToString::to_string),
                service.interface_address().map(ToString::to_string),
                service.dhcp_addr(),
                service.tftp_addr(),
                service.http_addr(),
            );
            service.shutdown().await.unwrap();
            (refused, forced)
        })
    });
    let err = refused.unwrap_err();
    assert!(
        err.contains("refusing to serve DHCP on interface pxe0"),
        "{err}"
    );
    assert!(err.contains("(table 100)"), "{err}");
    let (warning, address, dhcp, tftp, http) = forced;
    assert!(warning.unwrap().contains("(table 100)"));
    assert_eq!(address.as_deref(), Some("172.24.213.1/24 on pxe0 (added)"));
    assert_eq!(dhcp.unwrap().port(), 67);
    assert_eq!(tftp, Some(SocketAddr::from((SERVER, 69))));
    assert_eq!(http, SocketAddr::from((SERVER, 8080)));
}
