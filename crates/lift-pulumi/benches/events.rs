//! Event parsing throughput over the whole fixture corpus (`cargo bench -p lift-pulumi --bench events`).
#![allow(
    clippy::print_stdout,
    clippy::unwrap_used,
    missing_docs,
    reason = "a benchmark"
)]

use std::path::PathBuf;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn corpus() -> Vec<Vec<u8>> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/pulumi");
    let mut files = Vec::new();
    for folder in ["pulumi-lifecycle", "pulumi-events"] {
        for entry in std::fs::read_dir(root.join(folder)).unwrap() {
            files.push(std::fs::read(entry.unwrap().path()).unwrap());
        }
    }
    files
}

fn parse_corpus(c: &mut Criterion) {
    let files = corpus();
    let bytes: usize = files.iter().map(Vec::len).sum();
    let mut group = c.benchmark_group("events");
    group.throughput(Throughput::Bytes(bytes as u64));
    group.sample_size(20);
    group.bench_function("parse_corpus", |b| {
        b.iter(|| {
            let mut n = 0;
            for file in &files {
                n += lift_pulumi::parse_events(file).events.len();
            }
            assert_eq!(n, 18649);
        });
    });
    group.finish();
}

criterion_group!(benches, parse_corpus);
criterion_main!(benches);
