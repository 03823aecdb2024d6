//! Environments: the project config file (`lift.toml`), the environment a
//! command runs in, and the policy lift enforces there.
//!
//! The command line is parsed twice. The first parse finds `--config` and
//! `--env`; when they select an environment, its settings become the
//! defaults of the matching flags and the line is parsed again. So a flag
//! beats its `LIFT_*` variable, which beats the file, which beats lift's
//! built-in default, and nothing that worked without a config file changes.

mod environment;
mod file;
pub(crate) mod policy;
pub(crate) mod settings;
pub(crate) mod stamp;

use std::path::Path;

use clap::{ArgMatches, FromArgMatches};
use lift::{Error, ErrorKind};

pub(crate) use environment::Environment;
pub(crate) use file::{LoadedConfig, ProjectConfig};
pub(crate) use policy::Policy;

use crate::global_args::GlobalArgs;

/// A parsed command line, with the environment it selected.
pub(crate) struct Parsed {
    /// The global options, as the final parse gave them.
    pub(crate) global: GlobalArgs,
    /// The matches it came from, for where each value came from.
    pub(crate) matches: ArgMatches,
    /// The config file, when one was found or given.
    pub(crate) config: Option<LoadedConfig>,
    /// The selected environment, if any.
    pub(crate) environment: Option<Environment>,
}

/// Why a command line did not parse.
pub(crate) enum ParseFailure {
    /// clap refused it (or it asked for help or the version).
    Usage(clap::Error),
    /// The config file or the environment selection is wrong (and whether
    /// `--json` was given, to report it as a document).
    Config(Error, bool),
}

/// Reads the project config for the command line whose first parse is
/// `first`, and parses the line again with the selected environment's
/// settings as defaults.
pub(crate) fn with_environment(first: ArgMatches) -> Result<Parsed, ParseFailure> {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    parse_from(first, args, &current_dir())
}

/// The working directory, or `.` when it cannot be read (then nothing is found).
fn current_dir() -> std::path::PathBuf {
    std::env::current_dir().unwrap_or_else(|_| ".".into())
}

/// Reads the project config from `start` up for the line `args`, first parsed as `first`.
pub(crate) fn parse_from(
    first: ArgMatches,
    args: Vec<std::ffi::OsString>,
    start: &Path,
) -> Result<Parsed, ParseFailure> {
    let global = GlobalArgs::from_arg_matches(&first).map_err(ParseFailure::Usage)?;
    let json = global.json;
    let config_error = |err| ParseFailure::Config(err, json);
    let config = file::load(global.config.as_deref(), start).map_err(config_error)?;
    let name = match (&global.environment, &config) {
        (Some(name), _) => Some(name.clone()),
        (None, Some(loaded)) => loaded.config.default_environment.clone(),
        (None, None) => None,
    };
    let Some(name) = name else {
        return Ok(Parsed {
            global,
            matches: first,
            config,
            environment: None,
        });
    };
    let Some(loaded) = config else {
        return Err(config_error(Error::new(
            ErrorKind::InvalidInput,
            format!(
                "environment {name:?} was selected (--env / LIFT_ENV) but no {} was found in {} or its parents; create one or give it with --config",
                file::FILE_NAME,
                start.display()
            ),
        )));
    };
    let Some(env_config) = loaded.config.environments.get(&name) else {
        let known: Vec<&str> = loaded
            .config
            .environments
            .keys()
            .map(String::as_str)
            .collect();
        return Err(config_error(Error::new(
            ErrorKind::InvalidInput,
            format!(
                "{} has no environment {name:?}; it defines: {}",
                loaded.path.display(),
                if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                }
            ),
        )));
    };
    let command = settings::with_defaults(crate::cli::command(), env_config, &loaded, &first);
    let matches = command
        .try_get_matches_from(&args)
        .map_err(ParseFailure::Usage)?;
    let global = GlobalArgs::from_arg_matches(&matches).map_err(ParseFailure::Usage)?;
    let policy = Policy::of(env_config, &loaded);
    Ok(Parsed {
        global,
        matches,
        environment: Some(Environment { name, policy }),
        config: Some(loaded),
    })
}

impl Parsed {
    /// Creates the parent directories (mode 0700) of the audit log and the
    /// secret store when their paths came from the config file, so that a
    /// new checkout works at once. A path typed as a flag or a variable is
    /// never created: a typo there stays an error.
    pub(crate) fn create_configured_parents(&self) -> lift::Result<()> {
        use clap::parser::ValueSource;
        use std::os::unix::fs::DirBuilderExt as _;
        let from_file = |m: &ArgMatches, id: &str| {
            (m.try_contains_id(id).unwrap_or(false)
                && m.value_source(id) == Some(ValueSource::DefaultValue))
            .then(|| m.get_one::<std::path::PathBuf>(id).cloned())
            .flatten()
        };
        let mut parents = Vec::new();
        if let Some(log) = from_file(&self.matches, "audit_log") {
            parents.extend(log.parent().map(Path::to_path_buf));
        }
        if let Some(secrets) = self.matches.subcommand_matches("secrets") {
            if let Some(store) = from_file(secrets, "store") {
                parents.extend(store.parent().map(Path::to_path_buf));
            }
        }
        for dir in parents.iter().filter(|dir| !dir.as_os_str().is_empty()) {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|err| {
                    Error::new(
                        ErrorKind::InvalidInput,
                        format!(
                            "cannot create {} (from the config file): {err}",
                            dir.display()
                        ),
                    )
                })?;
        }
        Ok(())
    }
}
