//! An environment's settings as command-line defaults, and where each
//! resolved value came from.

use clap::parser::ValueSource;
use clap::{ArgMatches, Command};

use super::file::{EnvironmentConfig, LoadedConfig};

/// One setting of an environment and the flag it stands for.
#[derive(Debug, Clone)]
pub(crate) struct Setting {
    /// The key in the file, such as `secrets.path`.
    pub(crate) key: &'static str,
    /// The subcommand that owns the flag (`None`: a global flag).
    subcommand: Option<&'static str>,
    /// The flag's clap id.
    arg: &'static str,
    /// The flag as typed.
    pub(crate) flag: &'static str,
    /// The variable that can give it too.
    pub(crate) variable: Option<&'static str>,
    /// Whether clap reads that variable itself (else the command does).
    clap_reads_variable: bool,
    /// The value in the file, resolved (paths made absolute).
    pub(crate) value: Option<String>,
}

/// Where a resolved value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Source {
    /// A command-line flag.
    Flag,
    /// An environment variable.
    Variable,
    /// The config file.
    File,
}

impl Source {
    /// The source's name.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Source::Flag => "flag",
            Source::Variable => "variable",
            Source::File => "file",
        }
    }
}

/// Every setting an environment can give, with its value from the file.
pub(crate) fn settings_of(env: &EnvironmentConfig, loaded: &LoadedConfig) -> Vec<Setting> {
    let path = |p: &Option<std::path::PathBuf>| {
        p.as_deref()
            .map(|p| loaded.resolve(p).display().to_string())
    };
    let setting = |key, subcommand, arg, flag, variable, clap_reads_variable, value| Setting {
        key,
        subcommand,
        arg,
        flag,
        variable,
        clap_reads_variable,
        value,
    };
    let secrets = env.secrets.clone().unwrap_or_default();
    let aws = secrets.aws.clone();
    let audit = env.audit.clone().unwrap_or_default();
    let deploy = env.deploy.clone().unwrap_or_default();
    let health = env.health.clone().unwrap_or_default();
    let flag_on = |on: bool| on.then(|| "true".to_owned());
    vec![
        setting(
            "secrets.path",
            Some("secrets"),
            "store",
            "--store",
            Some("LIFT_SECRETS_STORE"),
            true,
            path(&secrets.path),
        ),
        setting(
            "secrets.key_file",
            Some("secrets"),
            "key_file",
            "--key-file",
            Some("LIFT_SECRETS_KEY_FILE"),
            false,
            path(&secrets.key_file),
        ),
        setting(
            "secrets.plaintext",
            Some("secrets"),
            "plaintext",
            "--plaintext",
            None,
            false,
            flag_on(secrets.plaintext),
        ),
        setting(
            "secrets.aws",
            Some("secrets"),
            "aws",
            "--aws",
            None,
            false,
            flag_on(aws.is_some()),
        ),
        setting(
            "secrets.aws.region",
            Some("secrets"),
            "region",
            "--region",
            Some("AWS_REGION"),
            false,
            aws.as_ref().and_then(|a| a.region.clone()),
        ),
        setting(
            "secrets.aws.prefix",
            Some("secrets"),
            "prefix",
            "--prefix",
            None,
            false,
            aws.as_ref().and_then(|a| a.prefix.clone()),
        ),
        setting(
            "secrets.aws.endpoint_url",
            Some("secrets"),
            "endpoint_url",
            "--endpoint-url",
            Some("AWS_ENDPOINT_URL"),
            false,
            aws.as_ref().and_then(|a| a.endpoint_url.clone()),
        ),
        setting(
            "audit.log",
            None,
            "audit_log",
            "--audit-log",
            Some("LIFT_AUDIT_LOG"),
            true,
            path(&audit.log),
        ),
        setting(
            "audit.key_file",
            None,
            "audit_key_file",
            "--audit-key-file",
            Some("LIFT_AUDIT_KEY_FILE"),
            true,
            path(&audit.key_file),
        ),
        setting(
            "audit.checkpoint",
            None,
            "audit_checkpoint",
            "--audit-checkpoint",
            Some("LIFT_AUDIT_CHECKPOINT"),
            true,
            path(&audit.checkpoint),
        ),
        setting(
            "audit.signing_key",
            None,
            "audit_signing_key",
            "--audit-signing-key",
            Some("LIFT_AUDIT_SIGNING_KEY_FILE"),
            true,
            path(&audit.signing_key),
        ),
        setting(
            "audit.s3",
            None,
            "audit_s3",
            "--audit-s3",
            Some("LIFT_AUDIT_S3"),
            true,
            audit.s3.clone(),
        ),
        setting(
            "deploy.project_dir",
            Some("deploy"),
            "cwd",
            "--cwd",
            None,
            false,
            path(&deploy.project_dir),
        ),
        setting(
            "deploy.stack",
            Some("deploy"),
            "stack",
            "--stack",
            Some("LIFT_STACK"),
            true,
            deploy.stack.clone(),
        ),
        setting(
            "deploy.backend_url",
            Some("deploy"),
            "backend_url",
            "--backend-url",
            Some("PULUMI_BACKEND_URL"),
            false,
            deploy.backend_url.clone(),
        ),
        setting(
            "health.url",
            Some("health"),
            "url",
            "--url",
            None,
            false,
            health.url.clone(),
        ),
    ]
}

/// The flags given on the first parse that make a file setting not apply:
/// an explicit `--aws` turns the file store off, an explicit file store
/// turns the file's `aws` off, `--plaintext` and `--key-file` exclude each
/// other, and `--pid` or `--endpoint` keep `health` on its own target.
fn blocked(setting: &Setting, first: &ArgMatches) -> bool {
    let explicit = |sub: &str, id: &str| {
        first.subcommand_matches(sub).is_some_and(|m| {
            m.try_contains_id(id).unwrap_or(false)
                && m.value_source(id) == Some(ValueSource::CommandLine)
        })
    };
    let from_variable = |sub: &str, id: &str| {
        first
            .subcommand_matches(sub)
            .is_some_and(|m| m.value_source(id) == Some(ValueSource::EnvVariable))
    };
    match setting.key {
        "secrets.path" => explicit("secrets", "aws"),
        // An explicit --plaintext drops the file's key, and an explicit key
        // the file's plaintext.
        "secrets.key_file" => explicit("secrets", "aws") || explicit("secrets", "plaintext"),
        "secrets.plaintext" => explicit("secrets", "aws") || explicit("secrets", "key_file"),
        key if key.starts_with("secrets.aws") => {
            explicit("secrets", "store")
                || from_variable("secrets", "store")
                || explicit("secrets", "key_file")
                || explicit("secrets", "plaintext")
        }
        "health.url" => explicit("health", "pid") || explicit("health", "endpoint"),
        _ => false,
    }
}

/// `command` with the environment's settings as the defaults of their flags.
///
/// A setting whose variable is set and that clap does not read is left
/// out, so that the variable keeps beating the file.
pub(crate) fn with_defaults(
    mut command: Command,
    env: &EnvironmentConfig,
    loaded: &LoadedConfig,
    first: &ArgMatches,
) -> Command {
    for setting in settings_of(env, loaded) {
        let Some(value) = setting.value.clone() else {
            continue;
        };
        if blocked(&setting, first) {
            continue;
        }
        if !setting.clap_reads_variable
            && setting
                .variable
                .is_some_and(|name| std::env::var_os(name).is_some_and(|v| !v.is_empty()))
        {
            continue;
        }
        command = match setting.subcommand {
            None => command.mut_arg(setting.arg, |arg| arg.default_value(value)),
            Some(sub) => command.mut_subcommand(sub, |subcommand| {
                subcommand.mut_arg(setting.arg, |arg| arg.default_value(value))
            }),
        };
    }
    command
}

/// A setting's value as resolved for a command, and where it came from.
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
pub(crate) struct Resolved {
    /// The key in the file, such as `audit.log`.
    pub(crate) key: &'static str,
    /// The value (none is ever a secret: paths, names and URLs, with any
    /// password in a URL hidden).
    pub(crate) value: String,
    /// Where it came from.
    pub(crate) source: Source,
    /// The flag that overrides it.
    pub(crate) flag: &'static str,
    /// The variable that overrides it, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) variable: Option<&'static str>,
}

/// What an environment resolves to for a command line whose matches are
/// `matches`: each setting from a flag, a variable or the file.
pub(crate) fn resolve(settings: &[Setting], matches: &ArgMatches) -> Vec<Resolved> {
    settings
        .iter()
        .filter_map(|setting| {
            let given = |source: ValueSource| {
                let m = match setting.subcommand {
                    None => Some(matches),
                    Some(sub) => matches.subcommand_matches(sub),
                }?;
                if !m.try_contains_id(setting.arg).unwrap_or(false)
                    || m.value_source(setting.arg) != Some(source)
                {
                    return None;
                }
                m.get_raw(setting.arg)?
                    .next()
                    .map(|v| v.to_string_lossy().into_owned())
            };
            let variable = setting.variable.and_then(|name| {
                std::env::var(name)
                    .ok()
                    .filter(|value| !value.is_empty())
                    .map(|value| (name, value))
            });
            let (value, source) = if let Some(value) = given(ValueSource::CommandLine) {
                (value, Source::Flag)
            } else if let Some((_, value)) = variable {
                (value, Source::Variable)
            } else {
                (setting.value.clone()?, Source::File)
            };
            Some(Resolved {
                key: setting.key,
                value: hide_url_password(&value),
                source,
                flag: setting.flag,
                variable: setting.variable,
            })
        })
        .collect()
}

/// A URL with any password in it replaced by `***`: `s3://u:p@h` → `s3://u:***@h`.
pub(crate) fn hide_url_password(value: &str) -> String {
    let Some((scheme, rest)) = value.split_once("://") else {
        return value.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let Some((userinfo, host)) = authority.rsplit_once('@') else {
        return value.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _password)) => format!("{scheme}://{user}:***@{host}{tail}"),
        None => value.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_in_urls_are_hidden() {
        assert_eq!(hide_url_password("s3://bucket/x"), "s3://bucket/x");
        assert_eq!(
            hide_url_password("https://u:secret@host:1/p?q=1"),
            "https://u:***@host:1/p?q=1"
        );
        assert_eq!(hide_url_password("https://u@host/p"), "https://u@host/p");
        assert_eq!(hide_url_password("/plain/path"), "/plain/path");
    }
}
