//! [`AwsSecretsManagerProvider`]: the [`SecretsProvider`] contract on AWS Secrets Manager.
//!
//! The mapping onto the API:
//!
//! | trait method | API call |
//! | --- | --- |
//! | `get` | `GetSecretValue` by `VersionStage` or `VersionId` |
//! | `put` | `PutSecretValue`; when the secret is absent, `CreateSecret` without a value first |
//! | `describe` | `DescribeSecret` and `ListSecretVersionIds` (for each version's creation time) |
//! | `list` | `ListSecrets`, paginated, including secrets scheduled for deletion |
//! | `move_stage` | `UpdateSecretVersionStage` |
//! | `delete` | `DeleteSecret` with a recovery window, or `ForceDeleteWithoutRecovery` |
//! | `restore` | `RestoreSecret` |
//!
//! Region, endpoint and credentials come from the standard AWS chain
//! (environment, profile, SSO, IMDS); [`AwsSecretsManagerProviderBuilder`]
//! overrides the region and the endpoint URL (for emulators and VPC
//! endpoints) and sets an optional name prefix. Throttling and 5xx answers
//! are retried with the SDK's standard retry policy before they surface as
//! [`ErrorKind::Unavailable`].

use std::collections::BTreeMap;

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::config::http::HttpResponse;
use aws_sdk_secretsmanager::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_secretsmanager::primitives::{Blob, DateTime as AwsDateTime};
use chrono::{DateTime, Utc};
use lift_core::{
    Classify, DeleteMode, ErrorKind, PutOptions, PutOutcome, SecretDescription, SecretName,
    SecretSummary, SecretValue, SecretVersion, SecretsProvider, StageLabel, StageMove, VersionId,
    VersionInfo, VersionSelector,
};
use tracing::instrument;

/// Errors of the AWS Secrets Manager provider. Messages carry the API's error code and message, never a value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AwsError {
    /// The API answered with an error.
    #[error("aws secrets manager {operation} on {secret} failed: {code}: {message}")]
    Service {
        /// The API operation, for example `GetSecretValue`.
        operation: &'static str,
        /// The secret's full name (prefix included).
        secret: String,
        /// The error code, for example `ResourceNotFoundException`.
        code: String,
        /// The service's message.
        message: String,
        /// The classification derived from the code.
        kind: ErrorKind,
    },
    /// The caller's IAM policy does not allow the call.
    #[error(
        "aws secrets manager refused {operation} on {secret}: the caller is not allowed the IAM action {action} ({code}: {message}); grant {action} on the secret (docs/operations.md lists the actions each lift operation needs)"
    )]
    AccessDenied {
        /// The API operation, for example `UpdateSecretVersionStage`.
        operation: &'static str,
        /// The IAM action that was refused, for example `secretsmanager:UpdateSecretVersionStage`.
        action: String,
        /// The secret's full name (prefix included).
        secret: String,
        /// The error code, for example `AccessDeniedException`.
        code: String,
        /// The service's message.
        message: String,
    },
    /// The check made before a rotation's first write found actions the caller's IAM
    /// policy does not allow; nothing was changed.
    #[error(
        "rotating {secret} needs IAM actions that the policy of {principal} does not allow: {actions} (checked with iam:SimulatePrincipalPolicy before anything was changed; the secret is as it was); grant them on the secret (docs/operations.md lists the actions each lift operation needs)"
    )]
    PreflightDenied {
        /// The secret's full name (prefix included).
        secret: String,
        /// The principal whose policy was simulated.
        principal: String,
        /// The refused actions, comma-separated.
        actions: String,
    },
    /// The request did not reach the service, or its answer could not be read.
    #[error(
        "aws secrets manager {operation} on {secret} could not complete: {detail}; check the region, endpoint URL and network"
    )]
    Transport {
        /// The API operation.
        operation: &'static str,
        /// The secret's full name.
        secret: String,
        /// What went wrong.
        detail: String,
        /// `Timeout` or `Unavailable`.
        kind: ErrorKind,
    },
    /// The service answered with something lift cannot use.
    #[error("aws secrets manager {operation} on {secret} returned an unusable answer: {detail}")]
    Malformed {
        /// The API operation.
        operation: &'static str,
        /// The secret's full name.
        secret: String,
        /// What is wrong with the answer.
        detail: String,
    },
}

impl Classify for AwsError {
    fn kind(&self) -> ErrorKind {
        match self {
            AwsError::Service { kind, .. } | AwsError::Transport { kind, .. } => *kind,
            AwsError::AccessDenied { .. } | AwsError::PreflightDenied { .. } => {
                ErrorKind::PermissionDenied
            }
            AwsError::Malformed { .. } => ErrorKind::External,
        }
    }
}

impl From<AwsError> for lift_core::Error {
    fn from(err: AwsError) -> Self {
        lift_core::Error::from_classified(err)
    }
}

/// Classifies an API error code as the issue tracker of every SDK user would.
fn classify_code(code: &str, http_status: Option<u16>) -> ErrorKind {
    match code {
        "ResourceNotFoundException" => ErrorKind::NotFound,
        "ResourceExistsException" => ErrorKind::AlreadyExists,
        // A pending rotation, a secret scheduled for deletion, a stage on the wrong version.
        "InvalidRequestException" | "PreconditionNotMetException" => ErrorKind::Conflict,
        "InvalidParameterException"
        | "MalformedPolicyDocumentException"
        | "InvalidNextTokenException"
        | "ValidationException" => ErrorKind::InvalidInput,
        "AccessDeniedException"
        | "AccessDenied"
        | "UnrecognizedClientException"
        | "InvalidSignatureException"
        | "ExpiredTokenException"
        | "DecryptionFailure"
        | "EncryptionFailure" => ErrorKind::PermissionDenied,
        "LimitExceededException"
        | "ThrottlingException"
        | "Throttling"
        | "TooManyRequestsException"
        | "InternalServiceError"
        | "InternalFailure"
        | "ServiceUnavailable" => ErrorKind::Unavailable,
        _ => match http_status {
            Some(status) if status >= 500 => ErrorKind::Unavailable,
            Some(429) => ErrorKind::Unavailable,
            Some(403) => ErrorKind::PermissionDenied,
            Some(404) => ErrorKind::NotFound,
            _ => ErrorKind::External,
        },
    }
}

/// Classifies a service error by its code and, where one code covers unlike cases, its message.
///
/// `InvalidRequestException` covers a secret scheduled for deletion as well as a
/// transient conflict. A deleted secret is [`ErrorKind::FailedPrecondition`], as on
/// the file and memory stores: retrying does not bring it back, and a cache must not
/// take it for an outage and keep serving the (perhaps revoked) value.
fn classify_service_error(code: &str, message: &str, http_status: Option<u16>) -> ErrorKind {
    let lower = message.to_ascii_lowercase();
    // AWS says "marked for deletion"; moto says "marked deleted".
    if code == "InvalidRequestException"
        && (lower.contains("deletion") || lower.contains("deleted"))
    {
        return ErrorKind::FailedPrecondition;
    }
    classify_code(code, http_status)
}

fn sdk_error<E>(operation: &'static str, secret: &str, err: SdkError<E, HttpResponse>) -> AwsError
where
    E: ProvideErrorMetadata + std::error::Error,
{
    match &err {
        SdkError::ServiceError(service) => {
            let inner = service.err();
            let code = inner.code().unwrap_or("Unknown").to_owned();
            let status = http_status(&err);
            let message = inner.message().unwrap_or("no message").to_owned();
            // An IAM refusal names the action (every Secrets Manager operation is the
            // action of the same name), so that the operator knows what to grant.
            // moto answers with a body the SDK cannot parse, so a bare 403 counts too.
            if matches!(code.as_str(), "AccessDeniedException" | "AccessDenied")
                || (code == "Unknown" && status == Some(403))
            {
                return AwsError::AccessDenied {
                    operation,
                    action: format!("secretsmanager:{operation}"),
                    secret: secret.to_owned(),
                    code,
                    message,
                };
            }
            AwsError::Service {
                operation,
                secret: secret.to_owned(),
                kind: classify_service_error(&code, &message, status),
                message,
                code,
            }
        }
        SdkError::TimeoutError(_) => AwsError::Transport {
            operation,
            secret: secret.to_owned(),
            detail: "the request timed out".to_owned(),
            kind: ErrorKind::Timeout,
        },
        SdkError::DispatchFailure(failure) => AwsError::Transport {
            operation,
            secret: secret.to_owned(),
            detail: format!("the request could not be sent ({failure:?})"),
            kind: ErrorKind::Unavailable,
        },
        SdkError::ResponseError(_) => AwsError::Transport {
            operation,
            secret: secret.to_owned(),
            detail: "the response could not be read".to_owned(),
            kind: ErrorKind::Unavailable,
        },
        SdkError::ConstructionFailure(_) => AwsError::Transport {
            operation,
            secret: secret.to_owned(),
            detail:
                "the request could not be built; check the credentials and region configuration"
                    .to_owned(),
            kind: ErrorKind::InvalidInput,
        },
        _ => AwsError::Transport {
            operation,
            secret: secret.to_owned(),
            detail: "unclassified SDK error".to_owned(),
            kind: ErrorKind::External,
        },
    }
}

fn http_status<E>(err: &SdkError<E, HttpResponse>) -> Option<u16> {
    err.raw_response().map(|raw| raw.status().as_u16())
}

fn to_chrono(time: Option<&AwsDateTime>) -> Option<DateTime<Utc>> {
    let time = time?;
    DateTime::<Utc>::from_timestamp(time.secs(), time.subsec_nanos())
}

/// Configures an [`AwsSecretsManagerProvider`].
#[derive(Debug, Clone, Default)]
pub struct AwsSecretsManagerProviderBuilder {
    region: Option<String>,
    endpoint_url: Option<String>,
    prefix: String,
    static_credentials: Option<(String, String)>,
}

impl AwsSecretsManagerProviderBuilder {
    /// Overrides the region of the standard chain.
    #[must_use]
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// Sends requests to this endpoint (an emulator, a VPC endpoint).
    #[must_use]
    pub fn endpoint_url(mut self, url: impl Into<String>) -> Self {
        self.endpoint_url = Some(url.into());
        self
    }

    /// Prepends `prefix` to every name on the way in and strips it on the way out;
    /// `list` shows only names under the prefix. For example `myapp/`.
    #[must_use]
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Uses fixed credentials instead of the standard chain. Meant for local
    /// emulators such as moto, whose credentials are placeholders; in AWS, let
    /// the standard chain find a role.
    #[must_use]
    pub fn static_credentials(
        mut self,
        access_key_id: impl Into<String>,
        secret_access_key: impl Into<String>,
    ) -> Self {
        self.static_credentials = Some((access_key_id.into(), secret_access_key.into()));
        self
    }

    /// Loads the standard AWS configuration chain with these overrides.
    pub async fn build(self) -> AwsSecretsManagerProvider {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if let Some(region) = self.region {
            loader = loader.region(aws_config::Region::new(region));
        }
        if let Some(url) = self.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        if let Some((key_id, secret)) = self.static_credentials {
            loader = loader.credentials_provider(aws_credential_types::Credentials::new(
                key_id,
                secret,
                None,
                None,
                "lift-static",
            ));
        }
        let config = loader.load().await;
        AwsSecretsManagerProvider {
            client: Client::new(&config),
            prefix: self.prefix,
            identity: Some(Identity {
                sts: aws_sdk_sts::Client::new(&config),
                iam: aws_sdk_iam::Client::new(&config),
            }),
        }
    }
}

/// AWS Secrets Manager behind the [`SecretsProvider`] contract, so that the rotation engine,
/// the cache and the CLI work against AWS unchanged.
///
/// Values that are valid UTF-8 are stored as `SecretString`, others as `SecretBinary`.
#[derive(Debug, Clone)]
pub struct AwsSecretsManagerProvider {
    client: Client,
    prefix: String,
    /// For the rotation pre-check; absent on a provider made [`from_client`](Self::from_client).
    identity: Option<Identity>,
}

/// The clients that learn who the caller is and what its IAM policy allows.
#[derive(Debug, Clone)]
struct Identity {
    sts: aws_sdk_sts::Client,
    iam: aws_sdk_iam::Client,
}

/// The Secrets Manager actions a rotation calls, in the order it first calls them.
pub const ROTATION_ACTIONS: [&str; 5] = [
    "secretsmanager:DescribeSecret",
    "secretsmanager:ListSecretVersionIds",
    "secretsmanager:GetSecretValue",
    "secretsmanager:PutSecretValue",
    "secretsmanager:UpdateSecretVersionStage",
];

/// The IAM principal whose policies `SimulatePrincipalPolicy` evaluates for the caller
/// `arn` (from `GetCallerIdentity`): a user as it is, an assumed role's session as its role.
///
/// A role with a path cannot be told from its session ARN; simulating it then fails
/// with `NoSuchEntity`, and the pre-check is skipped.
fn policy_source_arn(caller: &str) -> Option<String> {
    let mut parts = caller.splitn(6, ':');
    let (Some("arn"), Some(partition), Some(service), Some(_region), Some(account), Some(resource)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    match service {
        "iam" if resource.starts_with("user/") || resource.starts_with("role/") => {
            Some(caller.to_owned())
        }
        "sts" => {
            let role = resource.strip_prefix("assumed-role/")?.split('/').next()?;
            Some(format!("arn:{partition}:iam::{account}:role/{role}"))
        }
        _ => None,
    }
}

impl AwsSecretsManagerProvider {
    /// A builder: region, endpoint URL and prefix on top of the standard chain.
    pub fn builder() -> AwsSecretsManagerProviderBuilder {
        AwsSecretsManagerProviderBuilder::default()
    }

    /// A provider on an existing SDK client.
    pub fn from_client(client: Client, prefix: impl Into<String>) -> Self {
        AwsSecretsManagerProvider {
            client,
            prefix: prefix.into(),
            identity: None,
        }
    }

    fn full_name(&self, name: &SecretName) -> String {
        format!("{}{}", self.prefix, name.as_str())
    }

    async fn version_infos(&self, secret_id: &str) -> Result<Vec<VersionInfo>, AwsError> {
        let mut versions = Vec::new();
        let mut pages = self
            .client
            .list_secret_version_ids()
            .secret_id(secret_id)
            .include_deprecated(true)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|err| sdk_error("ListSecretVersionIds", secret_id, err))?;
            for entry in page.versions() {
                let Some(id) = entry.version_id() else {
                    continue;
                };
                let version_id = VersionId::new(id).map_err(|err| AwsError::Malformed {
                    operation: "ListSecretVersionIds",
                    secret: secret_id.to_owned(),
                    detail: err.to_string(),
                })?;
                versions.push(VersionInfo {
                    version_id,
                    stages: labels("ListSecretVersionIds", secret_id, entry.version_stages())?,
                    created_at: to_chrono(entry.created_date()).unwrap_or_default(),
                });
            }
        }
        versions.sort_by_key(|v| std::cmp::Reverse(v.created_at));
        Ok(versions)
    }

    async fn describe_full(&self, name: &SecretName) -> Result<SecretDescription, AwsError> {
        let secret_id = self.full_name(name);
        let described = self
            .client
            .describe_secret()
            .secret_id(&secret_id)
            .send()
            .await
            .map_err(|err| sdk_error("DescribeSecret", &secret_id, err))?;
        let mut versions = self.version_infos(&secret_id).await?;
        // DescribeSecret's VersionIdsToStages is authoritative for labels.
        let stages = described
            .version_ids_to_stages()
            .cloned()
            .unwrap_or_default();
        for version in &mut versions {
            if let Some(labels_of) = stages.get(version.version_id.as_str()) {
                version.stages = labels("DescribeSecret", &secret_id, labels_of)?;
            }
        }
        let created_at = to_chrono(described.created_date()).unwrap_or_default();
        Ok(SecretDescription {
            name: name.clone(),
            created_at,
            last_changed_at: to_chrono(described.last_changed_date()).unwrap_or(created_at),
            deletion_date: to_chrono(described.deleted_date()),
            versions,
        })
    }

    async fn put_value(
        &self,
        secret_id: &str,
        value: &SecretValue,
        token: &VersionId,
        stages: Option<&[StageLabel]>,
    ) -> Result<aws_sdk_secretsmanager::operation::put_secret_value::PutSecretValueOutput, AwsError>
    {
        let mut request = self
            .client
            .put_secret_value()
            .secret_id(secret_id)
            .client_request_token(token.as_str());
        request = match value.expose_str() {
            Some(text) => request.secret_string(text),
            None => request.secret_binary(Blob::new(value.expose())),
        };
        if let Some(stages) = stages {
            request = request
                .set_version_stages(Some(stages.iter().map(|s| s.as_str().to_owned()).collect()));
        }
        request.send().await.map_err(|err| {
            let mut mapped = sdk_error("PutSecretValue", secret_id, err);
            // The same token with a different value: versions are immutable.
            if let AwsError::Service { code, kind, .. } = &mut mapped {
                if code == "ResourceExistsException" {
                    *kind = ErrorKind::Conflict;
                }
            }
            mapped
        })
    }
}

fn labels(
    operation: &'static str,
    secret: &str,
    raw: &[String],
) -> Result<Vec<StageLabel>, AwsError> {
    raw.iter()
        .map(|label| {
            StageLabel::new(label.as_str()).map_err(|err| AwsError::Malformed {
                operation,
                secret: secret.to_owned(),
                detail: err.to_string(),
            })
        })
        .collect()
}

impl AwsSecretsManagerProvider {
    /// Turns AWS's own rotation of the secret off (`CancelRotateSecret`), so that lift
    /// can rotate it without racing a rotation Lambda.
    pub async fn disable_native_rotation(&self, name: &SecretName) -> lift_core::Result<()> {
        let secret_id = self.full_name(name);
        self.client
            .cancel_rotate_secret()
            .secret_id(&secret_id)
            .send()
            .await
            .map_err(|err| sdk_error("CancelRotateSecret", &secret_id, err))?;
        Ok(())
    }
}

/// AWS's own rotation: `RotationEnabled`, with its Lambda and `RotationRules`.
#[async_trait::async_trait]
impl crate::NativeRotation for AwsSecretsManagerProvider {
    async fn other_rotator(&self, name: &SecretName) -> lift_core::Result<Option<String>> {
        let secret_id = self.full_name(name);
        let described = self
            .client
            .describe_secret()
            .secret_id(&secret_id)
            .send()
            .await
            .map_err(|err| sdk_error("DescribeSecret", &secret_id, err))?;
        if described.rotation_enabled() != Some(true) {
            return Ok(None);
        }
        let mut who = "AWS Secrets Manager's own rotation".to_owned();
        if let Some(arn) = described.rotation_lambda_arn() {
            who.push_str(&format!(" (Lambda {arn})"));
        }
        if let Some(rules) = described.rotation_rules() {
            if let Some(expression) = rules.schedule_expression() {
                who.push_str(&format!(", scheduled {expression}"));
            } else if let Some(days) = rules.automatically_after_days() {
                who.push_str(&format!(", every {days} days"));
            }
        }
        Ok(Some(who))
    }
}

/// The rotation pre-check: `GetCallerIdentity`, then `SimulatePrincipalPolicy` of the
/// rotation's actions on the secret's ARN, before anything is written.
#[async_trait::async_trait]
impl crate::RotationPreflight for AwsSecretsManagerProvider {
    #[instrument(skip(self), fields(secret = %name))]
    async fn check_rotation(&self, name: &SecretName) -> lift_core::Result<()> {
        let secret_id = self.full_name(name);
        let Some(identity) = &self.identity else {
            tracing::debug!(secret = %secret_id, "IAM pre-check skipped: the provider was made from a client");
            return Ok(());
        };
        // A read, which the rotation makes first anyway: a refusal here changes nothing.
        let described = self
            .client
            .describe_secret()
            .secret_id(&secret_id)
            .send()
            .await
            .map_err(|err| sdk_error("DescribeSecret", &secret_id, err))?;
        let Some(secret_arn) = described.arn() else {
            tracing::debug!(secret = %secret_id, "IAM pre-check skipped: DescribeSecret returned no ARN");
            return Ok(());
        };
        let caller = match identity.sts.get_caller_identity().send().await {
            Ok(output) => output.arn().map(str::to_owned),
            Err(err) => {
                tracing::debug!(secret = %secret_id, error = %err.into_service_error(), "IAM pre-check skipped: sts:GetCallerIdentity failed");
                return Ok(());
            }
        };
        let Some(principal) = caller.as_deref().and_then(policy_source_arn) else {
            tracing::debug!(secret = %secret_id, caller = ?caller, "IAM pre-check skipped: the caller is not an IAM user or role");
            return Ok(());
        };
        let simulated = identity
            .iam
            .simulate_principal_policy()
            .policy_source_arn(&principal)
            .set_action_names(Some(
                ROTATION_ACTIONS.iter().map(|a| (*a).to_owned()).collect(),
            ))
            .resource_arns(secret_arn)
            .send()
            .await;
        let output = match simulated {
            Ok(output) => output,
            Err(err) => {
                // Denied (the caller may not simulate its own policy), not implemented by
                // an emulator, or an endpoint that serves Secrets Manager only.
                tracing::debug!(secret = %secret_id, principal = %principal, error = %err.into_service_error(), "IAM pre-check skipped: iam:SimulatePrincipalPolicy failed");
                return Ok(());
            }
        };
        let refused = refused_actions(output.evaluation_results().iter().map(|result| {
            (
                result.eval_action_name(),
                result.eval_decision()
                    == &aws_sdk_iam::types::PolicyEvaluationDecisionType::Allowed,
            )
        }));
        if refused.is_empty() {
            tracing::debug!(secret = %secret_id, principal = %principal, "IAM pre-check passed");
            return Ok(());
        }
        Err(AwsError::PreflightDenied {
            secret: secret_id,
            principal,
            actions: refused.join(", "),
        }
        .into())
    }
}

/// The actions of a simulation whose decision is not `allowed`, in [`ROTATION_ACTIONS`] order.
fn refused_actions<'a>(results: impl Iterator<Item = (&'a str, bool)>) -> Vec<String> {
    let denied: Vec<&str> = results
        .filter(|(_, allowed)| !allowed)
        .map(|(action, _)| action)
        .collect();
    ROTATION_ACTIONS
        .iter()
        .filter(|action| denied.iter().any(|d| d.eq_ignore_ascii_case(action)))
        .map(|action| (*action).to_owned())
        .collect()
}

#[async_trait::async_trait]
impl SecretsProvider for AwsSecretsManagerProvider {
    #[instrument(skip(self), fields(secret = %name, selector = %selector))]
    async fn get(
        &self,
        name: &SecretName,
        selector: &VersionSelector,
    ) -> lift_core::Result<SecretVersion> {
        let secret_id = self.full_name(name);
        let request = self.client.get_secret_value().secret_id(&secret_id);
        let request = match selector {
            VersionSelector::Stage(stage) => request.version_stage(stage.as_str()),
            VersionSelector::Version(id) => request.version_id(id.as_str()),
        };
        let output = request
            .send()
            .await
            .map_err(|err| sdk_error("GetSecretValue", &secret_id, err))?;
        let malformed = |detail: String| AwsError::Malformed {
            operation: "GetSecretValue",
            secret: secret_id.clone(),
            detail,
        };
        let mut output = output;
        // Take the SDK's strings rather than copy them: moved into a SecretValue, they
        // are wiped when it drops instead of lingering in freed memory.
        let value = match (output.secret_string.take(), output.secret_binary.take()) {
            (Some(text), _) => SecretValue::from(text),
            (None, Some(blob)) => SecretValue::new(blob.into_inner()),
            (None, None) => return Err(malformed("the version holds no value".to_owned()).into()),
        };
        let version_id = VersionId::new(output.version_id().unwrap_or_default())
            .map_err(|e| malformed(e.to_string()))?;
        Ok(SecretVersion {
            name: name.clone(),
            version_id,
            stages: labels("GetSecretValue", &secret_id, output.version_stages())?,
            created_at: to_chrono(output.created_date()).unwrap_or_default(),
            value,
        })
    }

    #[instrument(skip(self, value), fields(secret = %name))]
    async fn put(
        &self,
        name: &SecretName,
        value: &SecretValue,
        options: &PutOptions,
    ) -> lift_core::Result<PutOutcome> {
        let secret_id = self.full_name(name);
        let token = options.token.clone().unwrap_or_else(VersionId::random);
        let stages = options.stages.as_deref();
        // Knowing whether the token was used before tells a replay from a new version.
        let existed = if options.token.is_some() {
            match self.describe_full(name).await {
                Ok(description) => description.versions.iter().any(|v| v.version_id == token),
                Err(err) if err.kind() == ErrorKind::NotFound => false,
                Err(err) => return Err(err.into()),
            }
        } else {
            false
        };
        let output = match self.put_value(&secret_id, value, &token, stages).await {
            Err(err) if err.kind() == ErrorKind::NotFound => {
                // Create the secret without a value, so that the first version
                // gets exactly the labels asked for, then put the value.
                match self.client.create_secret().name(&secret_id).send().await {
                    Ok(_) => {}
                    Err(err) => {
                        let err = sdk_error("CreateSecret", &secret_id, err);
                        if err.kind() != ErrorKind::AlreadyExists {
                            return Err(err.into());
                        }
                    }
                }
                self.put_value(&secret_id, value, &token, stages).await?
            }
            other => other?,
        };
        let version_id =
            VersionId::new(output.version_id().unwrap_or(token.as_str())).map_err(|err| {
                AwsError::Malformed {
                    operation: "PutSecretValue",
                    secret: secret_id.clone(),
                    detail: err.to_string(),
                }
            })?;
        Ok(PutOutcome {
            version_id,
            stages: labels("PutSecretValue", &secret_id, output.version_stages())?,
            created: !existed,
        })
    }

    #[instrument(skip(self))]
    async fn list(&self) -> lift_core::Result<Vec<SecretSummary>> {
        let mut request = self.client.list_secrets().include_planned_deletion(true);
        if !self.prefix.is_empty() {
            request = request.filters(
                aws_sdk_secretsmanager::types::Filter::builder()
                    .key(aws_sdk_secretsmanager::types::FilterNameStringType::Name)
                    .values(&self.prefix)
                    .build(),
            );
        }
        let mut pages = request.into_paginator().send();
        let mut summaries = BTreeMap::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|err| sdk_error("ListSecrets", &self.prefix, err))?;
            for entry in page.secret_list() {
                let Some(full) = entry.name() else { continue };
                let Some(short) = full.strip_prefix(&self.prefix) else {
                    continue;
                };
                // Secrets whose names lift cannot represent are skipped, not misreported.
                let Ok(name) = SecretName::new(short) else {
                    tracing::debug!(
                        secret = full,
                        "skipping a secret whose name is not a valid lift secret name"
                    );
                    continue;
                };
                let created = to_chrono(entry.created_date()).unwrap_or_default();
                summaries.insert(
                    name.clone(),
                    SecretSummary {
                        name,
                        last_changed_at: to_chrono(entry.last_changed_date()).unwrap_or(created),
                        deletion_date: to_chrono(entry.deleted_date()),
                    },
                );
            }
        }
        Ok(summaries.into_values().collect())
    }

    #[instrument(skip(self), fields(secret = %name))]
    async fn describe(&self, name: &SecretName) -> lift_core::Result<SecretDescription> {
        Ok(self.describe_full(name).await?)
    }

    #[instrument(skip(self), fields(secret = %name))]
    async fn delete(
        &self,
        name: &SecretName,
        mode: DeleteMode,
    ) -> lift_core::Result<SecretDescription> {
        let secret_id = self.full_name(name);
        let mut description = self.describe_full(name).await?;
        let request = self.client.delete_secret().secret_id(&secret_id);
        let request = match mode {
            DeleteMode::Recoverable {
                recovery_window_days,
            } => request.recovery_window_in_days(i64::from(recovery_window_days)),
            DeleteMode::Force => request.force_delete_without_recovery(true),
        };
        let output = request
            .send()
            .await
            .map_err(|err| sdk_error("DeleteSecret", &secret_id, err))?;
        description.deletion_date = to_chrono(output.deletion_date()).or(Some(Utc::now()));
        Ok(description)
    }

    #[instrument(skip(self), fields(secret = %name, stage = %stage_move.stage))]
    async fn move_stage(&self, name: &SecretName, stage_move: &StageMove) -> lift_core::Result<()> {
        let secret_id = self.full_name(name);
        self.client
            .update_secret_version_stage()
            .secret_id(&secret_id)
            .version_stage(stage_move.stage.as_str())
            .set_move_to_version_id(stage_move.to.as_ref().map(|v| v.as_str().to_owned()))
            .set_remove_from_version_id(stage_move.from.as_ref().map(|v| v.as_str().to_owned()))
            .send()
            .await
            .map_err(|err| {
                let mut mapped = sdk_error("UpdateSecretVersionStage", &secret_id, err);
                // AWS reports a label that is not where `RemoveFromVersionId` says as an
                // invalid parameter; it is a failed compare-and-set, a conflict, as in the file store.
                if let AwsError::Service {
                    code,
                    message,
                    kind,
                    ..
                } = &mut mapped
                {
                    let lower = message.to_ascii_lowercase();
                    if code == "InvalidParameterException"
                        && lower.contains("stage")
                        && lower.contains("version")
                    {
                        *kind = ErrorKind::Conflict;
                    }
                }
                mapped
            })?;
        Ok(())
    }

    #[instrument(skip(self), fields(secret = %name))]
    async fn restore(&self, name: &SecretName) -> lift_core::Result<()> {
        let secret_id = self.full_name(name);
        self.client
            .restore_secret()
            .secret_id(&secret_id)
            .send()
            .await
            .map_err(|err| sdk_error("RestoreSecret", &secret_id, err))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_simulated_principal_is_the_user_or_the_role() {
        assert_eq!(
            policy_source_arn("arn:aws:iam::123456789012:user/ci").as_deref(),
            Some("arn:aws:iam::123456789012:user/ci")
        );
        assert_eq!(
            policy_source_arn("arn:aws:sts::123456789012:assumed-role/deployer/session-1")
                .as_deref(),
            Some("arn:aws:iam::123456789012:role/deployer")
        );
        assert_eq!(
            policy_source_arn("arn:aws-cn:sts::123456789012:assumed-role/r/s").as_deref(),
            Some("arn:aws-cn:iam::123456789012:role/r")
        );
        assert_eq!(policy_source_arn("arn:aws:iam::123456789012:root"), None);
        assert_eq!(policy_source_arn("not an arn"), None);
    }

    #[test]
    fn refused_actions_are_named_in_rotation_order() {
        let results = [
            ("secretsmanager:UpdateSecretVersionStage", false),
            ("secretsmanager:GetSecretValue", true),
            ("secretsmanager:PutSecretValue", false),
        ];
        assert_eq!(
            refused_actions(results.into_iter()),
            [
                "secretsmanager:PutSecretValue",
                "secretsmanager:UpdateSecretVersionStage"
            ]
        );
        assert!(refused_actions([("secretsmanager:PutSecretValue", true)].into_iter()).is_empty());
        let err = AwsError::PreflightDenied {
            secret: "db".into(),
            principal: "arn:aws:iam::1:user/ci".into(),
            actions: "secretsmanager:PutSecretValue".into(),
        };
        assert_eq!(err.kind(), ErrorKind::PermissionDenied);
        assert!(err.to_string().contains("secretsmanager:PutSecretValue"));
    }

    #[test]
    fn codes_map_to_the_shared_kinds() {
        assert_eq!(
            classify_code("ResourceNotFoundException", Some(400)),
            ErrorKind::NotFound
        );
        assert_eq!(
            classify_code("InvalidRequestException", Some(400)),
            ErrorKind::Conflict
        );
        assert_eq!(
            classify_code("AccessDeniedException", Some(400)),
            ErrorKind::PermissionDenied
        );
        assert_eq!(
            classify_code("ThrottlingException", Some(400)),
            ErrorKind::Unavailable
        );
        assert_eq!(
            classify_code("InvalidParameterException", Some(400)),
            ErrorKind::InvalidInput
        );
        assert_eq!(
            classify_code("SomethingNew", Some(503)),
            ErrorKind::Unavailable
        );
        assert_eq!(
            classify_code("SomethingNew", Some(400)),
            ErrorKind::External
        );
        assert_eq!(
            classify_service_error(
                "InvalidRequestException",
                "You can't perform this operation on the secret because it was marked for deletion.",
                Some(400)
            ),
            ErrorKind::FailedPrecondition
        );
        assert_eq!(
            classify_service_error(
                "InvalidRequestException",
                "You tried to perform the operation on a secret that's currently marked deleted.",
                Some(400)
            ),
            ErrorKind::FailedPrecondition
        );
        assert_eq!(
            classify_service_error("InvalidRequestException", "rotation in progress", Some(400)),
            ErrorKind::Conflict
        );
    }
}
