//! Fuzz the DHCP packet handler: any sequence of datagrams must never
//! panic, and with the dynamic range off no reply may go to a MAC without a
//! reservation.
//!
//! `cargo +nightly fuzz run dhcp_handle` (from `racker-netboot/`).
#![no_main]

use std::net::Ipv4Addr;
use std::time::{Duration, UNIX_EPOCH};

use libfuzzer_sys::fuzz_target;
use racker_inventory::MacAddr;
use racker_netboot::{DhcpConfig, DhcpServer, LeaseTable, Mode, NoneInstalled, Reservation};

const SERVER: Ipv4Addr = Ipv4Addr::new(172, 24, 213, 1);

fn reservations() -> Vec<Reservation> {
    (0..4u8)
        .map(|i| Reservation {
            mac: MacAddr::new([0, 0x11, 0x22, 0x33, 0x44, 0x10 + i]),
            ip: Ipv4Addr::new(172, 24, 213, 2 + i),
            hostname: None,
        })
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, mut rest)) = data.split_first() else {
        return;
    };
    let mut config = DhcpConfig::new(SERVER, 24);
    if flags & 1 != 0 {
        config.mode = Mode::Proxy;
    }
    let dynamic = flags & 2 != 0;
    if dynamic {
        config.dynamic_range = Some((
            Ipv4Addr::new(172, 24, 213, 128),
            Ipv4Addr::new(172, 24, 213, 254),
        ));
    }
    let known: Vec<[u8; 6]> = reservations().iter().map(|r| r.mac.octets()).collect();
    let mut server =
        DhcpServer::new(config, reservations(), LeaseTable::new()).expect("valid config");
    let mut now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    // Datagrams are length-prefixed (u16 big-endian) so one input drives the
    // state machine through several messages.
    while rest.len() >= 2 {
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        let body = &rest[2..];
        let (datagram, tail) = body.split_at(len.min(body.len()));
        rest = tail;
        now += Duration::from_secs(7);
        let Ok(handled) = server.handle(datagram, now, &NoneInstalled) else {
            continue;
        };
        if let Some(reply) = handled.reply {
            let chaddr: [u8; 6] = reply.bytes[28..34].try_into().expect("reply has a chaddr");
            assert!(
                dynamic || known.contains(&chaddr),
                "reply to unknown MAC {chaddr:02x?}"
            );
        }
        let mut seen = std::collections::BTreeSet::new();
        for lease in server.leases().iter() {
            assert!(seen.insert(lease.ip), "address {} leased twice", lease.ip);
        }
    }
});
