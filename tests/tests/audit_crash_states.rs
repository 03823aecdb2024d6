//! The audit log's crash states, in the manner of ALICE and CrashMonkey.
//!
//! This test records every durable operation a [`FileAuditSink`] makes
//! (through `lift_core::fs`'s observer: the live file's creation, appends,
//! fsyncs, truncations, the checkpoint's and the manifest's atomic
//! replacements, the sealing rename of a rotation, directory fsyncs) while it
//! opens a keyed log, appends records one at a time and in groups, signs
//! checkpoints, rotates and closes, under each durability policy; and once
//! while it reopens a log with a torn tail. It notes which records the sink
//! acknowledged as durable, and how many operations had been made when it did.
//! Then it builds every state a crash can leave on disk under POSIX's rules
//! (`lift_tests::crash_states`: any prefix of the operations; unsynced data
//! lost, kept, torn, or its size kept with zeros for data; unsynced names lost).
//!
//! Each state is written into a fresh directory and checked:
//!
//! - before recovery, the log verifies with the key, or fails only as a torn
//!   record at its end (never as tampering), and no checkpoint covers more
//!   records than the log holds;
//! - recovery (opening the sink with the same key) succeeds, cutting a torn
//!   tail and recording that it did; closing it succeeds;
//! - after recovery the whole chain verifies against its checkpoint, every
//!   record fsynced before the crash is there with its original hash, and so
//!   is every record acknowledged as durable before the crash (`EveryRecord`
//!   and `GroupCommit` acknowledge an append after its fsync; `Interval`
//!   acknowledges only `sync` and `close` so).
//!
//! It also shows that it is not blind: without the log's fsyncs, the same
//! checks fail on some crash state.
#![allow(
    clippy::unwrap_used,
    clippy::print_stdout,
    reason = "a test: a failure is the test failing, and it reports the number of states"
)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use lift_audit::{
    AuditKey, Checkpoint, Durability, FileAuditSink, Finding, SinkOptions, VerifyOptions,
    chain_files, verify_with,
};
use lift_core::fs::{RecordedOp, Recorder, set_observer};
use lift_core::{AuditEvent, Resource};
use lift_tests::crash_states::{CrashState, Model, explore, materialize, scratch};

const LOG: &str = "audit.jsonl";

fn key() -> AuditKey {
    AuditKey::from_bytes(b"the audit crash explorer's chain key").unwrap()
}

/// How a scenario opens its sink.
#[derive(Debug, Clone, Copy)]
struct Setup {
    durability: Durability,
    checkpoint_every: u64,
    max_file_bytes: Option<u64>,
}

impl Setup {
    fn options(&self, log: &Path) -> SinkOptions {
        let options = SinkOptions::new(log)
            .key(Some(key()))
            .durability(self.durability)
            .checkpoint_every(self.checkpoint_every)
            // The same origin wherever a state is written out.
            .origin("crash-explorer");
        match self.max_file_bytes {
            Some(bytes) => options.max_file_bytes(bytes),
            None => options,
        }
    }

    /// Whether an append's answer means its record is durable.
    fn appends_are_durable(&self) -> bool {
        !matches!(self.durability, Durability::Interval(_))
    }
}

/// What a scenario does with its sink.
#[derive(Debug, Clone, Copy)]
enum Step {
    /// One `append`.
    Append,
    /// One `append_all` of this many events.
    Group(usize),
    /// `sync`: fsync and a signed checkpoint.
    Sync,
}

/// A record the sink acknowledged as durable, and how many operations it had made by then.
#[derive(Debug, Clone)]
struct Ack {
    at: usize,
    seq: u64,
    hash: String,
}

/// One recorded run of a scenario.
struct Run {
    name: &'static str,
    setup: Setup,
    root: PathBuf,
    before: Model,
    ops: Vec<RecordedOp>,
    acks: Vec<Ack>,
    /// Every record the run wrote (or found), by seq: its hash.
    original: BTreeMap<u64, String>,
    /// `synced[k]`: how many records were fsynced once `k` operations were made.
    synced: Vec<u64>,
}

fn event(i: usize) -> AuditEvent {
    AuditEvent::new(
        "secrets",
        "put",
        Resource::new("secret", format!("app/{i}")),
    )
    .detail("i", i as u64)
    .detail("padding", "x".repeat(i % 4 * 40))
}

/// The record lines of `bytes` (complete lines only): seq, hash and action.
fn records(bytes: &[u8]) -> Vec<(u64, String, String)> {
    bytes
        .split_inclusive(|&b| b == b'\n')
        .filter(|line| line.ends_with(b"\n"))
        .map(|line| {
            let value: serde_json::Value = serde_json::from_slice(line).unwrap();
            (
                value["seq"].as_u64().unwrap(),
                value["hash"].as_str().unwrap().to_owned(),
                value["event"]["action"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

/// Runs `steps` on a sink opened under `root` (which may already hold a log),
/// recording its durable operations and its acknowledgements.
async fn record(name: &'static str, root: &Path, setup: Setup, steps: &[Step]) -> Run {
    // The log's directory exists before (and is taken as durable).
    std::fs::create_dir_all(root).unwrap();
    let log = root.join(LOG);
    let before = Model::snapshot(root).unwrap().zero_filled_tails(true);
    let mut original = BTreeMap::new();
    let existing = before_records(&log, &mut original);
    let recorder = Arc::new(Recorder::under(root));
    let mut ops = Vec::new();
    // The answer came after the operations made so far (and perhaps a few more).
    let mark = |ops: &mut Vec<RecordedOp>| {
        ops.extend(recorder.take());
        ops.len()
    };
    let mut acks = Vec::new();
    let mut receipts = Vec::new();
    set_observer(Some(recorder.clone()));
    let sink = FileAuditSink::open(setup.options(&log)).await.unwrap();
    let mut n = 0;
    // `sync` and `close` acknowledge every record before them as durable, whatever the policy.
    let all_durable = |at: usize, receipts: &[lift_audit::Receipt], acks: &mut Vec<Ack>| {
        for r in receipts {
            if !acks.iter().any(|a: &Ack| a.seq == r.seq) {
                acks.push(Ack {
                    at,
                    seq: r.seq,
                    hash: r.hash_hex(),
                });
            }
        }
    };
    for step in steps {
        match step {
            Step::Append => {
                let receipt = sink.append(event(n)).await.unwrap();
                let at = mark(&mut ops);
                n += 1;
                if setup.appends_are_durable() {
                    all_durable(at, std::slice::from_ref(&receipt), &mut acks);
                }
                receipts.push(receipt);
            }
            Step::Group(size) => {
                let events: Vec<AuditEvent> = (n..n + size).map(event).collect();
                let group = sink.append_all(&events).await.unwrap();
                let at = mark(&mut ops);
                n += size;
                if setup.appends_are_durable() {
                    all_durable(at, &group, &mut acks);
                }
                receipts.extend(group);
            }
            Step::Sync => {
                sink.sync().await.unwrap();
                let at = mark(&mut ops);
                all_durable(at, &receipts, &mut acks);
            }
        }
    }
    sink.close().await.unwrap();
    let at = mark(&mut ops);
    all_durable(at, &receipts, &mut acks);
    drop(sink);
    set_observer(None);
    ops.extend(recorder.take());

    // What the trace says: every record written, and how many were fsynced after each prefix.
    let mut written = existing;
    let mut synced = vec![written];
    let mut done = written;
    for op in &ops {
        match op {
            RecordedOp::Write { path, data, .. } if *path == log => {
                for (seq, hash, _) in records(data) {
                    original.insert(seq, hash);
                    written += 1;
                }
            }
            RecordedOp::Fsync { path } if *path == log => done = written,
            _ => {}
        }
        synced.push(done);
    }
    Run {
        name,
        setup,
        root: root.to_owned(),
        before,
        ops,
        acks,
        original,
        synced,
    }
}

/// The records of the chain on disk before the recording, which are durable.
fn before_records(log: &Path, original: &mut BTreeMap<u64, String>) -> u64 {
    let mut n = 0;
    for file in chain_files(log).unwrap() {
        let Ok(bytes) = std::fs::read(&file) else {
            continue;
        };
        for (seq, hash, _) in records(&bytes) {
            original.insert(seq, hash);
            n += 1;
        }
    }
    n
}

/// What checking one crash state found, besides the invariants holding.
#[derive(Debug, Default, Clone, Copy)]
struct Seen {
    /// The log ended in a torn record, which recovery cut and recorded.
    torn: bool,
    /// The sealing rename of a rotation was lost; recovery completed it.
    unsealed: bool,
}

/// Writes `state` into `into`, recovers it and checks every invariant.
async fn check(run: &Run, state: &CrashState<()>, into: &Path) -> Result<Seen, String> {
    materialize(&state.files, &run.root, into, &[]).map_err(|e| e.to_string())?;
    let log = into.join(LOG);
    let options = VerifyOptions {
        key: Some(key()),
        ..VerifyOptions::default()
    };
    let mut seen = Seen::default();

    // Before recovery: a torn record at the end at most, and no checkpoint beyond the log.
    let checkpoint_path = lift_audit::default_checkpoint_path(&log);
    let checkpoint = if checkpoint_path.exists() {
        Some(
            Checkpoint::load(&checkpoint_path)
                .map_err(|e| format!("the checkpoint is unreadable: {e}"))?,
        )
    } else {
        None
    };
    let files = chain_files(&log).map_err(|e| format!("the manifest is unreadable: {e}"))?;
    let missing: Vec<&PathBuf> = files.iter().filter(|f| !f.exists()).collect();
    let n = files.len();
    match missing.as_slice() {
        [] => {}
        // A rotation's sealing rename was lost: the newest segment is still the live file.
        [one] if n > 1 && **one == files[n - 2] => seen.unsealed = true,
        // Sealed, but the new live file was not created yet.
        [one] if n > 1 && **one == log => {}
        // Nothing was created yet.
        [one] if n == 1 && **one == log && checkpoint.is_none() => {}
        _ => return Err(format!("files of the chain are missing: {missing:?}")),
    }
    let mut present: Vec<PathBuf> = files.iter().filter(|f| f.exists()).cloned().collect();
    // The files as they are, without a manifest that names a missing one.
    let view = into.with_extension("view");
    if !missing.is_empty() && !present.is_empty() {
        std::fs::create_dir_all(&view).map_err(|e| e.to_string())?;
        for file in &mut present {
            let copy = view.join(file.file_name().unwrap_or_default());
            std::fs::copy(&*file, &copy).map_err(|e| e.to_string())?;
            *file = copy;
        }
    }
    if !present.is_empty() {
        let report = verify_with(
            &present,
            &VerifyOptions {
                checkpoint: checkpoint.is_some().then(|| checkpoint_path.clone()),
                no_default_checkpoint: true,
                ..options.clone()
            },
        )
        .map_err(|e| format!("verify before recovery: {e}"))?;
        if view.exists() {
            std::fs::remove_dir_all(&view).map_err(|e| e.to_string())?;
        }
        match &report.failure {
            None => {}
            Some(failure) if failure.finding == Finding::TornRecord => seen.torn = true,
            Some(failure) => {
                return Err(format!(
                    "before recovery the log fails verification: {} at record {}: {}",
                    failure.finding, failure.seq, failure.message
                ));
            }
        }
    }

    // Recovery: the real open, then a close (fsync and a final checkpoint).
    let sink = FileAuditSink::open(run.setup.options(&log))
        .await
        .map_err(|e| format!("recovery failed: {e}"))?;
    sink.close()
        .await
        .map_err(|e| format!("closing after recovery failed: {e}"))?;
    drop(sink);

    // After recovery: the chain verifies, and keeps what it promised.
    let report = verify_with(std::slice::from_ref(&log), &options)
        .map_err(|e| format!("verify after recovery: {e}"))?;
    if let Some(failure) = &report.failure {
        return Err(format!(
            "after recovery the log fails verification: {} at record {}: {}",
            failure.finding, failure.seq, failure.message
        ));
    }
    let mut chain = Vec::new();
    for file in chain_files(&log).map_err(|e| e.to_string())? {
        chain.extend(records(&std::fs::read(&file).map_err(|e| e.to_string())?));
    }
    let survived = chain
        .iter()
        .enumerate()
        .take_while(|(i, (seq, hash, _))| {
            *seq == *i as u64 + 1 && run.original.get(seq) == Some(hash)
        })
        .count() as u64;
    let synced = run.synced[state.last];
    if survived < synced {
        return Err(format!(
            "records {} to {synced} were fsynced before the crash but are lost ({survived} survived)",
            survived + 1
        ));
    }
    for ack in run.acks.iter().filter(|a| a.at <= state.last) {
        let kept = usize::try_from(ack.seq - 1)
            .ok()
            .and_then(|i| chain.get(i))
            .is_some_and(|(seq, hash, _)| *seq == ack.seq && *hash == ack.hash);
        if !kept {
            return Err(format!(
                "record {} was acknowledged as durable before the crash but is lost",
                ack.seq
            ));
        }
    }
    if let Some(cp) = checkpoint {
        if cp.size > survived {
            return Err(format!(
                "the checkpoint covers {} records but the log holds {survived}",
                cp.size
            ));
        }
        if cp.size > 0 && run.original.get(&cp.size) != Some(&cp.head) {
            return Err(format!(
                "the checkpoint's head is not record {}'s hash",
                cp.size
            ));
        }
    }
    if seen.torn
        && !chain[usize::try_from(survived)
            .unwrap_or(usize::MAX)
            .min(chain.len())..]
            .iter()
            .any(|(_, _, action)| action == "repair.torn_tail")
    {
        return Err("a torn tail was cut without a repair.torn_tail record".into());
    }
    std::fs::remove_dir_all(into).map_err(|e| e.to_string())?;
    Ok(seen)
}

/// The figures of one scenario.
struct Explored {
    states: usize,
    torn: usize,
    unsealed: usize,
}

async fn explore_run(run: &Run, scratch: &Path) -> Explored {
    let states = explore(&run.before, &run.ops, |_| ()).unwrap();
    let mut explored = Explored {
        states: 0,
        torn: 0,
        unsealed: 0,
    };
    for (i, state) in states.iter().enumerate() {
        let into = scratch.join(format!("{}-{i}", run.name.replace(' ', "-")));
        match check(run, state, &into).await {
            Ok(seen) => {
                explored.states += 1;
                explored.torn += usize::from(seen.torn);
                explored.unsealed += usize::from(seen.unsealed);
            }
            Err(why) => panic!(
                "{} crash state {i} (after {} to {} of {} operations; the last: {:?}): {why}\nfiles: {:?}",
                run.name,
                state.first,
                state.last,
                run.ops.len(),
                state.last.checked_sub(1).map(|k| &run.ops[k]),
                state
                    .files
                    .iter()
                    .map(|(p, b)| (p.file_name().unwrap_or_default().to_owned(), b.len()))
                    .collect::<Vec<_>>()
            ),
        }
    }
    explored
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_crash_state_of_the_audit_log_keeps_its_promises() {
    let dir = tempfile::tempdir().unwrap();
    let scratch = scratch().unwrap();
    let mut runs = Vec::new();

    // One write and one fsync per record, a checkpoint every two records, rotation at 1,500 bytes.
    let every_record = Setup {
        durability: Durability::EveryRecord,
        checkpoint_every: 2,
        max_file_bytes: Some(1500),
    };
    use Step::{Append, Group, Sync};
    runs.push(
        record(
            "every record",
            &dir.path().join("every-record"),
            every_record,
            &[
                Append,
                Append,
                Append,
                Group(3),
                Append,
                Sync,
                Append,
                Append,
            ],
        )
        .await,
    );
    // Group commit: the syncer thread fsyncs what the writer wrote, then answers;
    // checkpoints on sync and close only and no rotation, so that the trace is
    // the same on every run.
    let group_commit = Setup {
        durability: Durability::GroupCommit,
        checkpoint_every: 0,
        max_file_bytes: None,
    };
    runs.push(
        record(
            "group commit",
            &dir.path().join("group-commit"),
            group_commit,
            &[Append, Append, Group(3), Sync, Append, Group(2)],
        )
        .await,
    );
    // Group commit with checkpoints every two records and rotation: the syncer
    // thread's fsyncs and checkpoints interleave with the writer's appends and
    // rotations, so the trace (and the number of states) can differ a little
    // from run to run; every interleaving must keep the promises.
    let group_commit_rotating = Setup {
        durability: Durability::GroupCommit,
        checkpoint_every: 2,
        max_file_bytes: Some(1500),
    };
    runs.push(
        record(
            "group commit with rotation",
            &dir.path().join("group-commit-rotating"),
            group_commit_rotating,
            &[
                Append,
                Append,
                Group(3),
                Append,
                Append,
                Sync,
                Append,
                Group(2),
                Append,
                Append,
            ],
        )
        .await,
    );
    // Interval: appends are answered once written, and only sync and close fsync
    // (the interval is an hour); unsynced batches pile up, and the log rotates.
    let interval = Setup {
        durability: Durability::Interval(Duration::from_secs(3600)),
        checkpoint_every: 0,
        max_file_bytes: Some(2000),
    };
    runs.push(
        record(
            "interval",
            &dir.path().join("interval"),
            interval,
            &[
                Append,
                Append,
                Append,
                Sync,
                Append,
                Append,
                Group(2),
                Append,
            ],
        )
        .await,
    );
    // Recovery itself: reopening a log whose last record was torn by a crash.
    let torn_root = dir.path().join("recovery");
    std::fs::create_dir_all(&torn_root).unwrap();
    {
        let sink = FileAuditSink::open(every_record.options(&torn_root.join(LOG)))
            .await
            .unwrap();
        for i in 0..3 {
            sink.append(event(i)).await.unwrap();
        }
        sink.close().await.unwrap();
        let mut bytes = std::fs::read(torn_root.join(LOG)).unwrap();
        bytes.extend_from_slice(br#"{"seq":5,"time":"2026-01-01T00:00:00.0"#);
        std::fs::write(torn_root.join(LOG), bytes).unwrap();
    }
    runs.push(record("recovery", &torn_root, every_record, &[Append, Append]).await);

    let mut total = 0;
    let mut parts = Vec::new();
    let mut torn = 0;
    let mut unsealed = 0;
    for run in &runs {
        assert!(
            !run.acks.is_empty() && run.synced.last() > Some(&0),
            "{}: nothing was acknowledged",
            run.name
        );
        let explored = explore_run(run, scratch.path()).await;
        total += explored.states;
        torn += explored.torn;
        unsealed += explored.unsealed;
        parts.push(format!(
            "{} of {} ({} operations, {} records)",
            explored.states,
            run.name,
            run.ops.len(),
            run.original.len()
        ));
        assert!(
            explored.states >= 20,
            "{}: only {} crash states",
            run.name,
            explored.states
        );
    }
    println!(
        "crash states checked: {total} ({}); {torn} ended in a torn record that recovery cut, {unsealed} lost a rotation's sealing rename that recovery completed",
        parts.join(", ")
    );
    assert!(torn > 0, "no crash state had a torn record");
    assert!(unsealed > 0, "no crash state interrupted a rotation");
    let rotations = runs
        .iter()
        .flat_map(|r| &r.ops)
        .filter(|op| {
            matches!(op, RecordedOp::Rename { from, .. } if from.file_name().is_some_and(|n| n == LOG))
        })
        .count();
    assert!(rotations >= 2, "{rotations} rotations");

    // The explorer is not blind: without the log's fsyncs, an acknowledged
    // record (or one a checkpoint covers) is lost in some crash state.
    let run = runs.iter().find(|r| r.name == "group commit").unwrap();
    let log = run.root.join(LOG);
    let unsynced = Run {
        name: "group commit without fsync",
        setup: run.setup,
        root: run.root.clone(),
        before: run.before.clone(),
        ops: run
            .ops
            .iter()
            .filter(|op| !matches!(op, RecordedOp::Fsync { path } if *path == log))
            .cloned()
            .collect(),
        acks: run.acks.clone(),
        original: run.original.clone(),
        synced: Vec::new(),
    };
    let unsynced = Run {
        synced: vec![0; unsynced.ops.len() + 1],
        ..unsynced
    };
    let mut caught = 0;
    let states = explore(&unsynced.before, &unsynced.ops, |_| ()).unwrap();
    for (i, state) in states.iter().enumerate() {
        let into = scratch.path().join(format!("unsynced-{i}"));
        if check(&unsynced, state, &into).await.is_err() {
            caught += 1;
        }
        let _ = std::fs::remove_dir_all(&into);
    }
    println!(
        "without the log's fsyncs, {caught} of {} crash states of {} break a promise",
        states.len(),
        run.name
    );
    assert!(
        caught > 0,
        "the explorer missed the states a missing fsync allows"
    );
}
