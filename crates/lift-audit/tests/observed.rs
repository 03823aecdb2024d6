//! The sink's durable operations all go through `lift_core::fs`, so a test
//! can record them in order; the recorded trace shows the ordering that
//! crash safety rests on. (Its own test binary: the observer is process-wide.)

#![allow(clippy::unwrap_used, reason = "a failing unwrap is a failing test")]

use std::path::Path;
use std::sync::Arc;

use lift_audit::{FileAuditSink, SinkOptions};
use lift_core::fs::{RecordedOp, Recorder, set_observer};
use lift_core::{AuditEvent, Resource};

fn is(path: &Path, name: &str) -> bool {
    path.file_name().is_some_and(|n| n == name)
}

#[tokio::test]
async fn every_checkpoint_follows_an_fsync_of_every_record_it_covers() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    let recorder = Arc::new(Recorder::under(dir.path()));
    set_observer(Some(recorder.clone()));
    let sink = FileAuditSink::open(
        SinkOptions::new(&log)
            .checkpoint_every(2)
            .max_file_bytes(2048),
    )
    .await
    .unwrap();
    for i in 0..12 {
        sink.append(AuditEvent::new(
            "secrets",
            format!("put.{i}"),
            Resource::new("secret", "db"),
        ))
        .await
        .unwrap();
    }
    sink.close().await.unwrap();
    set_observer(None);
    let ops = recorder.take();

    let writes = ops
        .iter()
        .filter(|op| matches!(op, RecordedOp::Write { path, .. } if is(path, "audit.jsonl")))
        .count();
    assert!(writes >= 1, "the log's appends are observed: {ops:#?}");
    // Records written to the log so far, and how many of them the last fsync covered.
    let (mut written, mut synced) = (0u64, 0u64);
    let mut signed = std::collections::HashMap::new();
    let mut checkpoints = 0;
    let mut rotations = 0;
    for op in &ops {
        match op {
            RecordedOp::Write { path, data, .. } if is(path, "audit.jsonl") => {
                written += data.iter().filter(|&&b| b == b'\n').count() as u64;
            }
            RecordedOp::Fsync { path, .. } if is(path, "audit.jsonl") => synced = written,
            RecordedOp::Write { path, data, .. }
                if path.file_name().is_some_and(|n| {
                    n.to_string_lossy()
                        .starts_with(".audit.jsonl.checkpoint.tmp.")
                }) =>
            {
                let checkpoint: lift_audit::Checkpoint = serde_json::from_slice(data).unwrap();
                signed.insert(path.clone(), checkpoint.size);
            }
            RecordedOp::Rename { from, to } if is(to, "audit.jsonl.checkpoint") => {
                let size = signed[from];
                assert!(
                    size <= synced,
                    "checkpoint of {size} records renamed into place when only {synced} were fsynced"
                );
                checkpoints += 1;
            }
            RecordedOp::Rename { from, .. } if is(from, "audit.jsonl") => {
                assert_eq!(synced, written, "a segment was sealed before its fsync");
                rotations += 1;
            }
            _ => {}
        }
    }
    assert!(checkpoints >= 2, "{checkpoints} checkpoints");
    assert!(rotations >= 1, "{rotations} rotations");
    // Every replaced file went through a fresh temporary, an fsync, a rename and a directory fsync.
    for (i, op) in ops.iter().enumerate() {
        if let RecordedOp::Rename { from, to } = op {
            if is(to, "audit.jsonl.checkpoint") || is(to, "audit.jsonl.manifest") {
                assert!(
                    ops[..i]
                        .iter()
                        .any(|op| matches!(op, RecordedOp::Fsync { path, .. } if path == from))
                );
                // The directory fsync follows the rename on the same thread,
                // but the writer and the syncer run at once, so another
                // thread's operation may be recorded in between: look for it
                // before the next replacement of the same file.
                let dir = to.parent().unwrap();
                let synced_dir = ops[i + 1..]
                    .iter()
                    .take_while(
                        |op| !matches!(op, RecordedOp::Rename { to: next, .. } if next == to),
                    )
                    .any(|op| matches!(op, RecordedOp::SyncDir { path } if path == dir));
                assert!(synced_dir, "no directory fsync after renaming into {to:?}");
            }
        }
    }
}
