//! lift-pulumi: Drive the Pulumi CLI from async Rust: stacks, config, preview/up/refresh/destroy, live engine events, outputs and history.
