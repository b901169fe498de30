//! Each storyteller's pace: how many of its jobs may start now, on the pool's clock.
//!
//! A storyteller says what its service takes ([`Capacity`]): requests at once, a minute, a day.
//! Before every claim the pool reserves room here, the store takes at most that many of each
//! storyteller's jobs (passing over the ones with no room, so an offline job behind 40 Gemini
//! jobs is not held up), and what was not taken is given back.
//!
//! The minute and the day are rolling windows of start times, not token buckets: a bucket that
//! starts full lets twice the limit through within one minute at a refill boundary, which a
//! server counting per rolling minute answers with 429s. A window never sends more than the
//! limit in any minute, and sends the whole limit at once when the window is free, so 20
//! requests at 10 a minute take one minute plus one answer, the least the limit allows.
//!
//! A 429 holds the storyteller until the time the server gave and lowers its per-minute pace to
//! four fifths of what it was managing (or of its limit), for as long as the pool runs.

use crate::storyteller::Capacity;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;

const MINUTE_MS: i64 = 60_000;
const DAY_MS: i64 = 24 * 60 * 60 * 1000;
/// Below this many requests a minute a 429 only holds the storyteller for the time given.
const MIN_PACE_TO_LEARN: u32 = 5;

/// One storyteller's recent starts and what it may do.
#[derive(Debug, Default)]
struct Lane {
    /// Start times within the last minute (ms, oldest first).
    minute: VecDeque<i64>,
    /// Start times within the last day.
    day: VecDeque<i64>,
    /// Jobs of it running in this pool.
    in_flight: u32,
    /// Nothing starts before this (a rate limit's wait).
    hold_until: i64,
    /// The per-minute pace learnt from 429s, below the limit (or where no limit was set).
    learnt_per_minute: Option<u32>,
}

impl Lane {
    fn forget_before(&mut self, now: i64) {
        while self.minute.front().is_some_and(|at| *at <= now - MINUTE_MS) {
            self.minute.pop_front();
        }
        while self.day.front().is_some_and(|at| *at <= now - DAY_MS) {
            self.day.pop_front();
        }
    }

    fn per_minute(&self, capacity: &Capacity) -> Option<u32> {
        match (capacity.per_minute, self.learnt_per_minute) {
            (Some(limit), Some(learnt)) => Some(limit.min(learnt)),
            (limit, learnt) => limit.or(learnt),
        }
    }

    /// How many may start at `now`.
    fn room(&mut self, capacity: &Capacity, now: i64) -> usize {
        self.forget_before(now);
        if now < self.hold_until {
            return 0;
        }
        let left = |limit: Option<u32>, used: usize| {
            limit.map_or(usize::MAX, |limit| (limit as usize).saturating_sub(used))
        };
        left(capacity.concurrent, self.in_flight as usize)
            .min(left(self.per_minute(capacity), self.minute.len()))
            .min(left(capacity.per_day, self.day.len()))
    }

    /// When room opens again, if it is closed now by time (not by jobs running).
    fn opens_at(&self, capacity: &Capacity, now: i64) -> Option<i64> {
        let mut at: Option<i64> = None;
        let mut later = |t: i64| at = Some(at.map_or(t, |a| a.max(t)));
        if now < self.hold_until {
            later(self.hold_until);
        }
        if let Some(limit) = self.per_minute(capacity) {
            if self.minute.len() >= limit as usize {
                // The start that leaves the window first makes the room.
                let index = self.minute.len() - limit as usize;
                later(self.minute[index] + MINUTE_MS);
            }
        }
        if let Some(limit) = capacity.per_day {
            if self.day.len() >= limit as usize {
                let index = self.day.len() - limit as usize;
                later(self.day[index] + DAY_MS);
            }
        }
        at
    }
}

/// Room reserved for one claim: how many of each limited storyteller's jobs it may take.
#[derive(Debug, Default)]
pub struct Reservation {
    at: i64,
    per_storyteller: BTreeMap<String, usize>,
}

impl Reservation {
    /// The room, as the store takes it.
    pub fn room(&self) -> &BTreeMap<String, usize> {
        &self.per_storyteller
    }
}

/// Every storyteller's pace in one pool. std Mutex: held for arithmetic only, never across an
/// await.
#[derive(Debug, Default)]
pub struct Limiter {
    lanes: Mutex<HashMap<String, Lane>>,
}

impl Limiter {
    /// Reserves room at `now` for up to `wanted` jobs of each storyteller in `capacities` that
    /// has limits (the others need no room).
    pub fn reserve(
        &self,
        capacities: &[(String, Capacity)],
        wanted: usize,
        now: i64,
    ) -> Reservation {
        let mut reservation = Reservation {
            at: now,
            per_storyteller: BTreeMap::new(),
        };
        let Ok(mut lanes) = self.lanes.lock() else {
            return reservation;
        };
        for (name, capacity) in capacities {
            let lane = lanes.entry(name.clone()).or_default();
            if !capacity.is_limited() && lane.learnt_per_minute.is_none() && now >= lane.hold_until
            {
                continue;
            }
            let room = lane.room(capacity, now).min(wanted);
            for _ in 0..room {
                lane.minute.push_back(now);
                lane.day.push_back(now);
            }
            lane.in_flight += room as u32;
            reservation.per_storyteller.insert(name.clone(), room);
        }
        reservation
    }

    /// Gives back the room a claim did not use: `taken` names the storyteller of each job it
    /// took.
    pub fn settle<'a>(&self, reservation: Reservation, taken: impl IntoIterator<Item = &'a str>) {
        let mut used: HashMap<&str, usize> = HashMap::new();
        for name in taken {
            *used.entry(name).or_default() += 1;
        }
        let Ok(mut lanes) = self.lanes.lock() else {
            return;
        };
        // Starts of storytellers without limits are kept for the last minute too: the pace
        // they were managing is where a first 429 slows them down from.
        for (name, n) in &used {
            if !reservation.per_storyteller.contains_key(*name) {
                let lane = lanes.entry((*name).to_owned()).or_default();
                lane.forget_before(reservation.at);
                lane.minute.extend(std::iter::repeat_n(reservation.at, *n));
                lane.in_flight += *n as u32;
            }
        }
        for (name, reserved) in &reservation.per_storyteller {
            let unused = reserved.saturating_sub(used.get(name.as_str()).copied().unwrap_or(0));
            let Some(lane) = lanes.get_mut(name) else {
                continue;
            };
            for _ in 0..unused {
                // The reservation's own entries, all at its time, are the newest of the lane
                // unless another reservation came after: remove one of them wherever it is.
                if let Some(index) = lane.minute.iter().rposition(|at| *at == reservation.at) {
                    lane.minute.remove(index);
                }
                if let Some(index) = lane.day.iter().rposition(|at| *at == reservation.at) {
                    lane.day.remove(index);
                }
            }
            lane.in_flight = lane.in_flight.saturating_sub(unused as u32);
        }
    }

    /// A job of `storyteller` that this pool ran has ended.
    pub fn finished(&self, storyteller: &str) {
        if let Ok(mut lanes) = self.lanes.lock() {
            if let Some(lane) = lanes.get_mut(storyteller) {
                lane.in_flight = lane.in_flight.saturating_sub(1);
            }
        }
    }

    /// The service said 429 at `now`: hold `storyteller` until `until`, and from now on start
    /// fewer a minute than it managed.
    pub fn rate_limited(&self, storyteller: &str, capacity: &Capacity, now: i64, until: i64) {
        let Ok(mut lanes) = self.lanes.lock() else {
            return;
        };
        let lane = lanes.entry(storyteller.to_owned()).or_default();
        lane.forget_before(now);
        lane.hold_until = lane.hold_until.max(until);
        // The pace to slow down from: the limit in force, else what it was managing. A few
        // requests a minute say nothing of a per-minute limit; the wait is enough there.
        let managed = u32::try_from(lane.minute.len()).unwrap_or(u32::MAX);
        let pace = lane.per_minute(capacity).unwrap_or(managed);
        if pace < MIN_PACE_TO_LEARN {
            tracing::info!(
                storyteller,
                wait_ms = until - now,
                "rate limited by the service"
            );
            return;
        }
        let slower = (pace.saturating_mul(4) / 5).max(1);
        lane.learnt_per_minute = Some(slower);
        tracing::info!(
            storyteller,
            per_minute = slower,
            wait_ms = until - now,
            "rate limited by the service; slowing down"
        );
    }

    /// The soonest time a storyteller held up by time (not by its running jobs) gets room.
    pub fn next_opening(&self, capacities: &[(String, Capacity)], now: i64) -> Option<i64> {
        let lanes = self.lanes.lock().ok()?;
        capacities
            .iter()
            .filter_map(|(name, capacity)| lanes.get(name)?.opens_at(capacity, now))
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gemini(per_minute: u32) -> Vec<(String, Capacity)> {
        vec![(
            "gemini".into(),
            Capacity {
                concurrent: None,
                per_minute: Some(per_minute),
                per_day: None,
            },
        )]
    }

    fn take(limiter: &Limiter, caps: &[(String, Capacity)], wanted: usize, now: i64) -> usize {
        let reservation = limiter.reserve(caps, wanted, now);
        let room = reservation
            .room()
            .get("gemini")
            .copied()
            .unwrap_or(usize::MAX);
        let taken = room.min(wanted);
        limiter.settle(reservation, std::iter::repeat_n("gemini", taken));
        for _ in 0..taken {
            limiter.finished("gemini");
        }
        taken
    }

    #[test]
    fn no_more_than_the_limit_starts_in_any_minute() {
        let limiter = Limiter::default();
        let caps = gemini(10);
        assert_eq!(take(&limiter, &caps, 40, 0), 10);
        assert_eq!(take(&limiter, &caps, 40, 30_000), 0);
        assert_eq!(limiter.next_opening(&caps, 30_000), Some(60_000));
        assert_eq!(take(&limiter, &caps, 40, 59_999), 0);
        assert_eq!(take(&limiter, &caps, 40, 60_000), 10);
    }

    #[test]
    fn room_not_taken_is_given_back() {
        let limiter = Limiter::default();
        let caps = gemini(3);
        let reservation = limiter.reserve(&caps, 3, 0);
        assert_eq!(reservation.room()["gemini"], 3);
        // The claim found one Gemini job.
        limiter.settle(reservation, ["gemini"]);
        assert_eq!(take(&limiter, &caps, 5, 1), 2);
    }

    #[test]
    fn running_jobs_count_against_concurrency_until_they_end() {
        let limiter = Limiter::default();
        let caps = vec![(
            "ollama".to_string(),
            Capacity {
                concurrent: Some(1),
                per_minute: None,
                per_day: None,
            },
        )];
        let first = limiter.reserve(&caps, 4, 0);
        assert_eq!(first.room()["ollama"], 1);
        limiter.settle(first, ["ollama"]);
        assert_eq!(limiter.reserve(&caps, 4, 1).room()["ollama"], 0);
        limiter.finished("ollama");
        assert_eq!(limiter.reserve(&caps, 4, 2).room()["ollama"], 1);
    }

    #[test]
    fn a_429_holds_the_storyteller_and_slows_it_down() {
        let limiter = Limiter::default();
        let caps = gemini(10);
        assert_eq!(take(&limiter, &caps, 10, 0), 10);
        limiter.rate_limited("gemini", &caps[0].1, 1_000, 29_300);
        assert_eq!(limiter.next_opening(&caps, 1_000), Some(60_000));
        // A minute on, 8 a minute (four fifths of 10) instead of 10.
        assert_eq!(take(&limiter, &caps, 10, 60_000), 8);
        // A storyteller with no limits is held for the time given, and learns a pace from
        // what it was managing when that says something.
        let unlimited = vec![("openai".to_string(), Capacity::UNLIMITED)];
        let reservation = limiter.reserve(&unlimited, 20, 0);
        assert!(reservation.room().is_empty());
        limiter.settle(reservation, std::iter::repeat_n("openai", 20));
        limiter.rate_limited("openai", &Capacity::UNLIMITED, 0, 5_000);
        assert_eq!(limiter.reserve(&unlimited, 5, 1_000).room()["openai"], 0);
        assert_eq!(limiter.next_opening(&unlimited, 1_000), Some(60_000));
        let at_pace = limiter.reserve(&unlimited, 50, 60_000);
        assert_eq!(at_pace.room()["openai"], 16, "four fifths of 20");
        // One request a minute that met a 429 is only held.
        let slow = Limiter::default();
        let reservation = slow.reserve(&unlimited, 1, 0);
        slow.settle(reservation, ["openai"]);
        slow.rate_limited("openai", &Capacity::UNLIMITED, 0, 1_000);
        assert_eq!(slow.next_opening(&unlimited, 10), Some(1_000));
        assert!(slow.reserve(&unlimited, 5, 1_000).room().is_empty());
    }

    #[test]
    fn a_daily_limit_counts_a_rolling_day() {
        let limiter = Limiter::default();
        let caps = vec![(
            "gemini".to_string(),
            Capacity {
                concurrent: None,
                per_minute: None,
                per_day: Some(2),
            },
        )];
        assert_eq!(take(&limiter, &caps, 5, 0), 2);
        assert_eq!(take(&limiter, &caps, 5, DAY_MS - 1), 0);
        assert_eq!(limiter.next_opening(&caps, 10), Some(DAY_MS));
        assert_eq!(take(&limiter, &caps, 5, DAY_MS), 2);
    }
}
