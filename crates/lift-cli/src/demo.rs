//! `lift demo`: lift's main job end to end, on embedded defaults, in a temporary directory.
//!
//! The walkthrough needs no setup and no network beyond loopback:
//! 1. it creates an encrypted secret store and a keyed audit log;
//! 2. it starts a small local service that authenticates clients against a
//!    credentials file, provisions a database password for it, and rotates
//!    the password through all four steps with a rotator that really changes
//!    the service's credential and proves the new one works;
//! 3. it runs the health manager with the real checks, including the secret
//!    store's, the audit log's and (when installed) the Pulumi CLI's;
//! 4. with a real `pulumi`, it deploys a `runtime: yaml` stack with only
//!    outputs on a file backend; without one it says the step was skipped;
//! 5. it closes and verifies the audit trail, checks that the password
//!    appears in no file outside the secret store, and prints where
//!    everything is.
//!
//! It exits 1 if any step that ran failed.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use futures::StreamExt as _;
use lift::audit::{AuditHealthCheck, AuditKey, FileAuditSink, SinkOptions, VerifyOptions};
use lift::monitor::{Endpoint, Group, Monitor, MonitorConfig, StandardChecks};
use lift::pulumi::{CliHealthCheck, OpOptions, PulumiCli, Workspace};
use lift::secrets::{
    AuditedProvider, FileSecretsProvider, PasswordPolicy, Protection, RotateOptions,
    RotationEngine, Rotator, StepContext, StoreHealthCheck, StoreKey, generate_password,
};
use lift::{
    AuditSink, Error, ErrorKind, HealthStatus, OutputValue, PutOptions, SecretName, SecretValue,
    SecretsProvider, VersionSelector,
};
use serde::Serialize;
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::{TcpListener, TcpStream};

use crate::context::Context;

/// Arguments of `lift demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Run in DIR (created if missing) instead of a fresh temporary directory.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Remove the demo directory at the end instead of keeping it for inspection.
    #[arg(long)]
    pub remove: bool,
}

/// The secret the demo rotates.
const SECRET: &str = "demo/db/password";

/// One step of the walkthrough, as `--json` prints it.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub(crate) struct DemoStep {
    /// The step's name.
    pub(crate) name: String,
    /// `ok`, `failed` or `skipped`.
    pub(crate) status: String,
    /// What happened, with the figures that matter.
    pub(crate) detail: String,
    /// How long the step took, in milliseconds.
    pub(crate) millis: u128,
}

/// The document `lift demo --json` prints.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub(crate) struct DemoReport {
    /// Where the demo's files are (removed when `--remove` was given).
    pub(crate) directory: String,
    /// Whether every step that ran succeeded.
    pub(crate) ok: bool,
    /// The steps, in order.
    pub(crate) steps: Vec<DemoStep>,
}

/// Where the demo keeps its files.
struct Layout {
    root: PathBuf,
    store: PathBuf,
    store_key: PathBuf,
    audit_log: PathBuf,
    audit_key: PathBuf,
    credentials: PathBuf,
    project: PathBuf,
}

impl Layout {
    fn new(root: PathBuf) -> Self {
        Layout {
            store: root.join("secrets"),
            store_key: root.join("keys/secrets.key"),
            audit_log: root.join("audit/audit.jsonl"),
            audit_key: root.join("keys/audit.key"),
            credentials: root.join("service/credentials"),
            project: root.join("pulumi-project"),
            root,
        }
    }
}

struct Walkthrough<'a> {
    ctx: &'a Context,
    steps: Vec<DemoStep>,
}

impl Walkthrough<'_> {
    /// Runs one step, prints its outcome and records it. Returns the step's value when it succeeded.
    async fn step<T>(
        &mut self,
        name: &str,
        run: impl std::future::Future<Output = lift::Result<(T, String)>>,
    ) -> Option<T> {
        let number = self.steps.len() + 1;
        self.ctx.say(format!("\n[{number}] {name}"));
        let started = Instant::now();
        let result = run.await;
        let millis = started.elapsed().as_millis();
        let (status, detail, value) = match result {
            Ok((value, detail)) => ("ok", detail, Some(value)),
            Err(err) => ("failed", format!("{err} ({})", err.kind()), None),
        };
        for line in detail.lines() {
            self.ctx.say(format!("    {line}"));
        }
        self.ctx.say(format!("    -> {status} in {millis} ms"));
        self.steps.push(DemoStep {
            name: name.to_owned(),
            status: status.to_owned(),
            detail,
            millis,
        });
        value
    }

    fn skip(&mut self, name: &str, why: String) {
        let number = self.steps.len() + 1;
        self.ctx
            .say(format!("\n[{number}] {name}\n    skipped: {why}"));
        self.steps.push(DemoStep {
            name: name.to_owned(),
            status: "skipped".to_owned(),
            detail: why,
            millis: 0,
        });
    }
}

pub(crate) async fn run(args: DemoArgs, ctx: &Context) -> lift::Result<u8> {
    let root = match &args.dir {
        Some(dir) => {
            create_private_dir(dir)?;
            dir.clone()
        }
        None => tempfile::Builder::new()
            .prefix("lift-demo-")
            .tempdir()
            .map_err(|err| io_error("cannot create a temporary directory", &err))?
            .keep(),
    };
    let layout = Layout::new(root);
    ctx.say(format!("lift demo: working in {}", layout.root.display()));
    let mut walk = Walkthrough {
        ctx,
        steps: Vec::new(),
    };

    let keys = walk
        .step(
            "create an encrypted secret store and a keyed audit log",
            setup(&layout),
        )
        .await;
    let Some((store, sink)) = keys else {
        return finish(ctx, &layout, walk.steps, args.remove);
    };
    let audit: Arc<dyn AuditSink> = sink.clone();
    let provider = Arc::new(AuditedProvider::new(store.clone(), audit.clone()));
    let name: SecretName = SECRET.parse()?;

    let service = walk
        .step(
            "start a local service that reads its credential from a file",
            start_service(&layout),
        )
        .await;
    if let Some(service) = service {
        let provisioned = walk
            .step(
                "provision the database password",
                provision(&service, provider.as_ref(), &name),
            )
            .await;
        if provisioned.is_some() {
            let engine = RotationEngine::new(provider.clone(), Arc::new(store.rotation_store()))
                .with_audit(audit.clone());
            walk.step(
                "rotate it: createSecret, setSecret, testSecret, finishSecret",
                rotate(&engine, &service, provider.as_ref(), &name),
            )
            .await;
        }
        walk.step(
            "run the health manager with every component's checks",
            health(&layout, &store, &service),
        )
        .await;
    }

    match PulumiCli::discover(None).await {
        Ok(cli) => {
            walk.step(
                "deploy a stack with Pulumi (runtime: yaml, outputs only, file backend)",
                deploy(&layout, &cli, audit.clone()),
            )
            .await;
        }
        Err(err) => walk.skip(
            "deploy a stack with Pulumi",
            format!("no usable pulumi CLI: {err}"),
        ),
    }

    walk.step(
        "close and verify the audit trail",
        verify_trail(&layout, &sink),
    )
    .await;
    if let Some(current) = walk
        .step(
            "read the current password back",
            read_current(provider.as_ref(), &name),
        )
        .await
    {
        walk.step(
            "check that no file outside the secret store holds the password",
            scan_for_leaks(
                &layout,
                &[store.secret_path(&name), layout.credentials.clone()],
                &current,
            ),
        )
        .await;
    }
    finish(ctx, &layout, walk.steps, args.remove)
}

fn finish(ctx: &Context, layout: &Layout, steps: Vec<DemoStep>, remove: bool) -> lift::Result<u8> {
    let ok = steps.iter().all(|s| s.status != "failed");
    let ran = steps.iter().filter(|s| s.status != "skipped").count();
    ctx.say(format!(
        "\n{} steps ran, {} failed, {} skipped",
        ran,
        steps.iter().filter(|s| s.status == "failed").count(),
        steps.len() - ran
    ));
    if remove {
        std::fs::remove_dir_all(&layout.root)
            .map_err(|err| io_error(&format!("cannot remove {}", layout.root.display()), &err))?;
        ctx.say(format!("removed {}", layout.root.display()));
    } else {
        ctx.say(format!(
            "\nwhere everything is:\n  secret store   {}  (key: {})\n  audit log      {}  (key: {}, checkpoint: {}.checkpoint)\n  service creds  {}\n\ntry:\n  lift secrets --store {} --key-file {} describe {SECRET}\n  lift audit verify {} --key-file {}\n  rm -rf {}",
            layout.store.display(),
            layout.store_key.display(),
            layout.audit_log.display(),
            layout.audit_key.display(),
            layout.audit_log.display(),
            layout.credentials.display(),
            layout.store.display(),
            layout.store_key.display(),
            layout.audit_log.display(),
            layout.audit_key.display(),
            layout.root.display(),
        ));
    }
    if ctx.json {
        ctx.emit_json(&DemoReport {
            directory: layout.root.display().to_string(),
            ok,
            steps,
        })?;
    }
    Ok(if ok { 0 } else { crate::EXIT_FAILURE })
}

async fn setup(
    layout: &Layout,
) -> lift::Result<((FileSecretsProvider, Arc<FileAuditSink>), String)> {
    for dir in [
        &layout.root.join("keys"),
        &layout.root.join("audit"),
        &layout.root.join("service"),
    ] {
        create_private_dir(dir)?;
    }
    let key = StoreKey::create_file(&layout.store_key)?;
    let store = FileSecretsProvider::open(&layout.store, Protection::Encrypted(key))?;
    write_private(&layout.audit_key, &random_bytes(32)?)?;
    let audit_key = AuditKey::load(&layout.audit_key)?;
    let key_id = audit_key.id().to_owned();
    let sink =
        FileAuditSink::open(SinkOptions::new(&layout.audit_log).key(Some(audit_key))).await?;
    let detail = format!(
        "secret store {} (XChaCha20-Poly1305, 32-byte key in {})\naudit log {} (HMAC-SHA256 chain, key id {key_id}, signed checkpoints)",
        layout.store.display(),
        layout.store_key.display(),
        layout.audit_log.display(),
    );
    Ok(((store, Arc::new(sink)), detail))
}

/// A loopback service that accepts `AUTH <password>` when the password matches its credentials file.
///
/// It re-reads the file on every connection, as a database reads its user table,
/// so a rotation that rewrites the file takes effect at once.
struct Service {
    address: std::net::SocketAddr,
    credentials: PathBuf,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Service {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Service {
    async fn authenticate(&self, password: &SecretValue) -> lift::Result<bool> {
        let mut stream = TcpStream::connect(self.address)
            .await
            .map_err(|err| io_error("cannot reach the demo service", &err))?;
        let mut line = b"AUTH ".to_vec();
        line.extend_from_slice(password.expose());
        line.push(b'\n');
        let sent = stream.write_all(&line).await;
        zero(&mut line);
        sent.map_err(|err| io_error("cannot talk to the demo service", &err))?;
        let mut reply = String::new();
        BufReader::new(stream)
            .read_line(&mut reply)
            .await
            .map_err(|err| io_error("cannot read the demo service's answer", &err))?;
        Ok(reply.trim() == "OK")
    }
}

async fn start_service(layout: &Layout) -> lift::Result<(Service, String)> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|err| io_error("cannot listen on loopback", &err))?;
    let address = listener
        .local_addr()
        .map_err(|err| io_error("cannot read the listening address", &err))?;
    let credentials = layout.credentials.clone();
    let file = credentials.clone();
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let file = file.clone();
            tokio::spawn(async move {
                let _ = serve_one(stream, &file).await;
            });
        }
    });
    let detail = format!(
        "listening on {address}, credential file {}",
        credentials.display()
    );
    Ok((
        Service {
            address,
            credentials,
            task,
        },
        detail,
    ))
}

async fn serve_one(stream: TcpStream, credentials: &Path) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut line = Vec::new();
    BufReader::new(read).read_until(b'\n', &mut line).await?;
    let offered = line.strip_prefix(b"AUTH ").unwrap_or_default();
    let offered = offered.strip_suffix(b"\n").unwrap_or(offered);
    let mut expected = tokio::fs::read(credentials).await.unwrap_or_default();
    let accepted = !expected.is_empty()
        && SecretValue::new(offered.to_vec()).ct_eq(&SecretValue::new(expected.clone()));
    zero(&mut expected);
    zero(&mut line);
    write
        .write_all(if accepted { b"OK\n" } else { b"DENIED\n" })
        .await
}

async fn provision(
    service: &Service,
    provider: &dyn SecretsProvider,
    name: &SecretName,
) -> lift::Result<((), String)> {
    let password = generate_password(&PasswordPolicy::default())?;
    write_private(&service.credentials, password.expose())?;
    let outcome = provider
        .put(name, &password, &PutOptions::default())
        .await?;
    let works = service.authenticate(&password).await?;
    if !works {
        return Err(Error::new(
            ErrorKind::External,
            "the demo service refused the provisioned password",
        ));
    }
    Ok((
        (),
        format!(
            "generated a {}-character password from the OS CSPRNG and stored it as {name}\nversion {} carries {}; the service accepts it",
            password.len(),
            outcome.version_id,
            labels(&outcome.stages),
        ),
    ))
}

/// Rotates the service's credential: setSecret rewrites its credentials file, testSecret logs in with the new value.
struct ServiceRotator<'a> {
    service: &'a Service,
}

#[async_trait::async_trait]
impl Rotator for ServiceRotator<'_> {
    fn name(&self) -> &str {
        "demo-service"
    }

    async fn set_secret(
        &self,
        _step: &StepContext,
        pending: &SecretValue,
        _current: Option<&SecretValue>,
    ) -> lift::Result<()> {
        write_private(&self.service.credentials, pending.expose())
    }

    async fn test_secret(&self, step: &StepContext, pending: &SecretValue) -> lift::Result<()> {
        if self.service.authenticate(pending).await? {
            Ok(())
        } else {
            Err(Error::new(
                ErrorKind::External,
                format!(
                    "the demo service refused pending version {} of {}",
                    step.pending_version, step.name
                ),
            ))
        }
    }
}

async fn rotate(
    engine: &RotationEngine,
    service: &Service,
    provider: &dyn SecretsProvider,
    name: &SecretName,
) -> lift::Result<((), String)> {
    let old = provider.get(name, &VersionSelector::default()).await?;
    let started = Instant::now();
    let report = engine
        .rotate(name, &ServiceRotator { service }, &RotateOptions::default())
        .await?;
    let elapsed = started.elapsed();
    let new = provider.get(name, &VersionSelector::default()).await?;
    let new_works = service.authenticate(&new.value).await?;
    let old_refused = !service.authenticate(&old.value).await?;
    if !new_works || !old_refused {
        return Err(Error::new(
            ErrorKind::External,
            format!(
                "after rotation the service accepts the new password: {new_works}, refuses the old one: {old_refused}"
            ),
        ));
    }
    let description = provider.describe(name).await?;
    let mut detail = format!(
        "rotation {} finished in {} ms: AWSCURRENT moved from {} to {}\nthe service accepts the new password and refuses the old one\nversions now:",
        report.rotation_id,
        elapsed.as_millis(),
        report
            .old_version
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        report.new_version,
    );
    for version in &description.versions {
        detail.push_str(&format!(
            "\n  {}  {}",
            version.version_id,
            labels(&version.stages)
        ));
    }
    let history = engine.history(name).await?;
    detail.push_str(&format!(
        "\nrotation history holds {} record(s): ids, steps and outcomes, no values",
        history.len()
    ));
    Ok(((), detail))
}

async fn health(
    layout: &Layout,
    store: &FileSecretsProvider,
    service: &Service,
) -> lift::Result<((), String)> {
    let monitor = Monitor::start(MonitorConfig::default())?;
    // CPU percentages compare two samples, and stall figures need a few heartbeats:
    // let them accumulate, then take the second sample now rather than waiting a full interval.
    tokio::time::sleep(Duration::from_millis(350)).await;
    monitor.refresh();
    let endpoint = Endpoint::new(service.address.ip().to_string(), service.address.port())?;
    let checks = StandardChecks::default().endpoint(endpoint);
    let manager = checks.build(&monitor)?;
    manager.register(StoreHealthCheck::new(store.clone()))?;
    manager.register(AuditHealthCheck::new(
        &layout.audit_log,
        audit_verify_options(layout)?,
    ))?;
    let pulumi_present = PulumiCli::discover(None).await.is_ok();
    if pulumi_present {
        manager.register(CliHealthCheck::new())?;
    }
    let report = manager.check(Group::All).await;
    let mut detail = report.render_table(false).trim_end().to_owned();
    if !pulumi_present {
        detail.push_str("\n(the Pulumi CLI check is not registered: no pulumi is installed)");
    }
    if report.status == HealthStatus::Unhealthy {
        return Err(Error::new(
            ErrorKind::Unavailable,
            format!("the health report is unhealthy:\n{detail}"),
        ));
    }
    Ok(((), detail))
}

async fn deploy(
    layout: &Layout,
    cli: &PulumiCli,
    audit: Arc<dyn AuditSink>,
) -> lift::Result<((), String)> {
    create_private_dir(&layout.project)?;
    let state = layout.root.join("pulumi-state");
    create_private_dir(&state)?;
    std::fs::write(
        layout.project.join("Pulumi.yaml"),
        "name: lift-demo\nruntime: yaml\ndescription: lift demo, outputs only\noutputs:\n  greeting: hello from lift\n  secretName: demo/db/password\n",
    )
    .map_err(|err| io_error("cannot write Pulumi.yaml", &err))?;
    let workspace = Workspace::builder(&layout.project)
        .pulumi(cli.path())
        .backend_url(format!("file://{}", state.display()))
        .pulumi_home(layout.root.join("pulumi-home"))
        .passphrase(SecretValue::from("lift-demo-passphrase"))
        .audit_sink(audit)
        .build()
        .await?;
    let stack = workspace.select_or_create_stack("demo".parse()?).await?;
    let mut options = OpOptions::default().message("lift demo");
    let mut events = options.subscribe();
    let progress = tokio::spawn(async move {
        let mut lines = Vec::new();
        while let Some(event) = events.next().await {
            if let Some(step) = event.step() {
                lines.push(format!("  {} {}", step.op, step.urn));
            }
        }
        lines
    });
    let result = stack.up(options).await?;
    let lines = progress.await.unwrap_or_default();
    let mut detail = format!(
        "pulumi {} up: {:?} in {:.1} s, version {}",
        cli.version(),
        result.summary.resource_changes,
        result.summary.duration.as_secs_f64(),
        result
            .version
            .map(|v| v.to_string())
            .unwrap_or_else(|| "unknown".to_owned()),
    );
    for line in lines {
        detail.push('\n');
        detail.push_str(&line);
    }
    for (name, value) in &result.outputs {
        let shown = match value {
            OutputValue::Plain(v) => v.to_string(),
            OutputValue::Secret(_) => "[secret]".to_owned(),
        };
        detail.push_str(&format!("\n  output {name} = {shown}"));
    }
    Ok(((), detail))
}

fn audit_verify_options(layout: &Layout) -> lift::Result<VerifyOptions> {
    Ok(VerifyOptions {
        key: Some(AuditKey::load(&layout.audit_key)?),
        ..VerifyOptions::default()
    })
}

async fn verify_trail(layout: &Layout, sink: &FileAuditSink) -> lift::Result<((), String)> {
    sink.close().await?;
    let key = AuditKey::load(&layout.audit_key)?;
    let report = lift::audit::verify(std::slice::from_ref(&layout.audit_log), Some(&key), None)?;
    if !report.intact {
        let why = report
            .failure
            .as_ref()
            .map(|f| format!("{} at seq {}: {}", f.finding.as_str(), f.seq, f.message))
            .unwrap_or_default();
        return Err(Error::new(
            ErrorKind::Integrity,
            format!("the audit trail does not verify: {why}"),
        ));
    }
    let checkpoint = if report.checkpoint.is_some() {
        "and its signed checkpoint"
    } else {
        "(no checkpoint)"
    };
    Ok((
        (),
        format!(
            "{} records, {} bytes: the hash chain {checkpoint} verify with key id {}",
            report.records_checked,
            report.bytes,
            report.key_id.as_deref().unwrap_or("none"),
        ),
    ))
}

async fn read_current(
    provider: &dyn SecretsProvider,
    name: &SecretName,
) -> lift::Result<(SecretValue, String)> {
    let current = provider.get(name, &VersionSelector::default()).await?;
    let detail = format!(
        "{name} AWSCURRENT is version {} ({} bytes; `lift secrets get` prints values, the demo does not)",
        current.version_id,
        current.value.len()
    );
    Ok((current.value, detail))
}

/// Looks for `secret` in every file under the demo directory except `holders`,
/// the files that hold it by design: the secret's own (encrypted) file and the
/// service's credential file, which is the target system.
async fn scan_for_leaks(
    layout: &Layout,
    holders: &[PathBuf],
    secret: &SecretValue,
) -> lift::Result<((), String)> {
    let mut scanned = 0usize;
    let mut leaks = Vec::new();
    let mut stack = vec![layout.root.clone()];
    while let Some(dir) = stack.pop() {
        let entries = std::fs::read_dir(&dir)
            .map_err(|err| io_error(&format!("cannot list {}", dir.display()), &err))?;
        for entry in entries {
            let path = entry
                .map_err(|err| io_error("cannot list the demo directory", &err))?
                .path();
            if holders.contains(&path) {
                continue;
            }
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(bytes) = std::fs::read(&path) {
                scanned += 1;
                if contains(&bytes, secret.expose()) {
                    leaks.push(path.display().to_string());
                }
            }
        }
    }
    if leaks.is_empty() {
        Ok((
            (),
            format!(
                "scanned {scanned} files (audit log and checkpoint, keys, rotation state and history, locks): no plaintext copy of the password"
            ),
        ))
    } else {
        Err(Error::new(
            ErrorKind::Integrity,
            format!("the password appears in {}", leaks.join(", ")),
        ))
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

fn labels(stages: &[lift::StageLabel]) -> String {
    if stages.is_empty() {
        "no label".to_owned()
    } else {
        stages
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn random_bytes(n: usize) -> lift::Result<Vec<u8>> {
    use std::io::Read as _;
    let mut bytes = vec![0u8; n];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|err| io_error("cannot read /dev/urandom", &err))?;
    Ok(bytes)
}

fn create_private_dir(dir: &Path) -> lift::Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|err| io_error(&format!("cannot create {}", dir.display()), &err))
}

/// Writes a file readable by its owner only, atomically (temporary file, fsync, rename).
fn write_private(path: &Path, bytes: &[u8]) -> lift::Result<()> {
    let tmp = path.with_extension("tmp");
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|err| io_error(&format!("cannot write {}", path.display()), &err))
}

fn zero(bytes: &mut [u8]) {
    for b in bytes.iter_mut() {
        *b = 0;
    }
}

fn io_error(what: &str, err: &std::io::Error) -> Error {
    Error::new(ErrorKind::from_io(err.kind()), format!("{what}: {err}"))
}
