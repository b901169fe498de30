//! Keyframes: which moments to look at, a JPEG thumbnail of each, and the light, colour and
//! motion facts read from a tiny raw copy of the same moment.
//!
//! Each keyframe is one short ffmpeg run that seeks on the input (`-ss T -i file`, so only the
//! stretch from the nearest earlier keyframe is decoded, never the whole file), reads half a
//! second, and writes two outputs: the 320-pixel thumbnail of the first frame and 64×36 RGB
//! copies of every frame in that half second on stdout. Colour facts come from the first copy,
//! motion from how much the copies differ from one another.

use super::probe::input_arg;
use super::process;
use super::scenes::Scene;
use super::{MediaError, MediaInfo};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Width of the tiny frames colour and motion are read from.
pub const TINY_WIDTH: usize = 64;
/// Height of the tiny frames.
pub const TINY_HEIGHT: usize = 36;
/// Bytes in one tiny RGB frame.
const TINY_BYTES: usize = TINY_WIDTH * TINY_HEIGHT * 3;
/// How long after the keyframe motion is measured over, in seconds.
const MOTION_WINDOW_SECS: f64 = 0.5;
/// Longest one keyframe may take before it is given up on.
const EXTRACT_TIMEOUT: Duration = Duration::from_secs(60);

/// Where in the story a keyframe sits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShotRole {
    /// The opening shot.
    Opening,
    /// A shot from the body of the video.
    Middle,
    /// The closing shot.
    Closing,
}

/// A moment chosen to look at.
#[derive(Clone, Debug, PartialEq)]
pub struct KeyframePick {
    /// When, in seconds.
    pub time: f64,
    /// The index of its scene.
    pub scene: usize,
    /// Opening, middle or closing.
    pub role: ShotRole,
}

/// One keyframe looked at.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Keyframe {
    /// When, in seconds.
    pub time: f64,
    /// The index of its scene in [`super::Analysis::scenes`].
    pub scene: usize,
    /// Opening, middle or closing.
    pub role: ShotRole,
    /// The JPEG thumbnail.
    pub thumbnail: PathBuf,
    /// Light and colour.
    pub colour: ColourFacts,
    /// How much moves in the half second after it, 0..1 (none if it was the very last frame).
    pub motion: Option<f64>,
}

/// Light and colour of one picture.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ColourFacts {
    /// Mean brightness (luma), 0 (black) ..1 (white).
    pub brightness: f64,
    /// Mean saturation, 0 (grey) ..1 (pure colour).
    pub saturation: f64,
    /// Spread of brightness (standard deviation of luma), 0 (flat) ..0.5.
    pub contrast: f64,
    /// The dominant hue in degrees (0 red, 120 green, 240 blue), if the picture has colour.
    pub hue_degrees: Option<f64>,
    /// The dominant colour in words: "deep blue", "warm orange", "grey", "multicoloured".
    pub colour_name: String,
    /// The mean colour.
    pub mean_rgb: [u8; 3],
}

/// Chooses up to `count` moments: the opening and closing shots, and the rest in the middle of
/// the longest scenes not already shown (when there are fewer scenes than picks, long scenes get
/// several, evenly spaced). With `keyframe_times` (a keyframes-only
/// decode) each pick moves to the nearest keyframe in its scene, which makes seeking to it cheap.
pub fn pick_keyframes(
    scenes: &[Scene],
    duration: f64,
    count: usize,
    keyframe_times: Option<&[f64]>,
) -> Vec<KeyframePick> {
    if scenes.is_empty() || count == 0 || duration <= 0.0 {
        return Vec::new();
    }
    let last = scenes.len() - 1;
    let mut picks = Vec::with_capacity(count);
    // Not frame 0 and not the very last frame: a beat in, a beat before the end.
    let opening = scenes[0].start + (0.1 * scenes[0].length()).min(1.0);
    picks.push(KeyframePick {
        time: opening,
        scene: 0,
        role: ShotRole::Opening,
    });
    if count >= 2 {
        let closing = (scenes[last].end - (0.1 * scenes[last].length()).min(1.0))
            .min(duration - 0.05)
            .max(0.0);
        picks.push(KeyframePick {
            time: closing,
            scene: last,
            role: ShotRole::Closing,
        });
    }
    let middles = count.saturating_sub(2);
    // Picks per scene, counting the opening and closing shots so their scenes are not shown
    // twice before every other scene is shown once.
    let mut shown = vec![0usize; scenes.len()];
    shown[0] += 1;
    if count >= 2 {
        shown[last] += 1;
    }
    let mut per_scene = vec![0usize; scenes.len()];
    for _ in 0..middles {
        // Unshown scenes first, longest first; then the scene whose picks are sparsest for its
        // length (so with few scenes, long ones get several, evenly spaced).
        let best = scenes
            .iter()
            .enumerate()
            .filter(|(_, s)| s.length() >= 0.3)
            .max_by(|(i, a), (j, b)| {
                let ka = a.length() / (shown[*i] + 1) as f64;
                let kb = b.length() / (shown[*j] + 1) as f64;
                (shown[*i] == 0)
                    .cmp(&(shown[*j] == 0))
                    .then(ka.total_cmp(&kb))
                    .then(j.cmp(i))
            })
            .map(|(i, _)| i);
        match best {
            Some(i) => {
                per_scene[i] += 1;
                shown[i] += 1;
            }
            None => break,
        }
    }
    for (i, scene) in scenes.iter().enumerate() {
        let n = per_scene[i];
        for j in 0..n {
            picks.push(KeyframePick {
                time: scene.start + scene.length() * (j + 1) as f64 / (n + 1) as f64,
                scene: i,
                role: ShotRole::Middle,
            });
        }
    }
    if let Some(times) = keyframe_times {
        for pick in &mut picks {
            let scene = &scenes[pick.scene];
            let nearest = times
                .iter()
                .copied()
                .filter(|t| *t >= scene.start && *t < scene.end)
                .min_by(|a, b| (a - pick.time).abs().total_cmp(&(b - pick.time).abs()));
            if let Some(t) = nearest {
                pick.time = t;
            }
        }
    }
    picks.sort_by(|a, b| {
        a.time
            .total_cmp(&b.time)
            .then(role_rank(a.role).cmp(&role_rank(b.role)))
    });
    // Two picks on (nearly) the same moment would be the same picture twice.
    let mut unique: Vec<KeyframePick> = Vec::with_capacity(picks.len());
    for pick in picks {
        match unique.last_mut() {
            Some(prev) if pick.time - prev.time < 0.25 => {
                if pick.role == ShotRole::Closing {
                    prev.role = if prev.role == ShotRole::Opening {
                        ShotRole::Opening
                    } else {
                        ShotRole::Closing
                    };
                }
            }
            _ => unique.push(pick),
        }
    }
    unique
}

/// Sort order for picks at the same time: opening first, closing last.
fn role_rank(role: ShotRole) -> u8 {
    match role {
        ShotRole::Opening => 0,
        ShotRole::Middle => 1,
        ShotRole::Closing => 2,
    }
}

/// The tiny frames and thumbnail of one moment, once extracted.
pub(crate) struct Extracted {
    /// Light and colour of the first frame.
    pub colour: ColourFacts,
    /// Motion over the window.
    pub motion: Option<f64>,
}

/// Extracts the thumbnail (to `thumbnail`) and colour/motion facts at `time`; `None` when no
/// frame could be decoded there (past the real end of a file, a damaged stretch).
pub(crate) async fn extract(
    ffmpeg: &Path,
    path: &Path,
    info: &MediaInfo,
    time: f64,
    thumbnail: &Path,
    thumbnail_width: u32,
) -> Result<Option<Extracted>, MediaError> {
    let partial = thumbnail.with_extension("jpg.part");
    let mut cmd = process::command(ffmpeg);
    let width = thumbnail_width.max(16);
    cmd.args(["-hide_banner", "-nostdin", "-nostats", "-loglevel", "error"])
        .args([
            "-ss",
            &format!("{time:.3}"),
            "-t",
            &format!("{MOTION_WINDOW_SECS}"),
        ])
        .args(["-an", "-sn", "-dn", "-i"])
        .arg(input_arg(path))
        .args([
            "-filter_complex",
            &format!(
                // Square pixels, at most `width` wide (never upscaled), even sizes for the
                // encoder; and the tiny RGB copies from the same decoded frames.
                "[0:{index}]split=2[a][b];\
                 [a]scale=w=trunc(min({width}\\,iw*sar)/2)*2:h=trunc(ow/dar/2)*2:flags=bicubic,\
                 setsar=1[thumb];\
                 [b]scale={TINY_WIDTH}:{TINY_HEIGHT}:flags=area,format=rgb24[tiny]",
                index = info.video.index
            ),
        ])
        .args([
            "-map",
            "[thumb]",
            "-frames:v",
            "1",
            "-q:v",
            "4",
            "-f",
            "mjpeg",
            "-y",
        ])
        .arg(&partial)
        .args(["-map", "[tiny]", "-f", "rawvideo", "pipe:1"]);
    // At 240 fps half a second is 120 tiny frames; more is never needed.
    let cap = TINY_BYTES * 128;
    let run = process::run_collect("ffmpeg", cmd, cap);
    let collected = match tokio::time::timeout(EXTRACT_TIMEOUT, run).await {
        Ok(result) => result?,
        Err(_) => {
            tracing::warn!(path = %path.display(), time, "a keyframe took too long; skipped");
            remove_quietly(&partial).await;
            return Ok(None);
        }
    };
    if process::killed_by_signal(&collected.finished.status) {
        remove_quietly(&partial).await;
        return Err(MediaError::Interrupted {
            tool: "ffmpeg",
            path: path.to_owned(),
        });
    }
    // Checked whatever the exit status: ffmpeg exits 0 after failing to write the picture
    // ("Error writing trailer …: No space left on device"), leaving an empty file.
    let folder = thumbnail.parent().unwrap_or(thumbnail);
    if let Some(fault) = process::machine_fault("ffmpeg", &collected.finished, Some(folder)) {
        remove_quietly(&partial).await;
        return Err(fault);
    }
    if !collected.finished.status.success() {
        remove_quietly(&partial).await;
        let partial_text = partial.display().to_string();
        // Failing to write our own file is our problem (disk full, permissions), not the video's.
        if let Some(line) = collected
            .finished
            .stderr_tail
            .iter()
            .find(|l| l.contains(&partial_text))
        {
            return Err(MediaError::Thumbnails {
                path: thumbnail.to_owned(),
                message: line
                    .replace(&partial_text, "")
                    .trim_matches([':', ' '])
                    .to_owned(),
            });
        }
        return Ok(None);
    }
    let frames: Vec<&[u8]> = collected.stdout.chunks_exact(TINY_BYTES).collect();
    let thumb_ok = tokio::fs::metadata(&partial)
        .await
        .map(|m| m.len() > 0)
        .unwrap_or(false);
    let Some(first) = frames.first().filter(|_| thumb_ok) else {
        remove_quietly(&partial).await;
        return Ok(None);
    };
    tokio::fs::rename(&partial, thumbnail).await.map_err(|e| {
        process::disk_full(&e, thumbnail).unwrap_or_else(|| MediaError::Thumbnails {
            path: thumbnail.to_owned(),
            message: e.to_string(),
        })
    })?;
    Ok(Some(Extracted {
        colour: colour_facts(first),
        motion: motion(&frames),
    }))
}

/// Removes a file, ignoring failure (it is a leftover either way).
async fn remove_quietly(path: &Path) {
    let _ = tokio::fs::remove_file(path).await;
}

/// Motion in a run of tiny frames: the median, over consecutive pairs, of the mean absolute
/// luma difference (0..1). The median ignores a single flash or cut inside the window.
pub fn motion(frames: &[&[u8]]) -> Option<f64> {
    let mut diffs: Vec<f64> = frames
        .windows(2)
        .map(|pair| {
            let lumas = |f: &[u8]| -> Vec<f64> { f.chunks_exact(3).map(luma).collect() };
            let (a, b) = (lumas(pair[0]), lumas(pair[1]));
            let total: f64 = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).sum();
            total / a.len().max(1) as f64
        })
        .collect();
    if diffs.is_empty() {
        return None;
    }
    diffs.sort_by(f64::total_cmp);
    Some(diffs[diffs.len() / 2])
}

/// Rec. 709 luma of one RGB pixel, 0..1.
fn luma(px: &[u8]) -> f64 {
    (0.2126 * f64::from(px[0]) + 0.7152 * f64::from(px[1]) + 0.0722 * f64::from(px[2])) / 255.0
}

/// Hue (degrees), saturation and value (0..1) of one RGB pixel.
pub fn hsv(r: u8, g: u8, b: u8) -> (f64, f64, f64) {
    let (r, g, b) = (
        f64::from(r) / 255.0,
        f64::from(g) / 255.0,
        f64::from(b) / 255.0,
    );
    let max = r.max(g).max(b);
    let min = r.min(g).min(b);
    let delta = max - min;
    let hue = if delta <= f64::EPSILON {
        0.0
    } else if max == r {
        60.0 * ((g - b) / delta).rem_euclid(6.0)
    } else if max == g {
        60.0 * ((b - r) / delta + 2.0)
    } else {
        60.0 * ((r - g) / delta + 4.0)
    };
    let saturation = if max <= f64::EPSILON {
        0.0
    } else {
        delta / max
    };
    (hue, saturation, max)
}

/// Light and colour facts of one tiny RGB frame.
pub fn colour_facts(rgb: &[u8]) -> ColourFacts {
    let pixels = rgb.len() / 3;
    if pixels == 0 {
        return ColourFacts {
            brightness: 0.0,
            saturation: 0.0,
            contrast: 0.0,
            hue_degrees: None,
            colour_name: "black".into(),
            mean_rgb: [0, 0, 0],
        };
    }
    let n = pixels as f64;
    let mut sums = [0.0f64; 3];
    let mut luma_sum = 0.0;
    let mut luma_sq = 0.0;
    let mut sat_sum = 0.0;
    // 12 hue bins of 30° centred on red, orange, yellow, …; weighted by how colourful a pixel is.
    let mut bins = [(0.0f64, 0.0f64, 0.0f64); 12]; // (weight, saturation·weight, value·weight)
    let mut colourful = 0usize;
    // The brightness of the pixels that are not colourful, to name the grey they make.
    let mut neutral_luma = 0.0;
    for px in rgb.chunks_exact(3) {
        for (sum, &c) in sums.iter_mut().zip(px) {
            *sum += f64::from(c);
        }
        let y = luma(px);
        luma_sum += y;
        luma_sq += y * y;
        let (h, s, v) = hsv(px[0], px[1], px[2]);
        sat_sum += s;
        if s >= 0.2 && v >= 0.12 {
            colourful += 1;
            let bin = ((h / 30.0).round() as usize) % 12;
            let w = s * v;
            bins[bin].0 += w;
            bins[bin].1 += s * w;
            bins[bin].2 += v * w;
        } else {
            neutral_luma += y;
        }
    }
    let brightness = luma_sum / n;
    let contrast = (luma_sq / n - brightness * brightness).max(0.0).sqrt();
    let mean_rgb = sums.map(|s| (s / n).round().clamp(0.0, 255.0) as u8);
    let total_weight: f64 = bins.iter().map(|b| b.0).sum();
    let (best, &(weight, sat_w, val_w)) = bins
        .iter()
        .enumerate()
        .max_by(|a, b| a.1 .0.total_cmp(&b.1 .0))
        .unwrap_or((0, &(0.0, 0.0, 0.0)));
    let (hue_degrees, colour_name) = if (colourful as f64) < 0.15 * n || weight <= 0.0 {
        (None, neutral_name(brightness).to_owned())
    } else {
        let hue = best as f64 * 30.0;
        // Neighbouring bins count with the winner: a gradient from orange to yellow is still
        // one colour; only a real spread round the wheel is "multicoloured".
        let near = weight + bins[(best + 1) % 12].0 + bins[(best + 11) % 12].0;
        let colour = if near < 0.45 * total_weight {
            "multicoloured".to_owned()
        } else {
            colour_name(hue, sat_w / weight, val_w / weight)
        };
        let neutral = n - colourful as f64;
        if neutral >= 0.5 * n {
            // Mostly grey with some colour: a person names the grey first, then the colour
            // (a grey wall with a blue door is not "bathed in blue").
            let grey = neutral_name(neutral_luma / neutral);
            let with = if colour == "multicoloured" {
                "touches of colour".to_owned()
            } else {
                colour
            };
            (Some(hue), format!("{grey} and {with}"))
        } else {
            (Some(hue), colour)
        }
    };
    ColourFacts {
        brightness,
        saturation: sat_sum / n,
        contrast,
        hue_degrees,
        colour_name,
        mean_rgb,
    }
}

/// The name of a grey of this brightness.
pub fn neutral_name(brightness: f64) -> &'static str {
    match brightness {
        b if b < 0.08 => "black",
        b if b < 0.3 => "dark grey",
        b if b < 0.65 => "grey",
        b if b < 0.88 => "pale grey",
        _ => "white",
    }
}

/// A colour in words from its hue (degrees), saturation and value (0..1):
/// `(240°, 1.0, 0.5)` is "deep blue", `(30°, 1.0, 1.0)` is "warm orange".
pub fn colour_name(hue: f64, saturation: f64, value: f64) -> String {
    let bin = ((hue.rem_euclid(360.0) / 30.0).round() as usize) % 12;
    let base = [
        "red",
        "orange",
        "yellow",
        "yellow-green",
        "green",
        "sea green",
        "cyan",
        "sky blue",
        "blue",
        "violet",
        "magenta",
        "pink",
    ][bin];
    let warm = matches!(bin, 0 | 1 | 2 | 11);
    let cool = matches!(bin, 6..=8);
    // Skin and sand: a light, moderately saturated orange is what a face or a beach looks
    // like, and nobody calls a face orange.
    let hue_in = |from: f64, to: f64| (from..=to).contains(&hue.rem_euclid(360.0));
    if hue_in(15.0, 45.0) && (0.2..0.72).contains(&saturation) && value >= 0.6 {
        return if value >= 0.82 { "warm beige" } else { "tan" }.into();
    }
    if saturation < 0.3 {
        return if value > 0.7 {
            format!("pale {base}")
        } else {
            format!("muted {base}")
        };
    }
    if value < 0.3 {
        return match bin {
            1 => "dark brown".into(),
            2 | 3 => "dark olive".into(),
            _ => format!("dark {base}"),
        };
    }
    if value < 0.6 {
        return match bin {
            1 => "brown".into(),
            2 => "olive".into(),
            6 => "teal".into(),
            _ => format!("deep {base}"),
        };
    }
    if (0.3..0.5).contains(&saturation) {
        return format!("soft {base}");
    }
    if warm {
        format!("warm {base}")
    } else if cool {
        format!("cool {base}")
    } else {
        format!("bright {base}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn solid(r: u8, g: u8, b: u8) -> Vec<u8> {
        [r, g, b].repeat(TINY_WIDTH * TINY_HEIGHT)
    }

    #[test]
    fn names_colours() {
        assert_eq!(colour_name(240.0, 1.0, 0.5), "deep blue");
        assert_eq!(colour_name(39.0, 1.0, 1.0), "warm orange");
        assert_eq!(colour_name(0.0, 0.9, 0.9), "warm red");
        assert_eq!(colour_name(200.0, 0.9, 0.9), "cool sky blue");
        assert_eq!(colour_name(120.0, 0.8, 0.9), "bright green");
        assert_eq!(colour_name(30.0, 0.8, 0.4), "brown");
        // Skin and sand.
        assert_eq!(colour_name(34.0, 0.53, 0.88), "warm beige");
        assert_eq!(colour_name(30.0, 0.69, 0.8), "tan");
        assert_eq!(colour_name(28.0, 0.74, 0.55), "brown");
        assert_eq!(colour_name(60.0, 0.9, 0.2), "dark olive");
        assert_eq!(colour_name(300.0, 0.2, 0.9), "pale magenta");
        assert_eq!(colour_name(270.0, 0.4, 0.8), "soft violet");
        assert_eq!(colour_name(359.0, 0.9, 0.9), "warm red");
        assert_eq!(neutral_name(0.02), "black");
        assert_eq!(neutral_name(0.5), "grey");
        assert_eq!(neutral_name(0.95), "white");
    }

    #[test]
    fn facts_of_solid_frames() {
        let navy = colour_facts(&solid(0, 0, 128));
        assert_eq!(navy.colour_name, "deep blue");
        assert_eq!(navy.hue_degrees, Some(240.0));
        assert!(navy.brightness < 0.05, "{navy:?}");
        assert!(navy.contrast < 1e-6);
        assert!((navy.saturation - 1.0).abs() < 1e-9);
        assert_eq!(navy.mean_rgb, [0, 0, 128]);

        let orange = colour_facts(&solid(255, 165, 0));
        assert_eq!(orange.colour_name, "warm orange");

        let grey = colour_facts(&solid(128, 128, 128));
        assert_eq!(grey.colour_name, "grey");
        assert_eq!(grey.hue_degrees, None);
        assert!((grey.brightness - 0.502).abs() < 0.01);
    }

    #[test]
    fn bars_are_multicoloured_and_contrasty() {
        let bars = [
            [191, 191, 0],
            [0, 191, 191],
            [0, 191, 0],
            [191, 0, 191],
            [191, 0, 0],
            [0, 0, 191],
        ];
        let mut rgb = Vec::new();
        for _row in 0..TINY_HEIGHT {
            for x in 0..TINY_WIDTH {
                rgb.extend_from_slice(&bars[x * bars.len() / TINY_WIDTH]);
            }
        }
        let facts = colour_facts(&rgb);
        assert_eq!(facts.colour_name, "multicoloured");
        assert!(facts.contrast > 0.15, "{facts:?}");
        assert!(colour_facts(&[]).colour_name == "black");
    }

    #[test]
    fn a_mostly_grey_picture_is_named_by_its_grey_first() {
        // Three fifths grey, two fifths blue.
        let mut rgb = Vec::new();
        for _row in 0..TINY_HEIGHT {
            for x in 0..TINY_WIDTH {
                let px = if x * 5 < TINY_WIDTH * 2 {
                    [0, 0, 255]
                } else {
                    [128, 128, 128]
                };
                rgb.extend_from_slice(&px);
            }
        }
        let facts = colour_facts(&rgb);
        assert!(facts.colour_name.starts_with("grey and "), "{facts:?}");
        assert!(facts.colour_name.ends_with("blue"), "{facts:?}");
        // Mostly blue, it is blue.
        let mut rgb = Vec::new();
        for _row in 0..TINY_HEIGHT {
            for x in 0..TINY_WIDTH {
                let px = if x * 5 < TINY_WIDTH * 3 {
                    [0, 0, 255]
                } else {
                    [128, 128, 128]
                };
                rgb.extend_from_slice(&px);
            }
        }
        assert!(colour_facts(&rgb).colour_name.ends_with("blue"));
        assert!(!colour_facts(&rgb).colour_name.contains("grey"));
    }

    #[test]
    fn motion_is_the_median_difference() {
        let black = solid(0, 0, 0);
        let white = solid(255, 255, 255);
        assert_eq!(motion(&[&black, &black, &black]), Some(0.0));
        // One flash among still frames does not make the shot move.
        assert_eq!(motion(&[&black, &black, &black, &white]), Some(0.0));
        assert!((motion(&[&black, &white, &black]).unwrap() - 1.0).abs() < 1e-6);
        assert_eq!(motion(&[&black]), None);
    }

    fn scene(start: f64, end: f64) -> Scene {
        Scene {
            start,
            end,
            cut_score: None,
            motion: None,
        }
    }

    #[test]
    fn picks_opening_closing_and_longest_scenes() {
        let scenes = [
            scene(0.0, 10.0),
            scene(10.0, 12.0),
            scene(12.0, 40.0),
            scene(40.0, 42.0),
            scene(42.0, 50.0),
        ];
        let picks = pick_keyframes(&scenes, 50.0, 4, None);
        let expected = [
            (1.0, 0, ShotRole::Opening),
            (11.0, 1, ShotRole::Middle),
            (26.0, 2, ShotRole::Middle),
            (49.2, 4, ShotRole::Closing),
        ];
        assert_eq!(picks.len(), expected.len(), "{picks:?}");
        for (pick, (time, scene, role)) in picks.iter().zip(expected) {
            assert!((pick.time - time).abs() < 1e-9, "{pick:?}");
            assert_eq!((pick.scene, pick.role), (scene, role));
        }
        // With picks to spare, the longest scene gets a second before short ones are revisited.
        let picks = pick_keyframes(&scenes, 50.0, 7, None);
        let in_long: Vec<f64> = picks
            .iter()
            .filter(|p| p.scene == 2)
            .map(|p| p.time)
            .collect();
        assert_eq!(in_long.len(), 3, "{picks:?}");
        assert!(
            picks.iter().any(|p| p.scene == 3),
            "every scene shown: {picks:?}"
        );
    }

    #[test]
    fn one_long_scene_gets_evenly_spread_picks() {
        let picks = pick_keyframes(&[scene(0.0, 6.0)], 6.0, 8, None);
        assert_eq!(picks.len(), 8);
        assert_eq!(picks[0].role, ShotRole::Opening);
        assert_eq!(picks[7].role, ShotRole::Closing);
        assert!(picks.windows(2).all(|w| w[1].time > w[0].time));
        assert!(picks.iter().all(|p| p.time >= 0.0 && p.time < 6.0));
    }

    #[test]
    fn picks_snap_to_keyframes_in_their_scene() {
        let scenes = [scene(0.0, 70.0), scene(70.0, 110.0)];
        let keyframes: Vec<f64> = (0..11).map(|i| f64::from(i) * 10.0).collect();
        let picks = pick_keyframes(&scenes, 110.0, 4, Some(&keyframes));
        let times: Vec<f64> = picks.iter().map(|p| p.time).collect();
        assert_eq!(times, [0.0, 20.0, 50.0, 100.0]);
    }

    #[test]
    fn tiny_videos_still_get_a_pick() {
        let picks = pick_keyframes(&[scene(0.0, 0.2)], 0.2, 8, None);
        assert_eq!(picks.len(), 1);
        assert_eq!(picks[0].role, ShotRole::Opening);
        assert!(pick_keyframes(&[], 1.0, 8, None).is_empty());
    }
}
