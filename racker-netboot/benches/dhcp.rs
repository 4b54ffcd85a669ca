//! Hot paths of the DHCP server: one DORA through the sans-IO core, and
//! serialising a 1,000-lease table (done once per batch before replies).
#![allow(missing_docs)]

use std::hint::black_box;
use std::net::Ipv4Addr;
use std::time::{Duration, UNIX_EPOCH};

use criterion::{Criterion, criterion_group, criterion_main};
use dhcproto::Encodable;
use dhcproto::v4::{DhcpOption, Message, MessageType};
use racker_inventory::MacAddr;
use racker_netboot::{DhcpConfig, DhcpServer, LeaseTable, NoneInstalled, Reservation};

const SERVER: Ipv4Addr = Ipv4Addr::new(172, 24, 0, 1);

fn mac(i: u32) -> MacAddr {
    let b = i.to_be_bytes();
    MacAddr::new([2, 0, b[0], b[1], b[2], b[3]])
}

fn reservations(n: u32) -> Vec<Reservation> {
    (0..n)
        .map(|i| Reservation {
            mac: mac(i),
            ip: Ipv4Addr::from(u32::from(SERVER) + 1 + i),
            hostname: None,
        })
        .collect()
}

fn packet(kind: MessageType, m: MacAddr, requested: Option<Ipv4Addr>) -> Vec<u8> {
    let mut msg = Message::new_with_id(
        7,
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::UNSPECIFIED,
        &m.octets(),
    );
    msg.opts_mut().insert(DhcpOption::MessageType(kind));
    if let Some(ip) = requested {
        msg.opts_mut().insert(DhcpOption::RequestedIpAddress(ip));
        msg.opts_mut().insert(DhcpOption::ServerIdentifier(SERVER));
    }
    msg.to_vec().expect("encodes")
}

fn dora(c: &mut Criterion) {
    let n = 1000;
    let res = reservations(n);
    let mut server = DhcpServer::new(DhcpConfig::new(SERVER, 20), res.clone(), LeaseTable::new())
        .expect("valid");
    let packets: Vec<(Vec<u8>, Vec<u8>)> = res
        .iter()
        .map(|r| {
            (
                packet(MessageType::Discover, r.mac, None),
                packet(MessageType::Request, r.mac, Some(r.ip)),
            )
        })
        .collect();
    let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let mut i = 0usize;
    c.bench_function("dhcp_core_discover_request_1000_reservations", |b| {
        b.iter(|| {
            let (d, r) = &packets[i % packets.len()];
            i += 1;
            let offer = server
                .handle(black_box(d), now, &NoneInstalled)
                .expect("ok");
            let ack = server
                .handle(black_box(r), now, &NoneInstalled)
                .expect("ok");
            black_box((offer, ack));
        });
    });
    let table = server.leases().clone();
    assert_eq!(table.len(), n as usize);
    c.bench_function("dhcp_lease_table_to_json_1000", |b| {
        b.iter(|| black_box(table.to_json()))
    });
}

criterion_group!(benches, dora);
criterion_main!(benches);
