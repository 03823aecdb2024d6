//! `pulumi preview|up|refresh|destroy`: plans steps from the program and the state, emits engine events,
//! prints Pulumi-like progress, and records state and history.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::time::Instant;

use serde_json::{Value, json};

use crate::config_cmd::{effective_config, load_config_file};
use crate::events::{EventLog, PropertyDiff, StateMeta, StepMeta};
use crate::faults::{Fail, Slow};
use crate::interrupt::{self, Interrupts, Woken};
use crate::project::{self, DeclaredResource, Program, Project};
use crate::store::{
    self, BackendKind, ConfigEntry, ResourceState, Secrets, StackState, UpdateRecord,
};
use crate::{CliError, Ctx, clock, print_json};

/// The four engine operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Operation {
    /// `pulumi preview`.
    Preview,
    /// `pulumi up`.
    Up,
    /// `pulumi refresh`.
    Refresh,
    /// `pulumi destroy`.
    Destroy,
}

const STACK_TYPE: &str = "pulumi:pulumi:Stack";

/// One planned step.
#[derive(Debug, Clone)]
struct Step {
    op: &'static str,
    name: String,
    urn: String,
    ty: String,
    old: Option<ResourceState>,
    new: Option<ResourceState>,
    keys: Vec<String>,
    diffs: Vec<String>,
    detailed: Option<BTreeMap<String, PropertyDiff>>,
}

/// Human output, silenced under `--json`.
struct Screen {
    quiet: bool,
}

impl Screen {
    fn line(&self, text: &str) {
        if !self.quiet {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{text}");
            let _ = out.flush();
        }
    }
}

fn symbol(op: &str) -> &'static str {
    match op {
        "create" => "+",
        "update" => "~",
        "delete" => "-",
        "replace" | "create-replacement" => "+-",
        "delete-replaced" => "--",
        "refresh" => "~",
        _ => " ",
    }
}

fn past(op: &str) -> &'static str {
    match op {
        "create" => "created",
        "update" => "updated",
        "delete" => "deleted",
        "replace" => "replaced",
        "create-replacement" => "created replacement",
        "delete-replaced" => "deleted original",
        "refresh" => "refreshed",
        _ => "unchanged",
    }
}

fn present(op: &str) -> &'static str {
    match op {
        "create" => "creating",
        "update" => "updating",
        "delete" => "deleting",
        "replace" => "replacing",
        "create-replacement" => "creating replacement",
        "delete-replaced" => "deleting original",
        "refresh" => "refreshing",
        _ => "",
    }
}

fn default_provider(stack: &str, project: &str, ty: &str) -> String {
    let pkg = ty.split(':').next().unwrap_or(ty);
    format!(
        "urn:pulumi:{stack}::{project}::pulumi:providers:{pkg}::default::04da6b54-80e4-46f7-96ec-b56ff0331ba9"
    )
}

fn blinded(m: &serde_json::Map<String, Value>) -> serde_json::Map<String, Value> {
    match store::render(&Value::Object(m.clone()), Secrets::Blind) {
        Value::Object(o) => o,
        _ => serde_json::Map::new(),
    }
}

/// Event state metadata of a resource; `complete` includes the ID and outputs (after the step).
fn state_meta(r: &ResourceState, complete: bool, delete: bool) -> StateMeta {
    StateMeta {
        ty: r.ty.clone(),
        urn: r.urn.clone(),
        custom: r.custom,
        delete,
        id: if complete {
            r.id.clone()
        } else {
            String::new()
        },
        parent: r.parent.clone(),
        protect: r.protect,
        inputs: blinded(&r.inputs),
        outputs: if complete {
            blinded(&r.outputs)
        } else {
            serde_json::Map::new()
        },
        provider: r.provider.clone(),
    }
}

fn meta(step: &Step, op: &str, complete: bool) -> StepMeta {
    let deleting = matches!(op, "delete" | "delete-replaced");
    StepMeta {
        op: op.to_owned(),
        urn: step.urn.clone(),
        ty: step.ty.clone(),
        old: step
            .old
            .as_ref()
            .map(|o| state_meta(o, true, op == "delete-replaced")),
        new: if deleting {
            None
        } else {
            step.new.as_ref().map(|n| state_meta(n, complete, false))
        },
        keys: step.keys.clone(),
        diffs: step.diffs.clone(),
        detailed_diff: step.detailed.clone(),
        logical: !deleting,
        provider: step
            .new
            .as_ref()
            .or(step.old.as_ref())
            .map(|r| r.provider.clone())
            .unwrap_or_default(),
    }
}

fn glob_match(pattern: &str, text: &str) -> bool {
    if !pattern.contains('*') {
        return pattern == text;
    }
    let parts: Vec<&str> = pattern.split('*').collect();
    let mut rest = text;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            match rest.strip_prefix(part) {
                Some(r) => rest = r,
                None => return false,
            }
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else if let Some(pos) = rest.find(part) {
            rest = &rest[pos + part.len()..];
        } else {
            return false;
        }
    }
    true
}

/// Which resources an operation may touch (`--target`, `--exclude` and their `-dependents`).
struct Selection {
    targets: Vec<String>,
    target_dependents: bool,
    excludes: Vec<String>,
    exclude_dependents: bool,
}

impl Selection {
    fn from(ctx: &Ctx) -> Selection {
        Selection {
            targets: ctx.args.values("target"),
            target_dependents: ctx.args.bool("target-dependents"),
            excludes: ctx.args.values("exclude"),
            exclude_dependents: ctx.args.bool("exclude-dependents"),
        }
    }

    fn restricted(&self) -> bool {
        !self.targets.is_empty() || !self.excludes.is_empty()
    }

    /// Decides for each resource in order; `links` are its parent and dependencies.
    fn decide(&self, resources: &[(String, Vec<String>)]) -> BTreeSet<String> {
        let mut chosen = BTreeSet::new();
        let mut excluded = BTreeSet::new();
        for (urn, links) in resources {
            let is_excluded = self.excludes.iter().any(|p| glob_match(p, urn))
                || (self.exclude_dependents && links.iter().any(|l| excluded.contains(l)));
            if is_excluded {
                excluded.insert(urn.clone());
                continue;
            }
            let is_target = self.targets.is_empty()
                || self.targets.iter().any(|p| glob_match(p, urn))
                || (self.target_dependents && links.iter().any(|l| chosen.contains(l)));
            if is_target {
                chosen.insert(urn.clone());
            }
        }
        chosen
    }
}

/// Runs an engine operation.
pub(crate) fn run(ctx: &Ctx, op: Operation) -> Result<(), CliError> {
    if !ctx.args.values("target").is_empty() && !ctx.args.values("exclude").is_empty() {
        return Err(CliError::new(
            "if any flags in the group [target exclude] are set none of the others can be; [exclude target] were all set",
        ));
    }
    let slow = ctx.faults.slow(&ctx.command);
    // Signal handling must be set up before any thread exists.
    let interrupts = match slow {
        Some(Slow::WaitSigint) => Interrupts::install(),
        Some(Slow::IgnoreSigint) => {
            interrupt::ignore_sigint();
            None
        }
        None => None,
    };
    let project = ctx.project()?;
    let backend = ctx.backend()?;
    let stack = ctx.stack_name(&project, &backend)?;
    let mut state = backend.load(&project.name, &stack)?;
    let preview = op == Operation::Preview || ctx.args.bool("preview-only");
    if !preview && !ctx.args.bool("yes") && !ctx.args.bool("skip-preview") {
        return Err(CliError::new(
            "--yes or --skip-preview must be passed in to proceed when running in non-interactive mode",
        ));
    }
    if let Some(p) = ctx.args.value("parallel") {
        if p.parse::<i64>().is_err() {
            return Err(CliError::usage(format!(
                "invalid argument \"{p}\" for \"-p, --parallel\" flag: strconv.ParseInt: parsing \"{p}\": invalid syntax"
            )));
        }
    }
    if let Some(c) = ctx.args.value("color") {
        if !matches!(c, "always" | "never" | "raw" | "auto") {
            return Err(CliError::usage(format!(
                "unsupported color option: '{c}'.  Supported values are: always, never, raw, auto"
            )));
        }
    }
    ctx.check_passphrase(&backend, &state)?;
    let lock = backend.lock(&project.name, &stack)?;

    let config = match ctx.args.value("config-file") {
        Some(f) => {
            let mut cfg = project.config_defaults();
            cfg.extend(load_config_file(&project, &ctx.cwd.join(f))?);
            cfg
        }
        None => effective_config(&project, &state),
    };
    let json_mode = ctx.args.bool("json");
    let event_log_path = ctx.args.value("event-log").map(|p| ctx.cwd.join(p));
    let mut log = EventLog::open(
        event_log_path.as_deref(),
        json_mode && !preview,
        ctx.faults.event_delay,
        ctx.faults.damage(&ctx.command),
    )?;
    let screen = Screen { quiet: json_mode };
    let started = Instant::now();
    let start_millis = clock::now_millis();
    let version = state.next_version();

    let header = match (op, preview) {
        (Operation::Preview, _) | (Operation::Up, true) => "Previewing update",
        (Operation::Up, false) => "Updating",
        (Operation::Refresh, true) => "Previewing refresh",
        (Operation::Refresh, false) => "Refreshing",
        (Operation::Destroy, true) => "Previewing destroy",
        (Operation::Destroy, false) => "Destroying",
    };
    screen.line(&format!("{header} ({stack})"));
    screen.line("");
    if let (BackendKind::Cloud { .. }, Some(url)) =
        (&backend.kind, backend.stack_url(&project.name, &stack))
    {
        let link = if preview {
            format!("{url}/previews/{:x}", start_millis)
        } else {
            format!("{url}/updates/{version}")
        };
        screen.line(&format!("View in Browser (Ctrl+O): {link}"));
        screen.line("");
    }

    let prelude: BTreeMap<String, String> = config
        .iter()
        .map(|(k, e)| {
            let shown = if e.secret || store::contains_secret(&e.value) {
                store::BLINDED.to_owned()
            } else {
                match &e.value {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                }
            };
            (k.clone(), shown)
        })
        .collect();
    log.prelude(&prelude);

    let mut run = Run {
        ctx,
        project: &project,
        stack: &stack,
        preview,
        log,
        screen,
        changes: BTreeMap::new(),
        diagnostics: Vec::new(),
        failed: false,
        cancelled: false,
        interrupts,
        slow,
        waited: false,
        lock: &lock,
        steps_json: Vec::new(),
    };

    let stack_urn = project::urn(
        &stack,
        &project.name,
        STACK_TYPE,
        &format!("{}-{stack}", project.name),
    );
    let kind = match op {
        Operation::Preview | Operation::Up => "update",
        Operation::Refresh => "refresh",
        Operation::Destroy => "destroy",
    };
    let outcome = match ctx.faults.fail(&ctx.command) {
        Some(Fail::EngineBug) => {
            // The engine crashes: no summary, no cancelEvent, a Go panic report on stdout.
            println!(
                "The Pulumi CLI encountered a fatal error. This is a bug!\nWe would appreciate a report: https://github.com/pulumi/pulumi/issues/\nPlease provide all of the below text in your report.\n================================================================================\nPulumi Version:   {}\nGo Version:       go1.24.6\nGo Compiler:      gc\nArchitecture:     amd64\nOperating System: linux\nPanic:            fatal: An assertion has failed: fake engine bug injected by FAKE_PULUMI_FAIL=engine-bug\n\ngoroutine 1 [running]:\nmain.main()\n\t/fake/pulumi/main.go:42 +0x1d",
                ctx.faults.version()
            );
            drop(lock);
            return Err(CliError::bail(255));
        }
        Some(Fail::Compile) => {
            let dir = project.dir.display();
            run.compile_failure(&stack_urn, &format!(
                "Running program '{dir}' failed with an unhandled exception:\nTSError: ⨯ Unable to compile TypeScript:\nindex.ts(4,7): error TS2322: Type 'number' is not assignable to type 'string'.\n"
            ));
            None
        }
        Some(Fail::Runtime) => {
            let dir = project.dir.display();
            Some(run.program_failure(&state, &stack_urn, &format!(
                "Running program '{dir}' failed with an unhandled exception:\nError: fake runtime failure injected by FAKE_PULUMI_FAIL=runtime\n    at Object.<anonymous> ({dir}/index.ts:5:11)\n"
            )))
        }
        _ => match op {
            Operation::Preview | Operation::Up => run.update(&state, &config),
            Operation::Refresh => Some(run.refresh(&state)),
            Operation::Destroy => Some(run.destroy(&state)),
        },
    };

    if run.cancelled {
        run.log.diagnostic("", "error", "update canceled");
        run.diagnostics
            .push((String::new(), "update canceled".to_owned()));
        run.failed = true;
    } else if run.failed {
        let what = match (op, preview) {
            (_, true) => "preview failed",
            (Operation::Refresh, _) => "refresh failed",
            (Operation::Destroy, _) => "destroy failed",
            _ => "update failed",
        };
        run.log.diagnostic("", "error", what);
        run.diagnostics.push((String::new(), what.to_owned()));
    }
    let result = if run.failed { "failed" } else { "succeeded" };
    let duration = i64::try_from(started.elapsed().as_secs()).unwrap_or(0);
    let changes = run.changes.clone();
    run.log.summary(&changes, duration.max(1), preview, result);
    run.log.cancel();

    // Human summary.
    if !run.diagnostics.is_empty() {
        run.screen.line("Diagnostics:");
        for (urn, msg) in &run.diagnostics {
            let owner = if urn.is_empty() {
                format!("pulumi:pulumi:Stack ({}-{stack})", project.name)
            } else {
                let name = urn.rsplit("::").next().unwrap_or_default();
                let ty = urn.rsplit("::").nth(1).unwrap_or_default();
                let ty = ty.rsplit('$').next().unwrap_or(ty);
                format!("{ty} ({name})")
            };
            run.screen.line(&format!("  {owner}:"));
            for (i, l) in msg.lines().enumerate() {
                let prefix = if i == 0 { "error: " } else { "" };
                run.screen.line(&format!("    {prefix}{l}"));
            }
            run.screen.line("");
        }
    }
    let show_outputs = !run.failed && !ctx.args.bool("suppress-outputs");
    if let Some((_, outputs)) = outcome.as_ref().filter(|_| show_outputs) {
        if !outputs.is_empty() && op != Operation::Destroy && op != Operation::Refresh {
            run.screen.line("Outputs:");
            let shown = blinded(outputs);
            for (k, v) in &shown {
                let text = match v {
                    Value::String(s) if s == store::BLINDED => s.clone(),
                    other => other.to_string(),
                };
                run.screen.line(&format!("    {k}: {text}"));
            }
            run.screen.line("");
        }
    }
    run.screen.line("Resources:");
    for (opname, n) in &changes {
        let text = if preview {
            if opname == "same" {
                format!("    {n} unchanged")
            } else {
                format!("    {} {n} to {opname}", symbol(opname))
            }
        } else if opname == "same" {
            format!("    {n} unchanged")
        } else {
            format!("    {} {n} {}", symbol(opname), past(opname))
        };
        run.screen.line(&text);
    }
    run.screen.line("");
    if !preview {
        run.screen.line(&format!("Duration: {}s", duration));
        run.screen.line("");
    }

    if preview && json_mode {
        let diagnostics = run
            .diagnostics
            .iter()
            .map(|(urn, message)| PreviewDiagnostic {
                urn: urn.clone(),
                prefix: "error: ".to_owned(),
                message: format!("{message}\n"),
                severity: "error".to_owned(),
            })
            .collect();
        let doc = PreviewDigest {
            config: prelude.clone(),
            steps: run.steps_json.clone(),
            diagnostics,
            duration: u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX),
            change_summary: changes.clone(),
        };
        print_json(ctx, &doc);
    }

    let failed = run.failed;
    let new_resources = outcome.as_ref().map(|(r, _)| r.clone());
    drop(run);
    if !preview {
        // Config and tags may have changed while the update ran (they live in the stack file here,
        // not in Pulumi.<stack>.yaml): merge into the current file instead of overwriting it.
        state = backend.load(&project.name, &stack)?;
        if let Some(resources) = new_resources {
            state.resources = resources;
        }
        let end = clock::now_millis();
        let mut environment = BTreeMap::new();
        environment.insert(
            "exec.kind".to_owned(),
            ctx.args.value("exec-kind").unwrap_or("cli").to_owned(),
        );
        environment.insert("pulumi.version".to_owned(), ctx.faults.version());
        if let Some(agent) = ctx.args.value("exec-agent") {
            environment.insert("exec.agent".to_owned(), agent.to_owned());
        }
        state.history.push(UpdateRecord {
            version,
            kind: kind.to_owned(),
            start_millis,
            end_millis: Some(end),
            message: ctx.args.value("message").unwrap_or_default().to_owned(),
            environment,
            config: config.clone(),
            result: result.to_owned(),
            resource_changes: changes.clone(),
        });
        state.last_update_millis = Some(end);
        backend.save(&state)?;
    }
    drop(lock);
    if failed {
        return Err(CliError::bail(1));
    }
    if ctx.args.bool("expect-no-changes") && changes.keys().any(|k| k != "same") {
        let operation = if ctx.command == "preview" {
            "preview"
        } else {
            "update"
        };
        return Err(CliError {
            message: format!("no changes were expected for {operation} but changes were proposed"),
            code: 7,
            kind: crate::ErrorKind::Cli,
        });
    }
    Ok(())
}

/// `previewDigest`, what `pulumi preview --json` prints.
#[derive(serde::Serialize)]
struct PreviewDigest {
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    config: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    steps: Vec<Value>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    diagnostics: Vec<PreviewDiagnostic>,
    /// Nanoseconds, like Go's `time.Duration`.
    duration: u64,
    #[serde(rename = "changeSummary", skip_serializing_if = "BTreeMap::is_empty")]
    change_summary: BTreeMap<String, i64>,
}

/// `previewDiagnostic` of `pulumi preview --json`.
#[derive(serde::Serialize)]
struct PreviewDiagnostic {
    #[serde(skip_serializing_if = "String::is_empty")]
    urn: String,
    prefix: String,
    message: String,
    severity: String,
}

/// A step as `pulumi preview --json` prints it (the Go SDK's `PreviewStep`).
fn step_json(step: &Step) -> Value {
    let state = |r: &ResourceState| {
        json!({
            "urn": r.urn,
            "custom": r.custom,
            "type": r.ty,
            "id": r.id,
            "inputs": blinded(&r.inputs),
            "outputs": blinded(&r.outputs),
            "parent": r.parent,
            "provider": r.provider,
        })
    };
    let mut o = serde_json::Map::new();
    o.insert("op".to_owned(), json!(step.op));
    o.insert("urn".to_owned(), json!(step.urn));
    let provider = step
        .new
        .as_ref()
        .or(step.old.as_ref())
        .map(|r| r.provider.clone())
        .unwrap_or_default();
    if !provider.is_empty() {
        o.insert("provider".to_owned(), json!(provider));
    }
    if let Some(old) = &step.old {
        o.insert("oldState".to_owned(), state(old));
    }
    if let Some(new) = &step.new {
        o.insert("newState".to_owned(), state(new));
    }
    if !step.diffs.is_empty() {
        o.insert("diffReasons".to_owned(), json!(step.diffs));
    }
    if !step.keys.is_empty() {
        o.insert("replaceReasons".to_owned(), json!(step.keys));
    }
    o.insert(
        "detailedDiff".to_owned(),
        match &step.detailed {
            Some(d) => json!(
                d.iter()
                    .map(|(k, v)| (
                        k.clone(),
                        json!({"kind": v.diff_kind, "inputDiff": v.input_diff})
                    ))
                    .collect::<serde_json::Map<_, _>>()
            ),
            None => Value::Null,
        },
    );
    Value::Object(o)
}

struct Run<'a> {
    ctx: &'a Ctx,
    project: &'a Project,
    stack: &'a str,
    preview: bool,
    log: EventLog,
    screen: Screen,
    changes: BTreeMap<String, i64>,
    diagnostics: Vec<(String, String)>,
    failed: bool,
    cancelled: bool,
    interrupts: Option<Interrupts>,
    slow: Option<Slow>,
    waited: bool,
    lock: &'a store::Lock,
    steps_json: Vec<Value>,
}

/// The result of a successful plan: the new resource list and the stack outputs.
type Outcome = (Vec<ResourceState>, serde_json::Map<String, Value>);

impl Run<'_> {
    fn count(&mut self, op: &str) {
        *self.changes.entry(op.to_owned()).or_insert(0) += 1;
    }

    /// Pauses once, mid-operation, when a slow mode asks for it. Returns false when cancelled.
    fn maybe_wait(&mut self) -> bool {
        if self.waited || self.cancelled {
            return !self.cancelled;
        }
        self.waited = true;
        let timeout = self.ctx.faults.slow_timeout;
        match (self.slow, &self.interrupts) {
            (Some(Slow::WaitSigint), Some(ints)) => {
                let lock = self.lock;
                match ints.wait(timeout, &|| lock.still_held()) {
                    Woken::Interrupted => {
                        let mut out = std::io::stdout().lock();
                        let _ = write!(
                            out,
                            "^C received; cancelling. If you would like to terminate immediately, press ^C again.\nNote that terminating immediately may lead to orphaned resources and other inconsistencies.\n"
                        );
                        let _ = out.flush();
                        self.cancelled = true;
                    }
                    Woken::Cancelled => self.cancelled = true,
                    Woken::TimedOut => {}
                }
            }
            (Some(Slow::IgnoreSigint), _) => std::thread::sleep(timeout),
            _ => {}
        }
        !self.cancelled
    }

    fn fails(&self, step: &Step) -> bool {
        self.ctx
            .faults
            .fail_resources
            .iter()
            .any(|f| *f == step.name || *f == step.urn)
    }

    fn show(&self, op: &str, step: &Step, done: bool) {
        let ty = step.ty.as_str();
        let text = if self.preview {
            format!(" {}  {ty} {} {op}", symbol(op), step.name)
        } else if done {
            format!(" {}  {ty} {} {}", symbol(op), step.name, past(op))
        } else {
            format!(" {}  {ty} {} {}", symbol(op), step.name, present(op))
        };
        if done || !self.preview {
            self.screen.line(text.trim_end());
        }
        if done && self.ctx.args.bool("diff") {
            self.show_diff(step);
        }
    }

    /// `--diff`: one line per changed input, secrets blinded.
    fn show_diff(&self, step: &Step) {
        let old = step
            .old
            .as_ref()
            .map(|r| blinded(&r.inputs))
            .unwrap_or_default();
        let new = step
            .new
            .as_ref()
            .map(|r| blinded(&r.inputs))
            .unwrap_or_default();
        for k in &step.diffs {
            let line = match (old.get(k), new.get(k)) {
                (Some(a), Some(b)) => format!("      ~ {k}: {a} => {b}"),
                (None, Some(b)) => format!("      + {k}: {b}"),
                (Some(a), None) => format!("      - {k}: {a}"),
                (None, None) => continue,
            };
            self.screen.line(&line);
        }
    }

    /// Runs one step's events. Returns false if the step failed.
    fn apply(&mut self, step: &Step) -> bool {
        let ops: Vec<&str> = match step.op {
            "replace" => vec!["create-replacement", "replace"],
            other => vec![other],
        };
        let planning = self.preview;
        self.steps_json.push(step_json(step));
        if step.op != "same" && step.op != "refresh" {
            self.show(step.op, step, false);
        }
        for (i, op) in ops.iter().enumerate() {
            self.log.resource_pre(&meta(step, op, false), planning);
            if i == 0 && self.fails(step) && step.op != "same" && !self.preview {
                let msg = format!(
                    "{} {} failed: fake provider error injected by FAKE_PULUMI_FAIL_RESOURCE",
                    step.ty, step.name
                );
                self.log.diagnostic(&step.urn, "error", &msg);
                self.log.res_op_failed(&meta(step, op, false));
                self.diagnostics.push((step.urn.clone(), msg));
                self.failed = true;
                self.show(&format!("{} failed", present(step.op)), step, true);
                return false;
            }
            let out_op = match step.op {
                "refresh" if step.diffs.is_empty() => "same",
                "refresh" => "update",
                _ => op,
            };
            self.log.res_outputs(&meta(step, out_op, true), planning);
        }
        self.count(match step.op {
            "refresh" if step.diffs.is_empty() => "same",
            "refresh" => "update",
            other => other,
        });
        if step.op != "same" {
            self.show(step.op, step, true);
        }
        true
    }

    /// A program that fails before it registers the stack resource (a compilation error).
    fn compile_failure(&mut self, stack_urn: &str, message: &str) {
        self.log.diagnostic(stack_urn, "error", message);
        self.diagnostics
            .push((stack_urn.to_owned(), message.to_owned()));
        self.failed = true;
    }

    /// A program that fails after registering the stack resource (a runtime error). The stack
    /// resource is in the state afterwards, as with the real engine.
    fn program_failure(&mut self, state: &StackState, stack_urn: &str, message: &str) -> Outcome {
        let outputs = state
            .stack_resource()
            .map(|r| r.outputs.clone())
            .unwrap_or_default();
        let step = self.stack_step(state, stack_urn, &outputs);
        self.log
            .resource_pre(&meta(&step, step.op, false), self.preview);
        self.log
            .res_outputs(&meta(&step, step.op, true), self.preview);
        self.count(step.op);
        self.log.diagnostic(stack_urn, "error", message);
        self.diagnostics
            .push((stack_urn.to_owned(), message.to_owned()));
        self.failed = true;
        let mut resources = state.resources.clone();
        if step.old.is_none() {
            if let Some(new) = step.new {
                resources.insert(0, new);
            }
        }
        (resources, outputs)
    }

    fn stack_step(
        &self,
        state: &StackState,
        stack_urn: &str,
        outputs: &serde_json::Map<String, Value>,
    ) -> Step {
        let old = state.stack_resource().cloned();
        let now = clock::format_millis(clock::now_millis());
        let new = ResourceState {
            urn: stack_urn.to_owned(),
            ty: STACK_TYPE.to_owned(),
            custom: false,
            id: String::new(),
            parent: String::new(),
            inputs: serde_json::Map::new(),
            outputs: outputs.clone(),
            provider: String::new(),
            protect: false,
            dependencies: Vec::new(),
            created: old
                .as_ref()
                .map(|o| o.created.clone())
                .unwrap_or_else(|| now.clone()),
            modified: now,
        };
        Step {
            op: if old.is_some() { "same" } else { "create" },
            name: format!("{}-{}", self.project.name, self.stack),
            urn: stack_urn.to_owned(),
            ty: STACK_TYPE.to_owned(),
            old,
            new: Some(new),
            keys: Vec::new(),
            diffs: Vec::new(),
            detailed: None,
        }
    }

    /// Plans `preview`/`up` steps, iterating until replacements (which change IDs) settle.
    fn plan(
        &self,
        state: &StackState,
        config: &BTreeMap<String, ConfigEntry>,
    ) -> Result<(Program, Vec<Step>), CliError> {
        let ids: BTreeMap<String, String> = state
            .resources
            .iter()
            .map(|r| (r.urn.clone(), r.id.clone()))
            .collect();
        let forced: Vec<String> = self.ctx.args.values("replace");
        let mut replaced: Vec<String> = Vec::new();
        for _ in 0..8 {
            let program = project::evaluate(self.project, self.stack, config, &ids, &replaced)?;
            let steps = self.diff_steps(state, &program, &forced);
            let now_replaced: Vec<String> = steps
                .iter()
                .filter(|s| s.op == "replace")
                .map(|s| s.urn.clone())
                .collect();
            if now_replaced.iter().all(|u| replaced.contains(u)) {
                return Ok((program, steps));
            }
            for u in now_replaced {
                if !replaced.contains(&u) {
                    replaced.push(u);
                }
            }
        }
        Err(CliError::program("replacements did not settle".to_owned()))
    }

    fn diff_steps(&self, state: &StackState, program: &Program, forced: &[String]) -> Vec<Step> {
        let now = clock::format_millis(clock::now_millis());
        let old: BTreeMap<&str, &ResourceState> = state
            .resources
            .iter()
            .map(|r| (r.urn.as_str(), r))
            .collect();
        program
            .resources
            .iter()
            .map(|d| {
                let prev = old.get(d.urn.as_str()).copied();
                let new = self.declared_state(d, prev, &now);
                let (op, keys, diffs, detailed) = match prev {
                    None => ("create", Vec::new(), Vec::new(), None),
                    Some(p) => {
                        let diffs = changed_keys(&p.inputs, &d.inputs);
                        let detailed: BTreeMap<String, PropertyDiff> = diffs
                            .iter()
                            .map(|k| {
                                let kind = if !p.inputs.contains_key(k) {
                                    "add"
                                } else if !d.inputs.contains_key(k) {
                                    "delete"
                                } else {
                                    "update"
                                };
                                let replaces =
                                    d.replace_on_changes.iter().any(|r| r == k || r == "*");
                                let kind = if replaces {
                                    format!("{kind}-replace")
                                } else {
                                    kind.to_owned()
                                };
                                (
                                    k.clone(),
                                    PropertyDiff {
                                        diff_kind: kind,
                                        input_diff: true,
                                    },
                                )
                            })
                            .collect();
                        let keys: Vec<String> = diffs
                            .iter()
                            .filter(|k| d.replace_on_changes.iter().any(|r| r == *k || r == "*"))
                            .cloned()
                            .collect();
                        let force = forced.iter().any(|f| glob_match(f, &d.urn));
                        if force || !keys.is_empty() {
                            ("replace", keys, diffs, Some(detailed))
                        } else if !diffs.is_empty() {
                            ("update", Vec::new(), diffs, Some(detailed))
                        } else {
                            ("same", Vec::new(), Vec::new(), None)
                        }
                    }
                };
                Step {
                    op,
                    name: d.name.clone(),
                    urn: d.urn.clone(),
                    ty: d.ty.clone(),
                    old: prev.cloned(),
                    new: Some(new),
                    keys,
                    diffs,
                    detailed,
                }
            })
            .collect()
    }

    fn declared_state(
        &self,
        d: &DeclaredResource,
        prev: Option<&ResourceState>,
        now: &str,
    ) -> ResourceState {
        let mut outputs = d.inputs.clone();
        let id = d.resolved_id.clone();
        if !d.component {
            outputs.insert("id".to_owned(), Value::String(id.clone()));
        }
        ResourceState {
            urn: d.urn.clone(),
            ty: d.ty.clone(),
            custom: !d.component,
            id,
            parent: d.parent.clone(),
            inputs: d.inputs.clone(),
            outputs,
            provider: if d.component {
                String::new()
            } else {
                default_provider(self.stack, &self.project.name, &d.ty)
            },
            protect: d.protect,
            dependencies: d.dependencies.clone(),
            created: prev
                .map(|p| p.created.clone())
                .unwrap_or_else(|| now.to_owned()),
            modified: now.to_owned(),
        }
    }

    fn update(
        &mut self,
        state: &StackState,
        config: &BTreeMap<String, ConfigEntry>,
    ) -> Option<Outcome> {
        let stack_urn = project::urn(
            self.stack,
            &self.project.name,
            STACK_TYPE,
            &format!("{}-{}", self.project.name, self.stack),
        );
        let (program, steps) = match self.plan(state, config) {
            Ok(p) => p,
            Err(e) => {
                let msg = format!("{}: {}", self.project_file_name(), e.message);
                return Some(self.program_failure(state, &stack_urn, &msg));
            }
        };
        let stack_step = self.stack_step(
            state,
            &program.stack_urn,
            &state
                .stack_resource()
                .map(|r| r.outputs.clone())
                .unwrap_or_default(),
        );
        self.log
            .resource_pre(&meta(&stack_step, stack_step.op, false), self.preview);
        self.log
            .res_outputs(&meta(&stack_step, stack_step.op, true), self.preview);
        self.count(stack_step.op);
        if stack_step.op == "create" {
            self.show("create", &stack_step, true);
        }
        // A slow mode pauses here, mid-update, with the lock held and the first events written.
        self.maybe_wait();
        if self.ctx.args.bool("refresh") {
            // `--refresh` reads every custom resource first. As in the engine's refresh-with-program
            // streams, these steps are shown but not counted in the summary.
            for r in state.resources.iter().filter(|r| r.custom) {
                let step = Step {
                    op: "refresh",
                    name: r.urn.rsplit("::").next().unwrap_or_default().to_owned(),
                    urn: r.urn.clone(),
                    ty: r.ty.clone(),
                    old: Some(r.clone()),
                    new: Some(r.clone()),
                    keys: Vec::new(),
                    diffs: Vec::new(),
                    detailed: None,
                };
                let result_op = if self.preview { "refresh" } else { "same" };
                self.log
                    .resource_pre(&meta(&step, "refresh", false), self.preview);
                self.log
                    .res_outputs(&meta(&step, result_op, true), self.preview);
            }
        }

        let selection = Selection::from(self.ctx);
        let links: Vec<(String, Vec<String>)> = program
            .resources
            .iter()
            .map(|d| {
                let mut l = d.dependencies.clone();
                l.push(d.parent.clone());
                (d.urn.clone(), l)
            })
            .collect();
        let chosen = selection.decide(&links);
        let continue_on_error = self.ctx.args.bool("continue-on-error");
        let mut result: Vec<ResourceState> = Vec::new();
        let mut replaced_old: Vec<Step> = Vec::new();
        let declared: BTreeSet<&str> = program.resources.iter().map(|d| d.urn.as_str()).collect();
        // With --continue-on-error the engine goes on, but skips whatever depends on a failed resource.
        let mut broken: BTreeSet<String> = BTreeSet::new();
        for step in &steps {
            let links = step
                .new
                .as_ref()
                .map(|n| {
                    let mut l = n.dependencies.clone();
                    l.push(n.parent.clone());
                    l
                })
                .unwrap_or_default();
            if links.iter().any(|l| broken.contains(l)) {
                broken.insert(step.urn.clone());
                if let Some(old) = &step.old {
                    result.push(old.clone());
                }
                continue;
            }
            if !chosen.contains(&step.urn) || (self.failed && !continue_on_error) || self.cancelled
            {
                if let Some(old) = &step.old {
                    result.push(old.clone());
                }
                continue;
            }
            if !self.maybe_wait() {
                if let Some(old) = &step.old {
                    result.push(old.clone());
                }
                continue;
            }
            if self.apply(step) {
                if let Some(new) = &step.new {
                    result.push(new.clone());
                }
                if step.op == "replace" {
                    replaced_old.push(step.clone());
                }
            } else {
                broken.insert(step.urn.clone());
                if let Some(old) = &step.old {
                    result.push(old.clone());
                }
            }
        }
        // Deletions of resources no longer declared, in reverse order, then the originals of replacements.
        let mut leftovers: Vec<ResourceState> = Vec::new();
        for old in state.resources.iter().rev() {
            if old.ty == STACK_TYPE || declared.contains(old.urn.as_str()) {
                continue;
            }
            let targeted = !selection.restricted()
                || (selection.targets.iter().any(|p| glob_match(p, &old.urn))
                    && !selection.excludes.iter().any(|p| glob_match(p, &old.urn)));
            if !targeted || (self.failed && !continue_on_error) || self.cancelled {
                leftovers.push(old.clone());
                continue;
            }
            let step = Step {
                op: "delete",
                name: old.urn.rsplit("::").next().unwrap_or_default().to_owned(),
                urn: old.urn.clone(),
                ty: old.ty.clone(),
                old: Some(old.clone()),
                new: None,
                keys: Vec::new(),
                diffs: Vec::new(),
                detailed: None,
            };
            if old.protect {
                self.protected(&step);
                leftovers.push(old.clone());
                continue;
            }
            if !self.apply(&step) {
                leftovers.push(old.clone());
            }
        }
        for step in replaced_old {
            let mut original = step.clone();
            original.new = None;
            self.log
                .resource_pre(&meta(&original, "delete-replaced", false), self.preview);
            self.log
                .res_outputs(&meta(&original, "delete-replaced", true), self.preview);
        }
        let mut outputs = serde_json::Map::new();
        if !self.failed && !self.cancelled {
            outputs = program.outputs.clone();
            let mut final_stack = stack_step.clone();
            if let Some(n) = final_stack.new.as_mut() {
                n.outputs = outputs.clone();
            }
            self.log
                .res_outputs(&meta(&final_stack, final_stack.op, true), self.preview);
        }
        let mut resources = Vec::new();
        let mut stack_res = stack_step.new.clone()?;
        stack_res.outputs = if self.failed || self.cancelled {
            state
                .stack_resource()
                .map(|r| r.outputs.clone())
                .unwrap_or_default()
        } else {
            outputs.clone()
        };
        resources.push(stack_res);
        resources.extend(result);
        leftovers.reverse();
        resources.extend(leftovers);
        Some((resources, outputs))
    }

    fn project_file_name(&self) -> String {
        ["Pulumi.yaml", "Pulumi.yml", "Pulumi.json"]
            .iter()
            .map(|f| self.project.dir.join(f))
            .find(|p| p.is_file())
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "Pulumi.yaml".to_owned())
    }

    fn protected(&mut self, step: &Step) {
        let msg = format!(
            "unable to delete resource \"{}\"\nas it is currently marked for protection. To unprotect the resource, remove the `protect` flag from the resource in your Pulumi program and run `pulumi up`, or use the command:\n`pulumi state unprotect '{}'`",
            step.urn, step.urn
        );
        self.log
            .resource_pre(&meta(step, "delete", false), self.preview);
        self.log.diagnostic(&step.urn, "error", &msg);
        self.log.res_op_failed(&meta(step, "delete", false));
        self.diagnostics.push((step.urn.clone(), msg));
        self.failed = true;
    }

    fn refresh(&mut self, state: &StackState) -> Outcome {
        self.maybe_wait();
        let selection = Selection::from(self.ctx);
        let links: Vec<(String, Vec<String>)> = state
            .resources
            .iter()
            .map(|r| {
                let mut l = r.dependencies.clone();
                l.push(r.parent.clone());
                (r.urn.clone(), l)
            })
            .collect();
        let chosen = selection.decide(&links);
        let mut refreshed: Vec<ResourceState> = Vec::new();
        for r in &state.resources {
            if !r.custom || !chosen.contains(&r.urn) || self.cancelled {
                refreshed.push(r.clone());
                continue;
            }
            if !self.maybe_wait() {
                refreshed.push(r.clone());
                continue;
            }
            let name = r.urn.rsplit("::").next().unwrap_or_default().to_owned();
            let mut new = r.clone();
            let drifted = self
                .ctx
                .faults
                .drift
                .iter()
                .any(|d| *d == name || *d == r.urn);
            if drifted {
                // The "cloud" changed behind Pulumi's back: the refresh reads a new output.
                new.outputs.insert(
                    "driftedAt".to_owned(),
                    json!(clock::format_millis(clock::now_millis())),
                );
            }
            let step = Step {
                op: "refresh",
                name,
                urn: r.urn.clone(),
                ty: r.ty.clone(),
                old: Some(r.clone()),
                new: Some(new.clone()),
                keys: Vec::new(),
                diffs: if drifted {
                    vec!["driftedAt".to_owned()]
                } else {
                    Vec::new()
                },
                detailed: None,
            };
            if self.apply(&step) && drifted {
                refreshed.push(new);
            } else {
                refreshed.push(r.clone());
            }
            continue;
        }
        let outputs = state
            .stack_resource()
            .map(|r| r.outputs.clone())
            .unwrap_or_default();
        (refreshed, outputs)
    }

    fn destroy(&mut self, state: &StackState) -> Outcome {
        self.maybe_wait();
        let selection = Selection::from(self.ctx);
        let links: Vec<(String, Vec<String>)> = state
            .resources
            .iter()
            .map(|r| {
                let mut l = r.dependencies.clone();
                l.push(r.parent.clone());
                (r.urn.clone(), l)
            })
            .collect();
        let chosen = selection.decide(&links);
        let continue_on_error = self.ctx.args.bool("continue-on-error");
        let mut kept: Vec<ResourceState> = Vec::new();
        for r in state.resources.iter().rev() {
            let is_stack = r.ty == STACK_TYPE;
            let selected = if is_stack {
                !selection.restricted()
            } else {
                chosen.contains(&r.urn)
            };
            if !selected
                || self.cancelled
                || (self.failed && !continue_on_error)
                || (is_stack && self.failed)
            {
                kept.push(r.clone());
                continue;
            }
            if !self.maybe_wait() {
                kept.push(r.clone());
                continue;
            }
            let step = Step {
                op: "delete",
                name: r.urn.rsplit("::").next().unwrap_or_default().to_owned(),
                urn: r.urn.clone(),
                ty: r.ty.clone(),
                old: Some(r.clone()),
                new: None,
                keys: Vec::new(),
                diffs: Vec::new(),
                detailed: None,
            };
            if r.protect {
                self.protected(&step);
                kept.push(r.clone());
                continue;
            }
            if !self.apply(&step) {
                kept.push(r.clone());
            }
        }
        kept.reverse();
        let outputs = kept
            .iter()
            .find(|r| r.ty == STACK_TYPE)
            .map(|r| r.outputs.clone())
            .unwrap_or_default();
        (kept, outputs)
    }
}

/// Input keys whose values differ between two input maps.
fn changed_keys(
    old: &serde_json::Map<String, Value>,
    new: &serde_json::Map<String, Value>,
) -> Vec<String> {
    let mut keys: BTreeSet<&String> = old.keys().collect();
    keys.extend(new.keys());
    keys.into_iter()
        .filter(|k| old.get(*k) != new.get(*k))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_and_selections_follow_dependencies() {
        assert!(glob_match(
            "urn:*::bucket",
            "urn:pulumi:dev::p::aws:s3:Bucket::bucket"
        ));
        assert!(!glob_match(
            "urn:*::bucket",
            "urn:pulumi:dev::p::aws:s3:Bucket::other"
        ));
        let res = vec![
            ("a".to_owned(), vec![]),
            ("b".to_owned(), vec!["a".to_owned()]),
            ("c".to_owned(), vec![]),
        ];
        let sel = |t: &[&str], dep: bool| Selection {
            targets: t.iter().map(|s| (*s).to_owned()).collect(),
            target_dependents: dep,
            excludes: vec![],
            exclude_dependents: false,
        };
        assert_eq!(sel(&["a"], false).decide(&res).len(), 1);
        assert_eq!(sel(&["a"], true).decide(&res).len(), 2);
        assert_eq!(sel(&[], false).decide(&res).len(), 3);
        let ex = Selection {
            targets: vec![],
            target_dependents: false,
            excludes: vec!["a".into()],
            exclude_dependents: true,
        };
        assert_eq!(
            ex.decide(&res).into_iter().collect::<Vec<_>>(),
            vec!["c".to_owned()]
        );
    }

    #[test]
    fn changed_keys_cover_adds_updates_and_removals() {
        let old = json!({"a": 1, "b": 2}).as_object().cloned().unwrap();
        let new = json!({"a": 1, "b": 3, "c": 4})
            .as_object()
            .cloned()
            .unwrap();
        assert_eq!(changed_keys(&old, &new), vec!["b", "c"]);
    }
}
