//! The PostgreSQL queue's tables and their versioned migrations.
//!
//! Migrations run in order, each in its own transaction, under a transaction-level advisory
//! lock so two machines starting at once do not both migrate; `storyteller_schema` records the
//! versions applied. Times are whole milliseconds since the Unix epoch read from the server's
//! clock (`st_now_ms()`), never a worker's: machines whose clocks disagree share leases safely.
//!
//! Designed for many claimers on many machines at once: no row is written by every claim (fair
//! keys are given at enqueue, counts are read from the jobs themselves through partial
//! indexes), and a unique index keeps two twins (same content, storyteller, model and preset)
//! from running at once, whoever claims them.

/// One step of the schema.
pub struct Migration {
    /// Its version (1, 2, …).
    pub version: i32,
    /// What it does.
    pub sql: &'static str,
}

/// Every migration, oldest first.
pub const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    sql: r#"
    -- The server's clock in ms. Only tests ever set `frozen_ms` and `offset_ms`: they stop and
    -- move time for a test of leases, the way a test of the SQLite store moves its clock.
    CREATE TABLE clock_skew (
        only_row  boolean PRIMARY KEY DEFAULT true CHECK (only_row),
        frozen_ms bigint,
        offset_ms bigint NOT NULL DEFAULT 0
    );
    INSERT INTO clock_skew DEFAULT VALUES;
    CREATE FUNCTION st_now_ms() RETURNS bigint LANGUAGE sql STABLE AS $$
        SELECT coalesce(frozen_ms, (extract(epoch FROM now()) * 1000)::bigint) + offset_ms
        FROM clock_skew
    $$;

    CREATE TABLE batches (
        id          uuid PRIMARY KEY,
        machine     text NOT NULL,
        created_at  bigint NOT NULL
    );

    CREATE TABLE jobs (
        seq                     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        id                      uuid NOT NULL UNIQUE,
        source                  bytea NOT NULL,
        -- The machine it was added on: its path is that machine's.
        machine                 text NOT NULL,
        size                    bigint NOT NULL,
        mtime_ms                bigint NOT NULL,
        content_hash            text NOT NULL,
        media                   jsonb,
        storyteller             text NOT NULL,
        model                   text NOT NULL,
        preset                  text NOT NULL,
        style                   text,
        cache_key               text NOT NULL,
        no_cache                boolean NOT NULL DEFAULT false,
        priority                smallint NOT NULL CHECK (priority BETWEEN 0 AND 2),
        batch_id                uuid NOT NULL REFERENCES batches (id),
        fair_key                bigint NOT NULL,
        state                   text NOT NULL CHECK (state IN
                                    ('queued', 'running', 'succeeded', 'dead', 'cancelled')),
        stage                   text NOT NULL,
        progress                double precision NOT NULL DEFAULT 0,
        attempts                integer NOT NULL DEFAULT 0,
        run_after               bigint NOT NULL DEFAULT 0,
        lease_owner             text,
        lease_expires           bigint,
        error_kind              text,
        error_message           text,
        story                   text,
        cached                  boolean NOT NULL DEFAULT false,
        -- Counted once per job, on its first claim: what the cache figures read.
        cache_missed            boolean NOT NULL DEFAULT false,
        input_tokens            bigint NOT NULL DEFAULT 0,
        output_tokens           bigint NOT NULL DEFAULT 0,
        audio_input_tokens      bigint NOT NULL DEFAULT 0,
        cost_micro_usd          bigint NOT NULL DEFAULT 0,
        created_at              bigint NOT NULL,
        updated_at              bigint NOT NULL,
        started_at              bigint,
        finished_at             bigint,
        watched_folder          bytea,
        checkpoint              jsonb,
        interruptions           integer NOT NULL DEFAULT 0,
        furthest_progress       double precision NOT NULL DEFAULT 0,
        attempt_started_at      bigint,
        longest_interrupted_ms  bigint NOT NULL DEFAULT 0,
        -- The file name and story, for searching the history.
        search                  tsvector
    );

    -- Claim order: priority, fair key (round-robin across batches), then first in first out.
    CREATE INDEX jobs_ready ON jobs (priority, fair_key, seq) WHERE state = 'queued';
    CREATE INDEX jobs_waiting ON jobs (run_after) WHERE state = 'queued' AND run_after > 0;
    CREATE INDEX jobs_leases ON jobs (lease_expires) WHERE state = 'running';
    CREATE INDEX jobs_content ON jobs (content_hash, cache_key);
    CREATE INDEX jobs_source ON jobs (source);
    CREATE INDEX jobs_batch ON jobs (batch_id);
    CREATE INDEX jobs_owner ON jobs (lease_owner) WHERE state = 'running';
    -- The fair-queuing clock of each priority, read at enqueue: the key of the newest job
    -- taken up (claims go in key order, so the largest key among them).
    CREATE INDEX jobs_claimed_keys ON jobs (priority, fair_key) WHERE state <> 'queued';
    CREATE INDEX jobs_state ON jobs (state);
    CREATE INDEX jobs_watched ON jobs (watched_folder, state) WHERE watched_folder IS NOT NULL;
    CREATE INDEX jobs_search ON jobs USING gin (search) WHERE search IS NOT NULL;
    -- Never paid twice: at most one job of a content and cache key runs at a time, however
    -- many machines claim at once.
    CREATE UNIQUE INDEX jobs_one_running_twin ON jobs (content_hash, cache_key)
        WHERE state = 'running' AND NOT no_cache;

    -- The result cache's figures, a row per store handle that counted (each process writes its
    -- own row, so claimers on different machines never wait for one another's counts).
    CREATE TABLE cache_tallies (
        origin  uuid PRIMARY KEY,
        hits    bigint NOT NULL DEFAULT 0,
        misses  bigint NOT NULL DEFAULT 0
    );

    -- Queue-wide settings: `paused` (the reason).
    CREATE TABLE queue_settings (
        key   text PRIMARY KEY,
        value text NOT NULL
    );

    CREATE TABLE storyteller_pauses (
        storyteller text PRIMARY KEY,
        kind        text NOT NULL,
        reason      text NOT NULL,
        until_ms    bigint,
        paused_at   bigint NOT NULL
    );

    CREATE TABLE spending (
        day                 text NOT NULL,
        storyteller         text NOT NULL,
        attempts            bigint NOT NULL DEFAULT 0,
        input_tokens        bigint NOT NULL DEFAULT 0,
        output_tokens       bigint NOT NULL DEFAULT 0,
        audio_input_tokens  bigint NOT NULL DEFAULT 0,
        cost_micro_usd      bigint NOT NULL DEFAULT 0,
        PRIMARY KEY (day, storyteller)
    );

    CREATE TABLE file_hashes (
        source        bytea PRIMARY KEY,
        size          bigint NOT NULL,
        mtime_ms      bigint NOT NULL,
        content_hash  text NOT NULL,
        hashed_at     bigint NOT NULL
    );

    CREATE TABLE watched_folders (
        path       bytea PRIMARY KEY,
        choices    text NOT NULL,
        added_at   bigint NOT NULL,
        status     text,
        status_at  bigint
    );
    CREATE TABLE watched_sightings (
        folder        bytea NOT NULL,
        content_hash  text NOT NULL,
        source        bytea NOT NULL,
        seen_at       bigint NOT NULL,
        size          bigint NOT NULL DEFAULT -1,
        mtime_ms      bigint NOT NULL DEFAULT 0,
        PRIMARY KEY (folder, content_hash)
    );

    -- Live workers: each holds a session advisory lock on (its class, lock_key) for as long as
    -- its connection lives; a row whose lock nobody holds is a worker that has gone.
    CREATE TABLE workers (
        owner       text PRIMARY KEY,
        lock_key    integer GENERATED ALWAYS AS IDENTITY UNIQUE,
        machine     text NOT NULL,
        pid         integer NOT NULL,
        started_at  bigint NOT NULL,
        -- When its session last said it is there (the server's real time, ms).
        heartbeat_at bigint NOT NULL
    );

    -- What other processes need to hear of (appended, never updated): 'batch', 'job', 'gone',
    -- 'queue', 'storytellers', 'settings', 'folders'. `origin` is the store handle that wrote
    -- it, so a follower skips its own.
    CREATE TABLE changes (
        seq     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        origin  uuid NOT NULL,
        kind    text NOT NULL,
        ref     text NOT NULL,
        at      bigint NOT NULL
    );
    "#,
}];

/// The latest schema version this build knows.
pub const SCHEMA_VERSION: i32 = MIGRATIONS.len() as i32;

/// The advisory lock class of this queue's locks (an arbitrary constant: "ST", 0x5354), as a
/// literal for statements put together at compile time.
macro_rules! lock_class {
    () => {
        "21332"
    };
}

/// The advisory lock class of this queue's locks: `lock_class!()` as a number.
pub const LOCK_CLASS: i32 = 0x5354;

/// The advisory lock key under [`LOCK_CLASS`] that migrations take.
pub const MIGRATION_LOCK: i32 = 0;

#[cfg(test)]
mod tests {
    #[test]
    fn the_lock_class_literal_is_the_lock_class() {
        assert_eq!(lock_class!().parse::<i32>().ok(), Some(super::LOCK_CLASS));
    }
}
