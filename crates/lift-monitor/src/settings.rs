//! What a project config file (the lift CLI's `lift.toml`) says about an
//! environment's health endpoints.

/// The `[environments.NAME.health]` table.
///
/// ```
/// let settings: lift_monitor::HealthSettings =
///     serde_json::from_str(r#"{"url": "http://127.0.0.1:8080/health"}"#)?;
/// assert!(settings.url.is_some());
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct HealthSettings {
    /// The service's health endpoint, which `lift health` checks by default.
    #[serde(default)]
    pub url: Option<String>,
}
