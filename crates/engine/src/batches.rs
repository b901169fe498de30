//! Telling when a batch (one add, one drop) has been told to the end, from the event stream
//! alone: for "your stories are ready" notifications and the like.
//!
//! [`BatchTracker`] is fed every event a subscriber gets, after being shown the jobs that were
//! unfinished when it started. It costs O(1) per event, however big the batch. A batch ends
//! when its last unfinished job finishes (succeeded, failed or cancelled); a batch whose jobs
//! were all removed before any finished ends silently. After a `resync` it must be started
//! again from a fresh listing: events were missed.

use crate::event::Event;
use crate::job::{BatchId, JobId, JobState};
use crate::wire::JobView;
use std::collections::HashMap;

/// How a batch ended.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BatchDone {
    /// The batch.
    pub batch_id: Option<BatchId>,
    /// Jobs told (from the cache too).
    pub succeeded: u32,
    /// Jobs that failed for good.
    pub failed: u32,
    /// Jobs cancelled.
    pub cancelled: u32,
}

#[derive(Default)]
struct Counts {
    unfinished: u32,
    done: BatchDone,
}

/// See the module doc.
#[derive(Default)]
pub struct BatchTracker {
    batches: HashMap<BatchId, Counts>,
    batch_of: HashMap<JobId, BatchId>,
}

impl BatchTracker {
    /// A tracker that knows of `unfinished` (queued or running jobs, e.g. from a listing).
    pub fn new<'a>(unfinished: impl IntoIterator<Item = &'a JobView>) -> BatchTracker {
        let mut tracker = BatchTracker::default();
        for job in unfinished {
            if !job.state.is_finished() {
                tracker.start(job.id, job.batch_id);
            }
        }
        tracker
    }

    /// Jobs still to finish, in every batch followed.
    pub fn unfinished(&self) -> usize {
        self.batch_of.len()
    }

    /// How far the batches still open have got: (jobs finished, jobs in all), `None` when no
    /// batch is open. What a window title or a taskbar progress bar shows: the work asked for
    /// since the queue was last idle, not the whole history.
    pub fn progress(&self) -> Option<(u32, u32)> {
        if self.batches.is_empty() {
            return None;
        }
        let (finished, unfinished) = self.batches.values().fold((0u32, 0u32), |(f, u), c| {
            let done = c.done.succeeded + c.done.failed + c.done.cancelled;
            (f.saturating_add(done), u.saturating_add(c.unfinished))
        });
        Some((finished, finished.saturating_add(unfinished)))
    }

    fn start(&mut self, job: JobId, batch: BatchId) {
        if self.batch_of.insert(job, batch).is_none() {
            self.batches.entry(batch).or_default().unfinished += 1;
        }
    }

    /// Applies one event; the batches it ended.
    pub fn apply(&mut self, event: &Event) -> Vec<BatchDone> {
        let mut ended = Vec::new();
        match event {
            Event::JobsAdded { batch_id, jobs } => {
                let counts = self.batches.entry(*batch_id).or_default();
                for job in jobs.iter() {
                    if job.state == JobState::Succeeded {
                        // Told at once, from the cache.
                        counts.done.succeeded += 1;
                    }
                }
                for job in jobs.iter().filter(|j| !j.state.is_finished()) {
                    self.start(job.id, *batch_id);
                }
                self.end_if_done(*batch_id, &mut ended);
            }
            Event::JobFinished { job_id, state, .. } => {
                if let Some(batch) = self.batch_of.remove(job_id) {
                    if let Some(counts) = self.batches.get_mut(&batch) {
                        counts.unfinished = counts.unfinished.saturating_sub(1);
                        match state {
                            JobState::Succeeded => counts.done.succeeded += 1,
                            JobState::Dead => counts.done.failed += 1,
                            JobState::Cancelled => counts.done.cancelled += 1,
                            JobState::Queued | JobState::Running => {}
                        }
                    }
                    self.end_if_done(batch, &mut ended);
                }
            }
            Event::JobsRemoved { job_ids } => {
                let mut touched = Vec::new();
                for id in job_ids {
                    if let Some(batch) = self.batch_of.remove(id) {
                        if let Some(counts) = self.batches.get_mut(&batch) {
                            counts.unfinished = counts.unfinished.saturating_sub(1);
                        }
                        touched.push(batch);
                    }
                }
                touched.dedup();
                for batch in touched {
                    self.end_if_done(batch, &mut ended);
                }
            }
            _ => {}
        }
        ended
    }

    fn end_if_done(&mut self, batch: BatchId, ended: &mut Vec<BatchDone>) {
        let Some(counts) = self.batches.get(&batch) else {
            return;
        };
        if counts.unfinished > 0 {
            return;
        }
        let done = counts.done;
        self.batches.remove(&batch);
        if done.succeeded + done.failed + done.cancelled > 0 {
            ended.push(BatchDone {
                batch_id: Some(batch),
                ..done
            });
        }
    }
}

impl BatchDone {
    /// One line for people: `3 stories told, 1 video failed`.
    pub fn summary(&self) -> String {
        let plural =
            |n: u32, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        let mut parts = vec![format!(
            "{} told",
            plural(self.succeeded, "story", "stories")
        )];
        if self.failed > 0 {
            parts.push(format!("{} failed", plural(self.failed, "video", "videos")));
        }
        if self.cancelled > 0 {
            parts.push(format!("{} cancelled", self.cancelled));
        }
        parts.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::Job;
    use std::sync::Arc;

    fn view(n: u128, batch: BatchId, state: JobState) -> JobView {
        JobView::from(&Job {
            batch_id: batch,
            ..Job::for_tests(n, state)
        })
    }

    fn finished(n: u128, state: JobState) -> Event {
        Event::JobFinished {
            job_id: JobId(uuid::Uuid::from_u128(n)),
            state,
            cached: false,
            error: None,
        }
    }

    #[test]
    fn a_batch_ends_when_its_last_job_finishes_with_its_counts() {
        let batch = BatchId(uuid::Uuid::from_u128(100));
        let other = BatchId(uuid::Uuid::from_u128(200));
        let mut tracker = BatchTracker::default();
        let jobs: Arc<[JobView]> = vec![
            view(1, batch, JobState::Queued),
            view(2, batch, JobState::Queued),
            view(3, batch, JobState::Succeeded),
        ]
        .into();
        assert!(tracker
            .apply(&Event::JobsAdded {
                batch_id: batch,
                jobs
            })
            .is_empty());
        let jobs: Arc<[JobView]> = vec![view(4, other, JobState::Queued)].into();
        tracker.apply(&Event::JobsAdded {
            batch_id: other,
            jobs,
        });
        // The open batches' progress: the cached story counts as finished.
        assert_eq!(tracker.progress(), Some((1, 4)));
        assert!(tracker.apply(&finished(1, JobState::Succeeded)).is_empty());
        assert_eq!(tracker.progress(), Some((2, 4)));
        assert!(tracker.apply(&finished(4, JobState::Dead)).len() == 1);
        // An ended batch leaves the figures.
        assert_eq!(tracker.progress(), Some((2, 3)));
        let ended = tracker.apply(&finished(2, JobState::Dead));
        assert_eq!(tracker.progress(), None);
        assert_eq!(
            ended,
            [BatchDone {
                batch_id: Some(batch),
                succeeded: 2,
                failed: 1,
                cancelled: 0
            }]
        );
        assert_eq!(ended[0].summary(), "2 stories told, 1 video failed");
        assert_eq!(tracker.unfinished(), 0);
        // A finish heard twice (another process's copy of the news) changes nothing.
        assert!(tracker.apply(&finished(2, JobState::Dead)).is_empty());
    }

    #[test]
    fn jobs_found_unfinished_at_start_and_removed_ones_are_followed() {
        let batch = BatchId(uuid::Uuid::from_u128(100));
        let unfinished = [
            view(1, batch, JobState::Running),
            view(2, batch, JobState::Queued),
        ];
        let mut tracker = BatchTracker::new(unfinished.iter());
        assert_eq!(tracker.unfinished(), 2);
        assert!(tracker.apply(&finished(1, JobState::Succeeded)).is_empty());
        let ended = tracker.apply(&Event::JobsRemoved {
            job_ids: vec![JobId(uuid::Uuid::from_u128(2))],
        });
        assert_eq!(ended.len(), 1);
        assert_eq!(ended[0].succeeded, 1);
        // Removed before anything finished: no news.
        let silent = BatchId(uuid::Uuid::from_u128(300));
        let jobs: Arc<[JobView]> = vec![view(5, silent, JobState::Queued)].into();
        tracker.apply(&Event::JobsAdded {
            batch_id: silent,
            jobs,
        });
        let ended = tracker.apply(&Event::JobsRemoved {
            job_ids: vec![JobId(uuid::Uuid::from_u128(5))],
        });
        assert!(ended.is_empty());
    }
}
