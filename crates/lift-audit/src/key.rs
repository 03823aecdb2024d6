//! The audit (chain) key, and the checkpoint signing key, which is independent of it.
//!
//! The audit key file yields, through HKDF-SHA256 (RFC 5869) with distinct
//! `info` labels, the HMAC key of the chain and a public key id that records
//! carry so that a verifier can tell "wrong key" from "modified". (Format
//! version 1 also derived the checkpoint signing seed from it; verifiers
//! still accept checkpoints signed that way, writers no longer sign so.)
//!
//! Checkpoints are signed with an Ed25519 key of their own
//! ([`CheckpointSigner`]), generated, stored and permission-checked apart
//! from the audit key, so that an auditor who holds only its public key can
//! check the log up to the last checkpoint without being able to rewrite it.
//!
//! Both key files are read through `lift_core::fs::read_key_file`: a regular
//! file, not a symbolic link, not accessible to group or others.

use std::fmt;
use std::path::{Path, PathBuf};

use lift_core::fs::KeyFileOptions;
use lift_core::{KeyPage, PageProtection};

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use hmac::{Hmac, KeyInit, Mac};
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
    /// The chain's HMAC key, then the version 1 checkpoint signing seed, on
    /// a memory page of their own: locked into RAM and left out of core
    /// dumps where the system allows ([`KeyPage`]), wiped when dropped.
    secret: KeyPage,
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
        let mut secret = Zeroizing::new([0u8; 64]);
        secret[..32].copy_from_slice(&chain[..]);
        secret[32..].copy_from_slice(&signing_seed[..]);
        Ok(AuditKey {
            secret: KeyPage::new(&secret[..]),
            id: hex::encode(&id_bytes[..8]),
        })
    }

    /// Reads a key file. One trailing newline (`\n` or `\r\n`) is ignored so
    /// that keys written by an editor work; every other byte is key material.
    ///
    /// The file must be private (`chmod 600`), a regular file and not a
    /// symbolic link, and at most 4 KiB: lift's one key-file policy.
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = lift_core::fs::read_key_file(path, &KeyFileOptions::new())?;
        let len = bytes.len();
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

    /// The chain's HMAC key.
    fn chain(&self) -> &[u8] {
        self.secret.expose().get(..32).unwrap_or_default()
    }

    /// The seed of the version 1 checkpoint signer.
    fn signing_seed(&self) -> &[u8] {
        self.secret.expose().get(32..).unwrap_or_default()
    }

    /// What the operating system granted for the key's page: locked into
    /// RAM, left out of core dumps.
    pub fn protection(&self) -> PageProtection {
        self.secret.protection()
    }

    /// The chain's HMAC, keyed and ready to clone per record.
    pub(crate) fn chain_mac(&self) -> HmacSha256 {
        HmacSha256::new_from_slice(self.chain()).unwrap_or_else(|_| unreachable_hmac())
    }

    /// The checkpoint signer that format version 1 derived from this key.
    ///
    /// Writers no longer sign with it (checkpoints have their own
    /// [`CheckpointSigner`]); verifiers accept checkpoints it signed, so that
    /// logs written before the change still verify with the audit key.
    pub fn signer(&self) -> CheckpointSigner {
        let mut seed = Zeroizing::new([0u8; 32]);
        seed.copy_from_slice(self.signing_seed());
        CheckpointSigner {
            key: SigningKey::from_bytes(&seed),
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
    /// The file is read under lift's one key-file policy (private, regular,
    /// not a symbolic link). Two processes creating it at once end up with
    /// the same key: the file appears complete or not at all, and the loser
    /// of the race reads the winner's.
    pub fn load_or_create(path: &Path) -> Result<Self> {
        match Self::load(path) {
            Err(Error::Fs(err))
                if err.io_error().map(std::io::Error::kind)
                    == Some(std::io::ErrorKind::NotFound) =>
            {
                let mut seed = Zeroizing::new([0u8; 32]);
                lift_core::fs::random_bytes(&mut seed[..])?;
                match lift_core::fs::write_new(path, &seed[..], 0o600) {
                    Ok(()) => Ok(Self::from_seed(&seed)),
                    Err(err)
                        if err.io_error().map(std::io::Error::kind)
                            == Some(std::io::ErrorKind::AlreadyExists) =>
                    {
                        Self::load(path)
                    }
                    Err(err) => Err(err.into()),
                }
            }
            other => other,
        }
    }

    /// Reads a 32-byte Ed25519 seed from `path` (raw bytes, or 64 hex digits
    /// and an optional newline), under lift's one key-file policy.
    pub fn load(path: &Path) -> Result<Self> {
        // Not trimmed: a raw seed may end in a newline byte.
        let bytes = lift_core::fs::read_key_file(
            path,
            &KeyFileOptions::new().max_len(130).trim_newline(false),
        )?;
        let mut seed = Zeroizing::new([0u8; 32]);
        if bytes.len() == 32 {
            seed.copy_from_slice(&bytes);
        } else {
            let text = std::str::from_utf8(&bytes)
                .ok()
                .map(str::trim_end)
                .filter(|t| t.len() == 64);
            match text.map(|t| hex::decode_to_slice(t, &mut seed[..])) {
                Some(Ok(())) => {}
                _ => {
                    return Err(Error::InvalidInput(format!(
                        "checkpoint signing key file {} must hold exactly 32 bytes (or 64 hex digits), it holds {}; delete it to generate a new one",
                        path.display(),
                        bytes.len()
                    )));
                }
            }
        }
        Ok(Self::from_seed(&seed))
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
        assert_ne!(a.chain(), a.signing_seed());
        assert_eq!((a.chain().len(), a.signing_seed().len()), (32, 32));
        #[cfg(target_os = "linux")]
        assert!(a.protection().excluded_from_dumps);
        assert_eq!(a.signer().public_key_hex(), b.signer().public_key_hex());
    }

    #[test]
    fn short_keys_are_refused_and_debug_is_redacted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        lift_core::fs::write_atomic(&path, b"0123456789abcdef0123456789abcde\n", 0o600).unwrap();
        let err = AuditKey::load(&path).unwrap_err();
        assert!(matches!(err, Error::KeyTooShort { len: 31, .. }), "{err}");
        lift_core::fs::write_atomic(&path, b"0123456789abcdef0123456789abcdef\n", 0o600).unwrap();
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

    #[test]
    fn a_raw_seed_ending_in_a_newline_byte_is_kept_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seed");
        let mut seed = [9u8; 32];
        seed[31] = b'\n';
        lift_core::fs::write_atomic(&path, &seed, 0o600).unwrap();
        let raw = CheckpointSigner::load(&path).unwrap();
        let hex_path = dir.path().join("seed.hex");
        let text = format!("{}\n", hex::encode(seed));
        lift_core::fs::write_atomic(&hex_path, text.as_bytes(), 0o600).unwrap();
        let from_hex = CheckpointSigner::load(&hex_path).unwrap();
        assert_eq!(raw.public_key_hex(), from_hex.public_key_hex());
    }

    #[test]
    fn readable_key_files_are_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.key");
        std::fs::write(&path, [7u8; 32]).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = AuditKey::load(&path).unwrap_err();
        assert!(err.to_string().contains("chmod 600"), "{err}");
        assert_eq!(
            lift_core::Classify::kind(&err),
            lift_core::ErrorKind::PermissionDenied
        );
        let signing = dir.path().join("signing-key");
        CheckpointSigner::load_or_create(&signing).unwrap();
        std::fs::set_permissions(&signing, std::fs::Permissions::from_mode(0o640)).unwrap();
        let err = CheckpointSigner::load_or_create(&signing).unwrap_err();
        assert!(err.to_string().contains("chmod 600"), "{err}");
        // A symbolic link is not followed to a key.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let link = dir.path().join("link.key");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        assert!(AuditKey::load(&link).is_err());
    }
}
