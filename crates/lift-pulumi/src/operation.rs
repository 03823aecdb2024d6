//! preview, up, refresh and destroy: the options, running one with its
//! event log tailed into the ledger and the subscribers, the audit events and
//! the result.
//!
//! The public entry points are [`crate::Stack::up`] and friends; this module
//! takes a [`Session`] and a stack name, so that it needs nothing of `Stack`.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::Stream;
use lift_core::{DeployResult, DeploySummary, OutputValue};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::audit::Auditor;
use crate::decoder::DecodeIssue;
use crate::error::{Error, Result};
use crate::events::{EngineEvent, SummaryEvent};
use crate::ledger::{Ledger, ResourceStatus};
use crate::log_watch::LogWatch;
use crate::names::StackName;
use crate::outputs;
use crate::process::Invocation;
use crate::session::{Session, command_args};
use crate::tail::EventLogTail;
use crate::tempdir::private_temp_dir;

/// `--exclude` and `--exclude-dependents` appeared in pulumi 3.158.
const EXCLUDE_SINCE: semver::Version = semver::Version::new(3, 158, 0);
/// `up --continue-on-error` appeared in pulumi 3.114.
const CONTINUE_ON_ERROR_UP_SINCE: semver::Version = semver::Version::new(3, 114, 0);
/// `destroy --continue-on-error` appeared in pulumi 3.112.
const CONTINUE_ON_ERROR_DESTROY_SINCE: semver::Version = semver::Version::new(3, 112, 0);

/// How often the event log is read while the process runs when no inotify
/// watch could be set up. A read that finds nothing new costs one syscall
/// (about 1 µs), so 1 ms keeps event delivery within a few milliseconds for
/// about 0.1 % of a core.
const POLL_INTERVAL: Duration = Duration::from_millis(1);

/// How often the event log is read anyway while an inotify watch wakes the
/// reader on each write: a safety net, not the delivery path.
const WATCHED_POLL_INTERVAL: Duration = Duration::from_millis(50);

/// One of the four operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    /// `pulumi preview`.
    Preview,
    /// `pulumi up`.
    Up,
    /// `pulumi refresh`.
    Refresh,
    /// `pulumi destroy`.
    Destroy,
}

impl Operation {
    /// `preview`, `up`, `refresh` or `destroy`.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Preview => "preview",
            Operation::Up => "up",
            Operation::Refresh => "refresh",
            Operation::Destroy => "destroy",
        }
    }

    fn words(self) -> &'static [&'static str] {
        match self {
            Operation::Preview => &["preview"],
            Operation::Up => &["up", "--yes", "--skip-preview"],
            Operation::Refresh => &["refresh", "--yes", "--skip-preview"],
            Operation::Destroy => &["destroy", "--yes", "--skip-preview"],
        }
    }
}

impl std::fmt::Display for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The options of an operation, covering the Go SDK's `optup`/`optpreview`/`optrefresh`/`optdestroy`.
///
/// Options are checked before pulumi starts. An option the operation does
/// not take (`refresh` with [`OpOptions::replace`]), `--target` together
/// with `--exclude` (pulumi declares them mutually exclusive), and an option
/// newer than the installed CLI (`--exclude` needs 3.158) fail with
/// [`Error::InvalidInput`] naming the flag, and nothing runs.
/// Output is always uncolored (`--color never`).
///
/// ```
/// use std::time::Duration;
/// use lift_pulumi::OpOptions;
///
/// let mut options = OpOptions::default()
///     .message("release 42")
///     .target("urn:pulumi:prod::api::aws:lambda/function:Function::handler")
///     .target_dependents(true)
///     .parallel(4)
///     .timeout(Duration::from_secs(900));
/// let _events = options.subscribe(); // a Stream of engine events while it runs
/// ```
#[derive(Debug)]
#[non_exhaustive]
#[must_use]
pub struct OpOptions {
    message: Option<String>,
    targets: Vec<String>,
    target_dependents: bool,
    excludes: Vec<String>,
    exclude_dependents: bool,
    replaces: Vec<String>,
    parallel: Option<u32>,
    expect_no_changes: bool,
    refresh: bool,
    diff: bool,
    continue_on_error: bool,
    config_file: Option<PathBuf>,
    timeout: Option<Duration>,
    cancel_token: Option<CancellationToken>,
    kill_token: Option<CancellationToken>,
    read_outputs: bool,
    subscribers: Vec<mpsc::UnboundedSender<Arc<EngineEvent>>>,
}

impl Default for OpOptions {
    fn default() -> Self {
        OpOptions {
            message: None,
            targets: Vec::new(),
            target_dependents: false,
            excludes: Vec::new(),
            exclude_dependents: false,
            replaces: Vec::new(),
            parallel: None,
            expect_no_changes: false,
            refresh: false,
            diff: false,
            continue_on_error: false,
            config_file: None,
            timeout: None,
            cancel_token: None,
            kill_token: None,
            read_outputs: true,
            subscribers: Vec::new(),
        }
    }
}

impl OpOptions {
    /// The update message (`--message`).
    pub fn message(mut self, message: impl Into<String>) -> Self {
        self.message = Some(message.into());
        self
    }

    /// Limits the operation to this URN (`--target`); repeatable.
    pub fn target(mut self, urn: impl Into<String>) -> Self {
        self.targets.push(urn.into());
        self
    }

    /// Includes the targets' dependents (`--target-dependents`).
    pub fn target_dependents(mut self, yes: bool) -> Self {
        self.target_dependents = yes;
        self
    }

    /// Leaves this URN out (`--exclude`); repeatable.
    pub fn exclude(mut self, urn: impl Into<String>) -> Self {
        self.excludes.push(urn.into());
        self
    }

    /// Leaves the excluded resources' dependents out too (`--exclude-dependents`).
    pub fn exclude_dependents(mut self, yes: bool) -> Self {
        self.exclude_dependents = yes;
        self
    }

    /// Forces the replacement of this URN (`--replace`); repeatable.
    pub fn replace(mut self, urn: impl Into<String>) -> Self {
        self.replaces.push(urn.into());
        self
    }

    /// How many resource operations run at once (`--parallel`).
    pub fn parallel(mut self, n: u32) -> Self {
        self.parallel = Some(n);
        self
    }

    /// Fails if the operation would change anything (`--expect-no-changes`).
    pub fn expect_no_changes(mut self, yes: bool) -> Self {
        self.expect_no_changes = yes;
        self
    }

    /// Refreshes the state first (`--refresh`).
    pub fn refresh(mut self, yes: bool) -> Self {
        self.refresh = yes;
        self
    }

    /// Shows a detailed diff (`--diff`).
    pub fn diff(mut self, yes: bool) -> Self {
        self.diff = yes;
        self
    }

    /// Keeps going after a resource fails (`--continue-on-error`).
    pub fn continue_on_error(mut self, yes: bool) -> Self {
        self.continue_on_error = yes;
        self
    }

    /// Uses this stack config file (`--config-file`).
    pub fn config_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.config_file = Some(path.into());
        self
    }

    /// Interrupts the operation after this long (SIGINT, then SIGKILL after the grace period).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Interrupts the operation when `token` is cancelled. Dropping the
    /// operation's future interrupts it too.
    pub fn cancel_token(mut self, token: CancellationToken) -> Self {
        self.cancel_token = Some(token);
        self
    }

    /// Whether `up` and `refresh` return the stack's outputs (on by default).
    ///
    /// They come from the engine's report of the root stack resource in the
    /// event log when it holds only plain values, at no cost. When an output
    /// is secret (the event log blinds secrets), holds an asset, an archive or
    /// a resource reference, when the report is missing, or when the
    /// operation was limited with `--target` or `--exclude`, lift runs
    /// `pulumi stack output` twice (masked, to learn which outputs are
    /// secret, and revealed), in parallel, after the update: about half a
    /// second. Turn it off when the outputs are not needed.
    pub fn read_outputs(mut self, yes: bool) -> Self {
        self.read_outputs = yes;
        self
    }

    /// Kills pulumi at once when `token` is cancelled, cutting the grace
    /// period after an interrupt short (a second Ctrl-C). The stack may then
    /// stay locked, as with `kill -9`.
    pub fn kill_token(mut self, token: CancellationToken) -> Self {
        self.kill_token = Some(token);
        self
    }

    /// A stream of the operation's engine events, delivered as they are
    /// written. It ends after the `cancelEvent` or when the operation ends.
    /// Events are never dropped for a slow reader.
    pub fn subscribe(&mut self) -> EventStream {
        let (tx, rx) = mpsc::unbounded_channel();
        self.subscribers.push(tx);
        EventStream { rx }
    }

    /// Refuses what `op` on a CLI of `version` does not take.
    fn check(&self, op: Operation, version: &semver::Version) -> Result<()> {
        use Operation::{Destroy, Preview, Refresh, Up};
        if !self.targets.is_empty() && !self.excludes.is_empty() {
            return Err(Error::InvalidInput(
                "--target and --exclude cannot be combined: pulumi declares them mutually exclusive; use one of them".to_owned(),
            ));
        }
        let given: [(&str, bool, &[Operation], Option<&semver::Version>); 6] = [
            (
                "--exclude",
                !self.excludes.is_empty(),
                &[Preview, Up, Refresh, Destroy],
                Some(&EXCLUDE_SINCE),
            ),
            (
                "--exclude-dependents",
                self.exclude_dependents,
                &[Preview, Up, Refresh],
                Some(&EXCLUDE_SINCE),
            ),
            ("--replace", !self.replaces.is_empty(), &[Preview, Up], None),
            (
                "--expect-no-changes",
                self.expect_no_changes,
                &[Preview, Up, Refresh],
                None,
            ),
            ("--refresh", self.refresh, &[Preview, Up, Destroy], None),
            (
                "--continue-on-error",
                self.continue_on_error,
                &[Up, Destroy],
                Some(if op == Destroy {
                    &CONTINUE_ON_ERROR_DESTROY_SINCE
                } else {
                    &CONTINUE_ON_ERROR_UP_SINCE
                }),
            ),
        ];
        for (flag, set, takes, since) in given {
            if !set {
                continue;
            }
            if !takes.contains(&op) {
                return Err(Error::InvalidInput(format!(
                    "`pulumi {op}` does not take {flag}; remove it"
                )));
            }
            if let Some(since) = since.filter(|since| version < *since) {
                return Err(Error::InvalidInput(format!(
                    "{flag} on `pulumi {op}` needs pulumi {since} or newer, and this CLI is {version}; upgrade pulumi or remove the flag"
                )));
            }
        }
        Ok(())
    }

    fn args(
        &self,
        op: Operation,
        event_log: &Path,
        version: &semver::Version,
    ) -> Result<Vec<OsString>> {
        self.check(op, version)?;
        let mut args: Vec<OsString> = op.words().iter().map(OsString::from).collect();
        args.push("--event-log".into());
        args.push(event_log.as_os_str().to_owned());
        args.push("--color".into());
        args.push("never".into());
        if let Some(message) = &self.message {
            args.push("--message".into());
            args.push(message.into());
        }
        for urn in &self.targets {
            check_urn(urn)?;
            args.push(format!("--target={urn}").into());
        }
        if self.target_dependents {
            args.push("--target-dependents".into());
        }
        for urn in &self.excludes {
            check_urn(urn)?;
            args.push(format!("--exclude={urn}").into());
        }
        if self.exclude_dependents {
            args.push("--exclude-dependents".into());
        }
        for urn in &self.replaces {
            check_urn(urn)?;
            args.push(format!("--replace={urn}").into());
        }
        if let Some(n) = self.parallel {
            args.push(format!("--parallel={n}").into());
        }
        if self.expect_no_changes {
            args.push("--expect-no-changes".into());
        }
        if self.refresh {
            args.push("--refresh".into());
        }
        if self.diff {
            args.push("--diff".into());
        }
        if self.continue_on_error {
            args.push("--continue-on-error".into());
        }
        if let Some(path) = &self.config_file {
            let mut flag = OsString::from("--config-file=");
            flag.push(path.as_os_str());
            args.push(flag);
        }
        Ok(args)
    }
}

fn check_urn(urn: &str) -> Result<()> {
    if urn.is_empty() || urn.chars().any(char::is_control) {
        return Err(Error::InvalidInput(format!(
            "invalid URN {urn:?}: it is empty or contains a control character"
        )));
    }
    Ok(())
}

/// Engine events of a running operation, as a [`Stream`]. See [`OpOptions::subscribe`].
#[derive(Debug)]
pub struct EventStream {
    rx: mpsc::UnboundedReceiver<Arc<EngineEvent>>,
}

impl Stream for EventStream {
    type Item = Arc<EngineEvent>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}

/// What a successful operation did.
#[derive(Debug, Clone)]
pub struct OpResult {
    /// The stack.
    pub stack: String,
    /// The summary (the engine's counts, lift's wall-clock duration).
    pub summary: DeploySummary,
    /// The engine's `summaryEvent`, verbatim, when it wrote one.
    pub engine_summary: Option<SummaryEvent>,
    /// One entry per resource touched.
    pub ledger: Ledger,
    /// The outputs after `up` and `refresh` (empty for `preview` and `destroy`), secrets wrapped.
    pub outputs: BTreeMap<String, OutputValue>,
    /// The stack version this operation produced: `None` for `preview`, and
    /// on DIY backends (file, S3, ...), which do not number their updates.
    pub version: Option<u64>,
    /// The console link Pulumi printed, if any (DIY backends print none).
    pub permalink: Option<String>,
    /// Parts of the event log that could not be read. Empty for a healthy CLI.
    pub decode_issues: Vec<DecodeIssue>,
    /// What went wrong after the operation completed, such as reading the
    /// outputs or the history afterwards. The operation itself is done.
    pub warnings: Vec<String>,
}

/// Runs one operation on `stack`. Dropping the future interrupts pulumi and
/// removes the event log. See [`crate::Stack::operate`].
#[tracing::instrument(level = "info", skip_all, fields(stack = %stack, op = %op))]
pub(crate) async fn run(
    session: &Session,
    stack: &StackName,
    op: Operation,
    mut options: OpOptions,
) -> Result<OpResult> {
    let started = Instant::now();
    let version = session.cli().version().clone();
    let audit = Auditor::new(session, stack, op.as_str()).detail("operation", op.as_str());
    // Bad options are refused before anything is recorded or spawned.
    options.check(op, &version)?;
    audit.started().await?;

    let dir = match private_temp_dir() {
        Ok(dir) => dir,
        Err(err) => return Err(failed(&audit, err, Ledger::default()).await),
    };
    let log_path = dir.path().join("events.jsonl");
    let mut args = match options.args(op, &log_path, &version) {
        Ok(args) => args,
        Err(err) => return Err(failed(&audit, err, Ledger::default()).await),
    };
    args.extend(command_args(&[], Some(stack)));
    let runner = session.runner();
    let command = runner.describe(&args[..1]);
    let token = options.cancel_token.take().unwrap_or_default();
    let _running = session.register_running(stack, token.clone());
    let invocation = Invocation {
        args,
        stdin: None,
        timeout: options.timeout,
        cancel: Some(token),
        kill: options.kill_token.take(),
    };

    let mut tail = EventLogTail::new(log_path, std::mem::take(&mut options.subscribers));
    // inotify wakes the reader on every write to the log; without it (no
    // inotify, or out of watches) the log is polled every millisecond.
    let watch = LogWatch::start(dir.path());
    let interval = if watch.is_some() {
        WATCHED_POLL_INTERVAL
    } else {
        POLL_INTERVAL
    };
    let woken = watch.as_ref().map(LogWatch::wakeups);
    let run = runner.run(invocation);
    tokio::pin!(run);
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let finished = loop {
        tokio::select! {
            finished = &mut run => break finished,
            () = wait_for(woken.as_deref()) => tail.poll(),
            _ = ticker.tick() => tail.poll(),
        }
    };
    // The process is gone: read what it wrote last, then stop.
    tail.poll();
    drop(watch);
    let read = tail.finish();
    let issues = read.issues;
    let mut ledger = read.ledger;
    drop(dir);

    let checked = finished.and_then(|f| runner.check(&command, stack.as_str(), f));
    let engine_summary = read.summary;
    let engine_result = engine_summary.as_ref().and_then(|s| s.result.as_deref());
    let result = match engine_result {
        Some("failed") => DeployResult::Failed,
        Some("canceled" | "cancelled") => DeployResult::Cancelled,
        _ => DeployResult::Succeeded,
    };
    ledger.close(
        Instant::now(),
        checked.is_ok() && result == DeployResult::Succeeded,
    );
    let finished = match checked {
        Ok(finished) => finished,
        Err(err) => return Err(failed(&audit, err, ledger).await),
    };
    if engine_summary.is_none() && !issues.is_empty() {
        let detail = issues
            .iter()
            .take(3)
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ");
        let err = Error::MalformedOutput {
            command: format!("{command} event log"),
            detail,
        };
        return Err(failed(&audit, err, ledger).await);
    }
    if op == Operation::Preview && engine_summary.is_none() {
        let err = Error::MalformedOutput {
            command: format!("{command} event log"),
            detail: "the preview wrote no summaryEvent".to_owned(),
        };
        return Err(failed(&audit, err, ledger).await);
    }

    // The operation is done; what follows only reads, and cannot undo it.
    let mut warnings = Vec::new();
    let from_engine = read
        .root_state
        .as_ref()
        .filter(|_| options.targets.is_empty() && options.excludes.is_empty())
        .and_then(outputs::from_root_state);
    let outputs = if !matches!(op, Operation::Up | Operation::Refresh) || !options.read_outputs {
        BTreeMap::new()
    } else if let Some(outputs) = from_engine {
        outputs
    } else {
        outputs::read(session, stack).await.unwrap_or_else(|err| {
            warnings.push(format!(
                "the update completed, but reading the stack outputs failed: {err}"
            ));
            BTreeMap::new()
        })
    };
    // The console link names the update's version (`.../updates/N`);
    // DIY backends print none and number no update, so no history
    // command is needed either way.
    let permalink = find_permalink(&finished.stdout);
    let version = match op {
        Operation::Preview => None,
        _ => permalink.as_deref().and_then(version_of_permalink),
    };
    let summary = DeploySummary {
        operation: op.as_str().to_owned(),
        result,
        resource_changes: engine_summary
            .as_ref()
            .and_then(|s| s.resource_changes.as_ref())
            .map(|changes| {
                changes
                    .iter()
                    .map(|(k, v)| (k.clone(), u64::try_from(*v).unwrap_or(0)))
                    .collect()
            })
            .unwrap_or_default(),
        duration: started.elapsed(),
    };
    let result = OpResult {
        stack: stack.to_string(),
        summary,
        engine_summary,
        ledger,
        outputs,
        version,
        permalink,
        decode_issues: issues,
        warnings,
    };
    let changes = serde_json::to_value(&result.summary.resource_changes).unwrap_or_default();
    audit
        .succeeded(vec![
            (
                "result",
                serde_json::to_value(result.summary.result).unwrap_or_default(),
            ),
            ("resource_changes", changes),
            (
                "duration_seconds",
                result.summary.duration.as_secs_f64().into(),
            ),
            ("resources", result.ledger.resources().count().into()),
            (
                "failed_resources",
                result.ledger.count(ResourceStatus::Failed).into(),
            ),
            (
                "version",
                result
                    .version
                    .map(serde_json::Value::from)
                    .unwrap_or_default(),
            ),
            ("warnings", result.warnings.len().into()),
        ])
        .await;
    Ok(result)
}

/// Records the failure (or cancellation) and wraps the error with the partial ledger.
async fn failed(audit: &Auditor<'_>, err: Error, ledger: Ledger) -> Error {
    audit
        .failed(
            &err,
            vec![
                ("resources", ledger.resources().count().into()),
                (
                    "failed_resources",
                    ledger.count(ResourceStatus::Failed).into(),
                ),
                (
                    "unfinished_resources",
                    ledger.count(ResourceStatus::Unfinished).into(),
                ),
            ],
        )
        .await;
    Error::Operation {
        cause: Box::new(err),
        ledger: Box::new(ledger),
    }
}

/// Waits for the next wake-up of an inotify watch, or forever without one.
async fn wait_for(woken: Option<&tokio::sync::Notify>) {
    match woken {
        Some(notify) => notify.notified().await,
        None => std::future::pending().await,
    }
}

/// The update number at the end of a console link (`.../updates/42`).
fn version_of_permalink(link: &str) -> Option<u64> {
    let (_, tail) = link.trim_end_matches('/').rsplit_once("/updates/")?;
    tail.parse().ok().filter(|v| *v > 0)
}

/// Finds the console link in pulumi's output, as the Go SDK's `GetPermalink` does.
fn find_permalink(stdout: &str) -> Option<String> {
    const MARKERS: [&str; 4] = [
        "View Live: ",
        "View in Browser: ",
        "View in Browser (Ctrl+O): ",
        "Permalink: ",
    ];
    stdout.lines().find_map(|line| {
        MARKERS.iter().find_map(|marker| {
            line.find(marker)
                .map(|at| line[at + marker.len()..].trim().to_owned())
                .filter(|link| !link.is_empty())
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(options: &OpOptions, op: Operation, version: &semver::Version) -> Result<Vec<String>> {
        Ok(options
            .args(op, Path::new("/tmp/log"), version)?
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect())
    }

    #[test]
    fn options_become_flags() {
        let current = semver::Version::new(3, 274, 1);
        let options = OpOptions::default()
            .message("ship it")
            .target("urn:a")
            .target_dependents(true)
            .replace("urn:c")
            .parallel(3)
            .expect_no_changes(true)
            .refresh(true)
            .diff(true)
            .continue_on_error(true)
            .config_file("/tmp/Pulumi.x.yaml");
        let up = flags(&options, Operation::Up, &current).unwrap();
        for flag in [
            "up",
            "--yes",
            "--skip-preview",
            "--event-log",
            "never",
            "ship it",
            "--target=urn:a",
            "--target-dependents",
            "--replace=urn:c",
            "--parallel=3",
            "--expect-no-changes",
            "--refresh",
            "--diff",
            "--continue-on-error",
            "--config-file=/tmp/Pulumi.x.yaml",
        ] {
            assert!(up.iter().any(|a| a == flag), "{flag} missing from {up:?}");
        }
        let excluded = OpOptions::default()
            .exclude("urn:b")
            .exclude_dependents(true);
        let preview = flags(&excluded, Operation::Preview, &current).unwrap();
        assert!(preview.iter().any(|a| a == "--exclude=urn:b"));
        assert!(preview.iter().any(|a| a == "--exclude-dependents"));
        assert!(!preview.iter().any(|a| a == "--yes"));
        assert!(
            OpOptions::default()
                .target("bad\nurn")
                .args(Operation::Up, Path::new("/x"), &current)
                .is_err()
        );
    }

    #[test]
    fn options_an_operation_does_not_take_are_refused_naming_the_flag() {
        let current = semver::Version::new(3, 274, 1);
        let refused = |options: OpOptions, op: Operation| {
            let err = flags(&options, op, &current).unwrap_err();
            assert!(matches!(err, Error::InvalidInput(_)), "{err}");
            err.to_string()
        };
        let both = refused(
            OpOptions::default().target("urn:a").exclude("urn:b"),
            Operation::Up,
        );
        assert!(both.contains("--target and --exclude"), "{both}");
        let replace = refused(OpOptions::default().replace("urn:a"), Operation::Refresh);
        assert!(
            replace.contains("`pulumi refresh` does not take --replace"),
            "{replace}"
        );
        let refresh = refused(OpOptions::default().refresh(true), Operation::Refresh);
        assert!(refresh.contains("--refresh"), "{refresh}");
        let coe = refused(
            OpOptions::default().continue_on_error(true),
            Operation::Preview,
        );
        assert!(coe.contains("--continue-on-error"), "{coe}");
        let dependents = refused(
            OpOptions::default()
                .exclude("urn:b")
                .exclude_dependents(true),
            Operation::Destroy,
        );
        assert!(dependents.contains("--exclude-dependents"), "{dependents}");
        let expect = refused(
            OpOptions::default().expect_no_changes(true),
            Operation::Destroy,
        );
        assert!(expect.contains("--expect-no-changes"), "{expect}");
    }

    #[test]
    fn flags_newer_than_the_cli_are_refused_naming_the_version() {
        let old = semver::Version::new(3, 110, 0);
        let err = flags(&OpOptions::default().exclude("urn:b"), Operation::Up, &old).unwrap_err();
        assert!(err.to_string().contains("needs pulumi 3.158.0"), "{err}");
        let err = flags(
            &OpOptions::default().continue_on_error(true),
            Operation::Destroy,
            &old,
        )
        .unwrap_err();
        assert!(err.to_string().contains("3.112.0"), "{err}");
        let mid = semver::Version::new(3, 113, 0);
        assert!(
            flags(
                &OpOptions::default().continue_on_error(true),
                Operation::Destroy,
                &mid
            )
            .is_ok()
        );
        assert!(
            flags(
                &OpOptions::default().continue_on_error(true),
                Operation::Up,
                &mid
            )
            .is_err()
        );
    }

    #[test]
    fn permalinks_are_found_like_the_go_sdk() {
        assert_eq!(
            find_permalink(
                "Updating (dev)\n\nView Live: https://app.pulumi.com/a/b/dev/updates/3\n"
            ),
            Some("https://app.pulumi.com/a/b/dev/updates/3".to_owned())
        );
        assert_eq!(
            find_permalink("Permalink: file:///x/updates/1\n").as_deref(),
            Some("file:///x/updates/1")
        );
        assert_eq!(find_permalink("nothing here"), None);
        assert_eq!(
            version_of_permalink("https://app.pulumi.com/a/b/dev/updates/3"),
            Some(3)
        );
        assert_eq!(version_of_permalink("file:///x"), None);
    }
}
