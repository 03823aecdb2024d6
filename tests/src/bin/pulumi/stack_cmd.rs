//! `pulumi stack ...`, `whoami` and `cancel`.

use std::collections::BTreeMap;
use std::io::Read;

use serde_json::{Value, json};

use crate::clock;
use crate::config_cmd::ConfigValueJson;
use crate::context::Ctx;
use crate::error::CliError;
use crate::output::print_json;
use crate::secret::{self, Secrets};
use crate::stack_name::{check_qualified, normalize_stack_name};
use crate::store::{self, Backend, BackendKind, ResourceState, StackState};

/// `stackSummaryJSON` of `pulumi stack ls --json`.
#[derive(serde::Serialize)]
struct StackSummaryJson {
    name: String,
    current: bool,
    #[serde(rename = "lastUpdate", skip_serializing_if = "Option::is_none")]
    last_update: Option<String>,
    #[serde(rename = "updateInProgress", skip_serializing_if = "Option::is_none")]
    update_in_progress: Option<bool>,
    #[serde(rename = "resourceCount", skip_serializing_if = "Option::is_none")]
    resource_count: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<String>,
}

/// `updateInfoJSON` of `pulumi stack history --json`.
#[derive(serde::Serialize)]
struct UpdateInfoJson {
    version: i64,
    kind: String,
    #[serde(rename = "startTime")]
    start_time: String,
    message: String,
    environment: BTreeMap<String, String>,
    config: BTreeMap<String, ConfigValueJson>,
    #[serde(skip_serializing_if = "String::is_empty")]
    result: String,
    #[serde(rename = "endTime", skip_serializing_if = "Option::is_none")]
    end_time: Option<String>,
    #[serde(rename = "resourceChanges", skip_serializing_if = "Option::is_none")]
    resource_changes: Option<BTreeMap<String, i64>>,
}

/// `whoAmIJSON` of `pulumi whoami --json`.
#[derive(serde::Serialize)]
struct WhoAmIJson {
    user: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    organizations: Vec<String>,
    url: String,
}

/// Dispatches `stack` sub-commands.
pub(crate) fn run(ctx: &Ctx) -> Result<(), CliError> {
    match ctx.command.as_str() {
        "stack init" => init(ctx),
        "stack select" => select(ctx),
        "stack ls" => ls(ctx),
        "stack rm" => rm(ctx),
        "stack export" => export(ctx),
        "stack import" => import(ctx),
        "stack output" => output(ctx),
        "stack history" => history(ctx),
        "stack unselect" => {
            let project = ctx.project()?;
            ctx.backend()?.set_current(&project.name, None)
        }
        "stack tag get" | "stack tag set" | "stack tag rm" | "stack tag ls" => tag(ctx),
        "stack" => info(ctx),
        other => Err(CliError::usage(format!("unknown command \"{other}\""))),
    }
}

/// Resolves the project, backend and stack of a command and loads the stack.
fn load(ctx: &Ctx) -> Result<(crate::project::Project, Backend, StackState), CliError> {
    let project = ctx.project()?;
    let backend = ctx.backend()?;
    let name = ctx.stack_name(&project, &backend)?;
    let state = backend.load(&project.name, &name)?;
    Ok((project, backend, state))
}

/// `pulumi whoami [--json]`.
pub(crate) fn whoami(ctx: &Ctx) -> Result<(), CliError> {
    if ctx.args.has("stack") {
        return Err(CliError::usage("unknown flag: --stack"));
    }
    let backend = ctx.backend()?;
    let user = store::username();
    if ctx.args.bool("json") {
        let organizations = match backend.kind {
            BackendKind::Cloud { .. } => vec![store::organization()],
            BackendKind::Diy => Vec::new(),
        };
        print_json(
            ctx,
            &WhoAmIJson {
                user,
                organizations,
                url: backend.url.clone(),
            },
        );
    } else if ctx.args.bool("verbose") || ctx.args.has("verbose") {
        println!("User: {user}\nBackend URL: {}", backend.url);
    } else {
        println!("{user}");
    }
    Ok(())
}

/// `pulumi cancel --yes`: removes the update lock (what the diy backend does).
pub(crate) fn cancel(ctx: &Ctx) -> Result<(), CliError> {
    let project = ctx.project()?;
    let backend = ctx.backend()?;
    let name = match ctx.arg(0) {
        Some(s) => normalize_stack_name(s)?,
        None => ctx.stack_name(&project, &backend)?,
    };
    backend.load(&project.name, &name)?;
    if !ctx.args.bool("yes") {
        return Err(CliError::new(
            "--yes must be passed in to proceed when running in non-interactive mode",
        ));
    }
    // Like the real DIY backend: delete the lock files, whether or not
    // anything runs, stop nothing, and say it was cancelled.
    backend.break_locks(&project.name, &name)?;
    println!("The currently running update for '{name}' has been canceled!");
    Ok(())
}

fn init(ctx: &Ctx) -> Result<(), CliError> {
    let project = ctx.project()?;
    let backend = ctx.backend()?;
    let raw = match (ctx.arg(0), ctx.args.value("stack")) {
        (Some(a), _) => a.to_owned(),
        (None, Some(s)) => s.to_owned(),
        (None, None) => {
            return Err(CliError::new(
                "a stack name must be provided in non-interactive mode",
            ));
        }
    };
    let name = normalize_stack_name(&raw)?;
    check_qualified(&raw, &project, &backend)?;
    if backend.exists(&project.name, &name) {
        // Pulumi names the stack fully qualified here.
        let org = match backend.kind {
            BackendKind::Diy => "organization".to_owned(),
            BackendKind::Cloud { .. } => store::organization(),
        };
        return Err(CliError::new(format!(
            "stack '{org}/{}/{name}' already exists",
            project.name
        )));
    }
    let mut state = StackState::new(&project.name, &name);
    if let Some(p) = ctx.args.value("secrets-provider") {
        state.secrets_provider = p.to_owned();
    }
    state.passphrase_check = ctx.check_passphrase(&backend, &state)?;
    // The real DIY backend writes an empty checkpoint at init, so `stack ls`
    // shows a last update and a resource count of 0 from the start.
    state.last_update_millis = Some(crate::clock::now_millis());
    if let Some(from) = ctx.args.value("copy-config-from") {
        let source = backend.load(&project.name, &normalize_stack_name(from)?)?;
        state.config = source.config;
    }
    backend.save(&state)?;
    if !ctx.args.bool("no-select") {
        backend.set_current(&project.name, Some(&name))?;
    }
    eprintln!("Created stack '{name}'");
    Ok(())
}

fn select(ctx: &Ctx) -> Result<(), CliError> {
    let project = ctx.project()?;
    let backend = ctx.backend()?;
    let raw = match (ctx.arg(0), ctx.args.value("stack")) {
        (Some(a), _) => a.to_owned(),
        (None, Some(s)) => s.to_owned(),
        (None, None) => {
            return Err(CliError::new(
                "no stack selected; please use `pulumi stack select` or `pulumi stack init` to choose one",
            ));
        }
    };
    let name = normalize_stack_name(&raw)?;
    if !backend.exists(&project.name, &name) {
        if ctx.args.bool("create") {
            backend.save(&StackState::new(&project.name, &name))?;
        } else {
            return Err(CliError::stack_not_found(&name));
        }
    }
    backend.set_current(&project.name, Some(&name))
}

fn ls(ctx: &Ctx) -> Result<(), CliError> {
    let project = ctx.project()?;
    let backend = ctx.backend()?;
    let current = backend.current(&project.name);
    let mut rows = Vec::new();
    let listed = ctx.args.value("project").unwrap_or(&project.name);
    for name in backend.list_stacks(listed)? {
        let state = backend.load(listed, &name)?;
        if let Some(tag) = ctx.args.value("tag") {
            let (k, v) = match tag.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (tag, None),
            };
            match (state.tags.get(k), v) {
                (Some(actual), Some(want)) if actual == want => {}
                (Some(_), None) => {}
                _ => continue,
            }
        }
        let in_progress = backend.is_locked(&project.name, &name);
        let cloud = matches!(backend.kind, BackendKind::Cloud { .. });
        let mut row = StackSummaryJson {
            name: name.clone(),
            current: current.as_deref() == Some(name.as_str()),
            last_update: None,
            update_in_progress: None,
            resource_count: None,
            url: backend.stack_url(&project.name, &name),
        };
        if let Some(ms) = state.last_update_millis {
            // Only the cloud backend reports progress; the diy backend always shows the last update.
            if in_progress && cloud {
                row.update_in_progress = Some(true);
            } else {
                row.last_update = Some(clock::format_millis(ms));
                if cloud {
                    row.update_in_progress = Some(false);
                }
            }
            row.resource_count = Some(state.resources.len());
        }
        rows.push(row);
    }
    if ctx.args.bool("json") {
        print_json(ctx, &rows);
    } else {
        println!("NAME  LAST UPDATE  RESOURCE COUNT");
        for r in rows {
            let star = if r.current { "*" } else { "" };
            let last = match (r.update_in_progress, &r.last_update) {
                (Some(true), _) => "in progress".to_owned(),
                (_, Some(t)) => t.clone(),
                _ => "n/a".to_owned(),
            };
            let count = r
                .resource_count
                .map(|c| c.to_string())
                .unwrap_or_else(|| "n/a".to_owned());
            println!("{}{star}  {last}  {count}", r.name);
        }
    }
    Ok(())
}

fn rm(ctx: &Ctx) -> Result<(), CliError> {
    let project = ctx.project()?;
    let backend = ctx.backend()?;
    let name = match ctx.arg(0) {
        Some(s) => normalize_stack_name(s)?,
        None => ctx.stack_name(&project, &backend)?,
    };
    let state = backend.load(&project.name, &name)?;
    if !ctx.args.bool("yes") {
        return Err(CliError::new(
            "--yes must be passed in to proceed when running in non-interactive mode",
        ));
    }
    if !state.resources.is_empty() && !ctx.args.bool("force") {
        return Err(CliError::new(format!(
            "'{name}' still has resources; removal rejected. Possible actions:\n- Make sure that '{name}' is the stack that you want to destroy\n- Run `pulumi destroy` to delete the resources, then run `pulumi stack rm`\n- Run `pulumi stack rm --force` to override this error"
        )));
    }
    if backend.is_locked(&project.name, &name) && !ctx.args.bool("force") {
        return Err(backend
            .lock(&project.name, &name)
            .err()
            .unwrap_or_else(|| CliError::new("the stack is currently locked")));
    }
    backend.remove(&project.name, &name, ctx.args.bool("preserve-config"))?;
    // Like pulumi, which forgets the selection whichever stack was removed.
    backend.set_current(&project.name, None)?;
    println!("Stack '{name}' has been removed!");
    Ok(())
}

/// The untyped deployment (`apitype.UntypedDeployment`, version 3) of a stack.
pub(crate) fn deployment(state: &StackState, mode: Secrets, version: &str) -> Value {
    let resources: Vec<Value> = state
        .resources
        .iter()
        .map(|r| {
            let mut o = serde_json::Map::new();
            o.insert("urn".to_owned(), json!(r.urn));
            o.insert("custom".to_owned(), json!(r.custom));
            if !r.id.is_empty() {
                o.insert("id".to_owned(), json!(r.id));
            }
            o.insert("type".to_owned(), json!(r.ty));
            if !r.inputs.is_empty() {
                o.insert(
                    "inputs".to_owned(),
                    secret::render(&Value::Object(r.inputs.clone()), mode),
                );
            }
            if !r.outputs.is_empty() {
                o.insert(
                    "outputs".to_owned(),
                    secret::render(&Value::Object(r.outputs.clone()), mode),
                );
            }
            if !r.parent.is_empty() {
                o.insert("parent".to_owned(), json!(r.parent));
            }
            if r.protect {
                o.insert("protect".to_owned(), json!(true));
            }
            if !r.provider.is_empty() {
                o.insert("provider".to_owned(), json!(r.provider));
            }
            if !r.dependencies.is_empty() {
                o.insert("dependencies".to_owned(), json!(r.dependencies));
            }
            o.insert("created".to_owned(), json!(r.created));
            o.insert("modified".to_owned(), json!(r.modified));
            Value::Object(o)
        })
        .collect();
    json!({
        "version": 3,
        "deployment": {
            "manifest": {
                "time": clock::format_millis(state.last_update_millis.unwrap_or_else(clock::now_millis)),
                "magic": "fake-pulumi-manifest",
                "version": version,
            },
            "secrets_providers": {"type": state.secrets_provider, "state": {"salt": "v1:ZmFrZQ==:v1:ZmFrZQ==:ZmFrZQ=="}},
            "resources": resources,
            "metadata": {},
        }
    })
}

fn export(ctx: &Ctx) -> Result<(), CliError> {
    let (_, backend, state) = load(ctx)?;
    if ctx.args.bool("show-secrets") && has_secrets(&state) {
        ctx.check_passphrase(&backend, &state)
            .map_err(|e| decrypt_error("could not deserialize deployment: ", &e))?;
    }
    let mode = if ctx.args.bool("show-secrets") {
        Secrets::ExportPlain
    } else {
        Secrets::Sealed
    };
    let doc = deployment(&state, mode, &ctx.faults.version());
    if let Some(path) = ctx.args.value("file") {
        let text = serde_json::to_string_pretty(&doc).unwrap_or_default();
        std::fs::write(path, text)
            .map_err(|e| CliError::io("writing", std::path::Path::new(path), &e))?;
        return Ok(());
    }
    print_json(ctx, &doc);
    Ok(())
}

fn import(ctx: &Ctx) -> Result<(), CliError> {
    let (_, backend, mut state) = load(ctx)?;
    let text = match ctx.args.value("file") {
        Some(p) => std::fs::read_to_string(p)
            .map_err(|e| CliError::io("could not read", std::path::Path::new(p), &e))?,
        None => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .map_err(|e| CliError::new(format!("could not read deployment from stdin: {e}")))?;
            s
        }
    };
    let doc: Value = serde_json::from_str(&text)
        .map_err(|e| CliError::new(format!("could not read deployment: {e}")))?;
    let version = doc.get("version").and_then(Value::as_i64).unwrap_or(0);
    if !(1..=3).contains(&version) {
        return Err(CliError::new(format!(
            "could not deserialize deployment: unsupported deployment version {version}"
        )));
    }
    let resources = doc
        .pointer("/deployment/resources")
        .cloned()
        .unwrap_or(Value::Array(Vec::new()));
    let Value::Array(items) = resources else {
        return Err(CliError::new(
            "could not deserialize deployment: resources must be an array",
        ));
    };
    let _lock = backend.lock(&state.project, &state.name)?;
    let mut imported = Vec::new();
    for item in items {
        let s = |k: &str| {
            item.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let urn = s("urn");
        let ty = s("type");
        if urn.is_empty() || ty.is_empty() {
            return Err(CliError::new(
                "could not deserialize deployment: every resource needs a urn and a type",
            ));
        }
        let obj = |k: &str| -> serde_json::Map<String, Value> {
            match item.get(k) {
                Some(Value::Object(o)) => reseal(o),
                _ => serde_json::Map::new(),
            }
        };
        imported.push(ResourceState {
            urn,
            ty,
            custom: item.get("custom").and_then(Value::as_bool).unwrap_or(false),
            id: s("id"),
            parent: s("parent"),
            inputs: obj("inputs"),
            outputs: obj("outputs"),
            provider: s("provider"),
            protect: item
                .get("protect")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            dependencies: item
                .get("dependencies")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default(),
            created: s("created"),
            modified: s("modified"),
        });
    }
    state.resources = imported;
    let now = clock::now_millis();
    state.last_update_millis = Some(now);
    backend.save(&state)?;
    println!("Import complete.");
    Ok(())
}

/// Converts exported secrets (`plaintext` form) back into the sealed state form.
fn reseal(o: &serde_json::Map<String, Value>) -> serde_json::Map<String, Value> {
    fn walk(v: &Value) -> Value {
        if secret::is_sealed(v) {
            return match secret::unseal(v) {
                Some(inner) => secret::seal(&inner),
                None => v.clone(),
            };
        }
        match v {
            Value::Array(a) => Value::Array(a.iter().map(walk).collect()),
            Value::Object(o) => {
                Value::Object(o.iter().map(|(k, x)| (k.clone(), walk(x))).collect())
            }
            other => other.clone(),
        }
    }
    o.iter().map(|(k, v)| (k.clone(), walk(v))).collect()
}

/// The stack outputs as stored on the stack resource.
pub(crate) fn stack_outputs(state: &StackState) -> serde_json::Map<String, Value> {
    state
        .stack_resource()
        .map(|r| r.outputs.clone())
        .unwrap_or_default()
}

fn output(ctx: &Ctx) -> Result<(), CliError> {
    let (_, backend, state) = load(ctx)?;
    if ctx.args.bool("show-secrets") && has_secrets(&state) {
        ctx.check_passphrase(&backend, &state)
            .map_err(|e| decrypt_error("", &e))?;
    }
    let mode = if ctx.args.bool("show-secrets") {
        Secrets::Reveal
    } else {
        Secrets::Blind
    };
    let outputs = match secret::render(&Value::Object(stack_outputs(&state)), mode) {
        Value::Object(o) => o,
        _ => serde_json::Map::new(),
    };
    if let Some(name) = ctx.arg(0) {
        let Some(v) = outputs.get(name) else {
            return Err(CliError::new(format!(
                "current stack does not have output property '{name}'"
            )));
        };
        if ctx.args.bool("json") {
            print_json(ctx, v);
        } else {
            match v {
                Value::String(s) => println!("{s}"),
                other => println!("{other}"),
            }
        }
        return Ok(());
    }
    if ctx.args.bool("json") {
        print_json(ctx, &Value::Object(outputs));
    } else {
        println!("Current stack outputs ({}):", outputs.len());
        if outputs.is_empty() {
            println!("    No output values currently in this stack");
        } else {
            println!("    OUTPUT  VALUE");
            for (k, v) in &outputs {
                match v {
                    Value::String(s) => println!("    {k}  {s}"),
                    other => println!("    {k}  {other}"),
                }
            }
        }
    }
    Ok(())
}

fn history(ctx: &Ctx) -> Result<(), CliError> {
    let (_, backend, state) = load(ctx)?;
    if ctx.args.bool("show-secrets") {
        ctx.check_passphrase(&backend, &state)
            .map_err(|e| CliError::new(format!("decrypting secrets: {}", e.message)))?;
    }
    let page_size = ctx.args.int("page-size")?.unwrap_or(10);
    let page = ctx.args.int("page")?.unwrap_or(1).max(1);
    let show = ctx.args.bool("show-secrets");
    let mut entries: Vec<&store::UpdateRecord> = state.history.iter().rev().collect();
    if page_size > 0 {
        let size = usize::try_from(page_size).unwrap_or(usize::MAX);
        let skip = usize::try_from(page - 1).unwrap_or(0).saturating_mul(size);
        entries = entries.into_iter().skip(skip).take(size).collect();
    }
    let docs: Vec<UpdateInfoJson> = entries
        .iter()
        .map(|u| {
            let config = u
                .config
                .iter()
                .map(|(k, e)| {
                    let secret = e.secret || secret::contains_secret(&e.value);
                    let (value, object_value) = if !secret || show {
                        match secret::render(&e.value, Secrets::Reveal) {
                            Value::String(s) => (Some(s), None),
                            obj => (Some(obj.to_string()), Some(obj)),
                        }
                    } else {
                        (None, None)
                    };
                    (
                        k.clone(),
                        ConfigValueJson {
                            value,
                            object_value,
                            secret,
                        },
                    )
                })
                .collect();
            UpdateInfoJson {
                // DIY backends do not number their updates: the real CLI prints 0.
                version: if backend.kind == store::BackendKind::Diy {
                    0
                } else {
                    u.version
                },
                kind: u.kind.clone(),
                start_time: clock::format_millis(u.start_millis),
                message: u.message.clone(),
                environment: u.environment.clone(),
                config,
                result: u.result.clone(),
                end_time: u.end_millis.map(clock::format_millis),
                resource_changes: u.end_millis.map(|_| u.resource_changes.clone()),
            }
        })
        .collect();
    if ctx.args.bool("json") {
        print_json(ctx, &docs);
    } else if docs.is_empty() {
        println!("Stack has never been updated");
    } else {
        for d in docs {
            println!(
                "Version: {}\nUpdateKind: {}\nStatus: {}\nMessage: {}\n",
                d.version, d.kind, d.result, d.message
            );
        }
    }
    Ok(())
}

fn tag(ctx: &Ctx) -> Result<(), CliError> {
    let (_, backend, mut state) = load(ctx)?;
    let builtin = |state: &StackState| -> BTreeMap<String, String> {
        // The DIY backend keeps only the tags a user set; the Pulumi Cloud
        // adds `pulumi:project`, `pulumi:runtime` and more.
        let mut t = BTreeMap::new();
        if matches!(backend.kind, BackendKind::Cloud { .. }) {
            t.insert("pulumi:project".to_owned(), state.project.clone());
            t.insert("pulumi:runtime".to_owned(), "yaml".to_owned());
        }
        t
    };
    match ctx.command.as_str() {
        "stack tag get" => {
            let Some(k) = ctx.arg(0) else {
                return Err(CliError::usage(
                    "`pulumi stack tag get` requires the tag name",
                ));
            };
            let all = builtin(&state)
                .into_iter()
                .chain(state.tags.clone())
                .collect::<BTreeMap<_, _>>();
            match all.get(k) {
                Some(v) => {
                    println!("{v}");
                    Ok(())
                }
                None => Err(CliError::new(format!(
                    "stack tag '{k}' not found for stack '{}'",
                    state.name
                ))),
            }
        }
        "stack tag set" => {
            let (Some(k), Some(v)) = (ctx.arg(0), ctx.arg(1)) else {
                return Err(CliError::usage(
                    "`pulumi stack tag set` requires the tag name and value",
                ));
            };
            if k.starts_with("pulumi:") || k.starts_with("gitHub:") || k.starts_with("vcs:") {
                return Err(CliError::new(format!(
                    "invalid stack tag \"{k}\": tags starting with \"pulumi:\", \"gitHub:\" or \"vcs:\" are reserved"
                )));
            }
            state.tags.insert(k.to_owned(), v.to_owned());
            backend.save(&state)
        }
        "stack tag rm" => {
            let Some(k) = ctx.arg(0) else {
                return Err(CliError::usage(
                    "`pulumi stack tag rm` requires the tag name",
                ));
            };
            state.tags.remove(k);
            backend.save(&state)
        }
        _ => {
            let all = builtin(&state)
                .into_iter()
                .chain(state.tags.clone())
                .collect::<BTreeMap<_, _>>();
            if ctx.args.bool("json") {
                print_json(ctx, &json!(all));
            } else {
                for (k, v) in all {
                    println!("{k}  {v}");
                }
            }
            Ok(())
        }
    }
}

fn info(ctx: &Ctx) -> Result<(), CliError> {
    if let Some(extra) = ctx.arg(0) {
        return Err(CliError::usage(format!(
            "unknown command \"{extra}\" for \"pulumi stack\""
        )));
    }
    let (_, backend, state) = load(ctx)?;
    println!("Current stack is {}:", state.name);
    println!("    Managed by {}", store::username());
    match state.last_update_millis {
        Some(ms) => println!("    Last updated: {}", clock::format_millis(ms)),
        None => println!("    Last update: n/a"),
    }
    if let Some(url) = backend.stack_url(&state.project, &state.name) {
        println!("    URL: {url}");
    }
    println!("Current stack resources ({}):", state.resources.len());
    for r in &state.resources {
        println!(
            "    {}  {}",
            r.ty,
            r.urn.rsplit("::").next().unwrap_or_default()
        );
    }
    Ok(())
}

/// Whether a stack's state holds a secret to decrypt.
fn has_secrets(state: &StackState) -> bool {
    state.resources.iter().any(|r| {
        r.outputs
            .values()
            .chain(r.inputs.values())
            .any(secret::contains_secret)
    })
}

/// Pulumi's wording when the state's secrets cannot be decrypted.
fn decrypt_error(context: &str, e: &CliError) -> CliError {
    if e.message == "incorrect passphrase" {
        CliError::new(format!(
            "{context}failed to decrypt: incorrect passphrase, please set PULUMI_CONFIG_PASSPHRASE to the correct passphrase or set PULUMI_CONFIG_PASSPHRASE_FILE to a file containing the passphrase"
        ))
    } else {
        CliError::new(format!("{context}{}", e.message))
    }
}
