//! Streaming verification of a chain against its key and checkpoint.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use ed25519_dalek::VerifyingKey;

use crate::checkpoint::{Checkpoint, default_checkpoint_path};
use crate::error::{Error, Result};
use crate::hash_ahead::HashAhead;
use crate::key::AuditKey;
use crate::lines::{Lines, Position};
use crate::manifest::chain_files;
use crate::record::{
    GENESIS, Hasher, MAX_RECORD_LEN, has_complete_record_prefix, is_hole_line, next_digest,
    parse_line,
};

/// The action of the `audit` event a writer records when it finds a
/// non-empty log without its checkpoint.
pub const CHECKPOINT_MISSING_ACTION: &str = "checkpoint.missing";

/// The action of the `audit` event a writer records, with the detail
/// `public_key`, before it signs checkpoints with a signing key the chain has
/// not named yet. A verifier holding the chain key trusts exactly the keys so named.
pub const CHECKPOINT_KEY_ACTION: &str = "checkpoint.key";

/// What a verifier found wrong at the first bad record.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Finding {
    /// A record's bytes do not match its hash, it is malformed, or it does not link to its predecessor.
    RecordModified,
    /// A record is missing: the chain jumps over its sequence number.
    RecordDeleted,
    /// Records are out of order: the missing one appears later.
    RecordsReordered,
    /// A record appears twice.
    RecordDuplicated,
    /// The log ends before the record that the signed checkpoint covers.
    TailTruncated,
    /// The checkpoint's signature does not verify, or the checkpoint is unreadable.
    BadSignature,
    /// The log or checkpoint was written under another key (or none, or one was not given).
    WrongKey,
    /// The last line is a partial record, as a crash mid-write leaves it.
    TornRecord,
    /// Records that no surviving checkpoint covers: the checkpoint is missing,
    /// or a writer found it missing and recorded so, so cutting or rewriting
    /// those records could have gone unnoticed.
    Unanchored,
}

impl Finding {
    /// The human name: `record modified`, `tail truncated`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            Finding::RecordModified => "record modified",
            Finding::RecordDeleted => "record deleted",
            Finding::RecordsReordered => "records reordered",
            Finding::RecordDuplicated => "record duplicated",
            Finding::TailTruncated => "tail truncated",
            Finding::BadSignature => "bad signature",
            Finding::WrongKey => "wrong key",
            Finding::TornRecord => "torn record",
            Finding::Unanchored => "unanchored",
        }
    }
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The first problem found.
#[derive(
    Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct Failure {
    /// What was found.
    pub finding: Finding,
    /// The first bad sequence number: the seq expected where the chain broke
    /// (for a duplicate, the duplicated record's seq; for a bad checkpoint, its size).
    pub seq: u64,
    /// The file where it was found, when it is in a log file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// The 1-based line in that file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    /// A sentence saying what is wrong.
    pub message: String,
}

/// How the checkpoint's signature was checked.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum SignatureTrust {
    /// Against the public key derived from the audit key: the checkpoint is authentic.
    AuditKey,
    /// Against a public key the caller trusts.
    TrustedKey,
    /// Against the key embedded in the checkpoint: proves integrity, not origin.
    EmbeddedKey,
}

/// The checkpoint a verification used.
#[derive(
    Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct CheckpointReport {
    /// The checkpoint file.
    pub path: String,
    /// How many records it covers.
    pub size: u64,
    /// When it was made.
    pub time: String,
    /// How its signature was checked.
    pub trust: SignatureTrust,
}

/// The result of [`verify`]. `intact` is true exactly when `failure` is `None`.
#[derive(
    Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct VerifyReport {
    /// Whether the chain verified.
    pub intact: bool,
    /// The files read, in order.
    pub files: Vec<String>,
    /// How many records verified before the first problem (all of them when intact).
    pub records_checked: u64,
    /// How many bytes were read.
    pub bytes: u64,
    /// The seq of the last good record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seq: Option<u64>,
    /// The hash of the last good record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head: Option<String>,
    /// The time of the first record checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_time: Option<DateTime<Utc>>,
    /// The time of the last good record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_time: Option<DateTime<Utc>>,
    /// The audit key id, when verified with a key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    /// The checkpoint used, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<CheckpointReport>,
    /// The first problem, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
    /// How many good records follow the checkpoint's last one (all of them
    /// without a checkpoint): not yet covered by a signature.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub unsigned_records: u64,
    /// Things that do not make the chain fail but that an auditor should
    /// know, such as unanchored records accepted with `allow_unanchored`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

#[allow(
    clippy::trivially_copy_pass_by_ref,
    reason = "serde's skip_serializing_if passes a reference"
)]
fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Options of [`verify_with`].
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// The audit key of a keyed chain. Giving none for a keyed log is a `wrong key` failure.
    pub key: Option<AuditKey>,
    /// The checkpoint file. `None` uses `<first file>.checkpoint` when it exists.
    pub checkpoint: Option<PathBuf>,
    /// Never look for a default checkpoint.
    pub no_default_checkpoint: bool,
    /// A trusted checkpoint public key, for logs without an audit key.
    pub trusted_public_key: Option<VerifyingKey>,
    /// Accept records that no checkpoint covers (a log without its
    /// checkpoint, or one whose writer found the checkpoint missing) with a
    /// warning, instead of failing with [`Finding::Unanchored`].
    pub allow_unanchored: bool,
}

/// Verifies the chain in `files` (in order) with `key`, against `checkpoint` when given.
///
/// A single file with a `<file>.manifest` stands for all the files the manifest
/// lists. Without `checkpoint`, `<file>.checkpoint` is used when it exists.
/// Memory stays flat: records are streamed, not collected.
///
/// I/O errors (a missing file) are errors; anything wrong with the data is a
/// [`Failure`] in the report.
pub fn verify(
    files: &[PathBuf],
    key: Option<&AuditKey>,
    checkpoint: Option<&Path>,
) -> Result<VerifyReport> {
    verify_with(
        files,
        &VerifyOptions {
            key: key.cloned(),
            checkpoint: checkpoint.map(Path::to_owned),
            ..VerifyOptions::default()
        },
    )
}

/// [`verify`] with all options.
pub fn verify_with(files: &[PathBuf], options: &VerifyOptions) -> Result<VerifyReport> {
    let files = expand(files)?;
    if let Some(path) = &options.checkpoint {
        if std::fs::symlink_metadata(path).is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound)
        {
            // A mistyped path is bad input, not a tampered checkpoint.
            return Err(Error::InvalidInput(format!(
                "checkpoint file {}: no such file; check the path given as the checkpoint",
                path.display()
            )));
        }
    }
    let checkpoint_path = match (&options.checkpoint, options.no_default_checkpoint) {
        (Some(path), _) => Some(path.clone()),
        (None, false) => files
            .last()
            .map(|f| default_checkpoint_path(f))
            .filter(|p| p.exists()),
        (None, true) => None,
    };
    let mut report = VerifyReport {
        intact: false,
        files: files.iter().map(|f| f.display().to_string()).collect(),
        records_checked: 0,
        bytes: 0,
        last_seq: None,
        head: None,
        first_time: None,
        last_time: None,
        key_id: options.key.as_ref().map(|k| k.id().to_owned()),
        checkpoint: None,
        failure: None,
        unsigned_records: 0,
        warnings: Vec::new(),
    };
    let mut bound = None;
    let mut pending = Pending::Done;
    let mut public = None;
    if let Some(path) = &checkpoint_path {
        match check_checkpoint(path, options) {
            Ok((cp, trust, then)) => {
                bound = Some((cp.size, cp.head_bytes().unwrap_or(GENESIS)));
                pending = then;
                if public_mode(options, &cp) {
                    public = Some(PublicCheck {
                        kid: cp.key_id.clone(),
                        digest: cp.digest_bytes().unwrap_or(GENESIS),
                        running: GENESIS,
                    });
                }
                report.checkpoint = Some(CheckpointReport {
                    path: path.display().to_string(),
                    size: cp.size,
                    time: cp.time.clone(),
                    trust,
                });
            }
            Err(failure) => {
                report.failure = Some(failure);
                return Ok(report);
            }
        }
    }
    let hasher = Hasher::new(options.key.as_ref());
    let mut walk = Walk::new(&hasher, bound);
    walk.public = public;
    walk.collect_keys = matches!(pending, Pending::Announced(_));
    let mut lines = Lines::new(files);
    let failure = walk.run(&mut lines, true)?;
    walk.fill(&mut report, &lines);
    report.failure = failure;
    if let (None, Pending::Announced(key)) = (&report.failure, pending) {
        if walk.last_seq.is_some() && !walk.announced.contains(&key) {
            report.failure = Some(Failure {
                finding: Finding::BadSignature,
                seq: bound.map_or(0, |(size, _)| size),
                file: checkpoint_path.as_ref().map(|p| p.display().to_string()),
                line: None,
                message: format!(
                    "checkpoint {} is signed by key {}, which no record of the chain names as a checkpoint key: it was not signed by a writer of this log",
                    checkpoint_path
                        .as_ref()
                        .map_or_else(String::new, |p| p.display().to_string()),
                    hex::encode(key)
                ),
            });
        }
    }
    if report.failure.is_none() {
        check_anchors(&mut report, &walk, checkpoint_path.as_deref(), options);
        if walk.public.is_some() && report.unsigned_records > 0 {
            let last = walk.last_seq.unwrap_or(0);
            let first = last - report.unsigned_records + 1;
            report.warnings.push(format!(
                "records {first} to {last} are not yet signed by a checkpoint: without the audit key, only their order and links were checked, not their content"
            ));
        }
    }
    report.intact = report.failure.is_none();
    Ok(report)
}

/// Finds the records no surviving checkpoint covers, and counts those not yet signed.
fn check_anchors(
    report: &mut VerifyReport,
    walk: &Walk<'_>,
    checkpoint: Option<&Path>,
    options: &VerifyOptions,
) {
    let last = walk.last_seq.unwrap_or(0);
    let signed = report.checkpoint.as_ref().map_or(0, |cp| cp.size);
    report.unsigned_records = last.saturating_sub(signed);
    let unanchored = match (&report.checkpoint, walk.anchor_lost) {
        (None, _) if last > 0 => Some((
            last,
            match checkpoint {
                Some(path) => format!(
                    "records 1 to {last} are unanchored: checkpoint {} is missing, so records cut from the end or rewritten with the chain key cannot be detected",
                    path.display()
                ),
                None => format!(
                    "records 1 to {last} are unanchored: there is no checkpoint, so records cut from the end or rewritten with the chain key cannot be detected; give the checkpoint with --checkpoint"
                ),
            },
        )),
        (_, Some((at, records))) if records > 0 => Some((
            records,
            format!(
                "records 1 to {records} are unanchored: record {at} says a writer found the checkpoint missing then, so those records may have been cut or rewritten before; only later checkpoints cover them"
            ),
        )),
        _ => None,
    };
    if let Some((_, message)) = unanchored {
        if options.allow_unanchored {
            report.warnings.push(message);
        } else {
            report.failure = Some(Failure {
                finding: Finding::Unanchored,
                seq: 1,
                file: None,
                line: None,
                message,
            });
        }
    }
}

/// Verifies only the records after the checkpoint, starting at its hinted offset.
///
/// Falls back to a full verification when the hint does not point at the
/// checkpointed record. Used by the health check, so that it stays cheap on big logs.
pub fn verify_since_checkpoint(log: &Path, options: &VerifyOptions) -> Result<VerifyReport> {
    let files = chain_files(log)?;
    let path = options
        .checkpoint
        .clone()
        .unwrap_or_else(|| default_checkpoint_path(log));
    let Ok(Some(cp)) = Checkpoint::load_if_exists(&path) else {
        return verify_with(&files, options);
    };
    let hint = cp.file.as_ref().and_then(|name| {
        let index = files
            .iter()
            .position(|f| f.file_name().is_some_and(|n| n.to_string_lossy() == *name))?;
        Some((index, cp.offset?))
    });
    let (Some((index, offset)), Some(head)) = (hint, cp.head_bytes()) else {
        return verify_with(&files, options);
    };
    let trust = match check_checkpoint(&path, options) {
        Ok((_, trust, Pending::Done)) if !public_mode(options, &cp) => trust,
        // Whether the chain names the signing key is known only from a walk
        // from the first record; from the checkpoint on, the signature
        // proves integrity only, and the report says so.
        Ok((_, _, Pending::Announced(_))) if !public_mode(options, &cp) => {
            SignatureTrust::EmbeddedKey
        }
        _ => return verify_with(&files, options),
    };
    let hasher = Hasher::new(options.key.as_ref());
    let mut lines = Lines::new(files.clone());
    lines.seek(index, offset, 0)?;
    let anchored = match lines.next_line()? {
        Some((line, true, _)) => parse_line(line)
            .ok()
            .is_some_and(|raw| raw.seq == cp.size && raw.hash == head && hasher.check(&raw)),
        _ => false,
    };
    if !anchored {
        return verify_with(&files, options);
    }
    let mut walk = Walk::new(&hasher, Some((cp.size, head)));
    walk.expected = cp.size + 1;
    walk.prev = head;
    walk.last_seq = Some(cp.size);
    let failure = walk.run(&mut lines, false)?;
    let mut report = VerifyReport {
        intact: failure.is_none(),
        files: files.iter().map(|f| f.display().to_string()).collect(),
        records_checked: 0,
        bytes: 0,
        last_seq: None,
        head: None,
        first_time: None,
        last_time: None,
        key_id: options.key.as_ref().map(|k| k.id().to_owned()),
        checkpoint: Some(CheckpointReport {
            path: path.display().to_string(),
            size: cp.size,
            time: cp.time.clone(),
            trust,
        }),
        failure,
        unsigned_records: 0,
        warnings: Vec::new(),
    };
    walk.fill(&mut report, &lines);
    if report.failure.is_none() {
        report.unsigned_records = walk.last_seq.unwrap_or(0).saturating_sub(cp.size);
    }
    Ok(report)
}

fn expand(files: &[PathBuf]) -> Result<Vec<PathBuf>> {
    match files {
        [single] => chain_files(single),
        _ => Ok(files.to_vec()),
    }
}

/// How a checkpoint's signer is to be trusted once the chain has been read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pending {
    /// Nothing left to check.
    Done,
    /// Verified with the audit key but signed by a key it does not derive:
    /// trusted only if the chain names this key in a `checkpoint.key` record.
    Announced([u8; 32]),
}

/// Whether the verification runs without the chain key, against a trusted
/// public key, on a keyed log: the checkpoint's content digest then stands
/// in for the record hashes that cannot be recomputed.
fn public_mode(options: &VerifyOptions, cp: &Checkpoint) -> bool {
    options.key.is_none() && options.trusted_public_key.is_some() && cp.key_id.is_some()
}

fn check_checkpoint(
    path: &Path,
    options: &VerifyOptions,
) -> std::result::Result<(Checkpoint, SignatureTrust, Pending), Failure> {
    let fail = |finding, seq, message: String| Failure {
        finding,
        seq,
        file: Some(path.display().to_string()),
        line: None,
        message,
    };
    let cp = Checkpoint::load(path).map_err(|e| fail(Finding::BadSignature, 0, e.to_string()))?;
    let expected_kid = options.key.as_ref().map(AuditKey::id);
    if cp.key_id.as_deref() != expected_kid && !public_mode(options, &cp) {
        let message = match (cp.key_id.as_deref(), expected_kid) {
            (Some(theirs), None) => format!(
                "the checkpoint was made with audit key {theirs}; pass that key with --key-file or LIFT_AUDIT_KEY_FILE, or verify up to the checkpoint without it with --public-key"
            ),
            (None, Some(ours)) => {
                format!("the checkpoint was made without an audit key, but key {ours} was given")
            }
            (theirs, ours) => format!(
                "the checkpoint was made with audit key {}, not with the given key {}",
                theirs.unwrap_or("-"),
                ours.unwrap_or("-")
            ),
        };
        return Err(fail(Finding::WrongKey, cp.size, message));
    }
    if public_mode(options, &cp) && cp.digest_bytes().is_none() {
        return Err(fail(
            Finding::WrongKey,
            cp.size,
            format!(
                "checkpoint {} has no content digest (it was written by an older lift), so its records cannot be checked without the audit key; pass the key with --key-file, or verify against a checkpoint written since",
                path.display()
            ),
        ));
    }
    let embedded = cp
        .public_key_bytes()
        .and_then(|b| VerifyingKey::from_bytes(&b).ok());
    let bad = || {
        fail(
            Finding::BadSignature,
            cp.size,
            format!(
                "the signature of checkpoint {} (size {}) does not verify; the checkpoint or its signing key was tampered with",
                path.display(),
                cp.size
            ),
        )
    };
    let (key, trust, pending) = match (&options.key, &options.trusted_public_key, embedded) {
        (_, Some(trusted), _) => (Some(*trusted), SignatureTrust::TrustedKey, Pending::Done),
        (Some(key), None, Some(embedded)) => {
            let legacy = key.signer().verifying_key();
            let pending = if embedded == legacy {
                Pending::Done
            } else {
                Pending::Announced(embedded.to_bytes())
            };
            (Some(embedded), SignatureTrust::AuditKey, pending)
        }
        (None, None, _) => (None, SignatureTrust::EmbeddedKey, Pending::Done),
        (Some(_), None, None) => return Err(bad()),
    };
    if cp.head_bytes().is_none() || !cp.verify_signature(key.as_ref()) {
        return Err(bad());
    }
    Ok((cp, trust, pending))
}

/// The chain walk: the state of a streaming verification.
struct Walk<'a> {
    hasher: &'a Hasher,
    bound: Option<(u64, [u8; 32])>,
    expected: u64,
    prev: [u8; 32],
    records: u64,
    last_seq: Option<u64>,
    first_time: Option<String>,
    last_time: String,
    /// The latest `checkpoint.missing` record: its seq, and how many records it says no checkpoint covered.
    anchor_lost: Option<(u64, u64)>,
    system_finder: memchr::memmem::Finder<'static>,
    /// Without the chain key: what stands in for the record hashes.
    public: Option<PublicCheck>,
    /// Collect the checkpoint keys the chain names.
    collect_keys: bool,
    /// The checkpoint keys named by `checkpoint.key` records (at most [`MAX_ANNOUNCED`]).
    announced: Vec<[u8; 32]>,
}

/// Verification without the chain key: the records' hashes cannot be
/// recomputed, so their content is checked through the checkpoint's digest.
#[derive(Debug, Clone)]
struct PublicCheck {
    /// The key id every record must carry.
    kid: Option<String>,
    /// The signed digest of records 1 to the checkpoint's size.
    digest: [u8; 32],
    /// The digest of the records read so far.
    running: [u8; 32],
}

/// The most checkpoint keys a verification remembers: key rotations are rare,
/// and memory must not grow with a hostile log.
const MAX_ANNOUNCED: usize = 4096;

/// The bytes by which the writers' `checkpoint.*` system events are spotted
/// before they are parsed: one search per record, whatever it holds.
const SYSTEM_NEEDLE: &[u8] = b"\"event_type\":\"audit\",\"action\":\"checkpoint.";

/// A writer's `checkpoint.*` system event, parsed.
enum SystemEvent {
    /// `checkpoint.missing`: how many records it says are unanchored.
    Missing(u64),
    /// `checkpoint.key`: the signing public key it names.
    Key([u8; 32]),
}

fn system_event(event: &[u8]) -> Option<SystemEvent> {
    let event: lift_core::AuditEvent = serde_json::from_slice(event).ok()?;
    if event.event_type != "audit" {
        return None;
    }
    match event.action.as_str() {
        CHECKPOINT_MISSING_ACTION => event
            .details
            .get("unanchored_records")?
            .as_u64()
            .map(SystemEvent::Missing),
        CHECKPOINT_KEY_ACTION => {
            let hex_key = event.details.get("public_key")?.as_str()?;
            hex::decode(hex_key)
                .ok()
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
                .map(SystemEvent::Key)
        }
        _ => None,
    }
}

/// Whether a first bad line is what a crash leaves when unsynced writes
/// reach the disk out of order: a record line never holds a raw NUL byte
/// (JSON escapes it) and a hole reads as zeros, so the line holds a NUL;
/// and, when it has its newline, that newline ends a later record, so the
/// byte before it is not a NUL (a line of zeros ending in a newline is no
/// crash's work).
fn is_hole(line: &[u8], terminated: bool) -> bool {
    if !terminated || line.len() > MAX_RECORD_LEN {
        // A last line without its newline, or one longer than any record
        // (`Lines` keeps its start and its real last byte): zeros in it can
        // only be a crash's, or the line is no record anyway.
        memchr::memchr(0, line).is_some() && (!terminated || line.last().is_some_and(|b| *b != 0))
    } else {
        is_hole_line(line)
    }
}

impl<'a> Walk<'a> {
    fn new(hasher: &'a Hasher, bound: Option<(u64, [u8; 32])>) -> Self {
        Walk {
            hasher,
            bound,
            expected: 1,
            prev: GENESIS,
            records: 0,
            last_seq: None,
            first_time: None,
            last_time: String::new(),
            anchor_lost: None,
            system_finder: memchr::memmem::Finder::new(SYSTEM_NEEDLE),
            public: None,
            collect_keys: false,
            announced: Vec::new(),
        }
    }

    /// The key id records must carry: the verifier's, or in public mode the checkpoint's.
    fn expected_kid(&self) -> Option<&str> {
        match &self.public {
            Some(public) => public.kid.as_deref(),
            None => self.hasher.kid(),
        }
    }

    fn fail(
        &self,
        lines: &Lines,
        finding: Finding,
        seq: u64,
        pos: Option<Position>,
        message: String,
    ) -> Failure {
        Failure {
            finding,
            seq,
            file: pos.map(|p| lines.path(p.file).display().to_string()),
            line: pos.map(|p| p.line),
            message,
        }
    }

    fn run(&mut self, lines: &mut Lines, from_genesis: bool) -> Result<Option<Failure>> {
        // A first record under another key id is either the wrong key (the next
        // record carries the same id) or an edit of that record (it does not).
        let mut pending_kid: Option<(Position, Option<String>)> = None;
        // Without the key the content is checked through the running
        // digest, which is sequential; with it, other cores check hashes ahead.
        let mut ahead = if self.public.is_none() {
            HashAhead::start(lines, self.hasher)
        } else {
            None
        };
        // A hole is possible only in the last file, where a crash leaves
        // unsynced writes.
        let file_count = lines.file_count();
        while let Some((line, terminated, pos)) = lines.next_line()? {
            let expected = self.expected;
            if let Some((first_pos, first_kid)) = pending_kid.take() {
                let next_kid = parse_line(line).ok().map(|r| r.kid.map(str::to_owned));
                if next_kid.is_none() || next_kid == Some(first_kid.clone()) {
                    let message = self.wrong_key_message(first_kid.as_deref());
                    return Ok(Some(self.fail(
                        lines,
                        Finding::WrongKey,
                        expected,
                        Some(first_pos),
                        message,
                    )));
                }
                let message = format!(
                    "record {expected} was modified: its key id differs from the records after it"
                );
                return Ok(Some(self.fail(
                    lines,
                    Finding::RecordModified,
                    expected,
                    Some(first_pos),
                    message,
                )));
            }
            if pos.file + 1 == file_count && is_hole(line, terminated) && !self.covered(expected) {
                // No record holds a raw NUL byte, and a hole always reads as
                // zeros: unsynced writes that reached the disk out of order.
                let message = format!(
                    "record {expected} is torn: its line holds zero bytes, as a crash leaves unsynced writes that reached the disk out of order (a hole); opening the log with the sink cuts it and what follows"
                );
                return Ok(Some(self.fail(
                    lines,
                    Finding::TornRecord,
                    expected,
                    Some(pos),
                    message,
                )));
            }
            if !terminated {
                let complete = has_complete_record_prefix(line);
                return Ok(Some(self.unterminated(lines, complete, pos)));
            }
            // A worker that checked these very bytes has parsed them too.
            let checked = ahead.as_mut().and_then(|ahead| ahead.lookup(pos, line));
            let parsed = checked
                .as_ref()
                .and_then(|checked| checked.parsed.as_ref())
                .and_then(|parsed| parsed.record(line));
            let raw = match parsed.map_or_else(|| parse_line(line), Ok) {
                Ok(raw) => raw,
                Err(why) => {
                    let message = format!(
                        "record {expected} was modified: the line is not a canonical record ({why})"
                    );
                    return Ok(Some(self.fail(
                        lines,
                        Finding::RecordModified,
                        expected,
                        Some(pos),
                        message,
                    )));
                }
            };
            if from_genesis && self.records == 0 && raw.kid != self.expected_kid() {
                pending_kid = Some((pos, raw.kid.map(str::to_owned)));
                continue;
            }
            if self.public.is_some() && raw.kid != self.expected_kid() {
                let message = format!(
                    "record {expected} was modified: its key id differs from the checkpoint's"
                );
                return Ok(Some(self.fail(
                    lines,
                    Finding::RecordModified,
                    expected,
                    Some(pos),
                    message,
                )));
            }
            if self.public.is_none()
                && !checked.map_or_else(|| self.hasher.check(&raw), |checked| checked.hash_ok)
            {
                let message =
                    format!("record {expected} was modified: its content does not match its hash");
                return Ok(Some(self.fail(
                    lines,
                    Finding::RecordModified,
                    expected,
                    Some(pos),
                    message,
                )));
            }
            if raw.seq > expected {
                let seq = raw.seq;
                return Ok(Some(self.classify_jump(lines, seq, pos)?));
            }
            if raw.seq < expected {
                let seq = raw.seq;
                let message = format!(
                    "record {seq} appears again at {}:{} after record {}",
                    lines.path(pos.file).display(),
                    pos.line,
                    expected - 1
                );
                return Ok(Some(self.fail(
                    lines,
                    Finding::RecordDuplicated,
                    seq,
                    Some(pos),
                    message,
                )));
            }
            if raw.prev != self.prev {
                let message = format!(
                    "record {expected} was modified: it does not link to record {}",
                    expected.saturating_sub(1)
                );
                return Ok(Some(self.fail(
                    lines,
                    Finding::RecordModified,
                    expected,
                    Some(pos),
                    message,
                )));
            }
            if let Some((size, head)) = self.bound {
                if raw.seq == size && raw.hash != head {
                    let message = format!(
                        "record {size} differs from the signed checkpoint: the chain up to it was rewritten"
                    );
                    return Ok(Some(self.fail(
                        lines,
                        Finding::RecordModified,
                        size,
                        Some(pos),
                        message,
                    )));
                }
            }
            if let Some(public) = &mut self.public {
                public.running = next_digest(&public.running, line);
                if let Some((size, _)) = self.bound {
                    if raw.seq == size && public.running != public.digest {
                        let message = format!(
                            "the content of records 1 to {size} does not match the digest the checkpoint signed: one of them was modified (verify with the audit key to find which)"
                        );
                        return Ok(Some(self.fail(
                            lines,
                            Finding::RecordModified,
                            size,
                            Some(pos),
                            message,
                        )));
                    }
                }
            }
            if self.system_finder.find(raw.event).is_some() {
                match system_event(raw.event) {
                    Some(SystemEvent::Missing(records)) => {
                        self.anchor_lost = Some((raw.seq, records));
                    }
                    Some(SystemEvent::Key(key))
                        if self.collect_keys && self.announced.len() < MAX_ANNOUNCED =>
                    {
                        self.announced.push(key);
                    }
                    _ => {}
                }
            }
            if self.first_time.is_none() {
                self.first_time = Some(raw.time.to_owned());
            }
            self.last_time.clear();
            self.last_time.push_str(raw.time);
            self.records += 1;
            self.last_seq = Some(raw.seq);
            self.expected = raw.seq + 1;
            self.prev = raw.hash;
        }
        if let Some((first_pos, first_kid)) = pending_kid {
            let message = self.wrong_key_message(first_kid.as_deref());
            return Ok(Some(self.fail(
                lines,
                Finding::WrongKey,
                self.expected,
                Some(first_pos),
                message,
            )));
        }
        if let Some((size, _)) = self.bound {
            if self.expected <= size {
                let message = format!(
                    "the log ends at record {} but the signed checkpoint covers {size} records: the tail was truncated",
                    self.expected - 1
                );
                return Ok(Some(self.fail(
                    lines,
                    Finding::TailTruncated,
                    self.expected,
                    None,
                    message,
                )));
            }
        }
        Ok(None)
    }

    fn wrong_key_message(&self, theirs: Option<&str>) -> String {
        match (theirs, self.hasher.kid()) {
            (Some(theirs), None) => format!(
                "the log is keyed with audit key {theirs}; pass that key with --key-file or LIFT_AUDIT_KEY_FILE"
            ),
            (None, Some(ours)) => {
                format!("the log is not keyed, but audit key {ours} was given")
            }
            (theirs, ours) => format!(
                "the log was written with audit key {}, not with the given key {}",
                theirs.unwrap_or("-"),
                ours.unwrap_or("-")
            ),
        }
    }

    fn unterminated(&self, lines: &Lines, complete: bool, pos: Position) -> Failure {
        let expected = self.expected;
        if complete {
            let message =
                format!("record {expected} was modified: bytes follow its end without a newline");
            return self.fail(lines, Finding::RecordModified, expected, Some(pos), message);
        }
        match self.bound {
            Some((size, _)) if expected <= size => {
                let message = format!(
                    "the log ends in a partial record {expected} but the signed checkpoint covers {size} records: the tail was truncated"
                );
                self.fail(lines, Finding::TailTruncated, expected, Some(pos), message)
            }
            _ => {
                let message = format!(
                    "record {expected} is torn: the last line has no newline, as a crash mid-write leaves it; opening the log with the sink repairs it"
                );
                self.fail(lines, Finding::TornRecord, expected, Some(pos), message)
            }
        }
    }

    /// Whether the signed checkpoint covers record `seq`.
    fn covered(&self, seq: u64) -> bool {
        self.bound.is_some_and(|(size, _)| seq <= size)
    }

    /// Record `seq` stands where `self.expected` belongs: scan on to tell a
    /// duplicate (seq appears again), a reordering (expected appears later) and
    /// a deletion (it never does). Only sequence numbers are kept, so memory stays flat.
    fn classify_jump(&self, lines: &mut Lines, seq: u64, pos: Position) -> Result<Failure> {
        let expected = self.expected;
        let path = lines.path(pos.file).display().to_string();
        let mut found_expected = false;
        while let Some((line, _, _)) = lines.next_line()? {
            let Ok(raw) = parse_line(line) else { continue };
            if raw.seq == seq {
                let message = format!(
                    "record {seq} appears twice, first at {path}:{} before record {expected}",
                    pos.line
                );
                return Ok(self.fail(lines, Finding::RecordDuplicated, seq, Some(pos), message));
            }
            if raw.seq == expected {
                found_expected = true;
            }
        }
        Ok(if found_expected {
            let message = format!(
                "records were reordered: record {seq} stands where record {expected} belongs"
            );
            self.fail(
                lines,
                Finding::RecordsReordered,
                expected,
                Some(pos),
                message,
            )
        } else {
            let message = if seq == expected + 1 {
                format!(
                    "record {expected} was deleted: the chain jumps from {} to {seq}",
                    expected - 1
                )
            } else {
                format!(
                    "records {expected} to {} were deleted: the chain jumps from {} to {seq}",
                    seq - 1,
                    expected - 1
                )
            };
            self.fail(lines, Finding::RecordDeleted, expected, Some(pos), message)
        })
    }

    fn fill(&self, report: &mut VerifyReport, lines: &Lines) {
        let parse = |t: &str| {
            DateTime::parse_from_rfc3339(t)
                .ok()
                .map(|t| t.with_timezone(&Utc))
        };
        report.records_checked = self.records;
        report.bytes = lines.bytes();
        report.last_seq = self.last_seq;
        report.head = self.last_seq.map(|_| hex::encode(self.prev));
        report.first_time = self.first_time.as_deref().and_then(parse);
        report.last_time = if self.records > 0 {
            parse(&self.last_time)
        } else {
            None
        };
    }
}
