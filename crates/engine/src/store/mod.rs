//! The job store: where jobs live, behind the narrow [`JobStore`] interface.
//!
//! The interface is the whole contract the engine needs: enqueue, claim, heartbeat, report,
//! finish, reclaim, worker liveness, a few person-driven controls, queries, the watched folders
//! and the content each has seen, and following the changes other processes make; state changes
//! are published on the [`EventBus`](crate::event::EventBus) as they commit. [`SqliteStore`]
//! keeps jobs in one local SQLite file; a server-backed store (PostgreSQL) for teams sits behind
//! the same trait, and one contract test suite runs against every backend.
//!
//! # The contract, whatever the backend
//! - **Workers are known alive by the store.** A pool registers its worker
//!   ([`JobStore::register_worker`]) for as long as it runs; however its process ends, the store
//!   notices, and [`JobStore::reclaim`] returns the jobs it held at once (a lapsed lease returns
//!   them anyway). Nothing outside the store tracks owners.
//! - **Time is the store's.** Leases, retry waits and deferrals go in as durations and are
//!   measured by the store's clock (SQLite: this machine's; a server: its own), so clocks that
//!   disagree between machines cannot break a lease; [`JobStore::next_ready_in`] answers in a
//!   duration too. Only calendar instants (a storyteller paused until midnight) are absolute.
//! - **Claims are atomic and fair**: a job is held by one worker at a time, in priority order,
//!   batches served round-robin within a priority, first in first out within a batch. A
//!   backend keeps fairness and counts without a row every claim must write when claimers on
//!   many machines race (SQLite has one writer, so its virtual clock and counters cost nothing;
//!   a server derives fair keys at enqueue and counts from its indexes).
//! - **Never paid twice**: while a job is running, a queued twin (same content, storyteller,
//!   model and preset) is not claimed, and once it succeeds the twin is served from the result
//!   cache; this holds under claimers racing in different processes and machines.
//! - **Only the holder finishes.** Reports, checkpoints and finishes name the worker; a worker
//!   whose job was reclaimed meanwhile changes nothing.
//! - **Errors name no driver**: a storage failure is a
//!   [`StorageError`](crate::error::StorageError) (backend, kind of fault, the database's words).
//! - [`JobStore::get`] takes an id; [`JobStore::resolve`] turns what a person typed into one.
//!   [`JobStore::list`] pages by key (`after`), never by offset. Pauses are of the whole queue or
//!   of one storyteller.
//!
//! - [`schema`]: tables and migrations.
//! - [`sqlite`]: the SQLite implementation.
//! - [`feed`]: how a SQLite store hears of other processes' changes.
//! - `liveness`: how a SQLite store knows its workers alive (lock files).
//! - `writer`: the one writing connection and its group commit.

pub mod feed;
mod liveness;
pub mod postgres;
pub mod schema;
pub mod sqlite;
mod writer;

pub use feed::{Follower, ForeignChanges, ForeignSink};
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

use crate::error::Result;
use crate::job::{
    BatchId, Job, JobError, JobId, JobState, NewJob, Priority, Stage, StorySpec, Usage,
};
use crate::storyteller::BoxFuture;
use crate::watcher::folder::WatchedFolder;
use crate::wire::PauseKind;
use crate::wire::{ListOrder, QueueStats};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The environment variable naming a team's shared queue (a `postgres://` URL).
pub const QUEUE_URL_VAR: &str = "STORYTELLER_QUEUE_URL";

/// Opens the shared queue at `url`: a PostgreSQL server (`postgres://` or `postgresql://`),
/// its schema brought up to date. `listen=off` among its parameters reads other processes'
/// changes by polling alone (behind a pooler in transaction mode, which passes no notices).
pub async fn open_queue(url: &str, bus: crate::event::EventBus) -> Result<Arc<dyn JobStore>> {
    let url = url.trim();
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err(crate::error::EngineError::InvalidArgument(format!(
            "the queue '{}' is not a PostgreSQL address: give postgres://user:password@host/database",
            redact(url)
        )));
    }
    let (url, listen) = without_listen_parameter(url);
    Ok(Arc::new(
        PostgresStore::connect_with(&url, bus, listen).await?,
    ))
}

/// What [`migrate_queue`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueSchema {
    /// Where the queue is (server and database; never the password).
    pub place: String,
    /// Its schema version now.
    pub version: i32,
    /// Migrations that ran.
    pub ran: u32,
}

/// Brings the shared queue at `url` up to this build's schema, and nothing else.
pub async fn migrate_queue(url: &str) -> Result<QueueSchema> {
    let (url, _) = without_listen_parameter(url.trim());
    let store = PostgresStore::connect_with(&url, crate::event::EventBus::new(), false).await?;
    let ran = store.migrate_ran();
    Ok(QueueSchema {
        place: store.place().to_owned(),
        version: postgres::schema::SCHEMA_VERSION,
        ran,
    })
}

/// `url` without its `listen=…` parameter (ours, not the driver's), and whether it asks to
/// listen for notices (anything but `off`, `false` or `0`).
fn without_listen_parameter(url: &str) -> (String, bool) {
    let Some((base, query)) = url.split_once('?') else {
        return (url.to_owned(), true);
    };
    let mut listen = true;
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| match pair.split_once('=') {
            Some(("listen", value)) => {
                listen = !matches!(value, "off" | "false" | "0" | "no");
                false
            }
            _ => !pair.is_empty(),
        })
        .collect();
    if kept.is_empty() {
        (base.to_owned(), listen)
    } else {
        (format!("{base}?{}", kept.join("&")), listen)
    }
}

/// `url` with any password taken out, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:…{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

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
    /// Failed transiently: queue it again, claimable once `wait` has passed by the store's
    /// clock.
    Retry {
        /// What went wrong.
        error: JobError,
        /// How long it waits before it may be claimed again.
        wait: Duration,
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
    /// Put back to wait for `wait` (by the store's clock), its attempt refunded: the service
    /// asked us to slow down, which is no fault of the video.
    Deferred {
        /// What the service said.
        error: JobError,
        /// How long it waits before it may be claimed again.
        wait: Duration,
    },
}

/// How many jobs one claim may take: in all, and of each storyteller that has limits.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClaimRoom {
    /// Jobs in all.
    pub max: usize,
    /// At most this many of each storyteller named (0: none of it now); others are unlimited.
    pub per_storyteller: BTreeMap<String, usize>,
}

impl ClaimRoom {
    /// Up to `max` jobs of any storyteller.
    pub fn up_to(max: usize) -> Self {
        ClaimRoom {
            max,
            per_storyteller: BTreeMap::new(),
        }
    }
}

/// A storyteller paused on its own, as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StorytellerPause {
    /// Why, for front ends.
    pub kind: PauseKind,
    /// What happened and what to do, for people.
    pub reason: String,
    /// When it goes on by itself (ms since the Unix epoch), if it does.
    pub until_ms: Option<i64>,
}

/// What one storyteller has spent, in one local day.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DaySpending {
    /// The day, `YYYY-MM-DD`, local time.
    pub day: String,
    /// The storyteller.
    pub storyteller: String,
    /// Attempts that spent anything.
    pub attempts: u64,
    /// Tokens and cost.
    pub usage: Usage,
}

/// What a deletion removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Removed {
    /// Jobs deleted.
    pub jobs: u64,
    /// Content hashes no remaining job refers to: their thumbnails can go too.
    pub orphaned_hashes: Vec<String>,
}

/// Which jobs a query returns, in which order.
#[derive(Clone, Debug, Default)]
pub struct JobFilter {
    /// Only jobs in this state.
    pub state: Option<JobState>,
    /// Only jobs of this batch.
    pub batch: Option<BatchId>,
    /// Only jobs of this storyteller.
    pub storyteller: Option<String>,
    /// Only these jobs.
    pub ids: Option<Vec<JobId>>,
    /// Oldest (the default) or newest first.
    pub order: ListOrder,
    /// Only jobs after this one in that order (keyset paging).
    pub after: Option<JobId>,
    /// At most this many.
    pub limit: Option<u64>,
}

/// A search of the history: stories and file names.
#[derive(Clone, Debug, Default)]
pub struct StorySearch {
    /// The words looked for, all of them, each also as the start of a longer word; letters
    /// and digits only (the engine splits what a person typed).
    pub words: Vec<String>,
    /// At most this many jobs.
    pub limit: u64,
}

/// A file as it is on disk: what a content hash found earlier holds for, while it lasts.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FileKey {
    /// The file (absolute).
    pub source: PathBuf,
    /// Its size in bytes.
    pub size: u64,
    /// Its modification time (ms since the Unix epoch).
    pub mtime_ms: i64,
}

/// What names a file's job for "is it already there?": the file as it was when added, and who
/// tells it how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceKey {
    /// The video file (absolute).
    pub source: PathBuf,
    /// Its size in bytes.
    pub size: u64,
    /// Its modification time (ms since the Unix epoch).
    pub mtime_ms: i64,
    /// Storyteller, model and preset.
    pub spec: StorySpec,
}

/// What a watched folder's watcher last said, and what came of its files.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WatchedFolderReport {
    /// The folder.
    pub path: PathBuf,
    /// The status its watcher last reported (JSON), if one ever did.
    pub status: Option<String>,
    /// When (ms since the Unix epoch, the store's clock).
    pub status_at_ms: Option<i64>,
    /// Contents it has sighted.
    pub found: u32,
    /// Its jobs waiting to be told.
    pub queued: u32,
    /// Its jobs being told.
    pub running: u32,
    /// Its jobs told.
    pub succeeded: u32,
    /// Its jobs failed or cancelled.
    pub failed: u32,
}

/// What became of one [`NewJob`] given to [`JobStore::enqueue`].
#[derive(Clone, Debug, PartialEq)]
pub enum Enqueued {
    /// A new job (queued, or succeeded at once from the result cache).
    Added(Job),
    /// The file already has a job that is queued, running or done; none was added.
    Existing(Job),
}

impl Enqueued {
    /// The job, new or already there.
    pub fn job(&self) -> &Job {
        match self {
            Enqueued::Added(job) | Enqueued::Existing(job) => job,
        }
    }
}

/// A worker the store knows alive while this is held; see [`JobStore::register_worker`].
///
/// [`WorkerRegistration::stop`] is a clean end. Dropped without it, the worker is as good as
/// killed: the store sees it gone and its jobs are reclaimed at once (which is also how tests
/// make a worker vanish).
pub struct WorkerRegistration {
    owner: String,
    alive: Option<Box<dyn KeptAlive>>,
}

/// What keeps a registered worker known alive (a held lock file, a server session).
pub trait KeptAlive: Send + Sync {
    /// Says the worker stopped cleanly. Dropping it without this lets go as a killed
    /// process would.
    fn stop(self: Box<Self>) -> BoxFuture<'static, ()>;
}

impl WorkerRegistration {
    /// A registration of `owner`, alive while `alive` is held.
    pub fn new(owner: impl Into<String>, alive: impl KeptAlive + 'static) -> Self {
        WorkerRegistration {
            owner: owner.into(),
            alive: Some(Box::new(alive)),
        }
    }

    /// The worker registered.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// A clean end: the worker stopped, with nothing left for anyone to reclaim.
    pub async fn stop(mut self) {
        if let Some(alive) = self.alive.take() {
            alive.stop().await;
        }
    }
}

impl std::fmt::Debug for WorkerRegistration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerRegistration")
            .field("owner", &self.owner)
            .finish_non_exhaustive()
    }
}

/// A worker the store knows alive, and what it holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveWorker {
    /// Its owner name (what its jobs' leases name).
    pub owner: String,
    /// The machine it runs on, if it said.
    pub machine: Option<String>,
    /// Its process, if it said.
    pub pid: Option<u32>,
    /// When it started (ms since the Unix epoch), if it said.
    pub started_at_ms: Option<i64>,
    /// The jobs it is telling.
    pub running: Vec<JobId>,
}

/// The narrow interface between the task pool (or a UI) and wherever jobs are kept.
pub trait JobStore: Send + Sync + 'static {
    /// Adds `jobs` as one batch, one result per job in order. A job whose story is already in
    /// the result cache is added as `succeeded`, marked cached. Unless a job asks for
    /// [`NewJob::again`], a file that already has a queued, running or succeeded job with the
    /// same [`SourceKey`] gets no second one.
    fn enqueue(&self, jobs: Vec<NewJob>) -> StoreFuture<'_, (BatchId, Vec<Enqueued>)>;

    /// For each key, the queued, running or succeeded job that file already has, if any.
    fn find_existing(&self, keys: Vec<SourceKey>) -> StoreFuture<'_, Vec<Option<Job>>>;

    /// Atomically takes up to `max` ready jobs for `owner`, leased for `lease`, in claim order
    /// (priority, then round-robin across batches, then FIFO). Returns none while paused.
    fn claim(&self, owner: &str, max: usize, lease: Duration) -> StoreFuture<'_, Vec<Job>> {
        self.claim_within(owner, ClaimRoom::up_to(max), lease)
    }

    /// [`JobStore::claim`] within `room`: a storyteller with no room left, or paused, is passed
    /// over and the jobs behind its own are taken.
    fn claim_within(
        &self,
        owner: &str,
        room: ClaimRoom,
        lease: Duration,
    ) -> StoreFuture<'_, Vec<Job>>;

    /// Renews the leases of every job `owner` holds; returns the ids it still holds.
    fn heartbeat(&self, owner: &str, lease: Duration) -> StoreFuture<'_, Vec<JobId>>;

    /// The content hash of each file, where one is known for it unchanged (same path, size and
    /// modification time): from any job for it, or kept by [`JobStore::remember_hashes`]. One
    /// answer per key, in order.
    fn known_hashes(&self, files: Vec<FileKey>) -> StoreFuture<'_, Vec<Option<String>>>;

    /// Keeps content hashes an `add` has finished, before it queues anything: an `add` stopped
    /// half-way (killed, Ctrl-C) leaves no jobs, but the next one does not read those files
    /// again.
    fn remember_hashes(&self, hashes: Vec<(FileKey, String)>) -> StoreFuture<'_, ()>;

    /// Drops the hashes kept for `sources`, once their jobs hold them.
    fn forget_hashes(&self, sources: Vec<PathBuf>) -> StoreFuture<'_, ()>;

    /// Records a running job's stage and progress.
    fn report(&self, id: JobId, owner: &str, stage: Stage, progress: f64) -> StoreFuture<'_, ()>;

    /// Keeps what a running job's storyteller has done so far, for its next attempt (handed
    /// back in [`Job::checkpoint`] by [`JobStore::claim`]); ignored once the job is not ours.
    fn save_checkpoint(
        &self,
        id: JobId,
        owner: &str,
        checkpoint: serde_json::Value,
    ) -> StoreFuture<'_, ()>;

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
    /// (if any) within `room` (whose `max` is taken as 1): a worker moves straight on without a
    /// second round trip.
    fn finish_and_claim(
        &self,
        id: JobId,
        owner: &str,
        outcome: Outcome,
        lease: Duration,
        room: ClaimRoom,
    ) -> StoreFuture<'_, (Job, Option<Job>)>;

    /// Adds what an attempt at job `id` spent to its totals and to its storyteller's spending
    /// of the day, whatever the job's state now (a cancelled job's tokens were still paid for).
    fn book_usage(&self, id: JobId, usage: Usage) -> StoreFuture<'_, Job>;

    /// Spending per day and storyteller, from the local day `from_day` (`YYYY-MM-DD`) on.
    fn spending(&self, from_day: String) -> StoreFuture<'_, Vec<DaySpending>>;

    /// Pauses one storyteller (its jobs wait; the others go on) or, with `None`, lets it go on.
    fn set_storyteller_paused(
        &self,
        storyteller: String,
        pause: Option<StorytellerPause>,
    ) -> StoreFuture<'_, ()>;

    /// Makes worker `owner` known alive to every process on this store for as long as the
    /// registration is held and its process lives (however that process ends, its death is
    /// noticed: a SQLite store by a lock file the system lets go of, a server by the session
    /// that held it). Dropping the registration says the worker stopped cleanly.
    fn register_worker(&self, owner: &str) -> StoreFuture<'_, WorkerRegistration>;

    /// The workers alive now, each with the jobs it holds, in owner order.
    fn workers(&self) -> StoreFuture<'_, Vec<LiveWorker>>;

    /// Returns to the queue running jobs whose lease expired, or whose worker the store knows
    /// has gone (no need to wait out its lease); a job already claimed `max_attempts` times is
    /// marked dead instead, so a video that kills its process cannot loop forever. Returns the
    /// ids touched.
    fn reclaim(&self, max_attempts: u32) -> StoreFuture<'_, Vec<JobId>>;

    /// How many running jobs nobody is telling: their worker is known to have stopped (killed,
    /// its machine lost power). They go back to the queue as soon as any worker reclaims.
    fn stranded_jobs(&self) -> StoreFuture<'_, u32>;

    /// Cancels a queued or running job.
    fn cancel(&self, id: JobId) -> StoreFuture<'_, Job>;

    /// Queues a dead or cancelled job again, with fresh attempts.
    fn retry(&self, id: JobId) -> StoreFuture<'_, Job>;

    /// Queues every dead job again, with fresh attempts.
    fn retry_failed(&self) -> StoreFuture<'_, Vec<Job>>;

    /// Gives a job another priority. A queued job takes its turn in its new class as if it
    /// had just been added there; for a running or finished one it is what a retry keeps.
    fn set_priority(&self, id: JobId, priority: Priority) -> StoreFuture<'_, Job>;

    /// Deletes a job that is not running.
    fn delete(&self, id: JobId) -> StoreFuture<'_, Removed>;

    /// Deletes every finished job.
    fn clear_finished(&self) -> StoreFuture<'_, Removed>;

    /// Pauses claiming (with a reason people see) or, with `None`, resumes it (and every
    /// paused storyteller too).
    fn set_paused(&self, reason: Option<String>) -> StoreFuture<'_, ()>;

    /// Tells the other processes on this store that the settings changed, so each applies
    /// them without a restart (this process already has).
    fn note_settings_changed(&self) -> StoreFuture<'_, ()>;

    /// The watched folders, in path order.
    fn watched_folders(&self) -> StoreFuture<'_, Vec<WatchedFolder>>;

    /// Adds `folder`, or replaces the choices of the folder at its path; the other processes
    /// hear of it.
    fn save_watched_folder(&self, folder: WatchedFolder) -> StoreFuture<'_, ()>;

    /// Removes the folder at `path` and what it has seen; whether there was one. The other
    /// processes hear of it.
    fn remove_watched_folder(&self, path: PathBuf) -> StoreFuture<'_, bool>;

    /// Queues the files `folder` found, each at most once per content: in one transaction,
    /// each job's content is sighted in the folder, and only the contents never seen there
    /// before become jobs (one batch). A content seen before (the file renamed or moved within
    /// the folder, or announced twice, or by two processes watching one folder) gets `None`,
    /// and its sighting now names this file as it is. Each job's `watched_folder` is `folder`.
    fn enqueue_watched(
        &self,
        folder: PathBuf,
        jobs: Vec<NewJob>,
    ) -> StoreFuture<'_, (BatchId, Vec<Option<Enqueued>>)>;

    /// The files `folder` has sighted, as each was when last seen: a file found unchanged at
    /// one of these is not read again.
    fn sighted_files(&self, folder: PathBuf) -> StoreFuture<'_, Vec<FileKey>>;

    /// Keeps the status the watcher of the folder at `path` reports (JSON, as the watcher
    /// writes it), with the time, for every process to show.
    fn report_watch_status(&self, path: PathBuf, status: String) -> StoreFuture<'_, ()>;

    /// Per watched folder: the status last reported and when, and what came of its files.
    fn watched_folder_reports(&self) -> StoreFuture<'_, Vec<WatchedFolderReport>>;

    /// Records that a finished job's video was moved to `source` (into a watched folder's
    /// done folder).
    fn move_source(&self, id: JobId, source: PathBuf) -> StoreFuture<'_, Job>;

    /// One job, by its id.
    fn get(&self, id: JobId) -> StoreFuture<'_, Job>;

    /// The id of the one job a person named by a whole id, a unique prefix or a unique suffix
    /// of one: [`EngineError::JobNotFound`](crate::error::EngineError::JobNotFound) if none,
    /// [`EngineError::AmbiguousJobId`](crate::error::EngineError::AmbiguousJobId) if several.
    fn resolve(&self, id_or_prefix: &str) -> StoreFuture<'_, JobId>;

    /// Jobs matching `filter`, in its order.
    fn list(&self, filter: JobFilter) -> StoreFuture<'_, Vec<Job>>;

    /// The jobs with a story whose file name or story holds every one of `query.words` (each
    /// as a word or the start of one, case and accents aside), best matches first.
    fn search(&self, query: StorySearch) -> StoreFuture<'_, Vec<Job>>;

    /// Counts per state, cache figures, pause reason.
    fn stats(&self) -> StoreFuture<'_, QueueStats>;

    /// How long until the next queued job becomes ready, if one is waiting for its
    /// `run_after`, or a storyteller's pause ends: measured by the store's clock, so a worker
    /// whose own clock is off still wakes on time.
    fn next_ready_in(&self) -> StoreFuture<'_, Option<Duration>>;

    /// Where the jobs are kept, for people: a database file, or a server and its database
    /// (never a password).
    fn place(&self) -> String;

    /// Starts following the changes other processes commit: the store publishes what they mean
    /// on its bus, then hands them to `sink`. Following stops when the [`Follower`] is dropped.
    fn follow_others(&self, sink: ForeignSink) -> StoreFuture<'_, Follower>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_listen_parameter_is_ours_and_passwords_stay_out_of_messages() {
        assert_eq!(
            without_listen_parameter("postgres://a@h/q?listen=off"),
            ("postgres://a@h/q".to_owned(), false)
        );
        assert_eq!(
            without_listen_parameter("postgres://a@h/q?sslmode=disable&listen=on"),
            ("postgres://a@h/q?sslmode=disable".to_owned(), true)
        );
        assert_eq!(
            without_listen_parameter("postgres://a@h/q"),
            ("postgres://a@h/q".to_owned(), true)
        );
        assert_eq!(
            redact("postgres://team:s3cret@db.example/queue"),
            "postgres://team:…@db.example/queue"
        );
        assert_eq!(redact("postgres://db/queue"), "postgres://db/queue");
    }
}
