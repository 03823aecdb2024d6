//! Cross-crate integration tests for lift live in `tests/tests/`.
