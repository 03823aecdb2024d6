//! Generating new secret values from a CSPRNG, without bias and never from the old value.
//!
//! A rotation generates the kind declared for the secret; it never guesses a shape or
//! a prefix from the old value, because whatever it guessed would carry part of that
//! value into the new one.
//!
//! Randomness comes from the operating system's CSPRNG through
//! [`lift_core::fs::random_bytes`]. Every choice among `n` items uses rejection
//! sampling, so no item is more likely than another.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use lift_core::SecretValue;
use zeroize::Zeroizing;

use crate::{Error, Result};

/// AWS's `GetRandomPassword` punctuation set.
pub const PUNCTUATION: &str = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";
const LOWER: &str = "abcdefghijklmnopqrstuvwxyz";
const UPPER: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const DIGITS: &str = "0123456789";

/// A uniformly random integer in `0..n`, by rejection sampling. `n` must be positive.
pub(crate) fn uniform_below(n: u64) -> Result<u64> {
    if n <= 1 {
        return Ok(0);
    }
    // Accept only draws below the largest multiple of n, so each residue is equally likely.
    let limit = u64::MAX - (u64::MAX % n);
    loop {
        let mut bytes = [0u8; 8];
        lift_core::fs::random_bytes(&mut bytes)?;
        let draw = u64::from_le_bytes(bytes);
        if draw < limit {
            return Ok(draw % n);
        }
    }
}

/// A uniformly random number in `[0, 1)`, with 53 bits of precision.
pub(crate) fn unit_interval() -> Result<f64> {
    let mut bytes = [0u8; 8];
    lift_core::fs::random_bytes(&mut bytes)?;
    Ok((u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64)
}

/// The options of [`generate_password`], as AWS's `GetRandomPassword` has them.
#[derive(
    Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(default)]
pub struct PasswordPolicy {
    /// The length, 1 to 4096 (default 32).
    pub length: usize,
    /// Characters never to use.
    pub exclude_characters: String,
    /// No digits.
    pub exclude_numbers: bool,
    /// No punctuation.
    pub exclude_punctuation: bool,
    /// No upper-case letters.
    pub exclude_uppercase: bool,
    /// No lower-case letters.
    pub exclude_lowercase: bool,
    /// Allow the space character.
    pub include_space: bool,
    /// At least one character of each included type (lower, upper, digit, punctuation).
    pub require_each_included_type: bool,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        PasswordPolicy {
            length: 32,
            exclude_characters: String::new(),
            exclude_numbers: false,
            exclude_punctuation: false,
            exclude_uppercase: false,
            exclude_lowercase: false,
            include_space: false,
            require_each_included_type: true,
        }
    }
}

impl PasswordPolicy {
    /// The character classes the policy allows, without excluded characters; empty classes are dropped.
    pub fn classes(&self) -> Vec<Vec<char>> {
        let excluded: BTreeSet<char> = self.exclude_characters.chars().collect();
        let mut classes = Vec::new();
        for (set, skip) in [
            (LOWER, self.exclude_lowercase),
            (UPPER, self.exclude_uppercase),
            (DIGITS, self.exclude_numbers),
            (PUNCTUATION, self.exclude_punctuation),
        ] {
            if skip {
                continue;
            }
            let class: Vec<char> = set.chars().filter(|c| !excluded.contains(c)).collect();
            if !class.is_empty() {
                classes.push(class);
            }
        }
        classes
    }

    /// Every character the policy allows.
    pub fn alphabet(&self) -> Vec<char> {
        let mut all: Vec<char> = self.classes().concat();
        if self.include_space && !self.exclude_characters.contains(' ') {
            all.push(' ');
        }
        all
    }
}

/// Generates a password following `GetRandomPassword`'s rules.
///
/// The required characters (one per included type) go to random positions,
/// and every other position is drawn uniformly from the whole alphabet.
pub fn generate_password(policy: &PasswordPolicy) -> Result<SecretValue> {
    policy.validate()?;
    let classes = policy.classes();
    let alphabet = policy.alphabet();
    let mut chars: Zeroizing<Vec<char>> = Zeroizing::new(Vec::with_capacity(policy.length));
    for _ in 0..policy.length {
        chars.push(pick(&alphabet)?);
    }
    if policy.require_each_included_type {
        // A partial Fisher-Yates shuffle picks distinct random positions for the required characters.
        let mut positions: Vec<usize> = (0..policy.length).collect();
        for (i, class) in classes.iter().enumerate() {
            let j = i + index_below(policy.length - i)?;
            positions.swap(i, j);
            chars[positions[i]] = pick(class)?;
        }
    }
    let text: Zeroizing<String> = Zeroizing::new(chars.iter().collect());
    Ok(SecretValue::from(text.as_str()))
}

/// Refuses a token prefix that is not a plain identifier such as `sk_live_`.
fn check_prefix(prefix: &str) -> Result<()> {
    let valid = !prefix.is_empty()
        && prefix.len() <= 64
        && prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if valid {
        Ok(())
    } else {
        Err(Error::InvalidInput(format!(
            "invalid token prefix {:?}: use 1 to 64 characters of A-Za-z0-9_-",
            prefix.chars().take(70).collect::<String>()
        )))
    }
}

impl PasswordPolicy {
    /// Checks that the policy can produce a password.
    pub fn validate(&self) -> Result<()> {
        let policy = self;
        if !(1..=4096).contains(&policy.length) {
            return Err(Error::InvalidInput(format!(
                "password length {} is out of range; use 1 to 4096",
                policy.length
            )));
        }
        let classes = policy.classes();
        let alphabet = policy.alphabet();
        if alphabet.is_empty() {
            return Err(Error::InvalidInput(
                "the password policy excludes every character; allow at least one type".into(),
            ));
        }
        if policy.require_each_included_type && policy.length < classes.len() {
            return Err(Error::InvalidInput(format!(
                "a password of length {} cannot hold one character of each of the {} included types; make it longer",
                policy.length,
                classes.len()
            )));
        }
        Ok(())
    }
}

fn index_below(n: usize) -> Result<usize> {
    // The draw is below n, which came from a usize.
    Ok(usize::try_from(uniform_below(n as u64)?).unwrap_or(0))
}

fn pick(set: &[char]) -> Result<char> {
    set.get(index_below(set.len())?)
        .copied()
        .ok_or_else(|| Error::InvalidInput("cannot pick a character from an empty set".into()))
}

/// How random bytes are written as text.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    /// Lower-case hex.
    Hex,
    /// Upper-case hex.
    HexUpper,
    /// Standard base64 with padding.
    Base64,
    /// Standard base64 without padding.
    Base64NoPad,
    /// URL-safe base64 without padding.
    Base64Url,
}

impl Encoding {
    fn encode(self, bytes: &[u8]) -> String {
        match self {
            Encoding::Hex => hex::encode(bytes),
            Encoding::HexUpper => hex::encode_upper(bytes),
            Encoding::Base64 => STANDARD.encode(bytes),
            Encoding::Base64NoPad => STANDARD_NO_PAD.encode(bytes),
            Encoding::Base64Url => URL_SAFE_NO_PAD.encode(bytes),
        }
    }
}

/// The shape of a secret value, which decides how a rotation generates the next one.
#[derive(
    Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ValueKind {
    /// A password under a policy.
    Password(PasswordPolicy),
    /// `bytes` random bytes, encoded, after an optional prefix (API keys, tokens).
    Token {
        /// How many random bytes.
        bytes: usize,
        /// How they are written.
        encoding: Encoding,
        /// A fixed prefix such as `sk_live_`.
        prefix: Option<String>,
    },
    /// A random (v4) UUID.
    Uuid,
    /// Three dot-separated base64url segments of these lengths, shaped like a JWT.
    JwtLike {
        /// The length of each segment, in characters.
        segments: Vec<usize>,
    },
    /// Random binary bytes.
    Bytes {
        /// How many.
        len: usize,
    },
}

impl Default for ValueKind {
    /// A 32-character password, `GetRandomPassword`'s default.
    fn default() -> Self {
        ValueKind::Password(PasswordPolicy::default())
    }
}

impl ValueKind {
    /// A token of 32 random bytes in base64url, with an optional prefix.
    pub fn token(prefix: Option<&str>) -> Self {
        ValueKind::Token {
            bytes: 32,
            encoding: Encoding::Base64Url,
            prefix: prefix.map(str::to_owned),
        }
    }

    /// The short name: `password`, `token`, `hex`, `base64`, `uuid`, `jwt`, `bytes`.
    pub fn name(&self) -> &'static str {
        match self {
            ValueKind::Password(_) => "password",
            ValueKind::Token {
                encoding: Encoding::Hex | Encoding::HexUpper,
                prefix: None,
                ..
            } => "hex",
            ValueKind::Token {
                encoding: Encoding::Base64 | Encoding::Base64NoPad,
                prefix: None,
                ..
            } => "base64",
            ValueKind::Token { .. } => "token",
            ValueKind::Uuid => "uuid",
            ValueKind::JwtLike { .. } => "jwt",
            ValueKind::Bytes { .. } => "bytes",
        }
    }

    /// What a rotation generates when no kind is declared: a 32-character password
    /// without `/ @ " ' \`, the characters AWS's rotation templates exclude because
    /// connection strings and shells mangle them.
    pub fn rotation_default() -> Self {
        ValueKind::Password(PasswordPolicy {
            exclude_characters: "/@\"'\\".into(),
            ..PasswordPolicy::default()
        })
    }

    /// Checks that values of this kind can be generated, without generating one.
    pub fn validate(&self) -> Result<()> {
        match self {
            ValueKind::Password(policy) => policy.validate(),
            ValueKind::Token { bytes, prefix, .. } => {
                if *bytes == 0 || *bytes > 4096 {
                    return Err(Error::InvalidInput(format!(
                        "a token of {bytes} bytes is out of range; use 1 to 4096"
                    )));
                }
                if let Some(prefix) = prefix {
                    check_prefix(prefix)?;
                }
                Ok(())
            }
            ValueKind::Uuid => Ok(()),
            ValueKind::JwtLike { segments } => {
                if segments.is_empty() || segments.iter().any(|s| *s == 0 || *s > 4096) {
                    return Err(Error::InvalidInput(
                        "a JWT-like value needs segments of 1 to 4096 characters".into(),
                    ));
                }
                Ok(())
            }
            ValueKind::Bytes { len } => {
                if *len == 0 || *len > 65_536 {
                    return Err(Error::InvalidInput(format!(
                        "{len} random bytes is out of range; use 1 to 65536"
                    )));
                }
                Ok(())
            }
        }
    }

    /// Generates a fresh value of this kind.
    pub fn generate(&self) -> Result<SecretValue> {
        self.validate()?;
        match self {
            ValueKind::Password(policy) => generate_password(policy),
            ValueKind::Token {
                bytes,
                encoding,
                prefix,
            } => {
                if *bytes == 0 || *bytes > 4096 {
                    return Err(Error::InvalidInput(format!(
                        "a token of {bytes} bytes is out of range; use 1 to 4096"
                    )));
                }
                let raw = random_bytes(*bytes)?;
                let mut text = Zeroizing::new(prefix.clone().unwrap_or_default());
                text.push_str(&Zeroizing::new(encoding.encode(&raw)));
                Ok(SecretValue::from(text.as_str()))
            }
            ValueKind::Uuid => {
                let mut raw = [0u8; 16];
                lift_core::fs::random_bytes(&mut raw)?;
                let id = uuid::Builder::from_random_bytes(raw).into_uuid();
                Ok(SecretValue::from(id.to_string()))
            }
            ValueKind::JwtLike { segments } => {
                if segments.is_empty() || segments.iter().any(|s| *s == 0 || *s > 4096) {
                    return Err(Error::InvalidInput(
                        "a JWT-like value needs segments of 1 to 4096 characters".into(),
                    ));
                }
                let alphabet: Vec<char> =
                    (LOWER.to_owned() + UPPER + DIGITS + "-_").chars().collect();
                let mut parts: Vec<Zeroizing<String>> = Vec::with_capacity(segments.len());
                for len in segments {
                    let mut part = Zeroizing::new(String::with_capacity(*len));
                    for _ in 0..*len {
                        part.push(pick(&alphabet)?);
                    }
                    parts.push(part);
                }
                let joined = Zeroizing::new(
                    parts
                        .iter()
                        .map(|p| p.as_str())
                        .collect::<Vec<_>>()
                        .join("."),
                );
                Ok(SecretValue::from(joined.as_str()))
            }
            ValueKind::Bytes { len } => {
                if *len == 0 || *len > 65_536 {
                    return Err(Error::InvalidInput(format!(
                        "{len} random bytes is out of range; use 1 to 65536"
                    )));
                }
                Ok(SecretValue::new(random_bytes(*len)?.to_vec()))
            }
        }
    }
}

fn random_bytes(n: usize) -> Result<Zeroizing<Vec<u8>>> {
    let mut raw = Zeroizing::new(vec![0u8; n]);
    lift_core::fs::random_bytes(&mut raw)?;
    Ok(raw)
}

impl fmt::Display for ValueKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ValueKind {
    type Err = Error;

    /// Parses `password[:LEN]`, `token[:BYTES[:PREFIX]]`, `hex[:BYTES]`, `base64[:BYTES]`,
    /// `uuid`, `jwt` or `bytes[:LEN]`, and checks that the kind can be generated.
    fn from_str(s: &str) -> Result<Self> {
        let kind = Self::parse_unchecked(s)?;
        kind.validate()?;
        Ok(kind)
    }
}

impl ValueKind {
    fn parse_unchecked(s: &str) -> Result<Self> {
        let (s, prefix) = match s
            .strip_prefix("token:")
            .and_then(|rest| rest.split_once(':'))
        {
            Some((bytes, prefix)) => {
                check_prefix(prefix)?;
                (&s[..6 + bytes.len()], Some(prefix.to_owned()))
            }
            None => (s, None),
        };
        let (kind, size) = match s.split_once(':') {
            Some((k, n)) => {
                let n: usize = n.parse().map_err(|_| {
                    Error::InvalidInput(format!(
                        "invalid size {n:?} in value kind {s:?}; use a number"
                    ))
                })?;
                (k, Some(n))
            }
            None => (s, None),
        };
        let bytes = size.unwrap_or(32);
        Ok(match kind {
            "password" => ValueKind::Password(PasswordPolicy {
                length: size.unwrap_or(32),
                ..PasswordPolicy::default()
            }),
            "token" | "api-key" => ValueKind::Token {
                bytes,
                encoding: Encoding::Base64Url,
                prefix,
            },
            "hex" => ValueKind::Token {
                bytes,
                encoding: Encoding::Hex,
                prefix: None,
            },
            "base64" => ValueKind::Token {
                bytes,
                encoding: Encoding::Base64,
                prefix: None,
            },
            "uuid" => ValueKind::Uuid,
            "jwt" => ValueKind::JwtLike {
                segments: vec![36, 96, 43],
            },
            "bytes" => ValueKind::Bytes { len: bytes },
            other => {
                return Err(Error::InvalidInput(format!(
                    "unknown value kind {other:?}; use password, token, hex, base64, uuid, jwt or bytes (optionally with :SIZE)"
                )));
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn text(v: &SecretValue) -> String {
        v.expose_str().unwrap().to_owned()
    }

    #[test]
    fn default_password_matches_aws_defaults() {
        let p = text(&generate_password(&PasswordPolicy::default()).unwrap());
        assert_eq!(p.chars().count(), 32);
        assert!(p.chars().any(|c| c.is_ascii_lowercase()));
        assert!(p.chars().any(|c| c.is_ascii_uppercase()));
        assert!(p.chars().any(|c| c.is_ascii_digit()));
        assert!(p.chars().any(|c| PUNCTUATION.contains(c)));
        assert!(!p.contains(' '));
        assert_ne!(
            p,
            text(&generate_password(&PasswordPolicy::default()).unwrap())
        );
    }

    #[test]
    fn impossible_policies_are_refused() {
        let none = PasswordPolicy {
            exclude_numbers: true,
            exclude_punctuation: true,
            exclude_lowercase: true,
            exclude_uppercase: true,
            ..Default::default()
        };
        assert!(generate_password(&none).is_err());
        let short = PasswordPolicy {
            length: 3,
            ..Default::default()
        };
        assert!(
            generate_password(&short)
                .unwrap_err()
                .to_string()
                .contains("length 3")
        );
        assert!(
            generate_password(&PasswordPolicy {
                length: 0,
                ..Default::default()
            })
            .is_err()
        );
    }

    #[test]
    fn kinds_parse_from_the_command_line() {
        assert_eq!(
            "password:20".parse::<ValueKind>().unwrap().name(),
            "password"
        );
        assert_eq!(
            "hex:16"
                .parse::<ValueKind>()
                .unwrap()
                .generate()
                .unwrap()
                .len(),
            32
        );
        assert!("nope".parse::<ValueKind>().is_err());
        assert!("hex:x".parse::<ValueKind>().is_err());
        // Sizes that cannot be generated are refused when parsed, before any rotation starts.
        for bad in [
            "password:0",
            "password:2",
            "hex:0",
            "bytes:0",
            "token:5000",
            "token:8:bad prefix",
        ] {
            assert!(bad.parse::<ValueKind>().is_err(), "{bad}");
        }
        let stripe = "token:24:sk_live_"
            .parse::<ValueKind>()
            .unwrap()
            .generate()
            .unwrap();
        let stripe = text(&stripe);
        assert!(stripe.starts_with("sk_live_"), "a declared prefix is kept");
        assert_eq!(stripe.len(), 8 + 32);
        let default = text(&ValueKind::rotation_default().generate().unwrap());
        assert_eq!(default.chars().count(), 32);
        assert!(!default.contains(['/', '@', '"', '\'', '\\']), "{default}");
    }

    /// The chi-square statistic of `counts` against a uniform distribution.
    fn chi_square(counts: &[u64]) -> f64 {
        let total: u64 = counts.iter().sum();
        let expected = total as f64 / counts.len() as f64;
        counts
            .iter()
            .map(|c| (*c as f64 - expected).powi(2) / expected)
            .sum()
    }

    /// The chi-square critical value for `df` degrees of freedom at z standard deviations
    /// (Wilson-Hilferty approximation).
    fn critical(df: f64, z: f64) -> f64 {
        let a = 2.0 / (9.0 * df);
        df * (1.0 - a + z * a.sqrt()).powi(3)
    }

    #[test]
    fn characters_are_uniform_by_chi_square() {
        // Without required types every position is uniform over the alphabet.
        let policy = PasswordPolicy {
            length: 64,
            require_each_included_type: false,
            include_space: true,
            ..Default::default()
        };
        let alphabet = policy.alphabet();
        let mut counts = vec![0u64; alphabet.len()];
        for _ in 0..3000 {
            for c in text(&generate_password(&policy).unwrap()).chars() {
                counts[alphabet.iter().position(|a| *a == c).unwrap()] += 1;
            }
        }
        // z = 4.75 is a one-sided p of about 1e-6: a false alarm once in a million runs.
        let stat = chi_square(&counts);
        let limit = critical((alphabet.len() - 1) as f64, 4.75);
        assert!(
            stat < limit,
            "chi-square {stat} >= {limit}: biased characters"
        );
        // A generator that drew one character 1.5 times as often must fail the same test.
        let mut biased = counts.clone();
        biased[0] += counts[0] / 2;
        assert!(chi_square(&biased) > critical((alphabet.len() - 1) as f64, 4.75));
    }

    #[test]
    fn uniform_below_is_uniform_for_awkward_sizes() {
        let n = 7u64;
        let mut counts = vec![0u64; n as usize];
        for _ in 0..70_000 {
            counts[uniform_below(n).unwrap() as usize] += 1;
        }
        assert!(chi_square(&counts) < critical(6.0, 4.75));
        let x = unit_interval().unwrap();
        assert!((0.0..1.0).contains(&x));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn generated_passwords_respect_the_policy(
            length in 4usize..80,
            exclude in "[a-zA-Z0-9!-/]{0,12}",
            exclude_numbers: bool,
            exclude_punctuation: bool,
            exclude_uppercase: bool,
            exclude_lowercase: bool,
            include_space: bool,
            require_each: bool,
        ) {
            let policy = PasswordPolicy {
                length, exclude_characters: exclude.clone(), exclude_numbers, exclude_punctuation,
                exclude_uppercase, exclude_lowercase, include_space, require_each_included_type: require_each,
            };
            match generate_password(&policy) {
                Err(_) => prop_assert!(policy.alphabet().is_empty()),
                Ok(value) => {
                    let p = text(&value);
                    prop_assert_eq!(p.chars().count(), length);
                    for c in p.chars() {
                        prop_assert!(!exclude.contains(c), "excluded {c:?} in output");
                        prop_assert!(policy.alphabet().contains(&c));
                    }
                    prop_assert!(!exclude_numbers || !p.chars().any(|c| c.is_ascii_digit()));
                    prop_assert!(!exclude_uppercase || !p.chars().any(|c| c.is_ascii_uppercase()));
                    prop_assert!(!exclude_lowercase || !p.chars().any(|c| c.is_ascii_lowercase()));
                    prop_assert!(!exclude_punctuation || !p.chars().any(|c| PUNCTUATION.contains(c)));
                    prop_assert!(include_space || !p.contains(' '));
                    if require_each {
                        for class in policy.classes() {
                            prop_assert!(p.chars().any(|c| class.contains(&c)), "a required type is missing");
                        }
                    }
                }
            }
        }

        #[test]
        fn tokens_have_the_requested_size(bytes in 1usize..100, prefix in proptest::option::of("[a-z]{1,6}_")) {
            let kind = ValueKind::Token { bytes, encoding: Encoding::Hex, prefix: prefix.clone() };
            let v = text(&kind.generate().unwrap());
            let p = prefix.unwrap_or_default();
            prop_assert!(v.starts_with(&p));
            prop_assert_eq!(v.len(), p.len() + 2 * bytes);
        }
    }
}
