#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Times the offline storyteller end to end on a generated 10-minute 1920×1080 25 fps video with
//! ten scenes, a tone and four silences; the target is under 15 s on a 2-core machine.
//!
//! The video is made once (about two minutes with ffmpeg's ultrafast x264) and cached in
//! `target/bench-media/`. Run with `cargo bench -p storyteller-engine --bench offline`.
//!
//! It also prints what resuming saves: the job told again from the checkpoint its first telling
//! saved after the decoding passes (where a kill late in the job leaves it), in ffmpeg
//! CPU-seconds against telling it from the start.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use storyteller_engine::job::Stage;
use storyteller_engine::media::Media;
use storyteller_engine::storyteller::offline::{
    compose, OfflineStoryteller, Preset, OFFLINE_MODEL,
};
use storyteller_engine::storyteller::{StoryRequest, StorySink, Storyteller};
use storyteller_engine::{EventBus, JobId};

/// Cached video's name; change it when the recipe below changes.
const VIDEO_NAME: &str = "offline-10min-1080p-v1.mp4";

/// The scenes (lavfi source at 1920×1080, 25 fps), 600 s in all. Mandelbrot and life are slow
/// to render at full size, so they are drawn small and scaled up.
const SEGMENTS: [&str; 10] = [
    "testsrc2=s=1920x1080:r=25:d=70,setsar=1",
    "smptebars=s=1920x1080:r=25:d=40,setsar=1",
    "mandelbrot=s=480x270:r=25,trim=duration=60,scale=1920:1080,setsar=1",
    "color=c=navy:s=1920x1080:r=25:d=30,setsar=1",
    "life=s=480x270:r=25:mold=10:ratio=0.1:death_color=#C83232:life_color=#00ff00,\
     trim=duration=80,scale=1920:1080:flags=neighbor,setsar=1",
    "testsrc2=s=1920x1080:r=25:d=50,hue=h=120,setsar=1",
    "color=c=orange:s=1920x1080:r=25:d=20,setsar=1",
    "mandelbrot=s=480x270:r=25:start_scale=0.5,trim=duration=90,scale=1920:1080,setsar=1",
    "smptehdbars=s=1920x1080:r=25:d=40,setsar=1",
    "testsrc2=s=1920x1080:r=25:d=120,negate,setsar=1",
];

/// A tone whose pitch steps every 150 s, silent from 120 s to 135 s of every 150.
const AUDIO: &str = "aevalsrc='if(between(mod(t\\,150)\\,120\\,135)\\,0\\,\
0.25*sin(2*PI*(330+110*floor(t/150))*t))':s=48000:d=600";

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"))
}

/// The cached benchmark video, made if missing.
fn bench_video() -> PathBuf {
    let dir = target_dir().join("bench-media");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(VIDEO_NAME);
    if path.exists() {
        return path;
    }
    println!("making the 10-minute 1080p benchmark video (once; about two minutes)…");
    let partial = dir.join(format!("{VIDEO_NAME}.part"));
    let started = Instant::now();
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y"]);
    for segment in SEGMENTS {
        cmd.args(["-f", "lavfi", "-i", segment]);
    }
    cmd.args(["-f", "lavfi", "-i", AUDIO]);
    let inputs: String = (0..SEGMENTS.len()).map(|i| format!("[{i}:v]")).collect();
    cmd.args([
        "-filter_complex",
        &format!(
            "{inputs}concat=n={}:v=1:a=0,format=yuv420p[v]",
            SEGMENTS.len()
        ),
        "-map",
        "[v]",
        "-map",
        &format!("{}:a", SEGMENTS.len()),
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-c:a",
        "aac",
        "-b:a",
        "96k",
        "-movflags",
        "+faststart",
        "-f",
        "mp4",
    ]);
    cmd.arg(&partial);
    let status = cmd.status().expect("ffmpeg runs");
    assert!(status.success(), "making the benchmark video failed");
    std::fs::rename(&partial, &path).unwrap();
    println!("  made in {:.0} s", started.elapsed().as_secs_f64());
    path
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn main() {
    let video = bench_video();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let thumbs = tempfile::tempdir().unwrap();
        let media = Media::locate(thumbs.path().to_owned()).expect("ffmpeg is installed");
        let teller = OfflineStoryteller::new(media.clone());
        // Hashing happens when a video is added; timed here so the figure is add-to-story.
        let hashing = Instant::now();
        let content_hash = storyteller_engine::intake::hash_file(&video).unwrap();
        let hashing = hashing.elapsed();
        let request = StoryRequest {
            job_id: JobId::new(),
            source: video.clone(),
            content_hash,
            preset: "narrative".into(),
            style: Default::default(),
            model: OFFLINE_MODEL.into(),
            checkpoint: None,
            cancelled: Default::default(),
        };

        // Warm the page cache so the figure measures our work, not the first read of the disk.
        let _ = std::fs::read_dir(video.parent().unwrap());
        media.probe(&video).await.unwrap();

        let mut sink = StorySink::new(request.job_id, 1, EventBus::new());
        let mut status = sink.watch_status();
        let mut checkpoints = sink.watch_checkpoints();
        let progress_at_checkpoints = sink.watch_status();
        let checkpoint_watch = tokio::spawn(async move {
            let mut saved = Vec::new();
            while checkpoints.changed().await.is_ok() {
                let value = checkpoints.borrow_and_update().clone();
                if let Some(value) = value {
                    saved.push((progress_at_checkpoints.borrow().1, (*value).clone()));
                }
            }
            saved
        });
        let cpu_before = children_cpu_secs();
        let start = Instant::now();
        let watcher = tokio::spawn(async move {
            let mut marks: Vec<(Stage, Duration)> = Vec::new();
            while status.changed().await.is_ok() {
                let stage = status.borrow_and_update().0;
                if marks.last().map(|m| m.0) != Some(stage) {
                    marks.push((stage, start.elapsed()));
                }
            }
            marks
        });
        teller.tell(&request, &mut sink).await.unwrap();
        let telling = start.elapsed();
        let cpu_full = children_cpu_secs() - cpu_before;
        let total = hashing + telling;
        let (story, _) = sink.into_parts();
        let marks = watcher.await.unwrap();
        let saved = checkpoint_watch.await.unwrap();

        // Told again from the last checkpoint (after the passes), as a restart after a kill
        // late in the job would.
        let (passes_at, resume_from) = saved
            .into_iter()
            .rfind(|(_, value)| value.get("passes").is_some_and(|p| !p.is_null()))
            .expect("the passes were saved as a checkpoint");
        let resumed = StoryRequest {
            checkpoint: Some(resume_from),
            cancelled: Default::default(),
            ..request.clone()
        };
        let cpu_before = children_cpu_secs();
        let resume_start = Instant::now();
        let mut again = StorySink::new(request.job_id, 2, EventBus::new());
        teller.tell(&resumed, &mut again).await.unwrap();
        let resume_took = resume_start.elapsed();
        let cpu_resumed = children_cpu_secs() - cpu_before;
        assert_eq!(
            again.text(),
            story,
            "the resumed telling wrote another story"
        );
        let at = |stage: Stage| {
            marks
                .iter()
                .find(|m| m.0 == stage)
                .map_or(Duration::ZERO, |m| m.1)
        };
        let probing = at(Stage::Analysing).saturating_sub(at(Stage::Probing));
        let analysing = at(Stage::Writing).saturating_sub(at(Stage::Analysing));
        let writing = telling.saturating_sub(at(Stage::Writing));

        // The analysis once more on its own, for its facts.
        let info = media.probe(&video).await.unwrap();
        let analysis = media
            .analyse_probed(&video, &info, "bench", &mut |_| {})
            .await
            .unwrap();

        println!(
            "offline storyteller: 10 min 1080p → story in {:.1} s (hash at add {:.2} s, \
             probe {:.2} s, analysis {:.1} s, writing {:.3} s)",
            secs(total),
            secs(hashing),
            secs(probing),
            secs(analysing),
            secs(writing)
        );
        println!(
            "  strategy {:?}: {} scenes starting at {:?} s; {} keyframes; motion {:.4}; \
             loudness {:?} LUFS; {} silences",
            analysis.strategy,
            analysis.scenes.len(),
            analysis
                .scenes
                .iter()
                .map(|s| s.start.round() as i64)
                .collect::<Vec<_>>(),
            analysis.keyframes.len(),
            analysis.motion.unwrap_or(0.0),
            analysis.audio.as_ref().and_then(|a| a.integrated_lufs),
            analysis.audio.as_ref().map_or(0, |a| a.silences.len()),
        );
        println!("\n{story}");
        for preset in [Preset::Summary, Preset::Social] {
            println!("{}", compose(&analysis, preset, "bench").concat());
        }
        println!(
            "resume: a kill after the decoding passes (at {:.0}% of the job, so any kill from \
             there to the end) costs {:.1} ffmpeg CPU-s and {:.1} s to finish, against {:.1} \
             CPU-s and {:.1} s from the start: {:.1} CPU-s ({:.0}%) saved",
            passes_at * 100.0,
            cpu_resumed,
            secs(resume_took),
            cpu_full,
            secs(telling),
            cpu_full - cpu_resumed,
            100.0 * (cpu_full - cpu_resumed) / cpu_full.max(f64::EPSILON)
        );
        if total > Duration::from_secs(15) {
            println!("WARNING: over the 15 s target");
        }
    });
}

/// CPU-seconds (user + system) of this process's finished children, from `/proc/self/stat`
/// (in clock ticks: 100 a second on Linux); zero where there is no `/proc`.
fn children_cpu_secs() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name, which ends with the last ')': cutime and cstime are
    // fields 16 and 17 of the line, so 13 and 14 after it.
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(13) + ticks(14)) / 100.0
}
