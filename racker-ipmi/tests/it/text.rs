//! `text` on real results: one operation fanned out to racker-sim's BMCs,
//! laid out the way `racker ipmi` prints it, and the JSON report.

use std::time::Duration;

use futures::StreamExt as _;
use racker_ipmi::text::{Layout, Listing, Node, Plain, Tone};
use racker_ipmi::{BmcAddress, Credentials, FanOutReport, Operation, Output, SessionOptions};
use racker_sim::{NodeSpec, SimRack};

async fn rack(n: u8) -> SimRack {
    let specs = (0..n)
        .map(|i| NodeSpec::new([0x02, 0, 0, 0, 1, i], "127.0.0.1:0".parse().unwrap()))
        .collect();
    SimRack::start(specs, "racker", racker_sim::Password::new("sim-password"))
        .await
        .expect("start racker-sim")
}

/// Run `op` against every BMC of `rack`, keyed by `node-N`.
async fn fan_out(rack: &SimRack, op: &Operation) -> Vec<racker_ipmi::FanOutResult<usize, Output>> {
    let creds = Credentials::new("racker", "sim-password");
    let opts = SessionOptions::default()
        .timeout(Duration::from_secs(3))
        .retries(3);
    let jobs: Vec<(usize, BmcAddress)> = rack
        .nodes()
        .iter()
        .enumerate()
        .map(|(i, n)| {
            (
                i,
                BmcAddress::from_ip(n.ipmi_addr().ip(), n.ipmi_addr().port()),
            )
        })
        .collect();
    let mut results: Vec<_> = racker_ipmi::fan_out_operation(jobs, &creds, &opts, op, 8)
        .collect()
        .await;
    results.sort_by_key(|r| r.key);
    results
}

fn node(r: &racker_ipmi::FanOutResult<usize, Output>) -> Node {
    let mut n = Node::new(format!("bmc-{}", r.key), r.bmc.clone());
    n.short_name = format!("node-{}", r.key);
    n
}

#[tokio::test]
async fn sensor_tables_and_consolidated_power_of_a_simulated_rack() {
    let rack = rack(3).await;
    let results = fan_out(&rack, &Operation::Sensors).await;
    let style = |tone: Tone, text: &str| format!("<{tone:?}>{text}</>");
    let op = Operation::Sensors;
    let mut blocks = Listing::new(&op, Layout::default().headed(true), &style);
    for r in &results {
        let text = blocks.push(&node(r), r);
        let mut lines = text.lines();
        assert_eq!(
            lines.next(),
            Some(format!("== bmc-{} ({}) ==", r.key, r.bmc).as_str())
        );
        assert!(
            lines
                .next()
                .unwrap()
                .starts_with("Name             | Type "),
            "{text}"
        );
        let rows: Vec<&str> = lines.take_while(|l| !l.is_empty()).collect();
        let Ok(Output::Sensors(list)) = &r.result else {
            panic!("{:?}", r.result);
        };
        assert_eq!(rows.len(), list.len());
        assert!(!rows.is_empty());
        for (row, s) in rows.iter().zip(list) {
            assert!(row.starts_with(&format!("{:<16} | ", s.name)), "{row}");
            assert_eq!(row.matches(" | ").count(), 4, "{row}");
            assert!(row.contains(&format!("<{:?}>", Tone::of_sensor(s.status))));
        }
        assert!(text.ends_with("\n\n"));
    }
    assert_eq!(blocks.finish(), "");

    // node-1 on, the others off: two consolidated groups.
    for (i, n) in rack.nodes().iter().enumerate() {
        n.set_power(i == 1);
    }
    let status = fan_out(&rack, &Operation::ChassisStatus).await;
    let op = Operation::ChassisStatus;
    let mut grouped = Listing::new(&op, Layout::default().consolidate(true), &Plain);
    for r in &status {
        assert_eq!(grouped.push(&node(r), r), "");
    }
    assert_eq!(
        grouped.finish(),
        "== node-1 ==\nChassis Power is on\n== node-[0,2] ==\nChassis Power is off\n"
    );

    // The JSON document: results in key order, each with the key's fields.
    #[derive(serde::Serialize)]
    struct Key {
        node: String,
    }
    let mut report = FanOutReport::default();
    for r in status.into_iter().rev() {
        report.push(racker_ipmi::FanOutResult {
            key: Key {
                node: format!("node-{}", r.key),
            },
            bmc: r.bmc,
            result: r.result,
            elapsed: r.elapsed,
        });
    }
    report.sort_by(|a, b| a.node.cmp(&b.node));
    let json = serde_json::to_value(&report).unwrap();
    let results = json["results"].as_array().unwrap();
    let nodes: Vec<&str> = results
        .iter()
        .map(|r| r["node"].as_str().unwrap())
        .collect();
    assert_eq!(nodes, ["node-0", "node-1", "node-2"]);
    assert_eq!(results[1]["ok"], true);
    assert_eq!(results[1]["result"]["type"], "chassis-status");
    assert_eq!(results[1]["result"]["value"]["power"], "on");
}
