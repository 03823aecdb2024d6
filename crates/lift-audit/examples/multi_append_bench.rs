//! Append throughput of several processes sharing one audit log.
//!
//! `cargo run --release -p lift-audit --example multi_append_bench [EVENTS_PER_PROCESS] [PROCESSES] [group|interval]`
//!
//! Starts `PROCESSES` (4 by default) copies of itself, each appending
//! `EVENTS_PER_PROCESS` (100,000 by default) typical events to the same keyed
//! log through `Arc<dyn AuditSink>::record` from 256 concurrent tasks, under
//! group commit (every acknowledged record fsynced; the default) or a 1 s
//! fsync interval. Each process takes the log's lock per batch, catches up
//! with the records the others appended (checking each one's hash) and
//! appends its own. The figure is the total number of events acknowledged
//! by all processes divided by the time from the first start to the last
//! acknowledgement; the log is then verified.

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a benchmark prints its figures"
)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lift_audit::{AuditKey, Durability, FileAuditSink, SinkOptions, VerifyOptions, verify_with};
use lift_core::{Actor, AuditEvent, AuditSink, Resource};

const CHILD_ENV: &str = "LIFT_AUDIT_MULTI_BENCH_CHILD";
const KEY: &[u8] = b"benchmark audit key, 32 bytes or more";
const PRODUCERS: u64 = 256;

fn template(process: u64) -> AuditEvent {
    AuditEvent::new(
        "secrets",
        "rotate.finish",
        Resource::new("secret", "prod/db/password"),
    )
    .actor(Actor::service(format!("rotator-{process}")))
    .correlation_id("5f0c2f6e-rotation")
    .detail("version_id", "4d3c2b1a-0000-4000-8000-000000000000")
}

fn durability(policy: &str) -> Durability {
    match policy {
        "interval" => Durability::Interval(Duration::from_secs(1)),
        _ => Durability::GroupCommit,
    }
}

/// One writer process: appends its events, prints `done <seconds>` when the last is acknowledged.
fn child(
    log: &str,
    events: u64,
    process: u64,
    policy: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let sink = FileAuditSink::open(
            SinkOptions::new(log)
                .key(Some(AuditKey::from_bytes(KEY)?))
                .durability(durability(policy)),
        )
        .await?;
        let sink: Arc<dyn AuditSink> = Arc::new(sink);
        let started = Instant::now();
        let mut tasks = Vec::new();
        for p in 0..PRODUCERS {
            let sink = Arc::clone(&sink);
            let event = template(process);
            let share = events / PRODUCERS + u64::from(p < events % PRODUCERS);
            tasks.push(tokio::spawn(async move {
                for _ in 0..share {
                    sink.record(event.clone()).await?;
                }
                Ok::<(), lift_core::Error>(())
            }));
        }
        for task in tasks {
            task.await??;
        }
        println!("done {:.6}", started.elapsed().as_secs_f64());
        sink.flush().await?;
        Ok(())
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let events: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let processes: u64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(4);
    let policy = args.get(3).map_or("group", String::as_str).to_owned();
    if let Ok(log) = std::env::var(CHILD_ENV) {
        let process = std::env::var("LIFT_AUDIT_MULTI_BENCH_ID")?.parse()?;
        return child(&log, events, process, &policy);
    }
    let dir = tempfile::tempdir()?;
    let log = dir.path().join("audit.jsonl");
    let started = Instant::now();
    let mut children = Vec::new();
    for process in 0..processes {
        children.push(
            Command::new(std::env::current_exe()?)
                .args([events.to_string(), processes.to_string(), policy.clone()])
                .env(CHILD_ENV, &log)
                .env("LIFT_AUDIT_MULTI_BENCH_ID", process.to_string())
                .stdout(Stdio::piped())
                .spawn()?,
        );
    }
    let mut last_ack = Duration::ZERO;
    for mut child in children {
        let stdout = child.stdout.take().ok_or("no stdout")?;
        for line in BufReader::new(stdout).lines() {
            if line?.starts_with("done ") {
                last_ack = last_ack.max(started.elapsed());
            }
        }
        let status = child.wait()?;
        if !status.success() {
            return Err(format!("a writer process failed: {status}").into());
        }
    }
    let total = events * processes;
    let bytes = std::fs::metadata(&log)?.len();
    let verify_started = Instant::now();
    let report = verify_with(
        std::slice::from_ref(&log),
        &VerifyOptions {
            key: Some(AuditKey::from_bytes(KEY)?),
            ..VerifyOptions::default()
        },
    )?;
    if !report.intact || report.records_checked < total {
        return Err(format!("the shared log does not verify: {:?}", report.failure).into());
    }
    println!(
        "{processes} processes x {events} events, {policy}: {:.0} events/s in total ({:.2} s to the last acknowledgement, {} bytes, {} records verified intact in {:.2} s)",
        total as f64 / last_ack.as_secs_f64(),
        last_ack.as_secs_f64(),
        bytes,
        report.records_checked,
        verify_started.elapsed().as_secs_f64()
    );
    Ok(())
}
