//! The JSON documents of `lift deploy --json`, and how results become them.
//! Keys are camelCase, as in the pulumi documents they mirror (see docs/cli.md).

use std::collections::BTreeMap;

use lift::pulumi::{ConfigValue, Ledger, OpResult, Operation, ResourceStatus};
use lift::{DeployResult, OutputValue, SecretValue};
use serde::Serialize;

use crate::output::ErrorBody;

/// `lift deploy preview|up|refresh|destroy --json`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub(crate) struct DeployDocument {
    /// The stack.
    pub(crate) stack: String,
    /// `preview`, `up`, `refresh` or `destroy`.
    pub(crate) operation: String,
    /// The engine's summary.
    pub(crate) summary: SummaryDocument,
    /// One entry per resource touched.
    pub(crate) resources: Vec<ResourceDocument>,
    /// The stack outputs after the operation (empty for preview and destroy).
    pub(crate) outputs: BTreeMap<String, OutputDocument>,
    /// The stack version the operation produced (null for preview).
    pub(crate) version: Option<u64>,
    /// The update's console link, when the backend has one.
    pub(crate) permalink: Option<String>,
    /// What went wrong after the operation completed (reading outputs or history); the operation itself is done.
    pub(crate) warnings: Vec<String>,
}

/// The summary of a [`DeployDocument`].
#[derive(Debug, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SummaryDocument {
    /// `succeeded`, `failed` or `cancelled`.
    pub(crate) result: DeployResult,
    /// Step counts by operation, as the engine counts them.
    pub(crate) resource_changes: BTreeMap<String, u64>,
    /// Wall-clock seconds.
    pub(crate) duration_seconds: f64,
}

/// One resource of a [`DeployDocument`].
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub(crate) struct ResourceDocument {
    /// The URN.
    pub(crate) urn: String,
    /// The type token.
    #[serde(rename = "type")]
    pub(crate) resource_type: String,
    /// The operation (`create`, `update`, `replace`, `delete`, `same`, ...).
    pub(crate) op: String,
    /// `succeeded`, `failed`, or `unfinished` (the operation ended before the
    /// engine reported this step's end); in a preview, which changes nothing,
    /// `planned` instead of `succeeded`.
    pub(crate) status: String,
    /// Whether this is one of the engine's internal steps (a default provider) rather than a resource of the program.
    pub(crate) internal: bool,
    /// The properties the step changes (pulumi's detailed diff when the
    /// provider gave one); secret values show as `[secret]`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) diff: Vec<super::diff::PropertyChange>,
}

/// One output of a [`DeployDocument`] or an [`OutputsDocument`].
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub(crate) struct OutputDocument {
    /// The value; `"[secret]"` for a secret unless `--show-secrets` was given.
    pub(crate) value: serde_json::Value,
    /// Whether the output is secret.
    pub(crate) secret: bool,
}

/// `lift deploy ... --json` when an operation fails: the error and the partial ledger.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub(crate) struct DeployFailureDocument {
    /// The error.
    pub(crate) error: ErrorBody,
    /// The stack.
    pub(crate) stack: String,
    /// The operation.
    pub(crate) operation: String,
    /// The resources touched before the failure.
    pub(crate) resources: Vec<ResourceDocument>,
}

/// `lift deploy outputs --json`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub(crate) struct OutputsDocument {
    /// The stack.
    pub(crate) stack: String,
    /// The outputs.
    pub(crate) outputs: BTreeMap<String, OutputDocument>,
}

/// `lift deploy history --json`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub(crate) struct HistoryDocument {
    /// The stack.
    pub(crate) stack: String,
    /// The updates, newest first.
    pub(crate) updates: Vec<HistoryEntryDocument>,
}

/// One update of a [`HistoryDocument`].
#[derive(Debug, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct HistoryEntryDocument {
    /// The stack version it produced.
    pub(crate) version: u64,
    /// `update`, `refresh`, `destroy`, ...
    pub(crate) kind: String,
    /// `succeeded`, `failed` or `in-progress`.
    pub(crate) result: String,
    /// The message.
    pub(crate) message: String,
    /// When it started.
    pub(crate) start_time: String,
    /// When it ended.
    pub(crate) end_time: Option<String>,
    /// Step counts by operation.
    pub(crate) resource_changes: BTreeMap<String, i64>,
}

/// `lift deploy init|rm|import|cancel|config set|config rm|tag set|tag rm --json`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub(crate) struct StackActionDocument {
    /// The stack.
    pub(crate) stack: String,
    /// What was done: `created`, `selected`, `removed`, `imported`,
    /// `config_set`, `config_removed`, `tag_set`, `tag_removed`, or for
    /// `cancel` its outcome: `interrupted`, `signalled`,
    /// `cancelled_by_backend`, `lock_broken`.
    pub(crate) action: String,
    /// The config key or tag name, for config and tag commands.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) key: Option<String>,
    /// What happened, in words (`cancel` says whether an update may still be running).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) detail: Option<String>,
}

/// `lift deploy ls --json`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub(crate) struct StacksDocument {
    /// The project's stacks, as pulumi names them.
    pub(crate) stacks: Vec<StackDocument>,
}

/// One stack of a [`StacksDocument`].
#[derive(Debug, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct StackDocument {
    /// The name as pulumi prints it (short for the current project).
    pub(crate) name: String,
    /// When it was last updated.
    pub(crate) last_update: Option<String>,
    /// Whether an update is running.
    pub(crate) update_in_progress: bool,
    /// How many resources it has.
    pub(crate) resource_count: Option<u64>,
}

/// `lift deploy tag ls|get --json`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub(crate) struct TagsDocument {
    /// The stack.
    pub(crate) stack: String,
    /// The tags by name.
    pub(crate) tags: BTreeMap<String, String>,
}

/// `lift deploy config get|ls --json`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub(crate) struct ConfigDocument {
    /// The stack.
    pub(crate) stack: String,
    /// The values by key; secrets print as `"[secret]"` unless `--show-secrets` was given.
    pub(crate) config: BTreeMap<String, OutputDocument>,
}

pub(crate) fn deploy_document(
    result: &OpResult,
    op: Operation,
    show_secrets: bool,
    changes: &super::diff::ChangesByUrn,
) -> DeployDocument {
    DeployDocument {
        stack: result.stack.clone(),
        operation: op.as_str().to_owned(),
        summary: SummaryDocument {
            result: result.summary.result,
            resource_changes: result.summary.resource_changes.clone(),
            duration_seconds: result.summary.duration.as_secs_f64(),
        },
        resources: resource_documents(&result.ledger, changes, op),
        outputs: output_documents(&result.outputs, show_secrets),
        version: result.version,
        permalink: result.permalink.clone(),
        warnings: result.warnings.clone(),
    }
}

/// The resources of `ledger`. A preview's steps are `planned`, never
/// `succeeded`: a preview changes nothing.
pub(crate) fn resource_documents(
    ledger: &Ledger,
    changes: &super::diff::ChangesByUrn,
    op: Operation,
) -> Vec<ResourceDocument> {
    ledger
        .entries()
        .iter()
        .map(|e| ResourceDocument {
            urn: e.urn.clone(),
            resource_type: e.resource_type.clone(),
            op: e.op.clone(),
            status: match e.status {
                ResourceStatus::Succeeded if op == Operation::Preview => "planned".to_owned(),
                status => status.as_str().to_owned(),
            },
            internal: e.internal,
            diff: changes.get(&e.urn).cloned().unwrap_or_default(),
        })
        .collect()
}

/// Secret values print as `"[secret]"` unless `show` is set. A revealed
/// secret prints as a string, or as JSON when it holds a JSON object or array.
pub(crate) fn output_documents(
    outputs: &BTreeMap<String, OutputValue>,
    show: bool,
) -> BTreeMap<String, OutputDocument> {
    outputs
        .iter()
        .map(|(name, value)| {
            let document = match value {
                OutputValue::Plain(value) => OutputDocument {
                    value: value.clone(),
                    secret: false,
                },
                OutputValue::Secret(secret) => OutputDocument {
                    value: if show {
                        reveal(secret)
                    } else {
                        SECRET_PLACEHOLDER.into()
                    },
                    secret: true,
                },
            };
            (name.clone(), document)
        })
        .collect()
}

/// What a hidden secret prints as, in documents and in text: pulumi's own placeholder.
pub(crate) const SECRET_PLACEHOLDER: &str = "[secret]";

pub(crate) fn config_document(value: &ConfigValue, show: bool) -> OutputDocument {
    match value {
        ConfigValue::Plain(text) => OutputDocument {
            value: text.clone().into(),
            secret: false,
        },
        ConfigValue::Secret(secret) if show => OutputDocument {
            value: String::from_utf8_lossy(secret.expose()).into_owned().into(),
            secret: true,
        },
        ConfigValue::Secret(_) | ConfigValue::HiddenSecret => OutputDocument {
            value: SECRET_PLACEHOLDER.into(),
            secret: true,
        },
    }
}

fn reveal(secret: &SecretValue) -> serde_json::Value {
    let text = String::from_utf8_lossy(secret.expose());
    if text.starts_with('{') || text.starts_with('[') {
        if let Ok(value) = serde_json::from_str(&text) {
            return value;
        }
    }
    text.into_owned().into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn secret_outputs_print_redacted_unless_asked() {
        let outputs = BTreeMap::from([
            ("url".to_owned(), OutputValue::Plain("https://x".into())),
            (
                "key".to_owned(),
                OutputValue::Secret(SecretValue::from("hunter2")),
            ),
            (
                "obj".to_owned(),
                OutputValue::Secret(SecretValue::from(r#"{"a":1}"#)),
            ),
        ]);
        let hidden = output_documents(&outputs, false);
        assert_eq!(hidden["key"].value, "[secret]");
        assert!(hidden["key"].secret);
        assert!(!serde_json::to_string(&hidden).unwrap().contains("hunter2"));
        let shown = output_documents(&outputs, true);
        assert_eq!(shown["key"].value, "hunter2");
        assert_eq!(shown["obj"].value["a"], 1);
        assert!(!shown["url"].secret);
    }

    #[test]
    fn the_json_document_has_the_documented_shape() {
        let log = br#"{"sequence":1,"timestamp":0,"resourcePreEvent":{"metadata":{"op":"create","urn":"urn:pulumi:dev::demo::aws:s3:Bucket::bucket","type":"aws:s3:Bucket","old":null,"new":null,"provider":""}}}
{"sequence":2,"timestamp":0,"resOutputsEvent":{"metadata":{"op":"create","urn":"urn:pulumi:dev::demo::aws:s3:Bucket::bucket","type":"aws:s3:Bucket","old":null,"new":null,"provider":""}}}"#;
        let mut ledger = Ledger::default();
        for event in lift::pulumi::parse_events(log).events {
            ledger.apply(&event);
        }
        let result = OpResult {
            stack: "dev".into(),
            summary: lift::DeploySummary {
                operation: "up".into(),
                result: DeployResult::Succeeded,
                resource_changes: BTreeMap::from([("create".to_owned(), 1)]),
                duration: Duration::from_millis(1500),
            },
            engine_summary: None,
            ledger,
            outputs: BTreeMap::from([
                ("url".to_owned(), OutputValue::Plain("https://x".into())),
                (
                    "key".to_owned(),
                    OutputValue::Secret(SecretValue::from("hunter2")),
                ),
            ]),
            version: Some(4),
            permalink: Some("https://app.pulumi.com/acme/demo/dev/updates/4".into()),
            decode_issues: Vec::new(),
            warnings: Vec::new(),
        };
        let document = serde_json::to_value(deploy_document(
            &result,
            Operation::Up,
            false,
            &Default::default(),
        ))
        .unwrap();
        insta::assert_json_snapshot!(document);
    }
}
