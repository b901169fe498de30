//! Scene cuts: one ffmpeg pass whose `select` filter scores how much each picture differs from
//! the one before, and the rules that turn those scores into cuts and scenes.
//!
//! # Speed
//!
//! Decoding is what costs: on a 2-core machine a full-rate 1080p H.264 decode runs at roughly
//! 650 frames a second, so a 10-minute 1080p25 video (15 000 frames) takes about 23 s just to
//! decode, however small the frames are scaled afterwards. So the strategy depends on size
//! ([`choose_strategy`]):
//!
//! - [`SceneStrategy::EveryFrame`] for videos whose decode is cheap (under
//!   [`FULL_DECODE_PIXEL_BUDGET`] pixels in all, about 75 s of 1080p25 or any short clip): every
//!   frame is decoded and scored, so cuts land on the exact frame.
//! - [`SceneStrategy::KeyframesOnly`] for anything bigger: `-skip_frame nokey` makes the decoder
//!   drop every frame but the keyframes, which are decoded independently. The 10-minute 1080p
//!   video then takes under 2 s (mostly reading the file). Cuts are found to the nearest
//!   keyframe: encoders put one every 1–10 s and most (x264, phones, editors) put one at each
//!   scene change anyway, which is as precise as a story told in seconds needs.
//!
//! Either way frames are scaled to 64×36 with the cheap `fast_bilinear` scaler and scored in
//! RGB (the score needs no detail, but it needs colour: on YUV it reads brightness alone), the
//! loop filter is skipped (`-skip_loop_filter all`: the artefacts it would remove do not change
//! a scene score), autorotation is off (a turned picture scores the same) and audio is not
//! read (`-an`).
//!
//! The `select` filter computes the score; we let every frame through and print its
//! `lavfi.scene_score` with the `metadata` filter rather than filtering with
//! `select='gt(scene,T)'`, so the same pass also gives progress (its timestamps) and the
//! neighbouring scores that [`detect_cuts`] uses to tell a real cut from fast motion.

use super::probe::{input_arg, MediaInfo};
use super::process::{self, short_reason};
use super::MediaError;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Decode budget, in pixels, under which every frame is scored (width × height × fps × seconds).
/// 4·10⁹ is about 75 s of 1080p25, which decodes in about 3 s on two cores.
pub const FULL_DECODE_PIXEL_BUDGET: f64 = 4.0e9;

/// A score at or above this is a cut whatever its neighbours.
pub const HARD_CUT: f64 = 0.4;
/// A score at or above this is a cut if it stands well above its neighbours.
pub const SOFT_CUT: f64 = 0.2;
/// How far above both neighbours a soft cut must stand.
pub const SOFT_RATIO: f64 = 2.5;
/// A score at or above this is a cut between two still pictures (both neighbours at most
/// [`QUIET_NEIGHBOUR`]): a navy shot cut to a dark blue one, grey to a darker grey, scores
/// low but is as plain a cut as any to a person.
pub const QUIET_CUT: f64 = 0.03;
/// The most a neighbour of a quiet cut may score: a still picture's frames (encoder noise
/// aside) hardly differ, while motion and fades score on every frame.
pub const QUIET_NEIGHBOUR: f64 = 0.003;
/// Cuts closer than this are one event (a flash, a glitch): the stronger one is kept.
const MIN_SCENE_SECS: f64 = 0.5;

/// How the scene pass decodes the video.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SceneStrategy {
    /// Every frame decoded and scored.
    EveryFrame,
    /// Only keyframes decoded (`-skip_frame nokey`): fast, cuts to the nearest keyframe.
    KeyframesOnly,
}

/// One scene: the stretch between two cuts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Scene {
    /// Where it starts, in seconds.
    pub start: f64,
    /// Where it ends, in seconds.
    pub end: f64,
    /// The score of the cut that opened it (none for the first scene).
    pub cut_score: Option<f64>,
    /// How much moves within it, 0..1, from its keyframes (none if it has none).
    pub motion: Option<f64>,
}

impl Scene {
    /// Its length in seconds.
    pub fn length(&self) -> f64 {
        (self.end - self.start).max(0.0)
    }
}

/// What the scene pass found.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct ScenePass {
    /// `(time, score)` of every decoded frame.
    pub samples: Vec<(f64, f64)>,
}

/// Picks the decode strategy for a video of this size; see the module docs.
pub fn choose_strategy(info: &MediaInfo) -> SceneStrategy {
    let fps = info.video.fps.unwrap_or(30.0).clamp(1.0, 240.0);
    let pixels =
        f64::from(info.video.width) * f64::from(info.video.height) * fps * info.duration_secs;
    if pixels <= FULL_DECODE_PIXEL_BUDGET {
        SceneStrategy::EveryFrame
    } else {
        SceneStrategy::KeyframesOnly
    }
}

/// The ffmpeg arguments (after the program name) for the scene pass.
fn arguments(path: &Path, info: &MediaInfo, strategy: SceneStrategy) -> Vec<std::ffi::OsString> {
    let mut args: Vec<std::ffi::OsString> = [
        "-hide_banner",
        "-nostdin",
        "-nostats",
        "-loglevel",
        "error",
        "-threads",
        "0",
        "-noautorotate",
        "-skip_loop_filter",
        "all",
    ]
    .iter()
    .map(Into::into)
    .collect();
    if strategy == SceneStrategy::KeyframesOnly {
        args.extend(["-skip_frame", "nokey"].map(Into::into));
    }
    args.extend(["-an", "-sn", "-dn", "-i"].map(Into::into));
    args.push(input_arg(path));
    args.extend(
        [
            "-map".to_owned(),
            format!("0:{}", info.video.index),
            "-vf".to_owned(),
            // Scored in RGB: on YUV the score reads the luma plane alone, and a cut between
            // two colours of one brightness (red to green) would go unseen. `file=-` sends the
            // per-frame scores to stdout, away from the error log.
            "scale=64:36:flags=fast_bilinear,format=rgb24,select='gte(scene\\,0)',\
             metadata=mode=print:file=-"
                .to_owned(),
            "-f".to_owned(),
            "null".to_owned(),
            "-".to_owned(),
        ]
        .map(Into::into),
    );
    args
}

/// Runs the scene pass, reporting progress 0..1 as frames go by.
pub(crate) async fn run(
    ffmpeg: &Path,
    path: &Path,
    info: &MediaInfo,
    strategy: SceneStrategy,
    mut progress: impl FnMut(f64) + Send,
) -> Result<ScenePass, MediaError> {
    let mut cmd = process::command(ffmpeg);
    cmd.args(arguments(path, info, strategy));
    let mut parser = MetadataParser::default();
    let mut samples = Vec::new();
    let mut last_reported = 0.0;
    let mut truncated = false;
    let duration = info.duration_secs;
    let finished = process::run_lines(
        "ffmpeg",
        cmd,
        |line| {
            if let Some(sample) = parser.line(line) {
                samples.push(sample);
                let fraction = (sample.0 / duration).clamp(0.0, 1.0);
                // Throttled: a full decode prints thousands of frames.
                if fraction - last_reported >= 0.01 {
                    last_reported = fraction;
                    progress(fraction);
                }
            }
        },
        |line| {
            if line.contains("partial file") {
                truncated = true;
            }
        },
    )
    .await?;
    if !finished.status.success() {
        if let Some(fault) = process::machine_fault("ffmpeg", &finished, None) {
            return Err(fault);
        }
    }
    if process::killed_by_signal(&finished.status) {
        return Err(MediaError::Interrupted {
            tool: "ffmpeg",
            path: path.to_owned(),
        });
    }
    let reached = samples.last().map_or(0.0, |s| s.0);
    if truncated {
        return Err(MediaError::Corrupt {
            path: path.to_owned(),
            reason: format!(
                "it is cut short: the pictures stop at {} of the {} its header promises",
                super::clock(reached),
                super::clock(duration)
            ),
        });
    }
    if !finished.status.success() || samples.is_empty() {
        let reason = short_reason(&finished.stderr_tail, path)
            .unwrap_or_else(|| "no picture could be decoded".into());
        return Err(MediaError::Corrupt {
            path: path.to_owned(),
            reason: format!("its pictures cannot be decoded ({reason})"),
        });
    }
    progress(1.0);
    Ok(ScenePass { samples })
}

/// Reads the `metadata=print` output: a `frame:N pts:P pts_time:T` line, then that frame's
/// `lavfi.scene_score=S` line.
#[derive(Debug, Default)]
pub struct MetadataParser {
    /// The time of the frame whose score comes next.
    time: Option<f64>,
}

impl MetadataParser {
    /// Feeds one line; returns `(time, score)` when a frame's score is complete.
    pub fn line(&mut self, line: &str) -> Option<(f64, f64)> {
        let line = line.trim();
        if let Some(score) = line.strip_prefix("lavfi.scene_score=") {
            let score: f64 = score.trim().parse().ok()?;
            let time = self.time.take()?;
            return score.is_finite().then_some((time, score.clamp(0.0, 1.0)));
        }
        if line.starts_with("frame:") {
            self.time = line
                .split_whitespace()
                .find_map(|field| field.strip_prefix("pts_time:"))
                .and_then(|t| t.parse::<f64>().ok())
                .filter(|t| t.is_finite());
        }
        None
    }
}

/// Parses a `showinfo` line's `pts_time`, for tools that use `select='gt(scene,T)',showinfo`.
pub fn showinfo_pts_time(line: &str) -> Option<f64> {
    if !line.contains("Parsed_showinfo") && !line.contains("showinfo") {
        return None;
    }
    let rest = &line[line.find("pts_time:")? + "pts_time:".len()..];
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == 'e'))
        .unwrap_or(rest.len());
    rest[..end].parse().ok().filter(|t: &f64| t.is_finite())
}

/// Finds the cuts among `(time, score)` samples (in time order): a score at or above
/// [`HARD_CUT`], or at or above [`SOFT_CUT`] and [`SOFT_RATIO`] times both neighbours (so a
/// steady pan, whose scores are all high together, is not a cut). Cuts closer than half a second
/// count once. Returns `(time, score)` of each cut.
pub fn detect_cuts(samples: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut cuts: Vec<(f64, f64)> = Vec::new();
    for (i, &(time, score)) in samples.iter().enumerate() {
        // The first frame has nothing before it to differ from.
        if i == 0 {
            continue;
        }
        let before = samples[i - 1].1;
        let after = samples.get(i + 1).map_or(0.0, |s| s.1);
        let neighbours = before.max(after);
        let is_cut = score >= HARD_CUT
            || (score >= SOFT_CUT && score >= SOFT_RATIO * neighbours)
            || (score >= QUIET_CUT && neighbours <= QUIET_NEIGHBOUR);
        if !is_cut {
            continue;
        }
        match cuts.last_mut() {
            Some(last) if time - last.0 < MIN_SCENE_SECS => {
                if score > last.1 {
                    *last = (time, score);
                }
            }
            _ => cuts.push((time, score)),
        }
    }
    cuts
}

/// The scenes between the cuts of a video `duration` seconds long.
pub fn scenes_from_cuts(cuts: &[(f64, f64)], duration: f64) -> Vec<Scene> {
    let mut scenes = Vec::with_capacity(cuts.len() + 1);
    let mut start = 0.0;
    let mut cut_score = None;
    for &(time, score) in cuts {
        // A cut in the last half second (or past the end) would only make a sliver.
        if time <= start || time >= duration - 0.25 {
            continue;
        }
        scenes.push(Scene {
            start,
            end: time,
            cut_score,
            motion: None,
        });
        start = time;
        cut_score = Some(score);
    }
    scenes.push(Scene {
        start,
        end: duration.max(start),
        cut_score,
        motion: None,
    });
    scenes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_lines_pair_up() {
        let mut parser = MetadataParser::default();
        assert_eq!(parser.line("frame:0    pts:0       pts_time:0"), None);
        assert_eq!(parser.line("lavfi.scene_score=0.000000"), Some((0.0, 0.0)));
        assert_eq!(parser.line("frame:7    pts:3584    pts_time:0.28"), None);
        assert_eq!(
            parser.line("lavfi.scene_score=0.740864"),
            Some((0.28, 0.740864))
        );
        // A score without a frame line before it is ignored.
        assert_eq!(parser.line("lavfi.scene_score=0.5"), None);
        assert_eq!(parser.line("frame:8 pts:N/A pts_time:N/A"), None);
        assert_eq!(parser.line("lavfi.scene_score=0.5"), None);
    }

    #[test]
    fn showinfo_lines() {
        let line =
            "[Parsed_showinfo_2 @ 0x5581] n:   3 pts: 281600 pts_time:110     duration:  512 \
                    duration_time:0.04 fmt:yuv420p";
        assert_eq!(showinfo_pts_time(line), Some(110.0));
        let line = "[Parsed_showinfo_1 @ 0x1] n:0 pts:12 pts_time:4.52 pos:1";
        assert_eq!(showinfo_pts_time(line), Some(4.52));
        assert_eq!(showinfo_pts_time("frame=  100 fps=0.0"), None);
    }

    #[test]
    fn hard_and_soft_cuts() {
        // Keyframe scores from a real 10-minute test video: cuts at 70 (hard), 200 (soft:
        // dark to dark) and a zoom at 120-150 whose steady high scores are not cuts.
        let samples = [
            (0.0, 0.0),
            (60.0, 0.0013),
            (70.0, 0.7409),
            (80.0, 0.0),
            (110.0, 0.7133),
            (120.0, 0.1604),
            (130.0, 0.2277),
            (140.0, 0.0641),
            (150.0, 0.1709),
            (190.0, 0.0),
            (200.0, 0.2365),
            (210.0, 0.0200),
        ];
        let cuts: Vec<f64> = detect_cuts(&samples).iter().map(|c| c.0).collect();
        assert_eq!(cuts, [70.0, 110.0, 200.0]);
    }

    #[test]
    fn close_cuts_merge_keeping_the_stronger() {
        let samples = [
            (0.0, 0.0),
            (1.0, 0.5),
            (1.04, 0.9),
            (1.08, 0.0),
            (3.0, 0.6),
            (3.1, 0.0),
        ];
        assert_eq!(detect_cuts(&samples), [(1.04, 0.9), (3.0, 0.6)]);
    }

    #[test]
    fn scenes_cover_the_video() {
        let scenes = scenes_from_cuts(&[(2.0, 0.9), (5.0, 0.5), (9.9, 0.7)], 10.0);
        assert_eq!(scenes.len(), 3);
        assert_eq!(
            (scenes[0].start, scenes[0].end, scenes[0].cut_score),
            (0.0, 2.0, None)
        );
        assert_eq!(
            (scenes[1].start, scenes[1].end, scenes[1].cut_score),
            (2.0, 5.0, Some(0.9))
        );
        assert_eq!((scenes[2].start, scenes[2].end), (5.0, 10.0));
        assert_eq!(scenes_from_cuts(&[], 4.0).len(), 1);
    }
}
