//! lift-pulumi's errors, classified the way Pulumi's own Go SDK classifies CLI failures.

use std::time::Duration;

use lift_core::{Classify, ErrorKind};

use crate::ledger::Ledger;

/// What went wrong while driving the Pulumi CLI.
///
/// Messages never contain secret values: secrets never go on the command
/// line, and only the tail of the CLI's stderr is quoted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No pulumi binary was found.
    #[error(
        "pulumi CLI not found ({searched}); install it (https://www.pulumi.com/docs/install/) or set LIFT_PULUMI to its path"
    )]
    NotInstalled {
        /// Where lift looked.
        searched: String,
    },
    /// The pulumi binary is older than lift supports.
    #[error(
        "pulumi CLI at {path} is version {found}, older than the minimum {minimum}; upgrade it (pulumi self upgrade)"
    )]
    TooOld {
        /// The binary.
        path: String,
        /// Its version.
        found: semver::Version,
        /// The minimum lift needs.
        minimum: semver::Version,
    },
    /// `pulumi version` printed something that is not a version.
    #[error(
        "cannot parse the output of `{path} version` ({output:?}) as a semantic version; check that it is the pulumi CLI"
    )]
    UnparseableVersion {
        /// The binary.
        path: String,
        /// What it printed (trimmed, shortened).
        output: String,
    },
    /// Bad input from the caller: a stack name, a config key, an option.
    #[error("{0}")]
    InvalidInput(String),
    /// Another update holds the stack's lock.
    #[error(
        "stack {stack} is locked by another update (concurrent update); wait for it to finish, or run `pulumi cancel` if it died: {detail}"
    )]
    ConcurrentUpdate {
        /// The stack.
        stack: String,
        /// The end of the CLI's stderr.
        detail: String,
    },
    /// A live pulumi that lift did not start holds the stack's lock, and
    /// breaking it was not forced.
    #[error(
        "refusing to cancel: pulumi (pid {pid} on {hostname}) is running an update on stack {stack}, and this backend can only break its lock, not stop it; interrupt that process (Ctrl-C in its terminal, or `kill -INT {pid}`), or force breaking the lock if you are sure it must go"
    )]
    UpdateRunning {
        /// The stack.
        stack: String,
        /// The pulumi process holding the lock.
        pid: u32,
        /// Its host.
        hostname: String,
    },
    /// The stack does not exist.
    #[error("stack {stack} not found; create it first (lift deploy init)")]
    StackNotFound {
        /// The stack.
        stack: String,
    },
    /// A config key or stack tag the stack does not have.
    #[error("{what} {key} not found for stack {stack}; list what it has with `{listing}`")]
    KeyNotFound {
        /// `configuration key` or `stack tag`.
        what: &'static str,
        /// The key, as pulumi printed it (`name` in the project's namespace, `ns:name` otherwise).
        key: String,
        /// The stack.
        stack: String,
        /// The command that lists what the stack has.
        listing: String,
    },
    /// The stack to create exists already.
    #[error("stack {stack} already exists; select it instead of creating it")]
    StackAlreadyExists {
        /// The stack.
        stack: String,
    },
    /// The Pulumi program did not compile.
    #[error(
        "the pulumi program of stack {stack} failed to compile; fix the build errors: {detail}"
    )]
    Compilation {
        /// The stack.
        stack: String,
        /// The end of the CLI's output.
        detail: String,
    },
    /// The Pulumi program failed while running.
    #[error("the pulumi program of stack {stack} failed at run time: {detail}")]
    Runtime {
        /// The stack.
        stack: String,
        /// The end of the CLI's output.
        detail: String,
    },
    /// The engine reported an internal error (a Pulumi bug).
    #[error("the pulumi engine hit an internal error (a pulumi bug) on stack {stack}: {detail}")]
    EngineBug {
        /// The stack.
        stack: String,
        /// The end of the CLI's output.
        detail: String,
    },
    /// The backend refused pulumi's credentials, or it has none (`pulumi` exit code 3).
    #[error(
        "the Pulumi backend refused the credentials for stack {stack} (not logged in, or a wrong or expired access token or backend credential): {detail}; log in with `pulumi login`, or give the workspace an access token or the backend's credentials"
    )]
    Unauthenticated {
        /// The stack.
        stack: String,
        /// The end of the CLI's stderr.
        detail: String,
    },
    /// The passphrase does not decrypt the stack's secrets.
    #[error(
        "the passphrase does not decrypt the secrets of stack {stack}; set PULUMI_CONFIG_PASSPHRASE or PULUMI_CONFIG_PASSPHRASE_FILE to the passphrase the stack was created with"
    )]
    WrongPassphrase {
        /// The stack.
        stack: String,
    },
    /// `--expect-no-changes` was given and the operation proposed changes (`pulumi` exit code 7).
    #[error(
        "stack {stack} has changes, but none were expected (--expect-no-changes): {detail}; a preview changes nothing, but `pulumi up` and `pulumi refresh` apply the changes before they fail, so the stack may now differ: check it with a preview or the history"
    )]
    ChangesNotExpected {
        /// The stack.
        stack: String,
        /// The end of the CLI's output.
        detail: String,
    },
    /// A policy pack rejected the changes (`pulumi` exit code 5).
    #[error("a policy rejected the changes to stack {stack}: {detail}")]
    PolicyViolation {
        /// The stack.
        stack: String,
        /// The end of the CLI's output.
        detail: String,
    },
    /// A plaintext config value that pulumi's guard takes for a secret.
    #[error(
        "the value of {key} looks like a secret, so it was not stored in plain text; set it as a secret, or as plaintext on purpose if it is not one"
    )]
    LooksLikeSecret {
        /// The key.
        key: String,
    },
    /// pulumi rejected the command line or the configuration (`pulumi` exit code 2).
    #[error("pulumi rejected {command} as invalid (exit code 2): {detail}")]
    Rejected {
        /// The command, without secret values.
        command: String,
        /// The end of the CLI's stderr.
        detail: String,
    },
    /// A resource operation failed (`pulumi` exit code 4 or 10).
    #[error("a resource operation of stack {stack} failed: {detail}")]
    ResourceFailed {
        /// The stack.
        stack: String,
        /// The end of the CLI's output.
        detail: String,
    },
    /// The operation was cancelled on request.
    #[error("{command} was cancelled{how}")]
    Cancelled {
        /// The command, without secret values.
        command: String,
        /// How the process ended, for example "; killed after the 10s grace period".
        how: String,
    },
    /// The operation ran out of time.
    #[error(
        "{command} timed out{}{how}; raise the timeout or check the program",
        after_text(*after)
    )]
    Timeout {
        /// The command, without secret values.
        command: String,
        /// The timeout.
        after: Duration,
        /// How the process ended.
        how: String,
    },
    /// The CLI exited unsuccessfully for a reason lift cannot classify further.
    #[error("{command} failed with {status}: {stderr_tail}")]
    CommandFailed {
        /// The command, without secret values.
        command: String,
        /// `exit code N` or `signal N`.
        status: String,
        /// The exit code, if the process exited.
        code: Option<i32>,
        /// The last lines of stderr.
        stderr_tail: String,
    },
    /// The CLI printed something lift cannot read.
    #[error("cannot read the output of {command}: {detail}; check the pulumi CLI version")]
    MalformedOutput {
        /// The command, without secret values.
        command: String,
        /// What was wrong.
        detail: String,
    },
    /// The process could not be started.
    #[error("cannot run {program}: {source}")]
    Spawn {
        /// The program.
        program: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A local file operation failed (the private temp dir, the event log).
    #[error("{context}: {source}")]
    Io {
        /// What lift was doing.
        context: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The audit sink refused the operation's start event, so the operation did not run.
    #[error("audit sink refused the {action} event, so the operation did not run: {source}")]
    Audit {
        /// The action.
        action: String,
        /// The sink's error.
        #[source]
        source: lift_core::Error,
    },
    /// An operation failed after it started; the ledger shows how far it got.
    #[error("{cause}")]
    Operation {
        /// Why it failed.
        cause: Box<Error>,
        /// The resources touched before it failed.
        ledger: Box<Ledger>,
    },
}

impl Error {
    /// The ledger of a failed operation, when it got far enough to have one.
    pub fn partial_ledger(&self) -> Option<&Ledger> {
        match self {
            Error::Operation { ledger, .. } => Some(ledger),
            _ => None,
        }
    }

    /// The underlying error, looking through [`Error::Operation`].
    pub fn cause(&self) -> &Error {
        match self {
            Error::Operation { cause, .. } => cause.cause(),
            other => other,
        }
    }

    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}

impl Classify for Error {
    fn kind(&self) -> ErrorKind {
        match self {
            Error::NotInstalled { .. } | Error::TooOld { .. } => ErrorKind::Unavailable,
            Error::UnparseableVersion { .. } => ErrorKind::External,
            Error::InvalidInput(_) => ErrorKind::InvalidInput,
            Error::ConcurrentUpdate { .. } | Error::UpdateRunning { .. } => ErrorKind::Conflict,
            Error::StackNotFound { .. } | Error::KeyNotFound { .. } => ErrorKind::NotFound,
            Error::StackAlreadyExists { .. } => ErrorKind::AlreadyExists,
            Error::Compilation { .. } | Error::Runtime { .. } | Error::EngineBug { .. } => {
                ErrorKind::External
            }
            Error::Unauthenticated { .. } | Error::WrongPassphrase { .. } => {
                ErrorKind::PermissionDenied
            }
            Error::ChangesNotExpected { .. } | Error::PolicyViolation { .. } => {
                ErrorKind::FailedPrecondition
            }
            Error::LooksLikeSecret { .. } | Error::Rejected { .. } => ErrorKind::InvalidInput,
            Error::ResourceFailed { .. } => ErrorKind::External,
            Error::Cancelled { .. } => ErrorKind::Cancelled,
            Error::Timeout { .. } => ErrorKind::Timeout,
            Error::CommandFailed { .. } | Error::MalformedOutput { .. } => ErrorKind::External,
            Error::Spawn { source, .. } => match source.kind() {
                std::io::ErrorKind::NotFound => ErrorKind::Unavailable,
                std::io::ErrorKind::PermissionDenied => ErrorKind::PermissionDenied,
                _ => ErrorKind::Io,
            },
            Error::Io { source, .. } => ErrorKind::from_io(source.kind()),
            Error::Audit { source, .. } => source.kind(),
            Error::Operation { cause, .. } => cause.kind(),
        }
    }
}

impl From<Error> for lift_core::Error {
    fn from(err: Error) -> Self {
        lift_core::Error::from_classified(err)
    }
}

/// ` after 30s`, or nothing when lift did not set the limit (pulumi's own timeout).
fn after_text(after: Duration) -> String {
    if after.is_zero() {
        String::new()
    } else {
        format!(" after {after:?}")
    }
}

/// `Result` with lift-pulumi's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The strings Pulumi's Go SDK (`sdk/go/auto/errors.go`) matches, kept together so that they stay in sync.
pub(crate) mod markers {
    /// The Pulumi Cloud's answer when another update holds the lock.
    pub(crate) const CONFLICT_CLOUD: &str =
        "[409] Conflict: Another update is currently in progress.";
    /// The DIY (file, S3) backends' lock message.
    pub(crate) const CONFLICT_DIY: &str = "the stack is currently locked by";
    /// Compilation failures by language.
    pub(crate) const COMPILATION: [&str; 4] = [
        "Build FAILED.",
        ": syntax error:",
        ": undefined:",
        "Unable to compile TypeScript",
    ];
    /// Run-time failures by language.
    pub(crate) const RUNTIME: [&str; 4] = [
        "failed with an unhandled exception:",
        "panic: runtime error:",
        "an unhandled error occurred:",
        "go inline source runtime error",
    ];
    /// The passphrase secrets manager's answer to a wrong passphrase.
    pub(crate) const WRONG_PASSPHRASE: &str = "incorrect passphrase";
    /// `--expect-no-changes` on CLIs older than the exit-code contract.
    pub(crate) const NO_CHANGES: &str = "no changes were expected";
    /// The engine's own crash banner.
    pub(crate) const ENGINE_BUG: &str = "The Pulumi CLI encountered a fatal error. This is a bug!";
}

/// The exit codes pulumi 3.227 and newer document as a contract
/// (`pkg/cmd/pulumi/cmd/exit_codes.go`). Older CLIs exit 255 for every failure.
pub(crate) mod exit {
    /// The first version whose exit codes follow the contract.
    pub(crate) const CONTRACT_SINCE: semver::Version = semver::Version::new(3, 227, 0);
    /// Invalid flags, config or invocation.
    pub(crate) const CONFIGURATION: i32 = 2;
    /// Authentication or authorization.
    pub(crate) const AUTHENTICATION: i32 = 3;
    /// A resource operation failed.
    pub(crate) const RESOURCE: i32 = 4;
    /// A policy was violated.
    pub(crate) const POLICY: i32 = 5;
    /// The stack does not exist.
    pub(crate) const STACK_NOT_FOUND: i32 = 6;
    /// `--expect-no-changes` met changes.
    pub(crate) const NO_CHANGES: i32 = 7;
    /// Cancelled.
    pub(crate) const CANCELLED: i32 = 8;
    /// Timed out.
    pub(crate) const TIMEOUT: i32 = 9;
    /// A provider must await an operation.
    pub(crate) const AWAIT: i32 = 10;
}

/// How a failed run ended, for [`classify_failure`].
pub(crate) struct Failure<'a> {
    /// The command, without secret values.
    pub(crate) command: &'a str,
    /// The stack, or "" for commands that name none.
    pub(crate) stack: &'a str,
    /// The exit code, when the CLI's codes follow the contract (3.227 and newer).
    pub(crate) contract_code: Option<i32>,
    /// What it printed.
    pub(crate) stdout: &'a str,
    /// What it printed on stderr.
    pub(crate) stderr: &'a str,
}

/// Classifies a failed CLI run: the lock messages first (they carry the
/// generic exit code), then the exit-code contract where the CLI follows it,
/// then the strings Pulumi's Go SDK matches.
pub(crate) fn classify_failure(failure: &Failure<'_>) -> Option<Error> {
    let Failure {
        command,
        stack,
        contract_code,
        stdout,
        stderr,
    } = *failure;
    let both = |needle: &str| stderr.contains(needle) || stdout.contains(needle);
    if both(markers::CONFLICT_CLOUD) || both(markers::CONFLICT_DIY) {
        return classify_output(stack, stdout, stderr);
    }
    if both(markers::WRONG_PASSPHRASE) {
        return Some(Error::WrongPassphrase {
            stack: stack.to_owned(),
        });
    }
    if let Some(key) = looks_like_secret(stderr) {
        return Some(Error::LooksLikeSecret { key });
    }
    let output = if stdout.trim().is_empty() {
        stderr
    } else {
        stdout
    };
    let from_code = match contract_code {
        Some(exit::CONFIGURATION) => Some(Error::Rejected {
            command: command.to_owned(),
            detail: tail(stderr, 3),
        }),
        Some(exit::AUTHENTICATION) => Some(Error::Unauthenticated {
            stack: stack.to_owned(),
            detail: tail(stderr, 3),
        }),
        Some(exit::POLICY) => Some(Error::PolicyViolation {
            stack: stack.to_owned(),
            detail: tail(output, 8),
        }),
        Some(exit::STACK_NOT_FOUND) => Some(Error::StackNotFound {
            stack: stack.to_owned(),
        }),
        Some(exit::NO_CHANGES) => Some(Error::ChangesNotExpected {
            stack: stack.to_owned(),
            detail: tail(stderr, 2),
        }),
        Some(exit::CANCELLED) => Some(Error::Cancelled {
            command: command.to_owned(),
            how: " by the backend or another process (pulumi exit code 8)".to_owned(),
        }),
        Some(exit::TIMEOUT) => Some(Error::Timeout {
            command: command.to_owned(),
            after: std::time::Duration::ZERO,
            how: " inside pulumi (exit code 9)".to_owned(),
        }),
        _ => None,
    };
    if from_code.is_some() {
        return from_code;
    }
    if contract_code.is_none() && both(markers::NO_CHANGES) {
        return Some(Error::ChangesNotExpected {
            stack: stack.to_owned(),
            detail: tail(stderr, 2),
        });
    }
    if let Some(err) = classify_output(stack, stdout, stderr) {
        return Some(err);
    }
    matches!(contract_code, Some(exit::RESOURCE | exit::AWAIT)).then(|| Error::ResourceFailed {
        stack: stack.to_owned(),
        detail: tail(output, 8),
    })
}

/// pulumi's `config value for 'KEY' looks like a secret; ...`.
fn looks_like_secret(stderr: &str) -> Option<String> {
    stderr.lines().find_map(|line| {
        let at = line.find("config value for '")?;
        let rest = &line[at + "config value for '".len()..];
        let (key, after) = rest.split_once('\'')?;
        after
            .starts_with(" looks like a secret")
            .then(|| key.to_owned())
    })
}

/// Classifies a failed CLI run from its output, as Pulumi's Go SDK does.
///
/// Returns `None` when nothing specific matched; the caller then reports a
/// generic [`Error::CommandFailed`].
pub(crate) fn classify_output(stack: &str, stdout: &str, stderr: &str) -> Option<Error> {
    let stack = stack.to_owned();
    let both = |needle: &str| stderr.contains(needle) || stdout.contains(needle);
    if both(markers::CONFLICT_CLOUD) || both(markers::CONFLICT_DIY) {
        return Some(Error::ConcurrentUpdate {
            stack,
            detail: tail(stderr, 3),
        });
    }
    if matches_no_stack_found(stderr) {
        return Some(Error::StackNotFound { stack });
    }
    if let Some(missing) = missing_key(&stack, stderr) {
        return Some(missing);
    }
    if matches_already_exists(stderr) {
        return Some(Error::StackAlreadyExists { stack });
    }
    if markers::COMPILATION.iter().any(|m| both(m)) {
        return Some(Error::Compilation {
            stack,
            detail: tail(
                if stdout.trim().is_empty() {
                    stderr
                } else {
                    stdout
                },
                8,
            ),
        });
    }
    if markers::RUNTIME.iter().any(|m| both(m)) {
        return Some(Error::Runtime {
            stack,
            detail: tail(
                if stdout.trim().is_empty() {
                    stderr
                } else {
                    stdout
                },
                8,
            ),
        });
    }
    if both(markers::ENGINE_BUG) {
        return Some(Error::EngineBug {
            stack,
            detail: tail(stderr, 8),
        });
    }
    None
}

/// `no stack named.*found`, as the Go SDK's regular expression, on each line.
fn matches_no_stack_found(text: &str) -> bool {
    text.lines().any(|line| {
        line.find("no stack named")
            .is_some_and(|at| line[at..].contains("found"))
    })
}

/// pulumi's `configuration key 'K' not found for stack 'S'` and
/// `stack tag 'K' not found for stack 'S'`.
fn missing_key(stack: &str, stderr: &str) -> Option<Error> {
    stderr.lines().find_map(|line| {
        let (what, listing, rest) = if let Some(at) = line.find("configuration key '") {
            (
                "configuration key",
                format!("lift deploy --stack {stack} config ls"),
                &line[at + "configuration key '".len()..],
            )
        } else if let Some(at) = line.find("stack tag '") {
            (
                "stack tag",
                format!("pulumi stack tag ls --stack {stack}"),
                &line[at + "stack tag '".len()..],
            )
        } else {
            return None;
        };
        let (key, _) = rest.split_once("' not found for stack")?;
        Some(Error::KeyNotFound {
            what,
            key: key.to_owned(),
            stack: stack.to_owned(),
            listing,
        })
    })
}

/// `stack.*already exists`, on each line.
fn matches_already_exists(text: &str) -> bool {
    text.lines().any(|line| {
        line.find("stack")
            .is_some_and(|at| line[at..].contains("already exists"))
    })
}

/// The last `lines` non-empty lines of `text`, at most 2,000 characters.
pub(crate) fn tail(text: &str, lines: usize) -> String {
    let kept: Vec<&str> = text
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.trim().is_empty())
        .collect();
    let start = kept.len().saturating_sub(lines);
    let joined = kept[start..].join("\n");
    const LIMIT: usize = 2000;
    if joined.len() <= LIMIT {
        return joined;
    }
    let mut cut = joined.len() - LIMIT;
    while !joined.is_char_boundary(cut) {
        cut += 1;
    }
    format!("...{}", &joined[cut..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_sdk_strings_classify() {
        let conflict = classify_output(
            "dev",
            "",
            "error: [409] Conflict: Another update is currently in progress.\n",
        )
        .unwrap();
        assert_eq!(conflict.kind(), ErrorKind::Conflict);
        let diy = classify_output(
            "dev",
            "",
            "error: the stack is currently locked by 1 lock(s)",
        )
        .unwrap();
        assert_eq!(diy.kind(), ErrorKind::Conflict);
        let missing = classify_output("dev", "", "error: no stack named 'dev' found").unwrap();
        assert_eq!(missing.kind(), ErrorKind::NotFound);
        let key = classify_output(
            "dev",
            "",
            "error: configuration key 'proj:region' not found for stack 'dev'\n",
        )
        .unwrap();
        assert_eq!(key.kind(), ErrorKind::NotFound);
        assert!(
            matches!(&key, Error::KeyNotFound { key, what: "configuration key", .. } if key == "proj:region")
        );
        assert!(
            key.to_string()
                .contains("lift deploy --stack dev config ls"),
            "{key}"
        );
        let tag = classify_output(
            "dev",
            "",
            "error: stack tag 'team' not found for stack 'o/p/dev'",
        )
        .unwrap();
        assert_eq!(tag.kind(), ErrorKind::NotFound);
        assert!(matches!(
            &tag,
            Error::KeyNotFound {
                what: "stack tag",
                ..
            }
        ));
        let exists = classify_output("dev", "", "error: stack 'dev' already exists").unwrap();
        assert_eq!(exists.kind(), ErrorKind::AlreadyExists);
        let ts = classify_output("dev", "error TS2322\nUnable to compile TypeScript", "").unwrap();
        assert!(matches!(ts, Error::Compilation { .. }));
        let rt = classify_output(
            "dev",
            "Error: boom\n  failed with an unhandled exception:",
            "",
        )
        .unwrap();
        assert!(matches!(rt, Error::Runtime { .. }));
        let bug = classify_output(
            "dev",
            "The Pulumi CLI encountered a fatal error. This is a bug!",
            "",
        );
        assert!(matches!(bug, Some(Error::EngineBug { .. })));
        assert!(classify_output("dev", "fine", "some other failure").is_none());
    }

    #[test]
    fn errors_map_to_core_kinds_and_messages_are_lower_case() {
        let err = Error::NotInstalled {
            searched: "PATH".into(),
        };
        assert!(err.to_string().contains("LIFT_PULUMI"));
        let core: lift_core::Error = err.into();
        assert_eq!(core.kind(), ErrorKind::Unavailable);
        let op = Error::Operation {
            cause: Box::new(Error::Cancelled {
                command: "pulumi up".into(),
                how: String::new(),
            }),
            ledger: Box::default(),
        };
        assert_eq!(op.kind(), ErrorKind::Cancelled);
        assert!(op.partial_ledger().is_some());
        assert!(matches!(op.cause(), Error::Cancelled { .. }));
    }

    #[test]
    fn tail_keeps_the_end() {
        assert_eq!(tail("a\n\nb\nc\n", 2), "b\nc");
        let long = "x".repeat(5000);
        assert!(tail(&long, 1).len() <= 2003);
    }
}
