//! A log-bucketed histogram with bounded relative error, for duration percentiles.

/// Sub-buckets per power of two: bucket bounds grow by 2^(1/8), about 9 %.
const SUB_BUCKETS: usize = 8;
/// The smallest bound, 2^-20 (about 1 µs when the values are seconds).
const MIN_EXP: i32 = -20;
/// The largest finite bound, 2^20 (about 12 days when the values are seconds).
const MAX_EXP: i32 = 20;
const BUCKETS: usize = ((MAX_EXP - MIN_EXP) as usize) * SUB_BUCKETS + 1;

/// A histogram of non-negative values in log-spaced buckets.
///
/// Invariant: a percentile is the upper bound of the bucket holding that rank, clamped to
/// the observed minimum and maximum, so it is within about 9 % of the exact value.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    counts: Vec<u64>,
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: vec![0; BUCKETS + 1],
            count: 0,
            sum: 0.0,
            min: f64::INFINITY,
            max: 0.0,
        }
    }
}

/// The upper bound of bucket `index` (the last bucket is unbounded).
fn upper_bound(index: usize) -> f64 {
    if index >= BUCKETS {
        return f64::INFINITY;
    }
    2f64.powf(MIN_EXP as f64 + index as f64 / SUB_BUCKETS as f64)
}

fn bucket_of(value: f64) -> usize {
    if value <= upper_bound(0) {
        return 0;
    }
    let position = (value.log2() - MIN_EXP as f64) * SUB_BUCKETS as f64;
    let index = position.ceil() as usize;
    // Floating error can put a value exactly on a bound one bucket too high or low.
    let mut index = index.min(BUCKETS);
    while index > 0 && value <= upper_bound(index - 1) {
        index -= 1;
    }
    while index < BUCKETS && value > upper_bound(index) {
        index += 1;
    }
    index
}

impl Histogram {
    /// Records `value`; negative and non-finite values are ignored.
    pub fn record(&mut self, value: f64) {
        if !value.is_finite() || value < 0.0 {
            return;
        }
        self.counts[bucket_of(value)] += 1;
        self.count += 1;
        self.sum += value;
        self.min = self.min.min(value);
        self.max = self.max.max(value);
    }

    /// Values recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Sum of the values.
    pub fn sum(&self) -> f64 {
        self.sum
    }

    /// The smallest value, when any.
    pub fn min(&self) -> Option<f64> {
        (self.count > 0).then_some(self.min)
    }

    /// The largest value, when any.
    pub fn max(&self) -> Option<f64> {
        (self.count > 0).then_some(self.max)
    }

    /// The `q` quantile (0 to 1), when any value was recorded.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.count as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (index, &n) in self.counts.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Some(upper_bound(index).clamp(self.min, self.max));
            }
        }
        Some(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn percentiles_of_a_uniform_spread() {
        let mut h = Histogram::default();
        for ms in 1..=1000 {
            h.record(ms as f64 / 1000.0);
        }
        assert_eq!(h.count(), 1000);
        let p50 = h.quantile(0.5).unwrap();
        let p99 = h.quantile(0.99).unwrap();
        assert!((p50 - 0.5).abs() / 0.5 < 0.1, "p50 {p50}");
        assert!((p99 - 0.99).abs() / 0.99 < 0.1, "p99 {p99}");
        assert_eq!(h.quantile(1.0), Some(1.0));
        assert_eq!(h.min(), Some(0.001));
    }

    #[test]
    fn ignores_bad_values_and_reports_none_when_empty() {
        let mut h = Histogram::default();
        assert_eq!(h.quantile(0.5), None);
        h.record(f64::NAN);
        h.record(-1.0);
        assert_eq!(h.count(), 0);
        h.record(0.0);
        assert_eq!(h.quantile(0.99), Some(0.0));
    }

    proptest! {
        #[test]
        fn quantiles_are_within_ten_percent(values in proptest::collection::vec(1e-5f64..1e4, 1..200), q in 0.01f64..1.0) {
            let mut h = Histogram::default();
            for v in &values {
                h.record(*v);
            }
            let mut sorted = values.clone();
            sorted.sort_by(f64::total_cmp);
            let rank = ((q * sorted.len() as f64).ceil() as usize).max(1) - 1;
            let exact = sorted[rank];
            let estimate = h.quantile(q).unwrap();
            prop_assert!(estimate >= exact * 0.999 && estimate <= exact * 1.1, "exact {} estimate {}", exact, estimate);
        }
    }
}
