//! Test helpers shared by the racker crates.
//!
//! Tests that need a real peer (ipmitool, ipmi_sim, dhclient...), root or
//! network namespaces call [`require_tool`] / [`require_root`]. Where the
//! requirement is missing they print why and return `false` so the test can
//! return early — except when `RACKER_REQUIRE_PRIVILEGED_TESTS=1` (set by
//! `.ci/run`), where a missing requirement panics: CI never skips.

use std::path::{Path, PathBuf};

pub mod http;
pub mod netns;
pub mod vm;

/// True when CI demands that privileged / peer tests run.
pub fn privileged_tests_required() -> bool {
    std::env::var("RACKER_REQUIRE_PRIVILEGED_TESTS").is_ok_and(|v| v == "1")
}

/// Skip (print + `false`) or fail (panic under CI) with `reason`.
pub fn skip_or_fail(test: &str, reason: &str) -> bool {
    if privileged_tests_required() {
        panic!("{test}: {reason} (RACKER_REQUIRE_PRIVILEGED_TESTS=1 forbids skipping)");
    }
    eprintln!("SKIPPED {test}: {reason}");
    false
}

/// Find an executable on `PATH` (and in the sbin directories, which a
/// non-root PATH often lacks).
pub fn find_tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let extra = ["/usr/sbin", "/sbin", "/usr/local/sbin"];
    std::env::split_paths(&path)
        .chain(extra.iter().map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The path of `tool`, or `None` after printing a skip reason (panics under
/// `RACKER_REQUIRE_PRIVILEGED_TESTS=1`).
pub fn require_tool(test: &str, tool: &str) -> Option<PathBuf> {
    match find_tool(tool) {
        Some(p) => Some(p),
        None => {
            skip_or_fail(test, &format!("`{tool}` is not installed"));
            None
        }
    }
}

/// True when running as root; otherwise prints a skip reason (panics under
/// `RACKER_REQUIRE_PRIVILEGED_TESTS=1`).
pub fn require_root(test: &str) -> bool {
    // SAFETY-free check: /proc/self/status carries the effective uid.
    let euid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(str::to_owned))
        });
    if euid.as_deref() == Some("0") {
        true
    } else {
        skip_or_fail(test, "needs root (network namespaces / privileged ports)")
    }
}

/// Spawn `cmd` with piped stdout/stderr and read its stdout until a line
/// containing `marker` (e.g. a server's "ready" line). Returns the child
/// and the text read so far; stdout keeps being drained in a thread so the
/// child never blocks on a full pipe. Panics when the child exits first.
pub fn spawn_until_line(
    cmd: &mut std::process::Command,
    marker: &str,
) -> (std::process::Child, String) {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let mut out = BufReader::new(child.stdout.take().expect("piped stdout"));
    let mut text = String::new();
    loop {
        let mut line = String::new();
        let n = out.read_line(&mut line).expect("read child stdout");
        assert!(n > 0, "{cmd:?} exited before printing {marker:?}: {text}");
        text.push_str(&line);
        if line.contains(marker) {
            break;
        }
    }
    std::thread::spawn(move || for _ in out.lines() {});
    (child, text)
}

/// Send SIGINT to `child` and wait (bounded) for it to exit; panics when it
/// ignores the signal for `timeout`.
pub fn interrupt(
    child: &mut std::process::Child,
    timeout: std::time::Duration,
) -> std::process::ExitStatus {
    let ok = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(ok.success(), "kill -INT {} failed", child.id());
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("wait for child") {
            return status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "pid {} ignored SIGINT for {timeout:?}",
            child.id()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// A loopback TCP address no listener has right now (bound to port 0,
/// then released), for a server under test to listen on.
pub fn free_tcp() -> std::net::SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
}

/// A loopback UDP address no socket has right now (see [`free_tcp`]).
pub fn free_udp() -> std::net::SocketAddr {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("bind 127.0.0.1:0")
}

/// A `/proc/self/status` field in KiB (`"VmRSS"` resident, `"VmHWM"` peak
/// resident), 0 when unavailable. For benchmarks that report memory.
pub fn proc_status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| status_field_kib(&s, field))
        .unwrap_or(0)
}

/// The number of a `Field:   1234 kB` line of a `/proc/<pid>/status`
/// text, if it has one.
pub fn status_field_kib(status: &str, field: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}
