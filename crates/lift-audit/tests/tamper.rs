//! Tampering with a log is detected and named: property tests over edits of every kind.

#![allow(clippy::unwrap_used, reason = "a failing unwrap is a failing test")]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use lift_audit::{
    AuditKey, FileAuditSink, Finding, SinkOptions, VerifyOptions, VerifyReport, verify_with,
};
use lift_core::{AuditEvent, Resource};
use proptest::prelude::*;

const RECORDS: usize = 8;

struct Base {
    lines: Vec<Vec<u8>>,
    checkpoint: Vec<u8>,
    key: Option<AuditKey>,
}

fn build(key: Option<AuditKey>) -> Base {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let sink = FileAuditSink::open(SinkOptions::new(&log).key(key.clone()))
            .await
            .unwrap();
        // A keyed chain starts with the record naming its checkpoint signing
        // key: the logs under test hold RECORDS records either way.
        let events = if key.is_some() { RECORDS - 1 } else { RECORDS };
        for i in 0..events {
            let event = AuditEvent::new(
                "secrets",
                format!("put.{i}"),
                Resource::new("secret", format!("app/s{i}")),
            )
            .detail("n", i as u64)
            .correlation_id("c-1");
            sink.append(event).await.unwrap();
        }
        sink.close().await.unwrap();
    });
    let bytes = std::fs::read(&log).unwrap();
    let lines = bytes
        .split_inclusive(|&b| b == b'\n')
        .map(<[u8]>::to_vec)
        .collect::<Vec<_>>();
    assert_eq!(lines.len(), RECORDS);
    Base {
        lines,
        checkpoint: std::fs::read(dir.path().join("audit.jsonl.checkpoint")).unwrap(),
        key,
    }
}

fn base(keyed: bool) -> &'static Base {
    static PLAIN: OnceLock<Base> = OnceLock::new();
    static KEYED: OnceLock<Base> = OnceLock::new();
    if keyed {
        KEYED.get_or_init(|| {
            build(Some(
                AuditKey::from_bytes(b"an audit key of at least 32 bytes!!").unwrap(),
            ))
        })
    } else {
        PLAIN.get_or_init(|| build(None))
    }
}

/// Writes `bytes` as a log beside the base's checkpoint and verifies it.
///
/// Without the checkpoint, unanchored records are accepted (with a warning),
/// so that the finding under test is the one about the edit.
fn check(base: &Base, bytes: &[u8], with_checkpoint: bool) -> VerifyReport {
    check_with(base, bytes, with_checkpoint, !with_checkpoint)
}

fn check_with(
    base: &Base,
    bytes: &[u8],
    with_checkpoint: bool,
    allow_unanchored: bool,
) -> VerifyReport {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    std::fs::write(&log, bytes).unwrap();
    let checkpoint = dir.path().join("cp");
    std::fs::write(&checkpoint, &base.checkpoint).unwrap();
    let options = VerifyOptions {
        key: base.key.clone(),
        checkpoint: with_checkpoint.then(|| checkpoint.clone()),
        no_default_checkpoint: true,
        allow_unanchored,
        ..VerifyOptions::default()
    };
    let report = verify_with(&[log], &options).unwrap();
    assert_eq!(report.intact, report.failure.is_none());
    report
}

fn finding(report: &VerifyReport) -> Option<(Finding, u64)> {
    report.failure.as_ref().map(|f| (f.finding, f.seq))
}

fn join(lines: &[Vec<u8>]) -> Vec<u8> {
    lines.concat()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn intact_logs_verify(keyed in any::<bool>(), with_checkpoint in any::<bool>()) {
        let base = base(keyed);
        let report = check(base, &join(&base.lines), with_checkpoint);
        prop_assert!(report.intact, "{:?}", report.failure);
        prop_assert_eq!(report.records_checked, RECORDS as u64);
        prop_assert_eq!(report.last_seq, Some(RECORDS as u64));
        prop_assert!(report.first_time.is_some() && report.last_time >= report.first_time);
        if with_checkpoint {
            prop_assert!(report.warnings.is_empty());
            prop_assert_eq!(report.unsigned_records, 0);
        } else {
            // Accepted only when asked, and said so.
            prop_assert!(report.warnings[0].contains("records 1 to 8 are unanchored"), "{:?}", report.warnings);
            prop_assert_eq!(report.unsigned_records, RECORDS as u64);
            let strict = check_with(base, &join(&base.lines), false, false);
            prop_assert_eq!(finding(&strict), Some((Finding::Unanchored, 1)));
            prop_assert!(strict.failure.unwrap().message.contains("records 1 to 8"));
        }
    }

    #[test]
    fn any_single_byte_change_is_a_modified_record(
        keyed in any::<bool>(),
        record in 0..RECORDS,
        at in any::<prop::sample::Index>(),
        value in any::<u8>(),
        with_checkpoint in any::<bool>(),
    ) {
        let base = base(keyed);
        let mut lines = base.lines.clone();
        let i = at.index(lines[record].len());
        prop_assume!(lines[record][i] != value);
        lines[record][i] = value;
        let report = check(base, &join(&lines), with_checkpoint);
        prop_assert_eq!(finding(&report), Some((Finding::RecordModified, record as u64 + 1)), "{:?}", report.failure);
    }

    #[test]
    fn deleted_records_are_named(keyed in any::<bool>(), record in 0..RECORDS) {
        let base = base(keyed);
        let mut lines = base.lines.clone();
        lines.remove(record);
        let report = check(base, &join(&lines), true);
        let expected = if record == RECORDS - 1 { Finding::TailTruncated } else { Finding::RecordDeleted };
        prop_assert_eq!(finding(&report), Some((expected, record as u64 + 1)), "{:?}", report.failure);
    }

    #[test]
    fn duplicated_records_are_named(keyed in any::<bool>(), record in 0..RECORDS, at in 0..=RECORDS, with_checkpoint in any::<bool>()) {
        let base = base(keyed);
        let mut lines = base.lines.clone();
        lines.insert(at, base.lines[record].clone());
        let report = check(base, &join(&lines), with_checkpoint);
        prop_assert_eq!(finding(&report), Some((Finding::RecordDuplicated, record as u64 + 1)), "{:?}", report.failure);
    }

    #[test]
    fn swapped_records_are_named(keyed in any::<bool>(), a in 0..RECORDS, b in 0..RECORDS, with_checkpoint in any::<bool>()) {
        prop_assume!(a != b);
        let (a, b) = (a.min(b), a.max(b));
        let base = base(keyed);
        let mut lines = base.lines.clone();
        lines.swap(a, b);
        let report = check(base, &join(&lines), with_checkpoint);
        prop_assert_eq!(finding(&report), Some((Finding::RecordsReordered, a as u64 + 1)), "{:?}", report.failure);
    }

    #[test]
    fn truncated_tails_are_named_with_a_checkpoint(keyed in any::<bool>(), cut in any::<prop::sample::Index>()) {
        let base = base(keyed);
        let bytes = join(&base.lines);
        let len = cut.index(bytes.len());
        let report = check(base, &bytes[..len], true);
        let kept = bytes[..len].iter().filter(|&&b| b == b'\n').count() as u64;
        prop_assert_eq!(finding(&report), Some((Finding::TailTruncated, kept + 1)), "{:?}", report.failure);
    }

    #[test]
    fn checkpoint_edits_are_bad_signatures(keyed in any::<bool>(), at in any::<prop::sample::Index>()) {
        let base = base(keyed);
        let mut checkpoint: serde_json::Value = serde_json::from_slice(&base.checkpoint).unwrap();
        let signature = checkpoint["signature"].as_str().unwrap().to_owned();
        let i = at.index(signature.len());
        let mut chars: Vec<char> = signature.chars().collect();
        chars[i] = if chars[i] == '0' { '1' } else { '0' };
        checkpoint["signature"] = chars.into_iter().collect::<String>().into();
        let edited = Base { lines: base.lines.clone(), checkpoint: serde_json::to_vec(&checkpoint).unwrap(), key: base.key.clone() };
        let report = check(&edited, &join(&base.lines), true);
        prop_assert_eq!(report.failure.map(|f| f.finding), Some(Finding::BadSignature));
    }
}

fn verify_key(path: &Path, key: Option<AuditKey>, checkpoint: Option<PathBuf>) -> VerifyReport {
    verify_with(
        &[path.to_owned()],
        &VerifyOptions {
            key,
            checkpoint,
            no_default_checkpoint: true,
            ..VerifyOptions::default()
        },
    )
    .unwrap()
}

#[test]
fn wrong_or_missing_keys_fail() {
    let keyed = base(true);
    let plain = base(false);
    let dir = tempfile::tempdir().unwrap();
    let keyed_log = dir.path().join("keyed");
    let plain_log = dir.path().join("plain");
    let keyed_cp = dir.path().join("keyed.cp");
    std::fs::write(&keyed_log, join(&keyed.lines)).unwrap();
    std::fs::write(&plain_log, join(&plain.lines)).unwrap();
    std::fs::write(&keyed_cp, &keyed.checkpoint).unwrap();
    let other = AuditKey::from_bytes(&[9u8; 32]).unwrap();

    for report in [
        verify_key(&keyed_log, Some(other.clone()), None),
        verify_key(&keyed_log, None, None),
        verify_key(&plain_log, Some(other.clone()), None),
        verify_key(&keyed_log, Some(other), Some(keyed_cp.clone())),
        verify_key(&keyed_log, None, Some(keyed_cp.clone())),
    ] {
        assert_eq!(report.failure.map(|f| f.finding), Some(Finding::WrongKey));
        assert!(!report.intact);
    }
    let good = verify_key(&keyed_log, keyed.key.clone(), Some(keyed_cp));
    assert!(good.intact, "{:?}", good.failure);
    assert_eq!(
        good.checkpoint.map(|c| c.trust),
        Some(lift_audit::SignatureTrust::AuditKey)
    );
}

#[test]
fn a_torn_last_line_without_checkpoint_is_a_torn_record() {
    let plain = base(false);
    let mut bytes = join(&plain.lines);
    bytes.extend_from_slice(br#"{"seq":9,"time":"2026-"#);
    let report = check(plain, &bytes, true);
    assert_eq!(finding(&report), Some((Finding::TornRecord, 9)));
    assert_eq!(report.records_checked, RECORDS as u64);
}

/// A log large enough that other cores check record hashes ahead of the walk
/// (over 8 MB): every edit is still found and named exactly as in a small log.
#[test]
fn a_large_log_names_the_first_modified_record() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    let key = AuditKey::from_bytes(b"an audit key of at least 32 bytes!!").unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let sink = FileAuditSink::open(SinkOptions::new(&log).key(Some(key.clone())))
            .await
            .unwrap();
        let events: Vec<AuditEvent> = (0..20_000u64)
            .map(|i| {
                AuditEvent::new("deploy", "up", Resource::new("stack", format!("app/s{i}")))
                    .detail("n", i)
                    .detail("pad", "p".repeat(400))
            })
            .collect();
        for chunk in events.chunks(1000) {
            sink.append_all(chunk).await.unwrap();
        }
        sink.close().await.unwrap();
    });
    let intact = std::fs::read(&log).unwrap();
    assert!(intact.len() > 8 << 20, "{} bytes", intact.len());
    let options = VerifyOptions {
        key: Some(key),
        ..VerifyOptions::default()
    };
    let report = verify_with(std::slice::from_ref(&log), &options).unwrap();
    assert!(report.intact, "{:?}", report.failure);
    let records = report.records_checked;
    assert!(records > 20_000);

    // Two records' contents edited, far apart: the first one is named.
    let mut edited = intact.clone();
    let mut first = usize::MAX;
    for (n, at) in [edited.len() * 3 / 4, edited.len() / 3]
        .into_iter()
        .enumerate()
    {
        let at = at + memchr_pad(&edited[at..]);
        edited[at] = b'q' + n as u8;
        first = first.min(at);
    }
    std::fs::write(&log, &edited).unwrap();
    let report = verify_with(std::slice::from_ref(&log), &options).unwrap();
    let failure = report.failure.expect("an edit is found");
    assert_eq!(failure.finding, Finding::RecordModified);
    let line_of_first = edited[..first].iter().filter(|&&b| b == b'\n').count() as u64 + 1;
    assert_eq!(failure.line, Some(line_of_first), "{failure:?}");
    assert!(
        failure.message.contains("does not match its hash"),
        "{failure:?}"
    );
}

/// The offset of the first `p` of a `pad` value in `bytes`.
fn memchr_pad(bytes: &[u8]) -> usize {
    let needle = b"\"pad\":\"p";
    bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap()
        + needle.len()
}
