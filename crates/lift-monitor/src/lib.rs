//! lift-monitor: In-process resource and memory monitoring, health checks and a health manager, Lambda invocation metrics as CloudWatch EMF.
