//! Anchors: a log without its checkpoint is unanchored, a writer that finds
//! one says so in the chain, and a checkpoint kept elsewhere catches what a
//! thief with write access to the log's directory does.

#![allow(clippy::unwrap_used, reason = "a failing unwrap is a failing test")]

use std::path::{Path, PathBuf};

use lift_audit::{
    CHECKPOINT_MISSING_ACTION, Checkpoint, FileAuditSink, Filter, Finding, SinkOptions,
    VerifyOptions, VerifyReport, query, verify_with,
};
use lift_core::{AuditEvent, ErrorKind, Resource};

async fn write(options: SinkOptions, n: u64) {
    let sink = FileAuditSink::open(options).await.unwrap();
    for i in 0..n {
        sink.append(AuditEvent::new(
            "secrets",
            format!("put.{i}"),
            Resource::new("secret", "db"),
        ))
        .await
        .unwrap();
    }
    sink.close().await.unwrap();
}

fn verify(log: &Path, checkpoint: Option<PathBuf>, allow_unanchored: bool) -> VerifyReport {
    verify_with(
        &[log.to_owned()],
        &VerifyOptions {
            checkpoint,
            allow_unanchored,
            ..VerifyOptions::default()
        },
    )
    .unwrap()
}

/// Keeps the first `n` lines of `log`.
fn cut_to(log: &Path, n: usize) {
    let bytes = std::fs::read(log).unwrap();
    let end = bytes
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'\n')
        .nth(n - 1)
        .unwrap()
        .0
        + 1;
    std::fs::write(log, &bytes[..end]).unwrap();
}

#[tokio::test]
async fn truncation_plus_deletion_is_unanchored_and_the_next_writer_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    let checkpoint = dir.path().join("audit.jsonl.checkpoint");
    write(SinkOptions::new(&log), 10).await;
    assert!(verify(&log, None, false).intact);

    // The thief cuts the log from 10 records to 3 and deletes the checkpoint.
    cut_to(&log, 3);
    std::fs::remove_file(&checkpoint).unwrap();
    let report = verify(&log, None, false);
    let failure = report.failure.clone().unwrap();
    assert_eq!(failure.finding, Finding::Unanchored);
    assert!(failure.message.contains("records 1 to 3"), "{failure:?}");
    // Accepted only when asked, and then with a warning.
    let lenient = verify(&log, None, true);
    assert!(lenient.intact);
    assert!(lenient.warnings[0].contains("unanchored"), "{lenient:?}");

    // The next audited command does not silently sign over the shortened log.
    write(SinkOptions::new(&log), 1).await;
    let missing = query(
        std::slice::from_ref(&log),
        Filter {
            action: Some(CHECKPOINT_MISSING_ACTION.into()),
            ..Filter::default()
        },
    )
    .unwrap()
    .map(Result::unwrap)
    .collect::<Vec<_>>();
    assert_eq!(missing.len(), 1);
    assert_eq!(missing[0].seq, 4);
    assert_eq!(missing[0].event.details["unanchored_records"], 3);
    assert!(Checkpoint::load(&checkpoint).unwrap().size >= 5);
    let report = verify(&log, None, false);
    let failure = report.failure.unwrap();
    assert_eq!(failure.finding, Finding::Unanchored);
    assert!(
        failure.message.contains("records 1 to 3") && failure.message.contains("record 4"),
        "{}",
        failure.message
    );
    // A later writer, finding the new checkpoint, records nothing more.
    write(SinkOptions::new(&log), 1).await;
    let count = query(
        std::slice::from_ref(&log),
        Filter {
            action: Some(CHECKPOINT_MISSING_ACTION.into()),
            ..Filter::default()
        },
    )
    .unwrap()
    .count();
    assert_eq!(count, 1);
}

#[tokio::test]
async fn a_new_log_is_anchored_from_its_first_open() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    let sink = FileAuditSink::open(SinkOptions::new(&log)).await.unwrap();
    // Before any record, the checkpoint exists: a log with records and no
    // checkpoint can only mean one that was lost.
    let checkpoint = Checkpoint::load(&dir.path().join("audit.jsonl.checkpoint")).unwrap();
    assert_eq!(checkpoint.size, 0);
    sink.append(AuditEvent::new("a", "b", Resource::new("c", "d")))
        .await
        .unwrap();
    // SIGKILL-like: no close, no final checkpoint; the next writer finds a stale one, not a missing one.
    std::mem::forget(sink);
    write(SinkOptions::new(&log), 1).await;
    let report = verify(&log, None, false);
    assert!(report.intact, "{:?}", report.failure);
}

#[tokio::test]
async fn a_checkpoint_kept_elsewhere_catches_truncation_deletion_and_rollback() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    let anchors = dir.path().join("anchors");
    std::fs::create_dir_all(&logs).unwrap();
    std::fs::create_dir_all(&anchors).unwrap();
    let log = logs.join("audit.jsonl");
    let checkpoint = anchors.join("audit.checkpoint");
    write(SinkOptions::new(&log).checkpoint_path(&checkpoint), 5).await;
    assert!(!logs.join("audit.jsonl.checkpoint").exists());
    let old = std::fs::read(&log).unwrap();
    write(SinkOptions::new(&log).checkpoint_path(&checkpoint), 5).await;
    let report = verify(&log, Some(checkpoint.clone()), false);
    assert!(report.intact, "{:?}", report.failure);
    assert_eq!(report.checkpoint.unwrap().size, 10);

    // Rollback of the log to an older copy (its directory holds no checkpoint to roll back).
    let current = std::fs::read(&log).unwrap();
    std::fs::write(&log, &old).unwrap();
    let failure = verify(&log, Some(checkpoint.clone()), false)
        .failure
        .unwrap();
    assert_eq!(failure.finding, Finding::TailTruncated);
    assert_eq!(failure.seq, 6);
    // A writer refuses to append to it, and the message names a command that works.
    let err = FileAuditSink::open(SinkOptions::new(&log).checkpoint_path(&checkpoint))
        .await
        .unwrap_err();
    assert_eq!(lift_core::Classify::kind(&err), ErrorKind::Integrity);
    assert!(err.to_string().contains("--checkpoint"), "{err}");

    // Truncation plus deletion of everything in the log's directory.
    std::fs::write(&log, &current).unwrap();
    cut_to(&log, 3);
    let failure = verify(&log, Some(checkpoint.clone()), false)
        .failure
        .unwrap();
    assert_eq!(failure.finding, Finding::TailTruncated);
}

#[tokio::test]
async fn a_mistyped_checkpoint_path_is_bad_input_not_a_tamper_alarm() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    write(SinkOptions::new(&log), 2).await;
    let err = verify_with(
        &[log],
        &VerifyOptions {
            checkpoint: Some(dir.path().join("audit.jsonl.chekpoint")),
            ..VerifyOptions::default()
        },
    )
    .unwrap_err();
    assert_eq!(lift_core::Classify::kind(&err), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("no such file"), "{err}");
}

#[tokio::test]
async fn symlinks_planted_at_the_old_temporary_names_are_never_followed() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    let victim = dir.path().join("victim");
    std::fs::write(&victim, b"precious").unwrap();
    for name in [
        "audit.jsonl.checkpoint.tmp",
        "audit.jsonl.manifest.tmp",
        ".audit.jsonl.checkpoint.tmp",
    ] {
        std::os::unix::fs::symlink(&victim, dir.path().join(name)).unwrap();
    }
    // Checkpoints on every flush, and a rotation (so a manifest) every few records.
    write(SinkOptions::new(&log).max_file_bytes(1024), 20).await;
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    assert!(dir.path().join("audit.jsonl.manifest").exists());
    assert!(verify(&log, None, false).intact);
}
