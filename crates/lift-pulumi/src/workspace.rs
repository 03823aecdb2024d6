//! A workspace: a Pulumi project directory, the CLI that drives it, and the
//! environment, timeouts and audit sink every command shares.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use lift_core::{Actor, AuditSink, NoopAuditSink, SecretValue};
use serde::{Deserialize, Serialize};

use crate::cli::{MINIMUM_VERSION, PulumiCli};
use crate::error::{Error, Result, classify_output, tail};
use crate::events::plain_text;
use crate::names::StackName;
use crate::process::{Ending, Finished, Invocation, Runner};
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

    /// Sets `PULUMI_BACKEND_URL`, for example `file:///var/state` or `s3://bucket`.
    pub fn backend_url(self, url: impl Into<OsString>) -> Self {
        self.env("PULUMI_BACKEND_URL", url)
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
        };
        Ok(Workspace {
            inner: Arc::new(Inner {
                cli,
                runner,
                command_timeout: self.command_timeout,
                audit: self.audit,
                actor: self.actor.unwrap_or_else(Actor::from_env),
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
    /// [`Error::StackAlreadyExists`] when it exists.
    pub async fn create_stack(&self, name: StackName) -> Result<Stack> {
        let stack = self.stack(name);
        stack
            .run_ok(&["stack", "init", "--no-select"], None)
            .await?;
        Ok(stack)
    }

    /// A handle on `name`, checking that it exists ([`Error::StackNotFound`] otherwise).
    pub async fn select_stack(&self, name: StackName) -> Result<Stack> {
        if self.stack_exists(&name).await? {
            Ok(self.stack(name))
        } else {
            Err(Error::StackNotFound {
                stack: name.to_string(),
            })
        }
    }

    /// Selects `name`, creating it when it does not exist.
    pub async fn select_or_create_stack(&self, name: StackName) -> Result<Stack> {
        if self.stack_exists(&name).await? {
            return Ok(self.stack(name));
        }
        match self.create_stack(name.clone()).await {
            Err(Error::StackAlreadyExists { .. }) => Ok(self.stack(name)),
            other => other,
        }
    }

    async fn stack_exists(&self, name: &StackName) -> Result<bool> {
        let stacks = self.list_stacks().await?;
        Ok(stacks.iter().any(|s| {
            s.name == name.as_str()
                || (!name.as_str().contains('/')
                    && s.name.rsplit('/').next() == Some(name.as_str()))
        }))
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
        stack.run_ok(&args, None).await.map(|_| ())
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
        check_finished(
            &command,
            stack.map(StackName::as_str).unwrap_or(""),
            finished,
        )
    }
}

/// Turns a finished process into `Ok` only when it exited with status 0.
pub(crate) fn check_finished(command: &str, stack: &str, finished: Finished) -> Result<Finished> {
    let how = |killed: bool| {
        if killed {
            "; killed after the grace period".to_owned()
        } else {
            String::new()
        }
    };
    match finished.ending {
        Ending::Cancelled { killed } => Err(Error::Cancelled {
            command: command.to_owned(),
            how: how(killed),
        }),
        Ending::TimedOut { after, killed } => Err(Error::Timeout {
            command: command.to_owned(),
            after,
            how: how(killed),
        }),
        Ending::Exited if finished.status.success() => Ok(finished),
        Ending::Exited => Err(classify_output(stack, &finished.stdout, &finished.stderr)
            .unwrap_or_else(|| {
                Error::CommandFailed {
                    command: command.to_owned(),
                    status: finished.status_text(),
                    code: finished.status.code(),
                    // Pulumi prints an update's failure on stdout and may leave stderr empty.
                    stderr_tail: if finished.stderr.trim().is_empty() {
                        plain_text(&tail(&finished.stdout, 10))
                    } else {
                        tail(&finished.stderr, 10)
                    },
                }
            })),
    }
}

/// Parses a command's JSON output; garbage becomes [`Error::MalformedOutput`].
pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(text: &str, command: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|err| Error::MalformedOutput {
        command: command.to_owned(),
        detail: format!(
            "expected JSON ({err}); it printed {:?}",
            text.trim().chars().take(60).collect::<String>()
        ),
    })
}

/// Like [`parse_json`] for output that may hold secret values: the error
/// names only the position, since serde's messages quote the offending value.
pub(crate) fn parse_secret_json<T: serde::de::DeserializeOwned>(
    text: &str,
    command: &str,
) -> Result<T> {
    serde_json::from_str(text).map_err(|err| Error::MalformedOutput {
        command: command.to_owned(),
        detail: format!(
            "expected JSON, found something else at line {} column {} (content withheld: it may hold secrets)",
            err.line(),
            err.column()
        ),
    })
}
