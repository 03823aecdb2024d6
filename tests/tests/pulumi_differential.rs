//! The fake `pulumi` follows the real one: every replayable scenario runs
//! against both CLIs, and what lift reads of them is compared step by step:
//! exit codes, the JSON documents' keys and values (timestamps, durations,
//! ids, temp paths and versions normalised away), the stderr lines lift
//! classifies, and the event streams' kinds, order, sequence numbers, ops,
//! URNs and fields.
//!
//! Differences that must stay are listed, with their reasons, in
//! `tests/src/bin/pulumi/README.md` and in [`KNOWN`] below; anything else fails.

#![allow(
    clippy::print_stderr,
    clippy::unwrap_used,
    reason = "a skip says why; a failure should panic"
)]

use std::path::{Path, PathBuf};

use lift_tests::scenario::{self, Outcome};
use real_common::{language_dir, real_pulumi};
use serde_json::Value;

mod real_common;

/// Differences not yet removed, as `scenario step what`; each is listed in
/// the fake's README ("Where it still differs from the real CLI"). A new
/// difference fails the test; a fixed one should leave this list.
const KNOWN: &[&str] = &[
    // Event streams: the fake writes no default-provider steps, numbers from 1 and writes other fields.
    "failures 2 events",
    "failures 4 events",
    "failures 8 events",
    "lifecycle 5 events",
    "lifecycle 6 events",
    "lifecycle 10 events",
    "lifecycle 11 events",
    "lifecycle 12 events",
    // The fake checks the passphrase only when it has a secret to decrypt.
    "failures 3 exit",
    "failures 3 stderr errors",
    // whoami: the fake names $USER or "fake-user", the real CLI the OS account.
    "failures 10 json values",
    // "already exists" names the stack as given by the fake, fully qualified by the real CLI.
    "lifecycle 2 stderr errors",
    // stack history: the real environment block has more keys.
    "lifecycle 9 json shape",
];

fn fake() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_pulumi"))
}

/// Replaces what differs from run to run with placeholders.
fn normalise(value: &Value, dir: &str) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let v = match k.as_str() {
                        "timestamp" | "startTime" | "endTime" | "lastUpdate"
                        | "durationSeconds" | "time" | "created" | "modified" | "id" | "ID" => {
                            Value::from("<varies>")
                        }
                        "environment" | "pulumi.version" | "version" if !v.is_object() => {
                            Value::from("<varies>")
                        }
                        _ => normalise(v, dir),
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(|v| normalise(v, dir)).collect()),
        Value::String(text) => Value::from(text.replace(dir, "<dir>")),
        other => other.clone(),
    }
}

/// The shape of a JSON value: its keys, recursively (values dropped).
fn shape(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), shape(v))).collect())
        }
        Value::Array(items) => Value::Array(items.iter().map(shape).collect()),
        _ => Value::Null,
    }
}

/// One line per event: sequence, kind, op, URN and the step's fields.
fn event_lines(bytes: &[u8]) -> Vec<String> {
    serde_json::Deserializer::from_slice(bytes)
        .into_iter::<Value>()
        .filter_map(Result::ok)
        .map(|event| {
            let kind = event
                .as_object()
                .and_then(|o| {
                    o.keys()
                        .find(|k| *k != "sequence" && *k != "timestamp")
                        .cloned()
                })
                .unwrap_or_default();
            let body = &event[&kind];
            let metadata = &body["metadata"];
            let mut fields: Vec<&String> = body
                .as_object()
                .map(|o| o.keys().collect())
                .unwrap_or_default();
            fields.sort();
            format!(
                "{} {kind} {} {} {:?}",
                event["sequence"], metadata["op"], metadata["urn"], fields
            )
        })
        .collect()
}

fn compare(
    name: &str,
    i: usize,
    real: &Outcome,
    fake: &Outcome,
    dirs: (&str, &str),
) -> Vec<String> {
    let mut found = Vec::new();
    if real.exit != fake.exit {
        found.push(format!(
            "{name} {i} exit: real {} fake {}",
            real.exit, fake.exit
        ));
    }
    let parsed = (
        serde_json::from_str::<Value>(&real.stdout),
        serde_json::from_str::<Value>(&fake.stdout),
    );
    if let (Ok(r), Ok(f)) = parsed {
        let (r, f) = (normalise(&r, dirs.0), normalise(&f, dirs.1));
        if shape(&r) != shape(&f) {
            found.push(format!(
                "{name} {i} json shape: real {} fake {}",
                shape(&r),
                shape(&f)
            ));
        } else if r != f {
            found.push(format!("{name} {i} json values: real {r} fake {f}"));
        }
    }
    let classified = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| l.starts_with("error:"))
            .map(|l| l.replace(dirs.0, "<dir>").replace(dirs.1, "<dir>"))
            .collect()
    };
    if classified(&real.stderr) != classified(&fake.stderr) {
        found.push(format!(
            "{name} {i} stderr errors: real {:?} fake {:?}",
            classified(&real.stderr),
            classified(&fake.stderr)
        ));
    }
    match (&real.events, &fake.events) {
        (Some(r), Some(f)) => {
            let (r, f) = (event_lines(r), event_lines(f));
            if r != f {
                found.push(format!("{name} {i} events: real {r:#?} fake {f:#?}"));
            }
        }
        (None, None) => {}
        (r, f) => found.push(format!(
            "{name} {i} event log written: real {} fake {}",
            r.is_some(),
            f.is_some()
        )),
    }
    found
}

#[test]
fn the_fake_follows_the_real_cli_on_every_scenario() {
    let Some(pulumi) = real_pulumi() else {
        return;
    };
    let mut differences = Vec::new();
    for (name, scenario) in scenario::load_all().unwrap() {
        let real_dir = tempfile::tempdir().unwrap();
        let fake_dir = tempfile::tempdir().unwrap();
        let real = scenario::replay(
            &pulumi,
            Some(&language_dir(&pulumi)),
            &scenario,
            real_dir.path(),
        )
        .unwrap();
        let fake = scenario::replay(&fake(), None::<&Path>, &scenario, fake_dir.path()).unwrap();
        let dirs = (
            real_dir.path().to_str().unwrap(),
            fake_dir.path().to_str().unwrap(),
        );
        for (i, (r, f)) in real.iter().zip(&fake).enumerate() {
            differences.extend(compare(&name, i, r, f, dirs));
        }
    }
    let unexpected: Vec<&String> = differences
        .iter()
        .filter(|d| !KNOWN.iter().any(|k| d.starts_with(k)))
        .collect();
    eprintln!(
        "{} differences, {} unexpected",
        differences.len(),
        unexpected.len()
    );
    for d in &unexpected {
        eprintln!("---\n{d}");
    }
    assert!(
        unexpected.is_empty(),
        "{} unexpected differences",
        unexpected.len()
    );
}
