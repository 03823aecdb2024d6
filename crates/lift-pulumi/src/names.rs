//! Validated names that go on the pulumi command line: stacks, config keys, tag names.
//!
//! Validation keeps them from being read as flags (a leading `-`) and keeps
//! control characters out of argv and error messages.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// A stack name: `stack`, `org/stack` or `org/project/stack`, as pulumi reads
/// them (a two-part name is organization and stack, not project and stack;
/// on DIY backends the organization is always `organization`). pulumi
/// resolves the name; lift only checks that it cannot be read as a flag.
///
/// Each `/`-separated part is 1 to 100 characters of `A-Za-z0-9-_.` and does
/// not start with `-` or `.`, so a name can never be mistaken for a flag.
///
/// ```
/// use lift_pulumi::StackName;
///
/// let name: StackName = "acme/api/prod".parse()?;
/// assert_eq!(name.stack(), "prod");
/// assert!("--yes".parse::<StackName>().is_err());
/// # Ok::<(), lift_pulumi::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct StackName(String);

impl StackName {
    /// Validates `name`.
    pub fn new(name: impl Into<String>) -> Result<Self> {
        let name = name.into();
        let parts: Vec<&str> = name.split('/').collect();
        let why = if name.is_empty() {
            Some("it is empty".to_owned())
        } else if parts.len() > 3 {
            Some("it has more than three '/'-separated parts".to_owned())
        } else {
            parts.iter().find_map(|part| part_problem(part))
        };
        match why {
            None => Ok(StackName(name)),
            Some(why) => Err(Error::InvalidInput(format!(
                "invalid stack name {}: {why}; use stack, org/stack or org/project/stack with parts of A-Za-z0-9-_. not starting with '-' or '.'",
                quoted(&name)
            ))),
        }
    }

    /// The full name as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The last part: the stack's own name without org and project.
    pub fn stack(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or(&self.0)
    }
}

fn part_problem(part: &str) -> Option<String> {
    if part.is_empty() {
        return Some("it has an empty part".to_owned());
    }
    if part.len() > 100 {
        return Some("a part is longer than 100 characters".to_owned());
    }
    if part.starts_with('-') || part.starts_with('.') {
        return Some("a part starts with '-' or '.'".to_owned());
    }
    part.chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "-_.".contains(*c)))
        .map(|c| format!("the character {c:?} is not allowed"))
}

impl FromStr for StackName {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        StackName::new(s)
    }
}

impl fmt::Display for StackName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for StackName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        StackName::new(String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// Checks a config key (`key`, `namespace:key`, or a `--path` like `ns:a.b[0]`) or a tag name.
///
/// It must be non-empty, at most 1,024 bytes, free of control characters and
/// must not start with `-`.
pub(crate) fn check_key(what: &str, key: &str) -> Result<()> {
    let why = if key.is_empty() {
        Some("it is empty")
    } else if key.len() > 1024 {
        Some("it is longer than 1024 bytes")
    } else if key.starts_with('-') {
        Some("it starts with '-'")
    } else if key.chars().any(char::is_control) {
        Some("it contains a control character")
    } else {
        None
    };
    match why {
        None => Ok(()),
        Some(why) => Err(Error::InvalidInput(format!(
            "invalid {what} {}: {why}",
            quoted(key)
        ))),
    }
}

/// Quotes user input for an error message, shortened and with escapes.
fn quoted(input: &str) -> String {
    let short: String = input.chars().take(64).collect();
    if short.len() < input.len() {
        format!("{short:?}...")
    } else {
        format!("{short:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn stack_names_are_validated() {
        for good in [
            "dev",
            "my-proj/dev",
            "acme/my_proj/prod.eu",
            "organization/p/s1",
        ] {
            assert!(StackName::new(good).is_ok(), "{good}");
        }
        for bad in ["", "-x", "a//b", "a/b/c/d", "a b", ".hidden", "a/-b", "x\n"] {
            let err = StackName::new(bad).unwrap_err();
            assert!(err.to_string().starts_with("invalid stack name"), "{bad}");
        }
        assert_eq!(StackName::new("o/p/s").unwrap().stack(), "s");
        let parsed: std::result::Result<StackName, _> = serde_json::from_str("\"-rf\"");
        assert!(parsed.is_err());
    }

    #[test]
    fn keys_refuse_flags_and_control_characters() {
        assert!(check_key("config key", "aws:region").is_ok());
        assert!(check_key("config key", "app:list[0].name").is_ok());
        assert!(check_key("config key", "--secret").is_err());
        assert!(check_key("config key", "a\u{7}b").is_err());
        assert!(check_key("tag name", "").is_err());
    }

    proptest! {
        #[test]
        fn valid_names_never_look_like_flags(name in "[A-Za-z0-9_.-]{1,20}(/[A-Za-z0-9_.-]{1,20}){0,2}") {
            if let Ok(parsed) = StackName::new(name.clone()) {
                prop_assert!(!parsed.as_str().starts_with('-'));
                prop_assert_eq!(parsed.as_str(), name.as_str());
            }
        }
    }
}
