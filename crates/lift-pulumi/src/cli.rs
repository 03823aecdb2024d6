//! Finding the pulumi binary and checking its version.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, Result};

/// The oldest CLI lift drives: `whoami --json` and `stack init --no-select` need 3.58.
pub const MINIMUM_VERSION: semver::Version = semver::Version::new(3, 58, 0);

/// The environment variable that names the pulumi binary.
pub const PULUMI_ENV: &str = "LIFT_PULUMI";

/// A pulumi binary whose version has been checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PulumiCli {
    path: PathBuf,
    version: semver::Version,
}

impl PulumiCli {
    /// Finds the binary (`explicit`, then `LIFT_PULUMI`, then `PATH`), runs
    /// `pulumi version` and checks it against [`MINIMUM_VERSION`].
    pub async fn discover(explicit: Option<&Path>) -> Result<Self> {
        Self::discover_with_minimum(explicit, &MINIMUM_VERSION).await
    }

    /// Like [`PulumiCli::discover`] with another minimum version.
    #[tracing::instrument(level = "debug", skip_all, fields(explicit = ?explicit, minimum = %minimum))]
    pub async fn discover_with_minimum(
        explicit: Option<&Path>,
        minimum: &semver::Version,
    ) -> Result<Self> {
        let path = locate(
            explicit,
            std::env::var_os(PULUMI_ENV),
            std::env::var_os("PATH"),
        )?;
        let version = read_version(&path).await?;
        if &version < minimum {
            return Err(Error::TooOld {
                path: path.display().to_string(),
                found: version,
                minimum: minimum.clone(),
            });
        }
        tracing::debug!(path = %path.display(), %version, "found pulumi CLI");
        Ok(PulumiCli { path, version })
    }

    /// The binary's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Its version.
    pub fn version(&self) -> &semver::Version {
        &self.version
    }
}

/// Picks the binary: an explicit path, then `LIFT_PULUMI`, then the first `pulumi` on `PATH`.
fn locate(
    explicit: Option<&Path>,
    env: Option<OsString>,
    path_var: Option<OsString>,
) -> Result<PathBuf> {
    if let Some(path) = explicit {
        return check_executable(path, "the --pulumi path");
    }
    if let Some(value) = env.filter(|v| !v.is_empty()) {
        return check_executable(Path::new(&value), "LIFT_PULUMI");
    }
    let dirs = path_var.unwrap_or_default();
    for dir in std::env::split_paths(&dirs) {
        let candidate = dir.join("pulumi");
        if is_executable(&candidate) {
            return Ok(candidate);
        }
    }
    Err(Error::NotInstalled {
        searched: "not given with --pulumi, LIFT_PULUMI unset, not on PATH".to_owned(),
    })
}

fn check_executable(path: &Path, source: &str) -> Result<PathBuf> {
    if is_executable(path) {
        Ok(path.to_path_buf())
    } else {
        Err(Error::NotInstalled {
            searched: format!(
                "{source} is {}, which is not an executable file",
                path.display()
            ),
        })
    }
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

async fn read_version(path: &Path) -> Result<semver::Version> {
    let mut command = tokio::process::Command::new(path);
    command
        .arg("version")
        .env("PULUMI_SKIP_UPDATE_CHECK", "true")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    let run = async {
        // A binary that was just written (an install, an upgrade) can be
        // "busy" for a moment: a process forked elsewhere may still hold it
        // open for writing until its exec. That passes; retry briefly.
        let mut attempts = 0;
        loop {
            match command.output().await {
                Err(err)
                    if err.raw_os_error() == Some(nix::errno::Errno::ETXTBSY as i32)
                        && attempts < 20 =>
                {
                    attempts += 1;
                    tokio::time::sleep(Duration::from_millis(25)).await;
                }
                other => return other,
            }
        }
    };
    let output = tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .map_err(|_| Error::Timeout {
            command: format!("{} version", path.display()),
            after: Duration::from_secs(30),
            how: String::new(),
        })?
        .map_err(|source| Error::Spawn {
            program: path.display().to_string(),
            source,
        })?;
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(Error::CommandFailed {
            command: format!("{} version", path.display()),
            status: output.status.to_string(),
            code: output.status.code(),
            stderr_tail: crate::error::tail(&String::from_utf8_lossy(&output.stderr), 3),
        });
    }
    parse_version(&text).ok_or_else(|| Error::UnparseableVersion {
        path: path.display().to_string(),
        output: text.trim().chars().take(80).collect(),
    })
}

/// Parses `v3.120.0` (and `3.120.0`, and pre-release forms) from `pulumi version`'s output.
pub(crate) fn parse_version(text: &str) -> Option<semver::Version> {
    let line = text.lines().map(str::trim).find(|l| !l.is_empty())?;
    let bare = line.strip_prefix('v').unwrap_or(line);
    semver::Version::parse(bare).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_like_the_cli_prints_them() {
        assert_eq!(
            parse_version("v3.120.0\n"),
            Some(semver::Version::new(3, 120, 0))
        );
        assert_eq!(parse_version("3.1.2"), Some(semver::Version::new(3, 1, 2)));
        let dev = parse_version("v3.121.0-alpha.x1234").unwrap();
        assert!(dev < semver::Version::new(3, 121, 0));
        assert_eq!(parse_version("warning: whatever"), None);
        assert_eq!(parse_version(""), None);
    }

    #[test]
    fn locate_prefers_explicit_then_env_then_path() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("pulumi");
        std::fs::write(&bin, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path_var = Some(dir.path().as_os_str().to_owned());
        assert_eq!(locate(None, None, path_var.clone()).unwrap(), bin);
        let err = locate(
            Some(Path::new("/nonexistent/pulumi")),
            None,
            path_var.clone(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("--pulumi"));
        let err = locate(None, Some("/nonexistent/p".into()), path_var).unwrap_err();
        assert!(err.to_string().contains("LIFT_PULUMI"));
        let err = locate(None, None, Some("/nonexistent".into())).unwrap_err();
        assert!(matches!(err, Error::NotInstalled { .. }));
        assert!(err.to_string().contains("install"));
    }

    #[tokio::test]
    async fn discovery_checks_the_version() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, body: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, body).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
            path
        };
        let new = write("new", "#!/bin/sh\necho v3.130.1\n");
        let old = write("old", "#!/bin/sh\necho v2.25.0\n");
        let junk = write("junk", "#!/bin/sh\necho hello\n");
        let cli = PulumiCli::discover(Some(&new)).await.unwrap();
        assert_eq!(cli.version(), &semver::Version::new(3, 130, 1));
        assert!(matches!(
            PulumiCli::discover(Some(&old)).await,
            Err(Error::TooOld { .. })
        ));
        assert!(matches!(
            PulumiCli::discover(Some(&junk)).await,
            Err(Error::UnparseableVersion { .. })
        ));
    }
}
