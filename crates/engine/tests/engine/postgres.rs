//! The PostgreSQL job store on a real server started for the tests: the store contract (see
//! `contract`), and what is the server's own.

use crate::contract::Queue;
use crate::postgres_server::{execute, PostgresServer};
use std::sync::Arc;
use std::time::Duration;
use storyteller_engine::pool::{Pool, RunUntil};
use storyteller_engine::store::{JobStore, PostgresStore};
use storyteller_engine::storyteller::BoxFuture;
use storyteller_engine::{EventBus, JobState};

/// A fresh queue: a database of its own on the shared server.
struct PostgresQueue {
    url: String,
    bus: EventBus,
    store: Arc<dyn JobStore>,
}

async fn postgres_queue() -> Box<dyn Queue> {
    let url = PostgresServer::shared().await.fresh_database().await;
    let bus = EventBus::new();
    let store = PostgresStore::connect(&url, bus.clone()).await.unwrap();
    // Time stands still until the test moves it, as the SQLite queue's clock does.
    execute(&url, "UPDATE clock_skew SET frozen_ms = 1000000").await;
    Box::new(PostgresQueue {
        url,
        bus,
        store: Arc::new(store),
    })
}

impl Queue for PostgresQueue {
    fn store(&self) -> Arc<dyn JobStore> {
        self.store.clone()
    }

    fn bus(&self) -> &EventBus {
        &self.bus
    }

    fn another(&self) -> BoxFuture<'_, Arc<dyn JobStore>> {
        Box::pin(async move {
            let store = PostgresStore::connect(&self.url, EventBus::new())
                .await
                .unwrap();
            Arc::new(store) as Arc<dyn JobStore>
        })
    }

    fn advance(&self, by: Duration) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let sql = format!(
                "UPDATE clock_skew SET offset_ms = offset_ms + {}",
                by.as_millis()
            );
            execute(&self.url, &sql).await;
        })
    }

    fn check_intact(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            // Every index agrees with its table: a scan by index and one without it count alike.
            let (client, connection) = tokio_postgres::connect(&self.url, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(connection);
            let by_index: i64 = client
                .query_one("SELECT count(*) FROM jobs WHERE id IS NOT NULL", &[])
                .await
                .unwrap()
                .get(0);
            client
                .batch_execute("SET enable_indexscan = off; SET enable_bitmapscan = off")
                .await
                .unwrap();
            let by_table: i64 = client
                .query_one("SELECT count(*) FROM jobs", &[])
                .await
                .unwrap()
                .get(0);
            assert_eq!(by_index, by_table);
        })
    }
}

mod contract {
    crate::store_contract!(super::postgres_queue);
}

/// A pool on a queue of its own server, telling `jobs` with `teller`.
async fn pool_on(url: &str, teller: Arc<crate::fixtures::Scripted>) -> (PostgresStore, Pool) {
    let bus = EventBus::new();
    let store = PostgresStore::connect(url, bus.clone()).await.unwrap();
    let pool = Pool::new(
        Arc::new(store.clone()),
        crate::fixtures::registry_of(teller),
        bus,
        Arc::new(storyteller_engine::clock::SystemClock),
        crate::fixtures::fast_config(3),
    )
    .unwrap();
    (store, pool)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_restarted_mid_run_loses_nothing_and_the_run_goes_on() {
    let server = PostgresServer::start().await;
    let url = server.fresh_database().await;
    let teller = crate::fixtures::Scripted::sleeping(Duration::from_millis(300));
    let (store, pool) = pool_on(&url, teller.clone()).await;
    let added = store.enqueue(crate::fixtures::jobs("r", 24)).await.unwrap();
    assert_eq!(added.1.len(), 24);
    let run = {
        let pool = pool.clone();
        tokio::spawn(async move { pool.run(RunUntil::Empty, std::future::pending()).await })
    };
    // Some told, some running: then every connection drops at once.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while store.stats().await.unwrap().succeeded < 4 {
        assert!(std::time::Instant::now() < deadline, "nothing was told");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.restart().await;
    tokio::time::timeout(Duration::from_secs(90), run)
        .await
        .expect("the run did not go on after the restart")
        .unwrap()
        .unwrap();
    let jobs = store
        .list(storyteller_engine::store::JobFilter::default())
        .await
        .unwrap();
    assert_eq!(jobs.len(), 24);
    assert!(
        jobs.iter().all(|job| job.state == JobState::Succeeded),
        "{:?}",
        jobs.iter()
            .map(|j| (j.state, j.attempts, j.error.clone()))
            .collect::<Vec<_>>()
    );
    // Nothing told twice: a job interrupted by the restart is taken up again at most once
    // more, and the restart gave every worker time to open its session again.
    assert!(jobs.iter().all(|job| job.attempts <= 2), "{jobs:?}");
    assert!(
        teller.call_count() <= 24 + 3,
        "{} tellings of 24 videos",
        teller.call_count()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_process_hears_of_changes_by_notice_and_by_polling_alone() {
    use storyteller_engine::store::ForeignChanges;
    let url = PostgresServer::shared().await.fresh_database().await;
    for listen in [true, false] {
        let here = PostgresStore::connect(&url, EventBus::new()).await.unwrap();
        let there = PostgresStore::connect_with(&url, EventBus::new(), listen)
            .await
            .unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<usize>();
        let sink: storyteller_engine::store::ForeignSink =
            Arc::new(move |changes: &ForeignChanges| {
                let added: usize = changes.added.iter().map(|(_, jobs)| jobs.len()).sum();
                let _ = tx.send(added);
            });
        let _follower = there.follow_others(sink).await.unwrap();
        let mut heard = there.bus().subscribe();
        let started = std::time::Instant::now();
        here.enqueue(crate::fixtures::jobs(if listen { "n" } else { "p" }, 3))
            .await
            .unwrap();
        let added = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("the other process never heard")
            .unwrap();
        let took = started.elapsed();
        assert_eq!(added, 3);
        if listen {
            // Woken by the notice, not by the once-a-second read.
            assert!(took < Duration::from_millis(900), "took {took:?}");
        }
        let mut saw_added = false;
        while let Some(envelope) = heard.try_recv() {
            saw_added |= matches!(envelope.event, storyteller_engine::Event::JobsAdded { .. });
        }
        assert!(saw_added, "the other process's window was not told");
    }
}
