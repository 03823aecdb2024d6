//! Command-line parsing in the style of cobra/pflag, which the real `pulumi` uses.
//!
//! Flags may appear anywhere (before or after the sub-command words), in the forms `--name value`,
//! `--name=value`, `-s value` and, for booleans, `--name` or `--name=false`. A lone `--` ends the flags:
//! everything after it is positional, which is how Pulumi's Go SDK passes a config value that starts with `-`.

use std::collections::BTreeMap;

use crate::error::CliError;

/// Flags that take a value. Anything else that is known is a boolean flag.
const VALUE_FLAGS: &[&str] = &[
    "stack",
    "event-log",
    "message",
    "target",
    "exclude",
    "replace",
    "parallel",
    "color",
    "config-file",
    "exec-kind",
    "exec-agent",
    "page-size",
    "page",
    "file",
    "secrets-provider",
    "cwd",
    "client",
    "policy-pack",
    "policy-pack-config",
    "plan",
    "save-plan",
    "import-file",
    "verbose",
    "tracing",
    "type",
    "dest",
    "copy-config-from",
    "organization",
    "project",
    "tag",
    "profiling",
    "memprofilerate",
    "out",
    "from",
];

/// Boolean flags that the emulated commands accept.
const BOOL_FLAGS: &[&str] = &[
    "non-interactive",
    "yes",
    "skip-preview",
    "target-dependents",
    "exclude-dependents",
    "expect-no-changes",
    "refresh",
    "diff",
    "continue-on-error",
    "json",
    "show-secrets",
    "path",
    "secret",
    "plaintext",
    "raw",
    "force",
    "preview-only",
    "suppress-outputs",
    "suppress-progress",
    "show-config",
    "show-replacement-steps",
    "show-sames",
    "show-reads",
    "no-select",
    "all",
    "remove",
    "logtostderr",
    "logflow",
    "emoji",
    "attach-debugger",
    "run-program",
    "skip-pending-creates",
    "clear-pending-creates",
    "full-dates",
    "preserve-config",
    "shell",
    "open",
    "debug",
    "disable-integrity-checking",
    "fully-qualify-stack-names",
    "protect",
    "generate-code",
    "help",
    "create",
];

/// Maps single-letter short flags to their long names.
fn short_flag(c: char) -> Option<&'static str> {
    Some(match c {
        's' => "stack",
        'm' => "message",
        't' => "target",
        'p' => "parallel",
        'y' => "yes",
        'j' => "json",
        'f' => "force",
        'r' => "refresh",
        'C' => "cwd",
        'v' => "verbose",
        'a' => "all",
        'd' => "dest",
        'h' => "help",
        'o' => "organization",
        _ => return None,
    })
}

/// A parsed command line: the positional words and every flag occurrence.
#[derive(Debug, Default, Clone)]
pub(crate) struct Args {
    /// Positional words, sub-command names included, in order.
    pub(crate) positional: Vec<String>,
    /// Every flag value by long name, in order of appearance (booleans are `"true"`/`"false"`).
    flags: BTreeMap<String, Vec<String>>,
}

impl Args {
    /// Parses `argv` (without the program name).
    pub(crate) fn parse(argv: &[String]) -> Result<Args, CliError> {
        Args::parse_with(argv, &[])
    }

    /// Parses with some one-letter flags meaning something else, as a command may declare them
    /// (in `stack ls`, `-p` is `--project` and `-t` is `--tag`).
    pub(crate) fn parse_with(
        argv: &[String],
        shorts: &[(char, &'static str)],
    ) -> Result<Args, CliError> {
        let mut out = Args::default();
        let mut i = 0;
        let mut only_positional = false;
        while i < argv.len() {
            let arg = &argv[i];
            i += 1;
            if only_positional || arg == "-" || !arg.starts_with('-') {
                out.positional.push(arg.clone());
                continue;
            }
            if arg == "--" {
                only_positional = true;
                continue;
            }
            let (name, inline) = if let Some(long) = arg.strip_prefix("--") {
                match long.split_once('=') {
                    Some((n, v)) => (n.to_owned(), Some(v.to_owned())),
                    None => (long.to_owned(), None),
                }
            } else {
                let body = &arg[1..];
                let mut chars = body.chars();
                let first = chars.next().unwrap_or('-');
                let rest: String = chars.collect();
                let own = shorts.iter().find(|(c, _)| *c == first).map(|(_, l)| *l);
                let Some(long) = own.or_else(|| short_flag(first)) else {
                    return Err(CliError::usage(format!(
                        "unknown shorthand flag: '{first}' in {arg}"
                    )));
                };
                let inline = if rest.is_empty() {
                    None
                } else {
                    Some(rest.strip_prefix('=').unwrap_or(&rest).to_owned())
                };
                (long.to_owned(), inline)
            };
            if VALUE_FLAGS.contains(&name.as_str()) {
                let value = match inline {
                    Some(v) => v,
                    None => {
                        let Some(v) = argv.get(i) else {
                            return Err(CliError::usage(format!(
                                "flag needs an argument: --{name}"
                            )));
                        };
                        i += 1;
                        v.clone()
                    }
                };
                out.flags.entry(name).or_default().push(value);
            } else if BOOL_FLAGS.contains(&name.as_str()) {
                let value = match inline.as_deref() {
                    None | Some("true") | Some("1") | Some("t") | Some("T") | Some("TRUE") => {
                        "true"
                    }
                    Some("false") | Some("0") | Some("f") | Some("F") | Some("FALSE") => "false",
                    Some(other) => {
                        return Err(CliError::usage(format!(
                            "invalid argument \"{other}\" for \"--{name}\" flag: strconv.ParseBool: parsing \"{other}\": invalid syntax"
                        )));
                    }
                };
                out.flags.entry(name).or_default().push(value.to_owned());
            } else {
                return Err(CliError::usage(format!("unknown flag: --{name}")));
            }
        }
        Ok(out)
    }

    /// The last value given for a value flag.
    pub(crate) fn value(&self, name: &str) -> Option<&str> {
        self.flags
            .get(name)
            .and_then(|v| v.last())
            .map(String::as_str)
    }

    /// Every value given for a repeatable value flag.
    pub(crate) fn values(&self, name: &str) -> Vec<String> {
        self.flags.get(name).cloned().unwrap_or_default()
    }

    /// Whether a boolean flag is set (its last occurrence wins).
    pub(crate) fn bool(&self, name: &str) -> bool {
        self.value(name) == Some("true")
    }

    /// Whether the flag appeared at all.
    /// Every flag given, by its long name, with its value for `stack history`'s environment: a
    /// boolean's value, else `set`.
    pub(crate) fn given(&self) -> impl Iterator<Item = (&str, &str)> {
        self.flags.iter().map(|(name, values)| {
            let shown = if BOOL_FLAGS.contains(&name.as_str()) {
                values.last().map_or("true", String::as_str)
            } else {
                "set"
            };
            (name.as_str(), shown)
        })
    }

    pub(crate) fn has(&self, name: &str) -> bool {
        self.flags.contains_key(name)
    }

    /// Parses an integer flag.
    pub(crate) fn int(&self, name: &str) -> Result<Option<i64>, CliError> {
        match self.value(name) {
            None => Ok(None),
            Some(v) => v.parse::<i64>().map(Some).map_err(|_| {
                CliError::usage(format!(
                    "invalid argument \"{v}\" for \"--{name}\" flag: strconv.ParseInt: parsing \"{v}\": invalid syntax"
                ))
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, CliError> {
        Args::parse(&args.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
    }

    #[test]
    fn flags_in_every_form_are_understood() {
        let a = parse(&[
            "up",
            "--yes",
            "--stack",
            "dev",
            "--target=urn:a",
            "-t",
            "urn:b",
            "--parallel=4",
            "--diff=false",
            "-j",
        ])
        .unwrap();
        assert_eq!(a.positional, vec!["up"]);
        assert_eq!(a.value("stack"), Some("dev"));
        assert_eq!(a.values("target"), vec!["urn:a", "urn:b"]);
        assert_eq!(a.int("parallel").unwrap(), Some(4));
        assert!(a.bool("yes"));
        assert!(a.bool("json"));
        assert!(!a.bool("diff"));
        assert!(a.has("diff"));
    }

    #[test]
    fn double_dash_makes_the_rest_positional() {
        let a = parse(&[
            "config",
            "set",
            "k",
            "--plaintext",
            "--",
            "--looks-like-a-flag",
        ])
        .unwrap();
        assert_eq!(
            a.positional,
            vec!["config", "set", "k", "--looks-like-a-flag"]
        );
        assert!(a.bool("plaintext"));
    }

    #[test]
    fn unknown_and_incomplete_flags_are_rejected() {
        assert!(
            parse(&["up", "--frobnicate"])
                .unwrap_err()
                .message
                .contains("unknown flag")
        );
        assert!(
            parse(&["up", "--stack"])
                .unwrap_err()
                .message
                .contains("needs an argument")
        );
        assert!(parse(&["up", "--yes=maybe"]).is_err());
    }
}
