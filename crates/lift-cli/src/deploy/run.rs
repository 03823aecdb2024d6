//! Running `lift deploy` commands.

use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Read, Write};
use std::time::Duration;

use futures::StreamExt;
use lift::pulumi::{
    CancelOptions, ConfigOptions, ConfigValue, OpResult, Operation, Stack, StackInitOptions,
    StackName, Workspace,
};
use lift::{DeployResult, Error, SecretValue};

use super::args::{ConfigCommand, DeployArgs, DeployOp, OpArgs, TagCommand};
use super::documents::{
    ConfigDocument, DeployFailureDocument, HistoryDocument, HistoryEntryDocument, OutputDocument,
    OutputsDocument, StackActionDocument, StackDocument, StacksDocument, TagsDocument,
    config_document, deploy_document, output_documents, resource_documents,
};
use super::render::{View, changes_text, duration_text, planned_changes_text};
use super::signals::Interrupts;
use crate::context::Context;
use crate::output::ErrorBody;
use crate::output::exit_code_for;

/// The most a config value read from stdin may hold.
const CONFIG_VALUE_LIMIT: usize = 1024 * 1024;

pub(crate) async fn run(args: DeployArgs, ctx: &Context) -> lift::Result<u8> {
    let name: Option<StackName> = args.stack.as_deref().map(str::parse).transpose()?;
    // Bad input is reported before lift looks for pulumi.
    if name.is_none() && !matches!(args.op, DeployOp::Ls) {
        return Err(missing_stack());
    }
    if let Ok(meta) = std::fs::metadata(&args.cwd) {
        if !meta.is_dir() {
            return Err(Error::invalid_input(format!(
                "--cwd {} is not a directory",
                args.cwd.display()
            )));
        }
    } else {
        return Err(Error::invalid_input(format!(
            "--cwd {} does not exist; give the Pulumi project directory",
            args.cwd.display()
        )));
    }
    let mut builder = Workspace::builder(&args.cwd)
        .grace_period(Duration::from_secs(args.grace))
        .interruptible_owner(true)
        .audit_sink(ctx.audit.clone());
    if let Some(path) = &args.pulumi {
        builder = builder.pulumi(path);
    }
    if let Some(url) = &args.backend_url {
        builder = builder.backend_url(url);
    }
    let workspace = builder.build().await?;
    if matches!(args.op, DeployOp::Ls) {
        return list(ctx, &workspace).await;
    }
    let Some(name) = name else {
        return Err(missing_stack());
    };
    let hints = Hints::new(&args, ctx);
    let stack = workspace.stack(name.clone());
    match args.op {
        DeployOp::Init { secrets_provider } => {
            let action = match workspace.select_stack(name.clone()).await {
                Ok(_) => "selected",
                Err(lift::pulumi::Error::StackNotFound { .. }) => {
                    let mut options = StackInitOptions::default();
                    if let Some(provider) = secrets_provider {
                        options = options.secrets_provider(provider);
                    }
                    workspace.create_stack_with(name.clone(), &options).await?;
                    "created"
                }
                Err(err) => return Err(err.into()),
            };
            if let Some(environment) = &ctx.environment {
                if action == "selected" {
                    check_environment_tag(&stack, environment).await?;
                }
                stack.tag_set(ENVIRONMENT_TAG, environment).await?;
            }
            ctx.say(format!("stack {name} {action}"));
            emit_action(ctx, &name, action, None, None)
        }
        DeployOp::Ls => list(ctx, &workspace).await,
        DeployOp::Rm { force, yes } => {
            if !yes {
                return Err(Error::invalid_input(format!(
                    "`lift deploy rm` deletes stack {name} with its configuration and history, and cannot be undone: add --yes to confirm"
                )));
            }
            workspace.remove_stack(&name, force).await?;
            ctx.say(format!("removed stack {name}"));
            emit_action(ctx, &name, "removed", None, None)
        }
        DeployOp::Preview(op) => {
            operate(ctx, stack, Operation::Preview, op, args.grace, &hints).await
        }
        DeployOp::Up(op) => operate(ctx, stack, Operation::Up, op, args.grace, &hints).await,
        DeployOp::Refresh(op) => {
            operate(ctx, stack, Operation::Refresh, op, args.grace, &hints).await
        }
        DeployOp::Destroy(op) => {
            operate(ctx, stack, Operation::Destroy, op, args.grace, &hints).await
        }
        DeployOp::Outputs { show_secrets } => {
            let outputs = stack.outputs().await?;
            let outputs = output_documents(&outputs, show_secrets);
            if ctx.json {
                ctx.emit_json(&OutputsDocument {
                    stack: name.to_string(),
                    outputs,
                })?;
            } else if outputs.is_empty() {
                ctx.say(format!("stack {name} has no outputs"));
            } else {
                say_outputs(ctx, &outputs);
            }
            Ok(0)
        }
        DeployOp::History { limit } => history(ctx, &stack, limit).await,
        DeployOp::Cancel { force } => {
            let outcome = stack
                .cancel(CancelOptions::default().force(force))
                .await
                .map_err(|err| hints.apply(err))?;
            let detail = outcome.describe(name.as_str());
            ctx.say(&detail);
            emit_action(ctx, &name, outcome.as_str(), None, Some(detail))
        }
        DeployOp::Export { file } => {
            let state = stack.export().await?;
            let text = serde_json::to_string_pretty(&state).map_err(|err| {
                Error::new(
                    lift::ErrorKind::External,
                    format!("cannot render the state: {err}"),
                )
            })?;
            match file {
                Some(path) => {
                    write_new_file(&path, text.as_bytes())?;
                    ctx.say(format!(
                        "wrote the state of stack {name} to {}",
                        path.display()
                    ));
                }
                None => {
                    let mut out = std::io::stdout().lock();
                    let _ = writeln!(out, "{text}").and_then(|()| out.flush());
                }
            }
            Ok(0)
        }
        DeployOp::Import { file } => {
            let bytes = std::fs::read(&file).map_err(|err| {
                Error::invalid_input(format!("cannot read {}: {err}", file.display()))
            })?;
            let state: serde_json::Value = serde_json::from_slice(&bytes).map_err(|err| {
                Error::invalid_input(format!(
                    "{} is not a state file written by `lift deploy export` ({err})",
                    file.display()
                ))
            })?;
            stack.import(&state).await?;
            ctx.say(format!("imported {} into stack {name}", file.display()));
            emit_action(ctx, &name, "imported", None, None)
        }
        DeployOp::Config { command } => config(ctx, &stack, command, &hints).await,
        DeployOp::Tag { command } => tag(ctx, &stack, command).await,
    }
}

/// Rewrites the library's hints so that they name lift's own commands, with
/// the `--cwd` the user gave.
struct Hints {
    prefix: String,
}

impl Hints {
    fn new(args: &DeployArgs, ctx: &Context) -> Self {
        // In an environment, `--env` brings the file's directory and stack
        // back; only what was typed (or given by a variable) is repeated.
        let typed = |id: &str| {
            ctx.environment.is_none()
                || ctx.matches.subcommand_matches("deploy").is_some_and(|m| {
                    m.value_source(id) != Some(clap::parser::ValueSource::DefaultValue)
                })
        };
        let mut prefix = match &ctx.environment {
            Some(env) => format!("lift --env {env} deploy"),
            None => "lift deploy".to_owned(),
        };
        if args.cwd.as_os_str() != "." && typed("cwd") {
            prefix.push_str(&format!(" --cwd {}", args.cwd.display()));
        }
        if let Some(stack) = args.stack.as_ref().filter(|_| typed("stack")) {
            prefix.push_str(&format!(" --stack {stack}"));
        }
        Hints { prefix }
    }

    fn apply(&self, err: lift::pulumi::Error) -> Error {
        use lift::pulumi::Error as Pulumi;
        let prefix = &self.prefix;
        match err.cause() {
            Pulumi::KeyNotFound {
                what, key, stack, ..
            } => {
                let listing = if *what == "stack tag" {
                    "tag ls"
                } else {
                    "config ls"
                };
                Error::new(
                    lift::ErrorKind::NotFound,
                    format!(
                        "{what} {key} not found for stack {stack}; list what it has with `{prefix} {listing}`"
                    ),
                )
            }
            Pulumi::ConcurrentUpdate { stack, detail } => Error::new(
                lift::ErrorKind::Conflict,
                format!(
                    "stack {stack} is locked by another update; wait for it to finish, or run `{prefix} cancel` if it died: {detail}"
                ),
            ),
            _ => err.into(),
        }
    }
}

fn missing_stack() -> Error {
    Error::invalid_input(
        "name the stack with --stack NAME (or LIFT_STACK); lift never uses the globally selected stack",
    )
}

/// `lift deploy ls`: the project's stacks (it needs no `--stack`).
async fn list(ctx: &Context, workspace: &Workspace) -> lift::Result<u8> {
    let stacks = workspace.list_stacks().await?;
    if ctx.json {
        ctx.emit_json(&StacksDocument {
            stacks: stacks
                .into_iter()
                .map(|s| StackDocument {
                    name: s.name,
                    last_update: s.last_update,
                    update_in_progress: s.update_in_progress,
                    resource_count: s.resource_count,
                })
                .collect(),
        })?;
    } else if stacks.is_empty() {
        ctx.say("no stacks; create one with `lift deploy --stack NAME init`");
    } else {
        ctx.say(format!(
            "{:<32} {:<26} {:>9}  {}",
            "NAME", "LAST UPDATE", "RESOURCES", "UPDATING"
        ));
        for s in stacks {
            ctx.say(format!(
                "{:<32} {:<26} {:>9}  {}",
                s.name,
                s.last_update.as_deref().unwrap_or("never"),
                s.resource_count
                    .map_or_else(|| "-".to_owned(), |n| n.to_string()),
                if s.update_in_progress { "yes" } else { "no" }
            ));
        }
    }
    Ok(0)
}

async fn history(ctx: &Context, stack: &Stack, limit: u32) -> lift::Result<u8> {
    let name = stack.name();
    let updates = if limit == 0 {
        Vec::new()
    } else {
        stack.history(limit).await?
    };
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
        ctx.say(format!("stack {name}: no updates to show"));
    } else {
        ctx.say(format!(
            "{:>7}  {:<8} {:<10} {:<26} {:<36} MESSAGE",
            "VERSION", "KIND", "RESULT", "STARTED", "CHANGES"
        ));
        for u in &updates {
            ctx.say(format!(
                "{:>7}  {:<8} {:<10} {:<26} {:<36} {}",
                u.version,
                u.kind,
                u.result,
                u.start_time,
                changes_text(&u.resource_changes),
                u.message.lines().next().unwrap_or("")
            ));
        }
    }
    Ok(0)
}

async fn config(
    ctx: &Context,
    stack: &Stack,
    command: ConfigCommand,
    hints: &Hints,
) -> lift::Result<u8> {
    let name = stack.name().clone();
    match command {
        ConfigCommand::Get {
            key,
            path,
            show_secrets,
        } => {
            let value = stack
                .config_get(&key, ConfigOptions::default().path(path))
                .await
                .map_err(|err| hints.apply(err))?;
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
        ConfigCommand::Set {
            key,
            secret,
            plaintext,
            path,
        } => {
            let bytes = read_stdin_value()?;
            let value = if secret {
                ConfigValue::Secret(SecretValue::new(bytes.to_vec()))
            } else {
                let text = String::from_utf8(bytes.to_vec()).map_err(|_| {
                    Error::invalid_input(
                        "a plaintext config value must be UTF-8 text; store binary data with --secret",
                    )
                })?;
                ConfigValue::Plain(text)
            };
            let options = ConfigOptions::default().path(path).plaintext(plaintext);
            stack
                .config_set(&key, &value, options)
                .await
                .map_err(|err| match err {
                    lift::pulumi::Error::LooksLikeSecret { key } => Error::invalid_input(format!(
                        "the value of {key} looks like a secret, so it was not stored: rerun with --secret to encrypt it, or with --plaintext if it is not a secret"
                    )),
                    other => other.into(),
                })?;
            ctx.say(format!(
                "set {}{key} on stack {name}",
                if secret { "secret " } else { "" }
            ));
            emit_action(ctx, &name, "config_set", Some(key), None)
        }
        ConfigCommand::Rm { key, path } => {
            stack
                .config_remove(&key, ConfigOptions::default().path(path))
                .await?;
            ctx.say(format!("removed {key} from stack {name}"));
            emit_action(ctx, &name, "config_removed", Some(key), None)
        }
        ConfigCommand::Ls { show_secrets } => {
            let values = stack
                .config_list(ConfigOptions::default().show_secrets(show_secrets))
                .await?;
            let config: BTreeMap<String, OutputDocument> = values
                .iter()
                .map(|(k, v)| (k.clone(), config_document(v, show_secrets)))
                .collect();
            if ctx.json {
                ctx.emit_json(&ConfigDocument {
                    stack: name.to_string(),
                    config,
                })?;
            } else if config.is_empty() {
                ctx.say(format!("stack {name} has no config"));
            } else {
                ctx.say(format!("{:<40} VALUE", "KEY"));
                for (key, value) in &config {
                    ctx.say(format!("{key:<40} {}", display_value(&value.value)));
                }
            }
            Ok(0)
        }
    }
}

async fn tag(ctx: &Context, stack: &Stack, command: TagCommand) -> lift::Result<u8> {
    let name = stack.name().clone();
    match command {
        TagCommand::Get { name: tag } => {
            let value = stack.tag_get(&tag).await?;
            if ctx.json {
                ctx.emit_json(&TagsDocument {
                    stack: name.to_string(),
                    tags: BTreeMap::from([(tag, value)]),
                })?;
            } else {
                ctx.say(value);
            }
            Ok(0)
        }
        TagCommand::Set { name: tag, value } => {
            stack.tag_set(&tag, &value).await?;
            ctx.say(format!("set tag {tag} on stack {name}"));
            emit_action(ctx, &name, "tag_set", Some(tag), None)
        }
        TagCommand::Rm { name: tag } => {
            stack.tag_remove(&tag).await?;
            ctx.say(format!("removed tag {tag} from stack {name}"));
            emit_action(ctx, &name, "tag_removed", Some(tag), None)
        }
        TagCommand::Ls => {
            let tags = stack.tag_list().await?;
            if ctx.json {
                ctx.emit_json(&TagsDocument {
                    stack: name.to_string(),
                    tags,
                })?;
            } else {
                ctx.say(format!("{:<40} VALUE", "NAME"));
                for (tag, value) in tags {
                    ctx.say(format!("{tag:<40} {value}"));
                }
            }
            Ok(0)
        }
    }
}

/// Reads a config value from stdin, byte for byte: trailing newlines are
/// kept (a PEM key keeps its last one). Use `printf %s` rather than `echo`
/// to set a value without one. At most 1 MiB is read.
fn read_stdin_value() -> lift::Result<zeroize::Zeroizing<Vec<u8>>> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        return Err(Error::invalid_input(
            "pipe the value in on stdin, for example `printf %s \"$VALUE\" | lift deploy --stack dev config set KEY --secret`; lift never takes config values on the command line",
        ));
    }
    let mut bytes = zeroize::Zeroizing::new(Vec::with_capacity(CONFIG_VALUE_LIMIT + 1));
    stdin
        .lock()
        .take(CONFIG_VALUE_LIMIT as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::invalid_input(format!("cannot read the value from stdin: {e}")))?;
    if bytes.len() > CONFIG_VALUE_LIMIT {
        return Err(Error::invalid_input(format!(
            "the value on stdin is larger than {} KiB; pulumi config holds small values: keep large data in a file and reference its path",
            CONFIG_VALUE_LIMIT / 1024
        )));
    }
    Ok(bytes)
}

fn emit_action(
    ctx: &Context,
    name: &StackName,
    action: &str,
    key: Option<String>,
    detail: Option<String>,
) -> lift::Result<u8> {
    if ctx.json {
        ctx.emit_json(&StackActionDocument {
            stack: name.to_string(),
            action: action.to_owned(),
            key,
            detail,
        })?;
    }
    Ok(0)
}

fn write_new_file(path: &std::path::Path, bytes: &[u8]) -> lift::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|err| {
            Error::invalid_input(format!(
                "cannot create {}: {err} (lift does not overwrite an existing file)",
                path.display()
            ))
        })?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|err| {
            Error::new(
                lift::ErrorKind::Io,
                format!("cannot write {}: {err}", path.display()),
            )
        })
}

/// Whether an operation may go ahead: `--yes`, or a "yes" typed at the
/// prompt on a terminal. Without a terminal and without `--yes`, nothing runs.
async fn confirm(
    ctx: &Context,
    stack: &Stack,
    op: Operation,
    args: &OpArgs,
    grace: u64,
    hints: &Hints,
) -> lift::Result<bool> {
    let interactive = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    if op == Operation::Destroy && ctx.policy.confirm_destroy.on {
        return confirm_destroy_by_name(ctx, stack, args, interactive).await;
    }
    if op == Operation::Preview || args.yes {
        return Ok(true);
    }
    if !interactive || ctx.json {
        return Err(Error::invalid_input(format!(
            "`lift deploy {op}` changes stack {} and there is no terminal to ask on: add --yes to go ahead (pulumi's rule for non-interactive runs); nothing was changed",
            stack.name()
        )));
    }
    let question = match op {
        Operation::Up => {
            // Show what would change, as pulumi does, before asking.
            let code = run_operation(
                ctx,
                stack,
                Operation::Preview,
                args.preview_options(),
                false,
                args.diff,
                grace,
                hints,
            )
            .await?;
            if code != 0 {
                return Ok(false);
            }
            "Do you want to perform this update?"
        }
        Operation::Destroy => "Do you want to delete every resource of this stack?",
        _ => "Do you want to perform this refresh?",
    };
    crate::output::write_bytes(
        &mut std::io::stderr().lock(),
        format!("{question} (type yes to go ahead) ").as_bytes(),
    );
    let answer = read_answer().await?;
    let yes = matches!(answer.trim(), "yes" | "y");
    if !yes {
        ctx.say(format!(
            "{op} of stack {} declined; nothing was changed",
            stack.name()
        ));
    }
    Ok(yes)
}

/// The stack tag that binds a stack to a lift environment.
pub(crate) const ENVIRONMENT_TAG: &str = "lift:environment";

/// Refuses a stack tagged for another environment than `environment`.
async fn check_environment_tag(stack: &Stack, environment: &str) -> lift::Result<()> {
    let tags = stack.tag_list().await?;
    match tags.get(ENVIRONMENT_TAG) {
        Some(tagged) if tagged != environment => Err(Error::invalid_input(format!(
            "stack {} belongs to environment {tagged:?} (its {ENVIRONMENT_TAG} tag), not to {environment:?}; select its environment with --env {tagged}, or, if the stack really moved, retag it with `lift deploy --env {tagged} --stack {} tag set {ENVIRONMENT_TAG} {environment}`; nothing was changed",
            stack.name(),
            stack.name(),
        ))),
        _ => Ok(()),
    }
}

/// Destroy in an environment whose policy has `confirm_destroy`: the
/// stack's name typed at the prompt on a terminal, or `--yes` with
/// `--confirm-stack NAME` without one.
async fn confirm_destroy_by_name(
    ctx: &Context,
    stack: &Stack,
    args: &OpArgs,
    interactive: bool,
) -> lift::Result<bool> {
    let name = stack.name().to_string();
    let short = name.rsplit('/').next().unwrap_or(&name).to_owned();
    let matches_name = |typed: &str| typed == name || typed == short;
    let environment = ctx.environment.as_deref().unwrap_or("?");
    let rule = &ctx.policy.confirm_destroy;
    if args.yes {
        return match &args.confirm_stack {
            Some(typed) if matches_name(typed) => Ok(true),
            Some(typed) => Err(crate::project::policy::refusal(
                environment,
                "confirm_destroy",
                rule,
                &format!(
                    "destroying stack {name} with --confirm-stack {typed}, which names another stack"
                ),
                "give the stack's own name to --confirm-stack; nothing was changed",
            )),
            None => Err(crate::project::policy::refusal(
                environment,
                "confirm_destroy",
                rule,
                &format!("destroying stack {name} with --yes alone"),
                &format!("add --confirm-stack {short} as well; nothing was changed"),
            )),
        };
    }
    if !interactive || ctx.json {
        return Err(crate::project::policy::refusal(
            environment,
            "confirm_destroy",
            rule,
            &format!("destroying stack {name} without a terminal to ask on"),
            &format!("add --yes --confirm-stack {short}; nothing was changed"),
        ));
    }
    crate::output::write_bytes(
        &mut std::io::stderr().lock(),
        format!(
            "Environment {environment:?} protects its stacks: type the stack name ({short}) to delete every resource of {name}: "
        )
        .as_bytes(),
    );
    let answer = read_answer().await?;
    if matches_name(answer.trim()) {
        return Ok(true);
    }
    ctx.say(format!(
        "destroy of stack {name} declined (the name did not match); nothing was changed"
    ));
    Ok(false)
}

/// Reads one line from stdin, off the async runtime.
async fn read_answer() -> lift::Result<String> {
    tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).map(|_| line)
    })
    .await
    .map_err(|err| {
        Error::new(
            lift::ErrorKind::External,
            format!("cannot read the answer: {err}"),
        )
    })?
    .map_err(|err| Error::invalid_input(format!("cannot read the answer: {err}")))
}

/// Runs an operation with the live view, asking first where pulumi would.
async fn operate(
    ctx: &Context,
    stack: Stack,
    op: Operation,
    args: OpArgs,
    grace: u64,
    hints: &Hints,
) -> lift::Result<u8> {
    if op != Operation::Preview {
        if let Some(environment) = &ctx.environment {
            check_environment_tag(&stack, environment).await?;
        }
    }
    if !confirm(ctx, &stack, op, &args, grace, hints).await? {
        return Ok(crate::EXIT_FAILURE);
    }
    run_operation(
        ctx,
        &stack,
        op,
        args.options(),
        args.show_secrets,
        args.diff,
        grace,
        hints,
    )
    .await
}

#[allow(
    clippy::too_many_arguments,
    reason = "one call per operation kind; a struct would only rename them"
)]
async fn run_operation(
    ctx: &Context,
    stack: &Stack,
    op: Operation,
    options: lift::pulumi::OpOptions,
    show_secrets: bool,
    show_diff: bool,
    grace: u64,
    hints: &Hints,
) -> lift::Result<u8> {
    let view = std::sync::Arc::new(std::sync::Mutex::new(View::new(ctx, op, show_diff)));
    let notice_view = view.clone();
    let json = ctx.json;
    let interrupts = Interrupts::watch(Duration::from_secs(grace), move |text| {
        if json {
            crate::output::stderr_line(&text);
        } else if let Ok(view) = notice_view.lock() {
            view.notice(&text);
        }
    });
    let mut options = options
        .cancel_token(interrupts.cancel.clone())
        .kill_token(interrupts.kill.clone());
    let mut events = options.subscribe();
    if !ctx.json {
        ctx.say(format!("{} stack {}", op_title(op), stack.name()));
    }
    let progress = async {
        while let Some(event) = events.next().await {
            if let Ok(mut view) = view.lock() {
                view.event(ctx, &event);
            }
        }
    };
    let (result, ()) = tokio::join!(stack.operate(op, options), progress);
    drop(interrupts);
    let changes = match view.lock() {
        Ok(mut view) => {
            view.finish(ctx);
            view.take_changes()
        }
        Err(_) => Default::default(),
    };
    match result {
        Ok(result) => {
            report_success(ctx, &result, op, show_secrets, &changes)?;
            Ok(if result.summary.result == DeployResult::Succeeded {
                0
            } else {
                crate::EXIT_FAILURE
            })
        }
        Err(err) => report_failure(ctx, stack, op, err, hints),
    }
}

fn op_title(op: Operation) -> &'static str {
    match op {
        Operation::Preview => "Previewing update of",
        Operation::Up => "Updating",
        Operation::Refresh => "Refreshing",
        Operation::Destroy => "Destroying",
    }
}

fn report_success(
    ctx: &Context,
    result: &OpResult,
    op: Operation,
    show_secrets: bool,
    changes: &super::diff::ChangesByUrn,
) -> lift::Result<()> {
    for warning in &result.warnings {
        crate::output::stderr_line(&format_args!("warning: {warning}"));
    }
    if ctx.json {
        return ctx.emit_json(&deploy_document(result, op, show_secrets, changes));
    }
    let outputs = output_documents(&result.outputs, show_secrets);
    if !outputs.is_empty() {
        ctx.say("Outputs:");
        say_outputs(ctx, &outputs);
    }
    let changes: BTreeMap<String, i64> = result
        .summary
        .resource_changes
        .iter()
        .map(|(k, v)| (k.clone(), i64::try_from(*v).unwrap_or(i64::MAX)))
        .collect();
    ctx.say(format!(
        "Resources: {}",
        if op == Operation::Preview {
            planned_changes_text(&changes)
        } else {
            changes_text(&changes)
        }
    ));
    ctx.say(format!(
        "Duration: {}{}",
        duration_text(result.summary.duration),
        match result.summary.result {
            DeployResult::Succeeded => String::new(),
            DeployResult::Failed => " (the operation failed)".to_owned(),
            DeployResult::Cancelled => " (the operation was cancelled)".to_owned(),
        }
    ));
    if let Some(version) = result.version {
        ctx.say(format!("Version: {version}"));
    }
    if let Some(link) = &result.permalink {
        ctx.say(format!("Permalink: {link}"));
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
    hints: &Hints,
) -> lift::Result<u8> {
    let resources = err
        .partial_ledger()
        .map(|ledger| resource_documents(ledger, &super::diff::ChangesByUrn::new(), op))
        .unwrap_or_default();
    let err: Error = hints.apply(err);
    if !ctx.json {
        // A failed preview changed nothing: list only what failed or did not finish.
        let shown: Vec<_> = resources
            .iter()
            .filter(|r| r.status != "planned")
            .filter(|r| !r.internal)
            .collect();
        if !shown.is_empty() {
            ctx.say("Resources:");
            for r in shown {
                ctx.say(format!("  {:<10} {:<8} {}", r.status, r.op, r.urn));
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
    crate::output::stderr_line(&format_args!("error: {err}"));
    Ok(exit_code_for(&err))
}

fn say_outputs(ctx: &Context, outputs: &BTreeMap<String, OutputDocument>) {
    for (name, output) in outputs {
        ctx.say(format!("    {name}: {}", display_value(&output.value)));
    }
}

fn display_value(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}
