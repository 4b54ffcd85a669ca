//! Throughput of writing a reproducible archive and unpacking it safely.

use std::fs;
use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use racker_installer::{Sha256Digest, unpack_archive, write_archive};

/// A release-like tree: one 8 MiB binary (semi-compressible) and 200
/// small files.
fn tree(root: &std::path::Path) -> u64 {
    fs::create_dir_all(root.join("bin")).unwrap();
    fs::create_dir_all(root.join("share")).unwrap();
    let mut big = vec![0u8; 8 << 20];
    let mut x: u32 = 12345;
    for (i, b) in big.iter_mut().enumerate() {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        *b = if i % 4 == 0 {
            (x >> 24) as u8
        } else {
            (i % 61) as u8
        };
    }
    fs::write(root.join("bin/racker"), &big).unwrap();
    let mut total = big.len() as u64;
    for i in 0..200 {
        let content = format!("file {i}\n").repeat(50);
        total += content.len() as u64;
        fs::write(root.join(format!("share/f{i:03}")), content).unwrap();
    }
    total
}

fn bench(c: &mut Criterion) {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    let bytes = tree(&root);
    let mut archive = Vec::new();
    write_archive(&root, 0, &mut archive).unwrap();

    let mut group = c.benchmark_group("archive");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(bytes));
    group.bench_function("write_8MiB_tree", |b| {
        b.iter(|| {
            let mut out = Vec::with_capacity(archive.len());
            write_archive(&root, 0, &mut out).unwrap();
            black_box(out)
        })
    });
    group.bench_function("unpack_8MiB_tree", |b| {
        let mut n = 0u32;
        b.iter(|| {
            n += 1;
            let dest = tmp.path().join(format!("out{n}"));
            fs::create_dir(&dest).unwrap();
            unpack_archive(&archive[..], &dest, "bench").unwrap();
            fs::remove_dir_all(&dest).unwrap();
        })
    });
    group.bench_function("sha256_archive", |b| {
        b.iter(|| black_box(Sha256Digest::of(&archive)))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
