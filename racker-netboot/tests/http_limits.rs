//! HTTP under hostile clients: slow and idle connections are closed within
//! the configured timeouts, oversized heads and bodies are refused, a
//! flood of idle connections does not stop a normal request, one client
//! cannot take every connection.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use racker_netboot::IgnitionDir;
use racker_netboot::http::metrics::Metrics;
use racker_netboot::http::{HttpContent, HttpLimits, HttpServer, raise_nofile_limit};
use racker_netboot::matchbox::Catalog;
use racker_netboot::report::ReportStore;
use racker_testsupport::skip_or_fail;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

const BIG: u64 = 48 << 20;

struct Server {
    _dir: tempfile::TempDir,
    addr: SocketAddr,
    metrics: Arc<Metrics>,
}

async fn start(limits: HttpLimits) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let assets = state.join("assets");
    std::fs::create_dir_all(&assets).unwrap();
    std::fs::write(assets.join("small.txt"), b"hello\n").unwrap();
    let f = std::fs::File::create(assets.join("big.bin")).unwrap();
    f.set_len(BIG).unwrap();
    let metrics = Arc::new(Metrics::default());
    let content = HttpContent::new(
        Catalog::default(),
        ReportStore::open(&state).unwrap(),
        Arc::new(IgnitionDir::in_state_dir(&state)),
        &assets,
        metrics.clone(),
    );
    let server = HttpServer::bind("127.0.0.1:0".parse().unwrap(), content)
        .await
        .unwrap()
        .with_limits(limits);
    let addr = server.local_addr();
    tokio::spawn(server.run());
    Server {
        _dir: dir,
        addr,
        metrics,
    }
}

fn limits(secs: f64) -> HttpLimits {
    let mut l = HttpLimits::default();
    let t = Duration::from_secs_f64(secs);
    l.header_timeout = t;
    l.idle_timeout = t;
    l.body_timeout = t;
    l.send_timeout = t;
    l
}

/// Read until the server closes; returns bytes read and when it closed.
async fn read_to_close(s: &mut TcpStream, within: Duration) -> (usize, Instant) {
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0;
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Err(_) => panic!("connection still open after {within:?} ({total} bytes read)"),
            Ok(Ok(0)) | Ok(Err(_)) => return (total, Instant::now()),
            Ok(Ok(n)) => total += n,
        }
    }
}

async fn get(addr: SocketAddr, from: Option<&str>, path: &str) -> String {
    let s = match from {
        Some(ip) => {
            let sock = TcpSocket::new_v4().unwrap();
            sock.bind(format!("{ip}:0").parse().unwrap()).unwrap();
            sock.connect(addr).await.unwrap()
        }
        None => TcpStream::connect(addr).await.unwrap(),
    };
    let mut s = s;
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out))
        .await
        .expect("response within 5 s")
        .unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_closed_within_the_timeouts() {
    let srv = start(limits(1.0)).await;
    let slack = Duration::from_millis(1500);

    // Connects and sends nothing.
    let t0 = Instant::now();
    let mut idle = TcpStream::connect(srv.addr).await.unwrap();
    let (_, closed) = read_to_close(&mut idle, Duration::from_secs(1) + slack).await;
    assert!(
        closed - t0 >= Duration::from_millis(900),
        "{:?}",
        closed - t0
    );

    // Trickles a header line every 300 ms (slowloris): the header timeout
    // counts from the first byte, so trickling does not extend it.
    let mut slow = TcpStream::connect(srv.addr).await.unwrap();
    let t0 = Instant::now();
    slow.write_all(b"GET /metrics HTTP/1.1\r\n").await.unwrap();
    let closed = loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut b = [0u8; 1];
        match slow.try_read(&mut b) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Ok(n) => {
                assert_eq!(n, 0, "no response expected");
                break Instant::now();
            }
            Err(_) => break Instant::now(),
        }
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "slowloris connection still open"
        );
        let _ = slow.write_all(b"X-Trickle: y\r\n").await;
    };
    let took = closed - t0;
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_millis(1700),
        "{took:?}"
    );

    // A keep-alive connection that goes quiet after one request.
    let mut ka = TcpStream::connect(srv.addr).await.unwrap();
    ka.write_all(b"GET /assets/small.txt HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    let t0 = Instant::now();
    let (n, closed) = read_to_close(&mut ka, Duration::from_secs(1) + slack).await;
    assert!(n > 0);
    assert!(closed - t0 >= Duration::from_millis(900));

    // Announces a body and stalls.
    let mut body = TcpStream::connect(srv.addr).await.unwrap();
    body.write_all(b"POST /report?mac=00:11:22:33:44:55&stage=failed HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nabc")
        .await
        .unwrap();
    let (n, _) = read_to_close(&mut body, Duration::from_secs(1) + slack).await;
    assert_eq!(n, 0);

    // Downloads a large file and stops reading: closed after the send
    // timeout, with far less than the file delivered.
    let mut reader = TcpStream::connect(srv.addr).await.unwrap();
    reader
        .write_all(b"GET /assets/big.bin HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (n, _) = read_to_close(&mut reader, Duration::from_secs(10)).await;
    assert!((n as u64) < BIG, "{n}");
    eprintln!(
        "stalled reader got {} KiB of {} MiB before the close",
        n / 1024,
        BIG >> 20
    );

    let timed_out = srv
        .metrics
        .http
        .connections_timed_out
        .load(Ordering::Relaxed);
    assert!(timed_out >= 5, "{timed_out}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(srv.metrics.http.connections_open.load(Ordering::Relaxed), 0);
}

#[tokio::test]
async fn oversized_heads_and_bodies_are_refused() {
    let srv = start(HttpLimits::default()).await;
    let mut s = TcpStream::connect(srv.addr).await.unwrap();
    let head = format!("GET / HTTP/1.1\r\nX-Big: {}\r\n\r\n", "a".repeat(20_000));
    let _ = s.write_all(head.as_bytes()).await;
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out).await;
    assert!(
        out.starts_with(b"HTTP/1.1 431 "),
        "{}",
        String::from_utf8_lossy(&out)
    );

    let mut s = TcpStream::connect(srv.addr).await.unwrap();
    s.write_all(b"POST /report?mac=00:11:22:33:44:55&stage=failed HTTP/1.1\r\nHost: t\r\nContent-Length: 10000000\r\n\r\n")
        .await
        .unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    assert!(
        out.starts_with(b"HTTP/1.1 413 "),
        "{}",
        String::from_utf8_lossy(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn normal_request_served_while_2000_idle_connections_are_held() {
    const IDLE: usize = 2000;
    let soft = raise_nofile_limit().unwrap();
    if soft.is_some_and(|s| s < 2 * IDLE as u64 + 500) {
        skip_or_fail(
            "normal_request_served_while_2000_idle_connections_are_held",
            &format!("open-file hard limit {soft:?} is below 4,500"),
        );
        return;
    }
    let mut l = limits(60.0);
    l.max_connections = 4096;
    l.max_connections_per_client = 4096;
    let srv = start(l).await;
    let rss = || {
        std::fs::read_to_string("/proc/self/status")
            .unwrap()
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .unwrap()
    };
    let before = rss();
    let mut held = Vec::with_capacity(IDLE);
    for i in 0..IDLE {
        // From four addresses: one may hold at most a quarter.
        let sock = TcpSocket::new_v4().unwrap();
        sock.bind(format!("127.0.0.{}:0", 10 + i % 4).parse().unwrap())
            .unwrap();
        let s = sock.connect(srv.addr).await.unwrap();
        // Half of them start a request head and stop.
        if i % 2 == 0 {
            let mut s = s;
            s.write_all(b"GET /assets/small.txt HTTP/1.1\r\n")
                .await
                .unwrap();
            held.push(s);
        } else {
            held.push(s);
        }
    }
    for _ in 0..500 {
        if srv.metrics.http.connections_open.load(Ordering::Relaxed) >= IDLE as u64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        srv.metrics.http.connections_open.load(Ordering::Relaxed),
        IDLE as u64
    );
    let t0 = Instant::now();
    let reply = get(srv.addr, None, "/assets/small.txt").await;
    let took = t0.elapsed();
    assert!(reply.starts_with("HTTP/1.1 200 "), "{reply}");
    assert!(reply.ends_with("hello\n"));
    assert!(took < Duration::from_secs(1), "{took:?}");
    eprintln!(
        "{IDLE} idle connections held: request served in {took:?}; \
         process RSS (clients and server) grew by {} KiB",
        rss().saturating_sub(before)
    );
    drop(held);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_client_cannot_take_every_connection() {
    let mut l = limits(60.0);
    l.max_connections = 400;
    l.max_connections_per_client = 50;
    let srv = start(l).await;
    let mut held = Vec::new();
    for _ in 0..200 {
        held.push(TcpStream::connect(srv.addr).await.unwrap());
    }
    // The 150 beyond the per-client limit get a 503 and are closed.
    let mut refused = 0;
    for s in &mut held {
        let mut buf = [0u8; 64];
        if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(20), s.read(&mut buf)).await
            && buf[..n].starts_with(b"HTTP/1.1 503 ")
        {
            refused += 1;
        }
    }
    assert_eq!(refused, 150);
    assert_eq!(
        srv.metrics.http.connections_open.load(Ordering::Relaxed),
        50
    );
    // Another address is served at once.
    let reply = get(srv.addr, Some("127.0.0.2"), "/assets/small.txt").await;
    assert!(reply.starts_with("HTTP/1.1 200 "), "{reply}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_downloads_hold_no_user_space_buffers() {
    const STALLED: usize = 400;
    let mut l = limits(60.0);
    l.max_connections = 4096;
    l.max_connections_per_client = 4096;
    let srv = start(l).await;
    let rss = || {
        std::fs::read_to_string("/proc/self/status")
            .unwrap()
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .unwrap()
    };
    let before = rss();
    let mut held = Vec::new();
    for i in 0..STALLED {
        let sock = TcpSocket::new_v4().unwrap();
        sock.bind(format!("127.0.1.{}:0", 10 + i % 4).parse().unwrap())
            .unwrap();
        // Small receive buffers: the server's sends stall quickly.
        sock.set_recv_buffer_size(4096).unwrap();
        let mut s = sock.connect(srv.addr).await.unwrap();
        s.write_all(b"GET /assets/big.bin HTTP/1.1\r\nHost: t\r\n\r\n")
            .await
            .unwrap();
        held.push(s);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        srv.metrics.http.connections_open.load(Ordering::Relaxed),
        STALLED as u64
    );
    let grown = rss().saturating_sub(before);
    eprintln!("{STALLED} stalled downloads: RSS grew by {grown} KiB");
    // The streamed-chunk server held 2 x 128 KiB per stalled download.
    assert!(grown < 40 * 1024, "{grown} KiB");
    drop(held);
}
