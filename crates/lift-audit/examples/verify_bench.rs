//! Verify throughput on a large log, next to `openssl dgst -sha256` over the same file.
//!
//! `cargo run --release -p lift-audit --example verify_bench [MEGABYTES]` (default 1024).
//! The log is generated in a temporary directory and deleted afterwards.

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a benchmark prints its figures"
)]

use std::time::{Duration, Instant};

use lift_audit::{AuditKey, Durability, FileAuditSink, SinkOptions, verify};
use lift_core::{Actor, AuditEvent, Resource};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let megabytes: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1024);
    let target = megabytes * 1024 * 1024;
    let dir = tempfile::tempdir()?;
    let log = dir.path().join("audit.jsonl");
    let key = AuditKey::from_bytes(b"benchmark audit key, 32 bytes or more")?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let started = Instant::now();
    runtime.block_on(async {
        let options = SinkOptions::new(&log)
            .key(Some(key.clone()))
            .durability(Durability::Interval(Duration::from_secs(1)))
            .checkpoint_every(100_000);
        let sink = FileAuditSink::open(options).await?;
        let template =
            AuditEvent::new("deploy", "up.finished", Resource::new("stack", "shop/prod"))
                .actor(Actor::service("ci"))
                .correlation_id("run-8812")
                .detail("resources_changed", 12);
        let mut written = 0u64;
        while written < target {
            let mut tasks = Vec::new();
            for _ in 0..64 {
                let sink = sink.clone();
                let template = template.clone();
                tasks.push(tokio::spawn(async move {
                    for _ in 0..1000 {
                        sink.append(template.clone()).await?;
                    }
                    Ok::<_, lift_audit::Error>(())
                }));
            }
            for task in tasks {
                task.await??;
            }
            written = std::fs::metadata(&log)?.len();
        }
        sink.close().await?;
        Ok::<_, Box<dyn std::error::Error>>(())
    })?;
    let size = std::fs::metadata(&log)?.len();
    println!(
        "generated {:.0} MB log in {:.1} s",
        size as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );

    // Warm the page cache so that both measure hashing, not the disk.
    let _ = std::process::Command::new("cat")
        .arg(&log)
        .stdout(std::process::Stdio::null())
        .status();

    let started = Instant::now();
    let openssl = std::process::Command::new("openssl")
        .args(["dgst", "-sha256"])
        .arg(&log)
        .output();
    let openssl_secs = started.elapsed().as_secs_f64();
    let openssl_mbs = match openssl {
        Ok(out) if out.status.success() => {
            let mbs = size as f64 / openssl_secs / 1e6;
            println!("openssl dgst -sha256: {openssl_secs:.3} s = {mbs:.0} MB/s");
            Some(mbs)
        }
        _ => {
            println!("openssl dgst -sha256: not available (install openssl to compare)");
            None
        }
    };

    let started = Instant::now();
    let report = verify(std::slice::from_ref(&log), Some(&key), None)?;
    let verify_secs = started.elapsed().as_secs_f64();
    let verify_mbs = size as f64 / verify_secs / 1e6;
    assert!(report.intact, "{:?}", report.failure);
    println!(
        "lift-audit verify (HMAC chain + checkpoint): {} records, {verify_secs:.3} s = {verify_mbs:.0} MB/s ({:.0} records/s)",
        report.records_checked,
        report.records_checked as f64 / verify_secs
    );
    if let Some(openssl_mbs) = openssl_mbs {
        println!(
            "verify / openssl = {:.2} (target >= 0.66)",
            verify_mbs / openssl_mbs
        );
    }
    drop(dir);
    Ok(())
}
