//! Parse + plan benchmarks: a 10,000-row nodes.csv (/17) and a 63-node rack.
#![allow(missing_docs)]

use criterion::{Criterion, criterion_group, criterion_main};
use racker_inventory::{
    AddressPlan, Inventory, LocalInterface, PlanOptions, SelectionOptions, select,
};

fn rack_csv(n: usize) -> String {
    let mut text = String::from(racker_inventory::NODES_CSV_HEADER);
    text.push('\n');
    text.push_str("00:00:00:00:ff:00, 00:00:00:00:ff:01, 00:00:00:00:ff:02, mgmt, management\n");
    for i in (0..n).rev() {
        let [a, b] = (i as u16).to_be_bytes();
        text.push_str(&format!(
            "02:00:00:{a:02x}:{b:02x}:01, 02:00:00:{a:02x}:{b:02x}:02, 02:00:00:{a:02x}:{b:02x}:03, type{}, rack row {}\n",
            i % 4,
            i / 40
        ));
    }
    text
}

fn parse_and_plan(text: &str, options: &PlanOptions) -> usize {
    let inv = Inventory::parse("nodes.csv", text.as_bytes()).expect("valid");
    let eth1 = LocalInterface {
        name: "eth1".into(),
        mac: "00:00:00:00:ff:02".parse().expect("mac"),
    };
    let m = inv.management(&[eth1]).expect("management");
    let plan = AddressPlan::new(&inv, &m, options).expect("plan");
    let sel = select(&plan, &SelectionOptions::default()).expect("select");
    sel.nodes().len()
}

fn bench(c: &mut Criterion) {
    let big = rack_csv(10_000);
    let big_opts = PlanOptions {
        subnet_prefix: "10.0.0".into(),
        prefix_len: 17,
    };
    c.bench_function("parse+plan+select 10k rows /17", |b| {
        b.iter(|| parse_and_plan(std::hint::black_box(&big), &big_opts))
    });
    let rack = rack_csv(63);
    c.bench_function("parse+plan+select 63-node rack /24", |b| {
        b.iter(|| parse_and_plan(std::hint::black_box(&rack), &PlanOptions::default()))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
