//! Engine benchmarks; prints its figures. Run: `cargo bench -p storyteller-engine --bench engine`.
//!
//! - overhead: 10,000 no-op jobs in one batch at concurrency 8 (enqueue/s, claim+complete/s),
//!   and the same for a 100,000-job backlog (per-job cost must not grow with the table);
//! - notice: how long a change committed by one process takes to reach another's subscriber
//!   (two engines on one home are two processes to each other: two connections, two writers);
//! - makespan: 30 jobs of a 1 s storyteller at concurrency 3 against the ideal 10 s;
//! - restart: a database holding 100,000 finished jobs, from open to the first claim;
//! - kill: from `storyteller run` killed with SIGKILL mid-job to a new run telling the killed
//!   jobs again (needs the CLI, as memory does);
//! - search: the history searched as one types, over 10,000 told stories (each query through
//!   `Engine::search`, snippets included; target < 50 ms);
//! - memory: peak RSS of `storyteller run` over 100,000 queued jobs (needs the release CLI:
//!   `cargo build --release -p storyteller-cli`, or `STORYTELLER_BIN`; the smoke run also takes
//!   the debug build).
//!
//! Every database is a real WAL file on disk. `BENCH_QUICK=1` shrinks the runs for a smoke test;
//! `BENCH_ONLY=overhead,notice` runs only the parts named (`enqueue` alone: one batch of
//! `BENCH_JOBS` jobs, 10,000 by default, and nothing else, for instruction counts under
//! callgrind, which these noisy machines need).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::{wanted, Fixed};

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use storyteller_engine::clock::SystemClock;
use storyteller_engine::job::{NewJob, Priority, StorySpec, Usage};
use storyteller_engine::pool::{Pool, PoolConfig, RunUntil};
use storyteller_engine::store::Outcome;
use storyteller_engine::store::{Enqueued, JobStore, SqliteStore};
use storyteller_engine::storyteller::StorytellerRegistry;
use storyteller_engine::wire::{AddOptions, SearchQuery};
use storyteller_engine::{Engine, EngineOptions, Event, EventBus};

/// Jobs `first..first + n`: each a different file, so none is taken for one already added.
fn new_jobs_from(first: usize, n: usize, storyteller: &str) -> Vec<NewJob> {
    (first..first + n)
        .map(|i| NewJob {
            source: PathBuf::from(format!("/bench/video-{i}.mp4")),
            size: 1,
            mtime_ms: 0,
            content_hash: format!("{i:064x}"),
            spec: StorySpec {
                storyteller: storyteller.into(),
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

fn new_jobs(n: usize, storyteller: &str) -> Vec<NewJob> {
    new_jobs_from(0, n, storyteller)
}

fn pool(store: &SqliteStore, delay: Duration, concurrency: usize) -> Pool {
    let mut registry = StorytellerRegistry::new();
    registry.register(Arc::new(Fixed { delay }));
    Pool::new(
        Arc::new(store.clone()),
        registry,
        store.bus().clone(),
        Arc::new(SystemClock),
        PoolConfig {
            concurrency,
            ..PoolConfig::default()
        },
    )
    .unwrap()
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    values[values.len() / 2]
}

async fn overhead(dir: &Path, jobs: usize, rounds: usize) {
    let mut enqueue_rates = Vec::new();
    let mut run_rates = Vec::new();
    for round in 0..rounds {
        let store = SqliteStore::open(
            dir.join(format!("overhead-{jobs}-{round}.db")),
            EventBus::new(),
        )
        .await
        .unwrap();
        // Listen like a UI would, so publishing costs are counted.
        let mut events = store.bus().subscribe();
        let drain = tokio::spawn(async move { while events.recv().await.is_some() {} });
        let batch = new_jobs(jobs, "bench");
        let started = Instant::now();
        store.enqueue(batch).await.unwrap();
        enqueue_rates.push(jobs as f64 / started.elapsed().as_secs_f64());

        let pool = pool(&store, Duration::ZERO, 8);
        let started = Instant::now();
        pool.run(RunUntil::Empty, std::future::pending())
            .await
            .unwrap();
        run_rates.push(jobs as f64 / started.elapsed().as_secs_f64());
        let stats = store.stats().await.unwrap();
        assert_eq!(stats.succeeded as usize, jobs, "not every job succeeded");
        drain.abort();
    }
    println!(
        "overhead: {jobs} no-op jobs, one batch, concurrency 8, median of {rounds}: \
         enqueue {:.0} jobs/s, claim+complete {:.0} jobs/s",
        median(enqueue_rates),
        median(run_rates)
    );
}

/// A change made in one engine, heard by another's subscriber on the same home.
async fn notice(dir: &Path, rounds: usize) {
    let home = dir.join("notice-home");
    let open = || {
        Engine::open(EngineOptions {
            home: Some(home.clone()),
            ..EngineOptions::default()
        })
    };
    let here = open().await.unwrap();
    let there = open().await.unwrap();
    let video = dir.join("notice.mp4");
    std::fs::write(&video, b"a file the bench never runs").unwrap();
    there
        .add(vec![video], AddOptions::default(), |_| {})
        .await
        .unwrap();
    let mut events = here.subscribe();
    let mut latencies = Vec::with_capacity(rounds);
    for round in 0..rounds {
        // Spread the changes over the follower's cycle.
        tokio::time::sleep(Duration::from_millis((round % 7) as u64 * 5)).await;
        let pausing = round % 2 == 0;
        if pausing {
            there.pause(format!("bench {round}")).await.unwrap();
        } else {
            there.resume().await.unwrap();
        }
        let committed = Instant::now();
        loop {
            let envelope = tokio::time::timeout(Duration::from_secs(5), events.recv())
                .await
                .expect("a change was not heard within 5 s")
                .unwrap();
            let heard = match envelope.event {
                Event::QueuePaused { .. } => pausing,
                Event::QueueResumed => !pausing,
                _ => false,
            };
            if heard {
                latencies.push(committed.elapsed().as_secs_f64() * 1000.0);
                break;
            }
        }
    }
    latencies.sort_by(|a, b| a.total_cmp(b));
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    println!(
        "notice: a pause or resume committed in one process, heard by another's subscriber, \
         {rounds} changes: p50 {:.1} ms, p95 {:.1} ms, max {:.1} ms",
        at(0.5),
        at(0.95),
        latencies[latencies.len() - 1]
    );
}

async fn makespan(dir: &Path, jobs: usize) {
    let store = SqliteStore::open(dir.join("makespan.db"), EventBus::new())
        .await
        .unwrap();
    store.enqueue(new_jobs(jobs, "bench")).await.unwrap();
    let pool = pool(&store, Duration::from_secs(1), 3);
    let started = Instant::now();
    pool.run(RunUntil::Empty, std::future::pending())
        .await
        .unwrap();
    let took = started.elapsed().as_secs_f64();
    let ideal = (jobs as f64 / 3.0).ceil();
    println!(
        "makespan: {jobs} jobs × 1 s at concurrency 3: {took:.2} s (ideal {ideal:.0} s, +{:.1}%)",
        (took / ideal - 1.0) * 100.0
    );
}

async fn fill_finished(path: &Path, jobs: usize) {
    let store = SqliteStore::open(path, EventBus::new()).await.unwrap();
    for batch in 0..jobs / 10_000 {
        let added = store
            .enqueue(new_jobs_from(batch * 10_000, 10_000, "bench"))
            .await
            .unwrap();
        assert!(added.1.iter().all(|e| matches!(e, Enqueued::Added(_))));
    }
    let pool = pool(&store, Duration::ZERO, 8);
    pool.run(RunUntil::Empty, std::future::pending())
        .await
        .unwrap();
}

async fn restart(dir: &Path, finished: usize) {
    let path = dir.join("restart.db");
    fill_finished(&path, finished).await;
    // One queued job, so "ready" means a claim that returns it.
    {
        let store = SqliteStore::open(&path, EventBus::new()).await.unwrap();
        let mut job = new_jobs(1, "bench");
        job[0].content_hash = "fresh".into();
        job[0].source = PathBuf::from("/bench/fresh.mp4");
        store.enqueue(job).await.unwrap();
    }
    let started = Instant::now();
    let store = SqliteStore::open(&path, EventBus::new()).await.unwrap();
    store.reclaim(5).await.unwrap();
    let stats = store.stats().await.unwrap();
    let claimed = store
        .claim("bench", 1, Duration::from_secs(30))
        .await
        .unwrap();
    let took = started.elapsed();
    assert_eq!(claimed.len(), 1);
    println!(
        "restart: {} finished jobs in the database: open + reclaim + stats + first claim in {:.1} ms",
        stats.succeeded,
        took.as_secs_f64() * 1000.0
    );
}

fn storyteller_bin() -> Option<PathBuf> {
    if let Some(bin) = std::env::var_os("STORYTELLER_BIN") {
        return Some(PathBuf::from(bin));
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    // The smoke run (BENCH_QUICK) may use the debug build that `./run.sh test` makes.
    let profiles: &[&str] = if std::env::var_os("BENCH_QUICK").is_some() {
        &["release", "debug"]
    } else {
        &["release"]
    };
    profiles
        .iter()
        .map(|profile| target.join(profile).join("storyteller"))
        .find(|bin| bin.exists())
}

fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

async fn memory(dir: &Path, queued: usize) {
    let Some(bin) = storyteller_bin() else {
        println!("memory: skipped (build the CLI first: cargo build --release -p storyteller-cli)");
        return;
    };
    let home = dir.join("rss-home");
    std::fs::create_dir_all(&home).unwrap();
    {
        let store = SqliteStore::open(home.join("storyteller.db"), EventBus::new())
            .await
            .unwrap();
        for batch in 0..queued / 10_000 {
            // The offline storyteller finds each file missing: every job runs and fails fast,
            // which exercises the whole queue.
            store
                .enqueue(new_jobs_from(batch * 10_000, 10_000, "offline"))
                .await
                .unwrap();
        }
    }
    let mut child = std::process::Command::new(&bin)
        .args(["--home"])
        .arg(&home)
        .args(["run", "--until-empty", "--concurrency", "8"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let started = Instant::now();
    let mut peak = 0;
    let limit = Duration::from_secs(120);
    loop {
        if let Some(kib) = peak_rss_kib(pid) {
            peak = peak.max(kib);
        }
        if child.try_wait().unwrap().is_some() || started.elapsed() > limit {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let finished = child.try_wait().unwrap().is_some();
    if !finished {
        let _ = child.kill();
        let _ = child.wait();
    }
    println!(
        "memory: `storyteller run` over {queued} queued jobs: peak RSS {:.1} MB ({} in {:.1} s)",
        peak as f64 / 1024.0,
        if finished {
            "all worked"
        } else {
            "stopped after"
        },
        started.elapsed().as_secs_f64()
    );
}

/// From a `storyteller run` killed with SIGKILL mid-job to a new one having taken the killed
/// jobs up again (their second attempt running): real videos, real processes.
async fn kill_to_resume(dir: &Path, rounds: usize) {
    let Some(bin) = storyteller_bin() else {
        println!("kill: skipped (build the CLI first: cargo build --release -p storyteller-cli)");
        return;
    };
    let videos = dir.join("kill-videos");
    std::fs::create_dir_all(&videos).unwrap();
    for (i, source) in ["testsrc2", "smptebars", "mandelbrot"].iter().enumerate() {
        let status = std::process::Command::new("ffmpeg")
            .args([
                "-hide_banner",
                "-loglevel",
                "error",
                "-nostdin",
                "-y",
                "-f",
                "lavfi",
            ])
            .arg("-i")
            .arg(format!("{source}=size=640x360:rate=25"))
            .args(["-t", "40", "-c:v", "libx264", "-preset", "ultrafast"])
            .arg(videos.join(format!("take-{i}.mp4")))
            .status();
        if !status.is_ok_and(|s| s.success()) {
            println!("kill: skipped (ffmpeg could not make the videos)");
            return;
        }
    }
    let mut took = Vec::new();
    for round in 0..rounds {
        let home = dir.join(format!("kill-home-{round}"));
        let cli = |args: &[&str]| {
            let mut cmd = std::process::Command::new(&bin);
            cmd.arg("--home").arg(&home).args(args);
            cmd.stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null());
            cmd
        };
        assert!(cli(&["add", videos.to_str().unwrap()])
            .status()
            .unwrap()
            .success());
        let db = home.join("storyteller.db");
        let running_with = |attempt: i64| {
            let conn = rusqlite::Connection::open(&db).unwrap();
            conn.query_row(
                "SELECT count(*) FROM jobs WHERE state = 'running' AND attempts = ?1",
                [attempt],
                |r| r.get::<_, i64>(0),
            )
            .unwrap_or(0)
        };
        let mut first = cli(&["run", "--concurrency", "3"]).spawn().unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while running_with(1) < 3 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        first.kill().unwrap();
        first.wait().unwrap();
        let killed_at = Instant::now();
        let mut second = cli(&["run", "--until-empty", "--concurrency", "3"])
            .spawn()
            .unwrap();
        while running_with(2) < 3 && killed_at.elapsed() < Duration::from_secs(60) {
            std::thread::sleep(Duration::from_millis(5));
        }
        took.push(killed_at.elapsed().as_secs_f64() * 1000.0);
        second.wait().unwrap();
    }
    println!(
        "kill: SIGKILL mid-job to a new runner telling the 3 killed jobs again, median of \
         {rounds}: {:.0} ms (start-up, open and check, reclaim, claim)",
        median(took)
    );
}

/// Whether the part `name` runs: all of them, or those `BENCH_ONLY` names (comma-separated).
/// Words for made-up stories: a few very common, many rare (each story draws from all).
const STORY_WORDS: &[&str] = &[
    "the",
    "a",
    "and",
    "of",
    "camera",
    "shot",
    "light",
    "slowly",
    "then",
    "while",
    "scene",
    "harbour",
    "boat",
    "lighthouse",
    "kitchen",
    "kettle",
    "street",
    "rain",
    "market",
    "child",
    "dog",
    "bicycle",
    "mountain",
    "snow",
    "forest",
    "river",
    "bridge",
    "train",
    "station",
    "window",
    "candle",
    "guitar",
    "dancer",
    "crowd",
    "sunset",
    "beach",
    "wave",
    "gull",
    "cliff",
    "garden",
    "flower",
    "bee",
    "tractor",
    "field",
    "storm",
    "thunder",
    "lantern",
    "festival",
    "café",
    "crème",
    "brûlée",
    "naïve",
    "Ωμέγα",
    "привет",
    "東京",
    "夜景",
    "🎬",
];

/// A story of about 250 words, different for every `seed`, with rarer words made rarer.
fn made_up_story(seed: usize) -> String {
    let mut state = (seed as u64)
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut story = String::new();
    for word in 0..250 {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let roll = (state >> 33) as usize;
        // Squaring the roll skews choices towards the start of the list.
        let spread = (roll % 1000) * (roll % 1000) / 1000;
        let pick = spread * STORY_WORDS.len() / 1000;
        if word > 0 {
            story.push_str(if word % 12 == 0 { ". " } else { " " });
        }
        story.push_str(STORY_WORDS[pick]);
    }
    story.push('.');
    story
}

async fn search(dir: &Path, stories: usize, rounds: usize) {
    let home = dir.join("search-home");
    std::fs::create_dir_all(&home).unwrap();
    {
        let store = SqliteStore::open(home.join("storyteller.db"), EventBus::new())
            .await
            .unwrap();
        for first in (0..stories).step_by(1_000) {
            store
                .enqueue(new_jobs_from(first, 1_000.min(stories - first), "bench"))
                .await
                .unwrap();
            let claimed = store
                .claim("bench", 1_000, Duration::from_secs(60))
                .await
                .unwrap();
            for (i, job) in claimed.iter().enumerate() {
                let outcome = Outcome::Succeeded {
                    story: made_up_story(first + i),
                    media: None,
                    usage: Usage::default(),
                };
                store.finish(job.id, "bench", outcome).await.unwrap();
            }
        }
    }
    let engine = Engine::open(EngineOptions {
        home: Some(home),
        ..EngineOptions::default()
    })
    .await
    .unwrap();
    // As typed, a letter at a time, then words common and rare, names and accents folded.
    let queries = [
        "l",
        "li",
        "lig",
        "ligh",
        "lighthouse",
        "the",
        "camera shot",
        "harbour boat gull",
        "video-42",
        "creme brulee",
        "東京",
        "nothing-like-this",
    ];
    let mut times = Vec::new();
    let mut slowest = (0.0, "");
    let mut hits_for_one_letter = 0;
    for _ in 0..rounds {
        for query in queries {
            let started = Instant::now();
            let hits = engine
                .search(SearchQuery {
                    text: query.into(),
                    limit: None,
                })
                .await
                .unwrap();
            let ms = started.elapsed().as_secs_f64() * 1000.0;
            if query == "l" {
                hits_for_one_letter = hits.len();
            }
            if ms > slowest.0 {
                slowest = (ms, query);
            }
            times.push(ms);
        }
    }
    times.sort_by(|a, b| a.total_cmp(b));
    let at = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
    println!(
        "search: {stories} stories, {} queries as typed: p50 {:.1} ms, p95 {:.1} ms, \
         slowest {:.1} ms ('{}'); 'l' gave {hits_for_one_letter} hits (target < 50 ms)",
        times.len(),
        at(0.5),
        at(0.95),
        slowest.0,
        slowest.1
    );
}

fn main() {
    let quick = std::env::var_os("BENCH_QUICK").is_some();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (small, large, rounds, notices, calls, finished, queued) = if quick {
        (1_000, 0, 1, 20, 6, 10_000, 10_000)
    } else {
        (10_000, 100_000, 5, 200, 30, 100_000, 100_000)
    };
    runtime.block_on(async {
        if wanted("overhead") {
            overhead(dir.path(), small, rounds).await;
            if large > 0 {
                overhead(dir.path(), large, 3).await;
            }
        }
        if std::env::var("BENCH_ONLY").as_deref() == Ok("enqueue") {
            // One batch and nothing else, for counting instructions:
            // BENCH_ONLY=enqueue valgrind --tool=callgrind <bench binary>
            let store = SqliteStore::open(dir.path().join("enqueue.db"), EventBus::new())
                .await
                .unwrap();
            let jobs = std::env::var("BENCH_JOBS")
                .ok()
                .and_then(|jobs| jobs.parse().ok())
                .unwrap_or(small);
            store.enqueue(new_jobs(jobs, "bench")).await.unwrap();
        }
        if wanted("notice") {
            notice(dir.path(), notices).await;
        }
        if wanted("makespan") {
            makespan(dir.path(), calls).await;
        }
        if wanted("restart") {
            restart(dir.path(), finished).await;
        }
        if wanted("search") {
            search(dir.path(), if quick { 1_000 } else { 10_000 }, rounds).await;
        }
        if wanted("kill") {
            kill_to_resume(dir.path(), if quick { 1 } else { 3 }).await;
        }
        if wanted("memory") {
            memory(dir.path(), queued).await;
        }
    });
}
