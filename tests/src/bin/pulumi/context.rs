//! What every command is given: the parsed command line, the working directory and the injected
//! faults, and the project, backend and stack they select.

use std::path::{Path, PathBuf};

use crate::args::Args;
use crate::error::CliError;
use crate::faults::Faults;
use crate::project::Project;
use crate::stack_name::{check_qualified, normalize_stack_name};
use crate::store::{self, Backend};

/// Everything a command needs.
pub(crate) struct Ctx {
    /// The parsed command line.
    pub(crate) args: Args,
    /// The working directory (`--cwd` applied).
    pub(crate) cwd: PathBuf,
    /// Failure-injection settings.
    pub(crate) faults: Faults,
    /// The command words, e.g. `stack tag set`.
    pub(crate) command: String,
}

impl Ctx {
    /// The project of the working directory.
    pub(crate) fn project(&self) -> Result<Project, CliError> {
        Project::find(&self.cwd)
    }

    /// The backend.
    /// The backend, keeping stack config in the project's `Pulumi.<stack>.yaml` when there is a project.
    pub(crate) fn backend(&self) -> Result<Backend, CliError> {
        Ok(Backend::from_env()?.with_project_dir(self.project().ok().map(|p| p.dir)))
    }

    /// The stack named by `--stack`, else the selected stack.
    pub(crate) fn stack_name(
        &self,
        project: &Project,
        backend: &Backend,
    ) -> Result<String, CliError> {
        match self.args.value("stack") {
            Some(s) => {
                check_qualified(s, project, backend)?;
                normalize_stack_name(s)
            }
            None => backend.current(&project.name).ok_or_else(|| {
                CliError::new(
                    "no stack selected; please use `pulumi stack select` or `pulumi stack init` to choose one",
                )
            }),
        }
    }

    /// Emulates the diy backend's passphrase secrets manager. A stack created while a passphrase was
    /// set (`PULUMI_CONFIG_PASSPHRASE` or `PULUMI_CONFIG_PASSPHRASE_FILE`) records its fingerprint as
    /// the `encryptionsalt` of `Pulumi.<stack>.yaml`; from then on the passphrase must be given and
    /// match, as in pulumi. `FAKE_PULUMI_REQUIRE_PASSPHRASE=1` also requires one at `stack init`.
    /// Returns the fingerprint to record at `stack init`.
    ///
    /// The error says `incorrect passphrase` or `passphrase must be set …`; each caller adds what
    /// pulumi says around it.
    pub(crate) fn check_passphrase(
        &self,
        backend: &Backend,
        state: &store::StackState,
    ) -> Result<Option<String>, CliError> {
        if backend.kind != store::BackendKind::Diy || state.secrets_provider != "passphrase" {
            return Ok(None);
        }
        let required = state.passphrase_check.is_some()
            || std::env::var("FAKE_PULUMI_REQUIRE_PASSPHRASE")
                .is_ok_and(|v| v == "1" || v == "true");
        let passphrase = match std::env::var("PULUMI_CONFIG_PASSPHRASE") {
            Ok(p) => Some(p),
            Err(_) => match std::env::var_os("PULUMI_CONFIG_PASSPHRASE_FILE") {
                Some(f) => Some(std::fs::read_to_string(&f).map_err(|e| {
                    CliError::io(
                        "unable to read PULUMI_CONFIG_PASSPHRASE_FILE",
                        Path::new(&f),
                        &e,
                    )
                })?),
                None => None,
            },
        };
        let Some(passphrase) = passphrase else {
            if required {
                return Err(CliError::new(
                    "passphrase must be set with PULUMI_CONFIG_PASSPHRASE or PULUMI_CONFIG_PASSPHRASE_FILE environment variables",
                ));
            }
            return Ok(None);
        };
        let print = format!("fakev1:{}", store::fingerprint(&passphrase));
        match &state.passphrase_check {
            Some(expected) if *expected != print => Err(CliError::new("incorrect passphrase")),
            _ => Ok(Some(print)),
        }
    }

    /// Positional argument `i` after the command words.
    pub(crate) fn arg(&self, i: usize) -> Option<&str> {
        let skip = self.command.split(' ').count();
        self.args.positional.get(skip + i).map(String::as_str)
    }

    /// Number of positional arguments after the command words.
    pub(crate) fn arg_count(&self) -> usize {
        let skip = self.command.split(' ').count();
        self.args.positional.len().saturating_sub(skip)
    }
}
