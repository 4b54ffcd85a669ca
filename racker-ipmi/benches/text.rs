//! Rendering the results of one operation against 1,000 BMCs: the
//! ipmitool-layout sensor tables (blocks, and consolidated into host
//! ranges) and the `ipmi` JSON document. No BMC involved: the results are
//! built in memory.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use racker_ipmi::sdr::{SensorReading, SensorStatus, Thresholds};
use racker_ipmi::text::{Layout, Listing, Node, Plain};
use racker_ipmi::{BmcAddress, FanOutReport, FanOutResult, Operation, Output};

const BMCS: usize = 1_000;

/// What the caller knows about a BMC (flattened into each JSON result).
#[derive(serde::Serialize)]
struct Key {
    node: String,
}

fn sensors(i: usize) -> Vec<SensorReading> {
    [
        "CPU1 Temp",
        "CPU2 Temp",
        "Inlet Temp",
        "FAN1",
        "FAN2",
        "12V",
        "3.3V",
        "PSU1 Power",
    ]
    .iter()
    .enumerate()
    .map(|(n, name)| SensorReading {
        record_id: n as u16 + 1,
        number: 0x30 + n as u8,
        name: (*name).into(),
        sensor_type: "Temperature".into(),
        type_code: 1,
        reading: Some(40.0 + (i % 7) as f64 + n as f64 * 0.25),
        unit: "degrees C".into(),
        status: if i.is_multiple_of(50) && n == 0 {
            SensorStatus::Warning
        } else {
            SensorStatus::Ok
        },
        states: 0,
        thresholds: Thresholds {
            upper_non_critical: Some(85.0),
            upper_critical: Some(90.0),
            upper_non_recoverable: Some(95.0),
            ..Thresholds::default()
        },
    })
    .collect()
}

fn results() -> Vec<(Node, FanOutResult<Key, Output>)> {
    (0..BMCS)
        .map(|i| {
            let bmc = BmcAddress::new(format!("10.1.{}.{}", i / 250, i % 250 + 1), 623);
            let mut node = Node::new(
                format!("02:52:4b:01:{:02x}:{:02x}", i / 256, i % 256),
                bmc.clone(),
            );
            node.short_name = format!("node-{i}");
            let r = FanOutResult {
                key: Key {
                    node: node.short_name.clone(),
                },
                bmc,
                result: Ok(Output::Sensors(sensors(i))),
                elapsed: Duration::from_millis(3),
            };
            (node, r)
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let all = results();
    let op = Operation::Sensors;
    for (name, layout) in [
        ("text/sensors_1000_blocks", Layout::default().headed(true)),
        (
            "text/sensors_1000_consolidated",
            Layout::default().consolidate(true),
        ),
        (
            "text/sensors_1000_one_line",
            Layout::default().one_line(true),
        ),
    ] {
        c.bench_function(name, |b| {
            b.iter(|| {
                let mut listing = Listing::new(&op, layout, &Plain);
                let mut bytes = 0;
                for (node, r) in &all {
                    bytes += listing.push(node, r).len();
                }
                bytes + listing.finish().len()
            })
        });
    }
    c.bench_function("json/sensors_1000_report", |b| {
        b.iter_batched(
            || {
                let mut report = FanOutReport::default();
                for (_, r) in results() {
                    report.push(r);
                }
                report
            },
            |mut report| {
                report.sort_by(|a, b| a.node.cmp(&b.node));
                serde_json::to_vec(&report).unwrap().len()
            },
            criterion::BatchSize::LargeInput,
        )
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
