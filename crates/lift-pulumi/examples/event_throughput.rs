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

fn thread_cpu_seconds() -> f64 {
    let t = nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID).unwrap();
    t.tv_sec() as f64 + t.tv_nsec() as f64 / 1e9
}

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/pulumi");
    let mut files = Vec::new();
    for folder in ["pulumi-lifecycle", "pulumi-events"] {
        for entry in std::fs::read_dir(root.join(folder)).unwrap() {
            files.push(std::fs::read(entry.unwrap().path()).unwrap());
        }
    }
    let bytes: usize = files.iter().map(Vec::len).sum();
    let rounds = 20;
    let mut best = f64::MAX;
    let mut best_cpu = f64::MAX;
    let mut events = 0;
    for _ in 0..rounds {
        let cpu_start = thread_cpu_seconds();
        let start = Instant::now();
        events = 0;
        for file in &files {
            events += lift_pulumi::parse_events(file).events.len();
        }
        best = best.min(start.elapsed().as_secs_f64());
        best_cpu = best_cpu.min(thread_cpu_seconds() - cpu_start);
    }
    let mb = bytes as f64 / 1e6;
    // On a shared machine the wall clock includes time other processes had
    // the CPU; the thread's CPU time is what parsing itself costs.
    println!(
        "parsed {events} events in {} files ({mb:.1} MB): {:.0} MB/s wall clock ({:.1} ms), {:.0} MB/s per CPU second ({:.1} ms CPU), best of {rounds}",
        files.len(),
        mb / best,
        best * 1e3,
        mb / best_cpu,
        best_cpu * 1e3,
    );
}
