//! Crash safety: a writer process is SIGKILLed at random points, many times.
//!
//! This test binary has its own `main` (harness = false): run with
//! `LIFT_AUDIT_CRASH_CHILD=<log>` it is the writer, which prints `ack <seq> <hash>`
//! for every record acknowledged durable; otherwise it is the parent, which
//! kills writers mid-stream, reopens the log (repairing a torn tail), and
//! checks that the chain verifies and holds every acknowledged record.

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::unwrap_used,
    reason = "a test binary reports on stdout; a failing unwrap is a failing test"
)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use lift_audit::{FileAuditSink, Filter, SinkOptions, query, verify};
use lift_core::{AuditEvent, Resource};

const CHILD_ENV: &str = "LIFT_AUDIT_CRASH_CHILD";
const ROUNDS: u64 = 12;

fn main() {
    if let Some(log) = std::env::var_os(CHILD_ENV) {
        child(Path::new(&log));
        return;
    }
    parent();
    println!("crash: 1 passed, 0 failed");
}

fn child(log: &Path) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        // Odd rounds use interval fsync: acknowledged means written to the
        // operating system, which a killed process cannot lose either.
        let durability = match std::env::var("LIFT_AUDIT_CRASH_POLICY").as_deref() {
            Ok("interval") => lift_audit::Durability::Interval(Duration::from_millis(200)),
            _ => lift_audit::Durability::GroupCommit,
        };
        let sink = FileAuditSink::open(
            SinkOptions::new(log)
                .checkpoint_every(50)
                .durability(durability),
        )
        .await
        .unwrap();
        let started = Instant::now();
        let mut tasks = Vec::new();
        for t in 0..4u64 {
            let sink = sink.clone();
            tasks.push(tokio::spawn(async move {
                let mut i = 0u64;
                // Bounded, so that an orphaned writer stops by itself.
                while started.elapsed() < Duration::from_secs(20) {
                    let event =
                        AuditEvent::new("crash", "write", Resource::new("task", t.to_string()))
                            .detail("i", i)
                            .detail("padding", "x".repeat((i % 7 * 40) as usize));
                    let receipt = sink.append(event).await.unwrap();
                    let mut out = std::io::stdout().lock();
                    writeln!(out, "ack {} {}", receipt.seq, receipt.hash_hex()).unwrap();
                    out.flush().unwrap();
                    i += 1;
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
    });
}

/// A small deterministic generator; the seed is printed so that a failure can be replayed.
struct XorShift(u64);
impl XorShift {
    fn next(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % bound
    }
}

fn parent() {
    let seed = std::env::var("LIFT_AUDIT_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    println!("crash: seed {seed} (set LIFT_AUDIT_CRASH_SEED to replay)");
    let mut rng = XorShift(seed);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    let mut acked: BTreeMap<u64, String> = BTreeMap::new();
    let mut injected_tears = 0;
    for round in 0..ROUNDS {
        let kill_after = 1 + rng.next(400);
        let mut child = Command::new(std::env::current_exe().unwrap())
            .env(CHILD_ENV, &log)
            .env(
                "LIFT_AUDIT_CRASH_POLICY",
                if round % 2 == 1 { "interval" } else { "group" },
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let mut seen = 0;
        while seen < kill_after {
            let Some(Ok(line)) = lines.next() else { break };
            record_ack(&mut acked, &line);
            seen += 1;
        }
        // SIGKILL: no destructor, no final flush, no checkpoint.
        child.kill().unwrap();
        child.wait().unwrap();
        for line in lines.map_while(Result::ok) {
            record_ack(&mut acked, &line);
        }
        if round % 3 == 1 {
            // Simulate a write torn by a power loss: a partial, unacknowledged record.
            let mut file = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
            let partial = br#"{"seq":999999,"time":"2026-11-28T02:00:00.000000Z","prev":"00"#;
            file.write_all(&partial[..10 + rng.next(40) as usize])
                .unwrap();
            injected_tears += 1;
        }
    }
    // Reopen once more: this repairs the last torn tail, if any, then closes cleanly.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let sink = FileAuditSink::open(SinkOptions::new(&log)).await.unwrap();
        sink.close().await.unwrap();
    });
    let report = verify(std::slice::from_ref(&log), None, None).unwrap();
    assert!(
        report.intact,
        "chain broken after crashes: {:?}",
        report.failure
    );
    let max_acked = *acked.keys().last().unwrap();
    assert!(
        report.records_checked >= max_acked,
        "{} records < acknowledged {max_acked}",
        report.records_checked
    );
    let stored: BTreeMap<u64, String> = query(std::slice::from_ref(&log), Filter::default())
        .unwrap()
        .map(|r| r.unwrap())
        .map(|r| (r.seq, r.hash))
        .collect();
    for (seq, hash) in &acked {
        assert_eq!(
            stored.get(seq),
            Some(hash),
            "acknowledged record {seq} lost or changed"
        );
    }
    let repairs = query(
        &[log],
        Filter {
            action: Some("repair.torn_tail".into()),
            ..Filter::default()
        },
    )
    .unwrap()
    .count();
    assert!(
        repairs >= injected_tears,
        "{repairs} repairs recorded for {injected_tears} injected tears"
    );
    println!(
        "crash: {ROUNDS} kills, {} acknowledged records all present, {} records verified, {repairs} torn tails repaired",
        acked.len(),
        report.records_checked
    );
}

fn record_ack(acked: &mut BTreeMap<u64, String>, line: &str) {
    let mut parts = line.split(' ');
    if let (Some("ack"), Some(seq), Some(hash)) = (parts.next(), parts.next(), parts.next()) {
        acked.insert(seq.parse().unwrap(), hash.to_owned());
    }
}
