//! A node whose kernel is missing fails within seconds, with the 404 and
//! the missing file in its reason (not "no installer report" at the
//! install timeout): `racker bootstrap --skip-preflight` of a simulated
//! rack (`racker sim up --pxe-dhcp`).
//!
//! - Kernel gone before the boot: racker refuses the iPXE script (503) and
//!   the reason names the missing file.
//! - Kernel gone after the script was handed out: the nodes reach racker
//!   through a relay (`--http-url`) that deletes the kernel as it passes
//!   the `/ipxe` answer on, so the firmware's kernel GET gets racker's own
//!   404, deterministically.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

const NODE: &str = "02:52:4b:00:00:01";
const KERNEL: &str = "assets/flatcar/current/flatcar_production_pxe.vmlinuz";

mod common;

use common::{SimRack, racker_in};

/// Management node + one node (`NODE`, node-0), every asset present.
fn sim_rack() -> SimRack {
    SimRack::start(2)
}

/// `racker bootstrap --skip-preflight` on the shared rack.
trait Bootstrap {
    fn bootstrap(&self, extra: &[&str]) -> (Value, Duration, String);
}

impl Bootstrap for SimRack {
    /// `racker bootstrap --skip-preflight -o json` with a 10-minute install
    /// timeout (a failure found only at the timeout fails the test);
    /// returns the document and how long it took.
    fn bootstrap(&self, extra: &[&str]) -> (Value, Duration, String) {
        let started = Instant::now();
        let out = racker_in(self.dir.path())
            .args(["bootstrap", "--provision", "flatcar", "--skip-preflight"])
            .args(["--on-failure", "cancel", "--install-timeout", "10m"])
            .args(["--dhcp-listen", &self.dhcp.to_string()])
            .args(["--http-listen", &self.http.to_string()])
            .args(extra)
            .args(["-o", "json"])
            .output()
            .unwrap();
        let took = started.elapsed();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
        (doc, took, stderr)
    }
}

/// The node's failure reason in a `bootstrap` document.
fn reason(doc: &Value) -> String {
    let node = &doc["nodes"][0];
    assert_eq!(node["mac"], NODE, "{doc}");
    assert_eq!(node["state"], "failed", "{doc}");
    node["reason"].as_str().unwrap().to_owned()
}

#[test]
fn missing_kernel_before_the_boot_fails_in_seconds_naming_the_file() {
    let rack = sim_rack();
    std::fs::remove_file(rack.path(&format!("state/{KERNEL}"))).unwrap();
    let (doc, took, stderr) = rack.bootstrap(&[]);
    let reason = reason(&doc);
    eprintln!("kernel missing before the boot: failed after {took:.2?}: {reason}");
    assert!(took < Duration::from_secs(20), "{took:?}: {reason}");
    assert!(reason.contains("iPXE script 503"), "{reason}");
    assert!(reason.contains(&format!("{KERNEL} is missing")), "{reason}");
    assert!(reason.contains("racker netboot fetch-assets"), "{reason}");
    assert!(!reason.contains("no installer report"), "{reason}");
    assert!(stderr.contains(KERNEL), "{stderr}");
}

#[test]
fn kernel_404_after_the_script_fails_in_seconds_naming_the_file() {
    let rack = sim_rack();
    let relay = Relay::start(rack.http, rack.path(&format!("state/{KERNEL}")));
    let url = format!("http://{}", relay.addr);
    let (doc, took, _) = rack.bootstrap(&["--http-url", &url]);
    let reason = reason(&doc);
    eprintln!("kernel 404 after the script: failed after {took:.2?}: {reason}");
    // The relay did its part: the script was handed out (200), then the
    // kernel request got racker's 404.
    let seen = relay.seen();
    assert!(
        seen.iter()
            .any(|(p, s)| p.starts_with("/ipxe?") && *s == 200),
        "{seen:?}"
    );
    assert!(
        seen.iter()
            .any(|(p, s)| p == &format!("/{KERNEL}") && *s == 404),
        "{seen:?}"
    );
    assert!(took < Duration::from_secs(20), "{took:?}: {reason}");
    assert!(
        reason.contains(&format!("its boot failed: kernel 404 ({KERNEL} missing)")),
        "{reason}"
    );
    assert!(reason.contains("iPXE script"), "{reason}");
}

/// An HTTP relay in front of racker's server: passes every request on
/// (one per connection) and deletes `kernel` when it passes on a
/// successful `/ipxe` answer. Records each path and status.
struct Relay {
    addr: SocketAddr,
    seen: std::sync::Arc<std::sync::Mutex<Vec<(String, u16)>>>,
}

impl Relay {
    fn start(upstream: SocketAddr, kernel: PathBuf) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = std::sync::Arc::<std::sync::Mutex<Vec<(String, u16)>>>::default();
        let log = seen.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let (kernel, log) = (kernel.clone(), log.clone());
                std::thread::spawn(move || {
                    if let Ok(Some(entry)) = relay_one(conn, upstream, &kernel) {
                        log.lock().unwrap().push(entry);
                    }
                });
            }
        });
        Self { addr, seen }
    }

    fn seen(&self) -> Vec<(String, u16)> {
        self.seen.lock().unwrap().clone()
    }
}

fn relay_one(
    mut client: TcpStream,
    upstream: SocketAddr,
    kernel: &Path,
) -> std::io::Result<Option<(String, u16)>> {
    client.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = client.read(&mut chunk)?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default().to_owned();
    let path = request_line
        .split(' ')
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    let mut length = 0usize;
    let mut forwarded = format!("{request_line}\r\n");
    for h in lines.filter(|h| !h.is_empty()) {
        let lower = h.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
        if !lower.starts_with("connection:") {
            forwarded.push_str(h);
            forwarded.push_str("\r\n");
        }
    }
    forwarded.push_str("Connection: close\r\n\r\n");
    while buf.len() < head_end + length {
        let n = client.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let mut server = TcpStream::connect(upstream)?;
    server.write_all(forwarded.as_bytes())?;
    server.write_all(&buf[head_end..])?;
    let mut response = Vec::new();
    server.read_to_end(&mut response)?;
    let status: u16 = String::from_utf8_lossy(response.get(9..12).unwrap_or_default())
        .parse()
        .unwrap_or(0);
    if path.starts_with("/ipxe?") && status == 200 {
        let _ = std::fs::remove_file(kernel);
    }
    client.write_all(&response)?;
    Ok(Some((path, status)))
}
