//! One 64 MiB TFTP transfer (blksize 1468) from our server with windowsize 1
//! and 16, and from dnsmasq's TFTP server when installed and we are root
//! (dnsmasq listens on port 69 and has no windowsize), on loopback.
//!
//! Also the sans-IO core alone (no sockets): how fast `Transfer` produces
//! packets. `RACKER_BENCH_TFTP_MIB` sets the file size (default 64).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use racker_netboot::tftp::packet::{Mode, Packet};
use racker_netboot::tftp::server::{TftpServer, TftpStats};
use racker_netboot::tftp::transfer::{Progress, ReadRequest, TftpConfig, Transfer};
use tokio::net::UdpSocket;

fn size_mib() -> u64 {
    std::env::var("RACKER_BENCH_TFTP_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64)
}

/// A minimal windowed TFTP client: returns the bytes received.
async fn tftp_get(server: SocketAddr, name: &str, blksize: u16, window: u16) -> u64 {
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut options = vec![("blksize".to_owned(), blksize.to_string())];
    if window > 1 {
        options.push(("windowsize".to_owned(), window.to_string()));
    }
    let rrq = Packet::Rrq {
        filename: name.into(),
        mode: Mode::Octet,
        options,
    }
    .encode();
    sock.send_to(&rrq, server).await.unwrap();
    let mut buf = vec![0u8; 70000];
    let (n, peer) = sock.recv_from(&mut buf).await.unwrap();
    sock.connect(peer).await.unwrap();
    let mut expect: u16 = 1;
    let mut received = 0u64;
    let mut pending: Option<Vec<u8>> = None;
    let (window, blk) = match Packet::parse(&buf[..n]).unwrap() {
        Packet::Oack { options } => {
            let mut w = 1u16;
            let mut b = 512usize;
            for (k, v) in options {
                match k.as_str() {
                    "windowsize" => w = v.parse().unwrap(),
                    "blksize" => b = v.parse().unwrap(),
                    _ => {}
                }
            }
            sock.send(&Packet::Ack { block: 0 }.encode()).await.unwrap();
            (w, b)
        }
        Packet::Data { .. } => {
            pending = Some(buf[..n].to_vec());
            (1, 512)
        }
        other => panic!("unexpected {other:?}"),
    };
    let mut in_window = 0u16;
    loop {
        let pkt = match pending.take() {
            Some(p) => p,
            None => {
                match tokio::time::timeout(Duration::from_millis(500), sock.recv(&mut buf)).await {
                    Ok(r) => buf[..r.unwrap()].to_vec(),
                    Err(_) => {
                        // Lost something: re-acknowledge the last good block.
                        let ack = Packet::Ack {
                            block: expect.wrapping_sub(1),
                        };
                        sock.send(&ack.encode()).await.unwrap();
                        in_window = 0;
                        continue;
                    }
                }
            }
        };
        if let Ok(Packet::Data { block, data }) = Packet::parse(&pkt) {
            if block != expect {
                continue;
            }
            received += data.len() as u64;
            expect = expect.wrapping_add(1);
            in_window += 1;
            let last = data.len() < blk;
            if last || in_window >= window {
                sock.send(&Packet::Ack { block }.encode()).await.unwrap();
                in_window = 0;
            }
            if last {
                return received;
            }
        }
    }
}

fn start_dnsmasq(root: &Path) -> Option<(std::process::Child, SocketAddr)> {
    let euid_root = std::fs::read_to_string("/proc/self/status")
        .ok()?
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"));
    if !euid_root {
        return None;
    }
    let dnsmasq = racker_testsupport::find_tool("dnsmasq")?;
    let child = std::process::Command::new(dnsmasq)
        .args([
            "--keep-in-foreground",
            "--conf-file=/dev/null",
            "--port=0",
            "--listen-address=127.0.0.1",
            "--bind-interfaces",
            "--enable-tftp",
            "--user=root",
        ])
        .arg(format!("--pid-file={}", root.join("dnsmasq.pid").display()))
        .arg(format!("--tftp-root={}", root.display()))
        .spawn()
        .ok()?;
    std::thread::sleep(Duration::from_millis(300));
    Some((child, "127.0.0.1:69".parse().ok()?))
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let size = size_mib() << 20;
    let file: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();

    // The core alone: a window of 16 blocks at 1468 per ACK.
    let mut core = c.benchmark_group("tftp_core");
    core.throughput(Throughput::Bytes(16 << 20));
    core.sample_size(20);
    core.bench_function("transfer_16MiB_blksize1468_window16", |b| {
        let data = &file[..16 << 20];
        b.iter(|| {
            let req = ReadRequest {
                filename: "f".into(),
                mode: Mode::Octet,
                options: vec![
                    ("blksize".into(), "1468".into()),
                    ("windowsize".into(), "16".into()),
                ],
            };
            let now = Instant::now();
            let mut src = data;
            let mut t = Transfer::new(&req, data.len() as u64, &TftpConfig::default(), now);
            let mut out = Vec::new();
            t.start(now, &mut src, &mut out);
            out.clear(); // the OACK
            let mut acked = 0u16;
            let mut p = t.on_datagram(&Packet::Ack { block: 0 }.encode(), now, &mut src, &mut out);
            while p == Progress::Running {
                acked = acked.wrapping_add(out.len() as u16);
                out.clear();
                p = t.on_datagram(
                    &Packet::Ack { block: acked }.encode(),
                    now,
                    &mut src,
                    &mut out,
                );
            }
            assert_eq!(p, Progress::Complete);
        })
    });
    core.finish();

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("big.bin"), &file).unwrap();
    drop(file);
    let addr = rt.block_on(async {
        let server = TftpServer::bind(
            "127.0.0.1:0".parse().unwrap(),
            dir.path(),
            TftpConfig::default(),
            Arc::new(TftpStats::default()),
        )
        .await
        .unwrap();
        let a = server.local_addr();
        tokio::spawn(server.run());
        a
    });
    let mut group = c.benchmark_group("tftp_64MiB_blksize1468");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(15));
    group.throughput(Throughput::Bytes(size));
    for window in [1u16, 16] {
        group.bench_function(format!("racker_window{window}"), |b| {
            b.iter(|| assert_eq!(rt.block_on(tftp_get(addr, "big.bin", 1468, window)), size))
        });
    }
    if let Some((mut child, daddr)) = start_dnsmasq(dir.path()) {
        group.bench_function("dnsmasq", |b| {
            b.iter(|| assert_eq!(rt.block_on(tftp_get(daddr, "big.bin", 1468, 16)), size))
        });
        let _ = child.kill();
        let _ = child.wait();
    } else {
        eprintln!("dnsmasq not available (or not root): comparison skipped");
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
