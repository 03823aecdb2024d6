//! The store key and how values are protected at rest.

use std::fmt;
use std::path::Path;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::{Zeroize, Zeroizing};

use lift_core::{KeyPage, PageProtection};

use crate::{Error, Result};

/// The environment variable naming the key file.
pub const KEY_FILE_ENV: &str = "LIFT_SECRETS_KEY_FILE";

/// The length of a store key, in bytes.
pub const KEY_LEN: usize = 32;

/// The length of an XChaCha20-Poly1305 nonce, in bytes.
pub(crate) const NONCE_LEN: usize = 24;

/// A 32-byte XChaCha20-Poly1305 key: on a memory page of its own, locked into
/// RAM and left out of core dumps where the system allows ([`KeyPage`]),
/// wiped when dropped, redacted when printed.
#[derive(Clone)]
pub struct StoreKey(KeyPage);

impl StoreKey {
    /// Wraps raw key bytes. This function's copy is wiped once they are on
    /// the key's page; an array is `Copy`, so the caller should wipe its own.
    pub fn from_bytes(mut bytes: [u8; KEY_LEN]) -> Self {
        StoreKey::taking(&mut bytes)
    }

    /// Moves `bytes` onto the key's page and wipes them where they were.
    fn taking(bytes: &mut [u8; KEY_LEN]) -> Self {
        let key = StoreKey(KeyPage::new(&bytes[..]));
        bytes.zeroize();
        key
    }

    /// What the operating system granted for the key's page: locked into RAM,
    /// left out of core dumps.
    pub fn protection(&self) -> PageProtection {
        self.0.protection()
    }

    /// A fresh key from `rand`'s thread RNG (ChaCha12, seeded and reseeded from the
    /// operating system), for tests and examples; it cannot fail. Keys that are kept
    /// come from [`StoreKey::try_generate`] or [`StoreKey::create_file`], which read the
    /// operating system's CSPRNG directly.
    pub fn generate() -> Self {
        let mut bytes = [0u8; KEY_LEN];
        rand::fill(&mut bytes[..]);
        StoreKey::taking(&mut bytes)
    }

    /// Reads a key file: 32 raw bytes, or 64 hex digits with an optional trailing newline.
    ///
    /// The file is read under lift's one key-file policy ([`lift_core::fs::read_key_file`]):
    /// a regular file, not a symbolic link, not readable or writable by group or others.
    pub fn from_file(path: &Path) -> Result<Self> {
        let bad = |reason: String| Error::BadKey {
            path: path.to_path_buf(),
            reason,
        };
        // A raw key may end in a 0x0a byte: trim the newline only from the hex form below.
        let options = lift_core::fs::KeyFileOptions::new()
            .max_len(2 * KEY_LEN + 2)
            .trim_newline(false);
        let raw = lift_core::fs::read_key_file(path, &options).map_err(|e| match e {
            lift_core::fs::FsError::Permissions { mode, .. } => Error::Permissions {
                path: path.to_path_buf(),
                mode,
                fix: 0o600,
            },
            lift_core::fs::FsError::TooLarge { .. } => bad(format!(
                "it is larger than a key; a key is {KEY_LEN} raw bytes or {} hex digits (create one with `head -c 32 /dev/urandom > FILE && chmod 600 FILE`)",
                2 * KEY_LEN
            )),
            other => Error::Fs(other),
        })?;
        let mut key = [0u8; KEY_LEN];
        if raw.len() == KEY_LEN {
            key.copy_from_slice(&raw);
            return Ok(StoreKey::taking(&mut key));
        }
        let text = raw.strip_suffix(b"\n").unwrap_or(&raw);
        if text.len() == 2 * KEY_LEN {
            if hex::decode_to_slice(text, &mut key).is_ok() {
                return Ok(StoreKey::taking(&mut key));
            }
            key.zeroize();
        }
        Err(bad(format!(
            "it holds {} bytes; a key is {KEY_LEN} raw bytes or {} hex digits (create one with `head -c 32 /dev/urandom > FILE && chmod 600 FILE`)",
            raw.len(),
            2 * KEY_LEN
        )))
    }

    /// A fresh key from the operating system's CSPRNG, or an error when it cannot be read.
    pub fn try_generate() -> Result<Self> {
        let mut bytes = [0u8; KEY_LEN];
        lift_core::fs::random_bytes(&mut bytes).inspect_err(|_| bytes.zeroize())?;
        Ok(StoreKey::taking(&mut bytes))
    }

    /// Writes a fresh key to `path` with mode 0600, atomically and durably, refusing to overwrite.
    pub fn create_file(path: &Path) -> Result<Self> {
        let key = StoreKey::try_generate()?;
        lift_core::fs::write_new(path, key.0.expose(), 0o600).map_err(|e| match e.io_error() {
            Some(io) if io.kind() == std::io::ErrorKind::AlreadyExists => {
                Error::InvalidInput(format!(
                    "key file {} exists already; lift never overwrites a key",
                    path.display()
                ))
            }
            _ => Error::Fs(e),
        })?;
        Ok(key)
    }

    /// The cipher, built from the key's page by reference, so no copy of
    /// the key is left behind. `None` cannot happen: the page holds exactly
    /// KEY_LEN bytes, since every constructor takes a [u8; KEY_LEN].
    fn cipher(&self) -> Option<XChaCha20Poly1305> {
        XChaCha20Poly1305::new_from_slice(self.0.expose()).ok()
    }

    /// A subkey for one purpose, so that one key never serves two algorithms or two file kinds.
    fn subkey(&self, purpose: MacPurpose) -> Zeroizing<[u8; 32]> {
        let mut mac = hmac_sha256(self.0.expose());
        mac.update(purpose.label());
        Zeroizing::new(mac.finalize().into_bytes().into())
    }

    /// The key's id: 16 hex digits derived from the key, which tell keys apart without revealing them.
    ///
    /// Files record the id of the key that wrote them, so that a wrong key reads as a
    /// wrong key, not as corruption.
    pub fn id(&self) -> String {
        let mut mac = hmac_sha256(self.0.expose());
        mac.update(b"lift-secrets key id v1");
        let digest = mac.finalize().into_bytes();
        hex::encode(&digest[..8])
    }
}

/// What a MAC authenticates; each purpose has its own subkey.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MacPurpose {
    /// A secret file.
    SecretFile,
    /// A rotation state file.
    RotationState,
    /// The store manifest of generations.
    Manifest,
}

impl MacPurpose {
    fn label(self) -> &'static [u8] {
        match self {
            MacPurpose::SecretFile => b"lift-secrets file mac v1",
            MacPurpose::RotationState => b"lift-secrets rotation state mac v1",
            MacPurpose::Manifest => b"lift-secrets manifest mac v1",
        }
    }
}

/// HMAC-SHA256 keyed with the store key's 32 bytes (or a subkey's), taken
/// by reference. The state is wiped when dropped (`hmac`'s `zeroize` feature).
fn hmac_sha256(key: &[u8]) -> Hmac<Sha256> {
    // HMAC takes a key of any length, so this cannot fail; the fallback keeps
    // the code free of `unwrap` while saying so.
    <Hmac<Sha256> as hmac::KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| <Hmac<Sha256> as hmac::KeyInit>::new(&Default::default()))
}

impl fmt::Debug for StoreKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StoreKey([REDACTED])")
    }
}

/// How a file store protects values at rest.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Protection {
    /// XChaCha20-Poly1305 with this key; the whole file is authenticated with HMAC-SHA256.
    Encrypted(StoreKey),
    /// Values in the clear, chosen explicitly (development only). Files still carry a SHA-256 checksum.
    Plaintext,
    /// Neither a key nor plaintext was chosen: reads of plaintext files work, writes fail.
    Unconfigured,
}

impl Protection {
    /// The protection chosen by a caller: a key file (read with the key-file policy),
    /// or plaintext, or neither ([`Protection::Unconfigured`]: plaintext files can be
    /// read, nothing can be written).
    ///
    /// It takes values only: where they come from (flags, [`KEY_FILE_ENV`], a config
    /// file) is the caller's business.
    pub fn from_options(key_file: Option<&Path>, plaintext: bool) -> Result<Self> {
        match (key_file, plaintext) {
            (Some(_), true) => Err(Error::InvalidInput(
                "a key file and plaintext exclude each other; choose one".into(),
            )),
            (Some(path), false) => Ok(Protection::Encrypted(StoreKey::from_file(path)?)),
            (None, true) => Ok(Protection::Plaintext),
            (None, false) => Ok(Protection::Unconfigured),
        }
    }

    /// The name recorded in files.
    pub(crate) fn scheme(&self) -> &'static str {
        match self {
            Protection::Encrypted(_) => SCHEME_ENCRYPTED,
            Protection::Plaintext | Protection::Unconfigured => SCHEME_PLAINTEXT,
        }
    }

    /// The id of the key written into files: the key's id, or `-` without a key.
    pub(crate) fn key_id(&self) -> String {
        match self {
            Protection::Encrypted(key) => key.id(),
            Protection::Plaintext | Protection::Unconfigured => NO_KEY_ID.to_owned(),
        }
    }

    /// The file checksum: HMAC-SHA256 under a subkey when encrypted, plain SHA-256 otherwise.
    pub(crate) fn checksum(&self, body: &[u8]) -> [u8; 32] {
        self.mac(MacPurpose::SecretFile, &[body])
    }

    /// The file checksum of several parts, as if they were one byte string.
    pub(crate) fn checksum_parts(&self, parts: &[&[u8]]) -> [u8; 32] {
        self.mac(MacPurpose::SecretFile, parts)
    }

    /// HMAC-SHA256 of `parts` under the subkey for `purpose` when encrypted, plain SHA-256 otherwise.
    pub(crate) fn mac(&self, purpose: MacPurpose, parts: &[&[u8]]) -> [u8; 32] {
        match self {
            Protection::Encrypted(key) => {
                let mac_key = key.subkey(purpose);
                let mut mac = hmac_sha256(mac_key.as_slice());
                for part in parts {
                    mac.update(part);
                }
                mac.finalize().into_bytes().into()
            }
            Protection::Plaintext | Protection::Unconfigured => {
                use sha2::Digest;
                let mut digest = Sha256::new();
                for part in parts {
                    digest.update(part);
                }
                digest.finalize().into()
            }
        }
    }

    /// Encrypts `value`, bound to the secret's name and version id. Returns (nonce, ciphertext).
    pub(crate) fn seal(&self, aad: &[u8], value: &[u8]) -> Result<(Vec<u8>, Vec<u8>)> {
        match self {
            Protection::Encrypted(key) => {
                let mut nonce = [0u8; NONCE_LEN];
                lift_core::fs::random_bytes(&mut nonce)?;
                let sealed = key
                    .cipher()
                    .ok_or_else(|| Error::InvalidInput("the store key is not 32 bytes".into()))?
                    .encrypt(&XNonce::from(nonce), Payload { msg: value, aad })
                    .map_err(|_| Error::InvalidInput("value could not be encrypted".into()))?;
                Ok((nonce.to_vec(), sealed))
            }
            Protection::Plaintext | Protection::Unconfigured => Ok((Vec::new(), value.to_vec())),
        }
    }

    /// Decrypts a value sealed by [`Protection::seal`]; `None` when it was tampered with.
    pub(crate) fn open(&self, aad: &[u8], nonce: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
        match self {
            Protection::Encrypted(key) => {
                let nonce: [u8; NONCE_LEN] = nonce.try_into().ok()?;
                key.cipher()?
                    .decrypt(&XNonce::from(nonce), Payload { msg: sealed, aad })
                    .ok()
            }
            Protection::Plaintext | Protection::Unconfigured => Some(sealed.to_vec()),
        }
    }
}

/// The key id written by stores without a key.
pub(crate) const NO_KEY_ID: &str = "-";

/// Compares two byte strings in time independent of where they differ.
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The scheme name of encrypted files.
pub(crate) const SCHEME_ENCRYPTED: &str = "xchacha20poly1305+hmac-sha256";
/// The scheme name of plaintext files.
pub(crate) const SCHEME_PLAINTEXT: &str = "plaintext+sha256";

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[cfg(target_os = "linux")]
    #[test]
    fn the_key_lives_on_a_page_left_out_of_core_dumps() {
        let key = StoreKey::from_bytes([9u8; KEY_LEN]);
        assert!(key.protection().excluded_from_dumps);
        let copy = key.clone();
        assert!(copy.protection().excluded_from_dumps);
        assert_eq!(copy.id(), key.id());
        assert_eq!(format!("{key:?}"), "StoreKey([REDACTED])");
    }

    #[test]
    fn seal_binds_associated_data() {
        let p = Protection::Encrypted(StoreKey::generate());
        let (nonce, sealed) = p.seal(b"db\0v1", b"canary").unwrap();
        assert!(!sealed.windows(6).any(|w| w == b"canary"));
        assert_eq!(
            p.open(b"db\0v1", &nonce, &sealed).as_deref(),
            Some(&b"canary"[..])
        );
        assert!(
            p.open(b"db\0v2", &nonce, &sealed).is_none(),
            "another version's data"
        );
        let other = Protection::Encrypted(StoreKey::generate());
        assert!(
            other.open(b"db\0v1", &nonce, &sealed).is_none(),
            "another key"
        );
    }

    #[test]
    fn key_ids_tell_keys_apart_without_revealing_them() {
        let key = StoreKey::from_bytes([7u8; KEY_LEN]);
        assert_eq!(key.id(), StoreKey::from_bytes([7u8; KEY_LEN]).id());
        assert_ne!(key.id(), StoreKey::from_bytes([8u8; KEY_LEN]).id());
        assert_eq!(key.id().len(), 16);
        assert!(!key.id().contains("0707"));
        let p = Protection::Encrypted(key);
        assert_ne!(
            p.mac(MacPurpose::SecretFile, &[b"x"]),
            p.mac(MacPurpose::RotationState, &[b"x"]),
            "one subkey per purpose"
        );
        assert_eq!(Protection::Plaintext.key_id(), NO_KEY_ID);
    }

    #[test]
    fn key_files_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        let key = StoreKey::create_file(&path).unwrap();
        assert_eq!(format!("{key:?}"), "StoreKey([REDACTED])");
        assert!(StoreKey::from_file(&path).is_ok());
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = StoreKey::from_file(&path).unwrap_err();
        assert!(matches!(err, Error::Permissions { .. }), "{err}");
        let hex_path = dir.path().join("hexkey");
        std::fs::write(&hex_path, format!("{}\n", "ab".repeat(32))).unwrap();
        std::fs::set_permissions(&hex_path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(StoreKey::from_file(&hex_path).is_ok());
        let short = dir.path().join("short");
        std::fs::write(&short, b"tooshort").unwrap();
        std::fs::set_permissions(&short, std::fs::Permissions::from_mode(0o600)).unwrap();
        let err = StoreKey::from_file(&short).unwrap_err();
        assert!(err.to_string().contains("8 bytes"), "{err}");
        assert!(!err.to_string().contains("tooshort"));
    }
}
