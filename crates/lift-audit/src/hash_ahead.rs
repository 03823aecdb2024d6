//! Record hashes checked ahead of the verifier, on other cores.
//!
//! Recomputing each record's HMAC is most of what verifying a keyed log
//! costs, and unlike the chain's links it needs nothing from the records
//! before it. So, for a large log, worker threads read the same files from
//! the same place and check the hashes of alternate batches of lines, while
//! the verifier walks the chain in order and takes their answers.
//!
//! The verifier never trusts an answer about bytes it did not read itself:
//! each answer carries the line it is about, and is used only when that
//! line is byte for byte the one the verifier holds at the same position.
//! A file that changes under the walk, a worker that stops on an error, or
//! any other disagreement turns the workers off, and the verifier computes
//! the hashes itself from there on. The result never depends on the
//! workers; only the time does.

use std::ops::Range;
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use crate::lines::{Lines, Position};
use crate::record::{Hasher, RawRecord, parse_line};

/// Below this many bytes left to read, the threads cost more than they save.
const MIN_BYTES: u64 = 8 << 20;

/// A batch ends after this many lines…
const BATCH_LINES: usize = 512;

/// …or this many bytes, whichever comes first; with [`QUEUE`] this bounds the
/// memory the workers hold.
const BATCH_BYTES: usize = 1 << 20;

/// Batches a worker may have checked before the verifier takes them.
const QUEUE: usize = 2;

/// The most worker threads started, whatever the core count.
const MAX_WORKERS: usize = 4;

#[cfg(test)]
thread_local! {
    /// How many answers the verifier on this thread took from workers.
    static ANSWERS_USED: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Where a record's fields lie in its line, as a worker parsed it, so that
/// the walk need not parse the same bytes again.
#[derive(Debug, Clone)]
pub(crate) struct Parsed {
    seq: u64,
    time: Range<usize>,
    kid: Option<Range<usize>>,
    prev: [u8; 32],
    event: Range<usize>,
    hash: [u8; 32],
}

impl Parsed {
    fn of(line: &[u8], raw: &RawRecord<'_>) -> Parsed {
        let base = line.as_ptr() as usize;
        let range = |part: &[u8]| {
            let start = part.as_ptr() as usize - base;
            start..start + part.len()
        };
        Parsed {
            seq: raw.seq,
            time: range(raw.time.as_bytes()),
            kid: raw.kid.map(|kid| range(kid.as_bytes())),
            prev: raw.prev,
            event: range(raw.event),
            hash: raw.hash,
        }
    }

    /// The record these fields describe in `line`, which must be the bytes
    /// the worker parsed (the walk compares them first); `None` if not.
    pub(crate) fn record<'a>(&self, line: &'a [u8]) -> Option<RawRecord<'a>> {
        let text = |range: &Range<usize>| {
            line.get(range.clone())
                .and_then(|bytes| std::str::from_utf8(bytes).ok())
        };
        Some(RawRecord {
            seq: self.seq,
            time: text(&self.time)?,
            kid: match &self.kid {
                Some(kid) => Some(text(kid)?),
                None => None,
            },
            prev: self.prev,
            event: line.get(self.event.clone())?,
            hash: self.hash,
        })
    }
}

/// What a worker found for one line.
#[derive(Debug, Clone)]
pub(crate) struct Checked {
    /// Whether the line is a record whose hash matches its content.
    pub(crate) hash_ok: bool,
    /// Its fields, when it is a record.
    pub(crate) parsed: Option<Parsed>,
}

/// One line a worker checked.
struct Answer {
    position: Position,
    /// The line's bytes in [`Batch::bytes`].
    start: usize,
    end: usize,
    checked: Checked,
}

/// Consecutive lines checked by one worker.
#[derive(Default)]
struct Batch {
    bytes: Vec<u8>,
    answers: Vec<Answer>,
}

/// The workers, and the verifier's place in their answers.
pub(crate) struct HashAhead {
    workers: Vec<Receiver<Batch>>,
    /// Joined when the workers are turned off, so that none outlives the walk.
    threads: Vec<JoinHandle<()>>,
    /// Which worker holds the next batch.
    next_worker: usize,
    current: Batch,
    /// The next answer of `current` to look at.
    cursor: usize,
}

impl HashAhead {
    /// Starts workers at the place `lines` will read next, when there is
    /// enough left to read and more than one core; `None` otherwise.
    pub(crate) fn start(lines: &Lines, hasher: &Hasher) -> Option<HashAhead> {
        let (files, index, offset, line) = lines.resume_point();
        let remaining = files
            .iter()
            .skip(index)
            .filter_map(|f| std::fs::metadata(f).ok())
            .map(|m| m.len())
            .sum::<u64>()
            .saturating_sub(offset);
        if remaining < MIN_BYTES {
            return None;
        }
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        if cores < 2 {
            return None;
        }
        let count = cores.min(MAX_WORKERS);
        let mut ahead = HashAhead {
            workers: Vec::with_capacity(count),
            threads: Vec::with_capacity(count),
            next_worker: 0,
            current: Batch::default(),
            cursor: 0,
        };
        for me in 0..count {
            let (tx, rx) = sync_channel(QUEUE);
            let files = files.clone();
            let hasher = hasher.clone();
            let spawned = std::thread::Builder::new()
                .name("lift-audit-verify".to_owned())
                .spawn(move || work(files, (index, offset, line), &hasher, me, count, &tx));
            match spawned {
                Ok(thread) => {
                    ahead.workers.push(rx);
                    ahead.threads.push(thread);
                }
                // The verifier then simply checks every hash itself; dropping
                // `ahead` ends and joins the workers already started.
                Err(_) => return None,
            }
        }
        Some(ahead)
    }

    /// What a worker found for the line at `position`, whose bytes are
    /// `line`: whether it is a record with a matching hash, and its fields;
    /// `None` when no worker checked exactly these bytes there (the caller
    /// then parses and checks itself).
    pub(crate) fn lookup(&mut self, position: Position, line: &[u8]) -> Option<Checked> {
        loop {
            if self.workers.is_empty() {
                return None;
            }
            if self.cursor == self.current.answers.len() {
                let worker = self.next_worker % self.workers.len();
                match self.workers[worker].recv() {
                    Ok(batch) => {
                        self.current = batch;
                        self.cursor = 0;
                        self.next_worker += 1;
                        continue;
                    }
                    Err(_) => return self.stop(),
                }
            }
            let answer = &self.current.answers[self.cursor];
            let here = (answer.position.file, answer.position.line);
            let wanted = (position.file, position.line);
            if here < wanted {
                // A line the verifier passed over without needing its hash.
                self.cursor += 1;
                continue;
            }
            if here > wanted || self.current.bytes[answer.start..answer.end] != *line {
                return self.stop();
            }
            self.cursor += 1;
            #[cfg(test)]
            ANSWERS_USED.with(|used| used.set(used.get() + 1));
            return Some(answer.checked.clone());
        }
    }

    /// Turns the workers off: dropping their queues ends each at its next
    /// batch, and they are joined (a batch is at most [`BATCH_BYTES`]).
    fn stop(&mut self) -> Option<Checked> {
        self.workers.clear();
        for thread in self.threads.drain(..) {
            // A worker that panicked has nothing left to clean up.
            let _ = thread.join();
        }
        self.current = Batch::default();
        self.cursor = 0;
        None
    }
}

impl Drop for HashAhead {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Reads every line from the start point, and checks the hashes of batch
/// `me`, `me + count`, `me + 2 * count`, …; the others it only skips over.
fn work(
    files: Vec<PathBuf>,
    (index, offset, line): (usize, u64, u64),
    hasher: &Hasher,
    me: usize,
    count: usize,
    tx: &SyncSender<Batch>,
) {
    let mut lines = Lines::new(files);
    if lines.seek(index, offset, line).is_err() {
        return;
    }
    let mut batch_no = 0usize;
    let mut in_batch = 0usize;
    let mut batch_bytes = 0usize;
    let mut batch = Batch::default();
    loop {
        let next = match lines.next_line() {
            Ok(next) => next,
            // The verifier reads the same files and reports the error.
            Err(_) => return,
        };
        let Some((text, _, position)) = next else {
            break;
        };
        if batch_no % count == me {
            let start = batch.bytes.len();
            batch.bytes.extend_from_slice(text);
            let checked = match parse_line(text) {
                Ok(raw) => Checked {
                    hash_ok: hasher.check(&raw),
                    parsed: Some(Parsed::of(text, &raw)),
                },
                Err(_) => Checked {
                    hash_ok: false,
                    parsed: None,
                },
            };
            batch.answers.push(Answer {
                position,
                start,
                end: batch.bytes.len(),
                checked,
            });
        }
        in_batch += 1;
        batch_bytes += text.len() + 1;
        if in_batch == BATCH_LINES || batch_bytes >= BATCH_BYTES {
            if batch_no % count == me && tx.send(std::mem::take(&mut batch)).is_err() {
                return;
            }
            batch_no += 1;
            in_batch = 0;
            batch_bytes = 0;
        }
    }
    if batch_no % count == me && !batch.answers.is_empty() {
        let _ = tx.send(batch);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "a test: a failure should panic")]

    use std::path::Path;

    use super::*;
    use crate::AuditKey;
    use crate::record::{GENESIS, encode_line};

    fn log(records: u64, key: &AuditKey) -> (tempfile::TempDir, PathBuf, Vec<u8>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let hasher = Hasher::new(Some(key));
        let mut out = Vec::new();
        let mut prev = GENESIS;
        let event = format!("{{\"action\":\"x\",\"pad\":\"{}\"}}", "p".repeat(300));
        for seq in 1..=records {
            prev = encode_line(
                &mut out,
                &hasher,
                seq,
                "2026-12-02T00:00:00.000000Z",
                &prev,
                event.as_bytes(),
            );
        }
        std::fs::write(&path, &out).unwrap();
        (dir, path, out)
    }

    /// Walks the log as the verifier does, asking the workers for every line.
    fn walk(path: &Path, hasher: &Hasher) -> (Vec<Option<bool>>, Vec<bool>) {
        let mut lines = Lines::new(vec![path.to_path_buf()]);
        let mut ahead = HashAhead::start(&lines, hasher).expect("workers start on a large log");
        let (mut answers, mut truth) = (Vec::new(), Vec::new());
        while let Some((text, _, position)) = lines.next_line().unwrap() {
            let checked = ahead.lookup(position, text);
            // The fields handed over are the ones the walk would parse.
            let mine = parse_line(text).unwrap();
            let theirs = checked
                .as_ref()
                .and_then(|c| c.parsed.as_ref())
                .and_then(|p| p.record(text))
                .unwrap();
            assert_eq!(
                (
                    theirs.seq,
                    theirs.time,
                    theirs.kid,
                    theirs.prev,
                    theirs.event,
                    theirs.hash
                ),
                (
                    mine.seq, mine.time, mine.kid, mine.prev, mine.event, mine.hash
                )
            );
            answers.push(checked.map(|c| c.hash_ok));
            truth.push(hasher.check(&mine));
        }
        (answers, truth)
    }

    #[test]
    fn workers_answer_every_line_as_the_verifier_would() {
        if std::thread::available_parallelism().map_or(1, usize::from) < 2 {
            eprintln!("skipped: one core, so no workers start");
            return;
        }
        let key = AuditKey::from_bytes(b"hash-ahead test key, 32 bytes or more").unwrap();
        let (_dir, path, mut bytes) = log(40_000, &key);
        // One record's content edited: only that one fails its hash.
        let at = bytes.len() / 2;
        let at = at + memchr::memmem::find(&bytes[at..], b"\"pad\":\"p").unwrap() + 8;
        bytes[at] = b'q';
        std::fs::write(&path, &bytes).unwrap();
        let hasher = Hasher::new(Some(&key));
        let (answers, truth) = walk(&path, &hasher);
        assert_eq!(answers.len(), 40_000);
        assert!(answers.iter().all(Option::is_some), "every line answered");
        let answers: Vec<bool> = answers.into_iter().map(Option::unwrap_or_default).collect();
        assert_eq!(answers, truth);
        assert_eq!(truth.iter().filter(|ok| !**ok).count(), 1);
    }

    #[test]
    fn lines_the_workers_did_not_see_are_left_to_the_verifier() {
        if std::thread::available_parallelism().map_or(1, usize::from) < 2 {
            eprintln!("skipped: one core, so no workers start");
            return;
        }
        let key = AuditKey::from_bytes(b"hash-ahead test key, 32 bytes or more").unwrap();
        let (_dir, path, _) = log(40_000, &key);
        let hasher = Hasher::new(Some(&key));
        let mut lines = Lines::new(vec![path.clone()]);
        let mut ahead = HashAhead::start(&lines, &hasher).unwrap();
        let (text, _, position) = lines.next_line().unwrap().unwrap();
        let mut other = text.to_vec();
        other[20] ^= 1;
        // Different bytes at the same place: no answer, and none after it.
        assert!(ahead.lookup(position, &other).is_none());
        let (text, _, position) = lines.next_line().unwrap().unwrap();
        assert!(ahead.lookup(position, text).is_none());
    }

    #[test]
    fn verify_takes_the_workers_answers_and_still_names_an_edit() {
        if std::thread::available_parallelism().map_or(1, usize::from) < 2 {
            eprintln!("skipped: one core, so no workers start");
            return;
        }
        let key = AuditKey::from_bytes(b"hash-ahead test key, 32 bytes or more").unwrap();
        let (_dir, path, mut bytes) = log(40_000, &key);
        let options = crate::VerifyOptions {
            key: Some(key),
            allow_unanchored: true,
            no_default_checkpoint: true,
            ..crate::VerifyOptions::default()
        };
        ANSWERS_USED.with(|used| used.set(0));
        let report = crate::verify_with(std::slice::from_ref(&path), &options).unwrap();
        assert!(report.intact, "{:?}", report.failure);
        let used = ANSWERS_USED.with(std::cell::Cell::get);
        assert!(
            used > 30_000,
            "the walk took {used} answers from the workers"
        );

        let at = bytes.len() * 2 / 3;
        let at = at + memchr::memmem::find(&bytes[at..], b"\"pad\":\"p").unwrap() + 8;
        bytes[at] = b'q';
        std::fs::write(&path, &bytes).unwrap();
        let line = bytes[..at].iter().filter(|&&b| b == b'\n').count() as u64 + 1;
        let report = crate::verify_with(std::slice::from_ref(&path), &options).unwrap();
        let failure = report.failure.unwrap();
        assert_eq!(
            (failure.finding, failure.line),
            (crate::Finding::RecordModified, Some(line))
        );
    }

    #[test]
    fn a_small_log_starts_no_workers() {
        let key = AuditKey::from_bytes(b"hash-ahead test key, 32 bytes or more").unwrap();
        let (_dir, path, _) = log(100, &key);
        let lines = Lines::new(vec![path]);
        assert!(HashAhead::start(&lines, &Hasher::new(Some(&key))).is_none());
    }
}
