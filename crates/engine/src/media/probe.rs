//! What a file is: `ffprobe -of json -show_format -show_streams`, parsed into [`MediaInfo`], and
//! the checks that turn an unusable file into an error a person understands.

use super::process::{self, short_reason};
use super::MediaError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::Path;
use tokio::io::AsyncReadExt;

/// Most ffprobe JSON we accept; real files produce a few kilobytes.
const MAX_PROBE_OUTPUT: usize = 8 * 1024 * 1024;

/// The facts about a video file that ffprobe reports.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MediaInfo {
    /// Length in seconds.
    pub duration_secs: f64,
    /// The container, as ffprobe names it (`mov,mp4,m4a,3gp,3g2,mj2`, `matroska,webm`, …).
    pub format_name: String,
    /// The container's long name (`QuickTime / MOV`), when known.
    pub format_long_name: Option<String>,
    /// File size in bytes, when known.
    pub size_bytes: Option<u64>,
    /// Overall bit rate in bits per second, when known.
    pub bit_rate: Option<u64>,
    /// When it was recorded, as the file says (usually ISO 8601).
    pub creation_time: Option<String>,
    /// The title in the file's metadata.
    pub title: Option<String>,
    /// The (first real) video stream.
    pub video: VideoStream,
    /// The first audio stream, if there is one.
    pub audio: Option<AudioStream>,
    /// Every audio stream, in the file's order (the first is [`MediaInfo::audio`]): a
    /// recording can carry several (a camera's two microphones, languages, commentary).
    #[serde(default)]
    pub audio_streams: Vec<AudioStream>,
}

/// Facts about the video stream.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VideoStream {
    /// The stream's index in the file (what `-map 0:N` takes).
    pub index: u32,
    /// Codec name (`h264`, `hevc`, `vp9`, …).
    pub codec: String,
    /// Coded width in pixels.
    pub width: u32,
    /// Coded height in pixels.
    pub height: u32,
    /// Average frames per second, when known.
    pub fps: Option<f64>,
    /// Degrees to turn the picture clockwise for display (0, 90, 180 or 270).
    pub rotation: u32,
    /// Pixel format (`yuv420p`, …), when known.
    pub pixel_format: Option<String>,
}

impl VideoStream {
    /// Width and height as shown, after rotation.
    pub fn display_size(&self) -> (u32, u32) {
        if self.rotation % 180 == 90 {
            (self.height, self.width)
        } else {
            (self.width, self.height)
        }
    }
}

/// Facts about the audio stream.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AudioStream {
    /// The stream's index in the file.
    pub index: u32,
    /// Codec name (`aac`, `opus`, …).
    pub codec: String,
    /// Samples per second, when known.
    pub sample_rate: Option<u32>,
    /// Channel count, when known.
    pub channels: Option<u32>,
    /// Channel layout (`stereo`, `5.1`, …), when known.
    pub channel_layout: Option<String>,
}

/// ffprobe's JSON, only the parts we read. Numbers arrive as strings in several places.
#[derive(Debug, Default, Deserialize)]
struct RawProbe {
    #[serde(default)]
    streams: Vec<RawStream>,
    format: Option<RawFormat>,
}

#[derive(Debug, Default, Deserialize)]
struct RawStream {
    index: Option<u32>,
    codec_type: Option<String>,
    codec_name: Option<String>,
    width: Option<u32>,
    height: Option<u32>,
    pix_fmt: Option<String>,
    avg_frame_rate: Option<String>,
    r_frame_rate: Option<String>,
    sample_rate: Option<String>,
    channels: Option<u32>,
    channel_layout: Option<String>,
    duration: Option<String>,
    #[serde(default)]
    tags: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    side_data_list: Vec<serde_json::Value>,
    #[serde(default)]
    disposition: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Default, Deserialize)]
struct RawFormat {
    format_name: Option<String>,
    format_long_name: Option<String>,
    duration: Option<String>,
    size: Option<String>,
    bit_rate: Option<String>,
    #[serde(default)]
    tags: BTreeMap<String, serde_json::Value>,
}

/// The path as an ffmpeg input: `file:` stops names with a colon or a leading `-` being read as
/// a protocol or an option.
pub(crate) fn input_arg(path: &Path) -> OsString {
    let mut arg = OsString::from("file:");
    arg.push(path.as_os_str());
    arg
}

/// Checks the file exists, is a file and is not empty, before any tool is run.
pub(crate) async fn check_file(path: &Path) -> Result<u64, MediaError> {
    match tokio::fs::metadata(path).await {
        Ok(meta) if meta.is_dir() => Err(MediaError::NotVideo {
            path: path.to_owned(),
            reason: "it is a folder, not a file".into(),
        }),
        Ok(meta) if meta.len() == 0 => Err(MediaError::EmptyFile {
            path: path.to_owned(),
        }),
        Ok(meta) => Ok(meta.len()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(MediaError::FileMissing {
            path: path.to_owned(),
        }),
        Err(e) => Err(MediaError::Unreadable {
            path: path.to_owned(),
            message: crate::intake::describe_io_error(&e),
        }),
    }
}

/// Runs ffprobe on `path` and parses what it says.
pub(crate) async fn probe(ffprobe: &Path, path: &Path) -> Result<MediaInfo, MediaError> {
    check_file(path).await?;
    let mut cmd = process::command(ffprobe);
    cmd.args([
        "-v",
        "error",
        "-hide_banner",
        "-of",
        "json",
        "-show_format",
        "-show_streams",
    ])
    .arg(input_arg(path));
    let out = process::run_collect("ffprobe", cmd, MAX_PROBE_OUTPUT).await?;
    if !out.finished.status.success() {
        if let Some(fault) = process::machine_fault("ffprobe", &out.finished, None) {
            return Err(fault);
        }
        if process::killed_by_signal(&out.finished.status) {
            return Err(MediaError::Interrupted {
                tool: "ffprobe",
                path: path.to_owned(),
            });
        }
        // The file may have vanished or changed between the check and the probe.
        check_file(path).await?;
        let head = read_head(path).await;
        return Err(classify_probe_failure(
            path,
            &head,
            &out.finished.stderr_tail,
        ));
    }
    parse_probe(path, &out.stdout)
}

/// The first bytes of the file (empty when it cannot be read).
async fn read_head(path: &Path) -> Vec<u8> {
    let mut head = vec![0u8; 4096];
    let Ok(mut file) = tokio::fs::File::open(path).await else {
        return Vec::new();
    };
    let mut filled = 0;
    while filled < head.len() {
        match file.read(&mut head[filled..]).await {
            Ok(0) | Err(_) => break,
            Ok(n) => filled += n,
        }
    }
    head.truncate(filled);
    head
}

/// Whether the first bytes look like a container we know (so a failure means damage, not a
/// file of another kind).
fn looks_like_container(head: &[u8]) -> bool {
    let at = |offset: usize, magic: &[u8]| head.get(offset..offset + magic.len()) == Some(magic);
    at(4, b"ftyp")
        || at(4, b"moov")
        || at(4, b"mdat")
        || at(4, b"free")
        || at(4, b"wide")
        || at(0, &[0x1A, 0x45, 0xDF, 0xA3])
        || (at(0, b"RIFF") && at(8, b"AVI "))
        || at(0, b"FLV")
        || at(0, b"OggS")
        || at(0, &[0x00, 0x00, 0x01, 0xBA])
        || at(0, &[0x30, 0x26, 0xB2, 0x75])
        || (head.len() >= 189 && head[0] == 0x47 && head[188] == 0x47)
}

/// Whether the first bytes are text rather than binary data.
fn looks_like_text(head: &[u8]) -> bool {
    if head.is_empty() {
        return false;
    }
    // Cut at a character boundary: the head may end mid-way through a UTF-8 sequence.
    let text = match std::str::from_utf8(head) {
        Ok(text) => text,
        Err(e) if e.error_len().is_none() => {
            std::str::from_utf8(&head[..e.valid_up_to()]).unwrap_or_default()
        }
        Err(_) => return false,
    };
    !text.is_empty()
        && text
            .chars()
            .all(|c| !c.is_control() || matches!(c, '\n' | '\r' | '\t' | '\u{c}'))
}

/// Turns a failed probe into the most useful error: damaged container, text, or not a video.
fn classify_probe_failure(path: &Path, head: &[u8], stderr_tail: &[String]) -> MediaError {
    // Text first: ffmpeg picks the demuxer by extension, so a text file named .mp4 fails with
    // the same "moov atom not found" as a truncated recording.
    if looks_like_text(head) {
        return MediaError::NotVideo {
            path: path.to_owned(),
            reason: "it contains text, not video".into(),
        };
    }
    let container = looks_like_container(head);
    let said = |needle: &str| stderr_tail.iter().any(|l| l.contains(needle));
    if container && said("moov atom not found") {
        return MediaError::Corrupt {
            path: path.to_owned(),
            reason: "it ends before its index (the MP4 \"moov atom\" is missing), which happens \
                     when a recording or copy did not finish"
                .into(),
        };
    }
    let reason = short_reason(stderr_tail, path).filter(|r| !r.contains("moov atom"));
    if container {
        return MediaError::Corrupt {
            path: path.to_owned(),
            reason: format!(
                "it starts like a video file but FFmpeg cannot read it ({})",
                reason.as_deref().unwrap_or("no reason given")
            ),
        };
    }
    MediaError::NotVideo {
        path: path.to_owned(),
        reason: match reason {
            Some(reason) => format!("FFmpeg does not recognise it ({reason})"),
            None => "FFmpeg does not recognise it".into(),
        },
    }
}

/// Parses ffprobe's JSON for `path` into [`MediaInfo`], refusing files that are not videos.
pub fn parse_probe(path: &Path, json: &[u8]) -> Result<MediaInfo, MediaError> {
    let raw: RawProbe = serde_json::from_slice(json).map_err(|e| MediaError::Corrupt {
        path: path.to_owned(),
        reason: format!("ffprobe's description of it could not be read ({e})"),
    })?;
    let format = raw.format.unwrap_or_default();
    let format_name = format.format_name.clone().unwrap_or_default();
    let is_cover_art = |s: &RawStream| {
        s.disposition
            .get("attached_pic")
            .and_then(serde_json::Value::as_i64)
            == Some(1)
    };
    let is_audio = |s: &&RawStream| s.codec_type.as_deref() == Some("audio");
    let Some(video_raw) = raw
        .streams
        .iter()
        .find(|s| s.codec_type.as_deref() == Some("video") && !is_cover_art(s))
    else {
        return Err(MediaError::NoVideoStream {
            path: path.to_owned(),
            has_audio: raw.streams.iter().any(|s| is_audio(&s)),
        });
    };
    // Single pictures (JPEG, PNG, …) probe as a one-frame "video" through the image demuxers.
    if format_name == "image2" || format_name.ends_with("_pipe") {
        return Err(MediaError::NotVideo {
            path: path.to_owned(),
            reason: "it is a still picture, not a video".into(),
        });
    }
    let duration_secs = parse_f64(format.duration.as_deref())
        .filter(|d| *d > 0.0)
        .or_else(|| parse_f64(video_raw.duration.as_deref()))
        .filter(|d| d.is_finite() && *d > 0.0)
        .ok_or_else(|| MediaError::ZeroDuration {
            path: path.to_owned(),
        })?;
    let (Some(width), Some(height)) = (
        video_raw.width.filter(|w| *w > 0),
        video_raw.height.filter(|h| *h > 0),
    ) else {
        return Err(MediaError::Corrupt {
            path: path.to_owned(),
            reason: "its video stream has no picture size".into(),
        });
    };
    let video = VideoStream {
        index: video_raw.index.unwrap_or(0),
        codec: video_raw
            .codec_name
            .clone()
            .unwrap_or_else(|| "unknown".into()),
        width,
        height,
        fps: parse_rate(video_raw.avg_frame_rate.as_deref())
            .or_else(|| parse_rate(video_raw.r_frame_rate.as_deref())),
        rotation: rotation(video_raw),
        pixel_format: video_raw.pix_fmt.clone(),
    };
    let audio_stream = |a: &RawStream| AudioStream {
        index: a.index.unwrap_or(0),
        codec: a.codec_name.clone().unwrap_or_else(|| "unknown".into()),
        sample_rate: a.sample_rate.as_deref().and_then(|r| r.trim().parse().ok()),
        channels: a.channels.filter(|c| *c > 0),
        channel_layout: a.channel_layout.clone(),
    };
    let audio_streams: Vec<AudioStream> = raw
        .streams
        .iter()
        .filter(is_audio)
        .map(audio_stream)
        .collect();
    let audio = audio_streams.first().cloned();
    Ok(MediaInfo {
        duration_secs,
        format_name,
        format_long_name: format.format_long_name,
        size_bytes: parse_f64(format.size.as_deref()).map(|s| s as u64),
        bit_rate: parse_f64(format.bit_rate.as_deref()).map(|b| b as u64),
        creation_time: tag(&format.tags, "creation_time")
            .or_else(|| tag(&video_raw.tags, "creation_time")),
        title: tag(&format.tags, "title").filter(|t| !t.trim().is_empty()),
        video,
        audio,
        audio_streams,
    })
}

/// A tag's value, matching the key case-insensitively (`TITLE` in Matroska, `title` in MP4).
fn tag(tags: &BTreeMap<String, serde_json::Value>, key: &str) -> Option<String> {
    tags.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .and_then(|(_, v)| match v {
            serde_json::Value::String(s) => Some(s.trim().to_owned()),
            serde_json::Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
}

/// Parses a number ffprobe wrote as a string (`"12.345000"`, `"N/A"`).
fn parse_f64(value: Option<&str>) -> Option<f64> {
    value?.trim().parse::<f64>().ok().filter(|v| v.is_finite())
}

/// Parses a frame rate like `30000/1001`; `0/0` means unknown.
fn parse_rate(value: Option<&str>) -> Option<f64> {
    let value = value?.trim();
    let rate = match value.split_once('/') {
        Some((num, den)) => {
            let num: f64 = num.parse().ok()?;
            let den: f64 = den.parse().ok()?;
            if den == 0.0 {
                return None;
            }
            num / den
        }
        None => value.parse().ok()?,
    };
    (rate.is_finite() && rate > 0.0 && rate < 10_000.0).then_some(rate)
}

/// Clockwise display rotation from the display matrix side data or the older `rotate` tag.
fn rotation(stream: &RawStream) -> u32 {
    // The display matrix states the counter-clockwise rotation (-90 for a phone held upright);
    // the `rotate` tag states the clockwise one.
    let from_matrix = stream.side_data_list.iter().find_map(|side| {
        let rotation = side.get("rotation")?;
        rotation
            .as_f64()
            .or_else(|| rotation.as_str().and_then(|s| s.trim().parse().ok()))
            .map(|r| -r)
    });
    let from_tag = || tag(&stream.tags, "rotate").and_then(|r| r.parse::<f64>().ok());
    let degrees = from_matrix.or_else(from_tag).unwrap_or(0.0);
    // Round to a quarter turn; anything else is not something players honour.
    let quarter = (degrees / 90.0).round() as i64;
    (quarter.rem_euclid(4) * 90) as u32
}

/// A short description of the container and codec, e.g. "H.264 in MP4".
pub fn describe_format(info: &MediaInfo) -> String {
    let codec = match info.video.codec.as_str() {
        "h264" => "H.264",
        "hevc" => "HEVC",
        "av1" => "AV1",
        "vp9" => "VP9",
        "vp8" => "VP8",
        "prores" => "ProRes",
        "mpeg4" => "MPEG-4",
        "mpeg2video" => "MPEG-2",
        "mjpeg" => "Motion JPEG",
        other => other,
    };
    let container = match info.format_name.as_str() {
        f if f.starts_with("mov,mp4") => "MP4",
        f if f.starts_with("matroska") => "Matroska/WebM",
        "avi" => "AVI",
        "flv" => "FLV",
        "mpegts" => "MPEG-TS",
        "ogg" => "Ogg",
        "asf" => "WMV",
        other => other,
    };
    format!("{codec} in {container}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const PHONE: &str = r#"{
      "streams": [
        {"index": 0, "codec_name": "hevc", "codec_type": "video", "width": 1920, "height": 1080,
         "pix_fmt": "yuv420p10le", "r_frame_rate": "30/1", "avg_frame_rate": "30000/1001",
         "duration": "12.345000",
         "tags": {"creation_time": "2024-05-01T10:00:00.000000Z", "handler_name": "Core Media Video"},
         "side_data_list": [{"side_data_type": "Display Matrix", "displaymatrix": "...", "rotation": -90}]},
        {"index": 1, "codec_name": "aac", "codec_type": "audio", "sample_rate": "44100",
         "channels": 2, "channel_layout": "stereo"},
        {"index": 2, "codec_name": "mjpeg", "codec_type": "video", "width": 320, "height": 240,
         "disposition": {"attached_pic": 1}}
      ],
      "format": {"format_name": "mov,mp4,m4a,3gp,3g2,mj2", "format_long_name": "QuickTime / MOV",
                 "duration": "12.345000", "size": "2345678", "bit_rate": "1520000",
                 "tags": {"creation_time": "2024-05-01T10:00:00.000000Z", "title": "Harbour walk"}}
    }"#;

    #[test]
    fn parses_a_phone_video() {
        let info = parse_probe(Path::new("a.mov"), PHONE.as_bytes()).unwrap();
        assert!((info.duration_secs - 12.345).abs() < 1e-9);
        assert_eq!(info.format_name, "mov,mp4,m4a,3gp,3g2,mj2");
        assert_eq!(info.size_bytes, Some(2_345_678));
        assert_eq!(info.bit_rate, Some(1_520_000));
        assert_eq!(info.title.as_deref(), Some("Harbour walk"));
        assert_eq!(
            info.creation_time.as_deref(),
            Some("2024-05-01T10:00:00.000000Z")
        );
        assert_eq!(info.video.codec, "hevc");
        assert_eq!((info.video.width, info.video.height), (1920, 1080));
        assert!((info.video.fps.unwrap() - 29.97).abs() < 0.01);
        assert_eq!(info.video.rotation, 90);
        assert_eq!(info.video.display_size(), (1080, 1920));
        assert_eq!(info.video.pixel_format.as_deref(), Some("yuv420p10le"));
        let audio = info.audio.unwrap();
        assert_eq!(
            (audio.codec.as_str(), audio.sample_rate, audio.channels),
            ("aac", Some(44100), Some(2))
        );
        assert_eq!(
            describe_format(&parse_probe(Path::new("a"), PHONE.as_bytes()).unwrap()),
            "HEVC in MP4"
        );
    }

    #[test]
    fn rotate_tag_and_odd_angles() {
        let mut stream = RawStream::default();
        stream.tags.insert("rotate".into(), "270".into());
        assert_eq!(rotation(&stream), 270);
        stream.side_data_list = vec![serde_json::json!({"rotation": 180})];
        assert_eq!(rotation(&stream), 180);
        stream.side_data_list = vec![serde_json::json!({"rotation": 90})];
        assert_eq!(rotation(&stream), 270);
        assert_eq!(rotation(&RawStream::default()), 0);
    }

    #[test]
    fn audio_only_and_cover_art_only_have_no_video() {
        let json = r#"{"streams": [
            {"index": 0, "codec_type": "audio", "codec_name": "mp3"},
            {"index": 1, "codec_type": "video", "codec_name": "png", "width": 500, "height": 500,
             "disposition": {"attached_pic": 1}}],
          "format": {"format_name": "mp3", "duration": "180.0"}}"#;
        let err = parse_probe(Path::new("/m/song.mp3"), json.as_bytes()).unwrap_err();
        assert!(matches!(
            err,
            MediaError::NoVideoStream {
                has_audio: true,
                ..
            }
        ));
        assert!(err.to_string().contains("song.mp3"), "{err}");
        assert!(err.to_string().contains("only sound"), "{err}");
    }

    #[test]
    fn zero_duration_and_still_pictures_are_refused() {
        let json = r#"{"streams": [{"index": 0, "codec_type": "video", "codec_name": "h264",
            "width": 2, "height": 2}], "format": {"format_name": "mov,mp4", "duration": "0.000000"}}"#;
        assert!(matches!(
            parse_probe(Path::new("z.mp4"), json.as_bytes()),
            Err(MediaError::ZeroDuration { .. })
        ));
        let json = r#"{"streams": [{"index": 0, "codec_type": "video", "codec_name": "mjpeg",
            "width": 2, "height": 2}], "format": {"format_name": "image2", "duration": "0.04"}}"#;
        let err = parse_probe(Path::new("p.jpg"), json.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("still picture"), "{err}");
    }

    #[test]
    fn rates() {
        assert_eq!(parse_rate(Some("25/1")), Some(25.0));
        assert_eq!(parse_rate(Some("0/0")), None);
        assert_eq!(parse_rate(Some("24")), Some(24.0));
        assert_eq!(parse_rate(Some("junk")), None);
        assert_eq!(parse_rate(None), None);
    }

    #[test]
    fn failed_probes_are_classified() {
        let path = Path::new("/v/clip.mp4");
        let tail = vec!["[mov,mp4,m4a,3gp,3g2,mj2 @ 0x1] moov atom not found".to_owned()];
        let err = classify_probe_failure(path, b"\0\0\0\x20ftypisom", &tail);
        assert!(matches!(err, MediaError::Corrupt { .. }), "{err}");
        assert!(err.to_string().contains("did not finish"), "{err}");
        // A text file named .mp4 meets the same message from the MP4 demuxer.
        let err = classify_probe_failure(path, b"just some notes\n", &tail);
        assert!(matches!(err, MediaError::NotVideo { .. }), "{err}");
        let err = classify_probe_failure(path, &[0xde, 0xad, 0xbe, 0xef], &tail);
        assert_eq!(
            err.to_string(),
            "clip.mp4 is not a video: FFmpeg does not recognise it"
        );

        let tail = vec!["file:/v/clip.mp4: Invalid data found when processing input".to_owned()];
        let err = classify_probe_failure(path, b"hello, this is a shopping list\n- eggs\n", &tail);
        assert!(matches!(err, MediaError::NotVideo { .. }));
        assert!(err.to_string().contains("text"), "{err}");

        let err = classify_probe_failure(path, &[0xde, 0xad, 0xbe, 0xef, 0, 1, 2], &tail);
        assert_eq!(
            err.to_string(),
            "clip.mp4 is not a video: FFmpeg does not recognise it (Invalid data found when processing input)"
        );

        let err = classify_probe_failure(path, b"\x1a\x45\xdf\xa3\x01", &tail);
        assert!(matches!(err, MediaError::Corrupt { .. }));
    }
}
