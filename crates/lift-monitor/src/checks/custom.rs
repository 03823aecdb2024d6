//! Health checks made from closures.

use std::future::Future;
use std::pin::Pin;

use lift_core::{CheckOutcome, HealthCheck};

/// A check that calls a synchronous closure.
///
/// ```
/// use lift_monitor::FnCheck;
/// use lift_core::{CheckOutcome, HealthCheck};
///
/// let queue_len = 3;
/// let check = FnCheck::new("queue", move || {
///     CheckOutcome::healthy(format!("{queue_len} jobs queued")).observe("length", queue_len as f64, "count")
/// });
/// assert_eq!(check.name(), "queue");
/// ```
pub struct FnCheck<F> {
    name: String,
    f: F,
}

impl<F> FnCheck<F>
where
    F: Fn() -> CheckOutcome + Send + Sync,
{
    /// A check named `name` that returns what `f` returns.
    pub fn new(name: impl Into<String>, f: F) -> Self {
        FnCheck {
            name: name.into(),
            f,
        }
    }
}

impl<F> std::fmt::Debug for FnCheck<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FnCheck")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl<F> HealthCheck for FnCheck<F>
where
    F: Fn() -> CheckOutcome + Send + Sync,
{
    fn name(&self) -> &str {
        &self.name
    }

    async fn check(&self) -> CheckOutcome {
        (self.f)()
    }
}

type BoxedCheckFuture = Pin<Box<dyn Future<Output = CheckOutcome> + Send>>;

/// A check that awaits the future an async closure returns.
pub struct AsyncFnCheck {
    name: String,
    f: Box<dyn Fn() -> BoxedCheckFuture + Send + Sync>,
}

impl AsyncFnCheck {
    /// A check named `name` that awaits `f()`.
    pub fn new<F, Fut>(name: impl Into<String>, f: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = CheckOutcome> + Send + 'static,
    {
        AsyncFnCheck {
            name: name.into(),
            f: Box::new(move || Box::pin(f())),
        }
    }
}

impl std::fmt::Debug for AsyncFnCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncFnCheck")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl HealthCheck for AsyncFnCheck {
    fn name(&self) -> &str {
        &self.name
    }

    async fn check(&self) -> CheckOutcome {
        (self.f)().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lift_core::HealthStatus;

    #[tokio::test]
    async fn closures_become_checks() {
        let sync = FnCheck::new("sync", || CheckOutcome::degraded("slow"));
        assert_eq!(sync.check().await.status, HealthStatus::Degraded);
        let asynchronous = AsyncFnCheck::new("async", || async {
            tokio::task::yield_now().await;
            CheckOutcome::unhealthy("down")
        });
        assert_eq!(asynchronous.name(), "async");
        assert_eq!(asynchronous.check().await.status, HealthStatus::Unhealthy);
    }
}
