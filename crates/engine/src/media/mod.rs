//! Media analysis with ffmpeg and ffprobe: what a file is ([`Media::probe`]), and what happens
//! in it ([`Media::analyse`]): scenes and their cuts, keyframe thumbnails with their light,
//! colour and motion, and the loudness and silences of the sound.
//!
//! Everything runs the real `ffmpeg`/`ffprobe` binaries as child processes (found with
//! [`Media::locate`]); each child is killed when the future driving it is dropped, so cancelling
//! a job stops its ffmpeg at once. Output is streamed, never buffered whole, so a multi-gigabyte
//! file costs no more memory than a small one.
//!
//! An analysis is three passes: the scene pass and the audio pass run side by side (one decodes
//! only pictures, the other only sound, so on two cores they barely slow each other), then a few
//! short seeks fetch the keyframes, at most [`AnalysisOptions::parallel_frames`] at a time. See
//! [`scenes`] for how the scene pass stays fast on long, large videos.

mod audio;
mod frames;
mod locate;
mod probe;
mod process;
mod remux;
pub mod scenes;

pub use audio::{AudioFacts, AudioLogParser, Silence, LUFS_FLOOR, SILENT_LUFS};
pub use frames::{
    colour_facts, colour_name, motion, neutral_name, oklab, oklch, pick_keyframes, ColourFacts,
    Keyframe, KeyframePick, ShotRole,
};
pub use locate::{locate_tools, FFMPEG_ENV, FFPROBE_ENV, INSTALL_HINT};
pub use probe::{describe_format, parse_probe, AudioStream, MediaInfo, VideoStream};
pub use scenes::{Scene, SceneStrategy};

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Share of the analysis progress taken by the scene and audio passes (the keyframes get the rest).
const PASSES_SHARE: f64 = 0.7;

/// Why a file could not be probed or analysed.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// ffmpeg or ffprobe is not installed (or not where it was said to be).
    #[error("{message}")]
    ToolMissing {
        /// The tool (the first missing one).
        tool: &'static str,
        /// What is missing and how to install it.
        message: String,
    },
    /// A tool could not be started or read for a passing reason (too many processes, …).
    #[error("{tool} failed: {message}")]
    ToolFailed {
        /// The tool.
        tool: &'static str,
        /// What happened.
        message: String,
    },
    /// A tool was killed while it worked (out of memory, a signal): worth another try.
    #[error("{tool} stopped unexpectedly while reading {}", display_name(.path))]
    Interrupted {
        /// The tool.
        tool: &'static str,
        /// The file.
        path: PathBuf,
    },
    /// The file is not there any more.
    #[error("the file is gone: {}", crate::wire::display_path(.path))]
    FileMissing {
        /// Where it was.
        path: PathBuf,
    },
    /// The file is there but cannot be read.
    #[error("{} cannot be read: {message}", display_name(.path))]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// The file has no bytes.
    #[error("{} is empty (0 bytes), so there is no video in it", display_name(.path))]
    EmptyFile {
        /// The file.
        path: PathBuf,
    },
    /// The file is something other than a video (text, a picture, an unknown format).
    #[error("{} is not a video: {reason}", display_name(.path))]
    NotVideo {
        /// The file.
        path: PathBuf,
        /// What it is instead, or what FFmpeg said.
        reason: String,
    },
    /// The file is a video container but damaged or cut short.
    #[error("{} is damaged or incomplete: {reason}", display_name(.path))]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong, for people.
        reason: String,
    },
    /// The file holds no pictures.
    #[error("{} has no pictures in it ({})", display_name(.path),
        if *.has_audio { "it holds only sound" } else { "there is no video stream" })]
    NoVideoStream {
        /// The file.
        path: PathBuf,
        /// Whether it has sound (an audio file renamed, a podcast).
        has_audio: bool,
    },
    /// The file says it lasts no time at all.
    #[error("{} has no length (0 seconds), so there is nothing to tell", display_name(.path))]
    ZeroDuration {
        /// The file.
        path: PathBuf,
    },
    /// A tool is there but cannot run at all: its libraries are missing, it is built for
    /// another machine, it is not executable. Every job would fail the same way.
    #[error(
        "{tool} cannot run: {message}; reinstall FFmpeg, or point {env_var} at a working \
             {tool}"
    )]
    ToolBroken {
        /// The tool.
        tool: &'static str,
        /// The variable that can name another copy.
        env_var: &'static str,
        /// What it said, or how it ended.
        message: String,
    },
    /// The disk being written to is full: the machine's fault, never the video's.
    #[error("the disk is full at {}: free some space there, and the queue starts again by \
             itself", .path.display())]
    DiskFull {
        /// Where the write failed (the folder, or the file).
        path: PathBuf,
    },
    /// A thumbnail could not be written (permissions, a read-only folder).
    #[error("a thumbnail could not be saved at {}: {message}", .path.display())]
    Thumbnails {
        /// The thumbnail or its folder.
        path: PathBuf,
        /// Why.
        message: String,
    },
}

/// Knobs for [`Media::analyse`]; the defaults suit the desktop app.
#[derive(Clone, Debug, PartialEq)]
pub struct AnalysisOptions {
    /// How many keyframes to look at (opening and closing shots included).
    pub keyframes: usize,
    /// Thumbnail width in pixels (narrower videos are not enlarged).
    pub thumbnail_width: u32,
    /// How many keyframe extractions run at once.
    pub parallel_frames: usize,
    /// Force a scene strategy instead of choosing by size.
    pub strategy: Option<SceneStrategy>,
}

impl Default for AnalysisOptions {
    fn default() -> Self {
        Self {
            keyframes: 8,
            thumbnail_width: 320,
            // Two cores is the machine we plan for; each seek is itself multi-threaded.
            parallel_frames: 2,
            strategy: None,
        }
    }
}

/// Everything learned about one video.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Analysis {
    /// The probe facts.
    pub info: MediaInfo,
    /// How the scene pass decoded the video.
    pub strategy: SceneStrategy,
    /// The scenes, in order, covering the whole video.
    pub scenes: Vec<Scene>,
    /// The keyframes looked at, in time order.
    pub keyframes: Vec<Keyframe>,
    /// Overall motion, 0..1 (mean over the keyframes and, on a long video, motion samples
    /// spread over its whole length), when measured.
    pub motion: Option<f64>,
    /// The sound, if the video has any.
    pub audio: Option<AudioFacts>,
    /// Where the thumbnails are.
    pub thumbnails_dir: PathBuf,
}

impl Analysis {
    /// Mean scene length in seconds.
    pub fn mean_scene_secs(&self) -> f64 {
        self.info.duration_secs / self.scenes.len().max(1) as f64
    }
}

/// What the scene and audio passes found: the slow part of an analysis, kept between attempts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PassesDone {
    /// How the picture pass decoded.
    pub strategy: SceneStrategy,
    /// The scenes between the cuts found.
    pub scenes: Vec<Scene>,
    /// When only keyframes were decoded, their times (where thumbnails can be taken cheaply).
    pub keyframe_times: Option<Vec<f64>>,
    /// The sound, if there is any.
    pub audio: Option<AudioFacts>,
}

/// Located ffmpeg and ffprobe binaries, and where thumbnails go.
#[derive(Clone, Debug)]
pub struct Media {
    /// The ffmpeg binary.
    ffmpeg: PathBuf,
    /// The ffprobe binary.
    ffprobe: PathBuf,
    /// Thumbnails go in a folder per content hash under this.
    thumbnails_root: PathBuf,
    /// How analyses are run.
    options: AnalysisOptions,
}

impl Media {
    /// Finds ffmpeg and ffprobe (`STORYTELLER_FFMPEG`/`STORYTELLER_FFPROBE`, then `PATH`);
    /// thumbnails go under `thumbnails_root/<content hash>/`.
    pub fn locate(thumbnails_root: PathBuf) -> Result<Media, MediaError> {
        let (ffmpeg, ffprobe) = locate_tools(
            std::env::var_os(FFMPEG_ENV).as_deref(),
            std::env::var_os(FFPROBE_ENV).as_deref(),
            std::env::var_os("PATH").as_deref(),
        )?;
        Ok(Self::with_binaries(ffmpeg, ffprobe, thumbnails_root))
    }

    /// Uses these binaries as they are (not checked until run).
    pub fn with_binaries(ffmpeg: PathBuf, ffprobe: PathBuf, thumbnails_root: PathBuf) -> Media {
        Media {
            ffmpeg,
            ffprobe,
            thumbnails_root,
            options: AnalysisOptions::default(),
        }
    }

    /// The same, analysing with `options`.
    pub fn with_options(mut self, options: AnalysisOptions) -> Media {
        self.options = options;
        self
    }

    /// The ffmpeg binary.
    pub fn ffmpeg(&self) -> &Path {
        &self.ffmpeg
    }

    /// The ffprobe binary.
    pub fn ffprobe(&self) -> &Path {
        &self.ffprobe
    }

    /// The analysis options.
    pub fn options(&self) -> &AnalysisOptions {
        &self.options
    }

    /// The folder holding the thumbnails of the file with this content hash.
    pub fn thumbnails_dir(&self, content_hash: &str) -> PathBuf {
        thumbnails_dir(&self.thumbnails_root, content_hash)
    }

    /// The container and stream facts of `path`, or why it is not a usable video.
    pub async fn probe(&self, path: &Path) -> Result<MediaInfo, MediaError> {
        probe::probe(&self.ffprobe, path).await
    }

    /// Probes and analyses `path`, reporting progress 0..1.
    pub async fn analyse(
        &self,
        path: &Path,
        content_hash: &str,
        progress: &mut (dyn FnMut(f64) + Send),
    ) -> Result<Analysis, MediaError> {
        let info = self.probe(path).await?;
        self.analyse_probed(path, &info, content_hash, progress)
            .await
    }

    /// Analyses `path`, already probed as `info`, reporting progress 0..1.
    pub async fn analyse_probed(
        &self,
        path: &Path,
        info: &MediaInfo,
        content_hash: &str,
        progress: &mut (dyn FnMut(f64) + Send),
    ) -> Result<Analysis, MediaError> {
        self.analyse_resuming(path, info, content_hash, None, progress, &mut |_| {})
            .await
    }

    /// [`Media::analyse_probed`], continuing from `passes` (the scene and audio passes an
    /// earlier attempt finished) when given, and handing the passes to `passes_done` as soon as
    /// they are finished here, so that a later attempt can skip them: they are most of the work.
    pub async fn analyse_resuming(
        &self,
        path: &Path,
        info: &MediaInfo,
        content_hash: &str,
        passes: Option<PassesDone>,
        progress: &mut (dyn FnMut(f64) + Send),
        passes_done: &mut (dyn FnMut(&PassesDone) + Send),
    ) -> Result<Analysis, MediaError> {
        let dir = self.thumbnails_dir(content_hash);
        // Made first: a full disk should fail before minutes of decoding, not after.
        tokio::fs::create_dir_all(&dir).await.map_err(|e| {
            process::disk_full(&e, &dir).unwrap_or_else(|| MediaError::Thumbnails {
                path: dir.clone(),
                message: e.to_string(),
            })
        })?;

        let PassesDone {
            strategy,
            mut scenes,
            keyframe_times,
            audio,
        } = match passes {
            Some(passes) => {
                progress(PASSES_SHARE);
                passes
            }
            None => {
                let strategy = self
                    .options
                    .strategy
                    .unwrap_or_else(|| scenes::choose_strategy(info));
                let (scene_pass, audio) = self.passes(path, info, strategy, progress).await?;
                let cuts = scenes::detect_cuts(&scene_pass.samples);
                let done = PassesDone {
                    strategy,
                    scenes: scenes::scenes_from_cuts(&cuts, info.duration_secs),
                    keyframe_times: (strategy == SceneStrategy::KeyframesOnly)
                        .then(|| scene_pass.samples.iter().map(|s| s.0).collect()),
                    audio,
                };
                passes_done(&done);
                done
            }
        };
        let picks = pick_keyframes(
            &scenes,
            info.duration_secs,
            self.options.keyframes,
            keyframe_times.as_deref(),
        );
        let samples = motion_sample_times(info.duration_secs, keyframe_times.as_deref());
        let (keyframes, sampled) = self
            .look(path, info, &dir, picks, samples, progress)
            .await?;
        if keyframes.is_empty() {
            return Err(MediaError::Corrupt {
                path: path.to_owned(),
                reason: "not one picture could be decoded from it".into(),
            });
        }
        remove_stale_thumbnails(&dir, &keyframes).await;

        // Each scene's motion and the whole video's from every moment measured: the keyframes,
        // and on a long video the samples spread over all of it.
        for (index, scene) in scenes.iter_mut().enumerate() {
            let (start, end) = (scene.start, scene.end);
            scene.motion = mean(
                keyframes
                    .iter()
                    .filter(|k| k.scene == index)
                    .filter_map(|k| k.motion)
                    .chain(
                        sampled
                            .iter()
                            .filter(|(t, _)| *t >= start && *t < end)
                            .map(|(_, m)| *m),
                    ),
            );
        }
        let motion = mean(
            keyframes
                .iter()
                .filter_map(|k| k.motion)
                .chain(sampled.iter().map(|(_, m)| *m)),
        );
        progress(1.0);
        Ok(Analysis {
            info: info.clone(),
            strategy,
            scenes,
            keyframes,
            motion,
            audio,
            thumbnails_dir: dir,
        })
    }

    /// The scene and audio passes, side by side, with their progress merged.
    async fn passes(
        &self,
        path: &Path,
        info: &MediaInfo,
        strategy: SceneStrategy,
        progress: &mut (dyn FnMut(f64) + Send),
    ) -> Result<(scenes::ScenePass, Option<AudioFacts>), MediaError> {
        // Both passes report into one channel; this loop is the only caller of `progress`.
        let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel::<(usize, f64)>();
        let scene_sender = sender.clone();
        let audio_sender = sender;
        let work = async {
            tokio::try_join!(
                scenes::run(&self.ffmpeg, path, info, strategy, move |p| {
                    let _ = scene_sender.send((0, p));
                }),
                audio::run(&self.ffmpeg, path, info, move |p| {
                    let _ = audio_sender.send((1, p));
                }),
            )
        };
        tokio::pin!(work);
        // The picture pass is the slow one when every frame is decoded; weigh it so.
        let weights = match (strategy, info.audio.is_some()) {
            (_, false) => [1.0, 0.0],
            (SceneStrategy::EveryFrame, true) => [0.8, 0.2],
            (SceneStrategy::KeyframesOnly, true) => [0.5, 0.5],
        };
        let mut fractions = [0.0f64; 2];
        loop {
            tokio::select! {
                biased;
                Some((pass, fraction)) = receiver.recv() => {
                    fractions[pass] = fraction;
                    progress(PASSES_SHARE * (weights[0] * fractions[0] + weights[1] * fractions[1]));
                }
                result = &mut work => return result,
            }
        }
    }

    /// Extracts the picked keyframes and the motion samples (see [`motion_sample_times`]), a
    /// bounded number at a time: the keyframes in time order, and `(time, motion)` of each
    /// sample that could be read.
    async fn look(
        &self,
        path: &Path,
        info: &MediaInfo,
        dir: &Path,
        picks: Vec<KeyframePick>,
        samples: Vec<f64>,
        progress: &mut (dyn FnMut(f64) + Send),
    ) -> Result<(Vec<Keyframe>, Vec<(f64, f64)>), MediaError> {
        /// One moment looked at: a keyframe (with its slot), or a motion sample.
        enum Looked {
            Keyframe(usize, Option<Keyframe>),
            Sample(Option<(f64, f64)>),
        }
        let total = picks.len() + samples.len();
        let mut keyframes: Vec<Option<Keyframe>> = vec![None; picks.len()];
        let mut motions = Vec::with_capacity(samples.len());
        // A JoinSet aborts its tasks when dropped, and each task's ffmpeg dies with it.
        let mut tasks = tokio::task::JoinSet::new();
        let mut pending_picks = picks.into_iter().enumerate();
        let mut pending_samples = samples.into_iter();
        let mut done = 0usize;
        let parallel = self.options.parallel_frames.max(1);
        loop {
            while tasks.len() < parallel {
                let ffmpeg = self.ffmpeg.clone();
                let path = path.to_owned();
                let info = info.clone();
                if let Some((slot, pick)) = pending_picks.next() {
                    let thumbnail = dir.join(format!("{:02}.jpg", slot + 1));
                    let width = self.options.thumbnail_width;
                    tasks.spawn(async move {
                        let mut time = pick.time;
                        let shot = || frames::Thumbnail {
                            path: &thumbnail,
                            width,
                        };
                        let mut extracted =
                            frames::extract(&ffmpeg, &path, &info, time, Some(shot())).await?;
                        // Near the end, a stated duration can exceed the last real frame: step
                        // back.
                        if extracted.is_none() && time >= 1.0 {
                            time = (time - 1.0).max(0.0);
                            extracted =
                                frames::extract(&ffmpeg, &path, &info, time, Some(shot())).await?;
                        }
                        let keyframe = extracted.map(|e| Keyframe {
                            time,
                            scene: pick.scene,
                            role: pick.role,
                            thumbnail: thumbnail.clone(),
                            colour: e.colour,
                            motion: e.motion,
                        });
                        Ok::<_, MediaError>(Looked::Keyframe(slot, keyframe))
                    });
                } else if let Some(time) = pending_samples.next() {
                    tasks.spawn(async move {
                        let extracted = frames::extract(&ffmpeg, &path, &info, time, None).await?;
                        let sample = extracted.and_then(|e| e.motion).map(|m| (time, m));
                        Ok::<_, MediaError>(Looked::Sample(sample))
                    });
                } else {
                    break;
                }
            }
            let Some(joined) = tasks.join_next().await else {
                break;
            };
            let looked = joined.map_err(|e| MediaError::ToolFailed {
                tool: "ffmpeg",
                message: format!("a keyframe task stopped: {e}"),
            })??;
            match looked {
                Looked::Keyframe(slot, keyframe) => keyframes[slot] = keyframe,
                Looked::Sample(sample) => motions.extend(sample),
            }
            done += 1;
            progress(PASSES_SHARE + (1.0 - PASSES_SHARE) * done as f64 / total.max(1) as f64);
        }
        motions.sort_by(|a, b| a.0.total_cmp(&b.0));
        Ok((keyframes.into_iter().flatten().collect(), motions))
    }
}

/// Videos at least this long have their motion sampled across the whole length, not only at
/// the keyframes (which sit in the longest scenes and at the ends).
pub const MOTION_SAMPLED_FROM_SECS: f64 = 60.0;
/// How many motion samples a long video gets.
pub const MOTION_SAMPLES: usize = 12;

/// When to sample motion in a video of `duration` seconds: [`MOTION_SAMPLES`] moments evenly
/// spread over the whole of a long video (each moved to the nearest keyframe when
/// `keyframe_times` are known, where seeking is cheap), none for a short one, whose keyframes
/// already cover it.
pub fn motion_sample_times(duration: f64, keyframe_times: Option<&[f64]>) -> Vec<f64> {
    if duration.is_nan() || duration < MOTION_SAMPLED_FROM_SECS {
        return Vec::new();
    }
    let mut times: Vec<f64> = (0..MOTION_SAMPLES)
        .map(|i| duration * (i as f64 + 0.5) / MOTION_SAMPLES as f64)
        .map(|t| {
            keyframe_times
                .and_then(|times| {
                    times
                        .iter()
                        .copied()
                        .min_by(|a, b| (a - t).abs().total_cmp(&(b - t).abs()))
                })
                .unwrap_or(t)
        })
        .collect();
    times.dedup_by(|a, b| (*a - *b).abs() < 0.25);
    times
}

/// Removes thumbnails from an earlier analysis that this one did not write (and stray parts).
async fn remove_stale_thumbnails(dir: &Path, keep: &[Keyframe]) {
    let Ok(mut entries) = tokio::fs::read_dir(dir).await else {
        return;
    };
    while let Ok(Some(entry)) = entries.next_entry().await {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let ours = name.ends_with(".jpg") || name.ends_with(".jpg.part");
        if ours && !keep.iter().any(|k| k.thumbnail == path) {
            let _ = tokio::fs::remove_file(&path).await;
        }
    }
}

/// The mean of some values, if there are any.
fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (sum, count) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    (count > 0).then(|| sum / count as f64)
}

/// The name people know a file by: its file name, or the whole path if it has none.
pub fn display_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// A time as a clock reading: `0:07`, `12:34`, `1:02:03`.
pub fn clock(secs: f64) -> String {
    let total = if secs.is_finite() {
        secs.max(0.0).round() as u64
    } else {
        0
    };
    let (h, m, s) = (total / 3600, (total / 60) % 60, total % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m}:{s:02}")
    }
}

/// Where the thumbnails of the video with `content_hash` live under `root`.
pub fn thumbnails_dir(root: &Path, content_hash: &str) -> PathBuf {
    // The hash names a folder: keep it to safe characters so it cannot climb out.
    let safe: String = content_hash
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
        .take(128)
        .collect();
    root.join(if safe.is_empty() { "unknown" } else { &safe })
}

/// Deletes the thumbnails of videos no job shows any more (see
/// [`Removed`](crate::store::Removed)); a folder already gone is fine.
pub async fn remove_thumbnails(root: PathBuf, content_hashes: Vec<String>) {
    let removal = tokio::task::spawn_blocking(move || {
        for hash in content_hashes {
            let dir = thumbnails_dir(&root, &hash);
            match std::fs::remove_dir_all(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!(dir = %dir.display(), error = %e, "could not remove thumbnails")
                }
            }
        }
    });
    if let Err(e) = removal.await {
        tracing::warn!(error = %e, "removing thumbnails stopped");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_videos_have_motion_sampled_over_their_whole_length() {
        assert!(motion_sample_times(59.0, None).is_empty());
        let times = motion_sample_times(7200.0, None);
        assert_eq!(times.len(), MOTION_SAMPLES);
        assert!((times[0] - 300.0).abs() < 1e-9 && (times[11] - 6900.0).abs() < 1e-9);
        // Moved to the nearest keyframe; two on one keyframe are one sample.
        let keyframes: Vec<f64> = (0..=4).map(|i| f64::from(i) * 30.0).collect();
        let times = motion_sample_times(120.0, Some(&keyframes));
        assert_eq!(times, [0.0, 30.0, 60.0, 90.0, 120.0]);
    }

    #[test]
    fn clocks() {
        assert_eq!(clock(0.0), "0:00");
        assert_eq!(clock(7.4), "0:07");
        assert_eq!(clock(754.0), "12:34");
        assert_eq!(clock(3723.0), "1:02:03");
        assert_eq!(clock(f64::NAN), "0:00");
    }

    #[test]
    fn thumbnail_dirs_cannot_escape_the_root() {
        let media = Media::with_binaries("ffmpeg".into(), "ffprobe".into(), "/thumbs".into());
        assert_eq!(media.thumbnails_dir("ab12"), Path::new("/thumbs/ab12"));
        assert_eq!(media.thumbnails_dir("../../etc"), Path::new("/thumbs/etc"));
        assert_eq!(media.thumbnails_dir("/"), Path::new("/thumbs/unknown"));
    }
}
