//! Prints the cost of a full rotation on the file store, as a multiple of the time
//! its fsyncs take alone on the same disk.
//!
//! `cargo run --release -p lift-secrets --example rotation_cost [DIR] [ROTATIONS]`
//! DIR defaults to a temporary directory inside the current directory, so that the
//! figure is for the disk the project lives on.
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "an example prints its figures"
)]

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lift_core::{PutOptions, SecretValue, SecretsProvider, VersionSelector};
use lift_secrets::{
    CachingProvider, FileSecretsProvider, MemorySecretsProvider, Protection, RotateOptions,
    RotationEngine, StoreKey, StoreOnlyRotator, sync_counters,
};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let base = args.next().unwrap_or_else(|| ".".to_owned());
    let rotations: u32 = args.next().map(|n| n.parse()).transpose()?.unwrap_or(50);
    let dir = tempfile::tempdir_in(&base)?;
    let root = dir.path().join("store");
    let store = Arc::new(FileSecretsProvider::open(
        &root,
        Protection::Encrypted(StoreKey::generate()),
    )?);
    let engine = RotationEngine::new(store.clone(), Arc::new(store.rotation_store()));
    let name = "bench/db".parse()?;
    store
        .put(
            &name,
            &SecretValue::from("0123456789abcdef0123456789abcdef"),
            &PutOptions::default(),
        )
        .await?;
    // Warm up the page cache and the directory entries.
    for _ in 0..3 {
        engine
            .rotate(&name, &StoreOnlyRotator, &RotateOptions::default())
            .await?;
    }

    // One rotation first, to count its fsyncs.
    let before = sync_counters();
    engine
        .rotate(&name, &StoreOnlyRotator, &RotateOptions::default())
        .await?;
    let after = sync_counters();
    let file_syncs = after.file_syncs - before.file_syncs;
    let dir_syncs = after.dir_syncs - before.dir_syncs;
    let file_size = std::fs::metadata(store.secret_path(&name))?.len() as usize;

    // Rotations and the same fsyncs alone, interleaved round by round so that both see
    // the same background load on the disk. The fsyncs alone: a new file of the secret
    // file's size written and fsynced, and its directory fsynced, as many times as one
    // rotation does each.
    let scratch = dir.path().join("fsync-only");
    std::fs::create_dir(&scratch)?;
    let payload = vec![0x5au8; file_size];
    let mut rotation_total = Duration::ZERO;
    let mut fsync_total = Duration::ZERO;
    for round in 0..rotations {
        let started = Instant::now();
        engine
            .rotate(&name, &StoreOnlyRotator, &RotateOptions::default())
            .await?;
        rotation_total += started.elapsed();

        let started = Instant::now();
        for i in 0..file_syncs.max(dir_syncs) {
            if i < file_syncs {
                let mut f = std::fs::File::create(scratch.join(format!("{round}-{i}")))?;
                f.write_all(&payload)?;
                f.sync_all()?;
            }
            if i < dir_syncs {
                std::fs::File::open(&scratch)?.sync_all()?;
            }
        }
        fsync_total += started.elapsed();
    }
    let rotation_time = rotation_total / rotations;
    let fsync_time = fsync_total / rotations;

    // Reads, for the record next to the criterion figures.
    let selector = VersionSelector::default();
    let reads = 2000u32;
    let started = Instant::now();
    for _ in 0..reads {
        store.get(&name, &selector).await?;
    }
    let file_get = started.elapsed() / reads;
    let cache = CachingProvider::new(
        MemorySecretsProvider::default(),
        chrono::Duration::minutes(5),
    );
    cache
        .put(
            &name,
            &SecretValue::from("0123456789abcdef0123456789abcdef"),
            &PutOptions::default(),
        )
        .await?;
    cache.get(&name, &selector).await?;
    let cached_reads = 200_000u32;
    let started = Instant::now();
    for _ in 0..cached_reads {
        // A hit completes on its first poll: poll it directly, without a runtime in the way.
        let mut future = cache.get(&name, &selector);
        let mut context = std::task::Context::from_waker(std::task::Waker::noop());
        match future.as_mut().poll(&mut context) {
            std::task::Poll::Ready(result) => drop(result?),
            std::task::Poll::Pending => drop(future.await?),
        }
    }
    let cached_get = started.elapsed() / cached_reads;

    println!("disk: {}", dir.path().display());
    println!("cached get: {:.0} ns", cached_get.as_nanos());
    println!("file-store get: {:.1} us", file_get.as_secs_f64() * 1e6);
    println!(
        "rotation: {:.2} ms ({file_syncs} file fsyncs + {dir_syncs} directory fsyncs, secret file {file_size} bytes)",
        rotation_time.as_secs_f64() * 1e3
    );
    println!(
        "the same fsyncs alone: {:.2} ms",
        fsync_time.as_secs_f64() * 1e3
    );
    println!(
        "rotation / fsyncs: {:.2}x (target <= 3x)",
        rotation_time.as_secs_f64() / fsync_time.as_secs_f64()
    );
    Ok(())
}
