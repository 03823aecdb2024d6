//! lift-audit: A tamper-evident, hash-chained, append-only audit trail and its verifier.
