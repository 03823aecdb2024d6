//! What the rotation engine remembers about each secret: the rotation in
//! progress (its checkpoint), the bounded history, the schedule, the declared
//! kind and the enable switch. The stores that keep it are in `rotation_store.rs`.

use std::collections::VecDeque;
use std::fmt;

use chrono::{DateTime, Utc};
use lift_core::{ErrorKind, VersionId};

use crate::generate::ValueKind;

/// The four steps of a rotation, in order, as AWS's rotation template names them.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum RotationStep {
    /// Write the new value as AWSPENDING.
    CreateSecret,
    /// Change the credential in the target system.
    SetSecret,
    /// Prove that the new credential works.
    TestSecret,
    /// Move AWSCURRENT to the new version.
    FinishSecret,
}

impl RotationStep {
    /// Every step, in order.
    pub const ALL: [RotationStep; 4] = [
        RotationStep::CreateSecret,
        RotationStep::SetSecret,
        RotationStep::TestSecret,
        RotationStep::FinishSecret,
    ];

    /// AWS's name: `createSecret`, `setSecret`, `testSecret`, `finishSecret`.
    pub fn as_str(self) -> &'static str {
        match self {
            RotationStep::CreateSecret => "createSecret",
            RotationStep::SetSecret => "setSecret",
            RotationStep::TestSecret => "testSecret",
            RotationStep::FinishSecret => "finishSecret",
        }
    }

    /// The snake_case name used in audit actions.
    pub fn snake(self) -> &'static str {
        match self {
            RotationStep::CreateSecret => "create_secret",
            RotationStep::SetSecret => "set_secret",
            RotationStep::TestSecret => "test_secret",
            RotationStep::FinishSecret => "finish_secret",
        }
    }

    /// The step after this one.
    pub fn next(self) -> Option<RotationStep> {
        match self {
            RotationStep::CreateSecret => Some(RotationStep::SetSecret),
            RotationStep::SetSecret => Some(RotationStep::TestSecret),
            RotationStep::TestSecret => Some(RotationStep::FinishSecret),
            RotationStep::FinishSecret => None,
        }
    }

    /// Parses AWS's or the snake_case name.
    pub fn parse(s: &str) -> Option<RotationStep> {
        RotationStep::ALL
            .into_iter()
            .find(|step| step.as_str().eq_ignore_ascii_case(s) || step.snake() == s)
    }
}

impl fmt::Display for RotationStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A rotation in progress, persisted before each next step starts.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct RotationCheckpoint {
    /// The rotation's id, which is also the audit correlation id.
    pub rotation_id: String,
    /// The new version's id (the idempotency token of createSecret).
    pub token: VersionId,
    /// The version that held AWSCURRENT when the rotation started.
    pub old_version: Option<VersionId>,
    /// The last step that completed, or `None` when none has yet.
    pub step_reached: Option<RotationStep>,
    /// When the rotation started.
    pub started_at: DateTime<Utc>,
    /// The kind the caller asked for or the secret declared; `None` for a password
    /// ([`ValueKind::rotation_default`]).
    pub kind: Option<ValueKind>,
    /// The field to rotate in a JSON key/value secret (`password` when `None`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// How a rotation ended.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum RotationOutcome {
    /// AWSCURRENT moved to the new version.
    Succeeded,
    /// A step failed; AWSCURRENT is untouched.
    Failed,
    /// Cancelled on request; AWSPENDING was removed.
    Cancelled,
}

/// One entry of a secret's rotation history. It holds ids and outcomes, never values
/// (nor hashes or prefixes of values).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct RotationRecord {
    /// The rotation's id.
    pub rotation_id: String,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When this record was written.
    pub finished_at: DateTime<Utc>,
    /// The last step that completed.
    pub step_reached: Option<RotationStep>,
    /// How it ended.
    pub outcome: RotationOutcome,
    /// The step that failed, if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_step: Option<RotationStep>,
    /// The error, if it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The error's kind, if it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_kind: Option<ErrorKind>,
    /// Whether the failure was injected by a fault plan.
    #[serde(default)]
    pub injected: bool,
    /// Whether AWSPENDING stays for a resume (failed rotations only).
    #[serde(default)]
    pub resumable: bool,
    /// The version that was AWSCURRENT before.
    pub old_version: Option<VersionId>,
    /// The version the rotation created.
    pub new_version: Option<VersionId>,
}

/// When a secret is due for rotation.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct RotationSchedule {
    /// Rotate every this many days (1 to 1000, AWS's range).
    pub every_days: u32,
}

/// Everything the engine keeps about one secret.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct RotationState {
    /// The rotation in progress.
    #[serde(default)]
    pub checkpoint: Option<RotationCheckpoint>,
    /// Past rotations, oldest first, bounded by the engine's history limit.
    #[serde(default)]
    pub history: VecDeque<RotationRecord>,
    /// The schedule, if any.
    #[serde(default)]
    pub schedule: Option<RotationSchedule>,
    /// Whether rotation is enabled for this secret.
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
    /// When the last rotation succeeded.
    #[serde(default)]
    pub last_rotated_at: Option<DateTime<Utc>>,
    /// The kind of value rotations generate for this secret, declared with
    /// [`crate::RotationEngine::set_kind`] or by a rotation given a kind.
    /// Without one, rotations generate a password; nothing is guessed from the old value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<ValueKind>,
    /// When the secret this state belongs to was created. A secret deleted and created
    /// again under the same name does not inherit the state of the old one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_created_at: Option<DateTime<Utc>>,
}

fn enabled_by_default() -> bool {
    true
}

impl Default for RotationState {
    fn default() -> Self {
        RotationState {
            checkpoint: None,
            history: VecDeque::new(),
            schedule: None,
            enabled: true,
            last_rotated_at: None,
            kind: None,
            secret_created_at: None,
        }
    }
}

impl RotationState {
    /// Appends a record, dropping the oldest beyond `limit`.
    pub(crate) fn push_history(&mut self, record: RotationRecord, limit: usize) {
        self.history.push_back(record);
        while self.history.len() > limit.max(1) {
            self.history.pop_front();
        }
    }
}
