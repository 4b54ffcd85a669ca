//! Install reports only from the node's own address (docs/netboot.md,
//! "Install reports"): a report carrying the right token but sent from
//! another host is refused with 403 and the reason on the node's trail;
//! from the node's planned address or its leased address it is recorded.
//! Loopback clients count only for a loopback-only (simulated) rack that
//! asks for it. Real sockets on 127.0.0.0/8 (every address there is local,
//! so a client can pick its source address); no root needed.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use racker_inventory::MacAddr;
use racker_netboot::matchbox::NodeEntry;
use racker_netboot::report::ReportKey;
use racker_netboot::service::{DhcpListen, NetbootService, NetbootServiceBuilder};
use racker_netboot::{DhcpConfig, Lease, LeaseTable, Reservation};

/// The rack subnet on loopback: 127.0.55.0/24.
const SERVER: Ipv4Addr = Ipv4Addr::new(127, 0, 55, 1);
/// Planned on loopback so the test can send from it.
const PLANNED: Ipv4Addr = Ipv4Addr::new(127, 0, 55, 2);
const LEASED: Ipv4Addr = Ipv4Addr::new(127, 0, 55, 7);
const ATTACKER: Ipv4Addr = Ipv4Addr::new(127, 0, 55, 9);

fn mac(i: u8) -> MacAddr {
    MacAddr::new([2, 0x11, 0x22, 0x33, 0x44, i])
}

/// POST a report for `mac` from `source` (bound before connecting).
async fn report_from(
    http: SocketAddr,
    source: Ipv4Addr,
    mac: MacAddr,
    stage: &str,
    token: &str,
) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::from((source, 0))).unwrap();
    let mut s = socket.connect(http).await.unwrap();
    let req = format!(
        "POST /report?mac={mac}&stage={stage}&token={token} HTTP/1.0\r\nHost: {http}\r\nContent-Length: 0\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

async fn start(state: &std::path::Path, loopback_reports: bool) -> NetbootService {
    // Node 1 has a planned address; node 2 only a (dynamic) lease.
    let far = UNIX_EPOCH.elapsed().unwrap().as_secs() + 3600;
    let mut leases = LeaseTable::new();
    leases.insert(Lease {
        mac: mac(2),
        ip: LEASED,
        expires: far,
        reserved: false,
    });
    leases.save(state).unwrap();
    builder(state, DhcpConfig::new(SERVER, 24), &[1, 2])
        .reservations([planned()])
        .loopback_reports(loopback_reports)
        .start()
        .await
        .unwrap()
}

/// A service for nodes `nodes` (by [`mac`] index): DHCP on a loopback
/// socket, HTTP on loopback, no TFTP.
fn builder(state: &std::path::Path, config: DhcpConfig, nodes: &[u8]) -> NetbootServiceBuilder {
    NetbootService::builder(state, config)
        .dhcp(DhcpListen::Socket(SocketAddr::from((
            Ipv4Addr::LOCALHOST,
            0,
        ))))
        .nodes(nodes.iter().map(|&i| NodeEntry {
            mac: mac(i),
            hostname: None,
            ip: None,
            role: None,
        }))
        .http_listen(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .tftp(false)
}

/// Node 1's reservation: its planned address.
fn planned() -> Reservation {
    Reservation {
        mac: mac(1),
        ip: PLANNED,
        hostname: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_counts_only_from_the_nodes_address() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path();
    std::fs::create_dir_all(state).unwrap();
    let service = start(state, false).await;
    let http = service.http_addr();
    let key = ReportKey::load_or_create(state).unwrap();
    let (t1, t2) = (key.token(mac(1)), key.token(mac(2)));

    // Forged: the right token, from another host (also the usual
    // 127.0.0.1 of a simulated rack, not allowed here).
    for from in [ATTACKER, Ipv4Addr::LOCALHOST, LEASED] {
        let forged = report_from(http, from, mac(1), "installed", &t1).await;
        assert!(forged.starts_with("HTTP/1.1 403"), "{forged}");
        assert!(
            forged.contains(&format!("sent from {from}, not from {}", mac(1))),
            "{forged}"
        );
        assert!(forged.contains(&format!("planned {PLANNED}")), "{forged}");
    }
    assert!(!service.reports().is_installed(mac(1)));
    // The node's own planned address.
    let own = report_from(http, PLANNED, mac(1), "installed", &t1).await;
    assert!(own.starts_with("HTTP/1.1 200"), "{own}");
    assert!(service.reports().is_installed(mac(1)));
    // The source check does not replace the token check.
    let no_token = report_from(http, PLANNED, mac(1), "up", "00").await;
    assert!(no_token.starts_with("HTTP/1.1 403"), "{no_token}");

    // Node 2: from its leased address only (not node 1's planned one).
    let other = report_from(http, PLANNED, mac(2), "installed", &t2).await;
    assert!(other.starts_with("HTTP/1.1 403"), "{other}");
    assert!(other.contains(&format!("leased {LEASED}")), "{other}");
    let leased = report_from(http, LEASED, mac(2), "installed", &t2).await;
    assert!(leased.starts_with("HTTP/1.1 200"), "{leased}");

    // The refusal and its reason are on the node's trail (and logged).
    let trail = format!("{:?}", service.trail().events(mac(1)));
    assert!(trail.contains("installed (403)"), "{trail}");
    assert!(
        trail.contains(&format!("refused: sent from {ATTACKER}")),
        "{trail}"
    );
    assert!(trail.contains("installed (200)"), "{trail}");
    service.shutdown().await.unwrap();
}

/// A simulated rack on loopback allows its nodes' 127.0.0.1 reports when
/// it asks; a lease that ran out no longer vouches for an address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_rack_allows_loopback_and_expired_leases_do_not_count() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path();
    let service = start(state, true).await;
    let http = service.http_addr();
    let key = ReportKey::load_or_create(state).unwrap();
    let t2 = key.token(mac(2));
    let sim = report_from(
        http,
        Ipv4Addr::LOCALHOST,
        mac(1),
        "installing",
        &key.token(mac(1)),
    )
    .await;
    assert!(sim.starts_with("HTTP/1.1 200"), "{sim}");
    service.shutdown().await.unwrap();

    // Node 2's lease expired (written while the service is down).
    let mut leases = LeaseTable::new();
    leases.insert(Lease {
        mac: mac(2),
        ip: LEASED,
        expires: SystemTime::now()
            .checked_sub(Duration::from_secs(10))
            .unwrap()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs(),
        reserved: false,
    });
    let service = builder(state, DhcpConfig::new(SERVER, 24), &[2])
        .start()
        .await
        .unwrap();
    leases.save(state).unwrap();
    let stale = report_from(service.http_addr(), LEASED, mac(2), "installed", &t2).await;
    assert!(stale.starts_with("HTTP/1.1 403"), "{stale}");
    assert!(stale.contains("no lease"), "{stale}");
    service.shutdown().await.unwrap();
}

/// ProxyDHCP: another server assigns the addresses, so racker cannot know
/// them; the token alone counts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_dhcp_checks_the_token_only() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path();
    let mut config = DhcpConfig::new(SERVER, 24);
    config.mode = racker_netboot::dhcp::Mode::Proxy;
    let service = builder(state, config, &[1])
        .reservations([planned()])
        .start()
        .await
        .unwrap();
    let key = ReportKey::load_or_create(state).unwrap();
    let http = service.http_addr();
    let anywhere = report_from(http, ATTACKER, mac(1), "installing", &key.token(mac(1))).await;
    assert!(anywhere.starts_with("HTTP/1.1 200"), "{anywhere}");
    let forged = report_from(http, ATTACKER, mac(1), "installed", "00").await;
    assert!(forged.starts_with("HTTP/1.1 403"), "{forged}");
    service.shutdown().await.unwrap();
}
