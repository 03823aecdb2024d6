//! Many processes, one log: 8 writer processes append 200 records each to the
//! same file at the same time, and some are SIGKILLed at random points.
//!
//! This test binary has its own `main` (harness = false): run with
//! `LIFT_AUDIT_MULTI_CHILD=<log>` it is a writer, which appends the records
//! `LIFT_AUDIT_MULTI_TODO` (a list of indices) of writer `LIFT_AUDIT_MULTI_WRITER` and prints
//! `ack <writer> <i> <seq> <hash>` for each one acknowledged durable;
//! otherwise it is the parent. The parent runs the scenario twice, once on a
//! single file and once rotating every 64 KiB (so writers follow each
//! other's rotations), restarts killed writers until every record is
//! acknowledged, and then checks that the chain verifies, that every
//! acknowledged record is in the log with its hash, and that every record of
//! every writer is stored.

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::unwrap_used,
    reason = "a test binary reports on stdout; a failing unwrap is a failing test"
)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use lift_audit::{
    AuditKey, CheckpointSigner, FileAuditSink, Filter, SinkOptions, VerifyOptions, query,
    verify_with,
};

/// The chain key all writers share.
fn key() -> AuditKey {
    AuditKey::from_bytes(b"the multiwriter test's chain key!!").unwrap()
}
use lift_core::{AuditEvent, Resource};

const CHILD_ENV: &str = "LIFT_AUDIT_MULTI_CHILD";
const WRITERS: u64 = 8;
const RECORDS: u64 = 200;

fn main() {
    if let Some(log) = std::env::var_os(CHILD_ENV) {
        child(Path::new(&log));
        return;
    }
    let seed = std::env::var("LIFT_AUDIT_MULTI_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    println!("multiwriter: seed {seed} (set LIFT_AUDIT_MULTI_SEED to replay)");
    let mut rng = XorShift(seed);
    scenario(&mut rng, None);
    scenario(&mut rng, Some(64 * 1024));
    println!("multiwriter: 2 passed, 0 failed");
}

fn env_u64(name: &str) -> u64 {
    std::env::var(name).unwrap().parse().unwrap()
}

fn child(log: &Path) {
    let writer = env_u64("LIFT_AUDIT_MULTI_WRITER");
    let todo: Vec<u64> = std::env::var("LIFT_AUDIT_MULTI_TODO")
        .unwrap()
        .split(',')
        .map(|i| i.parse().unwrap())
        .collect();
    let rotate = std::env::var("LIFT_AUDIT_MULTI_ROTATE")
        .ok()
        .and_then(|s| s.parse::<u64>().ok());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut options = SinkOptions::new(log).key(Some(key())).checkpoint_every(64);
        if let Some(bytes) = rotate {
            options = options.max_file_bytes(bytes);
        }
        let sink = FileAuditSink::open(options).await.unwrap();
        // Four tasks share the records, so that the writer commits groups.
        let mut tasks = Vec::new();
        for lane in 0..4usize {
            let sink = sink.clone();
            let mine: Vec<u64> = todo.iter().copied().skip(lane).step_by(4).collect();
            tasks.push(tokio::spawn(async move {
                for i in mine {
                    let event = AuditEvent::new(
                        "multi",
                        "write",
                        Resource::new("writer", writer.to_string()),
                    )
                    .detail("i", i)
                    .detail("padding", "x".repeat((i % 5 * 60) as usize));
                    let receipt = sink.append(event).await.unwrap();
                    let mut out = std::io::stdout().lock();
                    writeln!(
                        out,
                        "ack {writer} {i} {} {}",
                        receipt.seq,
                        receipt.hash_hex()
                    )
                    .unwrap();
                    out.flush().unwrap();
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        sink.close().await.unwrap();
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

/// What the parent learned from the writers' acknowledgements.
#[derive(Default)]
struct Acks {
    /// seq -> hash of every acknowledged record.
    by_seq: BTreeMap<u64, String>,
    /// (writer, i) of every acknowledged record.
    records: BTreeSet<(u64, u64)>,
}

impl Acks {
    fn note(&mut self, line: &str) {
        let parts: Vec<&str> = line.split(' ').collect();
        if let ["ack", writer, i, seq, hash] = parts[..] {
            let seq: u64 = seq.parse().unwrap();
            let previous = self.by_seq.insert(seq, hash.to_owned());
            assert!(
                previous.is_none_or(|p| p == hash),
                "two writers were acknowledged the same seq {seq}"
            );
            self.records
                .insert((writer.parse().unwrap(), i.parse().unwrap()));
        }
    }

    /// The indices of `writer` not acknowledged yet, as `1,5,6`, or `None` when all are.
    fn missing(&self, writer: u64) -> Option<String> {
        let missing: Vec<String> = (0..RECORDS)
            .filter(|i| !self.records.contains(&(writer, *i)))
            .map(|i| i.to_string())
            .collect();
        (!missing.is_empty()).then(|| missing.join(","))
    }
}

fn spawn(log: &Path, writer: u64, todo: &str, rotate: Option<u64>) -> Child {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .env(CHILD_ENV, log)
        .env("LIFT_AUDIT_MULTI_WRITER", writer.to_string())
        .env("LIFT_AUDIT_MULTI_TODO", todo)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if let Some(bytes) = rotate {
        command.env("LIFT_AUDIT_MULTI_ROTATE", bytes.to_string());
    }
    command.spawn().unwrap()
}

fn scenario(rng: &mut XorShift, rotate: Option<u64>) {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    let mut acks = Acks::default();
    let mut kills = 0;
    let mut round = 0;
    loop {
        let pending: Vec<(u64, String)> = (0..WRITERS)
            .filter_map(|w| acks.missing(w).map(|todo| (w, todo)))
            .collect();
        if pending.is_empty() {
            break;
        }
        assert!(round < 20, "writers keep failing to finish");
        // Every writer runs at once; in the first two rounds about half of them
        // are killed after a random number of acknowledgements.
        let mut readers = Vec::new();
        for (writer, todo) in pending {
            let mut child = spawn(&log, writer, &todo, rotate);
            let stdout = child.stdout.take().unwrap();
            let kill_after = (round < 2 && rng.next(2) == 0).then(|| 1 + rng.next(RECORDS / 2));
            readers.push(std::thread::spawn(move || {
                let mut lines = BufReader::new(stdout).lines();
                let mut seen = Vec::new();
                let mut killed = false;
                while let Some(Ok(line)) = lines.next() {
                    seen.push(line);
                    if kill_after.is_some_and(|k| seen.len() as u64 >= k) {
                        // SIGKILL: no destructor, no final flush, no checkpoint.
                        child.kill().unwrap();
                        killed = true;
                        break;
                    }
                }
                let status = child.wait().unwrap();
                seen.extend(lines.map_while(Result::ok));
                assert!(
                    killed || status.success(),
                    "writer {writer} failed: {status}"
                );
                (seen, killed)
            }));
        }
        for reader in readers {
            let (lines, killed) = reader.join().unwrap();
            kills += u64::from(killed);
            for line in lines {
                acks.note(&line);
            }
        }
        round += 1;
    }
    // One more open and close: repairs a torn tail left by the last kill, if any.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut options = SinkOptions::new(&log).key(Some(key()));
        if let Some(bytes) = rotate {
            options = options.max_file_bytes(bytes);
        }
        let sink = FileAuditSink::open(options).await.unwrap();
        sink.close().await.unwrap();
    });
    let report = verify_with(
        std::slice::from_ref(&log),
        &VerifyOptions {
            key: Some(key()),
            ..VerifyOptions::default()
        },
    )
    .unwrap();
    assert!(report.intact, "chain broken: {:?}", report.failure);
    // The content digest the writers kept between them, across kills and
    // rotations, matches the records: an auditor with only the public key agrees.
    let public = CheckpointSigner::load(&lift_audit::default_signing_key_path(&log))
        .unwrap()
        .verifying_key();
    let audit = verify_with(
        std::slice::from_ref(&log),
        &VerifyOptions {
            trusted_public_key: Some(public),
            ..VerifyOptions::default()
        },
    )
    .unwrap();
    assert!(audit.intact, "public-key verification: {:?}", audit.failure);
    assert_eq!(audit.unsigned_records, 0);
    let stored: BTreeMap<u64, (String, u64, u64)> =
        query(std::slice::from_ref(&log), Filter::default())
            .unwrap()
            .map(|r| r.unwrap())
            .filter(|r| r.event.event_type == "multi")
            .map(|r| {
                let writer: u64 = r.event.resource.id.parse().unwrap();
                let i = r.event.details["i"].as_u64().unwrap();
                (r.seq, (r.hash, writer, i))
            })
            .collect();
    for (seq, hash) in &acks.by_seq {
        assert_eq!(
            stored.get(seq).map(|s| &s.0),
            Some(hash),
            "acknowledged record {seq} lost or changed"
        );
    }
    // Every (writer, i) is acknowledged and stored. A record written but not
    // acknowledged before a kill is written again by the restarted writer,
    // so it may be stored twice: a kill leaves its outcome unknown.
    assert_eq!(acks.records.len() as u64, WRITERS * RECORDS);
    let distinct: BTreeSet<(u64, u64)> = stored.values().map(|(_, w, i)| (*w, *i)).collect();
    assert_eq!(distinct, acks.records);
    // Writers starting together on a new log, or killed before their first
    // checkpoint, never make the log look as if its checkpoint was deleted.
    let false_alarms = query(
        std::slice::from_ref(&log),
        Filter {
            action: Some(lift_audit::CHECKPOINT_MISSING_ACTION.into()),
            ..Filter::default()
        },
    )
    .unwrap()
    .count();
    assert_eq!(false_alarms, 0, "a checkpoint.missing event without cause");
    let segments = report.files.len();
    println!(
        "multiwriter{}: {WRITERS} writers x {RECORDS} records, {kills} SIGKILLs, {} acknowledged records all present, {} records verified in {segments} files, {:.1?}",
        if rotate.is_some() { " (rotating)" } else { "" },
        acks.by_seq.len(),
        report.records_checked,
        started.elapsed()
    );
}
