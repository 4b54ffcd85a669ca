//! Bootstrap state transitions and event fan-out for a 1,000-node rack.

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use racker_bootstrap::{
    BootstrapState, CollectEvents, Event, EventSink, NodeEvent, Phase, Stage, StepResult,
};
use racker_inventory::MacAddr;

const NODES: u16 = 1000;

fn mac(kind: u8, i: u16) -> MacAddr {
    let [hi, lo] = i.to_be_bytes();
    MacAddr::new([2, 0, 0, kind, hi, lo])
}

fn rack() -> BootstrapState {
    let mut s = BootstrapState::new("flatcar", Path::new("/cluster"));
    for i in 0..NODES {
        s.ensure_node(mac(1, i), mac(2, i), &format!("node-{i}"), 0);
    }
    s
}

fn transitions(c: &mut Criterion) {
    let base = rack();
    c.bench_function("state: 1000 nodes planned -> joined", |b| {
        b.iter(|| {
            let mut s = base.clone();
            for (t, stage) in Stage::ALL.iter().skip(1).enumerate() {
                for i in 0..NODES {
                    s.apply(mac(1, i), &NodeEvent::Reached(*stage), t as u64)
                        .unwrap();
                }
            }
            black_box(s)
        });
    });
    c.bench_function("state: 1000 nodes fail, reset, exclude", |b| {
        b.iter(|| {
            let mut s = base.clone();
            for i in 0..NODES {
                let m = mac(1, i);
                s.apply(m, &NodeEvent::Reached(Stage::Installed), 1)
                    .unwrap();
                s.apply(m, &NodeEvent::Failed("no OS up".into()), 2)
                    .unwrap();
                s.apply(m, &NodeEvent::Reset, 3).unwrap();
                s.apply(m, &NodeEvent::Exclude, 4).unwrap();
            }
            black_box(s)
        });
    });
    let mut done = rack();
    for i in 0..NODES {
        done.apply(mac(1, i), &NodeEvent::Reached(Stage::OsUp), 1)
            .unwrap();
    }
    c.bench_function("state: 1000 nodes to JSON and back", |b| {
        b.iter(|| {
            let json = serde_json::to_vec_pretty(black_box(&done)).unwrap();
            black_box(serde_json::from_slice::<BootstrapState>(&json).unwrap())
        });
    });
}

fn steps() -> Vec<Event> {
    (0..NODES)
        .map(|i| Event::NodeStep {
            phase: Phase::PxeInstall,
            node: mac(1, i),
            done: usize::from(i) + 1,
            total: usize::from(NODES),
            result: StepResult::Ok,
            line: format!("{} node-{i} installed", mac(1, i)),
        })
        .collect()
}

fn fan_out(c: &mut Criterion) {
    let events = steps();
    c.bench_function("events: 1000 node steps to a collector", |b| {
        b.iter(|| {
            let sink = CollectEvents::new();
            for e in &events {
                sink.event(e);
            }
            black_box(sink)
        });
    });
    c.bench_function(
        "events: 1000 node steps to 3 sinks (collector, channel, closure)",
        |b| {
            b.iter(|| {
                let collect = CollectEvents::new();
                let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
                let counter = std::sync::atomic::AtomicUsize::new(0);
                let count = |e: &Event| {
                    if matches!(e, Event::NodeStep { result, .. } if result.is_ok()) {
                        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                };
                let sinks: [&dyn EventSink; 3] = [&collect, &tx, &count];
                for e in &events {
                    sinks.event(e);
                }
                let mut received = 0;
                while rx.try_recv().is_ok() {
                    received += 1;
                }
                black_box((collect, received, counter))
            });
        },
    );
}

criterion_group!(benches, transitions, fan_out);
criterion_main!(benches);
