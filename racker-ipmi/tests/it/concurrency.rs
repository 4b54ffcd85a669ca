//! Sessions to one simulated BMC whose replies come late (a simulator
//! busy with 1,000 nodes, or a slow BMC): the client retransmits its
//! handshake packets, the BMC sees each twice, and every session must
//! still be established. Before racker-sim answered a retransmitted Open
//! Session Request / RAKP 1 with its first reply, the duplicate made it
//! pick a new session (or a new random number Rc), so the RAKP 3 computed
//! from the first reply failed with "RAKP4 status 0x0f" (invalid integrity
//! check value) or went unanswered.

use std::time::Duration;

use racker_ipmi::{
    BmcAddress, CipherPreference, CipherSuite, Credentials, Session, SessionOptions,
};
use racker_sim::{BmcConfig, Faults, NodeSpec, SimRack};

const USER: &str = "racker";
const PASSWORD: &str = "sim-password";

async fn slow_bmc(latency: Duration, slots: usize) -> SimRack {
    let specs = vec![NodeSpec::new(
        [0x02, 0, 0, 0, 0x0c, 1],
        "127.0.0.1:0".parse().unwrap(),
    )];
    let rack = SimRack::start_with(specs, |spec| {
        BmcConfig::new(spec.bmc_mac, USER, racker_sim::Password::new(PASSWORD)).max_sessions(slots)
    })
    .await
    .expect("start racker-sim");
    rack.nodes()[0].set_faults(Faults {
        latency,
        ..Faults::default()
    });
    rack
}

fn addr(rack: &SimRack) -> BmcAddress {
    let a = rack.nodes()[0].ipmi_addr();
    BmcAddress::from_ip(a.ip(), a.port())
}

async fn chassis_status(bmc: BmcAddress, opts: SessionOptions) -> Result<bool, racker_ipmi::Error> {
    let creds = Credentials::new(USER, PASSWORD);
    let mut s = Session::connect(&bmc, &creds, &opts).await?;
    let on = s.chassis_status().await?.power_on;
    s.close().await?;
    Ok(on)
}

/// One session, every reply later than the client's retransmission
/// interval: each handshake packet reaches the BMC twice.
#[tokio::test]
async fn handshake_survives_replies_later_than_the_retransmission_interval() {
    for suite in [CipherSuite::Suite17, CipherSuite::Suite3] {
        let rack = slow_bmc(Duration::from_millis(150), 8).await;
        // 100 ms per attempt, 2 s per exchange.
        let opts = SessionOptions::default()
            .timeout(Duration::from_secs(2))
            .retries(19)
            .cipher(CipherPreference::Only(suite));
        let on = chassis_status(addr(&rack), opts).await;
        assert!(matches!(on, Ok(false)), "suite {}: {on:?}", suite.id());
        // Close Session was answered (late): no session left behind.
        assert_eq!(rack.nodes()[0].snapshot().active_sessions, 0);
    }
}

/// Many sessions at once to one BMC that answers late, from racker's
/// client and from ipmitool (`-C 17` and `-C 3`) side by side: all
/// succeed (with enough session slots for all of them; ipmitool does not
/// retry a BMC that has none left).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_sessions_and_ipmitool_to_one_slow_bmc() {
    let rack = slow_bmc(Duration::from_millis(200), 32).await;
    let bmc = addr(&rack);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..24u32 {
        let bmc = bmc.clone();
        // 150 ms per attempt: queued behind the others, replies come later.
        let opts = SessionOptions::default()
            .timeout(Duration::from_secs(6))
            .retries(39)
            .cipher(if i % 2 == 0 {
                CipherPreference::Only(CipherSuite::Suite17)
            } else {
                CipherPreference::Only(CipherSuite::Suite3)
            });
        tasks.spawn(async move {
            let r = chassis_status(bmc, opts).await;
            (
                format!("racker #{i}"),
                r.map(|_| ()).map_err(|e| e.to_string()),
            )
        });
    }
    let ipmitool = racker_testsupport::find_tool("ipmitool");
    if let Some(tool) = &ipmitool {
        let a = rack.nodes()[0].ipmi_addr();
        for i in 0..6 {
            let mut cmd = tokio::process::Command::new(tool);
            cmd.args([
                "-I",
                "lanplus",
                "-H",
                &a.ip().to_string(),
                "-p",
                &a.port().to_string(),
            ])
            .args(["-U", USER, "-E", "-C", if i % 2 == 0 { "17" } else { "3" }])
            .args(["-N", "1", "-R", "8", "chassis", "status"])
            .env("IPMI_PASSWORD", PASSWORD)
            .kill_on_drop(true);
            tasks.spawn(async move {
                let out = cmd.output().await.expect("run ipmitool");
                let ok = out.status.success()
                    && String::from_utf8_lossy(&out.stdout).contains("System Power");
                (
                    format!("ipmitool #{i}"),
                    if ok {
                        Ok(())
                    } else {
                        Err(format!(
                            "{}{}",
                            String::from_utf8_lossy(&out.stdout),
                            String::from_utf8_lossy(&out.stderr)
                        ))
                    },
                )
            });
        }
    } else {
        racker_testsupport::skip_or_fail(
            "many_concurrent_sessions_and_ipmitool_to_one_slow_bmc",
            "ipmitool not installed: racker's sessions only",
        );
    }
    let mut failures = Vec::new();
    let mut done = 0;
    while let Some(r) = tasks.join_next().await {
        let (who, r) = r.expect("task");
        done += 1;
        if let Err(e) = r {
            failures.push(format!("{who}: {e}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {done} failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// A BMC that answers RAKP 4 with status 0x0f although RAKP 2 proved the
/// password (its RAKP state changed under the console, e.g. a new Rc for
/// a retransmitted RAKP 1, as racker-sim did before): the client starts
/// the handshake over instead of failing. A proxy in front of racker-sim's
/// BMC spoils the key exchange code of the first RAKP 3.
#[tokio::test]
async fn rakp4_integrity_failure_after_a_good_rakp2_starts_the_handshake_over() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};
    let rack = slow_bmc(Duration::ZERO, 8).await;
    let proxy = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let upstream = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    upstream.connect(rack.nodes()[0].ipmi_addr()).await.unwrap();
    let via = proxy.local_addr().unwrap();
    let rakp3_seen = Arc::new(AtomicU32::new(0));
    let seen = rakp3_seen.clone();
    let relay = tokio::spawn(async move {
        let (mut a, mut b) = ([0u8; 2048], [0u8; 2048]);
        let mut console = None;
        loop {
            tokio::select! {
                r = proxy.recv_from(&mut a) => {
                    let (n, from) = r.unwrap();
                    console = Some(from);
                    let p = &mut a[..n];
                    // RMCP+ (auth type 6), payload type 0x14: RAKP 3.
                    let rakp3 = n > 24 && p[4] == 0x06 && p[5] & 0x3F == 0x14;
                    if rakp3 && seen.fetch_add(1, Ordering::SeqCst) == 0 {
                        p[n - 1] ^= 0xFF;
                    }
                    upstream.send(p).await.unwrap();
                }
                r = upstream.recv(&mut b) => {
                    let n = r.unwrap();
                    if let Some(c) = console {
                        proxy.send_to(&b[..n], c).await.unwrap();
                    }
                }
            }
        }
    });
    let opts = SessionOptions::default()
        .timeout(Duration::from_secs(2))
        .retries(3);
    let on = chassis_status(BmcAddress::from_ip(via.ip(), via.port()), opts).await;
    relay.abort();
    assert!(matches!(on, Ok(false)), "{on:?}");
    assert_eq!(
        rakp3_seen.load(Ordering::SeqCst),
        2,
        "one spoiled, one good"
    );
}
