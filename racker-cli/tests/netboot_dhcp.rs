//! `racker netboot serve|render|leases` (DHCP side).

use std::fs;
use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::cargo::cargo_bin;
use racker_testsupport::netns::Netns;

const NODES_CSV: &str = "\
Primary MAC address, BMC MAC address, Secondary MAC address, Node Type, Comments
02:11:22:33:44:00, 02:11:22:33:44:01, 02:11:22:33:44:30, red, mgmt node
02:11:22:33:44:20, 02:11:22:33:44:21, 02:11:22:33:44:50, purple, worker
02:11:22:33:44:10, 02:11:22:33:44:11, 02:11:22:33:44:40, red, controller
";
const MGMT_SECONDARY: &str = "02:11:22:33:44:30";
const NODE0: [u8; 6] = [2, 0x11, 0x22, 0x33, 0x44, 0x10];
const BMC1: [u8; 6] = [2, 0x11, 0x22, 0x33, 0x44, 0x21];

struct Rack {
    _dir: tempfile::TempDir,
    oem: PathBuf,
    state: PathBuf,
    sys: PathBuf,
    boot: PathBuf,
}

/// nodes.csv plus a fake /sys/class/net where `eth0` is the management
/// node's primary NIC (public) and `eth1` its secondary (PXE) NIC.
fn rack() -> Rack {
    let dir = tempfile::tempdir().unwrap();
    let oem = dir.path().join("oem");
    let state = dir.path().join("state");
    let sys = dir.path().join("sys");
    fs::create_dir_all(&oem).unwrap();
    fs::write(oem.join("nodes.csv"), NODES_CSV).unwrap();
    fs::write(oem.join("ipmi_user"), "admin\n").unwrap();
    fs::write(oem.join("ipmi_password"), "secret\n").unwrap();
    let boot = dir.path().join("boot-files");
    fs::create_dir_all(&boot).unwrap();
    for name in ["undionly.kpxe", "ipxe.efi"] {
        fs::write(boot.join(name), b"not really iPXE").unwrap();
    }
    for (name, mac) in [("eth0", "02:11:22:33:44:00"), ("eth1", MGMT_SECONDARY)] {
        fs::create_dir_all(sys.join(name)).unwrap();
        fs::write(sys.join(name).join("address"), format!("{mac}\n")).unwrap();
    }
    Rack {
        _dir: dir,
        oem,
        state,
        sys,
        boot,
    }
}

fn racker(rack: &Rack) -> Command {
    let mut c = Command::new(cargo_bin("racker"));
    c.arg("--oem-dir")
        .arg(&rack.oem)
        .arg("--state-dir")
        .arg(&rack.state)
        .arg("--sys-class-net")
        .arg(&rack.sys)
        .env_remove("RACKER_EXCLUDE")
        .stdin(Stdio::null());
    c
}

#[test]
fn render_writes_a_dnsmasq_conf_that_dnsmasq_accepts() {
    let rack = rack();
    let out = rack.state.join("render");
    let matchbox = rack.state.join("matchbox");
    let output = racker(&rack)
        .args(["netboot", "render", "--dnsmasq"])
        .arg(&out)
        .arg("--matchbox")
        .arg(&matchbox)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // Both renderers ran from one command.
    assert!(matchbox.join("profiles").is_dir() && matchbox.join("groups").is_dir());
    let conf = fs::read_to_string(out.join("dnsmasq.conf")).unwrap();
    let lines: Vec<&str> = conf.lines().collect();
    // Sorted by primary MAC: node .10 is .2, node .20 is .3, BMCs follow.
    for want in [
        "interface=eth1",
        "bind-interfaces",
        "dhcp-host=02:11:22:33:44:10,172.24.213.2,86400s",
        "dhcp-host=02:11:22:33:44:20,172.24.213.3,86400s",
        "dhcp-host=02:11:22:33:44:11,172.24.213.4,86400s",
        "dhcp-host=02:11:22:33:44:21,172.24.213.5,86400s",
        "dhcp-ignore=tag:!known",
        "dhcp-boot=tag:ipxe,tag:!installed,http://172.24.213.1:8080/boot.ipxe",
    ] {
        assert!(lines.contains(&want), "missing {want:?} in\n{conf}");
    }
    assert!(
        !conf.contains("02:11:22:33:44:00,"),
        "the management node gets no reservation"
    );
    let Some(dnsmasq) = racker_testsupport::require_tool(
        "render_writes_a_dnsmasq_conf_that_dnsmasq_accepts",
        "dnsmasq",
    ) else {
        return;
    };
    let check = Command::new(dnsmasq)
        .arg("--test")
        .arg(format!(
            "--conf-file={}",
            out.join("dnsmasq.conf").display()
        ))
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "dnsmasq rejects the rendered file: {}\n{conf}",
        String::from_utf8_lossy(&check.stderr)
    );
}

#[test]
fn serve_refuses_the_public_interface_and_the_default_route() {
    let rack = rack();
    // eth0 carries the management node's primary MAC: the public network.
    let out = racker(&rack)
        .args(["netboot", "serve", "--interface", "eth0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("refusing to serve DHCP on interface eth0"),
        "{err}"
    );
    assert!(
        err.contains("not the management node's secondary MAC"),
        "{err}"
    );
    // eth1 is the PXE interface, but a route table says it has the default route.
    let routes = rack.state.with_extension("route");
    fs::write(
        &routes,
        "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\tWindow\tIRTT\n\
         eth1\t00000000\t0101A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n",
    )
    .unwrap();
    let out = racker(&rack)
        .args(["netboot", "serve", "--proc-net-route"])
        .arg(&routes)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("carries the default route"), "{err}");
}

/// A minimal DHCP client message.
fn packet(kind: u8, mac: [u8; 6], xid: u32, requested: Option<Ipv4Addr>) -> Vec<u8> {
    let mut p = vec![0u8; 240];
    p[0] = 1;
    p[1] = 1;
    p[2] = 6;
    p[4..8].copy_from_slice(&xid.to_be_bytes());
    p[28..34].copy_from_slice(&mac);
    p[236..240].copy_from_slice(&[99, 130, 83, 99]);
    p.extend([53, 1, kind]);
    if let Some(ip) = requested {
        p.extend([50, 4]);
        p.extend(ip.octets());
        p.extend([54, 4, 172, 24, 213, 1]);
    }
    p.push(255);
    p
}

/// (message type, yiaddr) of a reply to `xid`.
fn parse_reply(bytes: &[u8], xid: u32) -> Option<(u8, Ipv4Addr)> {
    if bytes.len() < 240 || bytes[0] != 2 || bytes[4..8] != xid.to_be_bytes() {
        return None;
    }
    let yiaddr = Ipv4Addr::new(bytes[16], bytes[17], bytes[18], bytes[19]);
    let mut i = 240;
    while i + 1 < bytes.len() && bytes[i] != 255 {
        if bytes[i] == 0 {
            i += 1;
            continue;
        }
        let len = usize::from(bytes[i + 1]);
        if bytes[i] == 53 && len == 1 {
            return Some((bytes[i + 2], yiaddr));
        }
        i += 2 + len;
    }
    None
}

struct Serving(Child);

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Start `serve --listen 127.0.0.1:0` and return the bound DHCP port and
/// HTTP address.
fn serve_plain(rack: &Rack, extra: &[&str]) -> (Serving, u16, String) {
    let mut child = racker(rack)
        .args(["netboot", "serve", "--listen", "127.0.0.1:0"])
        .args([
            "--http-listen",
            "127.0.0.1:0",
            "--tftp-listen",
            "127.0.0.1:0",
            "--boot-files",
        ])
        .arg(&rack.boot)
        .args(extra)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let mut http = String::new();
    let port = loop {
        let line = lines.next().expect("serve exited early").unwrap();
        if let Some(rest) = line.strip_prefix("racker netboot: HTTP listening on ") {
            http = rest.split(' ').next().unwrap().to_owned();
        }
        if let Some(addr) = line.strip_prefix("racker netboot: DHCP listening on ") {
            break addr.rsplit(':').next().unwrap().parse::<u16>().unwrap();
        }
    };
    // Keep draining the log so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (Serving(child), port, http)
}

/// `GET path` over plain HTTP/1.0; the body.
fn http_get(addr: &str, path: &str) -> String {
    use std::io::{Read as _, Write as _};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or(out)
}

fn exchange(socket: &UdpSocket, port: u16, msg: &[u8], xid: u32) -> Option<(u8, Ipv4Addr)> {
    socket.send_to(msg, ("127.0.0.1", port)).unwrap();
    let mut buf = [0u8; 1500];
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        match socket.recv_from(&mut buf) {
            Ok((n, _)) => {
                if let Some(r) = parse_reply(&buf[..n], xid) {
                    return Some(r);
                }
            }
            Err(_) => return None,
        }
    }
    None
}

#[test]
fn serve_on_a_plain_socket_answers_reserved_macs_and_persists_leases() {
    let rack = rack();
    let (server, port, http) = serve_plain(&rack, &[]);
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(700)))
        .unwrap();
    // DISCOVER -> OFFER of the planned address; REQUEST -> ACK.
    assert_eq!(
        exchange(&socket, port, &packet(1, NODE0, 1, None), 1),
        Some((2, Ipv4Addr::new(172, 24, 213, 2)))
    );
    let ack = exchange(
        &socket,
        port,
        &packet(3, NODE0, 2, Some(Ipv4Addr::new(172, 24, 213, 2))),
        2,
    );
    assert_eq!(ack, Some((5, Ipv4Addr::new(172, 24, 213, 2))));
    // The BMC of the second node gets its BMC address.
    let ack = exchange(
        &socket,
        port,
        &packet(3, BMC1, 3, Some(Ipv4Addr::new(172, 24, 213, 5))),
        3,
    );
    assert_eq!(ack, Some((5, Ipv4Addr::new(172, 24, 213, 5))));
    // An unknown MAC gets nothing.
    assert_eq!(
        exchange(&socket, port, &packet(1, [2, 0x99, 0, 0, 0, 1], 4, None), 4),
        None
    );
    // The lease file already holds both leases (written before the ACKs).
    let json: serde_json::Value =
        serde_json::from_slice(&fs::read(rack.state.join("dhcp-leases.json")).unwrap()).unwrap();
    let leases = json["leases"].as_array().unwrap();
    let pairs: Vec<(String, String)> = leases
        .iter()
        .map(|l| {
            (
                l["mac"].as_str().unwrap().to_owned(),
                l["ip"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        pairs,
        [
            ("02:11:22:33:44:10".to_owned(), "172.24.213.2".to_owned()),
            ("02:11:22:33:44:21".to_owned(), "172.24.213.5".to_owned())
        ]
    );
    // /metrics counts what DHCP did: 1 DISCOVER, 2 REQUESTs answered, the
    // unknown MAC's DISCOVER unanswered, 2 leases.
    let metrics = http_get(&http, "/metrics");
    for line in [
        "racker_dhcp_requests_total{type=\"discover\"} 2",
        "racker_dhcp_requests_total{type=\"request\"} 2",
        "racker_dhcp_replies_total{type=\"offer\"} 1",
        "racker_dhcp_replies_total{type=\"ack\"} 2",
        "racker_dhcp_unanswered_total 1",
        "racker_dhcp_malformed_total 0",
        "racker_dhcp_leases 2",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "{line} missing in\n{metrics}"
        );
    }
    drop(server);
    // `racker netboot leases` reads the same table.
    let out = racker(&rack).args(["netboot", "leases"]).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("02:11:22:33:44:21  172.24.213.5"), "{text}");
}

#[test]
fn serve_with_dynamic_range_gives_unknown_macs_an_address() {
    let rack = rack();
    let (_server, port, _) = serve_plain(&rack, &["--dynamic-range"]);
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(700)))
        .unwrap();
    let offer = exchange(&socket, port, &packet(1, [2, 0x99, 0, 0, 0, 1], 9, None), 9);
    assert_eq!(offer, Some((2, Ipv4Addr::new(172, 24, 213, 128))));
}

#[test]
fn serve_no_dhcp_starts_only_boot_content() {
    let rack = rack();
    let mut child = racker(&rack)
        .args(["netboot", "serve", "--no-dhcp", "--listen", "127.0.0.1:0"])
        .args([
            "--http-listen",
            "127.0.0.1:0",
            "--tftp-listen",
            "127.0.0.1:0",
            "--boot-files",
        ])
        .arg(&rack.boot)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines: Vec<String> = BufReader::new(child.stderr.take().unwrap())
        .lines()
        .map_while(Result::ok)
        .take_while(|l| !l.contains("DHCP disabled"))
        .collect();
    let server = Serving(child);
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("racker netboot: HTTP listening on 127.0.0.1:")),
        "{lines:?}"
    );
    assert!(
        !lines.iter().any(|l| l.contains("DHCP listening")),
        "{lines:?}"
    );
    drop(server);
    assert!(!rack.state.join("dhcp-leases.json").exists());
}

/// `racker netboot serve` with its defaults (PXE interface found from
/// nodes.csv and the real /sys/class/net of its namespace, port 67,
/// SO_BINDTODEVICE) against busybox udhcpc across a veth pair.
#[test]
fn serve_in_a_namespace_leases_the_planned_address_to_udhcpc() {
    let test = "serve_in_a_namespace_leases_the_planned_address_to_udhcpc";
    if !racker_testsupport::require_root(test) {
        return;
    }
    let (Some(_), Some(udhcpc)) = (
        racker_testsupport::require_tool(test, "ip"),
        racker_testsupport::require_tool(test, "udhcpc"),
    ) else {
        return;
    };
    let rack = rack();
    let server_ns = Netns::create("rkclis");
    let client_ns = Netns::create("rkclic");
    // The server's side carries the management node's secondary MAC, as
    // serve finds its PXE interface by that MAC; the client the node's.
    server_ns.ip(&[
        "link", "add", "pxe0", "type", "veth", "peer", "name", "rk-cli",
    ]);
    server_ns.ip(&["link", "set", "rk-cli", "netns", client_ns.name()]);
    server_ns.ip(&["link", "set", "pxe0", "address", MGMT_SECONDARY]);
    server_ns.ip(&["addr", "add", "172.24.213.1/24", "dev", "pxe0"]);
    server_ns.ip(&["link", "set", "pxe0", "up"]);
    client_ns.ip(&["link", "set", "rk-cli", "address", "02:11:22:33:44:20"]);
    client_ns.ip(&["link", "set", "rk-cli", "up"]);
    let ns = (server_ns.name(), client_ns.name());
    let mut child = Command::new("ip")
        .args(["netns", "exec", ns.0])
        .arg(cargo_bin("racker"))
        .arg("--oem-dir")
        .arg(&rack.oem)
        .arg("--state-dir")
        .arg(&rack.state)
        .args([
            "--sys-class-net",
            "/sys/class/net",
            "netboot",
            "serve",
            "--boot-files",
        ])
        .arg(&rack.boot)
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let ready = lines.find_map(|l| {
        l.ok()
            .filter(|l| l.starts_with("racker netboot: DHCP listening"))
    });
    let server = Serving(child);
    assert!(ready.is_some(), "serve did not start");
    std::thread::spawn(move || for _ in lines {});
    let work = tempfile::tempdir().unwrap();
    let script = work.path().join("hook.sh");
    let log = work.path().join("log");
    fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"$1 $ip $boot_file\" >> '{}'\n",
            log.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    let status = Command::new("ip")
        .args(["netns", "exec", ns.1])
        .arg(udhcpc)
        .args([
            "-i",
            "rk-cli",
            "-f",
            "-q",
            "-n",
            "-t",
            "3",
            "-T",
            "1",
            "-x",
            "0x4d:69505845",
            "-s",
        ])
        .arg(&script)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let events = fs::read_to_string(&log).unwrap();
    // iPXE (user class "iPXE") gets the script URL of the HTTP server `serve` started.
    assert!(
        events
            .lines()
            .any(|l| l == "bound 172.24.213.3 http://172.24.213.1:8080/boot.ipxe"),
        "{events}"
    );
    drop(server);
    assert!(
        fs::read_to_string(rack.state.join("dhcp-leases.json"))
            .unwrap()
            .contains("172.24.213.3")
    );
}
