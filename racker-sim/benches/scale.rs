//! Scale of one simulator process: start N BMCs (default 1000) on
//! 127.91.x.y, report start-up time and resident memory, open one session
//! per BMC and measure sustained Get Chassis Status requests per second
//! over UDP; then, if FreeIPMI is installed, time one `ipmipower --stat`
//! across every BMC.
//!
//! `cargo bench -p racker-sim --bench scale [-- N SECONDS]`

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use racker_sim::{NodeSpec, Password, SimRack};
use tokio::net::UdpSocket;

#[path = "../tests/support/console.rs"]
mod console;

fn rss_kib() -> u64 {
    racker_testsupport::proc_status_kib("VmRSS")
}

fn addr(i: usize) -> SocketAddr {
    let ip = u32::from(Ipv4Addr::new(127, 91, 0, 0)) + (i as u32 / 250) * 256 + 2 + i as u32 % 250;
    SocketAddr::new(IpAddr::V4(Ipv4Addr::from(ip)), 6230)
}

async fn exchange(sock: &UdpSocket, to: SocketAddr, p: &[u8]) -> Option<Vec<u8>> {
    sock.send_to(p, to).await.ok()?;
    let mut buf = [0u8; 512];
    let (n, _) = tokio::time::timeout(Duration::from_secs(1), sock.recv_from(&mut buf))
        .await
        .ok()?
        .ok()?;
    Some(buf[..n].to_vec())
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let n: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let secs: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(3);
    let rss0 = rss_kib();
    let t0 = Instant::now();
    let specs = (0..n)
        .map(|i| NodeSpec::new([2, 0x53, 0, 0, (i >> 8) as u8, i as u8], addr(i)))
        .collect();
    let rack = SimRack::start(specs, "USER", Password::new("PASS"))
        .await
        .expect("start rack");
    let start = t0.elapsed();
    let rss1 = rss_kib();
    println!(
        "{n} BMCs started in {:.1} ms; RSS {} KiB before, {} KiB after ({:.1} MiB)",
        start.as_secs_f64() * 1e3,
        rss0,
        rss1,
        rss1 as f64 / 1024.0
    );

    // One session per BMC, driven by 32 client tasks.
    let tasks = 32;
    let count = Arc::new(AtomicU64::new(0));
    let lost = Arc::new(AtomicU64::new(0));
    let t_login = Instant::now();
    let (login_tx, mut login_rx) = tokio::sync::mpsc::channel::<()>(tasks);
    // A barrier, not a Notify: a task that has not reached its wait yet
    // would miss notify_waiters and the run would hang.
    let go = Arc::new(tokio::sync::Barrier::new(tasks + 1));
    let stop = Instant::now() + Duration::from_secs(3600);
    let stop = Arc::new(std::sync::Mutex::new(stop));
    let mut handles = Vec::new();
    for t in 0..tasks {
        let (count, lost, login_tx, go, stop) = (
            count.clone(),
            lost.clone(),
            login_tx.clone(),
            go.clone(),
            stop.clone(),
        );
        handles.push(tokio::spawn(async move {
            let sock = UdpSocket::bind("127.0.0.1:0").await.expect("bind client");
            let mut sessions = Vec::new();
            for i in (t..n).step_by(tasks) {
                let to = addr(i);
                let mut c = console::Console::new(3, "USER", "PASS");
                let r = exchange(&sock, to, &c.open_session_request())
                    .await
                    .expect("open");
                c.open_session_response(&r).expect("open ok");
                let r = exchange(&sock, to, &c.rakp1()).await.expect("rakp1");
                c.rakp2(&r).expect("rakp2");
                let p = c.rakp3();
                let r = exchange(&sock, to, &p).await.expect("rakp3");
                c.rakp4(&r).expect("rakp4");
                sessions.push((to, c));
            }
            login_tx.send(()).await.expect("report login");
            go.wait().await;
            let end = *stop.lock().expect("lock");
            while Instant::now() < end {
                for (to, c) in sessions.iter_mut() {
                    let p = c.request(0x00, 0x01, &[]);
                    match exchange(&sock, *to, &p).await {
                        Some(r) if c.response(&r).is_some_and(|(cc, _)| cc == 0) => {
                            count.fetch_add(1, Ordering::Relaxed);
                        }
                        _ => {
                            lost.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }
        }));
    }
    drop(login_tx);
    for _ in 0..tasks {
        login_rx.recv().await.expect("login");
    }
    let login = t_login.elapsed();
    let active: usize = rack
        .nodes()
        .iter()
        .map(|n| n.snapshot().active_sessions)
        .sum();
    println!(
        "{active} sessions established in {:.1} ms; RSS {:.1} MiB",
        login.as_secs_f64() * 1e3,
        rss_kib() as f64 / 1024.0
    );
    *stop.lock().expect("lock") = Instant::now() + Duration::from_secs(secs);
    let t_run = Instant::now();
    go.wait().await;
    for h in handles {
        h.await.expect("client task");
    }
    let elapsed = t_run.elapsed().as_secs_f64();
    let done = count.load(Ordering::Relaxed);
    println!(
        "{done} Get Chassis Status in {elapsed:.2} s = {:.0} requests/s ({} unanswered); RSS {:.1} MiB",
        done as f64 / elapsed,
        lost.load(Ordering::Relaxed),
        rss_kib() as f64 / 1024.0
    );

    if let Some(tool) = ["/usr/sbin/ipmipower", "/usr/bin/ipmipower"]
        .iter()
        .find(|p| std::path::Path::new(p).exists())
    {
        let hosts: Vec<String> = (0..n).map(|i| addr(i).to_string()).collect();
        let t = Instant::now();
        let out = tokio::process::Command::new(tool)
            .args([
                "-h",
                &hosts.join(","),
                "-u",
                "USER",
                "-p",
                "PASS",
                "-D",
                "LAN_2_0",
                "--stat",
            ])
            .output()
            .await
            .expect("ipmipower");
        let off = String::from_utf8_lossy(&out.stdout)
            .matches(": off")
            .count();
        println!(
            "ipmipower --stat over {n} BMCs: {off} answered 'off' in {:.2} s",
            t.elapsed().as_secs_f64()
        );
    }
    drop(rack);
}
