//! `lift env`: the environments of the project config, and what one resolves to.

use clap::{Args, Subcommand};
use lift::{Error, ErrorKind};
use serde::Serialize;

use crate::context::Context;
use crate::project::settings::{Resolved, resolve, settings_of};
use crate::project::{LoadedConfig, Policy};

/// Arguments of `lift env`.
#[derive(Debug, Args)]
pub struct EnvArgs {
    /// The operation.
    #[command(subcommand)]
    pub op: EnvOp,
}

/// A `lift env` operation.
#[derive(Debug, Subcommand)]
pub enum EnvOp {
    /// List the environments of the project config (lift.toml).
    Ls,
    /// Show what an environment resolves to, and where each value comes from
    /// (flag, variable or file). No value shown is a secret.
    Show {
        /// The environment (default: the selected one, from --env, LIFT_ENV or
        /// the file's default_environment).
        name: Option<String>,
    },
}

/// `lift env ls --json`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub(crate) struct EnvListDocument {
    /// The config file.
    pub(crate) config: String,
    /// The environment selected for this command, if any.
    pub(crate) selected: Option<String>,
    /// The file's default environment, if any.
    pub(crate) default_environment: Option<String>,
    /// Every environment, by name.
    pub(crate) environments: Vec<EnvSummary>,
}

/// One environment in `lift env ls`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub(crate) struct EnvSummary {
    /// Its name.
    pub(crate) name: String,
    /// `development` or `production`.
    pub(crate) class: String,
    /// The policy rules that are on.
    pub(crate) rules: Vec<String>,
}

/// `lift env show --json`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub(crate) struct EnvShowDocument {
    /// The config file.
    pub(crate) config: String,
    /// The environment.
    pub(crate) name: String,
    /// `development` or `production`.
    pub(crate) class: String,
    /// Each setting, resolved.
    pub(crate) settings: Vec<ResolvedSetting>,
    /// Each policy rule.
    pub(crate) policy: Vec<RuleDocument>,
}

/// One resolved setting.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub(crate) struct ResolvedSetting {
    /// The key in the file, such as `audit.log`.
    pub(crate) key: String,
    /// The value (paths, names and URLs; a password in a URL is hidden).
    pub(crate) value: String,
    /// `flag`, `variable` or `file`.
    pub(crate) source: String,
    /// The flag that overrides it.
    pub(crate) flag: String,
    /// The variable that overrides it, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) variable: Option<String>,
}

/// One policy rule.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub(crate) struct RuleDocument {
    /// The rule's name.
    pub(crate) rule: String,
    /// Whether it is enforced.
    pub(crate) on: bool,
    /// `lift.toml:LINE (what the line says)`, when the file set it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) set_by: Option<String>,
}

/// Runs `lift env`.
pub(crate) fn run(args: EnvArgs, ctx: &Context) -> lift::Result<u8> {
    let Some(loaded) = ctx.project.as_ref() else {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "no lift.toml found in the working directory or its parents; create one (see docs/operations.md#environments) or give it with --config",
        ));
    };
    match args.op {
        EnvOp::Ls => list(loaded, ctx),
        EnvOp::Show { name } => {
            let name = name.or_else(|| ctx.environment.clone()).ok_or_else(|| {
                Error::new(
                    ErrorKind::InvalidInput,
                    "no environment selected: name one (`lift env show NAME`), or select one with --env / LIFT_ENV",
                )
            })?;
            show(loaded, &name, ctx)
        }
    }
}

fn class_name(policy: &Policy) -> String {
    policy.class.unwrap_or_default().as_str().to_owned()
}

fn list(loaded: &LoadedConfig, ctx: &Context) -> lift::Result<u8> {
    let environments: Vec<EnvSummary> = loaded
        .config
        .environments
        .iter()
        .map(|(name, env)| {
            let policy = Policy::of(env, loaded);
            EnvSummary {
                name: name.clone(),
                class: class_name(&policy),
                rules: policy
                    .rules()
                    .iter()
                    .filter(|(_, rule)| rule.on)
                    .map(|(rule, _)| (*rule).to_owned())
                    .collect(),
            }
        })
        .collect();
    let document = EnvListDocument {
        config: loaded.path.display().to_string(),
        selected: ctx.environment.clone(),
        default_environment: loaded.config.default_environment.clone(),
        environments,
    };
    if ctx.json {
        ctx.emit_json(&document)?;
        return Ok(0);
    }
    ctx.say(format!("config: {}", document.config));
    ctx.say(format!("{:<3}{:<20} {:<12} RULES", "", "NAME", "CLASS"));
    for env in &document.environments {
        let marker = if document.selected.as_deref() == Some(&env.name) {
            "*"
        } else {
            ""
        };
        let rules = if env.rules.is_empty() {
            "-".to_owned()
        } else {
            env.rules.join(", ")
        };
        ctx.say(format!(
            "{marker:<3}{:<20} {:<12} {rules}",
            env.name, env.class
        ));
    }
    Ok(0)
}

fn show(loaded: &LoadedConfig, name: &str, ctx: &Context) -> lift::Result<u8> {
    let Some(env) = loaded.config.environments.get(name) else {
        let known: Vec<&str> = loaded
            .config
            .environments
            .keys()
            .map(String::as_str)
            .collect();
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!(
                "{} has no environment {name:?}; it defines: {}",
                loaded.path.display(),
                known.join(", ")
            ),
        ));
    };
    let policy = Policy::of(env, loaded);
    let settings: Vec<Resolved> = resolve(&settings_of(env, loaded), &ctx.matches);
    let document = EnvShowDocument {
        config: loaded.path.display().to_string(),
        name: name.to_owned(),
        class: class_name(&policy),
        settings: settings
            .into_iter()
            .map(|s| ResolvedSetting {
                key: s.key.to_owned(),
                value: s.value,
                source: s.source.as_str().to_owned(),
                flag: s.flag.to_owned(),
                variable: s.variable.map(str::to_owned),
            })
            .collect(),
        policy: policy
            .rules()
            .iter()
            .map(|(rule, r)| RuleDocument {
                rule: (*rule).to_owned(),
                on: r.on,
                set_by: r.set_by.clone(),
            })
            .collect(),
    };
    if ctx.json {
        ctx.emit_json(&document)?;
        return Ok(0);
    }
    ctx.say(format!(
        "environment {} ({}) from {}",
        document.name, document.class, document.config
    ));
    ctx.say(format!("{:<28} {:<9} VALUE", "SETTING", "SOURCE"));
    for s in &document.settings {
        ctx.say(format!("{:<28} {:<9} {}", s.key, s.source, s.value));
    }
    ctx.say(format!("{:<28} {:<9} SET BY", "POLICY", "ON"));
    for r in &document.policy {
        ctx.say(format!(
            "{:<28} {:<9} {}",
            r.rule,
            if r.on { "yes" } else { "no" },
            r.set_by.as_deref().unwrap_or("-")
        ));
    }
    Ok(0)
}
