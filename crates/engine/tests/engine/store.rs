//! The SQLite job store on real database files: the store contract (see `contract`), and
//! what is SQLite's own (schema versions, migrations of old files, what the file holds).

use crate::contract::{batch_jobs, found, succeeded, Queue};
use crate::fixtures::{job, store_in, EnqueuedJobs};
use std::sync::Arc;
use std::time::Duration;
use storyteller_engine::clock::ManualClock;
use storyteller_engine::store::{JobStore, SqliteStore};
use storyteller_engine::storyteller::BoxFuture;
use storyteller_engine::EventBus;

const LEASE: Duration = Duration::from_secs(30);

/// A fresh SQLite queue: a database file in its own folder, on a clock the test moves.
struct SqliteQueue {
    dir: tempfile::TempDir,
    clock: Arc<ManualClock>,
    bus: EventBus,
    store: Arc<dyn JobStore>,
}

async fn sqlite_queue() -> Box<dyn Queue> {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_000_000));
    let bus = EventBus::new();
    let store =
        SqliteStore::open_with_clock(dir.path().join("jobs.db"), bus.clone(), clock.clone())
            .await
            .unwrap();
    Box::new(SqliteQueue {
        dir,
        clock,
        bus,
        store: Arc::new(store),
    })
}

impl Queue for SqliteQueue {
    fn store(&self) -> Arc<dyn JobStore> {
        self.store.clone()
    }

    fn bus(&self) -> &EventBus {
        &self.bus
    }

    fn another(&self) -> BoxFuture<'_, Arc<dyn JobStore>> {
        Box::pin(async move {
            let store = SqliteStore::open_with_clock(
                self.dir.path().join("jobs.db"),
                EventBus::new(),
                self.clock.clone(),
            )
            .await
            .unwrap();
            Arc::new(store) as Arc<dyn JobStore>
        })
    }

    fn advance(&self, by: Duration) -> BoxFuture<'_, ()> {
        self.clock.advance(by);
        Box::pin(async {})
    }

    fn check_intact(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let store = SqliteStore::open(self.dir.path().join("jobs.db"), EventBus::new())
                .await
                .unwrap();
            assert_eq!(store.integrity_check().await.unwrap(), "ok");
        })
    }
}

mod contract {
    crate::store_contract!(super::sqlite_queue);
}

#[tokio::test]
async fn a_finished_jobs_checkpoint_is_gone_from_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path()).await;
    let a = store.enqueue(vec![job("a.mp4", "a")]).await.unwrap().only();
    store.claim("w1", 1, LEASE).await.unwrap();
    store
        .save_checkpoint(
            a.id,
            "w1",
            serde_json::json!({ "probe": { "durationSecs": 1.5 } }),
        )
        .await
        .unwrap();
    store.finish(a.id, "w1", succeeded("told")).await.unwrap();
    let conn = rusqlite::Connection::open(dir.path().join("jobs.db")).unwrap();
    let left: Option<String> = conn
        .query_row(
            "SELECT checkpoint FROM jobs WHERE id = ?1",
            [a.id.to_string()],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(left, None, "a finished job's checkpoint outlived it");
}

#[tokio::test]
async fn a_database_that_needs_a_newer_build_is_refused_naming_both_versions() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.db");
    drop(SqliteStore::open(&path, EventBus::new()).await.unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    conn.execute("UPDATE meta SET value = 99 WHERE key = 'schema_needs'", [])
        .unwrap();
    drop(conn);
    let error = SqliteStore::open(&path, EventBus::new()).await.unwrap_err();
    assert_eq!(error.code(), "schema_too_new");
    let message = error.to_string();
    assert!(message.contains("update Storyteller"), "{message}");
    assert!(message.contains("version 99"), "{message}");
    assert!(
        message.contains(&format!(
            "up to {}",
            storyteller_engine::store::schema::SCHEMA_VERSION
        )),
        "{message}"
    );
}

#[tokio::test]
async fn an_older_build_keeps_working_on_a_database_a_newer_build_added_to() {
    use storyteller_engine::store::schema::{self, Migration, MIGRATIONS};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.db");
    // A newer build: one more, additive, migration (a table and a column older builds ignore).
    let mut newer: Vec<Migration> = MIGRATIONS.to_vec();
    newer.push(Migration {
        needs: 1,
        sql: "CREATE TABLE labels (job_id TEXT, label TEXT); \
              ALTER TABLE jobs ADD COLUMN rating INTEGER;",
    });
    {
        let mut conn = rusqlite::Connection::open(&path).unwrap();
        schema::configure(&conn).unwrap();
        schema::migrate_with(&mut conn, &path, &newer).unwrap();
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, schema::SCHEMA_VERSION + 1);
    }
    // This build opens it, and two processes (this build and the newer one) share it.
    let older = SqliteStore::open(&path, EventBus::new()).await.unwrap();
    let queued = older.enqueue(vec![job("a.mp4", "a")]).await.unwrap().only();
    let claimed = older.claim("w", 1, LEASE).await.unwrap();
    assert_eq!(claimed[0].id, queued.id);
    older
        .finish(queued.id, "w", succeeded("told"))
        .await
        .unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    let (state, rating): (String, Option<i64>) = conn
        .query_row(
            "SELECT state, rating FROM jobs WHERE id = ?1",
            [queued.id.to_string()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((state.as_str(), rating), ("succeeded", None));
    // Opening again does not try to migrate backwards or forwards.
    drop(older);
    let again = SqliteStore::open(&path, EventBus::new()).await.unwrap();
    assert_eq!(again.stats().await.unwrap().succeeded, 1);
}

#[tokio::test]
async fn a_database_from_before_batch_ranges_keeps_its_batches_and_cache() {
    use storyteller_engine::store::schema::{self, MIGRATIONS};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.db");
    // A database as the build before migration 3 left it: two batches, one story told.
    {
        let mut conn = rusqlite::Connection::open(&path).unwrap();
        schema::configure(&conn).unwrap();
        schema::migrate_with(&mut conn, &path, &MIGRATIONS[..2]).unwrap();
        conn.execute_batch(
            "INSERT INTO batches (id, created_at) VALUES
                 ('0190a3c0-0000-7000-8000-000000000001', 1),
                 ('0190a3c0-0000-7000-8000-000000000002', 2);
             INSERT INTO jobs (id, source, size, mtime_ms, content_hash, storyteller, model,
                 preset, cache_key, priority, batch_id, fair_key, state, stage, story,
                 created_at, updated_at)
             VALUES
                 ('0190a3c0-0000-7000-8000-00000000000a', '/old/a.mp4', 1, 0, 'ha', 'scripted',
                  'm', 'p', 'ka', 1, '0190a3c0-0000-7000-8000-000000000001', 1, 'succeeded',
                  'done', 'an old story', 1, 1),
                 ('0190a3c0-0000-7000-8000-00000000000b', '/old/b.mp4', 1, 0, 'hb', 'scripted',
                  'm', 'p', 'kb', 1, '0190a3c0-0000-7000-8000-000000000002', 2, 'queued',
                  'waiting', NULL, 2, 2),
                 ('0190a3c0-0000-7000-8000-00000000000c', '/old/c.mp4', 1, 0, 'hc', 'scripted',
                  'm', 'p', 'kc', 1, '0190a3c0-0000-7000-8000-000000000001', 3, 'queued',
                  'waiting', NULL, 3, 3);",
        )
        .unwrap();
    }
    let store = SqliteStore::open(&path, EventBus::new()).await.unwrap();
    let first = "0190a3c0-0000-7000-8000-000000000001".parse().unwrap();
    let second = "0190a3c0-0000-7000-8000-000000000002".parse().unwrap();
    assert_eq!(
        batch_jobs(&store, first).await,
        ["/old/a.mp4", "/old/c.mp4"]
    );
    assert_eq!(batch_jobs(&store, second).await, ["/old/b.mp4"]);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let indexes: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'jobs' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(
        !indexes
            .iter()
            .any(|name| name == "jobs_batch" || name == "jobs_cache"),
        "{indexes:?}"
    );
    // The old story still serves a new copy of its video from the cache.
    let mut copy = job("copy.mp4", "x");
    copy.content_hash = "ha".into();
    copy.spec.model = "m".into();
    copy.spec.preset = "p".into();
    let cache_key_matches = copy.spec.cache_key("ha");
    conn.execute(
        "UPDATE jobs SET cache_key = ?1 WHERE source = '/old/a.mp4'",
        [&cache_key_matches],
    )
    .unwrap();
    let told = store.enqueue(vec![copy]).await.unwrap().only();
    assert_eq!(told.story.as_deref(), Some("an old story"));
}

#[tokio::test]
async fn stories_told_before_the_search_index_existed_are_found() {
    use storyteller_engine::store::schema::{self, MIGRATIONS};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.db");
    {
        let mut conn = rusqlite::Connection::open(&path).unwrap();
        schema::configure(&conn).unwrap();
        schema::migrate_with(&mut conn, &path, &MIGRATIONS[..6]).unwrap();
        conn.execute_batch(
            "INSERT INTO batches (id, created_at, first_seq, last_seq)
                 VALUES ('0190a3c0-0000-7000-8000-000000000001', 1, 1, 2);
             INSERT INTO jobs (id, source, size, mtime_ms, content_hash, storyteller, model,
                 preset, cache_key, priority, batch_id, fair_key, state, stage, story,
                 created_at, updated_at)
             VALUES
                 ('0190a3c0-0000-7000-8000-00000000000a', '/old/Tide pools.mp4', 1, 0, 'ha',
                  'scripted', 'm', 'p', 'ka', 1, '0190a3c0-0000-7000-8000-000000000001', 1,
                  'succeeded', 'done', 'Crabs scuttle between rocks.', 1, 1),
                 ('0190a3c0-0000-7000-8000-00000000000b', 'C:\\clips\\Snow.mp4', 1, 0, 'hb',
                  'scripted', 'm', 'p', 'kb', 1, '0190a3c0-0000-7000-8000-000000000001', 2,
                  'succeeded', 'done', 'Flakes drift past a window.', 2, 2);",
        )
        .unwrap();
    }
    let store = SqliteStore::open(&path, EventBus::new()).await.unwrap();
    assert_eq!(found(&store, "crab").await, ["Tide pools.mp4"]);
    assert_eq!(found(&store, "tide").await, ["Tide pools.mp4"]);
    // The name is what follows the last separator: the folder is not searched.
    assert!(found(&store, "old").await.is_empty());
    assert!(found(&store, "clips").await.is_empty());
    assert_eq!(found(&store, "snow").await.len(), 1);
}
