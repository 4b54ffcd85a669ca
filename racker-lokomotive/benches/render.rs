//! Rendering a 1,000-node cluster (internal /20) in both modes.

use criterion::{Criterion, criterion_group, criterion_main};
use racker_inventory::{
    AddressPlan, Inventory, LocalInterface, PlanOptions, Provision, PublicIps, SelectionOptions,
    select,
};
use racker_lokomotive::{RenderOptions, render_cluster};

fn csv(n: usize) -> String {
    let mut csv = String::from("Primary, BMC, Secondary, Type, Comment\n");
    csv.push_str("02:00:00:ff:00:00, 02:00:00:ff:00:01, 02:00:00:ff:00:02, red, mgmt\n");
    for i in 0..n {
        let (hi, lo) = (i / 256, i % 256);
        csv.push_str(&format!(
            "52:54:00:{hi:02x}:{lo:02x}:01, 52:54:00:{hi:02x}:{lo:02x}:02, 52:54:00:{hi:02x}:{lo:02x}:03, red, \n"
        ));
    }
    csv
}

fn bench(c: &mut Criterion) {
    let inventory = Inventory::parse("nodes.csv", csv(1000).as_bytes()).expect("inventory");
    let management = inventory
        .management(&[LocalInterface {
            name: "eth1".into(),
            mac: "02:00:00:ff:00:02".parse().expect("mac"),
        }])
        .expect("management");
    let plan = AddressPlan::new(
        &inventory,
        &management,
        &PlanOptions {
            subnet_prefix: "172.24.208".into(),
            prefix_len: 20,
        },
    )
    .expect("plan");
    let options = RenderOptions::new(vec![
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBbenchbenchbenchbenchbenchbenchbenc bench".into(),
    ]);
    for (name, provision) in [
        ("flatcar", Provision::Flatcar),
        ("lokomotive", Provision::Lokomotive),
    ] {
        let selection = select(
            &plan,
            &SelectionOptions {
                provision,
                ..SelectionOptions::default()
            },
        )
        .expect("selection");
        let files = render_cluster(&plan, &selection, &options, &PublicIps::dhcp())
            .expect("render")
            .len();
        c.bench_function(
            &format!("render 1000-node {name} cluster ({files} files)"),
            |b| {
                b.iter(|| {
                    render_cluster(&plan, &selection, &options, &PublicIps::dhcp()).expect("render")
                })
            },
        );
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10);
    targets = bench
}
criterion_main!(benches);
