//! Secret values, and the names secrets are stored under.

use std::fmt;
use std::str::FromStr;

use secrecy::{ExposeSecret, SecretSlice};

use crate::{Error, ErrorKind};

/// The text that `Debug` and `Display` print instead of a secret value.
pub const REDACTED: &str = "[REDACTED]";

/// A secret value: zeroized on drop, redacted when printed, never serializable.
///
/// The only way to read the bytes is an explicit [`SecretValue::expose`] (or
/// [`SecretValue::expose_str`]), which makes every read easy to find in review.
///
/// ```
/// use lift_core::SecretValue;
///
/// let password = SecretValue::from("hunter2");
/// assert_eq!(format!("{password:?}"), "SecretValue([REDACTED])");
/// assert_eq!(password.expose(), b"hunter2");
/// ```
pub struct SecretValue(SecretSlice<u8>);

impl SecretValue {
    /// Wraps bytes. The vector is moved, not copied, so no stray copy is left behind.
    pub fn new(bytes: Vec<u8>) -> Self {
        SecretValue(SecretSlice::from(bytes))
    }

    /// The raw bytes.
    pub fn expose(&self) -> &[u8] {
        self.0.expose_secret()
    }

    /// The value as UTF-8 text, or `None` when it is binary.
    pub fn expose_str(&self) -> Option<&str> {
        std::str::from_utf8(self.expose()).ok()
    }

    /// The length in bytes. Lengths are not secret in lift's threat model.
    pub fn len(&self) -> usize {
        self.expose().len()
    }

    /// Whether the value is empty.
    pub fn is_empty(&self) -> bool {
        self.expose().is_empty()
    }

    /// Compares two values in time independent of where they first differ.
    pub fn ct_eq(&self, other: &SecretValue) -> bool {
        let (a, b) = (self.expose(), other.expose());
        if a.len() != b.len() {
            return false;
        }
        a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

impl Clone for SecretValue {
    fn clone(&self) -> Self {
        SecretValue::new(self.expose().to_vec())
    }
}

impl PartialEq for SecretValue {
    fn eq(&self, other: &Self) -> bool {
        self.ct_eq(other)
    }
}

impl Eq for SecretValue {}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretValue({REDACTED})")
    }
}

impl fmt::Display for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl From<String> for SecretValue {
    fn from(value: String) -> Self {
        SecretValue::new(value.into_bytes())
    }
}

impl From<&str> for SecretValue {
    fn from(value: &str) -> Self {
        SecretValue::new(value.as_bytes().to_vec())
    }
}

impl From<Vec<u8>> for SecretValue {
    fn from(value: Vec<u8>) -> Self {
        SecretValue::new(value)
    }
}

/// The longest secret name, in bytes (AWS Secrets Manager's limit).
pub const MAX_SECRET_NAME_LEN: usize = 512;

/// A validated secret name.
///
/// A name is non-empty, at most [`MAX_SECRET_NAME_LEN`] bytes, made of
/// `A-Za-z0-9/_+=.@-`, and none of its `/`-separated components is empty,
/// `.` or `..`. It is therefore safe to use as a relative path: it can never
/// escape the directory it is joined to.
///
/// ```
/// use lift_core::SecretName;
///
/// let name: SecretName = "prod/db/password".parse()?;
/// assert_eq!(name.as_str(), "prod/db/password");
/// assert!("../../etc/passwd".parse::<SecretName>().is_err());
/// # Ok::<(), lift_core::Error>(())
/// ```
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, schemars::JsonSchema,
)]
#[serde(transparent)]
pub struct SecretName(String);

impl SecretName {
    /// Validates `name`.
    pub fn new(name: impl Into<String>) -> Result<Self, Error> {
        let name = name.into();
        validate_secret_name(&name)?;
        Ok(SecretName(name))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn validate_secret_name(name: &str) -> Result<(), Error> {
    let fail = |why: &str| {
        Err(Error::new(
            ErrorKind::InvalidInput,
            format!(
                "invalid secret name {:?}: {why}; use 1 to {MAX_SECRET_NAME_LEN} bytes of A-Za-z0-9/_+=.@- with no empty, '.' or '..' path component",
                truncate_for_message(name)
            ),
        ))
    };
    if name.is_empty() {
        return fail("it is empty");
    }
    if name.len() > MAX_SECRET_NAME_LEN {
        return fail("it is too long");
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "/_+=.@-".contains(*c)))
    {
        return fail(&format!("the character {bad:?} is not allowed"));
    }
    for component in name.split('/') {
        match component {
            "" => return fail("it has an empty path component"),
            "." | ".." => return fail("it has a '.' or '..' path component"),
            _ => {}
        }
    }
    Ok(())
}

/// Keeps error messages readable when the rejected input is huge.
fn truncate_for_message(input: &str) -> String {
    const LIMIT: usize = 64;
    if input.len() <= LIMIT {
        return input.to_owned();
    }
    let mut end = LIMIT;
    while !input.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &input[..end])
}

impl FromStr for SecretName {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        SecretName::new(s)
    }
}

impl TryFrom<String> for SecretName {
    type Error = Error;
    fn try_from(s: String) -> Result<Self, Error> {
        SecretName::new(s)
    }
}

impl<'de> serde::Deserialize<'de> for SecretName {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        SecretName::new(raw).map_err(serde::de::Error::custom)
    }
}

impl AsRef<str> for SecretName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SecretName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn secret_value_never_prints_its_bytes() {
        let value = SecretValue::from("canary-4f2a");
        assert!(!format!("{value:?}").contains("canary"));
        assert!(!format!("{value}").contains("canary"));
        assert!(!format!("{value:#?}").contains("canary"));
        assert_eq!(value.expose_str(), Some("canary-4f2a"));
        assert_eq!(value.len(), 11);
    }

    #[test]
    fn secret_values_compare_by_content() {
        assert_eq!(SecretValue::from("a"), SecretValue::from("a"));
        assert_ne!(SecretValue::from("a"), SecretValue::from("b"));
        assert_ne!(SecretValue::from("a"), SecretValue::from("ab"));
        assert_eq!(SecretValue::from("x").clone(), SecretValue::from("x"));
    }

    #[test]
    fn binary_values_are_not_text() {
        let value = SecretValue::new(vec![0xff, 0xfe]);
        assert_eq!(value.expose_str(), None);
    }

    #[test]
    fn accepts_valid_names() {
        for name in [
            "a",
            "prod/db/password",
            "x.y_z+1=2@3-4",
            "a..b",
            ".hidden/x",
        ] {
            assert!(SecretName::new(name).is_ok(), "{name} should be valid");
        }
        assert!(SecretName::new("a".repeat(512)).is_ok());
    }

    #[test]
    fn rejects_hostile_names() {
        for name in [
            "",
            "../../etc/passwd",
            "..",
            ".",
            "a/../b",
            "a/./b",
            "/abs",
            "trailing/",
            "a//b",
            "sp ace",
            "nul\0",
            "uni\u{e9}",
            "back\\slash",
        ] {
            let err = SecretName::new(name).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{name:?}");
            assert!(err.to_string().starts_with("invalid secret name"));
        }
        let long = SecretName::new("a".repeat(513)).unwrap_err();
        assert!(long.to_string().contains("too long"));
        assert!(long.to_string().len() < 300, "message stays short");
    }

    #[test]
    fn names_deserialize_with_validation() {
        let ok: Result<SecretName, _> = serde_json::from_str("\"a/b\"");
        assert!(ok.is_ok());
        let bad: Result<SecretName, _> = serde_json::from_str("\"../x\"");
        assert!(bad.is_err());
    }

    proptest! {
        #[test]
        fn valid_names_never_escape_their_directory(name in "[A-Za-z0-9/_+=.@-]{1,40}") {
            if let Ok(valid) = SecretName::new(name) {
                let joined = std::path::Path::new("/store").join(valid.as_str());
                prop_assert!(joined.starts_with("/store"));
                for component in joined.components() {
                    prop_assert!(!matches!(component, std::path::Component::ParentDir | std::path::Component::CurDir));
                }
            }
        }
    }
}
