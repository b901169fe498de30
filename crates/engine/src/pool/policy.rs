//! What the pool does when a job fails or stops: pure decisions, no store, no clock of their
//! own, so they are tested on their own.
//!
//! - A transient failure (timeout, HTTP 429/5xx) retries with backoff while attempts remain;
//!   the last one makes the job dead, saying how many attempts were made.
//! - A permanent failure (not a video, HTTP 400) makes the job dead at once.
//! - A setup failure (a missing or broken tool) would fail every other job the same way: the
//!   queue pauses with the reason, and the job goes back untouched, its attempt refunded.
//! - What only one storyteller's jobs meet pauses that storyteller alone, the job going back
//!   untouched: a refused key or a model that is not there (until the person acts), a spent
//!   quota (until it resets), a service that is not running (looked at again shortly).
//! - A rate limit is no fault of the job: it goes back with its attempt refunded, not before
//!   the time the server gave, and the pool slows that storyteller down.
//! - A full disk is the machine's fault too: the same, and the pool starts the queue again by
//!   itself once there is room where the write failed.
//! - A job stopped by a clean shutdown goes back untouched; one the person cancelled, or that
//!   another worker took over, has nothing left to record.

use crate::clock::duration_ms;
use crate::job::{ErrorKind, JobError};
use crate::retry::RetryPolicy;
use crate::store::{Outcome, StorytellerPause};
use crate::storyteller::StoryError;
use crate::wire::PauseKind;
use std::time::Duration;

/// What to do about a failed attempt.
#[derive(Clone, Debug, PartialEq)]
pub struct FailureDecision {
    /// How the job's claim ends.
    pub outcome: Outcome,
    /// Pause the queue, with this reason for people.
    pub pause: Option<String>,
    /// Pause the job's storyteller alone.
    pub pause_storyteller: Option<StorytellerPause>,
    /// The service asked for a slower pace: start no job of this storyteller before this time
    /// (ms), and fewer a minute from now on.
    pub slow_down_until: Option<i64>,
    /// Start the queue again by itself once there is room in this folder (a full disk).
    pub resume_when_room_at: Option<std::path::PathBuf>,
}

/// How soon a storyteller whose service was not reachable is tried again.
pub const UNREACHABLE_RECHECK: Duration = Duration::from_secs(30);
/// How long a rate-limited storyteller waits when the server did not say.
pub const RATE_LIMIT_WAIT: Duration = Duration::from_secs(20);

impl FailureDecision {
    fn only(outcome: Outcome) -> Self {
        FailureDecision {
            outcome,
            pause: None,
            pause_storyteller: None,
            slow_down_until: None,
            resume_when_room_at: None,
        }
    }

    fn storyteller_paused(job_error: JobError, kind: PauseKind, until_ms: Option<i64>) -> Self {
        FailureDecision {
            pause_storyteller: Some(StorytellerPause {
                kind,
                reason: job_error.message.clone(),
                until_ms,
            }),
            ..FailureDecision::only(Outcome::Released {
                error: Some(job_error),
            })
        }
    }
}

/// Decides what a failure on the job's `attempts`-th attempt means, at `now_ms`.
pub fn after_failure(
    error: &StoryError,
    attempts: u32,
    retry: &RetryPolicy,
    now_ms: i64,
) -> FailureDecision {
    let job_error = error.to_job_error();
    match error {
        StoryError::Transient { retry_after, .. } if retry.may_retry(attempts) => {
            let delay = retry.delay(attempts, *retry_after);
            FailureDecision::only(Outcome::Retry {
                error: job_error,
                wait: delay,
            })
        }
        StoryError::Transient { .. } => FailureDecision::only(Outcome::Dead {
            error: JobError {
                kind: ErrorKind::Transient,
                message: format!("gave up after {attempts} attempts: {}", job_error.message),
            },
        }),
        StoryError::Permanent { .. } => FailureDecision::only(Outcome::Dead { error: job_error }),
        StoryError::RateLimited { retry_after, .. } => {
            let wait = retry_after
                .unwrap_or(RATE_LIMIT_WAIT)
                .min(crate::storyteller::http::MAX_RETRY_AFTER);
            FailureDecision {
                slow_down_until: Some(now_ms.saturating_add(duration_ms(wait))),
                ..FailureDecision::only(Outcome::Deferred {
                    error: job_error,
                    wait,
                })
            }
        }
        StoryError::QuotaExhausted { until_ms, .. } => {
            FailureDecision::storyteller_paused(job_error, PauseKind::Quota, Some(*until_ms))
        }
        StoryError::Auth { .. } => {
            FailureDecision::storyteller_paused(job_error, PauseKind::Auth, None)
        }
        StoryError::ModelUnavailable { .. } => {
            FailureDecision::storyteller_paused(job_error, PauseKind::Model, None)
        }
        StoryError::Unreachable { .. } => FailureDecision::storyteller_paused(
            job_error,
            PauseKind::Unreachable,
            Some(now_ms.saturating_add(duration_ms(UNREACHABLE_RECHECK))),
        ),
        StoryError::Setup { message } => FailureDecision {
            pause: Some(message.clone()),
            ..FailureDecision::only(Outcome::Released {
                error: Some(job_error),
            })
        },
        StoryError::DiskFull { message, path } => FailureDecision {
            pause: Some(message.clone()),
            resume_when_room_at: Some(path.clone()),
            ..FailureDecision::only(Outcome::Released {
                error: Some(job_error),
            })
        },
    }
}

/// Why a running job's token fired.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// The person cancelled it; the store already says so.
    Cancelled,
    /// Another worker or process took it over (cancelled elsewhere, reclaimed after a stall).
    LeaseLost,
    /// The pool is shutting down: put the job back.
    Shutdown,
}

/// What to record for a job stopped for `reason`: only a shutdown puts it back (untouched).
pub fn after_stop(reason: StopReason) -> Option<Outcome> {
    match reason {
        StopReason::Shutdown => Some(Outcome::Released { error: None }),
        StopReason::Cancelled | StopReason::LeaseLost => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(8),
            max_attempts: 3,
        }
    }

    #[test]
    fn transient_failures_retry_with_backoff_until_attempts_run_out() {
        let error = StoryError::transient("timed out");
        let decision = after_failure(&error, 2, &policy(), 10_000);
        let Outcome::Retry {
            wait,
            error: stored,
        } = decision.outcome
        else {
            panic!("expected a retry: {decision:?}");
        };
        assert!(
            (Duration::ZERO..=Duration::from_secs(2)).contains(&wait),
            "{wait:?}"
        );
        assert_eq!(stored.kind, ErrorKind::Transient);
        assert_eq!(decision.pause, None);

        let last = after_failure(&error, 3, &policy(), 10_000);
        let Outcome::Dead { error: stored } = last.outcome else {
            panic!("expected dead: {last:?}");
        };
        assert_eq!(stored.message, "gave up after 3 attempts: timed out");
    }

    #[test]
    fn retry_after_is_a_floor() {
        let error = StoryError::Transient {
            message: "slow down".into(),
            retry_after: Some(Duration::from_secs(30)),
        };
        let decision = after_failure(&error, 1, &policy(), 0);
        assert!(matches!(
            decision.outcome,
            Outcome::Retry { wait, .. } if wait >= Duration::from_secs(30)
        ));
    }

    #[test]
    fn permanent_failures_are_dead_at_once() {
        let decision = after_failure(&StoryError::permanent("not a video"), 1, &policy(), 0);
        assert_eq!(
            decision.outcome,
            Outcome::Dead {
                error: JobError {
                    kind: ErrorKind::Permanent,
                    message: "not a video".into()
                }
            }
        );
    }

    #[test]
    fn setup_failures_pause_the_queue_and_keep_the_job() {
        let error = StoryError::Setup {
            message: "ffmpeg missing".into(),
        };
        let decision = after_failure(&error, 1, &policy(), 0);
        assert_eq!(decision.pause.as_deref(), Some("ffmpeg missing"));
        assert_eq!(decision.pause_storyteller, None);
        assert!(matches!(
            decision.outcome,
            Outcome::Released { error: Some(_) }
        ));
    }

    #[test]
    fn what_only_one_storyteller_meets_pauses_that_storyteller_alone() {
        let cases = [
            (
                StoryError::Auth {
                    message: "key refused".into(),
                },
                PauseKind::Auth,
                None,
            ),
            (
                StoryError::ModelUnavailable {
                    message: "no such model".into(),
                },
                PauseKind::Model,
                None,
            ),
            (
                StoryError::QuotaExhausted {
                    message: "daily quota".into(),
                    until_ms: 99_000,
                },
                PauseKind::Quota,
                Some(99_000),
            ),
            (
                StoryError::Unreachable {
                    message: "not running".into(),
                },
                PauseKind::Unreachable,
                Some(1_000 + 30_000),
            ),
        ];
        for (error, kind, until_ms) in cases {
            let decision = after_failure(&error, 3, &policy(), 1_000);
            assert_eq!(decision.pause, None, "{error}: the queue goes on");
            let pause = decision.pause_storyteller.expect("storyteller paused");
            assert_eq!((pause.kind, pause.until_ms), (kind, until_ms));
            assert_eq!(pause.reason, error.to_string());
            // Back untouched, even on the last attempt: no fault of the video.
            assert!(matches!(
                decision.outcome,
                Outcome::Released { error: Some(_) }
            ));
        }
    }

    #[test]
    fn a_rate_limit_defers_the_job_with_its_attempt_refunded_and_slows_down() {
        let error = StoryError::RateLimited {
            message: "slow down".into(),
            retry_after: Some(Duration::from_millis(28_300)),
        };
        // The last attempt too: a rate limit is never the job's fault.
        let decision = after_failure(&error, 3, &policy(), 10_000);
        assert_eq!(decision.slow_down_until, Some(38_300));
        assert_eq!(
            decision.outcome,
            Outcome::Deferred {
                error: error.to_job_error(),
                wait: Duration::from_millis(28_300)
            }
        );
        let unsaid = StoryError::RateLimited {
            message: "slow down".into(),
            retry_after: None,
        };
        assert_eq!(
            after_failure(&unsaid, 1, &policy(), 0).slow_down_until,
            Some(20_000)
        );
    }

    #[test]
    fn only_a_shutdown_puts_a_stopped_job_back() {
        assert_eq!(
            after_stop(StopReason::Shutdown),
            Some(Outcome::Released { error: None })
        );
        assert_eq!(after_stop(StopReason::Cancelled), None);
        assert_eq!(after_stop(StopReason::LeaseLost), None);
    }
}
