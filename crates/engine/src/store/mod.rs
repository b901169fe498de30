//! The job store: where jobs live, behind the narrow [`JobStore`] interface.
//!
//! The interface is the whole contract a pool needs: enqueue, claim, heartbeat, report, finish,
//! reclaim, a few person-driven controls and queries; state changes are published on the
//! [`EventBus`](crate::event::EventBus) as they commit. [`SqliteStore`] keeps jobs in one local
//! SQLite file; a server-backed store (Postgres or Redis) for teams can sit behind the same trait.
//!
//! - [`schema`]: tables and migrations.
//! - [`sqlite`]: the SQLite implementation.
//! - `writer`: the group-commit writing thread.

pub mod schema;
pub mod sqlite;
mod writer;

pub use sqlite::SqliteStore;

use crate::error::Result;
use crate::event::QueueStats;
use crate::job::{BatchId, Job, JobError, JobId, JobState, NewJob, Stage, Usage};
use crate::storyteller::BoxFuture;
use std::time::Duration;

/// What every store method returns: a boxed future, so stores can live behind `dyn JobStore`.
pub type StoreFuture<'a, T> = BoxFuture<'a, Result<T>>;

/// How a claimed job ended, as its worker reports it.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// The story is written.
    Succeeded {
        /// The story.
        story: String,
        /// Media facts found on the way.
        media: Option<serde_json::Value>,
        /// Tokens and cost.
        usage: Usage,
    },
    /// Failed transiently: queue it again, not before `run_after_ms`.
    Retry {
        /// What went wrong.
        error: JobError,
        /// Earliest next claim (ms since the Unix epoch).
        run_after_ms: i64,
    },
    /// Failed for good.
    Dead {
        /// What went wrong.
        error: JobError,
    },
    /// Put back untouched (clean shutdown, queue paused by an auth error): the attempt is refunded.
    Released {
        /// Why, if it was an error.
        error: Option<JobError>,
    },
}

/// What a deletion removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Removed {
    /// Jobs deleted.
    pub jobs: u64,
    /// Content hashes no remaining job refers to: their thumbnails can go too.
    pub orphaned_hashes: Vec<String>,
}

/// Which jobs a query returns.
#[derive(Clone, Debug, Default)]
pub struct JobFilter {
    /// Only jobs in this state.
    pub state: Option<JobState>,
    /// Only jobs of this batch.
    pub batch: Option<BatchId>,
    /// Only these jobs.
    pub ids: Option<Vec<JobId>>,
    /// At most this many (oldest first).
    pub limit: Option<u64>,
}

/// The narrow interface between the task pool (or a UI) and wherever jobs are kept.
pub trait JobStore: Send + Sync + 'static {
    /// Adds `jobs` as one batch. A job whose story is already in the result cache is added
    /// as `succeeded`, marked cached.
    fn enqueue(&self, jobs: Vec<NewJob>) -> StoreFuture<'_, Vec<Job>>;

    /// Atomically takes up to `max` ready jobs for `owner`, leased for `lease`, in claim order
    /// (priority, then round-robin across batches, then FIFO). Returns none while paused.
    fn claim(&self, owner: &str, max: usize, lease: Duration) -> StoreFuture<'_, Vec<Job>>;

    /// Renews the leases of every job `owner` holds; returns the ids it still holds.
    fn heartbeat(&self, owner: &str, lease: Duration) -> StoreFuture<'_, Vec<JobId>>;

    /// Records a running job's stage and progress.
    fn report(&self, id: JobId, owner: &str, stage: Stage, progress: f64) -> StoreFuture<'_, ()>;

    /// Records that a running job's file changed since it was added: its new size, mtime and
    /// content hash (and so its result-cache key), so its story is cached under what was told.
    fn update_source(
        &self,
        id: JobId,
        owner: &str,
        size: u64,
        mtime_ms: i64,
        content_hash: String,
    ) -> StoreFuture<'_, ()>;

    /// Ends `owner`'s claim on job `id` with `outcome`.
    fn finish(&self, id: JobId, owner: &str, outcome: Outcome) -> StoreFuture<'_, Job>;

    /// [`JobStore::finish`], then in the same transaction claims the next ready job for `owner`
    /// (if any): a worker moves straight on without a second round trip.
    fn finish_and_claim(
        &self,
        id: JobId,
        owner: &str,
        outcome: Outcome,
        lease: Duration,
    ) -> StoreFuture<'_, (Job, Option<Job>)>;

    /// Returns running jobs whose lease expired, or whose owner is in `dead_owners`, to the
    /// queue; a job already claimed `max_attempts` times is marked dead instead, so a video that
    /// kills its process cannot loop forever. Returns the ids touched.
    fn reclaim(&self, dead_owners: Vec<String>, max_attempts: u32) -> StoreFuture<'_, Vec<JobId>>;

    /// Cancels a queued or running job.
    fn cancel(&self, id: JobId) -> StoreFuture<'_, Job>;

    /// Queues a dead or cancelled job again, with fresh attempts.
    fn retry(&self, id: JobId) -> StoreFuture<'_, Job>;

    /// Deletes a job that is not running.
    fn delete(&self, id: JobId) -> StoreFuture<'_, Removed>;

    /// Deletes every finished job.
    fn clear_finished(&self) -> StoreFuture<'_, Removed>;

    /// Pauses claiming (with a reason people see) or, with `None`, resumes it.
    fn set_paused(&self, reason: Option<String>) -> StoreFuture<'_, ()>;

    /// One job, by id or unique id prefix.
    fn get(&self, id_or_prefix: &str) -> StoreFuture<'_, Job>;

    /// Jobs matching `filter`, oldest first.
    fn list(&self, filter: JobFilter) -> StoreFuture<'_, Vec<Job>>;

    /// Counts per state, cache figures, pause reason.
    fn stats(&self) -> StoreFuture<'_, QueueStats>;

    /// When the next queued job becomes ready, if one is waiting for its `run_after`.
    fn next_ready_at(&self) -> StoreFuture<'_, Option<i64>>;

    /// The owners holding running jobs (to check which of them are still alive).
    fn lease_owners(&self) -> StoreFuture<'_, Vec<String>>;
}
