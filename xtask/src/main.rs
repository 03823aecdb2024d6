//! lift build tasks.

fn main() {}
