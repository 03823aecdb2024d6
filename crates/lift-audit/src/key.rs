//! The audit key, what derives from it, and checkpoint signing keys.
//!
//! One secret, the audit key file, yields three independent values through
//! HKDF-SHA256 (RFC 5869) with distinct `info` labels: the HMAC key of the
//! chain, the Ed25519 seed that signs checkpoints, and a public key id that
//! records carry so that a verifier can tell "wrong key" from "modified".

use std::fmt;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// The minimum length of an audit key file, in bytes.
pub const MIN_KEY_LEN: usize = 32;

/// The environment variable naming the audit key file.
pub const KEY_FILE_ENV: &str = "LIFT_AUDIT_KEY_FILE";

const HKDF_SALT: &[u8] = b"lift-audit/v1";
const INFO_CHAIN: &[u8] = b"lift-audit/v1 chain hmac-sha256 key";
const INFO_SIGNING: &[u8] = b"lift-audit/v1 checkpoint ed25519 seed";
const INFO_KEY_ID: &[u8] = b"lift-audit/v1 key id";

type HmacSha256 = Hmac<Sha256>;

/// The secret that keys the chain and signs checkpoints.
///
/// Invariant: it was built from at least [`MIN_KEY_LEN`] bytes. Its `Debug`
/// output shows only the public key id, never key material.
#[derive(Clone)]
pub struct AuditKey {
    chain: Zeroizing<[u8; 32]>,
    signing_seed: Zeroizing<[u8; 32]>,
    id: String,
}

impl fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

fn hkdf_extract(salt: &[u8], ikm: &[u8]) -> Zeroizing<[u8; 32]> {
    let mut mac = HmacSha256::new_from_slice(salt).unwrap_or_else(|_| unreachable_hmac());
    mac.update(ikm);
    Zeroizing::new(mac.finalize().into_bytes().into())
}

fn hkdf_expand_32(prk: &[u8; 32], info: &[u8]) -> Zeroizing<[u8; 32]> {
    // One block of HKDF-Expand: T(1) = HMAC(PRK, info || 0x01), enough for 32 bytes.
    let mut mac = HmacSha256::new_from_slice(prk).unwrap_or_else(|_| unreachable_hmac());
    mac.update(info);
    mac.update(&[1u8]);
    Zeroizing::new(mac.finalize().into_bytes().into())
}

// HMAC accepts keys of any length, so `new_from_slice` cannot fail; this keeps
// the code free of `unwrap` while documenting that fact.
fn unreachable_hmac() -> HmacSha256 {
    <HmacSha256 as hmac::digest::KeyInit>::new(&Default::default())
}

impl AuditKey {
    /// Derives the key from raw key bytes (at least [`MIN_KEY_LEN`]).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        if bytes.len() < MIN_KEY_LEN {
            return Err(Error::KeyTooShort {
                path: PathBuf::from("<bytes>"),
                len: bytes.len(),
            });
        }
        let prk = hkdf_extract(HKDF_SALT, bytes);
        let chain = hkdf_expand_32(&prk, INFO_CHAIN);
        let signing_seed = hkdf_expand_32(&prk, INFO_SIGNING);
        let id_bytes = hkdf_expand_32(&prk, INFO_KEY_ID);
        Ok(AuditKey {
            chain,
            signing_seed,
            id: hex::encode(&id_bytes[..8]),
        })
    }

    /// Reads a key file. One trailing newline (`\n` or `\r\n`) is ignored so
    /// that keys written by an editor work; every other byte is key material.
    pub fn load(path: &Path) -> Result<Self> {
        let mut bytes = Zeroizing::new(Vec::new());
        std::fs::File::open(path)
            .and_then(|mut f| f.read_to_end(&mut bytes))
            .map_err(|e| Error::io("read audit key file", path, e))?;
        let mut len = bytes.len();
        if bytes[..len].ends_with(b"\n") {
            len -= 1;
            if bytes[..len].ends_with(b"\r") {
                len -= 1;
            }
        }
        if len < MIN_KEY_LEN {
            return Err(Error::KeyTooShort {
                path: path.to_owned(),
                len,
            });
        }
        Self::from_bytes(&bytes[..len])
    }

    /// Loads the key named by `LIFT_AUDIT_KEY_FILE`, if that variable is set and non-empty.
    pub fn from_env() -> Result<Option<Self>> {
        match std::env::var_os(KEY_FILE_ENV) {
            Some(path) if !path.is_empty() => Self::load(Path::new(&path)).map(Some),
            _ => Ok(None),
        }
    }

    /// The public key id: 16 lower-case hex digits that records and checkpoints carry.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The chain's HMAC, keyed and ready to clone per record.
    pub(crate) fn chain_mac(&self) -> HmacSha256 {
        HmacSha256::new_from_slice(&self.chain[..]).unwrap_or_else(|_| unreachable_hmac())
    }

    /// The checkpoint signer derived from this key.
    pub fn signer(&self) -> CheckpointSigner {
        CheckpointSigner {
            key: SigningKey::from_bytes(&self.signing_seed),
        }
    }
}

/// Signs checkpoints with Ed25519. `Debug` shows only the public key.
#[derive(Clone)]
pub struct CheckpointSigner {
    key: SigningKey,
}

impl fmt::Debug for CheckpointSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CheckpointSigner")
            .field("public_key", &self.public_key_hex())
            .finish_non_exhaustive()
    }
}

impl CheckpointSigner {
    /// Reads a 32-byte Ed25519 seed from `path`, creating it (mode 0600, from the
    /// operating system's CSPRNG) when it does not exist.
    ///
    /// This is the signing key of logs without an audit key.
    pub fn load_or_create(path: &Path) -> Result<Self> {
        match std::fs::read(path) {
            Ok(bytes) => {
                let bytes = Zeroizing::new(bytes);
                let seed: [u8; 32] = bytes[..].try_into().map_err(|_| {
                    Error::InvalidInput(format!(
                        "checkpoint signing key file {} must hold exactly 32 bytes, it holds {}; delete it to generate a new one",
                        path.display(),
                        bytes.len()
                    ))
                })?;
                Ok(Self::from_seed(&Zeroizing::new(seed)))
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                let mut seed = Zeroizing::new([0u8; 32]);
                std::fs::File::open("/dev/urandom")
                    .and_then(|mut f| f.read_exact(&mut seed[..]))
                    .map_err(|e| Error::io("read random bytes from", "/dev/urandom", e))?;
                write_private_file(path, &seed[..])?;
                Ok(Self::from_seed(&seed))
            }
            Err(err) => Err(Error::io("read checkpoint signing key", path, err)),
        }
    }

    fn from_seed(seed: &Zeroizing<[u8; 32]>) -> Self {
        CheckpointSigner {
            key: SigningKey::from_bytes(seed),
        }
    }

    /// The public key, as 64 lower-case hex digits.
    pub fn public_key_hex(&self) -> String {
        hex::encode(self.key.verifying_key().as_bytes())
    }

    /// The public key.
    pub fn verifying_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    pub(crate) fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.key.sign(message).to_bytes()
    }
}

fn write_private_file(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| Error::io("create", path, e))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| Error::io("write", path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derivation_is_deterministic_and_separated() {
        let a = AuditKey::from_bytes(&[7u8; 32]).unwrap();
        let b = AuditKey::from_bytes(&[7u8; 32]).unwrap();
        let c = AuditKey::from_bytes(&[8u8; 32]).unwrap();
        assert_eq!(a.id(), b.id());
        assert_ne!(a.id(), c.id());
        assert_eq!(a.id().len(), 16);
        assert_ne!(a.chain[..], a.signing_seed[..]);
        assert_eq!(a.signer().public_key_hex(), b.signer().public_key_hex());
    }

    #[test]
    fn short_keys_are_refused_and_debug_is_redacted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        std::fs::write(&path, b"0123456789abcdef0123456789abcde\n").unwrap();
        let err = AuditKey::load(&path).unwrap_err();
        assert!(matches!(err, Error::KeyTooShort { len: 31, .. }), "{err}");
        std::fs::write(&path, b"0123456789abcdef0123456789abcdef\n").unwrap();
        let key = AuditKey::load(&path).unwrap();
        let debug = format!("{key:?}");
        assert!(debug.contains(key.id()));
        assert!(!debug.contains("0123"));
        assert_eq!(
            key.id(),
            AuditKey::from_bytes(b"0123456789abcdef0123456789abcdef")
                .unwrap()
                .id()
        );
    }

    #[test]
    fn signing_key_files_are_created_private_and_reloaded() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("signing-key");
        let first = CheckpointSigner::load_or_create(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let again = CheckpointSigner::load_or_create(&path).unwrap();
        assert_eq!(first.public_key_hex(), again.public_key_hex());
        assert!(!format!("{first:?}").contains("seed"));
    }
}
