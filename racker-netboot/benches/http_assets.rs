//! Asset download throughput of our HTTP server against nginx serving the
//! same file on loopback, interleaved run by run in the same process run
//! (machine noise swings single runs by 2x, so separate runs compare
//! badly): one stream and 8 parallel streams.
//!
//! `RACKER_BENCH_ASSET_MIB` sets the file size (default 64),
//! `RACKER_BENCH_ROUNDS` the number of interleaved rounds (default 5).
//! Run: `cargo bench -p racker-netboot --bench http_assets`.
//! Without nginx only our server is measured.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use racker_netboot::IgnitionDir;
use racker_netboot::http::metrics::Metrics;
use racker_netboot::http::{HttpContent, HttpServer};
use racker_netboot::matchbox::Catalog;
use racker_netboot::report::ReportStore;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// GET `path` with a raw HTTP/1.1 client; returns body bytes received.
async fn download(addr: SocketAddr, path: &str) -> u64 {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    let mut header_done = false;
    let mut head = Vec::new();
    loop {
        let n = s.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        if header_done {
            total += n as u64;
        } else {
            head.extend_from_slice(&buf[..n]);
            if let Some(pos) = head.windows(4).position(|w| w == b"\r\n\r\n") {
                assert!(
                    head.starts_with(b"HTTP/1.1 200"),
                    "{}",
                    String::from_utf8_lossy(&head)
                );
                total += (head.len() - pos - 4) as u64;
                header_done = true;
                head.clear();
            }
        }
    }
    total
}

/// `streams` parallel downloads; returns MiB/s over all of them.
fn round(
    rt: &tokio::runtime::Runtime,
    addr: SocketAddr,
    path: &str,
    streams: usize,
    size: u64,
) -> f64 {
    let start = Instant::now();
    rt.block_on(async {
        let mut tasks = Vec::new();
        for _ in 0..streams {
            let p = path.to_owned();
            tasks.push(tokio::spawn(async move { download(addr, &p).await }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap(), size);
        }
    });
    (size * streams as u64) as f64 / (1 << 20) as f64 / start.elapsed().as_secs_f64()
}

fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn stop_nginx(mut child: std::process::Child, work: &Path) {
    if let Some(nginx) = racker_testsupport::find_tool("nginx") {
        let _ = std::process::Command::new(nginx)
            .arg("-c")
            .arg(work.join("nginx.conf"))
            .args(["-s", "stop"])
            .status();
    }
    let _ = child.wait();
}

fn start_nginx(root: &Path, work: &Path) -> Option<(std::process::Child, SocketAddr)> {
    let nginx = racker_testsupport::find_tool("nginx")?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .ok()?
        .local_addr()
        .ok()?
        .port();
    let conf = work.join("nginx.conf");
    std::fs::write(
        &conf,
        format!(
            "user root;\nworker_processes 2;\npid {w}/nginx.pid;\nerror_log {w}/error.log;\n\
             events {{ worker_connections 1024; }}\n\
             http {{ access_log off; sendfile on; tcp_nopush on;\n\
               client_body_temp_path {w}; proxy_temp_path {w}; fastcgi_temp_path {w};\n\
               uwsgi_temp_path {w}; scgi_temp_path {w};\n\
               server {{ listen 127.0.0.1:{port}; root {r}; }} }}\n",
            w = work.display(),
            r = root.display()
        ),
    )
    .ok()?;
    let child = std::process::Command::new(nginx)
        .arg("-c")
        .arg(&conf)
        .args(["-g", "daemon off;"])
        .spawn()
        .ok()?;
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().ok()?;
    for _ in 0..100 {
        if std::net::TcpStream::connect(addr).is_ok() {
            return Some((child, addr));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

fn main() {
    // `cargo test --benches` / `--list` runs: nothing to measure.
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return;
    }
    let size = env_or("RACKER_BENCH_ASSET_MIB", 64) << 20;
    let rounds = env_or("RACKER_BENCH_ROUNDS", 5);
    // Our server on its own two threads, like the daemon; the clients on
    // two more, the same client for both servers.
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let assets = dir.path().join("assets");
    std::fs::create_dir_all(&assets).unwrap();
    {
        use std::os::unix::fs::FileExt;
        let f = std::fs::File::create(assets.join("image.bin")).unwrap();
        let block: Vec<u8> = (0..1u32 << 20).map(|i| (i * 31 % 251) as u8).collect();
        let mut off = 0;
        while off < size {
            f.write_at(&block, off).unwrap();
            off += 1 << 20;
        }
    }
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    let racker = server_rt.block_on(async {
        let content = HttpContent::new(
            Catalog::default(),
            ReportStore::open(&state).unwrap(),
            Arc::new(IgnitionDir::in_state_dir(&state)),
            &assets,
            Arc::new(Metrics::default()),
        );
        let server = HttpServer::bind("127.0.0.1:0".parse().unwrap(), content)
            .await
            .unwrap();
        let addr = server.local_addr();
        tokio::spawn(server.run());
        addr
    });
    let work = dir.path().join("nginx");
    std::fs::create_dir_all(&work).unwrap();
    let nginx = start_nginx(&assets, &work);
    if nginx.is_none() {
        eprintln!("nginx not available: only racker is measured");
    }
    let rss_before = status_kib("VmRSS:");
    println!(
        "{} MiB file on loopback, {rounds} interleaved rounds (MiB/s, all streams together)",
        size >> 20
    );
    for streams in [1usize, 8] {
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        // Warm-up (page cache, connections): not counted.
        round(&client_rt, racker, "/assets/image.bin", streams, size);
        if let Some((_, n)) = &nginx {
            round(&client_rt, *n, "/image.bin", streams, size);
        }
        for r in 0..rounds {
            // Alternate who goes first.
            let order: [bool; 2] = if r % 2 == 0 {
                [true, false]
            } else {
                [false, true]
            };
            for is_racker in order {
                if is_racker {
                    ours.push(round(
                        &client_rt,
                        racker,
                        "/assets/image.bin",
                        streams,
                        size,
                    ));
                } else if let Some((_, n)) = &nginx {
                    theirs.push(round(&client_rt, *n, "/image.bin", streams, size));
                }
            }
        }
        let fmt = |v: &[f64]| {
            v.iter()
                .map(|x| format!("{x:.0}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let (mo, mt) = (median(&mut ours.clone()), median(&mut theirs.clone()));
        println!(
            "{streams} stream(s): racker {} (median {mo:.0})",
            fmt(&ours)
        );
        if !theirs.is_empty() {
            println!(
                "{streams} stream(s): nginx  {} (median {mt:.0})",
                fmt(&theirs)
            );
            let ratios: Vec<String> = ours
                .iter()
                .zip(&theirs)
                .map(|(a, b)| format!("{:.2}", a / b))
                .collect();
            println!(
                "{streams} stream(s): racker/nginx per round {} (medians {:.2})",
                ratios.join(" "),
                mo / mt
            );
        }
    }
    println!(
        "bench process (racker server and the clients): RSS {} MiB before, {} MiB after, peak {} MiB",
        rss_before / 1024,
        status_kib("VmRSS:") / 1024,
        status_kib("VmHWM:") / 1024
    );
    if let Some((child, _)) = nginx {
        stop_nginx(child, &work);
    }
}
