//! Prints event parsing throughput over the fixture corpus in MB/s.
//!
//! `cargo run --release -p lift-pulumi --example event_throughput`
#![allow(
    clippy::print_stdout,
    clippy::unwrap_used,
    reason = "an example that prints its figure"
)]

use std::path::PathBuf;
use std::time::Instant;

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures");
    let mut files = Vec::new();
    for folder in ["pulumi-lifecycle", "pulumi-events"] {
        for entry in std::fs::read_dir(root.join(folder)).unwrap() {
            files.push(std::fs::read(entry.unwrap().path()).unwrap());
        }
    }
    let bytes: usize = files.iter().map(Vec::len).sum();
    let rounds = 20;
    let mut best = f64::MAX;
    let mut events = 0;
    for _ in 0..rounds {
        let start = Instant::now();
        events = 0;
        for file in &files {
            events += lift_pulumi::parse_events(file).events.len();
        }
        best = best.min(start.elapsed().as_secs_f64());
    }
    println!(
        "parsed {events} events in {} files ({:.1} MB) in {:.1} ms: {:.0} MB/s (best of {rounds})",
        files.len(),
        bytes as f64 / 1e6,
        best * 1e3,
        bytes as f64 / 1e6 / best
    );
}
