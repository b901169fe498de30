//! The task pool against real stores: bounds, fairness, contention, retries over real HTTP,
//! cancel, cache, shutdown and restart after a worker dies.

use crate::fixtures::{
    fast_config, http_storyteller, job, job_for, jobs, paused_store_in, pool_of, pool_with,
    store_in, EnqueuedJobs, Named, Scripted,
};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use storyteller_engine::job::{ErrorKind, Priority};
use storyteller_engine::pool::RunUntil;
use storyteller_engine::retry::RetryPolicy;
use storyteller_engine::store::{JobFilter, JobStore, SqliteStore};
use storyteller_engine::storyteller::Capacity;
use storyteller_engine::wire::PauseKind;
use storyteller_engine::{EventBus, JobState};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

async fn run_until_empty(pool: &storyteller_engine::pool::Pool) {
    run_until_empty_within(pool, Duration::from_secs(60)).await;
}

/// Under paused time the limit is tokio time: give timed tests room for their virtual minutes.
async fn run_until_empty_within(pool: &storyteller_engine::pool::Pool, limit: Duration) {
    tokio::time::timeout(limit, pool.run(RunUntil::Empty, std::future::pending()))
        .await
        .expect("pool did not empty the queue in time")
        .unwrap();
}

async fn all(store: &SqliteStore) -> Vec<storyteller_engine::Job> {
    store.list(JobFilter::default()).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn never_more_than_the_concurrency_limit_and_it_can_change_while_running() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path()).await;
    store.enqueue(jobs("j", 12)).await.unwrap().jobs();
    let teller = Scripted::sleeping(Duration::from_millis(80));
    let pool = pool_with(&store, teller.clone(), fast_config(3));
    run_until_empty(&pool).await;
    assert_eq!(teller.max_running.load(Ordering::SeqCst), 3);
    assert!(all(&store)
        .await
        .iter()
        .all(|j| j.state == JobState::Succeeded));

    // Raise the limit mid-run: it takes effect, and is never exceeded.
    store.enqueue(jobs("k", 20)).await.unwrap().jobs();
    let teller = Scripted::sleeping(Duration::from_millis(80));
    let pool = pool_with(&store, teller.clone(), fast_config(1));
    let resizer = {
        let pool = pool.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            pool.set_concurrency(5);
        })
    };
    run_until_empty(&pool).await;
    resizer.await.unwrap();
    assert_eq!(teller.max_running.load(Ordering::SeqCst), 5);
    assert_eq!(teller.call_count(), 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn priority_first_then_batches_take_turns() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path()).await;
    store.enqueue(jobs("big", 6)).await.unwrap().jobs();
    store.enqueue(jobs("one", 1)).await.unwrap().jobs();
    let mut urgent = jobs("urgent", 1);
    urgent[0].priority = Priority::High;
    store.enqueue(urgent).await.unwrap().jobs();
    let teller = Scripted::sleeping(Duration::from_millis(1));
    let pool = pool_with(&store, teller.clone(), fast_config(1));
    run_until_empty(&pool).await;
    assert_eq!(
        teller.order(),
        ["urgent0", "big0", "one0", "big1", "big2", "big3", "big4", "big5"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_pools_on_one_database_run_each_of_1000_jobs_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.db");
    // Two stores = two connections and writers, as two processes would have.
    let first = SqliteStore::open(&path, EventBus::new()).await.unwrap();
    let second = SqliteStore::open(&path, EventBus::new()).await.unwrap();
    for chunk in 0..10 {
        first
            .enqueue(jobs(&format!("c{chunk}-"), 100))
            .await
            .unwrap()
            .jobs();
    }
    let teller = Scripted::sleeping(Duration::ZERO);
    let pool_a = pool_with(&first, teller.clone(), fast_config(4));
    let pool_b = pool_with(&second, teller.clone(), fast_config(4));
    tokio::join!(run_until_empty(&pool_a), run_until_empty(&pool_b));

    let per_job = teller.per_job.lock().unwrap().clone();
    assert_eq!(per_job.len(), 1000);
    assert!(per_job.values().all(|&n| n == 1), "a job ran twice");
    let jobs = all(&first).await;
    assert!(jobs
        .iter()
        .all(|j| j.state == JobState::Succeeded && j.attempts == 1));
    assert_eq!(first.integrity_check().await.unwrap(), "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_retry_after_is_honoured() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "1"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_string("Told after waiting."))
        .with_priority(2)
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path()).await;
    let added = store.enqueue(vec![job("a.mp4", "a")]).await.unwrap().only();
    let teller = http_storyteller(server.uri());
    let pool = pool_with(&store, teller.clone(), fast_config(1));
    run_until_empty(&pool).await;

    let calls = teller.calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 2);
    let waited = calls[1].2 - calls[0].2;
    // Backoff alone would be ≤ 20 ms here; the server asked for a second.
    assert!(
        waited >= Duration::from_millis(1000),
        "retried after {waited:?}"
    );
    let done = store.get(added.id).await.unwrap();
    // A rate limit is no fault of the job: its attempt was refunded.
    assert_eq!((done.state, done.attempts), (JobState::Succeeded, 1));
    assert_eq!(done.story.as_deref(), Some("Told after waiting."));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_failures_retry_then_succeed_and_eventually_give_up() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503).set_body_string("overloaded"))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_string("Third time lucky."))
        .with_priority(2)
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path()).await;
    let added = store.enqueue(vec![job("a.mp4", "a")]).await.unwrap().only();
    let pool = pool_with(&store, http_storyteller(server.uri()), fast_config(1));
    run_until_empty(&pool).await;
    let done = store.get(added.id).await.unwrap();
    assert_eq!((done.state, done.attempts), (JobState::Succeeded, 3));

    // A server that never recovers: dead after max attempts, with the reason.
    let broken = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&broken)
        .await;
    let doomed = store.enqueue(vec![job("b.mp4", "b")]).await.unwrap().only();
    let mut config = fast_config(1);
    config.retry = RetryPolicy {
        base: Duration::from_millis(10),
        cap: Duration::from_millis(40),
        max_attempts: 3,
    };
    let pool = pool_with(&store, http_storyteller(broken.uri()), config);
    run_until_empty(&pool).await;
    let dead = store.get(doomed.id).await.unwrap();
    assert_eq!((dead.state, dead.attempts), (JobState::Dead, 3));
    let error = dead.error.unwrap();
    assert_eq!(error.kind, ErrorKind::Transient);
    assert!(
        error.message.starts_with("gave up after 3 attempts"),
        "{}",
        error.message
    );
    assert_eq!(broken.received_requests().await.unwrap().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_error_is_dead_at_once_and_the_queue_keeps_going() {
    let server = MockServer::start().await;
    Mock::given(wiremock::matchers::body_string_contains("bad.mp4"))
        .respond_with(
            ResponseTemplate::new(400)
                .set_body_string(r#"{"error":{"message":"the video is too long"}}"#),
        )
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_string("Fine."))
        .with_priority(10)
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path()).await;
    store
        .enqueue(vec![job("bad.mp4", "bad"), job("good.mp4", "good")])
        .await
        .unwrap()
        .jobs();
    let pool = pool_with(&store, http_storyteller(server.uri()), fast_config(2));
    run_until_empty(&pool).await;
    let jobs = all(&store).await;
    let bad = &jobs[0];
    assert_eq!((bad.state, bad.attempts), (JobState::Dead, 1));
    let error = bad.error.as_ref().unwrap();
    assert_eq!(error.kind, ErrorKind::Permanent);
    assert_eq!(
        error.message,
        "Test provider rejected the request (HTTP 400): the video is too long"
    );
    assert_eq!(jobs[1].state, JobState::Succeeded);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auth_error_pauses_that_storyteller_alone_and_the_others_go_on() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(401).set_body_string(r#"{"error":"invalid api key"}"#))
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path()).await;
    store.enqueue(jobs("j", 5)).await.unwrap().jobs();
    let offline: Vec<_> = (0..3)
        .map(|i| job_for("local", &format!("local{i}.mp4"), &format!("local-{i}")))
        .collect();
    store.enqueue(offline).await.unwrap().jobs();
    let local = Named::new(
        "local",
        Capacity::UNLIMITED,
        Scripted::sleeping(Duration::from_millis(1)),
    );
    let pool = pool_of(
        &store,
        vec![http_storyteller(server.uri()), local.clone()],
        fast_config(1),
    );
    run_until_empty(&pool).await;

    let stats = store.stats().await.unwrap();
    assert_eq!(stats.paused, None, "the queue itself goes on");
    assert_eq!(stats.succeeded, 3, "the other storyteller's jobs all ran");
    assert_eq!(local.inner.call_count(), 3);
    let [pause] = stats.paused_storytellers.as_slice() else {
        panic!("{stats:?}");
    };
    assert_eq!(pause.storyteller, "scripted");
    assert_eq!(pause.kind, PauseKind::Auth);
    assert_eq!(pause.queued, 5, "no job may fail for a bad key");
    assert_eq!(pause.until, None);
    assert!(
        pause.reason.contains("refused the API key (HTTP 401)"),
        "{pause:?}"
    );
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
    let keyed: Vec<_> = all(&store)
        .await
        .into_iter()
        .filter(|j| j.storyteller == "scripted")
        .collect();
    assert!(
        keyed
            .iter()
            .all(|j| j.attempts == 0 && j.state == JobState::Queued),
        "the attempt is refunded"
    );
    assert_eq!(keyed[0].error.as_ref().unwrap().kind, ErrorKind::Auth);

    // Fix the key (here: the server) and let the storyteller go on: everything runs.
    server.reset().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .mount(&server)
        .await;
    store
        .set_storyteller_paused("scripted".into(), None)
        .await
        .unwrap();
    run_until_empty(&pool).await;
    assert!(all(&store)
        .await
        .iter()
        .all(|j| j.state == JobState::Succeeded));
    assert!(store.stats().await.unwrap().paused_storytellers.is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_storyteller_at_its_pace_never_exceeds_it_and_the_jobs_behind_it_go_first() {
    let dir = tempfile::tempdir().unwrap();
    let store = paused_store_in(dir.path()).await;
    let limited: Vec<_> = (0..25)
        .map(|i| job_for("limited", &format!("remote{i}.mp4"), &format!("remote-{i}")))
        .collect();
    store.enqueue(limited).await.unwrap().jobs();
    store
        .enqueue(vec![job_for("local", "local.mp4", "local")])
        .await
        .unwrap()
        .jobs();
    // A service answering in 2 s that takes 10 requests a minute.
    let remote = Named::new(
        "limited",
        Capacity {
            concurrent: None,
            per_minute: Some(10),
            per_day: None,
        },
        Scripted::sleeping(Duration::from_secs(2)),
    );
    let local = Named::new(
        "local",
        Capacity::UNLIMITED,
        Scripted::sleeping(Duration::from_millis(10)),
    );
    let started = tokio::time::Instant::now();
    let pool = pool_of(&store, vec![remote.clone(), local.clone()], fast_config(16));
    run_until_empty_within(&pool, Duration::from_secs(600)).await;
    let makespan = started.elapsed();

    let starts: Vec<Duration> = remote
        .inner
        .calls
        .lock()
        .unwrap()
        .iter()
        .map(|(_, _, at)| at.duration_since(started))
        .collect();
    assert_eq!(starts.len(), 25, "each job once, none refused");
    for (i, start) in starts.iter().enumerate() {
        let within_a_minute = starts[i..]
            .iter()
            .filter(|later| **later < *start + Duration::from_secs(60))
            .count();
        assert!(
            within_a_minute <= 10,
            "{within_a_minute} starts from {start:?}"
        );
    }
    // 25 at 10 a minute: 10 at once, 10 a minute on, 5 two minutes on, then 2 s to answer.
    assert!(
        makespan >= Duration::from_secs(122) && makespan < Duration::from_secs(125),
        "{makespan:?}"
    );
    // The job behind them was not held up by them.
    let local_start = local.inner.calls.lock().unwrap()[0]
        .2
        .duration_since(started);
    assert!(local_start < Duration::from_secs(1), "{local_start:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_running_job_stops_it_promptly_and_kills_its_child_process() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path()).await;
    let pid_file = dir.path().join("child.pid");
    let pid_path = pid_file.clone();
    let teller = Scripted::new(move |request, _| {
        let pid_path = pid_path.clone();
        let hangs = request.source.ends_with("long.mp4");
        Box::pin(async move {
            if !hangs {
                return Ok("quick".into());
            }
            let mut child = tokio::process::Command::new("sleep")
                .arg("60")
                .kill_on_drop(true)
                .spawn()
                .unwrap();
            std::fs::write(&pid_path, child.id().unwrap().to_string()).unwrap();
            let _ = child.wait().await;
            Ok("never".into())
        })
    });
    let target = store
        .enqueue(vec![job("long.mp4", "long")])
        .await
        .unwrap()
        .only();
    store.enqueue(jobs("after", 2)).await.unwrap().jobs();
    let pool = pool_with(&store, teller.clone(), fast_config(1));
    let runner = {
        let pool = pool.clone();
        tokio::spawn(async move { pool.run(RunUntil::Shutdown, std::future::pending()).await })
    };
    let started = Instant::now();
    while !pid_file.exists() {
        assert!(started.elapsed() < Duration::from_secs(10), "never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let pid: u32 = std::fs::read_to_string(&pid_file).unwrap().parse().unwrap();
    let mut events = store.bus().subscribe();
    let cancelled_at = Instant::now();
    let job = pool.cancel(target.id).await.unwrap();
    assert_eq!(job.state, JobState::Cancelled);
    // The child is gone promptly.
    while std::path::Path::new(&format!("/proc/{pid}")).exists() {
        // A killed child may linger as a zombie until reaped; its state says so.
        let status = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        if status.contains(") Z") {
            break;
        }
        assert!(
            cancelled_at.elapsed() < Duration::from_secs(2),
            "child still running"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The queue moves on to the next jobs.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let stats = store.stats().await.unwrap();
        if stats.succeeded == 2 {
            break;
        }
        assert!(Instant::now() < deadline, "queue stalled after cancel");
        let _ = tokio::time::timeout(Duration::from_millis(200), events.recv()).await;
    }
    runner.abort();
    let job = store.get(target.id).await.unwrap();
    assert_eq!((job.state, job.story), (JobState::Cancelled, None));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cache_hit_skips_the_storyteller() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path()).await;
    store
        .enqueue(vec![job("a.mp4", "same")])
        .await
        .unwrap()
        .jobs();
    let teller = Scripted::sleeping(Duration::from_millis(5));
    let pool = pool_with(&store, teller.clone(), fast_config(2));
    run_until_empty(&pool).await;
    let copy = store
        .enqueue(vec![job("copy.mp4", "same")])
        .await
        .unwrap()
        .only();
    // Two twins queued together also cost one call.
    store
        .enqueue(vec![job("t1.mp4", "twin"), job("t2.mp4", "twin")])
        .await
        .unwrap()
        .jobs();
    run_until_empty(&pool).await;
    assert!(copy.cached);
    assert_eq!(teller.call_count(), 2);
    let jobs = all(&store).await;
    assert!(jobs.iter().all(|j| j.state == JobState::Succeeded));
    assert_eq!(jobs.iter().filter(|j| j.cached).count(), 2);
    assert_eq!(store.stats().await.unwrap().cache_hits, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clean_shutdown_puts_running_jobs_back_without_losing_an_attempt() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path()).await;
    store.enqueue(jobs("j", 5)).await.unwrap().jobs();
    let teller = Scripted::sleeping(Duration::from_secs(60));
    let pool = pool_with(&store, teller.clone(), fast_config(3));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let runner = {
        let pool = pool.clone();
        tokio::spawn(async move {
            pool.run(RunUntil::Shutdown, async {
                let _ = stopped.await;
            })
            .await
        })
    };
    while teller.running.load(Ordering::SeqCst) < 3 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), runner)
        .await
        .expect("shutdown hung")
        .unwrap()
        .unwrap();
    let jobs = all(&store).await;
    assert!(jobs
        .iter()
        .all(|j| j.state == JobState::Queued && j.attempts == 0));
    assert!(jobs.iter().all(|j| j.lease_owner.is_none()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_pool_takes_over_a_dead_pools_jobs_without_waiting_for_the_lease() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path()).await;
    store.enqueue(jobs("j", 4)).await.unwrap().jobs();
    let mut config = fast_config(2);
    config.lease = Duration::from_secs(120);
    let stuck = Scripted::sleeping(Duration::from_secs(600));
    let doomed = pool_with(&store, stuck.clone(), config.clone());
    let runner = {
        let doomed = doomed.clone();
        tokio::spawn(async move { doomed.run(RunUntil::Shutdown, std::future::pending()).await })
    };
    while stuck.running.load(Ordering::SeqCst) < 2 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // "Kill" it: no clean shutdown, leases left held for two minutes, lock file released.
    runner.abort();
    let _ = runner.await;
    drop(doomed);
    assert_eq!(store.stats().await.unwrap().running, 2);

    let teller = Scripted::sleeping(Duration::from_millis(5));
    let heir = pool_with(&store, teller.clone(), config);
    let started = Instant::now();
    run_until_empty(&heir).await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "waited for the lease"
    );
    let jobs = all(&store).await;
    assert!(
        jobs.iter().all(|j| j.state == JobState::Succeeded),
        "{:?}",
        jobs.iter()
            .map(|j| (j.state, j.attempts, j.lease_owner.clone(), j.error.clone()))
            .collect::<Vec<_>>()
    );
    assert_eq!(teller.call_count(), 4);
    assert_eq!(jobs.iter().filter(|j| j.attempts == 2).count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_storyteller_fails_its_job_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path()).await;
    store
        .enqueue(vec![crate::fixtures::job_for("gemini", "a.mp4", "a")])
        .await
        .unwrap()
        .jobs();
    let pool = pool_with(&store, Scripted::sleeping(Duration::ZERO), fast_config(1));
    run_until_empty(&pool).await;
    let job = &all(&store).await[0];
    assert_eq!(job.state, JobState::Dead);
    assert!(job
        .error
        .as_ref()
        .unwrap()
        .message
        .contains("no storyteller called 'gemini'"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_from_another_process_stops_the_job_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.db");
    // Two stores = two connections and writers, as two processes have.
    let here = SqliteStore::open(&path, EventBus::new()).await.unwrap();
    let elsewhere = SqliteStore::open(&path, EventBus::new()).await.unwrap();
    let target = here
        .enqueue(vec![job("long.mp4", "long")])
        .await
        .unwrap()
        .only();
    let teller = Scripted::sleeping(Duration::from_secs(600));
    let mut config = fast_config(1);
    // A heartbeat far away: only hearing of the other process's change can explain a stop.
    config.heartbeat = Duration::from_secs(60);
    config.reclaim_every = Duration::from_secs(60);
    config.lease = Duration::from_secs(120);
    let pool = pool_with(&here, teller.clone(), config);
    let follower = {
        let pool = pool.clone();
        here.follow_others(Arc::new(
            move |changes: &storyteller_engine::store::ForeignChanges| pool.foreign_change(changes),
        ))
        .await
        .unwrap()
    };
    let runner = {
        let pool = pool.clone();
        tokio::spawn(async move { pool.run(RunUntil::Empty, std::future::pending()).await })
    };
    while teller.running.load(Ordering::SeqCst) == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut events = here.bus().subscribe();
    let cancelled_at = Instant::now();
    elsewhere.cancel(target.id).await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), runner)
        .await
        .expect("the cancelled job kept running")
        .unwrap()
        .unwrap();
    assert!(
        cancelled_at.elapsed() < Duration::from_secs(1),
        "stopped after {:?}",
        cancelled_at.elapsed()
    );
    assert_eq!(teller.running.load(Ordering::SeqCst), 0);
    let job = here.get(target.id).await.unwrap();
    assert_eq!(job.state, JobState::Cancelled);
    // This process's subscribers hear of it, though another process made the change.
    let mut heard = false;
    while let Some(envelope) = events.try_recv() {
        heard |= matches!(envelope.event, storyteller_engine::Event::JobFinished { job_id, state: JobState::Cancelled, .. } if job_id == target.id);
    }
    assert!(heard, "no event for the job cancelled elsewhere");
    drop(follower);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_store_does_not_stop_the_pool() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path()).await;
    store.enqueue(jobs("j", 3)).await.unwrap().jobs();
    let flaky = Arc::new(crate::fixtures::FlakyStore {
        inner: store.clone(),
        failures: std::sync::atomic::AtomicUsize::new(2),
    });
    let mut registry = storyteller_engine::storyteller::StorytellerRegistry::new();
    registry.register(Scripted::sleeping(Duration::from_millis(5)));
    let pool = storyteller_engine::pool::Pool::new(
        flaky.clone(),
        registry,
        store.bus().clone(),
        Arc::new(storyteller_engine::clock::SystemClock),
        fast_config(2),
    )
    .unwrap();
    let started = Instant::now();
    run_until_empty(&pool).await;
    assert_eq!(
        flaky.failures.load(Ordering::SeqCst),
        0,
        "claims never failed"
    );
    // Two failed claims, a second's pause after each.
    assert!(started.elapsed() >= Duration::from_secs(2));
    assert!(all(&store)
        .await
        .iter()
        .all(|j| j.state == JobState::Succeeded));
}

// Timing under paused time: the store, the pool and the storyteller all read tokio's clock, so
// seconds of backoff and leases pass at once, and nothing passes only because of a real sleep.

#[tokio::test(start_paused = true)]
async fn under_paused_time_retry_after_is_waited_out_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let store = crate::fixtures::paused_store_in(dir.path()).await;
    let added = store.enqueue(vec![job("a.mp4", "a")]).await.unwrap().only();
    let teller = Scripted::new(|_, call| {
        Box::pin(async move {
            if call == 1 {
                Err(storyteller_engine::storyteller::StoryError::Transient {
                    message: "slow down".into(),
                    retry_after: Some(Duration::from_secs(90)),
                })
            } else {
                Ok("Told after the wait.".into())
            }
        })
    });
    let pool = pool_with(&store, teller.clone(), fast_config(1));
    let real = Instant::now();
    run_until_empty_within(&pool, Duration::from_secs(3600)).await;
    let calls = teller.calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 2);
    let waited = calls[1].2 - calls[0].2;
    assert!(
        (Duration::from_secs(90)..Duration::from_secs(92)).contains(&waited),
        "retried after {waited:?} of tokio time"
    );
    assert!(
        real.elapsed() < Duration::from_secs(10),
        "it slept for real"
    );
    let done = store.get(added.id).await.unwrap();
    assert_eq!((done.state, done.attempts), (JobState::Succeeded, 2));
}

#[tokio::test(start_paused = true)]
async fn under_paused_time_a_lease_left_by_a_vanished_worker_expires_and_the_job_runs_again() {
    let dir = tempfile::tempdir().unwrap();
    let store = crate::fixtures::paused_store_in(dir.path()).await;
    store.enqueue(jobs("j", 1)).await.unwrap();
    // A worker that took the job and vanished without a lock file: only its lease tells.
    let lease = Duration::from_secs(120);
    let taken = store.claim("ghost", 1, lease).await.unwrap();
    assert_eq!(taken.len(), 1);
    let teller = Scripted::sleeping(Duration::from_secs(3));
    let mut config = fast_config(1);
    config.reclaim_every = Duration::from_secs(1);
    let pool = pool_with(&store, teller.clone(), config);
    let started = tokio::time::Instant::now();
    let real = Instant::now();
    // Nothing is queued (the job runs "elsewhere"): run until the job has finished here.
    let mut events = store.bus().subscribe();
    let finished = async move {
        while let Some(envelope) = events.recv().await {
            if matches!(
                envelope.event,
                storyteller_engine::Event::JobFinished { .. }
            ) {
                return;
            }
        }
    };
    tokio::time::timeout(
        Duration::from_secs(3600),
        pool.run(RunUntil::Shutdown, finished),
    )
    .await
    .expect("the job never ran again")
    .unwrap();
    let took = started.elapsed();
    assert!(
        took >= lease && took < lease + Duration::from_secs(10),
        "reclaimed after {took:?} of tokio time"
    );
    assert!(
        real.elapsed() < Duration::from_secs(10),
        "it slept for real"
    );
    let job = &all(&store).await[0];
    assert_eq!((job.state, job.attempts), (JobState::Succeeded, 2));
    assert_eq!(teller.call_count(), 1);
}

#[tokio::test(start_paused = true)]
async fn under_paused_time_three_workers_tell_thirty_one_minute_videos_in_ten_minutes() {
    let dir = tempfile::tempdir().unwrap();
    let store = crate::fixtures::paused_store_in(dir.path()).await;
    store.enqueue(jobs("m", 30)).await.unwrap();
    let teller = Scripted::sleeping(Duration::from_secs(60));
    let pool = pool_with(&store, teller.clone(), fast_config(3));
    let started = tokio::time::Instant::now();
    run_until_empty_within(&pool, Duration::from_secs(3600)).await;
    let took = started.elapsed();
    assert_eq!(teller.max_running.load(Ordering::SeqCst), 3);
    assert!(
        took >= Duration::from_secs(600) && took < Duration::from_secs(606),
        "makespan {took:?} of tokio time against the ideal 600 s"
    );
}

/// Spends tokens on a model of a priced family, then fails: for the books.
struct SpendsThenFails;

impl storyteller_engine::storyteller::Storyteller for SpendsThenFails {
    fn name(&self) -> &str {
        "gemini"
    }
    fn default_model(&self) -> &str {
        "gemini-flash-latest"
    }
    fn presets(&self) -> &[&'static str] {
        &["narrative"]
    }
    fn tell<'a>(
        &'a self,
        _request: &'a storyteller_engine::storyteller::StoryRequest,
        sink: &'a mut storyteller_engine::storyteller::StorySink,
    ) -> storyteller_engine::storyteller::BoxFuture<
        'a,
        Result<storyteller_engine::job::Usage, storyteller_engine::storyteller::StoryError>,
    > {
        Box::pin(async move {
            sink.write("The stream began");
            sink.usage(storyteller_engine::job::Usage {
                input_tokens: 9_120,
                audio_input_tokens: 960,
                output_tokens: 412,
                cost_micro_usd: 0,
            });
            Err(storyteller_engine::storyteller::StoryError::permanent(
                "the answer was cut off by a safety filter",
            ))
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_failed_attempt_spent_is_priced_and_booked_with_its_job_and_day() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path()).await;
    let added = store
        .enqueue(vec![job_for("gemini", "a.mp4", "a")])
        .await
        .unwrap()
        .only();
    let mut events = store.bus().subscribe();
    let pool = pool_of(&store, vec![Arc::new(SpendsThenFails)], fast_config(1));
    run_until_empty(&pool).await;

    let job = store.get(added.id).await.unwrap();
    assert_eq!(job.state, JobState::Dead);
    // Priced as a Flash model: 8,160 × $0.30 + 960 sound × $1.00 + 412 × $2.50 per million.
    assert_eq!(
        (
            job.usage.input_tokens,
            job.usage.output_tokens,
            job.usage.cost_micro_usd
        ),
        (9_120, 412, 4_438)
    );
    let days = store.spending("1970-01-01".into()).await.unwrap();
    let [day] = days.as_slice() else {
        panic!("{days:?}");
    };
    assert_eq!(day.storyteller, "gemini");
    assert_eq!((day.attempts, day.usage.cost_micro_usd), (1, 4_438));
    let mut spent = None;
    while let Some(envelope) = events.try_recv() {
        if let storyteller_engine::Event::JobSpent { job_id, usage } = envelope.event {
            spent = Some((job_id, usage.cost_usd));
        }
    }
    assert_eq!(spent, Some((added.id, 0.004438)));
}
