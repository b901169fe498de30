//! The one injectable clock every timed decision in the engine reads: lease expiry, backoff,
//! `run_after`, timestamps on jobs, and the pool's timed waits.
//!
//! Stored times are milliseconds since the Unix epoch. [`SystemClock`] reads the wall clock;
//! [`TokioClock`] counts from a wall-clock anchor with tokio's clock, so a test that runs under
//! `tokio::time::pause()` moves stored times, leases and sleeps together, without sleeping for
//! real; [`ManualClock`] moves only when told to.

use std::fmt::Debug;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A duration in whole milliseconds, the unit every stored time uses (saturating).
pub fn duration_ms(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// Wall-clock time in milliseconds since the Unix epoch.
pub trait Clock: Send + Sync + Debug + 'static {
    /// Now, in ms since the Unix epoch.
    fn now_ms(&self) -> i64;
}

/// The real clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        wall_clock_ms()
    }
}

fn wall_clock_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Wall-clock time at construction, advanced by tokio's clock: under `tokio::time::pause()` it
/// moves exactly as tokio's timers do, so leases, backoff and sleeps agree in tests.
#[derive(Clone, Copy, Debug)]
pub struct TokioClock {
    anchor_ms: i64,
    anchor: tokio::time::Instant,
}

impl TokioClock {
    /// A clock reading the wall-clock time now.
    pub fn new() -> Self {
        Self {
            anchor_ms: wall_clock_ms(),
            anchor: tokio::time::Instant::now(),
        }
    }
}

impl Default for TokioClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for TokioClock {
    fn now_ms(&self) -> i64 {
        self.anchor_ms
            .saturating_add(duration_ms(tokio::time::Instant::now() - self.anchor))
    }
}

/// A clock that moves only when told to.
#[derive(Clone, Debug, Default)]
pub struct ManualClock {
    now_ms: Arc<AtomicI64>,
}

impl ManualClock {
    /// A clock reading `start_ms`.
    pub fn new(start_ms: i64) -> Self {
        Self {
            now_ms: Arc::new(AtomicI64::new(start_ms)),
        }
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        self.now_ms.fetch_add(duration_ms(by), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.now_ms.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let clock = ManualClock::new(1_000);
        assert_eq!(clock.now_ms(), 1_000);
        clock.advance(Duration::from_millis(2_500));
        assert_eq!(clock.now_ms(), 3_500);
    }

    #[tokio::test(start_paused = true)]
    async fn tokio_clock_follows_paused_time() {
        let clock = TokioClock::new();
        let start = clock.now_ms();
        tokio::time::sleep(Duration::from_secs(90)).await;
        assert_eq!(clock.now_ms() - start, 90_000);
    }
}
