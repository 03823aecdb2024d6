//! The secrets provider contract ([`SecretsProvider`]), modelled on AWS Secrets Manager: version ids, staging labels, put options and outcomes, descriptions.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};

use crate::{Error, ErrorKind, Result, SecretName, SecretValue};

/// A version id: the client's idempotency token, or a generated UUID.
///
/// Valid ids are 1 to 64 characters of `A-Za-z0-9-_`, which covers AWS's
/// `ClientRequestToken` (32 to 64 characters) and UUIDs.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, schemars::JsonSchema,
)]
#[serde(transparent)]
pub struct VersionId(String);

impl VersionId {
    /// Validates `id`.
    pub fn new(id: impl Into<String>) -> Result<Self> {
        let id = id.into();
        let valid = !id.is_empty()
            && id.len() <= 64
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if valid {
            Ok(VersionId(id))
        } else {
            Err(Error::invalid_input(format!(
                "invalid version id {:?}: use 1 to 64 characters of A-Za-z0-9-_",
                id.chars().take(70).collect::<String>()
            )))
        }
    }

    /// A fresh random (v4) UUID.
    pub fn random() -> Self {
        VersionId(uuid::Uuid::new_v4().to_string())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for VersionId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        VersionId::new(s)
    }
}

impl<'de> serde::Deserialize<'de> for VersionId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        VersionId::new(String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for VersionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A staging label. A label sits on at most one version of a secret.
///
/// ```
/// use lift_core::StageLabel;
/// assert_eq!(StageLabel::current().as_str(), "AWSCURRENT");
/// assert!("my-label".parse::<StageLabel>().is_ok());
/// ```
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, schemars::JsonSchema,
)]
#[serde(transparent)]
pub struct StageLabel(String);

impl StageLabel {
    /// The label of the version in use.
    pub const CURRENT: &'static str = "AWSCURRENT";
    /// The label of the version being rotated in.
    pub const PENDING: &'static str = "AWSPENDING";
    /// The label of the version that was current before the last rotation.
    pub const PREVIOUS: &'static str = "AWSPREVIOUS";

    /// Validates a label: 1 to 256 characters of `A-Za-z0-9_.@-` (AWS's limits).
    pub fn new(label: impl Into<String>) -> Result<Self> {
        let label = label.into();
        let valid = !label.is_empty()
            && label.len() <= 256
            && label
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.@-".contains(c));
        if valid {
            Ok(StageLabel(label))
        } else {
            Err(Error::invalid_input(format!(
                "invalid staging label {:?}: use 1 to 256 characters of A-Za-z0-9_.@-",
                label.chars().take(70).collect::<String>()
            )))
        }
    }

    /// `AWSCURRENT`.
    pub fn current() -> Self {
        StageLabel(Self::CURRENT.to_owned())
    }

    /// `AWSPENDING`.
    pub fn pending() -> Self {
        StageLabel(Self::PENDING.to_owned())
    }

    /// `AWSPREVIOUS`.
    pub fn previous() -> Self {
        StageLabel(Self::PREVIOUS.to_owned())
    }

    /// The label as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is `AWSCURRENT`.
    pub fn is_current(&self) -> bool {
        self.0 == Self::CURRENT
    }
}

impl FromStr for StageLabel {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        StageLabel::new(s)
    }
}

impl<'de> serde::Deserialize<'de> for StageLabel {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        StageLabel::new(String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for StageLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Which version of a secret to read.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum VersionSelector {
    /// The version that holds this label.
    Stage(StageLabel),
    /// This exact version.
    Version(VersionId),
}

impl Default for VersionSelector {
    /// `AWSCURRENT`, as in AWS.
    fn default() -> Self {
        VersionSelector::Stage(StageLabel::current())
    }
}

impl fmt::Display for VersionSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VersionSelector::Stage(label) => write!(f, "stage {label}"),
            VersionSelector::Version(id) => write!(f, "version {id}"),
        }
    }
}

/// One version of a secret, with its value.
///
/// `Debug` is safe to print: the value is redacted.
#[derive(Debug, Clone)]
pub struct SecretVersion {
    /// The secret's name.
    pub name: SecretName,
    /// This version's id.
    pub version_id: VersionId,
    /// The labels on this version.
    pub stages: Vec<StageLabel>,
    /// When this version was written.
    pub created_at: DateTime<Utc>,
    /// The value.
    pub value: SecretValue,
}

/// Options of [`SecretsProvider::put`].
///
/// Built with [`Default`] and the setters named after each field; the fields can be
/// read, and the struct is `#[non_exhaustive]` so that options can be added without
/// breaking callers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PutOptions {
    /// The idempotency token, which becomes the version id. A random UUID when `None`.
    pub token: Option<VersionId>,
    /// The labels to put on the new version. `None` means `[AWSCURRENT]`, as in AWS.
    pub stages: Option<Vec<StageLabel>>,
}

impl PutOptions {
    /// Options with an idempotency token.
    #[must_use]
    pub fn token(mut self, token: VersionId) -> Self {
        self.token = Some(token);
        self
    }

    /// Options with explicit labels.
    #[must_use]
    pub fn stages(mut self, stages: Vec<StageLabel>) -> Self {
        self.stages = Some(stages);
        self
    }
}

/// What a put did.
#[derive(
    Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct PutOutcome {
    /// The version written, or found when the token had been used with the same value.
    pub version_id: VersionId,
    /// The labels the version carries after the put.
    pub stages: Vec<StageLabel>,
    /// `false` when an identical put with the same token had already happened.
    pub created: bool,
}

/// A version's metadata, without its value.
#[derive(
    Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct VersionInfo {
    /// The version id.
    pub version_id: VersionId,
    /// Its labels, possibly none.
    pub stages: Vec<StageLabel>,
    /// When it was written.
    pub created_at: DateTime<Utc>,
}

/// A secret's metadata: versions and their labels, never values.
#[derive(
    Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct SecretDescription {
    /// The name.
    pub name: SecretName,
    /// When the secret was created.
    pub created_at: DateTime<Utc>,
    /// When a version or label last changed.
    pub last_changed_at: DateTime<Utc>,
    /// When the secret will be (or was scheduled to be) deleted, if it is soft-deleted.
    pub deletion_date: Option<DateTime<Utc>>,
    /// The versions, newest first.
    pub versions: Vec<VersionInfo>,
}

impl SecretDescription {
    /// The version that holds `label`.
    pub fn version_with(&self, label: &str) -> Option<&VersionInfo> {
        self.versions
            .iter()
            .find(|v| v.stages.iter().any(|s| s.as_str() == label))
    }

    /// Whether a rotation is in progress: AWSPENDING sits on a version that is not AWSCURRENT.
    pub fn rotation_in_progress(&self) -> bool {
        match (
            self.version_with(StageLabel::PENDING),
            self.version_with(StageLabel::CURRENT),
        ) {
            (Some(pending), Some(current)) => pending.version_id != current.version_id,
            (Some(_), None) => true,
            _ => false,
        }
    }
}

/// One line of [`SecretsProvider::list`].
#[derive(
    Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct SecretSummary {
    /// The name.
    pub name: SecretName,
    /// When a version or label last changed.
    pub last_changed_at: DateTime<Utc>,
    /// Set when the secret is soft-deleted.
    pub deletion_date: Option<DateTime<Utc>>,
}

/// How to delete a secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteMode {
    /// Soft delete: the secret can be restored within the window (7 to 30 days in AWS).
    Recoverable {
        /// The recovery window in days.
        recovery_window_days: u32,
    },
    /// Delete now, with no way back.
    Force,
}

impl Default for DeleteMode {
    /// A 30-day recovery window, AWS's default.
    fn default() -> Self {
        DeleteMode::Recoverable {
            recovery_window_days: 30,
        }
    }
}

/// A staging label move, like AWS's `UpdateSecretVersionStage`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageMove {
    /// The label to move.
    pub stage: StageLabel,
    /// The version to put the label on, or `None` to only remove it.
    pub to: Option<VersionId>,
    /// The version that must hold the label now, or `None` when it is on no version.
    pub from: Option<VersionId>,
}

/// Storage of versioned, staged secrets: a file store, AWS Secrets Manager, or memory.
///
/// The semantics are AWS Secrets Manager's, so that a workflow tested on one
/// provider behaves the same on another:
/// - every put creates a version; a repeated token with the same value is a
///   no-op, with a different value it is a [`ErrorKind::Conflict`];
/// - a label sits on at most one version; moving `AWSCURRENT` moves
///   `AWSPREVIOUS` to the version that held it;
/// - errors never contain secret values.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait::async_trait]
pub trait SecretsProvider: Send + Sync {
    /// Reads a version by label or id.
    async fn get(&self, name: &SecretName, selector: &VersionSelector) -> Result<SecretVersion>;

    /// Writes a new version, creating the secret when it is absent.
    async fn put(
        &self,
        name: &SecretName,
        value: &SecretValue,
        options: &PutOptions,
    ) -> Result<PutOutcome>;

    /// Lists secrets, including soft-deleted ones (see [`SecretSummary::deletion_date`]).
    async fn list(&self) -> Result<Vec<SecretSummary>>;

    /// Describes a secret's versions and labels.
    async fn describe(&self, name: &SecretName) -> Result<SecretDescription>;

    /// Deletes a secret, softly or for good.
    async fn delete(&self, name: &SecretName, mode: DeleteMode) -> Result<SecretDescription>;

    /// Moves (or removes) a staging label.
    async fn move_stage(&self, name: &SecretName, stage_move: &StageMove) -> Result<()>;

    /// Cancels a soft delete. Providers that cannot restore return an `Unavailable` error.
    async fn restore(&self, name: &SecretName) -> Result<()> {
        Err(Error::new(
            ErrorKind::Unavailable,
            format!("this provider cannot restore deleted secret {name}"),
        ))
    }
}

#[async_trait::async_trait]
impl<T: SecretsProvider + ?Sized> SecretsProvider for std::sync::Arc<T> {
    async fn get(&self, name: &SecretName, selector: &VersionSelector) -> Result<SecretVersion> {
        (**self).get(name, selector).await
    }
    async fn put(
        &self,
        name: &SecretName,
        value: &SecretValue,
        options: &PutOptions,
    ) -> Result<PutOutcome> {
        (**self).put(name, value, options).await
    }
    async fn list(&self) -> Result<Vec<SecretSummary>> {
        (**self).list().await
    }
    async fn describe(&self, name: &SecretName) -> Result<SecretDescription> {
        (**self).describe(name).await
    }
    async fn delete(&self, name: &SecretName, mode: DeleteMode) -> Result<SecretDescription> {
        (**self).delete(name, mode).await
    }
    async fn move_stage(&self, name: &SecretName, stage_move: &StageMove) -> Result<()> {
        (**self).move_stage(name, stage_move).await
    }
    async fn restore(&self, name: &SecretName) -> Result<()> {
        (**self).restore(name).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(id: &str, stages: &[&str]) -> VersionInfo {
        VersionInfo {
            version_id: VersionId::new(id).unwrap(),
            stages: stages
                .iter()
                .map(|s| StageLabel::new(*s).unwrap())
                .collect(),
            created_at: Utc::now(),
        }
    }

    fn description(versions: Vec<VersionInfo>) -> SecretDescription {
        SecretDescription {
            name: SecretName::new("db").unwrap(),
            created_at: Utc::now(),
            last_changed_at: Utc::now(),
            deletion_date: None,
            versions,
        }
    }

    #[test]
    fn rotation_in_progress_follows_aws_rule() {
        let idle = description(vec![info("v1", &["AWSCURRENT", "AWSPENDING"])]);
        assert!(
            !idle.rotation_in_progress(),
            "pending on current is not a rotation"
        );
        let rotating = description(vec![
            info("v2", &["AWSPENDING"]),
            info("v1", &["AWSCURRENT"]),
        ]);
        assert!(rotating.rotation_in_progress());
        assert_eq!(
            rotating
                .version_with("AWSCURRENT")
                .map(|v| v.version_id.as_str()),
            Some("v1")
        );
    }

    #[test]
    fn ids_and_labels_are_validated() {
        assert!(VersionId::new("").is_err());
        assert!(VersionId::new("a".repeat(65)).is_err());
        assert!(VersionId::new("../x").is_err());
        assert_eq!(VersionId::random().as_str().len(), 36);
        assert!(StageLabel::new("").is_err());
        assert!(StageLabel::new("has space").is_err());
        assert!(StageLabel::current().is_current());
        let bad: std::result::Result<StageLabel, _> = serde_json::from_str("\"a b\"");
        assert!(bad.is_err());
    }

    #[test]
    fn default_selector_is_current() {
        assert_eq!(
            VersionSelector::default(),
            VersionSelector::Stage(StageLabel::current())
        );
        assert_eq!(VersionSelector::default().to_string(), "stage AWSCURRENT");
    }

    #[tokio::test]
    async fn mock_provider_is_usable_through_arc() {
        let mut mock = MockSecretsProvider::new();
        mock.expect_list().returning(|| Ok(Vec::new()));
        let provider: std::sync::Arc<dyn SecretsProvider> = std::sync::Arc::new(mock);
        assert!(provider.list().await.unwrap().is_empty());
    }
}
