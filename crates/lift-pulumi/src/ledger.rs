//! The per-resource ledger of an operation, built from its engine events.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::events::{EngineEvent, EventPayload, OpType, Severity, plain_text};

/// How a resource's steps ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ResourceStatus {
    /// A step started and has not finished yet (only seen while the operation runs).
    Pending,
    /// Every step finished: the engine reported its outputs, or the
    /// operation completed successfully (a component that registers no
    /// outputs never gets an outputs event; the engine completes an update only
    /// when every step succeeded).
    Succeeded,
    /// The engine reported a step of this resource as failed.
    Failed,
    /// The operation failed or was cancelled before the engine reported the end
    /// of this resource's step. It may or may not have been applied: a
    /// `refresh` tells.
    Unfinished,
}

impl ResourceStatus {
    /// `pending`, `succeeded`, `failed` or `unfinished`.
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceStatus::Pending => "pending",
            ResourceStatus::Succeeded => "succeeded",
            ResourceStatus::Failed => "failed",
            ResourceStatus::Unfinished => "unfinished",
        }
    }
}

/// A diagnostic message about one resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// `info`, `warning`, `error`, ...
    pub severity: String,
    /// The message, trimmed.
    pub message: String,
}

/// What happened to one resource during an operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResourceEntry {
    /// The resource's URN.
    pub urn: String,
    /// Its type token.
    #[serde(rename = "type")]
    pub resource_type: String,
    /// The operation: a replacement's several steps count as one `replace`.
    pub op: String,
    /// How its steps ended.
    pub status: ResourceStatus,
    /// Whether this is one of the engine's internal steps rather than a
    /// resource of the program: a default provider (`pulumi:providers:PKG`
    /// named `default` or `default_*`), which the engine registers itself and
    /// has written to the event log since Pulumi 3.131.
    pub internal: bool,
    /// From the first step's start to the last step's end, as lift observed them.
    #[serde(rename = "durationSeconds", serialize_with = "seconds")]
    pub duration: Option<Duration>,
    /// Diagnostics the engine attached to this resource.
    pub diagnostics: Vec<Diagnostic>,
    #[serde(skip)]
    started: Option<Instant>,
    #[serde(skip)]
    in_flight: u32,
}

fn seconds<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_some(&d.as_secs_f64()),
        None => s.serialize_none(),
    }
}

/// One entry per URN, in the order resources were first seen.
///
/// ```
/// use lift_pulumi::{Ledger, ResourceStatus, parse_events};
///
/// let log = br#"{"sequence":1,"timestamp":0,"resourcePreEvent":{"metadata":{"op":"create","urn":"urn:a","type":"t","old":null,"new":null,"provider":""}}}
/// {"sequence":2,"timestamp":0,"resOutputsEvent":{"metadata":{"op":"create","urn":"urn:a","type":"t","old":null,"new":null,"provider":""}}}"#;
/// let mut ledger = Ledger::default();
/// for event in parse_events(log).events {
///     ledger.apply(&event);
/// }
/// assert_eq!(ledger.entries()[0].status, ResourceStatus::Succeeded);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Ledger {
    entries: Vec<ResourceEntry>,
    /// Diagnostics not tied to a resource.
    general: Vec<Diagnostic>,
    #[serde(skip)]
    index: HashMap<String, usize>,
}

impl Ledger {
    /// The entries, in the order resources were first seen.
    pub fn entries(&self) -> &[ResourceEntry] {
        &self.entries
    }

    /// The entry of `urn`.
    pub fn get(&self, urn: &str) -> Option<&ResourceEntry> {
        self.index.get(urn).map(|&i| &self.entries[i])
    }

    /// Diagnostics that name no resource.
    pub fn general_diagnostics(&self) -> &[Diagnostic] {
        &self.general
    }

    /// How many entries have `status`.
    pub fn count(&self, status: ResourceStatus) -> usize {
        self.entries.iter().filter(|e| e.status == status).count()
    }

    /// Records one event, timing steps with the current instant.
    pub fn apply(&mut self, event: &EngineEvent) {
        self.apply_at(event, Instant::now());
    }

    /// Records one event, timing steps with `now`.
    pub fn apply_at(&mut self, event: &EngineEvent, now: Instant) {
        match &event.payload {
            EventPayload::ResourcePre(pre) => {
                let entry = self.entry(&pre.metadata.urn, &pre.metadata.resource_type, now);
                merge_op(entry, &pre.metadata.op);
                entry.in_flight += 1;
                if entry.status != ResourceStatus::Failed {
                    entry.status = ResourceStatus::Pending;
                }
            }
            EventPayload::ResOutputs(done) => {
                let entry = self.entry(&done.metadata.urn, &done.metadata.resource_type, now);
                merge_op(entry, &done.metadata.op);
                entry.in_flight = entry.in_flight.saturating_sub(1);
                if entry.status != ResourceStatus::Failed && entry.in_flight == 0 {
                    entry.status = ResourceStatus::Succeeded;
                }
                entry.duration = entry.started.map(|s| now.saturating_duration_since(s));
            }
            EventPayload::ResOpFailed(failed) => {
                let entry = self.entry(&failed.metadata.urn, &failed.metadata.resource_type, now);
                merge_op(entry, &failed.metadata.op);
                entry.in_flight = entry.in_flight.saturating_sub(1);
                entry.status = ResourceStatus::Failed;
                entry.duration = entry.started.map(|s| now.saturating_duration_since(s));
            }
            EventPayload::Diagnostic(diag) => {
                if diag.ephemeral == Some(true) || diag.severity == Severity::Debug {
                    return;
                }
                let note = Diagnostic {
                    severity: diag.severity.to_string(),
                    message: plain_text(&diag.message).trim().to_owned(),
                };
                match diag.urn.as_deref().and_then(|u| self.index.get(u)) {
                    Some(&i) => self.entries[i].diagnostics.push(note),
                    None => self.general.push(note),
                }
            }
            _ => {}
        }
    }

    /// The entries of the program's own resources, without the engine's
    /// internal steps (default providers).
    pub fn resources(&self) -> impl Iterator<Item = &ResourceEntry> {
        self.entries.iter().filter(|e| !e.internal)
    }

    /// Closes the ledger when the operation ends. `completed` says whether the
    /// operation succeeded as a whole.
    ///
    /// A step still pending then is not a failure: components that register
    /// no outputs never get an outputs event. After a successful operation it
    /// succeeded (the engine fails the operation when any step fails); after a
    /// failed or cancelled one it is [`ResourceStatus::Unfinished`], with a
    /// diagnostic saying so. Only a `resOpFailedEvent` makes an entry failed.
    pub fn close(&mut self, now: Instant, completed: bool) {
        for entry in &mut self.entries {
            if entry.status != ResourceStatus::Pending {
                continue;
            }
            entry.in_flight = 0;
            if entry.duration.is_none() {
                entry.duration = entry.started.map(|s| now.saturating_duration_since(s));
            }
            if completed {
                entry.status = ResourceStatus::Succeeded;
            } else {
                entry.status = ResourceStatus::Unfinished;
                entry.diagnostics.push(Diagnostic {
                    severity: "warning".to_owned(),
                    message: "the operation ended before the engine reported the end of this step"
                        .to_owned(),
                });
            }
        }
    }

    fn entry(&mut self, urn: &str, resource_type: &str, now: Instant) -> &mut ResourceEntry {
        let i = match self.index.get(urn) {
            Some(&i) => i,
            None => {
                self.entries.push(ResourceEntry {
                    urn: urn.to_owned(),
                    resource_type: resource_type.to_owned(),
                    op: OpType::Same.to_string(),
                    status: ResourceStatus::Pending,
                    internal: is_default_provider(urn, resource_type),
                    duration: None,
                    diagnostics: Vec::new(),
                    started: Some(now),
                    in_flight: 0,
                });
                self.index.insert(urn.to_owned(), self.entries.len() - 1);
                self.entries.len() - 1
            }
        };
        &mut self.entries[i]
    }
}

/// Whether a resource is a default provider, which the engine registers by
/// itself rather than the program: `urn:pulumi:STACK::PROJECT::pulumi:providers:PKG::default[_VERSION]`.
/// The ledger marks such entries `internal`; views leave them out.
pub fn is_default_provider(urn: &str, resource_type: &str) -> bool {
    resource_type.starts_with("pulumi:providers:")
        && urn
            .rsplit("::")
            .next()
            .is_some_and(|name| name == "default" || name.starts_with("default_"))
}

/// A replacement's steps (`create-replacement`, `replace`, `delete-replaced`)
/// make one `replace`; otherwise the first step that changes something wins.
fn merge_op(entry: &mut ResourceEntry, op: &OpType) {
    let replacing = matches!(
        op,
        OpType::Replace | OpType::CreateReplacement | OpType::DeleteReplaced
    );
    if replacing {
        entry.op = OpType::Replace.to_string();
    } else if entry.op == OpType::Same.as_str() {
        entry.op = op.to_string();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decoder::parse_events;

    fn step(kind: &str, op: &str, urn: &str) -> String {
        format!(
            r#"{{"sequence":0,"timestamp":0,"{kind}":{{"metadata":{{"op":"{op}","urn":"{urn}","type":"aws:s3:Bucket","old":null,"new":null,"provider":""}}{}}}}}"#,
            if kind == "resOpFailedEvent" {
                r#","status":1,"steps":0"#
            } else {
                ""
            }
        )
    }

    #[test]
    fn replacement_steps_fold_into_one_entry() {
        let log = [
            step("resourcePreEvent", "create-replacement", "a"),
            step("resOutputsEvent", "create-replacement", "a"),
            step("resourcePreEvent", "replace", "a"),
            step("resOutputsEvent", "replace", "a"),
            step("resourcePreEvent", "update", "b"),
            r#"{"sequence":0,"timestamp":0,"diagnosticEvent":{"urn":"b","message":"quota exceeded\n","color":"never","severity":"error"}}"#.to_owned(),
            step("resOpFailedEvent", "update", "b"),
            step("resourcePreEvent", "create", "c"),
            r#"{"sequence":0,"timestamp":0,"diagnosticEvent":{"message":"general","color":"never","severity":"warning"}}"#.to_owned(),
        ]
        .join("\n");
        let mut ledger = Ledger::default();
        let start = Instant::now();
        for (i, event) in parse_events(log.as_bytes()).events.iter().enumerate() {
            ledger.apply_at(event, start + Duration::from_millis(i as u64 * 10));
        }
        assert_eq!(ledger.entries().len(), 3);
        let a = ledger.get("a").unwrap();
        assert_eq!(
            (a.op.as_str(), a.status),
            ("replace", ResourceStatus::Succeeded)
        );
        assert_eq!(a.duration, Some(Duration::from_millis(30)));
        let b = ledger.get("b").unwrap();
        assert_eq!(b.status, ResourceStatus::Failed);
        assert_eq!(b.diagnostics[0].message, "quota exceeded");
        assert_eq!(ledger.get("c").unwrap().status, ResourceStatus::Pending);
        assert_eq!(ledger.general_diagnostics().len(), 1);
        let mut completed = ledger.clone();
        completed.close(start + Duration::from_secs(1), true);
        assert_eq!(
            completed.get("c").unwrap().status,
            ResourceStatus::Succeeded
        );
        assert_eq!(completed.get("b").unwrap().status, ResourceStatus::Failed);
        ledger.close(start + Duration::from_secs(1), false);
        let c = ledger.get("c").unwrap();
        assert_eq!(c.status, ResourceStatus::Unfinished);
        assert!(c.diagnostics[0].message.contains("ended before"));
        let json = serde_json::to_value(&ledger).unwrap();
        assert_eq!(json["entries"][0]["type"], "aws:s3:Bucket");
        assert_eq!(json["entries"][1]["status"], "failed");
    }
}

#[cfg(test)]
mod internal_tests {
    use super::*;

    #[test]
    fn default_providers_are_internal_and_explicit_ones_are_not() {
        assert!(is_default_provider(
            "urn:pulumi:dev::p::pulumi:providers:aws::default_6_1_0",
            "pulumi:providers:aws"
        ));
        assert!(is_default_provider(
            "urn:pulumi:dev::p::pulumi:providers:pkgA::default",
            "pulumi:providers:pkgA"
        ));
        assert!(!is_default_provider(
            "urn:pulumi:dev::p::pulumi:providers:aws::east",
            "pulumi:providers:aws"
        ));
        assert!(!is_default_provider(
            "urn:pulumi:dev::p::aws:s3:Bucket::default",
            "aws:s3:Bucket"
        ));
    }
}
