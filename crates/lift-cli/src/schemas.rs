//! The JSON Schemas of lift's public JSON documents, rendered by `cargo xtask codegen`.

use schemars::Schema;

/// Every public JSON document, as `(file stem, schema)`, in a stable order.
///
/// Each `--json` output of the CLI is listed under the command that prints it.
pub fn json_schemas() -> Vec<(&'static str, Schema)> {
    use schemars::schema_for;
    vec![
        // Every command, on failure.
        ("error", schema_for!(crate::output::ErrorDocument)),
        // lift deploy.
        ("deploy", schema_for!(crate::deploy::DeployDocument)),
        (
            "deploy-failure",
            schema_for!(crate::deploy::DeployFailureDocument),
        ),
        (
            "deploy-outputs",
            schema_for!(crate::deploy::OutputsDocument),
        ),
        (
            "deploy-history",
            schema_for!(crate::deploy::HistoryDocument),
        ),
        (
            "deploy-stack-action",
            schema_for!(crate::deploy::StackActionDocument),
        ),
        ("deploy-config", schema_for!(crate::deploy::ConfigDocument)),
        ("deploy-stacks", schema_for!(crate::deploy::StacksDocument)),
        ("deploy-tags", schema_for!(crate::deploy::TagsDocument)),
        // lift health.
        ("health-report", schema_for!(lift::monitor::HealthReport)),
        ("health-json", schema_for!(lift::monitor::HealthJson)),
        // lift secrets.
        ("secrets-put", schema_for!(lift::PutOutcome)),
        (
            "secrets-get",
            schema_for!(crate::secret_document::SecretValueDocument),
        ),
        ("secrets-list", schema_for!(Vec<lift::SecretSummary>)),
        ("secret-description", schema_for!(lift::SecretDescription)),
        (
            "secrets-rotation-report",
            schema_for!(lift::secrets::RotationReport),
        ),
        (
            "secrets-history",
            schema_for!(Vec<lift::secrets::RotationRecord>),
        ),
        // lift audit, and the audit log's own records.
        ("audit-event", schema_for!(lift::AuditEvent)),
        ("audit-record", schema_for!(lift::audit::Record)),
        ("audit-checkpoint", schema_for!(lift::audit::Checkpoint)),
        ("audit-manifest", schema_for!(lift::audit::Manifest)),
        (
            "audit-verify-report",
            schema_for!(lift::audit::VerifyReport),
        ),
        ("audit-query", schema_for!(lift::audit::QueryDocument)),
        // lift demo.
        ("demo", schema_for!(crate::demo::report::DemoReport)),
        // lift env, and the project config file it reads.
        (
            "env-list",
            schema_for!(crate::environments::EnvListDocument),
        ),
        (
            "env-show",
            schema_for!(crate::environments::EnvShowDocument),
        ),
        ("lift-toml", schema_for!(crate::project::ProjectConfig)),
        // Health check outcomes, as every component reports them.
        ("check-outcome", schema_for!(lift::CheckOutcome)),
    ]
}
