//! Media analysis against real ffmpeg on videos generated for each test.

use crate::support::{self, Look, VideoOptions};
use std::path::Path;
use storyteller_engine::media::{
    locate_tools, AnalysisOptions, Media, MediaError, SceneStrategy, ShotRole,
};
use storyteller_engine::storyteller::StoryError;

fn near(actual: f64, expected: f64, tolerance: f64) -> bool {
    (actual - expected).abs() <= tolerance
}

async fn analyse(media: &Media, path: &Path) -> storyteller_engine::media::Analysis {
    let mut seen = Vec::new();
    let analysis = media
        .analyse(path, "hash-for-test", &mut |p| seen.push(p))
        .await
        .unwrap();
    assert!(!seen.is_empty(), "progress was reported");
    assert!(
        seen.windows(2).all(|w| w[1] >= w[0] - 1e-9),
        "progress never goes back: {seen:?}"
    );
    assert!(seen.iter().all(|p| (0.0..=1.0).contains(p)), "{seen:?}");
    assert_eq!(seen.last().copied(), Some(1.0));
    analysis
}

#[tokio::test]
async fn probe_reports_the_facts() {
    let dir = tempfile::tempdir().unwrap();
    let with_sound = support::make_video(dir.path(), "sound.mp4", 4, Look::TestSrc, true);
    let silent = support::make_video(dir.path(), "silent.mp4", 3, Look::Bars, false);
    let media = support::media();

    let info = media.probe(&with_sound).await.unwrap();
    assert!(near(info.duration_secs, 4.0, 0.2), "{info:?}");
    assert_eq!((info.video.width, info.video.height), (320, 180));
    assert!(near(info.video.fps.unwrap(), 25.0, 0.01), "{info:?}");
    assert_eq!(info.video.codec, "h264");
    assert_eq!(info.video.rotation, 0);
    assert_eq!(info.video.pixel_format.as_deref(), Some("yuv420p"));
    assert!(info.format_name.contains("mp4"), "{info:?}");
    assert!(info.size_bytes.unwrap() > 0);
    let audio = info.audio.expect("the tone is an audio stream");
    assert_eq!(audio.codec, "aac");
    assert_eq!(audio.sample_rate, Some(48000));
    assert_eq!(audio.channels, Some(1));

    let info = media.probe(&silent).await.unwrap();
    assert!(near(info.duration_secs, 3.0, 0.2), "{info:?}");
    assert_eq!(info.audio, None);
    // The facts round-trip through JSON (they are stored with the job).
    let json = serde_json::to_value(&info).unwrap();
    assert_eq!(
        serde_json::from_value::<storyteller_engine::media::MediaInfo>(json).unwrap(),
        info
    );
}

#[tokio::test]
async fn finds_cuts_near_the_real_ones_and_saves_thumbnails() {
    let dir = tempfile::tempdir().unwrap();
    let video = support::make_scenes(
        dir.path(),
        "scenes.mp4",
        &[
            (Look::Colour("navy"), 2.0),
            (Look::TestSrc, 2.0),
            (Look::Colour("orange"), 2.0),
            (Look::Bars, 2.0),
        ],
        true,
    );
    let thumbs = tempfile::tempdir().unwrap();
    let media = support::media_in(thumbs.path());
    let analysis = analyse(&media, &video).await;

    assert_eq!(analysis.strategy, SceneStrategy::EveryFrame);
    let starts: Vec<f64> = analysis.scenes.iter().map(|s| s.start).collect();
    assert_eq!(starts.len(), 4, "scenes start at {starts:?}");
    for (found, expected) in starts.iter().zip([0.0, 2.0, 4.0, 6.0]) {
        assert!(near(*found, expected, 0.1), "scenes start at {starts:?}");
    }
    assert!(near(
        analysis.scenes[3].end,
        analysis.info.duration_secs,
        1e-9
    ));

    // Keyframes: opening and closing shots, the rest spread over the scenes; JPEGs on disk.
    let keyframes = &analysis.keyframes;
    assert!((6..=8).contains(&keyframes.len()), "{keyframes:#?}");
    assert_eq!(keyframes.first().unwrap().role, ShotRole::Opening);
    assert_eq!(keyframes.last().unwrap().role, ShotRole::Closing);
    let scenes_seen: std::collections::BTreeSet<usize> =
        keyframes.iter().map(|k| k.scene).collect();
    assert_eq!(
        scenes_seen.len(),
        4,
        "every scene has a keyframe: {keyframes:#?}"
    );
    assert_eq!(analysis.thumbnails_dir, thumbs.path().join("hash-for-test"));
    for (i, keyframe) in keyframes.iter().enumerate() {
        assert_eq!(
            keyframe.thumbnail.parent().unwrap(),
            analysis.thumbnails_dir
        );
        assert_eq!(
            keyframe.thumbnail.file_name().unwrap(),
            format!("{:02}.jpg", i + 1).as_str()
        );
        let bytes = std::fs::read(&keyframe.thumbnail).unwrap();
        assert!(
            support::is_jpeg(&bytes),
            "{} is a JPEG",
            keyframe.thumbnail.display()
        );
    }
    let files = std::fs::read_dir(&analysis.thumbnails_dir).unwrap().count();
    assert_eq!(files, keyframes.len(), "no stray files");

    // Colour: the navy opening is dark blue, the orange scene orange, the bars multicoloured.
    let colour_of = |scene: usize| {
        keyframes
            .iter()
            .find(|k| k.scene == scene)
            .map(|k| k.colour.colour_name.clone())
            .unwrap()
    };
    assert_eq!(colour_of(0), "dark blue");
    assert!(colour_of(2).contains("orange"), "{}", colour_of(2));
    assert_eq!(colour_of(3), "multicoloured");
    let navy = &keyframes[0].colour;
    // Perceived lightness: navy is dark (OKLab L 0.27).
    assert!(navy.brightness < 0.3 && navy.contrast < 0.05, "{navy:?}");

    // Motion: flat colour is still; the test pattern moves.
    assert!(
        analysis.scenes[0].motion.unwrap() < 0.002,
        "{:?}",
        analysis.scenes
    );
    assert!(analysis.scenes[1].motion.unwrap() > analysis.scenes[0].motion.unwrap());
    assert!(analysis.motion.is_some());

    // Sound: a steady tone, never silent.
    let audio = analysis.audio.as_ref().unwrap();
    let lufs = audio.integrated_lufs.unwrap();
    assert!((-40.0..0.0).contains(&lufs), "{lufs}");
    assert!(audio.silences.is_empty(), "{audio:?}");
}

#[tokio::test]
async fn keyframes_only_strategy_finds_cuts_to_the_nearest_keyframe() {
    let dir = tempfile::tempdir().unwrap();
    let options = VideoOptions {
        gop: Some(25),
        ..VideoOptions::default()
    };
    let video = support::make_scenes_with(
        dir.path(),
        "gop.mp4",
        &[
            (Look::Colour("navy"), 3.0),
            (Look::TestSrc, 3.0),
            (Look::Colour("orange"), 3.0),
        ],
        false,
        &options,
    );
    let media = support::media().with_options(AnalysisOptions {
        strategy: Some(SceneStrategy::KeyframesOnly),
        keyframes: 6,
        ..AnalysisOptions::default()
    });
    let analysis = analyse(&media, &video).await;
    assert_eq!(analysis.strategy, SceneStrategy::KeyframesOnly);
    let starts: Vec<f64> = analysis.scenes.iter().map(|s| s.start).collect();
    assert_eq!(starts.len(), 3, "{starts:?}");
    assert!(
        near(starts[1], 3.0, 1.0) && near(starts[2], 6.0, 1.0),
        "{starts:?}"
    );
    assert!(analysis.keyframes.len() >= 3);
    assert_eq!(analysis.audio, None, "no audio track, no audio facts");
}

#[tokio::test]
async fn measures_loudness_and_finds_silences() {
    let dir = tempfile::tempdir().unwrap();
    let video = support::make_video_with_silence(dir.path(), "hush.mp4", 6.0, (2.0, 4.0));
    let media = support::media();
    let analysis = analyse(&media, &video).await;
    let audio = analysis.audio.unwrap();
    let lufs = audio.integrated_lufs.unwrap();
    assert!(lufs.is_finite() && (-40.0..0.0).contains(&lufs), "{lufs}");
    assert_eq!(audio.silences.len(), 1, "{audio:?}");
    let silence = &audio.silences[0];
    assert!(
        near(silence.start, 2.0, 0.3) && near(silence.end, 4.0, 0.3),
        "{silence:?}"
    );
}

/// The error `probe` gives for `path`, checked to be permanent.
async fn permanent_probe_error(media: &Media, path: &Path) -> (MediaError, String) {
    let error = media.probe(path).await.unwrap_err();
    let story = StoryError::from(&error);
    assert!(
        matches!(story, StoryError::Permanent { .. }),
        "{error:?} → {story:?}"
    );
    let message = error.to_string();
    // The temporary folder's random name may hold anything; judge the words around it.
    let words = message.replace(&path.display().to_string(), "<file>");
    assert!(!words.contains("0x"), "no raw ffmpeg noise: {message}");
    (error, message)
}

#[tokio::test]
async fn unusable_files_give_clear_permanent_errors() {
    let dir = tempfile::tempdir().unwrap();
    let media = support::media();

    let whole = support::make_video(dir.path(), "whole.mp4", 3, Look::TestSrc, true);
    let bytes = std::fs::read(&whole).unwrap();
    let truncated = dir.path().join("truncated.mp4");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let (error, message) = permanent_probe_error(&media, &truncated).await;
    assert!(matches!(error, MediaError::Corrupt { .. }), "{error:?}");
    assert!(
        message.starts_with("truncated.mp4 is damaged or incomplete"),
        "{message}"
    );
    assert!(message.contains("did not finish"), "{message}");

    let text = dir.path().join("notes.mp4");
    std::fs::write(&text, "Shopping list:\n- eggs\n- milk\n").unwrap();
    let (error, message) = permanent_probe_error(&media, &text).await;
    assert!(matches!(error, MediaError::NotVideo { .. }), "{error:?}");
    assert_eq!(
        message,
        "notes.mp4 is not a video: it contains text, not video"
    );

    let empty = dir.path().join("empty.mp4");
    std::fs::write(&empty, b"").unwrap();
    let (error, message) = permanent_probe_error(&media, &empty).await;
    assert!(matches!(error, MediaError::EmptyFile { .. }), "{error:?}");
    assert_eq!(
        message,
        "empty.mp4 is empty (0 bytes), so there is no video in it"
    );

    let gone = dir.path().join("gone.mp4");
    let (error, message) = permanent_probe_error(&media, &gone).await;
    assert!(matches!(error, MediaError::FileMissing { .. }), "{error:?}");
    assert_eq!(message, format!("the file is gone: {}", gone.display()));

    // A sound file is not a video either.
    let song = dir.path().join("song.m4a");
    support::ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "sine=duration=1",
        "-c:a",
        "aac",
        song.to_str().unwrap(),
    ]);
    let (error, message) = permanent_probe_error(&media, &song).await;
    assert!(
        matches!(
            error,
            MediaError::NoVideoStream {
                has_audio: true,
                ..
            }
        ),
        "{error:?}"
    );
    assert_eq!(
        message,
        "song.m4a has no pictures in it (it holds only sound)"
    );
}

#[tokio::test]
async fn a_file_cut_short_after_its_index_is_caught_by_the_scene_pass() {
    // With the index at the front the container opens fine; the pictures just stop.
    let dir = tempfile::tempdir().unwrap();
    let options = VideoOptions {
        faststart: true,
        ..VideoOptions::default()
    };
    let whole = support::make_scenes_with(
        dir.path(),
        "whole.mp4",
        &[(Look::TestSrc, 6.0)],
        true,
        &options,
    );
    let bytes = std::fs::read(&whole).unwrap();
    let cut = dir.path().join("cut.mp4");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let media = support::media();
    let error = media.analyse(&cut, "cut", &mut |_| {}).await.unwrap_err();
    assert!(matches!(error, MediaError::Corrupt { .. }), "{error:?}");
    assert!(
        matches!(StoryError::from(&error), StoryError::Permanent { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("cut short"), "{error}");
}

#[tokio::test]
async fn missing_tools_are_a_setup_error_naming_what_to_install() {
    let dir = tempfile::tempdir().unwrap();
    let video = support::make_video(dir.path(), "v.mp4", 1, Look::Bars, false);
    let real = support::media();
    let broken = Media::with_binaries(
        real.ffmpeg().to_owned(),
        dir.path().join("no-such-ffprobe"),
        dir.path().join("thumbs"),
    );
    let error = broken.probe(&video).await.unwrap_err();
    assert!(
        matches!(
            error,
            MediaError::ToolMissing {
                tool: "ffprobe",
                ..
            }
        ),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.starts_with("ffprobe could not be run from"),
        "{message}"
    );
    assert!(message.contains("sudo apt install ffmpeg"), "{message}");
    assert!(matches!(StoryError::from(&error), StoryError::Setup { .. }));

    // And `locate` explains a missing tool the same way (pure: no environment mutated).
    let empty = tempfile::tempdir().unwrap();
    let error = locate_tools(None, None, Some(empty.path().as_os_str())).unwrap_err();
    assert!(error
        .to_string()
        .starts_with("ffmpeg and ffprobe were not found on PATH; install FFmpeg"));
}
