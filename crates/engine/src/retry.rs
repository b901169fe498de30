//! When a failed job runs again: exponential backoff with full jitter, honouring `Retry-After`.
//! The clock it is measured against is in [`crate::clock`].

use std::time::Duration;

/// How transient failures are retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The first retry waits up to this long.
    pub base: Duration,
    /// No retry waits longer than this (before `Retry-After`).
    pub cap: Duration,
    /// Claims allowed before a job is given up as dead.
    pub max_attempts: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            base: Duration::from_secs(2),
            cap: Duration::from_secs(300),
            max_attempts: 5,
        }
    }
}

impl RetryPolicy {
    /// The backoff ceiling after the `attempt`-th failure (1-based): `min(cap, base · 2^(attempt-1))`.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let exponent = attempt.saturating_sub(1).min(30);
        self.base
            .checked_mul(1u32 << exponent)
            .unwrap_or(self.cap)
            .min(self.cap)
    }

    /// The delay before retrying after the `attempt`-th failure: full jitter, uniform in
    /// `[0, ceiling]`, but never shorter than the server's `Retry-After`.
    ///
    /// Full jitter (rather than equal or none) spreads a burst of failures, e.g. a rate limit hit by
    /// every running job at once, so their retries do not arrive together again.
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let ceiling = self.ceiling(attempt);
        let jittered = Duration::from_millis(rand::random_range(
            0..=u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX),
        ));
        match retry_after {
            Some(asked) => jittered.max(asked),
            None => jittered,
        }
    }

    /// Whether a job that has been claimed `attempts` times may run again.
    pub fn may_retry(&self, attempts: u32) -> bool {
        attempts < self.max_attempts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceiling_doubles_up_to_the_cap() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.ceiling(1), Duration::from_secs(2));
        assert_eq!(policy.ceiling(2), Duration::from_secs(4));
        assert_eq!(policy.ceiling(5), Duration::from_secs(32));
        assert_eq!(policy.ceiling(9), Duration::from_secs(300));
        assert_eq!(policy.ceiling(u32::MAX), Duration::from_secs(300));
    }

    #[test]
    fn delay_is_jittered_within_the_ceiling_and_honours_retry_after() {
        let policy = RetryPolicy::default();
        let delays: Vec<_> = (0..200).map(|_| policy.delay(3, None)).collect();
        assert!(delays.iter().all(|d| *d <= Duration::from_secs(8)));
        // Full jitter: spread over the range, not pinned to one value.
        let distinct: std::collections::BTreeSet<_> = delays.iter().collect();
        assert!(
            distinct.len() > 50,
            "only {} distinct delays",
            distinct.len()
        );
        for _ in 0..50 {
            assert!(policy.delay(1, Some(Duration::from_secs(30))) >= Duration::from_secs(30));
        }
    }

    #[test]
    fn attempts_run_out() {
        let policy = RetryPolicy::default();
        assert!(policy.may_retry(4));
        assert!(!policy.may_retry(5));
    }
}
