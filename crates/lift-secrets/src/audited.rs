//! A provider wrapper that audits every change.

use std::sync::Arc;

use lift_core::{
    AuditEvent, AuditSink, Clock, DeleteMode, Outcome, PutOptions, PutOutcome, Resource,
    SecretDescription, SecretName, SecretSummary, SecretValue, SecretVersion, SecretsProvider,
    StageMove, SystemClock, VersionSelector,
};

/// Wraps a provider so that every put, stage move, delete and restore emits an
/// [`AuditEvent`] (success or failure) to a sink. Events carry names, version
/// ids and labels, never values. Reads are passed through unaudited unless
/// [`AuditedProvider::audit_reads`] is set.
///
/// An action whose event the sink refuses is reported as failed, so that no
/// change goes unrecorded; retrying a put with the same token is safe.
pub struct AuditedProvider<P> {
    inner: P,
    sink: Arc<dyn AuditSink>,
    clock: Arc<dyn Clock>,
    audit_reads: bool,
}

impl<P: std::fmt::Debug> std::fmt::Debug for AuditedProvider<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditedProvider")
            .field("inner", &self.inner)
            .field("audit_reads", &self.audit_reads)
            .finish_non_exhaustive()
    }
}

impl<P: SecretsProvider> AuditedProvider<P> {
    /// Audits `inner`'s changes to `sink`.
    pub fn new(inner: P, sink: Arc<dyn AuditSink>) -> Self {
        AuditedProvider {
            inner,
            sink,
            clock: Arc::new(SystemClock),
            audit_reads: false,
        }
    }

    /// Uses `clock` for event times.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Also audits reads of values (`get`).
    #[must_use]
    pub fn audit_reads(mut self, enabled: bool) -> Self {
        self.audit_reads = enabled;
        self
    }

    /// The wrapped provider.
    pub fn inner(&self) -> &P {
        &self.inner
    }

    async fn record<T>(
        &self,
        action: &str,
        name: &SecretName,
        result: &lift_core::Result<T>,
        details: impl FnOnce(AuditEvent, &T) -> AuditEvent,
    ) -> lift_core::Result<()> {
        let event = AuditEvent::new("secrets", action, Resource::new("secret", name.as_str()))
            .at(self.clock.now());
        let event = match result {
            Ok(value) => details(event, value),
            Err(err) => event.outcome(Outcome::from_error(err)),
        };
        self.sink.record(event).await
    }
}

#[async_trait::async_trait]
impl<P: SecretsProvider> SecretsProvider for AuditedProvider<P> {
    async fn get(
        &self,
        name: &SecretName,
        selector: &VersionSelector,
    ) -> lift_core::Result<SecretVersion> {
        let result = self.inner.get(name, selector).await;
        if self.audit_reads {
            let selector_text = selector.to_string();
            self.record("get", name, &result, |e, v| {
                e.detail("selector", selector_text)
                    .detail("version_id", v.version_id.as_str())
            })
            .await?;
        }
        result
    }

    async fn put(
        &self,
        name: &SecretName,
        value: &SecretValue,
        options: &PutOptions,
    ) -> lift_core::Result<PutOutcome> {
        let result = self.inner.put(name, value, options).await;
        self.record("put", name, &result, |e, o| {
            e.detail("version_id", o.version_id.as_str())
                .detail("created", o.created)
                .detail(
                    "stages",
                    o.stages.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
                )
                .detail("bytes", value.len())
        })
        .await?;
        result
    }

    async fn list(&self) -> lift_core::Result<Vec<SecretSummary>> {
        self.inner.list().await
    }

    async fn describe(&self, name: &SecretName) -> lift_core::Result<SecretDescription> {
        self.inner.describe(name).await
    }

    async fn delete(
        &self,
        name: &SecretName,
        mode: DeleteMode,
    ) -> lift_core::Result<SecretDescription> {
        let result = self.inner.delete(name, mode).await;
        let mode_text = match mode {
            DeleteMode::Force => "force".to_owned(),
            DeleteMode::Recoverable {
                recovery_window_days,
            } => format!("recoverable:{recovery_window_days}d"),
        };
        self.record("delete", name, &result, |e, d| {
            let e = e.detail("mode", mode_text);
            match d.deletion_date {
                Some(date) => e.detail("deletion_date", date.to_rfc3339()),
                None => e,
            }
        })
        .await?;
        result
    }

    async fn move_stage(&self, name: &SecretName, stage_move: &StageMove) -> lift_core::Result<()> {
        let result = self.inner.move_stage(name, stage_move).await;
        let stage = stage_move.stage.to_string();
        let to = stage_move.to.as_ref().map(|v| v.to_string());
        let from = stage_move.from.as_ref().map(|v| v.to_string());
        self.record("move_stage", name, &result, |e, ()| {
            e.detail("stage", stage)
                .detail("to_version", to.unwrap_or_default())
                .detail("from_version", from.unwrap_or_default())
        })
        .await?;
        result
    }

    async fn restore(&self, name: &SecretName) -> lift_core::Result<()> {
        let result = self.inner.restore(name).await;
        self.record("restore", name, &result, |e, ()| e).await?;
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemorySecretsProvider;
    use lift_core::MemoryAuditSink;

    #[tokio::test]
    async fn changes_are_audited_without_values() {
        let sink = MemoryAuditSink::new();
        let p = AuditedProvider::new(MemorySecretsProvider::default(), Arc::new(sink.clone()));
        let name: SecretName = "db".parse().unwrap();
        p.put(
            &name,
            &SecretValue::from("canary-audit-1"),
            &PutOptions::default(),
        )
        .await
        .unwrap();
        let _ = p
            .delete(
                &name,
                DeleteMode::Recoverable {
                    recovery_window_days: 1,
                },
            )
            .await;
        p.delete(&name, DeleteMode::Force).await.unwrap();
        assert_eq!(sink.actions(), ["put", "delete", "delete"]);
        let events = sink.events();
        assert!(events[0].outcome.is_success());
        assert_eq!(events[1].outcome.as_str(), "failure");
        let json = serde_json::to_string(&events).unwrap();
        assert!(!json.contains("canary"));
    }
}
