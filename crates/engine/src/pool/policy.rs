//! What the pool does when a job fails or stops: pure decisions, no store, no clock of their
//! own, so they are tested on their own.
//!
//! - A transient failure (timeout, HTTP 429/5xx) retries with backoff while attempts remain;
//!   the last one makes the job dead, saying how many attempts were made.
//! - A permanent failure (not a video, HTTP 400) makes the job dead at once.
//! - An auth or setup failure (a refused API key, a missing or broken tool) would fail every
//!   other job the same way: the queue pauses with the reason, and the job goes back untouched,
//!   its attempt refunded.
//! - A full disk is the machine's fault too: the same, and the pool starts the queue again by
//!   itself once there is room where the write failed.
//! - A job stopped by a clean shutdown goes back untouched; one the person cancelled, or that
//!   another worker took over, has nothing left to record.

use crate::clock::duration_ms;
use crate::job::{ErrorKind, JobError};
use crate::retry::RetryPolicy;
use crate::store::Outcome;
use crate::storyteller::StoryError;

/// What to do about a failed attempt.
#[derive(Clone, Debug, PartialEq)]
pub struct FailureDecision {
    /// How the job's claim ends.
    pub outcome: Outcome,
    /// Pause the queue, with this reason for people.
    pub pause: Option<String>,
    /// Start the queue again by itself once there is room in this folder (a full disk).
    pub resume_when_room_at: Option<std::path::PathBuf>,
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
            FailureDecision {
                outcome: Outcome::Retry {
                    error: job_error,
                    run_after_ms: now_ms.saturating_add(duration_ms(delay)),
                },
                pause: None,
                resume_when_room_at: None,
            }
        }
        StoryError::Transient { .. } => FailureDecision {
            outcome: Outcome::Dead {
                error: JobError {
                    kind: ErrorKind::Transient,
                    message: format!("gave up after {attempts} attempts: {}", job_error.message),
                },
            },
            pause: None,
            resume_when_room_at: None,
        },
        StoryError::Permanent { .. } => FailureDecision {
            outcome: Outcome::Dead { error: job_error },
            pause: None,
            resume_when_room_at: None,
        },
        StoryError::Auth { message } | StoryError::Setup { message } => FailureDecision {
            pause: Some(message.clone()),
            outcome: Outcome::Released {
                error: Some(job_error),
            },
            resume_when_room_at: None,
        },
        StoryError::DiskFull { message, path } => FailureDecision {
            pause: Some(message.clone()),
            outcome: Outcome::Released {
                error: Some(job_error),
            },
            resume_when_room_at: Some(path.clone()),
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
            run_after_ms,
            error: stored,
        } = decision.outcome
        else {
            panic!("expected a retry: {decision:?}");
        };
        assert!((10_000..=12_000).contains(&run_after_ms), "{run_after_ms}");
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
            Outcome::Retry { run_after_ms, .. } if run_after_ms >= 30_000
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
    fn auth_and_setup_failures_pause_the_queue_and_keep_the_job() {
        for error in [
            StoryError::Auth {
                message: "key refused".into(),
            },
            StoryError::Setup {
                message: "ffmpeg missing".into(),
            },
        ] {
            let decision = after_failure(&error, 1, &policy(), 0);
            assert_eq!(decision.pause.as_deref(), Some(error.to_string().as_str()));
            assert!(matches!(
                decision.outcome,
                Outcome::Released { error: Some(_) }
            ));
        }
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
