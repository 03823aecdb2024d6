//! Time as a dependency, so that schedules, TTLs and checkpoints are testable without sleeping.

use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Utc};

/// A source of the current UTC time.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The current time.
    fn now(&self) -> DateTime<Utc>;
}

/// The system's real-time clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that moves only when told to. Clones share the same time.
///
/// ```
/// use lift_core::{Clock, ManualClock};
/// let clock = ManualClock::at_epoch();
/// let start = clock.now();
/// clock.advance(chrono::Duration::days(30));
/// assert_eq!((clock.now() - start).num_days(), 30);
/// ```
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: Arc<Mutex<DateTime<Utc>>>,
}

impl ManualClock {
    /// A clock stopped at `time`.
    pub fn new(time: DateTime<Utc>) -> Self {
        ManualClock {
            now: Arc::new(Mutex::new(time)),
        }
    }

    /// A clock stopped at 2020-01-01T00:00:00Z, a fixed point for snapshots.
    pub fn at_epoch() -> Self {
        Self::new(DateTime::<Utc>::from_timestamp(1_577_836_800, 0).unwrap_or_default())
    }

    /// Moves the clock forward (or back, with a negative duration).
    pub fn advance(&self, by: chrono::Duration) {
        let mut now = self.now.lock().unwrap_or_else(PoisonError::into_inner);
        *now += by;
    }

    /// Sets the clock.
    pub fn set(&self, time: DateTime<Utc>) {
        *self.now.lock().unwrap_or_else(PoisonError::into_inner) = time;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<T: Clock + ?Sized> Clock for Arc<T> {
    fn now(&self) -> DateTime<Utc> {
        (**self).now()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_clones_share_time() {
        let clock = ManualClock::at_epoch();
        let other = clock.clone();
        clock.advance(chrono::Duration::hours(2));
        assert_eq!(other.now().timestamp(), 1_577_836_800 + 7200);
    }

    #[test]
    fn system_clock_moves() {
        let a = SystemClock.now();
        let b = SystemClock.now();
        assert!(b >= a);
    }
}
