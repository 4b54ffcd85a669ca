//! Power-on to `/report` (and to "OS up") of simulated nodes PXE-booting
//! against racker-netboot's DHCP and HTTP servers on loopback, zero
//! install delay, disk boot set over IPMI: 1 node and 60 in parallel.

#[path = "../tests/firmware/rack.rs"]
mod rack;

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use racker_sim::firmware::{Firmware, HttpClient, Phase};
use racker_sim::{BootDevice, BootFlags};

/// Start a rack of `n`, power every node on with PXE boot flags (set
/// in-band), and return (power-on → all reports, power-on → all OS up).
async fn run(n: usize) -> (Duration, Duration) {
    let rack = rack::start(n).await;
    let config = rack.config();
    let http = HttpClient::new(&config).unwrap();
    let fw: Vec<Firmware> = rack
        .rack
        .nodes()
        .iter()
        .map(|node| Firmware::spawn_with(node, config.clone(), &http).unwrap())
        .collect();
    for node in rack.rack.nodes() {
        node.set_boot_flag_clearing(0x1F);
        node.set_boot_flags(BootFlags::new(BootDevice::Pxe, true, true));
    }
    let t0 = Instant::now();
    for node in rack.rack.nodes() {
        node.set_power(true);
    }
    let reported = futures_wait(&fw, |s| s.reports.iter().any(|r| r == "installed")).await;
    let reported = reported - t0;
    let up = futures_wait(&fw, |s| s.phase == Phase::OsUp).await - t0;
    (reported, up)
}

async fn futures_wait(
    fw: &[Firmware],
    done: impl Fn(&racker_sim::firmware::FirmwareStatus) -> bool + Copy,
) -> Instant {
    for f in fw {
        f.wait_for(Duration::from_secs(120), done).await.unwrap();
    }
    Instant::now()
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut g = c.benchmark_group("firmware");
    g.sample_size(10);
    for n in [1usize, 60] {
        g.bench_function(format!("power_on_to_report_{n}_nodes"), |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        total += run(n).await.0;
                    }
                    total
                })
            })
        });
        g.bench_function(format!("power_on_to_os_up_{n}_nodes"), |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        total += run(n).await.1;
                    }
                    total
                })
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
