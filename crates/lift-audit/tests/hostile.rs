//! Hostile logs: a gigabyte without a newline, and a gigabyte-long line, are
//! handled by recovery, verify and tail in bounded memory and linear time.
//!
//! The files are sparse (`set_len`), so that the test writes almost nothing
//! to disk and runs in seconds; the readers still see every byte. One test
//! in its own binary, so that the process's peak memory is this test's.

#![allow(clippy::unwrap_used, reason = "a failing unwrap is a failing test")]

use std::path::Path;
use std::time::Instant;

use lift_audit::{
    FileAuditSink, Filter, Finding, FollowFrom, Follower, SinkOptions, VerifyOptions, query,
    verify_with,
};
use lift_core::{AuditEvent, Resource};

const GIB: u64 = 1 << 30;
/// Far below what reading a gigabyte into memory would take.
const MEMORY_LIMIT_KIB: u64 = 192 * 1024;

/// The process's peak resident memory (VmHWM), in KiB.
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap()
}

async fn write(log: &Path, n: u64) {
    let sink = FileAuditSink::open(SinkOptions::new(log)).await.unwrap();
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

/// Appends `len` zero bytes (no newline) to `log` without writing them.
fn grow_sparse(log: &Path, len: u64) {
    let file = std::fs::OpenOptions::new().write(true).open(log).unwrap();
    let old = file.metadata().unwrap().len();
    file.set_len(old + len).unwrap();
}

fn options() -> VerifyOptions {
    VerifyOptions::default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gigabyte_without_a_newline_is_handled_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let before = peak_rss_kib();

    // A log of 3 records followed by 1 GiB with no newline.
    let log = dir.path().join("audit.jsonl");
    write(&log, 3).await;
    grow_sparse(&log, GIB);

    let started = Instant::now();
    let report = verify_with(std::slice::from_ref(&log), &options()).unwrap();
    let failure = report.failure.unwrap();
    assert_eq!(failure.finding, Finding::TornRecord, "{failure:?}");
    assert_eq!(failure.seq, 4);
    assert_eq!(report.records_checked, 3);
    assert!(report.bytes > GIB);
    let verify_took = started.elapsed();

    let started = Instant::now();
    let mut follower = Follower::new(&log, FollowFrom::Last(2)).unwrap();
    let first = follower.next().await.unwrap();
    let second = follower.next().await.unwrap();
    assert_eq!((first.seq, second.seq), (2, 3));
    drop(follower);
    let tail_took = started.elapsed();

    // Recovery cuts the torn gigabyte, records the repair and continues the chain.
    let started = Instant::now();
    write(&log, 1).await;
    let recovery_took = started.elapsed();
    assert!(std::fs::metadata(&log).unwrap().len() < 10_000);
    let repairs = query(
        std::slice::from_ref(&log),
        Filter {
            action: Some("repair.torn_tail".into()),
            ..Filter::default()
        },
    )
    .unwrap()
    .map(Result::unwrap)
    .collect::<Vec<_>>();
    assert_eq!(repairs.len(), 1);
    assert_eq!(repairs[0].event.details["cut_bytes"], GIB);
    assert!(
        verify_with(std::slice::from_ref(&log), &options())
            .unwrap()
            .intact
    );

    // A gigabyte-long line that does end in a newline is no record: verify
    // names it, and recovery refuses to append after it, both without loading it.
    let long = dir.path().join("long.jsonl");
    write(&long, 2).await;
    grow_sparse(&long, GIB);
    std::fs::OpenOptions::new()
        .append(true)
        .open(&long)
        .map(|mut f| std::io::Write::write_all(&mut f, b"\n"))
        .unwrap()
        .unwrap();
    let started = Instant::now();
    let report = verify_with(std::slice::from_ref(&long), &options()).unwrap();
    println!("long line: verify {:.1?}", started.elapsed());
    let failure = report.failure.unwrap();
    assert_eq!(failure.finding, Finding::RecordModified, "{failure:?}");
    assert_eq!(failure.seq, 3);
    assert!(
        failure.message.contains("longer than a record"),
        "{failure:?}"
    );
    let err = FileAuditSink::open(SinkOptions::new(&long))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("longer than"), "{err}");
    // Tail reads it once, in chunks, and says what it is.
    let err = match Follower::new(&long, FollowFrom::Last(1)) {
        Ok(mut follower) => follower.next().await.unwrap_err(),
        Err(err) => err,
    };
    assert!(err.to_string().contains("longer than a record"), "{err}");

    let peak = peak_rss_kib();
    println!(
        "1 GiB without a newline: verify {verify_took:.1?}, tail -n 2 {tail_took:.1?}, recovery {recovery_took:.1?}; peak RSS {} MiB (from {} MiB)",
        peak / 1024,
        before / 1024
    );
    assert!(
        peak < MEMORY_LIMIT_KIB,
        "peak RSS {peak} KiB: something read the gigabyte into memory"
    );
}
