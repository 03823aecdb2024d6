//! A canary value must never appear in logs, errors, `Debug` output, history, audit
//! events, rotation state or store files. Every log line at TRACE level is captured.
#![allow(
    clippy::unwrap_used,
    reason = "tests unwrap: a failure is the test failing"
)]

use std::io::Write;
use std::sync::{Arc, Mutex};

use lift_core::{
    AuditSink, MemoryAuditSink, PutOptions, SecretName, SecretValue, SecretsProvider, VersionId,
    VersionSelector,
};
use lift_secrets::{
    AuditedProvider, CachingProvider, FaultPlan, FaultTrigger, FileRotationStore,
    FileSecretsProvider, Protection, RotateOptions, RotationEngine, RotationStep, StoreKey,
    StoreLimits, StoreOnlyRotator, ValueKind,
};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

const CANARY: &str = "canary-7c1d9e2f-value";

#[test]
fn the_canary_never_leaks() {
    let logs = Captured::default();
    let writer = logs.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut seen: Vec<String> = Vec::new();
    let new_values = runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("store");
        let audit = MemoryAuditSink::new();
        let sink: Arc<dyn AuditSink> = Arc::new(audit.clone());
        let file = FileSecretsProvider::open(&root, Protection::Encrypted(StoreKey::generate()))
            .unwrap()
            .with_limits(StoreLimits {
                max_value_bytes: 64,
                ..StoreLimits::default()
            });
        let plain =
            FileSecretsProvider::open(dir.path().join("plain"), Protection::Plaintext).unwrap();
        let provider = Arc::new(AuditedProvider::new(file.clone(), sink.clone()).audit_reads(true));
        let cache = CachingProvider::new(provider.clone(), chrono::Duration::minutes(1));
        let engine = RotationEngine::new(provider.clone(), Arc::new(FileRotationStore::new(&root)))
            .with_audit(sink.clone());
        let name: SecretName = "prod/db".parse().unwrap();
        let canary = SecretValue::from(CANARY);
        let token = VersionId::new("token-1-000000000000000000000000000").unwrap();

        let put = provider
            .put(&name, &canary, &PutOptions::default().token(token.clone()))
            .await
            .unwrap();
        plain
            .put(&name, &canary, &PutOptions::default())
            .await
            .unwrap();
        seen.push(format!("{put:?}"));
        let got = cache.get(&name, &VersionSelector::default()).await.unwrap();
        seen.push(format!("{got:?} {:?} {got:#?}", got.value));
        seen.push(format!("{provider:?} {engine:?} {:?}", cache.metrics()));
        // Errors that involve the value: a reused token, an oversized value.
        let reused = provider
            .put(
                &name,
                &SecretValue::from(format!("{CANARY}-other")),
                &PutOptions::default().token(token),
            )
            .await
            .unwrap_err();
        seen.push(format!("{reused} {reused:?}"));
        let big = provider
            .put(
                &name,
                &SecretValue::from(CANARY.repeat(10)),
                &PutOptions::default(),
            )
            .await
            .unwrap_err();
        seen.push(format!("{big} {big:?}"));
        // A rotation that fails, is resumed, and a second one with an explicit kind.
        engine.faults().inject(FaultPlan::new(
            RotationStep::TestSecret,
            FaultTrigger::Times(1),
            "injected",
        ));
        let failed = engine
            .rotate(&name, &StoreOnlyRotator, &RotateOptions::default())
            .await
            .unwrap_err();
        seen.push(format!("{failed} {failed:?}"));
        let report = engine.resume(&name, &StoreOnlyRotator).await.unwrap();
        seen.push(format!(
            "{report:?} {}",
            serde_json::to_string(&report).unwrap()
        ));
        engine
            .rotate(
                &name,
                &StoreOnlyRotator,
                &RotateOptions::default().kind(ValueKind::token(None)),
            )
            .await
            .unwrap();
        let state = engine.state(&name).await.unwrap();
        seen.push(serde_json::to_string(&state).unwrap());
        seen.push(format!("{state:?}"));
        seen.push(serde_json::to_string(&provider.describe(&name).await.unwrap()).unwrap());
        seen.push(serde_json::to_string(&provider.list().await.unwrap()).unwrap());
        seen.push(serde_json::to_string(&audit.events()).unwrap());
        // The encrypted store's files: secrets and rotation state.
        for entry in walk(&root) {
            seen.push(String::from_utf8_lossy(&std::fs::read(entry).unwrap()).into_owned());
        }
        // The generated values must not leak either.
        let mut generated = Vec::new();
        for v in provider.describe(&name).await.unwrap().versions {
            let value = provider
                .get(&name, &VersionSelector::Version(v.version_id))
                .await
                .unwrap();
            generated.push(value.value.expose_str().unwrap().to_owned());
        }
        generated
    });
    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("secret"), "the capture works: {logs}");
    assert!(logs.contains("rotation step failed"), "failures are logged");
    seen.push(logs);
    for text in &seen {
        assert!(!text.contains(CANARY), "canary leaked: {text}");
        for value in new_values.iter().filter(|v| v.as_str() != CANARY) {
            assert!(
                !text.contains(value.as_str()),
                "a generated value leaked: {text}"
            );
        }
    }
    assert_eq!(new_values.len(), 3);
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}
