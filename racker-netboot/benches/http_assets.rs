//! 32 concurrent downloads of one large asset from our HTTP server and,
//! when installed, from nginx serving the same file, on loopback.
//!
//! `RACKER_BENCH_ASSET_MIB` sets the file size (default 256).
//! Run: `cargo bench -p racker-netboot --bench http_assets`.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use racker_netboot::IgnitionDir;
use racker_netboot::http::metrics::Metrics;
use racker_netboot::http::{HttpContent, HttpServer};
use racker_netboot::matchbox::Catalog;
use racker_netboot::report::ReportStore;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const CLIENTS: usize = 32;

fn asset_mib() -> u64 {
    std::env::var("RACKER_BENCH_ASSET_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
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

async fn round(addr: SocketAddr, path: &str, expected: u64) {
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        let p = path.to_owned();
        tasks.push(tokio::spawn(async move { download(addr, &p).await }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), expected);
    }
}

fn vm_hwm_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
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

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let assets = dir.path().join("assets");
    std::fs::create_dir_all(&assets).unwrap();
    let size = asset_mib() << 20;
    {
        let f = std::fs::File::create(assets.join("image.bin")).unwrap();
        f.set_len(size).unwrap(); // sparse: the page cache serves zeros
        // Write some real data so it is not entirely a hole.
        use std::os::unix::fs::FileExt;
        let block = vec![0xa5u8; 1 << 20];
        let mut off = 0;
        while off < size {
            f.write_at(&block, off).unwrap();
            off += 1 << 20;
        }
    }
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    let addr = rt.block_on(async {
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
    let mut group = c.benchmark_group("http_32_concurrent");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(20));
    group.throughput(Throughput::Bytes(size * CLIENTS as u64));
    let before = vm_hwm_kib();
    group.bench_function("racker", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                rt.block_on(round(addr, "/assets/image.bin", size));
            }
            start.elapsed()
        })
    });
    eprintln!(
        "racker bench process peak RSS: {} MiB (before the runs: {} MiB)",
        vm_hwm_kib() / 1024,
        before / 1024
    );
    let work = dir.path().join("nginx");
    std::fs::create_dir_all(&work).unwrap();
    if let Some((child, naddr)) = start_nginx(&assets, &work) {
        group.bench_function("nginx", |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    rt.block_on(round(naddr, "/image.bin", size));
                }
                start.elapsed()
            })
        });
        stop_nginx(child, &work);
    } else {
        eprintln!("nginx not available: comparison skipped");
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
