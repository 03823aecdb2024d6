//! Running one pulumi process: its own process group, a timeout, cancellation
//! by token or by drop (SIGINT, a grace period, then SIGKILL), and no zombie.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use lift_core::SecretValue;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::Child;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use zeroize::Zeroizing;

use crate::error::{Error, Failure, Result, classify_failure, tail};
use crate::events::plain_text;

/// The variable lift sets in the environment of every pulumi it starts, so
/// that `cancel` can tell lift's updates from others: the owning process id,
/// followed by `:interruptible` when that process turns SIGINT into a clean
/// cancellation ([`crate::WorkspaceBuilder::interruptible_owner`]; the
/// `lift` CLI does).
pub const OWNER_ENV: &str = "LIFT_PULUMI_OWNER";

/// How to start pulumi processes: the binary, the directory and the environment.
#[derive(Debug, Clone)]
pub(crate) struct Runner {
    pub(crate) program: PathBuf,
    pub(crate) cwd: PathBuf,
    /// Extra variables, set after the inherited environment.
    pub(crate) env: Vec<(OsString, OsString)>,
    /// Secret variables (the passphrase). Kept wrapped until the spawn.
    pub(crate) secret_env: Arc<Vec<(String, SecretValue)>>,
    /// How long a process may take to stop after SIGINT before it gets SIGKILL.
    pub(crate) grace: Duration,
    /// Whether the CLI's exit codes follow the contract of pulumi 3.227 and newer.
    pub(crate) exit_code_contract: bool,
    /// The value of [`OWNER_ENV`] for every child.
    pub(crate) owner: String,
}

/// The most a process may print on stdout or stderr before lift stops
/// keeping it (a state export of a large stack is tens of MB).
pub(crate) const OUTPUT_LIMIT: usize = 256 * 1024 * 1024;

/// One command to run.
#[derive(Debug, Default)]
pub(crate) struct Invocation {
    pub(crate) args: Vec<OsString>,
    /// Bytes for stdin (a secret config value); stdin is /dev/null without them.
    pub(crate) stdin: Option<Zeroizing<Vec<u8>>>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) cancel: Option<CancellationToken>,
    /// Cuts the grace period short: SIGKILL at once (a second Ctrl-C).
    pub(crate) kill: Option<CancellationToken>,
}

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ending {
    /// It exited on its own.
    Exited,
    /// The token was cancelled; `killed` when it needed SIGKILL after the grace period.
    Cancelled { killed: bool },
    /// The timeout passed; `killed` as above.
    TimedOut { after: Duration, killed: bool },
}

/// What a finished process left.
#[derive(Debug)]
pub(crate) struct Finished {
    pub(crate) stdout: String,
    pub(crate) stderr: String,
    pub(crate) status: ExitStatus,
    pub(crate) ending: Ending,
    /// Whether stdout went past [`OUTPUT_LIMIT`] and its end was dropped.
    pub(crate) stdout_truncated: bool,
}

impl Finished {
    /// `exit code N` or `signal N`.
    pub(crate) fn status_text(&self) -> String {
        use std::os::unix::process::ExitStatusExt;
        match (self.status.code(), self.status.signal()) {
            (Some(code), _) => format!("exit code {code}"),
            (None, Some(signal)) => format!("signal {signal}"),
            (None, None) => "an unknown status".to_owned(),
        }
    }
}

impl Runner {
    /// The command line for messages: the program's file name and the arguments, never stdin.
    pub(crate) fn describe(&self, args: &[OsString]) -> String {
        let program = self
            .program
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "pulumi".to_owned());
        let mut text = program;
        for arg in args {
            text.push(' ');
            text.push_str(&arg.to_string_lossy());
        }
        text
    }

    /// Runs `invocation` to completion. It fails only when the process cannot
    /// be started or awaited; a non-zero exit is the caller's to judge.
    ///
    /// Dropping the returned future interrupts the process group (SIGINT,
    /// then SIGKILL after the grace period) from a background task, which
    /// also reaps the process.
    pub(crate) async fn run(&self, invocation: Invocation) -> Result<Finished> {
        let description = self.describe(&invocation.args);
        let span = tracing::debug_span!("pulumi", command = %description);
        self.run_in_span(invocation, description)
            .instrument(span)
            .await
    }

    async fn run_in_span(&self, invocation: Invocation, description: String) -> Result<Finished> {
        let mut command = tokio::process::Command::new(&self.program);
        command
            .args(&invocation.args)
            .current_dir(&self.cwd)
            .env("PULUMI_SKIP_UPDATE_CHECK", "true")
            // `--event-log` exists only with debug commands on (as in Pulumi's Automation API).
            .env("PULUMI_DEBUG_COMMANDS", "true")
            .env(OWNER_ENV, &self.owner)
            .stdin(if invocation.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        for (key, value) in &self.env {
            command.env(key, value);
        }
        for (key, value) in self.secret_env.iter() {
            command.env(key, OsStr::from_bytes(value.expose()));
        }
        let mut attempts = 0;
        let mut child = loop {
            match command.spawn() {
                // A just-written binary can be busy until a process forked
                // elsewhere execs; that passes (see `cli::read_version`).
                Err(err)
                    if err.raw_os_error() == Some(nix::errno::Errno::ETXTBSY as i32)
                        && attempts < 20 =>
                {
                    attempts += 1;
                    tokio::time::sleep(Duration::from_millis(25)).await;
                }
                other => {
                    break other.map_err(|source| Error::Spawn {
                        program: self.program.display().to_string(),
                        source,
                    })?;
                }
            }
        };
        let pgid = child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .map(Pid::from_raw);
        let stdin = child.stdin.take();
        let stdout = Collector::spawn(child.stdout.take());
        let stderr = Collector::spawn(child.stderr.take());
        let mut guard = ChildGuard {
            child: Some(child),
            pgid,
            grace: self.grace,
        };

        if let (Some(mut pipe), Some(bytes)) = (stdin, invocation.stdin) {
            // A write error means the process exited early; its status says why.
            tokio::spawn(async move {
                let _ = pipe.write_all(&bytes).await;
                let _ = pipe.shutdown().await;
                drop(bytes);
            });
        }

        let cancel = invocation.cancel.unwrap_or_default();
        let kill = invocation.kill.unwrap_or_default();
        let timeout = invocation.timeout;
        let Some(child) = guard.child.as_mut() else {
            return Err(Error::io(
                "pulumi process vanished",
                std::io::Error::other("no child"),
            ));
        };
        let sleep = async {
            match timeout {
                Some(after) => tokio::time::sleep(after).await,
                None => std::future::pending().await,
            }
        };
        let (status, ending) = tokio::select! {
            status = child.wait() => (status, Ending::Exited),
            () = cancel.cancelled() => {
                let (status, killed) = interrupt(child, pgid, self.grace, &kill).await;
                (status, Ending::Cancelled { killed })
            }
            () = kill.cancelled() => {
                let (status, killed) = interrupt(child, pgid, Duration::ZERO, &kill).await;
                (status, Ending::Cancelled { killed })
            }
            () = sleep => {
                let (status, killed) = interrupt(child, pgid, self.grace, &kill).await;
                (status, Ending::TimedOut { after: timeout.unwrap_or_default(), killed })
            }
        };
        // The child is reaped: the guard has nothing left to do.
        guard.child = None;
        let status = status.map_err(|err| Error::io(format!("waiting for {description}"), err))?;
        let (stdout, stdout_truncated) = stdout.finish(self.grace).await;
        let (stderr, _) = stderr.finish(self.grace).await;
        tracing::debug!(command = %description, ?status, ?ending, "pulumi finished");
        Ok(Finished {
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
            status,
            ending,
            stdout_truncated,
        })
    }

    /// Turns a finished process into `Ok` only when it exited with status 0,
    /// and every other ending into a typed error.
    pub(crate) fn check(&self, command: &str, stack: &str, finished: Finished) -> Result<Finished> {
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
            Ending::Exited if finished.status.success() => {
                if finished.stdout_truncated {
                    return Err(Error::MalformedOutput {
                        command: command.to_owned(),
                        detail: format!(
                            "it printed more than {} MiB on stdout",
                            OUTPUT_LIMIT / (1024 * 1024)
                        ),
                    });
                }
                Ok(finished)
            }
            Ending::Exited => {
                let failure = Failure {
                    command,
                    stack,
                    contract_code: finished.status.code().filter(|_| self.exit_code_contract),
                    stdout: &finished.stdout,
                    stderr: &finished.stderr,
                };
                Err(
                    classify_failure(&failure).unwrap_or_else(|| Error::CommandFailed {
                        command: command.to_owned(),
                        status: finished.status_text(),
                        code: finished.status.code(),
                        stderr_tail: failure_detail(&finished.stdout, &finished.stderr),
                    }),
                )
            }
        }
    }
}

/// SIGINT to the group, a grace period (cut short by `kill`), then SIGKILL.
/// Returns the status and whether SIGKILL was needed.
async fn interrupt(
    child: &mut Child,
    pgid: Option<Pid>,
    grace: Duration,
    kill: &CancellationToken,
) -> (std::io::Result<ExitStatus>, bool) {
    signal_group(pgid, Signal::SIGINT);
    let waited = tokio::select! {
        status = child.wait() => Some(status),
        () = tokio::time::sleep(grace) => None,
        () = kill.cancelled() => None,
    };
    match waited {
        Some(status) => (status, false),
        None => {
            signal_group(pgid, Signal::SIGKILL);
            (child.wait().await, true)
        }
    }
}

fn signal_group(pgid: Option<Pid>, signal: Signal) {
    if let Some(pgid) = pgid {
        // ESRCH means the group is gone already, which is what we want.
        if let Err(err) = killpg(pgid, signal) {
            tracing::debug!(%pgid, ?signal, %err, "signalling the pulumi process group failed");
        }
    }
}

/// Interrupts and reaps a child whose future was dropped before it finished.
struct ChildGuard {
    child: Option<Child>,
    pgid: Option<Pid>,
    grace: Duration,
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        let pgid = self.pgid;
        let grace = self.grace;
        signal_group(pgid, Signal::SIGINT);
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn(async move {
                    if tokio::time::timeout(grace, child.wait()).await.is_err() {
                        signal_group(pgid, Signal::SIGKILL);
                        let _ = child.wait().await;
                    }
                });
            }
            Err(_) => {
                // Without a runtime there is no way to wait out the grace period.
                signal_group(pgid, Signal::SIGKILL);
                let _ = child.start_kill();
            }
        }
    }
}

/// What to quote of a failed run. Pulumi prints an update's failure on
/// stdout (its diagnostics) and may leave only warnings on stderr, such as
/// "using pulumi-language-yaml from $PATH": stderr is quoted when it says
/// more than warnings, stdout's end otherwise.
fn failure_detail(stdout: &str, stderr: &str) -> String {
    let says_more = stderr
        .lines()
        .map(str::trim)
        .any(|line| !line.is_empty() && !line.starts_with("warning:"));
    if says_more {
        tail(stderr, 10)
    } else {
        plain_text(&tail(stdout, 10))
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

/// Reads a pipe to the end in the background, keeping what arrived even if
/// the pipe never closes, and at most [`OUTPUT_LIMIT`] bytes of it.
struct Collector {
    buffer: Arc<Mutex<(Vec<u8>, bool)>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Collector {
    fn spawn<R: AsyncRead + Unpin + Send + 'static>(pipe: Option<R>) -> Self {
        Self::spawn_with_limit(pipe, OUTPUT_LIMIT)
    }

    fn spawn_with_limit<R: AsyncRead + Unpin + Send + 'static>(
        pipe: Option<R>,
        limit: usize,
    ) -> Self {
        let buffer = Arc::new(Mutex::new((Vec::new(), false)));
        let task = pipe.map(|mut pipe| {
            let buffer = Arc::clone(&buffer);
            tokio::spawn(async move {
                let mut chunk = vec![0u8; 16 * 1024];
                loop {
                    match pipe.read(&mut chunk).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            let mut guard = buffer.lock().unwrap_or_else(PoisonError::into_inner);
                            let (kept, truncated) = &mut *guard;
                            let room = limit.saturating_sub(kept.len());
                            kept.extend_from_slice(&chunk[..n.min(room)]);
                            // Keep reading to the end, so the child never blocks on a full pipe.
                            *truncated |= n > room;
                        }
                    }
                }
            })
        });
        Collector { buffer, task }
    }

    /// Waits for the pipe to close (a grandchild may hold it open) and returns
    /// what was kept, and whether the rest was dropped.
    async fn finish(mut self, wait: Duration) -> (Vec<u8>, bool) {
        if let Some(task) = self.task.take() {
            let abort = task.abort_handle();
            if tokio::time::timeout(wait.max(Duration::from_millis(200)), task)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
        std::mem::take(&mut *self.buffer.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn script(dir: &std::path::Path, body: &str) -> Runner {
        let path = dir.join("fake.sh");
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        Runner {
            program: path,
            cwd: dir.to_path_buf(),
            env: vec![("LIFT_TEST_VAR".into(), "42".into())],
            secret_env: Arc::new(vec![(
                "PULUMI_CONFIG_PASSPHRASE".into(),
                SecretValue::from("pp"),
            )]),
            grace: Duration::from_millis(300),
            exit_code_contract: true,
            owner: std::process::id().to_string(),
        }
    }

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    #[tokio::test]
    async fn captures_output_env_and_stdin() {
        let dir = tempfile::tempdir().unwrap();
        let runner = script(
            dir.path(),
            r#"echo "args:$*"; echo "env:$LIFT_TEST_VAR:$PULUMI_SKIP_UPDATE_CHECK:$PULUMI_CONFIG_PASSPHRASE"; cat; echo oops >&2; exit 3"#,
        );
        let finished = runner
            .run(Invocation {
                args: args(&["config", "set", "k"]),
                stdin: Some(Zeroizing::new(b"from-stdin".to_vec())),
                ..Invocation::default()
            })
            .await
            .unwrap();
        assert!(finished.stdout.contains("args:config set k"));
        assert!(finished.stdout.contains("env:42:true:pp"));
        assert!(finished.stdout.contains("from-stdin"));
        assert_eq!(finished.stderr.trim(), "oops");
        assert_eq!(finished.status.code(), Some(3));
        assert_eq!(finished.ending, Ending::Exited);
        assert_eq!(finished.status_text(), "exit code 3");
    }

    #[tokio::test]
    async fn cancellation_sends_sigint_then_waits() {
        let dir = tempfile::tempdir().unwrap();
        let runner = script(
            dir.path(),
            r#"trap 'echo "^C received; cancelling."; exit 130' INT; while true; do sleep 0.05; done"#,
        );
        let token = CancellationToken::new();
        let trigger = token.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            trigger.cancel();
        });
        let finished = runner
            .run(Invocation {
                cancel: Some(token),
                ..Invocation::default()
            })
            .await
            .unwrap();
        assert_eq!(finished.ending, Ending::Cancelled { killed: false });
        assert!(finished.stdout.contains("^C received; cancelling."));
    }

    #[tokio::test]
    async fn timeout_escalates_to_sigkill_when_sigint_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let runner = script(
            dir.path(),
            r#"trap '' INT; while true; do sleep 0.05; done"#,
        );
        let started = std::time::Instant::now();
        let finished = runner
            .run(Invocation {
                timeout: Some(Duration::from_millis(100)),
                ..Invocation::default()
            })
            .await
            .unwrap();
        assert!(matches!(
            finished.ending,
            Ending::TimedOut { killed: true, .. }
        ));
        assert!(finished.status_text().starts_with("signal"));
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn output_past_the_limit_is_dropped_and_flagged() {
        let (mut writer, reader) = tokio::io::duplex(1024);
        let collector = Collector::spawn_with_limit(Some(reader), 10);
        writer.write_all(b"0123456789abcdef").await.unwrap();
        drop(writer);
        let (kept, truncated) = collector.finish(Duration::from_secs(1)).await;
        assert_eq!(kept, b"0123456789");
        assert!(truncated);
    }

    #[tokio::test]
    async fn exit_codes_map_to_kinds_under_the_contract() {
        use lift_core::{Classify, ErrorKind};
        let dir = tempfile::tempdir().unwrap();
        for (code, kind) in [
            (2, ErrorKind::InvalidInput),
            (3, ErrorKind::PermissionDenied),
            (4, ErrorKind::External),
            (5, ErrorKind::FailedPrecondition),
            (6, ErrorKind::NotFound),
            (7, ErrorKind::FailedPrecondition),
            (8, ErrorKind::Cancelled),
            (9, ErrorKind::Timeout),
        ] {
            let runner = script(dir.path(), &format!("echo failed >&2; exit {code}"));
            let finished = runner.run(Invocation::default()).await.unwrap();
            let err = runner.check("pulumi up", "dev", finished).unwrap_err();
            assert_eq!(err.kind(), kind, "exit {code}: {err}");
        }
        let mut runner = script(dir.path(), "echo failed >&2; exit 3");
        runner.exit_code_contract = false;
        let finished = runner.run(Invocation::default()).await.unwrap();
        let err = runner.check("pulumi up", "dev", finished).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::External, "{err}");
    }

    #[tokio::test]
    async fn spawn_failure_is_typed() {
        let runner = Runner {
            program: "/nonexistent/pulumi".into(),
            cwd: std::env::temp_dir(),
            env: Vec::new(),
            secret_env: Arc::default(),
            grace: Duration::from_millis(10),
            exit_code_contract: true,
            owner: String::new(),
        };
        let err = runner.run(Invocation::default()).await.unwrap_err();
        assert!(matches!(err, Error::Spawn { .. }));
    }
}
