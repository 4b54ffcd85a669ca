//! A whole bootstrap of a simulated rack through the library API alone:
//! racker-sim's BMCs (real IPMI over loopback) and PXE firmware (real DHCP
//! and HTTP) against the netboot services the bootstrap starts itself, as
//! `racker demo` does — without the `racker` binary. The events are
//! collected and checked, and so are the final node states.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use racker_bootstrap::{
    CollectEvents, Config, Decision, Event, FailedNodes, FailurePolicy, NetbootEndpoints,
    NodeState, Outcome, Phase, Rack, Stage, StepResult,
};
use racker_inventory::{
    AddressPlan, Inventory, LocalInterface, MacAddr, PlanOptions, Provision, SelectionOptions,
};
use racker_sim::firmware::{BmcAccess, Firmware, FirmwareConfig, FirmwareFaults, NodeFault};
use racker_sim::{NodeSpec, Password, SimRack};

const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGVpbnRlc3RrZXlmb3JyYWNrZXJib290c3RyYXA test";

/// MACs of node `i` (`None`: the management node): primary, BMC, secondary.
fn macs(i: Option<usize>) -> [MacAddr; 3] {
    let lo = i.map_or(0xff, |i| i as u8);
    [1u8, 2, 3].map(|kind| MacAddr::new([0x02, 0, 0, kind, 0, lo]))
}

fn free_udp() -> SocketAddr {
    std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
}

fn free_tcp() -> SocketAddr {
    std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
}

/// The rack of `nodes` nodes plus the management node (this machine), and
/// small stand-ins for Flatcar's PXE kernel and initrd in `state`.
fn rack(nodes: usize, state: &Path) -> Rack {
    let mut csv = String::from(racker_inventory::NODES_CSV_HEADER);
    csv.push('\n');
    let [p, b, s] = macs(None);
    csv.push_str(&format!("{p}, {b}, {s}, mgmt, management node\n"));
    for i in 0..nodes {
        let [p, b, s] = macs(Some(i));
        csv.push_str(&format!("{p}, {b}, {s}, red, simulated node {i}\n"));
    }
    let inventory = Inventory::parse("nodes.csv", csv.as_bytes()).unwrap();
    let interfaces = [
        LocalInterface {
            name: "eth0".into(),
            mac: p,
        },
        LocalInterface {
            name: "eth1".into(),
            mac: s,
        },
    ];
    let management = inventory.management(&interfaces).unwrap();
    let plan = AddressPlan::new(&inventory, &management, &PlanOptions::default()).unwrap();
    let assets = state.join("assets/flatcar/current");
    std::fs::create_dir_all(&assets).unwrap();
    for (name, size) in [
        (racker_netboot::matchbox::PXE_KERNEL, 64 * 1024),
        (racker_netboot::matchbox::PXE_INITRD, 128 * 1024),
        ("flatcar_production_image.bin.bz2", 1024),
        ("flatcar_production_image.bin.bz2.sig", 64),
    ] {
        std::fs::write(assets.join(name), vec![7u8; size]).unwrap();
    }
    Rack::new(inventory, management, plan)
}

/// A running simulated rack: BMCs and firmware.
struct Lab {
    sim: SimRack,
    firmware: Vec<Firmware>,
    bmcs: BTreeMap<MacAddr, SocketAddr>,
    dhcp: SocketAddr,
    http: SocketAddr,
}

async fn lab(nodes: usize, faults: &[(usize, &str)]) -> Lab {
    let mut specs = Vec::new();
    for i in 0..nodes {
        let [p, b, _] = macs(Some(i));
        specs.push(
            NodeSpec::new(b.octets(), SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
                .primary_mac(p.octets()),
        );
    }
    let sim = SimRack::start(specs, "USER", Password::new("PASS"))
        .await
        .unwrap();
    let bmcs = sim
        .nodes()
        .iter()
        .map(|n| (MacAddr::new(n.bmc_mac()), n.ipmi_addr()))
        .collect();
    let (dhcp, http) = (free_udp(), free_tcp());
    let config = FirmwareConfig::new(dhcp)
        .bmc(BmcAccess::Lan {
            user: "USER".into(),
            password: Password::new("PASS"),
        })
        .install_delay(Duration::from_millis(0));
    let client = racker_sim::firmware::HttpClient::new(&config).unwrap();
    let mut firmware = Vec::new();
    for (i, node) in sim.nodes().iter().enumerate() {
        let mut cfg = config.clone();
        for (_, kind) in faults.iter().filter(|(n, _)| *n == i) {
            let mut f = FirmwareFaults::default();
            match kind.parse::<NodeFault>().unwrap() {
                NodeFault::Firmware(w) => f.apply(w),
                other => panic!("not a firmware fault: {other}"),
            }
            cfg = cfg.faults(f);
        }
        firmware.push(Firmware::spawn_with(node, cfg, &client).unwrap());
    }
    Lab {
        sim,
        firmware,
        bmcs,
        dhcp,
        http,
    }
}

fn config(lab: &Lab, rack: Rack, state: &Path) -> Config {
    let selection = SelectionOptions {
        provision: Provision::Flatcar,
        ..SelectionOptions::default()
    };
    let mut config = Config::new(
        state,
        rack,
        selection,
        racker_ipmi::Credentials::new("USER", "PASS"),
        racker_lokomotive::RenderOptions::new(vec![KEY.into()]),
    );
    config.bmc_overrides = lab.bmcs.clone();
    config.netboot =
        racker_bootstrap::NetbootMode::Serve(NetbootEndpoints::plain(lab.dhcp, lab.http));
    config.install_timeout = Duration::from_secs(60);
    config.os_timeout = Duration::from_secs(30);
    config.ipmi_timeout = Duration::from_secs(2);
    config.retries = 1;
    config
}

/// Records what it was asked, answers `answer`.
struct Recorder {
    answer: Decision,
    asked: Mutex<Vec<(Vec<MacAddr>, u32)>>,
}

impl FailurePolicy for Recorder {
    fn decide(&self, failed: &FailedNodes<'_>) -> Decision {
        self.asked
            .lock()
            .unwrap()
            .push((failed.nodes.to_vec(), failed.attempt));
        failed.note("test policy decided");
        self.answer
    }
}

fn finished(events: &[Event], phase: Phase) -> Option<(usize, usize, bool)> {
    events.iter().find_map(|e| match e {
        Event::StageFinished {
            phase: p,
            done,
            total,
            ok,
        } if *p == phase => Some((*done, *total, *ok)),
        _ => None,
    })
}

fn steps(events: &[Event], phase: Phase) -> Vec<(MacAddr, StepResult)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::NodeStep {
                phase: p,
                node,
                result,
                ..
            } if *p == phase => Some((*node, result.clone())),
            _ => None,
        })
        .collect()
}

/// The states node `mac` went through, in order.
fn changes(events: &[Event], mac: MacAddr) -> Vec<NodeState> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::NodeChanged { node, state } if *node == mac => Some(state.clone()),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulated_rack_is_provisioned_through_the_library() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let lab = lab(4, &[]).await;
    let config = config(&lab, rack(4, &state), &state);
    let events = CollectEvents::new();
    let policy = Recorder {
        answer: Decision::Cancel,
        asked: Mutex::new(Vec::new()),
    };
    let report = racker_bootstrap::bootstrap(&config, &events, &policy)
        .await
        .unwrap();
    let events = events.events();
    assert_eq!(report.outcome, Outcome::Provisioned, "{events:#?}");
    assert!(policy.asked.lock().unwrap().is_empty());

    // Every counted stage started with 4 nodes and finished with all 4.
    for phase in [Phase::BmcConnectivity, Phase::PxeInstall, Phase::OsUp] {
        assert!(
            events.contains(&Event::StageStarted { phase, total: 4 }),
            "{phase}: {events:#?}"
        );
        assert_eq!(finished(&events, phase), Some((4, 4, true)), "{phase}");
        let mut nodes: Vec<MacAddr> = steps(&events, phase)
            .into_iter()
            .map(|(mac, result)| {
                assert_eq!(result, StepResult::Ok, "{phase} {mac}");
                mac
            })
            .collect();
        nodes.sort();
        let expected: Vec<MacAddr> = (0..4).map(|i| macs(Some(i))[0]).collect();
        assert_eq!(nodes, expected, "{phase}");
    }
    // Stages run in order: BMC check, PXE, OS up.
    let order: Vec<Phase> = events
        .iter()
        .filter_map(|e| match e {
            Event::StageStarted { phase, .. } => Some(*phase),
            _ => None,
        })
        .collect();
    assert_eq!(
        order,
        [Phase::BmcConnectivity, Phase::PxeInstall, Phase::OsUp]
    );
    let messages: Vec<&str> = events
        .iter()
        .filter_map(|e| match e {
            Event::Message(m) => Some(m.as_str()),
            _ => None,
        })
        .collect();
    assert!(
        messages[0].starts_with("Provisioning 4 node(s) with flatcar"),
        "{messages:?}"
    );
    assert!(
        messages.contains(&"✓ 4 node(s) provisioned with flatcar, OS up on 4"),
        "{messages:?}"
    );

    // The final states, in the report and on disk.
    assert_eq!(report.state.nodes.len(), 4);
    for (mac, record) in &report.state.nodes {
        assert_eq!(
            record.state,
            NodeState::Active { stage: Stage::OsUp },
            "{mac}"
        );
        assert_eq!(record.attempts, 1, "{mac}");
    }
    let on_disk = racker_bootstrap::StateFile::load(&state).unwrap().unwrap();
    assert_eq!(on_disk, report.state);
    // Every transition was an event: each node went planned → os-up
    // through every stage in order.
    for mac in report.state.nodes.keys() {
        assert_eq!(
            changes(&events, *mac),
            [
                Stage::BmcReachable,
                Stage::PxeRequested,
                Stage::InstallerBooted,
                Stage::Installed,
                Stage::OsUp
            ]
            .map(|stage| NodeState::Active { stage }),
            "{mac}"
        );
    }
    // The attempt log has the operator lines.
    let log = std::fs::read_to_string(&report.log).unwrap();
    assert!(log.contains("✓ OS installation via PXE (4/4)"), "{log}");
    // Every BMC ends with persistent disk boot, the machines on.
    for node in lab.sim.nodes() {
        let snap = node.snapshot();
        assert!(snap.power_on, "{snap:?}");
    }
    lab.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_install_is_put_to_the_policy_and_excluded() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let lab = lab(3, &[(1, "install-fail")]).await;
    let config = config(&lab, rack(3, &state), &state);
    let events = CollectEvents::new();
    let policy = Recorder {
        answer: Decision::Exclude,
        asked: Mutex::new(Vec::new()),
    };
    let report = racker_bootstrap::bootstrap(&config, &events, &policy)
        .await
        .unwrap();
    let events = events.events();
    assert_eq!(report.outcome, Outcome::Provisioned, "{events:#?}");
    let bad = macs(Some(1))[0];
    assert_eq!(*policy.asked.lock().unwrap(), [(vec![bad], 1)]);

    // The failure is a typed step with its reason; the stage fails 2/3.
    let failed: Vec<_> = steps(&events, Phase::PxeInstall)
        .into_iter()
        .filter(|(_, r)| !r.is_ok())
        .collect();
    assert_eq!(failed.len(), 1, "{events:#?}");
    assert_eq!(failed[0].0, bad);
    match &failed[0].1 {
        StepResult::Failed { reason } => {
            assert!(reason.starts_with("installer failed:"), "{reason}")
        }
        StepResult::Ok => unreachable!(),
    }
    assert_eq!(finished(&events, Phase::PxeInstall), Some((2, 3, false)));
    assert!(events.contains(&Event::Message("test policy decided".into())));
    assert!(events.contains(&Event::Message(format!(
        "Excluded 1 node(s) from the cluster: {bad}"
    ))));

    assert!(matches!(
        report.state.nodes[&bad].state,
        NodeState::Excluded { .. }
    ));
    let bad_changes = changes(&events, bad);
    assert!(
        matches!(
            &bad_changes[..],
            [
                ..,
                NodeState::Failed {
                    stage: Stage::PxeRequested | Stage::InstallerBooted,
                    ..
                },
                NodeState::Excluded { .. }
            ]
        ),
        "{bad_changes:?}"
    );
    for i in [0, 2] {
        assert_eq!(
            report.state.nodes[&macs(Some(i))[0]].state,
            NodeState::Active { stage: Stage::OsUp }
        );
    }
    lab.sim.shutdown().await;
}

/// How many times each node's firmware ran an install so far.
fn installs(lab: &Lab) -> Vec<u32> {
    lab.firmware.iter().map(|f| f.status().installs).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_assets_the_preflight_stops_before_any_bmc() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let rack = rack(2, &state);
    std::fs::remove_file(state.join("assets/flatcar/current/flatcar_production_pxe.vmlinuz"))
        .unwrap();
    std::fs::remove_file(state.join("assets/flatcar/current/flatcar_production_image.bin.bz2.sig"))
        .unwrap();
    // Every "BMC" is a socket of this test: any IPMI packet would land here.
    let bmc = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    bmc.set_nonblocking(true).unwrap();
    let selection = SelectionOptions {
        provision: Provision::Flatcar,
        ..SelectionOptions::default()
    };
    let mut config = Config::new(
        &state,
        rack,
        selection,
        racker_ipmi::Credentials::new("USER", "PASS"),
        racker_lokomotive::RenderOptions::new(vec![KEY.into()]),
    );
    config.bmc_overrides = (0..2)
        .map(|i| (macs(Some(i))[1], bmc.local_addr().unwrap()))
        .collect();
    config.netboot =
        racker_bootstrap::NetbootMode::Serve(NetbootEndpoints::plain(free_udp(), free_tcp()));
    let events = CollectEvents::new();
    let err = racker_bootstrap::bootstrap(&config, &events, &Decision::Cancel)
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, racker_bootstrap::Error::Preflight { .. }),
        "{text}"
    );
    for want in [
        "kernel: ",
        "flatcar_production_pxe.vmlinuz missing",
        "image signature: ",
        "no node was powered",
        "racker netboot fetch-assets",
    ] {
        assert!(text.contains(want), "{want}: {text}");
    }
    assert!(!text.contains("initrd:"), "{text}");
    let mut buf = [0u8; 512];
    assert_eq!(
        bmc.recv_from(&mut buf).map_err(|e| e.kind()).err(),
        Some(std::io::ErrorKind::WouldBlock),
        "an IPMI packet reached a BMC"
    );
    assert!(
        !events
            .events()
            .iter()
            .any(|e| matches!(e, Event::StageStarted { .. })),
        "{:#?}",
        events.events()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_kernel_fails_the_node_with_its_404_in_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let lab = lab(1, &[]).await;
    let mut config = config(&lab, rack(1, &state), &state);
    // Past the preflight (the kernel goes away later, or --skip-preflight).
    config.preflight = false;
    config.install_timeout = Duration::from_secs(120);
    std::fs::remove_file(state.join("assets/flatcar/current/flatcar_production_pxe.vmlinuz"))
        .unwrap();
    let events = CollectEvents::new();
    let started = std::time::Instant::now();
    let report = racker_bootstrap::bootstrap(&config, &events, &Decision::Cancel)
        .await
        .unwrap();
    let took = started.elapsed();
    let mac = macs(Some(0))[0];
    let NodeState::Failed { reason, .. } = &report.state.nodes[&mac].state else {
        panic!("{:?}", report.state.nodes[&mac]);
    };
    eprintln!("missing kernel: failed after {took:.2?}: {reason}");
    assert!(took < Duration::from_secs(20), "{took:?}: {reason}");
    assert!(
        reason.contains("its boot failed: iPXE script 503"),
        "{reason}"
    );
    assert!(reason.contains("got its lease"), "{reason}");
    // The refusal names what is missing and how to fetch it.
    assert!(
        reason.contains("assets/flatcar/current/flatcar_production_pxe.vmlinuz is missing"),
        "{reason}"
    );
    assert!(reason.contains("racker netboot fetch-assets"), "{reason}");
    lab.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kernel_404_after_the_script_names_the_kernel() {
    // The /ipxe script is handed out (the kernel is there), then the
    // kernel disappears before iPXE fetches it: the trail has the 404.
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let trail = racker_netboot::trail::EventTrail::in_memory([macs(Some(0))[0]]);
    let t0 = std::time::SystemTime::now();
    let mac = macs(Some(0))[0];
    trail.record(
        mac,
        racker_netboot::trail::TrailKind::Dhcp,
        "DHCPREQUEST -> DHCPACK 172.24.213.2",
        None,
        t0,
    );
    trail.record(
        mac,
        racker_netboot::trail::TrailKind::Http,
        "GET /ipxe?mac=02-00-00-01-00-00",
        Some(200),
        t0,
    );
    trail.record(
        mac,
        racker_netboot::trail::TrailKind::Http,
        "GET /assets/flatcar/current/flatcar_production_pxe.vmlinuz",
        Some(404),
        t0,
    );
    let events = trail.events(mac);
    let failure = racker_netboot::trail::fatal_failure(&events, 0).unwrap();
    assert_eq!(
        failure.label(),
        "kernel 404 (assets/flatcar/current/flatcar_production_pxe.vmlinuz missing)"
    );
    let _ = state;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reprovision_reinstalls_exactly_one_node_and_a_new_generation_reinstalls_all() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let lab = lab(3, &[]).await;
    let config = config(&lab, rack(3, &state), &state);
    let report = racker_bootstrap::bootstrap(&config, &CollectEvents::new(), &Decision::Cancel)
        .await
        .unwrap();
    assert_eq!(report.outcome, Outcome::Provisioned);
    assert_eq!(installs(&lab), [1, 1, 1]);
    let reports_dir = racker_netboot::report::reports_dir(&state);
    let report_of = |i: usize| {
        std::fs::read_to_string(reports_dir.join(format!("{}.json", macs(Some(i))[0]))).unwrap()
    };
    let before: Vec<String> = (0..3).map(report_of).collect();
    let written_at = |i: usize| {
        std::fs::metadata(reports_dir.join(format!("{}.json", macs(Some(i))[0])))
            .unwrap()
            .modified()
            .unwrap()
    };
    let written_before: Vec<_> = (0..3).map(written_at).collect();

    // Reprovision node 1: exactly it is installed again.
    let node1 = macs(Some(1))[0];
    let events = CollectEvents::new();
    let report = racker_bootstrap::reprovision(&config, &[node1], &events, &Decision::Cancel)
        .await
        .unwrap();
    assert_eq!(
        report.outcome,
        Outcome::Provisioned,
        "{:#?}",
        events.events()
    );
    assert_eq!(installs(&lab), [1, 2, 1]);
    assert_eq!(report_of(0), before[0]);
    assert_eq!(report_of(2), before[2]);
    // Node 1's report was written again (its text may be the same when
    // everything happened within one second); the others were not.
    assert_eq!(written_at(0), written_before[0]);
    assert_eq!(written_at(2), written_before[2]);
    assert_ne!(written_at(1), written_before[1]);
    for (mac, record) in &report.state.nodes {
        assert_eq!(
            record.state,
            NodeState::Active { stage: Stage::OsUp },
            "{mac}"
        );
    }
    let pxe = steps(&events.events(), Phase::PxeInstall);
    assert_eq!(pxe.len(), 3);

    // A new bootstrap (state file and cluster directory gone, the old
    // reports left behind): a new generation, every node reinstalled.
    std::fs::remove_file(racker_bootstrap::StateFile::path(&state)).unwrap();
    std::fs::remove_dir_all(&config.cluster_dir).unwrap();
    let report = racker_bootstrap::bootstrap(&config, &CollectEvents::new(), &Decision::Cancel)
        .await
        .unwrap();
    assert_eq!(report.outcome, Outcome::Provisioned);
    assert_eq!(installs(&lab), [2, 3, 2]);
    lab.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edited_rendered_file_survives_a_rerun() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let lab = lab(1, &[]).await;
    let mut config = config(&lab, rack(1, &state), &state);
    let report = racker_bootstrap::bootstrap(&config, &CollectEvents::new(), &Decision::Cancel)
        .await
        .unwrap();
    assert_eq!(report.outcome, Outcome::Provisioned);
    // The user edits a rendered file; the rerun would render it otherwise
    // (another kernel console).
    let mac = macs(Some(0))[0];
    let rel = racker_lokomotive::os_ignition_path(mac);
    let file = config.cluster_dir.join(&rel);
    let edited = std::fs::read_to_string(&file)
        .unwrap()
        .replace("ignition", "ignition ");
    std::fs::write(&file, &edited).unwrap();
    config.render.kernel_console = vec!["console=ttyS0,115200n8".into()];
    let events = CollectEvents::new();
    let report = racker_bootstrap::bootstrap(&config, &events, &Decision::Cancel)
        .await
        .unwrap();
    assert_eq!(report.outcome, Outcome::Provisioned);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), edited);
    let said = events
        .events()
        .iter()
        .any(|e| matches!(e, Event::Message(m) if m.contains(&format!("kept your edit of {rel}"))));
    assert!(said, "{:#?}", events.events());
    lab.sim.shutdown().await;
}
