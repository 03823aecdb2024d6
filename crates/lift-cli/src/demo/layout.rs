//! Where the demo keeps its files, and the promise about them: the demo runs
//! only in a directory of its own, and `--remove` removes only what it made.

use std::path::{Path, PathBuf};

use lift::Error;

use super::files::{create_private_dir, io_error};

/// The entries the demo creates directly under its directory. `--remove`
/// deletes these and nothing else.
const ENTRIES: [&str; 8] = [
    "lift.toml",
    "secrets",
    "keys",
    "audit",
    "service",
    "pulumi-project",
    "pulumi-state",
    "pulumi-home",
];

/// Where the demo keeps its files.
#[derive(Debug)]
pub(super) struct Layout {
    pub(super) root: PathBuf,
    /// Whether the demo created `root` itself (and may remove it when empty).
    created_root: bool,
    pub(super) store: PathBuf,
    pub(super) store_key: PathBuf,
    pub(super) audit_log: PathBuf,
    pub(super) audit_key: PathBuf,
    pub(super) credentials: PathBuf,
    pub(super) project: PathBuf,
    pub(super) pulumi_state: PathBuf,
    pub(super) pulumi_home: PathBuf,
    /// The project config with a `dev` and a `prod` environment.
    pub(super) config: PathBuf,
}

impl Layout {
    fn new(root: PathBuf, created_root: bool) -> Self {
        Layout {
            store: root.join("secrets"),
            store_key: root.join("keys/secrets.key"),
            audit_log: root.join("audit/audit.jsonl"),
            audit_key: root.join("keys/audit.key"),
            credentials: root.join("service/credentials"),
            project: root.join("pulumi-project"),
            pulumi_state: root.join("pulumi-state"),
            pulumi_home: root.join("pulumi-home"),
            config: root.join("lift.toml"),
            root,
            created_root,
        }
    }

    /// A fresh private temporary directory.
    pub(super) fn temporary() -> lift::Result<Self> {
        let root = tempfile::Builder::new()
            .prefix("lift-demo-")
            .tempdir()
            .map_err(|err| io_error("cannot create a temporary directory", &err))?
            .keep();
        Ok(Layout::new(root, true))
    }

    /// Takes `dir` for the demo: creates it (mode 0700) when it is missing,
    /// accepts it when it is an empty directory, and refuses anything else,
    /// so that the demo never mixes its files with someone else's.
    pub(super) fn claim(dir: &Path) -> lift::Result<Self> {
        match std::fs::read_dir(dir) {
            Ok(mut entries) => {
                if entries.next().is_some() {
                    return Err(Error::invalid_input(format!(
                        "{} is not empty; give `lift demo --dir` a new or empty directory (the demo writes keys and a secret store there, and --remove deletes what it wrote), or leave out --dir for a temporary one",
                        dir.display()
                    )));
                }
                Ok(Layout::new(dir.to_owned(), false))
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                create_private_dir(dir)?;
                Ok(Layout::new(dir.to_owned(), true))
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotADirectory => {
                Err(Error::invalid_input(format!(
                    "{} is not a directory; give `lift demo --dir` a new or empty directory",
                    dir.display()
                )))
            }
            Err(err) => Err(crate::output::user_input(io_error(
                &format!("cannot read {}", dir.display()),
                &err,
            ))),
        }
    }

    /// Removes what the demo created, and the directory itself when the demo
    /// created it and nothing else is left in it. Returns the paths removed.
    pub(super) fn remove(&self) -> lift::Result<Vec<PathBuf>> {
        let mut removed = Vec::new();
        for entry in ENTRIES {
            let path = self.root.join(entry);
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            let result = if meta.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
            result.map_err(|err| io_error(&format!("cannot remove {}", path.display()), &err))?;
            removed.push(path);
        }
        // `remove_dir` (not `remove_dir_all`): a file someone put there meanwhile stays.
        if self.created_root && std::fs::remove_dir(&self.root).is_ok() {
            removed.push(self.root.clone());
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tempdir() -> tempfile::TempDir {
        tempfile::tempdir().unwrap_or_else(|err| panic!("tempdir: {err}"))
    }

    #[test]
    fn a_non_empty_directory_is_refused() {
        let tmp = tempdir();
        std::fs::write(tmp.path().join("mine.txt"), "keep me").unwrap_or_default();
        let err = Layout::claim(tmp.path()).err();
        assert_eq!(err.map(|e| e.kind()), Some(lift::ErrorKind::InvalidInput));
    }

    #[test]
    fn a_file_is_refused() {
        let tmp = tempdir();
        let file = tmp.path().join("file");
        std::fs::write(&file, "x").unwrap_or_default();
        assert!(Layout::claim(&file).is_err());
    }

    #[test]
    fn remove_keeps_an_existing_directory_and_foreign_files() -> lift::Result<()> {
        let tmp = tempdir();
        let layout = Layout::claim(tmp.path())?;
        create_private_dir(&layout.store)?;
        create_private_dir(&layout.root.join("keys"))?;
        // Something that appeared after the demo started is not the demo's.
        std::fs::write(layout.root.join("notes.txt"), "mine").unwrap_or_default();
        let removed = layout.remove()?;
        assert_eq!(removed.len(), 2, "{removed:?}");
        assert!(!layout.store.exists());
        assert!(layout.root.join("notes.txt").exists());
        assert!(layout.root.exists(), "the directory was the user's");
        Ok(())
    }

    #[test]
    fn remove_deletes_a_directory_the_demo_created() -> lift::Result<()> {
        let tmp = tempdir();
        let layout = Layout::claim(&tmp.path().join("new"))?;
        create_private_dir(&layout.root.join("audit"))?;
        layout.remove()?;
        assert!(!layout.root.exists());
        Ok(())
    }
}
