//! Measures what monitoring costs: a full snapshot, a cached snapshot read, and the counting
//! allocator against `System`. Run in release:
//!
//! ```text
//! cargo run --release -p lift-monitor --example snapshot_cost
//! ```
//!
//! The last line is the median nanoseconds per full snapshot.

// A benchmark reports its figures on stdout.
#![allow(clippy::print_stdout, clippy::print_stderr)]
// The allocator comparison calls `GlobalAlloc` directly, which is unsafe.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::time::Instant;

use lift_monitor::{CountingAlloc, Monitor, MonitorOptions, Sampler, SamplerOptions, Snapshot};

#[global_allocator]
static GLOBAL: CountingAlloc<System> = CountingAlloc::new(System);

/// The CPU time this thread has used, in nanoseconds. The machines that run this are
/// shared, so wall time measures the load as much as the code; CPU time does not count the
/// time the thread waits for a core.
fn thread_cpu_ns() -> f64 {
    match nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID) {
        Ok(t) => t.tv_sec() as f64 * 1e9 + t.tv_nsec() as f64,
        Err(_) => Instant::now().elapsed().as_nanos() as f64,
    }
}

/// The CPU time of the whole process, in nanoseconds: the thread's, and whatever work
/// it leaves to other threads (for the Go checkers, the garbage collector's).
fn process_cpu_ns() -> f64 {
    match nix::time::clock_gettime(nix::time::ClockId::CLOCK_PROCESS_CPUTIME_ID) {
        Ok(t) => t.tv_sec() as f64 * 1e9 + t.tv_nsec() as f64,
        Err(_) => Instant::now().elapsed().as_nanos() as f64,
    }
}

/// Medians per call over the rounds, in nanoseconds.
struct Medians {
    cpu: f64,
    process_cpu: f64,
    wall: f64,
}

/// Runs `f` `iterations` times per round for `rounds` rounds; returns the medians per
/// call of the thread's CPU time, the process's CPU time and the wall time.
fn median_ns(rounds: usize, iterations: u32, mut f: impl FnMut()) -> Medians {
    let mut cpu = Vec::with_capacity(rounds);
    let mut process = Vec::with_capacity(rounds);
    let mut wall = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let (start, cpu_start, process_start) = (Instant::now(), thread_cpu_ns(), process_cpu_ns());
        for _ in 0..iterations {
            f();
        }
        cpu.push((thread_cpu_ns() - cpu_start) / f64::from(iterations));
        process.push((process_cpu_ns() - process_start) / f64::from(iterations));
        wall.push(start.elapsed().as_nanos() as f64 / f64::from(iterations));
    }
    for values in [&mut cpu, &mut process, &mut wall] {
        values.sort_by(f64::total_cmp);
    }
    Medians {
        cpu: cpu[rounds / 2],
        process_cpu: process[rounds / 2],
        wall: wall[rounds / 2],
    }
}

/// An allocation-heavy pattern: a ring of 256 live blocks of varied sizes, each step
/// freeing the oldest and allocating a new one.
fn churn<A: GlobalAlloc>(alloc: &A, steps: usize) {
    const RING: usize = 256;
    let mut ring: [(*mut u8, Layout); RING] = [(std::ptr::null_mut(), Layout::new::<u8>()); RING];
    for step in 0..steps {
        let slot = step % RING;
        let (old, old_layout) = ring[slot];
        if !old.is_null() {
            // SAFETY: `old` was allocated by `alloc` with `old_layout` and is freed once.
            unsafe { alloc.dealloc(old, old_layout) };
        }
        let size = 16 + (step * 97) % 4080;
        let layout = Layout::from_size_align(size, 8).unwrap_or(Layout::new::<u64>());
        // SAFETY: `layout` has a non-zero size.
        let ptr = unsafe { alloc.alloc(layout) };
        assert!(!ptr.is_null(), "allocation failed");
        // Touch the block so the work is not optimised away.
        // SAFETY: `ptr` points to at least `size` >= 16 writable bytes.
        unsafe { ptr.write_volatile(step as u8) };
        ring[slot] = (ptr, layout);
    }
    for (ptr, layout) in ring {
        if !ptr.is_null() {
            // SAFETY: as above.
            unsafe { alloc.dealloc(ptr, layout) };
        }
    }
}

fn main() {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("cannot start a tokio runtime: {err}");
            std::process::exit(1);
        }
    };
    let _guard = runtime.enter();

    // The counting allocator against System, interleaved so that both see the same machine load.
    let counting = CountingAlloc::new(System);
    const STEPS: usize = 100_000;
    let mut system_ns = Vec::new();
    let mut counting_ns = Vec::new();
    let time = |counted: bool| {
        let start = thread_cpu_ns();
        if counted {
            churn(&counting, STEPS);
        } else {
            churn(&System, STEPS);
        }
        (thread_cpu_ns() - start) / STEPS as f64
    };
    for round in 0..41 {
        // Alternate which goes first, so that neither always runs on a heap the other warmed.
        let first_counted = round % 2 == 1;
        let a = time(first_counted);
        let b = time(!first_counted);
        let (system, counted) = if first_counted { (b, a) } else { (a, b) };
        system_ns.push(system);
        counting_ns.push(counted);
    }
    system_ns.sort_by(f64::total_cmp);
    counting_ns.sort_by(f64::total_cmp);
    let (sys, cnt) = (system_ns[20], counting_ns[20]);
    println!(
        "allocator (CPU time): System {sys:.1} ns, CountingAlloc {cnt:.1} ns per free+alloc step: overhead {:.1}% (target <= 10%)",
        (cnt / sys - 1.0) * 100.0
    );

    // A cached read of the latest snapshot.
    let monitor = match Monitor::start(MonitorOptions::default()) {
        Ok(monitor) => monitor,
        Err(err) => {
            eprintln!("cannot start the monitor: {err}");
            std::process::exit(1);
        }
    };
    let arc = median_ns(31, 100_000, || {
        black_box(monitor.snapshot().sequence);
    });
    let guard = median_ns(31, 100_000, || {
        black_box(monitor.with_snapshot(|s| s.sequence));
    });
    let (arc_cpu, arc_wall, guard_cpu, guard_wall) = (arc.cpu, arc.wall, guard.cpu, guard.wall);
    println!(
        "cached read (CPU time, wall time): {arc_cpu:.1} ns, {arc_wall:.1} ns (Arc clone); {guard_cpu:.1} ns, {guard_wall:.1} ns (borrowed) (target <= 200 ns)"
    );

    // The monitor's own tasks would count in the process's CPU time below: stop them.
    drop(monitor);

    // A full snapshot: threads, RSS, CPU, fds, rlimit, disk for one path, cgroup, tokio, allocator stats.
    let cwd = std::env::current_dir().unwrap_or_else(|_| "/".into());
    let mut sampler = match Sampler::new(&SamplerOptions::default().disk_paths(vec![cwd])) {
        Ok(sampler) => sampler,
        Err(err) => {
            eprintln!("cannot open the sampler: {err}");
            std::process::exit(1);
        }
    };
    let mut snapshot = Snapshot::empty();
    sampler.sample_into(&mut snapshot);
    assert!(
        snapshot.alloc.is_some()
            && snapshot.memory.rss_bytes.is_some()
            && snapshot.disks[0].total_bytes.is_some()
    );
    let before = lift_monitor::allocator_stats().map(|s| s.total_allocations);
    let full = median_ns(31, 2_000, || sampler.sample_into(&mut snapshot));
    let after = lift_monitor::allocator_stats().map(|s| s.total_allocations);
    let allocations = after.zip(before).map(|(a, b)| a - b).unwrap_or(0);
    println!(
        "allocations during {} full snapshots: {allocations}",
        31 * 2_000
    );
    println!(
        "full snapshot: {:.0} ns CPU time, {:.0} ns process CPU time, {:.0} ns wall time, median (target <= 10000 ns); last line: CPU time",
        full.cpu, full.process_cpu, full.wall
    );
    println!("{:.0}", full.cpu);
}
