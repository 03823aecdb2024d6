//! What a project config file (the lift CLI's `lift.toml`) says about an
//! environment's secret store. The CLI reads the file and hands these values
//! to the store; the library never reads files or variables for them.

use std::path::PathBuf;

/// The `[environments.NAME.secrets]` table: a file store, or AWS Secrets Manager.
///
/// ```
/// let settings: lift_secrets::StoreSettings =
///     serde_json::from_str(r#"{"path": ".lift/secrets", "key_file": ".lift/secrets.key"}"#)?;
/// assert_eq!(settings.path.as_deref(), Some(std::path::Path::new(".lift/secrets")));
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct StoreSettings {
    /// The file store's directory.
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// The file store's key file (32 bytes or more).
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// Keep the file store unencrypted (development only; production-class
    /// environments refuse it).
    #[serde(default)]
    pub plaintext: bool,
    /// Use AWS Secrets Manager instead of a file store.
    #[serde(default)]
    pub aws: Option<AwsStoreSettings>,
}

/// The `aws` table of a store: where in AWS Secrets Manager the secrets live.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct AwsStoreSettings {
    /// The AWS region (default: the SDK's chain, `AWS_REGION` and the profile).
    #[serde(default)]
    pub region: Option<String>,
    /// A prefix for every secret name, such as `prod/`.
    #[serde(default)]
    pub prefix: Option<String>,
    /// A different endpoint, such as a local emulator.
    #[serde(default)]
    pub endpoint_url: Option<String>,
}
