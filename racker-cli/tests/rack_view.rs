//! The rack view in a real browser: Debian's `chromium`, driven over
//! WebDriver by `chromedriver`, loads `/` of the netboot server while
//! `racker bootstrap` installs a `racker sim up` rack, sees the nodes change
//! state in the page, and takes a screenshot that must not be blank.
//!
//! WebDriver is plain HTTP/JSON (W3C WebDriver); this test speaks it over a
//! std `TcpStream` to chromedriver on loopback.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

use racker_testsupport::{free_tcp, free_udp};

/// One HTTP/1.1 request (`Connection: close`); the status and the body.
fn http(addr: SocketAddr, method: &str, path: &str, body: Option<&Value>) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    // Read the head, then exactly the body (servers may keep the
    // connection open despite `Connection: close`).
    let mut raw = Vec::new();
    let mut chunk = [0u8; 65536];
    let split = loop {
        if let Some(p) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break p;
        }
        let n = s.read(&mut chunk).unwrap();
        assert!(n > 0, "{method} {path}: connection closed before the head");
        raw.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let code = head[9..12].parse().unwrap();
    let length: Option<usize> = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map(|v| v.trim().parse().unwrap());
    let mut payload = raw[split + 4..].to_vec();
    match length {
        Some(len) => {
            while payload.len() < len {
                let n = s.read(&mut chunk).unwrap();
                assert!(n > 0, "{method} {path}: body cut short");
                payload.extend_from_slice(&chunk[..n]);
            }
        }
        None => {
            s.read_to_end(&mut payload).unwrap();
        }
    }
    assert!(
        !head.contains("transfer-encoding: chunked"),
        "chunked replies are not expected from chromedriver"
    );
    (code, payload)
}

/// A WebDriver command; its `value`.
fn wd(driver: SocketAddr, method: &str, path: &str, body: Option<Value>) -> Value {
    let (code, bytes) = http(driver, method, path, body.as_ref());
    let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    assert_eq!(code, 200, "WebDriver {method} {path}: {v}");
    v["value"].clone()
}

fn wait_for(what: &str, timeout: Duration, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Stand-ins for every Flatcar file a PXE install requests (the
/// bootstrap's preflight checks them all).
fn write_assets(state: &Path) {
    let assets = state.join("assets/flatcar/current");
    std::fs::create_dir_all(&assets).unwrap();
    for name in [
        "flatcar_production_pxe.vmlinuz",
        "flatcar_production_pxe_image.cpio.gz",
        "flatcar_production_image.bin.bz2",
        "flatcar_production_image.bin.bz2.sig",
    ] {
        std::fs::write(assets.join(name), vec![1u8; 4096]).unwrap();
    }
}

#[test]
fn rack_view_in_chromium_follows_a_simulated_bootstrap() {
    const TEST: &str = "rack_view_in_chromium_follows_a_simulated_bootstrap";
    let Some(chromium) = racker_testsupport::require_tool(TEST, "chromium") else {
        return;
    };
    let Some(chromedriver) = racker_testsupport::require_tool(TEST, "chromedriver") else {
        return;
    };
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let (oem, state, net) = (
        dir.path().join("oem"),
        dir.path().join("state"),
        dir.path().join("net"),
    );
    let (dhcp, web) = (free_udp(), free_tcp());
    let bin = assert_cmd::cargo::cargo_bin("racker");
    let racker = |args: &[&str]| {
        let mut cmd = Command::new(&bin);
        cmd.env_clear()
            .env("RACKER_OEM_DIR", &oem)
            .env("RACKER_STATE_DIR", &state)
            .env("RACKER_SYS_CLASS_NET", &net)
            .args(args)
            .stdin(Stdio::null());
        cmd
    };
    // Four nodes whose installers take 4 s; the last one's OS never
    // reports up, so the bootstrap waits --os-timeout for it (and then
    // excludes it) while the page shows the others up.
    let _sim = Killed(
        racker(&[
            "sim",
            "up",
            "--count",
            "5",
            "--ipmi-port",
            "0",
            "--install-delay-ms",
            "4000",
            "--fault",
            "02:52:4b:00:00:04=no-os-up",
            "--pxe-dhcp",
            &dhcp.to_string(),
        ])
        .stdout(Stdio::null())
        .spawn()
        .unwrap(),
    );
    wait_for("racker sim up's BMC table", Duration::from_secs(20), || {
        state.join("sim-bmcs.json").exists()
    });
    let csv = std::fs::read_to_string(oem.join("nodes.csv")).unwrap();
    let management = csv
        .lines()
        .nth(1)
        .unwrap()
        .split(',')
        .nth(2)
        .unwrap()
        .trim();
    std::fs::create_dir_all(net.join("eth1")).unwrap();
    std::fs::write(net.join("eth1/address"), management).unwrap();
    write_assets(&state);

    let log = dir.path().join("bootstrap.out");
    let mut bootstrap = Killed(
        racker(&[
            "bootstrap",
            "--provision",
            "flatcar",
            "--install-timeout",
            "60",
            "--os-timeout",
            "15s",
            "--on-failure",
            "exclude",
            "--dhcp-listen",
            &dhcp.to_string(),
            "--http-listen",
            &web.to_string(),
        ])
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap(),
    );
    wait_for(
        "the bootstrap's HTTP server",
        Duration::from_secs(30),
        || {
            if let Some(status) = bootstrap.0.try_wait().unwrap() {
                panic!(
                    "the bootstrap ended ({status}) before serving:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            TcpStream::connect(web).is_ok()
        },
    );

    let driver = free_tcp();
    let _chromedriver = Killed(
        Command::new(chromedriver)
            .arg(format!("--port={}", driver.port()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for("chromedriver", Duration::from_secs(20), || {
        TcpStream::connect(driver).is_ok()
            && serde_json::from_slice::<Value>(&http(driver, "GET", "/status", None).1)
                .is_ok_and(|v| v["value"]["ready"] == true)
    });
    let session = wd(
        driver,
        "POST",
        "/session",
        Some(json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                // A phone's screen; root needs --no-sandbox.
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=412,915"],
            },
        }}})),
    );
    let id = session["sessionId"].as_str().unwrap().to_owned();
    let cmd = |method: &str, what: &str, body: Option<Value>| {
        wd(driver, method, &format!("/session/{id}{what}"), body)
    };
    cmd(
        "POST",
        "/url",
        Some(json!({"url": format!("http://{web}/")})),
    );
    assert_eq!(cmd("GET", "/title", None), "racker · rack view");

    // The slots' states as the page shows them, until they have changed
    // and at least one node is installed (or the deadline).
    let read = || {
        cmd(
            "POST",
            "/execute/sync",
            Some(
                json!({"script": "return Array.from(document.querySelectorAll('#rack li.slot')).map(li => [li.dataset.mac, li.dataset.state, li.dataset.power]);", "args": []}),
            ),
        )
    };
    let mut seen: Vec<Value> = Vec::new();
    let mut power_seen = false;
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let now = read();
        let slots = now.as_array().unwrap();
        power_seen |= slots.iter().any(|s| s[2] == "on" || s[2] == "off");
        if slots.len() == 4 && seen.last() != Some(&now) {
            seen.push(now.clone());
        }
        let advanced = slots.iter().any(|s| s[1] == "os-up");
        if seen.len() >= 2 && advanced && power_seen {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the page did not follow the bootstrap; states seen: {seen:?}; bootstrap:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let first_states: Vec<&str> = seen[0]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s[1].as_str().unwrap())
        .collect();
    assert!(
        first_states
            .iter()
            .all(|s| !["installed", "os-up"].contains(s)),
        "the page was loaded too late to see a change: {seen:?}"
    );
    // The header counts the nodes; the last event line names something.
    let summary = cmd(
        "POST",
        "/execute/sync",
        Some(
            json!({"script": "return document.getElementById('summary').textContent + '|' + document.querySelector('#rack li .event').textContent;", "args": []}),
        ),
    );
    let summary = summary.as_str().unwrap();
    assert!(summary.starts_with("4 node(s) · flatcar"), "{summary}");

    // Screenshot: a PNG of the phone-sized page with real content.
    let png = cmd("GET", "/screenshot", None);
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(png.as_str().unwrap())
        .unwrap();
    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("rack-view.png");
    std::fs::write(&shot, &bytes).unwrap();
    let decoder = png::Decoder::new(std::io::Cursor::new(&bytes));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let pixels = &buf[..info.buffer_size()];
    let channels = info.color_type.samples();
    let mut colors = std::collections::BTreeSet::new();
    for px in pixels.chunks(channels) {
        colors.insert(px[..3.min(channels)].to_vec());
    }
    assert!(
        info.width >= 300 && info.height >= 300,
        "{}x{}",
        info.width,
        info.height
    );
    assert!(
        colors.len() > 50,
        "screenshot {} looks blank: {} colours",
        shot.display(),
        colors.len()
    );
    let _ = wd(driver, "DELETE", &format!("/session/{id}"), None);

    // The bootstrap itself succeeds.
    let status = loop {
        if let Some(s) = bootstrap.0.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "bootstrap did not finish");
        std::thread::sleep(Duration::from_millis(100));
    };
    let out = std::fs::read_to_string(&log).unwrap();
    assert!(status.success(), "{out}");
    eprintln!(
        "rack view: {} distinct page states, {} colours in {} ({}x{}), {:.1} s",
        seen.len(),
        colors.len(),
        shot.display(),
        info.width,
        info.height,
        started.elapsed().as_secs_f64()
    );
}
