//! Unit and property tests of the DHCP core.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dhcproto::v4::{DhcpOption, Flags, Message, MessageType, Opcode, OptionCode};
use dhcproto::{Decodable, Encodable};
use proptest::prelude::*;
use racker_inventory::MacAddr;

use super::*;
use crate::leases::LeaseTable;

const SERVER: Ipv4Addr = Ipv4Addr::new(172, 24, 213, 1);

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

fn mac(last: u8) -> MacAddr {
    MacAddr::new([0, 0x11, 0x22, 0x33, 0x44, last])
}

fn reservations() -> Vec<Reservation> {
    vec![
        Reservation {
            mac: mac(0x10),
            ip: Ipv4Addr::new(172, 24, 213, 2),
            hostname: Some("node-0".into()),
        },
        Reservation {
            mac: mac(0x11),
            ip: Ipv4Addr::new(172, 24, 213, 4),
            hostname: None,
        },
    ]
}

fn server_with(f: impl FnOnce(&mut DhcpConfig)) -> DhcpServer {
    let mut config = DhcpConfig::new(SERVER, 24);
    f(&mut config);
    DhcpServer::new(config, reservations(), LeaseTable::new()).unwrap()
}

fn server() -> DhcpServer {
    server_with(|_| {})
}

fn dynamic_server() -> DhcpServer {
    server_with(|c| {
        c.dynamic_range = Some((
            Ipv4Addr::new(172, 24, 213, 128),
            Ipv4Addr::new(172, 24, 213, 254),
        ))
    })
}

/// A client message builder.
struct Client {
    msg: Message,
}

impl Client {
    fn new(kind: MessageType, mac: MacAddr) -> Self {
        let mut msg = Message::new_with_id(
            0x1234_5678,
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::UNSPECIFIED,
            &mac.octets(),
        );
        msg.opts_mut().insert(DhcpOption::MessageType(kind));
        Self { msg }
    }
    fn opt(mut self, o: DhcpOption) -> Self {
        self.msg.opts_mut().insert(o);
        self
    }
    fn requested(self, ip: Ipv4Addr) -> Self {
        self.opt(DhcpOption::RequestedIpAddress(ip))
    }
    fn server_id(self, ip: Ipv4Addr) -> Self {
        self.opt(DhcpOption::ServerIdentifier(ip))
    }
    fn arch(self, a: u16) -> Self {
        self.opt(DhcpOption::ClientSystemArchitecture(a.into()))
            .opt(DhcpOption::ClassIdentifier(
                b"PXEClient:Arch:00000:UNDI:002001".to_vec(),
            ))
    }
    fn ciaddr(mut self, ip: Ipv4Addr) -> Self {
        self.msg.set_ciaddr(ip);
        self
    }
    fn giaddr(mut self, ip: Ipv4Addr) -> Self {
        self.msg.set_giaddr(ip);
        self
    }
    fn bytes(&self) -> Vec<u8> {
        self.msg.to_vec().unwrap()
    }
}

fn handle(server: &mut DhcpServer, c: &Client) -> Handled {
    server.handle(&c.bytes(), now(), &NoneInstalled).unwrap()
}

fn reply(h: &Handled) -> Message {
    Message::from_bytes(&h.reply.as_ref().expect("a reply").bytes).unwrap()
}

fn fname(m: &Message) -> Option<String> {
    // dhcproto keeps the terminating NUL of the field.
    m.fname().map(|f| {
        String::from_utf8(f.to_vec())
            .unwrap()
            .trim_end_matches('\0')
            .to_owned()
    })
}

#[test]
fn discover_offers_the_reserved_address_with_mask_server_id_and_no_router() {
    let mut s = server();
    let h = handle(&mut s, &Client::new(MessageType::Discover, mac(0x11)));
    let r = h.reply.as_ref().unwrap();
    assert_eq!(r.kind, MessageKind::Offer);
    assert_eq!(r.destination, Destination::Broadcast);
    let m = reply(&h);
    assert_eq!(m.opcode(), Opcode::BootReply);
    assert_eq!(m.xid(), 0x1234_5678);
    assert_eq!(m.chaddr(), &mac(0x11).octets());
    assert_eq!(m.yiaddr(), Ipv4Addr::new(172, 24, 213, 4));
    assert_eq!(m.siaddr(), SERVER);
    assert_eq!(m.opts().msg_type(), Some(MessageType::Offer));
    assert_eq!(
        m.opts().get(OptionCode::ServerIdentifier),
        Some(&DhcpOption::ServerIdentifier(SERVER))
    );
    assert_eq!(
        m.opts().get(OptionCode::SubnetMask),
        Some(&DhcpOption::SubnetMask(Ipv4Addr::new(255, 255, 255, 0)))
    );
    assert_eq!(
        m.opts().get(OptionCode::AddressLeaseTime),
        Some(&DhcpOption::AddressLeaseTime(120))
    );
    assert!(m.opts().get(OptionCode::Router).is_none());
    assert!(m.opts().get(OptionCode::DomainNameServer).is_none());
    assert_eq!(fname(&m), None, "not a PXE client, no boot file");
    // An offer is not a lease.
    assert!(s.leases().is_empty());
    assert_eq!(h.transaction.ip, Some(Ipv4Addr::new(172, 24, 213, 4)));
}

#[test]
fn router_dns_and_hostname_only_when_configured() {
    let mut s = server_with(|c| {
        c.router = Some(SERVER);
        c.dns = vec![Ipv4Addr::new(9, 9, 9, 9)];
    });
    let m = reply(&handle(
        &mut s,
        &Client::new(MessageType::Discover, mac(0x10)),
    ));
    assert_eq!(
        m.opts().get(OptionCode::Router),
        Some(&DhcpOption::Router(vec![SERVER]))
    );
    assert_eq!(
        m.opts().get(OptionCode::DomainNameServer),
        Some(&DhcpOption::DomainNameServer(vec![Ipv4Addr::new(
            9, 9, 9, 9
        )]))
    );
    assert_eq!(
        m.opts().get(OptionCode::Hostname),
        Some(&DhcpOption::Hostname("node-0".into()))
    );
}

#[test]
fn unknown_mac_gets_nothing_without_a_dynamic_range() {
    let mut s = server();
    for kind in [MessageType::Discover, MessageType::Inform] {
        let h = handle(
            &mut s,
            &Client::new(kind, mac(0x99)).ciaddr(Ipv4Addr::new(172, 24, 213, 200)),
        );
        assert!(h.reply.is_none());
        assert_eq!(h.transaction.note, Some("unknown MAC"));
    }
    let h = handle(
        &mut s,
        &Client::new(MessageType::Request, mac(0x99)).requested(Ipv4Addr::new(172, 24, 213, 200)),
    );
    assert!(h.reply.is_none());
    assert!(s.leases().is_empty());
}

#[test]
fn full_dora_then_renew_then_release() {
    let mut s = server();
    let ip = Ipv4Addr::new(172, 24, 213, 2);
    let offer = reply(&handle(
        &mut s,
        &Client::new(MessageType::Discover, mac(0x10)),
    ));
    assert_eq!(offer.yiaddr(), ip);
    let h = handle(
        &mut s,
        &Client::new(MessageType::Request, mac(0x10))
            .requested(ip)
            .server_id(SERVER),
    );
    assert_eq!(h.reply.as_ref().unwrap().kind, MessageKind::Ack);
    assert_eq!(reply(&h).yiaddr(), ip);
    let lease = *s.leases().get(mac(0x10)).unwrap();
    assert_eq!(lease.ip, ip);
    assert!(lease.reserved);
    assert_eq!(lease.expires, 1_800_000_120);
    // Renewal: unicast to ciaddr, no server id, no option 50.
    let h = handle(
        &mut s,
        &Client::new(MessageType::Request, mac(0x10)).ciaddr(ip),
    );
    assert_eq!(h.reply.as_ref().unwrap().kind, MessageKind::Ack);
    assert_eq!(
        h.reply.as_ref().unwrap().destination,
        Destination::Unicast(ip)
    );
    // Release removes the lease, no reply.
    let h = handle(
        &mut s,
        &Client::new(MessageType::Release, mac(0x10))
            .ciaddr(ip)
            .server_id(SERVER),
    );
    assert!(h.reply.is_none());
    assert!(s.leases().get(mac(0x10)).is_none());
}

#[test]
fn wrong_address_gets_nak_and_other_server_is_silent() {
    let mut s = server();
    let h = handle(
        &mut s,
        &Client::new(MessageType::Request, mac(0x10)).requested(Ipv4Addr::new(172, 24, 213, 77)),
    );
    let r = h.reply.as_ref().unwrap();
    assert_eq!(r.kind, MessageKind::Nak);
    assert_eq!(r.destination, Destination::Broadcast);
    let m = reply(&h);
    assert_eq!(m.opts().msg_type(), Some(MessageType::Nak));
    assert_eq!(m.yiaddr(), Ipv4Addr::UNSPECIFIED);
    let h = handle(
        &mut s,
        &Client::new(MessageType::Request, mac(0x10))
            .requested(Ipv4Addr::new(172, 24, 213, 2))
            .server_id(Ipv4Addr::new(10, 0, 0, 1)),
    );
    assert!(h.reply.is_none());
    assert_eq!(h.transaction.note, Some("client chose another server"));
    assert!(s.leases().is_empty());
}

#[test]
fn relayed_requests_reply_to_the_relay() {
    let mut s = server();
    let relay = Ipv4Addr::new(172, 24, 213, 250);
    let h = handle(
        &mut s,
        &Client::new(MessageType::Discover, mac(0x11)).giaddr(relay),
    );
    assert_eq!(
        h.reply.as_ref().unwrap().destination,
        Destination::Relay(relay)
    );
    assert_eq!(reply(&h).giaddr(), relay);
    assert_eq!(h.transaction.relay, Some(relay));
    let h = handle(
        &mut s,
        &Client::new(MessageType::Request, mac(0x11))
            .requested(Ipv4Addr::new(172, 24, 213, 4))
            .server_id(SERVER)
            .giaddr(relay),
    );
    assert_eq!(
        h.reply.as_ref().unwrap().destination,
        Destination::Relay(relay)
    );
    assert_eq!(h.reply.as_ref().unwrap().kind, MessageKind::Ack);
}

#[test]
fn boot_file_by_architecture() {
    let cases: [(u16, Option<&str>); 7] = [
        (0, Some("undionly.kpxe")),
        (6, Some("ipxe.efi")),
        (7, Some("ipxe.efi")),
        (9, Some("ipxe.efi")),
        (11, Some("ipxe-arm64.efi")),
        (16, Some("http://172.24.213.1:8080/ipxe.efi")),
        (2, None),
    ];
    for (arch, want) in cases {
        let mut s = server();
        let m = reply(&handle(
            &mut s,
            &Client::new(MessageType::Discover, mac(0x10)).arch(arch),
        ));
        assert_eq!(fname(&m).as_deref(), want, "arch {arch}");
        assert_eq!(m.siaddr(), SERVER);
    }
    let mut s = server_with(|c| {
        c.boot.arm64_file = None;
        c.boot.next_server = Some(Ipv4Addr::new(172, 24, 213, 9));
    });
    let h = handle(
        &mut s,
        &Client::new(MessageType::Discover, mac(0x10)).arch(11),
    );
    assert_eq!(fname(&reply(&h)), None);
    assert_eq!(reply(&h).siaddr(), Ipv4Addr::new(172, 24, 213, 9));
    assert_eq!(h.transaction.note, Some("ARM64 boot file not configured"));
}

#[test]
fn ipxe_user_class_gets_the_script_url_not_a_chainload() {
    let mut s = server();
    let c = Client::new(MessageType::Request, mac(0x10))
        .arch(7)
        .opt(DhcpOption::UserClass(b"iPXE".to_vec()))
        .opt(DhcpOption::ParameterRequestList(vec![
            OptionCode::SubnetMask,
            OptionCode::BootfileName,
        ]))
        .requested(Ipv4Addr::new(172, 24, 213, 2));
    let h = handle(&mut s, &c);
    let m = reply(&h);
    let url = "http://172.24.213.1:8080/boot.ipxe";
    assert_eq!(fname(&m).as_deref(), Some(url));
    assert_eq!(
        m.opts().get(OptionCode::BootfileName),
        Some(&DhcpOption::BootfileName(url.into()))
    );
    assert_eq!(h.transaction.boot_file.as_deref(), Some(url));
    // RFC 3004 length-prefixed "iPXE" is not iPXE's form: treated as plain PXE.
    let c = Client::new(MessageType::Discover, mac(0x10))
        .arch(7)
        .opt(DhcpOption::UserClass(b"\x04iPXE".to_vec()));
    assert_eq!(
        fname(&reply(&handle(&mut s, &c))).as_deref(),
        Some("ipxe.efi")
    );
}

#[test]
fn uefi_http_boot_gets_a_url_and_the_class_echoed() {
    let mut s = server();
    let c = Client::new(MessageType::Discover, mac(0x10))
        .opt(DhcpOption::ClassIdentifier(
            b"HTTPClient:Arch:00016:UNDI:003001".to_vec(),
        ))
        .opt(DhcpOption::ClientSystemArchitecture(16.into()));
    let m = reply(&handle(&mut s, &c));
    assert_eq!(
        fname(&m).as_deref(),
        Some("http://172.24.213.1:8080/ipxe.efi")
    );
    assert_eq!(
        m.opts().get(OptionCode::ClassIdentifier),
        Some(&DhcpOption::ClassIdentifier(b"HTTPClient".to_vec()))
    );
}

#[test]
fn installed_nodes_get_an_address_but_no_boot_file() {
    let mut s = server();
    let installed: BTreeSet<MacAddr> = [mac(0x10)].into();
    let c = Client::new(MessageType::Discover, mac(0x10)).arch(0);
    let h = s.handle(&c.bytes(), now(), &installed).unwrap();
    let m = reply(&h);
    assert_eq!(m.yiaddr(), Ipv4Addr::new(172, 24, 213, 2));
    assert_eq!(fname(&m), None);
    assert_eq!(h.transaction.note, Some("installed, boot from disk"));
    let c = Client::new(MessageType::Discover, mac(0x11)).arch(0);
    let m = reply(&s.handle(&c.bytes(), now(), &installed).unwrap());
    assert_eq!(fname(&m).as_deref(), Some("undionly.kpxe"));
}

#[test]
fn dynamic_range_hands_distinct_addresses_and_keeps_them() {
    let mut s = dynamic_server();
    let a = reply(&handle(
        &mut s,
        &Client::new(MessageType::Discover, mac(0xa0)),
    ))
    .yiaddr();
    let b = reply(&handle(
        &mut s,
        &Client::new(MessageType::Discover, mac(0xa1)),
    ))
    .yiaddr();
    assert_eq!(a, Ipv4Addr::new(172, 24, 213, 128));
    assert_eq!(
        b,
        Ipv4Addr::new(172, 24, 213, 129),
        "an offered address is held"
    );
    // b asks for a's address: it is a's, so NAK.
    let h = handle(
        &mut s,
        &Client::new(MessageType::Request, mac(0xa1))
            .requested(a)
            .server_id(SERVER),
    );
    assert_eq!(h.reply.unwrap().kind, MessageKind::Nak);
    let h = handle(
        &mut s,
        &Client::new(MessageType::Request, mac(0xa0))
            .requested(a)
            .server_id(SERVER),
    );
    assert_eq!(h.reply.unwrap().kind, MessageKind::Ack);
    let lease = *s.leases().get(mac(0xa0)).unwrap();
    assert!(!lease.reserved);
    // A restarted server with the saved table keeps a's address for a.
    let leases = LeaseTable::from_json(&s.leases().to_json()).unwrap();
    let mut config = DhcpConfig::new(SERVER, 24);
    config.dynamic_range = s.config().dynamic_range;
    let mut restarted = DhcpServer::new(config, reservations(), leases).unwrap();
    let c = reply(&handle(
        &mut restarted,
        &Client::new(MessageType::Discover, mac(0xa2)),
    ))
    .yiaddr();
    assert_ne!(c, a);
    let again = reply(&handle(
        &mut restarted,
        &Client::new(MessageType::Discover, mac(0xa0)),
    ))
    .yiaddr();
    assert_eq!(again, a);
    // Reserved MACs still get their reservation, never a dynamic address.
    let r = reply(&handle(
        &mut restarted,
        &Client::new(MessageType::Discover, mac(0x10)),
    ))
    .yiaddr();
    assert_eq!(r, Ipv4Addr::new(172, 24, 213, 2));
}

#[test]
fn declined_dynamic_address_is_quarantined() {
    let mut s = dynamic_server();
    let a = reply(&handle(
        &mut s,
        &Client::new(MessageType::Discover, mac(0xa0)),
    ))
    .yiaddr();
    handle(
        &mut s,
        &Client::new(MessageType::Request, mac(0xa0))
            .requested(a)
            .server_id(SERVER),
    );
    let h = handle(
        &mut s,
        &Client::new(MessageType::Decline, mac(0xa0))
            .requested(a)
            .server_id(SERVER),
    );
    assert!(h.reply.is_none());
    assert!(s.leases().get(mac(0xa0)).is_none());
    let b = reply(&handle(
        &mut s,
        &Client::new(MessageType::Discover, mac(0xa0)),
    ))
    .yiaddr();
    assert_ne!(a, b);
}

#[test]
fn dynamic_range_exhaustion_is_silent() {
    let mut s = server_with(|c| {
        c.dynamic_range = Some((
            Ipv4Addr::new(172, 24, 213, 200),
            Ipv4Addr::new(172, 24, 213, 201),
        ));
    });
    for last in [0xa0, 0xa1] {
        assert!(
            handle(&mut s, &Client::new(MessageType::Discover, mac(last)))
                .reply
                .is_some()
        );
    }
    let h = handle(&mut s, &Client::new(MessageType::Discover, mac(0xa2)));
    assert!(h.reply.is_none());
    assert_eq!(h.transaction.note, Some("no free dynamic address"));
}

#[test]
fn inform_gets_configuration_without_a_lease() {
    let mut s = server();
    let ip = Ipv4Addr::new(172, 24, 213, 2);
    let h = handle(
        &mut s,
        &Client::new(MessageType::Inform, mac(0x10)).ciaddr(ip),
    );
    assert_eq!(
        h.reply.as_ref().unwrap().destination,
        Destination::Unicast(ip)
    );
    let m = reply(&h);
    assert_eq!(m.opts().msg_type(), Some(MessageType::Ack));
    assert_eq!(m.yiaddr(), Ipv4Addr::UNSPECIFIED);
    assert!(m.opts().get(OptionCode::AddressLeaseTime).is_none());
    assert!(s.leases().is_empty());
}

#[test]
fn proxy_mode_answers_known_pxe_clients_with_boot_info_only() {
    let mut s = server_with(|c| c.mode = Mode::Proxy);
    let h = handle(
        &mut s,
        &Client::new(MessageType::Discover, mac(0x10)).arch(0),
    );
    let m = reply(&h);
    assert_eq!(m.opts().msg_type(), Some(MessageType::Offer));
    assert_eq!(m.yiaddr(), Ipv4Addr::UNSPECIFIED);
    assert!(m.opts().get(OptionCode::AddressLeaseTime).is_none());
    assert!(m.opts().get(OptionCode::SubnetMask).is_none());
    assert_eq!(fname(&m).as_deref(), Some("undionly.kpxe"));
    assert_eq!(
        m.opts().get(OptionCode::ClassIdentifier),
        Some(&DhcpOption::ClassIdentifier(b"PXEClient".to_vec()))
    );
    // Not a PXE client, or unknown: nothing.
    assert!(
        handle(&mut s, &Client::new(MessageType::Discover, mac(0x10)))
            .reply
            .is_none()
    );
    assert!(
        handle(
            &mut s,
            &Client::new(MessageType::Discover, mac(0x99)).arch(0)
        )
        .reply
        .is_none()
    );
    // REQUEST addressed to the real DHCP server: not ours.
    let c = Client::new(MessageType::Request, mac(0x10))
        .arch(0)
        .requested(Ipv4Addr::new(192, 168, 1, 5))
        .server_id(Ipv4Addr::new(192, 168, 1, 1));
    assert!(handle(&mut s, &c).reply.is_none());
    assert!(s.leases().is_empty());
}

#[test]
fn malformed_packets_are_errors() {
    let mut s = server();
    let ok = Client::new(MessageType::Discover, mac(0x10)).bytes();
    // hlen beyond 16 would make dhcproto's chaddr() panic.
    let mut bad = ok.clone();
    bad[2] = 200;
    assert!(matches!(
        s.handle(&bad, now(), &NoneInstalled),
        Err(DhcpError::Malformed { .. })
    ));
    let mut reply_op = ok.clone();
    reply_op[0] = 2;
    assert!(s.handle(&reply_op, now(), &NoneInstalled).is_err());
    assert!(s.handle(&ok[..100], now(), &NoneInstalled).is_err());
    let mut bootp = Client::new(MessageType::Discover, mac(0x10));
    bootp.msg.opts_mut().remove(OptionCode::MessageType);
    assert!(s.handle(&bootp.bytes(), now(), &NoneInstalled).is_err());
}

#[test]
fn config_validation() {
    let bad_range = |c: &mut DhcpConfig| {
        c.dynamic_range = Some((
            Ipv4Addr::new(172, 24, 213, 1),
            Ipv4Addr::new(172, 24, 213, 9),
        ));
    };
    let mut c = DhcpConfig::new(SERVER, 24);
    bad_range(&mut c);
    assert!(DhcpServer::new(c, [], LeaseTable::new()).is_err());
    let c = DhcpConfig::new(SERVER, 24);
    let outside = Reservation {
        mac: mac(1),
        ip: Ipv4Addr::new(10, 0, 0, 2),
        hostname: None,
    };
    assert!(DhcpServer::new(c.clone(), [outside], LeaseTable::new()).is_err());
    let dup = reservations().into_iter().chain([Reservation {
        mac: mac(0x10),
        ip: Ipv4Addr::new(172, 24, 213, 50),
        hostname: None,
    }]);
    assert!(DhcpServer::new(c.clone(), dup, LeaseTable::new()).is_err());
    let mut c2 = c;
    c2.prefix_len = 22;
    assert_eq!(c2.netmask(), Ipv4Addr::new(255, 255, 252, 0));
    assert!(c2.contains(Ipv4Addr::new(172, 24, 214, 9)));
}

#[test]
fn transaction_line_names_mac_messages_address_and_boot_file() {
    let mut s = server();
    let h = handle(
        &mut s,
        &Client::new(MessageType::Discover, mac(0x10)).arch(0),
    );
    assert_eq!(
        h.transaction.to_string(),
        "00:11:22:33:44:10 DISCOVER -> OFFER 172.24.213.2 boot=undionly.kpxe xid=0x12345678"
    );
}

fn arb_message() -> impl Strategy<Value = Vec<u8>> {
    // Structured messages from known and unknown MACs with random options,
    // then mutated: they reach the state machine, not just the decoder.
    (
        0u8..=8,
        prop::sample::select(vec![0x10u8, 0x11, 0x12, 0x99]),
        prop::option::of(0u16..20),
        any::<bool>(),
        prop::option::of(any::<[u8; 4]>()),
        prop::option::of(any::<[u8; 4]>()),
        prop::option::of(any::<[u8; 4]>()),
        prop::collection::vec((0usize..300, any::<u8>()), 0..3),
    )
        .prop_map(|(kind, last, arch, ipxe, req, sid, ci, flips)| {
            let kind = MessageType::from(kind);
            let mut c = Client::new(kind, mac(last));
            if let Some(a) = arch {
                c = c.arch(a);
            }
            if ipxe {
                c = c.opt(DhcpOption::UserClass(b"iPXE".to_vec()));
            }
            if let Some(r) = req {
                c = c.requested(Ipv4Addr::from(r));
            }
            if let Some(r) = sid {
                c = c.server_id(Ipv4Addr::from(r));
            }
            if let Some(r) = ci {
                c = c.ciaddr(Ipv4Addr::from(r));
            }
            c.msg.set_flags(Flags::default());
            let mut bytes = c.bytes();
            for (i, b) in flips {
                if let Some(slot) = bytes.get_mut(i) {
                    *slot = b;
                }
            }
            bytes
        })
}

/// True when the reply can only be for `chaddr` of a reserved MAC.
fn reply_is_for_known(bytes: &[u8], reply: &Reply) -> bool {
    let m = Message::from_bytes(&reply.bytes).unwrap();
    let known: BTreeSet<MacAddr> = reservations().into_iter().map(|r| r.mac).collect();
    let req = Message::from_bytes(bytes).unwrap();
    let mut octets = [0u8; 6];
    octets.copy_from_slice(&m.chaddr()[..6]);
    known.contains(&MacAddr::new(octets)) && m.chaddr() == req.chaddr() && m.xid() == req.xid()
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic_or_answer_unknown(bytes in prop::collection::vec(any::<u8>(), 0..700)) {
        for mode in [Mode::Full, Mode::Proxy] {
            let mut s = server_with(|c| c.mode = mode);
            if let Ok(h) = s.handle(&bytes, now(), &NoneInstalled)
                && let Some(r) = &h.reply {
                    prop_assert!(reply_is_for_known(&bytes, r));
                }
        }
    }

    #[test]
    fn arbitrary_options_never_panic_or_answer_unknown(
        last in prop::sample::select(vec![0x10u8, 0x99]),
        options in prop::collection::vec(any::<u8>(), 0..400),
        hazard in prop::sample::select(vec![80u8, 81, 93, 94, 151, 152, 53]),
        hazard_len in 0u8..6,
    ) {
        // A valid header, then random options, some with codes whose
        // decoders in dhcproto assume a length.
        let mut bytes = Client::new(MessageType::Discover, mac(last)).bytes();
        bytes.truncate(240);
        bytes.extend([53, 1, 1, hazard, hazard_len]);
        bytes.extend(options);
        for mode in [Mode::Full, Mode::Proxy] {
            let mut s = server_with(|c| c.mode = mode);
            if let Ok(h) = s.handle(&bytes, now(), &NoneInstalled)
                && let Some(r) = &h.reply {
                    prop_assert!(reply_is_for_known(&bytes, r));
                }
        }
    }

    #[test]
    fn messages_never_panic_or_answer_unknown(msgs in prop::collection::vec(arb_message(), 1..12)) {
        for mode in [Mode::Full, Mode::Proxy] {
            let mut s = server_with(|c| c.mode = mode);
            for bytes in &msgs {
                if let Ok(h) = s.handle(bytes, now(), &NoneInstalled)
                    && let Some(r) = &h.reply {
                        prop_assert!(reply_is_for_known(bytes, r));
                        let m = Message::from_bytes(&r.bytes).unwrap();
                        // Addresses handed out are always the MAC's reservation.
                        if !m.yiaddr().is_unspecified() {
                            let res = reservations().into_iter().find(|x| x.mac.octets() == m.chaddr()[..6]).unwrap();
                            prop_assert_eq!(m.yiaddr(), res.ip);
                        }
                    }
            }
            for lease in s.leases().iter() {
                prop_assert!(lease.reserved);
            }
        }
    }

    #[test]
    fn dynamic_leases_never_share_an_address(msgs in prop::collection::vec(arb_message(), 1..20)) {
        let mut s = dynamic_server();
        for bytes in &msgs {
            let _ = s.handle(bytes, now(), &NoneInstalled);
        }
        let mut seen = BTreeSet::new();
        for lease in s.leases().iter() {
            prop_assert!(seen.insert(lease.ip), "{} leased twice", lease.ip);
            prop_assert!(s.config().contains(lease.ip));
        }
    }
}
