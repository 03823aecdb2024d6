//! Audit events and the sink contract.
//!
//! An [`AuditEvent`] carries the PCI DSS 10.2.2 fields: who (actor), what
//! (event type and action), when (UTC time), where (origin: host and
//! process), the outcome, and the affected resource. It also carries a
//! correlation id and structured details. It never carries a secret value.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::{Error, ErrorKind, Result};

/// Who performed the action.
#[derive(
    Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct Actor {
    /// What kind of actor this is.
    pub kind: ActorKind,
    /// A stable identifier: a user name, a role ARN, a service name.
    pub id: String,
}

/// The kind of an [`Actor`].
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ActorKind {
    /// A person, for example at a terminal.
    User,
    /// A service or job acting on its own behalf.
    Service,
    /// lift itself (repairs, checkpoints).
    System,
}

impl Actor {
    /// A person.
    pub fn user(id: impl Into<String>) -> Self {
        Actor {
            kind: ActorKind::User,
            id: id.into(),
        }
    }

    /// A service.
    pub fn service(id: impl Into<String>) -> Self {
        Actor {
            kind: ActorKind::Service,
            id: id.into(),
        }
    }

    /// lift itself.
    pub fn system() -> Self {
        Actor {
            kind: ActorKind::System,
            id: "lift".to_owned(),
        }
    }

    /// The user running this process, from `LIFT_ACTOR`, then `USER`, then the numeric uid.
    ///
    /// Inside AWS Lambda (`AWS_LAMBDA_FUNCTION_NAME` set) it is the function, as a service.
    pub fn from_env() -> Self {
        if let Ok(actor) = std::env::var("LIFT_ACTOR") {
            if !actor.is_empty() {
                return Actor::user(actor);
            }
        }
        if let Ok(function) = std::env::var("AWS_LAMBDA_FUNCTION_NAME") {
            return Actor::service(format!("lambda:{function}"));
        }
        if let Ok(user) = std::env::var("USER") {
            if !user.is_empty() {
                return Actor::user(user);
            }
        }
        // The uid costs a file read; a process keeps its uid, so read it once.
        static UID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        let uid = UID.get_or_init(|| current_uid().unwrap_or_else(|| "unknown".into()));
        Actor::user(format!("uid:{uid}"))
    }
}

fn current_uid() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(1).map(str::to_owned)
}

/// Where the event happened.
#[derive(
    Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct Origin {
    /// The host name.
    pub host: String,
    /// The program name.
    pub process: String,
    /// The process id.
    pub pid: u32,
    /// The lift environment (`--env`, `LIFT_ENV`) the process ran in, when
    /// one was selected. Absent from records written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
}

impl Origin {
    /// This process on this host.
    ///
    /// The host and program names are read once per process (they cost a file
    /// read, which every audited action would otherwise pay); the pid is read
    /// on each call, so a forked child reports its own.
    pub fn current() -> Self {
        static NAMES: std::sync::OnceLock<(String, String)> = std::sync::OnceLock::new();
        let (host, process) = NAMES.get_or_init(|| (host_name(), program_name()));
        Origin {
            host: host.clone(),
            process: process.clone(),
            pid: std::process::id(),
            environment: None,
        }
    }
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".to_owned())
}

fn program_name() -> String {
    std::env::args_os()
        .next()
        .and_then(|arg0| {
            std::path::Path::new(&arg0)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

/// Whether the action succeeded.
#[derive(
    Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    /// It succeeded.
    Success,
    /// It failed.
    Failure {
        /// What went wrong, without secret values.
        detail: String,
        /// The error kind, when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        kind: Option<ErrorKind>,
    },
}

impl Outcome {
    /// A failure with a detail message.
    pub fn failure(detail: impl Into<String>) -> Self {
        Outcome::Failure {
            detail: detail.into(),
            kind: None,
        }
    }

    /// A failure described by an error.
    pub fn from_error(err: &Error) -> Self {
        Outcome::Failure {
            detail: err.message().to_owned(),
            kind: Some(err.kind()),
        }
    }

    /// `"success"` or `"failure"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure { .. } => "failure",
        }
    }

    /// Whether this is [`Outcome::Success`].
    pub fn is_success(&self) -> bool {
        matches!(self, Outcome::Success)
    }
}

/// The affected resource.
#[derive(
    Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct Resource {
    /// The resource type, for example `secret`, `stack`, `audit_log`.
    pub kind: String,
    /// Its identifier, for example a secret name or `project/stack`.
    pub id: String,
}

impl Resource {
    /// A resource of `kind` named `id`.
    pub fn new(kind: impl Into<String>, id: impl Into<String>) -> Self {
        Resource {
            kind: kind.into(),
            id: id.into(),
        }
    }
}

/// One auditable action.
///
/// ```
/// use lift_core::{Actor, AuditEvent, Outcome, Resource};
///
/// let event = AuditEvent::new("secrets", "rotate", Resource::new("secret", "prod/db"))
///     .actor(Actor::user("alice"))
///     .outcome(Outcome::Success)
///     .detail("version_id", "9f1c...");
/// assert_eq!(event.action, "rotate");
/// assert!(event.check_no_secrets().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct AuditEvent {
    /// A unique id for this event.
    pub id: uuid::Uuid,
    /// When it happened, in UTC.
    #[serde(serialize_with = "crate::rfc3339::serialize")]
    pub time: DateTime<Utc>,
    /// The category: `secrets`, `deploy`, `audit`, `health`, ...
    pub event_type: String,
    /// The action within the category: `put`, `rotate.create_secret`, `up.started`, ...
    pub action: String,
    /// Who did it.
    pub actor: Actor,
    /// Where it happened.
    pub origin: Origin,
    /// Whether it succeeded.
    pub outcome: Outcome,
    /// What it affected.
    pub resource: Resource,
    /// Ties related events together (one deploy, one rotation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    /// Structured, non-secret details.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub details: BTreeMap<String, Value>,
    /// Detail keys that a producer marked as secret. Sinks refuse events with any.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub secret_fields: BTreeSet<String>,
}

impl AuditEvent {
    /// A successful event by the current actor from this process, timestamped now.
    pub fn new(
        event_type: impl Into<String>,
        action: impl Into<String>,
        resource: Resource,
    ) -> Self {
        AuditEvent {
            id: uuid::Uuid::new_v4(),
            time: Utc::now(),
            event_type: event_type.into(),
            action: action.into(),
            actor: Actor::from_env(),
            origin: Origin::current(),
            outcome: Outcome::Success,
            resource,
            correlation_id: None,
            details: BTreeMap::new(),
            secret_fields: BTreeSet::new(),
        }
    }

    /// Sets the actor.
    #[must_use]
    pub fn actor(mut self, actor: Actor) -> Self {
        self.actor = actor;
        self
    }

    /// Sets the outcome.
    #[must_use]
    pub fn outcome(mut self, outcome: Outcome) -> Self {
        self.outcome = outcome;
        self
    }

    /// Sets the time (for clocks under test).
    #[must_use]
    pub fn at(mut self, time: DateTime<Utc>) -> Self {
        self.time = time;
        self
    }

    /// Sets the correlation id.
    #[must_use]
    pub fn correlation_id(mut self, id: impl Into<String>) -> Self {
        self.correlation_id = Some(id.into());
        self
    }

    /// Adds a non-secret detail.
    #[must_use]
    pub fn detail(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.details.insert(key.into(), value.into());
        self
    }

    /// Marks a detail key as secret. A sink must then refuse the event.
    ///
    /// Producers that copy fields from elsewhere (a tracing layer, say) mark
    /// the ones whose names look secret, so that a mistake upstream turns
    /// into a refused event rather than a leaked value.
    #[must_use]
    pub fn mark_secret(mut self, key: impl Into<String>) -> Self {
        self.secret_fields.insert(key.into());
        self
    }

    /// Fails with [`ErrorKind::InvalidInput`] when any field is marked secret.
    ///
    /// The error names the fields, never their values.
    pub fn check_no_secrets(&self) -> Result<()> {
        if self.secret_fields.is_empty() {
            return Ok(());
        }
        let fields: Vec<&str> = self.secret_fields.iter().map(String::as_str).collect();
        Err(Error::invalid_input(format!(
            "refusing audit event {} ({}): fields marked secret: {}; audit events must not carry secret values",
            self.action,
            self.resource.id,
            fields.join(", ")
        )))
    }
}

/// Receives audit events. Implementations: lift-audit's file sink, [`MemoryAuditSink`], [`NoopAuditSink`].
///
/// A sink must never drop an event silently: it either stores it or returns an error.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait::async_trait]
pub trait AuditSink: Send + Sync {
    /// Records one event. Returns once the sink's durability policy is satisfied.
    async fn record(&self, event: AuditEvent) -> Result<()>;

    /// Makes everything recorded so far durable.
    async fn flush(&self) -> Result<()> {
        Ok(())
    }
}

#[async_trait::async_trait]
impl<T: AuditSink + ?Sized> AuditSink for Arc<T> {
    async fn record(&self, event: AuditEvent) -> Result<()> {
        (**self).record(event).await
    }
    async fn flush(&self) -> Result<()> {
        (**self).flush().await
    }
}

/// Keeps events in memory, for tests. Refuses events with secret fields, as real sinks do.
#[derive(Debug, Clone, Default)]
pub struct MemoryAuditSink {
    events: Arc<Mutex<Vec<AuditEvent>>>,
}

impl MemoryAuditSink {
    /// An empty sink.
    pub fn new() -> Self {
        Self::default()
    }

    /// A copy of the events recorded so far, in order.
    pub fn events(&self) -> Vec<AuditEvent> {
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The actions recorded so far, in order.
    pub fn actions(&self) -> Vec<String> {
        self.events().into_iter().map(|e| e.action).collect()
    }
}

#[async_trait::async_trait]
impl AuditSink for MemoryAuditSink {
    async fn record(&self, event: AuditEvent) -> Result<()> {
        event.check_no_secrets()?;
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(event);
        Ok(())
    }
}

/// Discards events, for users who opt out of auditing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoopAuditSink;

#[async_trait::async_trait]
impl AuditSink for NoopAuditSink {
    async fn record(&self, _event: AuditEvent) -> Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> AuditEvent {
        AuditEvent::new("secrets", "put", Resource::new("secret", "db"))
    }

    #[tokio::test]
    async fn memory_sink_keeps_order() {
        let sink = MemoryAuditSink::new();
        sink.record(event()).await.unwrap();
        sink.record(event().outcome(Outcome::failure("boom")))
            .await
            .unwrap();
        let events = sink.events();
        assert_eq!(events.len(), 2);
        assert!(events[0].outcome.is_success());
        assert_eq!(events[1].outcome.as_str(), "failure");
    }

    #[tokio::test]
    async fn sinks_refuse_secret_fields_without_echoing_them() {
        let sink = MemoryAuditSink::new();
        let bad = event()
            .detail("password", "canary-77")
            .mark_secret("password");
        let err = sink.record(bad).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(err.to_string().contains("password"));
        assert!(!err.to_string().contains("canary-77"));
        assert!(sink.events().is_empty());
    }

    #[test]
    fn events_round_trip_through_json() {
        let original = event()
            .actor(Actor::service("ci"))
            .correlation_id("c-1")
            .detail("count", 3)
            .outcome(Outcome::from_error(&Error::conflict("locked")));
        let json = serde_json::to_string(&original).unwrap();
        let back: AuditEvent = serde_json::from_str(&json).unwrap();
        assert_eq!(back, original);
        assert!(json.contains("\"status\":\"failure\""));
        assert!(json.contains("\"kind\":\"conflict\""));
    }

    #[test]
    fn origin_and_actor_are_real() {
        let origin = Origin::current();
        assert_eq!(origin.pid, std::process::id());
        assert!(!origin.host.is_empty());
        assert!(!Actor::from_env().id.is_empty());
    }

    #[tokio::test]
    async fn noop_sink_accepts_everything() {
        assert!(NoopAuditSink.record(event()).await.is_ok());
        assert!(NoopAuditSink.flush().await.is_ok());
    }
}
