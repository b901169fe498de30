//! The store's one writing connection, with group commit.
//!
//! Every mutation is a closure queued here. A committer on tokio's blocking pool takes whatever
//! has queued up while the last commit ran, applies the ops one after another in one transaction
//! and commits them together: many claims and completions share one WAL commit, which is how the
//! store keeps up with thousands of jobs a second without ever blocking a tokio worker. The
//! committer runs while there is work and ends when the queue is empty; the next op starts it
//! again. Being a blocking-pool task (not a thread of its own) also tells tokio's paused test
//! clock that work is under way, so time does not leap ahead while a write is in flight.
//!
//! Ops refuse (illegal transition, lease lost) before they write anything, so a refusal leaves
//! the group intact. Savepoints per op would give the same isolation but copy every page an op
//! touches into a sub-journal; instead the thread checks the rule (a refusing op changed no rows)
//! and, if SQLite itself fails or an op breaks the rule, rolls the whole group back and fails
//! every op in it. Replies and events are released only after the commit, so nobody hears of a
//! change that could still be lost.
//!
//! Each group also notes which rows of the change log it wrote (see `feed`): the log's highest
//! sequence number before and after its ops, recorded under the same lock the feed reads under,
//! so this process never mistakes its own changes for another's, nor another's for its own.

use super::feed::OwnChanges;
use crate::error::{EngineError, Result};
use crate::event::{Event, EventBus};
use crate::job::JobState;
use rusqlite::Connection;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

/// What the writer asks of the store around each group.
#[derive(Clone)]
pub struct WriterHooks {
    /// Applies a group's summed count deltas (once per group, not once per job).
    pub apply_counts: fn(&Connection, &[i64; COUNTERS]) -> Result<()>,
    /// Runs inside each transaction that changed job counts; the event it makes is published
    /// after the commit.
    pub counts_event: fn(&Connection) -> Result<Event>,
    /// The change log's highest sequence number (0 when there is no log).
    pub change_mark: fn(&Connection) -> Result<i64>,
    /// Where the ranges of the change log this process wrote are kept.
    pub own_changes: Arc<OwnChanges>,
    /// Upkeep run in a group every [`HOUSEKEEPING_EVERY`] groups (trimming the change log).
    pub housekeeping: fn(&Connection) -> Result<()>,
}

/// Groups between two runs of [`WriterHooks::housekeeping`].
const HOUSEKEEPING_EVERY: u64 = 1024;

/// What an op produced besides its result: events to publish after commit, and how it moved
/// the counts of jobs per state.
#[derive(Default)]
pub struct Outbox {
    /// Events, published in order once the transaction commits.
    pub events: Vec<Event>,
    /// Whether the queue's figures changed (a stats event follows the commit).
    pub counts_changed: bool,
    /// How many jobs each state gained (or lost), in [`JobState::ALL`] order, then the result
    /// cache's hits and misses; applied once per group, see [`WriterHooks::apply_counts`].
    pub count_deltas: [i64; COUNTERS],
}

/// The figures an op may move: five states, cache hits, cache misses.
pub const COUNTERS: usize = 7;
/// Where cache hits are in [`Outbox::count_deltas`].
pub const CACHE_HITS: usize = 5;
/// Where cache misses are in [`Outbox::count_deltas`].
pub const CACHE_MISSES: usize = 6;

impl Outbox {
    /// Notes a job moving from state `from` to state `to`.
    pub fn moved(&mut self, from: JobState, to: JobState) {
        if from != to {
            self.count_deltas[state_index(from)] -= 1;
            self.count_deltas[state_index(to)] += 1;
            self.counts_changed = true;
        }
    }

    /// Notes `n` jobs entering the store in `state`.
    pub fn added(&mut self, state: JobState, n: i64) {
        self.count_deltas[state_index(state)] += n;
        self.counts_changed |= n != 0;
    }

    /// Notes `n` more result-cache hits.
    pub fn cache_hits(&mut self, n: i64) {
        self.count_deltas[CACHE_HITS] += n;
        self.counts_changed |= n != 0;
    }

    /// Notes one more result-cache miss.
    pub fn cache_miss(&mut self) {
        self.count_deltas[CACHE_MISSES] += 1;
        self.counts_changed = true;
    }

    /// Notes a job in `state` leaving the store.
    pub fn removed(&mut self, state: JobState) {
        self.count_deltas[state_index(state)] -= 1;
        self.counts_changed = true;
    }
}

fn state_index(state: JobState) -> usize {
    JobState::ALL
        .iter()
        .position(|s| *s == state)
        .unwrap_or_default()
}

/// A write op as the thread sees it, whatever its result type.
trait PendingWrite: Send {
    /// Applies the op inside the group's transaction.
    fn apply(&mut self, conn: &Connection) -> Applied;
    /// After a commit: publishes the op's events.
    fn publish(&mut self, bus: &EventBus);
    /// Sends the op's result (or the commit's failure) to whoever asked.
    fn settle(self: Box<Self>, committed: std::result::Result<(), String>);
}

struct WriteOp<T, F> {
    work: Option<F>,
    outcome: Option<(Result<T>, Outbox)>,
    reply: oneshot::Sender<Result<T>>,
}

impl<T, F> PendingWrite for WriteOp<T, F>
where
    T: Send + 'static,
    F: FnOnce(&Connection, &mut Outbox) -> Result<T> + Send + 'static,
{
    fn apply(&mut self, conn: &Connection) -> Applied {
        let Some(work) = self.work.take() else {
            return Applied::Clean {
                counts_changed: false,
                count_deltas: [0; COUNTERS],
            };
        };
        let mut outbox = Outbox::default();
        let rows_before = conn.total_changes();
        let result = work(conn, &mut outbox);
        let applied = match &result {
            Ok(_) => Applied::Clean {
                counts_changed: outbox.counts_changed,
                count_deltas: outbox.count_deltas,
            },
            // An op refusing (illegal transition, lease lost …) must refuse before it writes.
            Err(error) if conn.total_changes() == rows_before && !is_sqlite(error) => {
                outbox = Outbox::default();
                Applied::Clean {
                    counts_changed: false,
                    count_deltas: [0; COUNTERS],
                }
            }
            Err(error) => Applied::Poisoned(error.to_string()),
        };
        self.outcome = Some((result, outbox));
        applied
    }

    fn publish(&mut self, bus: &EventBus) {
        if let Some((Ok(_), outbox)) = &mut self.outcome {
            for event in outbox.events.drain(..) {
                bus.publish(event);
            }
        }
    }

    fn settle(self: Box<Self>, committed: std::result::Result<(), String>) {
        let this = *self;
        let reply = match (committed, this.outcome) {
            (Ok(()), Some((result, _))) => result,
            (Err(message), _) => Err(EngineError::CommitFailed(message)),
            (Ok(()), None) => Err(EngineError::StoreClosed),
        };
        // The asker may have given up (its future dropped); nothing to do then.
        let _ = this.reply.send(reply);
    }
}

/// What applying one op did to the group's transaction.
enum Applied {
    /// Succeeded, or refused without writing: the group can commit.
    Clean {
        /// Whether job counts changed.
        counts_changed: bool,
        /// How the op moved the counts.
        count_deltas: [i64; COUNTERS],
    },
    /// Failed in SQLite or after writing: the whole group must roll back.
    Poisoned(String),
}

fn is_sqlite(error: &EngineError) -> bool {
    matches!(
        error,
        EngineError::Storage(_) | EngineError::CommitFailed(_)
    )
}

/// The sending side: cheap to clone, usable from any task.
#[derive(Clone)]
pub struct Writer {
    shared: Arc<Shared>,
}

struct Shared {
    // std Mutexes: each is held for a queue push or pop, or (the connection) by the one
    // committer for a group's transaction on the blocking pool; never across an await.
    queue: Mutex<VecDeque<Box<dyn PendingWrite>>>,
    /// Whether a committer is running (or about to): at most one at a time.
    committing: AtomicBool,
    connection: Mutex<Committer>,
    bus: EventBus,
    hooks: WriterHooks,
}

struct Committer {
    conn: Connection,
    groups: u64,
}

impl Drop for Committer {
    /// A clean close leaves the database file whole: everything in the write-ahead log is
    /// copied into it and the log emptied, so a backup or a sync of the `.db` file alone holds
    /// every job. The wait is short: another process still reading keeps its part of the log,
    /// which SQLite copies in later; nothing is lost either way.
    fn drop(&mut self) {
        let _ = self.conn.busy_timeout(std::time::Duration::from_secs(1));
        if let Err(error) = self
            .conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| {
                row.get::<_, i64>(0)
            })
        {
            tracing::warn!(%error, "could not fold the write-ahead log into the database on close");
        }
    }
}

/// Ops applied per transaction at most, so one commit never grows without bound.
const MAX_GROUP: usize = 512;

impl Writer {
    /// A writer on `conn`, publishing on `bus`.
    pub fn spawn(conn: Connection, bus: EventBus, hooks: WriterHooks) -> Result<Self> {
        Ok(Self {
            shared: Arc::new(Shared {
                queue: Mutex::new(VecDeque::new()),
                committing: AtomicBool::new(false),
                connection: Mutex::new(Committer { conn, groups: 0 }),
                bus,
                hooks,
            }),
        })
    }

    /// Runs `work` in the next group transaction and returns its result once committed.
    pub async fn run<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &mut Outbox) -> Result<T> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let op = WriteOp {
            work: Some(work),
            outcome: None,
            reply,
        };
        self.shared
            .queue
            .lock()
            .map_err(|_| EngineError::StoreClosed)?
            .push_back(Box::new(op));
        if !self.shared.committing.swap(true, Ordering::AcqRel) {
            let shared = self.shared.clone();
            tokio::task::spawn_blocking(move || commit_while_queued(&shared));
        }
        answer.await.map_err(|_| EngineError::StoreClosed)?
    }
}

/// Commits groups until the queue is empty. An op queued just as the queue was found empty
/// either sees `committing` cleared (and starts a committer) or is found by the re-check here.
fn commit_while_queued(shared: &Shared) {
    let Ok(mut committer) = shared.connection.lock() else {
        // A committer panicked mid-group: fail what waits rather than leave it hanging.
        if let Ok(mut queue) = shared.queue.lock() {
            for op in queue.drain(..) {
                op.settle(Err("the database connection was lost".into()));
            }
        }
        shared.committing.store(false, Ordering::Release);
        return;
    };
    loop {
        let group: Vec<Box<dyn PendingWrite>> = match shared.queue.lock() {
            Ok(mut queue) => {
                let n = queue.len().min(MAX_GROUP);
                queue.drain(..n).collect()
            }
            Err(_) => Vec::new(),
        };
        if group.is_empty() {
            shared.committing.store(false, Ordering::Release);
            let more = shared.queue.lock().map(|q| !q.is_empty()).unwrap_or(false);
            if more && !shared.committing.swap(true, Ordering::AcqRel) {
                continue;
            }
            return;
        }
        committer.groups += 1;
        let upkeep = committer.groups.is_multiple_of(HOUSEKEEPING_EVERY);
        commit_group(
            &mut committer.conn,
            &shared.bus,
            &shared.hooks,
            group,
            upkeep,
        );
    }
}

/// The immediate transaction a group runs in, begun and committed by cached statements:
/// rusqlite's own transaction parses `BEGIN` and `COMMIT` afresh every time, a cost paid per
/// group, so per claim and per finish under load. Rolls back when dropped uncommitted.
struct GroupTransaction<'c> {
    conn: &'c Connection,
    open: bool,
}

impl<'c> GroupTransaction<'c> {
    fn begin(conn: &'c Connection) -> rusqlite::Result<Self> {
        conn.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
        Ok(Self { conn, open: true })
    }

    fn commit(mut self) -> rusqlite::Result<()> {
        self.conn.prepare_cached("COMMIT")?.execute([])?;
        self.open = false;
        Ok(())
    }
}

impl std::ops::Deref for GroupTransaction<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        self.conn
    }
}

impl Drop for GroupTransaction<'_> {
    fn drop(&mut self) {
        // A failed COMMIT can leave the transaction open (SQLITE_BUSY); it must not linger
        // into the next group. Nothing to do if SQLite has rolled back by itself already.
        if self.open && !self.conn.is_autocommit() {
            if let Err(error) = self.conn.execute_batch("ROLLBACK") {
                tracing::error!(%error, "rolling back a failed group");
            }
        }
    }
}

fn commit_group(
    conn: &mut Connection,
    bus: &EventBus,
    hooks: &WriterHooks,
    mut group: Vec<Box<dyn PendingWrite>>,
    upkeep: bool,
) {
    let committed = (|| -> std::result::Result<Option<Event>, String> {
        let tx = GroupTransaction::begin(conn).map_err(|e| super::sqlite::sqlite_words(&e))?;
        let before = (hooks.change_mark)(&tx).map_err(|e| e.to_string())?;
        let mut counts_changed = false;
        let mut deltas = [0i64; COUNTERS];
        for op in group.iter_mut() {
            match op.apply(&tx) {
                Applied::Clean {
                    counts_changed: changed,
                    count_deltas,
                } => {
                    counts_changed |= changed;
                    for (sum, delta) in deltas.iter_mut().zip(count_deltas) {
                        *sum += delta;
                    }
                }
                // Dropping `tx` rolls everything back; every op in the group hears why.
                Applied::Poisoned(message) => return Err(message),
            }
        }
        if deltas.iter().any(|d| *d != 0) {
            (hooks.apply_counts)(&tx, &deltas).map_err(|e| e.to_string())?;
        }
        if upkeep {
            // Upkeep that fails costs nothing but its own work: the group still commits.
            if let Err(e) = (hooks.housekeeping)(&tx) {
                tracing::warn!(error = %e, "database upkeep failed");
            }
        }
        let stats = if counts_changed {
            Some((hooks.counts_event)(&tx).map_err(|e| e.to_string())?)
        } else {
            None
        };
        let after = (hooks.change_mark)(&tx).map_err(|e| e.to_string())?;
        // Held across the commit: the feed reads the log under it, so it sees this group's rows
        // only once they are known to be ours.
        let mut own = hooks.own_changes.lock();
        tx.commit().map_err(|e| super::sqlite::sqlite_words(&e))?;
        own.record(before, after);
        Ok(stats)
    })();
    match committed {
        Ok(stats) => {
            // Events first, then the counts they add up to, then the replies: whoever asked
            // for a change finds every event about it already published.
            for op in group.iter_mut() {
                op.publish(bus);
            }
            if let Some(stats) = stats {
                bus.publish(stats);
            }
            for op in group {
                op.settle(Ok(()));
            }
        }
        Err(message) => {
            tracing::error!(%message, "database commit failed");
            for op in group {
                op.settle(Err(message.clone()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn writer() -> (tempfile::TempDir, Writer, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.db");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("PRAGMA journal_mode = wal; CREATE TABLE t (v INTEGER);")
            .unwrap();
        let hooks = WriterHooks {
            apply_counts: |_, _| Ok(()),
            counts_event: |_| Ok(Event::QueueResumed),
            change_mark: |_| Ok(0),
            own_changes: Arc::default(),
            housekeeping: |_| Ok(()),
        };
        let writer = Writer::spawn(conn, EventBus::new(), hooks).unwrap();
        (dir, writer, path)
    }

    fn rows(path: &std::path::Path) -> i64 {
        Connection::open(path)
            .unwrap()
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap()
    }

    #[tokio::test]
    async fn a_refusal_without_writes_leaves_the_rest_of_the_group_alone() {
        let (_dir, writer, path) = writer();
        let refused = writer
            .run(|_, _| -> Result<()> { Err(EngineError::JobNotFound("x".into())) })
            .await;
        assert!(matches!(refused, Err(EngineError::JobNotFound(_))));
        writer
            .run(|conn, _| Ok(conn.execute("INSERT INTO t VALUES (1)", [])?))
            .await
            .unwrap();
        assert_eq!(rows(&path), 1);
    }

    #[tokio::test]
    async fn an_op_that_fails_after_writing_rolls_its_group_back() {
        let (_dir, writer, path) = writer();
        let broken = writer
            .run(|conn, _| -> Result<()> {
                conn.execute("INSERT INTO t VALUES (1)", [])?;
                Err(EngineError::JobNotFound("x".into()))
            })
            .await;
        assert!(
            matches!(broken, Err(EngineError::CommitFailed(_))),
            "{broken:?}"
        );
        assert_eq!(rows(&path), 0, "the half-done op was committed");
        // The writer goes on working.
        writer
            .run(|conn, _| Ok(conn.execute("INSERT INTO t VALUES (2)", [])?))
            .await
            .unwrap();
        assert_eq!(rows(&path), 1);
    }
}
