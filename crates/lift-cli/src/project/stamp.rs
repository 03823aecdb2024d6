//! An audit sink that stamps every event with the environment it ran in.

use std::sync::Arc;

use lift::{AuditEvent, AuditSink};

/// Passes events on to `inner`, with `origin.environment` set.
pub(crate) struct EnvironmentStamp {
    inner: Arc<dyn AuditSink>,
    environment: String,
}

impl EnvironmentStamp {
    /// Stamps `environment` on every event before `inner` records it.
    pub(crate) fn new(inner: Arc<dyn AuditSink>, environment: String) -> Self {
        EnvironmentStamp { inner, environment }
    }
}

#[async_trait::async_trait]
impl AuditSink for EnvironmentStamp {
    async fn record(&self, mut event: AuditEvent) -> lift::Result<()> {
        if event.origin.environment.is_none() {
            event.origin.environment = Some(self.environment.clone());
        }
        self.inner.record(event).await
    }

    async fn flush(&self) -> lift::Result<()> {
        self.inner.flush().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lift::{MemoryAuditSink, Resource};

    #[tokio::test]
    async fn events_carry_the_environment() {
        let memory = Arc::new(MemoryAuditSink::new());
        let stamp = EnvironmentStamp::new(memory.clone(), "prod".into());
        stamp
            .record(AuditEvent::new(
                "secrets",
                "put",
                Resource::new("secret", "db"),
            ))
            .await
            .unwrap();
        let events = memory.events();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].origin.environment.as_deref(), Some("prod"));
    }
}
