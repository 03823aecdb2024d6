//! What every command of one workspace shares: the checked CLI, how to start
//! it, the command timeout, the audit sink and actor, and the operations that
//! are running (so that a cancel can reach them).
//!
//! [`crate::Workspace`] and [`crate::Stack`] both hold a [`Session`]; the
//! modules that run commands (`operation`, `cancel`, `audit`) take one, so no
//! module needs to reach into another's fields.

use std::ffi::OsString;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use lift_core::{Actor, AuditSink};
use tokio_util::sync::CancellationToken;
use zeroize::Zeroizing;

use crate::cli::PulumiCli;
use crate::error::Result;
use crate::names::StackName;
use crate::process::{Finished, Invocation, Runner};

/// The shared state of one workspace. Cheap to clone (an `Arc`).
#[derive(Clone)]
pub(crate) struct Session {
    shared: Arc<Shared>,
}

struct Shared {
    cli: PulumiCli,
    runner: Runner,
    command_timeout: Option<Duration>,
    audit_sink: Arc<dyn AuditSink>,
    actor: Actor,
    /// The operations running, by stack, with the token that interrupts each.
    running: Mutex<Vec<(u64, StackName, CancellationToken)>>,
}

impl Session {
    pub(crate) fn new(
        cli: PulumiCli,
        runner: Runner,
        command_timeout: Option<Duration>,
        audit_sink: Arc<dyn AuditSink>,
        actor: Actor,
    ) -> Self {
        Session {
            shared: Arc::new(Shared {
                cli,
                runner,
                command_timeout,
                audit_sink,
                actor,
                running: Mutex::default(),
            }),
        }
    }

    /// The CLI every command runs.
    pub(crate) fn cli(&self) -> &PulumiCli {
        &self.shared.cli
    }

    /// The project directory.
    pub(crate) fn cwd(&self) -> &Path {
        &self.shared.runner.cwd
    }

    /// How pulumi processes are started.
    pub(crate) fn runner(&self) -> &Runner {
        &self.shared.runner
    }

    /// Where audit events go.
    pub(crate) fn audit_sink(&self) -> &dyn AuditSink {
        self.shared.audit_sink.as_ref()
    }

    /// Who audit events name.
    pub(crate) fn actor(&self) -> &Actor {
        &self.shared.actor
    }

    /// Runs a command and fails on a non-zero exit. With a stack, the words
    /// are followed by `--stack NAME`; `--non-interactive` always ends them.
    pub(crate) async fn run_ok(
        &self,
        words: &[&str],
        stack: Option<&StackName>,
        stdin: Option<Zeroizing<Vec<u8>>>,
    ) -> Result<Finished> {
        let invocation = Invocation {
            args: command_args(words, stack),
            stdin,
            timeout: self.shared.command_timeout,
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
        let runner = self.runner();
        let command = runner.describe(&invocation.args);
        let finished = runner.run(invocation).await?;
        runner.check(
            &command,
            stack.map(StackName::as_str).unwrap_or(""),
            finished,
        )
    }

    /// Registers an operation running on `stack`; the guard unregisters it.
    pub(crate) fn register_running(&self, stack: &StackName, token: CancellationToken) -> Running {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let id = NEXT.fetch_add(1, Ordering::Relaxed);
        self.shared
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((id, stack.clone(), token));
        Running {
            session: self.clone(),
            id,
        }
    }

    /// Cancels the operations running on `stack`; returns how many.
    pub(crate) fn cancel_running(&self, stack: &StackName) -> usize {
        let running = self
            .shared
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
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

/// The arguments of a command: the words, then `--stack NAME` when a stack
/// is named, then `--non-interactive`.
pub(crate) fn command_args(words: &[&str], stack: Option<&StackName>) -> Vec<OsString> {
    let mut args: Vec<OsString> = words.iter().map(OsString::from).collect();
    if let Some(stack) = stack {
        args.push("--stack".into());
        args.push(stack.as_str().into());
    }
    args.push("--non-interactive".into());
    args
}

/// An operation registered with [`Session::register_running`]; dropping it unregisters it.
pub(crate) struct Running {
    session: Session,
    id: u64,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.session
            .shared
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|(id, _, _)| *id != self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stack_commands_name_the_stack_and_never_prompt() {
        let dev: StackName = "dev".parse().unwrap();
        let args = command_args(&["config", "get", "k"], Some(&dev));
        assert_eq!(
            args,
            ["config", "get", "k", "--stack", "dev", "--non-interactive"]
                .map(OsString::from)
                .to_vec()
        );
        let args = command_args(&["whoami"], None);
        assert_eq!(
            args,
            ["whoami", "--non-interactive"].map(OsString::from).to_vec()
        );
    }
}
