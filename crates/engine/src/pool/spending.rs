//! Spending caps: a storyteller that has spent its day's or its month's cap pauses until the
//! day or the month is over (local time), with its jobs kept queued and no attempt used.
//!
//! What was spent is read from the store's books (every process's attempts, succeeded or not),
//! after each attempt of a capped storyteller ends and before its worker claims another, at
//! the start of a run, and when the caps change. A cap raised or lifted lets a storyteller
//! paused by it go on at once. Attempts already under way when the cap is reached finish (what
//! they sent is paid for either way); none starts after it.

use super::PoolInner;
use crate::clock::local;
use crate::error::Result;
use crate::pricing::{dollars, SpendingCap};
use crate::store::StorytellerPause;
use crate::wire::PauseKind;
use std::collections::BTreeMap;

/// What a storyteller spent in the current day and month, and whether that reaches `cap`:
/// the pause to set, or `None`.
pub fn pause_for(
    storyteller: &str,
    cap: &SpendingCap,
    spent_today: u64,
    spent_this_month: u64,
    now_ms: i64,
) -> Option<StorytellerPause> {
    let name = storyteller_words(storyteller);
    if let Some(day_cap) = cap.per_day_micro_usd {
        if spent_today >= day_cap {
            let until = local::next_midnight(now_ms);
            return Some(StorytellerPause {
                kind: PauseKind::Spending,
                reason: format!(
                    "{name} has spent {} today, its daily cap of {} ({storyteller}.day-cap): its \
                     videos wait until {}, or raise the cap to go on now",
                    dollars(spent_today),
                    dollars(day_cap),
                    local::time_words(until)
                ),
                until_ms: Some(until),
            });
        }
    }
    if let Some(month_cap) = cap.per_month_micro_usd {
        if spent_this_month >= month_cap {
            let until = local::next_month(now_ms);
            return Some(StorytellerPause {
                kind: PauseKind::Spending,
                reason: format!(
                    "{name} has spent {} this month, its monthly cap of {} \
                     ({storyteller}.month-cap): its videos wait until {}, or raise the cap to go \
                     on now",
                    dollars(spent_this_month),
                    dollars(month_cap),
                    local::time_words(until)
                ),
                until_ms: Some(until),
            });
        }
    }
    None
}

/// A storyteller's name for people.
fn storyteller_words(name: &str) -> String {
    match name {
        "gemini" => "Gemini".into(),
        "openai" => "The OpenAI-compatible server".into(),
        "ollama" => "Ollama".into(),
        other => other.to_owned(),
    }
}

impl PoolInner {
    /// Whether `storyteller` has a cap.
    pub(super) fn is_capped(&self, storyteller: &str) -> bool {
        self.caps
            .read()
            .map(|caps| caps.get(storyteller).is_some_and(SpendingCap::is_set))
            .unwrap_or(false)
    }

    /// Pauses each capped storyteller in `storytellers` (every one, with `None`) whose
    /// spending reaches its cap, and lets go on one paused by a cap it no longer reaches.
    pub(super) async fn keep_to_spending_caps(&self, storytellers: Option<&[&str]>) -> Result<()> {
        let caps: BTreeMap<String, SpendingCap> = self
            .caps
            .read()
            .map(|caps| caps.clone())
            .unwrap_or_default();
        let now = self.clock.now_ms();
        let (today, month_start) = (local::day(now), local::month_start(now));
        let books = self.store.spending(month_start).await?;
        let paused = self.store.stats().await?.paused_storytellers;
        let names: Vec<String> = match storytellers {
            Some(names) => names.iter().map(|n| (*n).to_owned()).collect(),
            None => {
                let mut names: Vec<String> = caps.keys().cloned().collect();
                // A storyteller whose cap was lifted: it may be paused by it still.
                names.extend(
                    paused
                        .iter()
                        .filter(|p| p.kind == PauseKind::Spending)
                        .map(|p| p.storyteller.clone()),
                );
                names.sort();
                names.dedup();
                names
            }
        };
        for name in names {
            let cap = caps.get(&name).copied().unwrap_or_default();
            let mine = books.iter().filter(|d| d.storyteller == name);
            let month: u64 = mine.clone().map(|d| d.usage.cost_micro_usd).sum();
            let day: u64 = mine
                .filter(|d| d.day == today)
                .map(|d| d.usage.cost_micro_usd)
                .sum();
            let current = paused.iter().find(|p| p.storyteller == name);
            match pause_for(&name, &cap, day, month, now) {
                Some(pause) => {
                    let already = current.is_some_and(|p| p.kind == PauseKind::Spending);
                    // A pause of another kind (a refused key, the person's) says more: keep it.
                    if current.is_none() || already {
                        tracing::warn!(storyteller = %name, spent_today = day, spent_this_month = month, "spending cap reached; pausing the storyteller");
                        self.store
                            .set_storyteller_paused(name.clone(), Some(pause))
                            .await?;
                    }
                }
                None => {
                    if current.is_some_and(|p| p.kind == PauseKind::Spending) {
                        tracing::info!(storyteller = %name, "under its spending cap again; going on");
                        self.store
                            .set_storyteller_paused(name.clone(), None)
                            .await?;
                        self.wake.notify_one();
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cap_reached_pauses_until_the_day_or_the_month_is_over() {
        let now = 1_796_223_600_000;
        let cap = SpendingCap {
            per_day_micro_usd: Some(1_000_000),
            per_month_micro_usd: Some(5_000_000),
        };
        assert!(pause_for("gemini", &cap, 999_999, 4_999_999, now).is_none());
        let day = pause_for("gemini", &cap, 1_000_000, 1_000_000, now).unwrap();
        assert_eq!(day.kind, PauseKind::Spending);
        assert_eq!(day.until_ms, Some(local::next_midnight(now)));
        assert!(
            day.reason.starts_with(
                "Gemini has spent $1.00 today, its daily cap of $1.00 (gemini.day-cap)"
            ),
            "{}",
            day.reason
        );
        let month = pause_for("gemini", &cap, 10, 5_000_001, now).unwrap();
        assert_eq!(month.until_ms, Some(local::next_month(now)));
        assert!(
            month.reason.contains("monthly cap of $5.00"),
            "{}",
            month.reason
        );
        assert!(pause_for("gemini", &SpendingCap::default(), u64::MAX, u64::MAX, now).is_none());
    }
}
