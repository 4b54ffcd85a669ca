//! `racker demo` teaches: it says what is simulated, `--keep-running`
//! leaves a rack that `racker status`, `racker ipmi` and the rack view reach
//! with the exports it prints, Ctrl-C stops it with a summary, its folder is
//! reused rather than piled up, and folder options are honored or refused.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn racker() -> Command {
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("racker"));
    cmd.env_clear().stdin(Stdio::null());
    cmd
}

/// The demo's stdout, line by line, from a reader thread.
struct Lines {
    rx: mpsc::Receiver<String>,
    seen: String,
}

impl Lines {
    fn new(out: impl std::io::Read + Send + 'static) -> Self {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            rx,
            seen: String::new(),
        }
    }

    /// Read until a line containing `marker` (panics at the deadline or EOF).
    fn until(&mut self, marker: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push_str(&line);
                    self.seen.push('\n');
                    if line.contains(marker) {
                        return line;
                    }
                }
                Err(e) => panic!("no {marker:?} ({e}) in:\n{}", self.seen),
            }
        }
    }

    /// Everything until EOF.
    fn rest(&mut self) -> String {
        while let Ok(line) = self.rx.recv_timeout(Duration::from_secs(20)) {
            self.seen.push_str(&line);
            self.seen.push('\n');
        }
        self.seen.clone()
    }
}

fn http_get(url: &str) -> String {
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').unwrap();
    let mut s = std::net::TcpStream::connect(host).unwrap();
    write!(
        s,
        "GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    body.to_owned()
}

#[test]
fn keep_running_serves_status_ipmi_and_the_rack_view_until_ctrl_c() {
    let dir = tempfile::tempdir().unwrap();
    let demo_dir = dir.path().join("rack");
    let mut child = racker()
        .arg("demo")
        .arg("--dir")
        .arg(&demo_dir)
        .args(["--nodes", "4", "--install-delay-ms", "0", "--keep-running"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = Lines::new(child.stdout.take().unwrap());
    let view = out.until("Rack view: ", Duration::from_secs(120));
    let text = out.seen.clone();
    for expected in ["Simulated: ", "Real: ", "racker ipmi node-3 sol"] {
        assert!(text.contains(expected), "{expected:?} missing:\n{text}");
    }
    // The printed exports, as a shell would take them.
    let exports: Vec<(String, String)> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("export "))
        .flat_map(|l| l.split_whitespace())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap();
            (k.to_owned(), v.to_owned())
        })
        .collect();
    assert!(
        exports
            .iter()
            .any(|(k, v)| k == "RACKER_STATE_DIR" && Path::new(v) == demo_dir.join("state")),
        "{exports:?}"
    );
    let with_env = |args: &[&str]| {
        let mut cmd = racker();
        cmd.envs(exports.iter().map(|(k, v)| (k, v))).args(args);
        cmd.output().unwrap()
    };
    let status = with_env(&["status"]);
    let stdout = String::from_utf8_lossy(&status.stdout);
    assert!(status.status.success(), "{stdout}");
    assert_eq!(stdout.matches("os-up").count(), 4, "{stdout}");
    assert!(!stdout.contains("unreachable"), "{stdout}");
    let power = with_env(&["ipmi", "--all", "power", "status"]);
    let stdout = String::from_utf8_lossy(&power.stdout);
    assert!(power.status.success(), "{stdout}");
    assert_eq!(stdout.matches("Chassis Power is on").count(), 4, "{stdout}");
    // The rack view answers, with every node up.
    let url = view.split("Rack view: ").nth(1).unwrap().trim();
    assert!(http_get(url).contains("rack view"));
    let api: serde_json::Value =
        serde_json::from_str(&http_get(&format!("{url}api/rack"))).unwrap();
    let states: Vec<&str> = api["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["os-up"; 4]);
    let table: serde_json::Value =
        serde_json::from_slice(&std::fs::read(demo_dir.join("state/sim-bmcs.json")).unwrap())
            .unwrap();

    // Ctrl-C: a clean stop with a summary.
    let exit = racker_testsupport::interrupt(&mut child, Duration::from_secs(20));
    let all = out.rest();
    assert!(exit.success(), "{exit:?}\n{all}");
    assert!(
        all.contains("Demo stopped after") && all.contains("4 node(s) (4 os-up)"),
        "{all}"
    );
    // Everything is gone: no BMC port is held, status no longer finds the
    // simulated rack, the web server is closed.
    for b in table["bmcs"].as_array().unwrap() {
        let addr = b["ipmi_address"].as_str().unwrap();
        std::net::UdpSocket::bind(addr)
            .unwrap_or_else(|e| panic!("BMC port {addr} still held after Ctrl-C: {e}"));
    }
    assert!(!demo_dir.join("state/sim-rack.pid").exists());
    let host = url.trim_start_matches("http://").trim_end_matches('/');
    assert!(
        std::net::TcpStream::connect(host).is_err(),
        "{host} still served"
    );
}

#[test]
fn default_folder_is_reused_and_folder_options_are_honored_or_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let run = |extra: &[&str], env: &[(&str, &Path)]| {
        let mut cmd = racker();
        cmd.env("TMPDIR", tmp.path())
            .arg("demo")
            .args(["--nodes", "1", "--install-delay-ms", "0"])
            .args(extra);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    };
    let first = run(&[], &[]);
    let text = String::from_utf8_lossy(&first.stdout);
    assert!(first.status.success(), "{text}");
    assert!(
        text.contains("Simulated: ") && text.contains("Real: "),
        "{text}"
    );
    assert!(
        text.contains("`racker demo --keep-running` keeps them up"),
        "{text}"
    );
    let second = run(&[], &[]);
    let text = String::from_utf8_lossy(&second.stdout);
    assert!(second.status.success(), "{text}");
    assert!(
        text.contains("Reusing ") && text.contains("cleared"),
        "{text}"
    );
    let entries: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(entries, ["racker-demo"], "demo folders piled up");

    // Folder options naming the demo's own folders are honored (the
    // exports of a kept demo), others refused.
    let demo = tmp.path().join("racker-demo");
    let honored = run(
        &[],
        &[
            ("RACKER_OEM_DIR", &demo.join("oem")),
            ("RACKER_STATE_DIR", &demo.join("state")),
            ("RACKER_SYS_CLASS_NET", &demo.join("net")),
        ],
    );
    let text = String::from_utf8_lossy(&honored.stdout);
    assert!(honored.status.success(), "{text}");
    assert!(text.contains("Resuming the demo rack"), "{text}");
    let refused = run(&["--state-dir", "/opt/racker-state"], &[]);
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(
        err.contains("--state-dir/RACKER_STATE_DIR must be") && err.contains("or pass --dir"),
        "{err}"
    );
    assert!(!Path::new("/opt/racker-state/nodes.csv").exists());
}

#[test]
fn failure_hints_carry_the_demo_folder_flags() {
    let dir = tempfile::tempdir().unwrap();
    let out = racker()
        .arg("demo")
        .arg("--dir")
        .arg(dir.path())
        .args(["--nodes", "2", "--install-delay-ms", "0"])
        .args([
            "--fault",
            "02:00:00:01:00:00=install-fail",
            "--on-failure",
            "cancel",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    let flags = format!(
        "racker --oem-dir {} --state-dir {} --sys-class-net {}",
        dir.path().join("oem").display(),
        dir.path().join("state").display(),
        dir.path().join("net").display()
    );
    assert!(text.contains(&flags), "{flags:?} missing:\n{text}");
    assert!(
        text.contains(&format!("racker demo --dir {}", dir.path().display())),
        "{text}"
    );
}
