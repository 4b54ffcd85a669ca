//! How fast the shared test file server answers (it serves release
//! indexes and archives to the installer's and the CLI's tests): small
//! files over keep-alive connections, and a 1 MiB archive.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use racker_testsupport::http::FileServer;

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temporary directory");
    std::fs::write(dir.path().join("index.json"), br#"{"releases":[]}"#).expect("write");
    std::fs::write(dir.path().join("archive.tar.gz"), vec![7u8; 1 << 20]).expect("write");
    let server = FileServer::start(dir.path());
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let client = reqwest::Client::new();
    let mut group = c.benchmark_group("file_server");
    group.throughput(Throughput::Elements(1));
    let index = format!("{}/index.json", server.base);
    group.bench_function("small file", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let body = client.get(&index).send().await.expect("get");
                assert_eq!(body.bytes().await.expect("body").len(), 15);
            })
        });
    });
    group.throughput(Throughput::Bytes(1 << 20));
    let archive = format!("{}/archive.tar.gz", server.base);
    group.bench_function("1 MiB archive", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let body = client.get(&archive).send().await.expect("get");
                assert_eq!(body.bytes().await.expect("body").len(), 1 << 20);
            })
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
