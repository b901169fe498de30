//! [`SqliteStore`]: the job store in one local SQLite file (bundled SQLite, WAL).
//!
//! Writes go through one connection with group commit, on the blocking pool (see `writer`); reads use
//! a small set of read-only connections on the blocking pool. No call blocks a tokio worker.
//! Claiming picks the next job and takes it inside the writer's immediate transaction, which holds
//! the database's write lock, so two pools, in one process or two, never take the same job. Hot
//! statements avoid `RETURNING`, IN lists and triggers on `jobs`: SQLite pays for each with a
//! temporary table or a statement journal on every row written.
//!
//! Fairness is start-time fair queuing. Every enqueue is one batch; its jobs get consecutive fair
//! keys starting one past the priority's virtual clock (the key of the newest claimed job).
//! Claiming in (priority, fair key, seq) order then serves batches round-robin, a batch added
//! later joins the rotation at once, and each claim is one index seek.
//!
//! An interruption is not the video's fault until it looks like it. When a worker dies mid-job
//! (killed, the machine lost power: its lease lapses or its lock file is found free), the job
//! goes back to the queue; the interruption counts against the video only if the job had got no
//! further than the furthest an earlier interrupted attempt of it reached (`progress` against
//! `furthest_progress`; a first attempt that made no progress at all counts), although it ran at
//! least three quarters as long as the longest of them (`longest_interrupted_ms`: an attempt cut
//! short sooner had no chance to get further). A good video killed at random moments keeps
//! getting further, the more so as it resumes from its checkpoints, and is never set aside; one
//! that brings the process down at the same point every time counts each time and is set aside as `crashed` after as many of them as the pool allows (twice the
//! retry attempts: 10 by default). A clean stop is not an interruption: it refunds the attempt.

use super::feed::{self, Follower, ForeignSink, OwnChanges};
use super::liveness::{self, RunnerFacts};
use super::writer::{Outbox, Writer, WriterHooks, CACHE_HITS, CACHE_MISSES, COUNTERS};
use super::{
    schema, ClaimRoom, DaySpending, Enqueued, FileKey, JobFilter, JobStore, LiveWorker, Outcome,
    Removed, SourceKey, StoreFuture, StorySearch, StorytellerPause, WatchedFolderReport,
    WorkerRegistration,
};
use crate::clock::{duration_ms, Clock, SystemClock};
use crate::error::{EngineError, Result, StorageError, StorageFault, StoreBackend};
use crate::event::{Event, EventBus};
use crate::job::iso8601;
use crate::job::{
    BatchId, ErrorKind, Job, JobError, JobId, JobState, NewJob, Priority, Stage, StorySpec, Style,
    Usage,
};
use crate::watcher::folder::WatchedFolder;
use crate::wire::{saturate, JobView, ListOrder, PauseKind, QueueStats, StorytellerPauseView};
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, Row, ToSql};
use std::borrow::Cow;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use uuid::Uuid;

/// The columns [`job_from_row`] reads, in order. A macro, not a `const`, so that statements
/// are put together by `concat!` at compile time: a `format!` per statement was a string built
/// for every job claimed, finished or added.
/// How many columns [`job_columns!`] names: what a statement selects after them starts here.
const JOB_COLUMNS: usize = 33;

macro_rules! job_columns {
    () => {
        "id, source, size, mtime_ms, content_hash, media, storyteller, model, \
         preset, priority, batch_id, state, stage, progress, attempts, run_after, lease_owner, \
         lease_expires, error_kind, error_message, story, cached, no_cache, input_tokens, \
         output_tokens, cost_micro_usd, created_at, updated_at, started_at, finished_at, \
         audio_input_tokens, style, watched_folder"
    };
}

/// The condition that a job belongs to the batch whose id is the parameter `$id`: within the
/// batch's range of `seq`s (see the schema's migration 3), so it is a range of the table, not
/// a scan.
macro_rules! in_batch {
    ($id:literal) => {
        concat!(
            "seq BETWEEN (SELECT first_seq FROM batches WHERE id = ",
            $id,
            ") AND (SELECT last_seq FROM batches WHERE id = ",
            $id,
            ") AND batch_id = ",
            $id
        )
    };
}

/// The condition that a finishing worker still holds the job's lease.
macro_rules! lease_held {
    () => {
        "WHERE id = ?1 AND state = 'running' AND lease_owner = ?2"
    };
}

/// Read connections kept open for reuse.
const MAX_IDLE_READERS: usize = 4;

/// The SQLite job store; cheap to clone.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    // Where the workers' lock files are: how this store knows which workers are alive.
    runners: PathBuf,
    // The workers registered through this store, alive while they are.
    live_here: Arc<liveness::LiveHere>,
    // The file as it was opened (device, inode): a file deleted or replaced under a running
    // process is noticed instead of written into the void.
    identity: Option<(u64, u64)>,
    // Why nothing more is written, once the file was found damaged or gone.
    damage: OnceLock<String>,
    // When the file's identity was last looked at (ms since `opened`): a stat per statement
    // would be a syscall on every claim and finish; a few a second notice a deleted file as well.
    opened: std::time::Instant,
    identity_checked_ms: std::sync::atomic::AtomicU64,
    writer: Writer,
    // A std Mutex is right here: it is only ever locked for a push or pop inside
    // `spawn_blocking`, never across an await.
    readers: Mutex<Vec<Connection>>,
    clock: Arc<dyn Clock>,
    bus: EventBus,
    own_changes: Arc<OwnChanges>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.inner.path)
            .finish()
    }
}

impl SqliteStore {
    /// Opens (creating and migrating) the database at `path`, publishing changes on `bus`.
    pub async fn open(path: impl Into<PathBuf>, bus: EventBus) -> Result<Self> {
        Self::open_with_clock(path, bus, Arc::new(SystemClock)).await
    }

    /// [`SqliteStore::open`] with an injected clock (tests move time by hand).
    pub async fn open_with_clock(
        path: impl Into<PathBuf>,
        bus: EventBus,
        clock: Arc<dyn Clock>,
    ) -> Result<Self> {
        let path = path.into();
        let open_path = path.clone();
        let conn = tokio::task::spawn_blocking(move || -> Result<Connection> {
            if let Some(parent) = open_path.parent() {
                std::fs::create_dir_all(parent).map_err(|e| EngineError::io(parent, &e))?;
            }
            schema::open_writer(&open_path).map_err(|e| {
                if e.is_corruption() {
                    EngineError::DatabaseDamaged(set_aside(&open_path, &damage_cause(&e)))
                } else {
                    e
                }
            })
        })
        .await
        .map_err(|_| EngineError::StoreClosed)??;
        let own_changes = Arc::new(OwnChanges::default());
        let hooks = WriterHooks {
            apply_counts,
            counts_event,
            change_mark: feed::change_mark,
            own_changes: own_changes.clone(),
            housekeeping: feed::trim_changes,
        };
        let writer = Writer::spawn(conn, bus.clone(), hooks)?;
        let identity = file_identity(&path);
        Ok(Self {
            inner: Arc::new(Inner {
                runners: liveness::runners_dir(&path),
                live_here: Arc::default(),
                path,
                identity,
                damage: OnceLock::new(),
                opened: std::time::Instant::now(),
                identity_checked_ms: std::sync::atomic::AtomicU64::new(0),
                writer,
                readers: Mutex::new(Vec::new()),
                clock,
                bus,
                own_changes,
            }),
        })
    }

    /// Each running job with the worker holding it.
    async fn running_by_owner(&self) -> Result<Vec<(Option<String>, JobId)>> {
        self.read(|conn| {
            conn.prepare_cached(
                "SELECT lease_owner, id FROM jobs INDEXED BY jobs_leases WHERE state = 'running'",
            )?
            .query_map([], |r| {
                Ok((r.get::<_, Option<String>>(0)?, r.get::<_, String>(1)?))
            })?
            .map(|row| {
                let (owner, id) = row?;
                let id = id
                    .parse()
                    .map_err(|_| EngineError::CorruptRecord(format!("job id '{id}'")))?;
                Ok((owner, id))
            })
            .collect()
        })
        .await
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The bus this store publishes on.
    pub fn bus(&self) -> &EventBus {
        &self.inner.bus
    }

    /// The clock this store stamps with.
    pub fn clock(&self) -> Arc<dyn Clock> {
        self.inner.clock.clone()
    }

    /// Runs `PRAGMA integrity_check`; `Ok("ok")` for a healthy file.
    pub async fn integrity_check(&self) -> Result<String> {
        self.read(|conn| Ok(conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))?))
            .await
    }

    /// The ranges of the change log this process wrote.
    pub(super) fn own_changes(&self) -> Arc<OwnChanges> {
        self.inner.own_changes.clone()
    }

    /// Runs `work` on a read-only connection on the blocking pool.
    pub(super) async fn read<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            inner.check_usable()?;
            let idle = inner
                .readers
                .lock()
                .map_err(|_| EngineError::StoreClosed)?
                .pop();
            let conn = match idle {
                Some(conn) => conn,
                None => {
                    let conn = Connection::open_with_flags(
                        &inner.path,
                        OpenFlags::SQLITE_OPEN_READ_ONLY
                            | OpenFlags::SQLITE_OPEN_NO_MUTEX
                            | OpenFlags::SQLITE_OPEN_URI,
                    )?;
                    conn.busy_timeout(Duration::from_secs(10))?;
                    conn
                }
            };
            let result = work(&conn);
            if let Ok(mut idle) = inner.readers.lock() {
                if idle.len() < MAX_IDLE_READERS {
                    idle.push(conn);
                }
            }
            result
        })
        .await
        .map_err(|_| EngineError::StoreClosed)?
    }

    async fn write<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &mut Outbox, i64) -> Result<T> + Send + 'static,
    {
        let clock = self.inner.clock.clone();
        let inner = self.inner.clone();
        let result = self
            .inner
            .writer
            .run(move |conn, outbox| {
                inner.check_usable()?;
                let result = work(conn, outbox, clock.now_ms());
                inner.note_damage(result)
            })
            .await;
        // A commit that failed on a damaged page fails the whole group.
        self.inner.note_damage(result)
    }
}

impl Inner {
    /// Refuses to go on once the file was found damaged, or deleted or replaced on disk.
    fn check_usable(&self) -> Result<()> {
        if let Some(why) = self.damage.get() {
            return Err(EngineError::DatabaseDamaged(why.clone()));
        }
        if self.identity.is_some()
            && self.identity_due()
            && file_identity(&self.path) != self.identity
        {
            let why = format!(
                "the database file {} was deleted or replaced while Storyteller was using it, \
                 so nothing more is written (it would be lost); start Storyteller again to use \
                 the file that is there now",
                self.path.display()
            );
            let why = self.damage.get_or_init(|| why);
            tracing::error!("{why}");
            return Err(EngineError::DatabaseDamaged(why.clone()));
        }
        Ok(())
    }

    /// Whether the file's identity is due for another look (at most every 200 ms).
    fn identity_due(&self) -> bool {
        use std::sync::atomic::Ordering;
        let now = u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX);
        let last = self.identity_checked_ms.load(Ordering::Relaxed);
        now.saturating_sub(last) >= 200
            && self
                .identity_checked_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }

    /// `result`, or, when SQLite found the file damaged: from now on nothing is written, a
    /// copy of the file is set aside (once), and the error says so and what to do.
    fn note_damage<T>(&self, result: Result<T>) -> Result<T> {
        match result {
            Err(error) if error.is_corruption() => {
                let why = self
                    .damage
                    .get_or_init(|| set_aside(&self.path, &damage_cause(&error)));
                tracing::error!("{why}");
                Err(EngineError::DatabaseDamaged(why.clone()))
            }
            other => other,
        }
    }
}

/// What SQLite said about the damage, without the "database error:" wrapping.
fn damage_cause(error: &EngineError) -> String {
    match error {
        EngineError::Storage(e) => e.message.clone(),
        other => other.to_string(),
    }
}

/// SQLite's words for an error, once: rusqlite's own display repeats the message and adds the
/// numeric code ("malformed: malformed: Error code 11").
pub(crate) fn sqlite_words(error: &rusqlite::Error) -> String {
    match error {
        rusqlite::Error::SqliteFailure(_, Some(message)) => message.clone(),
        rusqlite::Error::SqliteFailure(failure, None) => failure.to_string(),
        other => other.to_string(),
    }
}

/// The kind of fault a SQLite error is.
fn sqlite_fault(error: &rusqlite::Error) -> StorageFault {
    use rusqlite::ErrorCode as Code;
    let rusqlite::Error::SqliteFailure(failure, _) = error else {
        return StorageFault::Other;
    };
    // SQLITE_IOERR_SHMSIZE is what a full disk gives a connection opening the database: the
    // shared-memory index could not grow.
    if failure.code == Code::DiskFull
        || failure.extended_code == rusqlite::ffi::SQLITE_IOERR_SHMSIZE
    {
        return StorageFault::DiskFull;
    }
    match failure.code {
        Code::DatabaseCorrupt | Code::NotADatabase => StorageFault::Corrupt,
        Code::DatabaseBusy | Code::DatabaseLocked => StorageFault::Busy,
        Code::CannotOpen => StorageFault::Unreachable,
        _ => StorageFault::Other,
    }
}

/// SQLite's errors become the engine's, without rusqlite's types: the backend, the kind of
/// fault and SQLite's words.
impl From<rusqlite::Error> for EngineError {
    fn from(error: rusqlite::Error) -> Self {
        EngineError::Storage(StorageError {
            backend: StoreBackend::Sqlite,
            fault: sqlite_fault(&error),
            message: sqlite_words(&error),
        })
    }
}

/// The file's device and inode, where the platform has them.
fn file_identity(path: &Path) -> Option<(u64, u64)> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

/// Copies the damaged database at `path` (and its write-ahead log) aside, untouched by anything
/// that follows; the message for people: what happened, where the copy is, what to do.
fn set_aside(path: &Path, cause: &str) -> String {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let copy = path.with_extension(format!("db.damaged-{stamp}"));
    let kept = std::fs::copy(path, &copy).is_ok();
    let wal = path.with_extension("db-wal");
    if kept && wal.exists() {
        let _ = std::fs::copy(&wal, copy.with_extension(format!("damaged-{stamp}-wal")));
    }
    let home = path.parent().unwrap_or(path);
    let kept = if kept {
        format!("a copy of it as it is now is kept at {}", copy.display())
    } else {
        "it could not be copied aside, so leave it where it is".to_owned()
    };
    format!(
        "the database at {} is damaged ({cause}), so nothing more is written to it; {kept}. \
         Restore storyteller.db from a backup into {}, or move the damaged file away and start \
         Storyteller again to begin with an empty queue",
        path.display(),
        home.display()
    )
}

fn job_from_row(row: &Row<'_>) -> rusqlite::Result<Job> {
    fn parsed<T: std::str::FromStr>(row: &Row<'_>, index: usize) -> rusqlite::Result<T>
    where
        T::Err: std::fmt::Display,
    {
        let text: String = row.get(index)?;
        text.parse::<T>().map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(
                index,
                rusqlite::types::Type::Text,
                e.to_string().into(),
            )
        })
    }
    let media: Option<String> = row.get(5)?;
    let error_kind: Option<String> = row.get(18)?;
    let error_message: Option<String> = row.get(19)?;
    let error = match (error_kind, error_message) {
        (Some(kind), Some(message)) => Some(JobError {
            kind: kind.parse::<ErrorKind>().unwrap_or(ErrorKind::Permanent),
            message,
        }),
        _ => None,
    };
    Ok(Job {
        id: parsed(row, 0)?,
        source: source_from_sql(row.get_ref(1)?)?,
        size: row.get::<_, i64>(2)?.max(0) as u64,
        mtime_ms: row.get(3)?,
        content_hash: row.get(4)?,
        media: media.and_then(|m| serde_json::from_str(&m).ok()),
        storyteller: row.get(6)?,
        model: row.get(7)?,
        preset: row.get(8)?,
        style: Style::from_json(row.get::<_, Option<String>>(31)?.as_deref()),
        priority: Priority::from_rank(row.get(9)?),
        batch_id: BatchId(parsed(row, 10)?),
        state: parsed(row, 11)?,
        stage: parsed(row, 12)?,
        progress: row.get(13)?,
        attempts: row.get::<_, i64>(14)?.max(0) as u32,
        run_after_ms: row.get(15)?,
        lease_owner: row.get(16)?,
        lease_expires_ms: row.get(17)?,
        error,
        story: row.get(20)?,
        cached: row.get(21)?,
        no_cache: row.get(22)?,
        usage: Usage {
            input_tokens: row.get::<_, i64>(23)?.max(0) as u64,
            output_tokens: row.get::<_, i64>(24)?.max(0) as u64,
            audio_input_tokens: row.get::<_, i64>(30)?.max(0) as u64,
            cost_micro_usd: row.get::<_, i64>(25)?.max(0) as u64,
        },
        created_at_ms: row.get(26)?,
        updated_at_ms: row.get(27)?,
        started_at_ms: row.get(28)?,
        finished_at_ms: row.get(29)?,
        watched_folder: match row.get_ref(32)? {
            rusqlite::types::ValueRef::Null => None,
            value => Some(source_from_sql(value)?),
        },
        // Read by claims alone (the one place a storyteller needs it): a list of jobs must
        // not parse every running job's saved work.
        checkpoint: None,
    })
}

/// The job with `id`, if there is one.
pub(super) fn load_job(conn: &Connection, id: JobId) -> Result<Option<Job>> {
    Ok(conn
        .prepare_cached(concat!(
            "SELECT ",
            job_columns!(),
            " FROM jobs WHERE id = ?1"
        ))?
        .query_row([id.to_string()], job_from_row)
        .optional()?)
}

/// The jobs of the batch with id `batch`, oldest first.
pub(super) fn jobs_of_batch(conn: &Connection, batch: &str) -> Result<Vec<Job>> {
    Ok(conn
        .prepare_cached(concat!(
            "SELECT ",
            job_columns!(),
            " FROM jobs WHERE ",
            in_batch!("?1"),
            " ORDER BY seq"
        ))?
        .query_map([batch], job_from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?)
}

/// Counts per state, cache figures and the pause reason.
pub(super) fn read_stats(conn: &Connection) -> Result<QueueStats> {
    let mut stats = QueueStats::default();
    let mut counts = conn.prepare_cached("SELECT state, n FROM state_counts")?;
    let mut rows = counts.query([])?;
    while let Some(row) = rows.next()? {
        let n = saturate(row.get::<_, i64>(1)?.max(0) as u64);
        match row.get::<_, String>(0)?.parse::<JobState>() {
            Ok(JobState::Queued) => stats.queued = n,
            Ok(JobState::Running) => stats.running = n,
            Ok(JobState::Succeeded) => stats.succeeded = n,
            Ok(JobState::Dead) => stats.dead = n,
            Ok(JobState::Cancelled) => stats.cancelled = n,
            Err(e) => return Err(EngineError::CorruptRecord(e)),
        }
    }
    let mut meta = conn.prepare_cached("SELECT key, value FROM meta")?;
    let mut rows = meta.query([])?;
    while let Some(row) = rows.next()? {
        let key: String = row.get(0)?;
        match key.as_str() {
            "cache_hits" => stats.cache_hits = saturate(row.get::<_, i64>(1)?.max(0) as u64),
            "cache_misses" => stats.cache_misses = saturate(row.get::<_, i64>(1)?.max(0) as u64),
            "paused" => stats.paused = row.get(1)?,
            _ => {}
        }
    }
    // Every row: one whose time has passed is ended by the next claim, which says so.
    stats.paused_storytellers = storyteller_pauses(conn, i64::MIN)?;
    // The wall clock's day: these figures are for people, and no decision reads them (the
    // caps read the books by the pool's clock).
    let (today, month) = conn
        .prepare_cached(
            "SELECT coalesce(sum(CASE WHEN day = date('now', 'localtime') \
             THEN cost_micro_usd END), 0), coalesce(sum(cost_micro_usd), 0) FROM spending \
             WHERE day >= date('now', 'localtime', 'start of month')",
        )?
        .query_row([], |row| Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?)))?;
    stats.spent_today_usd = today.max(0) as f64 / 1e6;
    stats.spent_this_month_usd = month.max(0) as f64 / 1e6;
    Ok(stats)
}

/// Adds a group's count deltas (see [`Outbox::count_deltas`]) to `state_counts` and the cache
/// counters in `meta`.
fn apply_counts(conn: &Connection, deltas: &[i64; COUNTERS]) -> Result<()> {
    let mut update = conn.prepare_cached("UPDATE state_counts SET n = n + ?1 WHERE state = ?2")?;
    for (state, delta) in JobState::ALL.iter().zip(deltas) {
        if *delta != 0 {
            update.execute(params![delta, state.as_str()])?;
        }
    }
    let mut counter = conn.prepare_cached("UPDATE meta SET value = value + ?1 WHERE key = ?2")?;
    for (index, key) in [(CACHE_HITS, "cache_hits"), (CACHE_MISSES, "cache_misses")] {
        if deltas[index] != 0 {
            counter.execute(params![deltas[index], key])?;
        }
    }
    Ok(())
}

/// Logs, for other processes, that a job's state or stage changed (`job`) or it was deleted
/// (`gone`); see `feed`.
fn log_change(conn: &Connection, kind: &str, id: JobId) -> Result<()> {
    conn.prepare_cached("INSERT INTO changes (kind, ref) VALUES (?1, ?2)")?
        .execute(params![kind, id.to_string()])?;
    Ok(())
}

/// [`log_change`] of `job`'s change from `from`, and its move in the counts.
fn job_moved(conn: &Connection, outbox: &mut Outbox, from: JobState, job: &Job) -> Result<()> {
    outbox.moved(from, job.state);
    log_change(conn, "job", job.id)
}

fn counts_event(conn: &Connection) -> Result<Event> {
    read_stats(conn).map(|stats| Event::QueueStats { stats })
}

fn paused_reason(conn: &Connection) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached("SELECT value FROM meta WHERE key = 'paused'")?
        .query_row([], |r| r.get::<_, Option<String>>(0))
        .optional()?
        .flatten())
}

/// The error for a job that is not in a state `to` can be reached from.
fn transition_error(conn: &Connection, id: JobId, to: JobState) -> EngineError {
    match load_job(conn, id) {
        Ok(Some(job)) => match job.state.check_transition(to) {
            Err(illegal) => EngineError::IllegalTransition(illegal),
            // Legal in principle but the row did not match (lease held by someone else).
            Ok(()) => EngineError::LeaseLost(id),
        },
        Ok(None) => EngineError::JobNotFound(id.to_string()),
        Err(e) => e,
    }
}

/// The story of a succeeded job with this cache key, if there is one.
fn cached_story(conn: &Connection, content_hash: &str, cache_key: &str) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached(
            "SELECT story FROM jobs WHERE content_hash = ?1 AND cache_key = ?2 \
             AND state = 'succeeded' AND story IS NOT NULL LIMIT 1",
        )?
        .query_row([content_hash, cache_key], |r| r.get(0))
        .optional()?)
}

/// A source path as the `source` column keeps it: text when the name is UTF-8 (nearly always),
/// else, on Unix, the name's bytes as a blob, so that a name that is not text comes back byte
/// for byte and names the same file.
struct SourceSql<'a>(&'a Path);

impl ToSql for SourceSql<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self.0.to_str() {
            Some(text) => ToSqlOutput::Borrowed(ValueRef::Text(text.as_bytes())),
            #[cfg(unix)]
            None => {
                use std::os::unix::ffi::OsStrExt;
                ToSqlOutput::Borrowed(ValueRef::Blob(self.0.as_os_str().as_bytes()))
            }
            // Intake refuses such names where paths are not bytes.
            #[cfg(not(unix))]
            None => ToSqlOutput::Owned(rusqlite::types::Value::Text(
                self.0.to_string_lossy().into_owned(),
            )),
        })
    }
}

/// The path [`SourceSql`] stored.
fn source_from_sql(value: ValueRef<'_>) -> rusqlite::Result<PathBuf> {
    match value {
        ValueRef::Text(bytes) | ValueRef::Blob(bytes) => {
            #[cfg(unix)]
            {
                use std::os::unix::ffi::OsStrExt;
                Ok(PathBuf::from(std::ffi::OsStr::from_bytes(bytes)))
            }
            #[cfg(not(unix))]
            {
                Ok(PathBuf::from(String::from_utf8_lossy(bytes).into_owned()))
            }
        }
        other => Err(rusqlite::Error::InvalidColumnType(
            1,
            "source".into(),
            other.data_type(),
        )),
    }
}

/// Those of `sources` that some job is for: most files added are new, and one statement for
/// them all spares a full lookup for each ([`existing_job`] is then asked about the rest).
fn known_sources<'a>(
    conn: &Connection,
    sources: impl Iterator<Item = &'a str>,
) -> Result<HashSet<String>> {
    known_values(
        conn,
        "SELECT DISTINCT j.source FROM json_each(?1) AS f \
         JOIN jobs AS j INDEXED BY jobs_source ON j.source = f.value",
        sources.map(Cow::Borrowed),
    )
}

/// Those of `values` that `query` (joining `json_each(?1)` of them to the jobs) finds.
fn known_values<'a>(
    conn: &Connection,
    query: &str,
    values: impl Iterator<Item = Cow<'a, str>>,
) -> Result<HashSet<String>> {
    let values: Vec<Cow<'a, str>> = values.collect();
    if values.is_empty() {
        return Ok(HashSet::new());
    }
    let values = serde_json::to_string(&values)
        .map_err(|error| EngineError::CorruptRecord(format!("batch lookup: {error}")))?;
    Ok(conn
        .prepare_cached(query)?
        .query_map([values], |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?)
}

/// A job for the file `key` names (same path, size, modification time, storyteller, model and
/// preset) that is queued, running or done, if there is one.
fn existing_job(
    conn: &Connection,
    source: &Path,
    size: u64,
    mtime_ms: i64,
    spec: &StorySpec,
) -> Result<Option<Job>> {
    Ok(conn
        .prepare_cached(concat!(
            // No IN list and no ORDER BY: each would cost a temporary table per lookup, and one
            // look happens for every file added. Any matching job will do.
            "SELECT ",
            job_columns!(),
            " FROM jobs INDEXED BY jobs_source WHERE source = ?1 \
             AND size = ?2 AND mtime_ms = ?3 AND storyteller = ?4 AND model = ?5 AND preset = ?6 \
             AND style IS ?7 AND state <> 'dead' AND state <> 'cancelled' LIMIT 1"
        ))?
        .query_row(
            params![
                SourceSql(source),
                i64::try_from(size).unwrap_or(i64::MAX),
                mtime_ms,
                spec.storyteller,
                spec.model,
                spec.preset,
                spec.style.to_json(),
            ],
            job_from_row,
        )
        .optional()?)
}

fn enqueue_batch(
    conn: &Connection,
    outbox: &mut Outbox,
    now: i64,
    jobs: Vec<NewJob>,
) -> Result<(BatchId, Vec<Enqueued>)> {
    let batch = BatchId::new();
    // The `seq`s of the batch's first and last job, once one is stored.
    let mut batch_seqs: Option<(i64, i64)> = None;
    // A new batch starts at the virtual clock: it joins the rotation now, neither ahead of
    // batches already waiting nor behind all of them.
    let mut next_key = [0i64; 3];
    for priority in Priority::ALL {
        next_key[priority.rank() as usize] = conn
            .prepare_cached("SELECT vtime FROM fair_clock WHERE priority = ?1")?
            .query_row([priority.rank()], |r| r.get(0))?;
    }
    let mut results = Vec::with_capacity(jobs.len());
    let mut added_views = Vec::new();
    let mut cache_hits = 0i64;
    let batch_text = batch.to_string();
    // What is already there is asked once for the whole batch, not once per job: most files
    // added are new, and a statement per file was a third of the cost of adding one.
    let mut known_sources = known_sources(
        conn,
        jobs.iter()
            .filter(|job| !job.again)
            .filter_map(|job| job.source.to_str()),
    )?;
    let known_contents = known_values(
        conn,
        "SELECT DISTINCT j.content_hash FROM json_each(?1) AS f \
         JOIN jobs AS j INDEXED BY jobs_content ON j.content_hash = f.value",
        jobs.iter()
            .filter(|job| !job.no_cache)
            .map(|job| Cow::Borrowed(job.content_hash.as_str())),
    )?;
    for job in jobs {
        if !job.again {
            // A name that is not text is not in the batch lookup: it is looked up alone.
            let maybe_known = match job.source.to_str() {
                Some(source) => !known_sources.insert(source.to_owned()),
                None => true,
            };
            // (The same file twice in one batch: the second finds the first's job.)
            if maybe_known {
                if let Some(existing) =
                    existing_job(conn, &job.source, job.size, job.mtime_ms, &job.spec)?
                {
                    results.push(Enqueued::Existing(existing));
                    continue;
                }
            }
        }
        if batch_seqs.is_none() {
            conn.prepare_cached("INSERT INTO batches (id, created_at) VALUES (?1, ?2)")?
                .execute(params![batch_text, now])?;
        }
        let cache_key = job.spec.cache_key(&job.content_hash);
        let story = if job.no_cache || !known_contents.contains(&job.content_hash) {
            None
        } else {
            cached_story(conn, &job.content_hash, &cache_key)?
        };
        let rank = job.priority.rank() as usize;
        next_key[rank] += 1;
        let (state, stage, progress, finished_at) = match story {
            Some(_) => (JobState::Succeeded, Stage::Done, 1.0, Some(now)),
            None => (JobState::Queued, Stage::Waiting, 0.0, None),
        };
        let id = JobId::new();
        let mut id_text = Uuid::encode_buffer();
        let id_text: &str = id.0.hyphenated().encode_lower(&mut id_text);
        let size = i64::try_from(job.size).unwrap_or(i64::MAX);
        // A story from the cache makes the job succeeded at once; the state and the columns
        // that go with it follow from whether `?14` (the story) is NULL, so one statement with
        // few parameters serves both.
        conn.prepare_cached(
            "INSERT INTO jobs (id, source, size, mtime_ms, content_hash, storyteller, model, \
             preset, cache_key, no_cache, priority, batch_id, fair_key, state, stage, progress, \
             story, cached, created_at, updated_at, finished_at, style, watched_folder) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, \
             iif(?14 IS NULL, 'queued', 'succeeded'), iif(?14 IS NULL, 'waiting', 'done'), \
             ?14 IS NOT NULL, ?14, ?14 IS NOT NULL, ?15, ?15, iif(?14 IS NULL, NULL, ?15), ?16, \
             ?17)",
        )?
        .execute(params![
            id_text,
            SourceSql(&job.source),
            size,
            job.mtime_ms,
            job.content_hash,
            job.spec.storyteller,
            job.spec.model,
            job.spec.preset,
            cache_key,
            job.no_cache,
            job.priority.rank(),
            batch_text,
            next_key[rank],
            story,
            now,
            job.spec.style.to_json(),
            job.watched_folder.as_deref().map(SourceSql),
        ])?;
        let seq = conn.last_insert_rowid();
        batch_seqs = Some(batch_seqs.map_or((seq, seq), |(first, _)| (first, seq)));
        let cached = story.is_some();
        if cached {
            cache_hits += 1;
        }
        let stored = Job {
            id,
            source: job.source,
            size: job.size,
            mtime_ms: job.mtime_ms,
            content_hash: job.content_hash,
            media: None,
            storyteller: job.spec.storyteller,
            model: job.spec.model,
            preset: job.spec.preset,
            style: job.spec.style,
            priority: job.priority,
            batch_id: batch,
            state,
            stage,
            progress,
            attempts: 0,
            run_after_ms: 0,
            lease_owner: None,
            lease_expires_ms: None,
            error: None,
            story,
            cached,
            no_cache: job.no_cache,
            usage: Usage::default(),
            created_at_ms: now,
            updated_at_ms: now,
            started_at_ms: None,
            finished_at_ms: finished_at,
            watched_folder: job.watched_folder,
            checkpoint: None,
        };
        added_views.push(JobView::from(&stored));
        results.push(Enqueued::Added(stored));
    }
    if let Some((first, last)) = batch_seqs {
        conn.prepare_cached("UPDATE batches SET first_seq = ?2, last_seq = ?3 WHERE id = ?1")?
            .execute(params![batch_text, first, last])?;
    }
    outbox.cache_hits(cache_hits);
    // Counted once per group; see the schema's migration 2.
    outbox.added(JobState::Queued, added_views.len() as i64 - cache_hits);
    outbox.added(JobState::Succeeded, cache_hits);
    if !added_views.is_empty() {
        // One event for the whole add, however many files: a big drop must not flood the bus.
        outbox.events.push(Event::JobsAdded {
            batch_id: batch,
            jobs: added_views.into(),
        });
        outbox.counts_changed = true;
    }
    Ok((batch, results))
}

fn claim_jobs(
    conn: &Connection,
    outbox: &mut Outbox,
    now: i64,
    owner: &str,
    room: &ClaimRoom,
    lease_ms: i64,
) -> Result<Vec<Job>> {
    let max = room.max;
    if max == 0 || paused_reason(conn)?.is_some() {
        return Ok(Vec::new());
    }
    end_pauses_due(conn, outbox, now)?;
    // Storytellers with no room left now (their limits, in this process) are passed over, as
    // are the paused ones (in the store, for every process): the jobs behind them go first.
    let mut room_left = room.per_storyteller.clone();
    let full = |room_left: &std::collections::BTreeMap<String, usize>| {
        serde_json::Value::from(
            room_left
                .iter()
                .filter(|(_, n)| **n == 0)
                .map(|(name, _)| name.clone())
                .collect::<Vec<_>>(),
        )
        .to_string()
    };
    let mut passed_over = full(&room_left);
    // The pick and the take run in the writer's immediate transaction, so no other claimer (in
    // this process or another) can take the job in between. The index is named because without
    // statistics SQLite may sort every queued row on each claim; `jobs_ready` is already in
    // claim order, so a claim is one seek. A job whose twin (same cache key) is running waits:
    // when the twin succeeds, it takes its story from the cache instead of paying for it twice.
    let mut next = conn.prepare_cached(concat!(
        "SELECT ",
        job_columns!(),
        ", fair_key, seq, j.checkpoint, \
         CASE WHEN j.no_cache = 0 THEN ( \
             SELECT story FROM jobs AS done \
             WHERE done.content_hash = j.content_hash AND done.cache_key = j.cache_key \
               AND done.state = 'succeeded' AND done.story IS NOT NULL LIMIT 1) END \
         FROM jobs AS j INDEXED BY jobs_ready \
         WHERE j.state = 'queued' AND j.run_after <= ?1 \
           AND (j.no_cache = 1 OR NOT EXISTS ( \
             SELECT 1 FROM jobs AS twin \
             WHERE twin.content_hash = j.content_hash AND twin.cache_key = j.cache_key \
               AND twin.state = 'running')) \
           AND j.storyteller NOT IN (SELECT value FROM json_each(?2)) \
           AND j.storyteller NOT IN (SELECT storyteller FROM storyteller_pauses) \
         ORDER BY j.priority, j.fair_key, j.seq LIMIT 1"
    ))?;
    // Taken by its row number, without RETURNING (which SQLite buffers in a temporary table).
    let mut take = conn.prepare_cached(
        "UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_owner = ?2, \
         lease_expires = ?3, started_at = coalesce(started_at, ?4), attempt_started_at = ?4, \
         updated_at = ?4, stage = 'waiting', progress = 0 WHERE seq = ?1",
    )?;
    let mut advance_clock =
        conn.prepare_cached("UPDATE fair_clock SET vtime = max(vtime, ?2) WHERE priority = ?1")?;
    let mut claimed = Vec::with_capacity(max);
    while claimed.len() < max {
        // The story a finished twin left in the cache comes with the pick, in the same seeks.
        let Some((mut job, fair_key, seq, cached)) = next
            .query_row(params![now, passed_over], |row| {
                let mut job = job_from_row(row)?;
                job.checkpoint = row
                    .get::<_, Option<String>>(JOB_COLUMNS + 2)?
                    .and_then(|saved| serde_json::from_str(&saved).ok());
                Ok((
                    job,
                    row.get::<_, i64>(JOB_COLUMNS)?,
                    row.get::<_, i64>(JOB_COLUMNS + 1)?,
                    row.get::<_, Option<String>>(JOB_COLUMNS + 3)?,
                ))
            })
            .optional()?
        else {
            break;
        };
        // Cache hits and misses count jobs, not attempts: a job put back by a clean stop (its
        // attempt refunded) and claimed again is still the one miss it was.
        let first_claim = job.started_at_ms.is_none();
        take.execute(params![seq, owner, now + lease_ms, now])?;
        // The row as the update left it.
        job.state = JobState::Running;
        job.attempts += 1;
        job.lease_owner = Some(owner.to_owned());
        job.lease_expires_ms = Some(now + lease_ms);
        job.started_at_ms = Some(job.started_at_ms.unwrap_or(now));
        job.updated_at_ms = now;
        job.stage = Stage::Waiting;
        job.progress = 0.0;
        advance_clock.execute(params![job.priority.rank(), fair_key])?;
        if !job.no_cache {
            if let Some(story) = cached {
                conn.prepare_cached(
                    "UPDATE jobs SET state = 'succeeded', stage = 'done', progress = 1, \
                     story = ?2, cached = 1, attempts = attempts - 1, lease_owner = NULL, \
                     lease_expires = NULL, error_kind = NULL, error_message = NULL, \
                     updated_at = ?3, finished_at = ?3 WHERE seq = ?1",
                )?
                .execute(params![seq, story, now])?;
                let done = Job {
                    state: JobState::Succeeded,
                    stage: Stage::Done,
                    progress: 1.0,
                    story: Some(story),
                    cached: true,
                    attempts: job.attempts - 1,
                    lease_owner: None,
                    lease_expires_ms: None,
                    error: None,
                    finished_at_ms: Some(now),
                    ..job
                };
                outbox.cache_hits(1);
                job_moved(conn, outbox, JobState::Queued, &done)?;
                outbox.events.push(Event::about(&done));
                continue;
            }
            if first_claim {
                outbox.cache_miss();
            }
        }
        if let Some(left) = room_left.get_mut(&job.storyteller) {
            *left = left.saturating_sub(1);
            if *left == 0 {
                passed_over = full(&room_left);
            }
        }
        job_moved(conn, outbox, JobState::Queued, &job)?;
        outbox.events.push(Event::about(&job));
        claimed.push(job);
    }
    Ok(claimed)
}

fn finish_job(
    conn: &Connection,
    outbox: &mut Outbox,
    now: i64,
    id: JobId,
    owner: &str,
    outcome: Outcome,
) -> Result<Job> {
    // No RETURNING: SQLite buffers RETURNING rows in a temporary table, a cost paid on every
    // job; one seek afterwards reads the row instead.
    let refund = i64::from(matches!(outcome, Outcome::Deferred { .. }));
    let (to, updated) = match outcome {
        Outcome::Succeeded {
            story,
            media,
            usage,
        } => {
            let media = media.map(|m| m.to_string());
            let updated = conn
                .prepare_cached(concat!(
                    "UPDATE jobs SET state = 'succeeded', stage = 'done', progress = 1, story = ?3, \
                     checkpoint = NULL, media = coalesce(?4, media), error_kind = NULL, \
                     error_message = NULL, lease_owner = NULL, \
                     lease_expires = NULL, updated_at = ?5, finished_at = ?5 ", lease_held!(), ""
                ))?
                .execute(params![id.to_string(), owner, story, media, now])?;
            if updated > 0 {
                book_usage(conn, now, id, &usage)?;
            }
            (JobState::Succeeded, updated)
        }
        // Back to the queue until `run_after_ms`; a deferral (a rate limit) refunds the attempt.
        Outcome::Retry { error, wait } | Outcome::Deferred { error, wait } => {
            let run_after_ms = now.saturating_add(duration_ms(wait));
            let updated = conn
                .prepare_cached(concat!(
                    "UPDATE jobs SET state = 'queued', stage = 'waiting', progress = 0, \
                     attempts = max(attempts - ?7, 0), run_after = ?3, error_kind = ?4, \
                     error_message = ?5, lease_owner = NULL, lease_expires = NULL, \
                     updated_at = ?6 ",
                    lease_held!(),
                    ""
                ))?
                .execute(params![
                    id.to_string(),
                    owner,
                    run_after_ms,
                    error.kind.as_str(),
                    error.message,
                    now,
                    refund
                ])?;
            (JobState::Queued, updated)
        }
        Outcome::Dead { error } => {
            let updated = conn
                .prepare_cached(concat!(
                    "UPDATE jobs SET state = 'dead', stage = 'done', error_kind = ?3, \
                     error_message = ?4, lease_owner = NULL, lease_expires = NULL, \
                     updated_at = ?5, finished_at = ?5 ",
                    lease_held!(),
                    ""
                ))?
                .execute(params![
                    id.to_string(),
                    owner,
                    error.kind.as_str(),
                    error.message,
                    now
                ])?;
            (JobState::Dead, updated)
        }
        Outcome::Released { error } => {
            let (kind, message) = match &error {
                Some(e) => (Some(e.kind.as_str()), Some(e.message.as_str())),
                None => (None, None),
            };
            let updated = conn
                .prepare_cached(concat!(
                    "UPDATE jobs SET state = 'queued', stage = 'waiting', progress = 0, \
                     attempts = max(attempts - 1, 0), error_kind = coalesce(?3, error_kind), \
                     error_message = coalesce(?4, error_message), lease_owner = NULL, \
                     lease_expires = NULL, updated_at = ?5 ",
                    lease_held!(),
                    ""
                ))?
                .execute(params![id.to_string(), owner, kind, message, now])?;
            (JobState::Queued, updated)
        }
    };
    if updated == 0 {
        return Err(transition_error(conn, id, to));
    }
    let job = load_job(conn, id)?.ok_or_else(|| EngineError::JobNotFound(id.to_string()))?;
    job_moved(conn, outbox, JobState::Running, &job)?;
    outbox.events.push(Event::about(&job));
    Ok(job)
}

/// Adds an attempt's `usage` to job `id`'s totals and to its storyteller's spending of the
/// day (local time). Whatever the job's state: money spent stays spent.
fn book_usage(conn: &Connection, now: i64, id: JobId, usage: &Usage) -> Result<()> {
    if usage.is_empty() {
        return Ok(());
    }
    let tokens = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    let cost = tokens(usage.cost_micro_usd);
    let booked = conn
        .prepare_cached(
            "UPDATE jobs SET input_tokens = input_tokens + ?2, \
             output_tokens = output_tokens + ?3, cost_micro_usd = cost_micro_usd + ?4, \
             cost_usd = (cost_micro_usd + ?4) / 1000000.0, \
             audio_input_tokens = audio_input_tokens + ?5 WHERE id = ?1",
        )?
        .execute(params![
            id.to_string(),
            tokens(usage.input_tokens),
            tokens(usage.output_tokens),
            cost,
            tokens(usage.audio_input_tokens)
        ])?;
    if booked == 0 {
        return Ok(());
    }
    conn.prepare_cached(
        "INSERT INTO spending (day, storyteller, attempts, input_tokens, output_tokens, \
         cost_micro_usd, audio_input_tokens) \
         SELECT date(?1 / 1000, 'unixepoch', 'localtime'), storyteller, 1, ?3, ?4, ?5, ?6 \
         FROM jobs WHERE id = ?2 \
         ON CONFLICT (day, storyteller) DO UPDATE SET attempts = attempts + 1, \
         input_tokens = input_tokens + excluded.input_tokens, \
         output_tokens = output_tokens + excluded.output_tokens, \
         cost_micro_usd = cost_micro_usd + excluded.cost_micro_usd, \
         audio_input_tokens = audio_input_tokens + excluded.audio_input_tokens",
    )?
    .execute(params![
        now,
        id.to_string(),
        tokens(usage.input_tokens),
        tokens(usage.output_tokens),
        cost,
        tokens(usage.audio_input_tokens)
    ])?;
    Ok(())
}

/// The storytellers paused now (those whose pause has a time still to come, or none).
pub(super) fn storyteller_pauses(conn: &Connection, now: i64) -> Result<Vec<StorytellerPauseView>> {
    let pauses = conn
        .prepare_cached(
            "SELECT p.storyteller, p.kind, p.reason, p.until_ms, \
             (SELECT count(*) FROM jobs \
              WHERE jobs.state = 'queued' AND jobs.storyteller = p.storyteller) \
             FROM storyteller_pauses AS p WHERE p.until_ms IS NULL OR p.until_ms > ?1 \
             ORDER BY p.storyteller",
        )?
        .query_map([now], |row| {
            Ok(StorytellerPauseView {
                storyteller: row.get(0)?,
                kind: PauseKind::parse(&row.get::<_, String>(1)?),
                reason: row.get(2)?,
                until: row.get::<_, Option<i64>>(3)?.map(iso8601),
                queued: saturate(row.get::<_, i64>(4)?.max(0) as u64),
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(pauses)
}

/// Ends the storyteller pauses whose time has come, saying so.
fn end_pauses_due(conn: &Connection, outbox: &mut Outbox, now: i64) -> Result<()> {
    let ended = conn
        .prepare_cached(
            "DELETE FROM storyteller_pauses WHERE until_ms IS NOT NULL AND until_ms <= ?1 \
             RETURNING storyteller",
        )?
        .query_map([now], |row| row.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    for storyteller in ended {
        outbox.counts_changed = true;
        outbox
            .events
            .push(Event::StorytellerResumed { storyteller });
    }
    Ok(())
}

fn reclaim_jobs(
    conn: &Connection,
    outbox: &mut Outbox,
    now: i64,
    dead_owners: &[String],
    max_attempts: u32,
) -> Result<Vec<JobId>> {
    let mut stale = Vec::new();
    {
        let mut expired = conn
            .prepare_cached("SELECT id FROM jobs WHERE state = 'running' AND lease_expires < ?1")?;
        let mut rows = expired.query([now])?;
        while let Some(row) = rows.next()? {
            stale.push(row.get::<_, String>(0)?);
        }
        let mut by_owner = conn.prepare_cached(
            "SELECT id FROM jobs WHERE state = 'running' AND lease_owner = ?1 \
             AND lease_expires >= ?2",
        )?;
        for owner in dead_owners {
            let mut rows = by_owner.query(params![owner, now])?;
            while let Some(row) = rows.next()? {
                stale.push(row.get::<_, String>(0)?);
            }
        }
    }
    let mut touched = Vec::with_capacity(stale.len());
    for id in stale {
        // Only an interruption after which the job had got no further than its earlier
        // interrupted attempts counts against the video (see the module doc); the others were
        // the machine's doing.
        let counted: Option<bool> = conn
            .prepare_cached(
                // How long it ran: from its claim to its last saved progress.
                "SELECT progress <= furthest_progress + 0.0001 \
                 AND (attempt_started_at IS NULL \
                      OR (updated_at - attempt_started_at) * 4 >= longest_interrupted_ms * 3) \
                 FROM jobs WHERE id = ?1 AND state = 'running'",
            )?
            .query_row([&id], |r| r.get(0))
            .optional()?;
        let Some(counted) = counted else {
            continue;
        };
        let crashed_out = if counted {
            conn.prepare_cached(concat!(
                "UPDATE jobs SET state = 'dead', stage = 'done', error_kind = 'crashed', \
                 interruptions = interruptions + 1, \
                 error_message = 'Storyteller stopped while working on this video ' || \
                 (interruptions + 1) || ' times without getting any further; it was set aside \
                 so it cannot stall the queue (retry it to try again)', \
                 lease_owner = NULL, lease_expires = NULL, updated_at = ?2, finished_at = ?2 \
                 WHERE id = ?1 AND state = 'running' AND interruptions + 1 >= ?3 RETURNING ",
                job_columns!(),
                ""
            ))?
            .query_row(params![id, now, max_attempts], job_from_row)
            .optional()?
        } else {
            None
        };
        let job = match crashed_out {
            Some(job) => Some(job),
            None => conn
                .prepare_cached(concat!(
                    "UPDATE jobs SET state = 'queued', stage = 'waiting', \
                     interruptions = interruptions + ?3, \
                     furthest_progress = max(furthest_progress, progress), progress = 0, \
                     longest_interrupted_ms = max(longest_interrupted_ms, \
                         coalesce(updated_at - attempt_started_at, 0)), \
                     run_after = 0, lease_owner = NULL, lease_expires = NULL, updated_at = ?2 \
                     WHERE id = ?1 AND state = 'running' RETURNING ",
                    job_columns!(),
                    ""
                ))?
                .query_row(params![id, now, i64::from(counted)], job_from_row)
                .optional()?,
        };
        if let Some(job) = job {
            tracing::warn!(job = %job.id, state = %job.state, attempts = job.attempts,
                "reclaimed a job from a worker that stopped");
            job_moved(conn, outbox, JobState::Running, &job)?;
            outbox.events.push(Event::about(&job));
            touched.push(job.id);
        }
    }
    Ok(touched)
}

/// The job an id, a unique id prefix or a unique id suffix names. Suffixes matter because a
/// UUID v7 starts with its timestamp: jobs added together share their first digits, and short
/// ids are shown from the random tail.
/// Those of `hashes` that no job refers to any more.
fn orphans(conn: &Connection, hashes: impl IntoIterator<Item = String>) -> Result<Vec<String>> {
    let mut in_use = conn.prepare_cached("SELECT 1 FROM jobs WHERE content_hash = ?1 LIMIT 1")?;
    let mut orphaned = Vec::new();
    for hash in hashes {
        if !in_use.exists([&hash])? {
            orphaned.push(hash);
        }
    }
    Ok(orphaned)
}

fn resolve_id(conn: &Connection, id_or_prefix: &str) -> Result<JobId> {
    let needle = id_or_prefix.trim().to_ascii_lowercase();
    if let Ok(id) = needle.parse::<JobId>() {
        let known = conn
            .prepare_cached("SELECT 1 FROM jobs WHERE id = ?1")?
            .exists([id.to_string()])?;
        return if known {
            Ok(id)
        } else {
            Err(EngineError::JobNotFound(id_or_prefix.to_owned()))
        };
    }
    if needle.is_empty() || !needle.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
        return Err(EngineError::JobNotFound(id_or_prefix.to_owned()));
    }
    // Ids are canonical lower-case UUIDs, so a range scan on the unique index finds a prefix.
    let mut upper = needle.clone();
    upper.push('\u{7f}');
    let mut found: Vec<String> = conn
        .prepare_cached("SELECT id FROM jobs WHERE id >= ?1 AND id < ?2 LIMIT 2")?
        .query_map(params![needle, upper], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    if found.is_empty() {
        // A suffix needs a scan; it only runs for a person typing an id.
        found = conn
            .prepare_cached("SELECT id FROM jobs WHERE substr(id, -length(?1)) = ?1 LIMIT 2")?
            .query_map([&needle], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
    }
    match found.as_slice() {
        [one] => one
            .parse()
            .map_err(|_| EngineError::CorruptRecord(format!("job id '{one}'"))),
        [] => Err(EngineError::JobNotFound(id_or_prefix.to_owned())),
        _ => Err(EngineError::AmbiguousJobId(id_or_prefix.to_owned())),
    }
}

impl JobStore for SqliteStore {
    fn enqueue(&self, jobs: Vec<NewJob>) -> StoreFuture<'_, (BatchId, Vec<Enqueued>)> {
        Box::pin(async move {
            if jobs.is_empty() {
                return Ok((BatchId::new(), Vec::new()));
            }
            self.write(move |conn, outbox, now| enqueue_batch(conn, outbox, now, jobs))
                .await
        })
    }

    fn find_existing(&self, keys: Vec<SourceKey>) -> StoreFuture<'_, Vec<Option<Job>>> {
        Box::pin(async move {
            self.read(move |conn| {
                let known = known_sources(conn, keys.iter().filter_map(|key| key.source.to_str()))?;
                keys.iter()
                    .map(|key| {
                        // A name that is not text is not in the batch lookup.
                        if key
                            .source
                            .to_str()
                            .is_none_or(|source| known.contains(source))
                        {
                            existing_job(conn, &key.source, key.size, key.mtime_ms, &key.spec)
                        } else {
                            Ok(None)
                        }
                    })
                    .collect()
            })
            .await
        })
    }

    fn known_hashes(&self, files: Vec<FileKey>) -> StoreFuture<'_, Vec<Option<String>>> {
        Box::pin(async move {
            self.read(move |conn| {
                let mut kept = conn.prepare_cached(
                    "SELECT content_hash FROM file_hashes \
                     WHERE source = ?1 AND size = ?2 AND mtime_ms = ?3",
                )?;
                let mut from_job = conn.prepare_cached(
                    "SELECT content_hash FROM jobs INDEXED BY jobs_source \
                     WHERE source = ?1 AND size = ?2 AND mtime_ms = ?3 LIMIT 1",
                )?;
                files
                    .iter()
                    .map(|file| {
                        let key = params![
                            SourceSql(&file.source),
                            i64::try_from(file.size).unwrap_or(i64::MAX),
                            file.mtime_ms
                        ];
                        match kept.query_row(key, |r| r.get(0)).optional()? {
                            Some(hash) => Ok(Some(hash)),
                            None => Ok(from_job.query_row(key, |r| r.get(0)).optional()?),
                        }
                    })
                    .collect()
            })
            .await
        })
    }

    fn remember_hashes(&self, hashes: Vec<(FileKey, String)>) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            if hashes.is_empty() {
                return Ok(());
            }
            self.write(move |conn, _, now| {
                let mut insert = conn.prepare_cached(
                    "INSERT OR REPLACE INTO file_hashes \
                     (source, size, mtime_ms, content_hash, hashed_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )?;
                for (file, hash) in &hashes {
                    insert.execute(params![
                        SourceSql(&file.source),
                        i64::try_from(file.size).unwrap_or(i64::MAX),
                        file.mtime_ms,
                        hash,
                        now
                    ])?;
                }
                Ok(())
            })
            .await
        })
    }

    fn forget_hashes(&self, sources: Vec<PathBuf>) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            if sources.is_empty() {
                return Ok(());
            }
            self.write(move |conn, _, _| {
                let mut delete =
                    conn.prepare_cached("DELETE FROM file_hashes WHERE source = ?1")?;
                for source in &sources {
                    delete.execute([SourceSql(source)])?;
                }
                Ok(())
            })
            .await
        })
    }

    fn claim_within(
        &self,
        owner: &str,
        room: ClaimRoom,
        lease: Duration,
    ) -> StoreFuture<'_, Vec<Job>> {
        let owner = owner.to_owned();
        let lease_ms = duration_ms(lease);
        Box::pin(async move {
            self.write(move |conn, outbox, now| {
                claim_jobs(conn, outbox, now, &owner, &room, lease_ms)
            })
            .await
        })
    }

    fn book_usage(&self, id: JobId, usage: Usage) -> StoreFuture<'_, Job> {
        Box::pin(async move {
            self.write(move |conn, outbox, now| {
                book_usage(conn, now, id, &usage)?;
                let job =
                    load_job(conn, id)?.ok_or_else(|| EngineError::JobNotFound(id.to_string()))?;
                log_change(conn, "job", id)?;
                outbox.events.push(Event::JobSpent {
                    job_id: id,
                    usage: (&job.usage).into(),
                });
                Ok(job)
            })
            .await
        })
    }

    fn spending(&self, from_day: String) -> StoreFuture<'_, Vec<DaySpending>> {
        Box::pin(async move {
            self.read(move |conn| {
                Ok(conn
                    .prepare_cached(
                        "SELECT day, storyteller, attempts, input_tokens, output_tokens, \
                         cost_micro_usd, audio_input_tokens FROM spending WHERE day >= ?1 \
                         ORDER BY day, storyteller",
                    )?
                    .query_map([from_day], |row| {
                        let n = |i: usize| row.get::<_, i64>(i).map(|n| n.max(0) as u64);
                        Ok(DaySpending {
                            day: row.get(0)?,
                            storyteller: row.get(1)?,
                            attempts: n(2)?,
                            usage: Usage {
                                input_tokens: n(3)?,
                                audio_input_tokens: n(6)?,
                                output_tokens: n(4)?,
                                cost_micro_usd: n(5)?,
                            },
                        })
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()?)
            })
            .await
        })
    }

    fn set_storyteller_paused(
        &self,
        storyteller: String,
        pause: Option<StorytellerPause>,
    ) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            self.write(move |conn, outbox, now| {
                match pause {
                    Some(pause) => {
                        conn.prepare_cached(
                            "INSERT INTO storyteller_pauses \
                             (storyteller, kind, reason, until_ms, paused_at) \
                             VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (storyteller) DO UPDATE \
                             SET kind = excluded.kind, reason = excluded.reason, \
                             until_ms = excluded.until_ms, paused_at = excluded.paused_at",
                        )?
                        .execute(params![
                            storyteller,
                            pause.kind.as_str(),
                            pause.reason,
                            pause.until_ms,
                            now
                        ])?;
                        let view = storyteller_pauses(conn, now)?
                            .into_iter()
                            .find(|p| p.storyteller == storyteller);
                        if let Some(view) = view {
                            outbox.events.push(Event::StorytellerPaused { pause: view });
                        }
                    }
                    None => {
                        let removed = conn
                            .prepare_cached(
                                "DELETE FROM storyteller_pauses WHERE storyteller = ?1",
                            )?
                            .execute([&storyteller])?;
                        if removed > 0 {
                            outbox
                                .events
                                .push(Event::StorytellerResumed { storyteller });
                        }
                    }
                }
                outbox.counts_changed = true;
                Ok(())
            })
            .await
        })
    }

    fn heartbeat(&self, owner: &str, lease: Duration) -> StoreFuture<'_, Vec<JobId>> {
        let owner = owner.to_owned();
        let lease_ms = duration_ms(lease);
        Box::pin(async move {
            self.write(move |conn, _, now| {
                let mut renew = conn.prepare_cached(
                    "UPDATE jobs SET lease_expires = ?2 \
                     WHERE lease_owner = ?1 AND state = 'running' RETURNING id",
                )?;
                let ids = renew
                    .query_map(params![owner, now + lease_ms], |r| r.get::<_, String>(0))?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                ids.into_iter()
                    .map(|id| {
                        id.parse()
                            .map_err(|_| EngineError::CorruptRecord(format!("job id '{id}'")))
                    })
                    .collect()
            })
            .await
        })
    }

    fn report(&self, id: JobId, owner: &str, stage: Stage, progress: f64) -> StoreFuture<'_, ()> {
        let owner = owner.to_owned();
        Box::pin(async move {
            self.write(move |conn, _, now| {
                let before: Option<String> = conn
                    .prepare_cached("SELECT stage FROM jobs WHERE id = ?1")?
                    .query_row([id.to_string()], |r| r.get(0))
                    .optional()?;
                let updated = conn
                    .prepare_cached(
                        "UPDATE jobs SET stage = ?3, progress = ?4, updated_at = ?5 \
                         WHERE id = ?1 AND lease_owner = ?2 AND state = 'running'",
                    )?
                    .execute(params![
                        id.to_string(),
                        owner,
                        stage.as_str(),
                        progress,
                        now
                    ])?;
                // Other processes show the stage; progress alone is not worth a log row.
                if updated > 0 && before.as_deref() != Some(stage.as_str()) {
                    log_change(conn, "job", id)?;
                }
                Ok(())
            })
            .await
        })
    }

    fn save_checkpoint(
        &self,
        id: JobId,
        owner: &str,
        checkpoint: serde_json::Value,
    ) -> StoreFuture<'_, ()> {
        let owner = owner.to_owned();
        Box::pin(async move {
            let checkpoint = checkpoint.to_string();
            self.write(move |conn, _, _| {
                conn.prepare_cached(
                    "UPDATE jobs SET checkpoint = ?3 \
                     WHERE id = ?1 AND lease_owner = ?2 AND state = 'running'",
                )?
                .execute(params![id.to_string(), owner, checkpoint])?;
                Ok(())
            })
            .await
        })
    }

    fn update_source(
        &self,
        id: JobId,
        owner: &str,
        size: u64,
        mtime_ms: i64,
        content_hash: String,
    ) -> StoreFuture<'_, ()> {
        let owner = owner.to_owned();
        Box::pin(async move {
            self.write(move |conn, _, now| {
                let job = load_job(conn, id)?.ok_or(EngineError::JobNotFound(id.to_string()))?;
                let cache_key = job.spec().cache_key(&content_hash);
                let updated = conn
                    .prepare_cached(
                        "UPDATE jobs SET size = ?3, mtime_ms = ?4, content_hash = ?5, \
                         cache_key = ?6, checkpoint = NULL, updated_at = ?7 \
                         WHERE id = ?1 AND lease_owner = ?2 AND state = 'running'",
                    )?
                    .execute(params![
                        id.to_string(),
                        owner,
                        i64::try_from(size).unwrap_or(i64::MAX),
                        mtime_ms,
                        content_hash,
                        cache_key,
                        now
                    ])?;
                if updated == 0 {
                    return Err(EngineError::LeaseLost(id));
                }
                Ok(())
            })
            .await
        })
    }

    fn finish(&self, id: JobId, owner: &str, outcome: Outcome) -> StoreFuture<'_, Job> {
        let owner = owner.to_owned();
        Box::pin(async move {
            self.write(move |conn, outbox, now| finish_job(conn, outbox, now, id, &owner, outcome))
                .await
        })
    }

    fn finish_and_claim(
        &self,
        id: JobId,
        owner: &str,
        outcome: Outcome,
        lease: Duration,
        room: ClaimRoom,
    ) -> StoreFuture<'_, (Job, Option<Job>)> {
        let owner = owner.to_owned();
        let lease_ms = duration_ms(lease);
        let room = ClaimRoom { max: 1, ..room };
        Box::pin(async move {
            self.write(move |conn, outbox, now| {
                let done = finish_job(conn, outbox, now, id, &owner, outcome)?;
                let next = claim_jobs(conn, outbox, now, &owner, &room, lease_ms)?;
                Ok((done, next.into_iter().next()))
            })
            .await
        })
    }

    fn register_worker(&self, owner: &str) -> StoreFuture<'_, WorkerRegistration> {
        let owner = owner.to_owned();
        let dir = self.inner.runners.clone();
        let facts = RunnerFacts {
            machine: liveness::machine_name(),
            pid: std::process::id(),
            started_at_ms: self.inner.clock.now_ms(),
        };
        let here = self.inner.live_here.clone();
        Box::pin(async move {
            let held = owner.clone();
            let lock =
                tokio::task::spawn_blocking(move || liveness::take(&dir, &held, &facts, &here))
                    .await
                    .map_err(|_| EngineError::StoreClosed)??;
            Ok(WorkerRegistration::new(owner, lock))
        })
    }

    fn workers(&self) -> StoreFuture<'_, Vec<LiveWorker>> {
        let dir = self.inner.runners.clone();
        Box::pin(async move {
            let alive = tokio::task::spawn_blocking(move || liveness::alive(&dir))
                .await
                .map_err(|_| EngineError::StoreClosed)?;
            let held = self.running_by_owner().await?;
            Ok(alive
                .into_iter()
                .map(|(owner, facts)| LiveWorker {
                    running: held
                        .iter()
                        .filter(|(holder, _)| holder.as_deref() == Some(owner.as_str()))
                        .map(|(_, id)| *id)
                        .collect(),
                    machine: facts.as_ref().map(|f| f.machine.clone()),
                    pid: facts.as_ref().map(|f| f.pid),
                    started_at_ms: facts.as_ref().map(|f| f.started_at_ms),
                    owner,
                })
                .collect())
        })
    }

    fn reclaim(&self, max_attempts: u32) -> StoreFuture<'_, Vec<JobId>> {
        let dir = self.inner.runners.clone();
        Box::pin(async move {
            let mut owners: Vec<String> = self
                .running_by_owner()
                .await?
                .into_iter()
                .filter_map(|(owner, _)| owner)
                // Registered here: alive, and its lock need not be tried.
                .filter(|owner| !self.inner.live_here.contains(owner))
                .collect();
            owners.sort();
            owners.dedup();
            let dead_owners = if owners.is_empty() {
                owners
            } else {
                tokio::task::spawn_blocking(move || {
                    owners.retain(|owner| liveness::is_gone(&dir, owner));
                    owners
                })
                .await
                .map_err(|_| EngineError::StoreClosed)?
            };
            self.write(move |conn, outbox, now| {
                reclaim_jobs(conn, outbox, now, &dead_owners, max_attempts)
            })
            .await
        })
    }

    fn stranded_jobs(&self) -> StoreFuture<'_, u32> {
        let dir = self.inner.runners.clone();
        Box::pin(async move {
            let held = self.running_by_owner().await?;
            let stranded = tokio::task::spawn_blocking(move || {
                held.iter()
                    .filter(|(owner, _)| match owner {
                        Some(owner) => liveness::has_stopped(&dir, owner),
                        None => true,
                    })
                    .count()
            })
            .await
            .map_err(|_| EngineError::StoreClosed)?;
            Ok(u32::try_from(stranded).unwrap_or(u32::MAX))
        })
    }

    fn cancel(&self, id: JobId) -> StoreFuture<'_, Job> {
        Box::pin(async move {
            self.write(move |conn, outbox, now| {
                let Some(from) = load_job(conn, id)?.map(|j| j.state) else {
                    return Err(EngineError::JobNotFound(id.to_string()));
                };
                from.check_transition(JobState::Cancelled)?;
                let job = conn
                    .prepare_cached(concat!(
                        "UPDATE jobs SET state = 'cancelled', stage = 'done', lease_owner = NULL, \
                         lease_expires = NULL, updated_at = ?2, finished_at = ?2 \
                         WHERE id = ?1 AND state = ?3 RETURNING ",
                        job_columns!(),
                        ""
                    ))?
                    .query_row(params![id.to_string(), now, from.as_str()], job_from_row)?;
                job_moved(conn, outbox, from, &job)?;
                outbox.events.push(Event::about(&job));
                Ok(job)
            })
            .await
        })
    }

    fn retry(&self, id: JobId) -> StoreFuture<'_, Job> {
        Box::pin(async move {
            self.write(move |conn, outbox, now| {
                let Some(from) = load_job(conn, id)?.map(|j| j.state) else {
                    return Err(EngineError::JobNotFound(id.to_string()));
                };
                // Only dead and cancelled jobs: a running one may also become queued, but not
                // by the person.
                if !matches!(from, JobState::Dead | JobState::Cancelled) {
                    return Err(crate::job::IllegalTransition {
                        from,
                        to: JobState::Queued,
                    }
                    .into());
                }
                let job = conn
                    .prepare_cached(concat!(
                        "UPDATE jobs SET state = 'queued', stage = 'waiting', progress = 0, \
                         attempts = 0, run_after = 0, story = NULL, finished_at = NULL, \
                         checkpoint = NULL, interruptions = 0, furthest_progress = 0, \
                         longest_interrupted_ms = 0, \
                         updated_at = ?2 WHERE id = ?1 AND state = ?3 RETURNING ",
                        job_columns!(),
                        ""
                    ))?
                    .query_row(params![id.to_string(), now, from.as_str()], job_from_row)?;
                job_moved(conn, outbox, from, &job)?;
                outbox.events.push(Event::about(&job));
                Ok(job)
            })
            .await
        })
    }

    fn set_priority(&self, id: JobId, priority: Priority) -> StoreFuture<'_, Job> {
        Box::pin(async move {
            self.write(move |conn, outbox, now| {
                let job = conn
                    .prepare_cached(concat!(
                        "UPDATE jobs SET priority = ?2, \
                         fair_key = CASE WHEN state = 'queued' AND priority != ?2 \
                             THEN (SELECT vtime FROM fair_clock WHERE priority = ?2) \
                             ELSE fair_key END, \
                         updated_at = ?3 WHERE id = ?1 RETURNING ",
                        job_columns!(),
                        ""
                    ))?
                    .query_row(params![id.to_string(), priority.rank(), now], job_from_row)
                    .optional()?
                    .ok_or_else(|| EngineError::JobNotFound(id.to_string()))?;
                log_change(conn, "job", job.id)?;
                outbox.events.push(Event::PriorityChanged {
                    job_id: job.id,
                    priority,
                });
                Ok(job)
            })
            .await
        })
    }

    fn retry_failed(&self) -> StoreFuture<'_, Vec<Job>> {
        Box::pin(async move {
            self.write(move |conn, outbox, now| {
                let jobs = conn
                    .prepare_cached(concat!(
                        "UPDATE jobs SET state = 'queued', stage = 'waiting', progress = 0, \
                         attempts = 0, run_after = 0, story = NULL, finished_at = NULL, \
                         checkpoint = NULL, interruptions = 0, furthest_progress = 0, \
                         longest_interrupted_ms = 0, \
                         updated_at = ?1 WHERE state = 'dead' RETURNING ",
                        job_columns!(),
                        ""
                    ))?
                    .query_map([now], job_from_row)?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                for job in &jobs {
                    job_moved(conn, outbox, JobState::Dead, job)?;
                }
                outbox.events.extend(jobs.iter().map(Event::about));
                Ok(jobs)
            })
            .await
        })
    }

    fn delete(&self, id: JobId) -> StoreFuture<'_, Removed> {
        Box::pin(async move {
            self.write(move |conn, outbox, _| {
                let gone: Option<(String, String)> = conn
                    .prepare_cached(
                        "DELETE FROM jobs WHERE id = ?1 AND state <> 'running' \
                         RETURNING content_hash, state",
                    )?
                    .query_row([id.to_string()], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()?;
                let Some((hash, state)) = gone else {
                    return Err(match load_job(conn, id)? {
                        Some(_) => EngineError::JobRunning(id),
                        None => EngineError::JobNotFound(id.to_string()),
                    });
                };
                outbox.removed(state.parse().map_err(EngineError::CorruptRecord)?);
                log_change(conn, "gone", id)?;
                outbox.events.push(Event::JobsRemoved { job_ids: vec![id] });
                Ok(Removed {
                    jobs: 1,
                    orphaned_hashes: orphans(conn, [hash])?,
                })
            })
            .await
        })
    }

    fn clear_finished(&self) -> StoreFuture<'_, Removed> {
        Box::pin(async move {
            self.write(move |conn, outbox, _| {
                let deleted = conn
                    .prepare_cached(
                        "DELETE FROM jobs \
                         WHERE state = 'succeeded' OR state = 'dead' OR state = 'cancelled' \
                         RETURNING id, content_hash, state",
                    )?
                    .query_map([], |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, String>(2)?,
                        ))
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                let mut hashes = std::collections::BTreeSet::new();
                let mut job_ids = Vec::with_capacity(deleted.len());
                for (id, hash, state) in &deleted {
                    let job_id: JobId = id
                        .parse()
                        .map_err(|_| EngineError::CorruptRecord(format!("job id '{id}'")))?;
                    outbox.removed(state.parse().map_err(EngineError::CorruptRecord)?);
                    log_change(conn, "gone", job_id)?;
                    job_ids.push(job_id);
                    hashes.insert(hash.clone());
                }
                if !job_ids.is_empty() {
                    outbox.events.push(Event::JobsRemoved { job_ids });
                }
                Ok(Removed {
                    jobs: deleted.len() as u64,
                    orphaned_hashes: orphans(conn, hashes)?,
                })
            })
            .await
        })
    }

    fn note_settings_changed(&self) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            self.write(move |conn, _, _| {
                conn.prepare_cached("INSERT INTO changes (kind, ref) VALUES ('settings', '')")?
                    .execute([])?;
                Ok(())
            })
            .await
        })
    }

    fn watched_folders(&self) -> StoreFuture<'_, Vec<WatchedFolder>> {
        Box::pin(async move {
            self.read(move |conn| {
                let mut select =
                    conn.prepare_cached("SELECT path, choices FROM watched_folders ORDER BY path")?;
                let rows = select
                    .query_map([], |row| {
                        Ok((source_from_sql(row.get_ref(0)?)?, row.get::<_, String>(1)?))
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                // A folder whose choices a newer build wrote in a form this one cannot read is
                // passed over here, never rewritten.
                Ok(rows
                    .into_iter()
                    .filter_map(|(path, choices)| {
                        match serde_json::from_str::<WatchedFolder>(&choices) {
                            Ok(folder) => Some(WatchedFolder { path, ..folder }),
                            Err(e) => {
                                tracing::warn!(folder = %path.display(), error = %e, "a watched folder's choices cannot be read");
                                None
                            }
                        }
                    })
                    .collect())
            })
            .await
        })
    }

    fn save_watched_folder(&self, folder: WatchedFolder) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            let choices = serde_json::to_string(&folder).map_err(|e| {
                EngineError::InvalidArgument(format!("a watched folder's choices: {e}"))
            })?;
            self.write(move |conn, _, now| {
                conn.prepare_cached(
                    "INSERT INTO watched_folders (path, choices, added_at) VALUES (?1, ?2, ?3) \
                     ON CONFLICT (path) DO UPDATE SET choices = excluded.choices",
                )?
                .execute(params![SourceSql(&folder.path), choices, now])?;
                conn.prepare_cached("INSERT INTO changes (kind, ref) VALUES ('folders', '')")?
                    .execute([])?;
                Ok(())
            })
            .await
        })
    }

    fn remove_watched_folder(&self, path: PathBuf) -> StoreFuture<'_, bool> {
        Box::pin(async move {
            self.write(move |conn, _, _| {
                conn.prepare_cached("DELETE FROM watched_sightings WHERE folder = ?1")?
                    .execute([SourceSql(&path)])?;
                let removed = conn
                    .prepare_cached("DELETE FROM watched_folders WHERE path = ?1")?
                    .execute([SourceSql(&path)])?;
                conn.prepare_cached("INSERT INTO changes (kind, ref) VALUES ('folders', '')")?
                    .execute([])?;
                Ok(removed > 0)
            })
            .await
        })
    }

    fn enqueue_watched(
        &self,
        folder: PathBuf,
        jobs: Vec<NewJob>,
    ) -> StoreFuture<'_, (BatchId, Vec<Option<Enqueued>>)> {
        Box::pin(async move {
            self.write(move |conn, outbox, now| {
                let mut fresh = Vec::new();
                let mut is_fresh = Vec::with_capacity(jobs.len());
                for mut job in jobs {
                    let size = i64::try_from(job.size).unwrap_or(i64::MAX);
                    let new =
                        conn.prepare_cached(
                            "INSERT INTO watched_sightings \
                             (folder, content_hash, source, seen_at, size, mtime_ms) \
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO NOTHING",
                        )?
                        .execute(params![
                            SourceSql(&folder),
                            job.content_hash,
                            SourceSql(&job.source),
                            now,
                            size,
                            job.mtime_ms
                        ])? > 0;
                    if !new {
                        // Seen before: the sighting follows the file to its new name, so the
                        // next start-up scan knows it without reading it.
                        conn.prepare_cached(
                            "UPDATE watched_sightings SET source = ?3, size = ?4, mtime_ms = ?5 \
                             WHERE folder = ?1 AND content_hash = ?2",
                        )?
                        .execute(params![
                            SourceSql(&folder),
                            job.content_hash,
                            SourceSql(&job.source),
                            size,
                            job.mtime_ms
                        ])?;
                    } else {
                        job.watched_folder = Some(folder.clone());
                        fresh.push(job);
                    }
                    is_fresh.push(new);
                }
                let (batch, enqueued) = if fresh.is_empty() {
                    (BatchId::new(), Vec::new())
                } else {
                    enqueue_batch(conn, outbox, now, fresh)?
                };
                let mut enqueued = enqueued.into_iter();
                let results = is_fresh
                    .into_iter()
                    .map(|new| if new { enqueued.next() } else { None })
                    .collect();
                Ok((batch, results))
            })
            .await
        })
    }

    fn sighted_files(&self, folder: PathBuf) -> StoreFuture<'_, Vec<FileKey>> {
        Box::pin(async move {
            self.read(move |conn| {
                let mut select = conn.prepare_cached(
                    "SELECT source, size, mtime_ms FROM watched_sightings WHERE folder = ?1",
                )?;
                let rows = select
                    .query_map([SourceSql(&folder)], |row| {
                        Ok(FileKey {
                            source: source_from_sql(row.get_ref(0)?)?,
                            size: u64::try_from(row.get::<_, i64>(1)?).unwrap_or(u64::MAX),
                            mtime_ms: row.get(2)?,
                        })
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                Ok(rows)
            })
            .await
        })
    }

    fn report_watch_status(&self, path: PathBuf, status: String) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            self.write(move |conn, _, now| {
                conn.prepare_cached(
                    "UPDATE watched_folders SET status = ?2, status_at = ?3 WHERE path = ?1",
                )?
                .execute(params![SourceSql(&path), status, now])?;
                Ok(())
            })
            .await
        })
    }

    fn watched_folder_reports(&self) -> StoreFuture<'_, Vec<WatchedFolderReport>> {
        Box::pin(async move {
            self.read(move |conn| {
                let mut select = conn.prepare_cached(
                    "SELECT f.path, f.status, f.status_at, \
                     (SELECT count(*) FROM watched_sightings AS s WHERE s.folder = f.path), \
                     (SELECT count(*) FROM jobs AS j INDEXED BY jobs_watched \
                        WHERE j.watched_folder = f.path AND j.state = 'queued'), \
                     (SELECT count(*) FROM jobs AS j INDEXED BY jobs_watched \
                        WHERE j.watched_folder = f.path AND j.state = 'running'), \
                     (SELECT count(*) FROM jobs AS j INDEXED BY jobs_watched \
                        WHERE j.watched_folder = f.path AND j.state = 'succeeded'), \
                     (SELECT count(*) FROM jobs AS j INDEXED BY jobs_watched \
                        WHERE j.watched_folder = f.path AND j.state IN ('dead', 'cancelled')) \
                     FROM watched_folders AS f ORDER BY f.path",
                )?;
                let count = |row: &Row<'_>, index: usize| -> rusqlite::Result<u32> {
                    Ok(u32::try_from(row.get::<_, i64>(index)?).unwrap_or(u32::MAX))
                };
                let rows = select
                    .query_map([], |row| {
                        Ok(WatchedFolderReport {
                            path: source_from_sql(row.get_ref(0)?)?,
                            status: row.get(1)?,
                            status_at_ms: row.get(2)?,
                            found: count(row, 3)?,
                            queued: count(row, 4)?,
                            running: count(row, 5)?,
                            succeeded: count(row, 6)?,
                            failed: count(row, 7)?,
                        })
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                Ok(rows)
            })
            .await
        })
    }

    fn move_source(&self, id: JobId, source: PathBuf) -> StoreFuture<'_, Job> {
        Box::pin(async move {
            self.write(move |conn, outbox, now| {
                let job = conn
                    .prepare_cached(concat!(
                        "UPDATE jobs SET source = ?2, updated_at = ?3 WHERE id = ?1 RETURNING ",
                        job_columns!(),
                        ""
                    ))?
                    .query_row(
                        params![id.to_string(), SourceSql(&source), now],
                        job_from_row,
                    )
                    .optional()?
                    .ok_or_else(|| EngineError::JobNotFound(id.to_string()))?;
                log_change(conn, "job", job.id)?;
                outbox.events.push(Event::JobMoved {
                    job_id: job.id,
                    source: crate::wire::display_path(&job.source),
                });
                Ok(job)
            })
            .await
        })
    }

    fn set_paused(&self, reason: Option<String>) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            self.write(move |conn, outbox, _| {
                let was = paused_reason(conn)?;
                match &reason {
                    Some(reason) => {
                        conn.prepare_cached(
                            "INSERT INTO meta (key, value) VALUES ('paused', ?1) \
                             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                        )?
                        .execute([reason])?;
                        outbox.events.push(Event::QueuePaused {
                            reason: reason.clone(),
                        });
                    }
                    None => {
                        conn.prepare_cached("DELETE FROM meta WHERE key = 'paused'")?
                            .execute([])?;
                        if was.is_some() {
                            outbox.events.push(Event::QueueResumed);
                        }
                        // Resuming the queue is the person saying "go on": with everything.
                        let resumed = conn
                            .prepare_cached("DELETE FROM storyteller_pauses RETURNING storyteller")?
                            .query_map([], |row| row.get::<_, String>(0))?
                            .collect::<rusqlite::Result<Vec<_>>>()?;
                        for storyteller in resumed {
                            outbox.counts_changed = true;
                            outbox
                                .events
                                .push(Event::StorytellerResumed { storyteller });
                        }
                    }
                }
                outbox.counts_changed |= was != reason;
                Ok(())
            })
            .await
        })
    }

    fn get(&self, id: JobId) -> StoreFuture<'_, Job> {
        Box::pin(async move {
            self.read(move |conn| {
                load_job(conn, id)?.ok_or_else(|| EngineError::JobNotFound(id.to_string()))
            })
            .await
        })
    }

    fn resolve(&self, id_or_prefix: &str) -> StoreFuture<'_, JobId> {
        let needle = id_or_prefix.to_owned();
        Box::pin(async move { self.read(move |conn| resolve_id(conn, &needle)).await })
    }

    fn list(&self, filter: JobFilter) -> StoreFuture<'_, Vec<Job>> {
        Box::pin(async move {
            self.read(move |conn| {
                let mut sql =
                    String::from(concat!("SELECT ", job_columns!(), " FROM jobs WHERE 1 = 1"));
                let mut args: Vec<Box<dyn rusqlite::ToSql>> = Vec::new();
                if let Some(state) = filter.state {
                    sql.push_str(" AND state = ?");
                    args.push(Box::new(state.as_str()));
                }
                if let Some(batch) = filter.batch {
                    sql.push_str(concat!(" AND ", in_batch!("?")));
                    for _ in 0..3 {
                        args.push(Box::new(batch.to_string()));
                    }
                }
                if let Some(storyteller) = filter.storyteller {
                    sql.push_str(" AND storyteller = ?");
                    args.push(Box::new(storyteller));
                }
                if let Some(ids) = &filter.ids {
                    sql.push_str(" AND id IN (SELECT value FROM json_each(?))");
                    let ids: Vec<String> = ids.iter().map(|id| id.to_string()).collect();
                    args.push(Box::new(serde_json::to_string(&ids).unwrap_or_default()));
                }
                let newest_first = filter.order == ListOrder::NewestFirst;
                if let Some(after) = filter.after {
                    // Keyset paging: one index seek wherever the page starts. A cursor whose job
                    // was deleted since leaves nothing to seek from: the listing ends there.
                    sql.push_str(if newest_first {
                        " AND seq < (SELECT seq FROM jobs WHERE id = ?)"
                    } else {
                        " AND seq > (SELECT seq FROM jobs WHERE id = ?)"
                    });
                    args.push(Box::new(after.to_string()));
                }
                sql.push_str(if newest_first {
                    " ORDER BY seq DESC"
                } else {
                    " ORDER BY seq"
                });
                if let Some(limit) = filter.limit {
                    sql.push_str(" LIMIT ?");
                    args.push(Box::new(i64::try_from(limit).unwrap_or(i64::MAX)));
                }
                let mut stmt = conn.prepare(&sql)?;
                let jobs = stmt
                    .query_map(rusqlite::params_from_iter(args.iter()), job_from_row)?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                Ok(jobs)
            })
            .await
        })
    }

    fn search(&self, query: StorySearch) -> StoreFuture<'_, Vec<Job>> {
        Box::pin(async move {
            if query.words.is_empty() || query.limit == 0 {
                return Ok(Vec::new());
            }
            // Every word a quoted prefix term (quotes doubled inside), all of them required;
            // a match in the file name weighs ten times one in the story.
            let terms: Vec<String> = query
                .words
                .iter()
                .map(|word| format!("\"{}\"*", word.replace('"', "\"\"")))
                .collect();
            let expression = terms.join(" ");
            let limit = i64::try_from(query.limit).unwrap_or(i64::MAX);
            self.read(move |conn| {
                let mut stmt = conn.prepare_cached(concat!(
                    "SELECT ",
                    job_columns!(),
                    " FROM (SELECT rowid AS hit, bm25(story_search, 10.0, 1.0) AS score \
                             FROM story_search WHERE story_search MATCH ?1 \
                             ORDER BY score, rowid DESC LIMIT ?2) \
                     JOIN jobs ON jobs.seq = hit ORDER BY score, seq DESC"
                ))?;
                let jobs = stmt
                    .query_map(params![expression, limit], job_from_row)?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                Ok(jobs)
            })
            .await
        })
    }

    fn stats(&self) -> StoreFuture<'_, QueueStats> {
        Box::pin(async move { self.read(read_stats).await })
    }

    fn next_ready_in(&self) -> StoreFuture<'_, Option<Duration>> {
        let now = self.inner.clock.now_ms();
        Box::pin(async move {
            self.read(move |conn| {
                let retry = conn
                    .prepare_cached(
                        "SELECT min(run_after) FROM jobs INDEXED BY jobs_waiting \
                         WHERE state = 'queued' AND run_after > 0 AND run_after > ?1",
                    )?
                    .query_row([now], |r| r.get::<_, Option<i64>>(0))?;
                let pause_ends = conn
                    .prepare_cached(
                        "SELECT min(until_ms) FROM storyteller_pauses WHERE until_ms IS NOT NULL",
                    )?
                    .query_row([], |r| r.get::<_, Option<i64>>(0))?;
                let at = match (retry, pause_ends) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                Ok(at.map(|at| Duration::from_millis(u64::try_from(at - now).unwrap_or(0))))
            })
            .await
        })
    }

    fn place(&self) -> String {
        self.inner.path.display().to_string()
    }

    fn follow_others(&self, sink: ForeignSink) -> StoreFuture<'_, Follower> {
        Box::pin(feed::follow(self.clone(), sink))
    }
}

#[cfg(test)]
mod tests {
    /// Statements read what they select after the job's columns by position.
    #[test]
    fn job_columns_count_what_they_name() {
        assert_eq!(job_columns!().split(',').count(), super::JOB_COLUMNS);
    }
}
