//! Hot paths of the sans-IO BMC core: an in-session Get Chassis Status and
//! a full RMCP+ handshake.

use std::net::SocketAddr;
use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use racker_sim::{Bmc, BmcConfig, Password};

#[path = "../tests/support/console.rs"]
mod console;

fn bmc() -> Bmc {
    Bmc::new(BmcConfig::new([2, 0, 0, 0, 0, 1], "USER", Password::new("PASS")).max_sessions(64))
}

fn peer() -> SocketAddr {
    "127.0.0.1:40000".parse().expect("address")
}

fn bench(c: &mut Criterion) {
    for suite in [3u8, 17] {
        c.bench_function(&format!("chassis_status_suite{suite}"), |b| {
            let now = Instant::now();
            let mut bmc = bmc();
            let mut con = console::Console::new(suite, "USER", "PASS");
            console::login(&mut con, |p| {
                bmc.handle_datagram(now, peer(), &p)
                    .into_iter()
                    .map(|t| t.payload)
                    .collect()
            })
            .expect("login");
            b.iter(|| {
                let p = con.request(0x00, 0x01, &[]);
                let out = bmc.handle_datagram(now, peer(), &p);
                assert_eq!(out.len(), 1);
            });
        });
        c.bench_function(&format!("handshake_suite{suite}"), |b| {
            let now = Instant::now();
            let mut bmc = bmc();
            b.iter(|| {
                let mut con = console::Console::new(suite, "USER", "PASS");
                console::login(&mut con, |p| {
                    bmc.handle_datagram(now, peer(), &p)
                        .into_iter()
                        .map(|t| t.payload)
                        .collect()
                })
                .expect("login");
                let close = con.request(0x06, 0x3C, &con.sid_c.to_le_bytes());
                bmc.handle_datagram(now, peer(), &close);
            });
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
