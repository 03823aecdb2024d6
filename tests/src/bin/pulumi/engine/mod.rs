//! `pulumi preview|up|refresh|destroy`: plans steps from the program and the state, emits engine events,
//! prints Pulumi-like progress, and records state and history.
//!
//! `run` drives one operation; each file beside it has one job: `operation` names the four
//! operations, `plan` diffs the program against the state, `update`, `refresh` and `destroy` walk
//! the steps of each operation, `run` applies one step, `step` and `digest` give the forms a step
//! is shown in, `screen` the human output, `summary` its end, `selection` the
//! `--target`/`--exclude` rules, and `history` the record an update leaves.

mod destroy;
mod digest;
mod history;
mod operation;
mod plan;
mod refresh;
mod run;
mod screen;
mod selection;
mod step;
mod summary;
mod update;

use std::collections::BTreeMap;
use std::time::Instant;

use serde_json::Value;

use crate::clock;
use crate::config_cmd::{effective_config, load_config_file};
use crate::context::Ctx;
use crate::error::{CliError, ErrorKind};
use crate::events::{Color, EventLog};
use crate::faults::{Fail, Slow};
use crate::interrupt::{self, Interrupts};
use crate::output::print_json;
use crate::project::{self, Project};
use crate::secret;
use crate::settings::ConfigEntry;
use crate::store::{self, BackendKind};
use digest::{PreviewDiagnostic, PreviewDigest};
use run::Run;
use screen::Screen;

pub(crate) use operation::Operation;

const STACK_TYPE: &str = "pulumi:pulumi:Stack";

/// Refuses what pulumi refuses before it loads anything: exclusive flags, a missing `--yes`, bad values.
fn validate(ctx: &Ctx, op: Operation, preview: bool) -> Result<(), CliError> {
    if !ctx.args.values("target").is_empty() && !ctx.args.values("exclude").is_empty() {
        return Err(CliError::new(
            "if any flags in the group [target exclude] are set none of the others can be; [exclude target] were all set",
        ));
    }
    if op == Operation::Destroy && ctx.args.has("exclude-dependents") {
        return Err(CliError::usage("unknown flag: --exclude-dependents"));
    }
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
    Ok(())
}

/// The language host pulumi would start, when it is found on `PATH` rather than installed as a plugin:
/// pulumi warns about it, on stderr and as the first event.
fn language_host_on_path(project: &Project) -> Option<std::path::PathBuf> {
    let runtime = project.doc.get("runtime")?.as_str()?;
    let name = format!("pulumi-language-{runtime}");
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(&name))
        .find(|p| p.is_file())
}

/// The config the program sees: `--config-file`, or the stack's, over the project's defaults.
fn config_for(
    ctx: &Ctx,
    project: &Project,
    state: &store::StackState,
) -> Result<BTreeMap<String, ConfigEntry>, CliError> {
    Ok(match ctx.args.value("config-file") {
        Some(f) => {
            let mut cfg = project.config_defaults();
            cfg.extend(load_config_file(project, &ctx.cwd.join(f))?);
            cfg
        }
        None => effective_config(project, state),
    })
}

/// The prelude's view of the config: secrets blinded, other values as text.
fn prelude_config(config: &BTreeMap<String, ConfigEntry>) -> BTreeMap<String, String> {
    config
        .iter()
        .map(|(k, e)| {
            let shown = if e.secret || secret::contains_secret(&e.value) {
                secret::BLINDED.to_owned()
            } else {
                match &e.value {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                }
            };
            (k.clone(), shown)
        })
        .collect()
}

/// The Go panic report of `FAKE_PULUMI_FAIL=engine-bug`, on stderr as pulumi prints it.
fn print_engine_bug(ctx: &Ctx) {
    eprintln!(
        "The Pulumi CLI encountered a fatal error. This is a bug!\nWe would appreciate a report: https://github.com/pulumi/pulumi/issues/\nPlease provide all of the below text in your report.\n================================================================================\nPulumi Version:   {}\nGo Version:       go1.24.6\nGo Compiler:      gc\nArchitecture:     amd64\nOperating System: linux\nPanic:            fatal: An assertion has failed: fake engine bug injected by FAKE_PULUMI_FAIL=engine-bug\n\ngoroutine 1 [running]:\nmain.main()\n\t/fake/pulumi/main.go:42 +0x1d",
        ctx.faults.version()
    );
}

/// Runs an engine operation.
pub(crate) fn run(ctx: &Ctx, op: Operation) -> Result<(), CliError> {
    let preview = op == Operation::Preview || ctx.args.bool("preview-only");
    validate(ctx, op, preview)?;
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
    let state = backend.load(&project.name, &stack)?;
    // Like pulumi, which opens the stack's secrets manager to read its configuration.
    ctx.check_passphrase(&backend, &state).map_err(|e| {
        CliError::new(format!(
            "getting stack configuration: get stack secrets manager: {}",
            e.message
        ))
    })?;
    let lock = backend.lock(&project.name, &stack)?;
    let config = config_for(ctx, &project, &state)?;
    let json_mode = ctx.args.bool("json");
    let event_log_path = ctx.args.value("event-log").map(|p| ctx.cwd.join(p));
    let mut log = EventLog::open(
        event_log_path.as_deref(),
        json_mode && !preview,
        Color::from_flag(ctx.args.value("color")),
        ctx.faults.event_delay,
        ctx.faults.damage(&ctx.command),
    )?;
    let screen = Screen { quiet: json_mode };
    let started = Instant::now();
    let start_millis = clock::now_millis();
    let version = state.next_version();

    if let Some(host) = language_host_on_path(&project) {
        let message = format!(
            "using {} from $PATH at {}",
            host.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            host.display()
        );
        eprintln!("warning: {message}");
        log.diagnostic("", "warning", &message);
    }
    screen.line(&format!("{} ({stack}):", op.header(preview)));
    screen.line("");
    if let (BackendKind::Cloud { .. }, Some(url)) =
        (&backend.kind, backend.stack_url(&project.name, &stack))
    {
        let link = if preview {
            format!("{url}/previews/{:x}", start_millis)
        } else {
            format!("{url}/updates/{version}")
        };
        // A non-interactive run prints the link this way; a terminal would offer Ctrl+O.
        screen.line(&format!("View Live: {link}"));
        screen.line("");
    }
    let prelude = prelude_config(&config);
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
        program_failed: false,
        // On, as in the real engine, unless `FAKE_PULUMI_DEFAULT_PROVIDERS=0`.
        default_providers: std::env::var("FAKE_PULUMI_DEFAULT_PROVIDERS")
            .map_or(true, |v| v != "0"),
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
    let outcome = match ctx.faults.fail(&ctx.command) {
        Some(Fail::EngineBug) => {
            // The engine crashes: no summary, no cancelEvent, a Go panic report on stderr and, since
            // the exit-code contract of 3.227, exit code 1.
            print_engine_bug(ctx);
            drop(lock);
            return Err(CliError::bail(1));
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
    let result = run.finish(op);
    let duration = i64::try_from(started.elapsed().as_secs()).unwrap_or(0);
    let changes = run.changes.clone();
    run.log.summary(&changes, duration.max(1), preview, result);
    run.log.cancel();
    let outputs = outcome.as_ref().map(|(_, outputs)| outputs);
    summary::print_summary(&run, op, outputs, duration);
    if preview && json_mode {
        let doc = PreviewDigest {
            config: prelude,
            steps: run.steps_json.clone(),
            diagnostics: run
                .diagnostics
                .iter()
                .map(|(urn, message)| PreviewDiagnostic {
                    urn: urn.clone(),
                    prefix: "error: ".to_owned(),
                    message: format!("{message}\n"),
                    severity: "error".to_owned(),
                })
                .collect(),
            duration: u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX),
            change_summary: changes.clone(),
        };
        print_json(ctx, &doc);
    }
    let failed = run.failed;
    drop(run);
    if !preview {
        let entry = history::Entry {
            version,
            kind: op.kind(),
            start_millis,
            config: &config,
            result,
            changes: &changes,
        };
        history::record(
            ctx,
            &project,
            &backend,
            &stack,
            outcome.map(|(r, _)| r),
            &entry,
        )?;
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
            kind: ErrorKind::Cli,
        });
    }
    Ok(())
}
