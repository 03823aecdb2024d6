//! Drive the real `pulumi` CLI from async Rust: stacks, config, tags,
//! preview/up/refresh/destroy with live engine events, outputs and history,
//! with typed errors.
//!
//! - [`Workspace`] finds the CLI (`--pulumi`, `LIFT_PULUMI`, then `PATH`),
//!   checks its version, and holds the environment, timeouts and audit sink.
//! - [`Stack`] runs every command with an explicit `--stack` and
//!   `--non-interactive`, so one process can drive several stacks at once. Secret config values go
//!   to pulumi on stdin, never on the command line.
//! - [`Stack::up`] and friends tail the engine's event log while pulumi runs, parse each
//!   line into a typed [`EngineEvent`], feed subscribers ([`OpOptions::subscribe`]) and a
//!   per-resource [`Ledger`], and return an [`OpResult`] with the summary, the ledger, the outputs
//!   (secrets wrapped in [`lift_core::SecretValue`]), the version and the permalink.
//! - Cancelling (a [`tokio_util::sync::CancellationToken`], or dropping the future) sends SIGINT
//!   to pulumi's process group, waits for a grace period, then sends SIGKILL.
//! - Errors are classified with the strings Pulumi's Go SDK uses ([`Error`], which maps to
//!   [`lift_core::ErrorKind`]).
//!
//! The event types stand alone, for reading logs written by other tools:
//!
//! ```
//! use lift_pulumi::{EventPayload, parse_events};
//!
//! let log = br#"{"sequence":0,"timestamp":0,"preludeEvent":{"config":{}}}
//! {"sequence":1,"timestamp":0,"summaryEvent":{"maybeCorrupt":false,"durationSeconds":1,"resourceChanges":{"same":2},"PolicyPacks":{}}}
//! {"sequence":2,"timestamp":0,"cancelEvent":{}}"#;
//! let parsed = parse_events(log);
//! assert!(parsed.issues.is_empty());
//! let summary = parsed.events.iter().find_map(|e| e.summary()).expect("a summary");
//! assert_eq!(summary.resource_changes.as_ref().map(|c| c["same"]), Some(2));
//! assert!(matches!(parsed.events[2].payload, EventPayload::Cancel(_)));
//! ```
//!
//! Driving a stack (needs a pulumi CLI, so it is not run here):
//!
//! ```no_run
//! use futures::StreamExt;
//! use lift_pulumi::{ConfigOptions, ConfigValue, OpOptions, Workspace};
//!
//! # async fn run() -> Result<(), lift_pulumi::Error> {
//! let workspace = Workspace::builder("./infra").build().await?;
//! let stack = workspace.select_or_create_stack("dev".parse()?).await?;
//! stack
//!     .config_set("db:password", &ConfigValue::Secret("hunter2".into()), ConfigOptions::default())
//!     .await?;
//! let mut options = OpOptions::default().message("deploy from CI");
//! let mut events = options.subscribe();
//! tokio::spawn(async move {
//!     while let Some(event) = events.next().await {
//!         if let Some(step) = event.step() {
//!             eprintln!("{} {}", step.op, step.urn);
//!         }
//!     }
//! });
//! let result = stack.up(options).await?;
//! println!("{:?} version {:?}", result.summary.resource_changes, result.version);
//! # Ok(()) }
//! ```

// Modules depend on each other in one direction, from the bottom up:
// `process` (one pulumi process) <- `session` (what a workspace's commands
// share) <- `audit`, `outputs`, `tail` (the event log), `workspace` <-
// `operation`, `cancel` <- `stack` <- `lifecycle` (creating, selecting and
// removing stacks). The event types (`events`, `decoder`, `ledger`) depend
// on none of them.
mod audit;
mod cancel;
mod cli;
mod decoder;
mod error;
mod events;
mod health;
mod ledger;
mod lifecycle;
mod log_watch;
mod names;
mod operation;
mod outputs;
mod process;
mod session;
mod settings;
mod stack;
mod tail;
mod tempdir;
mod workspace;

pub use cancel::{CancelOptions, CancelOutcome, LockHolder};
pub use cli::{MINIMUM_VERSION, PULUMI_ENV, PulumiCli};
pub use decoder::{DecodeIssue, EventDecoder, ParsedEvents, parse_events};
pub use error::{Error, Result};
pub use events::{
    CancelEvent, DiagnosticEvent, DiffKind, EngineEvent, ErrorEvent, EventPayload, OpType,
    PolicyEvent, PolicyLoadEvent, PolicyRemediationEvent, PolicyStackSummaryEvent,
    PolicySummaryEvent, PreludeEvent, ProgressEvent, PropertyDiff, PropertyMap, RawProperties,
    RawState, ResOpFailedEvent, ResOutputsEvent, ResourcePreEvent, Severity, StartDebuggingEvent,
    StdoutEvent, StepEventMetadata, StepEventStateMetadata, SummaryEvent, plain_text,
};
pub use health::CliHealthCheck;
pub use ledger::{Diagnostic, Ledger, ResourceEntry, ResourceStatus, is_default_provider};
pub use lifecycle::StackInitOptions;
pub use names::StackName;
pub use operation::{EventStream, OpOptions, OpResult, Operation};
pub use process::OWNER_ENV;
pub use settings::DeploySettings;
pub use stack::{ConfigOptions, ConfigValue, Stack, UpdateSummary};
pub use workspace::{
    DEFAULT_COMMAND_TIMEOUT, DEFAULT_GRACE_PERIOD, StackSummary, WhoAmI, Workspace,
    WorkspaceBuilder,
};

/// Re-exported so that callers can cancel operations without naming `tokio-util` themselves.
pub use tokio_util::sync::CancellationToken;
