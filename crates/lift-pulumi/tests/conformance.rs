//! Conformance with Pulumi's own event streams: every event of every file in
//! `../shared/fixtures/pulumi-lifecycle` and `../shared/fixtures/pulumi-events`
//! parses without error, re-serializes to the same JSON value (no field lost),
//! and the extracted summary equals the file's `summaryEvent`.

#![allow(clippy::unwrap_used, reason = "a test: a failure should panic")]

use std::path::PathBuf;

use lift_pulumi::{EventPayload, parse_events};
use serde_json::Value;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures")
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
