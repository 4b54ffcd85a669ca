//! `racker netboot serve --no-dhcp`, `render --matchbox` and `fetch-assets`
//! through the binary, on loopback.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const NODES: &str = "Primary MAC address, BMC MAC address, Secondary MAC address, Node Type, Comments\n\
00:11:22:33:44:00, 00:11:22:33:44:01, 00:11:22:33:44:30, red, mgmt node\n\
00:11:22:33:44:10, 00:11:22:33:44:11, 00:11:22:33:44:40, red, node\n\
00:11:22:33:44:20, 00:11:22:33:44:21, 00:11:22:33:44:50, red, node\n";

struct Rack {
    dir: tempfile::TempDir,
}

impl Rack {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let oem = dir.path().join("oem");
        std::fs::create_dir_all(&oem).unwrap();
        std::fs::write(oem.join("nodes.csv"), NODES).unwrap();
        let eth1 = dir.path().join("net/eth1");
        std::fs::create_dir_all(&eth1).unwrap();
        std::fs::write(eth1.join("address"), "00:11:22:33:44:30\n").unwrap();
        let boot = dir.path().join("boot");
        std::fs::create_dir_all(&boot).unwrap();
        std::fs::write(boot.join("undionly.kpxe"), b"bios-ipxe").unwrap();
        std::fs::write(boot.join("ipxe.efi"), b"efi-ipxe").unwrap();
        Self { dir }
    }
    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }
    fn racker(&self) -> Command {
        let mut c = Command::new(assert_cmd::cargo::cargo_bin("racker"));
        c.env("RACKER_OEM_DIR", self.path("oem"))
            .env("RACKER_STATE_DIR", self.path("state"))
            .env("RACKER_SYS_CLASS_NET", self.path("net"))
            .env_remove("RACKER_BOOT_FILES");
        c
    }
}

fn http(addr: SocketAddr, method: &str, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

fn start_serve(rack: &Rack) -> (common::Killed, SocketAddr) {
    let (server, lines) =
        common::netboot_serve(rack.racker(), &rack.path("boot"), "HTTP listening on ");
    let last = lines.last().map(String::as_str).unwrap_or_default();
    let addr = last
        .split("HTTP listening on ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no address in {last:?}"));
    (server, addr)
}

#[test]
fn serve_no_dhcp_boot_flow_over_http() {
    let rack = Rack::new();
    // Kernel, initrd and the node's Ignition: its iPXE script is handed out.
    let assets = rack.path("state/assets/flatcar/current");
    std::fs::create_dir_all(&assets).unwrap();
    for f in [
        racker_netboot::matchbox::PXE_KERNEL,
        racker_netboot::matchbox::PXE_INITRD,
    ] {
        std::fs::write(assets.join(f), b"x").unwrap();
    }
    let node: racker_inventory::MacAddr = "00:11:22:33:44:10".parse().unwrap();
    let ign = racker_netboot::IgnitionDir::in_state_dir(&rack.path("state"))
        .path(node, racker_netboot::IgnitionProfile::Install);
    std::fs::create_dir_all(ign.parent().unwrap()).unwrap();
    std::fs::write(&ign, br#"{"ignition":{"version":"3.4.0"}}"#).unwrap();
    let (_server, addr) = start_serve(&rack);
    let (status, script) = http(addr, "GET", "/boot.ipxe");
    assert_eq!(status, 200);
    assert!(script.contains("chain /ipxe?mac=${mac:hexhyp}"));
    let (status, script) = http(addr, "GET", "/ipxe?mac=00-11-22-33-44-10");
    assert_eq!(status, 200, "{script}");
    assert!(script.contains(&format!("ignition.config.url=http://{addr}/ignition?mac=")));
    assert!(script.contains("flatcar.first_boot=1"));
    let (status, body) = http(addr, "GET", "/ipxe?mac=00:11:22:33:44:00");
    assert_eq!(status, 404, "the management node is no boot target: {body}");
    assert_eq!(http(addr, "GET", "/ipxe.efi"), (200, "efi-ipxe".into()));

    // A report without the node's token is refused; its token is accepted.
    let (status, _) = http(
        addr,
        "POST",
        "/report?mac=00:11:22:33:44:10&stage=installed",
    );
    assert_eq!(status, 403);
    let token = racker_netboot::report::ReportKey::load_or_create(&rack.path("state"))
        .unwrap()
        .token(node);
    let (status, _) = http(
        addr,
        "POST",
        &format!("/report?mac=00:11:22:33:44:10&stage=installed&token={token}"),
    );
    assert_eq!(status, 200);
    let report = rack.path("state/netboot/reports/00:11:22:33:44:10.json");
    let saved = std::fs::read_to_string(&report).unwrap();
    assert!(saved.contains(r#""stage":"installed""#), "{saved}");
    let (_, script) = http(addr, "GET", "/ipxe?mac=00:11:22:33:44:10");
    assert!(
        script.contains("exit") && !script.contains("kernel"),
        "{script}"
    );
    let (status, metrics) = http(addr, "GET", "/metrics");
    assert_eq!(status, 200);
    assert!(
        metrics.contains("racker_nodes{stage=\"installed\"} 1"),
        "{metrics}"
    );
}

#[test]
fn serve_without_boot_files_says_what_to_do() {
    let rack = Rack::new();
    let out = common::serve_args(&mut rack.racker(), &rack.path("nowhere"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("undionly.kpxe") && err.contains("--boot-files"),
        "{err}"
    );
}

#[test]
fn render_matchbox_writes_loadable_layout() {
    let rack = Rack::new();
    let dir = rack.path("matchbox");
    let out = rack
        .racker()
        .args(["netboot", "render", "--matchbox"])
        .arg(&dir)
        .args(["--exclude", "00:11:22:33:44:20"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let profile = std::fs::read_to_string(dir.join("profiles/flatcar-install.json")).unwrap();
    assert!(profile.contains("http://172.24.213.1:8080/assets/flatcar/current/"));
    let groups: Vec<_> = std::fs::read_dir(dir.join("groups")).unwrap().collect();
    assert_eq!(groups.len(), 1, "excluded node has no group");
    let group = std::fs::read_to_string(dir.join("groups/node-001122334410.json")).unwrap();
    assert!(group.contains(r#""mac": "00:11:22:33:44:10""#), "{group}");
    assert!(group.contains(r#""ip": "172.24.213.2""#), "{group}");
}

#[test]
fn fetch_assets_without_key_names_the_key() {
    let rack = Rack::new();
    let out = rack
        .racker()
        .args([
            "netboot",
            "fetch-assets",
            "--base-url",
            "http://127.0.0.1:9/none",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("F88CFEDEFF29A5B4D9523864E25D9AED0593B34A") && err.contains("--signing-key"),
        "{err}"
    );
    assert!(!Path::new(&rack.path("state/assets/flatcar/current")).exists());
}

/// GET `path` and return the status and the body's bytes.
fn http_bytes(addr: SocketAddr, path: &str) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let split = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&out[..split]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, out[split + 4..].to_vec())
}

/// `racker netboot management-node`: the original's management-node-ipxe
/// for this rack, served by `netboot serve`; real Ignition accepts the
/// config, which pins racker's binary by its SHA-512.
#[test]
fn management_node_install_is_served_and_verifiable() {
    use sha2::Digest as _;
    let rack = Rack::new();
    // Without a source the command says what it needs.
    let out = rack
        .racker()
        .args(["netboot", "management-node"])
        .env_remove("RACKER_MANAGEMENT_BASE_URL")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--base-url URL"));

    let (_server, addr) = start_serve(&rack);
    let base = format!("http://{addr}");
    let out = rack
        .racker()
        .args(["netboot", "management-node", "--base-url", &base])
        .args(["--kernel-console", "console=ttyS0,115200n8"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!("chain {base}/assets/management-node/install.ipxe")),
        "{stdout}"
    );

    let (status, ipxe) = http_bytes(addr, "/assets/management-node/install.ipxe");
    assert_eq!(status, 200);
    let ipxe = String::from_utf8(ipxe).unwrap();
    assert!(ipxe.starts_with("#!ipxe\n"), "{ipxe}");
    // No assets fetched: Flatcar's own stable release, as the original.
    assert!(
        ipxe.contains("set base-url https://stable.release.flatcar-linux.net/amd64-usr/current"),
        "{ipxe}"
    );
    assert!(
        ipxe.contains(&format!(
            "console=ttyS0,115200n8 flatcar.autologin ignition.config.url={base}/assets/management-node/install-ignition.json"
        )),
        "{ipxe}"
    );
    let (status, ign) = http_bytes(addr, "/assets/management-node/install-ignition.json");
    assert_eq!(status, 200);
    let config: serde_json::Value = serde_json::from_slice(&ign).unwrap();
    let files = config["storage"]["files"].as_array().unwrap();
    let binary = files
        .iter()
        .find(|f| f["path"] == "/opt/bin/racker")
        .unwrap();
    assert_eq!(
        binary["contents"]["source"],
        format!("{base}/assets/management-node/racker")
    );
    let (status, served) = http_bytes(addr, "/assets/management-node/racker");
    assert_eq!(status, 200);
    let digest: String = sha2::Sha512::digest(&served)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        binary["contents"]["verification"]["hash"],
        format!("sha512-{digest}")
    );
    assert_eq!(
        served,
        std::fs::read(assert_cmd::cargo::cargo_bin("racker")).unwrap()
    );
    let installer = files
        .iter()
        .find(|f| f["path"] == "/opt/installer")
        .unwrap();
    let script =
        racker_lokomotive::decode_data_url(installer["contents"]["source"].as_str().unwrap())
            .map(|b| String::from_utf8(b).unwrap())
            .unwrap();
    assert!(
        script.contains("/opt/bin/racker ipmi --local bootdev disk"),
        "{script}"
    );
    assert!(
        script
            .contains("echo 'set linux_console=\"console=ttyS0,115200n8\"' >> /tmp/oemfs/grub.cfg"),
        "{script}"
    );

    // The real Ignition's validator accepts it.
    let test = "management_node_install_is_served_and_verifiable";
    if let Some(tool) = racker_testsupport::require_tool(test, "ignition-validate") {
        let file = rack.path("state/assets/management-node/install-ignition.json");
        let out = Command::new(tool).arg(&file).output().unwrap();
        assert!(
            out.status.success(),
            "ignition-validate: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
