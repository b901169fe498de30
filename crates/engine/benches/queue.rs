//! The team queue against the embedded one, side by side; prints its figures. Run:
//! `cargo bench -p storyteller-engine --bench queue` (starts a PostgreSQL server of its own,
//! as the tests do; Debian's `postgresql` package).
//!
//! - claim+complete: no-op jobs told by 8 workers through the pool, on SQLite and on
//!   PostgreSQL with `synchronous_commit` on and off (medians of alternating rounds);
//! - enqueue: one batch of the same jobs;
//! - wake-up: a batch added by one process, heard by another's follower (LISTEN/NOTIFY):
//!   p50 and p95.
//!
//! `BENCH_QUICK=1` shrinks the runs for a smoke test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "../tests/engine/postgres_server.rs"]
mod postgres_server;

use common::Fixed;
use postgres_server::{execute, PostgresServer};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use storyteller_engine::clock::SystemClock;
use storyteller_engine::job::{NewJob, Priority, StorySpec};
use storyteller_engine::pool::{Pool, PoolConfig, RunUntil};
use storyteller_engine::store::{ForeignChanges, JobStore, PostgresStore, SqliteStore};
use storyteller_engine::storyteller::StorytellerRegistry;
use storyteller_engine::EventBus;

fn new_jobs(prefix: &str, n: usize) -> Vec<NewJob> {
    (0..n)
        .map(|i| NewJob {
            source: PathBuf::from(format!("/bench/{prefix}-{i}.mp4")),
            size: 1,
            mtime_ms: 0,
            content_hash: format!("{prefix}-{i:060}"),
            spec: StorySpec {
                storyteller: "bench".into(),
                model: "none".into(),
                preset: "narrative".into(),
                style: Default::default(),
            },
            priority: Priority::Normal,
            no_cache: false,
            again: false,
            watched_folder: None,
        })
        .collect()
}

/// Enqueues `jobs` in one batch, then tells them with 8 workers: (enqueue/s, claim+complete/s).
async fn round(store: Arc<dyn JobStore>, bus: EventBus, prefix: &str, jobs: usize) -> (f64, f64) {
    let started = Instant::now();
    store.enqueue(new_jobs(prefix, jobs)).await.unwrap();
    let enqueue = jobs as f64 / started.elapsed().as_secs_f64();
    let mut registry = StorytellerRegistry::new();
    registry.register(Arc::new(Fixed {
        delay: Duration::ZERO,
    }));
    let pool = Pool::new(
        store.clone(),
        registry,
        bus,
        Arc::new(SystemClock),
        PoolConfig {
            concurrency: 8,
            ..PoolConfig::default()
        },
    )
    .unwrap();
    let started = Instant::now();
    pool.run(RunUntil::Empty, std::future::pending())
        .await
        .unwrap();
    let told = jobs as f64 / started.elapsed().as_secs_f64();
    assert!(
        store.stats().await.unwrap().succeeded as usize >= jobs,
        "not every job was told"
    );
    (enqueue, told)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    values[values.len() / 2]
}

async fn wake_up(url: &str, samples: usize) {
    let here = PostgresStore::connect(url, EventBus::new()).await.unwrap();
    let there = PostgresStore::connect(url, EventBus::new()).await.unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Instant>();
    let sink: storyteller_engine::store::ForeignSink = Arc::new(move |changes: &ForeignChanges| {
        if !changes.added.is_empty() {
            let _ = tx.send(Instant::now());
        }
    });
    let _follower = there.follow_others(sink).await.unwrap();
    let mut latencies = Vec::with_capacity(samples);
    for i in 0..samples {
        // Spread the adds over the follower's poll cycle.
        tokio::time::sleep(Duration::from_millis((i % 7) as u64 * 13)).await;
        let committed = Instant::now();
        here.enqueue(new_jobs(&format!("wake{i}"), 1))
            .await
            .unwrap();
        let heard = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("not heard within 5 s")
            .unwrap();
        latencies.push(heard.duration_since(committed).as_secs_f64() * 1000.0);
    }
    latencies.sort_by(|a, b| a.total_cmp(b));
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    println!(
        "wake-up: a batch added by one process, heard by another's follower (PostgreSQL, \
         LISTEN/NOTIFY), {samples} adds: p50 {:.1} ms, p95 {:.1} ms (from the add's call, \
         its commit included)",
        at(0.5),
        at(0.95)
    );
}

fn main() {
    let quick = std::env::var_os("BENCH_QUICK").is_some();
    let (jobs, rounds, samples) = if quick { (300, 1, 10) } else { (5_000, 3, 200) };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let server = PostgresServer::start().await;
        let dir = tempfile::tempdir().unwrap();
        let mut figures: Vec<(&str, Vec<f64>, Vec<f64>)> = vec![
            ("SQLite (WAL, synchronous=NORMAL)", Vec::new(), Vec::new()),
            ("PostgreSQL, synchronous_commit on", Vec::new(), Vec::new()),
            ("PostgreSQL, synchronous_commit off", Vec::new(), Vec::new()),
        ];
        for r in 0..rounds {
            // Alternating, so drift on a noisy machine falls on every store alike.
            for (which, figure) in figures.iter_mut().enumerate() {
                let bus = EventBus::new();
                let store: Arc<dyn JobStore> = if which == 0 {
                    Arc::new(
                        SqliteStore::open(dir.path().join(format!("q{r}.db")), bus.clone())
                            .await
                            .unwrap(),
                    )
                } else {
                    let url = server.fresh_database().await;
                    let name = url.rsplit('/').next().unwrap().to_owned();
                    let on = if which == 1 { "on" } else { "off" };
                    execute(
                        &url,
                        &format!("ALTER DATABASE {name} SET synchronous_commit = {on}"),
                    )
                    .await;
                    Arc::new(PostgresStore::connect(&url, bus.clone()).await.unwrap())
                };
                let (enqueue, told) = round(store, bus, &format!("r{r}"), jobs).await;
                figure.1.push(enqueue);
                figure.2.push(told);
            }
        }
        for (name, enqueue, told) in figures {
            println!(
                "{name}: {jobs} no-op jobs, 8 workers, median of {rounds}: enqueue {:.0} \
                 jobs/s (one batch), claim+complete {:.0} jobs/s",
                median(enqueue),
                median(told)
            );
        }
        let url = server.fresh_database().await;
        wake_up(&url, samples).await;
        drop(server);
    });
}
