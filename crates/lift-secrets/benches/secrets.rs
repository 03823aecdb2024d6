//! Benchmarks of lift-secrets: a cached get, a file-store get and a full rotation on the file store.
//!
//! Run with `cargo bench -p lift-secrets`. The rotation's time relative to its
//! fsyncs alone is printed by `cargo run --release -p lift-secrets --example rotation_cost`.

use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use lift_core::{PutOptions, SecretName, SecretValue, SecretsProvider, VersionSelector};
use lift_secrets::{
    CachingProvider, FileSecretsProvider, MemorySecretsProvider, Protection, RotateOptions,
    RotationEngine, StoreKey, StoreOnlyRotator,
};

fn runtime() -> tokio::runtime::Runtime {
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => panic!("cannot build a tokio runtime: {e}"),
    }
}

fn name() -> SecretName {
    match "bench/db".parse() {
        Ok(n) => n,
        Err(e) => panic!("{e}"),
    }
}

fn cached_get(c: &mut Criterion) {
    let rt = runtime();
    let cache = CachingProvider::new(
        MemorySecretsProvider::default(),
        chrono::Duration::minutes(5),
    );
    let name = name();
    let selector = VersionSelector::default();
    rt.block_on(async {
        cache
            .put(
                &name,
                &SecretValue::from("0123456789abcdef0123456789abcdef"),
                &PutOptions::default(),
            )
            .await
            .ok();
        cache.get(&name, &selector).await.ok();
    });
    // A cache hit completes on its first poll, so poll it directly: this measures the
    // cached get itself rather than the cost of entering a runtime.
    c.bench_function("cached_get", |b| {
        b.iter(|| {
            let mut future = cache.get(&name, &selector);
            let mut context = std::task::Context::from_waker(std::task::Waker::noop());
            match future.as_mut().poll(&mut context) {
                std::task::Poll::Ready(result) => result,
                std::task::Poll::Pending => rt.block_on(future),
            }
        })
    });
}

fn file_get(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let store = FileSecretsProvider::open(
        dir.path().join("s"),
        Protection::Encrypted(StoreKey::generate()),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let name = name();
    let selector = VersionSelector::default();
    rt.block_on(async {
        for i in 0..3 {
            store
                .put(
                    &name,
                    &SecretValue::from(format!("value-{i}-0123456789abcdef")),
                    &PutOptions::default(),
                )
                .await
                .ok();
        }
    });
    c.bench_function("file_get", |b| {
        b.iter(|| rt.block_on(store.get(&name, &selector)))
    });
}

fn file_rotation(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let root = dir.path().join("s");
    let store = Arc::new(
        FileSecretsProvider::open(&root, Protection::Encrypted(StoreKey::generate()))
            .unwrap_or_else(|e| panic!("{e}")),
    );
    let engine = RotationEngine::new(store.clone(), Arc::new(store.rotation_store()));
    let name = name();
    rt.block_on(async {
        store
            .put(
                &name,
                &SecretValue::from("0123456789abcdef0123456789abcdef"),
                &PutOptions::default(),
            )
            .await
            .ok();
    });
    let mut group = c.benchmark_group("file_rotation");
    group.sample_size(20);
    group.bench_function("rotate", |b| {
        b.iter(|| rt.block_on(engine.rotate(&name, &StoreOnlyRotator, &RotateOptions::default())))
    });
    group.finish();
}

criterion_group!(benches, cached_get, file_get, file_rotation);
criterion_main!(benches);
