//! Gemini benchmarks against a Generative Language API on 127.0.0.1; prints its figures.
//! Run: `cargo bench -p storyteller-engine --bench gemini`.
//!
//! - upload: a 1 GB video through the resumable upload (8 MiB requests, streamed from disk),
//!   against reading the same file from the page cache and against copying it down a plain
//!   loopback socket (the ceiling for any upload here); and how much the process's peak memory
//!   grew while it was sent (targets: ≥ 80% of the read rate, < 40 MB);
//! - pace: 20 videos told by a service that answers in 2 s and allows 10 requests a minute
//!   (answering a 429 past that): the makespan against the limit's ideal (10 start at once,
//!   10 a minute later: 62 s), and how many 429s were seen (target: none).
//!
//! `BENCH_QUICK=1` shrinks both (a 64 MB upload; 3 videos at 3 a minute) for a smoke run;
//! `BENCH_ONLY=upload` or `pace` runs one.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::wanted;

#[path = "../tests/engine/gemini_server.rs"]
mod gemini_server;

use gemini_server::GeminiServer;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};
use storyteller_engine::media::Media;
use storyteller_engine::pool::{PoolConfig, RunUntil};
use storyteller_engine::storyteller::gemini::{GeminiOptions, GeminiStoryteller};
use storyteller_engine::storyteller::{
    Capacity, StoryRequest, StorySink, Storyteller, StorytellerRegistry,
};
use storyteller_engine::wire::AddOptions;
use storyteller_engine::{Engine, EngineOptions, EventBus, JobId};

const KEY: &str = "AIzaSy-bench-key";

fn quick() -> bool {
    std::env::var_os("BENCH_QUICK").is_some_and(|v| !v.is_empty())
}

fn ffmpeg(args: &[&str]) {
    let status = Command::new("ffmpeg")
        .args(["-y", "-hide_banner", "-loglevel", "error", "-nostdin"])
        .args(args)
        .status()
        .expect("ffmpeg runs");
    assert!(status.success(), "ffmpeg {args:?}");
}

fn media(dir: &Path) -> Media {
    Media::locate(dir.join("thumbnails")).expect("ffmpeg and ffprobe are installed")
}

/// A real MP4 of at least `bytes`: a clip of noise (which does not compress) repeated with
/// `-c copy`, which takes seconds.
fn big_video(dir: &Path, bytes: u64) -> PathBuf {
    let clip = dir.join("clip.mp4");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=s=1280x720:r=25:d=4,noise=alls=60:allf=t",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-b:v",
        "32M",
        "-maxrate",
        "32M",
        "-bufsize",
        "64M",
        "-pix_fmt",
        "yuv420p",
        clip.to_str().unwrap(),
    ]);
    let clip_size = std::fs::metadata(&clip).unwrap().len();
    let loops = bytes.div_ceil(clip_size).saturating_sub(1).to_string();
    let video = dir.join("big.mp4");
    ffmpeg(&[
        "-stream_loop",
        &loops,
        "-i",
        clip.to_str().unwrap(),
        "-c",
        "copy",
        video.to_str().unwrap(),
    ]);
    video
}

/// The process's memory: (resident now, peak since the last reset), in bytes.
fn memory() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Resets the peak the kernel keeps (`VmHWM`) to the resident size now.
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn read_rate(path: &Path) -> f64 {
    let mut buffer = vec![0u8; 8 << 20];
    let mut best: f64 = 0.0;
    // The first pass fills the page cache; the best of the next ones is the read rate.
    for _ in 0..3 {
        let started = Instant::now();
        let mut file = std::fs::File::open(path).unwrap();
        let mut total = 0u64;
        loop {
            let n = file.read(&mut buffer).unwrap();
            if n == 0 {
                break;
            }
            total += n as u64;
        }
        best = best.max(total as f64 / started.elapsed().as_secs_f64());
    }
    best
}

/// The rate of copying `path` down a plain loopback socket to a reader that drops the bytes:
/// the ceiling for any upload on this machine, HTTP or not.
async fn socket_rate(path: &Path) -> f64 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let drain = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut buffer = vec![0u8; 256 * 1024];
        let mut total = 0u64;
        loop {
            let n = socket.read(&mut buffer).await.unwrap();
            if n == 0 {
                return total;
            }
            total += n as u64;
        }
    });
    let started = Instant::now();
    let mut socket = tokio::net::TcpStream::connect(address).await.unwrap();
    let mut file = tokio::fs::File::open(path).await.unwrap();
    let mut buffer = vec![0u8; 256 * 1024];
    loop {
        let n = file.read(&mut buffer).await.unwrap();
        if n == 0 {
            break;
        }
        socket.write_all(&buffer[..n]).await.unwrap();
    }
    socket.shutdown().await.unwrap();
    let total = drain.await.unwrap();
    total as f64 / started.elapsed().as_secs_f64()
}

async fn upload(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let size: u64 = if quick() { 64 << 20 } else { 1 << 30 };
    let video = big_video(dir, size);
    let size = std::fs::metadata(&video).unwrap().len();
    let read = read_rate(&video);
    let socket = socket_rate(&video).await;

    let server = GeminiServer::start(KEY).await;
    server.discard_bytes();
    let options = GeminiOptions {
        inline_limit: 0,
        first_poll: Duration::from_millis(10),
        capacity: Capacity::UNLIMITED,
        ..GeminiOptions::default()
    };
    let teller = GeminiStoryteller::with_media(
        &server.base,
        "gemini-flash-latest",
        Some(KEY.into()),
        media(dir),
    )
    .with_options(options);
    let request = StoryRequest {
        job_id: JobId::new(),
        source: video.clone(),
        content_hash: "bench".into(),
        preset: "narrative".into(),
        style: Default::default(),
        model: "gemini-flash-latest".into(),
        checkpoint: None,
        cancelled: Default::default(),
    };
    let bus = EventBus::new();
    let mut events = bus.subscribe();
    // From the first byte's progress to the last: the upload alone, without the probe.
    let timing = tokio::spawn(async move {
        let mut first = None;
        while let Some(envelope) = events.recv().await {
            if let storyteller_engine::Event::UploadProgress {
                sent_bytes,
                total_bytes,
                ..
            } = envelope.event
            {
                let now = Instant::now();
                let first = *first.get_or_insert(now);
                if sent_bytes >= total_bytes {
                    return now.duration_since(first);
                }
            }
        }
        Duration::ZERO
    });
    let mut sink = StorySink::new(request.job_id, 1, bus);
    let (resident_before, _) = memory();
    reset_peak();
    let started = Instant::now();
    teller.tell(&request, &mut sink).await.unwrap();
    let (_, peak) = memory();
    let upload_secs = timing.await.unwrap().as_secs_f64();
    let rate = size as f64 / upload_secs;
    let requests = server.commands("upload") + server.commands("upload, finalize");
    println!(
        "upload: {:.0} MB in {requests} requests, {:.0} MB/s against reading it at {:.0} MB/s ({:.0}%; target ≥ 80%) and copying it down a plain loopback socket at {:.0} MB/s ({:.0}%); peak memory grew by {:.1} MB (target < 40 MB); told in {:.1} s",
        size as f64 / 1e6,
        rate / 1e6,
        read / 1e6,
        100.0 * rate / read,
        socket / 1e6,
        100.0 * rate / socket,
        peak.saturating_sub(resident_before) as f64 / 1e6,
        started.elapsed().as_secs_f64(),
    );
}

async fn pace(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    // The smoke run stays within one minute's allowance: it checks the parts run, not the pace.
    let (videos, per_minute) = if quick() { (3, 3) } else { (20, 10) };
    let folder = dir.join("videos");
    std::fs::create_dir_all(&folder).unwrap();
    let paths: Vec<PathBuf> = (0..videos)
        .map(|i| {
            let path = folder.join(format!("v{i:02}.mp4"));
            let tone = format!("sine=frequency={}:duration=1", 200 + 20 * i);
            ffmpeg(&[
                "-f",
                "lavfi",
                "-i",
                "testsrc2=s=160x90:r=10:d=1",
                "-f",
                "lavfi",
                "-i",
                &tone,
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-c:a",
                "aac",
                "-shortest",
                path.to_str().unwrap(),
            ]);
            path
        })
        .collect();
    let server = GeminiServer::start(KEY).await;
    server.generate_delay(Duration::from_secs(2));
    server.per_minute(per_minute);
    let options = GeminiOptions {
        first_poll: Duration::from_millis(10),
        capacity: Capacity {
            concurrent: Some(per_minute as u32),
            per_minute: Some(per_minute as u32),
            per_day: None,
        },
        ..GeminiOptions::default()
    };
    let teller = GeminiStoryteller::with_media(
        &server.base,
        "gemini-flash-latest",
        Some(KEY.into()),
        media(dir),
    )
    .with_options(options);
    let mut registry = StorytellerRegistry::new();
    registry.register(Arc::new(teller));
    let engine = Engine::open(EngineOptions {
        home: Some(dir.join("home")),
        storytellers: Some(registry),
        concurrency: Some(per_minute as u32),
        pool: PoolConfig::default(),
        ..EngineOptions::default()
    })
    .await
    .unwrap();
    let options = AddOptions {
        storyteller: Some("gemini".into()),
        ..AddOptions::default()
    };
    engine.add(paths, options, |_| {}).await.unwrap();
    let started = Instant::now();
    engine
        .run(RunUntil::Empty, std::future::pending())
        .await
        .unwrap();
    let makespan = started.elapsed().as_secs_f64();
    let minutes = (videos - 1) / per_minute;
    let ideal = 60.0 * minutes as f64 + 2.0;
    let stats = engine.stats().await.unwrap();
    println!(
        "pace: {videos} videos at {per_minute} a minute, 2 s each: makespan {makespan:.1} s against the ideal {ideal:.0} s ({:+.1}%; target within 5%); 429s seen: {} (target 0); told: {}",
        100.0 * (makespan - ideal) / ideal,
        server.refused_for_pace(),
        stats.succeeded,
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    if wanted("upload") {
        upload(&dir.path().join("upload")).await;
    }
    if wanted("pace") {
        pace(&dir.path().join("pace")).await;
    }
}
