//! A workspace: a Pulumi project directory, the CLI that drives it, and the
//! environment, timeouts and audit sink every command shares; its builder;
//! and the commands that concern no single stack (`stack ls`, `whoami`).
//!
//! Creating, selecting and removing stacks is in `lifecycle.rs`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use lift_core::{Actor, AuditSink, NoopAuditSink, SecretValue};
use serde::{Deserialize, Serialize};

use crate::cli::{MINIMUM_VERSION, PulumiCli};
use crate::error::{Error, Result, exit};
use crate::process::{Runner, parse_json};
use crate::session::Session;

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
    session: Session,
}

impl std::fmt::Debug for Workspace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workspace")
            .field("cli", self.session.cli())
            .field("cwd", &self.session.cwd())
            .field("actor", self.session.actor())
            .finish_non_exhaustive()
    }
}

/// Settings of a [`Workspace`].
#[must_use]
pub struct WorkspaceBuilder {
    cwd: PathBuf,
    pulumi: Option<PathBuf>,
    minimum_version: semver::Version,
    env: Vec<(OsString, OsString)>,
    secret_env: Vec<(String, SecretValue)>,
    grace_period: Duration,
    command_timeout: Option<Duration>,
    audit_sink: Arc<dyn AuditSink>,
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
        self.minimum_version = version;
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
        self.grace_period = grace;
        self
    }

    /// The timeout of commands other than the four operations (`None`: no timeout).
    pub fn command_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.command_timeout = timeout;
        self
    }

    /// Where operations send their audit events (default: nowhere).
    pub fn audit_sink(mut self, sink: Arc<dyn AuditSink>) -> Self {
        self.audit_sink = sink;
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
        let cli =
            PulumiCli::discover_with_minimum(self.pulumi.as_deref(), &self.minimum_version).await?;
        let runner = Runner {
            program: cli.path().to_path_buf(),
            cwd,
            env: self.env,
            secret_env: Arc::new(self.secret_env),
            grace: self.grace_period,
            exit_code_contract: cli.version() >= &exit::CONTRACT_SINCE,
            owner: if self.interruptible_owner {
                format!("{}:interruptible", std::process::id())
            } else {
                std::process::id().to_string()
            },
        };
        Ok(Workspace {
            session: Session::new(
                cli,
                runner,
                self.command_timeout,
                self.audit_sink,
                self.actor.unwrap_or_else(Actor::from_env),
            ),
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
            minimum_version: MINIMUM_VERSION,
            env: Vec::new(),
            secret_env: Vec::new(),
            grace_period: DEFAULT_GRACE_PERIOD,
            command_timeout: Some(DEFAULT_COMMAND_TIMEOUT),
            audit_sink: Arc::new(NoopAuditSink),
            actor: None,
            interruptible_owner: false,
        }
    }

    /// The CLI this workspace drives.
    pub fn cli(&self) -> &PulumiCli {
        self.session.cli()
    }

    /// The project directory.
    pub fn cwd(&self) -> &Path {
        self.session.cwd()
    }

    /// The state every command of this workspace shares.
    pub(crate) fn session(&self) -> &Session {
        &self.session
    }

    /// The project's stacks (`pulumi stack ls --json`).
    pub async fn list_stacks(&self) -> Result<Vec<StackSummary>> {
        let finished = self
            .session
            .run_ok(&["stack", "ls", "--json"], None, None)
            .await?;
        parse_json(&finished.stdout, "pulumi stack ls --json")
    }

    /// The logged-in identity (`pulumi whoami --json`).
    pub async fn whoami(&self) -> Result<WhoAmI> {
        let finished = self
            .session
            .run_ok(&["whoami", "--json"], None, None)
            .await?;
        parse_json(&finished.stdout, "pulumi whoami --json")
    }
}
