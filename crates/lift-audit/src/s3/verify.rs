//! `verify_s3`: reads every writer's digests and segments under a prefix and
//! reports altered, missing, reordered and unlisted segments, gaps and breaks
//! in the digest chain, bad signatures, and chains that stopped.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use aws_sdk_s3::Client;
use chrono::{DateTime, Utc};
use ed25519_dalek::VerifyingKey;

use super::digest::{S3Digest, decode32, sha256_hex};
use super::remote;
use super::sink::normalize_prefix;
use crate::error::Result;
use crate::key::AuditKey;
use crate::record::{GENESIS, Hasher, parse_line, to_hex};

/// How to verify a prefix.
#[derive(Debug, Clone)]
pub struct S3VerifyOptions {
    since: Option<DateTime<Utc>>,
    key: Option<AuditKey>,
    trusted_public_key: Option<VerifyingKey>,
    stale_after: Duration,
    now: Option<DateTime<Utc>>,
}

impl Default for S3VerifyOptions {
    fn default() -> Self {
        S3VerifyOptions {
            since: None,
            key: None,
            trusted_public_key: None,
            stale_after: Duration::from_secs(3600),
            now: None,
        }
    }
}

impl S3VerifyOptions {
    /// Reads only the segments of digests signed at or after `since` (every digest is still checked).
    #[must_use]
    pub fn since(mut self, since: Option<DateTime<Utc>>) -> Self {
        self.since = since;
        self
    }

    /// The audit key, to check the records' HMACs too (the signed segment hashes are checked without it).
    #[must_use]
    pub fn key(mut self, key: Option<AuditKey>) -> Self {
        self.key = key;
        self
    }

    /// The public key every digest must be signed with. Without one, each
    /// writer's first digest names the key its later digests must match,
    /// which proves integrity but not who wrote them.
    #[must_use]
    pub fn trusted_public_key(mut self, key: Option<VerifyingKey>) -> Self {
        self.trusted_public_key = key;
        self
    }

    /// A chain whose last digest is older than this and not final is reported as stopped (default 1 hour).
    #[must_use]
    pub fn stale_after(mut self, after: Duration) -> Self {
        self.stale_after = after;
        self
    }

    /// The time "stopped" is measured from (default: now).
    #[must_use]
    pub fn now(mut self, now: DateTime<Utc>) -> Self {
        self.now = Some(now);
        self
    }
}

/// What is wrong, or worth knowing, about an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum S3FindingKind {
    /// A segment's bytes no longer match the hash its digest signed.
    Altered,
    /// A segment a digest names is gone (deleted, or hidden by a delete marker).
    Missing,
    /// A segment holds another listed segment's bytes, or a digest lists segments out of order.
    Reordered,
    /// Digest numbers skip: a digest was deleted.
    DigestGap,
    /// A digest does not name the hash of the digest before it.
    DigestChainBroken,
    /// A digest's signature does not verify.
    BadSignature,
    /// A digest object is not a valid digest.
    BadDigest,
    /// Records inside segments do not chain (sequence, previous hash or record hash).
    ChainBroken,
    /// A segment that no digest names sits among digested ones: it was added.
    Unlisted,
    /// Segments after the last digest: written but not yet signed (a live or crashed writer).
    Undigested,
    /// The chain's last digest is old and not final: the writer stopped without closing.
    Stopped,
}

impl S3FindingKind {
    /// Whether the finding means the trail was tampered with or damaged
    /// (`Undigested` and `Stopped` are notices: they happen to honest writers).
    pub fn is_tamper(self) -> bool {
        !matches!(self, S3FindingKind::Undigested | S3FindingKind::Stopped)
    }
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct S3Finding {
    /// The writer.
    pub writer: String,
    /// What kind.
    pub kind: S3FindingKind,
    /// The object it concerns.
    pub key: String,
    /// What was found.
    pub detail: String,
}

/// What was checked of one writer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct S3WriterSummary {
    /// The writer id.
    pub writer: String,
    /// Digests read.
    pub digests: u64,
    /// Segments read and checked.
    pub segments_checked: u64,
    /// Records read and checked.
    pub records_checked: u64,
    /// The last digested record's sequence number.
    pub head_seq: u64,
    /// When the last digest was signed.
    pub last_digest: Option<DateTime<Utc>>,
    /// Whether the last digest is final (the writer closed).
    pub closed: bool,
}

/// The outcome of [`verify_s3`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct S3VerifyReport {
    /// True when no finding is tampering or damage ([`S3FindingKind::is_tamper`]).
    pub intact: bool,
    /// The bucket.
    pub bucket: String,
    /// The prefix.
    pub prefix: String,
    /// One summary per writer, by id.
    pub writers: Vec<S3WriterSummary>,
    /// Every finding, writer by writer.
    pub findings: Vec<S3Finding>,
    /// `trusted key` when a public key was given, else `key named in the first digest (integrity only)`.
    pub signature_trust: &'static str,
}

/// The objects of one writer, by number.
#[derive(Default)]
struct Listing {
    digests: BTreeMap<u64, String>,
    segments: BTreeMap<u64, String>,
}

/// Verifies every writer's trail under `s3://bucket/prefix`.
pub async fn verify_s3(
    client: &Client,
    bucket: &str,
    prefix: &str,
    options: &S3VerifyOptions,
) -> Result<S3VerifyReport> {
    let prefix = normalize_prefix(prefix);
    let span = tracing::info_span!("s3_audit_verify", bucket = %bucket, prefix = %prefix);
    let _entered = span.enter();
    let mut writers: BTreeMap<String, Listing> = BTreeMap::new();
    let mut findings = Vec::new();
    let mut pages = client
        .list_objects_v2()
        .bucket(bucket)
        .prefix(&prefix)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| remote("list", bucket, &prefix, &e))?;
        for object in page.contents() {
            let Some(key) = object.key() else { continue };
            let rest = key.strip_prefix(prefix.as_str()).unwrap_or(key);
            let Some((writer, name)) = rest.split_once('/') else {
                continue;
            };
            let listing = writers.entry(writer.to_owned()).or_default();
            if let Some(n) = number_in(name, "segment-", ".jsonl") {
                listing.segments.insert(n, key.to_owned());
            } else if let Some(n) = number_in(name, "digest-", ".json") {
                listing.digests.insert(n, key.to_owned());
            }
        }
    }
    let mut summaries = Vec::new();
    for (writer, listing) in &writers {
        let checker = WriterCheck {
            client,
            bucket,
            writer,
            options,
            findings: &mut findings,
        };
        summaries.push(checker.run(listing).await?);
    }
    let intact = findings.iter().all(|f| !f.kind.is_tamper());
    Ok(S3VerifyReport {
        intact,
        bucket: bucket.to_owned(),
        prefix,
        writers: summaries,
        findings,
        signature_trust: if options.trusted_public_key.is_some() {
            "trusted key"
        } else {
            "key named in the first digest (integrity only)"
        },
    })
}

/// `segment-0000000012.jsonl` → 12.
fn number_in(name: &str, start: &str, end: &str) -> Option<u64> {
    let digits = name.strip_prefix(start)?.strip_suffix(end)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Reads an object; `None` when it does not exist (deleted, or behind a delete marker).
async fn get(client: &Client, bucket: &str, key: &str) -> Result<Option<Vec<u8>>> {
    let span = tracing::debug_span!("s3_get", bucket = %bucket, key = %key);
    let _entered = span.enter();
    match client.get_object().bucket(bucket).key(key).send().await {
        Ok(output) => {
            let bytes = output
                .body
                .collect()
                .await
                .map_err(|e| remote("get", bucket, key, &e))?;
            Ok(Some(bytes.into_bytes().to_vec()))
        }
        Err(err) => {
            let not_found = err.as_service_error().is_some_and(|e| e.is_no_such_key())
                || err.raw_response().map(|r| r.status().as_u16()) == Some(404);
            if not_found {
                Ok(None)
            } else {
                Err(remote("get", bucket, key, &err))
            }
        }
    }
}

struct WriterCheck<'a> {
    client: &'a Client,
    bucket: &'a str,
    writer: &'a str,
    options: &'a S3VerifyOptions,
    findings: &'a mut Vec<S3Finding>,
}

impl WriterCheck<'_> {
    fn find(&mut self, kind: S3FindingKind, key: &str, detail: String) {
        self.findings.push(S3Finding {
            writer: self.writer.to_owned(),
            kind,
            key: key.to_owned(),
            detail,
        });
    }

    async fn run(mut self, listing: &Listing) -> Result<S3WriterSummary> {
        let mut summary = S3WriterSummary {
            writer: self.writer.to_owned(),
            digests: 0,
            segments_checked: 0,
            records_checked: 0,
            head_seq: 0,
            last_digest: None,
            closed: false,
        };
        // Pass 1: every digest, its signature and its link to the one before.
        let last = listing.digests.keys().next_back().copied().unwrap_or(0);
        let mut digests = Vec::new();
        let mut previous_sha: Option<String> = None;
        let mut pinned = self.options.trusted_public_key;
        for n in 1..=last {
            let Some(key) = listing.digests.get(&n) else {
                self.find(
                    S3FindingKind::DigestGap,
                    &super::digest_key("", self.writer, n),
                    format!("digest {n} is missing between digests 1 and {last}"),
                );
                previous_sha = None;
                continue;
            };
            let Some(bytes) = get(self.client, self.bucket, key).await? else {
                self.find(
                    S3FindingKind::DigestGap,
                    key,
                    format!("digest {n} is listed but cannot be read"),
                );
                previous_sha = None;
                continue;
            };
            summary.digests += 1;
            let sha = sha256_hex(&bytes);
            let digest: S3Digest = match serde_json::from_slice(&bytes) {
                Ok(d) => d,
                Err(err) => {
                    self.find(
                        S3FindingKind::BadDigest,
                        key,
                        format!("not a digest: {err}"),
                    );
                    previous_sha = None;
                    continue;
                }
            };
            if digest.writer != self.writer || digest.number != n {
                self.find(
                    S3FindingKind::BadDigest,
                    key,
                    format!(
                        "names writer {} digest {}, not writer {} digest {n}",
                        digest.writer, digest.number, self.writer
                    ),
                );
            }
            if pinned.is_none() {
                pinned =
                    decode32(&digest.public_key).and_then(|b| VerifyingKey::from_bytes(&b).ok());
            }
            if pinned.is_none() || !digest.verify_signature(pinned.as_ref()) {
                self.find(
                    S3FindingKind::BadSignature,
                    key,
                    format!("the signature of digest {n} does not verify"),
                );
            }
            match (n, &digest.previous, &previous_sha) {
                (1, None, _) => {}
                (1, Some(_), _) => self.find(
                    S3FindingKind::DigestChainBroken,
                    key,
                    "the first digest names a previous digest".into(),
                ),
                (_, Some(named), Some(actual)) if named == actual => {}
                // The previous digest is missing or unreadable: already reported.
                (_, _, None) => {}
                (_, named, Some(actual)) => self.find(
                    S3FindingKind::DigestChainBroken,
                    key,
                    format!(
                        "names previous digest sha256 {} but digest {} has sha256 {actual}",
                        named.as_deref().unwrap_or("none"),
                        n - 1
                    ),
                ),
            }
            previous_sha = Some(sha);
            digests.push((key.clone(), digest));
        }
        // Pass 2: the segments each digest names, in order.
        let expected: HashMap<String, String> = digests
            .iter()
            .flat_map(|(_, d)| d.segments.iter().map(|s| (s.sha256.clone(), s.key.clone())))
            .collect();
        let mut next_segment = 1;
        let mut next_seq = 1;
        // The hash the next record must link to; `None` after a segment that could not be read.
        let mut head = Some(GENESIS);
        let mut listed = std::collections::BTreeSet::new();
        let hasher = Hasher::new(self.options.key.as_ref());
        for (digest_key, digest) in &digests {
            let in_range = self.options.since.is_none_or(|since| digest.time >= since);
            for entry in &digest.segments {
                let number = entry
                    .key
                    .rsplit('/')
                    .next()
                    .and_then(|name| number_in(name, "segment-", ".jsonl"));
                if let Some(number) = number {
                    listed.insert(number);
                }
                if number != Some(next_segment) || entry.first_seq != next_seq {
                    self.find(
                        S3FindingKind::Reordered,
                        digest_key,
                        format!(
                            "lists {} (records {}..={}) where segment {next_segment} starting at record {next_seq} was expected",
                            entry.key, entry.first_seq, entry.last_seq
                        ),
                    );
                }
                next_segment = number.unwrap_or(next_segment) + 1;
                next_seq = entry.last_seq + 1;
                if !in_range {
                    continue;
                }
                let Some(bytes) = get(self.client, self.bucket, &entry.key).await? else {
                    head = None;
                    self.find(
                        S3FindingKind::Missing,
                        &entry.key,
                        format!(
                            "records {}..={} signed in {digest_key} are gone",
                            entry.first_seq, entry.last_seq
                        ),
                    );
                    continue;
                };
                summary.segments_checked += 1;
                let sha = sha256_hex(&bytes);
                if sha != entry.sha256 {
                    head = None;
                    match expected.get(&sha) {
                        Some(other) => self.find(
                            S3FindingKind::Reordered,
                            &entry.key,
                            format!("holds the bytes signed for {other}"),
                        ),
                        None => self.find(
                            S3FindingKind::Altered,
                            &entry.key,
                            format!("sha256 is {sha}, but {digest_key} signed {}", entry.sha256),
                        ),
                    }
                    continue;
                }
                let (records, problem) = check_records(&bytes, &hasher, entry.first_seq, &mut head);
                summary.records_checked += records;
                if let Some(problem) = problem {
                    self.find(S3FindingKind::ChainBroken, &entry.key, problem);
                }
            }
            // The next digest's records chain from this one's signed head,
            // also when `since` skipped this one's segments.
            if let Some(signed) = decode32(&digest.head) {
                let ended = head.filter(|h| *h != signed);
                if let Some(ended) = ended.filter(|_| in_range && !digest.segments.is_empty()) {
                    self.find(
                        S3FindingKind::ChainBroken,
                        digest_key,
                        format!(
                            "signs head {} but its segments end at {}",
                            digest.head,
                            to_hex(&ended)
                        ),
                    );
                }
                head = Some(signed);
            }
            summary.head_seq = digest.head_seq;
            summary.last_digest = Some(digest.time);
            summary.closed = digest.closed;
        }
        let last_listed = listed.last().copied().unwrap_or(0);
        for (number, key) in &listing.segments {
            if listed.contains(number) {
                continue;
            }
            if *number > last_listed {
                self.find(
                    S3FindingKind::Undigested,
                    key,
                    "written after the last digest: not yet signed".into(),
                );
            } else {
                self.find(
                    S3FindingKind::Unlisted,
                    key,
                    format!("no digest names segment {number}, though later ones are signed"),
                );
            }
        }
        if !summary.closed {
            let now = self.options.now.unwrap_or_else(Utc::now);
            let stale = chrono::Duration::from_std(self.options.stale_after)
                .unwrap_or(chrono::Duration::MAX);
            match summary.last_digest {
                Some(time) if now - time > stale => self.find(
                    S3FindingKind::Stopped,
                    &super::digest_key("", self.writer, last),
                    format!("the last digest was signed at {time} and is not final: the writer stopped without closing"),
                ),
                None if !listing.segments.is_empty() => self.find(
                    S3FindingKind::Stopped,
                    self.writer,
                    "segments but no digest at all".into(),
                ),
                _ => {}
            }
        }
        Ok(summary)
    }
}

/// Checks a segment's records: consecutive from `first_seq`, each linked to
/// `head` (advanced; `None` links to anything), each hash right where it can be checked (unkeyed, or
/// keyed with the key given). Returns the records read and the first problem.
fn check_records(
    bytes: &[u8],
    hasher: &Hasher,
    first_seq: u64,
    head: &mut Option<[u8; 32]>,
) -> (u64, Option<String>) {
    let mut seq = first_seq;
    let mut records = 0;
    for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        let raw = match parse_line(line) {
            Ok(raw) => raw,
            Err(why) => return (records, Some(format!("line {}: {why}", i + 1))),
        };
        if raw.seq != seq {
            return (
                records,
                Some(format!(
                    "line {}: record {} where {seq} was expected",
                    i + 1,
                    raw.seq
                )),
            );
        }
        if head.is_some_and(|h| h != raw.prev) {
            return (
                records,
                Some(format!(
                    "record {seq} does not link to the record before it"
                )),
            );
        }
        if raw.kid == hasher.kid() && !hasher.check(&raw) {
            return (
                records,
                Some(format!("record {seq}'s hash does not match its content")),
            );
        }
        *head = Some(raw.hash);
        seq += 1;
        records += 1;
    }
    (records, None)
}
