//! Rewrapping a video in an MP4 container, for a service that does not take the one it came in
//! (Gemini refuses Matroska, MPEG-TS, Ogg…). The streams are copied as they are, which takes
//! seconds even for an hour of video; only when MP4 cannot carry them (a codec it has no tag
//! for) is the video transcoded to H.264 and AAC. Also the sound alone, as speech recognisers
//! take it (16 kHz mono WAV), for a transcript.

use super::process::{self, command, run_collect};
use super::{Media, MediaError};
use std::path::Path;

impl Media {
    /// Writes `source` as an MP4 at `target` (through `target.part`, renamed when complete, so a
    /// half-written file is never taken for a finished one). Keeps the first video stream and
    /// every audio stream.
    pub async fn remux_to_mp4(&self, source: &Path, target: &Path) -> Result<(), MediaError> {
        let partial = target.with_extension("mp4.part");
        let copied = self.rewrap(source, &partial, false).await;
        let written = match copied {
            Ok(()) => Ok(()),
            Err(error @ (MediaError::DiskFull { .. } | MediaError::ToolBroken { .. })) => {
                Err(error)
            }
            Err(error) => {
                tracing::info!(%error, "the streams do not fit MP4 as they are; transcoding");
                self.rewrap(source, &partial, true).await
            }
        };
        if let Err(error) = written {
            let _ = tokio::fs::remove_file(&partial).await;
            return Err(error);
        }
        tokio::fs::rename(&partial, target)
            .await
            .map_err(|e| MediaError::ToolFailed {
                tool: "ffmpeg",
                message: format!("the rewrapped video could not be put in place: {e}"),
            })
    }

    /// Writes the first audio stream of `source` at `target` as 16 kHz mono 16-bit WAV, the
    /// form speech recognisers (whisper.cpp, faster-whisper) read (through `target.part`).
    pub async fn extract_speech(&self, source: &Path, target: &Path) -> Result<(), MediaError> {
        let partial = target.with_extension("wav.part");
        let mut cmd = command(self.ffmpeg());
        cmd.args(["-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-i"])
            .arg(source)
            .args([
                "-map",
                "0:a:0",
                "-vn",
                "-ac",
                "1",
                "-ar",
                "16000",
                "-c:a",
                "pcm_s16le",
                "-f",
                "wav",
            ])
            .arg(&partial);
        let collected = run_collect("ffmpeg", cmd, 0).await?;
        if !collected.finished.status.success() {
            let _ = tokio::fs::remove_file(&partial).await;
            let what = format!(
                "the sound of {} could not be taken out for its transcript",
                super::display_name(source)
            );
            return Err(failure(&collected.finished, target, what));
        }
        tokio::fs::rename(&partial, target)
            .await
            .map_err(|e| MediaError::ToolFailed {
                tool: "ffmpeg",
                message: format!("the extracted sound could not be put in place: {e}"),
            })
    }

    async fn rewrap(
        &self,
        source: &Path,
        target: &Path,
        transcode: bool,
    ) -> Result<(), MediaError> {
        let mut cmd = command(self.ffmpeg());
        cmd.args(["-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-i"])
            .arg(source)
            .args(["-map", "0:v:0", "-map", "0:a?", "-dn", "-sn"]);
        if transcode {
            cmd.args([
                "-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-pix_fmt", "yuv420p",
                "-c:a", "aac", "-b:a", "128k",
            ]);
        } else {
            cmd.args(["-c", "copy"]);
        }
        cmd.args(["-movflags", "+faststart", "-f", "mp4"])
            .arg(target);
        let collected = run_collect("ffmpeg", cmd, 0).await?;
        if collected.finished.status.success() {
            return Ok(());
        }
        let what = format!("rewrapping {} as MP4 failed", super::display_name(source));
        Err(failure(&collected.finished, target, what))
    }
}

/// What an ffmpeg writing `target` that ended in failure means: a fault of the machine (a
/// full disk, no permission), named as such, or `what` failed, with ffmpeg's last word.
fn failure(finished: &process::Finished, target: &Path, what: String) -> MediaError {
    let folder = target.parent().unwrap_or(target);
    if let Some(fault) = process::machine_fault("ffmpeg", finished, Some(folder)) {
        return fault;
    }
    let said = finished
        .stderr_tail
        .last()
        .map(String::as_str)
        .unwrap_or("no reason given");
    MediaError::ToolFailed {
        tool: "ffmpeg",
        message: format!("{what}: {said}"),
    }
}
