//! lift-audit's S3 sink and verifier against moto's S3, in a bucket created
//! with Object Lock enabled (run with `LIFT_TEST_MOTO=1`).
//!
//! Shows that an honest trail verifies, that the lock holds against a plain
//! delete of a locked version, and that a segment overwritten (with the
//! governance bypass), deleted, or swapped, and a deleted digest, are caught.

// A failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::print_stderr, reason = "a skipped test says why")]

use std::time::Duration;

use lift_audit::aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use lift_audit::aws_sdk_s3::primitives::ByteStream;
use lift_audit::aws_sdk_s3::{self, Client};
use lift_audit::{
    AuditKey, RetentionMode, S3AuditSink, S3FindingKind, S3SinkOptions, S3VerifyOptions,
    S3VerifyReport, verify_s3,
};
use lift_core::{AuditEvent, Resource};
use lift_tests::moto::{self, MotoServer};

const BUCKET: &str = "audit-trail";
const PREFIX: &str = "fleet/prod";

fn client(server: &MotoServer) -> Client {
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "moto"))
        .endpoint_url(server.endpoint())
        .force_path_style(true)
        .build();
    Client::from_conf(config)
}

async fn locked_bucket(client: &Client) {
    client
        .create_bucket()
        .bucket(BUCKET)
        .object_lock_enabled_for_bucket(true)
        .send()
        .await
        .unwrap();
}

fn signer() -> lift_audit::CheckpointSigner {
    AuditKey::from_bytes(&[9u8; 32]).unwrap().signer()
}

/// Writes `n` records as writer `writer`: segments of 3, a digest every 6, then closes when asked.
async fn write(client: &Client, writer: &str, n: u64, close: bool) -> S3AuditSink {
    let options = S3SinkOptions::new(BUCKET, PREFIX, signer())
        .writer(writer)
        .key(Some(AuditKey::from_bytes(&[5u8; 32]).unwrap()))
        .retention(RetentionMode::Governance, Duration::from_secs(86_400))
        .segment_records(3)
        .digest_every(6);
    let sink = S3AuditSink::open(client.clone(), options).await.unwrap();
    for i in 1..=n {
        let receipt = sink
            .append(AuditEvent::new(
                "secrets",
                "put",
                Resource::new("secret", format!("prod/{i}")),
            ))
            .await
            .unwrap();
        assert_eq!(receipt.seq, i);
    }
    if close {
        sink.close().await.unwrap();
    } else {
        sink.flush().await.unwrap();
    }
    sink
}

async fn verify(client: &Client) -> S3VerifyReport {
    let options = S3VerifyOptions::default()
        .key(Some(AuditKey::from_bytes(&[5u8; 32]).unwrap()))
        .trusted_public_key(Some(signer().verifying_key()));
    verify_s3(client, BUCKET, PREFIX, &options).await.unwrap()
}

fn kinds(report: &S3VerifyReport) -> Vec<(S3FindingKind, String)> {
    report
        .findings
        .iter()
        .map(|f| {
            (
                f.kind,
                f.key.rsplit('/').next().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn key(writer: &str, name: &str) -> String {
    format!("{PREFIX}/{writer}/{name}")
}

async fn version_of(client: &Client, key: &str) -> String {
    client
        .head_object()
        .bucket(BUCKET)
        .key(key)
        .send()
        .await
        .unwrap()
        .version_id()
        .unwrap()
        .to_owned()
}

/// Replaces a locked object for good: deletes its version with the governance bypass, then puts `bytes`.
async fn overwrite(client: &Client, key: &str, bytes: Vec<u8>) {
    let version = version_of(client, key).await;
    client
        .delete_object()
        .bucket(BUCKET)
        .key(key)
        .version_id(version)
        .bypass_governance_retention(true)
        .send()
        .await
        .unwrap();
    client
        .put_object()
        .bucket(BUCKET)
        .key(key)
        .body(ByteStream::from(bytes))
        .send()
        .await
        .unwrap();
}

async fn start() -> Option<(MotoServer, Client)> {
    if !moto::enabled("audit_s3") {
        return None;
    }
    let server = MotoServer::start().unwrap();
    let client = client(&server);
    locked_bucket(&client).await;
    Some((server, client))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_honest_fleet_verifies_and_each_tampering_is_caught() {
    let Some((_server, client)) = start().await else {
        return;
    };
    write(&client, "fn-a", 10, true).await;
    write(&client, "fn-b", 4, true).await;

    let report = verify(&client).await;
    assert!(report.intact, "{:?}", report.findings);
    assert!(report.findings.is_empty(), "{:?}", report.findings);
    assert_eq!(report.writers.len(), 2);
    let a = &report.writers[0];
    assert_eq!(
        (a.writer.as_str(), a.records_checked, a.head_seq, a.closed),
        ("fn-a", 10, 10, true)
    );
    // 10 records in segments of 3: four segments.
    assert_eq!(a.segments_checked, 4);
    assert_eq!(report.signature_trust, "trusted key");

    // The objects really are under Object Lock: deleting a locked version
    // without the governance bypass is refused.
    let segment2 = key("fn-a", "segment-0000000002.jsonl");
    let version = version_of(&client, &segment2).await;
    let refused = client
        .delete_object()
        .bucket(BUCKET)
        .key(&segment2)
        .version_id(&version)
        .send()
        .await;
    assert!(
        refused.is_err(),
        "a locked version cannot be deleted without the bypass"
    );

    // Overwritten for good with the governance bypass (the locked version
    // deleted, new bytes put in its place): caught as altered.
    overwrite(&client, &segment2, b"{\"seq\":4}\n".to_vec()).await;
    let report = verify(&client).await;
    assert!(!report.intact);
    assert_eq!(
        kinds(&report),
        [(
            S3FindingKind::Altered,
            "segment-0000000002.jsonl".to_owned()
        )]
    );

    // Deleted, version and all, with the bypass: caught as missing.
    let segment3 = key("fn-a", "segment-0000000003.jsonl");
    let version = version_of(&client, &segment3).await;
    client
        .delete_object()
        .bucket(BUCKET)
        .key(&segment3)
        .version_id(&version)
        .bypass_governance_retention(true)
        .send()
        .await
        .unwrap();
    let report = verify(&client).await;
    assert!(kinds(&report).contains(&(
        S3FindingKind::Missing,
        "segment-0000000003.jsonl".to_owned()
    )));

    // A plain delete (a delete marker hides the object): missing too.
    client
        .delete_object()
        .bucket(BUCKET)
        .key(key("fn-b", "segment-0000000002.jsonl"))
        .send()
        .await
        .unwrap();
    let report = verify(&client).await;
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.writer == "fn-b" && f.kind == S3FindingKind::Missing),
        "{:?}",
        report.findings
    );

    // A segment swapped for another one's bytes: caught as reordered.
    let first = client
        .get_object()
        .bucket(BUCKET)
        .key(key("fn-a", "segment-0000000001.jsonl"))
        .send()
        .await
        .unwrap()
        .body
        .collect()
        .await
        .unwrap()
        .into_bytes();
    overwrite(
        &client,
        &key("fn-a", "segment-0000000004.jsonl"),
        first.to_vec(),
    )
    .await;
    let report = verify(&client).await;
    assert!(kinds(&report).contains(&(
        S3FindingKind::Reordered,
        "segment-0000000004.jsonl".to_owned()
    )));

    // A digest deleted: a gap in the digest chain.
    client
        .delete_object()
        .bucket(BUCKET)
        .key(key("fn-a", "digest-0000000001.json"))
        .send()
        .await
        .unwrap();
    let report = verify(&client).await;
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.kind == S3FindingKind::DigestGap),
        "{:?}",
        report.findings
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_that_never_closed_is_reported_as_stopped_and_an_unsigned_tail_as_undigested() {
    let Some((_server, client)) = start().await else {
        return;
    };
    // Flushed (segment and digest) but never closed: a Lambda instance that was reclaimed.
    let sink = write(&client, "fn-c", 5, false).await;
    // Three more records fill a segment, written before any digest covers it.
    for i in 0..3 {
        sink.append(AuditEvent::new(
            "deploy",
            "up",
            Resource::new("stack", format!("s{i}")),
        ))
        .await
        .unwrap();
    }
    let later = chrono::Utc::now() + chrono::Duration::hours(2);
    let options = S3VerifyOptions::default().now(later);
    let report = verify_s3(&client, BUCKET, PREFIX, &options).await.unwrap();
    assert!(
        report.intact,
        "notices are not tampering: {:?}",
        report.findings
    );
    let found: Vec<_> = report.findings.iter().map(|f| f.kind).collect();
    assert_eq!(
        found,
        [S3FindingKind::Undigested, S3FindingKind::Stopped],
        "{:?}",
        report.findings
    );
    assert_eq!(
        report.signature_trust,
        "key named in the first digest (integrity only)"
    );

    // A second writer with the same id is refused: chains never mix.
    let again = S3AuditSink::open(
        client.clone(),
        S3SinkOptions::new(BUCKET, PREFIX, signer()).writer("fn-c"),
    )
    .await;
    assert!(again.is_err());

    // `since` skips reading older segments but still checks every digest.
    let options = S3VerifyOptions::default().since(Some(later));
    let report = verify_s3(&client, BUCKET, PREFIX, &options).await.unwrap();
    assert_eq!(report.writers[0].segments_checked, 0);
    assert_eq!(report.writers[0].digests, 1);
    drop(sink);
}

/// The `lift` binary beside the fake `pulumi`, or `None` (said) when it is not built.
fn lift_binary() -> Option<std::path::PathBuf> {
    let lift = std::path::PathBuf::from(env!("CARGO_BIN_EXE_pulumi")).with_file_name("lift");
    if lift.is_file() {
        return Some(lift);
    }
    assert!(
        std::env::var_os("LIFT_TEST_REQUIRE_LIFT_BIN").is_none(),
        "{} is missing; build it with `cargo build -p lift-cli`",
        lift.display()
    );
    eprintln!("skipping: {} is not built", lift.display());
    None
}

/// `lift audit verify s3://BUCKET/PREFIX` through the binary, with moto as the S3 endpoint.
fn lift_verify(
    lift: &std::path::Path,
    server: &MotoServer,
    dir: &std::path::Path,
    extra: &[&str],
) -> std::process::Output {
    use std::os::unix::fs::PermissionsExt as _;
    let key = dir.join("audit.key");
    std::fs::write(&key, [5u8; 32]).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let public: String = signer()
        .verifying_key()
        .to_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    std::process::Command::new(lift)
        .args(["--json", "audit", "verify"])
        .arg(format!("s3://{BUCKET}/{PREFIX}"))
        .arg("--key-file")
        .arg(&key)
        .args(["--public-key", &public])
        .args(extra)
        .env("AWS_ENDPOINT_URL", server.endpoint())
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_PROFILE")
        .env_remove("LIFT_AUDIT_LOG")
        .env_remove("LIFT_ENV")
        .env_remove("LIFT_CONFIG")
        .current_dir(dir)
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lift_audit_verify_reads_an_s3_trail_and_exits_1_on_tampering() {
    let Some(lift) = lift_binary() else {
        return;
    };
    let Some((server, client)) = start().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    write(&client, "fn-a", 7, true).await;
    write(&client, "fn-b", 2, true).await;

    let out = lift_verify(&lift, &server, dir.path(), &[]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["intact"], true, "{report}");
    assert_eq!(report["writers"].as_array().unwrap().len(), 2, "{report}");
    assert!(
        stderr.contains("intact") || stderr.contains("INTACT"),
        "{stderr}"
    );

    // A bad --since is bad input, and log-file flags do not apply to a trail.
    let out = lift_verify(&lift, &server, dir.path(), &["--since", "yesterday"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = lift_verify(&lift, &server, dir.path(), &["--allow-unanchored"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // One segment overwritten with the governance bypass: exit 1, and the report names it.
    overwrite(
        &client,
        &key("fn-a", "segment-0000000002.jsonl"),
        b"{\"seq\":4}\n".to_vec(),
    )
    .await;
    let out = lift_verify(&lift, &server, dir.path(), &[]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["intact"], false, "{report}");
    assert!(
        report.to_string().contains("segment-0000000002.jsonl"),
        "{report}"
    );
}

/// Runs `lift ARGS` in `dir` with moto as the AWS endpoint and no other lift settings.
fn lift_in(
    lift: &std::path::Path,
    server: &MotoServer,
    dir: &std::path::Path,
    args: &[&str],
    stdin: &str,
) -> std::process::Output {
    use std::io::Write as _;
    let mut child = std::process::Command::new(lift)
        .args(args)
        .env("AWS_ENDPOINT_URL", server.endpoint())
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_PROFILE")
        .env_remove("LIFT_AUDIT_LOG")
        .env_remove("LIFT_AUDIT_S3")
        .env_remove("LIFT_AUDIT_KEY_FILE")
        .env_remove("LIFT_AUDIT_SIGNING_KEY_FILE")
        .env_remove("LIFT_SECRETS_STORE")
        .env_remove("LIFT_SECRETS_KEY_FILE")
        .env_remove("LIFT_ENV")
        .env_remove("LIFT_CONFIG")
        .current_dir(dir)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_production_environment_audits_to_s3_from_parallel_lift_processes() {
    use std::os::unix::fs::PermissionsExt as _;
    let Some(lift) = lift_binary() else {
        return;
    };
    let Some((server, client)) = start().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    for (name, byte) in [("audit.key", 5u8), ("signing.key", 9u8), ("store.key", 7u8)] {
        let path = dir.path().join(name);
        std::fs::write(&path, [byte; 32]).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    std::fs::write(
        dir.path().join("lift.toml"),
        format!(
            r#"default_environment = "prod"

[environments.prod]
class = "production"
secrets = {{ path = "store", key_file = "store.key" }}
audit = {{ s3 = "s3://{BUCKET}/cli", key_file = "audit.key", signing_key = "signing.key" }}
"#
        ),
    )
    .unwrap();

    // Production requires an audit trail, and the S3 one satisfies it. Four
    // processes at once are four writers; none waits for another.
    let put = lift_in(&lift, &server, dir.path(), &["secrets", "put", "db/0"], "v");
    assert_eq!(
        put.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&put.stderr)
    );
    let dir_path = dir.path().to_owned();
    let handles: Vec<_> = (1..=4)
        .map(|i| {
            let (lift, dir) = (lift.clone(), dir_path.clone());
            let args = ["secrets".to_owned(), "put".to_owned(), format!("db/{i}")];
            let endpoint = server.endpoint();
            std::thread::spawn(move || {
                std::process::Command::new(lift)
                    .args(&args)
                    .env("AWS_ENDPOINT_URL", endpoint)
                    .env("AWS_ACCESS_KEY_ID", "testing")
                    .env("AWS_SECRET_ACCESS_KEY", "testing")
                    .env("AWS_REGION", "us-east-1")
                    .env("AWS_EC2_METADATA_DISABLED", "true")
                    .env_remove("LIFT_AUDIT_LOG")
                    .env_remove("LIFT_ENV")
                    .env_remove("LIFT_CONFIG")
                    .current_dir(dir)
                    .stdin(std::process::Stdio::piped())
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .and_then(|mut child| {
                        use std::io::Write as _;
                        child.stdin.take().unwrap().write_all(b"v")?;
                        child.wait_with_output()
                    })
                    .unwrap()
            })
        })
        .collect();
    for handle in handles {
        let out = handle.join().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // A command that records nothing starts no writer.
    let list = lift_in(&lift, &server, dir.path(), &["env", "show"], "");
    assert_eq!(
        list.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&list.stderr)
    );
    assert!(
        String::from_utf8_lossy(&list.stdout).contains(&format!("s3://{BUCKET}/cli")),
        "env show names the trail: {}",
        String::from_utf8_lossy(&list.stdout)
    );

    let verify = lift_in(
        &lift,
        &server,
        dir.path(),
        &[
            "--json",
            "audit",
            "verify",
            &format!("s3://{BUCKET}/cli"),
            "--key-file",
            "audit.key",
        ],
        "",
    );
    assert_eq!(
        verify.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&verify.stdout).unwrap();
    let writers = report["writers"].as_array().unwrap();
    assert_eq!(writers.len(), 5, "one writer per audited process: {report}");
    assert!(writers.iter().all(|w| w["closed"] == true), "{report}");
    let listed = client
        .list_objects_v2()
        .bucket(BUCKET)
        .prefix("cli/")
        .send()
        .await
        .unwrap();
    assert!(listed.key_count().unwrap_or(0) > 0);

    // Without the signing key the trail cannot be written: bad input, before anything runs.
    std::fs::write(
        dir.path().join("lift.toml"),
        format!(
            r#"[environments.prod]
class = "production"
secrets = {{ path = "store", key_file = "store.key" }}
audit = {{ s3 = "s3://{BUCKET}/cli" }}
"#
        ),
    )
    .unwrap();
    let refused = lift_in(
        &lift,
        &server,
        dir.path(),
        &["--env", "prod", "secrets", "put", "db/9"],
        "v",
    );
    assert_eq!(
        refused.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--audit-signing-key"));
}
