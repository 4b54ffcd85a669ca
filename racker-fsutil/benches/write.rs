//! Cost of one durable atomic write (a node report or a lease table) and
//! of one symlink switch: the unit the netboot stores pay per event.
#![allow(missing_docs)]

use criterion::{Criterion, criterion_group, criterion_main};

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("report.json");
    let small = vec![b'x'; 256];
    let large = vec![b'y'; 64 * 1024];
    c.bench_function("write_atomic 256 B", |b| {
        b.iter(|| racker_fsutil::write_atomic(&path, &small, 0o644).expect("write"))
    });
    c.bench_function("write_atomic 64 KiB", |b| {
        b.iter(|| racker_fsutil::write_atomic(&path, &large, 0o644).expect("write"))
    });
    let link = dir.path().join("current");
    c.bench_function("symlink_atomic", |b| {
        b.iter(|| racker_fsutil::symlink_atomic("report.json".as_ref(), &link).expect("link"))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
