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

/// This machine's local calendar, for what is counted per local day and month (spending and
/// its caps) and for times told to people. SQLite knows the machine's time zone rules, so the
/// engine needs no time zone database of its own; an in-memory database answers in
/// microseconds.
pub mod local {
    fn ask<T: rusqlite::types::FromSql>(sql: &str, utc_ms: i64) -> Option<T> {
        let db = rusqlite::Connection::open_in_memory().ok()?;
        db.query_row(sql, [utc_ms], |row| row.get::<_, T>(0)).ok()
    }

    /// The local day of `utc_ms`, `YYYY-MM-DD` (the UTC day if the zone cannot be read).
    pub fn day(utc_ms: i64) -> String {
        ask("SELECT date(?1 / 1000, 'unixepoch', 'localtime')", utc_ms)
            .unwrap_or_else(|| crate::job::iso8601(utc_ms)[..10].to_owned())
    }

    /// The first day of `utc_ms`'s local month, `YYYY-MM-01`.
    pub fn month_start(utc_ms: i64) -> String {
        let day = day(utc_ms);
        format!("{}-01", &day[..7.min(day.len())])
    }

    /// The next local midnight after `utc_ms` (ms since the Unix epoch).
    pub fn next_midnight(utc_ms: i64) -> i64 {
        ask(
            "SELECT CAST(strftime('%s', date(?1 / 1000, 'unixepoch', 'localtime', '+1 day'), \
             'utc') AS INTEGER) * 1000",
            utc_ms,
        )
        .filter(|at: &i64| *at > utc_ms)
        .unwrap_or_else(|| (utc_ms.div_euclid(super::DAY_MS) + 1) * super::DAY_MS)
    }

    /// The local midnight that starts the month after `utc_ms`'s.
    pub fn next_month(utc_ms: i64) -> i64 {
        ask(
            "SELECT CAST(strftime('%s', date(?1 / 1000, 'unixepoch', 'localtime', \
             'start of month', '+1 month'), 'utc') AS INTEGER) * 1000",
            utc_ms,
        )
        .filter(|at: &i64| *at > utc_ms)
        .unwrap_or_else(|| utc_ms + 31 * super::DAY_MS)
    }

    /// `utc_ms` as local time for people, e.g. `2026-12-03 09:00`.
    pub fn time_words(utc_ms: i64) -> String {
        ask(
            "SELECT strftime('%Y-%m-%d %H:%M', ?1 / 1000, 'unixepoch', 'localtime')",
            utc_ms,
        )
        .unwrap_or_else(|| format!("{} UTC", crate::job::iso8601(utc_ms)))
    }
}

const DAY_MS: i64 = 24 * 60 * 60 * 1000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_local_calendar_moves_forward() {
        // 2026-12-02 15:00 UTC: whatever the zone, midnight is ahead and within a day and a
        // bit, and the month's start is before the day.
        let now = 1_796_223_600_000;
        let midnight = local::next_midnight(now);
        assert!(midnight > now && midnight - now <= DAY_MS + 3_600_000);
        assert!(local::next_month(now) >= midnight);
        assert!(local::month_start(now).ends_with("-01"));
        assert!(local::month_start(now) <= local::day(now));
        assert_eq!(local::day(midnight), local::day(midnight + 1000));
        assert_ne!(local::day(midnight - 1000), local::day(midnight));
        assert_eq!(local::time_words(midnight).len(), "2026-12-03 00:00".len());
        assert!(local::time_words(midnight).ends_with("00:00"));
    }

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
