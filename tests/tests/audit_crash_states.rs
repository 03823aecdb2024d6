//! The audit log's crash states, in the manner of ALICE and CrashMonkey.
//!
//! This test records every durable operation a [`FileAuditSink`] makes
//! (through `lift_core::fs`'s observer: the live file's creation, appends,
//! fsyncs, truncations, the checkpoint's and the manifest's atomic
//! replacements, the sealing rename of a rotation, directory fsyncs) while it
//! opens a keyed log, appends records one at a time and in groups, signs
//! checkpoints, rotates and closes, under each durability policy (group
//! commit also with concurrent appends written one record at a time); and
//! once while it reopens a log with a torn tail. Into the same ordered stream go
//! the sink's answers: lift-audit emits a trace event (target
//! `lift_audit::ack`) on the thread that answers a caller, just before it
//! does, and a tracing layer of this test puts a mark there, so an answer
//! sent before its fsync would show in the stream before that fsync.
//! Then it builds the states a crash can leave on disk
//! (`lift_tests::crash_states`: any prefix of the operations; of each file's
//! unsynced writes any subset, each whole or torn, or its size kept with zeros
//! for data; unsynced names lost; an fsync by the file it was made on,
//! whatever its name by then).
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
//! A tail whose unsynced appends reached the disk out of order (a later one
//! written, an earlier one lost or torn: a hole of zeros before a later
//! record) verifies as a torn record and recovery cuts it like a torn line,
//! recording a `repair.torn_tail` with cause `hole` ([`HOLED_TAILS_RECOVER`]).
//!
//! It also shows that it is not blind: without the log's fsyncs, and with the
//! answers moved before the fsyncs that cover them, the same checks fail, the
//! latter exactly in the states between each early answer and its fsync.
#![allow(
    clippy::unwrap_used,
    clippy::print_stdout,
    reason = "a test: a failure is the test failing, and it reports the number of states"
)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use lift_audit::{
    AuditKey, Checkpoint, Durability, FileAuditSink, Finding, SinkOptions, VerifyOptions,
    chain_files, verify_with,
};
use lift_core::fs::{FileId, RecordedOp, set_observer};
use lift_core::{AuditEvent, Resource};
use lift_tests::crash_states::{
    CrashState, Event, Exploration, Journal, Model, explore, materialize, scratch, split,
};

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
    /// The writer's `max_batch` (records per write), when not the default.
    max_batch: Option<usize>,
}

impl Setup {
    fn options(&self, log: &Path) -> SinkOptions {
        let options = SinkOptions::new(log)
            .key(Some(key()))
            .durability(self.durability)
            .checkpoint_every(self.checkpoint_every)
            // The same origin wherever a state is written out.
            .origin("crash-explorer");
        let options = match self.max_batch {
            Some(records) => options.max_batch(records),
            None => options,
        };
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
    /// This many `append`s at once (on one task).
    Concurrent(usize),
}

/// What goes into the stream besides the file operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mark {
    /// The sink was about to answer callers for records `first` to `last`
    /// (lift-audit's `lift_audit::ack` trace event, put here by [`AckLayer`]).
    Answer {
        barrier: bool,
        first: u64,
        last: u64,
    },
    /// The test saw an answer (its `await` returned) covering records up to `last`.
    Returned { last: u64 },
}

/// The journal of the recording under way, where [`AckLayer`] puts its marks.
static JOURNAL: Mutex<Option<Arc<Journal<Mark>>>> = Mutex::new(None);

/// A tracing layer, installed for the whole process (the sink answers on its
/// writer and syncer threads), that turns lift-audit's `lift_audit::ack`
/// events into [`Mark::Answer`]s in the current journal.
struct AckLayer;

const ACK_TARGET: &str = "lift_audit::ack";

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for AckLayer {
    fn enabled(
        &self,
        metadata: &tracing::Metadata<'_>,
        _: tracing_subscriber::layer::Context<'_, S>,
    ) -> bool {
        metadata.target() == ACK_TARGET
    }

    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        if event.metadata().target() != ACK_TARGET {
            return;
        }
        #[derive(Default)]
        struct Fields {
            kind: String,
            first: Option<u64>,
            last: Option<u64>,
        }
        impl tracing::field::Visit for Fields {
            fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
                match field.name() {
                    "first" => self.first = Some(value),
                    "last" => self.last = Some(value),
                    _ => {}
                }
            }
            fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
                if field.name() == "kind" {
                    value.clone_into(&mut self.kind);
                }
            }
            fn record_debug(&mut self, _: &tracing::field::Field, _: &dyn std::fmt::Debug) {}
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        let (Some(first), Some(last)) = (fields.first, fields.last) else {
            panic!("a lift_audit::ack event without first and last");
        };
        let barrier = match fields.kind.as_str() {
            "append" => false,
            "barrier" => true,
            other => panic!("a lift_audit::ack event of kind {other:?}"),
        };
        let journal = JOURNAL
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if let Some(journal) = journal {
            journal.mark(Mark::Answer {
                barrier,
                first,
                last,
            });
        }
    }
}

fn install_ack_layer() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        use tracing_subscriber::layer::SubscriberExt;
        tracing::subscriber::set_global_default(tracing_subscriber::registry().with(AckLayer))
            .expect("no other global subscriber in this test binary");
    });
}

/// A record the sink acknowledged as durable, and how many operations had been made when it answered.
#[derive(Debug, Clone)]
struct Ack {
    at: usize,
    seq: u64,
    hash: String,
}

/// One recorded run of a scenario.
#[derive(Clone)]
struct Run {
    name: &'static str,
    setup: Setup,
    root: PathBuf,
    before: Model,
    /// The operations and marks, in the order they happened.
    events: Vec<Event<Mark>>,
    ops: Vec<RecordedOp>,
    acks: Vec<Ack>,
    /// Every record the run wrote (or found), by seq: its hash.
    original: BTreeMap<u64, String>,
    /// Records on disk before the recording (durable).
    existing: u64,
    /// `synced[k]`: how many records (from the first) were fsynced once `k` operations were made.
    synced: Vec<u64>,
    /// Fsyncs made through a handle on a file no longer named as the fsync
    /// said (the syncer's fsync of the live file racing a rotation's rename).
    renamed_fsyncs: usize,
}

impl Run {
    /// Reads a recorded stream: the operations, the acknowledgements among
    /// them, what the log's writes held and what its fsyncs covered.
    fn new(
        name: &'static str,
        setup: Setup,
        root: &Path,
        before: Model,
        existing: (u64, BTreeMap<u64, String>),
        events: Vec<Event<Mark>>,
    ) -> Run {
        let (existing, mut original) = existing;
        let (ops, marks) = split(events.clone());
        // Records written to each file (by inode: a rotation renames the
        // live file, and its fsync may come under its old name), and the
        // records made durable by the fsyncs so far.
        let mut written: BTreeMap<FileId, Vec<u64>> = BTreeMap::new();
        let mut durable: BTreeSet<u64> = (1..=existing).collect();
        let mut synced = vec![existing];
        // The files created in the trace by name, and the names renamed away.
        let mut names: BTreeMap<&Path, FileId> = BTreeMap::new();
        let mut gone: BTreeSet<&Path> = BTreeSet::new();
        let mut renamed_fsyncs = 0;
        for op in &ops {
            match op {
                RecordedOp::Create {
                    path,
                    file: Some(file),
                    ..
                } => {
                    names.insert(path, *file);
                    gone.remove(path.as_path());
                }
                RecordedOp::Rename { from, to } => {
                    if let Some(file) = names.remove(from.as_path()) {
                        names.insert(to, file);
                    }
                    gone.insert(from);
                    gone.remove(to.as_path());
                }
                RecordedOp::Write {
                    path, data, file, ..
                } if is_log(path) => {
                    let file = file.expect("the observer names the file written");
                    for (seq, hash, _) in records(data) {
                        original.insert(seq, hash);
                        written.entry(file).or_default().push(seq);
                    }
                }
                RecordedOp::Fsync { path, file } => {
                    let file = file.expect("the observer names the file fsynced");
                    durable.extend(written.get(&file).into_iter().flatten());
                    let named = names.get(path.as_path());
                    if named.is_some_and(|named| *named != file)
                        || (named.is_none() && gone.contains(path.as_path()))
                    {
                        renamed_fsyncs += 1;
                    }
                }
                _ => {}
            }
            synced.push((1..).take_while(|seq| durable.contains(seq)).count() as u64);
        }
        let mut acks: Vec<Ack> = Vec::new();
        for (at, mark) in marks {
            let Mark::Answer {
                barrier,
                first,
                last,
            } = mark
            else {
                continue;
            };
            if !barrier && !setup.appends_are_durable() {
                continue;
            }
            for seq in first..=last {
                if acks.iter().any(|a| a.seq == seq) {
                    continue;
                }
                let hash = original
                    .get(&seq)
                    .unwrap_or_else(|| {
                        panic!("{name}: record {seq} was acknowledged but never written")
                    })
                    .clone();
                acks.push(Ack { at, seq, hash });
            }
        }
        Run {
            name,
            setup,
            root: root.to_owned(),
            before,
            events,
            ops,
            acks,
            original,
            existing,
            synced,
            renamed_fsyncs,
        }
    }

    /// The same run with other events (a negative control).
    fn with_events(&self, name: &'static str, events: Vec<Event<Mark>>) -> Run {
        let existing = self
            .original
            .iter()
            .filter(|(seq, _)| **seq <= self.existing)
            .map(|(seq, hash)| (*seq, hash.clone()))
            .collect();
        Run::new(
            name,
            self.setup,
            &self.root,
            self.before.clone(),
            (self.existing, existing),
            events,
        )
    }
}

/// Whether `path` is the live log (or what it was when the operation named it).
fn is_log(path: &Path) -> bool {
    path.file_name().is_some_and(|n| n == LOG)
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
/// recording its durable operations and its answers in one stream.
async fn record(name: &'static str, root: &Path, setup: Setup, steps: &[Step]) -> Run {
    install_ack_layer();
    // The log's directory exists before (and is taken as durable).
    std::fs::create_dir_all(root).unwrap();
    let log = root.join(LOG);
    let before = Model::snapshot(root).unwrap().zero_filled_tails(true);
    let mut original = BTreeMap::new();
    let existing = before_records(&log, &mut original);
    let journal = Arc::new(Journal::under(root));
    *JOURNAL.lock().unwrap() = Some(journal.clone());
    set_observer(Some(journal.clone()));
    let sink = FileAuditSink::open(setup.options(&log)).await.unwrap();
    let mut n = 0;
    // Every receipt the test got, to check that each answer was marked.
    let mut receipts = Vec::new();
    for step in steps {
        match step {
            Step::Append => {
                let receipt = sink.append(event(n)).await.unwrap();
                journal.mark(Mark::Returned { last: receipt.seq });
                n += 1;
                receipts.push(receipt);
            }
            Step::Group(size) => {
                let events: Vec<AuditEvent> = (n..n + size).map(event).collect();
                let group = sink.append_all(&events).await.unwrap();
                journal.mark(Mark::Returned {
                    last: group.last().unwrap().seq,
                });
                n += size;
                receipts.extend(group);
            }
            Step::Concurrent(k) => {
                let answers =
                    futures::future::join_all((n..n + k).map(|i| sink.append(event(i)))).await;
                n += k;
                for answer in answers {
                    let receipt = answer.unwrap();
                    journal.mark(Mark::Returned { last: receipt.seq });
                    receipts.push(receipt);
                }
            }
            Step::Sync => {
                sink.sync().await.unwrap();
                journal.mark(Mark::Returned {
                    last: receipts.last().map_or(0, |r| r.seq),
                });
            }
        }
    }
    sink.close().await.unwrap();
    journal.mark(Mark::Returned {
        last: receipts.last().map_or(0, |r| r.seq),
    });
    drop(sink);
    set_observer(None);
    *JOURNAL.lock().unwrap() = None;
    let events = journal.take();

    // Every answer the test saw was marked, before the test saw it.
    let (_, marks) = split(events.clone());
    let mut answered = BTreeSet::new();
    for (_, mark) in &marks {
        match *mark {
            Mark::Answer { first, last, .. } => answered.extend(first..=last),
            Mark::Returned { last } => assert!(
                last <= existing || answered.contains(&last),
                "{name}: the answer covering record {last} came back before lift_audit::ack said so: {marks:?}"
            ),
        }
    }
    let run = Run::new(name, setup, root, before, (existing, original), events);
    for receipt in &receipts {
        assert_eq!(
            run.original.get(&receipt.seq),
            Some(&receipt.hash_hex()),
            "{name}: receipt {} is not the record written",
            receipt.seq
        );
    }
    run
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

/// What [`check`] says of a state that lost an acknowledged record.
fn lost_ack(seq: u64) -> String {
    format!("record {seq} was acknowledged as durable before the crash but is lost")
}

/// Whether lift-audit's recovery handles a log whose unsynced tail reached
/// the disk out of order. It does: when a later append reached the disk and
/// an earlier one did not (a hole of zeros, or a torn record, before a later
/// record), `verify` reports `torn_record` and opening the sink cuts the tail
/// after the last good record (when no checkpoint covers past it) and records
/// a `repair.torn_tail` with cause `hole`. Such states must pass like the
/// others; with `false`, they would be counted as [`Seen::holed`] instead.
const HOLED_TAILS_RECOVER: bool = true;

/// What checking one crash state found, besides the invariants holding.
#[derive(Debug, Default, Clone)]
struct Seen {
    /// The log ended in a torn record, which recovery cut and recorded.
    torn: bool,
    /// The sealing rename of a rotation was lost; recovery completed it.
    unsealed: bool,
    /// The known gap of [`HOLED_TAILS_RECOVER`]: the unsynced tail has a
    /// hole, every fsynced record verified, and recovery refused (why).
    holed: Option<String>,
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
            Some(failure)
                if !HOLED_TAILS_RECOVER
                    && !state.in_order
                    && failure.finding == Finding::RecordModified
                    && failure.seq > run.synced[state.last] =>
            {
                // Every fsynced record verified; the damage is a hole in the
                // unsynced tail. Recovery refuses it (the known gap), or must
                // pass every check below.
                match FileAuditSink::open(run.setup.options(&log)).await {
                    Err(err) => {
                        std::fs::remove_dir_all(into).map_err(|e| e.to_string())?;
                        seen.holed = Some(format!(
                            "{} at record {}; recovery: {err}",
                            failure.finding, failure.seq
                        ));
                        return Ok(seen);
                    }
                    Ok(sink) => sink
                        .close()
                        .await
                        .map_err(|e| format!("closing after recovery failed: {e}"))?,
                }
            }
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
            return Err(lost_ack(ack.seq));
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
    /// States where some file's unsynced writes reached the disk out of order
    /// (with a hole), which the in-order model did not build.
    reordered: usize,
    torn: usize,
    unsealed: usize,
    /// States of the known gap of [`HOLED_TAILS_RECOVER`], and what the first said.
    holed: usize,
    holed_example: Option<String>,
    capped: usize,
    limited: usize,
}

/// The crash states of a run (its stream's operations).
fn states_of(run: &Run) -> Exploration<()> {
    explore(&run.before, &run.ops, |_| ()).unwrap()
}

async fn explore_run(run: &Run, scratch: &Path) -> Explored {
    let exploration = states_of(run);
    let mut explored = Explored {
        states: 0,
        reordered: 0,
        torn: 0,
        unsealed: 0,
        holed: 0,
        holed_example: None,
        capped: exploration.capped,
        limited: exploration.limited,
    };
    for (i, state) in exploration.states.iter().enumerate() {
        let into = scratch.join(format!("{}-{i}", run.name.replace(' ', "-")));
        match check(run, state, &into).await {
            Ok(Seen {
                holed: Some(why), ..
            }) => {
                explored.states += 1;
                explored.holed += 1;
                explored.reordered += 1;
                explored.holed_example.get_or_insert(why);
            }
            Ok(seen) => {
                explored.states += 1;
                explored.reordered += usize::from(!state.in_order);
                explored.torn += usize::from(seen.torn);
                explored.unsealed += usize::from(seen.unsealed);
            }
            Err(why) => panic!(
                "{} crash state {i} (after {} to {} of {} operations; the last: {:?}; in order: {}): {why}\nfiles: {:?}",
                run.name,
                state.first,
                state.last,
                run.ops.len(),
                state.last.checked_sub(1).map(|k| &run.ops[k]),
                state.in_order,
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

/// Checks every state of a negative control, returning each state that broke
/// a promise (its last prefix, and why) and how many states there were.
async fn broken(run: &Run, scratch: &Path) -> (Vec<(usize, String)>, Exploration<()>) {
    let exploration = states_of(run);
    let mut caught = Vec::new();
    for (i, state) in exploration.states.iter().enumerate() {
        let into = scratch.join(format!("{}-{i}", run.name.replace(' ', "-")));
        if let Err(why) = check(run, state, &into).await {
            caught.push((state.last, why));
        }
        let _ = std::fs::remove_dir_all(&into);
        let _ = std::fs::remove_dir_all(into.with_extension("view"));
    }
    (caught, exploration)
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
        max_batch: None,
    };
    use Step::{Append, Concurrent, Group, Sync};
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
        max_batch: None,
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
        max_batch: None,
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
    // Group commit under concurrent appends, one record per write: the writer
    // writes the next record while the syncer fsyncs the last, so several
    // unsynced writes can be in flight (the trace differs from run to run).
    let group_commit_concurrent = Setup {
        durability: Durability::GroupCommit,
        checkpoint_every: 0,
        max_file_bytes: None,
        max_batch: Some(1),
    };
    runs.push(
        record(
            "group commit concurrent",
            &dir.path().join("group-commit-concurrent"),
            group_commit_concurrent,
            &[Append, Concurrent(4), Concurrent(3)],
        )
        .await,
    );
    // Interval: appends are answered once written, and only sync and close fsync
    // (the interval is an hour); unsynced batches pile up, and the log rotates.
    let interval = Setup {
        durability: Durability::Interval(Duration::from_secs(3600)),
        checkpoint_every: 0,
        max_file_bytes: Some(2000),
        max_batch: None,
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
    let (mut reordered, mut torn, mut unsealed, mut capped, mut limited) = (0, 0, 0, 0, 0);
    let mut holed = 0;
    let mut holed_example = None;
    let mut renamed_fsyncs = 0;
    for run in &runs {
        assert!(
            !run.acks.is_empty() && run.synced.last() > Some(&0),
            "{}: nothing was acknowledged",
            run.name
        );
        let explored = explore_run(run, scratch.path()).await;
        total += explored.states;
        reordered += explored.reordered;
        torn += explored.torn;
        unsealed += explored.unsealed;
        renamed_fsyncs += run.renamed_fsyncs;
        capped += explored.capped;
        limited += explored.limited;
        holed += explored.holed;
        if holed_example.is_none() {
            holed_example = explored
                .holed_example
                .map(|why| format!("{}: {why}", run.name));
        }
        let mut notes = vec![
            format!("{} reordered", explored.reordered),
            format!("{} operations", run.ops.len()),
            format!("{} records", run.original.len()),
        ];
        if explored.holed > 0 {
            notes.push(format!("{} with a holed tail", explored.holed));
        }
        if explored.capped + explored.limited > 0 {
            notes.push(format!(
                "{} states capped, {} prefixes limited",
                explored.capped, explored.limited
            ));
        }
        parts.push(format!(
            "{} of {} ({})",
            explored.states,
            run.name,
            notes.join(", ")
        ));
        assert!(
            explored.states >= 20,
            "{}: only {} crash states",
            run.name,
            explored.states
        );
    }
    println!(
        "crash states checked: {total} ({}); {reordered} with unsynced writes reordered, {torn} ended in a torn record that recovery cut, {unsealed} lost a rotation's sealing rename that recovery completed; {capped} left out by the cap, {limited} prefixes with too many unsynced writes to reorder fully; {renamed_fsyncs} fsyncs of a file renamed since (applied to it by its inode)",
        parts.join(", ")
    );
    if HOLED_TAILS_RECOVER {
        assert_eq!(holed, 0);
    } else {
        println!(
            "KNOWN GAP: in {holed} reordered states the unsynced tail has a hole and recovery refuses the log, though every fsynced record verifies (e.g. {})",
            holed_example.as_deref().unwrap_or("-")
        );
        assert!(
            holed > 0,
            "no state with a holed tail failed: if lift-audit's recovery now handles them, set HOLED_TAILS_RECOVER to true"
        );
    }
    assert!(torn > 0, "no crash state had a torn record");
    assert!(unsealed > 0, "no crash state interrupted a rotation");
    assert!(reordered > 0, "no crash state reordered unsynced writes");
    let rotations = runs
        .iter()
        .flat_map(|r| &r.ops)
        .filter(|op| matches!(op, RecordedOp::Rename { from, .. } if is_log(from)))
        .count();
    assert!(rotations >= 2, "{rotations} rotations");

    // The explorer is not blind. Without the log's fsyncs, an acknowledged
    // record (or one a checkpoint covers) is lost in some crash state, and
    // only in states after something was promised.
    let run = runs.iter().find(|r| r.name == "group commit").unwrap();
    let mut unsynced = run.with_events(
        "group commit without fsync",
        run.events
            .iter()
            .filter(|e| !matches!(e, Event::Op(RecordedOp::Fsync { path, .. }) if is_log(path)))
            .cloned()
            .collect(),
    );
    // Every write to the log stays unsynced: sample the states.
    unsynced.before = unsynced.before.clone().max_states(1_500);
    let (caught, exploration) = broken(&unsynced, scratch.path()).await;
    let first_promise = unsynced.acks.iter().map(|a| a.at).min().unwrap();
    println!(
        "without the log's fsyncs, {} of {} crash states of {} break a promise ({} distinct, {} left out by the cap, {} prefixes limited)",
        caught.len(),
        exploration.states.len(),
        run.name,
        exploration.distinct,
        exploration.capped,
        exploration.limited
    );
    assert!(
        !caught.is_empty(),
        "the explorer missed the states a missing fsync allows"
    );
    for (last, why) in &caught {
        assert!(
            *last >= first_promise,
            "a state of a prefix before any promise ({last} < {first_promise}) was flagged: {why}"
        );
    }

    // An answer sent before the fsync that covers it: each append's answer
    // moved to just before that fsync. The checks must fail in the states
    // of exactly the prefix between the two, for a record of that answer.
    let mut early: BTreeMap<usize, Vec<Event<Mark>>> = BTreeMap::new();
    let mut windows: BTreeMap<usize, Vec<u64>> = BTreeMap::new();
    let mut moved = BTreeSet::new();
    for (i, event) in run.events.iter().enumerate() {
        let Event::Mark(Mark::Answer {
            barrier: false,
            first,
            last,
        }) = event
        else {
            continue;
        };
        // The write that holds the answer's last record, and the first fsync of that file after it.
        let write = run
            .events
            .iter()
            .position(|e| matches!(e, Event::Op(RecordedOp::Write { path, data, .. }) if is_log(path) && records(data).iter().any(|r| r.0 == *last)))
            .unwrap();
        let Event::Op(RecordedOp::Write { file: written, .. }) = &run.events[write] else {
            unreachable!()
        };
        let fsync = write
            + run.events[write..]
                .iter()
                .position(
                    |e| matches!(e, Event::Op(RecordedOp::Fsync { file, .. }) if file == written),
                )
                .unwrap();
        assert!(fsync < i, "an answer came before its fsync");
        early.entry(fsync).or_default().push(event.clone());
        moved.insert(i);
        let prefix = run.events[..fsync]
            .iter()
            .filter(|e| matches!(e, Event::Op(_)))
            .count();
        windows.entry(prefix).or_default().extend(*first..=*last);
    }
    let mut events = Vec::new();
    for (i, event) in run.events.iter().enumerate() {
        events.extend(early.remove(&i).unwrap_or_default());
        if !moved.contains(&i) {
            events.push(event.clone());
        }
    }
    let hasty = run.with_events("group commit answering before fsync", events);
    let (caught, exploration) = broken(&hasty, scratch.path()).await;
    for (last, why) in &caught {
        let expected: Vec<String> = windows
            .get(last)
            .into_iter()
            .flatten()
            .map(|seq| lost_ack(*seq))
            .collect();
        assert!(
            expected.contains(why),
            "a state of prefix {last} broke a promise the early answers do not explain: {why}"
        );
    }
    let hit: BTreeSet<usize> = caught.iter().map(|(last, _)| *last).collect();
    let missed: Vec<&usize> = windows.keys().filter(|k| !hit.contains(k)).collect();
    assert!(
        missed.is_empty(),
        "no state between an early answer and its fsync (after {missed:?} operations) lost its record"
    );
    println!(
        "answering appends before their fsync, {} of {} crash states of {} break a promise, all between an answer and its fsync ({} such points)",
        caught.len(),
        exploration.states.len(),
        run.name,
        windows.len()
    );
}
