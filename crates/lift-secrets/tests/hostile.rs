//! Hostile input against the file store: bad names, huge values, torn and tampered
//! files, wrong permissions, missing and wrong keys. Each gets a clear, typed error.
#![allow(
    clippy::unwrap_used,
    reason = "tests unwrap: a failure is the test failing"
)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use lift_core::{ErrorKind, PutOptions, SecretName, SecretValue, SecretsProvider, VersionSelector};
use lift_secrets::{FileSecretsProvider, Protection, StoreKey, StoreLimits};

fn open(root: &Path, key: &StoreKey) -> FileSecretsProvider {
    FileSecretsProvider::open(root, Protection::Encrypted(key.clone())).unwrap()
}

async fn seeded() -> (tempfile::TempDir, StoreKey, FileSecretsProvider, SecretName) {
    let dir = tempfile::tempdir().unwrap();
    let key = StoreKey::generate();
    let store = open(&dir.path().join("s"), &key);
    let name: SecretName = "prod/db".parse().unwrap();
    store
        .put(&name, &SecretValue::from("first"), &PutOptions::default())
        .await
        .unwrap();
    store
        .put(&name, &SecretValue::from("second"), &PutOptions::default())
        .await
        .unwrap();
    (dir, key, store, name)
}

#[test]
fn hostile_names_are_impossible() {
    for bad in [
        "../x",
        "",
        "a/../../etc/passwd",
        "/abs",
        "a//b",
        "x\0y",
        "..",
        "a/.",
    ] {
        let err = bad.parse::<SecretName>().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{bad:?}");
        assert!(err.message().starts_with("invalid secret name"), "{err}");
    }
}

#[tokio::test]
async fn ten_megabyte_values_are_refused_by_default_and_large_ones_work_when_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let key = StoreKey::generate();
    let store = open(&dir.path().join("s"), &key);
    let name: SecretName = "big".parse().unwrap();
    let big = SecretValue::new(vec![b'x'; 10 * 1024 * 1024]);
    let err = store
        .put(&name, &big, &PutOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.message().contains("10485760 bytes"), "{err}");
    assert!(
        err.message().len() < 200,
        "the error does not echo the value"
    );
    assert!(!store.secret_path(&name).exists(), "nothing was written");

    // A raised limit stores large values (1 MiB here: unoptimized test builds encrypt slowly).
    let roomy = store.clone().with_limits(StoreLimits {
        max_value_bytes: 16 << 20,
        ..StoreLimits::default()
    });
    let large = SecretValue::new(vec![b'y'; 1 << 20]);
    roomy
        .put(&name, &large, &PutOptions::default())
        .await
        .unwrap();
    let back = roomy.get(&name, &VersionSelector::default()).await.unwrap();
    assert!(back.value == large);
}

#[tokio::test]
async fn truncated_files_are_integrity_errors_naming_the_file() {
    let (_dir, _key, store, name) = seeded().await;
    let path = store.secret_path(&name);
    let bytes = std::fs::read(&path).unwrap();
    for len in [0, 10, bytes.len() / 2, bytes.len() - 1] {
        std::fs::write(&path, &bytes[..len]).unwrap();
        let err = store
            .get(&name, &VersionSelector::default())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Integrity, "len {len}: {err}");
        assert!(err.message().contains(&path.display().to_string()), "{err}");
        // Writes refuse to build on a torn file rather than silently starting afresh.
        let put = store
            .put(&name, &SecretValue::from("third"), &PutOptions::default())
            .await
            .unwrap_err();
        assert_eq!(put.kind(), ErrorKind::Integrity);
    }
}

#[tokio::test]
async fn a_flipped_byte_anywhere_is_an_integrity_error() {
    let (_dir, _key, store, name) = seeded().await;
    let path = store.secret_path(&name);
    let original = std::fs::read(&path).unwrap();
    // Every 7th byte keeps the test fast while covering header, metadata and ciphertext.
    for i in (0..original.len()).step_by(7) {
        let mut bytes = original.clone();
        bytes[i] ^= 0x20;
        std::fs::write(&path, &bytes).unwrap();
        let err = store.describe(&name).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Integrity, "byte {i}: {err}");
        assert!(err.message().contains("prod/db.secret"));
    }
    std::fs::write(&path, &original).unwrap();
    assert_eq!(
        store
            .get(&name, &VersionSelector::default())
            .await
            .unwrap()
            .value
            .expose(),
        b"second"
    );
}

#[tokio::test]
async fn a_file_copied_over_another_secret_never_reads_as_it() {
    let (_dir, _key, store, name) = seeded().await;
    let other: SecretName = "prod/other".parse().unwrap();
    store
        .put(
            &other,
            &SecretValue::from("other-value"),
            &PutOptions::default(),
        )
        .await
        .unwrap();
    std::fs::copy(store.secret_path(&name), store.secret_path(&other)).unwrap();
    let err = store
        .get(&other, &VersionSelector::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Integrity);
    assert!(err.message().contains("belongs to secret prod/db"), "{err}");
}

#[tokio::test]
async fn wrong_permissions_are_detected() {
    let (dir, key, store, name) = seeded().await;
    let path = store.secret_path(&name);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = store
        .get(&name, &VersionSelector::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied);
    assert!(err.message().contains("chmod 600"), "{err}");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();

    let root = dir.path().join("s");
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)).unwrap();
    let err = FileSecretsProvider::open(&root, Protection::Encrypted(key.clone())).unwrap_err();
    assert!(err.to_string().contains("chmod 700"), "{err}");
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o700)).unwrap();

    let key_file = dir.path().join("key");
    StoreKey::create_file(&key_file).unwrap();
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o640)).unwrap();
    let err = Protection::from_options(Some(&key_file), false).unwrap_err();
    assert!(err.to_string().contains("chmod 600"), "{err}");
}

#[tokio::test]
async fn a_missing_or_wrong_key_is_a_clear_error() {
    let (dir, _key, _store, name) = seeded().await;
    let root = dir.path().join("s");
    let keyless = FileSecretsProvider::open(&root, Protection::Unconfigured).unwrap();
    let err = keyless
        .get(&name, &VersionSelector::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.message().contains("--key-file"), "{err}");
    let err = keyless
        .put(&name, &SecretValue::from("x"), &PutOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);

    let wrong = open(&root, &StoreKey::generate());
    let err = wrong
        .get(&name, &VersionSelector::default())
        .await
        .unwrap_err();
    // A wrong key is not corruption: the advice is the key file, never "delete it".
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert!(err.message().contains("written with key"), "{err}");
    assert!(err.message().contains("--key-file"), "{err}");
    assert!(err.message().contains("do not delete it"), "{err}");

    let missing =
        Protection::from_options(Some(&dir.path().join("no-such-key")), false).unwrap_err();
    assert!(missing.to_string().contains("no-such-key"), "{missing}");
    let both = Protection::from_options(Some(&dir.path().join("k")), true).unwrap_err();
    assert!(both.to_string().contains("exclude each other"));
}
