//! The audit records of every state-changing command: a start record before
//! anything changes (a sink that refuses it stops the command), then an
//! outcome record.
//!
//! Records name keys, flags and counts, never values: a config value, secret
//! or not, is never written to an audit event.

use std::future::Future;

use lift_core::{AuditEvent, Classify, ErrorKind, Outcome, Resource};

use crate::error::{Error, Result};
use crate::names::StackName;
use crate::session::Session;

/// Writes one command's audit events: `ACTION.started`, then
/// `ACTION.succeeded`, `ACTION.failed` or `ACTION.cancelled`.
pub(crate) struct Auditor<'a> {
    session: &'a Session,
    stack: &'a StackName,
    action: &'static str,
    correlation: String,
    details: Vec<(&'static str, serde_json::Value)>,
}

impl<'a> Auditor<'a> {
    /// An auditor of `action` (`up`, `config.set`, `stack.rm`, ...) on `stack`.
    pub(crate) fn new(session: &'a Session, stack: &'a StackName, action: &'static str) -> Self {
        Auditor {
            session,
            stack,
            action,
            correlation: uuid::Uuid::new_v4().to_string(),
            details: Vec::new(),
        }
    }

    /// Adds a detail to every event of this command.
    pub(crate) fn detail(mut self, key: &'static str, value: impl Into<serde_json::Value>) -> Self {
        self.details.push((key, value.into()));
        self
    }

    fn event(&self, phase: &str) -> AuditEvent {
        let mut event = AuditEvent::new(
            "deploy",
            format!("{}.{phase}", self.action),
            Resource::new("pulumi_stack", self.stack.as_str()),
        )
        .actor(self.session.actor().clone())
        .correlation_id(&self.correlation)
        .detail("stack", self.stack.as_str())
        .detail("cwd", self.session.cwd().display().to_string());
        for (key, value) in &self.details {
            event = event.detail(*key, value.clone());
        }
        event
    }

    /// Records the start. Nothing has changed yet, so a refusing sink stops the command.
    pub(crate) async fn started(&self) -> Result<()> {
        let event = self
            .event("started")
            .detail("pulumi_version", self.session.cli().version().to_string());
        self.session
            .audit_sink()
            .record(event)
            .await
            .map_err(|source| Error::Audit {
                action: format!("{}.started", self.action),
                source,
            })
    }

    /// Records a success, with `extra` details.
    pub(crate) async fn succeeded(&self, extra: Vec<(&'static str, serde_json::Value)>) {
        let mut event = self.event("succeeded");
        for (key, value) in extra {
            event = event.detail(key, value);
        }
        self.record(event).await;
    }

    /// Records a failure (or a cancellation), with `extra` details.
    pub(crate) async fn failed(&self, err: &Error, extra: Vec<(&'static str, serde_json::Value)>) {
        let phase = if err.kind() == ErrorKind::Cancelled {
            "cancelled"
        } else {
            "failed"
        };
        let core = lift_core::Error::new(err.kind(), err.to_string());
        let mut event = self.event(phase).outcome(Outcome::from_error(&core));
        for (key, value) in extra {
            event = event.detail(key, value);
        }
        self.record(event).await;
    }

    /// Records the start, runs `command`, and records how it ended.
    pub(crate) async fn run<T>(&self, command: impl Future<Output = Result<T>>) -> Result<T> {
        self.started().await?;
        let result = command.await;
        match &result {
            Ok(_) => self.succeeded(Vec::new()).await,
            Err(err) => self.failed(err, Vec::new()).await,
        }
        result
    }

    /// Outcome records are logged when refused, not returned: the change already happened.
    async fn record(&self, event: AuditEvent) {
        let action = event.action.clone();
        if let Err(err) = self.session.audit_sink().record(event).await {
            tracing::error!(%action, %err, "the audit sink refused a command's outcome event");
        }
    }
}
