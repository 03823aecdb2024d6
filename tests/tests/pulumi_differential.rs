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
const KNOWN: &[&str] = &[];

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

/// The stacks' settings files as their file names and YAML documents, with what differs from run to
/// run (the passphrase's salt, ciphertexts) replaced.
fn settings(files: &std::collections::BTreeMap<String, String>) -> Vec<(String, Value)> {
    fn blind(v: Value) -> Value {
        match v {
            Value::Object(map) => Value::Object(
                map.into_iter()
                    .map(|(k, v)| match k.as_str() {
                        "encryptionsalt" | "secure" => (k, Value::from("<varies>")),
                        _ => (k, blind(v)),
                    })
                    .collect(),
            ),
            Value::Array(items) => Value::Array(items.into_iter().map(blind).collect()),
            other => other,
        }
    }
    files
        .iter()
        .map(|(name, text)| {
            let doc = yaml_serde::from_str::<Value>(text)
                .unwrap_or_else(|e| Value::from(format!("not YAML: {e}")));
            (name.clone(), blind(doc))
        })
        .collect()
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

/// What is compared of an event stream.
///
/// The events the engine writes about the operation and its steps come in a fixed order, so they
/// are compared in order: kind, op, URN, the payload's and the metadata's fields, and a summary's
/// counts and result. Diagnostics are written by the language host as the program runs ("Registering
/// resource [x]", a program's errors) and race with the engine's events, so their place varies from
/// run to run: they are compared as a list of their own, in order, by severity, colour, prefix and
/// (for debug ones) message; the debug ones as a set, since the YAML host registers config keys in
/// the order of a Go map, which varies. The engine also runs the steps of resources that do not
/// depend on each other in parallel: a run of such resources' events (the stack's aside) is compared
/// as a set, and the refresh steps of a refresh, which all run at once, the stack's included, as a
/// set of each resource's events in their order (see [`order_refreshes`]).
/// Sequence numbers must count 0, 1, 2… with no gap.
fn event_lines(bytes: &[u8], dir: &str) -> Vec<String> {
    let events: Vec<Value> = serde_json::Deserializer::from_slice(bytes)
        .into_iter::<Value>()
        .filter_map(Result::ok)
        .collect();
    let sequences: Vec<i64> = events
        .iter()
        .filter_map(|e| e["sequence"].as_i64())
        .collect();
    let counted = sequences
        .iter()
        .enumerate()
        .all(|(i, s)| usize::try_from(*s).ok() == Some(i));
    let mut lines = vec![format!(
        "{} events, sequences {}",
        events.len(),
        if counted {
            "0, 1, 2…".to_owned()
        } else {
            format!("{sequences:?}")
        }
    )];
    let mut diagnostics = Vec::new();
    let mut entries = Vec::new();
    for event in &events {
        let kind = event
            .as_object()
            .and_then(|o| {
                o.keys()
                    .find(|k| *k != "sequence" && *k != "timestamp")
                    .cloned()
            })
            .unwrap_or_default();
        let body = &event[&kind];
        if kind == "diagnosticEvent" {
            let message = if body["severity"] == "debug" {
                body["message"]
                    .as_str()
                    .unwrap_or_default()
                    .replace(dir, "<dir>")
            } else {
                String::new()
            };
            diagnostics.push(format!(
                "diagnostic {} {} {} {:?}",
                body["severity"], body["color"], body["prefix"], message
            ));
            continue;
        }
        let keys = |v: &Value| -> Vec<String> {
            let mut k: Vec<String> = v
                .as_object()
                .map(|o| o.keys().cloned().collect())
                .unwrap_or_default();
            k.sort();
            k
        };
        let metadata = &body["metadata"];
        let mut line = format!(
            "{kind} {} {} {:?}",
            metadata["op"],
            metadata["urn"],
            keys(body)
        );
        if metadata.is_object() {
            line.push_str(&format!(" metadata {:?}", keys(metadata)));
        }
        if kind == "summaryEvent" {
            line.push_str(&format!(
                " {} {} {}",
                body["resourceChanges"], body["result"], body["isPreview"]
            ));
        }
        let step = match kind.as_str() {
            "resourcePreEvent" => Some(StepEvent::Pre {
                refresh: metadata["op"] == "refresh",
            }),
            "resOutputsEvent" | "resOpFailedEvent" => Some(StepEvent::End),
            _ => None,
        };
        entries.push(Entry {
            line,
            step: step.map(|e| (e, metadata["urn"].as_str().unwrap_or_default().to_owned())),
        });
    }
    let mut ordered = order_refreshes(entries);
    sort_parallel_runs(&mut ordered);
    lines.extend(ordered.into_iter().map(|(line, _)| line));
    let (mut debug, others): (Vec<String>, Vec<String>) = diagnostics
        .into_iter()
        .partition(|d| d.starts_with("diagnostic \"debug\""));
    debug.sort();
    lines.extend(others);
    lines.extend(debug);
    lines
}

/// An engine event other than a diagnostic, as compared.
struct Entry {
    /// What is compared of it.
    line: String,
    /// For the event of a step, which one, and the resource's URN.
    step: Option<(StepEvent, String)>,
}

/// Where an event stands in its step: the engine writes a step's `resourcePreEvent` when the step
/// starts, and its `resOutputsEvent` (or `resOpFailedEvent`) when it ends.
#[derive(Clone, Copy, PartialEq, Eq)]
enum StepEvent {
    /// A `resourcePreEvent`; `refresh` when its op is `refresh`.
    Pre { refresh: bool },
    /// A `resOutputsEvent` or `resOpFailedEvent`.
    End,
}

/// Puts each batch of refresh steps in one order, and marks its events as placed (`true`).
///
/// Without `--run-program`, `refresh` (and `up`/`preview --refresh` before the update) refreshes
/// every resource of the state at once: `deploymentExecutor.refresh`
/// (pkg/resource/deploy/deployment_executor.go, pulumi v3.274.1) hands all the refresh steps to
/// `stepExecutor.ExecuteParallel` as one antichain, each step a chain of its own, the stack's
/// included, and each chain's `executeStep` writes the step's `resourcePreEvent`, applies it, then
/// writes its outputs (or failure) event. So the events of different resources interleave in any
/// order, and only each resource's own events keep theirs.
///
/// A batch is the run of step events from a `refresh` `resourcePreEvent` on, as long as each event
/// starts a refresh step or ends one of the batch still running (the update that may follow, which
/// the engine starts once every refresh step has ended, begins with a `resourcePreEvent` of another
/// op). It becomes its resources' event sequences, each in its order,
/// sorted: so a batch compares as a set of sequences, and a missing or extra step, an op, a field
/// or a resource whose outputs come before its start still differ.
fn order_refreshes(entries: Vec<Entry>) -> Vec<(String, bool)> {
    let mut ordered = Vec::with_capacity(entries.len());
    let mut entries = entries.into_iter().peekable();
    while let Some(entry) = entries.next() {
        let Some((StepEvent::Pre { refresh: true }, urn)) = entry.step else {
            ordered.push((entry.line, false));
            continue;
        };
        // Each refresh step's URN, events, and whether it has ended.
        let mut steps = vec![(urn, vec![entry.line], false)];
        while let Some(next) = entries.peek() {
            let Some((event, urn)) = &next.step else {
                break;
            };
            let ends = match event {
                StepEvent::Pre { refresh: false } => break,
                StepEvent::Pre { refresh: true } => None,
                // The step it ends: the first still running of that URN (a state may hold several
                // resources of one URN). The engine ends a step once, with its outputs or its failure
                // (`updateActions.OnResourceStepPost`, pkg/engine/update.go).
                StepEvent::End => match steps.iter().position(|(u, _, ended)| u == urn && !ended) {
                    Some(index) => Some(index),
                    None => break,
                },
            };
            let Some(Entry {
                line,
                step: Some((_, urn)),
            }) = entries.next()
            else {
                break;
            };
            match ends {
                Some(index) => {
                    steps[index].1.push(line);
                    steps[index].2 = true;
                }
                None => steps.push((urn, vec![line], false)),
            }
        }
        let mut sequences: Vec<Vec<String>> =
            steps.into_iter().map(|(_, lines, _)| lines).collect();
        sequences.sort();
        ordered.extend(sequences.into_iter().flatten().map(|line| (line, true)));
    }
    ordered
}

/// Sorts each run of consecutive step events of resources other than the stack, leaving alone the
/// events [`order_refreshes`] placed.
fn sort_parallel_runs(lines: &mut [(String, bool)]) {
    let parallel = |(l, placed): &(String, bool)| {
        !placed
            && ["resourcePreEvent", "resOutputsEvent", "resOpFailedEvent"]
                .iter()
                .any(|k| l.starts_with(k))
            && !l.contains("pulumi:pulumi:Stack")
    };
    let mut start = 0;
    while start < lines.len() {
        let mut end = start;
        while end < lines.len() && parallel(&lines[end]) {
            end += 1;
        }
        lines[start..end].sort();
        start = end.max(start + 1);
    }
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
    let (r, f) = (settings(&real.settings), settings(&fake.settings));
    if r != f {
        found.push(format!("{name} {i} settings files: real {r:?} fake {f:?}"));
    }
    match (&real.events, &fake.events) {
        (Some(r), Some(f)) => {
            let (r, f) = (event_lines(r, dirs.0), event_lines(f, dirs.1));
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

/// Writes each step's stdout, stderr and event log under `dir`, to look at a difference closely
/// (`LIFT_DIFFERENTIAL_DUMP=dir`).
fn dump_outcomes(dir: &Path, name: &str, runs: &[(&str, &Vec<Outcome>)]) {
    std::fs::create_dir_all(dir).unwrap();
    for (cli, outcomes) in runs {
        for (i, o) in outcomes.iter().enumerate() {
            let base = dir.join(format!("{name}-{i}-{cli}"));
            std::fs::write(base.with_extension("stdout"), &o.stdout).unwrap();
            std::fs::write(base.with_extension("stderr"), &o.stderr).unwrap();
            if let Some(events) = &o.events {
                std::fs::write(base.with_extension("events"), events).unwrap();
            }
        }
    }
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
        // The same PATH for both: each warns that it uses the YAML language host found there.
        let fake = scenario::replay(
            &fake(),
            Some(&language_dir(&pulumi)),
            &scenario,
            fake_dir.path(),
        )
        .unwrap();
        let dirs = (
            real_dir.path().to_str().unwrap(),
            fake_dir.path().to_str().unwrap(),
        );
        if let Some(dump) = std::env::var_os("LIFT_DIFFERENTIAL_DUMP") {
            dump_outcomes(Path::new(&dump), &name, &[("real", &real), ("fake", &fake)]);
        }
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

/// An event log of `(kind, op, URN)` steps between a prelude and a summary, numbered from 0.
fn event_log(steps: &[(&str, &str, &str)]) -> Vec<u8> {
    let mut events = vec![serde_json::json!({"preludeEvent": {"config": {}}})];
    for &(kind, op, urn) in steps {
        let metadata = serde_json::json!({"op": op, "urn": urn, "type": "t", "provider": ""});
        events.push(match kind {
            "resourcePreEvent" => {
                serde_json::json!({kind: {"metadata": metadata, "planning": false}})
            }
            _ => serde_json::json!({kind: {"metadata": metadata}}),
        });
    }
    events.push(serde_json::json!({"summaryEvent": {"resourceChanges": {"same": 3}, "result": "succeeded"}}));
    let mut log = Vec::new();
    for (sequence, mut event) in events.into_iter().enumerate() {
        event["sequence"] = Value::from(sequence);
        event["timestamp"] = Value::from(1);
        log.extend(event.to_string().bytes());
        log.push(b'\n');
    }
    log
}

#[test]
fn refresh_steps_compare_as_a_set_of_each_resource_s_events_in_order() {
    const STACK: &str = "urn:pulumi:dev::p::pulumi:pulumi:Stack::p-dev";
    const EXTRA: &str = "urn:pulumi:dev::p::pulumi:providers:pulumi::extra";
    const SECOND: &str = "urn:pulumi:dev::p::pulumi:providers:pulumi::second";
    let pre = |urn| ("resourcePreEvent", "refresh", urn);
    let same = |urn| ("resOutputsEvent", "same", urn);
    let lines = |steps: &[(&str, &str, &str)]| event_lines(&event_log(steps), "/tmp");
    // As the fake writes it, and as the real engine most often does.
    let in_order = lines(&[
        pre(STACK),
        same(STACK),
        pre(EXTRA),
        same(EXTRA),
        pre(SECOND),
        same(SECOND),
    ]);
    // Orders the real engine wrote, or may write: the stack after the others, the steps interleaved.
    for other in [
        [
            pre(EXTRA),
            same(EXTRA),
            pre(SECOND),
            same(SECOND),
            pre(STACK),
            same(STACK),
        ],
        [
            pre(SECOND),
            pre(STACK),
            pre(EXTRA),
            same(EXTRA),
            same(STACK),
            same(SECOND),
        ],
    ] {
        assert_eq!(lines(&other), in_order, "{other:?}");
    }
    // Still differences: a missing or an extra step, another op, outputs before a step starts, a field.
    let extra_step = [
        pre(STACK),
        same(STACK),
        pre(EXTRA),
        same(EXTRA),
        pre(SECOND),
        same(SECOND),
        pre(SECOND),
        same(SECOND),
    ];
    for other in [
        &[pre(STACK), same(STACK), pre(EXTRA), same(EXTRA)][..],
        &extra_step[..],
        &[
            pre(STACK),
            same(STACK),
            pre(EXTRA),
            ("resOutputsEvent", "update", EXTRA),
            pre(SECOND),
            same(SECOND),
        ][..],
        &[
            pre(STACK),
            same(STACK),
            same(EXTRA),
            pre(EXTRA),
            pre(SECOND),
            same(SECOND),
        ][..],
    ] {
        assert_ne!(lines(other), in_order, "{other:?}");
    }
    let mut log: Vec<Value> = serde_json::Deserializer::from_slice(&event_log(&[
        pre(STACK),
        same(STACK),
        pre(EXTRA),
        same(EXTRA),
        pre(SECOND),
        same(SECOND),
    ]))
    .into_iter::<Value>()
    .collect::<Result<_, _>>()
    .unwrap();
    log[4]["resOutputsEvent"]["metadata"]["diffs"] = serde_json::json!(["x"]);
    let bytes: Vec<u8> = log
        .iter()
        .flat_map(|e| format!("{e}\n").into_bytes())
        .collect();
    assert_ne!(event_lines(&bytes, "/tmp"), in_order);
    // The steps of an update after `--refresh` are not taken into the refresh's batch: they start
    // once every refresh step has ended.
    let update = |op| (op, "same", STACK);
    assert_ne!(
        lines(&[
            pre(STACK),
            same(STACK),
            update("resourcePreEvent"),
            pre(EXTRA),
            same(EXTRA),
            update("resOutputsEvent"),
        ]),
        lines(&[
            pre(STACK),
            same(STACK),
            pre(EXTRA),
            same(EXTRA),
            update("resourcePreEvent"),
            update("resOutputsEvent"),
        ]),
    );
}
