//! The file sink: secrets refused, torn tails repaired, concurrency, rotation, policies, health.

#![allow(clippy::unwrap_used, reason = "a failing unwrap is a failing test")]

use std::sync::Arc;
use std::time::Duration;

use lift_audit::{
    AuditHealthCheck, AuditKey, Checkpoint, Durability, FileAuditSink, Filter, Finding, FollowFrom,
    Follower, SinkOptions, VerifyOptions, chain_files, query, verify, verify_with,
};
use lift_core::{AuditEvent, AuditSink, ErrorKind, HealthCheck, HealthStatus, Resource};

fn event(i: u64) -> AuditEvent {
    AuditEvent::new(
        "test",
        format!("act.{i}"),
        Resource::new("thing", format!("t{i}")),
    )
    .detail("i", i)
}

#[tokio::test]
async fn events_marked_secret_are_refused_and_the_canary_never_reaches_disk() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    let sink = FileAuditSink::open(SinkOptions::new(&log)).await.unwrap();
    sink.record(event(1)).await.unwrap();
    let canary = "canary-5f3c9e1d";
    let bad = event(2).detail("password", canary).mark_secret("password");
    let err = sink.record(bad).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("password"));
    assert!(!err.to_string().contains(canary));
    sink.record(event(3)).await.unwrap();
    sink.close().await.unwrap();
    let bytes = std::fs::read(&log).unwrap();
    assert!(!String::from_utf8_lossy(&bytes).contains(canary));
    let report = verify(&[log], None, None).unwrap();
    assert!(report.intact);
    assert_eq!(report.records_checked, 2);
    assert!(
        sink.record(event(4)).await.is_err(),
        "a closed sink refuses records"
    );
}

#[tokio::test]
async fn a_torn_tail_is_cut_recorded_and_the_chain_continues() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    let key = AuditKey::from_bytes(&[5u8; 32]).unwrap();
    let sink = FileAuditSink::open(SinkOptions::new(&log).key(Some(key.clone())))
        .await
        .unwrap();
    for i in 0..5 {
        sink.record(event(i)).await.unwrap();
    }
    sink.close().await.unwrap();
    drop(sink);
    let mut bytes = std::fs::read(&log).unwrap();
    let torn = br#"{"seq":6,"time":"2026-11-28T02:00:00.000000Z","kid":"#;
    bytes.extend_from_slice(torn);
    std::fs::write(&log, &bytes).unwrap();
    let report = verify(std::slice::from_ref(&log), Some(&key), None).unwrap();
    assert_eq!(report.failure.map(|f| f.finding), Some(Finding::TornRecord));

    let sink = FileAuditSink::open(SinkOptions::new(&log).key(Some(key.clone())))
        .await
        .unwrap();
    let receipt = sink.append(event(7)).await.unwrap();
    // Record 1 names the checkpoint signing key, 2 to 6 are the events, 7 is the repair.
    assert_eq!(receipt.seq, 8, "seq 7 is the repair event");
    sink.close().await.unwrap();
    let report = verify(std::slice::from_ref(&log), Some(&key), None).unwrap();
    assert!(report.intact, "{:?}", report.failure);
    assert_eq!(report.records_checked, 8);
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
    assert_eq!(repairs[0].seq, 7);
    assert_eq!(repairs[0].event.details["cut_bytes"], torn.len() as u64);
}

#[tokio::test]
async fn the_sink_never_appends_after_garbage_or_below_a_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    let sink = FileAuditSink::open(SinkOptions::new(&log)).await.unwrap();
    for i in 0..3 {
        sink.record(event(i)).await.unwrap();
    }
    sink.close().await.unwrap();
    drop(sink);
    let good = std::fs::read(&log).unwrap();

    let mut garbage = good.clone();
    garbage.extend_from_slice(b"this is not a record\n");
    std::fs::write(&log, &garbage).unwrap();
    let err = FileAuditSink::open(SinkOptions::new(&log))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("refusing to append"), "{err}");
    assert_eq!(std::fs::read(&log).unwrap(), garbage, "nothing was written");

    let lines: Vec<&[u8]> = good.split_inclusive(|&b| b == b'\n').collect();
    std::fs::write(&log, lines[..2].concat()).unwrap();
    let err = FileAuditSink::open(SinkOptions::new(&log))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("truncated or rolled back"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_writers_make_one_gapless_chain() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    let key = AuditKey::from_bytes(&[6u8; 48]).unwrap();
    let options = SinkOptions::new(&log)
        .key(Some(key.clone()))
        .checkpoint_every(500)
        .staging_capacity(64);
    let sink = FileAuditSink::open(options).await.unwrap();
    let tasks = 32u64;
    let per_task = 200u64;
    let mut handles = Vec::new();
    for t in 0..tasks {
        let sink = sink.clone();
        handles.push(tokio::spawn(async move {
            let mut seqs = Vec::new();
            for i in 0..per_task {
                seqs.push(sink.append(event(t * 1000 + i)).await.unwrap().seq);
            }
            seqs
        }));
    }
    let mut all = Vec::new();
    for handle in handles {
        let seqs = handle.await.unwrap();
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "one task's records keep their order"
        );
        all.extend(seqs);
    }
    sink.close().await.unwrap();
    all.sort_unstable();
    // Record 1 names the checkpoint signing key of this keyed chain.
    let expected: Vec<u64> = (2..=tasks * per_task + 1).collect();
    assert_eq!(all, expected);
    let report = verify(std::slice::from_ref(&log), Some(&key), None).unwrap();
    assert!(report.intact, "{:?}", report.failure);
    assert_eq!(report.records_checked, tasks * per_task + 1);
    assert_eq!(
        Checkpoint::load(&lift_audit::default_checkpoint_path(&log))
            .unwrap()
            .size,
        tasks * per_task + 1
    );
}

#[tokio::test]
async fn rotation_keeps_one_chain_across_files_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    for round in 0..2 {
        let sink = FileAuditSink::open(SinkOptions::new(&log).max_file_bytes(2_000))
            .await
            .unwrap();
        for i in 0..20 {
            sink.record(event(round * 100 + i)).await.unwrap();
        }
        sink.close().await.unwrap();
    }
    let files = chain_files(&log).unwrap();
    assert!(files.len() > 3, "{files:?}");
    assert_eq!(files.last(), Some(&log));
    let report = verify(std::slice::from_ref(&log), None, None).unwrap();
    assert!(report.intact, "{:?}", report.failure);
    assert_eq!(report.records_checked, 40);
    let count = query(std::slice::from_ref(&log), Filter::default())
        .unwrap()
        .count();
    assert_eq!(count, 40);

    // Leaving out a middle file deletes its records from the chain.
    let mut partial = files.clone();
    partial.remove(1);
    let report = verify_with(
        &partial,
        &VerifyOptions {
            no_default_checkpoint: true,
            ..VerifyOptions::default()
        },
    )
    .unwrap();
    assert_eq!(
        report.failure.map(|f| f.finding),
        Some(Finding::RecordDeleted)
    );
}

#[tokio::test]
async fn every_durability_policy_verifies_and_dropping_checkpoints() {
    for durability in [
        Durability::EveryRecord,
        Durability::GroupCommit,
        Durability::Interval(Duration::from_millis(20)),
        // "Never by the clock": too long to add to a time, which must not panic.
        Durability::Interval(Duration::MAX),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("audit.jsonl");
        let sink = FileAuditSink::open(
            SinkOptions::new(&log)
                .durability(durability)
                .checkpoint_every(0),
        )
        .await
        .unwrap();
        for i in 0..10 {
            sink.record(event(i)).await.unwrap();
        }
        drop(sink);
        let checkpoint = Checkpoint::load(&lift_audit::default_checkpoint_path(&log)).unwrap();
        assert_eq!(
            checkpoint.size, 10,
            "{durability:?}: dropping the sink wrote a final checkpoint"
        );
        let report = verify(&[log], None, None).unwrap();
        assert!(report.intact, "{durability:?}: {:?}", report.failure);
    }
}

#[tokio::test]
async fn flush_checkpoints_and_the_health_check_reports_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    let check = AuditHealthCheck::new(&log, VerifyOptions::default());
    assert_eq!(check.check().await.status, HealthStatus::Unknown);
    let sink: Arc<dyn AuditSink> =
        Arc::new(FileAuditSink::open(SinkOptions::new(&log)).await.unwrap());
    for i in 0..4 {
        sink.record(event(i)).await.unwrap();
    }
    sink.flush().await.unwrap();
    assert_eq!(
        Checkpoint::load(&lift_audit::default_checkpoint_path(&log))
            .unwrap()
            .size,
        4
    );
    sink.record(event(5)).await.unwrap();
    sink.flush().await.unwrap();
    let outcome = check.check().await;
    assert_eq!(outcome.status, HealthStatus::Healthy, "{}", outcome.message);
    assert!(
        outcome.message.contains("matches checkpoint 5"),
        "{}",
        outcome.message
    );
    // Past the size limit, only the records since the checkpoint are verified.
    let tail_only = AuditHealthCheck::new(&log, VerifyOptions::default()).full_verify_limit(0);
    let outcome = tail_only.check().await;
    assert_eq!(outcome.status, HealthStatus::Healthy, "{}", outcome.message);
    assert!(
        outcome.message.contains("since checkpoint 5"),
        "{}",
        outcome.message
    );
    drop(sink);

    // An edit of a record the checkpoint already covers: a small log is verified whole, so it shows.
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("act.0"));
    std::fs::write(&log, text.replacen("act.0", "act.9", 1)).unwrap();
    let outcome = check.check().await;
    assert_eq!(
        outcome.status,
        HealthStatus::Unhealthy,
        "{}",
        outcome.message
    );
    std::fs::write(&log, &text).unwrap();

    let mut bytes = std::fs::read(&log).unwrap();
    let at = bytes.len() - 20;
    bytes[at] ^= 1;
    std::fs::write(&log, &bytes).unwrap();
    let outcome = check.check().await;
    assert_eq!(
        outcome.status,
        HealthStatus::Unhealthy,
        "{}",
        outcome.message
    );
    assert!(
        outcome.message.contains("record modified"),
        "{}",
        outcome.message
    );
}

#[tokio::test]
async fn a_follower_sees_records_as_they_are_appended() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    let sink = FileAuditSink::open(SinkOptions::new(&log)).await.unwrap();
    sink.record(event(1)).await.unwrap();
    let mut follower = Follower::new(&log, FollowFrom::Last(1))
        .unwrap()
        .poll_interval(Duration::from_millis(10));
    assert_eq!(follower.next().await.unwrap().seq, 1);
    let writer = {
        let sink = sink.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(30)).await;
            sink.record(event(2)).await.unwrap();
        })
    };
    let next = tokio::time::timeout(Duration::from_secs(5), follower.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(next.seq, 2);
    assert_eq!(next.event.action, "act.2");
    writer.await.unwrap();
}

#[tokio::test]
async fn verify_reports_render_as_stable_json() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    let clock = Arc::new(lift_core::ManualClock::at_epoch());
    let key = AuditKey::from_bytes(&[1u8; 32]).unwrap();
    let options = SinkOptions::new(&log)
        .key(Some(key.clone()))
        .clock(clock.clone())
        .origin("snapshot");
    let sink = FileAuditSink::open(options).await.unwrap();
    for i in 0..3 {
        clock.advance(chrono::Duration::seconds(1));
        sink.record(event(i)).await.unwrap();
    }
    sink.close().await.unwrap();
    let lines: Vec<Vec<u8>> = std::fs::read(&log)
        .unwrap()
        .split_inclusive(|&b| b == b'\n')
        .map(<[u8]>::to_vec)
        .collect();
    std::fs::write(&log, [lines[0].clone(), lines[2].clone()].concat()).unwrap();
    let report = verify(std::slice::from_ref(&log), Some(&key), None).unwrap();
    let text = serde_json::to_string_pretty(&report)
        .unwrap()
        .replace(&dir.path().display().to_string(), "[dir]");
    let mut value: serde_json::Value = serde_json::from_str(&text).unwrap();
    value["head"] = "[hash]".into();
    value["bytes"] = "[bytes]".into();
    insta::assert_json_snapshot!(value);
}

#[tokio::test]
async fn append_all_commits_a_group_in_order_or_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    for durability in [Durability::GroupCommit, Durability::EveryRecord] {
        let sink = FileAuditSink::open(SinkOptions::new(&log).durability(durability))
            .await
            .unwrap();
        let mut events: Vec<AuditEvent> = (0..50).map(event).collect();
        events[25] = event(25).detail("token", "canary-91").mark_secret("token");
        assert!(sink.append_all(&events).await.is_err());
        events[25] = event(25);
        let before = sink.append(event(999)).await.unwrap().seq;
        let receipts = sink.append_all(&events).await.unwrap();
        let seqs: Vec<u64> = receipts.iter().map(|r| r.seq).collect();
        assert_eq!(seqs, (before + 1..=before + 50).collect::<Vec<_>>());
        sink.close().await.unwrap();
    }
    let report = verify(std::slice::from_ref(&log), None, None).unwrap();
    assert!(report.intact, "{:?}", report.failure);
    assert_eq!(report.records_checked, 102);
    assert!(!String::from_utf8_lossy(&std::fs::read(&log).unwrap()).contains("canary-91"));
}
