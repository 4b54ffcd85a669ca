//! The sans-IO session core: a whole RMCP+ handshake (Get Channel Auth
//! Caps, Open Session, RAKP 1–4, Set Session Privilege) against racker-sim's
//! BMC core in memory, and sealing/opening one session packet.

use std::net::SocketAddr;
use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use racker_ipmi::codec::{self, CipherSuite, Frame, Sealing, SessionKeys, payload};
use racker_ipmi::{CipherPreference, Credentials, Event, SessionCore, SessionOptions};
use racker_sim::{Bmc, BmcConfig, Password};

fn peer() -> SocketAddr {
    "127.0.0.1:40000".parse().expect("address")
}

/// Run one handshake to completion; panics unless it is established.
fn handshake(bmc: &mut Bmc, suite: CipherSuite, seed: u8, now: Instant) -> SessionCore {
    let opts = SessionOptions::default().cipher(CipherPreference::Only(suite));
    let mut core = SessionCore::new(
        "sim",
        Credentials::new("USER", "PASS"),
        opts,
        [seed; 32],
        now,
    );
    loop {
        while let Some(p) = core.poll_transmit() {
            for t in bmc.handle_datagram(now, peer(), &p) {
                core.handle_datagram(now, &t.payload);
            }
        }
        match core.poll_event() {
            Some(Event::Established { .. }) => return core,
            Some(other) => panic!("{other:?}"),
            None => {}
        }
    }
}

fn bench(c: &mut Criterion) {
    for suite in [CipherSuite::Suite3, CipherSuite::Suite17] {
        c.bench_function(&format!("handshake_suite{}", suite.id()), |b| {
            let now = Instant::now();
            let config = BmcConfig::new([2, 0, 0, 0, 0, 1], "USER", Password::new("PASS"));
            let mut bmc = Bmc::new(config.max_sessions(64));
            let mut seed = 0u8;
            b.iter(|| {
                seed = seed.wrapping_add(1);
                let mut core = handshake(&mut bmc, suite, seed, now);
                if let Some(close) = core.close_now() {
                    bmc.handle_datagram(now, peer(), &close);
                }
            });
        });

        let keys = SessionKeys::derive(suite, b"PASS", &[1; 16], &[2; 16], 0x14, b"USER");
        let message = codec::encode_request(0x00, 0x01, 1, &[]);
        let how = Sealing {
            payload_type: payload::IPMI,
            session_id: 0x0102_0304,
            sequence: 7,
            encrypt_iv: Some([9; 16]),
            authenticate: true,
        };
        c.bench_function(&format!("seal_suite{}", suite.id()), |b| {
            b.iter(|| codec::seal(&keys, &how, std::hint::black_box(&message)));
        });
        let sealed = codec::seal(&keys, &how, &message);
        c.bench_function(&format!("open_suite{}", suite.id()), |b| {
            b.iter(|| {
                let Some(Frame::V20(v)) = codec::parse(std::hint::black_box(&sealed)) else {
                    panic!("not a session packet")
                };
                codec::open(&keys, &v).expect("opens")
            });
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
