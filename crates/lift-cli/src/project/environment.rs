//! The environment a command runs in, apart from the parse that selects it
//! (`mod.rs`): the commands' shared context holds it, and the parse uses the
//! whole command line, which defines those commands.

use super::policy::Policy;

/// The environment a command runs in.
#[derive(Debug)]
pub(crate) struct Environment {
    /// Its name.
    pub(crate) name: String,
    /// What its policy enforces.
    pub(crate) policy: Policy,
}
