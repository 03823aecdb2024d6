//! The deployment contract, so that user code can mock deployments.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::{Result, SecretValue};

/// How a deployment operation ended.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum DeployResult {
    /// Every step succeeded.
    Succeeded,
    /// At least one step failed.
    Failed,
    /// The operation was cancelled.
    Cancelled,
}

/// A summary of a preview, up, refresh or destroy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploySummary {
    /// The operation: `preview`, `up`, `refresh` or `destroy`.
    pub operation: String,
    /// How it ended.
    pub result: DeployResult,
    /// Step counts by operation (`create`, `update`, `same`, ...), as the engine counts them.
    pub resource_changes: BTreeMap<String, u64>,
    /// How long it took.
    pub duration: Duration,
}

/// A stack output.
#[derive(Debug, Clone, PartialEq)]
pub enum OutputValue {
    /// A plain value.
    Plain(serde_json::Value),
    /// A secret value, kept redacted until exposed.
    Secret(SecretValue),
}

impl OutputValue {
    /// Whether the output is secret.
    pub fn is_secret(&self) -> bool {
        matches!(self, OutputValue::Secret(_))
    }
}

/// Something that deploys a stack: lift-pulumi's stack, or a mock in user tests.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait::async_trait]
pub trait Deployer: Send + Sync {
    /// Computes the changes without applying them.
    async fn preview(&self) -> Result<DeploySummary>;
    /// Applies the changes.
    async fn up(&self) -> Result<DeploySummary>;
    /// Deletes every resource of the stack.
    async fn destroy(&self) -> Result<DeploySummary>;
    /// The stack's outputs, secret ones wrapped.
    async fn outputs(&self) -> Result<BTreeMap<String, OutputValue>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn deployments_can_be_mocked() {
        let mut mock = MockDeployer::new();
        mock.expect_outputs().returning(|| {
            let mut outputs = BTreeMap::new();
            outputs.insert("url".to_owned(), OutputValue::Plain("https://x".into()));
            outputs.insert(
                "key".to_owned(),
                OutputValue::Secret(SecretValue::from("k")),
            );
            Ok(outputs)
        });
        let outputs = mock.outputs().await.unwrap();
        assert!(outputs["key"].is_secret());
        assert!(!outputs["url"].is_secret());
        assert!(!format!("{outputs:?}").contains("\"k\""));
    }
}
