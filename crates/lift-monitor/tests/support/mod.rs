//! What the integration tests on real processes share.

use std::process::Child;

/// Kills and reaps the child when the test ends, whether it passes or panics.
pub(crate) struct KillOnDrop(pub(crate) Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
