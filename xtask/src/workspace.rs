//! Where the workspace is and which cargo runs the tasks: what every task
//! shares, kept apart from `main.rs`, which runs them.

use std::path::{Path, PathBuf};

/// The workspace root: xtask's parent directory.
pub(crate) fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// The cargo binary that runs this task.
pub(crate) fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned())
}
