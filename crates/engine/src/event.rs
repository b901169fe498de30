//! The engine's one typed event stream: everything a window or a progress bar shows is pushed here.
//!
//! Nothing polls the database for changes: the store publishes state changes as it commits them,
//! the pool publishes stages, progress and story text as they happen.

use crate::job::{Job, JobError, JobId, JobState, Stage};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

/// Counts of jobs per state, plus result-cache figures.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueStats {
    /// Jobs waiting.
    pub queued: u64,
    /// Jobs being worked on.
    pub running: u64,
    /// Jobs with a story.
    pub succeeded: u64,
    /// Jobs failed for good.
    pub dead: u64,
    /// Jobs stopped by the person.
    pub cancelled: u64,
    /// Jobs whose story came from the result cache.
    pub cache_hits: u64,
    /// Jobs that looked in the cache and had to be written afresh.
    pub cache_misses: u64,
    /// Why the queue is paused, when it is.
    pub paused: Option<String>,
}

impl QueueStats {
    /// Every job in the store.
    pub fn total(&self) -> u64 {
        self.queued + self.running + self.succeeded + self.dead + self.cancelled
    }
}

/// Something that happened; job events carry the id of the job they are about.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum Event {
    /// A job entered the store (as `queued`, or already `succeeded` from the cache).
    #[serde(rename_all = "camelCase")]
    JobAdded {
        /// The job.
        job_id: JobId,
        /// The whole job as stored.
        job: Box<Job>,
    },
    /// A job changed state, stage or progress.
    #[serde(rename_all = "camelCase")]
    JobUpdated {
        /// The job.
        job_id: JobId,
        /// Its state.
        state: JobState,
        /// Its stage.
        stage: Stage,
        /// 0..=1.
        progress: f64,
        /// Claims so far.
        attempts: u32,
        /// The last error, for a job waiting to retry.
        error: Option<JobError>,
    },
    /// Story text, as the storyteller writes it.
    #[serde(rename_all = "camelCase")]
    StoryDelta {
        /// The job.
        job_id: JobId,
        /// The next piece of text.
        text: String,
    },
    /// A job finished: succeeded, dead or cancelled.
    #[serde(rename_all = "camelCase")]
    JobFinished {
        /// The job.
        job_id: JobId,
        /// Its final state.
        state: JobState,
        /// Whether the story came from the cache.
        cached: bool,
        /// Why it failed, if it did.
        error: Option<JobError>,
    },
    /// A job was deleted.
    #[serde(rename_all = "camelCase")]
    JobRemoved {
        /// The job.
        job_id: JobId,
    },
    /// The queue's counts changed.
    QueueStats(QueueStats),
    /// The queue stopped claiming jobs; running ones finish.
    QueuePaused {
        /// Why, for people.
        reason: String,
    },
    /// The queue claims jobs again.
    QueueResumed,
}

impl Event {
    /// What `job`'s current state means to subscribers: [`Event::JobFinished`] once it has
    /// finished, [`Event::JobUpdated`] before.
    pub fn about(job: &Job) -> Event {
        if job.state.is_finished() {
            Event::JobFinished {
                job_id: job.id,
                state: job.state,
                cached: job.cached,
                error: job.error.clone(),
            }
        } else {
            Event::JobUpdated {
                job_id: job.id,
                state: job.state,
                stage: job.stage,
                progress: job.progress,
                attempts: job.attempts,
                error: job.error.clone(),
            }
        }
    }

    /// The job this event is about, if it is about one.
    pub fn job_id(&self) -> Option<JobId> {
        match self {
            Event::JobAdded { job_id, .. }
            | Event::JobUpdated { job_id, .. }
            | Event::StoryDelta { job_id, .. }
            | Event::JobFinished { job_id, .. }
            | Event::JobRemoved { job_id } => Some(*job_id),
            Event::QueueStats(_) | Event::QueuePaused { .. } | Event::QueueResumed => None,
        }
    }
}

/// Publishes [`Event`]s to every subscriber; cheap to clone.
#[derive(Clone, Debug)]
pub struct EventBus {
    sender: broadcast::Sender<Event>,
}

impl EventBus {
    /// Room for this many unread events per subscriber before the slowest one skips ahead.
    pub const CAPACITY: usize = 8192;

    /// A bus with no subscribers yet.
    pub fn new() -> Self {
        let (sender, _) = broadcast::channel(Self::CAPACITY);
        Self { sender }
    }

    /// Sends to every current subscriber; an event with no subscriber is dropped.
    pub fn publish(&self, event: Event) {
        // A send error only means nobody is listening, which is fine.
        let _ = self.sender.send(event);
    }

    /// A new receiver of every event published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.sender.subscribe()
    }
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new()
    }
}
