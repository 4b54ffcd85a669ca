//! FreeIPMI against simulated BMCs.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use racker_sim::{NodeSpec, Password, SimRack};
use racker_testsupport::require_tool;

/// Three BMCs on 127.77.<k>.2-4 sharing one port (a host range).
pub(crate) async fn ranged_rack(k: u8) -> (SimRack, u16) {
    let first = SimRack::start(
        vec![NodeSpec::new(
            [2, 0x52, 0x4B, k, 0, 2],
            SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 77, k, 2)), 0),
        )],
        "USER",
        Password::new("PASS"),
    )
    .await
    .unwrap();
    let port = first.nodes()[0].ipmi_addr().port();
    first.shutdown().await;
    let specs = (2..5)
        .map(|i| {
            NodeSpec::new(
                [2, 0x52, 0x4B, k, 0, i],
                SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 77, k, i)), port),
            )
        })
        .collect();
    (
        SimRack::start(specs, "USER", Password::new("PASS"))
            .await
            .unwrap(),
        port,
    )
}

pub(crate) async fn run(tool: &str, args: &[String]) -> String {
    let path = racker_testsupport::find_tool(tool).unwrap();
    let out = tokio::process::Command::new(path)
        .args(args)
        .kill_on_drop(true)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{tool} {args:?}: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

pub(crate) fn common(k: u8, port: u16) -> Vec<String> {
    [
        "-h",
        &format!("127.77.{k}.[2-4]:{port}"),
        "-u",
        "USER",
        "-p",
        "PASS",
        "-D",
        "LAN_2_0",
        "--session-timeout",
        "5000",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipmipower_stat_and_on_over_a_host_range() {
    if require_tool("ipmipower_stat_and_on_over_a_host_range", "ipmipower").is_none() {
        return;
    }
    let (rack, port) = ranged_rack(1).await;
    rack.nodes()[1].set_power(true);
    let mut args = common(1, port);
    args.push("--stat".into());
    let out = run("ipmipower", &args).await;
    for (i, state) in [(2, "off"), (3, "on"), (4, "off")] {
        let line = format!("127.77.1.{i}: {state}");
        assert!(out.contains(&line), "missing {line:?} in\n{out}");
    }
    let mut args = common(1, port);
    args.push("--on".into());
    run("ipmipower", &args).await;
    assert!(rack.nodes().iter().all(|n| n.snapshot().power_on));
    for suite in ["3", "17"] {
        let mut args = common(1, port);
        args.extend(["-I".to_string(), suite.to_string(), "--stat".to_string()]);
        let out = run("ipmipower", &args).await;
        assert_eq!(out.matches(": on").count(), 3, "{out}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipmi_chassis_status_over_a_host_range() {
    if require_tool("ipmi_chassis_status_over_a_host_range", "ipmi-chassis").is_none() {
        return;
    }
    let (rack, port) = ranged_rack(2).await;
    rack.nodes()[0].set_power(true);
    let mut args = common(2, port);
    args.push("--get-chassis-status".into());
    let out = run("ipmi-chassis", &args).await;
    assert_eq!(
        out.matches("System Power                        : on")
            .count(),
        1,
        "{out}"
    );
    assert_eq!(
        out.matches("System Power                        : off")
            .count(),
        2,
        "{out}"
    );
}
