//! Append throughput of `FileAuditSink` under each durability policy.
//!
//! `cargo run --release -p lift-audit --example append_bench [EVENTS] [interval|group|every]`
//! Many tasks append at once, as a busy service would; group commit turns
//! their waiting records into one write (and one fsync) per batch.

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a benchmark prints its figures"
)]

use std::time::{Duration, Instant};

use lift_audit::{AuditKey, Durability, FileAuditSink, SinkOptions};
use lift_core::{Actor, AuditEvent, Resource};

/// Concurrent producers: `LIFT_AUDIT_BENCH_PRODUCERS`, 1024 by default.
fn producers() -> u64 {
    std::env::var("LIFT_AUDIT_BENCH_PRODUCERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024)
}

fn checkpoint_every(durability: Durability) -> u64 {
    match durability {
        Durability::Interval(d) if d.as_secs() >= 3600 => 0,
        _ => 10_000,
    }
}

async fn run(
    label: &str,
    durability: Durability,
    events: u64,
) -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let log = dir.path().join("audit.jsonl");
    let key = AuditKey::from_bytes(b"benchmark audit key, 32 bytes or more")?;
    let sink = FileAuditSink::open(
        SinkOptions::new(&log)
            .key(Some(key))
            .durability(durability)
            .checkpoint_every(checkpoint_every(durability)),
    )
    .await?;
    let template = AuditEvent::new(
        "secrets",
        "rotate.finish",
        Resource::new("secret", "prod/db/password"),
    )
    .actor(Actor::service("rotator"))
    .correlation_id("5f0c2f6e-rotation")
    .detail("version_id", "4d3c2b1a-0000-4000-8000-000000000000");
    let started = Instant::now();
    let mut tasks = Vec::new();
    let producers = producers();
    for _ in 0..producers {
        let sink = sink.clone();
        let template = template.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..events / producers {
                sink.append(template.clone()).await?;
            }
            Ok::<_, lift_audit::Error>(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    // Every record is acknowledged under the policy here; closing adds the
    // final fsync and checkpoint, reported on its own.
    let elapsed = started.elapsed();
    let closing = Instant::now();
    sink.close().await?;
    let close = closing.elapsed();
    let written = events / producers * producers;
    let bytes = std::fs::metadata(&log)?.len();
    println!(
        "{label:<44} {written:>8} events in {:>7.3} s = {:>9.0} events/s ({:.1} MB/s, {} bytes/record); close {:.0} ms",
        elapsed.as_secs_f64(),
        written as f64 / elapsed.as_secs_f64(),
        bytes as f64 / elapsed.as_secs_f64() / 1e6,
        bytes / written.max(1),
        close.as_secs_f64() * 1e3,
    );
    Ok(())
}

/// Callers that hand over 100 events at a time through `append_all`.
async fn run_groups(
    label: &str,
    durability: Durability,
    events: u64,
) -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let log = dir.path().join("audit.jsonl");
    let key = AuditKey::from_bytes(b"benchmark audit key, 32 bytes or more")?;
    let options = SinkOptions::new(&log).key(Some(key)).durability(durability);
    let sink = FileAuditSink::open(options).await?;
    let template = AuditEvent::new(
        "secrets",
        "rotate.finish",
        Resource::new("secret", "prod/db/password"),
    )
    .actor(Actor::service("rotator"))
    .correlation_id("5f0c2f6e-rotation")
    .detail("version_id", "4d3c2b1a-0000-4000-8000-000000000000");
    let started = Instant::now();
    let producers = 8u64;
    let mut tasks = Vec::new();
    for _ in 0..producers {
        let sink = sink.clone();
        let group = vec![template.clone(); 100];
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
    let elapsed = started.elapsed();
    let closing = Instant::now();
    sink.close().await?;
    let close = closing.elapsed();
    let written = events / producers / 100 * producers * 100;
    println!(
        "{label:<44} {written:>8} events in {:>7.3} s = {:>9.0} events/s; close {:.0} ms",
        elapsed.as_secs_f64(),
        written as f64 / elapsed.as_secs_f64(),
        close.as_secs_f64() * 1e3,
    );
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let events: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        println!(
            "keyed chain (HMAC-SHA256), {} concurrent producers",
            producers()
        );
        let only = std::env::args().nth(2).unwrap_or_default();
        if only.is_empty() || only == "interval" {
            let policy = Durability::Interval(Duration::from_secs(1));
            run(
                "group commit, fsync every 1 s (no per-record)",
                policy,
                events,
            )
            .await?;
        }
        if only == "nosync" {
            let policy = Durability::Interval(Duration::from_secs(3600));
            run("group commit, no fsync during the run", policy, events).await?;
        }
        if only.is_empty() || only == "interval" {
            let policy = Durability::Interval(Duration::from_secs(1));
            run_groups("append_all, groups of 100, fsync every 1 s", policy, events).await?;
        }
        if only.is_empty() || only == "group" {
            run(
                "group commit, fsync per batch",
                Durability::GroupCommit,
                events / 4,
            )
            .await?;
        }
        if only.is_empty() || only == "every" {
            run("fsync every record", Durability::EveryRecord, events / 100).await?;
        }
        Ok(())
    })
}
