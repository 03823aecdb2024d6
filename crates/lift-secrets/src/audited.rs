//! A provider wrapper that audits every change.

use std::sync::Arc;

use lift_core::{
    AuditEvent, AuditSink, Clock, DeleteMode, Outcome, PutOptions, PutOutcome, Resource,
    SecretDescription, SecretName, SecretSummary, SecretValue, SecretVersion, SecretsProvider,
    StageMove, SystemClock, VersionSelector,
};

/// Wraps a provider so that every put, stage move, delete and restore emits
/// [`AuditEvent`]s to a sink. Events carry names, version ids and labels, never
/// values. Reads are passed through unaudited unless [`AuditedProvider::audit_reads`] is set.
///
/// Audit before commit: each change first records an `<action>.intent` event (what
/// is about to change), and only once the sink has accepted it is the change made;
/// then the `<action>` event records the outcome. A sink that cannot record (a full
/// disk, a closed log) therefore stops the change before anything happened, so no
/// change is ever made unaudited. If the sink fails only on the outcome event, the
/// change stands, its intent is on record, and the failure is logged at error level.
/// A read with `audit_reads` is recorded before its value is returned, and not
/// returned when the record fails.
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

    /// Records that `action` on `name` is about to happen; an error means it must not.
    async fn intent(
        &self,
        action: &str,
        name: &SecretName,
        details: impl FnOnce(AuditEvent) -> AuditEvent,
    ) -> lift_core::Result<()> {
        let event = AuditEvent::new(
            "secrets",
            format!("{action}.intent"),
            Resource::new("secret", name.as_str()),
        )
        .at(self.clock.now());
        self.sink.record(details(event)).await
    }

    /// Records the outcome of a change that already happened (or failed): a sink error
    /// cannot undo it, so it is logged and the change's own result is returned.
    async fn outcome<T>(
        &self,
        action: &str,
        name: &SecretName,
        result: lift_core::Result<T>,
        details: impl FnOnce(AuditEvent, &T) -> AuditEvent,
    ) -> lift_core::Result<T> {
        if let Err(err) = self.record(action, name, &result, details).await {
            tracing::error!(secret = %name, action, error = %err, "the change was made and its intent audited, but its outcome could not be audited");
        }
        result
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
        let requested_stages = options
            .stages
            .as_ref()
            .map(|s| s.iter().map(|l| l.as_str().to_owned()).collect::<Vec<_>>());
        let token = options.token.as_ref().map(|t| t.to_string());
        self.intent("put", name, |e| {
            let e = e.detail("bytes", value.len());
            let e = match token {
                Some(token) => e.detail("version_id", token),
                None => e,
            };
            match requested_stages {
                Some(stages) => e.detail("stages", stages),
                None => e,
            }
        })
        .await?;
        let result = self.inner.put(name, value, options).await;
        self.outcome("put", name, result, |e, o| {
            e.detail("version_id", o.version_id.as_str())
                .detail("created", o.created)
                .detail(
                    "stages",
                    o.stages.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
                )
                .detail("bytes", value.len())
        })
        .await
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
        let mode_text = match mode {
            DeleteMode::Force => "force".to_owned(),
            DeleteMode::Recoverable {
                recovery_window_days,
            } => format!("recoverable:{recovery_window_days}d"),
        };
        let intent_mode = mode_text.clone();
        self.intent("delete", name, |e| e.detail("mode", intent_mode))
            .await?;
        let result = self.inner.delete(name, mode).await;
        self.outcome("delete", name, result, |e, d| {
            let e = e.detail("mode", mode_text);
            match d.deletion_date {
                Some(date) => e.detail("deletion_date", date.to_rfc3339()),
                None => e,
            }
        })
        .await
    }

    async fn move_stage(&self, name: &SecretName, stage_move: &StageMove) -> lift_core::Result<()> {
        let stage = stage_move.stage.to_string();
        let to = stage_move
            .to
            .as_ref()
            .map(|v| v.to_string())
            .unwrap_or_default();
        let from = stage_move
            .from
            .as_ref()
            .map(|v| v.to_string())
            .unwrap_or_default();
        let details = |e: AuditEvent| {
            e.detail("stage", stage.as_str())
                .detail("to_version", to.as_str())
                .detail("from_version", from.as_str())
        };
        self.intent("move_stage", name, details).await?;
        let result = self.inner.move_stage(name, stage_move).await;
        self.outcome("move_stage", name, result, |e, ()| details(e))
            .await
    }

    async fn restore(&self, name: &SecretName) -> lift_core::Result<()> {
        self.intent("restore", name, |e| e).await?;
        let result = self.inner.restore(name).await;
        self.outcome("restore", name, result, |e, ()| e).await
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
        assert_eq!(
            sink.actions(),
            [
                "put.intent",
                "put",
                "delete.intent",
                "delete",
                "delete.intent",
                "delete"
            ]
        );
        let events = sink.events();
        assert!(events[1].outcome.is_success());
        assert_eq!(events[3].outcome.as_str(), "failure");
        let json = serde_json::to_string(&events).unwrap();
        assert!(!json.contains("canary"));
    }

    /// A sink that refuses every event, like an audit log on a full disk.
    #[derive(Debug)]
    struct FullDisk;

    #[async_trait::async_trait]
    impl AuditSink for FullDisk {
        async fn record(&self, _event: AuditEvent) -> lift_core::Result<()> {
            Err(lift_core::Error::new(
                lift_core::ErrorKind::Io,
                "no space left on device",
            ))
        }
    }

    #[tokio::test]
    async fn a_sink_that_cannot_record_stops_every_change_before_it_is_made() {
        let memory = MemorySecretsProvider::default();
        let name: SecretName = "db".parse().unwrap();
        let first = memory
            .put(&name, &SecretValue::from("v1"), &PutOptions::default())
            .await
            .unwrap();
        let p = AuditedProvider::new(memory.clone(), Arc::new(FullDisk)).audit_reads(true);
        assert!(
            p.put(&name, &SecretValue::from("v2"), &PutOptions::default())
                .await
                .is_err()
        );
        assert!(p.delete(&name, DeleteMode::Force).await.is_err());
        let moved = StageMove {
            stage: lift_core::StageLabel::pending(),
            to: Some(first.version_id.clone()),
            from: None,
        };
        assert!(p.move_stage(&name, &moved).await.is_err());
        assert!(
            p.get(&name, &VersionSelector::default()).await.is_err(),
            "an unaudited read reveals nothing"
        );
        let d = memory.describe(&name).await.unwrap();
        assert_eq!(d.versions.len(), 1, "no version was added");
        assert_eq!(
            d.versions[0].stages,
            [lift_core::StageLabel::current()],
            "no label moved"
        );
    }
}
