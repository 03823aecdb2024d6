//! The on-disk format of one secret.
//!
//! A file is a header line, `lift-secrets/2 <scheme> <key-id> <checksum-hex>`,
//! then a JSON body. The checksum covers the header's first three fields and the
//! body: HMAC-SHA256 under a subkey of the store key when the store is encrypted,
//! SHA-256 when it is plaintext. The key id (see [`crate::StoreKey::id`]) tells a
//! file written with another key from a damaged one. Version 1 files
//! (`lift-secrets/1 <scheme> <checksum-hex>`, checksum over the body only, no key
//! id, no generation) are still read. The body carries the secret's generation,
//! which the store manifest checks to detect a rolled-back file. Each
//! value is also sealed with XChaCha20-Poly1305 whose associated data is the
//! secret's name and version id, so that a value moved to another secret or
//! version fails to decrypt. The body names its secret, and reading checks
//! that name against the file's path, so a file copied over another secret's
//! reads as an integrity error, never as the other secret.

use std::collections::BTreeSet;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use chrono::{DateTime, Utc};
use lift_core::{SecretName, SecretValue, StageLabel, VersionId};
use zeroize::Zeroizing;

use crate::key::{Protection, SCHEME_ENCRYPTED, SCHEME_PLAINTEXT};
use crate::secret_state::{SecretState, StoredValue, StoredVersion};
use crate::{Error, Result};

/// The magic of version 1 files, which are still read.
const MAGIC_V1: &str = "lift-secrets/1";
/// The magic of the files written now.
const MAGIC: &str = "lift-secrets/2";
/// The magic bound into every value's associated data (unchanged since version 1).
const AAD_MAGIC: &str = "lift-secrets/1";

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FileBody {
    name: SecretName,
    /// How many times the file was written; absent (0) in version 1 files.
    #[serde(default)]
    generation: u64,
    created_at: DateTime<Utc>,
    last_changed_at: DateTime<Utc>,
    deletion_date: Option<DateTime<Utc>>,
    versions: Vec<FileVersion>,
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FileVersion {
    id: VersionId,
    stages: Vec<StageLabel>,
    created_at: DateTime<Utc>,
    nonce: String,
    value: String,
}

/// The associated data that binds a value to its secret and version.
fn associated_data(name: &SecretName, id: &VersionId) -> Vec<u8> {
    format!("{AAD_MAGIC}\0{name}\0{id}").into_bytes()
}

/// Serializes and seals `state`.
pub(crate) fn encode(state: &SecretState, protection: &Protection) -> Result<Zeroizing<Vec<u8>>> {
    let mut versions = Vec::with_capacity(state.versions.len());
    for v in &state.versions {
        // Values read from the file stay sealed as they were; only new ones are encrypted.
        let (nonce, sealed) = match &v.value {
            StoredValue::Open(value) => {
                let (nonce, sealed) =
                    protection.seal(&associated_data(&state.name, &v.id), value.expose())?;
                (nonce, Zeroizing::new(sealed))
            }
            StoredValue::Sealed { nonce, bytes } => (nonce.clone(), bytes.clone()),
        };
        versions.push(FileVersion {
            id: v.id.clone(),
            stages: v.stages.clone(),
            created_at: v.created_at,
            nonce: B64.encode(nonce),
            value: B64.encode(&sealed[..]),
        });
    }
    let body = FileBody {
        name: state.name.clone(),
        generation: state.generation,
        created_at: state.created_at,
        last_changed_at: state.last_changed_at,
        deletion_date: state.deletion_date,
        versions,
    };
    let body = Zeroizing::new(serde_json::to_vec(&body).map_err(|e| {
        Error::InvalidInput(format!("cannot serialize secret {}: {e}", state.name))
    })?);
    let prefix = format!("{MAGIC} {} {}", protection.scheme(), protection.key_id());
    let checksum = protection.checksum_parts(&[prefix.as_bytes(), b"\n", &body]);
    let mut out = Zeroizing::new(Vec::with_capacity(body.len() + 160));
    out.extend_from_slice(format!("{prefix} {}\n", hex::encode(checksum)).as_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

/// Whether `bytes` claim to be a version 2 secret file, written by a store that keeps
/// a manifest. Nothing is verified: the store uses it, without a key, only to refuse
/// to create a fresh manifest over files that must have had one.
pub(crate) fn claims_manifest(bytes: &[u8]) -> bool {
    bytes.starts_with(format!("{MAGIC} ").as_bytes())
}

/// Verifies, parses and opens the file at `path`, which must belong to `name`.
pub(crate) fn decode(
    path: &Path,
    root: &Path,
    name: &SecretName,
    bytes: &[u8],
    protection: &Protection,
) -> Result<SecretState> {
    let bad = |reason: String| Error::integrity(path, reason);
    let newline = bytes
        .iter()
        .position(|b| *b == b'\n')
        .ok_or_else(|| bad("it has no header line (is it truncated or empty?)".into()))?;
    let header =
        std::str::from_utf8(&bytes[..newline]).map_err(|_| bad("its header is not text".into()))?;
    let body = &bytes[newline + 1..];
    let fields: Vec<&str> = header.split(' ').collect();
    let (scheme, key_id, checksum) = match fields.as_slice() {
        [MAGIC, scheme, key_id, checksum] => (*scheme, Some(*key_id), *checksum),
        [MAGIC_V1, scheme, checksum] => (*scheme, None, *checksum),
        [magic, ..] if *magic != MAGIC && *magic != MAGIC_V1 => {
            return Err(bad(format!("it is not a {MAGIC} secret file")));
        }
        _ => return Err(bad("its header is malformed".into())),
    };
    match (scheme, protection) {
        (SCHEME_ENCRYPTED, Protection::Encrypted(_)) => {}
        (SCHEME_PLAINTEXT, Protection::Plaintext | Protection::Unconfigured) => {}
        (SCHEME_ENCRYPTED, _) => {
            return Err(Error::NoKey {
                root: root.to_path_buf(),
            });
        }
        (SCHEME_PLAINTEXT, Protection::Encrypted(_)) => {
            return Err(bad(
                "it is a plaintext file in an encrypted store, which could have been planted; re-create the secret with the key".into(),
            ));
        }
        _ => return Err(bad("its header names an unknown scheme".into())),
    }
    if let Some(file_key) = key_id {
        let given_key = protection.key_id();
        if file_key != given_key {
            return Err(Error::WrongKey {
                path: path.to_path_buf(),
                file_key: file_key.to_owned(),
                given_key,
            });
        }
    }
    // Compare the lower-case hex text itself, so that even a flipped letter case is caught,
    // in constant time: the checksum is a MAC when the store is encrypted.
    let expected = match key_id {
        Some(key_id) => {
            let prefix = format!("{MAGIC} {scheme} {key_id}");
            hex::encode(protection.checksum_parts(&[prefix.as_bytes(), b"\n", body]))
        }
        None => hex::encode(protection.checksum(body)),
    };
    let matches = expected.len() == checksum.len()
        && expected
            .bytes()
            .zip(checksum.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if !matches {
        return Err(bad(
            "its checksum does not match (it was modified, truncated, or written with another key)"
                .into(),
        ));
    }
    // serde_json's messages can quote input, which may be a value: report the position only.
    let parsed: FileBody = serde_json::from_slice(body).map_err(|e| {
        bad(format!(
            "its body is malformed at line {} column {}",
            e.line(),
            e.column()
        ))
    })?;
    if &parsed.name != name {
        return Err(bad(format!(
            "it belongs to secret {}, not to {name}",
            parsed.name
        )));
    }
    let mut ids = BTreeSet::new();
    let mut labels = BTreeSet::new();
    let mut versions = Vec::with_capacity(parsed.versions.len());
    for v in parsed.versions {
        if !ids.insert(v.id.clone()) {
            return Err(bad(format!("version {} appears twice", v.id)));
        }
        for label in &v.stages {
            if !labels.insert(label.clone()) {
                return Err(bad(format!("label {label} sits on two versions")));
            }
        }
        let nonce = B64
            .decode(&v.nonce)
            .map_err(|_| bad(format!("the nonce of version {} is malformed", v.id)))?;
        let sealed = Zeroizing::new(
            B64.decode(&v.value)
                .map_err(|_| bad(format!("the value of version {} is malformed", v.id)))?,
        );
        let expected_nonce = match protection {
            Protection::Encrypted(_) => crate::key::NONCE_LEN,
            Protection::Plaintext | Protection::Unconfigured => 0,
        };
        if nonce.len() != expected_nonce {
            return Err(bad(format!(
                "the nonce of version {} has the wrong length",
                v.id
            )));
        }
        versions.push(StoredVersion {
            id: v.id,
            stages: v.stages,
            created_at: v.created_at,
            value: StoredValue::Sealed {
                nonce,
                bytes: sealed,
            },
        });
    }
    if !versions.is_empty() && !labels.iter().any(StageLabel::is_current) {
        return Err(bad("no version is labelled AWSCURRENT".into()));
    }
    Ok(SecretState {
        name: parsed.name,
        generation: parsed.generation,
        created_at: parsed.created_at,
        last_changed_at: parsed.last_changed_at,
        deletion_date: parsed.deletion_date,
        versions,
    })
}

/// Decrypts the value of version `id` of `name`, read from the file at `path`.
///
/// The file's checksum already covered the ciphertext; this also checks that the
/// value was sealed for this secret and version.
pub(crate) fn open_value(
    path: &Path,
    name: &SecretName,
    id: &VersionId,
    nonce: &[u8],
    sealed: &[u8],
    protection: &Protection,
) -> Result<SecretValue> {
    protection
        .open(&associated_data(name, id), nonce, sealed)
        .map(SecretValue::new)
        .ok_or_else(|| {
            Error::integrity(
                path,
                format!("the value of version {id} does not authenticate"),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::StoreKey;
    use crate::secret_state::{self, StoreLimits};
    use lift_core::PutOptions;

    fn state(name: &str, value: &str) -> SecretState {
        let (s, _, _) = secret_state::put(
            None,
            &name.parse().unwrap(),
            &SecretValue::from(value),
            &PutOptions::default(),
            Utc::now(),
            &StoreLimits::default(),
            &secret_state::no_sealed_values,
        )
        .unwrap();
        s
    }

    #[test]
    fn round_trips_and_never_writes_the_value_in_clear() {
        let p = Protection::Encrypted(StoreKey::generate());
        let s = state("db", "canary-value-123");
        let bytes = encode(&s, &p).unwrap();
        assert!(!bytes.windows(6).any(|w| w == b"canary"));
        let back = decode(Path::new("f"), Path::new("r"), &s.name, &bytes, &p).unwrap();
        let StoredValue::Sealed {
            nonce,
            bytes: sealed,
        } = &back.versions[0].value
        else {
            panic!("values stay sealed until read")
        };
        let id = &back.versions[0].id;
        let value = open_value(Path::new("f"), &s.name, id, nonce, sealed, &p).unwrap();
        assert_eq!(value.expose(), b"canary-value-123");
        let other: SecretName = "other".parse().unwrap();
        assert!(open_value(Path::new("f"), &other, id, nonce, sealed, &p).is_err());
        // Re-encoding keeps sealed values as they were.
        let again = encode(&back, &p).unwrap();
        assert!(decode(Path::new("f"), Path::new("r"), &s.name, &again, &p).is_ok());
    }

    #[test]
    fn every_single_byte_flip_and_truncation_is_detected() {
        for p in [
            Protection::Encrypted(StoreKey::generate()),
            Protection::Plaintext,
        ] {
            let s = state("db", "v");
            let bytes = encode(&s, &p).unwrap();
            for i in 0..bytes.len() {
                let mut flipped = bytes.to_vec();
                flipped[i] ^= if i % 2 == 0 { 0x01 } else { 0x20 };
                let err =
                    decode(Path::new("f"), Path::new("r"), &s.name, &flipped, &p).unwrap_err();
                // A changed key id reads as another key's file; anything else as damage.
                assert!(
                    matches!(err, Error::Integrity { .. } | Error::WrongKey { .. }),
                    "byte {i}: {err}"
                );
            }
            for len in 0..bytes.len() {
                let err =
                    decode(Path::new("f"), Path::new("r"), &s.name, &bytes[..len], &p).unwrap_err();
                assert!(matches!(err, Error::Integrity { .. }), "len {len}: {err}");
            }
        }
    }

    #[test]
    fn a_file_of_another_secret_is_refused() {
        let p = Protection::Encrypted(StoreKey::generate());
        let other = state("other", "v");
        let bytes = encode(&other, &p).unwrap();
        let err = decode(
            Path::new("db.secret"),
            Path::new("r"),
            &"db".parse().unwrap(),
            &bytes,
            &p,
        )
        .unwrap_err();
        assert!(err.to_string().contains("belongs to secret other"), "{err}");
        assert!(err.to_string().contains("db.secret"));
    }

    #[test]
    fn a_wrong_key_is_not_reported_as_corruption() {
        let written = Protection::Encrypted(StoreKey::generate());
        let bytes = encode(&state("db", "v"), &written).unwrap();
        let other = Protection::Encrypted(StoreKey::generate());
        let err = decode(
            Path::new("db.secret"),
            Path::new("r"),
            &"db".parse().unwrap(),
            &bytes,
            &other,
        )
        .unwrap_err();
        assert!(matches!(err, Error::WrongKey { .. }), "{err}");
        let text = err.to_string();
        assert!(text.contains("--key-file"), "{text}");
        assert!(
            !text.contains("delete it") || text.contains("do not delete it"),
            "{text}"
        );
        assert!(text.contains(&written_id(&written)), "{text}");
    }

    fn written_id(p: &Protection) -> String {
        p.key_id()
    }

    #[test]
    fn version_1_files_are_still_read() {
        let p = Protection::Encrypted(StoreKey::generate());
        let s = state("db", "v");
        let v2 = encode(&s, &p).unwrap();
        let newline = v2.iter().position(|b| *b == b'\n').unwrap();
        let body = &v2[newline + 1..];
        let mut v1 = format!(
            "{MAGIC_V1} {SCHEME_ENCRYPTED} {}\n",
            hex::encode(p.checksum(body))
        )
        .into_bytes();
        v1.extend_from_slice(body);
        let back = decode(Path::new("f"), Path::new("r"), &s.name, &v1, &p).unwrap();
        assert_eq!(back.versions.len(), 1);
    }

    #[test]
    fn scheme_downgrades_and_missing_keys_are_refused() {
        let plain = encode(&state("db", "v"), &Protection::Plaintext).unwrap();
        let enc = Protection::Encrypted(StoreKey::generate());
        let err = decode(
            Path::new("f"),
            Path::new("r"),
            &"db".parse().unwrap(),
            &plain,
            &enc,
        )
        .unwrap_err();
        assert!(matches!(err, Error::Integrity { .. }));
        let sealed = encode(&state("db", "v"), &enc).unwrap();
        let err = decode(
            Path::new("f"),
            Path::new("r"),
            &"db".parse().unwrap(),
            &sealed,
            &Protection::Unconfigured,
        )
        .unwrap_err();
        assert!(matches!(err, Error::NoKey { .. }));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        /// Whatever is written reads back, under any name and value, and a change of
        /// any single byte is an integrity error.
        #[test]
        fn whatever_is_written_reads_back_and_any_byte_change_is_caught(
            name in "[a-z]{1,8}(/[a-z0-9_-][a-z0-9._-]{0,7}){0,2}",
            value in proptest::collection::vec(proptest::prelude::any::<u8>(), 1..200),
            flip in proptest::prelude::any::<proptest::sample::Index>(),
            xor in 1u8..=255,
        ) {
            let p = Protection::Encrypted(StoreKey::generate());
            let name: SecretName = name.parse().unwrap();
            let (s, _, _) = secret_state::put(None, &name, &SecretValue::new(value.clone()), &PutOptions::default(), Utc::now(), &StoreLimits::default(), &secret_state::no_sealed_values).unwrap();
            let bytes = encode(&s, &p).unwrap();
            let back = decode(Path::new("f"), Path::new("r"), &name, &bytes, &p).unwrap();
            let StoredValue::Sealed { nonce, bytes: sealed } = &back.versions[0].value else {
                panic!("sealed")
            };
            let opened = open_value(Path::new("f"), &name, &back.versions[0].id, nonce, sealed, &p).unwrap();
            proptest::prop_assert_eq!(opened.expose(), &value[..]);
            let mut changed = bytes.to_vec();
            let i = flip.index(changed.len());
            changed[i] ^= xor;
            let err = decode(Path::new("f"), Path::new("r"), &name, &changed, &p).unwrap_err();
            proptest::prop_assert!(matches!(err, Error::Integrity { .. } | Error::WrongKey { .. }), "byte {} changed: {}", i, err);
        }
    }
}
