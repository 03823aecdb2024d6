//! Engine events in the exact framing of `sdk/go/common/apitype/events.go`, and the event-log writer.
//!
//! Each line is `{"sequence":N,"timestamp":T,"<kind>Event":{...}}`, numbered from 0. Payload structs declare
//! their fields in the Go structs' order, and maps are sorted like Go's `encoding/json` does. As in the
//! engine's log writer, which turns `SetEscapeHTML` off, `<`, `>` and `&` are written as they are.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use crate::clock;
use crate::error::CliError;

fn is_false(b: &bool) -> bool {
    !*b
}

/// `apitype.PropertyDiff`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub(crate) struct PropertyDiff {
    /// `add`, `update`, `delete` and their `-replace` variants.
    #[serde(rename = "diffKind")]
    pub(crate) diff_kind: String,
    /// Whether the diff is between old and new inputs.
    #[serde(rename = "inputDiff")]
    pub(crate) input_diff: bool,
}

/// `apitype.StepEventStateMetadata`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct StateMeta {
    #[serde(rename = "type")]
    pub(crate) ty: String,
    pub(crate) urn: String,
    #[serde(skip_serializing_if = "is_false")]
    pub(crate) custom: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub(crate) delete: bool,
    pub(crate) id: String,
    pub(crate) parent: String,
    #[serde(skip_serializing_if = "is_false")]
    pub(crate) protect: bool,
    pub(crate) inputs: serde_json::Map<String, Value>,
    pub(crate) outputs: serde_json::Map<String, Value>,
    pub(crate) provider: String,
}

/// `apitype.StepEventMetadata`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct StepMeta {
    pub(crate) op: String,
    pub(crate) urn: String,
    #[serde(rename = "type")]
    pub(crate) ty: String,
    pub(crate) old: Option<StateMeta>,
    pub(crate) new: Option<StateMeta>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) keys: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) diffs: Vec<String>,
    #[serde(rename = "detailedDiff")]
    pub(crate) detailed_diff: Option<BTreeMap<String, PropertyDiff>>,
    #[serde(skip_serializing_if = "is_false")]
    pub(crate) logical: bool,
    pub(crate) provider: String,
}

#[derive(Serialize)]
struct PreludePayload<'a> {
    config: &'a BTreeMap<String, String>,
}

#[derive(Serialize)]
struct StepPayload<'a> {
    metadata: &'a StepMeta,
    #[serde(skip_serializing_if = "is_false")]
    planning: bool,
}

#[derive(Serialize)]
struct FailedPayload<'a> {
    metadata: &'a StepMeta,
    status: i64,
    steps: i64,
}

#[derive(Serialize)]
struct DiagnosticPayload<'a> {
    #[serde(skip_serializing_if = "str::is_empty")]
    urn: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    prefix: &'a str,
    message: &'a str,
    color: &'a str,
    severity: &'a str,
}

#[derive(Serialize)]
struct SummaryPayload<'a> {
    #[serde(rename = "maybeCorrupt")]
    maybe_corrupt: bool,
    #[serde(rename = "durationSeconds")]
    duration_seconds: i64,
    #[serde(rename = "resourceChanges")]
    resource_changes: &'a BTreeMap<String, i64>,
    #[serde(rename = "PolicyPacks")]
    policy_packs: BTreeMap<String, String>,
    #[serde(rename = "isPreview")]
    is_preview: bool,
    result: &'a str,
}

#[derive(Serialize)]
struct Empty {}

/// How the log should be damaged, for failure-injection tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Damage {
    /// Write the log faithfully.
    #[default]
    None,
    /// Cut the last line (the `cancelEvent`) in half, without its newline.
    TruncateLastLine,
    /// Insert a line that is not JSON after the prelude.
    GarbageLine,
}

/// Whether diagnostics keep Pulumi's colour markup (`--color raw` or `always`) or lose it (`never`,
/// and `auto` when the output is not a terminal, as in every test).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Color {
    /// Markup such as `<{%fg 1%}>` kept, `"color":"raw"`.
    Raw,
    /// Plain text, `"color":"never"`.
    Never,
}

impl Color {
    /// The colour of `--color VALUE` (absent means `auto`).
    pub(crate) fn from_flag(value: Option<&str>) -> Color {
        match value {
            Some("raw" | "always") => Color::Raw,
            _ => Color::Never,
        }
    }
}

/// Writes engine events, one JSON object per line, to the `--event-log` file and/or stdout.
pub(crate) struct EventLog {
    file: Option<File>,
    to_stdout: bool,
    color: Color,
    /// The sequence number of the next event.
    sequence: i64,
    delay: Duration,
    damage: Damage,
    /// Every line written, for callers that need to inspect what was emitted.
    pub(crate) written: usize,
}

impl EventLog {
    /// Opens (creating or truncating) the event log at `path`, if any.
    pub(crate) fn open(
        path: Option<&Path>,
        to_stdout: bool,
        color: Color,
        delay: Duration,
        damage: Damage,
    ) -> Result<EventLog, CliError> {
        let file = match path {
            Some(p) => {
                Some(File::create(p).map_err(|e| CliError::io("creating event log", p, &e))?)
            }
            None => None,
        };
        Ok(EventLog {
            file,
            to_stdout,
            color,
            sequence: 0,
            delay,
            damage,
            written: 0,
        })
    }

    fn emit<T: Serialize>(&mut self, kind: &str, payload: &T) {
        let body = serde_json::to_string(payload).unwrap_or_else(|_| "{}".to_owned());
        let line = format!(
            "{{\"sequence\":{},\"timestamp\":{},\"{kind}\":{}}}",
            self.sequence,
            clock::now_secs(),
            go_escape(&body)
        );
        self.sequence += 1;
        let last = kind == "cancelEvent";
        self.write_line(&line, last);
        if self.damage == Damage::GarbageLine && kind == "preludeEvent" {
            self.write_line("{\"sequence\": this is not json", false);
        }
        if !self.delay.is_zero() && !last {
            std::thread::sleep(self.delay);
        }
    }

    fn write_line(&mut self, line: &str, last: bool) {
        self.written += 1;
        if let Some(f) = self.file.as_mut() {
            let text = if last && self.damage == Damage::TruncateLastLine {
                line[..line.len() / 2].to_owned()
            } else {
                format!("{line}\n")
            };
            // A write error here would be a test-environment problem; the real CLI also ignores it.
            let _ = f.write_all(text.as_bytes());
            let _ = f.flush();
        }
        if self.to_stdout {
            // `pulumi up --json` prints each event indented, one after another.
            let pretty = serde_json::from_str::<Value>(line)
                .ok()
                .and_then(|v| serde_json::to_string_pretty(&v).ok())
                .unwrap_or_else(|| line.to_owned());
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{pretty}");
            let _ = out.flush();
        }
    }

    /// `preludeEvent`.
    pub(crate) fn prelude(&mut self, config: &BTreeMap<String, String>) {
        self.emit("preludeEvent", &PreludePayload { config });
    }

    /// `resourcePreEvent`.
    pub(crate) fn resource_pre(&mut self, metadata: &StepMeta, planning: bool) {
        self.emit("resourcePreEvent", &StepPayload { metadata, planning });
    }

    /// `resOutputsEvent`.
    pub(crate) fn res_outputs(&mut self, metadata: &StepMeta, planning: bool) {
        self.emit("resOutputsEvent", &StepPayload { metadata, planning });
    }

    /// `resOpFailedEvent`.
    pub(crate) fn res_op_failed(&mut self, metadata: &StepMeta) {
        self.emit(
            "resOpFailedEvent",
            &FailedPayload {
                metadata,
                status: 0,
                steps: 0,
            },
        );
    }

    /// `diagnosticEvent`: with `--color raw` in Pulumi's colour markup, else plain.
    pub(crate) fn diagnostic(&mut self, urn: &str, severity: &str, message: &str) {
        let (prefix, message, color) = match self.color {
            Color::Raw => {
                let prefix = match severity {
                    "error" => "<{%fg 1%}>error: <{%reset%}>".to_owned(),
                    "warning" => "<{%fg 3%}>warning: <{%reset%}>".to_owned(),
                    other => format!("<{{%reset%}}>{other}: <{{%reset%}}>"),
                };
                (
                    prefix,
                    format!("<{{%reset%}}>{message}<{{%reset%}}>\n"),
                    "raw",
                )
            }
            Color::Never => (format!("{severity}: "), format!("{message}\n"), "never"),
        };
        self.emit(
            "diagnosticEvent",
            &DiagnosticPayload {
                urn,
                prefix: &prefix,
                message: &message,
                color,
                severity,
            },
        );
    }

    /// `summaryEvent`.
    pub(crate) fn summary(
        &mut self,
        changes: &BTreeMap<String, i64>,
        duration_seconds: i64,
        is_preview: bool,
        result: &str,
    ) {
        self.emit(
            "summaryEvent",
            &SummaryPayload {
                maybe_corrupt: false,
                duration_seconds,
                resource_changes: changes,
                policy_packs: BTreeMap::new(),
                is_preview,
                result,
            },
        );
    }

    /// `cancelEvent`, the last event of every stream.
    pub(crate) fn cancel(&mut self) {
        self.emit("cancelEvent", &Empty {});
    }
}

/// Escapes U+2028 and U+2029 like Go's `encoding/json`, which does so even with `SetEscapeHTML(false)`
/// (they only occur inside JSON strings).
fn go_escape(json: &str) -> String {
    json.replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_have_go_framing_and_escaping() {
        let dir = std::env::temp_dir().join(format!("fake-pulumi-events-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("log.json");
        for color in [Color::Raw, Color::Never] {
            let mut log =
                EventLog::open(Some(&path), false, color, Duration::ZERO, Damage::None).unwrap();
            log.prelude(&BTreeMap::new());
            log.diagnostic("", "error", "a < b & c");
            log.cancel();
            let text = std::fs::read_to_string(&path).unwrap();
            let lines: Vec<&str> = text.lines().collect();
            assert_eq!(lines.len(), 3);
            assert!(lines[0].starts_with("{\"sequence\":0,\"timestamp\":"));
            assert!(lines[0].ends_with(",\"preludeEvent\":{\"config\":{}}}"));
            assert!(
                lines[1].contains("a < b & c"),
                "no HTML escaping: {}",
                lines[1]
            );
            let v: Value = serde_json::from_str(lines[1]).unwrap();
            let d = &v["diagnosticEvent"];
            assert_eq!(d["severity"], "error");
            if color == Color::Raw {
                assert_eq!(d["prefix"], "<{%fg 1%}>error: <{%reset%}>");
                assert_eq!(d["color"], "raw");
            } else {
                assert_eq!(d["prefix"], "error: ");
                assert_eq!(d["message"], "a < b & c\n");
                assert_eq!(d["color"], "never");
            }
            assert!(lines[2].starts_with("{\"sequence\":2,"));
            assert!(lines[2].ends_with("\"cancelEvent\":{}}"));
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
