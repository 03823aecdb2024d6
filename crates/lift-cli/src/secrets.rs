//! `lift secrets`: store, read and rotate secrets in a file store, or in AWS
//! Secrets Manager with `--aws`. The subcommands are the same for both.
//!
//! Only `get` prints a value. Every other command prints names, version ids,
//! labels and dates, never values.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, Subcommand};
use lift::secrets::{
    AuditedProvider, FaultPlan, FaultTrigger, FileRotationStore, FileSecretsProvider,
    FileStoreOptions, MemoryRotationStore, NativeRotation, Protection, RotateOptions,
    RotationEngine, RotationOutcome, RotationPreflight, RotationStep, RotationStore, StoreLimits,
    StoreOnlyRotator, ValueKind,
};
use lift::{
    DeleteMode, Error, PutOptions, SecretName, SecretsProvider, StageLabel, VersionId,
    VersionSelector,
};

use crate::context::Context;
use crate::secret_document::SecretValueDocument;

/// Arguments of `lift secrets`.
#[derive(Debug, Args)]
pub struct SecretsArgs {
    /// The secret store directory (created with mode 0700 when absent). With --aws, where
    /// rotation checkpoints, history and the rotation lock are kept: rotate, resume, cancel
    /// and history need it, so that every lift sees the same rotation state.
    #[arg(long, value_name = "DIR", env = "LIFT_SECRETS_STORE")]
    pub store: Option<PathBuf>,
    /// Use AWS Secrets Manager; region and credentials come from the standard AWS chain.
    #[arg(long, conflicts_with_all = ["key_file", "plaintext"])]
    pub aws: bool,
    /// The AWS region (with --aws; default: the standard chain's).
    #[arg(long, value_name = "R", requires = "aws")]
    pub region: Option<String>,
    /// The Secrets Manager endpoint, for emulators and VPC endpoints (with --aws).
    #[arg(long, value_name = "URL", requires = "aws")]
    pub endpoint_url: Option<String>,
    /// A prefix added to every secret name in AWS, such as `myapp/` (with --aws).
    #[arg(long, value_name = "PREFIX", requires = "aws")]
    pub prefix: Option<String>,
    /// The 32-byte key file that encrypts the store (default: LIFT_SECRETS_KEY_FILE).
    #[arg(long, value_name = "FILE")]
    pub key_file: Option<PathBuf>,
    /// Store values unencrypted (development only; logged at warn level).
    #[arg(long)]
    pub plaintext: bool,
    /// The operation.
    #[command(subcommand)]
    pub op: SecretsOp,
}

/// A `lift secrets` operation.
#[derive(Debug, Subcommand)]
pub enum SecretsOp {
    /// Write a new version; the value is read from stdin (one trailing newline is stripped).
    Put {
        /// The secret name.
        name: String,
        /// The idempotency token (becomes the version id): repeating a put with it and the same value does nothing.
        #[arg(long, value_name = "TOKEN")]
        token: Option<String>,
        /// Labels for the new version, comma-separated (default AWSCURRENT).
        #[arg(long, value_name = "LABELS", value_delimiter = ',')]
        stages: Option<Vec<String>>,
    },
    /// Print a version's value (the only command that prints one).
    #[command(disable_version_flag = true)]
    Get {
        /// The secret name.
        name: String,
        /// The staging label to read.
        #[arg(long, default_value = "AWSCURRENT", conflicts_with = "version")]
        stage: String,
        /// The version id to read.
        #[arg(long, value_name = "ID")]
        version: Option<String>,
    },
    /// List secrets, including those scheduled for deletion.
    List,
    /// Show a secret's versions, labels and rotation state.
    Describe {
        /// The secret name.
        name: String,
    },
    /// Rotate a secret through createSecret, setSecret, testSecret and finishSecret.
    ///
    /// The CLI rotates in the store only: it changes no outside system. Programs that
    /// must update a database or an API use the library with their own Rotator.
    /// A JSON object secret keeps every field but the one rotated (`password` by default).
    Rotate {
        /// The kind of value to generate, remembered for later rotations of the secret: password[:LEN], token[:BYTES[:PREFIX]], hex[:BYTES], base64[:BYTES], uuid, jwt, bytes[:LEN] (default: the kind declared before, else a 32-character password). Nothing is guessed from the old value.
        #[arg(long, value_name = "KIND")]
        kind: Option<String>,
        /// The field to rotate when the secret is a JSON object (default: password).
        #[arg(long, value_name = "FIELD")]
        field: Option<String>,
        /// Rotate even when AWS Secrets Manager rotates the secret itself (RotationEnabled).
        #[arg(long)]
        force: bool,
        /// Fail STEP (createSecret, setSecret, testSecret or finishSecret) once, as a real
        /// failure would, to rehearse recovery; history marks it injected. Refused in a
        /// production-class environment.
        #[arg(long, value_name = "STEP")]
        inject_fault: Option<String>,
        /// The secret name.
        name: String,
    },
    /// Continue an interrupted rotation from the step it reached.
    Resume {
        /// Fail STEP once on the way (see `rotate --inject-fault`).
        #[arg(long, value_name = "STEP")]
        inject_fault: Option<String>,
        /// The secret name.
        name: String,
    },
    /// Cancel an interrupted rotation: AWSPENDING is removed, AWSCURRENT stays.
    Cancel {
        /// The secret name.
        name: String,
    },
    /// Show a secret's rotation history (ids and outcomes, never values).
    History {
        /// The secret name.
        name: String,
    },
    /// Delete a secret: recoverable for 30 days unless --force.
    Delete {
        /// The secret name.
        name: String,
        /// Delete now, with no way back.
        #[arg(long, conflicts_with = "recovery_window_days")]
        force: bool,
        /// The recovery window, 7 to 30 days.
        #[arg(long, value_name = "DAYS", default_value_t = 30)]
        recovery_window_days: u32,
    },
    /// Cancel a recoverable delete.
    Restore {
        /// The secret name.
        name: String,
    },
}

type Provider = AuditedProvider<Arc<dyn SecretsProvider>>;

fn parse_name(raw: &str) -> lift::Result<SecretName> {
    raw.parse()
}

/// Whether the operation reads or writes rotation state.
fn uses_rotation_state(op: &SecretsOp) -> bool {
    matches!(
        op,
        SecretsOp::Rotate { .. }
            | SecretsOp::Resume { .. }
            | SecretsOp::Cancel { .. }
            | SecretsOp::History { .. }
    )
}

/// Plans one injected failure of `step` for `name`, when `--inject-fault STEP` was given.
fn inject(engine: &RotationEngine, step: Option<&str>, name: &SecretName) -> lift::Result<()> {
    let Some(step) = step else { return Ok(()) };
    let step = RotationStep::ALL
        .into_iter()
        .find(|s| s.as_str().eq_ignore_ascii_case(step) || s.snake() == step)
        .ok_or_else(|| {
            Error::invalid_input(format!(
                "--inject-fault {step:?} is not a rotation step; give createSecret, setSecret, testSecret or finishSecret"
            ))
        })?;
    engine.faults().inject(
        FaultPlan::new(
            step,
            FaultTrigger::Times(1),
            "requested with --inject-fault",
        )
        .for_secret(name.clone()),
    );
    Ok(())
}

/// Whether the operation only reads, so must not create a store that is not there.
fn reads_only(op: &SecretsOp) -> bool {
    matches!(
        op,
        SecretsOp::Get { .. }
            | SecretsOp::List
            | SecretsOp::Describe { .. }
            | SecretsOp::History { .. }
    )
}

async fn open(args: &SecretsArgs, ctx: &Context) -> lift::Result<(Arc<Provider>, RotationEngine)> {
    let mut aws_checks: Option<AwsChecks> = None;
    let (inner, rotation): (Arc<dyn SecretsProvider>, Arc<dyn RotationStore>) = if args.aws {
        // Rotation checkpoints, history and the rotation lock live in --store, where every
        // lift sees them: kept in memory, two lifts could rotate one secret at once and
        // history would always be empty.
        let rotation: Arc<dyn RotationStore> = match &args.store {
            Some(dir) => Arc::new(FileRotationStore::new(dir)),
            None if uses_rotation_state(&args.op) => {
                return Err(Error::invalid_input(
                    "with --aws, rotate, resume, cancel and history keep rotation state (checkpoints, history, the rotation lock) in a directory every lift shares: pass --store DIR or set LIFT_SECRETS_STORE",
                ));
            }
            // The other commands only look for state to show or forget, and there is none here.
            None => Arc::new(MemoryRotationStore::default()),
        };
        let (provider, checks) = aws_provider(args).await?;
        aws_checks = Some(checks);
        (provider, rotation)
    } else {
        let root = args.store.clone().ok_or_else(|| {
            Error::invalid_input(
                "no secret store given: pass --store DIR, set LIFT_SECRETS_STORE, or use --aws",
            )
        })?;
        let protection = protection(args)?;
        if reads_only(&args.op) && !root.exists() {
            // A read never creates a store: a mistyped --store must not leave one behind.
            return Err(Error::not_found(format!(
                "no secret store at {root:?}: check --store (or LIFT_SECRETS_STORE), or create it with `lift secrets put NAME`"
            )));
        }
        // A store records the environment it was created for; opening it for another
        // (`--env prod` on a dev store) is refused before anything is read or written.
        let mut options = FileStoreOptions::default();
        if let Some(environment) = &ctx.environment {
            options = options.environment(environment);
        }
        let store = FileSecretsProvider::open_with(&root, protection, &options)?;
        let rotation = Arc::new(store.rotation_store());
        (Arc::new(store), rotation)
    };
    // An operator reading a value is an access worth an audit record.
    let provider = Arc::new(AuditedProvider::new(inner, ctx.audit.clone()).audit_reads(true));
    let mut engine = RotationEngine::new(provider.clone(), rotation).with_audit(ctx.audit.clone());
    if let Some(checks) = aws_checks {
        // AWS's own rotation (a rotation Lambda) and lift must not both rotate a secret,
        // and a rotation the caller's IAM policy would refuse halfway is refused up front.
        engine = engine
            .with_native_rotation(checks.native)
            .with_preflight(checks.preflight);
    }
    Ok((provider, engine))
}

/// The store's protection from `--key-file`, then `LIFT_SECRETS_KEY_FILE` (unless
/// `--plaintext`), then `--plaintext`.
fn protection(args: &SecretsArgs) -> lift::Result<Protection> {
    if args.key_file.is_some() && args.plaintext {
        return Err(Error::invalid_input(
            "--key-file and --plaintext exclude each other; choose one",
        ));
    }
    let from_env = || {
        std::env::var_os(lift::secrets::KEY_FILE_ENV)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let key_file = match &args.key_file {
        Some(path) => Some(path.clone()),
        None if args.plaintext => None,
        None => from_env(),
    };
    Ok(Protection::from_options(
        key_file.as_deref(),
        key_file.is_none() && args.plaintext,
    )?)
}

/// What the rotation engine asks AWS before it rotates.
struct AwsChecks {
    native: Arc<dyn NativeRotation>,
    preflight: Arc<dyn RotationPreflight>,
}

#[cfg(feature = "aws")]
async fn aws_provider(args: &SecretsArgs) -> lift::Result<(Arc<dyn SecretsProvider>, AwsChecks)> {
    let mut builder = lift::secrets::AwsSecretsManagerProvider::builder();
    if let Some(region) = &args.region {
        builder = builder.region(region);
    }
    if let Some(url) = &args.endpoint_url {
        builder = builder.endpoint_url(url);
    }
    if let Some(prefix) = &args.prefix {
        builder = builder.prefix(prefix);
    }
    let provider = Arc::new(builder.build().await);
    let checks = AwsChecks {
        native: provider.clone(),
        preflight: provider.clone(),
    };
    Ok((provider, checks))
}

#[cfg(not(feature = "aws"))]
async fn aws_provider(_args: &SecretsArgs) -> lift::Result<(Arc<dyn SecretsProvider>, AwsChecks)> {
    Err(Error::invalid_input(
        "this lift was built without AWS support; reinstall it with `cargo install lift-cli --features aws`",
    ))
}

pub(crate) async fn run(args: SecretsArgs, ctx: &Context) -> lift::Result<u8> {
    // Keys and values are in this process's memory from here on: keep it out of core dumps.
    lift::secrets::harden_process()?;
    let (provider, engine) = open(&args, ctx).await?;
    match args.op {
        SecretsOp::Put {
            name,
            token,
            stages,
        } => {
            let name = parse_name(&name)?;
            let mut options = PutOptions::default();
            if let Some(token) = token {
                options = options.token(VersionId::new(token)?);
            }
            if let Some(stages) = stages {
                options = options.stages(
                    stages
                        .into_iter()
                        .map(StageLabel::new)
                        .collect::<lift::Result<Vec<_>>>()?,
                );
            }
            let limit = StoreLimits::default().max_value_bytes;
            let value = lift::secrets::read_value(
                name.as_str(),
                &format!("value for {name} (input hidden): "),
                limit,
            )?;
            let outcome = provider.put(&name, &value, &options).await?;
            drop(value);
            if ctx.json {
                ctx.emit_json(&outcome)?;
            } else if outcome.created {
                ctx.say(format!(
                    "stored version {} of {name} [{}]",
                    outcome.version_id,
                    labels(&outcome.stages)
                ));
            } else {
                ctx.say(format!(
                    "version {} of {name} already holds this value; nothing changed",
                    outcome.version_id
                ));
            }
        }
        SecretsOp::Get {
            name,
            stage,
            version,
        } => {
            let name = parse_name(&name)?;
            let selector = match version {
                Some(id) => VersionSelector::Version(VersionId::new(id)?),
                None => VersionSelector::Stage(StageLabel::new(stage)?),
            };
            let version = provider.get(&name, &selector).await?;
            if ctx.json {
                let mut out = std::io::stdout().lock();
                SecretValueDocument::expose(&version)
                    .write_json(&mut out)
                    .map_err(|e| {
                        Error::new(
                            lift::ErrorKind::Io,
                            format!("cannot write the value to stdout: {e}"),
                        )
                    })?;
            } else {
                let mut out = std::io::stdout().lock();
                out.write_all(version.value.expose())
                    .and_then(|()| out.write_all(b"\n"))
                    .and_then(|()| out.flush())
                    .map_err(|e| {
                        Error::new(
                            lift::ErrorKind::Io,
                            format!("cannot write the value to stdout: {e}"),
                        )
                    })?;
            }
        }
        SecretsOp::List => {
            let secrets = provider.list().await?;
            if ctx.json {
                ctx.emit_json(&secrets)?;
            } else if secrets.is_empty() {
                ctx.say("no secrets");
            } else {
                for s in &secrets {
                    let deletion = s
                        .deletion_date
                        .map(|d| format!("  (deleted; purged on {})", d.to_rfc3339()))
                        .unwrap_or_default();
                    ctx.say(format!(
                        "{}  {}{deletion}",
                        s.name,
                        s.last_changed_at.to_rfc3339()
                    ));
                }
            }
        }
        SecretsOp::Describe { name } => {
            let name = parse_name(&name)?;
            let description = provider.describe(&name).await?;
            if ctx.json {
                ctx.emit_json(&description)?;
            } else {
                ctx.say(format!(
                    "{} (created {})",
                    description.name,
                    description.created_at.to_rfc3339()
                ));
                if let Some(date) = description.deletion_date {
                    ctx.say(format!("scheduled for deletion on {}", date.to_rfc3339()));
                }
                for v in &description.versions {
                    ctx.say(format!(
                        "  {}  {}  [{}]",
                        v.version_id,
                        v.created_at.to_rfc3339(),
                        labels(&v.stages)
                    ));
                }
                let state = engine.state(&name).await?;
                if let Some(c) = &state.checkpoint {
                    ctx.say(format!(
                        "rotation {} in progress: {} completed; resume with `lift secrets resume {name}` or cancel with `lift secrets cancel {name}`",
                        c.rotation_id,
                        c.step_reached.map_or("no step", |s| s.as_str())
                    ));
                }
            }
        }
        SecretsOp::Rotate {
            kind,
            field,
            force,
            inject_fault,
            name,
        } => {
            let name = parse_name(&name)?;
            inject(&engine, inject_fault.as_deref(), &name)?;
            let mut options = RotateOptions::default().force(force);
            if let Some(kind) = kind {
                options = options.kind(kind.parse::<ValueKind>()?);
            }
            if let Some(field) = field {
                options = options.field(field);
            }
            let report = engine.rotate(&name, &StoreOnlyRotator, &options).await?;
            report_rotation(ctx, &report)?;
        }
        SecretsOp::Resume { inject_fault, name } => {
            let name = parse_name(&name)?;
            inject(&engine, inject_fault.as_deref(), &name)?;
            let report = engine.resume(&name, &StoreOnlyRotator).await?;
            report_rotation(ctx, &report)?;
        }
        SecretsOp::Cancel { name } => {
            let name = parse_name(&name)?;
            let record = engine.cancel(&name).await?;
            if ctx.json {
                ctx.emit_json(&record)?;
            } else {
                let current = provider
                    .describe(&name)
                    .await?
                    .version_with(StageLabel::CURRENT)
                    .map(|v| v.version_id.clone());
                ctx.say(cancel_message(&name, &record, current.as_ref()));
            }
        }
        SecretsOp::History { name } => {
            let name = parse_name(&name)?;
            let history = engine.history(&name).await?;
            if ctx.json {
                ctx.emit_json(&history)?;
            } else if history.is_empty() {
                ctx.say(format!("{name} has never been rotated"));
            } else {
                for r in &history {
                    let outcome = match r.outcome {
                        RotationOutcome::Succeeded => "succeeded",
                        RotationOutcome::Failed => "failed",
                        RotationOutcome::Cancelled => "cancelled",
                    };
                    let mut line = format!(
                        "{}  {}  {outcome}  reached {}  {} -> {}",
                        r.started_at.to_rfc3339(),
                        r.rotation_id,
                        r.step_reached.map_or("no step", |s| s.as_str()),
                        r.old_version.as_ref().map_or("-", VersionId::as_str),
                        r.new_version.as_ref().map_or("-", VersionId::as_str),
                    );
                    if let Some(error) = &r.error {
                        line.push_str(&format!("  error: {error}"));
                    }
                    if r.injected {
                        line.push_str("  (injected)");
                    }
                    ctx.say(line);
                }
            }
        }
        SecretsOp::Delete {
            name,
            force,
            recovery_window_days,
        } => {
            let name = parse_name(&name)?;
            let mode = if force {
                DeleteMode::Force
            } else {
                DeleteMode::Recoverable {
                    recovery_window_days,
                }
            };
            // Through the engine: a force delete also forgets the rotation state, so a
            // new secret of the same name does not inherit it.
            let description = engine.delete(&name, mode).await?;
            if ctx.json {
                ctx.emit_json(&description)?;
            } else if force {
                ctx.say(format!("deleted {name} for good"));
            } else if let Some(date) = description.deletion_date {
                ctx.say(format!(
                    "{name} is scheduled for deletion on {}; restore it before then with `lift secrets restore {name}`",
                    date.to_rfc3339()
                ));
            }
        }
        SecretsOp::Restore { name } => {
            let name = parse_name(&name)?;
            provider.restore(&name).await?;
            let description = provider.describe(&name).await?;
            if ctx.json {
                ctx.emit_json(&description)?;
            } else {
                ctx.say(format!("restored {name}"));
            }
        }
    }
    Ok(0)
}

/// What `cancel` did, truthfully: cancelling never moves AWSCURRENT, but something
/// else may have moved it since the rotation began.
fn cancel_message(
    name: &SecretName,
    record: &lift::secrets::RotationRecord,
    current: Option<&VersionId>,
) -> String {
    let id = &record.rotation_id;
    let none = "no version";
    let show =
        |v: Option<&VersionId>| v.map_or_else(|| none.to_owned(), |v| format!("version {v}"));
    if current.is_some() && current == record.old_version.as_ref() {
        format!(
            "cancelled rotation {id} of {name}; AWSCURRENT is unchanged ({})",
            show(current)
        )
    } else if current.is_some() && current == record.new_version.as_ref() {
        format!(
            "cancelled rotation {id} of {name}; it had already made {} AWSCURRENT, and cancelling does not move it back (put the old value again to undo it)",
            show(current)
        )
    } else {
        format!(
            "cancelled rotation {id} of {name}; AWSCURRENT had moved since the rotation began (from {} to {}), not by this rotation, and cancelling left it there",
            show(record.old_version.as_ref()),
            show(current)
        )
    }
}

fn labels(stages: &[StageLabel]) -> String {
    stages
        .iter()
        .map(StageLabel::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

fn report_rotation(ctx: &Context, report: &lift::secrets::RotationReport) -> lift::Result<()> {
    if ctx.json {
        return ctx.emit_json(report);
    }
    ctx.say(format!(
        "rotated {}{}: AWSCURRENT is now version {} (was {}); store-only rotation, no outside system was changed",
        report.name,
        if report.resumed { " (resumed)" } else { "" },
        report.new_version,
        report.old_version.as_ref().map_or("none", VersionId::as_str),
    ));
    Ok(())
}
