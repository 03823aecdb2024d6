//! Typed Pulumi engine events, as the CLI writes them with `--event-log` and `up --json`.
//!
//! The types follow `sdk/go/common/apitype/events.go` field for field, with
//! every JSON name spelled as Pulumi writes it (`detailedDiff`, `initErrors`,
//! `retainOnDelete`, `streamID`, `PolicyPacks`, ...). Presence is preserved:
//! a field that Go omits when empty is an `Option` here and is omitted again
//! when re-serialized, so `serialize(parse(json)) == json` for every event the
//! CLI writes. A variant this crate does not know yet is kept as raw JSON in
//! [`EventPayload::Unknown`]; it never fails the parse.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A free-form JSON object (policy remediation inputs, debug configuration).
pub type PropertyMap = Map<String, Value>;

/// A resource's property bag (inputs or outputs), kept as the raw JSON text
/// the CLI wrote.
///
/// Property bags are most of an event log's bytes and most readers never
/// look inside them, so they are not parsed into a tree up front: call
/// [`RawProperties::parse`] for the ones you need. Equality compares the text.
#[derive(Clone)]
pub struct RawProperties(Box<serde_json::value::RawValue>);

impl RawProperties {
    /// The JSON text, exactly as written.
    pub fn get(&self) -> &str {
        self.0.get()
    }

    /// Parses the bag into a JSON object. Fails when the CLI wrote something else (`null`, an array).
    pub fn parse(&self) -> Result<PropertyMap, serde_json::Error> {
        serde_json::from_str(self.0.get())
    }

    /// Whether the bag is the empty object `{}`.
    pub fn is_empty_object(&self) -> bool {
        self.0.get().trim() == "{}"
    }
}

/// The impls shared by the raw-JSON wrappers: `Debug` prints the text, equality
/// compares the text, and serde passes the raw value through untouched.
macro_rules! raw_json_impls {
    ($name:ident) => {
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.0.get())
            }
        }

        impl PartialEq for $name {
            fn eq(&self, other: &Self) -> bool {
                self.0.get() == other.0.get()
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                self.0.serialize(s)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                Box::<serde_json::value::RawValue>::deserialize(d).map($name)
            }
        }
    };
}

raw_json_impls!(RawProperties);

/// Removes Pulumi's color markup (`<{%reset%}>`, `<{%fg 1%}>`, ...) from a message.
///
/// The event log keeps the markup even with `--color never`; the `color`
/// field only says how the CLI rendered its own display.
///
/// ```
/// assert_eq!(lift_pulumi::plain_text("<{%fg 1%}>error<{%reset%}>: boom"), "error: boom");
/// ```
pub fn plain_text(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(start) = rest.find("<{%") {
        match rest[start..].find("%}>") {
            Some(end) => {
                out.push_str(&rest[..start]);
                rest = &rest[start + end + 3..];
            }
            None => break,
        }
    }
    out.push_str(rest);
    out
}

/// Declares a string enum whose unknown values are kept verbatim, so that a
/// newer CLI's values round-trip instead of failing or being lost.
macro_rules! open_string_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident { $( $(#[$vmeta:meta])* $variant:ident => $text:literal, )* }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )*
            /// A value this version of lift does not know, kept verbatim.
            Other(String),
        }

        impl $name {
            /// The text Pulumi writes for this value.
            pub fn as_str(&self) -> &str {
                match self {
                    $( $name::$variant => $text, )*
                    $name::Other(text) => text,
                }
            }

            /// Parses Pulumi's text; unknown text becomes `Other`.
            pub fn from_text(text: &str) -> Self {
                match text {
                    $( $text => $name::$variant, )*
                    other => $name::Other(other.to_owned()),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct TextVisitor;
                impl Visitor<'_> for TextVisitor {
                    type Value = $name;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str("a string")
                    }
                    fn visit_str<E: de::Error>(self, v: &str) -> Result<$name, E> {
                        Ok($name::from_text(v))
                    }
                }
                d.deserialize_str(TextVisitor)
            }
        }
    };
}

open_string_enum! {
    /// The operation a step performs (`deploy.StepOp` in the engine).
    pub enum OpType {
        /// Nothing changes.
        Same => "same",
        /// A new resource is created.
        Create => "create",
        /// An existing resource is updated in place.
        Update => "update",
        /// A resource is deleted.
        Delete => "delete",
        /// A resource is replaced (the logical step around create-replacement and delete-replaced).
        Replace => "replace",
        /// The new resource of a replacement is created.
        CreateReplacement => "create-replacement",
        /// The old resource of a replacement is deleted.
        DeleteReplaced => "delete-replaced",
        /// An external resource is read.
        Read => "read",
        /// An external resource is read again, replacing the old read.
        ReadReplacement => "read-replacement",
        /// A resource's state is refreshed from the provider.
        Refresh => "refresh",
        /// A read resource is removed from the state without deleting it.
        ReadDiscard => "discard",
        /// A replaced read resource is removed from the state.
        DiscardReplaced => "discard-replaced",
        /// A pending replacement is removed from the state.
        RemovePendingReplace => "remove-pending-replace",
        /// An existing resource is imported.
        Import => "import",
        /// An existing resource is imported as a replacement.
        ImportReplacement => "import-replacement",
    }
}

impl OpType {
    /// Whether the step changes anything (everything except `same`).
    pub fn is_change(&self) -> bool {
        !matches!(self, OpType::Same)
    }
}

open_string_enum! {
    /// The kind of a property difference.
    pub enum DiffKind {
        /// The property was added.
        Add => "add",
        /// The property was added and forces a replacement.
        AddReplace => "add-replace",
        /// The property was deleted.
        Delete => "delete",
        /// The property was deleted and forces a replacement.
        DeleteReplace => "delete-replace",
        /// The property was updated.
        Update => "update",
        /// The property was updated and forces a replacement.
        UpdateReplace => "update-replace",
    }
}

open_string_enum! {
    /// The severity of a diagnostic.
    pub enum Severity {
        /// Debug output.
        Debug => "debug",
        /// Informational output on stdout.
        Info => "info",
        /// Informational output on stderr.
        InfoErr => "info#err",
        /// A warning.
        Warning => "warning",
        /// An error.
        Error => "error",
    }
}

/// `cancelEvent`: the update was cancelled or finished. It is the last event of a stream.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CancelEvent {}

/// `stdoutEvent`: a message from the CLI itself.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StdoutEvent {
    /// The message.
    #[serde(default)]
    pub message: String,
    /// The color mode it was rendered with.
    #[serde(default)]
    pub color: String,
}

/// `diagnosticEvent`: a message from the engine, a provider or the program.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiagnosticEvent {
    /// The resource the message is about, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urn: Option<String>,
    /// A prefix such as `error: `.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// The message.
    #[serde(default)]
    pub message: String,
    /// The color mode it was rendered with.
    #[serde(default)]
    pub color: String,
    /// `info`, `info#err`, `warning`, `error` or `debug`.
    pub severity: Severity,
    /// The stream the message belongs to.
    #[serde(rename = "streamID", default, skip_serializing_if = "Option::is_none")]
    pub stream_id: Option<i64>,
    /// Whether the message is transient progress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ephemeral: Option<bool>,
}

/// `policyEvent`: a policy violation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyEvent {
    /// The resource that violated the policy, if it is a resource policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_urn: Option<String>,
    /// The violation message.
    #[serde(default)]
    pub message: String,
    /// The color mode it was rendered with.
    #[serde(default)]
    pub color: String,
    /// The policy's name.
    #[serde(default)]
    pub policy_name: String,
    /// The policy pack's name.
    #[serde(default)]
    pub policy_pack_name: String,
    /// The policy pack's version.
    #[serde(default)]
    pub policy_pack_version: String,
    /// The policy pack's version tag.
    #[serde(default)]
    pub policy_pack_version_tag: String,
    /// `advisory`, `mandatory`, `remediate` or `disabled`.
    #[serde(default)]
    pub enforcement_level: String,
    /// The policy's severity (`low`, `medium`, `high`, `critical`), written by newer CLIs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
}

/// `policyRemediationEvent`: a policy changed a resource's inputs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyRemediationEvent {
    /// The remediated resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_urn: Option<String>,
    /// The color mode it was rendered with.
    #[serde(default)]
    pub color: String,
    /// The policy's name.
    #[serde(default)]
    pub policy_name: String,
    /// The policy pack's name.
    #[serde(default)]
    pub policy_pack_name: String,
    /// The policy pack's version.
    #[serde(default)]
    pub policy_pack_version: String,
    /// The policy pack's version tag.
    #[serde(default)]
    pub policy_pack_version_tag: String,
    /// The inputs before the remediation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<PropertyMap>,
    /// The inputs after the remediation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<PropertyMap>,
}

/// `policyLoadEvent`: a policy pack started loading.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PolicyLoadEvent {}

/// `policyAnalyzeSummaryEvent` and `policyRemediateSummaryEvent`: which resource policies passed and failed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicySummaryEvent {
    /// The resource analyzed.
    #[serde(default)]
    pub resource_urn: String,
    /// The policy pack's name.
    #[serde(default)]
    pub policy_pack_name: String,
    /// The policy pack's version.
    #[serde(default)]
    pub policy_pack_version: String,
    /// The policy pack's version tag.
    #[serde(default)]
    pub policy_pack_version_tag: String,
    /// The policies that passed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passed: Option<Vec<String>>,
    /// The policies that failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<Vec<String>>,
}

/// `policyAnalyzeStackSummaryEvent`: which stack policies passed and failed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyStackSummaryEvent {
    /// The policy pack's name.
    #[serde(default)]
    pub policy_pack_name: String,
    /// The policy pack's version.
    #[serde(default)]
    pub policy_pack_version: String,
    /// The policy pack's version tag.
    #[serde(default)]
    pub policy_pack_version_tag: String,
    /// The policies that passed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passed: Option<Vec<String>>,
    /// The policies that failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<Vec<String>>,
}

/// `preludeEvent`: the start of an update, with its configuration (secrets blinded).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PreludeEvent {
    /// The configuration of the update. `None` when the CLI wrote `null`.
    #[serde(default)]
    pub config: Option<BTreeMap<String, String>>,
}

/// `summaryEvent`: the end of an update, with the engine's step counts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SummaryEvent {
    /// Whether a resource may be in an invalid state.
    #[serde(default)]
    pub maybe_corrupt: bool,
    /// How long the update ran, in whole seconds.
    #[serde(default)]
    pub duration_seconds: i64,
    /// Step counts by [`OpType`] text, counted the engine's way (providers included, a replacement counts once).
    #[serde(default)]
    pub resource_changes: Option<BTreeMap<String, i64>>,
    /// Policy packs that ran, name to version. Pulumi spells this field in PascalCase.
    #[serde(rename = "PolicyPacks", default)]
    pub policy_packs: Option<BTreeMap<String, String>>,
    /// Whether this was a preview. Older CLIs omit it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_preview: Option<bool>,
    /// `succeeded` or `failed`, written by newer CLIs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
}

/// One property's difference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PropertyDiff {
    /// The kind of difference.
    pub diff_kind: DiffKind,
    /// Whether the difference is between old and new inputs rather than old state and new inputs.
    #[serde(default)]
    pub input_diff: bool,
}

/// A step: a concrete action that moves a resource from one state to another.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StepEventMetadata {
    /// The operation.
    pub op: OpType,
    /// The resource's URN.
    #[serde(default)]
    pub urn: String,
    /// The resource's type token.
    #[serde(rename = "type", default)]
    pub resource_type: String,
    /// The state before the step, parsed on demand ([`RawState::parse`]).
    #[serde(default)]
    pub old: Option<RawState>,
    /// The state after the step, parsed on demand.
    #[serde(default)]
    pub new: Option<RawState>,
    /// Keys causing a replacement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keys: Option<Vec<String>>,
    /// Keys that changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diffs: Option<Vec<String>>,
    /// The detailed diff by property path. Pulumi distinguishes absent (older CLIs),
    /// `null` (no detailed diff) and a map, so this is `None`, `Some(None)` or `Some(Some(map))`.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub detailed_diff: Option<Option<BTreeMap<String, PropertyDiff>>>,
    /// Whether the step is a logical operation of the program.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logical: Option<bool>,
    /// The provider performing the step.
    #[serde(default)]
    pub provider: String,
}

/// Distinguishes a present `null` from an absent field (`#[serde(default)]` covers absence).
fn present<'de, T, D>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: Deserializer<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// A resource's state around a step ([`StepEventStateMetadata`]), kept as
/// the raw JSON text the CLI wrote until [`RawState::parse`] is called.
///
/// The states are most of a step event's fields and most readers (progress
/// display, the ledger) never look at them; parsing them lazily makes
/// reading an event log several times faster. The conformance test parses
/// every state of the fixture corpus, so the typed form is checked too.
#[derive(Clone)]
pub struct RawState(Box<serde_json::value::RawValue>);

impl RawState {
    /// The JSON text, exactly as written.
    pub fn get(&self) -> &str {
        self.0.get()
    }

    /// Parses the typed state.
    pub fn parse(&self) -> Result<StepEventStateMetadata, serde_json::Error> {
        serde_json::from_str(self.0.get())
    }
}

raw_json_impls!(RawState);

/// A resource's state around a step.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StepEventStateMetadata {
    /// The type token.
    #[serde(rename = "type", default)]
    pub resource_type: String,
    /// The URN.
    #[serde(default)]
    pub urn: String,
    /// Whether a provider plugin manages the resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom: Option<bool>,
    /// Whether the resource is pending deletion after a replacement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete: Option<bool>,
    /// The provider-assigned id, empty before creation.
    #[serde(default)]
    pub id: String,
    /// The parent URN, empty for none.
    #[serde(default)]
    pub parent: String,
    /// Whether the resource is protected from deletion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protect: Option<bool>,
    /// Whether the resource is tainted and will be replaced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub taint: Option<bool>,
    /// Whether the resource is kept when it is logically deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retain_on_delete: Option<bool>,
    /// Whether the resource is external (read, not managed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external: Option<bool>,
    /// The input properties (secrets filtered out by the engine), as raw JSON.
    #[serde(default)]
    pub inputs: Option<RawProperties>,
    /// The output properties, as raw JSON.
    #[serde(default)]
    pub outputs: Option<RawProperties>,
    /// The provider reference.
    #[serde(default)]
    pub provider: String,
    /// Errors met while initializing the resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_errors: Option<Vec<String>>,
    /// Property paths whose diffs are hidden from display.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hide_diffs: Option<Vec<String>>,
}

/// `resourcePreEvent`: a step is about to run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourcePreEvent {
    /// The step.
    pub metadata: StepEventMetadata,
    /// Whether this is a planned step of a preview.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub planning: Option<bool>,
}

/// `resOutputsEvent`: a step finished and the resource has its outputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResOutputsEvent {
    /// The step.
    pub metadata: StepEventMetadata,
    /// Whether this is a planned step of a preview.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub planning: Option<bool>,
}

/// `resOpFailedEvent`: a step failed. A diagnostic with the cause usually precedes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResOpFailedEvent {
    /// The step.
    pub metadata: StepEventMetadata,
    /// The resource status code.
    #[serde(default)]
    pub status: i64,
    /// The number of steps performed.
    #[serde(default)]
    pub steps: i64,
}

/// `startDebuggingEvent`: the program waits for a debugger.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StartDebuggingEvent {
    /// The debug configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<PropertyMap>,
}

/// `progressEvent`: a long-running engine task (a plugin download or install).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProgressEvent {
    /// `plugin-download` or `plugin-install`.
    #[serde(rename = "type", default)]
    pub progress_type: String,
    /// The task's id.
    #[serde(default)]
    pub id: String,
    /// A message.
    #[serde(default)]
    pub message: String,
    /// Items done so far. Pulumi names this field `received`.
    #[serde(rename = "received", default)]
    pub completed: i64,
    /// Items in total.
    #[serde(default)]
    pub total: i64,
    /// Whether the task finished.
    #[serde(default)]
    pub done: bool,
}

/// `errorEvent`: an internal engine error.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ErrorEvent {
    /// The error message.
    #[serde(default)]
    pub error: String,
}

/// What an [`EngineEvent`] carries: exactly one of Pulumi's event kinds.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum EventPayload {
    /// `cancelEvent`.
    Cancel(CancelEvent),
    /// `stdoutEvent`.
    Stdout(StdoutEvent),
    /// `diagnosticEvent`.
    Diagnostic(DiagnosticEvent),
    /// `preludeEvent`.
    Prelude(PreludeEvent),
    /// `summaryEvent`.
    Summary(SummaryEvent),
    /// `resourcePreEvent` (boxed: step events are large, the others small).
    ResourcePre(Box<ResourcePreEvent>),
    /// `resOutputsEvent`.
    ResOutputs(Box<ResOutputsEvent>),
    /// `resOpFailedEvent`.
    ResOpFailed(Box<ResOpFailedEvent>),
    /// `policyEvent`.
    Policy(PolicyEvent),
    /// `policyRemediationEvent`.
    PolicyRemediation(PolicyRemediationEvent),
    /// `policyLoadEvent`.
    PolicyLoad(PolicyLoadEvent),
    /// `policyAnalyzeSummaryEvent`.
    PolicyAnalyzeSummary(PolicySummaryEvent),
    /// `policyRemediateSummaryEvent`.
    PolicyRemediateSummary(PolicySummaryEvent),
    /// `policyAnalyzeStackSummaryEvent`.
    PolicyAnalyzeStackSummary(PolicyStackSummaryEvent),
    /// `startDebuggingEvent`.
    StartDebugging(StartDebuggingEvent),
    /// `progressEvent`.
    Progress(ProgressEvent),
    /// `errorEvent`.
    Error(ErrorEvent),
    /// A kind this version of lift does not know: every field other than
    /// `sequence` and `timestamp`, verbatim.
    Unknown(Map<String, Value>),
}

impl EventPayload {
    /// The JSON key Pulumi uses for this kind, or `None` for [`EventPayload::Unknown`].
    pub fn kind(&self) -> Option<&'static str> {
        Some(match self {
            EventPayload::Cancel(_) => "cancelEvent",
            EventPayload::Stdout(_) => "stdoutEvent",
            EventPayload::Diagnostic(_) => "diagnosticEvent",
            EventPayload::Prelude(_) => "preludeEvent",
            EventPayload::Summary(_) => "summaryEvent",
            EventPayload::ResourcePre(_) => "resourcePreEvent",
            EventPayload::ResOutputs(_) => "resOutputsEvent",
            EventPayload::ResOpFailed(_) => "resOpFailedEvent",
            EventPayload::Policy(_) => "policyEvent",
            EventPayload::PolicyRemediation(_) => "policyRemediationEvent",
            EventPayload::PolicyLoad(_) => "policyLoadEvent",
            EventPayload::PolicyAnalyzeSummary(_) => "policyAnalyzeSummaryEvent",
            EventPayload::PolicyRemediateSummary(_) => "policyRemediateSummaryEvent",
            EventPayload::PolicyAnalyzeStackSummary(_) => "policyAnalyzeStackSummaryEvent",
            EventPayload::StartDebugging(_) => "startDebuggingEvent",
            EventPayload::Progress(_) => "progressEvent",
            EventPayload::Error(_) => "errorEvent",
            EventPayload::Unknown(_) => return None,
        })
    }
}

/// One engine event: a sequence number, a timestamp and one payload.
///
/// Invariant: re-serializing a parsed event gives back the same JSON value
/// (fields Pulumi omits stay omitted, `null`s stay `null`, unknown top-level
/// fields are kept in [`EngineEvent::extra`]).
///
/// ```
/// use lift_pulumi::{EngineEvent, EventPayload};
///
/// let event: EngineEvent = serde_json::from_str(
///     r#"{"sequence":3,"timestamp":1677074634,"summaryEvent":{"maybeCorrupt":false,
///        "durationSeconds":2,"resourceChanges":{"create":2},"PolicyPacks":{}}}"#,
/// )?;
/// let EventPayload::Summary(summary) = &event.payload else { panic!("not a summary") };
/// assert_eq!(summary.resource_changes.as_ref().map(|c| c["create"]), Some(2));
///
/// let future: EngineEvent = serde_json::from_str(r#"{"sequence":4,"timestamp":0,"newKindEvent":{"x":1}}"#)?;
/// assert!(matches!(future.payload, EventPayload::Unknown(_)));
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct EngineEvent {
    /// A number that orders events. Event-log files from tests may repeat 0.
    pub sequence: i64,
    /// Unix time in seconds when the event was emitted.
    pub timestamp: i64,
    /// The event itself.
    pub payload: EventPayload,
    /// Top-level fields other than the payload, sequence and timestamp, kept verbatim.
    pub extra: Map<String, Value>,
}

impl EngineEvent {
    /// Whether this is the `cancelEvent` that ends a stream.
    pub fn is_cancel(&self) -> bool {
        matches!(self.payload, EventPayload::Cancel(_))
    }

    /// The summary, if this is a `summaryEvent`.
    pub fn summary(&self) -> Option<&SummaryEvent> {
        match &self.payload {
            EventPayload::Summary(summary) => Some(summary),
            _ => None,
        }
    }

    /// The step, if this is a resource event (pre, outputs or failed).
    pub fn step(&self) -> Option<&StepEventMetadata> {
        match &self.payload {
            EventPayload::ResourcePre(e) => Some(&e.metadata),
            EventPayload::ResOutputs(e) => Some(&e.metadata),
            EventPayload::ResOpFailed(e) => Some(&e.metadata),
            _ => None,
        }
    }
}

/// The top-level keys, matched on borrowed text so that parsing stays allocation-free here.
enum Key {
    Sequence,
    Timestamp,
    Payload(&'static str),
    Other(String),
}

const PAYLOAD_KEYS: [&str; 17] = [
    "cancelEvent",
    "stdoutEvent",
    "diagnosticEvent",
    "preludeEvent",
    "summaryEvent",
    "resourcePreEvent",
    "resOutputsEvent",
    "resOpFailedEvent",
    "policyEvent",
    "policyRemediationEvent",
    "policyLoadEvent",
    "policyAnalyzeSummaryEvent",
    "policyRemediateSummaryEvent",
    "policyAnalyzeStackSummaryEvent",
    "startDebuggingEvent",
    "progressEvent",
    "errorEvent",
];

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an engine event field name")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key, E> {
                Ok(match v {
                    "sequence" => Key::Sequence,
                    "timestamp" => Key::Timestamp,
                    other => match PAYLOAD_KEYS.iter().find(|k| **k == other) {
                        Some(key) => Key::Payload(key),
                        None => Key::Other(other.to_owned()),
                    },
                })
            }
        }
        d.deserialize_identifier(KeyVisitor)
    }
}

impl<'de> Deserialize<'de> for EngineEvent {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct EventVisitor;
        impl<'de> Visitor<'de> for EventVisitor {
            type Value = EngineEvent;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a Pulumi engine event object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<EngineEvent, A::Error> {
                let mut sequence = 0;
                let mut timestamp = 0;
                let mut payload: Option<EventPayload> = None;
                let mut extra = Map::new();
                while let Some(key) = map.next_key::<Key>()? {
                    match key {
                        Key::Sequence => sequence = map.next_value()?,
                        Key::Timestamp => timestamp = map.next_value()?,
                        Key::Payload(name) => {
                            if payload.is_some() {
                                // Go's struct has one pointer per kind and exactly one is set;
                                // a second kind is kept rather than dropped.
                                extra.insert(name.to_owned(), map.next_value::<Value>()?);
                                continue;
                            }
                            payload = Some(read_payload(name, &mut map)?);
                        }
                        Key::Other(name) => {
                            let value = map.next_value::<Value>()?;
                            extra.insert(name, value);
                        }
                    }
                }
                let payload = match payload {
                    Some(payload) => payload,
                    None => EventPayload::Unknown(std::mem::take(&mut extra)),
                };
                Ok(EngineEvent {
                    sequence,
                    timestamp,
                    payload,
                    extra,
                })
            }
        }
        d.deserialize_map(EventVisitor)
    }
}

fn read_payload<'de, A: MapAccess<'de>>(name: &str, map: &mut A) -> Result<EventPayload, A::Error> {
    Ok(match name {
        "cancelEvent" => EventPayload::Cancel(map.next_value()?),
        "stdoutEvent" => EventPayload::Stdout(map.next_value()?),
        "diagnosticEvent" => EventPayload::Diagnostic(map.next_value()?),
        "preludeEvent" => EventPayload::Prelude(map.next_value()?),
        "summaryEvent" => EventPayload::Summary(map.next_value()?),
        "resourcePreEvent" => EventPayload::ResourcePre(map.next_value()?),
        "resOutputsEvent" => EventPayload::ResOutputs(map.next_value()?),
        "resOpFailedEvent" => EventPayload::ResOpFailed(map.next_value()?),
        "policyEvent" => EventPayload::Policy(map.next_value()?),
        "policyRemediationEvent" => EventPayload::PolicyRemediation(map.next_value()?),
        "policyLoadEvent" => EventPayload::PolicyLoad(map.next_value()?),
        "policyAnalyzeSummaryEvent" => EventPayload::PolicyAnalyzeSummary(map.next_value()?),
        "policyRemediateSummaryEvent" => EventPayload::PolicyRemediateSummary(map.next_value()?),
        "policyAnalyzeStackSummaryEvent" => {
            EventPayload::PolicyAnalyzeStackSummary(map.next_value()?)
        }
        "startDebuggingEvent" => EventPayload::StartDebugging(map.next_value()?),
        "progressEvent" => EventPayload::Progress(map.next_value()?),
        "errorEvent" => EventPayload::Error(map.next_value()?),
        other => {
            let mut unknown = Map::new();
            unknown.insert(other.to_owned(), map.next_value::<Value>()?);
            EventPayload::Unknown(unknown)
        }
    })
}

impl Serialize for EngineEvent {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("sequence", &self.sequence)?;
        map.serialize_entry("timestamp", &self.timestamp)?;
        if let Some(key) = self.payload.kind() {
            match &self.payload {
                EventPayload::Cancel(e) => map.serialize_entry(key, e)?,
                EventPayload::Stdout(e) => map.serialize_entry(key, e)?,
                EventPayload::Diagnostic(e) => map.serialize_entry(key, e)?,
                EventPayload::Prelude(e) => map.serialize_entry(key, e)?,
                EventPayload::Summary(e) => map.serialize_entry(key, e)?,
                EventPayload::ResourcePre(e) => map.serialize_entry(key, e)?,
                EventPayload::ResOutputs(e) => map.serialize_entry(key, e)?,
                EventPayload::ResOpFailed(e) => map.serialize_entry(key, e)?,
                EventPayload::Policy(e) => map.serialize_entry(key, e)?,
                EventPayload::PolicyRemediation(e) => map.serialize_entry(key, e)?,
                EventPayload::PolicyLoad(e) => map.serialize_entry(key, e)?,
                EventPayload::PolicyAnalyzeSummary(e) => map.serialize_entry(key, e)?,
                EventPayload::PolicyRemediateSummary(e) => map.serialize_entry(key, e)?,
                EventPayload::PolicyAnalyzeStackSummary(e) => map.serialize_entry(key, e)?,
                EventPayload::StartDebugging(e) => map.serialize_entry(key, e)?,
                EventPayload::Progress(e) => map.serialize_entry(key, e)?,
                EventPayload::Error(e) => map.serialize_entry(key, e)?,
                EventPayload::Unknown(_) => {}
            }
        }
        if let EventPayload::Unknown(fields) = &self.payload {
            for (key, value) in fields {
                map.serialize_entry(key, value)?;
            }
        }
        for (key, value) in &self.extra {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(json: &str) -> EngineEvent {
        let event: EngineEvent = serde_json::from_str(json).unwrap();
        let original: Value = serde_json::from_str(json).unwrap();
        assert_eq!(serde_json::to_value(&event).unwrap(), original, "{json}");
        event
    }

    #[test]
    fn camel_case_fields_survive() {
        let event = round_trip(
            r#"{"sequence":1,"timestamp":2,"resourcePreEvent":{"metadata":{"op":"replace","urn":"u","type":"t",
            "old":{"type":"t","urn":"u","id":"1","parent":"","inputs":{},"outputs":{},"provider":"p","retainOnDelete":true,"initErrors":["boom"],"taint":true},
            "new":null,"keys":["a"],"diffs":["a"],"detailedDiff":{"a":{"diffKind":"update-replace","inputDiff":true}},"logical":true,"provider":"p"},"planning":true}}"#,
        );
        let step = event.step().unwrap();
        assert_eq!(step.op, OpType::Replace);
        let old = step.old.as_ref().unwrap().parse().unwrap();
        assert_eq!(old.retain_on_delete, Some(true));
        let inputs = old.inputs.as_ref().unwrap();
        assert!(inputs.is_empty_object());
        assert!(inputs.parse().unwrap().is_empty());
        assert_eq!(old.init_errors.as_deref(), Some(&["boom".to_owned()][..]));
        let diff = step.detailed_diff.as_ref().unwrap().as_ref().unwrap();
        assert_eq!(diff["a"].diff_kind, DiffKind::UpdateReplace);
    }

    #[test]
    fn detailed_diff_keeps_absent_null_and_map_apart() {
        let absent = round_trip(
            r#"{"sequence":0,"timestamp":0,"resOutputsEvent":{"metadata":{"op":"same","urn":"u","type":"t","old":null,"new":null,"provider":""}}}"#,
        );
        assert_eq!(absent.step().unwrap().detailed_diff, None);
        let null = round_trip(
            r#"{"sequence":0,"timestamp":0,"resOutputsEvent":{"metadata":{"op":"same","urn":"u","type":"t","old":null,"new":null,"detailedDiff":null,"provider":""}}}"#,
        );
        assert_eq!(null.step().unwrap().detailed_diff, Some(None));
    }

    #[test]
    fn unknown_kinds_and_values_are_kept() {
        let event = round_trip(
            r#"{"sequence":9,"timestamp":1,"quantumEvent":{"qubits":[1,2]},"traceId":"x"}"#,
        );
        let EventPayload::Unknown(fields) = &event.payload else {
            panic!("expected unknown")
        };
        assert!(fields.contains_key("quantumEvent"));
        let op = round_trip(
            r#"{"sequence":0,"timestamp":0,"resOpFailedEvent":{"metadata":{"op":"teleport","urn":"u","type":"t","old":null,"new":null,"provider":""},"status":1,"steps":0}}"#,
        );
        assert_eq!(op.step().unwrap().op, OpType::Other("teleport".into()));
        let extra = round_trip(r#"{"sequence":0,"timestamp":0,"cancelEvent":{},"traceId":"t"}"#);
        assert!(extra.is_cancel());
        assert_eq!(extra.extra["traceId"], "t");
    }

    #[test]
    fn every_known_kind_round_trips() {
        for line in [
            r#"{"sequence":1,"timestamp":1,"stdoutEvent":{"message":"hi","color":"never"}}"#,
            r#"{"sequence":1,"timestamp":1,"diagnosticEvent":{"urn":"u","prefix":"error: ","message":"m","color":"never","severity":"info#err","streamID":3,"ephemeral":true}}"#,
            r#"{"sequence":1,"timestamp":1,"policyEvent":{"resourceUrn":"u","message":"m","color":"c","policyName":"p","policyPackName":"pp","policyPackVersion":"1","policyPackVersionTag":"v1","enforcementLevel":"mandatory","severity":"high"}}"#,
            r#"{"sequence":1,"timestamp":1,"policyRemediationEvent":{"resourceUrn":"u","color":"c","policyName":"p","policyPackName":"pp","policyPackVersion":"1","policyPackVersionTag":"v1","before":{"a":1},"after":{"a":2}}}"#,
            r#"{"sequence":1,"timestamp":1,"policyLoadEvent":{}}"#,
            r#"{"sequence":1,"timestamp":1,"policyAnalyzeSummaryEvent":{"resourceUrn":"u","policyPackName":"pp","policyPackVersion":"1","policyPackVersionTag":"v1","passed":["a"],"failed":["b"]}}"#,
            r#"{"sequence":1,"timestamp":1,"policyRemediateSummaryEvent":{"resourceUrn":"u","policyPackName":"pp","policyPackVersion":"1","policyPackVersionTag":"v1","passed":["a"]}}"#,
            r#"{"sequence":1,"timestamp":1,"policyAnalyzeStackSummaryEvent":{"policyPackName":"pp","policyPackVersion":"1","policyPackVersionTag":"v1","failed":["b"]}}"#,
            r#"{"sequence":1,"timestamp":1,"startDebuggingEvent":{"config":{"port":1}}}"#,
            r#"{"sequence":1,"timestamp":1,"progressEvent":{"type":"plugin-download","id":"x","message":"m","received":10,"total":20,"done":false}}"#,
            r#"{"sequence":1,"timestamp":1,"errorEvent":{"error":"engine bug"}}"#,
            r#"{"sequence":1,"timestamp":1,"preludeEvent":{"config":{"aws:region":"us-east-1"}}}"#,
            r#"{"sequence":1,"timestamp":1,"summaryEvent":{"maybeCorrupt":true,"durationSeconds":3,"resourceChanges":{"create":1},"PolicyPacks":{"p":"v1"},"isPreview":false,"result":"failed"}}"#,
        ] {
            let event = round_trip(line);
            assert!(event.payload.kind().is_some(), "{line}");
        }
    }

    #[test]
    fn non_objects_are_errors_not_panics() {
        assert!(serde_json::from_str::<EngineEvent>("[1,2]").is_err());
        assert!(serde_json::from_str::<EngineEvent>(r#"{"sequence":"x"}"#).is_err());
        assert!(
            serde_json::from_str::<EngineEvent>(r#"{"sequence":1,"diagnosticEvent":{}}"#).is_err()
        );
    }
}
