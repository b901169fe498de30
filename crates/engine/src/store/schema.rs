//! The database schema and its versioned migrations (`PRAGMA user_version`).
//!
//! Each migration runs once, in its own transaction; a database newer than this build is refused
//! rather than guessed at.

use crate::error::{EngineError, Result};
use rusqlite::Connection;
use std::path::Path;

/// Migrations in order; the database's `user_version` is how many have run.
const MIGRATIONS: &[&str] = &[
    // 1: jobs, batches and the bookkeeping that keeps every claim and count O(log n).
    r#"
    -- One row per enqueue (a drag-and-drop, an `add`): the unit that takes turns.
    CREATE TABLE batches (
        id         TEXT PRIMARY KEY,
        created_at INTEGER NOT NULL
    );

    -- The fair-queuing virtual clock per priority: the fair key of the newest claimed job.
    CREATE TABLE fair_clock (
        priority INTEGER PRIMARY KEY,
        vtime    INTEGER NOT NULL
    );
    INSERT INTO fair_clock (priority, vtime) VALUES (0, 0), (1, 0), (2, 0);

    CREATE TABLE jobs (
        seq           INTEGER PRIMARY KEY,
        id            TEXT NOT NULL UNIQUE,
        source        TEXT NOT NULL,
        size          INTEGER NOT NULL,
        mtime_ms      INTEGER NOT NULL,
        content_hash  TEXT NOT NULL,
        media         TEXT,
        storyteller   TEXT NOT NULL,
        model         TEXT NOT NULL,
        preset        TEXT NOT NULL,
        cache_key     TEXT NOT NULL,
        no_cache      INTEGER NOT NULL DEFAULT 0,
        priority      INTEGER NOT NULL CHECK (priority IN (0, 1, 2)),
        batch_id      TEXT NOT NULL REFERENCES batches (id),
        fair_key      INTEGER NOT NULL,
        state         TEXT NOT NULL
                      CHECK (state IN ('queued', 'running', 'succeeded', 'dead', 'cancelled')),
        stage         TEXT NOT NULL,
        progress      REAL NOT NULL DEFAULT 0,
        attempts      INTEGER NOT NULL DEFAULT 0,
        run_after     INTEGER NOT NULL DEFAULT 0,
        lease_owner   TEXT,
        lease_expires INTEGER,
        error_kind    TEXT,
        error_message TEXT,
        story         TEXT,
        cached        INTEGER NOT NULL DEFAULT 0,
        input_tokens  INTEGER NOT NULL DEFAULT 0,
        output_tokens INTEGER NOT NULL DEFAULT 0,
        cost_usd      REAL NOT NULL DEFAULT 0,
        created_at    INTEGER NOT NULL,
        updated_at    INTEGER NOT NULL,
        started_at    INTEGER,
        finished_at   INTEGER
    );

    -- Every index entry that moves on a state change is a page written per claim or completion,
    -- so the indexes are few and mostly partial. Claim order: priority, then fair key
    -- (round-robin across batches), then FIFO.
    CREATE INDEX jobs_ready ON jobs (priority, fair_key, seq) WHERE state = 'queued';
    -- Only jobs waiting to retry: a job queued to run at once never enters it.
    CREATE INDEX jobs_waiting ON jobs (run_after) WHERE state = 'queued' AND run_after > 0;
    CREATE INDEX jobs_leases ON jobs (lease_expires) WHERE state = 'running';
    -- Not keyed by state, so it never changes when a job moves on.
    CREATE INDEX jobs_cache ON jobs (cache_key);
    CREATE INDEX jobs_batch ON jobs (batch_id);
    -- Finds whether any job still shows a video's thumbnails.
    CREATE INDEX jobs_content ON jobs (content_hash);

    -- Counts per state kept by triggers, so stats never scan the table.
    CREATE TABLE state_counts (
        state TEXT PRIMARY KEY,
        n     INTEGER NOT NULL
    );
    INSERT INTO state_counts (state, n)
        VALUES ('queued', 0), ('running', 0), ('succeeded', 0), ('dead', 0), ('cancelled', 0);

    CREATE TRIGGER jobs_count_insert AFTER INSERT ON jobs BEGIN
        UPDATE state_counts SET n = n + 1 WHERE state = NEW.state;
    END;
    CREATE TRIGGER jobs_count_delete AFTER DELETE ON jobs BEGIN
        UPDATE state_counts SET n = n - 1 WHERE state = OLD.state;
    END;
    CREATE TRIGGER jobs_count_update AFTER UPDATE OF state ON jobs
        WHEN OLD.state <> NEW.state BEGIN
        UPDATE state_counts SET n = n - 1 WHERE state = OLD.state;
        UPDATE state_counts SET n = n + 1 WHERE state = NEW.state;
    END;

    -- Small settings and counters: paused (reason text), cache_hits, cache_misses.
    CREATE TABLE meta (
        key   TEXT PRIMARY KEY,
        value
    );
    INSERT INTO meta (key, value) VALUES ('cache_hits', 0), ('cache_misses', 0);
    "#,
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Sets the connection options every connection uses.
pub fn configure(conn: &Connection) -> Result<()> {
    // First: another process (a second pool, the CLI beside the desktop app) may hold the lock,
    // even while the pragmas below run on a database it is creating at this very moment.
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    // WAL lets readers run beside the writer; NORMAL keeps every commit durable against a
    // process crash (the WAL is fsynced at checkpoints), which is what a job queue needs.
    // WAL is a property of the file: set it once, so later opens need no exclusive lock.
    let mode: String = conn.pragma_query_value(None, "journal_mode", |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        conn.pragma_update(None, "journal_mode", "wal")?;
    }
    conn.pragma_update(None, "synchronous", "normal")?;
    conn.pragma_update(None, "foreign_keys", "on")?;
    // Checkpoints are where NORMAL fsyncs; every 4 MB of WAL (the default) is several a second
    // under load. 32 MB keeps them rare while bounding the WAL file.
    conn.pragma_update(None, "wal_autocheckpoint", 8192)?;
    Ok(())
}

/// Opens, configures and migrates the database at `path` for writing.
///
/// Processes starting together on a new database race to create it and switch it to WAL. SQLite
/// answers some of those races with `SQLITE_BUSY` at once rather than through the busy handler
/// (to avoid deadlock), so the whole open is retried for a few seconds before giving up.
/// Blocking: call it from a blocking thread.
pub fn open_writer(path: &Path) -> Result<Connection> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut pause = std::time::Duration::from_millis(5);
    loop {
        let attempt = Connection::open(path)
            .map_err(EngineError::from)
            .and_then(|mut conn| {
                configure(&conn)?;
                migrate(&mut conn, path)?;
                Ok(conn)
            });
        match attempt {
            Err(EngineError::Database(e))
                if is_busy(&e) && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(pause);
                pause = (pause * 2).min(std::time::Duration::from_millis(200));
            }
            other => return other,
        }
    }
}

fn is_busy(error: &rusqlite::Error) -> bool {
    matches!(
        error.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

/// Brings the database at `path` (open on `conn`) up to [`SCHEMA_VERSION`].
pub fn migrate(conn: &mut Connection, path: &Path) -> Result<()> {
    let found: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if found > SCHEMA_VERSION {
        return Err(EngineError::SchemaTooNew {
            path: path.to_path_buf(),
            found,
            known: SCHEMA_VERSION,
        });
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        // Two processes may start on a new database together: re-check inside the write lock.
        let now: i64 = tx.pragma_query_value(None, "user_version", |row| row.get(0))?;
        if now > index as i64 {
            continue;
        }
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", index as i64 + 1)?;
        tx.commit()?;
        tracing::info!(version = index + 1, "database migrated");
    }
    Ok(())
}
