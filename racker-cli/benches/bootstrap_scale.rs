//! How a whole bootstrap scales with the rack (issue 18, item 12): the
//! release `racker demo --count N --install-delay 0` (simulated BMCs and
//! firmware, racker's DHCP/HTTP server and the Flatcar bootstrap, every
//! node to `os-up`) for 250, 500 and 1,000 nodes, its wall time and peak
//! resident memory. Growth must be linear; 1,000 nodes under 5 s on the
//! development machine (numbers in the issue notes).
//!
//! `cargo bench -p racker-cli --bench bootstrap_scale [-- [--runs R] N...]`

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Peak resident set (`VmHWM`, KiB) of process `pid`, if it still runs.
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// One demo of `nodes` nodes: its wall time and peak RSS (KiB; sampled
/// every 20 ms until it exits).
fn run(nodes: usize) -> (Duration, u64) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_racker"))
        .args([
            "demo",
            "--count",
            &nodes.to_string(),
            "--install-delay",
            "0",
        ])
        .arg("--dir")
        .arg(dir.path().join("demo"))
        .env_remove("RACKER_OEM_DIR")
        .env_remove("RACKER_STATE_DIR")
        .env_remove("RACKER_SYS_CLASS_NET")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("racker demo");
    let pid = child.id();
    let stdout = child.stdout.take().expect("stdout");
    // Drain stdout so the demo never blocks on a full pipe.
    let reader = std::thread::spawn(move || std::io::read_to_string(stdout).unwrap_or_default());
    let mut peak = 0;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        peak = peak.max(peak_rss_kib(pid).unwrap_or(0));
        std::thread::sleep(Duration::from_millis(20));
    };
    let wall = started.elapsed();
    let out = reader.join().unwrap_or_default();
    assert!(
        status.success(),
        "racker demo --count {nodes} failed:\n{out}"
    );
    let up = out.matches("os-up").count();
    assert!(up >= nodes, "{up} of {nodes} nodes os-up:\n{out}");
    (wall, peak)
}

fn main() {
    let mut runs = 1;
    let mut sizes = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--runs" => runs = args.next().and_then(|r| r.parse().ok()).unwrap_or(1),
            "--bench" => {}
            n => sizes.extend(n.parse::<usize>().ok()),
        }
    }
    if sizes.is_empty() {
        sizes = vec![250, 500, 1_000];
    }
    println!("racker demo --install-delay 0, every node to os-up ({runs} run(s) each, best shown)");
    println!(
        "{:>6} {:>9} {:>12} {:>12}",
        "nodes", "wall s", "ms per node", "peak RSS MB"
    );
    for n in sizes {
        let mut best: Option<(Duration, u64)> = None;
        for _ in 0..runs {
            let (wall, rss) = run(n);
            if best.is_none_or(|(w, _)| wall < w) {
                best = Some((wall, rss));
            }
        }
        if let Some((wall, rss)) = best {
            println!(
                "{n:>6} {:>9.2} {:>12.2} {:>12.0}",
                wall.as_secs_f64(),
                wall.as_secs_f64() * 1e3 / n as f64,
                rss as f64 / 1024.0
            );
        }
    }
}
