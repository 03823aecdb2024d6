//! The digest object: a writer's signed statement of which segments it wrote,
//! with their SHA-256 hashes, and of the digest before it.

use chrono::{DateTime, Utc};
use ed25519_dalek::{Signature, Verifier as _, VerifyingKey};
use sha2::{Digest as _, Sha256};

use crate::key::CheckpointSigner;

/// The domain separator that starts every signed digest message.
const DOMAIN: &[u8] = b"lift-audit s3 digest v1\n";

/// One segment as a digest names it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SegmentEntry {
    /// The segment's object key.
    pub key: String,
    /// SHA-256 of the segment object's bytes, as 64 lower-case hex digits.
    pub sha256: String,
    /// The sequence number of its first record.
    pub first_seq: u64,
    /// The sequence number of its last record.
    pub last_seq: u64,
}

/// A signed digest object, `<prefix><writer>/digest-<number>.json`.
///
/// Invariants: digest numbers of a writer run 1, 2, ... without gaps; each
/// names the SHA-256 of the previous digest object's bytes (none for the
/// first); its segments follow the previous digest's last one without gaps;
/// the signature covers every other member (see [`S3Digest::signed_message`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct S3Digest {
    /// The format version (1).
    pub version: u32,
    /// The writer whose chain this is.
    pub writer: String,
    /// This digest's number: 1, 2, ...
    pub number: u64,
    /// When it was signed.
    pub time: DateTime<Utc>,
    /// SHA-256 of the previous digest object's bytes; `None` for the first.
    pub previous: Option<String>,
    /// The segments written since the previous digest, in order.
    pub segments: Vec<SegmentEntry>,
    /// The chain's last record sequence number (0 when empty).
    pub head_seq: u64,
    /// The chain's last record hash, as hex ([`crate::GENESIS`] when empty).
    pub head: String,
    /// True on the last digest of a writer that closed (or was stopped by SIGTERM) cleanly.
    #[serde(rename = "final")]
    pub closed: bool,
    /// The audit key id that keys the chain, when keyed.
    pub key_id: Option<String>,
    /// The Ed25519 public key that signed this digest, as hex.
    pub public_key: String,
    /// The Ed25519 signature, as hex.
    pub signature: String,
}

/// The members a signature covers, in a fixed order.
#[derive(serde::Serialize)]
struct Signed<'a> {
    version: u32,
    writer: &'a str,
    number: u64,
    time: &'a DateTime<Utc>,
    previous: Option<&'a str>,
    segments: &'a [SegmentEntry],
    head_seq: u64,
    head: &'a str,
    #[serde(rename = "final")]
    closed: bool,
    key_id: Option<&'a str>,
    public_key: &'a str,
}

impl S3Digest {
    /// The bytes the signature covers: a domain separator, then the JSON of
    /// every member but `signature`, in declaration order.
    pub fn signed_message(&self) -> Vec<u8> {
        let signed = Signed {
            version: self.version,
            writer: &self.writer,
            number: self.number,
            time: &self.time,
            previous: self.previous.as_deref(),
            segments: &self.segments,
            head_seq: self.head_seq,
            head: &self.head,
            closed: self.closed,
            key_id: self.key_id.as_deref(),
            public_key: &self.public_key,
        };
        let mut message = DOMAIN.to_vec();
        // Serializing plain strings, numbers and a time into a Vec cannot fail.
        if serde_json::to_writer(&mut message, &signed).is_err() {
            message.truncate(DOMAIN.len());
        }
        message
    }

    /// Sets `public_key` and `signature` with `signer`.
    pub(crate) fn sign(&mut self, signer: &CheckpointSigner) {
        self.public_key = signer.public_key_hex();
        self.signature = hex::encode(signer.sign(&self.signed_message()));
    }

    /// Whether the signature verifies under `key`, or under the key the digest names when `None`.
    pub fn verify_signature(&self, key: Option<&VerifyingKey>) -> bool {
        let named = decode32(&self.public_key).and_then(|b| VerifyingKey::from_bytes(&b).ok());
        let Some(key) = key.copied().or(named) else {
            return false;
        };
        let mut bytes = [0u8; 64];
        if hex::decode_to_slice(&self.signature, &mut bytes).is_err() {
            return false;
        }
        key.verify(&self.signed_message(), &Signature::from_bytes(&bytes))
            .is_ok()
    }

    /// The object's bytes: pretty JSON and a newline.
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        let mut out = serde_json::to_vec_pretty(self).unwrap_or_default();
        out.push(b'\n');
        out
    }
}

/// SHA-256 of `bytes` as 64 lower-case hex digits.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

pub(crate) fn decode32(text: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(text, &mut out).ok().map(|()| out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AuditKey;

    fn digest() -> S3Digest {
        S3Digest {
            version: 1,
            writer: "w1".into(),
            number: 2,
            time: DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default(),
            previous: Some("ab".repeat(32)),
            segments: vec![SegmentEntry {
                key: "p/w1/segment-0000000003.jsonl".into(),
                sha256: "cd".repeat(32),
                first_seq: 5,
                last_seq: 9,
            }],
            head_seq: 9,
            head: "ef".repeat(32),
            closed: false,
            key_id: None,
            public_key: String::new(),
            signature: String::new(),
        }
    }

    #[test]
    fn a_signed_digest_verifies_after_a_round_trip_and_any_change_breaks_it() {
        let signer = AuditKey::from_bytes(&[3u8; 32]).unwrap().signer();
        let mut d = digest();
        d.sign(&signer);
        let back: S3Digest = serde_json::from_slice(&d.to_bytes()).unwrap();
        assert!(back.verify_signature(Some(&signer.verifying_key())));
        assert!(back.verify_signature(None));
        let mut changed = back.clone();
        changed.segments[0].sha256 = "00".repeat(32);
        assert!(!changed.verify_signature(Some(&signer.verifying_key())));
        let mut changed = back.clone();
        changed.closed = true;
        assert!(!changed.verify_signature(None));
        let other = AuditKey::from_bytes(&[4u8; 32]).unwrap().signer();
        assert!(!back.verify_signature(Some(&other.verifying_key())));
    }
}
