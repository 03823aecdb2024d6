//! A tail with a hole: unsynced appends that reached the disk out of order
//! (a later record written, an earlier one lost or torn, zeros between).

#![allow(clippy::unwrap_used, reason = "a failing unwrap is a failing test")]

use std::path::{Path, PathBuf};

use lift_audit::{
    AuditKey, FileAuditSink, Filter, Finding, SinkOptions, VerifyOptions, query, verify_with,
};
use lift_core::{AuditEvent, AuditSink as _, Resource};

fn key() -> AuditKey {
    AuditKey::from_bytes(&[9u8; 32]).unwrap()
}

fn event(i: u64) -> AuditEvent {
    AuditEvent::new(
        "test",
        format!("act.{i}"),
        Resource::new("thing", format!("t{i}")),
    )
    .detail("i", i)
}

fn options(log: &Path) -> SinkOptions {
    SinkOptions::new(log).key(Some(key()))
}

/// A keyed log of `before` events, whose checkpoint is then kept aside, and
/// `after` more events past it; with `old_checkpoint`, the checkpoint
/// covering only the first ones is put back (the later one was never made).
/// Returns the log and its lines (with their newlines).
async fn log_with(
    dir: &Path,
    before: u64,
    after: u64,
    old_checkpoint: bool,
) -> (PathBuf, Vec<Vec<u8>>) {
    let log = dir.join("audit.jsonl");
    let sink = FileAuditSink::open(options(&log)).await.unwrap();
    for i in 0..before {
        sink.record(event(i)).await.unwrap();
    }
    sink.close().await.unwrap();
    drop(sink);
    let checkpoint = lift_audit::default_checkpoint_path(&log);
    let early = std::fs::read(&checkpoint).unwrap();
    let sink = FileAuditSink::open(options(&log)).await.unwrap();
    for i in before..before + after {
        sink.record(event(i)).await.unwrap();
    }
    sink.close().await.unwrap();
    drop(sink);
    if old_checkpoint {
        std::fs::write(&checkpoint, early).unwrap();
    }
    let bytes = std::fs::read(&log).unwrap();
    let lines = bytes
        .split_inclusive(|b| *b == b'\n')
        .map(<[u8]>::to_vec)
        .collect();
    (log, lines)
}

fn verify_log(log: &Path) -> lift_audit::VerifyReport {
    verify_with(
        &[log.to_owned()],
        &VerifyOptions {
            key: Some(key()),
            ..VerifyOptions::default()
        },
    )
    .unwrap()
}

/// Lines `..keep`, then line `keep` with its first `half` bytes kept and
/// the rest zeros, then the lines after it.
fn holed(lines: &[Vec<u8>], keep: usize, half: usize) -> Vec<u8> {
    let mut bytes: Vec<u8> = lines[..keep].concat();
    let lost = &lines[keep];
    bytes.extend_from_slice(&lost[..half]);
    bytes.extend(std::iter::repeat_n(0u8, lost.len() - half));
    for line in &lines[keep + 1..] {
        bytes.extend_from_slice(line);
    }
    bytes
}

async fn recovers_with_a_hole(half: usize) {
    let dir = tempfile::tempdir().unwrap();
    let (log, lines) = log_with(dir.path(), 3, 4, true).await;
    // Records 1..=n; the checkpoint covers the first run only. Record
    // `keep + 1` is lost (zeros, after `half` of its bytes), a later one survives.
    let keep = lines.len() - 2;
    let bytes = holed(&lines, keep, half);
    let cut = bytes.len() - lines[..keep].concat().len();
    std::fs::write(&log, &bytes).unwrap();

    let report = verify_log(&log);
    let failure = report.failure.unwrap();
    assert_eq!(failure.finding, Finding::TornRecord, "{}", failure.message);
    assert_eq!(failure.seq, keep as u64 + 1);

    let sink = FileAuditSink::open(options(&log)).await.unwrap();
    let receipt = sink.append(event(100)).await.unwrap();
    assert_eq!(
        receipt.seq,
        keep as u64 + 2,
        "the repair record comes first"
    );
    sink.close().await.unwrap();
    drop(sink);
    let report = verify_log(&log);
    assert!(report.intact, "{:?}", report.failure);
    assert_eq!(report.records_checked, keep as u64 + 2);
    let after = std::fs::read(&log).unwrap();
    assert_eq!(
        &after[..lines[..keep].concat().len()],
        &lines[..keep].concat()[..]
    );
    let repairs: Vec<_> = query(
        &[log],
        Filter {
            action: Some("repair.torn_tail".into()),
            ..Filter::default()
        },
    )
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap();
    assert_eq!(repairs.len(), 1);
    let details = &repairs[0].event.details;
    assert_eq!(repairs[0].seq, keep as u64 + 1);
    assert_eq!(details["cut_bytes"], cut as u64);
    assert_eq!(details["last_good_seq"], keep as u64);
    assert_eq!(details["cause"], "hole");
}

#[tokio::test]
async fn a_lost_record_before_a_later_one_is_cut_recorded_and_verifies() {
    recovers_with_a_hole(0).await;
}

#[tokio::test]
async fn a_torn_record_then_zeros_before_a_later_one_is_cut_recorded_and_verifies() {
    recovers_with_a_hole(17).await;
}

#[tokio::test]
async fn a_hole_the_checkpoint_covers_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (log, lines) = log_with(dir.path(), 3, 4, false).await;
    let keep = lines.len() - 2;
    std::fs::write(&log, holed(&lines, keep, 0)).unwrap();
    let report = verify_log(&log);
    let failure = report.failure.unwrap();
    assert_eq!(
        failure.finding,
        Finding::RecordModified,
        "{}",
        failure.message
    );
    let err = FileAuditSink::open(options(&log)).await.unwrap_err();
    assert!(matches!(err, lift_audit::Error::Integrity(_)), "{err}");
    assert_eq!(
        std::fs::read(&log).unwrap(),
        holed(&lines, keep, 0),
        "a refused log is left as it was"
    );
}

#[tokio::test]
async fn an_edited_tail_record_without_a_nul_is_still_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (log, lines) = log_with(dir.path(), 3, 4, true).await;
    let keep = lines.len() - 2;
    let mut edited = lines.clone();
    let line = String::from_utf8(edited[keep].clone()).unwrap();
    assert!(line.contains("\"i\":"));
    edited[keep] = line.replacen("\"i\":", "\"j\":", 1).into_bytes();
    let bytes = edited.concat();
    std::fs::write(&log, &bytes).unwrap();
    let report = verify_log(&log);
    let failure = report.failure.unwrap();
    assert_eq!(
        failure.finding,
        Finding::RecordModified,
        "{}",
        failure.message
    );
    let err = FileAuditSink::open(options(&log)).await.unwrap_err();
    assert!(matches!(err, lift_audit::Error::Integrity(_)), "{err}");
    assert_eq!(std::fs::read(&log).unwrap(), bytes);

    // A foreign line (no NUL) after the last good record, with a valid record after it.
    let mut foreign = lines[..keep].concat();
    foreign.extend_from_slice(b"{\"not\":\"a record\"}\n");
    foreign.extend_from_slice(&lines[keep + 1]);
    std::fs::write(&log, &foreign).unwrap();
    assert_eq!(
        verify_log(&log).failure.map(|f| f.finding),
        Some(Finding::RecordModified)
    );
    assert!(FileAuditSink::open(options(&log)).await.is_err());
    assert_eq!(std::fs::read(&log).unwrap(), foreign);
}

#[tokio::test]
async fn a_large_hole_before_a_later_record_is_cut_in_bounded_reads() {
    // Longer than any record: the last line is not one, and the scan that
    // finds the hole reads in chunks.
    let dir = tempfile::tempdir().unwrap();
    let (log, lines) = log_with(dir.path(), 2, 3, true).await;
    let keep = lines.len() - 2;
    let mut bytes = lines[..keep].concat();
    bytes.extend(std::iter::repeat_n(0u8, 3 << 20));
    bytes.extend_from_slice(&lines[keep + 1]);
    std::fs::write(&log, &bytes).unwrap();
    assert_eq!(
        verify_log(&log).failure.map(|f| f.finding),
        Some(Finding::TornRecord)
    );
    let sink = FileAuditSink::open(options(&log)).await.unwrap();
    sink.close().await.unwrap();
    drop(sink);
    let report = verify_log(&log);
    assert!(report.intact, "{:?}", report.failure);
    assert_eq!(report.records_checked, keep as u64 + 1);
}
