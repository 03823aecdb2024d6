//! Reading engine events from bytes that arrive in pieces.
//!
//! The CLI writes one event per line (NDJSON). Tools that pretty-print
//! events write concatenated, indented JSON values instead. The decoder takes
//! both framings, because it reads JSON values rather than lines. A value cut
//! off at the end of the input (the CLI was killed mid-write, or the tail
//! read caught a partial line) waits for more bytes; at the end it is
//! reported as truncated, never as a fatal error.

use serde::de::IgnoredAny;

use crate::events::EngineEvent;

/// Something in the input that was not an event.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeIssue {
    /// Bytes that are not valid JSON, skipped up to the next newline.
    Malformed {
        /// The byte offset in the whole input where the bad value starts.
        offset: u64,
        /// The parser's message.
        message: String,
    },
    /// A valid JSON value that is not an engine event (an array, a number, a bad field type).
    NotAnEvent {
        /// The byte offset in the whole input where the value starts.
        offset: u64,
        /// The parser's message.
        message: String,
    },
    /// The input ended inside a value: the last event was cut off.
    Truncated {
        /// The byte offset in the whole input where the cut value starts.
        offset: u64,
        /// How many bytes of it were read.
        bytes: usize,
    },
}

impl std::fmt::Display for DecodeIssue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeIssue::Malformed { offset, message } => {
                write!(f, "malformed JSON at byte {offset}: {message}")
            }
            DecodeIssue::NotAnEvent { offset, message } => {
                write!(
                    f,
                    "JSON value at byte {offset} is not an engine event: {message}"
                )
            }
            DecodeIssue::Truncated { offset, bytes } => {
                write!(
                    f,
                    "last event truncated at byte {offset} after {bytes} bytes"
                )
            }
        }
    }
}

/// An incremental decoder of engine events.
///
/// Feed it bytes as they arrive with [`EventDecoder::push`]; call
/// [`EventDecoder::finish`] once the input is complete.
///
/// ```
/// use lift_pulumi::EventDecoder;
///
/// let mut decoder = EventDecoder::new();
/// let mut events = Vec::new();
/// decoder.push(b"{\"sequence\":0,\"timestamp\":0,\"cancel", &mut |e| events.push(e));
/// assert!(events.is_empty(), "half an event waits for the rest");
/// decoder.push(b"Event\":{}}\n", &mut |e| events.push(e));
/// assert!(events[0].is_cancel());
/// assert!(decoder.finish().is_empty());
/// ```
#[derive(Debug, Default)]
pub struct EventDecoder {
    buf: Vec<u8>,
    /// Bytes of `buf` already consumed.
    pos: usize,
    /// Bytes dropped from the front of `buf` so far, to report absolute offsets.
    dropped: u64,
    /// Set while skipping a malformed line whose newline has not arrived yet.
    skipping: bool,
    issues: Vec<DecodeIssue>,
}

impl EventDecoder {
    /// An empty decoder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds bytes and hands every complete event to `sink`, in order.
    pub fn push(&mut self, bytes: &[u8], sink: &mut dyn FnMut(EngineEvent)) {
        if self.pos > 0 && self.pos == self.buf.len() {
            // Everything was consumed: reuse the buffer without copying.
            self.dropped += self.pos as u64;
            self.buf.clear();
            self.pos = 0;
        } else if self.pos > 64 * 1024 {
            self.dropped += self.pos as u64;
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(bytes);
        self.scan(sink, false);
    }

    /// Ends the input: reports a cut-off last value and returns every issue met.
    pub fn finish(mut self) -> Vec<DecodeIssue> {
        self.scan(&mut |_| {}, true);
        self.issues
    }

    /// Issues met so far.
    pub fn issues(&self) -> &[DecodeIssue] {
        &self.issues
    }

    fn scan(&mut self, sink: &mut dyn FnMut(EngineEvent), at_end: bool) {
        let mut scanner = Scanner {
            buf: &self.buf,
            pos: self.pos,
            dropped: self.dropped,
            skipping: self.skipping,
            issues: &mut self.issues,
        };
        scanner.drain(sink, at_end);
        self.pos = scanner.pos;
        self.skipping = scanner.skipping;
    }
}

/// The decoding state over one buffer: the decoder's own, or a caller's complete input.
struct Scanner<'a> {
    buf: &'a [u8],
    pos: usize,
    dropped: u64,
    skipping: bool,
    issues: &'a mut Vec<DecodeIssue>,
}

impl Scanner<'_> {
    fn drain(&mut self, sink: &mut dyn FnMut(EngineEvent), at_end: bool) {
        loop {
            if self.skipping {
                match memchr_newline(&self.buf[self.pos..]) {
                    Some(i) => {
                        self.pos += i + 1;
                        self.skipping = false;
                    }
                    None => {
                        self.pos = self.buf.len();
                        return;
                    }
                }
            }
            let rest = &self.buf[self.pos..];
            let start = match rest.iter().position(|b| !b.is_ascii_whitespace()) {
                Some(start) => start,
                None => {
                    self.pos = self.buf.len();
                    return;
                }
            };
            let mut stream =
                serde_json::Deserializer::from_slice(&rest[start..]).into_iter::<EngineEvent>();
            let mut failure = None;
            for item in stream.by_ref() {
                match item {
                    Ok(event) => sink(event),
                    Err(err) => {
                        failure = Some(err);
                        break;
                    }
                }
            }
            // Events before a failure were delivered; restart at the failed value.
            self.pos += start + stream.byte_offset();
            let Some(err) = failure else {
                return;
            };
            let value_start = self.pos + leading_ws(&self.buf[self.pos..]);
            let offset = self.dropped + value_start as u64;
            if err.is_eof() {
                if at_end {
                    self.issues.push(DecodeIssue::Truncated {
                        offset,
                        bytes: self.buf.len() - value_start,
                    });
                    self.pos = self.buf.len();
                }
                return;
            }
            self.pos = value_start;
            if !self.skip_bad_value(offset, err, at_end) {
                return;
            }
        }
    }

    /// Skips a value that failed to parse as an event: the whole value when it
    /// is valid JSON, otherwise up to the next newline. Returns `false` when
    /// more input is needed to decide.
    fn skip_bad_value(&mut self, offset: u64, err: serde_json::Error, at_end: bool) -> bool {
        let rest = &self.buf[self.pos..];
        let mut probe = serde_json::Deserializer::from_slice(rest).into_iter::<IgnoredAny>();
        match probe.next() {
            Some(Ok(_)) => {
                self.pos += probe.byte_offset();
                self.issues.push(DecodeIssue::NotAnEvent {
                    offset,
                    message: err.to_string(),
                });
            }
            Some(Err(probe_err)) if probe_err.is_eof() && !at_end => {
                // A valid prefix of a JSON value that is not an event: wait for
                // the rest so that it is skipped whole.
                if err.is_data() {
                    return false;
                }
                self.skipping = true;
                self.issues.push(DecodeIssue::Malformed {
                    offset,
                    message: err.to_string(),
                });
            }
            _ => {
                self.skipping = true;
                self.issues.push(DecodeIssue::Malformed {
                    offset,
                    message: err.to_string(),
                });
            }
        }
        true
    }
}

fn leading_ws(bytes: &[u8]) -> usize {
    bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len())
}

fn memchr_newline(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|b| *b == b'\n')
}

/// Events parsed from a complete input, with what was skipped.
#[derive(Debug, Default)]
pub struct ParsedEvents {
    /// The events, in input order.
    pub events: Vec<EngineEvent>,
    /// What could not be read as events. Empty for a well-formed log.
    pub issues: Vec<DecodeIssue>,
}

/// Parses a complete event log in either framing (NDJSON or concatenated JSON values).
///
/// ```
/// let log = b"{\"sequence\":0,\"timestamp\":0,\"preludeEvent\":{\"config\":{}}}\n{\n  \"sequence\": 1,\n  \"timestamp\": 0,\n  \"cancelEvent\": {}\n}\n";
/// let parsed = lift_pulumi::parse_events(log);
/// assert_eq!(parsed.events.len(), 2);
/// assert!(parsed.issues.is_empty());
/// ```
pub fn parse_events(bytes: &[u8]) -> ParsedEvents {
    let mut events = Vec::new();
    let mut issues = Vec::new();
    // The input is complete, so it is scanned in place rather than copied into a decoder.
    let mut scanner = Scanner {
        buf: bytes,
        pos: 0,
        dropped: 0,
        skipping: false,
        issues: &mut issues,
    };
    scanner.drain(&mut |event| events.push(event), true);
    ParsedEvents { events, issues }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const A: &str = r#"{"sequence":0,"timestamp":0,"preludeEvent":{"config":{}}}"#;
    const B: &str = r#"{"sequence":1,"timestamp":0,"stdoutEvent":{"message":"x","color":"never"}}"#;
    const C: &str = r#"{"sequence":2,"timestamp":0,"cancelEvent":{}}"#;

    #[test]
    fn truncated_last_line_is_reported_not_fatal() {
        let input = format!("{A}\n{B}\n{}", &C[..20]);
        let parsed = parse_events(input.as_bytes());
        assert_eq!(parsed.events.len(), 2);
        assert!(matches!(
            parsed.issues.as_slice(),
            [DecodeIssue::Truncated { bytes: 20, .. }]
        ));
    }

    #[test]
    fn garbage_lines_are_skipped_and_reported() {
        let input = format!("{A}\nthis is not json\n[1,2]\n{C}\n");
        let parsed = parse_events(input.as_bytes());
        assert_eq!(parsed.events.len(), 2);
        assert_eq!(parsed.issues.len(), 2, "{:?}", parsed.issues);
        assert!(matches!(parsed.issues[0], DecodeIssue::Malformed { .. }));
        assert!(matches!(parsed.issues[1], DecodeIssue::NotAnEvent { .. }));
    }

    #[test]
    fn pretty_printed_values_are_read() {
        let pretty: Vec<String> = [A, B, C]
            .iter()
            .map(|s| {
                let v: serde_json::Value = serde_json::from_str(s).unwrap();
                serde_json::to_string_pretty(&v).unwrap()
            })
            .collect();
        let parsed = parse_events(pretty.join("\n").as_bytes());
        assert_eq!(parsed.events.len(), 3);
        assert!(parsed.issues.is_empty());
    }

    proptest! {
        /// However the input is split into chunks, the same events come out.
        #[test]
        fn chunking_does_not_change_the_result(cuts in proptest::collection::vec(0usize..200, 0..8)) {
            let input = format!("{A}\n{B}\n  {C}\n{A}");
            let bytes = input.as_bytes();
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (bytes.len() + 1)).collect();
            cuts.sort_unstable();
            let mut decoder = EventDecoder::new();
            let mut events = Vec::new();
            let mut last = 0;
            for cut in cuts.into_iter().chain([bytes.len()]) {
                decoder.push(&bytes[last..cut], &mut |e| events.push(e));
                last = cut;
            }
            prop_assert!(decoder.finish().is_empty());
            prop_assert_eq!(events.len(), 4);
            prop_assert_eq!(events[2].sequence, 2);
        }

        /// Arbitrary bytes never panic and never yield more events than values.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let parsed = parse_events(&bytes);
            prop_assert!(parsed.events.len() <= bytes.len());
        }
    }
}
