//! Failure injection and invocation recording, driven by `FAKE_PULUMI_*` environment variables.
//!
//! See the README for the full list. Failures apply to the commands named in `FAKE_PULUMI_FAIL_ON`
//! (default: `preview,up,refresh,destroy`); a name matches itself and its sub-commands, and `all` matches
//! every command.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use crate::error::{CliError, ErrorKind};
use crate::events::Damage;

/// The version printed by `pulumi version` unless `FAKE_PULUMI_VERSION` overrides it.
const DEFAULT_VERSION: &str = "v3.274.1";

/// The failure to inject (`FAKE_PULUMI_FAIL`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Fail {
    /// `conflict`: `error: [409] Conflict: Another update is currently in progress.`
    Conflict,
    /// `locked`: the diy backend's `the stack is currently locked by` error.
    Locked,
    /// `compile`: a TypeScript compilation failure ("Unable to compile TypeScript").
    Compile,
    /// `runtime`: the program throws ("failed with an unhandled exception:").
    Runtime,
    /// `engine-bug`: "The Pulumi CLI encountered a fatal error. This is a bug!"; the log stops early.
    EngineBug,
    /// `exit:N`: exit with code N before doing anything.
    Exit(i32),
    /// `garbage`: commands print malformed JSON.
    Garbage,
    /// `garbage-events`: the event log gets a line that is not JSON.
    GarbageEvents,
    /// `truncate-event-log`: the last event line is cut in half.
    TruncateEventLog,
    /// A value the fake does not know; reported as an error so typos do not pass silently.
    Unknown,
}

/// The slow mode (`FAKE_PULUMI_SLOW`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Slow {
    /// `wait-sigint`: pause mid-operation until SIGINT, then cancel like Pulumi.
    WaitSigint,
    /// `ignore-sigint`: pause mid-operation and ignore SIGINT (only SIGKILL or the timeout ends it).
    IgnoreSigint,
}

/// Parsed failure-injection settings.
#[derive(Debug, Clone)]
pub(crate) struct Faults {
    fail: Option<Fail>,
    fail_on: Vec<String>,
    /// `FAKE_PULUMI_FAIL_RESOURCE`: names (or URNs) of resources whose operation fails.
    pub(crate) fail_resources: Vec<String>,
    slow: Option<Slow>,
    /// `FAKE_PULUMI_SLOW_TIMEOUT_MS`: how long a slow mode waits at most (default 60 s).
    pub(crate) slow_timeout: Duration,
    /// `FAKE_PULUMI_DRIFT`: names (or URNs) of resources that `refresh` finds changed.
    pub(crate) drift: Vec<String>,
    /// `FAKE_PULUMI_EVENT_DELAY_MS`: a pause after each event (default 0).
    pub(crate) event_delay: Duration,
    version: Option<String>,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn millis(name: &str, default: u64) -> Duration {
    Duration::from_millis(env(name).and_then(|v| v.parse().ok()).unwrap_or(default))
}

impl Faults {
    /// Reads the `FAKE_PULUMI_*` variables. Unknown values are reported when a command runs.
    pub(crate) fn from_env() -> Faults {
        let fail = env("FAKE_PULUMI_FAIL").map(|v| match v.as_str() {
            "conflict" => Fail::Conflict,
            "locked" => Fail::Locked,
            "compile" => Fail::Compile,
            "runtime" => Fail::Runtime,
            "engine-bug" => Fail::EngineBug,
            "garbage" => Fail::Garbage,
            "garbage-events" => Fail::GarbageEvents,
            "truncate-event-log" => Fail::TruncateEventLog,
            other => match other.strip_prefix("exit:").and_then(|n| n.parse().ok()) {
                Some(code) => Fail::Exit(code),
                None => Fail::Unknown,
            },
        });
        let fail_on = env("FAKE_PULUMI_FAIL_ON")
            .unwrap_or_else(|| "preview,up,refresh,destroy".to_owned())
            .split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect();
        let fail_resources = env("FAKE_PULUMI_FAIL_RESOURCE")
            .map(|v| v.split(',').map(|s| s.trim().to_owned()).collect())
            .unwrap_or_default();
        let slow = env("FAKE_PULUMI_SLOW").and_then(|v| match v.as_str() {
            "wait-sigint" => Some(Slow::WaitSigint),
            "ignore-sigint" => Some(Slow::IgnoreSigint),
            _ => None,
        });
        let drift = env("FAKE_PULUMI_DRIFT")
            .map(|v| v.split(',').map(|s| s.trim().to_owned()).collect())
            .unwrap_or_default();
        Faults {
            fail,
            fail_on,
            fail_resources,
            drift,
            slow,
            slow_timeout: millis("FAKE_PULUMI_SLOW_TIMEOUT_MS", 60_000),
            event_delay: millis("FAKE_PULUMI_EVENT_DELAY_MS", 0),
            version: env("FAKE_PULUMI_VERSION"),
        }
    }

    fn applies(&self, command: &str) -> bool {
        let command = if command == "update" { "up" } else { command };
        self.fail_on
            .iter()
            .any(|f| f == "all" || f == command || command.starts_with(&format!("{f} ")))
    }

    /// The failure that applies to `command`, if any.
    pub(crate) fn fail(&self, command: &str) -> Option<&Fail> {
        self.fail.as_ref().filter(|_| self.applies(command))
    }

    /// The slow mode that applies to `command`, if any.
    pub(crate) fn slow(&self, command: &str) -> Option<Slow> {
        self.slow.filter(|_| self.applies(command))
    }

    /// Whether JSON output of `command` should be malformed.
    pub(crate) fn garbage_json(&self, command: &str) -> bool {
        self.fail(command) == Some(&Fail::Garbage)
    }

    /// How the event log should be damaged.
    pub(crate) fn damage(&self, command: &str) -> Damage {
        match self.fail(command) {
            Some(Fail::TruncateEventLog) => Damage::TruncateLastLine,
            Some(Fail::GarbageEvents) => Damage::GarbageLine,
            _ => Damage::None,
        }
    }

    /// The version string `pulumi version` prints.
    pub(crate) fn version(&self) -> String {
        self.version
            .clone()
            .unwrap_or_else(|| DEFAULT_VERSION.to_owned())
    }

    /// Failures that happen before a command does anything.
    pub(crate) fn before_command(&self, command: &str) -> Result<(), CliError> {
        if let Some(raw) = env("FAKE_PULUMI_FAIL") {
            if self.fail == Some(Fail::Unknown) {
                return Err(CliError::new(format!(
                    "the fake pulumi does not know FAKE_PULUMI_FAIL={raw}; see tests/src/bin/pulumi/README.md"
                )));
            }
        }
        match self.fail(command) {
            Some(Fail::Exit(code)) => Err(CliError {
                message: format!("fake failure injected by FAKE_PULUMI_FAIL=exit:{code}"),
                code: *code,
                kind: ErrorKind::Cli,
            }),
            Some(Fail::Conflict) => Err(CliError::new(
                "[409] Conflict: Another update is currently in progress.",
            )),
            Some(Fail::Locked) => Err(CliError::new(format!(
                "the stack is currently locked by 1 lock(s). Either wait for the other process(es) to end or delete the lock file with `pulumi cancel`.\n  file:///tmp/.pulumi/locks/fake/fake/injected.json: created by {}@localhost (pid 1) at 1970-01-01T00:00:00.000Z",
                crate::store::username()
            ))),
            _ => Ok(()),
        }
    }
}

/// Appends one JSON line describing this invocation to `FAKE_PULUMI_RECORD`, if set.
///
/// It records the argv, the *names* (never the values) of the environment variables, the working
/// directory and whether stdin is a terminal, so that tests can assert that a secret never reached argv.
pub(crate) fn record_invocation(argv: &[String]) {
    let Some(path) = env("FAKE_PULUMI_RECORD") else {
        return;
    };
    let mut names: Vec<String> = std::env::vars_os()
        .map(|(k, _)| k.to_string_lossy().into_owned())
        .collect();
    names.sort();
    let line = serde_json::json!({
        "argv": argv,
        "env": names,
        "cwd": std::env::current_dir().map(|d| d.display().to_string()).unwrap_or_default(),
        "pid": std::process::id(),
        "stdinIsTerminal": std::io::stdin().is_terminal(),
    })
    .to_string();
    // O_APPEND with a single write keeps concurrent invocations' lines whole.
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
    {
        let _ = f.write_all(format!("{line}\n").as_bytes());
    }
}
