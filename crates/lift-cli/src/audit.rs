//! `lift audit`: verify, query and follow audit trails (the sinks that write them are in `audit_sink` and `s3_audit`).

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use lift::audit::{AuditKey, Filter, FollowFrom, Follower, Record, VerifyOptions, VerifyReport};
use lift::{AuditEvent, Outcome, Resource};

use crate::context::Context;

/// Arguments of `lift audit`.
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// The operation.
    #[command(subcommand)]
    pub op: AuditOp,
}

/// A `lift audit` operation.
#[derive(Debug, Subcommand)]
pub enum AuditOp {
    /// Recompute the hash chain and check it against the checkpoint; exit 1 naming the first bad record.
    ///
    /// With `s3://BUCKET/PREFIX`, checks every writer's segments and signed
    /// digests there instead (S3 audit sink); exit 1 on altered, missing or
    /// reordered segments, digest gaps and breaks, or bad signatures.
    Verify {
        /// The log files, in order (one file with a `<file>.manifest` stands for all its rotated files),
        /// or one `s3://BUCKET/PREFIX`.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// The audit key file (default: LIFT_AUDIT_KEY_FILE).
        #[arg(long, value_name = "F")]
        key_file: Option<PathBuf>,
        /// The checkpoint file (default: --audit-checkpoint / LIFT_AUDIT_CHECKPOINT when verifying
        /// the --audit-log or when none is given, then <log>.checkpoint when it exists).
        #[arg(long, value_name = "F")]
        checkpoint: Option<PathBuf>,
        /// A trusted checkpoint public key (64 hex digits, from `lift audit public-key`):
        /// verifies the log up to its last checkpoint without the audit key.
        #[arg(long, value_name = "HEX")]
        public_key: Option<String>,
        /// Accept records that no checkpoint covers (a missing checkpoint, or
        /// one a writer found missing) with a warning instead of failing.
        #[arg(long)]
        allow_unanchored: bool,
        /// With s3://: read only the segments of digests signed at or after T
        /// (RFC 3339 or YYYY-MM-DD); every digest is still checked.
        #[arg(long, value_name = "T")]
        since: Option<String>,
    },
    /// Print the public key of a checkpoint signing key file, to give to auditors.
    PublicKey {
        /// The signing key file (default: --audit-signing-key, then <audit-log>.signing-key).
        #[arg(long, value_name = "F")]
        signing_key: Option<PathBuf>,
    },
    /// Print the records that match every filter given.
    Query {
        /// The log files, in order.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Only events at or after T (RFC 3339 or YYYY-MM-DD).
        #[arg(long, value_name = "T")]
        since: Option<String>,
        /// Only events before T (RFC 3339 or YYYY-MM-DD).
        #[arg(long, value_name = "T")]
        until: Option<String>,
        /// Only events by this actor id.
        #[arg(long, value_name = "A")]
        actor: Option<String>,
        /// Only this action (a trailing `*` matches a prefix: `rotate.*`).
        #[arg(long, value_name = "X")]
        action: Option<String>,
        /// Only this event type (secrets, deploy, audit, ...).
        #[arg(long, value_name = "TYPE")]
        event_type: Option<String>,
        /// Only this resource (`kind:id` or `id`).
        #[arg(long, value_name = "R")]
        resource: Option<String>,
        /// Only this outcome: success or failure.
        #[arg(long, value_name = "O")]
        outcome: Option<String>,
        /// Only this correlation id.
        #[arg(long, value_name = "ID")]
        correlation_id: Option<String>,
    },
    /// Follow a live log: print its last records, then each new one as it is appended.
    Tail {
        /// The log file.
        file: PathBuf,
        /// How many existing records to print first.
        #[arg(short = 'n', long, default_value_t = 10)]
        lines: usize,
        /// Print the existing records and exit instead of following.
        #[arg(long)]
        no_follow: bool,
    },
}

pub(crate) async fn run(args: AuditArgs, ctx: &Context) -> lift::Result<u8> {
    match args.op {
        AuditOp::Verify {
            files,
            key_file,
            checkpoint,
            public_key,
            allow_unanchored,
            since,
        } => {
            if let Some(url) = s3_url(&files) {
                if checkpoint.is_some() || allow_unanchored {
                    return Err(lift::Error::invalid_input(
                        "--checkpoint and --allow-unanchored apply to log files; an s3:// trail is anchored by its signed digests",
                    ));
                }
                let trusted = public_key.as_deref().map(parse_public_key).transpose()?;
                let key = load_key(key_file.as_deref())?;
                return verify_s3(&url, since.as_deref(), key, trusted, ctx).await;
            }
            if since.is_some() {
                return Err(lift::Error::invalid_input(
                    "--since applies to an s3://BUCKET/PREFIX trail; for log files use `lift audit query --since`",
                ));
            }
            // The global checkpoint belongs to the global --audit-log: it is
            // the default only when verifying that log (or when no log is given).
            let global_checkpoint = match (&ctx.audit_log, files.first()) {
                (Some(log), Some(first)) if log != first => None,
                _ => crate::context::audit_checkpoint().map(Path::to_owned),
            };
            let options = VerifyOptions {
                key: load_key(key_file.as_deref())?,
                checkpoint: checkpoint.or(global_checkpoint),
                trusted_public_key: public_key.as_deref().map(parse_public_key).transpose()?,
                allow_unanchored,
                ..VerifyOptions::default()
            };
            verify(files, options, ctx).await
        }
        AuditOp::PublicKey { signing_key } => public_key(signing_key, ctx),
        AuditOp::Query {
            files,
            since,
            until,
            actor,
            action,
            event_type,
            resource,
            outcome,
            correlation_id,
        } => {
            let filter = Filter {
                since: since.as_deref().map(lift::audit::parse_time).transpose()?,
                until: until.as_deref().map(lift::audit::parse_time).transpose()?,
                actor,
                action,
                event_type,
                resource,
                outcome,
                correlation_id,
            };
            query(files, filter, ctx).await
        }
        AuditOp::Tail {
            file,
            lines,
            no_follow,
        } => tail(&file, lines, no_follow, ctx).await,
    }
}

fn load_key(key_file: Option<&Path>) -> lift::Result<Option<AuditKey>> {
    Ok(match key_file {
        Some(path) => Some(AuditKey::load(path)?),
        None => AuditKey::from_env()?,
    })
}

fn public_key(signing_key: Option<PathBuf>, ctx: &Context) -> lift::Result<u8> {
    let path = signing_key
        .or_else(|| crate::context::audit_signing_key().map(Path::to_owned))
        .or_else(|| {
            ctx.audit_log
                .as_deref()
                .map(lift::audit::default_signing_key_path)
        })
        .ok_or_else(|| {
            lift::Error::invalid_input(
                "no signing key file: give --signing-key F (or --audit-log, whose <log>.signing-key is used)",
            )
        })?;
    let signer = lift::audit::CheckpointSigner::load(&path)?;
    let hex_key = signer.public_key_hex();
    if ctx.json {
        ctx.emit_json(&serde_json::json!({ "public_key": hex_key, "signing_key": path }))?;
    } else {
        ctx.say(hex_key);
    }
    Ok(0)
}

fn parse_public_key(hex_key: &str) -> lift::Result<lift::audit::VerifyingKey> {
    let bad = || {
        lift::Error::invalid_input(format!(
            "--public-key {hex_key:?} is not an Ed25519 public key; give the 64 hex digits of the checkpoint's public_key"
        ))
    };
    let mut bytes = [0u8; 32];
    if hex_key.len() != 64 {
        return Err(bad());
    }
    for (i, pair) in hex_key.as_bytes().chunks_exact(2).enumerate() {
        let text = std::str::from_utf8(pair).map_err(|_| bad())?;
        bytes[i] = u8::from_str_radix(text, 16).map_err(|_| bad())?;
    }
    lift::audit::VerifyingKey::from_bytes(&bytes).map_err(|_| bad())
}

async fn verify(files: Vec<PathBuf>, options: VerifyOptions, ctx: &Context) -> lift::Result<u8> {
    // A mistyped path is bad input (exit 2), never a tamper alarm.
    if let Some(missing) = files.iter().find(|f| !f.exists()) {
        return Err(lift::Error::invalid_input(format!(
            "audit log {}: no such file; check the path",
            missing.display()
        )));
    }
    let first = files.first().cloned().unwrap_or_default();
    let report = tokio::task::spawn_blocking(move || lift::audit::verify_with(&files, &options))
        .await
        .map_err(|e| {
            lift::Error::new(
                lift::ErrorKind::External,
                format!("verification task failed: {e}"),
            )
        })??;
    let mut event = AuditEvent::new(
        "audit",
        "verify",
        Resource::new("audit_log", first.display().to_string()),
    )
    .detail("records_checked", report.records_checked);
    if let Some(failure) = &report.failure {
        event = event
            .outcome(Outcome::failure(format!(
                "{} at record {}",
                failure.finding, failure.seq
            )))
            .detail("first_bad_seq", failure.seq);
    }
    ctx.audit.record(event).await?;
    if ctx.json {
        ctx.emit_json(&report)?;
    }
    ctx.say(render_verify(&report));
    Ok(if report.intact {
        0
    } else {
        crate::EXIT_FAILURE
    })
}

/// `s3://BUCKET/PREFIX` as (bucket, prefix), when that is what was given.
fn s3_url(files: &[PathBuf]) -> Option<(String, String)> {
    let [only] = files else { return None };
    crate::s3_audit::parse_url(only.to_str()?)
}

#[cfg(feature = "aws")]
async fn verify_s3(
    (bucket, prefix): &(String, String),
    since: Option<&str>,
    key: Option<AuditKey>,
    trusted: Option<lift::audit::VerifyingKey>,
    ctx: &Context,
) -> lift::Result<u8> {
    if bucket.is_empty() {
        return Err(lift::Error::invalid_input(
            "s3:// names no bucket; give s3://BUCKET/PREFIX",
        ));
    }
    let since = since.map(lift::audit::parse_time).transpose()?;
    let client = lift::audit::client_from_env().await;
    let options = lift::audit::S3VerifyOptions::default()
        .since(since)
        .key(key)
        .trusted_public_key(trusted);
    let report = lift::audit::verify_s3(&client, bucket, prefix, &options).await?;
    let records: u64 = report.writers.iter().map(|w| w.records_checked).sum();
    let mut event = AuditEvent::new(
        "audit",
        "verify",
        Resource::new("audit_trail", format!("s3://{bucket}/{prefix}")),
    )
    .detail("records_checked", records)
    .detail("writers", report.writers.len());
    if !report.intact {
        let tampered = report
            .findings
            .iter()
            .filter(|f| f.kind.is_tamper())
            .count();
        event = event.outcome(Outcome::failure(format!("{tampered} findings")));
    }
    ctx.audit.record(event).await?;
    if ctx.json {
        ctx.emit_json(&report)?;
    }
    ctx.say(render_verify_s3(&report));
    Ok(if report.intact {
        0
    } else {
        crate::EXIT_FAILURE
    })
}

#[cfg(not(feature = "aws"))]
async fn verify_s3(
    _url: &(String, String),
    _since: Option<&str>,
    _key: Option<AuditKey>,
    _trusted: Option<lift::audit::VerifyingKey>,
    _ctx: &Context,
) -> lift::Result<u8> {
    Err(lift::Error::invalid_input(
        "this lift was built without the aws feature, so it cannot read s3:// audit trails",
    ))
}

/// The human summary of an S3 trail's verification: one line, then one per finding.
#[cfg(feature = "aws")]
pub(crate) fn render_verify_s3(report: &lift::audit::S3VerifyReport) -> String {
    use std::fmt::Write as _;
    let records: u64 = report.writers.iter().map(|w| w.records_checked).sum();
    let segments: u64 = report.writers.iter().map(|w| w.segments_checked).sum();
    let digests: u64 = report.writers.iter().map(|w| w.digests).sum();
    let closed = report.writers.iter().filter(|w| w.closed).count();
    let mut text = format!(
        "{}: s3://{}/{}: {} writers ({closed} closed), {records} records in {segments} segments, {digests} digests; signatures checked with the {}",
        if report.intact {
            "intact"
        } else {
            "NOT INTACT"
        },
        report.bucket,
        report.prefix,
        report.writers.len(),
        report.signature_trust
    );
    for finding in &report.findings {
        let label = if finding.kind.is_tamper() {
            "finding"
        } else {
            "notice"
        };
        let kind = serde_json::to_value(finding.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let _ = write!(
            text,
            "\n{label}: {}: {kind}: {}: {}",
            finding.writer, finding.key, finding.detail
        );
    }
    text
}

/// The human summary of a verification.
pub(crate) fn render_verify(report: &VerifyReport) -> String {
    let span = match (&report.first_time, &report.last_time) {
        (Some(first), Some(last)) => format!(
            ", {} to {}",
            first.format("%Y-%m-%dT%H:%M:%SZ"),
            last.format("%Y-%m-%dT%H:%M:%SZ")
        ),
        _ => String::new(),
    };
    let checkpoint = match &report.checkpoint {
        Some(cp) => format!(
            "; checkpoint {} ({} records, signature checked with the {})",
            cp.path,
            cp.size,
            match cp.trust {
                lift::audit::SignatureTrust::AuditKey => "audit key",
                lift::audit::SignatureTrust::TrustedKey => "trusted public key",
                _ => "embedded public key only, which proves integrity but not origin",
            }
        ),
        None => String::new(),
    };
    let unsigned = if report.unsigned_records > 0 && report.checkpoint.is_some() {
        format!(
            "; {} records after the checkpoint are not yet signed",
            report.unsigned_records
        )
    } else {
        String::new()
    };
    let warnings: String = report
        .warnings
        .iter()
        .map(|w| format!("\nwarning: {w}"))
        .collect();
    let keyed = match &report.key_id {
        Some(id) => format!(", keyed (key id {id})"),
        None => String::new(),
    };
    match &report.failure {
        None => format!(
            "intact: {} records{span}{keyed}{checkpoint}{unsigned}{warnings}",
            report.records_checked
        ),
        Some(failure) => {
            let place = match (&failure.file, failure.line) {
                (Some(file), Some(line)) => format!(" ({file}:{line})"),
                (Some(file), None) => format!(" ({file})"),
                _ => String::new(),
            };
            let hint = if failure.finding == lift::audit::Finding::Unanchored {
                "\nif the checkpoint is kept elsewhere, give it with --checkpoint; after investigating, --allow-unanchored accepts these records with a warning"
            } else {
                ""
            };
            format!(
                "NOT INTACT: {} at record {}{place}: {}\n{} records verified before it{span}{checkpoint}{hint}",
                failure.finding, failure.seq, failure.message, report.records_checked
            )
        }
    }
}

/// One record as a human line: seq, time, actor, type/action, resource, outcome.
fn render_record(record: &Record) -> String {
    let event = &record.event;
    let outcome = match &event.outcome {
        Outcome::Failure { detail, .. } => format!("failure: {detail}"),
        other => other.as_str().to_owned(),
    };
    format!(
        "{:>6} {} {} {}/{} {}:{} {}",
        record.seq,
        event.time.format("%Y-%m-%dT%H:%M:%S%.3fZ"),
        event.actor.id,
        event.event_type,
        event.action,
        event.resource.kind,
        event.resource.id,
        outcome
    )
}

async fn query(files: Vec<PathBuf>, filter: Filter, ctx: &Context) -> lift::Result<u8> {
    let json = ctx.json;
    let (matched, skipped) = tokio::task::spawn_blocking(move || -> lift::Result<(u64, u64)> {
        let records = lift::audit::query(&files, filter)?;
        let stdout = std::io::stdout();
        let mut out = std::io::BufWriter::new(stdout.lock());
        let io = |e: std::io::Error| lift::Error::from(e);
        // A closed pipe (`lift audit query ... | head`) ends the output quietly.
        let closed = |e: &std::io::Error| e.kind() == std::io::ErrorKind::BrokenPipe;
        let (mut matched, mut skipped) = (0u64, 0u64);
        if json {
            match write!(out, "{{\"records\":[") {
                Err(e) if closed(&e) => return Ok((matched, skipped)),
                other => other.map_err(io)?,
            }
        }
        for item in records {
            match item {
                Ok(record) => {
                    if json {
                        let text = serde_json::to_string(&record).map_err(|e| {
                            lift::Error::new(
                                lift::ErrorKind::External,
                                format!("cannot render record: {e}"),
                            )
                        })?;
                        let sep = if matched == 0 { "\n" } else { ",\n" };
                        match write!(out, "{sep}{text}") {
                            Err(e) if closed(&e) => return Ok((matched, skipped)),
                            other => other.map_err(io)?,
                        }
                    } else {
                        match writeln!(out, "{}", render_record(&record)) {
                            Err(e) if closed(&e) => return Ok((matched, skipped)),
                            other => other.map_err(io)?,
                        }
                    }
                    matched += 1;
                }
                Err(err @ lift::audit::Error::Parse { .. }) => {
                    skipped += 1;
                    crate::output::stderr_line(&format_args!("warning: {err}"));
                }
                Err(err) => return Err(err.into()),
            }
        }
        if json {
            match writeln!(out, "\n],\"matched\":{matched},\"skipped\":{skipped}}}") {
                Err(e) if closed(&e) => return Ok((matched, skipped)),
                other => other.map_err(io)?,
            }
        }
        match out.flush() {
            Err(e) if closed(&e) => return Ok((matched, skipped)),
            other => other.map_err(io)?,
        }
        Ok((matched, skipped))
    })
    .await
    .map_err(|e| {
        lift::Error::new(lift::ErrorKind::External, format!("query task failed: {e}"))
    })??;
    let summary = format!("{matched} records matched");
    if json {
        crate::output::stderr_line(&summary);
    } else if skipped > 0 {
        crate::output::stderr_line(&format_args!(
            "{summary}; {skipped} unreadable lines skipped (run `lift audit verify`)"
        ));
    }
    Ok(0)
}

async fn tail(file: &Path, lines: usize, no_follow: bool, ctx: &Context) -> lift::Result<u8> {
    let mut follower = Follower::new(file, FollowFrom::Last(lines))?;
    let mut shown = 0;
    loop {
        if no_follow && shown >= lines {
            return Ok(0);
        }
        let next = if no_follow {
            match tokio::time::timeout(std::time::Duration::from_millis(50), follower.next()).await
            {
                Ok(next) => next?,
                Err(_) => return Ok(0),
            }
        } else {
            follower.next().await?
        };
        shown += 1;
        let text = if ctx.json {
            serde_json::to_string(&next).map_err(|e| {
                lift::Error::new(
                    lift::ErrorKind::External,
                    format!("cannot render record: {e}"),
                )
            })?
        } else {
            render_record(&next)
        };
        let mut out = std::io::stdout().lock();
        if writeln!(out, "{text}").and_then(|()| out.flush()).is_err() {
            // The reader went away (`lift audit tail ... | head`): stop following, quietly.
            return Ok(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lift::audit::{FileAuditSink, SinkOptions};
    use lift::{AuditSink, MemoryAuditSink};
    use std::sync::Arc;

    async fn write_log(dir: &Path, key: Option<AuditKey>, n: u64) -> PathBuf {
        let log = dir.join("audit.jsonl");
        let sink = FileAuditSink::open(SinkOptions::new(&log).key(key))
            .await
            .unwrap();
        for i in 0..n {
            sink.record(AuditEvent::new(
                "secrets",
                format!("put.{i}"),
                Resource::new("secret", "db"),
            ))
            .await
            .unwrap();
        }
        sink.close().await.unwrap();
        log
    }

    fn write_private(path: &Path, bytes: &[u8]) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::write(path, bytes).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }

    fn ctx(sink: &MemoryAuditSink) -> Context {
        Context::for_tests(false, Arc::new(sink.clone()))
    }

    fn verify_args(log: &Path, key_file: Option<PathBuf>) -> AuditArgs {
        AuditArgs {
            op: AuditOp::Verify {
                files: vec![log.to_owned()],
                key_file,
                checkpoint: None,
                public_key: None,
                allow_unanchored: false,
                since: None,
            },
        }
    }

    #[test]
    fn s3_urls_name_a_bucket_and_a_prefix() {
        let url = |s: &str| s3_url(&[PathBuf::from(s)]);
        assert_eq!(
            url("s3://trail/fleet/prod"),
            Some(("trail".into(), "fleet/prod".into()))
        );
        assert_eq!(url("s3://trail"), Some(("trail".into(), String::new())));
        assert_eq!(url("audit.jsonl"), None);
        assert_eq!(
            s3_url(&[PathBuf::from("s3://a/b"), PathBuf::from("x")]),
            None,
            "an s3:// trail is verified alone"
        );
    }

    #[tokio::test]
    async fn since_and_checkpoint_options_are_refused_where_they_do_not_apply() {
        let dir = tempfile::tempdir().unwrap();
        let log = write_log(dir.path(), None, 1).await;
        let audit = MemoryAuditSink::new();
        let mut args = verify_args(&log, None);
        if let AuditOp::Verify { since, .. } = &mut args.op {
            *since = Some("2026-01-01".into());
        }
        let err = run(args, &ctx(&audit)).await.unwrap_err();
        assert_eq!(err.kind(), lift::ErrorKind::InvalidInput);
        assert!(
            err.message().contains("--since applies to an s3://"),
            "{err}"
        );
        let mut args = verify_args(Path::new("s3://trail/prefix"), None);
        if let AuditOp::Verify {
            allow_unanchored, ..
        } = &mut args.op
        {
            *allow_unanchored = true;
        }
        let err = run(args, &ctx(&audit)).await.unwrap_err();
        assert_eq!(err.kind(), lift::ErrorKind::InvalidInput);
        assert!(audit.actions().is_empty(), "nothing was verified");
    }

    #[cfg(feature = "aws")]
    #[test]
    fn an_s3_report_renders_one_line_and_one_per_finding() {
        let report: lift::audit::S3VerifyReport = lift::audit::S3VerifyReport {
            intact: false,
            bucket: "trail".into(),
            prefix: "fleet/".into(),
            writers: Vec::new(),
            findings: vec![lift::audit::S3Finding {
                writer: "fn-a".into(),
                kind: lift::audit::S3FindingKind::Missing,
                key: "fleet/fn-a/segment-0000000002.jsonl".into(),
                detail: "records 4..=6 signed in fleet/fn-a/digest-0000000001.json are gone".into(),
            }],
            signature_trust: "trusted key",
        };
        let text = render_verify_s3(&report);
        assert!(
            text.starts_with("NOT INTACT: s3://trail/fleet/: 0 writers"),
            "{text}"
        );
        assert!(
            text.ends_with("\nfinding: fn-a: missing: fleet/fn-a/segment-0000000002.jsonl: records 4..=6 signed in fleet/fn-a/digest-0000000001.json are gone"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn verify_exits_0_when_intact_and_1_naming_the_first_bad_record() {
        let dir = tempfile::tempdir().unwrap();
        let key_file = dir.path().join("key");
        write_private(&key_file, &[7u8; 32]);
        let key = AuditKey::load(&key_file).unwrap();
        let log = write_log(dir.path(), Some(key.clone()), 3).await;
        let audit = MemoryAuditSink::new();

        let code = run(verify_args(&log, Some(key_file.clone())), &ctx(&audit))
            .await
            .unwrap();
        assert_eq!(code, 0);
        let report = lift::audit::verify(std::slice::from_ref(&log), Some(&key), None).unwrap();
        let text = render_verify(&report);
        // The 3 events and, first, the record naming the checkpoint signing key.
        assert!(text.starts_with("intact: 4 records"), "{text}");
        assert!(
            text.contains("signature checked with the audit key"),
            "{text}"
        );

        let wrong = dir.path().join("wrong");
        write_private(&wrong, &[8u8; 32]);
        assert_eq!(
            run(verify_args(&log, Some(wrong)), &ctx(&audit))
                .await
                .unwrap(),
            1
        );

        let mut bytes = std::fs::read(&log).unwrap();
        let second = bytes.iter().position(|&b| b == b'\n').unwrap() + 40;
        bytes[second] ^= 1;
        std::fs::write(&log, &bytes).unwrap();
        assert_eq!(
            run(verify_args(&log, Some(key_file)), &ctx(&audit))
                .await
                .unwrap(),
            1
        );
        let report = lift::audit::verify(std::slice::from_ref(&log), Some(&key), None).unwrap();
        let text = render_verify(&report);
        assert!(
            text.starts_with("NOT INTACT: record modified at record 2"),
            "{text}"
        );
        assert!(text.contains("audit.jsonl:2"), "{text}");

        let events = audit.events();
        assert_eq!(audit.actions(), ["verify", "verify", "verify"]);
        assert!(events[0].outcome.is_success());
        assert_eq!(events[2].outcome.as_str(), "failure");
        assert_eq!(events[2].details["first_bad_seq"], 2);
    }

    #[tokio::test]
    async fn query_filters_must_be_valid() {
        let dir = tempfile::tempdir().unwrap();
        let log = write_log(dir.path(), None, 1).await;
        let args = AuditArgs {
            op: AuditOp::Query {
                files: vec![log],
                since: Some("yesterday".into()),
                until: None,
                actor: None,
                action: None,
                event_type: None,
                resource: None,
                outcome: None,
                correlation_id: None,
            },
        };
        let err = run(args, &ctx(&MemoryAuditSink::new())).await.unwrap_err();
        assert_eq!(err.kind(), lift::ErrorKind::InvalidInput);
    }

    #[test]
    fn public_keys_are_parsed_strictly() {
        assert!(parse_public_key("zz").is_err());
        assert!(parse_public_key(&"g".repeat(64)).is_err());
        let key = AuditKey::from_bytes(&[1u8; 32])
            .unwrap()
            .signer()
            .public_key_hex();
        assert!(parse_public_key(&key).is_ok());
    }
}
