//! An [`AuditEvent`] as the `event` member of a record, and a fast JSON
//! writer for it, byte-for-byte equal to serde_json's.
//!
//! The sink serializes every event it stores, and serde_json spends most of
//! that time checking each byte of each string for characters to escape.
//! This writer checks eight bytes at a time and writes the fixed members
//! directly; nested values with no fixed shape (the outcome, the details)
//! still go through serde_json. A proptest holds the output equal to
//! `serde_json::to_vec` for arbitrary events, so a field added to
//! [`AuditEvent`] without a line here fails that test.

use lift_core::{ActorKind, AuditEvent};

use crate::error::{Error, Result};
use crate::record::MAX_EVENT_LEN;

/// Serializes an event as its record's `event` member, into `out`.
///
/// Invariant: the only way bytes reach the staging buffer, so no record ever
/// holds an event with fields marked secret.
pub(crate) fn encode_event(event: &AuditEvent, out: &mut Vec<u8>) -> Result<()> {
    event
        .check_no_secrets()
        .map_err(|e| Error::SecretRefused(e.message().to_owned()))?;
    let start = out.len();
    write_event(event, out).map_err(|e| Error::Serialize {
        action: event.action.clone(),
        message: e.to_string(),
    })?;
    let len = out.len() - start;
    if len > MAX_EVENT_LEN {
        out.truncate(start);
        return Err(Error::InvalidInput(format!(
            "audit event {}/{} is {len} bytes serialized; the limit is {MAX_EVENT_LEN} bytes, so keep large payloads out of audit details",
            event.event_type, event.action
        )));
    }
    Ok(())
}

/// Appends `event`'s JSON to `out`: exactly the bytes `serde_json::to_writer` writes, faster.
pub(crate) fn write_event(event: &AuditEvent, out: &mut Vec<u8>) -> serde_json::Result<()> {
    // A hyphenated UUID is 36 characters.
    let mut uuid = [0u8; 36];
    out.extend_from_slice(b"{\"id\":\"");
    out.extend_from_slice(event.id.hyphenated().encode_lower(&mut uuid).as_bytes());
    out.extend_from_slice(b"\",\"time\":");
    serde::Serialize::serialize(&event.time, &mut serde_json::Serializer::new(&mut *out))?;
    out.extend_from_slice(b",\"event_type\":");
    write_str(out, &event.event_type);
    out.extend_from_slice(b",\"action\":");
    write_str(out, &event.action);
    out.extend_from_slice(b",\"actor\":{\"kind\":\"");
    out.extend_from_slice(match event.actor.kind {
        ActorKind::User => b"user".as_slice(),
        ActorKind::Service => b"service",
        ActorKind::System => b"system",
    });
    out.extend_from_slice(b"\",\"id\":");
    write_str(out, &event.actor.id);
    out.extend_from_slice(b"},\"origin\":{\"host\":");
    write_str(out, &event.origin.host);
    out.extend_from_slice(b",\"process\":");
    write_str(out, &event.origin.process);
    out.extend_from_slice(b",\"pid\":");
    serde_json::to_writer(&mut *out, &event.origin.pid)?;
    if let Some(environment) = &event.origin.environment {
        out.extend_from_slice(b",\"environment\":");
        write_str(out, environment);
    }
    out.extend_from_slice(b"},\"outcome\":");
    serde_json::to_writer(&mut *out, &event.outcome)?;
    out.extend_from_slice(b",\"resource\":{\"kind\":");
    write_str(out, &event.resource.kind);
    out.extend_from_slice(b",\"id\":");
    write_str(out, &event.resource.id);
    out.push(b'}');
    if let Some(id) = &event.correlation_id {
        out.extend_from_slice(b",\"correlation_id\":");
        write_str(out, id);
    }
    if !event.details.is_empty() {
        out.extend_from_slice(b",\"details\":");
        serde_json::to_writer(&mut *out, &event.details)?;
    }
    if !event.secret_fields.is_empty() {
        out.extend_from_slice(b",\"secret_fields\":");
        serde_json::to_writer(&mut *out, &event.secret_fields)?;
    }
    out.push(b'}');
    Ok(())
}

const LOW_BITS: u64 = 0x0101_0101_0101_0101;
const HIGH_BITS: u64 = 0x8080_8080_8080_8080;

/// Whether any of the eight bytes of `word` must be escaped in a JSON
/// string: a control character (below 0x20), `"` or `\`. Exact: no byte
/// is missed, and a false answer means none is there.
fn any_to_escape(word: u64) -> bool {
    let has_zero = |v: u64| v.wrapping_sub(LOW_BITS) & !v & HIGH_BITS;
    // Bytes below 0x20: subtracting 0x20 borrows into the high bit, which
    // `!word` keeps only for ASCII bytes (UTF-8 continuation bytes are >= 0x80).
    let control = word.wrapping_sub(LOW_BITS * 0x20) & !word & HIGH_BITS;
    let quote = has_zero(word ^ (LOW_BITS * u64::from(b'"')));
    let backslash = has_zero(word ^ (LOW_BITS * u64::from(b'\\')));
    control | quote | backslash != 0
}

/// Writes `s` as a JSON string, escaping as serde_json does.
fn write_str(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut clean = 0;
    let mut i = 0;
    while i < bytes.len() {
        if let Some(chunk) = bytes.get(i..i + 8) {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            if !any_to_escape(u64::from_le_bytes(word)) {
                i += 8;
                continue;
            }
        }
        let byte = bytes[i];
        if let Some(escape) = escape_of(byte) {
            out.extend_from_slice(&bytes[clean..i]);
            out.extend_from_slice(escape.as_bytes());
            if escape == "\\u00" {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.push(HEX[usize::from(byte >> 4)]);
                out.push(HEX[usize::from(byte & 15)]);
            }
            clean = i + 1;
        }
        i += 1;
    }
    out.extend_from_slice(&bytes[clean..]);
    out.push(b'"');
}

/// serde_json's escape for `byte`, or `None` when it is written as is.
/// `\u00` is followed by the byte in two lower-case hex digits.
fn escape_of(byte: u8) -> Option<&'static str> {
    Some(match byte {
        b'"' => "\\\"",
        b'\\' => "\\\\",
        0x08 => "\\b",
        0x09 => "\\t",
        0x0a => "\\n",
        0x0c => "\\f",
        0x0d => "\\r",
        0x00..=0x1f => "\\u00",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use lift_core::{Actor, ErrorKind, Outcome, Resource};
    use proptest::prelude::*;

    fn ours(event: &AuditEvent) -> Vec<u8> {
        let mut out = Vec::new();
        write_event(event, &mut out).unwrap();
        out
    }

    #[test]
    fn every_byte_escapes_as_serde_json_does() {
        for byte in 0u8..=0x7f {
            let s = format!("ab{}cdefghij{}", byte as char, byte as char);
            let mut out = Vec::new();
            write_str(&mut out, &s);
            assert_eq!(out, serde_json::to_vec(&s).unwrap(), "byte {byte:#x}");
        }
    }

    #[test]
    fn the_word_check_misses_nothing() {
        for byte in 0u8..=0xff {
            for position in 0..8 {
                let mut word = *b"abcdefgh";
                word[position] = byte;
                let expected = escape_of(byte).is_some();
                assert_eq!(
                    any_to_escape(u64::from_le_bytes(word)),
                    expected,
                    "byte {byte:#x}"
                );
            }
        }
    }

    #[test]
    fn a_full_event_matches() {
        let event = AuditEvent::new("secrets", "rotate", Resource::new("secret", "prod/db"))
            .actor(Actor::service("rotator"))
            .outcome(Outcome::Failure {
                detail: "testSecret failed: \"login refused\"\n".into(),
                kind: Some(ErrorKind::Unavailable),
            })
            .correlation_id("c-1")
            .detail("version_id", "v1")
            .detail("attempt", 3)
            .mark_secret("password");
        assert_eq!(ours(&event), serde_json::to_vec(&event).unwrap());
    }

    proptest! {
        #[test]
        fn arbitrary_events_match_serde_json(
            event_type in any::<String>(),
            action in ".*",
            actor in "\\PC*",
            id in any::<String>(),
            detail in any::<String>(),
            correlation in proptest::option::of(any::<String>()),
            environment in proptest::option::of(any::<String>()),
            failed in any::<bool>(),
        ) {
            let mut event = AuditEvent::new(event_type, action, Resource::new(id.clone(), id))
                .actor(Actor::user(actor))
                .detail(detail.clone(), detail.clone());
            event.correlation_id = correlation;
            event.origin.environment = environment;
            if failed {
                event = event.outcome(Outcome::Failure { detail, kind: None });
            }
            prop_assert_eq!(ours(&event), serde_json::to_vec(&event).unwrap());
        }
    }
}
