//! Append throughput of `FileAuditSink` under each durability policy.
//!
//! `cargo run --release -p lift-audit --example append_bench [EVENTS] [interval|nosync|group|every]`
//!
//! Many tasks append at once, as a busy service would, each through
//! `Arc<dyn AuditSink>::record` (the way lift's crates hold their sink),
//! passing its own copy of a typical event (about 430 bytes of JSON). Group commit turns their waiting records into one
//! write (and, by policy, one fsync) per batch.
//!
//! Each policy runs `LIFT_AUDIT_BENCH_RUNS` times (5 by default); the figure
//! is the median, with the range beside it. The time runs until the last
//! record is acknowledged under the policy; `close` (the final fsync and
//! checkpoint) is reported on its own. Other knobs:
//! `LIFT_AUDIT_BENCH_PRODUCERS` (concurrent tasks, 1024 by default) and
//! `LIFT_AUDIT_BENCH_WORKERS` (tokio worker threads, one per core by default).

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a benchmark prints its figures"
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use lift_audit::{AuditKey, Durability, FileAuditSink, SinkOptions};
use lift_core::{Actor, AuditEvent, AuditSink, Resource};

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn template() -> AuditEvent {
    AuditEvent::new(
        "secrets",
        "rotate.finish",
        Resource::new("secret", "prod/db/password"),
    )
    .actor(Actor::service("rotator"))
    .correlation_id("5f0c2f6e-rotation")
    .detail("version_id", "4d3c2b1a-0000-4000-8000-000000000000")
}

async fn open(
    durability: Durability,
) -> Result<(tempfile::TempDir, FileAuditSink), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let key = AuditKey::from_bytes(b"benchmark audit key, 32 bytes or more")?;
    let checkpoint_every = match durability {
        Durability::Interval(d) if d.as_secs() >= 3600 => 0,
        _ => 10_000,
    };
    let sink = FileAuditSink::open(
        SinkOptions::new(dir.path().join("audit.jsonl"))
            .key(Some(key))
            .durability(durability)
            .checkpoint_every(checkpoint_every),
    )
    .await?;
    Ok((dir, sink))
}

/// What one run measured.
struct Run {
    events: u64,
    seconds: f64,
    bytes: u64,
    close_ms: f64,
    /// Process CPU time (all threads, user and system) until the last acknowledgement.
    cpu_seconds: f64,
}

/// This process's CPU time so far, user plus system, from `/proc/self/stat`.
fn process_cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15, in clock ticks of 1/100 s on Linux.
    (ticks(11) + ticks(12)) / 100.0
}

impl Run {
    fn rate(&self) -> f64 {
        self.events as f64 / self.seconds
    }
}

/// Measures up to now (every record acknowledged), then closes the sink.
async fn finish(
    dir: &tempfile::TempDir,
    sink: &FileAuditSink,
    events: u64,
    started: Instant,
    cpu: f64,
) -> Result<Run, Box<dyn std::error::Error>> {
    let seconds = started.elapsed().as_secs_f64();
    let cpu_seconds = process_cpu_seconds() - cpu;
    let closing = Instant::now();
    sink.close().await?;
    Ok(Run {
        events,
        seconds,
        bytes: std::fs::metadata(dir.path().join("audit.jsonl"))?.len(),
        close_ms: closing.elapsed().as_secs_f64() * 1e3,
        cpu_seconds,
    })
}

/// One `record()` per event from many concurrent tasks.
async fn run_records(
    durability: Durability,
    events: u64,
) -> Result<Run, Box<dyn std::error::Error>> {
    let (dir, sink) = open(durability).await?;
    let template = template();
    let producers = env_number("LIFT_AUDIT_BENCH_PRODUCERS", 1024).max(1);
    let cpu = process_cpu_seconds();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..producers {
        // Through the trait object, as lift's crates hold their sink.
        let sink: Arc<dyn AuditSink> = Arc::new(sink.clone());
        let template = template.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..events / producers {
                sink.record(template.clone()).await?;
            }
            Ok::<_, lift_core::Error>(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    finish(&dir, &sink, events / producers * producers, started, cpu).await
}

/// Eight tasks handing over 100 events at a time through `append_all`.
async fn run_groups(
    durability: Durability,
    events: u64,
) -> Result<Run, Box<dyn std::error::Error>> {
    let (dir, sink) = open(durability).await?;
    let producers = 8u64;
    let cpu = process_cpu_seconds();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..producers {
        let sink = sink.clone();
        let group = vec![template(); 100];
        tasks.push(tokio::spawn(async move {
            for _ in 0..events / producers / 100 {
                sink.append_all(&group).await?;
            }
            Ok::<_, lift_audit::Error>(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    finish(
        &dir,
        &sink,
        events / producers / 100 * producers * 100,
        started,
        cpu,
    )
    .await
}

async fn report<F, Fut>(
    label: &str,
    runs: u64,
    mut once: F,
) -> Result<(), Box<dyn std::error::Error>>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Run, Box<dyn std::error::Error>>>,
{
    let mut rates = Vec::new();
    for i in 1..=runs {
        let run = once().await?;
        println!(
            "  {label} run {i}: {} events in {:.3} s = {:.0} events/s ({:.1} MB/s, {} bytes/record), {:.2} us CPU/event; close {:.0} ms",
            run.events,
            run.seconds,
            run.rate(),
            run.bytes as f64 / run.seconds / 1e6,
            run.bytes / run.events.max(1),
            run.cpu_seconds * 1e6 / run.events.max(1) as f64,
            run.close_ms,
        );
        rates.push(run.rate());
    }
    rates.sort_by(f64::total_cmp);
    let median = rates[rates.len() / 2];
    println!(
        "{label}: median {median:.0} events/s over {runs} runs (range {:.0}-{:.0})",
        rates[0],
        rates[rates.len() - 1]
    );
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let events = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000u64);
    let only = std::env::args().nth(2).unwrap_or_default();
    let runs = env_number("LIFT_AUDIT_BENCH_RUNS", 5).max(1);
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(workers) = std::env::var("LIFT_AUDIT_BENCH_WORKERS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        builder.worker_threads(workers);
    }
    let runtime = builder.enable_all().build()?;
    runtime.block_on(async {
        println!(
            "keyed chain (HMAC-SHA256), {} concurrent producers",
            env_number("LIFT_AUDIT_BENCH_PRODUCERS", 1024)
        );
        let second = Durability::Interval(Duration::from_secs(1));
        if only.is_empty() || only == "interval" {
            report(
                "group commit, fsync every 1 s, record() per event",
                runs,
                || run_records(second, events),
            )
            .await?;
            report("append_all in groups of 100, fsync every 1 s", runs, || {
                run_groups(second, events)
            })
            .await?;
        }
        if only == "nosync" {
            let never = Durability::Interval(Duration::from_secs(3600));
            report("group commit, no fsync during the run", runs, || {
                run_records(never, events)
            })
            .await?;
        }
        if only.is_empty() || only == "group" {
            report("group commit, fsync per batch", runs, || {
                run_records(Durability::GroupCommit, events / 4)
            })
            .await?;
        }
        if only.is_empty() || only == "every" {
            report("fsync every record", runs.min(2), || {
                run_records(Durability::EveryRecord, events / 100)
            })
            .await?;
        }
        Ok(())
    })
}
