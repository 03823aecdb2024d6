//! The policy of an environment, and the refusals it makes.
//!
//! A production-class environment turns every rule on; a rule written in
//! the environment's `policy` table overrides what the class implies. Each
//! refusal is bad input (exit 2) and names the rule and the line of
//! `lift.toml` that set it.

use clap::ArgMatches;
use lift::{Error, ErrorKind};
use toml::Spanned;

use super::file::{EnvironmentClass, EnvironmentConfig, LoadedConfig};

/// One rule: whether it is on, and what set it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Rule {
    /// Whether the rule is enforced.
    pub(crate) on: bool,
    /// `lift.toml:LINE (what the line says)`, when the file set it.
    pub(crate) set_by: Option<String>,
}

/// What an environment's policy enforces.
#[derive(Debug, Clone, Default)]
pub(crate) struct Policy {
    /// The environment's class.
    pub(crate) class: Option<EnvironmentClass>,
    /// Refuse an unencrypted secret store.
    pub(crate) refuse_plaintext_store: Rule,
    /// Refuse fault injection.
    pub(crate) refuse_fault_injection: Rule,
    /// Refuse `audit verify --allow-unanchored`.
    pub(crate) refuse_allow_unanchored: Rule,
    /// Refuse a state-changing command without an audit log.
    pub(crate) require_audit_log: Rule,
    /// Make destroy ask for the stack name.
    pub(crate) confirm_destroy: Rule,
}

/// The commands that change state, as `(command, subcommand path)`.
const STATE_CHANGING: &[&[&str]] = &[
    &["secrets", "put"],
    &["secrets", "rotate"],
    &["secrets", "resume"],
    &["secrets", "cancel"],
    &["secrets", "delete"],
    &["secrets", "restore"],
    &["deploy", "init"],
    &["deploy", "rm"],
    &["deploy", "up"],
    &["deploy", "refresh"],
    &["deploy", "destroy"],
    &["deploy", "cancel"],
    &["deploy", "import"],
    &["deploy", "config", "set"],
    &["deploy", "config", "rm"],
    &["deploy", "tag", "set"],
    &["deploy", "tag", "rm"],
];

impl Policy {
    /// The policy an environment's table gives.
    pub(crate) fn of(env: &EnvironmentConfig, loaded: &LoadedConfig) -> Policy {
        let class = env.class.as_ref();
        let production = class.is_some_and(|c| *c.get_ref() == EnvironmentClass::Production);
        let class_rule = || Rule {
            on: production,
            set_by: class.filter(|_| production).map(|c| {
                format!(
                    "{} (class = \"{}\")",
                    loaded.location(c.span().start),
                    c.get_ref().as_str()
                )
            }),
        };
        let rule = |explicit: &Option<Spanned<bool>>, name: &str| match explicit {
            Some(value) => Rule {
                on: *value.get_ref(),
                set_by: Some(format!(
                    "{} ({name} = {})",
                    loaded.location(value.span().start),
                    value.get_ref()
                )),
            },
            None => class_rule(),
        };
        let p = &env.policy;
        Policy {
            class: class.map(|c| *c.get_ref()),
            refuse_plaintext_store: rule(&p.refuse_plaintext_store, "refuse_plaintext_store"),
            refuse_fault_injection: rule(&p.refuse_fault_injection, "refuse_fault_injection"),
            refuse_allow_unanchored: rule(&p.refuse_allow_unanchored, "refuse_allow_unanchored"),
            require_audit_log: rule(&p.require_audit_log, "require_audit_log"),
            confirm_destroy: rule(&p.confirm_destroy, "confirm_destroy"),
        }
    }

    /// The rules as `(name, rule)`, in a stable order.
    pub(crate) fn rules(&self) -> [(&'static str, &Rule); 5] {
        [
            ("refuse_plaintext_store", &self.refuse_plaintext_store),
            ("refuse_fault_injection", &self.refuse_fault_injection),
            ("refuse_allow_unanchored", &self.refuse_allow_unanchored),
            ("require_audit_log", &self.require_audit_log),
            ("confirm_destroy", &self.confirm_destroy),
        ]
    }

    /// Refuses the command `matches` describes if the policy forbids it.
    pub(crate) fn check(&self, environment: &str, matches: &ArgMatches) -> lift::Result<()> {
        let path = subcommand_path(matches);
        let path: Vec<&str> = path.iter().map(|(name, _)| *name).collect();
        let leaf = subcommand_leaf(matches);
        let flag = |id: &str| {
            leaf.and_then(|m| m.try_get_one::<bool>(id).ok().flatten().copied())
                .unwrap_or(false)
        };
        let given = |id: &str| {
            leaf.is_some_and(|m| {
                m.try_get_raw(id)
                    .ok()
                    .flatten()
                    .is_some_and(|mut values| values.next().is_some())
            })
        };
        if path.first() == Some(&"secrets")
            && self.refuse_plaintext_store.on
            && secrets_flag(matches, "plaintext")
        {
            return Err(refusal(
                environment,
                "refuse_plaintext_store",
                &self.refuse_plaintext_store,
                "an unencrypted (--plaintext) secret store",
                "use an encrypted store (--key-file) or AWS Secrets Manager (--aws)",
            ));
        }
        if self.refuse_fault_injection.on && given("inject_fault") {
            return Err(refusal(
                environment,
                "refuse_fault_injection",
                &self.refuse_fault_injection,
                "fault injection (--inject-fault)",
                "rehearse failures in a development environment",
            ));
        }
        if self.refuse_allow_unanchored.on
            && path == ["audit", "verify"]
            && flag("allow_unanchored")
        {
            return Err(refusal(
                environment,
                "refuse_allow_unanchored",
                &self.refuse_allow_unanchored,
                "accepting unanchored audit records (--allow-unanchored)",
                "give the checkpoint with --checkpoint, or investigate why it is missing",
            ));
        }
        if self.require_audit_log.on
            && STATE_CHANGING.contains(&path.as_slice())
            && matches.try_get_raw("audit_log").ok().flatten().is_none()
            && matches.try_get_raw("audit_s3").ok().flatten().is_none()
        {
            return Err(refusal(
                environment,
                "require_audit_log",
                &self.require_audit_log,
                &format!("`lift {}` without an audit log", path.join(" ")),
                "give one with --audit-log / LIFT_AUDIT_LOG (or --audit-s3), or set audit.log (or audit.s3) for the environment",
            ));
        }
        Ok(())
    }
}

/// Whether the `secrets` command's `id` flag is on.
fn secrets_flag(matches: &ArgMatches, id: &str) -> bool {
    matches
        .subcommand_matches("secrets")
        .and_then(|m| m.try_get_one::<bool>(id).ok().flatten().copied())
        .unwrap_or(false)
}

/// The names of the subcommands `matches` selects, outermost first.
fn subcommand_path(matches: &ArgMatches) -> Vec<(&str, &ArgMatches)> {
    let mut path = Vec::new();
    let mut current = matches;
    while let Some((name, sub)) = current.subcommand() {
        path.push((name, sub));
        current = sub;
    }
    path
}

/// The innermost subcommand's matches.
fn subcommand_leaf(matches: &ArgMatches) -> Option<&ArgMatches> {
    subcommand_path(matches).last().map(|(_, m)| *m)
}

/// The error for a refusal: bad input, naming the rule and what set it.
pub(crate) fn refusal(
    environment: &str,
    rule_name: &str,
    rule: &Rule,
    what: &str,
    instead: &str,
) -> Error {
    let set_by = rule
        .set_by
        .as_deref()
        .map_or_else(String::new, |by| format!(", set by {by}"));
    Error::new(
        ErrorKind::InvalidInput,
        format!(
            "environment {environment:?} refuses {what} (policy {rule_name}{set_by}); {instead}"
        ),
    )
}
