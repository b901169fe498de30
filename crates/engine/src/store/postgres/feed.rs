//! How a process on a PostgreSQL queue hears of the changes other processes (on any machine)
//! commit: the same [`ForeignChanges`] a SQLite follower hands on, from the `changes` log.
//!
//! Every transaction that changes something others show appends rows to `changes` and sends
//! one `NOTIFY` (its payload only says which handle wrote it; the rest is read from the
//! tables). One `LISTEN` connection per follower wakes it; a read every
//! [`POLL_EVERY`] catches anything a lost connection missed, and is all there is in poll-only
//! mode (a PgBouncer in transaction pooling passes no notices).
//!
//! Rows are numbered when written, not when committed, so a row can become visible after a
//! later one: the follower keeps the highest number below which it has seen every row, and
//! remembers the ones it has seen above it. A hole that stays open for ten seconds was a
//! transaction rolled back, and is passed over.

use super::{jobs_from_rows, PostgresStore, CHANNEL, JOB_COLUMNS};
use crate::error::Result;
use crate::job::{BatchId, JobId};
use crate::store::{Follower, ForeignChanges, ForeignSink};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// How often the log is read when no notice has come.
pub const POLL_EVERY: Duration = Duration::from_secs(1);

/// How long a hole in the log's numbers is waited for before it is taken for a rollback.
const HOLE_WAIT: Duration = Duration::from_secs(10);

/// How long a lost `LISTEN` connection waits before it is opened again.
const RECONNECT_EVERY: Duration = Duration::from_secs(2);

/// Most rows read in one go.
const READ_CHUNK: i64 = 20_000;

/// Where a follower is in the log.
struct Cursor {
    // Every row numbered up to here has been seen.
    low: i64,
    // Rows seen above `low`, and since when the first hole below them has been open.
    seen: BTreeSet<i64>,
    hole_since: Option<Instant>,
}

/// Starts following `store`'s queue for other processes' changes.
pub(super) async fn follow(store: PostgresStore, sink: ForeignSink) -> Result<Follower> {
    let low: i64 = store
        .client()
        .await?
        .query_one("SELECT coalesce(max(seq), 0) FROM changes", &[])
        .await?
        .try_get(0)?;
    let notice = Arc::new(Notify::new());
    let stop = CancellationToken::new();
    if store.inner.listen {
        tokio::spawn(listen(store.clone(), notice.clone(), stop.clone()));
    }
    tokio::spawn(run(
        store,
        sink,
        notice,
        Cursor {
            low,
            seen: BTreeSet::new(),
            hole_since: None,
        },
        stop.clone(),
    ));
    Ok(Follower::new(stop, None))
}

/// Keeps one `LISTEN` connection open, waking `notice` on every notice from another handle.
async fn listen(store: PostgresStore, notice: Arc<Notify>, stop: CancellationToken) {
    let origin = store.inner.origin.to_string();
    loop {
        match store.inner.config.connect(tokio_postgres::NoTls).await {
            Ok((client, mut connection)) => {
                let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
                let pump = tokio::spawn(async move {
                    while let Some(message) =
                        std::future::poll_fn(|cx| connection.poll_message(cx)).await
                    {
                        match message {
                            Ok(tokio_postgres::AsyncMessage::Notification(n)) => {
                                if tx.send(n.payload().to_owned()).is_err() {
                                    return;
                                }
                            }
                            Ok(_) => {}
                            Err(e) => {
                                tracing::warn!(error = %e, "the queue's notices stopped");
                                return;
                            }
                        }
                    }
                });
                if let Err(e) = client.batch_execute(&format!("LISTEN {CHANNEL}")).await {
                    tracing::warn!(error = %e, "could not listen for the queue's notices");
                } else {
                    // Anything missed while no one listened is read now.
                    notice.notify_one();
                    loop {
                        tokio::select! {
                            _ = stop.cancelled() => { pump.abort(); return; }
                            payload = rx.recv() => match payload {
                                Some(payload) if payload == origin => {}
                                Some(_) => notice.notify_one(),
                                None => break,
                            },
                        }
                    }
                }
                pump.abort();
            }
            Err(e) => tracing::warn!(error = %e, queue = %store.inner.place,
                "could not open the queue's notice connection; reading it every second meanwhile"),
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(RECONNECT_EVERY) => {}
        }
    }
}

async fn run(
    store: PostgresStore,
    sink: ForeignSink,
    notice: Arc<Notify>,
    mut cursor: Cursor,
    stop: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = notice.notified() => {}
            _ = tokio::time::sleep(POLL_EVERY) => {}
        }
        match read_foreign(&store, &mut cursor).await {
            Ok(changes) if !changes.is_empty() => {
                for event in changes.events() {
                    store.inner.bus.publish(event);
                }
                sink(&changes);
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "reading other processes' changes failed"),
        }
    }
}

/// Reads the log past the cursor and loads what the other handles' rows name.
async fn read_foreign(store: &PostgresStore, cursor: &mut Cursor) -> Result<ForeignChanges> {
    let client = store.client().await?;
    let rows = client
        .query(
            "SELECT seq, origin, kind, ref FROM changes WHERE seq > $1 ORDER BY seq LIMIT $2",
            &[&cursor.low, &READ_CHUNK],
        )
        .await?;
    let mut batches: Vec<Uuid> = Vec::new();
    let mut jobs: BTreeSet<Uuid> = BTreeSet::new();
    let mut gone: BTreeSet<Uuid> = BTreeSet::new();
    let mut changes = ForeignChanges::default();
    let mut queue = false;
    for row in &rows {
        let seq: i64 = row.try_get(0)?;
        if !cursor.seen.insert(seq) {
            continue;
        }
        let origin: Uuid = row.try_get(1)?;
        if origin == store.inner.origin {
            continue;
        }
        let kind: &str = row.try_get(2)?;
        let reference: &str = row.try_get(3)?;
        match kind {
            "batch" => batches.extend(reference.parse::<Uuid>().ok()),
            "job" => jobs.extend(reference.parse::<Uuid>().ok()),
            "gone" => {
                if let Ok(id) = reference.parse::<Uuid>() {
                    jobs.remove(&id);
                    gone.insert(id);
                }
            }
            "queue" => queue = true,
            "storytellers" => changes.storytellers_changed = true,
            "settings" => changes.settings_changed = true,
            "folders" => changes.watched_folders_changed = true,
            _ => {}
        }
    }
    advance(cursor);
    if !batches.is_empty() {
        let rows = client
            .query(
                &format!("SELECT {JOB_COLUMNS} FROM jobs WHERE batch_id = ANY($1) ORDER BY seq"),
                &[&batches],
            )
            .await?;
        let mut by_batch: BTreeMap<Uuid, Vec<crate::job::Job>> = BTreeMap::new();
        for job in jobs_from_rows(&rows)? {
            jobs.remove(&job.id.0);
            by_batch.entry(job.batch_id.0).or_default().push(job);
        }
        for batch in batches {
            if let Some(added) = by_batch.remove(&batch) {
                changes.added.push((BatchId(batch), added));
            }
        }
    }
    if !jobs.is_empty() {
        let ids: Vec<Uuid> = jobs.iter().copied().collect();
        let rows = client
            .query(
                &format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ANY($1) ORDER BY seq"),
                &[&ids],
            )
            .await?;
        let found = jobs_from_rows(&rows)?;
        for id in &jobs {
            if !found.iter().any(|job| job.id.0 == *id) {
                gone.insert(*id);
            }
        }
        changes.changed = found;
    }
    changes.removed = gone.into_iter().map(JobId).collect();
    let nothing = changes.added.is_empty()
        && changes.changed.is_empty()
        && changes.removed.is_empty()
        && !queue
        && !changes.storytellers_changed
        && !changes.settings_changed
        && !changes.watched_folders_changed;
    if nothing {
        return Ok(changes);
    }
    let stats = super::queue::read_stats(&client).await?;
    if queue {
        changes.pause = Some(stats.paused.clone());
    }
    changes.stats = Some(stats);
    Ok(changes)
}

/// Moves the cursor's low mark over every row seen in a row, and past a hole that has stayed
/// open too long (a transaction that rolled back).
fn advance(cursor: &mut Cursor) {
    while cursor.seen.remove(&(cursor.low + 1)) {
        cursor.low += 1;
    }
    match cursor.seen.first().copied() {
        None => cursor.hole_since = None,
        Some(next) => {
            let since = *cursor.hole_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= HOLE_WAIT {
                cursor.low = next - 1;
                cursor.hole_since = None;
                advance(cursor);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_low_mark_waits_at_a_hole_and_moves_over_rows_seen_in_a_row() {
        let mut cursor = Cursor {
            low: 10,
            seen: [11, 12, 14, 15].into_iter().collect(),
            hole_since: None,
        };
        advance(&mut cursor);
        assert_eq!(cursor.low, 12);
        assert!(cursor.hole_since.is_some());
        cursor.seen.insert(13);
        advance(&mut cursor);
        assert_eq!((cursor.low, cursor.seen.len()), (15, 0));
        assert!(cursor.hole_since.is_none());
        // A hole open for long is a rollback: passed over.
        cursor.seen.insert(17);
        cursor.hole_since = Some(Instant::now() - HOLE_WAIT);
        advance(&mut cursor);
        assert_eq!(cursor.low, 17);
    }
}
