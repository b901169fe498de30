//! Sound: integrated loudness (the `ebur128` filter's summary, in LUFS) and silences
//! (`silencedetect`), both from one `-vn` pass that decodes only the audio.

use super::probe::input_arg;
use super::process::{self, short_reason};
use super::{MediaError, MediaInfo};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Quieter than this counts as silence.
pub const SILENCE_NOISE_DB: f64 = -50.0;
/// A silence shorter than this (seconds) is a pause, not worth telling.
pub const SILENCE_MIN_SECS: f64 = 1.0;
/// What `ebur128` reports for digital silence.
pub const LUFS_FLOOR: f64 = -70.0;

/// What the sound is like.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AudioFacts {
    /// Integrated loudness in LUFS (−70 for silence), when measured.
    pub integrated_lufs: Option<f64>,
    /// Loudness range in LU (how much the level varies), when measured.
    pub loudness_range_lu: Option<f64>,
    /// Stretches of silence, in time order.
    pub silences: Vec<Silence>,
    /// Which of the file's audio streams was measured (0: the first). A silent stream is
    /// passed over for the next one that is not: the streams before this one are silent.
    #[serde(default)]
    pub stream: usize,
}

impl AudioFacts {
    /// Seconds of silence in all.
    pub fn silent_secs(&self) -> f64 {
        self.silences.iter().map(Silence::length).sum()
    }
}

/// One stretch of silence.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Silence {
    /// Where it starts, in seconds.
    pub start: f64,
    /// Where it ends, in seconds.
    pub end: f64,
}

impl Silence {
    /// Its length in seconds.
    pub fn length(&self) -> f64 {
        (self.end - self.start).max(0.0)
    }
}

/// Collects `ebur128` summary and `silencedetect` lines from ffmpeg's log.
#[derive(Debug, Default)]
pub struct AudioLogParser {
    /// Past ebur128's "Summary:" line (its earlier lines could look like summary values).
    in_summary: bool,
    /// Integrated loudness, LUFS.
    integrated: Option<f64>,
    /// Loudness range, LU.
    range: Option<f64>,
    /// Silences closed so far.
    silences: Vec<Silence>,
    /// Where a silence still open started.
    open_silence: Option<f64>,
}

impl AudioLogParser {
    /// Feeds one stderr line.
    pub fn line(&mut self, line: &str) {
        if line.contains("silencedetect") {
            if let Some(start) = number_after(line, "silence_start:") {
                self.open_silence = Some(start.max(0.0));
            } else if let Some(end) = number_after(line, "silence_end:") {
                let start = self.open_silence.take().unwrap_or_else(|| {
                    // No start seen: derive it from the duration on the same line.
                    number_after(line, "silence_duration:").map_or(0.0, |d| (end - d).max(0.0))
                });
                self.silences.push(Silence { start, end });
            }
            return;
        }
        if line.contains("Summary:") {
            self.in_summary = true;
            return;
        }
        if !self.in_summary {
            return;
        }
        let trimmed = line.trim();
        if let Some(rest) = trimmed.strip_prefix("I:") {
            self.integrated = leading_number(rest);
        } else if let Some(rest) = trimmed.strip_prefix("LRA:") {
            self.range = leading_number(rest);
        }
    }

    /// The facts, closing a silence still open at `duration` (silence to the very end).
    pub fn finish(mut self, duration: f64) -> AudioFacts {
        if let Some(start) = self.open_silence.take() {
            if duration - start >= SILENCE_MIN_SECS {
                self.silences.push(Silence {
                    start,
                    end: duration,
                });
            }
        }
        AudioFacts {
            integrated_lufs: self.integrated,
            loudness_range_lu: self.range,
            silences: self.silences,
            stream: 0,
        }
    }
}

/// The number right after `key` in `line` (`silence_end: 135 | …` → 135).
fn number_after(line: &str, key: &str) -> Option<f64> {
    let rest = &line[line.find(key)? + key.len()..];
    leading_number(rest)
}

/// The number at the start of `text`, after spaces; `-inf` reads as the floor.
fn leading_number(text: &str) -> Option<f64> {
    let text = text.trim_start();
    if text.starts_with("-inf") {
        return Some(LUFS_FLOOR);
    }
    let end = text
        .find(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e')))
        .unwrap_or(text.len());
    text[..end].parse().ok().filter(|v: &f64| v.is_finite())
}

/// Reads the `-progress` output's `out_time_us=` (microseconds written so far).
fn progress_secs(line: &str) -> Option<f64> {
    let micros: f64 = line.strip_prefix("out_time_us=")?.trim().parse().ok()?;
    (micros.is_finite() && micros >= 0.0).then_some(micros / 1e6)
}

/// Runs the audio pass; `None` when the file has no audio stream.
///
/// A sound track that cannot be decoded is not worth failing the story for: it is logged and
/// reported as no sound facts.
///
/// The first audio stream is measured; when it is silent and there are others, the next, and
/// so on until one is not: a camera that records a dead first track and the sound on the
/// second is told by its sound. Only the first stream's pass reports progress (the others are
/// rare, and short work next to the picture's).
pub(crate) async fn run(
    ffmpeg: &Path,
    path: &Path,
    info: &MediaInfo,
    mut progress: impl FnMut(f64) + Send,
) -> Result<Option<AudioFacts>, MediaError> {
    let Some(first) = &info.audio else {
        progress(1.0);
        return Ok(None);
    };
    let mut facts = match run_stream(ffmpeg, path, first, info.duration_secs, &mut progress).await?
    {
        Some(facts) => facts,
        None => return Ok(None),
    };
    for (position, stream) in info.audio_streams.iter().enumerate().skip(1) {
        if !facts.is_silent() {
            break;
        }
        if let Some(mut next) =
            run_stream(ffmpeg, path, stream, info.duration_secs, &mut |_| {}).await?
        {
            next.stream = position;
            facts = next;
        }
    }
    Ok(Some(facts))
}

impl AudioFacts {
    /// Whether the stream measured is silent throughout.
    pub fn is_silent(&self) -> bool {
        self.integrated_lufs.is_some_and(|lufs| lufs <= SILENT_LUFS)
    }
}

/// Integrated loudness at or below this is silence.
pub const SILENT_LUFS: f64 = -60.0;

/// The loudness and silences of one audio stream.
async fn run_stream(
    ffmpeg: &Path,
    path: &Path,
    stream: &super::probe::AudioStream,
    duration: f64,
    progress: &mut (dyn FnMut(f64) + Send),
) -> Result<Option<AudioFacts>, MediaError> {
    let mut cmd = process::command(ffmpeg);
    cmd.args(["-hide_banner", "-nostdin", "-nostats", "-loglevel", "info"])
        .args(["-vn", "-sn", "-dn", "-i"])
        .arg(input_arg(path))
        .args(["-map", &format!("0:{}", stream.index)])
        .args([
            "-af",
            // framelog=verbose keeps ebur128's ten-lines-a-second meter out of the info log.
            &format!(
                "ebur128=framelog=verbose,silencedetect=noise={SILENCE_NOISE_DB}dB:d={SILENCE_MIN_SECS}"
            ),
        ])
        .args(["-progress", "pipe:1", "-f", "null", "-"]);
    let mut parser = AudioLogParser::default();
    let finished = process::run_lines(
        "ffmpeg",
        cmd,
        |line| {
            if let Some(secs) = progress_secs(line) {
                progress((secs / duration).clamp(0.0, 1.0));
            }
        },
        |line| parser.line(line),
    )
    .await?;
    if process::killed_by_signal(&finished.status) {
        return Err(MediaError::Interrupted {
            tool: "ffmpeg",
            path: path.to_owned(),
        });
    }
    if !finished.status.success() {
        if let Some(fault) = process::machine_fault("ffmpeg", &finished, None) {
            return Err(fault);
        }
        tracing::warn!(
            path = %path.display(),
            reason = short_reason(&finished.stderr_tail, path).unwrap_or_default(),
            "the sound could not be analysed"
        );
        return Ok(None);
    }
    progress(1.0);
    Ok(Some(parser.finish(duration)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "\
[silencedetect @ 0x560eef0d63c0] silence_start: 120
[silencedetect @ 0x560eef0d63c0] silence_end: 135 | silence_duration: 15
[silencedetect @ 0x560eef0d63c0] silence_start: 270.5
[silencedetect @ 0x560eef0d63c0] silence_end: 285.25 | silence_duration: 14.75
size=N/A time=00:10:00.00 bitrate=N/A speed= 395x
[silencedetect @ 0x560eef0d63c0] silence_start: 590
[Parsed_ebur128_0 @ 0x560eef0d55c0] Summary:

  Integrated loudness:
    I:         -15.7 LUFS
    Threshold: -25.7 LUFS

  Loudness range:
    LRA:         0.2 LU
    Threshold: -35.8 LUFS
    LRA low:   -15.8 LUFS
    LRA high:  -15.6 LUFS";

    #[test]
    fn parses_summary_and_silences() {
        let mut parser = AudioLogParser::default();
        for line in LOG.lines() {
            parser.line(line);
        }
        let facts = parser.finish(600.0);
        assert_eq!(facts.integrated_lufs, Some(-15.7));
        assert_eq!(facts.loudness_range_lu, Some(0.2));
        assert_eq!(
            facts.silences,
            [
                Silence {
                    start: 120.0,
                    end: 135.0
                },
                Silence {
                    start: 270.5,
                    end: 285.25
                },
                Silence {
                    start: 590.0,
                    end: 600.0
                },
            ]
        );
        assert!((facts.silent_secs() - 39.75).abs() < 1e-9);
    }

    #[test]
    fn silent_audio_reads_as_the_floor() {
        let mut parser = AudioLogParser::default();
        parser.line("[Parsed_ebur128_0 @ 0x1] Summary:");
        parser.line("    I:         -70.0 LUFS");
        parser.line("    LRA:         0.0 LU");
        let facts = parser.finish(5.0);
        assert_eq!(facts.integrated_lufs, Some(-70.0));
        assert!(facts.silences.is_empty());
        assert_eq!(leading_number(" -inf LUFS"), Some(LUFS_FLOOR));
    }

    #[test]
    fn lines_before_the_summary_are_ignored() {
        let mut parser = AudioLogParser::default();
        // Per-frame meter lines (if they were logged) also start with fields like "I:".
        parser.line("I: -5.0 LUFS");
        assert_eq!(parser.finish(1.0).integrated_lufs, None);
    }

    #[test]
    fn progress_lines() {
        assert_eq!(progress_secs("out_time_us=2500000"), Some(2.5));
        assert_eq!(progress_secs("out_time_us=N/A"), None);
        assert_eq!(progress_secs("frame=1"), None);
    }
}
