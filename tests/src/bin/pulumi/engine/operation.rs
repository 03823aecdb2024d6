//! The four engine operations, and what each is called in the history and
//! the human output.

/// The four engine operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Operation {
    /// `pulumi preview`.
    Preview,
    /// `pulumi up`.
    Up,
    /// `pulumi refresh`.
    Refresh,
    /// `pulumi destroy`.
    Destroy,
}

impl Operation {
    /// The history kind of the operation.
    pub(super) fn kind(self) -> &'static str {
        match self {
            Operation::Preview | Operation::Up => "update",
            Operation::Refresh => "refresh",
            Operation::Destroy => "destroy",
        }
    }

    /// The first line of the human output.
    pub(super) fn header(self, preview: bool) -> &'static str {
        match (self, preview) {
            (Operation::Preview, _) | (Operation::Up, true) => "Previewing update",
            (Operation::Up, false) => "Updating",
            (Operation::Refresh, true) => "Previewing refresh",
            (Operation::Refresh, false) => "Refreshing",
            (Operation::Destroy, true) => "Previewing destroy",
            (Operation::Destroy, false) => "Destroying",
        }
    }
}
