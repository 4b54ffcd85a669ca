//! Hot paths of the sans-IO BMC core: an in-session Get Chassis Status, a
//! full RMCP+ handshake, and the platform commands a sensor poller sends
//! (Get Sensor Reading, Get SDR of a whole record, a whole SDR repository
//! walk the way ipmitool reads it, Get SEL Entry, Read FRU Data).

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

/// One in-session request → its completion code and data.
fn call(
    bmc: &mut Bmc,
    con: &mut console::Console,
    now: Instant,
    netfn: u8,
    cmd: u8,
    data: &[u8],
) -> (u8, Vec<u8>) {
    let p = con.request(netfn, cmd, data);
    let out = bmc.handle_datagram(now, peer(), &p);
    con.response(&out[0].payload).expect("response")
}

/// Reserve, then per record a 5-byte header read and the body in 16-byte
/// chunks (ipmitool's pattern); returns the number of records.
fn sdr_walk(bmc: &mut Bmc, con: &mut console::Console, now: Instant) -> usize {
    let (_, r) = call(bmc, con, now, 0x0A, 0x22, &[]);
    let mut id = [0u8, 0u8];
    let mut n = 0;
    loop {
        let (_, h) = call(bmc, con, now, 0x0A, 0x23, &[r[0], r[1], id[0], id[1], 0, 5]);
        let len = usize::from(h[6]) + 5;
        let mut got = 5;
        while got < len {
            let k = (len - got).min(16) as u8;
            let (_, part) = call(
                bmc,
                con,
                now,
                0x0A,
                0x23,
                &[r[0], r[1], id[0], id[1], got as u8, k],
            );
            got += part.len() - 2;
        }
        n += 1;
        if h[..2] == [0xFF, 0xFF] {
            return n;
        }
        id = [h[0], h[1]];
    }
}

fn platform(c: &mut Criterion) {
    let now = Instant::now();
    let mut bmc = bmc();
    let mut con = console::Console::new(17, "USER", "PASS");
    console::login(&mut con, |p| {
        bmc.handle_datagram(now, peer(), &p)
            .into_iter()
            .map(|t| t.payload)
            .collect()
    })
    .expect("login");
    bmc.node_power(now, true);
    c.bench_function("get_sensor_reading_suite17", |b| {
        b.iter(|| assert_eq!(call(&mut bmc, &mut con, now, 0x04, 0x2D, &[0x03]).0, 0));
    });
    c.bench_function("get_sdr_whole_record_suite17", |b| {
        b.iter(|| {
            let (cc, r) = call(&mut bmc, &mut con, now, 0x0A, 0x23, &[0, 0, 1, 0, 0, 0xFF]);
            assert_eq!((cc, r.len()), (0, 2 + 48 + 8));
        });
    });
    c.bench_function("sdr_repository_walk_ipmitool_style_suite17", |b| {
        b.iter(|| assert_eq!(sdr_walk(&mut bmc, &mut con, now), 8));
    });
    c.bench_function("get_sel_entry_suite17", |b| {
        b.iter(|| {
            assert_eq!(
                call(&mut bmc, &mut con, now, 0x0A, 0x43, &[0, 0, 0, 0, 0, 0xFF]).0,
                0
            )
        });
    });
    c.bench_function("read_fru_data_16_bytes_suite17", |b| {
        b.iter(|| {
            assert_eq!(
                call(&mut bmc, &mut con, now, 0x0A, 0x11, &[0, 16, 0, 16]).0,
                0
            )
        });
    });
}

criterion_group!(benches, bench, platform);
criterion_main!(benches);
