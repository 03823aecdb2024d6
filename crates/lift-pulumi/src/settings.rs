//! What a project config file (the lift CLI's `lift.toml`) says about an
//! environment's Pulumi stack. The CLI reads the file and builds the
//! [`Workspace`](crate::Workspace) with these values.

use std::path::PathBuf;

/// The `[environments.NAME.deploy]` table.
///
/// ```
/// let settings: lift_pulumi::DeploySettings =
///     serde_json::from_str(r#"{"project_dir": "infra", "stack": "prod"}"#)?;
/// assert_eq!(settings.stack.as_deref(), Some("prod"));
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct DeploySettings {
    /// The Pulumi project directory (the one with `Pulumi.yaml`).
    #[serde(default)]
    pub project_dir: Option<PathBuf>,
    /// The stack: `stack`, `org/stack` or `org/project/stack`.
    #[serde(default)]
    pub stack: Option<String>,
    /// The state backend, such as `s3://bucket/prefix` or `file://~/.pulumi-state`.
    #[serde(default)]
    pub backend_url: Option<String>,
}
