//! Separation of duties: the checkpoint signing key is independent of the
//! chain key, and an auditor holding only its public key checks the log up
//! to the last checkpoint.

#![allow(clippy::unwrap_used, reason = "a failing unwrap is a failing test")]

use std::path::{Path, PathBuf};

use lift_audit::{
    AuditKey, Checkpoint, CheckpointSigner, FileAuditSink, Finding, SignatureTrust, SinkOptions,
    VerifyOptions, VerifyReport, VerifyingKey, default_checkpoint_path, default_signing_key_path,
    verify_with,
};
use lift_core::{AuditEvent, Resource};

fn key() -> AuditKey {
    AuditKey::from_bytes(b"the chain key, held by the writers only").unwrap()
}

async fn append(log: &Path, from: u64, n: u64, close: bool) {
    let sink = FileAuditSink::open(SinkOptions::new(log).key(Some(key())).checkpoint_every(0))
        .await
        .unwrap();
    for i in from..from + n {
        sink.append(AuditEvent::new(
            "secrets",
            format!("put.{i}"),
            Resource::new("secret", "db"),
        ))
        .await
        .unwrap();
    }
    if close {
        sink.close().await.unwrap();
    } else {
        // Like a process killed after its records were acknowledged: no final checkpoint.
        std::mem::forget(sink);
    }
}

fn public_key(log: &Path) -> VerifyingKey {
    CheckpointSigner::load(&default_signing_key_path(log))
        .unwrap()
        .verifying_key()
}

fn verify(log: &Path, key: Option<AuditKey>, public: Option<VerifyingKey>) -> VerifyReport {
    verify_with(
        &[log.to_owned()],
        &VerifyOptions {
            key,
            trusted_public_key: public,
            ..VerifyOptions::default()
        },
    )
    .unwrap()
}

#[tokio::test]
async fn the_signing_key_is_its_own_private_file() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    append(&log, 0, 2, true).await;
    let path = default_signing_key_path(&log);
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let signer = CheckpointSigner::load(&path).unwrap();
    // Not derived from the chain key: knowing the chain key does not give it.
    assert_ne!(signer.public_key_hex(), key().signer().public_key_hex());
    let checkpoint = Checkpoint::load(&default_checkpoint_path(&log)).unwrap();
    assert_eq!(checkpoint.public_key, signer.public_key_hex());
    // The writer that holds the chain key verifies with it alone: the chain names the signing key.
    let report = verify(&log, Some(key()), None);
    assert!(report.intact, "{:?}", report.failure);
    assert_eq!(report.checkpoint.unwrap().trust, SignatureTrust::AuditKey);
}

#[tokio::test]
async fn an_auditor_with_only_the_public_key_checks_up_to_the_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    append(&log, 0, 5, true).await;
    append(&log, 5, 3, false).await;
    let public = public_key(&log);

    let report = verify(&log, None, Some(public));
    assert!(report.intact, "{:?}", report.failure);
    let checkpoint = report.checkpoint.clone().unwrap();
    assert_eq!(checkpoint.trust, SignatureTrust::TrustedKey);
    // The record naming the key, 5 events, then 3 not yet signed.
    assert_eq!(checkpoint.size, 6);
    assert_eq!(report.last_seq, Some(9));
    assert_eq!(report.unsigned_records, 3);
    assert!(
        report.warnings[0].contains("records 7 to 9 are not yet signed"),
        "{:?}",
        report.warnings
    );

    // Without any key, a keyed log is still a wrong-key failure, never a pass.
    let report = verify(&log, None, None);
    assert_eq!(report.failure.unwrap().finding, Finding::WrongKey);
    // Another public key is a bad signature.
    let other = CheckpointSigner::load_or_create(&dir.path().join("other.key"))
        .unwrap()
        .verifying_key();
    let report = verify(&log, None, Some(other));
    assert_eq!(report.failure.unwrap().finding, Finding::BadSignature);
}

/// Rewrites the action of record `seq` (keeping its stored hash), as someone
/// without the chain key can.
fn edit_record(log: &Path, seq: usize) {
    let text = std::fs::read_to_string(log).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let line = &mut lines[seq - 1];
    assert!(line.contains("put."), "{line}");
    *line = line.replacen("put.", "pUt.", 1);
    std::fs::write(log, lines.join("\n") + "\n").unwrap();
}

#[tokio::test]
async fn the_public_key_alone_catches_an_edit_the_record_hash_cannot_show() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    append(&log, 0, 5, true).await;
    let public = public_key(&log);
    edit_record(&log, 3);
    let report = verify(&log, None, Some(public));
    let failure = report.failure.unwrap();
    assert_eq!(failure.finding, Finding::RecordModified);
    assert!(failure.message.contains("digest"), "{}", failure.message);
    // With the chain key, the exact record is named.
    let report = verify(&log, Some(key()), None);
    let failure = report.failure.unwrap();
    assert_eq!((failure.finding, failure.seq), (Finding::RecordModified, 3));
}

#[tokio::test]
async fn a_checkpoint_signed_by_a_key_the_chain_never_named_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    append(&log, 0, 3, true).await;
    // Someone who can write the directory but has no key swaps in their own
    // signing key and re-signs the checkpoint through a writer of their own.
    let forged: PathBuf = dir.path().join("forged.jsonl");
    std::fs::copy(&log, &forged).unwrap();
    std::fs::copy(
        default_checkpoint_path(&log),
        default_checkpoint_path(&forged),
    )
    .unwrap();
    let mine = Checkpoint::load(&default_checkpoint_path(&log)).unwrap();
    let thief = CheckpointSigner::load_or_create(&dir.path().join("thief.key")).unwrap();
    assert_ne!(mine.public_key, thief.public_key_hex());
    // A checkpoint in the thief's name is well signed, but no record of the
    // chain names the thief's key, and only a holder of the chain key could add one.
    let forged_cp = Checkpoint::sign(
        &thief,
        &mine.origin,
        mine.size,
        &mine.head_bytes().unwrap(),
        &mine.digest_bytes().unwrap(),
        chrono::Utc::now(),
        mine.key_id.as_deref(),
    );
    assert!(forged_cp.verify_signature(None));
    forged_cp.store(&default_checkpoint_path(&forged)).unwrap();
    let report = verify(&forged, Some(key()), None);
    let failure = report.failure.unwrap();
    assert_eq!(failure.finding, Finding::BadSignature);
    assert!(
        failure.message.contains("no record of the chain names"),
        "{}",
        failure.message
    );
    // The genuine checkpoint still verifies.
    assert!(verify(&log, Some(key()), None).intact);
}

#[tokio::test]
async fn the_health_checks_cheap_path_stays_cheap_with_an_independent_signing_key() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    append(&log, 0, 50, true).await;
    append(&log, 50, 2, false).await;
    let report = lift_audit::verify_since_checkpoint(
        &log,
        &VerifyOptions {
            key: Some(key()),
            ..VerifyOptions::default()
        },
    )
    .unwrap();
    assert!(report.intact, "{:?}", report.failure);
    // Only the records after the checkpoint were read, not the whole chain.
    assert_eq!(report.records_checked, 2);
    assert_eq!(report.unsigned_records, 2);
    assert_eq!(
        report.checkpoint.unwrap().trust,
        SignatureTrust::EmbeddedKey
    );
}
