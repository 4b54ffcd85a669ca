//! TFTP server against real clients (curl, atftp, tftp-hpa) and raw
//! packets on loopback.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use racker_netboot::tftp::packet::Packet;
use racker_netboot::tftp::server::{TftpServer, TftpStats, locate_boot_files};
use racker_netboot::tftp::transfer::TftpConfig;
use racker_testsupport::{require_tool, skip_or_fail};
use tokio::net::UdpSocket;
use tokio::process::Command;

struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
    out: PathBuf,
    addr: SocketAddr,
    big: Vec<u8>,
    stats: Arc<TftpStats>,
}

const SECRET: &[u8] = b"TOP-SECRET-OUTSIDE-THE-ROOT";

fn pseudo_random(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.max(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

async fn start() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let out = dir.path().join("out");
    std::fs::create_dir_all(root.join("sub")).unwrap();
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(dir.path().join("secret"), SECRET).unwrap();
    let big = pseudo_random(3 * 1024 * 1024 + 77, 7);
    std::fs::write(root.join("big.bin"), &big).unwrap();
    std::fs::write(root.join("sub/notes.txt"), b"line one\nline two\r\nend\n").unwrap();
    std::os::unix::fs::symlink("../secret", root.join("outside")).unwrap();
    std::os::unix::fs::symlink("big.bin", root.join("alias.bin")).unwrap();
    let stats = Arc::new(TftpStats::default());
    let server = TftpServer::bind(
        "127.0.0.1:0".parse().unwrap(),
        &root,
        TftpConfig::default(),
        stats.clone(),
    )
    .await
    .unwrap();
    let addr = server.local_addr();
    tokio::spawn(server.run());
    Fixture {
        _dir: dir,
        root,
        out,
        addr,
        big,
        stats,
    }
}

/// Poll a counter the server updates asynchronously (bounded: 5 s).
async fn wait_for(cond: impl Fn() -> bool) {
    for _ in 0..500 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("condition not reached within 5 s");
}

fn assert_no_secret(path: &Path) {
    if let Ok(bytes) = std::fs::read(path) {
        assert!(
            !bytes.windows(SECRET.len()).any(|w| w == SECRET),
            "{} contains the secret",
            path.display()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_downloads_with_blksize_and_is_refused_traversal() {
    let Some(curl) = require_tool("curl_tftp", "curl") else {
        return;
    };
    let f = start().await;
    let port = f.addr.port();
    let dest = f.out.join("big");
    let status = Command::new(&curl)
        .args(["-sS", "--tftp-blksize", "1468", "-o"])
        .arg(&dest)
        .arg(format!("tftp://127.0.0.1:{port}/big.bin"))
        .status()
        .await
        .unwrap();
    assert!(status.success());
    assert_eq!(std::fs::read(&dest).unwrap(), f.big);

    // A symlink inside the root is fine.
    let dest = f.out.join("alias");
    let status = Command::new(&curl)
        .args(["-sS", "-o"])
        .arg(&dest)
        .arg(format!("tftp://127.0.0.1:{port}/alias.bin"))
        .status()
        .await
        .unwrap();
    assert!(status.success());
    assert_eq!(std::fs::read(&dest).unwrap(), f.big);

    let refused_before = f.stats.refused.load(Ordering::Relaxed);
    for (i, name) in [
        "../secret",
        "outside",
        "sub/../../secret",
        "%2Fetc%2Fpasswd",
    ]
    .iter()
    .enumerate()
    {
        let dest = f.out.join(format!("trav{i}"));
        let output = Command::new(&curl)
            .args(["-sS", "--path-as-is", "-o"])
            .arg(&dest)
            .arg(format!("tftp://127.0.0.1:{port}/{name}"))
            .output()
            .await
            .unwrap();
        assert!(!output.status.success(), "{name} was served");
        assert_no_secret(&dest);
    }
    assert!(f.stats.refused.load(Ordering::Relaxed) >= refused_before + 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn atftp_windowsize_and_traversal() {
    let Some(atftp) = require_tool("atftp_windowsize", "atftp") else {
        return;
    };
    let f = start().await;
    let port = f.addr.port().to_string();
    let dest = f.out.join("big");
    let output = Command::new(&atftp)
        .args([
            "--option",
            "blksize 1468",
            "--option",
            "windowsize 16",
            "--option",
            "tsize 0",
            "--verbose",
            "-g",
            "-r",
            "big.bin",
            "-l",
        ])
        .arg(&dest)
        .args(["127.0.0.1", &port])
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "atftp failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(std::fs::read(&dest).unwrap(), f.big);
    // The client exits right after its final ACK; the server counts the
    // transfer when that ACK arrives.
    wait_for(|| f.stats.completed.load(Ordering::Relaxed) >= 1).await;
    let log = String::from_utf8_lossy(&output.stdout).to_string()
        + &String::from_utf8_lossy(&output.stderr);
    eprintln!("{log}");
    assert!(
        log.contains("windowsize"),
        "atftp did not ask for windowsize: {log}"
    );

    let dest = f.out.join("trav");
    let output = Command::new(&atftp)
        .args(["-g", "-r", "../secret", "-l"])
        .arg(&dest)
        .args(["127.0.0.1", &port])
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    assert_no_secret(&dest);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tftp_hpa_binary_netascii_and_traversal() {
    let Some(tftp) = require_tool("tftp_hpa", "tftp") else {
        return;
    };
    let f = start().await;
    let port = f.addr.port().to_string();
    let dest = f.out.join("big");
    let status = Command::new(&tftp)
        .args(["-m", "binary", "127.0.0.1", &port, "-c", "get", "big.bin"])
        .arg(&dest)
        .status()
        .await
        .unwrap();
    assert!(status.success());
    assert_eq!(std::fs::read(&dest).unwrap(), f.big);

    // netascii: the client converts CR LF back, so the text arrives intact.
    let dest = f.out.join("notes");
    let status = Command::new(&tftp)
        .args([
            "-m",
            "netascii",
            "127.0.0.1",
            &port,
            "-c",
            "get",
            "sub/notes.txt",
        ])
        .arg(&dest)
        .status()
        .await
        .unwrap();
    assert!(status.success());
    assert_eq!(
        std::fs::read(&dest).unwrap(),
        std::fs::read(f.root.join("sub/notes.txt")).unwrap()
    );

    for (i, name) in ["../secret", "/etc/passwd", "outside"].iter().enumerate() {
        let dest = f.out.join(format!("trav{i}"));
        let output = Command::new(&tftp)
            .args(["-m", "binary", "127.0.0.1", &port, "-c", "get", name])
            .arg(&dest)
            .output()
            .await
            .unwrap();
        // tftp-hpa exits 0 even on errors; it prints the server's error.
        let text = String::from_utf8_lossy(&output.stderr).to_string()
            + &String::from_utf8_lossy(&output.stdout);
        assert!(text.contains("Error code"), "{name}: {text}");
        assert_no_secret(&dest);
    }
}

async fn raw_request(addr: SocketAddr, packet: &[u8]) -> (Vec<u8>, UdpSocket) {
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    sock.send_to(packet, addr).await.unwrap();
    let mut buf = vec![0u8; 70000];
    let (n, from) = tokio::time::timeout(Duration::from_secs(5), sock.recv_from(&mut buf))
        .await
        .expect("no reply")
        .unwrap();
    sock.connect(from).await.unwrap();
    (buf[..n].to_vec(), sock)
}

fn error_code(reply: &[u8]) -> Option<u16> {
    match Packet::parse(reply).ok()? {
        Packet::Error { code, .. } => Some(code),
        _ => None,
    }
}

#[tokio::test]
async fn raw_refusals_absolute_nul_write_and_missing() {
    let f = start().await;
    let cases: [(&[u8], u16); 5] = [
        (b"\x00\x01/etc/passwd\x00octet\x00", 2),
        (b"\x00\x01../secret\x00octet\x00", 2),
        (b"\x00\x01big.bin\x00..\x00octet\x00", 4), // NUL inside the name
        (b"\x00\x02upload\x00octet\x00", 2),        // write request
        (b"\x00\x01missing\x00octet\x00", 1),
    ];
    for (packet, code) in cases {
        let (reply, _) = raw_request(f.addr, packet).await;
        assert_eq!(error_code(&reply), Some(code), "{packet:?}");
    }
}

#[tokio::test]
async fn retransmits_after_timeout_then_completes() {
    let f = start().await;
    std::fs::write(f.root.join("small"), pseudo_random(1500, 3)).unwrap();
    let rrq = Packet::Rrq {
        filename: "small".into(),
        mode: racker_netboot::tftp::packet::Mode::Octet,
        options: vec![("timeout".into(), "1".into())],
    }
    .encode();
    let (oack, sock) = raw_request(f.addr, &rrq).await;
    assert!(matches!(Packet::parse(&oack).unwrap(), Packet::Oack { .. }));
    // Do not acknowledge: the OACK must come again after ~1 s.
    let mut buf = vec![0u8; 2000];
    let n = tokio::time::timeout(Duration::from_secs(3), sock.recv(&mut buf))
        .await
        .expect("no retransmission")
        .unwrap();
    assert_eq!(&buf[..n], &oack[..]);
    let mut got = Vec::new();
    let mut block = 0u16;
    loop {
        sock.send(&Packet::Ack { block }.encode()).await.unwrap();
        let n = tokio::time::timeout(Duration::from_secs(3), sock.recv(&mut buf))
            .await
            .expect("no data")
            .unwrap();
        match Packet::parse(&buf[..n]).unwrap() {
            Packet::Data { block: b, data } => {
                assert_eq!(b, block + 1);
                block = b;
                got.extend_from_slice(data);
                if data.len() < 512 {
                    sock.send(&Packet::Ack { block }.encode()).await.unwrap();
                    break;
                }
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(got, std::fs::read(f.root.join("small")).unwrap());
    wait_for(|| f.stats.bytes_sent.load(Ordering::Relaxed) >= 1500).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_curl_transfers() {
    let Some(curl) = require_tool("tftp_concurrent", "curl") else {
        return;
    };
    let f = start().await;
    let port = f.addr.port();
    let mut children = Vec::new();
    for i in 0..24 {
        let dest = f.out.join(format!("c{i}"));
        children.push((
            dest.clone(),
            Command::new(&curl)
                .args(["-sS", "--tftp-blksize", "8192", "-o"])
                .arg(&dest)
                .arg(format!("tftp://127.0.0.1:{port}/big.bin"))
                .spawn()
                .unwrap(),
        ));
    }
    for (dest, mut child) in children {
        assert!(child.wait().await.unwrap().success());
        assert_eq!(std::fs::read(&dest).unwrap(), f.big, "{}", dest.display());
    }
    wait_for(|| f.stats.completed.load(Ordering::Relaxed) == 24).await;
    wait_for(|| f.stats.active.load(Ordering::Relaxed) == 0).await;
}

#[test]
fn boot_files_located_or_clear_message() {
    let empty = tempfile::tempdir().unwrap();
    let err = locate_boot_files(Some(empty.path()))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("undionly.kpxe") && err.contains("ipxe"),
        "{err}"
    );
    std::fs::write(empty.path().join("undionly.kpxe"), b"x").unwrap();
    std::fs::write(empty.path().join("ipxe.efi"), b"x").unwrap();
    assert_eq!(
        locate_boot_files(Some(empty.path())).unwrap().dir(),
        empty.path()
    );
    // A dangling link or a directory is named as missing.
    std::fs::remove_file(empty.path().join("ipxe.efi")).unwrap();
    std::os::unix::fs::symlink("/nonexistent/ipxe.efi", empty.path().join("ipxe.efi")).unwrap();
    let err = locate_boot_files(Some(empty.path()))
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("iPXE boot file ipxe.efi not found in"),
        "{err}"
    );
    std::fs::remove_file(empty.path().join("ipxe.efi")).unwrap();
    std::fs::create_dir(empty.path().join("ipxe.efi")).unwrap();
    let err = locate_boot_files(Some(empty.path()))
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("iPXE boot file ipxe.efi not found in"),
        "{err}"
    );
    if Path::new("/usr/lib/ipxe/undionly.kpxe").is_file() {
        // On Debian 12 ipxe.efi is a link to /boot/ipxe.efi: resolved.
        let files = locate_boot_files(None).unwrap();
        assert_eq!(files.dir(), Path::new("/usr/lib/ipxe"));
        assert_eq!(
            files.lookup("ipxe.efi").unwrap(),
            Path::new("/usr/lib/ipxe/ipxe.efi").canonicalize().unwrap()
        );
    } else {
        skip_or_fail(
            "boot_files_located_or_clear_message",
            "Debian package ipxe is not installed",
        );
    }
}

/// Debian's layout: the TFTP root holds `ipxe.efi` as an absolute link to a
/// file outside it. A UEFI (arch 7) client is handed that name by DHCP and
/// must get it over TFTP and HTTP, while other links out stay refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uefi_boot_file_linked_outside_the_root_is_served() {
    use racker_netboot::http::metrics::Metrics;
    use racker_netboot::http::{HttpContent, HttpServer};
    use racker_netboot::matchbox::Catalog;
    use racker_netboot::report::ReportStore;
    let (Some(tftp), Some(curl)) = (
        require_tool("uefi_boot_file_tftp", "tftp"),
        require_tool("uefi_boot_file_curl", "curl"),
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let boot = dir.path().join("boot");
    let root = dir.path().join("lib-ipxe");
    std::fs::create_dir_all(&boot).unwrap();
    std::fs::create_dir_all(&root).unwrap();
    let efi = pseudo_random(200_000, 11);
    std::fs::write(boot.join("ipxe.efi"), &efi).unwrap();
    std::fs::write(root.join("undionly.kpxe"), b"bios").unwrap();
    std::os::unix::fs::symlink(boot.join("ipxe.efi"), root.join("ipxe.efi")).unwrap();
    std::fs::write(dir.path().join("secret"), SECRET).unwrap();
    std::os::unix::fs::symlink("../secret", root.join("leak")).unwrap();

    let files = locate_boot_files(Some(&root)).unwrap();
    let efi_name = racker_netboot::DhcpConfig::new("127.0.0.1".parse().unwrap(), 24)
        .boot
        .efi_file;
    assert_eq!(efi_name, "ipxe.efi", "the name DHCP gives arch 7 clients");

    let server = TftpServer::bind(
        "127.0.0.1:0".parse().unwrap(),
        files.dir(),
        TftpConfig::default(),
        Arc::default(),
    )
    .await
    .unwrap()
    .with_boot_files(files.clone());
    let port = server.local_addr().port().to_string();
    tokio::spawn(server.run());
    let dest = dir.path().join("got.efi");
    let status = Command::new(&tftp)
        .args(["-m", "binary", "127.0.0.1", &port, "-c", "get", &efi_name])
        .arg(&dest)
        .status()
        .await
        .unwrap();
    assert!(status.success());
    assert_eq!(std::fs::read(&dest).unwrap(), efi);
    let dest = dir.path().join("leak");
    let output = Command::new(&tftp)
        .args(["-m", "binary", "127.0.0.1", &port, "-c", "get", "leak"])
        .arg(&dest)
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&output.stderr).to_string()
        + &String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("Error code 2"), "{text}");
    assert_no_secret(&dest);

    let state = dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    let content = HttpContent::new(
        Catalog::default(),
        ReportStore::open(&state).unwrap(),
        Arc::new(racker_netboot::IgnitionDir::in_state_dir(&state)),
        &state.join("assets"),
        Arc::new(Metrics::default()),
    )
    .with_boot_files(&files);
    let http = HttpServer::bind("127.0.0.1:0".parse().unwrap(), content)
        .await
        .unwrap();
    let base = format!("http://{}", http.local_addr());
    tokio::spawn(http.run());
    for path in [
        "/ipxe.efi",
        "/boot-files/ipxe.efi",
        "/boot-files/./ipxe.efi",
    ] {
        let out = Command::new(&curl)
            .args(["-sS", "-f", &format!("{base}{path}")])
            .output()
            .await
            .unwrap();
        assert!(
            out.status.success(),
            "{path}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.stdout, efi, "{path}");
    }
    let out = Command::new(&curl)
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &format!("{base}/boot-files/leak"),
        ])
        .output()
        .await
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "403");
}

/// Stalled netascii requests for a 16 MiB file used to cost ~33 MB each
/// (the whole file converted in memory: 24 of them ~780 MB); now each
/// holds a few KiB.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_netascii_requests_use_bounded_memory() {
    let f = start().await;
    let text: Vec<u8> = b"0123456789abcdef0123456789abcde\n"
        .iter()
        .copied()
        .cycle()
        .take(16 << 20)
        .collect();
    std::fs::write(f.root.join("big.txt"), &text).unwrap();
    drop(text);
    let rss_kib = || {
        std::fs::read_to_string("/proc/self/status")
            .unwrap()
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .unwrap()
    };
    let before = rss_kib();
    let rrq = Packet::Rrq {
        filename: "big.txt".into(),
        mode: racker_netboot::tftp::packet::Mode::Netascii,
        // A long retransmission timeout keeps every transfer alive.
        options: vec![
            ("tsize".into(), "0".into()),
            ("timeout".into(), "60".into()),
        ],
    }
    .encode();
    let mut socks = Vec::new();
    for _ in 0..24 {
        // The first reply (OACK) is never acknowledged: the transfer stalls.
        let (oack, sock) = raw_request(f.addr, &rrq).await;
        match Packet::parse(&oack).unwrap() {
            Packet::Oack { options } => {
                // tsize is the converted size: one CR per LF.
                let tsize = options.iter().find(|(k, _)| k == "tsize").unwrap();
                assert_eq!(tsize.1, ((16u64 << 20) + (16 << 20) / 32).to_string());
            }
            other => panic!("{other:?}"),
        }
        socks.push(sock);
    }
    wait_for(|| f.stats.active.load(Ordering::Relaxed) >= 24).await;
    let grown_mib = rss_kib().saturating_sub(before) / 1024;
    eprintln!("24 stalled 16 MiB netascii transfers: RSS grew by {grown_mib} MiB");
    assert!(grown_mib < 64, "RSS grew by {grown_mib} MiB");
    drop(socks);
}
