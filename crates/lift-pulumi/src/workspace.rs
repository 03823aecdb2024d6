//! A workspace: a Pulumi project directory, the CLI that drives it, and the
//! environment, timeouts and audit sink every command shares.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use lift_core::{Actor, AuditSink, NoopAuditSink, SecretValue};
use serde::{Deserialize, Serialize};

use tokio_util::sync::CancellationToken;

use crate::audit::Auditor;
use crate::cli::{MINIMUM_VERSION, PulumiCli};
use crate::error::{Error, Result, exit};
use crate::names::StackName;
use crate::process::{Finished, Invocation, Runner, parse_json};
use crate::stack::Stack;

/// How long a process gets to stop after SIGINT before SIGKILL, by default.
pub const DEFAULT_GRACE_PERIOD: Duration = Duration::from_secs(30);

/// The timeout of commands other than preview/up/refresh/destroy, by default.
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(300);

/// A Pulumi project directory driven by a checked pulumi CLI. Cheap to clone.
///
/// Every command runs with `--non-interactive`, with `--stack` when it
/// concerns a stack (the globally selected stack is never used or changed),
/// and with `PULUMI_SKIP_UPDATE_CHECK=true`. The process environment is
/// inherited, so `PULUMI_HOME`, `PULUMI_BACKEND_URL`,
/// `PULUMI_CONFIG_PASSPHRASE` and `PULUMI_CONFIG_PASSPHRASE_FILE` pass
/// through; the builder's settings override them.
#[derive(Clone)]
pub struct Workspace {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) cli: PulumiCli,
    pub(crate) runner: Runner,
    pub(crate) command_timeout: Option<Duration>,
    pub(crate) audit: Arc<dyn AuditSink>,
    pub(crate) actor: Actor,
    /// The operations this workspace is running, by stack, so that
    /// [`Stack::cancel`] can interrupt them.
    pub(crate) running: std::sync::Mutex<Vec<(u64, StackName, CancellationToken)>>,
}

impl std::fmt::Debug for Workspace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workspace")
            .field("cli", &self.inner.cli)
            .field("cwd", &self.inner.runner.cwd)
            .field("actor", &self.inner.actor)
            .finish_non_exhaustive()
    }
}

/// Settings of a [`Workspace`].
#[must_use]
pub struct WorkspaceBuilder {
    cwd: PathBuf,
    pulumi: Option<PathBuf>,
    minimum: semver::Version,
    env: Vec<(OsString, OsString)>,
    secret_env: Vec<(String, SecretValue)>,
    grace: Duration,
    command_timeout: Option<Duration>,
    audit: Arc<dyn AuditSink>,
    actor: Option<Actor>,
    interruptible_owner: bool,
}

impl WorkspaceBuilder {
    /// Uses this pulumi binary instead of `LIFT_PULUMI` or `PATH`.
    pub fn pulumi(mut self, path: impl Into<PathBuf>) -> Self {
        self.pulumi = Some(path.into());
        self
    }

    /// Requires at least this CLI version (default [`MINIMUM_VERSION`]).
    pub fn minimum_version(mut self, version: semver::Version) -> Self {
        self.minimum = version;
        self
    }

    /// Sets an environment variable for every command of this workspace.
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Sets `PULUMI_HOME`.
    pub fn pulumi_home(self, path: impl AsRef<Path>) -> Self {
        let path = path.as_ref().as_os_str().to_owned();
        self.env("PULUMI_HOME", path)
    }

    /// Sets `PULUMI_BACKEND_URL`, for example `file:///var/state`,
    /// `s3://bucket?region=eu-west-1` or `https://api.pulumi.com`.
    pub fn backend_url(self, url: impl Into<OsString>) -> Self {
        self.env("PULUMI_BACKEND_URL", url)
    }

    /// Sets a secret environment variable for every command: a backend
    /// credential such as `AWS_SECRET_ACCESS_KEY` or `AZURE_STORAGE_KEY`. The
    /// value stays wrapped until it is handed to the child's environment, and
    /// never appears on a command line, in a message or in `Debug` output.
    pub fn secret_env(mut self, key: impl Into<String>, value: SecretValue) -> Self {
        self.secret_env.push((key.into(), value));
        self
    }

    /// Sets `PULUMI_ACCESS_TOKEN`, the Pulumi Cloud access token, as a secret
    /// environment variable (see [`WorkspaceBuilder::secret_env`]).
    pub fn access_token(self, token: SecretValue) -> Self {
        self.secret_env("PULUMI_ACCESS_TOKEN", token)
    }

    /// Sets `PULUMI_CONFIG_PASSPHRASE`. The value stays wrapped until it is
    /// handed to the child's environment, and never appears on a command line.
    pub fn passphrase(mut self, passphrase: SecretValue) -> Self {
        self.secret_env
            .push(("PULUMI_CONFIG_PASSPHRASE".to_owned(), passphrase));
        self
    }

    /// Sets `PULUMI_CONFIG_PASSPHRASE_FILE`.
    pub fn passphrase_file(self, path: impl AsRef<Path>) -> Self {
        let path = path.as_ref().as_os_str().to_owned();
        self.env("PULUMI_CONFIG_PASSPHRASE_FILE", path)
    }

    /// How long a cancelled or timed-out process gets between SIGINT and SIGKILL.
    pub fn grace_period(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// The timeout of commands other than the four operations (`None`: no timeout).
    pub fn command_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.command_timeout = timeout;
        self
    }

    /// Where operations send their audit events (default: nowhere).
    pub fn audit_sink(mut self, sink: Arc<dyn AuditSink>) -> Self {
        self.audit = sink;
        self
    }

    /// Who the audit events name (default [`Actor::from_env`]).
    pub fn actor(mut self, actor: Actor) -> Self {
        self.actor = Some(actor);
        self
    }

    /// Declares that this process turns SIGINT into a clean cancellation of
    /// its operations (cancel tokens, as the `lift` CLI does). Then
    /// [`crate::Stack::cancel`] from another process interrupts this process
    /// rather than its pulumi, so that the cancellation is seen, audited and
    /// reported here. Off by default: SIGINT ends most processes.
    pub fn interruptible_owner(mut self, yes: bool) -> Self {
        self.interruptible_owner = yes;
        self
    }

    /// Finds and checks the CLI, and checks that the directory exists.
    pub async fn build(self) -> Result<Workspace> {
        let cwd = self.cwd;
        match tokio::fs::metadata(&cwd).await {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => {
                return Err(Error::InvalidInput(format!(
                    "workspace directory {} is not a directory",
                    cwd.display()
                )));
            }
            Err(err) => {
                return Err(Error::io(
                    format!("cannot open workspace directory {}", cwd.display()),
                    err,
                ));
            }
        }
        let cli = PulumiCli::discover_with_minimum(self.pulumi.as_deref(), &self.minimum).await?;
        let runner = Runner {
            program: cli.path().to_path_buf(),
            cwd,
            env: self.env,
            secret_env: Arc::new(self.secret_env),
            grace: self.grace,
            exit_code_contract: cli.version() >= &exit::CONTRACT_SINCE,
            owner: if self.interruptible_owner {
                format!("{}:interruptible", std::process::id())
            } else {
                std::process::id().to_string()
            },
        };
        Ok(Workspace {
            inner: Arc::new(Inner {
                cli,
                runner,
                command_timeout: self.command_timeout,
                audit: self.audit,
                actor: self.actor.unwrap_or_else(Actor::from_env),
                running: std::sync::Mutex::default(),
            }),
        })
    }
}

/// One line of `pulumi stack ls --json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StackSummary {
    /// The stack's name as the backend shows it.
    pub name: String,
    /// Whether it is the globally selected stack (lift never relies on this).
    #[serde(default)]
    pub current: bool,
    /// When it was last updated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_update: Option<String>,
    /// Whether an update is running.
    #[serde(default)]
    pub update_in_progress: bool,
    /// How many resources it has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_count: Option<u64>,
    /// Its page in the Pulumi Cloud console.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// `pulumi whoami --json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WhoAmI {
    /// The user.
    pub user: String,
    /// The organizations the user belongs to.
    #[serde(default)]
    pub organizations: Vec<String>,
    /// The backend URL.
    #[serde(default)]
    pub url: String,
}

impl Workspace {
    /// Starts building a workspace for the project in `cwd`.
    pub fn builder(cwd: impl Into<PathBuf>) -> WorkspaceBuilder {
        WorkspaceBuilder {
            cwd: cwd.into(),
            pulumi: None,
            minimum: MINIMUM_VERSION,
            env: Vec::new(),
            secret_env: Vec::new(),
            grace: DEFAULT_GRACE_PERIOD,
            command_timeout: Some(DEFAULT_COMMAND_TIMEOUT),
            audit: Arc::new(NoopAuditSink),
            actor: None,
            interruptible_owner: false,
        }
    }

    /// The CLI this workspace drives.
    pub fn cli(&self) -> &PulumiCli {
        &self.inner.cli
    }

    /// The project directory.
    pub fn cwd(&self) -> &Path {
        &self.inner.runner.cwd
    }

    /// A handle on `name`, without checking that it exists.
    pub fn stack(&self, name: StackName) -> Stack {
        Stack::new(self.clone(), name)
    }

    /// Creates `name` (without selecting it globally); fails with
    /// [`Error::StackAlreadyExists`] when it exists. The stack's secrets use
    /// the backend's default provider (a passphrase on DIY backends); see
    /// [`Workspace::create_stack_with`] for another.
    pub async fn create_stack(&self, name: StackName) -> Result<Stack> {
        self.create_stack_with(name, &StackInitOptions::default())
            .await
    }

    /// Creates `name` with options, such as its secrets provider.
    pub async fn create_stack_with(
        &self,
        name: StackName,
        options: &StackInitOptions,
    ) -> Result<Stack> {
        let stack = self.stack(name);
        let mut words = vec!["stack", "init", "--no-select"];
        if let Some(provider) = &options.secrets_provider {
            words.push("--secrets-provider");
            words.push(provider);
        }
        let audit = Auditor::new(self, stack.name(), "stack.init").detail(
            "secrets_provider",
            options
                .secrets_provider
                .as_deref()
                .map(redact_provider_url)
                .unwrap_or_else(|| "default".to_owned()),
        );
        audit.run(stack.run_ok(&words, None)).await?;
        Ok(stack)
    }

    /// A handle on `name`, checking that it exists ([`Error::StackNotFound`] otherwise).
    ///
    /// The name is resolved by pulumi itself, so `dev`, `org/dev` and
    /// `org/project/dev` mean what they mean to the CLI (on DIY backends the
    /// organization is always `organization`).
    pub async fn select_stack(&self, name: StackName) -> Result<Stack> {
        let stack = self.stack(name);
        stack.history(1).await?;
        Ok(stack)
    }

    /// Selects `name`, creating it when it does not exist.
    pub async fn select_or_create_stack(&self, name: StackName) -> Result<Stack> {
        match self.select_stack(name.clone()).await {
            Ok(stack) => Ok(stack),
            Err(Error::StackNotFound { .. }) => match self.create_stack(name.clone()).await {
                Err(Error::StackAlreadyExists { .. }) => Ok(self.stack(name)),
                other => other,
            },
            Err(err) => Err(err),
        }
    }

    /// The project's stacks (`pulumi stack ls --json`).
    pub async fn list_stacks(&self) -> Result<Vec<StackSummary>> {
        let finished = self.run_ok(&["stack", "ls", "--json"], None).await?;
        parse_json(&finished.stdout, "pulumi stack ls --json")
    }

    /// Deletes a stack with its configuration and history. `force` deletes it even if it still has resources.
    pub async fn remove_stack(&self, name: &StackName, force: bool) -> Result<()> {
        let stack = self.stack(name.clone());
        let mut args = vec!["stack", "rm", "--yes"];
        if force {
            args.push("--force");
        }
        let audit = Auditor::new(self, name, "stack.rm").detail("force", force);
        audit.run(stack.run_ok(&args, None)).await.map(|_| ())
    }

    /// The logged-in identity (`pulumi whoami --json`).
    pub async fn whoami(&self) -> Result<WhoAmI> {
        let finished = self.run_ok(&["whoami", "--json"], None).await?;
        parse_json(&finished.stdout, "pulumi whoami --json")
    }

    /// Runs a command that concerns no stack and fails on a non-zero exit.
    async fn run_ok(&self, words: &[&str], stack: Option<&StackName>) -> Result<Finished> {
        let mut args: Vec<OsString> = words.iter().map(OsString::from).collect();
        args.push("--non-interactive".into());
        let invocation = Invocation {
            args,
            timeout: self.inner.command_timeout,
            ..Invocation::default()
        };
        self.execute(invocation, stack).await
    }

    /// Runs an invocation and turns every unsuccessful ending into a typed error.
    pub(crate) async fn execute(
        &self,
        invocation: Invocation,
        stack: Option<&StackName>,
    ) -> Result<Finished> {
        let command = self.inner.runner.describe(&invocation.args);
        let finished = self.inner.runner.run(invocation).await?;
        self.inner.runner.check(
            &command,
            stack.map(StackName::as_str).unwrap_or(""),
            finished,
        )
    }

    /// Registers an operation running on `stack`; the guard unregisters it.
    pub(crate) fn register_running(&self, stack: &StackName, token: CancellationToken) -> Running {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let id = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.inner
            .running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push((id, stack.clone(), token));
        Running {
            workspace: self.clone(),
            id,
        }
    }

    /// Cancels the operations this workspace runs on `stack`; returns how many.
    pub(crate) fn cancel_running(&self, stack: &StackName) -> usize {
        let running = self
            .inner
            .running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut cancelled = 0;
        for (_, name, token) in running.iter() {
            if name == stack && !token.is_cancelled() {
                token.cancel();
                cancelled += 1;
            }
        }
        cancelled
    }
}

/// An operation registered with [`Workspace::register_running`].
pub(crate) struct Running {
    workspace: Workspace,
    id: u64,
}

impl Drop for Running {
    fn drop(&mut self) {
        let mut running = self
            .workspace
            .inner
            .running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        running.retain(|(id, _, _)| *id != self.id);
    }
}

/// Options of [`Workspace::create_stack_with`].
///
/// ```
/// use lift_pulumi::StackInitOptions;
///
/// let options = StackInitOptions::default().secrets_provider("awskms://alias/pulumi?region=eu-west-1");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
#[must_use]
pub struct StackInitOptions {
    secrets_provider: Option<String>,
}

impl StackInitOptions {
    /// The stack's secrets provider (`--secrets-provider`): `passphrase`,
    /// `awskms://...`, `azurekeyvault://...`, `gcpkms://...` or `hashivault://...`.
    pub fn secrets_provider(mut self, provider: impl Into<String>) -> Self {
        self.secrets_provider = Some(provider.into());
        self
    }
}

/// A secrets provider URL without its query (which may carry credentials), for audit records.
fn redact_provider_url(url: &str) -> String {
    url.split(['?', '#']).next().unwrap_or(url).to_owned()
}
