//! The `racker plan` view of a 1,000-node rack: building the document,
//! its JSON and its table rows.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use racker_bootstrap::Rack;
use racker_bootstrap::plan::PlanView;
use racker_inventory::{
    AddressPlan, Inventory, LocalInterface, MacAddr, PlanOptions, SelectionOptions, select,
};

const NODES: u16 = 1000;

fn mac(kind: u8, i: u16) -> MacAddr {
    let [hi, lo] = i.to_be_bytes();
    MacAddr::new([2, 0, 0, kind, hi, lo])
}

fn rack() -> Rack {
    let mut csv = format!(
        "{}\n02:00:00:01:ff:ff, 02:00:00:02:ff:ff, 02:00:00:03:ff:ff, mgmt, management\n",
        racker_inventory::NODES_CSV_HEADER
    );
    for i in 0..NODES {
        let kind = if i % 2 == 0 { "red" } else { "blue" };
        csv.push_str(&format!(
            "{}, {}, {}, {kind}, node\n",
            mac(1, i),
            mac(2, i),
            mac(3, i)
        ));
    }
    let inventory = Inventory::parse("nodes.csv", csv.as_bytes()).unwrap();
    let management = inventory
        .management(&[LocalInterface {
            name: "eth1".into(),
            mac: "02:00:00:03:ff:ff".parse().unwrap(),
        }])
        .unwrap();
    let options = PlanOptions {
        subnet_prefix: "10.20.0".into(),
        prefix_len: 20,
    };
    let plan = AddressPlan::new(&inventory, &management, &options).unwrap();
    Rack::new(inventory, management, plan)
}

fn plan(c: &mut Criterion) {
    let rack = rack();
    let selection = select(&rack.plan, &SelectionOptions::default()).unwrap();
    c.bench_function("plan view: 1000 nodes, JSON and rows", |b| {
        b.iter(|| {
            let view = PlanView::new(&rack, &selection);
            black_box((serde_json::to_string(&view).unwrap(), view.rows()))
        });
    });
}

criterion_group!(benches, plan);
criterion_main!(benches);
