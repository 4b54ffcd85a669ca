//! `racker plan` (table and JSON) for a 1,000-node rack, end to end through
//! the binary: inventory parsing, the address plan, the selection and the
//! rendering of 1,000 rows. Numbers in the issue notes; no targets here.

use std::path::Path;
use std::process::Command;

use criterion::{Criterion, criterion_group, criterion_main};

const NODES: usize = 1_000;

fn rack(dir: &Path) {
    let oem = dir.join("oem");
    std::fs::create_dir_all(&oem).unwrap();
    let mut csv = String::from(
        "Primary MAC address, BMC MAC address, Secondary MAC address, Node Type, Comments\n",
    );
    csv.push_str("02:00:00:00:00:00, 02:00:00:00:00:01, 02:00:00:00:00:02, mgmt, management\n");
    for i in 0..NODES {
        let (hi, lo) = (i / 256, i % 256);
        csv.push_str(&format!(
            "02:10:00:00:{hi:02x}:{lo:02x}, 02:20:00:00:{hi:02x}:{lo:02x}, 02:30:00:00:{hi:02x}:{lo:02x}, {}, rack slot {i}\n",
            if i % 3 == 0 { "red" } else { "purple" }
        ));
    }
    std::fs::write(oem.join("nodes.csv"), csv).unwrap();
    std::fs::write(oem.join("ipmi_user"), "admin\n").unwrap();
    std::fs::write(oem.join("ipmi_password"), "secret\n").unwrap();
    for (name, mac) in [("eth0", "02:00:00:00:00:00"), ("eth1", "02:00:00:00:00:02")] {
        let d = dir.join("net").join(name);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("address"), format!("{mac}\n")).unwrap();
    }
}

fn plan(dir: &Path, extra: &[&str]) -> usize {
    let out = Command::new(env!("CARGO_BIN_EXE_racker"))
        .env_clear()
        .env("RACKER_OEM_DIR", dir.join("oem"))
        .env("RACKER_STATE_DIR", dir.join("state"))
        .env("RACKER_SYS_CLASS_NET", dir.join("net"))
        .args(["plan", "--prefix-length", "20", "--provision", "lokomotive"])
        .args(extra)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    out.stdout.len()
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    rack(dir.path());
    // One row per node in both shapes.
    assert!(plan(dir.path(), &[]) > NODES * 60);
    let mut group = c.benchmark_group("plan_1000_nodes");
    group.sample_size(10);
    group.bench_function("table", |b| b.iter(|| plan(dir.path(), &[])));
    group.bench_function("json", |b| {
        b.iter(|| plan(dir.path(), &["--output", "json"]))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
