//! Watched-folder benchmarks; prints its figures. Run: `cargo bench -p storyteller-engine --bench watch`.
//!
//! - latency: from a file becoming complete (its last chunk written and the file closed, as a
//!   copy or a download finishes) to its job being queued (the `JobsAdded` event), with the
//!   default settling window of 2 s; followed through the system's events and polled. Target:
//!   the window + < 500 ms (polled: + up to one poll, 2 s, more).
//! - scan: the start-up scan of a watched tree of 10,000 files: first sight (each file hashed
//!   and queued), then after a restart, when every file was seen before (target < 2 s and
//!   nothing read again: the bytes the process read during the scan are counted from
//!   `/proc/self/io`, against the tree's size).
//! - idle: the CPU the whole engine process uses over a minute while it watches, with nothing
//!   happening: the 10,000-file tree followed through the system's events, and a folder of
//!   100 files polled (target ≈ 0).
//!
//! Real folders and files on disk, the system's real file events, a real SQLite file.
//! `BENCH_QUICK=1` shrinks the runs for a smoke test; `BENCH_ONLY=latency,scan,idle` picks parts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::wanted;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use storyteller_engine::watcher::watch::WatchStatus;
use storyteller_engine::wire::WatchRequest;
use storyteller_engine::{Engine, EngineOptions, Event, Subscription};
use tokio_util::sync::CancellationToken;

/// The settling window the engine uses unless told otherwise.
const WINDOW: Duration = Duration::from_secs(2);

async fn open_engine(home: &Path) -> Engine {
    Engine::open(EngineOptions {
        home: Some(home.to_path_buf()),
        settle_window: Some(WINDOW),
        ..EngineOptions::default()
    })
    .await
    .unwrap()
}

/// The engine watching its folders until the token fires.
fn watch(engine: &Engine) -> (CancellationToken, tokio::task::JoinHandle<()>) {
    let stop = CancellationToken::new();
    let watcher = engine.clone();
    let until = stop.clone();
    let task = tokio::spawn(async move {
        watcher
            .watch_folders(until.cancelled_owned())
            .await
            .unwrap();
    });
    (stop, task)
}

/// Waits for the first event `heard` holds for, `limit` at most in all.
async fn until_event(
    events: &mut Subscription,
    limit: Duration,
    what: &str,
    mut heard: impl FnMut(&Event) -> bool,
) {
    let waited = tokio::time::timeout(limit, async {
        loop {
            let envelope = events.recv().await.expect("the engine's events ended");
            if heard(&envelope.event) {
                return;
            }
        }
    })
    .await;
    assert!(waited.is_ok(), "{what} not within {limit:?}");
}

/// Waits for `folder`'s watcher to say it is watching.
async fn until_watching(events: &mut Subscription, folder: &Path) {
    let folder = folder.to_string_lossy();
    let limit = Duration::from_secs(120);
    until_event(events, limit, "the folder watched", |event| match event {
        Event::WatchedFolderStatus {
            folder: about,
            status,
        } if about == folder.as_ref() => match status {
            WatchStatus::Watching { .. } => true,
            WatchStatus::Missing { reason } | WatchStatus::Error { reason } => {
                panic!("the folder cannot be watched: {reason}")
            }
            _ => false,
        },
        _ => false,
    })
    .await;
}

/// Waits for the job of `source` to be queued; when.
async fn until_queued(events: &mut Subscription, source: &Path) -> Instant {
    let source = source.to_string_lossy();
    let limit = Duration::from_secs(30);
    until_event(events, limit, "a complete file queued", |event| {
        matches!(event, Event::JobsAdded { jobs, .. }
            if jobs.iter().any(|job| job.source == source.as_ref()))
    })
    .await;
    Instant::now()
}

fn folder_request(path: &Path, recursive: bool, poll: bool) -> WatchRequest {
    WatchRequest {
        path: path.to_string_lossy().into_owned(),
        recursive,
        poll,
        ..WatchRequest::default()
    }
}

/// Writes `file` as a copy does: four chunks of 64 KiB over 300 ms, then closes it.
/// Each file's bytes are its own, so no two are the same content.
fn copy_in(file: &Path, seed: usize) {
    let mut out = std::fs::File::create(file).unwrap();
    for chunk in 0..4u8 {
        if chunk > 0 {
            std::thread::sleep(Duration::from_millis(100));
        }
        let bytes: Vec<u8> = (0..64 * 1024)
            .map(|i| ((i * 31 + seed * 7 + usize::from(chunk)) % 251) as u8)
            .collect();
        out.write_all(&bytes).unwrap();
        out.write_all(format!("{seed}").as_bytes()).unwrap();
        out.flush().unwrap();
    }
}

fn summary(mut ms: Vec<f64>) -> String {
    ms.sort_by(|a, b| a.total_cmp(b));
    let at = |q: f64| ms[((ms.len() as f64 * q) as usize).min(ms.len() - 1)];
    format!(
        "p50 {:.0} ms, max {:.0} ms (over the window: p50 {:+.0} ms, max {:+.0} ms)",
        at(0.5),
        ms[ms.len() - 1],
        at(0.5) - WINDOW.as_secs_f64() * 1000.0,
        ms[ms.len() - 1] - WINDOW.as_secs_f64() * 1000.0
    )
}

async fn latency(dir: &Path, poll: bool, files: usize) {
    let name = if poll { "polled" } else { "native" };
    let home = dir.join(format!("latency-{name}-home"));
    let folder = dir.join(format!("latency-{name}"));
    std::fs::create_dir_all(&folder).unwrap();
    let folder = std::fs::canonicalize(&folder).unwrap();
    let engine = open_engine(&home).await;
    let mut events = engine.subscribe();
    engine
        .watch_add(folder_request(&folder, false, poll))
        .await
        .unwrap();
    let (stop, task) = watch(&engine);
    until_watching(&mut events, &folder).await;
    let mut latencies = Vec::with_capacity(files);
    for i in 0..files {
        let file = folder.join(format!("clip-{i:03}.mp4"));
        let written = file.clone();
        tokio::task::spawn_blocking(move || copy_in(&written, i))
            .await
            .unwrap();
        let complete = Instant::now();
        let queued = until_queued(&mut events, &file).await;
        latencies.push((queued - complete).as_secs_f64() * 1000.0);
        // Spread the files over the poll's cycle.
        tokio::time::sleep(Duration::from_millis(170 * (i as u64 % 5))).await;
    }
    stop.cancel();
    task.await.unwrap();
    println!(
        "latency ({name}): file complete → job queued, window {} s, {files} files: {}",
        WINDOW.as_secs(),
        summary(latencies)
    );
}

/// Bytes this process has read through system calls so far (`rchar` of `/proc/self/io`).
fn bytes_read() -> u64 {
    let io = std::fs::read_to_string("/proc/self/io").unwrap_or_default();
    io.lines()
        .find_map(|line| line.strip_prefix("rchar: "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

/// CPU time (user + system) this process has used so far.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 after the name.
    let total = ticks(11) + ticks(12);
    // Clock ticks are 100 a second on Linux.
    Duration::from_millis(total * 10)
}

/// A tree of `files` files of 16 KiB in folders of 100, each its own content.
fn make_tree(root: &Path, files: usize) -> u64 {
    let mut bytes = 0;
    for i in 0..files {
        let sub = root.join(format!("day-{:03}", i / 100));
        if i % 100 == 0 {
            std::fs::create_dir_all(&sub).unwrap();
        }
        let mut content = vec![(i % 251) as u8; 16 * 1024];
        content[..8].copy_from_slice(&(i as u64).to_le_bytes());
        std::fs::write(sub.join(format!("clip-{i:05}.mp4")), &content).unwrap();
        bytes += content.len() as u64;
    }
    bytes
}

async fn scan(dir: &Path, files: usize) -> (PathBuf, PathBuf) {
    let home = dir.join("scan-home");
    let tree = dir.join("scan-tree");
    std::fs::create_dir_all(&tree).unwrap();
    let tree = std::fs::canonicalize(&tree).unwrap();
    let size = make_tree(&tree, files);

    let engine = open_engine(&home).await;
    engine
        .watch_add(folder_request(&tree, true, false))
        .await
        .unwrap();
    let started = Instant::now();
    engine.catch_up_folders().await.unwrap();
    let first = started.elapsed();
    let stats = engine.stats().await.unwrap();
    assert_eq!(stats.queued as usize, files, "not every file was queued");
    drop(engine);
    println!(
        "scan: first sight of a tree of {files} files ({:.0} MiB): {:.2} s, the {} s window \
         included ({:.0} files/s hashed and queued)",
        size as f64 / (1024.0 * 1024.0),
        first.as_secs_f64(),
        WINDOW.as_secs(),
        files as f64 / (first.as_secs_f64() - WINDOW.as_secs_f64()).max(0.001)
    );

    // A restart: every file was seen before and is as it was.
    let mut rounds = Vec::new();
    let mut read = 0;
    for _ in 0..3 {
        let engine = open_engine(&home).await;
        let before = bytes_read();
        let started = Instant::now();
        engine.catch_up_folders().await.unwrap();
        rounds.push(started.elapsed().as_secs_f64());
        read = bytes_read() - before;
        let stats = engine.stats().await.unwrap();
        assert_eq!(
            stats.queued as usize, files,
            "a file seen before was queued again"
        );
    }
    rounds.sort_by(|a, b| a.total_cmp(b));
    println!(
        "scan: after a restart, {files} files all seen before: median {:.3} s, best {:.3} s \
         (target < 2 s); read during the scan: {:.1} MiB of the tree's {:.0} MiB (nothing \
         hashed again)",
        rounds[rounds.len() / 2],
        rounds[0],
        read as f64 / (1024.0 * 1024.0),
        size as f64 / (1024.0 * 1024.0),
    );
    (home, tree)
}

async fn idle(dir: &Path, home: &Path, tree: &Path, files: usize, seconds: u64) {
    // The scanned tree through the system's events, and 100 files polled.
    let polled = dir.join("idle-polled");
    std::fs::create_dir_all(&polled).unwrap();
    let polled = std::fs::canonicalize(&polled).unwrap();
    make_tree(&polled, 100);
    let engine = open_engine(home).await;
    let mut events = engine.subscribe();
    engine
        .watch_add(folder_request(&polled, true, true))
        .await
        .unwrap();
    engine.catch_up_folders().await.unwrap();
    let (stop, task) = watch(&engine);
    until_watching(&mut events, tree).await;
    // Until both are armed and the catch-ups are behind.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let before = cpu_time();
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let used = cpu_time() - before;
    let elapsed = started.elapsed();
    stop.cancel();
    task.await.unwrap();
    println!(
        "idle: the engine watching a {files}-file tree (system events) and 100 files (polled \
         every 2 s) with nothing happening, {:.0} s: {:.2} s of CPU, {:.2} % of one core",
        elapsed.as_secs_f64(),
        used.as_secs_f64(),
        used.as_secs_f64() / elapsed.as_secs_f64() * 100.0
    );
}

fn main() {
    let quick = std::env::var_os("BENCH_QUICK").is_some();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (files, tree, seconds) = if quick {
        (2, 1_000, 3)
    } else {
        (10, 10_000, 60)
    };
    let seconds = std::env::var("BENCH_IDLE_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(seconds);
    runtime.block_on(async {
        if wanted("latency") {
            latency(dir.path(), false, files).await;
            latency(dir.path(), true, files).await;
        }
        if wanted("scan") || wanted("idle") {
            let (home, tree_path) = scan(dir.path(), tree).await;
            if wanted("idle") {
                idle(dir.path(), &home, &tree_path, tree, seconds).await;
            }
        }
    });
}
