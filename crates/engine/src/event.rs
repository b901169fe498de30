//! The engine's one typed event stream: everything a window or a progress bar shows is pushed
//! here, in the [wire](crate::wire) shape, so the desktop bridge forwards events as they are.
//!
//! Nothing polls the database for changes: the store publishes state changes as it commits them,
//! the pool publishes stages, progress and story text as they happen, and changes other processes
//! commit to the same home arrive through the store's feed of them (see
//! [`JobStore::follow_others`](crate::store::JobStore::follow_others)).
//!
//! Every event travels in an [`Envelope`] with a sequence number, one counter per process
//! (`1, 2, 3, …`). The JSON of an envelope is the event's own object with `seq` beside `type`:
//!
//! ```json
//! {"seq":41,"type":"jobsAdded","batchId":"…","jobs":[{ …a job… }]}
//! {"seq":42,"type":"jobUpdated","jobId":"…","state":"running","stage":"analysing","progress":0.4,"attempts":1,"error":null}
//! {"seq":43,"type":"storyDelta","jobId":"…","attempt":1,"offset":0,"text":"This video runs"}
//! {"seq":44,"type":"storyDelta","jobId":"…","attempt":1,"offset":15,"text":" for 3 seconds."}
//! {"seq":45,"type":"jobFinished","jobId":"…","state":"succeeded","cached":false,"error":null}
//! {"seq":46,"type":"jobsRemoved","jobIds":["…"]}
//! {"seq":47,"type":"queueStats","stats":{"queued":0,"running":0,"succeeded":1,"dead":0,"cancelled":0,"cacheHits":0,"cacheMisses":1,"paused":null}}
//! {"seq":48,"type":"queuePaused","reason":"paused by the user"}
//! {"seq":52,"type":"uploadProgress","jobId":"…","sentBytes":8388608,"totalBytes":52428800}
//! {"seq":53,"type":"jobSpent","jobId":"…","usage":{"inputTokens":9120,"audioInputTokens":960,"outputTokens":412,"costUsd":0.003066}}
//! {"seq":54,"type":"storytellerPaused","pause":{"storyteller":"gemini","reason":"…","kind":"quota","until":"2026-12-03T08:00:00.000Z","queued":38}}
//! {"seq":55,"type":"storytellerResumed","storyteller":"gemini"}
//! {"seq":49,"type":"queueResumed"}
//! {"seq":50,"type":"concurrencyChanged","concurrency":4}
//! {"seq":51,"type":"resync","missed":1200}
//! ```
//!
//! - A story arrives as deltas: `offset` is where `text` starts in the story, in UTF-16 code units
//!   (JavaScript's `string.length`), and `attempt` says which attempt wrote it. A delta of a newer
//!   attempt replaces what an abandoned one wrote; a delta whose offset is not the current length
//!   shows a gap, and the story is re-read.
//! - One add is one `jobsAdded` event however many files it holds, and one clear one
//!   `jobsRemoved`, so a 10,000-file drop does not flood the stream.
//! - A subscriber that falls more than [`EventBus::CAPACITY`] events behind gets `resync` (with how
//!   many it missed) instead of silence, and re-reads what it shows.

use crate::job::{BatchId, Job, JobError, JobId, JobState, Priority, Stage};
use crate::wire::{JobView, QueueStats, StorytellerPauseView, UsageView};
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

/// Something that happened; job events carry the id of the job they are about.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum Event {
    /// One add's new jobs (as `queued`, or already `succeeded` from the cache).
    #[serde(rename_all = "camelCase")]
    JobsAdded {
        /// Their batch.
        batch_id: BatchId,
        /// The jobs, in the order they were added; shared, so every subscriber of a 10,000-file
        /// add gets the same list rather than a copy of its own.
        jobs: Arc<[JobView]>,
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
        /// Attempts so far.
        attempts: u32,
        /// The last error, for a job waiting to retry.
        error: Option<JobError>,
    },
    /// Story text, as the storyteller writes it.
    #[serde(rename_all = "camelCase")]
    StoryDelta {
        /// The job.
        job_id: JobId,
        /// The attempt writing it (a retry starts the story again).
        attempt: u32,
        /// Where `text` starts in the story, in UTF-16 code units.
        offset: u32,
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
    /// Bytes of a job's video sent to its storyteller's service so far.
    #[serde(rename_all = "camelCase")]
    UploadProgress {
        /// The job.
        job_id: JobId,
        /// Bytes sent (a JavaScript number: exact up to 2^53).
        sent_bytes: f64,
        /// Bytes in all.
        total_bytes: f64,
    },
    /// What a job has spent in all, after an attempt booked its tokens and cost (whatever the
    /// attempt's end: money spent is never lost from the books).
    #[serde(rename_all = "camelCase")]
    JobSpent {
        /// The job.
        job_id: JobId,
        /// Its totals over every attempt.
        usage: UsageView,
    },
    /// A storyteller stopped starting jobs (its key refused, its quota spent, its model gone,
    /// its service not running, its spending cap reached, or the person's say); the other
    /// storytellers go on. Its name is what the event is about.
    #[serde(rename_all = "camelCase")]
    StorytellerPaused {
        /// Why, and when it goes on by itself.
        pause: StorytellerPauseView,
    },
    /// A storyteller starts jobs again.
    #[serde(rename_all = "camelCase")]
    StorytellerResumed {
        /// The storyteller.
        storyteller: String,
    },
    /// A job was given another priority.
    #[serde(rename_all = "camelCase")]
    PriorityChanged {
        /// The job.
        job_id: JobId,
        /// Its priority now.
        priority: Priority,
    },
    /// Jobs were deleted.
    #[serde(rename_all = "camelCase")]
    JobsRemoved {
        /// The jobs.
        job_ids: Vec<JobId>,
    },
    /// The queue's counts changed.
    QueueStats {
        /// The counts now.
        stats: QueueStats,
    },
    /// The queue stopped starting jobs; running ones finish.
    QueuePaused {
        /// Why, for people.
        reason: String,
    },
    /// The queue starts jobs again.
    QueueResumed,
    /// How many jobs run at once changed.
    ConcurrencyChanged {
        /// Jobs run at once now.
        concurrency: u32,
    },
    /// The settings changed, here or in another process (a `storyteller config set` beside
    /// the window): what new jobs get, the concurrency, the storytellers' addresses and prices.
    /// They are in force already; a front end showing them reads them again.
    SettingsChanged,
    /// A finished job's video was moved (into its watched folder's done folder).
    #[serde(rename_all = "camelCase")]
    JobMoved {
        /// The job.
        job_id: JobId,
        /// Where its video is now.
        source: String,
    },
    /// Watched folders were added, removed, paused or changed, here or in another process: a
    /// front end showing them reads them again.
    WatchedFoldersChanged,
    /// A watched folder's status changed (watching, missing, error, …). The folder's path is
    /// what the event is about.
    #[serde(rename_all = "camelCase")]
    WatchedFolderStatus {
        /// The folder.
        folder: String,
        /// Its status now.
        status: crate::watcher::watch::WatchStatus,
    },
    /// This subscriber fell behind and missed events: re-read the state it shows.
    Resync {
        /// How many events it missed.
        missed: u32,
    },
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

    /// The jobs this event is about (none for queue-wide events).
    pub fn job_ids(&self) -> Vec<JobId> {
        match self {
            Event::JobsAdded { jobs, .. } => jobs.iter().map(|j| j.id).collect(),
            Event::JobUpdated { job_id, .. }
            | Event::StoryDelta { job_id, .. }
            | Event::PriorityChanged { job_id, .. }
            | Event::UploadProgress { job_id, .. }
            | Event::JobSpent { job_id, .. }
            | Event::JobMoved { job_id, .. }
            | Event::JobFinished { job_id, .. } => vec![*job_id],
            Event::JobsRemoved { job_ids } => job_ids.clone(),
            Event::QueueStats { .. }
            | Event::QueuePaused { .. }
            | Event::QueueResumed
            | Event::ConcurrencyChanged { .. }
            | Event::StorytellerPaused { .. }
            | Event::StorytellerResumed { .. }
            | Event::SettingsChanged
            | Event::WatchedFoldersChanged
            | Event::WatchedFolderStatus { .. }
            | Event::Resync { .. } => Vec::new(),
        }
    }
}

/// An event with its place in this process's stream.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// 1, 2, 3, … per process: a JavaScript number (written as an integer, exact up to 2^53).
    #[serde(serialize_with = "whole_number")]
    #[cfg_attr(feature = "specta", specta(type = f64))]
    pub seq: f64,
    /// What happened.
    #[serde(flatten)]
    pub event: Event,
}

/// Writes a whole `f64` as an integer (`41`, not `41.0`).
fn whole_number<S: serde::Serializer>(value: &f64, serializer: S) -> Result<S::Ok, S::Error> {
    if value.fract() == 0.0 && (0.0..=9_007_199_254_740_992.0).contains(value) {
        serializer.serialize_u64(*value as u64)
    } else {
        serializer.serialize_f64(*value)
    }
}

/// Publishes [`Event`]s to every subscriber; cheap to clone.
#[derive(Clone, Debug)]
pub struct EventBus {
    // The std Mutex numbers and sends in one step, so sequence numbers arrive in order; it is
    // held for a channel send only, never across an await.
    sender: Arc<Mutex<(u64, broadcast::Sender<Envelope>)>>,
}

impl EventBus {
    /// Room for this many unread events per subscriber before the slowest one must resync.
    pub const CAPACITY: usize = 8192;

    /// A bus with no subscribers yet.
    pub fn new() -> Self {
        let (sender, _) = broadcast::channel(Self::CAPACITY);
        Self {
            sender: Arc::new(Mutex::new((0, sender))),
        }
    }

    /// Sends to every current subscriber; an event with no subscriber is dropped.
    pub fn publish(&self, event: Event) {
        let Ok(mut guard) = self.sender.lock() else {
            return;
        };
        let (seq, sender) = &mut *guard;
        if sender.receiver_count() == 0 {
            return;
        }
        *seq += 1;
        // A send error only means nobody is listening, which is fine.
        let _ = sender.send(Envelope {
            seq: *seq as f64,
            event,
        });
    }

    /// A new subscription to every event published from now on.
    pub fn subscribe(&self) -> Subscription {
        let (last_seq, receiver) = match self.sender.lock() {
            Ok(guard) => (guard.0, guard.1.subscribe()),
            Err(poisoned) => {
                let guard = poisoned.into_inner();
                (guard.0, guard.1.subscribe())
            }
        };
        Subscription { receiver, last_seq }
    }
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new()
    }
}

/// One subscriber's view of the stream: every event in order, or a [`Event::Resync`] where it
/// fell behind.
#[derive(Debug)]
pub struct Subscription {
    receiver: broadcast::Receiver<Envelope>,
    last_seq: u64,
}

impl Subscription {
    /// The next event; `None` once the engine has gone.
    pub async fn recv(&mut self) -> Option<Envelope> {
        match self.receiver.recv().await {
            Ok(envelope) => Some(self.seen(envelope)),
            Err(broadcast::error::RecvError::Lagged(missed)) => Some(self.resync(missed)),
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }

    /// The next event if one is waiting.
    pub fn try_recv(&mut self) -> Option<Envelope> {
        match self.receiver.try_recv() {
            Ok(envelope) => Some(self.seen(envelope)),
            Err(broadcast::error::TryRecvError::Lagged(missed)) => Some(self.resync(missed)),
            Err(_) => None,
        }
    }

    fn seen(&mut self, envelope: Envelope) -> Envelope {
        self.last_seq = envelope.seq as u64;
        envelope
    }

    fn resync(&mut self, missed: u64) -> Envelope {
        // Numbered as the last event it stands for, so the next real one follows on.
        self.last_seq += missed;
        Envelope {
            seq: self.last_seq as f64,
            event: Event::Resync {
                missed: crate::wire::saturate(missed),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_lagging_subscriber_gets_a_resync_not_silence() {
        let bus = EventBus::new();
        let mut slow = bus.subscribe();
        let extra = 10;
        for _ in 0..EventBus::CAPACITY + extra {
            bus.publish(Event::QueueResumed);
        }
        let first = slow.recv().await.unwrap();
        assert_eq!(
            first.event,
            Event::Resync {
                missed: extra as u32
            }
        );
        let next = slow.recv().await.unwrap();
        assert_eq!(next.seq, first.seq + 1.0, "numbering carries on");
        assert_eq!(next.event, Event::QueueResumed);
    }

    #[tokio::test]
    async fn sequence_numbers_count_up_from_one() {
        let bus = EventBus::new();
        let mut events = bus.subscribe();
        bus.publish(Event::QueueResumed);
        bus.publish(Event::QueuePaused { reason: "x".into() });
        assert_eq!(events.recv().await.unwrap().seq, 1.0);
        assert_eq!(events.recv().await.unwrap().seq, 2.0);
    }
}
