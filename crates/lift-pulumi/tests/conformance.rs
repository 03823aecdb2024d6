//! Conformance with Pulumi's own event streams: every event of every file in
//! `tests/fixtures/pulumi/pulumi-lifecycle` and `tests/fixtures/pulumi/pulumi-events` (vendored from Pulumi; see the README there)
//! parses without error, re-serializes to the same JSON value (no field lost),
//! and the extracted summary equals the file's `summaryEvent`.

#![allow(clippy::unwrap_used, reason = "a test: a failure should panic")]

use std::path::PathBuf;

use lift_pulumi::{EventPayload, parse_events};
use serde_json::Value;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/pulumi")
}

fn raw_values(bytes: &[u8]) -> Vec<Value> {
    serde_json::Deserializer::from_slice(bytes)
        .into_iter::<Value>()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[test]
fn every_fixture_event_parses_round_trips_and_summarizes() {
    let mut files = 0;
    let mut events = 0;
    let mut summaries = 0;
    let mut unknown = 0;
    let mut states = 0;
    for folder in ["pulumi-lifecycle", "pulumi-events"] {
        let dir = fixtures().join(folder);
        let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("fixtures missing at {}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        paths.sort();
        for path in paths {
            let bytes = std::fs::read(&path).unwrap();
            let parsed = parse_events(&bytes);
            assert!(
                parsed.issues.is_empty(),
                "{}: {:?}",
                path.display(),
                parsed.issues
            );
            let raw = raw_values(&bytes);
            assert_eq!(parsed.events.len(), raw.len(), "{}", path.display());
            for (typed, original) in parsed.events.iter().zip(&raw) {
                let back = serde_json::to_value(typed).unwrap();
                assert_eq!(
                    &back,
                    original,
                    "field lost or changed in {}",
                    path.display()
                );
                if matches!(typed.payload, EventPayload::Unknown(_)) {
                    unknown += 1;
                }
                // States are parsed lazily: parse each one and check it loses nothing either.
                if let Some(step) = typed.step() {
                    for state in [&step.old, &step.new].into_iter().flatten() {
                        let parsed = state.parse().unwrap();
                        let raw: Value = serde_json::from_str(state.get()).unwrap();
                        assert_eq!(
                            serde_json::to_value(&parsed).unwrap(),
                            raw,
                            "{}",
                            path.display()
                        );
                        states += 1;
                    }
                }
            }
            let expected = raw
                .iter()
                .rev()
                .find_map(|v| v.get("summaryEvent"))
                .cloned();
            let extracted = parsed
                .events
                .iter()
                .rev()
                .find_map(|e| e.summary())
                .map(|s| serde_json::to_value(s).unwrap());
            assert_eq!(extracted, expected, "summary of {}", path.display());
            summaries += usize::from(expected.is_some());
            files += 1;
            events += parsed.events.len();
        }
    }
    assert_eq!(files, 1615);
    assert_eq!(events, 18649);
    assert_eq!(summaries, 1613, "two streams have no summaryEvent");
    assert_eq!(unknown, 0, "every fixture kind is a known variant");
    assert!(states > 20_000, "{states} states checked");
}

#[test]
fn truncating_any_fixture_loses_only_the_last_event() {
    let path = fixtures().join("pulumi-events/not-truncated__up.json");
    let bytes = std::fs::read(&path).unwrap();
    let full = parse_events(&bytes).events.len();
    let cut = &bytes[..bytes.len() - 10];
    let parsed = parse_events(cut);
    assert_eq!(parsed.events.len(), full - 1);
    assert_eq!(parsed.issues.len(), 1);
}

/// Every stream whose update succeeded: the ledger marks no resource failed or
/// unfinished. Components that register no outputs, and the engine's internal
/// steps (default providers), get no `resOutputsEvent`; 163 entries of 135
/// such streams used to come out failed.
#[test]
fn the_ledger_marks_nothing_failed_in_streams_that_succeeded() {
    use lift_pulumi::{Ledger, ResourceStatus};
    let mut streams = 0;
    let mut without_outputs_event = 0;
    let mut internal = 0;
    for folder in ["pulumi-lifecycle", "pulumi-events", "recorded"] {
        let Ok(entries) = std::fs::read_dir(fixtures().join(folder)) else {
            assert_eq!(folder, "recorded", "{folder} is missing");
            continue;
        };
        for path in entries.map(|e| e.unwrap().path()) {
            if path.extension().is_some_and(|e| e == "md") {
                continue;
            }
            let parsed = parse_events(&std::fs::read(&path).unwrap());
            let Some(summary) = parsed.events.iter().rev().find_map(|e| e.summary()) else {
                continue;
            };
            let failed_step = parsed
                .events
                .iter()
                .any(|e| matches!(e.payload, EventPayload::ResOpFailed(_)));
            match summary.result.as_deref() {
                Some("succeeded") => assert!(!failed_step, "{}", path.display()),
                None if !failed_step => {}
                _ => continue,
            }
            let mut ledger = Ledger::default();
            for event in &parsed.events {
                ledger.apply(event);
            }
            without_outputs_event += ledger.count(ResourceStatus::Pending);
            ledger.close(std::time::Instant::now(), true);
            for entry in ledger.entries() {
                assert_eq!(
                    entry.status,
                    ResourceStatus::Succeeded,
                    "{} in {}",
                    entry.urn,
                    path.display()
                );
                if entry.internal {
                    assert!(entry.resource_type.starts_with("pulumi:providers:"));
                    internal += 1;
                }
            }
            streams += 1;
        }
    }
    assert!(streams > 1400, "{streams} streams that succeeded");
    assert!(
        without_outputs_event >= 163,
        "{without_outputs_event} entries had no outputs event"
    );
    assert!(internal > 0, "default providers are marked internal");
}
