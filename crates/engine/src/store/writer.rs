//! The store's one writing connection, on a thread of its own, with group commit.
//!
//! Every mutation is a closure sent here. The thread takes whatever has queued up while the last
//! commit ran, applies each in its own savepoint (one failing op rolls back alone) and commits them
//! together: many claims and completions share one WAL commit, which is how the store keeps up
//! with thousands of jobs a second without ever blocking a tokio worker. Replies and events are
//! released only after the commit, so nobody hears of a change that could still be lost.

use crate::error::{EngineError, Result};
use crate::event::{Event, EventBus};
use rusqlite::Connection;
use std::sync::mpsc;
use tokio::sync::oneshot;

/// What an op produced besides its result: events to publish after commit.
#[derive(Default)]
pub struct Outbox {
    /// Events, published in order once the transaction commits.
    pub events: Vec<Event>,
    /// Whether job counts changed (a stats event follows the commit).
    pub counts_changed: bool,
}

/// A write op as the thread sees it, whatever its result type.
trait PendingWrite: Send {
    /// Applies the op in its own savepoint; true when it changed job counts.
    fn apply(&mut self, conn: &Connection) -> bool;
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
    fn apply(&mut self, conn: &Connection) -> bool {
        let Some(work) = self.work.take() else {
            return false;
        };
        let mut outbox = Outbox::default();
        let result = in_savepoint(conn, |conn| work(conn, &mut outbox));
        if result.is_err() {
            outbox = Outbox::default();
        }
        let changed = outbox.counts_changed;
        self.outcome = Some((result, outbox));
        changed
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

fn in_savepoint<T>(conn: &Connection, work: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
    conn.execute_batch("SAVEPOINT op")?;
    match work(conn) {
        Ok(value) => {
            conn.execute_batch("RELEASE op")?;
            Ok(value)
        }
        Err(error) => {
            conn.execute_batch("ROLLBACK TO op; RELEASE op")?;
            Err(error)
        }
    }
}

/// The sending side: cheap to clone, usable from any thread or task.
#[derive(Clone)]
pub struct Writer {
    ops: mpsc::Sender<Box<dyn PendingWrite>>,
}

/// Ops applied per transaction at most, so one commit never grows without bound.
const MAX_GROUP: usize = 512;

impl Writer {
    /// Starts the writer thread on `conn`; `counts_event` runs inside each transaction that
    /// changed job counts, and the event it makes is published after the commit.
    pub fn spawn(
        mut conn: Connection,
        bus: EventBus,
        counts_event: fn(&Connection) -> Result<Event>,
    ) -> Result<Self> {
        let (ops, inbox) = mpsc::channel::<Box<dyn PendingWrite>>();
        std::thread::Builder::new()
            .name("storyteller-db-writer".into())
            .spawn(move || {
                while let Ok(first) = inbox.recv() {
                    let mut group = vec![first];
                    while group.len() < MAX_GROUP {
                        match inbox.try_recv() {
                            Ok(op) => group.push(op),
                            Err(_) => break,
                        }
                    }
                    commit_group(&mut conn, &bus, counts_event, group);
                }
            })
            .map_err(|e| EngineError::Io {
                path: "storyteller-db-writer".into(),
                message: format!("could not start the database thread: {e}"),
            })?;
        Ok(Self { ops })
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
        self.ops
            .send(Box::new(op))
            .map_err(|_| EngineError::StoreClosed)?;
        answer.await.map_err(|_| EngineError::StoreClosed)?
    }
}

fn commit_group(
    conn: &mut Connection,
    bus: &EventBus,
    counts_event: fn(&Connection) -> Result<Event>,
    mut group: Vec<Box<dyn PendingWrite>>,
) {
    let committed = (|| -> std::result::Result<Option<Event>, String> {
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| e.to_string())?;
        let mut counts_changed = false;
        for op in group.iter_mut() {
            counts_changed |= op.apply(&tx);
        }
        let stats = if counts_changed {
            Some(counts_event(&tx).map_err(|e| e.to_string())?)
        } else {
            None
        };
        tx.commit().map_err(|e| e.to_string())?;
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
