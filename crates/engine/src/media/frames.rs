//! Keyframes: which moments to look at, a JPEG thumbnail of each, and the light, colour and
//! motion facts read from a tiny raw copy of the same moment.
//!
//! Each keyframe is one short ffmpeg run that seeks on the input (`-ss T -i file`, so only the
//! stretch from the nearest earlier keyframe is decoded, never the whole file), reads half a
//! second, and writes two outputs: the 320-pixel thumbnail of the first frame and 64×36 RGB
//! copies of every frame in that half second on stdout. Colour facts come from the first copy,
//! read in the perceptual OKLab space (lightness, and the hue where the picture's chroma lies,
//! greys apart), motion from how much the copies differ from one another.

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

/// Light and colour of one picture, measured in OKLab (see [`oklab`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ColourFacts {
    /// Mean perceived lightness (OKLab L), 0 (black) ..1 (white).
    pub brightness: f64,
    /// Mean chroma (OKLCh C), 0 (grey) .. about 0.32 (the most vivid sRGB colours).
    pub saturation: f64,
    /// Spread of lightness (its standard deviation), 0 (flat) ..0.5 (half black, half white).
    pub contrast: f64,
    /// The dominant hue in OKLCh degrees (red about 29, green 142, blue 264), if the picture
    /// has colour.
    pub hue_degrees: Option<f64>,
    /// The dominant colour in words: "dark blue", "warm orange", "grey", "multicoloured".
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

/// Where a keyframe's thumbnail goes, and how wide it may be.
pub(crate) struct Thumbnail<'a> {
    pub path: &'a Path,
    pub width: u32,
}

/// Extracts colour/motion facts at `time`, and the thumbnail when one is asked for (none: a
/// motion sample, which only needs the tiny frames); `None` when no frame could be decoded
/// there (past the real end of a file, a damaged stretch).
pub(crate) async fn extract(
    ffmpeg: &Path,
    path: &Path,
    info: &MediaInfo,
    time: f64,
    thumbnail: Option<Thumbnail<'_>>,
) -> Result<Option<Extracted>, MediaError> {
    let partial = thumbnail
        .as_ref()
        .map(|t| t.path.with_extension("jpg.part"));
    let mut cmd = process::command(ffmpeg);
    cmd.args(["-hide_banner", "-nostdin", "-nostats", "-loglevel", "error"])
        .args([
            "-ss",
            &format!("{time:.3}"),
            "-t",
            &format!("{MOTION_WINDOW_SECS}"),
        ])
        .args(["-an", "-sn", "-dn", "-i"])
        .arg(input_arg(path));
    let index = info.video.index;
    let tiny = format!("scale={TINY_WIDTH}:{TINY_HEIGHT}:flags=area,format=rgb24");
    match (&thumbnail, &partial) {
        (Some(thumbnail), Some(partial)) => {
            let width = thumbnail.width.max(16);
            cmd.args([
                "-filter_complex",
                &format!(
                    // Square pixels, at most `width` wide (never upscaled), even sizes for the
                    // encoder; and the tiny RGB copies from the same decoded frames.
                    "[0:{index}]split=2[a][b];\
                     [a]scale=w=trunc(min({width}\\,iw*sar)/2)*2:h=trunc(ow/dar/2)*2:\
                     flags=bicubic,setsar=1[thumb];[b]{tiny}[tiny]"
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
            .arg(partial);
        }
        _ => {
            cmd.args(["-filter_complex", &format!("[0:{index}]{tiny}[tiny]")]);
        }
    }
    cmd.args(["-map", "[tiny]", "-f", "rawvideo", "pipe:1"]);
    let discard = || async {
        if let Some(partial) = &partial {
            remove_quietly(partial).await;
        }
    };
    // At 240 fps half a second is 120 tiny frames; more is never needed.
    let cap = TINY_BYTES * 128;
    let run = process::run_collect("ffmpeg", cmd, cap);
    let collected = match tokio::time::timeout(EXTRACT_TIMEOUT, run).await {
        Ok(result) => result?,
        Err(_) => {
            tracing::warn!(path = %path.display(), time, "a keyframe took too long; skipped");
            discard().await;
            return Ok(None);
        }
    };
    if process::killed_by_signal(&collected.finished.status) {
        discard().await;
        return Err(MediaError::Interrupted {
            tool: "ffmpeg",
            path: path.to_owned(),
        });
    }
    // Checked whatever the exit status: ffmpeg exits 0 after failing to write the picture
    // ("Error writing trailer …: No space left on device"), leaving an empty file.
    let folder = thumbnail.as_ref().and_then(|t| t.path.parent());
    if let Some(fault) = process::machine_fault("ffmpeg", &collected.finished, folder) {
        discard().await;
        return Err(fault);
    }
    if !collected.finished.status.success() {
        discard().await;
        // Failing to write our own file is our problem (disk full, permissions), not the video's.
        if let (Some(thumbnail), Some(partial)) = (&thumbnail, &partial) {
            let partial_text = partial.display().to_string();
            if let Some(line) = collected
                .finished
                .stderr_tail
                .iter()
                .find(|l| l.contains(&partial_text))
            {
                return Err(MediaError::Thumbnails {
                    path: thumbnail.path.to_owned(),
                    message: line
                        .replace(&partial_text, "")
                        .trim_matches([':', ' '])
                        .to_owned(),
                });
            }
        }
        return Ok(None);
    }
    let frames: Vec<&[u8]> = collected.stdout.chunks_exact(TINY_BYTES).collect();
    let thumb_ok = match &partial {
        Some(partial) => tokio::fs::metadata(partial)
            .await
            .map(|m| m.len() > 0)
            .unwrap_or(false),
        None => true,
    };
    let Some(first) = frames.first().filter(|_| thumb_ok) else {
        discard().await;
        return Ok(None);
    };
    if let (Some(thumbnail), Some(partial)) = (&thumbnail, &partial) {
        tokio::fs::rename(partial, thumbnail.path)
            .await
            .map_err(|e| {
                process::disk_full(&e, thumbnail.path).unwrap_or_else(|| MediaError::Thumbnails {
                    path: thumbnail.path.to_owned(),
                    message: e.to_string(),
                })
            })?;
    }
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

/// Rec. 709 luma of one RGB pixel, 0..1 (what motion is measured on).
fn luma(px: &[u8]) -> f64 {
    (0.2126 * f64::from(px[0]) + 0.7152 * f64::from(px[1]) + 0.0722 * f64::from(px[2])) / 255.0
}

/// An sRGB channel (0..255) as linear light (0..1), from a table made once.
fn linear(channel: u8) -> f64 {
    static TABLE: std::sync::OnceLock<[f64; 256]> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        std::array::from_fn(|i| {
            let c = i as f64 / 255.0;
            if c <= 0.04045 {
                c / 12.92
            } else {
                ((c + 0.055) / 1.055).powf(2.4)
            }
        })
    })[usize::from(channel)]
}

/// One sRGB pixel in OKLab: `[L, a, b]`, L the perceived lightness from 0 (black) to 1
/// (white), a and b the green–red and blue–yellow axes. Equal steps in OKLab are roughly equal
/// steps to the eye, which is why colour and light words are read from it rather than from RGB
/// or HSV (where pure blue is "dark" and pure yellow "bright" by the numbers alone).
pub fn oklab(r: u8, g: u8, b: u8) -> [f64; 3] {
    let (r, g, b) = (linear(r), linear(g), linear(b));
    let l = (0.412_221_470_8 * r + 0.536_332_536_3 * g + 0.051_445_992_9 * b).cbrt();
    let m = (0.211_903_498_2 * r + 0.680_699_545_1 * g + 0.107_396_956_6 * b).cbrt();
    let s = (0.088_302_461_9 * r + 0.281_718_837_6 * g + 0.629_978_700_5 * b).cbrt();
    [
        0.210_454_255_3 * l + 0.793_617_785_0 * m - 0.004_072_046_8 * s,
        1.977_998_495_1 * l - 2.428_592_205_0 * m + 0.450_593_709_9 * s,
        0.025_904_037_1 * l + 0.782_771_766_2 * m - 0.808_675_766_0 * s,
    ]
}

/// Lightness (0..1), chroma (0 for a grey, about 0.32 for the most vivid sRGB colours) and hue
/// (degrees: red about 29, yellow 110, green 142, blue 264) of one sRGB pixel, in OKLCh.
pub fn oklch(r: u8, g: u8, b: u8) -> (f64, f64, f64) {
    let [l, a, b] = oklab(r, g, b);
    (l, a.hypot(b), b.atan2(a).to_degrees().rem_euclid(360.0))
}

/// Chroma below which a pixel is a grey (slate grey, 0.031, is just over).
pub const NEUTRAL_CHROMA: f64 = 0.03;
/// Lightness below which a pixel is too dark to have a colour a person would name.
const DARKEST_COLOURED: f64 = 0.15;
/// Hue bins the dominant colour is found in.
const HUE_BINS: usize = 12;

/// Light and colour facts of one tiny RGB frame, measured in OKLab: the brightness is the mean
/// perceived lightness, the contrast its spread, and the colour the hue where most of the
/// picture's chroma lies (greys are counted apart and named by their lightness).
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
    let mut light_sum = 0.0;
    let mut light_sq = 0.0;
    let mut chroma_sum = 0.0;
    /// What the coloured pixels of one hue bin add up to, each weighted by its chroma.
    #[derive(Clone, Copy, Default)]
    struct Bin {
        weight: f64,
        lightness: f64,
        chroma: f64,
        /// The hue as a vector, so hues either side of 0° average to red, not cyan.
        hue_x: f64,
        hue_y: f64,
    }
    let mut bins = [Bin::default(); HUE_BINS];
    let mut colourful = 0usize;
    // The lightness of the pixels that are grey, to name the grey they make.
    let mut neutral_light = 0.0;
    for px in rgb.chunks_exact(3) {
        for (sum, &c) in sums.iter_mut().zip(px) {
            *sum += f64::from(c);
        }
        let (l, c, h) = oklch(px[0], px[1], px[2]);
        light_sum += l;
        light_sq += l * l;
        chroma_sum += c;
        if c >= NEUTRAL_CHROMA && l >= DARKEST_COLOURED {
            colourful += 1;
            let width = 360.0 / HUE_BINS as f64;
            let bin = &mut bins[((h / width) as usize).min(HUE_BINS - 1)];
            bin.weight += c;
            bin.lightness += l * c;
            bin.chroma += c * c;
            let (sin, cos) = h.to_radians().sin_cos();
            bin.hue_x += cos * c;
            bin.hue_y += sin * c;
        } else {
            neutral_light += l;
        }
    }
    let brightness = light_sum / n;
    let contrast = (light_sq / n - brightness * brightness).max(0.0).sqrt();
    let mean_rgb = sums.map(|s| (s / n).round().clamp(0.0, 255.0) as u8);
    let total_weight: f64 = bins.iter().map(|b| b.weight).sum();
    let best = (0..HUE_BINS)
        .max_by(|a, b| bins[*a].weight.total_cmp(&bins[*b].weight))
        .unwrap_or(0);
    let (hue_degrees, colour_name) = if (colourful as f64) < 0.15 * n || total_weight <= 0.0 {
        (None, neutral_name(brightness).to_owned())
    } else {
        // Neighbouring bins count with the winner: a gradient from orange to yellow is still
        // one colour; only a real spread round the wheel is "multicoloured".
        let mut near = Bin::default();
        for i in [best + HUE_BINS - 1, best, best + 1] {
            let bin = bins[i % HUE_BINS];
            near.weight += bin.weight;
            near.lightness += bin.lightness;
            near.chroma += bin.chroma;
            near.hue_x += bin.hue_x;
            near.hue_y += bin.hue_y;
        }
        let hue = near.hue_y.atan2(near.hue_x).to_degrees().rem_euclid(360.0);
        let colour = if near.weight < 0.45 * total_weight {
            "multicoloured".to_owned()
        } else {
            colour_name(near.lightness / near.weight, near.chroma / near.weight, hue)
        };
        let neutral = n - colourful as f64;
        if neutral >= 0.5 * n {
            // Mostly grey with some colour: a person names the grey first, then the colour
            // (a grey wall with a blue door is not "bathed in blue").
            let grey = neutral_name(neutral_light / neutral);
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
        saturation: chroma_sum / n,
        contrast,
        hue_degrees,
        colour_name,
        mean_rgb,
    }
}

/// The name of a grey of this perceived lightness (OKLab L).
pub fn neutral_name(lightness: f64) -> &'static str {
    match lightness {
        l if l < 0.2 => "black",
        l if l < 0.45 => "dark grey",
        l if l < 0.72 => "grey",
        l if l < 0.9 => "pale grey",
        _ => "white",
    }
}

/// The family of hues a colour belongs to, by its OKLCh hue in degrees.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Hue {
    /// Reds, and light reds and magentas (pink).
    Red,
    Orange,
    Yellow,
    YellowGreen,
    Green,
    SeaGreen,
    Cyan,
    SkyBlue,
    Blue,
    Violet,
    Purple,
}

impl Hue {
    fn of(degrees: f64) -> Hue {
        match degrees.rem_euclid(360.0) {
            h if h < 42.0 => Hue::Red,
            h if h < 85.0 => Hue::Orange,
            h if h < 118.0 => Hue::Yellow,
            h if h < 135.0 => Hue::YellowGreen,
            h if h < 160.0 => Hue::Green,
            h if h < 172.0 => Hue::SeaGreen,
            h if h < 215.0 => Hue::Cyan,
            h if h < 242.0 => Hue::SkyBlue,
            h if h < 290.0 => Hue::Blue,
            h if h < 318.0 => Hue::Violet,
            h if h < 345.0 => Hue::Purple,
            _ => Hue::Red,
        }
    }
}

/// A colour in words from its OKLCh lightness (0..1), chroma and hue (degrees), as a person
/// names it: navy is "dark blue", grass "green" (never yellow), a face "warm beige" or "tan",
/// a dark orange "brown", a dark yellow "olive", a light red "pink".
pub fn colour_name(lightness: f64, chroma: f64, hue: f64) -> String {
    let (l, c) = (lightness, chroma);
    let family = Hue::of(hue);
    let degrees = hue.rem_euclid(360.0);
    let pinkish = !(15.0..345.0).contains(&degrees) || (318.0..345.0).contains(&degrees);
    // Names that stand on their own, before lightness and strength are added to a hue.
    let special = match family {
        Hue::Red if pinkish && l >= 0.72 => Some("pink"),
        Hue::Red | Hue::Orange if l >= 0.6 && c < 0.13 && degrees >= 42.0 => {
            // Skin and sand: a light, muted orange is what a face or a beach looks like.
            return if l >= 0.8 { "warm beige" } else { "tan" }.into();
        }
        Hue::Yellow if (0.6..0.9).contains(&l) && c < 0.09 => return "tan".into(),
        Hue::Yellow if l >= 0.9 && c < 0.06 => return "cream".into(),
        Hue::Orange if l < 0.4 => return "dark brown".into(),
        Hue::Orange if l < 0.58 => return "brown".into(),
        Hue::Yellow if l < 0.45 => return "dark olive".into(),
        Hue::Yellow if l < 0.65 => return "olive".into(),
        Hue::Cyan if l < 0.65 => Some("teal"),
        Hue::Purple if l < 0.6 => Some("purple"),
        _ => None,
    };
    let base = special.unwrap_or(match family {
        Hue::Red => "red",
        Hue::Orange => "orange",
        Hue::Yellow => "yellow",
        Hue::YellowGreen if l >= 0.75 && c >= 0.15 => "yellow-green",
        Hue::YellowGreen | Hue::Green => "green",
        Hue::SeaGreen => "sea green",
        Hue::Cyan => "cyan",
        Hue::SkyBlue => "sky blue",
        Hue::Blue => "blue",
        Hue::Violet => "violet",
        Hue::Purple => "magenta",
    });
    if l < 0.35 {
        return format!("dark {base}");
    }
    if l < 0.5 {
        return format!("deep {base}");
    }
    if c < 0.06 {
        return if l > 0.75 {
            format!("pale {base}")
        } else {
            format!("muted {base}")
        };
    }
    if c < 0.11 {
        return format!("soft {base}");
    }
    if c < 0.15 || l < 0.6 {
        return base.to_owned();
    }
    match family {
        Hue::Red | Hue::Orange | Hue::Yellow => format!("warm {base}"),
        Hue::Cyan | Hue::SkyBlue | Hue::Blue => format!("cool {base}"),
        _ => format!("bright {base}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn solid(r: u8, g: u8, b: u8) -> Vec<u8> {
        [r, g, b].repeat(TINY_WIDTH * TINY_HEIGHT)
    }

    /// The name of a flat sRGB colour.
    fn named(r: u8, g: u8, b: u8) -> String {
        colour_facts(&solid(r, g, b)).colour_name
    }

    #[test]
    fn names_colours_as_a_person_does() {
        // Hues, by what they are called.
        assert_eq!(named(255, 0, 0), "warm red");
        assert_eq!(named(255, 165, 0), "warm orange");
        assert_eq!(named(255, 215, 0), "warm yellow");
        assert_eq!(named(0, 128, 0), "green");
        assert_eq!(named(0, 0, 255), "deep blue");
        assert_eq!(named(0, 0, 128), "dark blue");
        assert_eq!(named(0, 191, 255), "cool sky blue");
        assert_eq!(named(0, 128, 128), "soft teal");
        assert_eq!(named(128, 0, 128), "deep purple");
        assert_eq!(named(75, 0, 130), "dark violet");
        assert_eq!(named(255, 105, 180), "warm pink");
        assert_eq!(named(255, 192, 203), "soft pink");
        // Greens as grass is green: never yellow.
        for (r, g, b) in [
            (107, 142, 35),
            (0x4f, 0x7a, 0x28),
            (34, 139, 34),
            (85, 107, 47),
        ] {
            let name = named(r, g, b);
            assert!(name.ends_with("green"), "({r}, {g}, {b}) is {name}");
        }
        assert_eq!(named(154, 205, 50), "bright yellow-green");
        // Skin and sand, browns and olives.
        assert_eq!(named(0xf1, 0xc2, 0x7d), "warm beige");
        assert_eq!(named(0xe0, 0xac, 0x69), "tan");
        assert_eq!(named(205, 133, 63), "tan");
        assert_eq!(named(194, 178, 128), "tan");
        assert_eq!(named(139, 69, 19), "brown");
        assert_eq!(named(0x8d, 0x55, 0x24), "brown");
        assert_eq!(named(90, 50, 20), "dark brown");
        assert_eq!(named(128, 128, 0), "olive");
        // Reds stay red however dark; a slate grey leans blue.
        assert_eq!(named(178, 34, 34), "deep red");
        assert_eq!(named(128, 0, 0), "deep red");
        assert_eq!(named(112, 128, 144), "muted blue");
        // Greys by their lightness.
        assert_eq!(named(10, 10, 10), "black");
        assert_eq!(named(64, 64, 64), "dark grey");
        assert_eq!(named(128, 128, 128), "grey");
        assert_eq!(named(200, 200, 200), "pale grey");
        assert_eq!(named(250, 250, 250), "white");
        assert_eq!(neutral_name(0.1), "black");
        assert_eq!(neutral_name(0.6), "grey");
        assert_eq!(neutral_name(0.95), "white");
    }

    #[test]
    fn oklab_matches_its_reference_values() {
        // Reference values from the OKLab definition's own examples for sRGB white and primaries.
        let close = |a: [f64; 3], b: [f64; 3]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 2e-3);
        assert!(close(oklab(255, 255, 255), [1.0, 0.0, 0.0]));
        assert!(close(oklab(255, 0, 0), [0.628, 0.225, 0.126]));
        assert!(close(oklab(0, 255, 0), [0.866, -0.234, 0.179]));
        assert!(close(oklab(0, 0, 255), [0.452, -0.032, -0.312]));
        let (l, c, h) = oklch(0, 0, 255);
        assert!((l - 0.452).abs() < 2e-3 && (c - 0.313).abs() < 2e-3 && (h - 264.1).abs() < 0.5);
    }

    #[test]
    fn facts_of_solid_frames() {
        let navy = colour_facts(&solid(0, 0, 128));
        assert_eq!(navy.colour_name, "dark blue");
        assert!((navy.hue_degrees.unwrap() - 264.1).abs() < 0.5, "{navy:?}");
        // Perceived lightness: navy is dark, pure blue is not black.
        assert!((navy.brightness - 0.271).abs() < 0.01, "{navy:?}");
        assert!(colour_facts(&solid(0, 0, 255)).brightness > 0.4);
        assert!(navy.contrast < 1e-6);
        assert!((navy.saturation - 0.188).abs() < 0.01, "{navy:?}");
        assert_eq!(navy.mean_rgb, [0, 0, 128]);

        let grey = colour_facts(&solid(128, 128, 128));
        assert_eq!(grey.colour_name, "grey");
        assert_eq!(grey.hue_degrees, None);
        assert!((grey.brightness - 0.600).abs() < 0.01, "{grey:?}");
    }

    #[test]
    fn half_black_half_white_is_all_contrast() {
        let mut rgb = solid(0, 0, 0);
        rgb[TINY_BYTES / 2..].fill(255);
        let facts = colour_facts(&rgb);
        assert!((facts.contrast - 0.5).abs() < 1e-6, "{facts:?}");
        assert!((facts.brightness - 0.5).abs() < 1e-6, "{facts:?}");
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
        assert!(facts.contrast > 0.1, "{facts:?}");
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
