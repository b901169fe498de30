//! The offline storyteller end to end: real ffmpeg, real sinks, real cancellation.

use crate::support::{self, Look};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use storyteller_engine::job::Stage;
use storyteller_engine::storyteller::offline::{duration_words, OfflineStoryteller, OFFLINE_MODEL};
use storyteller_engine::storyteller::{StoryError, StoryRequest, StorySink, Storyteller};
use storyteller_engine::{Event, JobId};

fn request(source: &Path, preset: &str) -> StoryRequest {
    StoryRequest {
        job_id: JobId::new(),
        source: source.to_owned(),
        // A missing file has no hash; the storyteller must fail on the file, not the hash.
        content_hash: storyteller_engine::intake::hash_file(source)
            .unwrap_or_else(|_| "0".repeat(64)),
        preset: preset.into(),
        style: Default::default(),
        model: OFFLINE_MODEL.into(),
        checkpoint: None,
        cancelled: Default::default(),
    }
}

async fn tell(teller: &OfflineStoryteller, source: &Path, preset: &str) -> (String, StorySink) {
    let mut sink = support::sink();
    teller
        .tell(&request(source, preset), &mut sink)
        .await
        .unwrap();
    (sink.text().to_owned(), sink)
}

fn scenes_video(dir: &Path) -> PathBuf {
    support::make_scenes(
        dir,
        "holiday.mp4",
        &[
            (Look::Colour("navy"), 2.0),
            (Look::TestSrc, 3.0),
            (Look::Colour("orange"), 2.0),
        ],
        true,
    )
}

#[tokio::test]
async fn describes_itself() {
    let teller = OfflineStoryteller::new(support::media());
    assert_eq!(teller.name(), "offline");
    assert_eq!(teller.default_model(), OFFLINE_MODEL);
    assert_eq!(
        teller.presets(),
        ["narrative", "summary", "social", "bedtime", "documentary"]
    );
}

#[tokio::test]
async fn same_file_same_story_and_presets_differ() {
    let dir = tempfile::tempdir().unwrap();
    let video = scenes_video(dir.path());
    let teller = OfflineStoryteller::new(support::media());

    let (first, sink) = tell(&teller, &video, "narrative").await;
    let (again, _) = tell(&teller, &video, "narrative").await;
    assert_eq!(first, again, "deterministic");

    let facts = sink.media_facts().expect("probe facts recorded");
    let duration = facts["duration_secs"].as_f64().unwrap();
    assert_eq!(facts["video"]["width"], 320);
    let said_duration = duration_words(duration);

    let (summary, _) = tell(&teller, &video, "summary").await;
    let (social, _) = tell(&teller, &video, "social").await;
    let (bedtime, _) = tell(&teller, &video, "bedtime").await;
    let (documentary, _) = tell(&teller, &video, "documentary").await;
    for story in [&first, &summary, &social, &bedtime, &documentary] {
        assert!(!story.trim().is_empty());
        assert!(
            story.contains(&said_duration),
            "{said_duration:?} missing from:\n{story}"
        );
        assert!(
            story.contains("offline") && story.contains("Storyteller's analyser"),
            "says who wrote it:\n{story}"
        );
        assert!(!story.contains('{') && !story.contains("NaN"), "{story}");
    }
    // The story is cached by content: it must not name this copy's file.
    assert!(!first.contains("holiday"), "{first}");
    assert!(
        first.contains("This video") || first.contains("this video"),
        "{first}"
    );
    assert!(
        first.contains("three scenes") || first.contains("Three scenes"),
        "{first}"
    );
    assert!(first.contains("no AI model saw it"), "{first}");
    assert_ne!(first, summary);
    assert_ne!(summary, social);
    assert_ne!(first, social);
    assert!(summary.contains("\n- "), "a list:\n{summary}");
    assert!(social.trim().lines().count() <= 3, "{social}");
    assert!(social.contains('#'), "{social}");
    assert!(first.len() > summary.len() && summary.len() > social.len());
    assert!(bedtime.starts_with("Once upon a time"), "{bedtime}");
    assert!(bedtime.contains("changed twice"), "{bedtime}");
    // The video's cuts are at 2 s and 5 s.
    assert!(
        documentary.contains("cuts twice, at 0:02 and 0:05"),
        "{documentary}"
    );
    let all = [&first, &summary, &social, &bedtime, &documentary];
    let distinct: std::collections::HashSet<_> = all.iter().collect();
    assert_eq!(distinct.len(), all.len());
}

#[tokio::test]
async fn the_sink_sees_stages_in_order_progress_and_streamed_text() {
    let dir = tempfile::tempdir().unwrap();
    let video = support::make_video(dir.path(), "clip.mp4", 3, Look::TestSrc, false);
    let teller = OfflineStoryteller::new(support::media());
    let (mut sink, mut events) = support::sink_with_events();
    let usage = teller
        .tell(&request(&video, "narrative"), &mut sink)
        .await
        .unwrap();
    assert_eq!(usage, Default::default());

    let events = support::drain(&mut events);
    let mut stages: Vec<Stage> = Vec::new();
    let mut progress: Vec<f64> = Vec::new();
    let mut deltas = String::new();
    let mut delta_count = 0;
    for event in &events {
        match event {
            Event::JobUpdated {
                stage, progress: p, ..
            } => {
                if stages.last() != Some(stage) {
                    stages.push(*stage);
                }
                progress.push(*p);
            }
            Event::StoryDelta { text, .. } => {
                deltas.push_str(text);
                delta_count += 1;
            }
            other => panic!("unexpected event {other:?}"),
        }
    }
    assert_eq!(stages, [Stage::Probing, Stage::Analysing, Stage::Writing]);
    assert!(progress.windows(2).all(|w| w[1] >= w[0]), "{progress:?}");
    assert_eq!(progress.last().copied(), Some(1.0));
    assert!(
        progress.iter().any(|p| *p > 0.1 && *p < 0.9),
        "analysis progress shows: {progress:?}"
    );
    assert!(delta_count > 3, "the story streams in pieces, not one blob");
    assert_eq!(deltas, sink.text());
    // Writing starts only once analysis is done: every delta comes after the last Analysing update.
    let last_analysing = events
        .iter()
        .rposition(|e| {
            matches!(
                e,
                Event::JobUpdated {
                    stage: Stage::Analysing,
                    ..
                }
            )
        })
        .unwrap();
    let first_delta = events
        .iter()
        .position(|e| matches!(e, Event::StoryDelta { .. }))
        .unwrap();
    assert!(first_delta > last_analysing);
}

#[tokio::test]
async fn errors_map_to_the_right_kind() {
    let dir = tempfile::tempdir().unwrap();
    let teller = OfflineStoryteller::new(support::media());
    let video = support::make_video(dir.path(), "ok.mp4", 1, Look::Bars, false);

    let mut sink = support::sink();
    let error = teller
        .tell(&request(&video, "epic"), &mut sink)
        .await
        .unwrap_err();
    assert!(matches!(error, StoryError::Permanent { .. }), "{error:?}");
    assert!(error.to_string().contains("no preset 'epic'"), "{error}");

    let text = dir.path().join("readme.mp4");
    std::fs::write(&text, "not a video\n").unwrap();
    let error = teller
        .tell(&request(&text, "narrative"), &mut sink)
        .await
        .unwrap_err();
    assert_eq!(
        error,
        StoryError::Permanent {
            message: "readme.mp4 is not a video: it contains text, not video".into()
        }
    );

    let gone = dir.path().join("gone.mp4");
    let error = teller
        .tell(&request(&gone, "summary"), &mut sink)
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        format!("the file is gone: {}", gone.display())
    );
    assert!(matches!(error, StoryError::Permanent { .. }));

    let real = support::media();
    let broken = OfflineStoryteller::new(storyteller_engine::media::Media::with_binaries(
        dir.path().join("no-ffmpeg"),
        real.ffprobe().to_owned(),
        dir.path().join("thumbs"),
    ));
    let error = broken
        .tell(&request(&video, "narrative"), &mut sink)
        .await
        .unwrap_err();
    assert!(matches!(error, StoryError::Setup { .. }), "{error:?}");
    assert!(error.to_string().contains("install FFmpeg"), "{error}");
}

/// Child processes of this test process whose command line mentions `needle`, and whether each
/// is still alive (not a zombie waiting to be reaped).
#[cfg(target_os = "linux")]
fn live_children_mentioning(needle: &str) -> Vec<u32> {
    let me = std::process::id().to_string();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // pid (comm) state ppid …: split after the closing parenthesis of comm.
        let Some(after) = stat.rsplit_once(") ").map(|(_, rest)| rest) else {
            continue;
        };
        let mut fields = after.split_whitespace();
        let (state, ppid) = (fields.next().unwrap_or(""), fields.next().unwrap_or(""));
        if ppid != me || state == "Z" || state == "X" {
            continue;
        }
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains(needle) {
            found.push(pid);
        }
    }
    found
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn dropping_tell_kills_ffmpeg_at_once() {
    let dir = tempfile::tempdir().unwrap();
    // Big enough that the scene pass runs for a while (every frame of 40 s at 640×360).
    let options = support::VideoOptions {
        size: (640, 360),
        ..support::VideoOptions::default()
    };
    let video = support::make_scenes_with(
        dir.path(),
        "long-cancel-me.mp4",
        &[(Look::Mandelbrot, 20.0), (Look::TestSrc, 20.0)],
        true,
        &options,
    );
    let teller = OfflineStoryteller::new(support::media());
    let req = request(&video, "narrative");
    let mut sink = support::sink();
    let mut status = sink.watch_status();
    let running;
    {
        let story = teller.tell(&req, &mut sink);
        tokio::pin!(story);
        let deadline = Instant::now() + Duration::from_secs(30);
        // Poll the story until an ffmpeg child is seen working on our file.
        loop {
            tokio::select! {
                result = &mut story => panic!("finished before it could be cancelled: {result:?}"),
                _ = status.changed() => {}
                _ = tokio::time::sleep(Duration::from_millis(20)) => {}
            }
            if status.borrow().0 == Stage::Analysing {
                let children = live_children_mentioning("long-cancel-me.mp4");
                if !children.is_empty() {
                    running = children;
                    break;
                }
            }
            assert!(Instant::now() < deadline, "analysis never started");
        }
        // Leaving this block drops the story future mid-analysis.
    }
    let dropped_at = Instant::now();
    let mut alive = running.clone();
    while !alive.is_empty() && dropped_at.elapsed() < Duration::from_secs(2) {
        tokio::time::sleep(Duration::from_millis(10)).await;
        alive = live_children_mentioning("long-cancel-me.mp4");
    }
    assert!(
        alive.is_empty(),
        "ffmpeg children {alive:?} outlived the cancelled story (were {running:?})"
    );
    assert!(
        dropped_at.elapsed() < Duration::from_secs(1),
        "killed promptly"
    );
}
