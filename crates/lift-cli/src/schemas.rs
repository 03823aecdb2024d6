//! The JSON Schemas of lift's public JSON documents, rendered by `cargo xtask codegen`.

use schemars::Schema;

/// The JSON document printed on failure under `--json`.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
pub(crate) struct ErrorDocument {
    /// The error.
    pub(crate) error: ErrorBody,
}

/// The body of an [`ErrorDocument`].
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
pub(crate) struct ErrorBody {
    /// The classification.
    pub(crate) kind: lift::ErrorKind,
    /// What failed and what to do.
    pub(crate) message: String,
}

/// Every public JSON document, as `(file stem, schema)`, in a stable order.
pub fn json_schemas() -> Vec<(&'static str, Schema)> {
    vec![
        ("error", schemars::schema_for!(ErrorDocument)),
        ("audit-event", schemars::schema_for!(lift::AuditEvent)),
        ("check-outcome", schemars::schema_for!(lift::CheckOutcome)),
        (
            "secret-description",
            schemars::schema_for!(lift::SecretDescription),
        ),
    ]
}
