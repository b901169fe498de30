//! How one process hears of the changes other processes commit to the same SQLite database
//! (a `storyteller` command beside the desktop app, two runners on one home).
//!
//! SQLite has no notifications between processes, so the database keeps a change log: a row in
//! `changes` for every batch added, every change of a job's state or stage, every job deleted
//! (written by the store's writer), every save of the settings, and every pause or resume (by a
//! trigger); see `schema`. Every
//! build that may write the database (schema 2 on) logs its changes.
//!
//! A follower keeps a cursor into the log. It wakes on a notice that the database's WAL file was
//! written (inotify and its kin, through `notify`), reads the rows past its cursor that this
//! process did not write itself, loads the jobs they name and publishes what became of them on
//! the event bus, exactly as if the change had been made here. Notices are never lost: a notice
//! that arrives while a read is under way leaves a permit behind, so another read follows. Because
//! a WAL write can be seen a moment before its commit is, every notice is followed by a second
//! read shortly after (60 ms); and a cheap check every 2 s catches any
//! file system that sends no notices at all (some network mounts).
//!
//! Which rows are this process's own: the writer notes the log's highest sequence number before
//! and after each group and records the range under the [`OwnChanges`] lock, held across the
//! commit; the follower reads under the same lock, so a committed row is always either known to
//! be ours or not ours. The log is trimmed to its last [`KEEP_CHANGES`] rows; a follower that
//! falls further behind than that publishes a resync instead of guessing.

use super::sqlite::SqliteStore;
use crate::error::Result;
use crate::event::Event;
use crate::job::{BatchId, Job, JobId};
use crate::wire::{JobView, QueueStats};
use rusqlite::{params, Connection};
use std::collections::{BTreeSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Rows of the change log kept; older ones are trimmed.
pub const KEEP_CHANGES: i64 = 100_000;

/// Delay between a notice and the read it causes, so a burst of WAL writes is read once.
const SETTLE: Duration = Duration::from_millis(3);

/// The second read after a notice, for a commit that was not yet visible at the first.
const SETTLE_AGAIN: Duration = Duration::from_millis(60);

/// How often the log is looked at when no notice has come.
const SAFETY_CHECK: Duration = Duration::from_secs(2);

/// Most change-log rows read in one go.
const READ_CHUNK: i64 = 20_000;

/// The ranges of the change log this process wrote, and the lock that orders them with reads.
#[derive(Debug, Default)]
pub struct OwnChanges {
    // std Mutex: held for a commit or one read of the log on a blocking thread, never across an
    // await.
    log: Mutex<OwnLog>,
}

impl OwnChanges {
    /// Takes the lock (a poisoned lock is still usable: the log is only ranges).
    pub fn lock(&self) -> MutexGuard<'_, OwnLog> {
        self.log
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Half-open ranges `(after, through]` of change-log rows this process wrote, oldest first.
#[derive(Debug, Default)]
pub struct OwnLog {
    ranges: VecDeque<(i64, i64)>,
}

impl OwnLog {
    /// Notes that rows `(after, through]` are ours.
    pub fn record(&mut self, after: i64, through: i64) {
        if through <= after {
            return;
        }
        match self.ranges.back_mut() {
            Some(last) if last.1 == after => last.1 = through,
            _ => self.ranges.push_back((after, through)),
        }
        // Nobody may follow: keep the log of ranges bounded all the same.
        while self.ranges.len() > 4096 {
            self.ranges.pop_front();
        }
    }

    /// The parts of `(after, through]` that are not ours, and forgets ranges up to `through`.
    fn foreign_parts(&mut self, after: i64, through: i64) -> Vec<(i64, i64)> {
        let mut parts = Vec::new();
        let mut from = after;
        for &(own_after, own_through) in &self.ranges {
            if own_through <= from {
                continue;
            }
            if own_after >= through {
                break;
            }
            if own_after > from {
                parts.push((from, own_after));
            }
            from = from.max(own_through);
        }
        if from < through {
            parts.push((from, through));
        }
        while self.ranges.front().is_some_and(|r| r.1 <= through) {
            self.ranges.pop_front();
        }
        parts
    }
}

/// What other processes changed since the follower last looked, as the store now has it.
#[derive(Clone, Debug, Default)]
pub struct ForeignChanges {
    /// Batches added, with their jobs.
    pub added: Vec<(BatchId, Vec<Job>)>,
    /// Jobs whose state or stage changed, as they are now.
    pub changed: Vec<Job>,
    /// Jobs deleted.
    pub removed: Vec<JobId>,
    /// The queue was paused or resumed: whether it is paused now, and why.
    pub pause: Option<Option<String>>,
    /// A storyteller was paused or went on (the stats say which are paused now).
    pub storytellers_changed: bool,
    /// The settings were changed (the follower's sink reads them again).
    pub settings_changed: bool,
    /// Watched folders were added, removed or changed (the follower's sink reads them again).
    pub watched_folders_changed: bool,
    /// Counts after the changes.
    pub stats: Option<QueueStats>,
    /// The follower fell behind the trimmed log: re-read everything.
    pub resync: bool,
}

impl ForeignChanges {
    pub(crate) fn is_empty(&self) -> bool {
        self.added.is_empty()
            && self.changed.is_empty()
            && self.removed.is_empty()
            && self.pause.is_none()
            && !self.storytellers_changed
            && !self.settings_changed
            && !self.watched_folders_changed
            && !self.resync
    }

    /// The events these changes mean to this process's subscribers.
    pub fn events(&self) -> Vec<Event> {
        let mut events = Vec::new();
        if self.resync {
            events.push(Event::Resync { missed: 0 });
        }
        for (batch_id, jobs) in &self.added {
            events.push(Event::JobsAdded {
                batch_id: *batch_id,
                jobs: jobs.iter().map(JobView::from).collect::<Vec<_>>().into(),
            });
        }
        events.extend(self.changed.iter().map(Event::about));
        if !self.removed.is_empty() {
            events.push(Event::JobsRemoved {
                job_ids: self.removed.clone(),
            });
        }
        match &self.pause {
            Some(Some(reason)) => events.push(Event::QueuePaused {
                reason: reason.clone(),
            }),
            Some(None) => events.push(Event::QueueResumed),
            None => {}
        }
        if let Some(stats) = &self.stats {
            events.push(Event::QueueStats {
                stats: stats.clone(),
            });
        }
        events
    }
}

/// Called with each set of foreign changes, after their events are published.
pub type ForeignSink = Arc<dyn Fn(&ForeignChanges) + Send + Sync>;

/// A running follower; dropping it stops it.
#[derive(Debug)]
pub struct Follower {
    stop: CancellationToken,
    // Whatever the backend's notices need kept alive (a file watcher, a connection); in a Mutex
    // so the follower is Sync whatever it holds (it is never locked).
    _keep: Mutex<Option<Box<dyn std::any::Any + Send>>>,
}

impl Follower {
    /// A follower that `stop` ends, keeping `keep` alive until then.
    pub fn new(stop: CancellationToken, keep: Option<Box<dyn std::any::Any + Send>>) -> Self {
        Self {
            stop,
            _keep: Mutex::new(keep),
        }
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// The change log's highest sequence number.
pub fn change_mark(conn: &Connection) -> Result<i64> {
    Ok(conn
        .prepare_cached("SELECT coalesce(max(seq), 0) FROM changes")?
        .query_row([], |r| r.get(0))?)
}

/// Trims the change log to its last [`KEEP_CHANGES`] rows.
pub fn trim_changes(conn: &Connection) -> Result<()> {
    conn.prepare_cached("DELETE FROM changes WHERE seq <= (SELECT max(seq) FROM changes) - ?1")?
        .execute([KEEP_CHANGES])?;
    Ok(())
}

/// Starts following `store`'s database for other processes' changes.
pub(super) async fn follow(store: SqliteStore, sink: ForeignSink) -> Result<Follower> {
    let cursor = store.read(change_mark).await?;
    let notice = Arc::new(Notify::new());
    let watcher = watch_wal(&store, notice.clone());
    if watcher.is_none() {
        tracing::warn!(
            "changes from other processes will be noticed within {SAFETY_CHECK:?} only \
             (the database folder cannot be watched)"
        );
    }
    let stop = CancellationToken::new();
    tokio::spawn(run(store, sink, notice, cursor, stop.clone()));
    Ok(Follower::new(
        stop,
        watcher.map(|w| Box::new(w) as Box<dyn std::any::Any + Send>),
    ))
}

/// Wakes `notice` whenever the database's WAL file (or the file itself) is written.
fn watch_wal(store: &SqliteStore, notice: Arc<Notify>) -> Option<notify::RecommendedWatcher> {
    use notify::Watcher as _;
    let database = store.path().to_path_buf();
    let folder = database.parent()?.to_path_buf();
    let name = database.file_name()?.to_string_lossy().into_owned();
    let wal = format!("{name}-wal");
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        if matches!(event.kind, notify::EventKind::Access(_)) {
            return;
        }
        let ours = event.paths.iter().any(|path| {
            path.file_name()
                .is_some_and(|n| n.to_string_lossy() == wal || n.to_string_lossy() == name)
        });
        if ours {
            notice.notify_one();
        }
    })
    .ok()?;
    watcher
        .watch(&folder, notify::RecursiveMode::NonRecursive)
        .ok()?;
    Some(watcher)
}

async fn run(
    store: SqliteStore,
    sink: ForeignSink,
    notice: Arc<Notify>,
    mut cursor: i64,
    stop: CancellationToken,
) {
    // A second read is owed this long after a notice.
    let mut again: Option<tokio::time::Instant> = None;
    loop {
        let woke_by_notice = tokio::select! {
            _ = stop.cancelled() => return,
            _ = notice.notified() => true,
            _ = sleep_until_or_never(again) => false,
            _ = tokio::time::sleep(SAFETY_CHECK) => false,
        };
        if woke_by_notice {
            tokio::time::sleep(SETTLE).await;
            again = Some(tokio::time::Instant::now() + SETTLE_AGAIN);
        } else if again.is_some_and(|at| at <= tokio::time::Instant::now()) {
            again = None;
        }
        let own = store.own_changes();
        let after = cursor;
        let read = store
            .read(move |conn| read_foreign(conn, &own, after))
            .await;
        match read {
            Ok((through, changes)) => {
                cursor = through;
                if changes.is_empty() {
                    continue;
                }
                for event in changes.events() {
                    store.bus().publish(event);
                }
                sink(&changes);
            }
            Err(e) => tracing::warn!(error = %e, "reading other processes' changes failed"),
        }
    }
}

async fn sleep_until_or_never(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Reads the change log past `after`: the new cursor, and what the foreign rows name, loaded.
fn read_foreign(conn: &Connection, own: &OwnChanges, after: i64) -> Result<(i64, ForeignChanges)> {
    let mut changes = ForeignChanges::default();
    let mut batches: Vec<String> = Vec::new();
    let mut jobs: BTreeSet<String> = BTreeSet::new();
    let mut gone: BTreeSet<String> = BTreeSet::new();
    let mut queue = false;
    let mut storytellers = false;
    let mut settings = false;
    let mut folders = false;
    let through;
    {
        let mut own = own.lock();
        let (oldest, newest): (i64, i64) = conn
            .prepare_cached("SELECT coalesce(min(seq), 0), coalesce(max(seq), 0) FROM changes")?
            .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        if newest <= after {
            return Ok((after.max(newest), changes));
        }
        // Rows we never saw were trimmed away: we cannot tell what they were.
        if oldest > after + 1 && after > 0 {
            changes.resync = true;
        }
        through = newest.min(after + READ_CHUNK);
        let mut rows = conn.prepare_cached(
            "SELECT kind, ref FROM changes WHERE seq > ?1 AND seq <= ?2 ORDER BY seq",
        )?;
        for (from, to) in own.foreign_parts(after, through) {
            let mut found = rows.query(params![from, to])?;
            while let Some(row) = found.next()? {
                let kind: String = row.get(0)?;
                let reference: String = row.get(1)?;
                match kind.as_str() {
                    "batch" => batches.push(reference),
                    "job" => {
                        jobs.insert(reference);
                    }
                    "gone" => {
                        jobs.remove(&reference);
                        gone.insert(reference);
                    }
                    "queue" => queue = true,
                    "storytellers" => storytellers = true,
                    "settings" => settings = true,
                    "folders" => folders = true,
                    _ => {}
                }
            }
        }
    }
    for batch in batches {
        let Ok(batch_id) = batch.parse() else {
            continue;
        };
        let added = super::sqlite::jobs_of_batch(conn, &batch)?;
        for job in &added {
            jobs.remove(&job.id.to_string());
        }
        if !added.is_empty() {
            changes.added.push((BatchId(batch_id), added));
        }
    }
    for id in jobs {
        let Ok(job_id) = id.parse::<JobId>() else {
            continue;
        };
        match super::sqlite::load_job(conn, job_id)? {
            Some(job) => changes.changed.push(job),
            None => {
                gone.insert(id);
            }
        }
    }
    changes.removed = gone.iter().filter_map(|id| id.parse().ok()).collect();
    let stats = super::sqlite::read_stats(conn)?;
    if queue {
        changes.pause = Some(stats.paused.clone());
    }
    changes.storytellers_changed = storytellers;
    changes.settings_changed = settings;
    changes.watched_folders_changed = folders;
    if !changes.is_empty() {
        changes.stats = Some(stats);
    }
    Ok((through, changes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_ranges_are_cut_out_of_what_is_read() {
        let mut log = OwnLog::default();
        log.record(2, 4);
        log.record(4, 6);
        log.record(9, 10);
        assert_eq!(log.foreign_parts(0, 12), vec![(0, 2), (6, 9), (10, 12)]);
        assert!(log.ranges.is_empty(), "ranges read past are forgotten");
        log.record(12, 15);
        assert_eq!(log.foreign_parts(12, 15), Vec::<(i64, i64)>::new());
        log.record(20, 25);
        assert_eq!(log.foreign_parts(15, 22), vec![(15, 20)]);
        assert_eq!(log.foreign_parts(22, 30), vec![(25, 30)]);
    }
}
