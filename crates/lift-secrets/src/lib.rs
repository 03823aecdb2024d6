//! lift-secrets: Versioned, staged secret storage and crash-safe four-step rotation with AWS Secrets Manager semantics.
