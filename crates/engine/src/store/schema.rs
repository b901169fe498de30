//! The database schema and its versioned migrations (`PRAGMA user_version`).
//!
//! Each migration runs once, in its own transaction. Two numbers are kept apart:
//! - the schema *version*, `user_version`: how many migrations have run (the latest one wins);
//! - the schema a build *needs to know*, `meta.schema_needs`: each migration says which schema
//!   version a build must know at least to use the database after it. An additive migration (a
//!   new table, index or column older builds can ignore) leaves it where it was; one that
//!   changes what existing rows mean raises it to its own version.
//!
//! So a newer build's additive migration never locks an older build out of a shared home (a CLI
//! beside a newer desktop app): the older build opens the newer database and leaves the newer
//! parts alone. Only a database that needs a newer build is refused, with both versions named.

use crate::error::{EngineError, Result};
use rusqlite::{Connection, OptionalExtension};
use std::path::Path;

/// One step of the schema.
#[derive(Clone, Copy, Debug)]
pub struct Migration {
    /// The SQL, run in one transaction.
    pub sql: &'static str,
    /// The oldest schema version a build must know to use the database after this step.
    pub needs: i64,
}

/// Migrations in order; the database's `user_version` is how many have run.
pub const MIGRATIONS: &[Migration] = &[
    // 1: jobs, batches and the bookkeeping that keeps every claim and count O(log n).
    Migration {
        needs: 1,
        sql: r#"
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
    },
    // 2: the change log other processes follow; finding a file's job by its path; and the jobs
    // table rebuilt for speed. Builds must know version 2: the counts per state and the log of
    // job changes are kept by the writer, no longer by triggers.
    Migration {
        needs: 2,
        sql: r#"
    -- SQLite checks `x IN (a, b, c)` with a temporary b-tree each time: in a CHECK, that was a
    -- b-tree built and thrown away for every job written. Plain comparisons cost nothing.
    CREATE TABLE jobs_rebuilt (
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
        priority      INTEGER NOT NULL CHECK (priority BETWEEN 0 AND 2),
        batch_id      TEXT NOT NULL REFERENCES batches (id),
        fair_key      INTEGER NOT NULL,
        state         TEXT NOT NULL
                      CHECK (state = 'queued' OR state = 'running' OR state = 'succeeded'
                             OR state = 'dead' OR state = 'cancelled'),
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
    INSERT INTO jobs_rebuilt SELECT * FROM jobs;
    DROP TABLE jobs;
    ALTER TABLE jobs_rebuilt RENAME TO jobs;

    CREATE INDEX jobs_ready ON jobs (priority, fair_key, seq) WHERE state = 'queued';
    CREATE INDEX jobs_waiting ON jobs (run_after) WHERE state = 'queued' AND run_after > 0;
    CREATE INDEX jobs_leases ON jobs (lease_expires) WHERE state = 'running';
    CREATE INDEX jobs_cache ON jobs (cache_key);
    CREATE INDEX jobs_batch ON jobs (batch_id);
    CREATE INDEX jobs_content ON jobs (content_hash);
    -- Re-adding a file finds the job it already has.
    CREATE INDEX jobs_source ON jobs (source);

    -- No triggers on jobs: a statement that fires a trigger keeps a statement journal (a copy
    -- of every page it touches), which was most of the cost of a claim. The writer keeps
    -- `state_counts` (once per group) and logs job changes itself; see `store::sqlite`.

    -- One row per change another process may need to hear of; see `store::feed`. Jobs' changes
    -- are logged by the writer; batches and pauses, rare, by triggers.
    CREATE TABLE changes (
        seq  INTEGER PRIMARY KEY,
        kind TEXT NOT NULL,   -- 'batch' (jobs added), 'job' (state or stage), 'gone', 'queue'
        ref  TEXT NOT NULL    -- the batch or job id; '' for the queue
    );
    CREATE TRIGGER changes_batch AFTER INSERT ON batches BEGIN
        INSERT INTO changes (kind, ref) VALUES ('batch', NEW.id);
    END;
    CREATE TRIGGER changes_paused AFTER INSERT ON meta WHEN NEW.key = 'paused' BEGIN
        INSERT INTO changes (kind, ref) VALUES ('queue', '');
    END;
    CREATE TRIGGER changes_paused_update AFTER UPDATE ON meta WHEN NEW.key = 'paused' BEGIN
        INSERT INTO changes (kind, ref) VALUES ('queue', '');
    END;
    CREATE TRIGGER changes_resumed AFTER DELETE ON meta WHEN OLD.key = 'paused' BEGIN
        INSERT INTO changes (kind, ref) VALUES ('queue', '');
    END;
    "#,
    },
    // 3: two fewer indexes written for every job added. Builds must know version 3: a build
    // that looked jobs up by the dropped indexes would scan the table for every file added.
    Migration {
        needs: 3,
        sql: r#"
    -- A batch's jobs are inserted by one transaction of the one writer, so they hold one run of
    -- consecutive `seq`s: the batch's range finds them, with no index on `batch_id`. (The range
    -- can also hold later jobs of other batches, after the newest jobs were removed and their
    -- `seq`s handed out again; queries filter on `batch_id` within it.)
    ALTER TABLE batches ADD COLUMN first_seq INTEGER;
    ALTER TABLE batches ADD COLUMN last_seq INTEGER;
    UPDATE batches SET
        first_seq = (SELECT min(seq) FROM jobs WHERE batch_id = batches.id),
        last_seq = (SELECT max(seq) FROM jobs WHERE batch_id = batches.id);
    DROP INDEX jobs_batch;

    -- One index for the story cache and for "does any job still show this video's
    -- thumbnails": the cache key is looked up under its content hash.
    DROP INDEX jobs_cache;
    DROP INDEX jobs_content;
    CREATE INDEX jobs_content ON jobs (content_hash, cache_key);
    "#,
    },
    // 4: work kept across attempts, and interruptions told apart from a video's fault. Older
    // builds can ignore both: they start each attempt afresh and count every interruption, as
    // they always did.
    Migration {
        needs: 3,
        sql: r#"
    -- What the storyteller saved as it went (JSON, its own shape): the next attempt continues
    -- from there. Cleared when the job succeeds, is retried by hand, or its file changes.
    ALTER TABLE jobs ADD COLUMN checkpoint TEXT;
    -- Interruptions (the process died mid-job) held against the video: only those after which
    -- the job had got no further than before; see `store::sqlite::reclaim_jobs`.
    ALTER TABLE jobs ADD COLUMN interruptions INTEGER NOT NULL DEFAULT 0;
    -- The furthest progress an interrupted attempt of the job had reached.
    ALTER TABLE jobs ADD COLUMN furthest_progress REAL NOT NULL DEFAULT 0;
    "#,
    },
    // 5: how long attempts ran before they were interrupted, so that an attempt cut short
    // sooner than earlier ones is not held against the video. Additive, like 4.
    Migration {
        needs: 3,
        sql: r#"
    ALTER TABLE jobs ADD COLUMN attempt_started_at INTEGER;
    ALTER TABLE jobs ADD COLUMN longest_interrupted_ms INTEGER NOT NULL DEFAULT 0;
    "#,
    },
    // 6: content hashes an `add` finished before it was stopped, so the next `add` of the same
    // files does not read them all again. Additive: older builds never look.
    Migration {
        needs: 3,
        sql: r#"
    -- `source` as `jobs.source` keeps it (text, or the name's bytes). A row is trusted only
    -- while the file keeps its size and modification time; the add that queues the file's job
    -- deletes it, since the job then holds the hash.
    CREATE TABLE file_hashes (
        source        TEXT PRIMARY KEY,
        size          INTEGER NOT NULL,
        mtime_ms      INTEGER NOT NULL,
        content_hash  TEXT NOT NULL,
        hashed_at     INTEGER NOT NULL
    ) WITHOUT ROWID;
    "#,
    },
    // 7: the history is searchable: every story and its file name in a full-text index, kept by
    // triggers, so every writer (this build, an older one, another process) keeps it current.
    // Only jobs with a story are indexed: adding jobs costs nothing more. Additive: older builds
    // never read it, and their writes keep it up to date through the triggers.
    Migration {
        needs: 3,
        sql: r#"
    -- Contentless (the text stays in `jobs` alone), rowid = `jobs.seq`. Diacritics are folded
    -- so "creme" finds "crème"; two- and three-letter prefixes are indexed so that searching
    -- as one types stays fast from the first letters.
    CREATE VIRTUAL TABLE story_search USING fts5(
        name, story,
        content = '', contentless_delete = 1,
        tokenize = 'unicode61 remove_diacritics 2', prefix = '2 3'
    );

    -- The file name: what follows the last '/' (or '\') of the source.
    CREATE TRIGGER story_search_insert AFTER INSERT ON jobs WHEN NEW.story IS NOT NULL BEGIN
        INSERT INTO story_search (rowid, name, story) VALUES (
            NEW.seq,
            substr(replace(NEW.source, '\', '/'), length(rtrim(replace(NEW.source, '\', '/'),
                replace(replace(NEW.source, '\', '/'), '/', ''))) + 1),
            NEW.story);
    END;
    CREATE TRIGGER story_search_update AFTER UPDATE OF story, source ON jobs
    WHEN OLD.story IS NOT NEW.story OR OLD.source IS NOT NEW.source BEGIN
        DELETE FROM story_search WHERE rowid = OLD.seq AND OLD.story IS NOT NULL;
        INSERT INTO story_search (rowid, name, story) SELECT
            NEW.seq,
            substr(replace(NEW.source, '\', '/'), length(rtrim(replace(NEW.source, '\', '/'),
                replace(replace(NEW.source, '\', '/'), '/', ''))) + 1),
            NEW.story
        WHERE NEW.story IS NOT NULL;
    END;
    CREATE TRIGGER story_search_delete AFTER DELETE ON jobs WHEN OLD.story IS NOT NULL BEGIN
        DELETE FROM story_search WHERE rowid = OLD.seq;
    END;

    INSERT INTO story_search (rowid, name, story)
    SELECT seq,
           substr(replace(source, '\', '/'), length(rtrim(replace(source, '\', '/'),
               replace(replace(source, '\', '/'), '/', ''))) + 1),
           story
    FROM jobs WHERE story IS NOT NULL;
    "#,
    },
    // 8: AI storytellers. Jobs have new stages (uploading, processing) and error kinds that
    // older builds cannot read, so they must know this version. Storytellers pause on their
    // own (a refused key, a quota spent until a time); costs are whole micro-dollars, per job
    // and per day.
    Migration {
        needs: 8,
        sql: r#"
    -- A storyteller that starts no jobs for now; a row whose `until_ms` has passed is over.
    CREATE TABLE storyteller_pauses (
        storyteller TEXT PRIMARY KEY,
        kind        TEXT NOT NULL,
        reason      TEXT NOT NULL,
        until_ms    INTEGER,
        paused_at   INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TRIGGER changes_storyteller_paused AFTER INSERT ON storyteller_pauses BEGIN
        INSERT INTO changes (kind, ref) VALUES ('storytellers', NEW.storyteller);
    END;
    CREATE TRIGGER changes_storyteller_repaused AFTER UPDATE ON storyteller_pauses BEGIN
        INSERT INTO changes (kind, ref) VALUES ('storytellers', NEW.storyteller);
    END;
    CREATE TRIGGER changes_storyteller_resumed AFTER DELETE ON storyteller_pauses BEGIN
        INSERT INTO changes (kind, ref) VALUES ('storytellers', OLD.storyteller);
    END;

    -- What each job has cost over all its attempts (`cost_usd` stays for older rows).
    ALTER TABLE jobs ADD COLUMN cost_micro_usd INTEGER NOT NULL DEFAULT 0;
    UPDATE jobs SET cost_micro_usd = CAST(round(cost_usd * 1000000) AS INTEGER)
    WHERE cost_usd > 0;

    -- Money spent, per local day and storyteller: every attempt's tokens are booked here as
    -- they are spent, whatever became of the attempt.
    CREATE TABLE spending (
        day            TEXT NOT NULL,
        storyteller    TEXT NOT NULL,
        attempts       INTEGER NOT NULL DEFAULT 0,
        input_tokens   INTEGER NOT NULL DEFAULT 0,
        output_tokens  INTEGER NOT NULL DEFAULT 0,
        cost_micro_usd INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (day, storyteller)
    ) WITHOUT ROWID;
    "#,
    },
    // 9: the sound a model heard is priced apart from the rest of its input (Gemini), so its
    // tokens are kept apart too, per job and per day. Older builds read past the new columns.
    Migration {
        needs: 8,
        sql: r#"
    ALTER TABLE jobs ADD COLUMN audio_input_tokens INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE spending ADD COLUMN audio_input_tokens INTEGER NOT NULL DEFAULT 0;
    "#,
    },
    // 10: a story can be asked for with the person's own instructions, a length and a
    // language (JSON; NULL for none). An older build would tell such a job without them, so
    // it must know this version.
    Migration {
        needs: 10,
        sql: r#"
    ALTER TABLE jobs ADD COLUMN style TEXT;
    "#,
    },
    // 11: watched folders, and the content each has seen, so a file is told once from a
    // folder whatever it is renamed to and however many events announce it. New tables only:
    // older builds read past them.
    Migration {
        needs: 10,
        sql: r#"
    CREATE TABLE watched_folders (
        path      TEXT PRIMARY KEY,
        choices   TEXT NOT NULL,
        added_at  INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE watched_sightings (
        folder        TEXT NOT NULL,
        content_hash  TEXT NOT NULL,
        source        TEXT NOT NULL,
        seen_at       INTEGER NOT NULL,
        PRIMARY KEY (folder, content_hash)
    ) WITHOUT ROWID;
    "#,
    },
    // 12: a job keeps the watched folder it came from (what is done after its story — the
    // story written out, the video moved — follows that folder's choices, so an older build
    // would tell it without them and must know this version), and a sighting keeps the file's
    // size and modification time, so the start-up scan knows a file it saw before without
    // reading it again. A folder keeps the status its watcher last reported, and when, so
    // every process can show it.
    Migration {
        needs: 12,
        sql: r#"
    ALTER TABLE jobs ADD COLUMN watched_folder TEXT;
    CREATE INDEX jobs_watched ON jobs (watched_folder, state) WHERE watched_folder IS NOT NULL;
    ALTER TABLE watched_folders ADD COLUMN status TEXT;
    ALTER TABLE watched_folders ADD COLUMN status_at INTEGER;
    ALTER TABLE watched_sightings ADD COLUMN size INTEGER NOT NULL DEFAULT -1;
    ALTER TABLE watched_sightings ADD COLUMN mtime_ms INTEGER NOT NULL DEFAULT 0;
    "#,
    },
];

/// The latest schema version this build knows (and migrates a database to).
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
    // Statements whose triggers write (the change log, the counts) keep a statement journal to
    // undo themselves on failure; in memory it is a copy, on disk a write per page.
    conn.pragma_update(None, "temp_store", "memory")?;
    conn.pragma_update(None, "foreign_keys", "on")?;
    // Checkpoints are where NORMAL fsyncs; every 4 MB of WAL (the default) is several a second
    // under load. 32 MB keeps them rare while bounding the WAL file.
    conn.pragma_update(None, "wal_autocheckpoint", 8192)?;
    Ok(())
}

/// Pages the writing connection keeps in memory (KiB, as `cache_size` takes negative numbers):
/// enough for a 100,000-file add's indexes to stay in memory instead of spilling mid-batch.
const WRITER_CACHE_KIB: i64 = 32 * 1024;

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
                conn.pragma_update(None, "cache_size", -WRITER_CACHE_KIB)?;
                migrate(&mut conn, path)?;
                // A damaged file is caught before anything more is written to it.
                let verdict: String =
                    conn.query_row("PRAGMA quick_check(1)", [], |row| row.get(0))?;
                if verdict != "ok" {
                    tracing::debug!(%verdict, "the database failed its check");
                    return Err(EngineError::Storage(crate::error::StorageError {
                        backend: crate::error::StoreBackend::Sqlite,
                        fault: crate::error::StorageFault::Corrupt,
                        message: "SQLite's own check found broken pages in it".into(),
                    }));
                }
                Ok(conn)
            });
        match attempt {
            Err(EngineError::Storage(e))
                if e.fault == crate::error::StorageFault::Busy
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(pause);
                pause = (pause * 2).min(std::time::Duration::from_millis(200));
            }
            // A disk that fills for a moment (a download finishing) is waited out like a lock.
            Err(e) if e.is_disk_full() && std::time::Instant::now() < deadline => {
                crate::error::say_database_disk_full(true);
                std::thread::sleep(pause);
                pause = (pause * 2).min(std::time::Duration::from_millis(200));
            }
            Err(e) if e.is_disk_full() => {
                return Err(EngineError::Io {
                    path: path.to_owned(),
                    message: "the disk holding the database is full: free some space there \
                              and start again"
                        .into(),
                })
            }
            other => return other,
        }
    }
}

/// Brings the database at `path` (open on `conn`) up to [`SCHEMA_VERSION`], or checks that a
/// database a newer build migrated further is still one this build can use.
pub fn migrate(conn: &mut Connection, path: &Path) -> Result<()> {
    migrate_with(conn, path, MIGRATIONS)
}

/// [`migrate`] with an explicit list of migrations (tests play a newer build with a longer one).
pub fn migrate_with(conn: &mut Connection, path: &Path, migrations: &[Migration]) -> Result<()> {
    let known = migrations.len() as i64;
    let found: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if found > known {
        // Written by a newer build: usable unless it says it needs a newer one than this.
        let needs: i64 = conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'schema_needs'",
                [],
                |row| row.get(0),
            )
            .optional()?
            .unwrap_or(found);
        if needs > known {
            return Err(EngineError::SchemaTooNew {
                path: path.to_path_buf(),
                found,
                needs,
                known,
            });
        }
        tracing::info!(
            found,
            needs,
            known,
            "database is newer than this build, and compatible"
        );
        return Ok(());
    }
    for (index, migration) in migrations.iter().enumerate().skip(found as usize) {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        // Two processes may start on a new database together: re-check inside the write lock.
        let now: i64 = tx.pragma_query_value(None, "user_version", |row| row.get(0))?;
        if now > index as i64 {
            continue;
        }
        tx.execute_batch(migration.sql)?;
        // What the database needs never goes down: a later additive step keeps an earlier need.
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ('schema_needs', ?1) \
             ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value)",
            [migration.needs],
        )?;
        tx.pragma_update(None, "user_version", index as i64 + 1)?;
        tx.commit()?;
        tracing::info!(version = index + 1, "database migrated");
    }
    Ok(())
}
