//! A connection flood on HTTP must not stop DHCP: with a low open-file
//! limit, thousands of connections from many addresses used to take every
//! descriptor, after which the DHCP server could not write its lease table
//! and withheld its replies. The HTTP connection cap (at most half the
//! descriptors) keeps the rest for DHCP.
//!
//! Its own test binary: it lowers the process's open-file limit.

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use dhcproto::v4::{DhcpOption, Message, MessageType};
use dhcproto::{Decodable, Decoder, Encodable};
use racker_inventory::MacAddr;
use racker_netboot::dhcp::transport::{self, DhcpSocket};
use racker_netboot::http::metrics::Metrics;
use racker_netboot::http::{HttpContent, HttpServer};
use racker_netboot::matchbox::Catalog;
use racker_netboot::report::ReportStore;
use racker_netboot::{
    DhcpConfig, DhcpServer, IgnitionDir, InstalledNodes, LeaseTable, NoneInstalled, Reservation,
};
use racker_testsupport::require_tool;

const SERVER_IP: Ipv4Addr = Ipv4Addr::new(172, 24, 213, 1);
const NODE_IP: Ipv4Addr = Ipv4Addr::new(172, 24, 213, 2);
const FLOOD: usize = 3000;

/// Holds `n` connections to the port from 60 loopback addresses until its
/// stdin closes.
const FLOODER: &str = r#"
import resource, socket, sys
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
port, n = int(sys.argv[1]), int(sys.argv[2])
held = []
for i in range(n):
    s = socket.socket()
    s.bind(("127.0.0.%d" % (20 + i % 60), 0))
    s.connect(("127.0.0.1", port))
    held.append(s)
print("held", len(held), flush=True)
sys.stdin.read()
"#;

fn packet(kind: MessageType, mac: MacAddr, requested: Option<Ipv4Addr>) -> Vec<u8> {
    let mut msg = Message::new_with_id(
        0x1234,
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::UNSPECIFIED,
        &mac.octets(),
    );
    msg.opts_mut().insert(DhcpOption::MessageType(kind));
    if let Some(ip) = requested {
        msg.opts_mut().insert(DhcpOption::RequestedIpAddress(ip));
        msg.opts_mut()
            .insert(DhcpOption::ServerIdentifier(SERVER_IP));
    }
    msg.to_vec().unwrap()
}

async fn exchange(sock: &tokio::net::UdpSocket, to: SocketAddr, bytes: &[u8]) -> Message {
    sock.send_to(bytes, to).await.unwrap();
    let mut buf = vec![0u8; 1500];
    let (n, _) = tokio::time::timeout(Duration::from_secs(5), sock.recv_from(&mut buf))
        .await
        .expect("DHCP reply within 5 s during the HTTP flood")
        .unwrap();
    Message::decode(&mut Decoder::new(&buf[..n])).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dhcp_answers_during_an_http_connection_flood() {
    let Some(python) = require_tool("dhcp_answers_during_an_http_connection_flood", "python3")
    else {
        return;
    };
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    limit.current = Some(512);
    setrlimit(Resource::Nofile, limit).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir_all(state.join("assets")).unwrap();
    let metrics = Arc::new(Metrics::default());
    let content = HttpContent::new(
        Catalog::default(),
        ReportStore::open(&state).unwrap(),
        Arc::new(IgnitionDir::in_state_dir(&state)),
        &state.join("assets"),
        metrics.clone(),
    );
    let http = HttpServer::bind("127.0.0.1:0".parse().unwrap(), content)
        .await
        .unwrap();
    let http_port = http.local_addr().port();
    tokio::spawn(http.run());

    let mac: MacAddr = "02:11:22:33:44:10".parse().unwrap();
    let server = DhcpServer::new(
        DhcpConfig::new(SERVER_IP, 24),
        vec![Reservation {
            mac,
            ip: NODE_IP,
            hostname: None,
        }],
        LeaseTable::new(),
    )
    .unwrap();
    let socket = DhcpSocket::bind_plain("127.0.0.1:0".parse().unwrap()).unwrap();
    let dhcp_addr = socket.local_addr();
    let installed: Arc<dyn InstalledNodes + Send + Sync> = Arc::new(NoneInstalled);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let dhcp = tokio::spawn(transport::serve(
        socket,
        server,
        Some(state.clone()),
        installed,
        async {
            let _ = stopped.await;
        },
    ));

    // (The node's socket is made first: it stands for another machine.)
    let client = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut flooder = Command::new(python)
        .args(["-c", FLOODER, &http_port.to_string(), &FLOOD.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(flooder.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), format!("held {FLOOD}"));
    // Let the server accept what it will.
    for _ in 0..300 {
        let seen = metrics.http.connections_open.load(Ordering::Relaxed)
            + metrics.http.connections_refused.load(Ordering::Relaxed);
        if seen >= FLOOD as u64 - 300 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // A node boots meanwhile: DISCOVER, REQUEST, and the lease is on disk.
    let offer = exchange(
        &client,
        dhcp_addr,
        &packet(MessageType::Discover, mac, None),
    )
    .await;
    assert_eq!(offer.opts().msg_type(), Some(MessageType::Offer));
    assert_eq!(offer.yiaddr(), NODE_IP);
    let ack = exchange(
        &client,
        dhcp_addr,
        &packet(MessageType::Request, mac, Some(NODE_IP)),
    )
    .await;
    assert_eq!(ack.opts().msg_type(), Some(MessageType::Ack));
    let leases = std::fs::read_to_string(state.join(LeaseTable::FILE_NAME)).unwrap();
    assert!(leases.contains("02:11:22:33:44:10"), "{leases}");

    // The server held at most its cap (half of 512; idle ones time out
    // after the header timeout) and refused the rest.
    let open = metrics.http.connections_open.load(Ordering::Relaxed);
    let refused = metrics.http.connections_refused.load(Ordering::Relaxed);
    eprintln!("flood of {FLOOD}: {open} held, {refused} refused");
    assert!(open <= 256, "{open}");
    assert!(refused > 0);

    drop(flooder.stdin.take());
    let _ = flooder.wait();
    let _ = stop.send(());
    dhcp.await.unwrap().unwrap();
}
