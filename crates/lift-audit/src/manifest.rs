//! The rotation manifest: which files hold the chain, in order.
//!
//! `<log>.manifest` exists once a log has rotated. It lists file names
//! relative to its own directory; the last one is always the live `<log>`.
//! The chain itself proves the order (each file's first record links to the
//! previous file's last one); the manifest only says where to look.

use std::path::{Path, PathBuf};

use crate::checkpoint::{append_suffix, write_atomically};
use crate::error::{Error, Result};

/// The manifest document.
#[derive(
    Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct Manifest {
    /// The format version, 1.
    pub version: u32,
    /// The files of the chain, oldest first, relative to the manifest's directory.
    pub files: Vec<String>,
}

/// The manifest path of a log: `<log>.manifest`.
pub fn manifest_path(log: &Path) -> PathBuf {
    append_suffix(log, ".manifest")
}

/// The name of the `n`th sealed segment of `log` (1-based): `<log>.000001`, ...
pub(crate) fn segment_name(log: &Path, n: usize) -> String {
    let base = log
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!("{base}.{n:06}")
}

impl Manifest {
    /// Reads `<log>.manifest` if it exists.
    pub fn load(log: &Path) -> Result<Option<Manifest>> {
        let path = manifest_path(log);
        match std::fs::read(&path) {
            Ok(bytes) => {
                let manifest: Manifest =
                    serde_json::from_slice(&bytes).map_err(|e| Error::Parse {
                        path: path.clone(),
                        line: 1,
                        message: format!("not a lift-audit manifest: {e}"),
                    })?;
                if manifest.version != 1
                    || manifest
                        .files
                        .iter()
                        .any(|f| f.contains('/') || f.is_empty() || f == "..")
                {
                    return Err(Error::Integrity(format!(
                        "manifest {} has an unknown version or a file name outside its directory; restore it from a backup",
                        path.display()
                    )));
                }
                Ok(Some(manifest))
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(Error::io("read manifest", path, err)),
        }
    }

    /// Writes `<log>.manifest` atomically.
    pub(crate) fn store(&self, log: &Path) -> Result<()> {
        let path = manifest_path(log);
        let mut bytes = serde_json::to_vec_pretty(self).map_err(|e| Error::Parse {
            path: path.clone(),
            line: 1,
            message: e.to_string(),
        })?;
        bytes.push(b'\n');
        write_atomically(&path, &bytes)
    }

    /// The listed files as paths beside `log`.
    pub fn paths(&self, log: &Path) -> Vec<PathBuf> {
        let dir = log.parent().unwrap_or(Path::new(""));
        self.files.iter().map(|f| dir.join(f)).collect()
    }
}

/// The files of the chain that `log` belongs to: the manifest's list, or `log` alone.
pub fn chain_files(log: &Path) -> Result<Vec<PathBuf>> {
    Ok(match Manifest::load(log)? {
        Some(manifest) => manifest.paths(log),
        None => vec![log.to_owned()],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_round_trip_and_refuse_escapes() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("audit.jsonl");
        assert_eq!(chain_files(&log).unwrap(), vec![log.clone()]);
        let manifest = Manifest {
            version: 1,
            files: vec![segment_name(&log, 1), "audit.jsonl".into()],
        };
        manifest.store(&log).unwrap();
        assert_eq!(
            chain_files(&log).unwrap(),
            vec![dir.path().join("audit.jsonl.000001"), log.clone()]
        );
        std::fs::write(
            manifest_path(&log),
            br#"{"version":1,"files":["../etc/passwd"]}"#,
        )
        .unwrap();
        assert!(matches!(Manifest::load(&log), Err(Error::Integrity(_))));
    }
}
