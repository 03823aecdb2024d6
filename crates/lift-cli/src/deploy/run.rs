//! `lift deploy`: drive the Pulumi CLI.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use lift::pulumi::{
    CancellationToken, ConfigOptions, ConfigValue, EngineEvent, EventPayload, Ledger, OpOptions,
    OpResult, Operation, Stack, StackName, Workspace,
};
use lift::{DeployResult, Error, OutputValue, SecretValue};
use serde::Serialize;

use crate::context::{Context, exit_code_for};
use crate::schemas::ErrorBody;

/// Arguments of `lift deploy`.
#[derive(Debug, Args)]
pub struct DeployArgs {
    /// The Pulumi project directory.
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub cwd: PathBuf,
    /// The stack to operate on. Every command passes it explicitly; the globally selected stack is never used.
    #[arg(long, value_name = "NAME")]
    pub stack: String,
    /// The pulumi binary (default: LIFT_PULUMI, then PATH).
    #[arg(long, value_name = "PATH")]
    pub pulumi: Option<PathBuf>,
    /// Seconds a cancelled pulumi gets between SIGINT and SIGKILL.
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    pub grace: u64,
    /// The operation.
    #[command(subcommand)]
    pub op: DeployOp,
}

/// A `lift deploy` operation.
#[derive(Debug, Subcommand)]
pub enum DeployOp {
    /// Create the stack, or select it when it exists (never changes the globally selected stack).
    Init,
    /// Show the changes an update would make.
    Preview(OpArgs),
    /// Create or update the stack's resources.
    Up(OpArgs),
    /// Reconcile the state with the cloud.
    Refresh(OpArgs),
    /// Delete every resource of the stack.
    Destroy(OpArgs),
    /// Print the stack's outputs.
    Outputs {
        /// Print secret values instead of "[secret]".
        #[arg(long)]
        show_secrets: bool,
    },
    /// Print the stack's update history, newest first.
    History {
        /// How many updates to show.
        #[arg(long, default_value_t = 10)]
        limit: u32,
    },
    /// Cancel the update in progress (and release its lock).
    Cancel,
    /// Read and write the stack's configuration.
    Config {
        /// The config command.
        #[command(subcommand)]
        command: ConfigCommand,
    },
}

/// A `lift deploy config` command.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print one value.
    Get {
        /// The key, `key` or `namespace:key`.
        key: String,
        /// Treat the key as a property path (`a.b[0]`).
        #[arg(long)]
        path: bool,
        /// Print a secret value instead of "[secret]".
        #[arg(long)]
        show_secrets: bool,
    },
    /// Set a value, read from stdin (never from the command line).
    Set {
        /// The key, `key` or `namespace:key`.
        key: String,
        /// Store the value encrypted.
        #[arg(long)]
        secret: bool,
        /// Treat the key as a property path (`a.b[0]`).
        #[arg(long)]
        path: bool,
    },
    /// Remove a value.
    Rm {
        /// The key.
        key: String,
        /// Treat the key as a property path.
        #[arg(long)]
        path: bool,
    },
    /// List every value (secrets as "[secret]").
    Ls,
}

/// The options of preview, up, refresh and destroy.
#[derive(Debug, Args)]
pub struct OpArgs {
    /// The update message.
    #[arg(long, short)]
    pub message: Option<String>,
    /// Limit the operation to this URN (repeatable).
    #[arg(long, value_name = "URN")]
    pub target: Vec<String>,
    /// Include the targets' dependents.
    #[arg(long)]
    pub target_dependents: bool,
    /// Leave this URN out (repeatable).
    #[arg(long, value_name = "URN")]
    pub exclude: Vec<String>,
    /// Leave the excluded resources' dependents out too.
    #[arg(long)]
    pub exclude_dependents: bool,
    /// Force the replacement of this URN (repeatable).
    #[arg(long, value_name = "URN")]
    pub replace: Vec<String>,
    /// How many resource operations run at once.
    #[arg(long)]
    pub parallel: Option<u32>,
    /// Fail if the operation would change anything.
    #[arg(long)]
    pub expect_no_changes: bool,
    /// Refresh the state first.
    #[arg(long)]
    pub refresh: bool,
    /// Show a detailed diff.
    #[arg(long)]
    pub diff: bool,
    /// Keep going after a resource fails.
    #[arg(long)]
    pub continue_on_error: bool,
    /// Use this stack config file.
    #[arg(long, value_name = "FILE")]
    pub config_file: Option<PathBuf>,
    /// Interrupt the operation after this many seconds.
    #[arg(long, value_name = "SECONDS")]
    pub timeout: Option<u64>,
    /// Print secret output values instead of "[secret]".
    #[arg(long)]
    pub show_secrets: bool,
}

impl OpArgs {
    fn options(&self) -> OpOptions {
        let mut options = OpOptions::default()
            .target_dependents(self.target_dependents)
            .exclude_dependents(self.exclude_dependents)
            .expect_no_changes(self.expect_no_changes)
            .refresh(self.refresh)
            .diff(self.diff)
            .continue_on_error(self.continue_on_error);
        if let Some(message) = &self.message {
            options = options.message(message.clone());
        }
        for urn in &self.target {
            options = options.target(urn.clone());
        }
        for urn in &self.exclude {
            options = options.exclude(urn.clone());
        }
        for urn in &self.replace {
            options = options.replace(urn.clone());
        }
        if let Some(n) = self.parallel {
            options = options.parallel(n);
        }
        if let Some(path) = &self.config_file {
            options = options.config_file(path.clone());
        }
        if let Some(seconds) = self.timeout {
            options = options.timeout(Duration::from_secs(seconds));
        }
        options
    }
}

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
    /// `succeeded` or `failed`.
    pub(crate) status: String,
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

/// `lift deploy init|cancel|config set|config rm --json`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub(crate) struct StackActionDocument {
    /// The stack.
    pub(crate) stack: String,
    /// What was done: `created`, `selected`, `cancelled`, `config_set`, `config_removed`.
    pub(crate) action: String,
    /// The config key, for config commands.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) key: Option<String>,
}

/// `lift deploy config get|ls --json`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub(crate) struct ConfigDocument {
    /// The stack.
    pub(crate) stack: String,
    /// The values by key; secrets print as `"[secret]"` unless `--show-secrets` was given.
    pub(crate) config: BTreeMap<String, OutputDocument>,
}

pub(crate) async fn run(args: DeployArgs, ctx: &Context) -> lift::Result<u8> {
    let name: StackName = args.stack.parse()?;
    let mut builder = Workspace::builder(&args.cwd)
        .grace_period(Duration::from_secs(args.grace))
        .audit_sink(ctx.audit.clone());
    if let Some(path) = &args.pulumi {
        builder = builder.pulumi(path);
    }
    let workspace = builder.build().await?;
    match args.op {
        DeployOp::Init => {
            let action = match workspace.select_stack(name.clone()).await {
                Ok(_) => "selected",
                Err(lift::pulumi::Error::StackNotFound { .. }) => {
                    workspace.create_stack(name.clone()).await?;
                    "created"
                }
                Err(err) => return Err(err.into()),
            };
            ctx.say(format!("stack {name} {action}"));
            emit_action(ctx, &name, action, None)
        }
        DeployOp::Preview(op) => operate(ctx, workspace.stack(name), Operation::Preview, op).await,
        DeployOp::Up(op) => operate(ctx, workspace.stack(name), Operation::Up, op).await,
        DeployOp::Refresh(op) => operate(ctx, workspace.stack(name), Operation::Refresh, op).await,
        DeployOp::Destroy(op) => operate(ctx, workspace.stack(name), Operation::Destroy, op).await,
        DeployOp::Outputs { show_secrets } => {
            let outputs = workspace.stack(name.clone()).outputs().await?;
            let outputs = output_documents(&outputs, show_secrets);
            if ctx.json {
                ctx.emit_json(&OutputsDocument {
                    stack: name.to_string(),
                    outputs,
                })?;
            } else {
                say_outputs(ctx, &outputs);
            }
            Ok(0)
        }
        DeployOp::History { limit } => {
            let updates = workspace.stack(name.clone()).history(limit).await?;
            let updates: Vec<HistoryEntryDocument> = updates
                .into_iter()
                .map(|u| HistoryEntryDocument {
                    version: u.version,
                    kind: u.kind,
                    result: u.result,
                    message: u.message,
                    start_time: u.start_time,
                    end_time: u.end_time,
                    resource_changes: u.resource_changes.unwrap_or_default(),
                })
                .collect();
            if ctx.json {
                ctx.emit_json(&HistoryDocument {
                    stack: name.to_string(),
                    updates,
                })?;
            } else if updates.is_empty() {
                ctx.say(format!("stack {name} has no updates yet"));
            } else {
                for u in &updates {
                    ctx.say(format!(
                        "{:>4}  {:<8} {:<10} {}  {}",
                        u.version,
                        u.kind,
                        u.result,
                        u.start_time,
                        changes_text(&u.resource_changes)
                    ));
                }
            }
            Ok(0)
        }
        DeployOp::Cancel => {
            workspace.stack(name.clone()).cancel().await?;
            ctx.say(format!("cancelled the update running on stack {name}"));
            emit_action(ctx, &name, "cancelled", None)
        }
        DeployOp::Config { command } => config(ctx, workspace.stack(name), command).await,
    }
}

async fn config(ctx: &Context, stack: Stack, command: ConfigCommand) -> lift::Result<u8> {
    let name = stack.name().clone();
    match command {
        ConfigCommand::Get {
            key,
            path,
            show_secrets,
        } => {
            let value = stack.config_get(&key, ConfigOptions { path }).await?;
            let document = config_document(&value, show_secrets);
            if ctx.json {
                ctx.emit_json(&ConfigDocument {
                    stack: name.to_string(),
                    config: BTreeMap::from([(key, document)]),
                })?;
            } else {
                ctx.say(display_value(&document.value));
            }
            Ok(0)
        }
        ConfigCommand::Set { key, secret, path } => {
            let bytes = read_stdin_value()?;
            let value = if secret {
                ConfigValue::Secret(SecretValue::new(bytes))
            } else {
                let text = String::from_utf8(bytes).map_err(|_| {
                    Error::invalid_input("a plaintext config value must be UTF-8 text")
                })?;
                ConfigValue::Plain(text)
            };
            stack
                .config_set(&key, &value, ConfigOptions { path })
                .await?;
            ctx.say(format!(
                "set {}{key} on stack {name}",
                if secret { "secret " } else { "" }
            ));
            emit_action(ctx, &name, "config_set", Some(key))
        }
        ConfigCommand::Rm { key, path } => {
            stack.config_remove(&key, ConfigOptions { path }).await?;
            ctx.say(format!("removed {key} from stack {name}"));
            emit_action(ctx, &name, "config_removed", Some(key))
        }
        ConfigCommand::Ls => {
            let values = stack.config_list().await?;
            let config: BTreeMap<String, OutputDocument> = values
                .iter()
                .map(|(k, v)| (k.clone(), config_document(v, false)))
                .collect();
            if ctx.json {
                ctx.emit_json(&ConfigDocument {
                    stack: name.to_string(),
                    config,
                })?;
            } else {
                for (key, value) in &config {
                    ctx.say(format!("{key}: {}", display_value(&value.value)));
                }
            }
            Ok(0)
        }
    }
}

/// Reads a config value from stdin, without one trailing newline, as `pulumi config set` does.
fn read_stdin_value() -> lift::Result<Vec<u8>> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        return Err(Error::invalid_input(
            "pipe the value in on stdin, for example `printf %s \"$VALUE\" | lift deploy --stack dev config set KEY --secret`; lift never takes config values on the command line",
        ));
    }
    let mut bytes = Vec::new();
    stdin
        .lock()
        .read_to_end(&mut bytes)
        .map_err(|e| Error::invalid_input(format!("cannot read the value from stdin: {e}")))?;
    if bytes.last() == Some(&b'\n') {
        bytes.pop();
    }
    Ok(bytes)
}

fn emit_action(
    ctx: &Context,
    name: &StackName,
    action: &str,
    key: Option<String>,
) -> lift::Result<u8> {
    if ctx.json {
        ctx.emit_json(&StackActionDocument {
            stack: name.to_string(),
            action: action.to_owned(),
            key,
        })?;
    }
    Ok(0)
}

/// Runs an operation with progress on stderr (a spinner on a terminal, a line per resource),
/// cancelling it on Ctrl-C.
async fn operate(ctx: &Context, stack: Stack, op: Operation, args: OpArgs) -> lift::Result<u8> {
    let mut options = args.options();
    let token = CancellationToken::new();
    options = options.cancel_token(token.clone());
    let ctrl_c = {
        let token = token.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                token.cancel();
            }
        })
    };
    let mut events = options.subscribe();
    let bar = progress_bar(ctx, &stack, op);
    let progress = async {
        let mut shown = std::collections::HashSet::new();
        while let Some(event) = events.next().await {
            render_event(ctx, &bar, &event, &mut shown);
        }
    };
    let (result, ()) = tokio::join!(stack.operate(op, options), progress);
    ctrl_c.abort();
    bar.finish_and_clear();
    match result {
        Ok(result) => {
            report_success(ctx, &result, op, args.show_secrets)?;
            Ok(if result.summary.result == DeployResult::Failed {
                crate::EXIT_FAILURE
            } else {
                0
            })
        }
        Err(err) => report_failure(ctx, &stack, op, err),
    }
}

fn progress_bar(ctx: &Context, stack: &Stack, op: Operation) -> ProgressBar {
    if ctx.json || !std::io::stderr().is_terminal() {
        return ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden());
    }
    let bar = ProgressBar::new_spinner();
    if let Ok(style) = ProgressStyle::with_template("{spinner} {elapsed:>4} {msg}") {
        bar.set_style(style);
    }
    bar.set_message(format!("{op} {}: starting pulumi", stack.name()));
    bar.enable_steady_tick(Duration::from_millis(100));
    bar
}

/// Draws one engine event: the spinner shows the step in flight; finished steps get a line.
fn render_event(
    ctx: &Context,
    bar: &ProgressBar,
    event: &EngineEvent,
    shown: &mut std::collections::HashSet<(String, String)>,
) {
    let line = match &event.payload {
        EventPayload::ResourcePre(pre) => {
            bar.set_message(format!(
                "{} {}",
                pre.metadata.op,
                short_urn(&pre.metadata.urn)
            ));
            None
        }
        EventPayload::ResOutputs(done)
            if done.metadata.op.is_change()
                && shown.insert((done.metadata.urn.clone(), done.metadata.op.to_string())) =>
        {
            Some(format!(
                "  {:<8} {} {}",
                done.metadata.op,
                done.metadata.resource_type,
                short_urn(&done.metadata.urn)
            ))
        }
        EventPayload::ResOpFailed(failed) => Some(format!(
            "  failed   {} {} ({})",
            failed.metadata.resource_type,
            short_urn(&failed.metadata.urn),
            failed.metadata.op
        )),
        EventPayload::Diagnostic(diag)
            if diag.ephemeral != Some(true)
                && matches!(diag.severity.as_str(), "error" | "warning") =>
        {
            Some(format!(
                "  {}: {}",
                diag.severity,
                lift::pulumi::plain_text(&diag.message).trim()
            ))
        }
        _ => None,
    };
    if let Some(line) = line {
        if ctx.json {
            return;
        }
        if bar.is_hidden() {
            ctx.say(line);
        } else {
            bar.println(line);
        }
    }
}

fn short_urn(urn: &str) -> &str {
    urn.rsplit("::").next().unwrap_or(urn)
}

fn deploy_document(result: &OpResult, op: Operation, show_secrets: bool) -> DeployDocument {
    DeployDocument {
        stack: result.stack.clone(),
        operation: op.as_str().to_owned(),
        summary: SummaryDocument {
            result: result.summary.result,
            resource_changes: result.summary.resource_changes.clone(),
            duration_seconds: result.summary.duration.as_secs_f64(),
        },
        resources: resource_documents(&result.ledger),
        outputs: output_documents(&result.outputs, show_secrets),
        version: result.version,
        permalink: result.permalink.clone(),
    }
}

fn report_success(
    ctx: &Context,
    result: &OpResult,
    op: Operation,
    show_secrets: bool,
) -> lift::Result<()> {
    if ctx.json {
        return ctx.emit_json(&deploy_document(result, op, show_secrets));
    }
    let outputs = output_documents(&result.outputs, show_secrets);
    let changes: BTreeMap<String, i64> = result
        .summary
        .resource_changes
        .iter()
        .map(|(k, v)| (k.clone(), i64::try_from(*v).unwrap_or(i64::MAX)))
        .collect();
    ctx.say(format!(
        "{op} {} on stack {} in {:.1}s: {}",
        match result.summary.result {
            DeployResult::Succeeded => "succeeded",
            DeployResult::Failed => "failed",
            DeployResult::Cancelled => "was cancelled",
        },
        result.stack,
        result.summary.duration.as_secs_f64(),
        changes_text(&changes)
    ));
    if !outputs.is_empty() {
        ctx.say("outputs:");
        say_outputs(ctx, &outputs);
    }
    if let Some(version) = result.version {
        ctx.say(format!("version {version}"));
    }
    if let Some(link) = &result.permalink {
        ctx.say(format!("permalink {link}"));
    }
    for issue in &result.decode_issues {
        ctx.say(format!("warning: event log: {issue}"));
    }
    Ok(())
}

/// Prints the error with the partial ledger; under `--json` as one document.
fn report_failure(
    ctx: &Context,
    stack: &Stack,
    op: Operation,
    err: lift::pulumi::Error,
) -> lift::Result<u8> {
    let resources = err
        .partial_ledger()
        .map(resource_documents)
        .unwrap_or_default();
    let err: Error = err.into();
    if !ctx.json {
        if !resources.is_empty() {
            ctx.say("resources:");
            for r in &resources {
                ctx.say(format!("  {:<9} {:<8} {}", r.status, r.op, r.urn));
            }
        }
        return Err(err);
    }
    ctx.emit_json(&DeployFailureDocument {
        error: ErrorBody {
            kind: err.kind(),
            message: err.message().to_owned(),
        },
        stack: stack.name().to_string(),
        operation: op.as_str().to_owned(),
        resources,
    })?;
    eprintln!("error: {err}");
    Ok(exit_code_for(&err))
}

fn resource_documents(ledger: &Ledger) -> Vec<ResourceDocument> {
    ledger
        .entries()
        .iter()
        .map(|e| ResourceDocument {
            urn: e.urn.clone(),
            resource_type: e.resource_type.clone(),
            op: e.op.clone(),
            status: e.status.as_str().to_owned(),
        })
        .collect()
}

/// Secret values print as `"[secret]"` unless `show` is set. A revealed
/// secret prints as a string, or as JSON when it holds a JSON object or array.
fn output_documents(
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
                        "[secret]".into()
                    },
                    secret: true,
                },
            };
            (name.clone(), document)
        })
        .collect()
}

fn config_document(value: &ConfigValue, show: bool) -> OutputDocument {
    match value {
        ConfigValue::Plain(text) => OutputDocument {
            value: text.clone().into(),
            secret: false,
        },
        ConfigValue::Secret(secret) => OutputDocument {
            value: if show {
                String::from_utf8_lossy(secret.expose()).into_owned().into()
            } else {
                "[secret]".into()
            },
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

fn say_outputs(ctx: &Context, outputs: &BTreeMap<String, OutputDocument>) {
    for (name, output) in outputs {
        ctx.say(format!("  {name}: {}", display_value(&output.value)));
    }
}

fn display_value(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

fn changes_text(changes: &BTreeMap<String, i64>) -> String {
    if changes.is_empty() {
        return "no changes".to_owned();
    }
    changes
        .iter()
        .map(|(op, n)| format!("{op} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

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
        };
        let document =
            serde_json::to_value(deploy_document(&result, Operation::Up, false)).unwrap();
        insta::assert_json_snapshot!(document);
    }

    #[test]
    fn urns_shorten_to_the_resource_name() {
        assert_eq!(
            short_urn("urn:pulumi:dev::demo::aws:s3:Bucket::bucket"),
            "bucket"
        );
        assert_eq!(changes_text(&BTreeMap::new()), "no changes");
    }
}
