//! The record line format and its canonical, domain-separated hash.
//!
//! A record is one line:
//!
//! ```text
//! {"seq":7,"time":"2026-11-28T02:00:00.123456Z","kid":"0123456789abcdef","prev":"<64 hex>","event":{...},"hash":"<64 hex>"}\n
//! ```
//!
//! `kid` is present only in keyed chains. The hash covers a length-prefixed
//! binary encoding of everything but `hash` (see `docs/audit-format.md`):
//!
//! ```text
//! "lift-audit/v1 record" 0x00
//! u64be(seq)
//! u64be(len(time)) time
//! u64be(len(kid))  kid        (empty when unkeyed)
//! prev                         (32 raw bytes; all zero for the first record)
//! u64be(len(event)) event      (the exact bytes of the `event` member)
//! ```
//!
//! The hash is SHA-256 of that message, or HMAC-SHA256 under the chain key.

use chrono::{DateTime, SecondsFormat, Utc};
use hmac::{Hmac, Mac};
use lift_core::AuditEvent;
use sha2::{Digest, Sha256};

use crate::key::AuditKey;

/// The `prev` of the first record of a chain: 32 zero bytes.
pub const GENESIS: [u8; 32] = [0u8; 32];

/// The longest record line lift writes or reads, in bytes without its newline.
///
/// A longer line cannot be a record: the sink refuses events that would make
/// one, recovery and verification report it without reading it into memory.
pub const MAX_RECORD_LEN: usize = 1 << 20;

/// The longest serialized event the sink accepts: what is left of a record
/// line for the event once the fixed members are in.
pub const MAX_EVENT_LEN: usize = MAX_RECORD_LEN - 512;

/// The domain-separation prefix of the public content digest.
pub(crate) const DIGEST_DOMAIN: &[u8] = b"lift-audit/v1 digest\0";

/// The public content digest after one more record line (without its newline):
/// `D_i = SHA-256("lift-audit/v1 digest" 0x00 || D_{i-1} || line_i)`, with
/// `D_0` all zeros.
///
/// Unlike a record's hash it needs no key, so a checkpoint that signs it lets
/// an auditor holding only the checkpoint's public key check every byte of
/// the records it covers.
pub(crate) fn next_digest(prev: &[u8; 32], line: &[u8]) -> [u8; 32] {
    let mut sha = Sha256::new();
    sha.update(DIGEST_DOMAIN);
    sha.update(prev);
    sha.update(line);
    sha.finalize().into()
}

/// The domain-separation prefix of a record's hash input.
pub(crate) const RECORD_DOMAIN: &[u8] = b"lift-audit/v1 record\0";

const SUFFIX_LEN: usize = HASH_PREFIX.len() + 64 + 2;
const HASH_PREFIX: &[u8] = b",\"hash\":\"";

/// One stored record, fully parsed (for queries and tailing).
///
/// Its JSON form is the record line itself.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct Record {
    /// The position in the chain, starting at 1, without gaps across rotated files.
    pub seq: u64,
    /// When the sink wrote the record, UTC with microseconds.
    pub time: DateTime<Utc>,
    /// The audit key id, in keyed chains only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    /// The previous record's hash (64 hex digits; zeros for the first record).
    pub prev: String,
    /// The audited event.
    pub event: AuditEvent,
    /// SHA-256 or HMAC-SHA256 over the canonical encoding (64 hex digits).
    pub hash: String,
}

/// A record line split into its parts without parsing the event.
///
/// Invariant: a `RawRecord` came from a line in exactly the canonical layout:
/// members in order, no whitespace, canonical decimal `seq`, lower-case hex.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RawRecord<'a> {
    pub(crate) seq: u64,
    pub(crate) time: &'a str,
    pub(crate) kid: Option<&'a str>,
    pub(crate) prev: [u8; 32],
    pub(crate) event: &'a [u8],
    pub(crate) hash: [u8; 32],
}

/// Computes record hashes: plain SHA-256, or HMAC-SHA256 with a key.
#[derive(Clone)]
pub(crate) struct Hasher {
    mac: Option<Hmac<Sha256>>,
    kid: Option<String>,
}

impl std::fmt::Debug for Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hasher")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl Hasher {
    pub(crate) fn new(key: Option<&AuditKey>) -> Self {
        Hasher {
            mac: key.map(AuditKey::chain_mac),
            kid: key.map(|k| k.id().to_owned()),
        }
    }

    /// The key id records of this chain carry, if keyed.
    pub(crate) fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    pub(crate) fn digest(
        &self,
        seq: u64,
        time: &str,
        kid: Option<&str>,
        prev: &[u8; 32],
        event: &[u8],
    ) -> [u8; 32] {
        let kid = kid.unwrap_or("").as_bytes();
        // Everything before the event goes into one stack buffer, so that the
        // hash sees two updates per record instead of nine.
        let mut head = [0u8; 256];
        let mut len = 0;
        for part in [
            RECORD_DOMAIN,
            &seq.to_be_bytes(),
            &(time.len() as u64).to_be_bytes(),
            time.as_bytes(),
            &(kid.len() as u64).to_be_bytes(),
            kid,
            prev,
            &(event.len() as u64).to_be_bytes(),
        ] {
            match head.get_mut(len..len + part.len()) {
                Some(slot) => slot.copy_from_slice(part),
                // A time or key id too long for the buffer cannot come from a
                // valid record; hash it anyway, so the record simply fails.
                None => return self.digest_parts(&[&head[..len], part], event),
            }
            len += part.len();
        }
        self.digest_parts(&[&head[..len]], event)
    }

    fn digest_parts(&self, parts: &[&[u8]], event: &[u8]) -> [u8; 32] {
        match &self.mac {
            Some(mac) => {
                let mut mac = mac.clone();
                for part in parts {
                    mac.update(part);
                }
                mac.update(event);
                mac.finalize().into_bytes().into()
            }
            None => {
                let mut sha = Sha256::new();
                for part in parts {
                    sha.update(part);
                }
                sha.update(event);
                sha.finalize().into()
            }
        }
    }

    /// Whether `raw`'s stored hash matches its content under this hasher.
    pub(crate) fn check(&self, raw: &RawRecord<'_>) -> bool {
        self.digest(raw.seq, raw.time, raw.kid, &raw.prev, raw.event) == raw.hash
    }
}

/// Formats a record time: RFC 3339, UTC, microseconds, `Z`.
pub(crate) fn format_time(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Appends one complete record line (with its newline) to `out` and returns its hash.
pub(crate) fn encode_line(
    out: &mut Vec<u8>,
    hasher: &Hasher,
    seq: u64,
    time: &str,
    prev: &[u8; 32],
    event: &[u8],
) -> [u8; 32] {
    let kid = hasher.kid();
    let hash = hasher.digest(seq, time, kid, prev, event);
    // The fixed members and two hashes take under 300 bytes: reserve once.
    out.reserve(event.len() + 320);
    out.extend_from_slice(b"{\"seq\":");
    push_decimal(out, seq);
    out.extend_from_slice(b",\"time\":\"");
    out.extend_from_slice(time.as_bytes());
    if let Some(kid) = kid {
        out.extend_from_slice(b"\",\"kid\":\"");
        out.extend_from_slice(kid.as_bytes());
    }
    out.extend_from_slice(b"\",\"prev\":\"");
    push_hex(out, prev);
    out.extend_from_slice(b"\",\"event\":");
    out.extend_from_slice(event);
    out.extend_from_slice(HASH_PREFIX);
    push_hex(out, &hash);
    out.extend_from_slice(b"\"}\n");
    hash
}

fn push_decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

fn push_hex(out: &mut Vec<u8>, bytes: &[u8; 32]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    // Into a stack buffer first: one append instead of 64 capacity checks.
    let mut hex = [0u8; 64];
    for (pair, b) in hex.chunks_exact_mut(2).zip(bytes) {
        pair[0] = DIGITS[usize::from(b >> 4)];
        pair[1] = DIGITS[usize::from(b & 15)];
    }
    out.extend_from_slice(&hex);
}

/// Hex digit values; 0xff marks everything but `0-9a-f`.
///
/// Lower case only: "A" and "a" would decode alike and let an edit go unnoticed.
const HEX_VALUES: [u8; 256] = {
    let mut table = [0xffu8; 256];
    let mut i = 0;
    while i < 10 {
        table[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        table[b'a' as usize + i] = 10 + i as u8;
        i += 1;
    }
    table
};

fn hex_val(c: u8) -> Option<u8> {
    let v = HEX_VALUES[usize::from(c)];
    (v != 0xff).then_some(v)
}

fn parse_hex32(s: &[u8]) -> Option<[u8; 32]> {
    let s: &[u8; 64] = s.try_into().ok()?;
    let mut out = [0u8; 32];
    let mut bad = 0u8;
    for (i, o) in out.iter_mut().enumerate() {
        let hi = HEX_VALUES[usize::from(s[2 * i])];
        let lo = HEX_VALUES[usize::from(s[2 * i + 1])];
        // Accumulate instead of branching per digit: any 0xff leaves bit 7 set.
        bad |= hi | lo;
        *o = (hi << 4) | (lo & 15);
    }
    (bad & 0x80 == 0).then_some(out)
}

/// 64 lower-case hex digits of `bytes`.
pub(crate) fn to_hex(bytes: &[u8; 32]) -> String {
    let mut out = Vec::with_capacity(64);
    push_hex(&mut out, bytes);
    String::from_utf8(out).unwrap_or_default()
}

fn strip<'a>(s: &'a [u8], prefix: &[u8]) -> Option<&'a [u8]> {
    s.strip_prefix(prefix)
}

/// Splits a line (without its newline) into a [`RawRecord`], or says why it is not one.
pub(crate) fn parse_line(line: &[u8]) -> Result<RawRecord<'_>, &'static str> {
    if line.len() > MAX_RECORD_LEN {
        return Err("the line is longer than a record can be");
    }
    let rest = strip(line, b"{\"seq\":").ok_or("does not start with {\"seq\":")?;
    let digits = rest.iter().take_while(|c| c.is_ascii_digit()).count();
    if digits == 0 || digits > 20 || (digits > 1 && rest[0] == b'0') {
        return Err("seq is not a canonical decimal number");
    }
    let seq = std::str::from_utf8(&rest[..digits])
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .ok_or("seq is out of range")?;
    let rest = strip(&rest[digits..], b",\"time\":\"").ok_or("time member missing")?;
    let time_len = rest
        .iter()
        .position(|&c| c == b'"')
        .ok_or("time is not terminated")?;
    let time = std::str::from_utf8(&rest[..time_len]).map_err(|_| "time is not UTF-8")?;
    let mut rest = &rest[time_len..];
    let kid = if let Some(after) = strip(rest, b"\",\"kid\":\"") {
        let len = after
            .iter()
            .position(|&c| c == b'"')
            .ok_or("kid is not terminated")?;
        let kid = &after[..len];
        if kid.len() != 16 || kid.iter().any(|&c| hex_val(c).is_none()) {
            return Err("kid is not 16 lower-case hex digits");
        }
        rest = &after[len..];
        // Checked above to be ASCII hex, so this conversion cannot fail.
        Some(std::str::from_utf8(kid).map_err(|_| "kid is not UTF-8")?)
    } else {
        None
    };
    let rest = strip(rest, b"\",\"prev\":\"").ok_or("prev member missing")?;
    if rest.len() < 64 {
        return Err("prev is cut short");
    }
    let prev = parse_hex32(&rest[..64]).ok_or("prev is not 64 lower-case hex digits")?;
    let rest = strip(&rest[64..], b"\",\"event\":").ok_or("event member missing")?;
    if rest.len() < SUFFIX_LEN + 2 {
        return Err("record is cut short");
    }
    let (event, suffix) = rest.split_at(rest.len() - SUFFIX_LEN);
    let hex = strip(suffix, HASH_PREFIX).ok_or("hash member missing at the end")?;
    if !hex.ends_with(b"\"}") {
        return Err("record does not end with \"}");
    }
    let hash = parse_hex32(&hex[..64]).ok_or("hash is not 64 lower-case hex digits")?;
    if event.first() != Some(&b'{') || event.last() != Some(&b'}') {
        return Err("event is not a JSON object");
    }
    Ok(RawRecord {
        seq,
        time,
        kid,
        prev,
        event,
        hash,
    })
}

/// The start every record line has.
const RECORD_START: &[u8] = b"{\"seq\":";

/// Whether a line (without its newline) is what a crash leaves when
/// unsynced appends reach the disk out of order: zeros where an earlier
/// write was lost (after the start of a record that write began, if any of
/// it persisted), then a whole later record. No record line holds a raw NUL
/// byte, so an edit that writes one is not taken for this: what follows its
/// last NUL must parse as a complete record, and what precedes its first
/// NUL must be the start of one.
pub(crate) fn is_hole_line(line: &[u8]) -> bool {
    let (Some(first), Some(last)) = (memchr::memchr(0, line), memchr::memrchr(0, line)) else {
        return false;
    };
    hole_bounds_ok(&line[..first.min(RECORD_START.len())]) && parse_line(&line[last + 1..]).is_ok()
}

/// Whether the bytes before a hole's first NUL (at most the first
/// [`RECORD_START`]`.len()` of them) can begin a record line.
pub(crate) fn hole_bounds_ok(head: &[u8]) -> bool {
    head.is_empty() || RECORD_START.starts_with(head) || head.starts_with(RECORD_START)
}

/// Whether `line` holds a whole record followed by extra bytes (an edit, not a torn write).
pub(crate) fn has_complete_record_prefix(line: &[u8]) -> bool {
    // A torn write leaves a prefix of a line; such a prefix can contain the
    // closing `"}` of the hash member only at its very end.
    let mut start = 0;
    while let Some(pos) = find(&line[start..], HASH_PREFIX) {
        let at = start + pos + HASH_PREFIX.len();
        if line.len() >= at + 66 && &line[at + 64..at + 66] == b"\"}" && line.len() > at + 66 {
            return true;
        }
        start = at;
    }
    false
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

impl Record {
    /// Parses a record line (with or without its newline). This does not check the hash.
    pub fn parse(line: &[u8]) -> serde_json::Result<Record> {
        serde_json::from_slice(line.strip_suffix(b"\n").unwrap_or(line))
    }

    /// The record's hash as bytes, if well-formed.
    pub fn hash_bytes(&self) -> Option<[u8; 32]> {
        parse_hex32(self.hash.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lift_core::Resource;

    fn line(hasher: &Hasher, seq: u64) -> (Vec<u8>, [u8; 32]) {
        let event =
            serde_json::to_vec(&AuditEvent::new("t", "a", Resource::new("r", "x"))).unwrap();
        let mut out = Vec::new();
        let hash = encode_line(
            &mut out,
            hasher,
            seq,
            "2026-01-01T00:00:00.000000Z",
            &GENESIS,
            &event,
        );
        (out, hash)
    }

    #[test]
    fn lines_round_trip_and_verify() {
        for key in [None, Some(AuditKey::from_bytes(&[1u8; 40]).unwrap())] {
            let hasher = Hasher::new(key.as_ref());
            let (bytes, hash) = line(&hasher, 42);
            assert!(bytes.ends_with(b"\"}\n"));
            let raw = parse_line(&bytes[..bytes.len() - 1]).unwrap();
            assert_eq!(raw.seq, 42);
            assert_eq!(raw.hash, hash);
            assert_eq!(raw.kid, hasher.kid());
            assert!(hasher.check(&raw));
            let record = Record::parse(&bytes).unwrap();
            assert_eq!(record.seq, 42);
            assert_eq!(record.hash_bytes(), Some(hash));
            assert_eq!(record.kid.as_deref(), hasher.kid());
        }
    }

    #[test]
    fn keyed_and_plain_hashes_differ_and_domain_is_fixed() {
        let plain = Hasher::new(None);
        let keyed = Hasher::new(Some(&AuditKey::from_bytes(&[1u8; 32]).unwrap()));
        let a = plain.digest(1, "t", None, &GENESIS, b"{}");
        let b = keyed.digest(1, "t", keyed.kid(), &GENESIS, b"{}");
        assert_ne!(a, b);
        // The documented encoding, spelled out by hand.
        let mut msg = Vec::new();
        msg.extend_from_slice(b"lift-audit/v1 record\0");
        msg.extend_from_slice(&1u64.to_be_bytes());
        msg.extend_from_slice(&1u64.to_be_bytes());
        msg.extend_from_slice(b"t");
        msg.extend_from_slice(&0u64.to_be_bytes());
        msg.extend_from_slice(&[0u8; 32]);
        msg.extend_from_slice(&2u64.to_be_bytes());
        msg.extend_from_slice(b"{}");
        let expected: [u8; 32] = Sha256::digest(&msg).into();
        assert_eq!(a, expected);
    }

    #[test]
    fn strict_parsing_refuses_non_canonical_lines() {
        let hasher = Hasher::new(None);
        let (bytes, _) = line(&hasher, 5);
        let text = String::from_utf8(bytes[..bytes.len() - 1].to_vec()).unwrap();
        assert!(parse_line(text.replacen("\"seq\":5", "\"seq\":05", 1).as_bytes()).is_err());
        assert!(parse_line(text.to_uppercase().as_bytes()).is_err());
        assert!(parse_line(text.replacen("{\"seq\"", "{ \"seq\"", 1).as_bytes()).is_err());
        assert!(parse_line(&text.as_bytes()[..text.len() - 3]).is_err());
        assert!(has_complete_record_prefix(format!("{text}x").as_bytes()));
        assert!(!has_complete_record_prefix(
            &text.as_bytes()[..text.len() - 1]
        ));
    }
}
