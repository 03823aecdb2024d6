//! A `tracing` layer that turns events with target `audit` into audit events.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use lift_core::{Actor, AuditEvent, AuditSink, Outcome, REDACTED, Resource};
use serde_json::Value;
use tokio::sync::mpsc;
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::Context;

/// The tracing target this layer listens to.
pub const AUDIT_TARGET: &str = "audit";

/// Turns `tracing` events with target `audit` into [`AuditEvent`]s.
///
/// Recognised fields: `event_type`, `action`, `actor`, `resource_kind`,
/// `resource` (or `resource_id`), `outcome` (`success`/`failure`), `error`
/// (a failure detail), `correlation_id`, `message`. Every other field becomes
/// a detail. A field whose name looks secret (`password`, `token`, `secret`,
/// `*_key`, ...) is stored as `[REDACTED]` and marked secret, so that the sink
/// refuses the event instead of anyone keeping the value.
///
/// ```
/// use std::sync::Arc;
/// use lift_audit::AuditLayer;
/// use lift_core::MemoryAuditSink;
/// use tracing_subscriber::layer::SubscriberExt;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let sink = MemoryAuditSink::new();
/// let (layer, forwarder) = AuditLayer::new(Arc::new(sink.clone()));
/// let stats = layer.stats();
/// let task = tokio::spawn(forwarder.run());
/// let subscriber = tracing_subscriber::registry().with(layer);
/// tracing::subscriber::with_default(subscriber, || {
///     tracing::info!(target: "audit", event_type = "deploy", action = "up", resource = "web/prod", "deployed");
/// });
/// task.await.unwrap();
/// assert_eq!(sink.actions(), ["up"]);
/// assert_eq!(stats.forwarded(), 1);
/// # }
/// ```
#[derive(Debug)]
pub struct AuditLayer {
    tx: mpsc::UnboundedSender<AuditEvent>,
    stats: Arc<LayerStats>,
}

/// Sends the layer's events to the sink; run it on a tokio runtime.
///
/// It ends when the layer is dropped and every event has been handed over.
pub struct AuditForwarder {
    rx: mpsc::UnboundedReceiver<AuditEvent>,
    sink: Arc<dyn AuditSink>,
    stats: Arc<LayerStats>,
}

impl fmt::Debug for AuditForwarder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditForwarder")
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

/// Counters of an [`AuditLayer`], so that refusals are visible rather than silent.
#[derive(Debug, Default)]
pub struct LayerStats {
    forwarded: AtomicU64,
    refused: AtomicU64,
}

impl LayerStats {
    /// Events the sink accepted.
    pub fn forwarded(&self) -> u64 {
        self.forwarded.load(Ordering::Relaxed)
    }
    /// Events the sink refused or failed to store.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }
}

impl AuditLayer {
    /// A layer feeding `sink`, and the forwarder that must run for events to arrive.
    ///
    /// The channel between them is unbounded because a tracing callback cannot
    /// wait; nothing is dropped.
    pub fn new(sink: Arc<dyn AuditSink>) -> (AuditLayer, AuditForwarder) {
        let (tx, rx) = mpsc::unbounded_channel();
        let stats = Arc::new(LayerStats::default());
        (
            AuditLayer {
                tx,
                stats: Arc::clone(&stats),
            },
            AuditForwarder { rx, sink, stats },
        )
    }

    /// The layer's counters.
    pub fn stats(&self) -> Arc<LayerStats> {
        Arc::clone(&self.stats)
    }
}

impl AuditForwarder {
    /// Forwards events until the layer is dropped.
    pub async fn run(mut self) {
        while let Some(event) = self.rx.recv().await {
            match self.sink.record(event).await {
                Ok(()) => self.stats.forwarded.fetch_add(1, Ordering::Relaxed),
                Err(_) => self.stats.refused.fetch_add(1, Ordering::Relaxed),
            };
        }
        let _ = self.sink.flush().await;
    }
}

/// Whether a field name looks like it holds a secret.
pub fn looks_secret(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    const WORDS: [&str; 10] = [
        "password",
        "passwd",
        "passphrase",
        "secret",
        "token",
        "credential",
        "private",
        "apikey",
        "api_key",
        "authorization",
    ];
    WORDS.iter().any(|w| name.contains(w))
        || name == "key"
        || name.ends_with("_key")
        || name.contains("cookie")
}

#[derive(Default)]
struct Fields {
    values: BTreeMap<String, Value>,
    secret: Vec<String>,
}

impl Fields {
    fn put(&mut self, field: &Field, value: Value) {
        let name = field.name().to_owned();
        if looks_secret(&name) {
            self.values.insert(name.clone(), Value::from(REDACTED));
            self.secret.push(name);
        } else {
            self.values.insert(name, value);
        }
    }

    fn take_str(&mut self, name: &str) -> Option<String> {
        match self.values.remove(name)? {
            Value::String(s) => Some(s),
            other => Some(other.to_string()),
        }
    }
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, Value::from(format!("{value:?}")));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, Value::from(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, Value::from(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, Value::from(value));
    }
}

/// Builds the audit event for one tracing event's fields.
fn to_event(mut fields: Fields) -> AuditEvent {
    let event_type = fields
        .take_str("event_type")
        .unwrap_or_else(|| "app".into());
    let action = fields
        .take_str("action")
        .or_else(|| {
            fields
                .values
                .get("message")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "event".into());
    let kind = fields
        .take_str("resource_kind")
        .unwrap_or_else(|| "resource".into());
    let id = fields
        .take_str("resource")
        .or_else(|| fields.take_str("resource_id"))
        .unwrap_or_default();
    let mut event = AuditEvent::new(event_type, action, Resource::new(kind, id));
    if let Some(actor) = fields.take_str("actor") {
        event = event.actor(Actor::user(actor));
    }
    let error = fields.take_str("error");
    match (fields.take_str("outcome").as_deref(), error) {
        (Some("failure"), detail) | (_, detail @ Some(_)) => {
            event = event.outcome(Outcome::failure(detail.unwrap_or_else(|| "failed".into())));
        }
        _ => {}
    }
    if let Some(correlation) = fields.take_str("correlation_id") {
        event = event.correlation_id(correlation);
    }
    for name in fields.secret {
        event = event.mark_secret(name);
    }
    event.details = fields.values;
    event
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for AuditLayer {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        if event.metadata().target() != AUDIT_TARGET {
            return;
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        if self.tx.send(to_event(fields)).is_err() {
            self.stats.refused.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lift_core::MemoryAuditSink;
    use tracing_subscriber::layer::SubscriberExt;

    #[tokio::test]
    async fn audit_target_events_become_audit_events_and_secrets_are_refused() {
        let sink = MemoryAuditSink::new();
        let (layer, forwarder) = AuditLayer::new(Arc::new(sink.clone()));
        let stats = layer.stats();
        let task = tokio::spawn(forwarder.run());
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(
                target: "audit",
                event_type = "secrets",
                action = "rotate",
                resource_kind = "secret",
                resource = "prod/db",
                actor = "alice",
                correlation_id = "c-9",
                version = 3,
                "rotated"
            );
            tracing::info!(target: "other", action = "ignored");
            tracing::warn!(target: "audit", action = "login", password = "canary-4711");
            tracing::error!(target: "audit", action = "deploy", error = "stack locked");
        });
        task.await.unwrap();
        let events = sink.events();
        assert_eq!(sink.actions(), ["rotate", "deploy"]);
        assert_eq!(events[0].actor.id, "alice");
        assert_eq!(events[0].resource, Resource::new("secret", "prod/db"));
        assert_eq!(events[0].correlation_id.as_deref(), Some("c-9"));
        assert_eq!(events[0].details["version"], 3);
        assert_eq!(events[1].outcome.as_str(), "failure");
        assert_eq!(stats.forwarded(), 2);
        assert_eq!(stats.refused(), 1);
        assert!(!format!("{events:?}").contains("canary-4711"));
    }

    #[test]
    fn secret_names_are_recognised() {
        for name in [
            "password",
            "db_password",
            "api_key",
            "Token",
            "signing_key",
            "key",
            "client_secret",
        ] {
            assert!(looks_secret(name), "{name}");
        }
        for name in ["version", "key_id", "keyboard", "count"] {
            assert!(!looks_secret(name), "{name}");
        }
    }
}
