//! [`PostgresStore`]: the job store on a PostgreSQL server, one queue shared by many machines.
//!
//! The same contract as the SQLite store (see [`crate::store`]), kept by the server instead of
//! one writer: every call is a short autocommit transaction, never one held open while a video
//! is told. Claims pick candidates in claim order with `FOR UPDATE SKIP LOCKED`, so claimers on
//! many machines pass over one another's rows instead of waiting; the unique index on running
//! twins makes "never paid twice" the database's rule (a claim that loses the race for a twin
//! is tried again and passes it over). Completions, reports and heartbeats name the worker
//! holding the lease, so a worker whose job was reclaimed changes nothing.
//!
//! Workers are known alive by a session advisory lock each holds on a connection of its own;
//! a lock nobody holds is a worker that has gone, and its jobs are reclaimed at once. Every
//! change other processes need to hear of is appended to `changes` and announced with one
//! `NOTIFY` per transaction; see [`feed`].
//!
//! - [`schema`]: tables and migrations.
//! - [`feed`]: hearing of other processes' changes (LISTEN, with a poll behind it).

pub mod feed;
mod queue;
#[macro_use]
pub mod schema;

use super::{
    ClaimRoom, DaySpending, Enqueued, FileKey, Follower, ForeignSink, JobFilter, JobStore,
    KeptAlive, LiveWorker, Outcome, Removed, SourceKey, StoreFuture, StorySearch, StorytellerPause,
    WatchedFolderReport, WorkerRegistration,
};
use crate::clock::duration_ms;
use crate::error::{EngineError, Result, StorageError, StorageFault, StoreBackend};
use crate::event::{Event, EventBus};
use crate::job::{
    BatchId, ErrorKind, Job, JobError, JobId, JobState, NewJob, Priority, Stage, StorySpec, Style,
    Usage,
};
use crate::watcher::folder::WatchedFolder;
use crate::wire::{saturate, JobView, ListOrder, PauseKind, QueueStats, StorytellerPauseView};
use deadpool_postgres::{GenericClient, Manager, ManagerConfig, Pool, RecyclingMethod};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio_postgres::error::SqlState;
use tokio_postgres::Row;
use uuid::Uuid;

/// The columns [`job_from_row`] reads, in order.
const JOB_COLUMNS: &str = "id, source, size, mtime_ms, content_hash, media, storyteller, model, \
     preset, priority, batch_id, state, stage, progress, attempts, run_after, lease_owner, \
     lease_expires, error_kind, error_message, story, cached, no_cache, input_tokens, \
     output_tokens, cost_micro_usd, created_at, updated_at, started_at, finished_at, \
     audio_input_tokens, style, watched_folder";

/// How many columns [`JOB_COLUMNS`] names: what a statement selects after them starts here.
const JOB_COLUMN_COUNT: usize = 33;

/// Connections kept per process.
const POOL_SIZE: usize = 16;

/// How long a connection may take to open or a statement to be handed a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Claims tried again after losing a race for a twin.
const CLAIM_RACES: usize = 8;

/// The channel changes are announced on.
pub const CHANNEL: &str = "storyteller_changes";

/// The PostgreSQL job store; cheap to clone.
#[derive(Clone)]
pub struct PostgresStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    config: tokio_postgres::Config,
    // Where the queue is, for messages (never the password).
    place: String,
    bus: EventBus,
    // This handle, in the change log: a follower skips what it wrote itself.
    origin: Uuid,
    machine: String,
    // Migrations the connect ran.
    migrated: std::sync::atomic::AtomicU32,
    // Woken when the counts changed: one task reads them and publishes them, at most every
    // [`STATS_EVERY`], however many writes changed them meanwhile.
    counts_changed: Arc<tokio::sync::Notify>,
    // Whether a `LISTEN` connection wakes the follower (not through PgBouncer's transaction
    // pooling, which passes no notices).
    listen: bool,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The counts' task wakes, finds the store gone and ends.
        self.counts_changed.notify_one();
    }
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("place", &self.inner.place)
            .finish()
    }
}

/// What a transaction changed, published once it commits.
#[derive(Default)]
struct Outbox {
    events: Vec<Event>,
    // (kind, ref) rows of the change log.
    changes: Vec<(&'static str, String)>,
    // Whether the counts changed (a stats event follows).
    counts: bool,
    cache_hits: i64,
    cache_misses: i64,
}

impl Outbox {
    fn job(&mut self, job: &Job) {
        self.events.push(Event::about(job));
        self.changes.push(("job", job.id.to_string()));
        self.counts = true;
    }
}

/// A storage error from the server's error (or the connection's).
fn storage(error: &tokio_postgres::Error) -> EngineError {
    let fault = match error.code() {
        Some(code) if *code == SqlState::DISK_FULL || *code == SqlState::OUT_OF_MEMORY => {
            StorageFault::DiskFull
        }
        Some(code) if *code == SqlState::DATA_CORRUPTED || *code == SqlState::INDEX_CORRUPTED => {
            StorageFault::Corrupt
        }
        Some(code)
            if *code == SqlState::T_R_SERIALIZATION_FAILURE
                || *code == SqlState::T_R_DEADLOCK_DETECTED
                || *code == SqlState::LOCK_NOT_AVAILABLE =>
        {
            StorageFault::Busy
        }
        Some(code)
            if *code == SqlState::ADMIN_SHUTDOWN
                || *code == SqlState::CRASH_SHUTDOWN
                || *code == SqlState::CANNOT_CONNECT_NOW
                || *code == SqlState::CONNECTION_FAILURE =>
        {
            StorageFault::Unreachable
        }
        Some(_) => StorageFault::Other,
        // No answer from the server at all: the connection failed or closed.
        None => StorageFault::Unreachable,
    };
    let message = match error.as_db_error() {
        Some(db) => db.message().to_owned(),
        None => error.to_string(),
    };
    EngineError::Storage(StorageError {
        backend: StoreBackend::Postgres,
        fault,
        message,
    })
}

impl From<tokio_postgres::Error> for EngineError {
    fn from(error: tokio_postgres::Error) -> Self {
        storage(&error)
    }
}

impl From<deadpool_postgres::PoolError> for EngineError {
    fn from(error: deadpool_postgres::PoolError) -> Self {
        match error {
            deadpool_postgres::PoolError::Backend(e) => storage(&e),
            other => EngineError::Storage(StorageError {
                backend: StoreBackend::Postgres,
                fault: StorageFault::Unreachable,
                message: format!("no connection to the queue's server: {other}"),
            }),
        }
    }
}

/// A path as the queue keeps it: its bytes (a name that is not text comes back byte for byte).
fn path_bytes(path: &Path) -> Vec<u8> {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        path.as_os_str().as_bytes().to_vec()
    }
    #[cfg(not(unix))]
    {
        path.to_string_lossy().into_owned().into_bytes()
    }
}

fn path_from_bytes(bytes: &[u8]) -> PathBuf {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        PathBuf::from(std::ffi::OsStr::from_bytes(bytes))
    }
    #[cfg(not(unix))]
    {
        PathBuf::from(String::from_utf8_lossy(bytes).into_owned())
    }
}

fn clamp_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn job_from_row(row: &Row) -> Result<Job> {
    let corrupt = |what: &str, e: &dyn std::fmt::Display| {
        EngineError::CorruptRecord(format!("{what} of a job in the queue: {e}"))
    };
    let state: String = row.try_get(11)?;
    let stage: String = row.try_get(12)?;
    let error = match (
        row.try_get::<_, Option<String>>(18)?,
        row.try_get::<_, Option<String>>(19)?,
    ) {
        (Some(kind), Some(message)) => Some(JobError {
            kind: kind.parse::<ErrorKind>().unwrap_or(ErrorKind::Permanent),
            message,
        }),
        _ => None,
    };
    let count = |i: usize| -> Result<u64> { Ok(row.try_get::<_, i64>(i)?.max(0) as u64) };
    Ok(Job {
        id: JobId(row.try_get(0)?),
        source: path_from_bytes(row.try_get::<_, &[u8]>(1)?),
        size: count(2)?,
        mtime_ms: row.try_get(3)?,
        content_hash: row.try_get(4)?,
        media: row.try_get(5)?,
        storyteller: row.try_get(6)?,
        model: row.try_get(7)?,
        preset: row.try_get(8)?,
        style: Style::from_json(row.try_get::<_, Option<&str>>(31)?),
        priority: Priority::from_rank(i64::from(row.try_get::<_, i16>(9)?)),
        batch_id: BatchId(row.try_get(10)?),
        state: state
            .parse()
            .map_err(|e: String| corrupt("the state", &e))?,
        stage: stage
            .parse()
            .map_err(|e: String| corrupt("the stage", &e))?,
        progress: row.try_get(13)?,
        attempts: row.try_get::<_, i32>(14)?.max(0) as u32,
        run_after_ms: row.try_get(15)?,
        lease_owner: row.try_get(16)?,
        lease_expires_ms: row.try_get(17)?,
        error,
        story: row.try_get(20)?,
        cached: row.try_get(21)?,
        no_cache: row.try_get(22)?,
        usage: Usage {
            input_tokens: count(23)?,
            output_tokens: count(24)?,
            audio_input_tokens: count(30)?,
            cost_micro_usd: count(25)?,
        },
        created_at_ms: row.try_get(26)?,
        updated_at_ms: row.try_get(27)?,
        started_at_ms: row.try_get(28)?,
        finished_at_ms: row.try_get(29)?,
        watched_folder: row.try_get::<_, Option<&[u8]>>(32)?.map(path_from_bytes),
        checkpoint: None,
    })
}

fn jobs_from_rows(rows: &[Row]) -> Result<Vec<Job>> {
    rows.iter().map(job_from_row).collect()
}

/// The file name a search finds a job by: what follows the last `/` or `\`.
fn file_name_of(source: &Path) -> String {
    let text = source.to_string_lossy().replace('\\', "/");
    text.rsplit('/').next().unwrap_or_default().to_owned()
}

impl PostgresStore {
    /// Connects to the queue at `url` (`postgres://user:password@host:port/database`),
    /// bringing its schema up to date, and publishes changes on `bus`.
    pub async fn connect(url: &str, bus: EventBus) -> Result<Self> {
        Self::connect_with(url, bus, true).await
    }

    /// [`PostgresStore::connect`], hearing of other processes' changes by `LISTEN` (`listen`)
    /// or only by reading the change log every second (through a pooler that passes no
    /// notices).
    pub async fn connect_with(url: &str, bus: EventBus, listen: bool) -> Result<Self> {
        let config: tokio_postgres::Config = url.parse().map_err(|e| {
            EngineError::InvalidArgument(format!("the queue address is not a PostgreSQL URL: {e}"))
        })?;
        let place = describe(&config);
        let mut pool_config = config.clone();
        pool_config.connect_timeout(CONNECT_TIMEOUT);
        let manager = Manager::from_config(
            pool_config,
            tokio_postgres::NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(CONNECT_TIMEOUT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .build()
            .map_err(|e| EngineError::InvalidArgument(format!("the queue's connections: {e}")))?;
        let store = PostgresStore {
            inner: Arc::new(Inner {
                pool,
                config,
                place,
                bus,
                origin: Uuid::now_v7(),
                machine: super::liveness::machine_name(),
                migrated: std::sync::atomic::AtomicU32::new(0),
                counts_changed: Arc::new(tokio::sync::Notify::new()),
                listen,
            }),
        };
        tokio::spawn(publish_counts(
            Arc::downgrade(&store.inner),
            store.inner.counts_changed.clone(),
        ));
        let ran = store.migrate().await?;
        store
            .inner
            .migrated
            .store(ran, std::sync::atomic::Ordering::Relaxed);
        Ok(store)
    }

    /// How many migrations connecting ran.
    pub fn migrate_ran(&self) -> u32 {
        self.inner
            .migrated
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Where the queue is (server and database), for people.
    pub fn place(&self) -> &str {
        &self.inner.place
    }

    /// The bus this store publishes on.
    pub fn bus(&self) -> &EventBus {
        &self.inner.bus
    }

    /// Brings the schema up to the latest version this build knows; how many migrations ran.
    /// A schema a newer build migrated further is refused, naming both versions.
    pub async fn migrate(&self) -> Result<u32> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        tx.execute(
            "SELECT pg_advisory_xact_lock($1, $2)",
            &[&schema::LOCK_CLASS, &schema::MIGRATION_LOCK],
        )
        .await?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS storyteller_schema ( \
                 version integer PRIMARY KEY, \
                 applied_at timestamptz NOT NULL DEFAULT now())",
        )
        .await?;
        let found: i32 = tx
            .query_one(
                "SELECT coalesce(max(version), 0) FROM storyteller_schema",
                &[],
            )
            .await?
            .try_get(0)?;
        if found > schema::SCHEMA_VERSION {
            return Err(EngineError::InvalidArgument(format!(
                "the queue at {} is at schema version {found}; this build knows versions up to \
                 {}: update Storyteller on this machine",
                self.inner.place,
                schema::SCHEMA_VERSION
            )));
        }
        let mut ran = 0;
        for migration in schema::MIGRATIONS.iter().filter(|m| m.version > found) {
            tx.batch_execute(migration.sql).await?;
            tx.execute(
                "INSERT INTO storyteller_schema (version) VALUES ($1)",
                &[&migration.version],
            )
            .await?;
            ran += 1;
        }
        tx.commit().await?;
        if ran > 0 {
            tracing::info!(queue = %self.inner.place, migrations = ran, "brought the queue's schema up to date");
        }
        Ok(ran)
    }

    async fn client(&self) -> Result<deadpool_postgres::Object> {
        Ok(self.inner.pool.get().await?)
    }

    /// Writes `outbox`'s change-log rows and one notice, inside `tx`.
    async fn log(&self, tx: &deadpool_postgres::Transaction<'_>, outbox: &Outbox) -> Result<()> {
        if outbox.cache_hits != 0 || outbox.cache_misses != 0 {
            tx.execute(
                "INSERT INTO cache_tallies (origin, hits, misses) VALUES ($1, $2, $3) \
                 ON CONFLICT (origin) DO UPDATE SET hits = cache_tallies.hits + excluded.hits, \
                 misses = cache_tallies.misses + excluded.misses",
                &[&self.inner.origin, &outbox.cache_hits, &outbox.cache_misses],
            )
            .await?;
        }
        if outbox.changes.is_empty() {
            return Ok(());
        }
        let kinds: Vec<&str> = outbox.changes.iter().map(|(kind, _)| *kind).collect();
        let refs: Vec<&str> = outbox.changes.iter().map(|(_, r)| r.as_str()).collect();
        tx.execute(
            "INSERT INTO changes (origin, kind, ref, at) \
             SELECT $1, kind, ref, st_now_ms() FROM unnest($2::text[], $3::text[]) AS c (kind, ref)",
            &[&self.inner.origin, &kinds, &refs],
        )
        .await?;
        // One notice per transaction, whatever it changed: the payload is only a hint.
        tx.execute(
            "SELECT pg_notify($1, $2)",
            &[&CHANNEL, &self.inner.origin.to_string()],
        )
        .await?;
        Ok(())
    }

    /// Publishes what a committed transaction changed.
    async fn publish(&self, outbox: Outbox) {
        for event in outbox.events {
            self.inner.bus.publish(event);
        }
        if outbox.counts {
            self.inner.counts_changed.notify_one();
        }
    }

    async fn load_job<C: GenericClient>(client: &C, id: JobId) -> Result<Option<Job>> {
        let row = client
            .query_opt(
                &format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1"),
                &[&id.0],
            )
            .await?;
        row.as_ref().map(job_from_row).transpose()
    }

    async fn transition_error<C: GenericClient>(
        client: &C,
        id: JobId,
        to: JobState,
    ) -> EngineError {
        match Self::load_job(client, id).await {
            Ok(Some(job)) => match job.state.check_transition(to) {
                Err(illegal) => EngineError::IllegalTransition(illegal),
                Ok(()) => EngineError::LeaseLost(id),
            },
            Ok(None) => EngineError::JobNotFound(id.to_string()),
            Err(e) => e,
        }
    }

    /// Whether the server answers, for the doctor.
    pub async fn check(&self) -> Result<String> {
        let client = self.client().await?;
        let row = client.query_one("SELECT version()", &[]).await?;
        Ok(row.try_get(0)?)
    }
}

/// How often at most the counts are read again and published while they keep changing.
const STATS_EVERY: Duration = Duration::from_millis(100);

/// Publishes the queue's counts after they changed, at most every [`STATS_EVERY`]: reading them
/// after every write was most of a claim's cost. Ends with the store.
async fn publish_counts(inner: std::sync::Weak<Inner>, changed: Arc<tokio::sync::Notify>) {
    loop {
        changed.notified().await;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        let store = PostgresStore { inner };
        match store.stats().await {
            Ok(stats) => store.inner.bus.publish(Event::QueueStats { stats }),
            Err(e) => tracing::warn!(error = %e, "reading the queue's counts failed"),
        }
        drop(store);
        tokio::time::sleep(STATS_EVERY).await;
    }
}

/// The server and database `config` names, for people (never the password).
fn describe(config: &tokio_postgres::Config) -> String {
    let host = config
        .get_hosts()
        .first()
        .map(|host| match host {
            tokio_postgres::config::Host::Tcp(name) => name.clone(),
            #[cfg(unix)]
            tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
        })
        .unwrap_or_else(|| "localhost".into());
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let database = config.get_dbname().unwrap_or("postgres");
    format!("{host}:{port}/{database}")
}

/// A job for the file `source` names (same path, size, modification time, storyteller, model,
/// preset and style) that is queued, running or done, if there is one.
async fn existing_job<C: GenericClient>(
    client: &C,
    source: &Path,
    size: u64,
    mtime_ms: i64,
    spec: &StorySpec,
) -> Result<Option<Job>> {
    let row = client
        .query_opt(
            &format!(
                "SELECT {JOB_COLUMNS} FROM jobs WHERE source = $1 AND size = $2 AND mtime_ms = $3 \
                 AND storyteller = $4 AND model = $5 AND preset = $6 \
                 AND style IS NOT DISTINCT FROM $7 AND state <> 'dead' AND state <> 'cancelled' \
                 LIMIT 1"
            ),
            &[
                &path_bytes(source),
                &clamp_i64(size),
                &mtime_ms,
                &spec.storyteller,
                &spec.model,
                &spec.preset,
                &spec.style.to_json(),
            ],
        )
        .await?;
    row.as_ref().map(job_from_row).transpose()
}

/// The story of a succeeded job with this content and cache key, if there is one.
async fn cached_story<C: GenericClient>(
    client: &C,
    content_hash: &str,
    cache_key: &str,
) -> Result<Option<String>> {
    Ok(client
        .query_opt(
            "SELECT story FROM jobs WHERE content_hash = $1 AND cache_key = $2 \
             AND state = 'succeeded' AND story IS NOT NULL LIMIT 1",
            &[&content_hash, &cache_key],
        )
        .await?
        .map(|row| row.try_get(0))
        .transpose()?)
}

/// The fair key a batch added now starts after, in `priority`: the key of the newest job taken
/// up (claims go in key order, so the largest key among the jobs taken up), or just before the
/// front of the queue when those are gone. A new batch joins the rotation at once, neither
/// ahead of the batches waiting nor behind all of them; claims write nothing to keep it.
async fn fair_front<C: GenericClient>(client: &C, priority: i16) -> Result<i64> {
    Ok(client
        .query_one(
            "SELECT greatest( \
               (SELECT max(fair_key) FROM jobs WHERE priority = $1 AND state <> 'queued'), \
               (SELECT min(fair_key) - 1 FROM jobs WHERE priority = $1 AND state = 'queued'), \
               0)",
            &[&priority],
        )
        .await?
        .try_get(0)?)
}

/// The search words of a job with a story: its file name and its story.
const SEARCH_VECTOR: &str = "setweight(to_tsvector('simple', $1), 'A') || \
                             to_tsvector('simple', $2)";

/// Folds accents away ("crème" → "creme"), as the search of the SQLite store does, so the
/// words people type find what was written.
fn fold(text: &str) -> String {
    crate::search::fold(text)
}

async fn enqueue_batch(
    store: &PostgresStore,
    tx: &deadpool_postgres::Transaction<'_>,
    outbox: &mut Outbox,
    jobs: Vec<NewJob>,
) -> Result<(BatchId, Vec<Enqueued>)> {
    let batch = BatchId::new();
    let mut batch_stored = false;
    let mut next_key = [0i64; 3];
    for priority in Priority::ALL {
        next_key[priority.rank() as usize] = fair_front(tx, priority.rank() as i16).await?;
    }
    let mut results = Vec::with_capacity(jobs.len());
    let mut added = Vec::new();
    let mut seen: std::collections::HashSet<(Vec<u8>, u64, i64, StorySpec)> =
        std::collections::HashSet::new();
    let now: i64 = tx.query_one("SELECT st_now_ms()", &[]).await?.try_get(0)?;
    let insert = tx
        .prepare(&format!(
            "INSERT INTO jobs (id, source, machine, size, mtime_ms, content_hash, storyteller, \
             model, preset, cache_key, no_cache, priority, batch_id, fair_key, state, stage, \
             progress, story, cached, created_at, updated_at, finished_at, style, \
             watched_folder, search) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, \
             CASE WHEN $15::text IS NULL THEN 'queued' ELSE 'succeeded' END, \
             CASE WHEN $15::text IS NULL THEN 'waiting' ELSE 'done' END, \
             CASE WHEN $15::text IS NULL THEN 0 ELSE 1 END, $15, $15::text IS NOT NULL, \
             $16::bigint, $16::bigint, \
             CASE WHEN $15::text IS NULL THEN NULL ELSE $16::bigint END, $17, $18, \
             CASE WHEN $15::text IS NULL THEN NULL ELSE \
                 setweight(to_tsvector('simple', $19), 'A') || to_tsvector('simple', $20) END) \
             RETURNING {JOB_COLUMNS}"
        ))
        .await?;
    for job in jobs {
        if !job.again {
            let key = (
                path_bytes(&job.source),
                job.size,
                job.mtime_ms,
                job.spec.clone(),
            );
            let twice_here = !seen.insert(key);
            let existing = if twice_here {
                results.iter().rev().find_map(|r: &Enqueued| {
                    let j = r.job();
                    (j.source == job.source
                        && j.size == job.size
                        && j.mtime_ms == job.mtime_ms
                        && j.spec() == job.spec)
                        .then(|| j.clone())
                })
            } else {
                existing_job(tx, &job.source, job.size, job.mtime_ms, &job.spec).await?
            };
            if let Some(existing) = existing {
                results.push(Enqueued::Existing(existing));
                continue;
            }
        }
        if !batch_stored {
            tx.execute(
                "INSERT INTO batches (id, machine, created_at) VALUES ($1, $2, $3)",
                &[&batch.0, &store.inner.machine, &now],
            )
            .await?;
            batch_stored = true;
        }
        let cache_key = job.spec.cache_key(&job.content_hash);
        let story = if job.no_cache {
            None
        } else {
            cached_story(tx, &job.content_hash, &cache_key).await?
        };
        let rank = job.priority.rank() as usize;
        next_key[rank] += 1;
        let name = fold(&file_name_of(&job.source));
        let story_words = story.as_deref().map(fold).unwrap_or_default();
        let row = tx
            .query_one(
                &insert,
                &[
                    &JobId::new().0,
                    &path_bytes(&job.source),
                    &store.inner.machine,
                    &clamp_i64(job.size),
                    &job.mtime_ms,
                    &job.content_hash,
                    &job.spec.storyteller,
                    &job.spec.model,
                    &job.spec.preset,
                    &cache_key,
                    &job.no_cache,
                    &(job.priority.rank() as i16),
                    &batch.0,
                    &next_key[rank],
                    &story,
                    &now,
                    &job.spec.style.to_json(),
                    &job.watched_folder.as_deref().map(path_bytes),
                    &name,
                    &story_words,
                ],
            )
            .await?;
        let stored = job_from_row(&row)?;
        if stored.cached {
            outbox.cache_hits += 1;
        }
        added.push(JobView::from(&stored));
        results.push(Enqueued::Added(stored));
    }
    if !added.is_empty() {
        outbox.changes.push(("batch", batch.to_string()));
        outbox.events.push(Event::JobsAdded {
            batch_id: batch,
            jobs: added.into(),
        });
        outbox.counts = true;
    }
    Ok((batch, results))
}

/// One claim of up to `room.max` jobs for `owner`, in `tx`.
async fn claim_jobs(
    tx: &deadpool_postgres::Transaction<'_>,
    outbox: &mut Outbox,
    owner: &str,
    room: &ClaimRoom,
    lease_ms: i64,
) -> Result<Vec<Job>> {
    let max = room.max;
    if max == 0 {
        return Ok(Vec::new());
    }
    let paused = tx
        .query_opt("SELECT 1 FROM queue_settings WHERE key = 'paused'", &[])
        .await?;
    if paused.is_some() {
        return Ok(Vec::new());
    }
    end_pauses_due(tx, outbox).await?;
    let mut room_left = room.per_storyteller.clone();
    let full: Vec<String> = room_left
        .iter()
        .filter(|(_, n)| **n == 0)
        .map(|(name, _)| name.clone())
        .collect();
    // Candidates in claim order, locked; rows another claimer holds are passed over. A job
    // whose twin is running waits for it (and then takes its story from the cache).
    let wanted = i64::try_from(max.saturating_mul(3).saturating_add(8)).unwrap_or(i64::MAX);
    let candidates = tx
        .query(
            "SELECT j.seq, j.storyteller, j.content_hash, j.cache_key, j.no_cache, \
             CASE WHEN NOT j.no_cache THEN ( \
                 SELECT story FROM jobs AS done \
                 WHERE done.content_hash = j.content_hash AND done.cache_key = j.cache_key \
                   AND done.state = 'succeeded' AND done.story IS NOT NULL LIMIT 1) END \
             FROM jobs AS j \
             WHERE j.state = 'queued' AND j.run_after <= st_now_ms() \
               AND (j.no_cache OR NOT EXISTS ( \
                 SELECT 1 FROM jobs AS twin \
                 WHERE twin.content_hash = j.content_hash AND twin.cache_key = j.cache_key \
                   AND twin.state = 'running')) \
               AND NOT (j.storyteller = ANY($1)) \
               AND NOT EXISTS (SELECT 1 FROM storyteller_pauses AS p \
                               WHERE p.storyteller = j.storyteller) \
             ORDER BY j.priority, j.fair_key, j.seq \
             LIMIT $2 \
             FOR UPDATE OF j SKIP LOCKED",
            &[&full, &wanted],
        )
        .await?;
    let mut to_run: Vec<i64> = Vec::new();
    let mut from_cache: Vec<(i64, String)> = Vec::new();
    let mut twins: std::collections::HashSet<(String, String)> = std::collections::HashSet::new();
    for row in &candidates {
        if to_run.len() >= max {
            break;
        }
        let seq: i64 = row.try_get(0)?;
        let storyteller: String = row.try_get(1)?;
        let content_hash: String = row.try_get(2)?;
        let cache_key: String = row.try_get(3)?;
        let no_cache: bool = row.try_get(4)?;
        let cached: Option<String> = row.try_get(5)?;
        if let Some(story) = cached {
            from_cache.push((seq, story));
            continue;
        }
        if !no_cache && !twins.insert((content_hash, cache_key)) {
            // Its twin is taken in this very claim: it waits for that one's story.
            continue;
        }
        if let Some(left) = room_left.get_mut(&storyteller) {
            if *left == 0 {
                continue;
            }
            *left -= 1;
        }
        to_run.push(seq);
    }
    for (seq, story) in from_cache {
        let row = tx
            .query_one(
                &format!(
                    "UPDATE jobs SET state = 'succeeded', stage = 'done', progress = 1, \
                     story = $2, cached = true, lease_owner = NULL, lease_expires = NULL, \
                     error_kind = NULL, error_message = NULL, updated_at = st_now_ms(), \
                     finished_at = st_now_ms(), started_at = coalesce(started_at, st_now_ms()) \
                     WHERE seq = $1 RETURNING {JOB_COLUMNS}"
                ),
                &[&seq, &story],
            )
            .await?;
        let done = job_from_row(&row)?;
        index_story(tx, &done).await?;
        outbox.cache_hits += 1;
        outbox.job(&done);
    }
    if to_run.is_empty() {
        return Ok(Vec::new());
    }
    let rows = tx
        .query(
            &format!(
                "UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_owner = $2, \
                 lease_expires = st_now_ms() + $3, \
                 started_at = coalesce(jobs.started_at, st_now_ms()), \
                 attempt_started_at = st_now_ms(), updated_at = st_now_ms(), stage = 'waiting', \
                 progress = 0, cache_missed = jobs.cache_missed OR (first.claim AND NOT jobs.no_cache) \
                 FROM (SELECT seq, started_at IS NULL AS claim FROM jobs WHERE seq = ANY($1)) AS first \
                 WHERE jobs.seq = first.seq \
                 RETURNING {}, jobs.checkpoint, first.claim AND NOT jobs.no_cache, jobs.seq",
                JOB_COLUMNS
                    .split(", ")
                    .map(|c| format!("jobs.{}", c.trim()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            &[&to_run, &owner, &lease_ms],
        )
        .await?;
    let mut claimed: Vec<(usize, Job)> = Vec::with_capacity(rows.len());
    for row in &rows {
        let mut job = job_from_row(row)?;
        job.checkpoint = row.try_get(JOB_COLUMN_COUNT)?;
        if row.try_get::<_, bool>(JOB_COLUMN_COUNT + 1)? {
            outbox.cache_misses += 1;
        }
        let seq: i64 = row.try_get(JOB_COLUMN_COUNT + 2)?;
        let place = to_run.iter().position(|s| *s == seq).unwrap_or(usize::MAX);
        outbox.job(&job);
        claimed.push((place, job));
    }
    claimed.sort_by_key(|(place, _)| *place);
    Ok(claimed.into_iter().map(|(_, job)| job).collect())
}

/// Keeps the search words of a job that has its story now.
async fn index_story<C: GenericClient>(client: &C, job: &Job) -> Result<()> {
    let name = fold(&file_name_of(&job.source));
    let story = job.story.as_deref().map(fold);
    client
        .execute(
            &format!(
                "UPDATE jobs SET search = CASE WHEN $3::text IS NULL THEN NULL ELSE {SEARCH_VECTOR} END \
                 WHERE id = $4"
            ),
            &[&name, &story.clone().unwrap_or_default(), &story, &job.id.0],
        )
        .await?;
    Ok(())
}

/// Ends the storyteller pauses whose time has come, saying so.
async fn end_pauses_due(
    tx: &deadpool_postgres::Transaction<'_>,
    outbox: &mut Outbox,
) -> Result<()> {
    let ended = tx
        .query(
            "DELETE FROM storyteller_pauses WHERE until_ms IS NOT NULL AND until_ms <= st_now_ms() \
             RETURNING storyteller",
            &[],
        )
        .await?;
    for row in ended {
        let storyteller: String = row.try_get(0)?;
        outbox.counts = true;
        outbox.changes.push(("storytellers", storyteller.clone()));
        outbox
            .events
            .push(Event::StorytellerResumed { storyteller });
    }
    Ok(())
}

async fn finish_job(
    tx: &deadpool_postgres::Transaction<'_>,
    outbox: &mut Outbox,
    id: JobId,
    owner: &str,
    outcome: Outcome,
) -> Result<Job> {
    let held = "WHERE id = $1 AND state = 'running' AND lease_owner = $2";
    let (to, row, usage) = match outcome {
        Outcome::Succeeded {
            story,
            media,
            usage,
        } => {
            let row = tx
                .query_opt(
                    &format!(
                        "UPDATE jobs SET state = 'succeeded', stage = 'done', progress = 1, \
                         story = $3, checkpoint = NULL, media = coalesce($4, media), \
                         error_kind = NULL, error_message = NULL, lease_owner = NULL, \
                         lease_expires = NULL, updated_at = st_now_ms(), \
                         finished_at = st_now_ms() {held} RETURNING {JOB_COLUMNS}"
                    ),
                    &[&id.0, &owner, &story, &media],
                )
                .await?;
            (JobState::Succeeded, row, Some(usage))
        }
        // Back to the queue once `wait` has passed by the server's clock; a deferral (a rate
        // limit) refunds the attempt.
        Outcome::Retry { error, wait } => (
            JobState::Queued,
            back_to_queue(tx, id, owner, &error, wait, 0).await?,
            None,
        ),
        Outcome::Deferred { error, wait } => (
            JobState::Queued,
            back_to_queue(tx, id, owner, &error, wait, 1).await?,
            None,
        ),
        Outcome::Dead { error } => {
            let row = tx
                .query_opt(
                    &format!(
                        "UPDATE jobs SET state = 'dead', stage = 'done', error_kind = $3, \
                         error_message = $4, lease_owner = NULL, lease_expires = NULL, \
                         updated_at = st_now_ms(), finished_at = st_now_ms() {held} \
                         RETURNING {JOB_COLUMNS}"
                    ),
                    &[&id.0, &owner, &error.kind.as_str(), &error.message],
                )
                .await?;
            (JobState::Dead, row, None)
        }
        Outcome::Released { error } => {
            let (kind, message) = match &error {
                Some(e) => (Some(e.kind.as_str()), Some(e.message.as_str())),
                None => (None, None),
            };
            let row = tx
                .query_opt(
                    &format!(
                        "UPDATE jobs SET state = 'queued', stage = 'waiting', progress = 0, \
                         attempts = greatest(attempts - 1, 0), \
                         error_kind = coalesce($3, error_kind), \
                         error_message = coalesce($4, error_message), lease_owner = NULL, \
                         lease_expires = NULL, updated_at = st_now_ms() {held} \
                         RETURNING {JOB_COLUMNS}"
                    ),
                    &[&id.0, &owner, &kind, &message],
                )
                .await?;
            (JobState::Queued, row, None)
        }
    };
    let Some(row) = row else {
        return Err(PostgresStore::transition_error(tx, id, to).await);
    };
    let mut job = job_from_row(&row)?;
    if let Some(usage) = usage {
        index_story(tx, &job).await?;
        if book_usage(tx, id, &usage).await? {
            job = PostgresStore::load_job(tx, id)
                .await?
                .ok_or_else(|| EngineError::JobNotFound(id.to_string()))?;
        }
    }
    outbox.job(&job);
    Ok(job)
}

/// Puts running job `id` back in the queue until `wait` has passed, `refund` attempts given
/// back; the row if `owner` held it.
async fn back_to_queue(
    tx: &deadpool_postgres::Transaction<'_>,
    id: JobId,
    owner: &str,
    error: &JobError,
    wait: Duration,
    refund: i32,
) -> Result<Option<Row>> {
    Ok(tx
        .query_opt(
            &format!(
                "UPDATE jobs SET state = 'queued', stage = 'waiting', progress = 0, \
                 attempts = greatest(attempts - $6, 0), run_after = st_now_ms() + $3, \
                 error_kind = $4, error_message = $5, lease_owner = NULL, \
                 lease_expires = NULL, updated_at = st_now_ms() \
                 WHERE id = $1 AND state = 'running' AND lease_owner = $2 \
                 RETURNING {JOB_COLUMNS}"
            ),
            &[
                &id.0,
                &owner,
                &duration_ms(wait),
                &error.kind.as_str(),
                &error.message,
                &refund,
            ],
        )
        .await?)
}

/// Adds an attempt's `usage` to job `id`'s totals and to its storyteller's spending of the
/// day (this machine's local day); whether anything was booked.
async fn book_usage<C: GenericClient>(client: &C, id: JobId, usage: &Usage) -> Result<bool> {
    if usage.is_empty() {
        return Ok(false);
    }
    let row = client
        .query_opt(
            "UPDATE jobs SET input_tokens = input_tokens + $2, \
             output_tokens = output_tokens + $3, cost_micro_usd = cost_micro_usd + $4, \
             audio_input_tokens = audio_input_tokens + $5 WHERE id = $1 \
             RETURNING storyteller, st_now_ms()",
            &[
                &id.0,
                &clamp_i64(usage.input_tokens),
                &clamp_i64(usage.output_tokens),
                &clamp_i64(usage.cost_micro_usd),
                &clamp_i64(usage.audio_input_tokens),
            ],
        )
        .await?;
    let Some(row) = row else {
        return Ok(false);
    };
    let storyteller: String = row.try_get(0)?;
    let now: i64 = row.try_get(1)?;
    client
        .execute(
            "INSERT INTO spending (day, storyteller, attempts, input_tokens, output_tokens, \
             cost_micro_usd, audio_input_tokens) VALUES ($1, $2, 1, $3, $4, $5, $6) \
             ON CONFLICT (day, storyteller) DO UPDATE SET attempts = spending.attempts + 1, \
             input_tokens = spending.input_tokens + excluded.input_tokens, \
             output_tokens = spending.output_tokens + excluded.output_tokens, \
             cost_micro_usd = spending.cost_micro_usd + excluded.cost_micro_usd, \
             audio_input_tokens = spending.audio_input_tokens + excluded.audio_input_tokens",
            &[
                &crate::clock::local::day(now),
                &storyteller,
                &clamp_i64(usage.input_tokens),
                &clamp_i64(usage.output_tokens),
                &clamp_i64(usage.cost_micro_usd),
                &clamp_i64(usage.audio_input_tokens),
            ],
        )
        .await?;
    Ok(true)
}

/// The storytellers paused now, with how many of their jobs wait.
async fn storyteller_pauses<C: GenericClient>(
    client: &C,
    only_current: bool,
) -> Result<Vec<StorytellerPauseView>> {
    let rows = client
        .query(
            "SELECT p.storyteller, p.kind, p.reason, p.until_ms, \
             (SELECT count(*) FROM jobs WHERE jobs.state = 'queued' \
              AND jobs.storyteller = p.storyteller) \
             FROM storyteller_pauses AS p \
             WHERE NOT $1 OR p.until_ms IS NULL OR p.until_ms > st_now_ms() \
             ORDER BY p.storyteller",
            &[&only_current],
        )
        .await?;
    rows.iter()
        .map(|row| {
            Ok(StorytellerPauseView {
                storyteller: row.try_get(0)?,
                kind: PauseKind::parse(row.try_get::<_, &str>(1)?),
                reason: row.try_get(2)?,
                until: row.try_get::<_, Option<i64>>(3)?.map(crate::job::iso8601),
                queued: saturate(row.try_get::<_, i64>(4)?.max(0) as u64),
            })
        })
        .collect()
}

/// Running jobs whose lease ran out, or whose worker has gone, back to the queue (or set
/// aside as crashed; see the SQLite store for the rule, which is the same).
async fn reclaim_jobs(
    tx: &deadpool_postgres::Transaction<'_>,
    outbox: &mut Outbox,
    max_attempts: u32,
) -> Result<Vec<JobId>> {
    let gone = gone_workers(tx).await?;
    let stale = tx
        .query(
            "SELECT id FROM jobs WHERE state = 'running' \
             AND (lease_expires < st_now_ms() OR lease_owner = ANY($1)) \
             FOR UPDATE SKIP LOCKED",
            &[&gone],
        )
        .await?;
    let mut touched = Vec::with_capacity(stale.len());
    for row in stale {
        let id: Uuid = row.try_get(0)?;
        let counted: bool = tx
            .query_one(
                "SELECT progress <= furthest_progress + 0.0001 \
                 AND (attempt_started_at IS NULL \
                      OR (updated_at - attempt_started_at) * 4 >= longest_interrupted_ms * 3) \
                 FROM jobs WHERE id = $1",
                &[&id],
            )
            .await?
            .try_get(0)?;
        let crashed_out = if counted {
            tx.query_opt(
                &format!(
                    "UPDATE jobs SET state = 'dead', stage = 'done', error_kind = 'crashed', \
                     interruptions = interruptions + 1, \
                     error_message = 'Storyteller stopped while working on this video ' || \
                     (interruptions + 1) || ' times without getting any further; it was set \
                     aside so it cannot stall the queue (retry it to try again)', \
                     lease_owner = NULL, lease_expires = NULL, updated_at = st_now_ms(), \
                     finished_at = st_now_ms() \
                     WHERE id = $1 AND state = 'running' AND interruptions + 1 >= $2 \
                     RETURNING {JOB_COLUMNS}"
                ),
                &[&id, &i32::try_from(max_attempts).unwrap_or(i32::MAX)],
            )
            .await?
        } else {
            None
        };
        let row = match crashed_out {
            Some(row) => Some(row),
            None => {
                tx.query_opt(
                    &format!(
                        "UPDATE jobs SET state = 'queued', stage = 'waiting', \
                         interruptions = interruptions + $2, \
                         furthest_progress = greatest(furthest_progress, progress), \
                         progress = 0, \
                         longest_interrupted_ms = greatest(longest_interrupted_ms, \
                             coalesce(updated_at - attempt_started_at, 0)), \
                         run_after = 0, lease_owner = NULL, lease_expires = NULL, \
                         updated_at = st_now_ms() \
                         WHERE id = $1 AND state = 'running' RETURNING {JOB_COLUMNS}"
                    ),
                    &[&id, &i32::from(counted)],
                )
                .await?
            }
        };
        if let Some(row) = row {
            let job = job_from_row(&row)?;
            tracing::warn!(job = %job.id, state = %job.state, attempts = job.attempts,
                "reclaimed a job from a worker that stopped");
            outbox.job(&job);
            touched.push(job.id);
        }
    }
    // Gone workers hold nothing now: they are forgotten.
    tx.execute(
        "DELETE FROM workers AS w WHERE w.owner = ANY($1) AND NOT EXISTS ( \
             SELECT 1 FROM jobs WHERE state = 'running' AND lease_owner = w.owner)",
        &[&gone],
    )
    .await?;
    Ok(touched)
}

/// The condition that worker row `w`'s advisory lock is held (it is alive): a lock taken with
/// two keys shows its first as `classid` and its second as `objid` (`objsubid` 2).
const WORKER_ALIVE: &str = concat!(
    "EXISTS (SELECT 1 FROM pg_locks AS l \
     WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2 \
       AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
       AND l.classid::bigint = ",
    lock_class!(),
    " AND l.objid::bigint = w.lock_key)"
);

/// The real time in ms on the server, whatever the tests do to the queue's clock: what worker
/// heartbeats are stamped and judged with.
const REAL_NOW_MS: &str = "(extract(epoch FROM clock_timestamp()) * 1000)::bigint";

/// The workers registered whose lock nobody holds: they have gone, at once if they had a
/// session on the server as it runs now (it ended: the process died). A worker last heard of
/// before the server started (a restart drops every session at once) has a few seconds to
/// open its session again, and is gone only once it has not said it is there for as long.
async fn gone_workers<C: GenericClient>(client: &C) -> Result<Vec<String>> {
    let rows = client
        .query(
            &format!(
                "SELECT w.owner FROM workers AS w WHERE NOT {WORKER_ALIVE} \
                 AND (w.heartbeat_at >= \
                          (extract(epoch FROM pg_postmaster_start_time()) * 1000)::bigint \
                      OR w.heartbeat_at < {REAL_NOW_MS} - 5000)"
            ),
            &[],
        )
        .await?;
    rows.iter()
        .map(|row| Ok(row.try_get::<_, String>(0)?))
        .collect()
}
