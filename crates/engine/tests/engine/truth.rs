//! The offline storyteller's truth harness: videos made with ffmpeg whose facts are known by
//! construction (segments of known looks joined at known times, known sizes and rotations,
//! sound or none), each told in every preset, and a checker that reads the stories' claims
//! back and compares them with the truth. It prints the precision of each kind of claim and
//! holds the kinds the writer has been made truthful about to every claim being right.
//!
//! Kinds of claim read back:
//! - cut: a moment told as a cut ("the film cuts", "a new scene", "cuts once, at 0:05") must be
//!   within half a second (the clock's rounding) and one frame of a real cut;
//! - hold: a moment told as the same shot continuing ("the same … palette holds", "still in
//!   the same shot") must have no cut since the moment told before it;
//! - moment: no two sentences tell the same clock time as different events;
//! - scenes: "one take", "never cuts", "N scenes" against the cuts made;
//! - shots: "the final shot" only where there is more than one;
//! - size: resolution names (HD, Full HD, 4K UHD, 8K …) and landscape / portrait / square;
//! - colour: the colour told of a flat shot (the opening, a moment, the end) is the family a
//!   person names it by (navy is blue, olive drab is green, a mostly grey picture is grey);
//! - light: no flat colour is called high-contrast, and a shot is called dark or bright only
//!   when its colour plainly is (navy is dark, orange bright; red, green or grey neither);
//! - motion: "perfectly still" / "full of movement" of a shot, "calm and still" / "lively" of
//!   the whole, against which shots move;
//! - sound: "no soundtrack" / "carrying sound" against the streams made, how many audio
//!   streams and which one carries the sound (a dead first track, four tracks, all silent),
//!   and level changes told only where the level changes (every tone made is steady);
//! - silence: silences told with their times, and none told where there is none;
//! - prose: every sentence of every preset starts with a capital and ends with its stop, with
//!   no placeholder left in, no doubled word or space, no stray comma, no "a" before a vowel.
//!
//! Colours, light and motion are read from the narrative, documentary and bedtime presets
//! (the ones that tell shots one by one); `TRUTH_STORIES=1` prints every story.

use crate::support::{self, Look, VideoOptions};
use std::collections::BTreeMap;
use std::path::Path;
use storyteller_engine::media::Analysis;
use storyteller_engine::storyteller::offline::{compose, Preset, PRESETS};

/// A video made for the harness, and what is true of it.
#[derive(Clone)]
struct Case {
    name: String,
    segments: Vec<(Look, f64)>,
    size: (u32, u32),
    fps: u32,
    /// Display rotation written into the file (degrees clockwise).
    rotation: u32,
    audio: bool,
    /// A silence in the sound, from and to (seconds); the rest is a steady tone.
    silence: Option<(f64, f64)>,
    /// Several audio streams, each a steady tone (true) or silent (false); empty: one.
    streams: Vec<bool>,
}

impl Case {
    fn new(name: &str, segments: &[(Look, f64)]) -> Case {
        Case {
            name: name.into(),
            segments: segments.to_vec(),
            size: (160, 90),
            fps: 25,
            rotation: 0,
            audio: true,
            silence: None,
            streams: Vec::new(),
        }
    }

    /// A test pattern of `seconds` with these audio streams (a tone, or silence).
    fn with_streams(name: &str, seconds: f64, streams: &[bool]) -> Case {
        let mut case = Case::new(name, &[(Look::TestSrc, seconds)]);
        case.streams = streams.to_vec();
        case
    }

    /// A test pattern of `seconds` whose steady tone stops from `from` to `to`.
    fn with_silence(name: &str, seconds: f64, from: f64, to: f64) -> Case {
        let mut case = Case::new(name, &[(Look::TestSrc, seconds)]);
        case.silence = Some((from, to));
        case
    }

    fn sized(mut self, width: u32, height: u32) -> Case {
        self.size = (width, height);
        self
    }

    fn rotated(mut self, degrees: u32) -> Case {
        self.rotation = degrees;
        self
    }

    fn silent(mut self) -> Case {
        self.audio = false;
        self
    }

    fn duration(&self) -> f64 {
        self.segments.iter().map(|s| s.1).sum()
    }

    /// The times of the cuts: where two segments that look different meet.
    fn cuts(&self) -> Vec<f64> {
        let mut cuts = Vec::new();
        let mut at = 0.0;
        for pair in self.segments.windows(2) {
            at += pair[0].1;
            if pair[0].0 != pair[1].0 {
                cuts.push(at);
            }
        }
        cuts
    }

    /// Width and height as shown.
    fn shown_size(&self) -> (u32, u32) {
        if self.rotation % 180 == 90 {
            (self.size.1, self.size.0)
        } else {
            self.size
        }
    }

    fn make(&self, dir: &Path) -> std::path::PathBuf {
        if !self.streams.is_empty() {
            let path = dir.join(&self.name);
            let seconds = self.duration();
            let (w, h) = self.size;
            let mut args: Vec<String> = vec![
                "-f".into(),
                "lavfi".into(),
                "-i".into(),
                Look::TestSrc.source(w, h, self.fps, seconds),
            ];
            for (i, tone) in self.streams.iter().enumerate() {
                let source = if *tone {
                    format!(
                        "sine=frequency={}:sample_rate=48000:duration={seconds}",
                        300 + 110 * i
                    )
                } else {
                    format!("anullsrc=r=48000:cl=mono,atrim=duration={seconds}")
                };
                args.extend(["-f".into(), "lavfi".into(), "-i".into(), source]);
            }
            args.extend(["-map".into(), "0:v".into()]);
            for i in 0..self.streams.len() {
                args.extend(["-map".into(), format!("{}:a", i + 1)]);
            }
            args.extend(["-c:a".into(), "aac".into()]);
            support::encode_args(&mut args, &VideoOptions::default());
            args.push(path.display().to_string());
            support::ffmpeg(&args.iter().map(String::as_str).collect::<Vec<_>>());
            return path;
        }
        if let Some(silence) = self.silence {
            return support::make_video_with_silence(dir, &self.name, self.duration(), silence);
        }
        let made = support::make_scenes_with(
            dir,
            &format!("made-{}", self.name),
            &self.segments,
            self.audio,
            &VideoOptions {
                size: self.size,
                fps: self.fps,
                ..VideoOptions::default()
            },
        );
        let path = dir.join(&self.name);
        let rotate = self.rotation.to_string();
        support::ffmpeg(&[
            "-i",
            made.to_str().unwrap(),
            "-c",
            "copy",
            "-metadata:s:v:0",
            &format!("rotate={rotate}"),
            path.to_str().unwrap(),
        ]);
        path
    }
}

/// The cases: cuts at known times, one-shot videos, sizes and rotations, sound or none.
fn cases() -> Vec<Case> {
    use Look::{Bars, Colour, Mandelbrot, TestSrc};
    let mut cases = vec![
        Case::new(
            "one-cut-4.6.mp4",
            &[(Colour("navy"), 4.6), (Colour("orange"), 4.4)],
        ),
        Case::new(
            "five-cuts.mp4",
            &[
                (Colour("gray"), 1.2),
                (Colour("dimgray"), 1.8),
                (Colour("darkgray"), 2.5),
                (Colour("gray"), 2.0),
                (Colour("slategray"), 2.2),
                (Colour("dimgray"), 1.3),
            ],
        ),
        Case::new("one-shot-still.mp4", &[(Colour("navy"), 10.0)]),
        Case::new("one-shot-moving.mp4", &[(TestSrc, 9.0)]),
        Case::new("one-shot-fractal.mp4", &[(Mandelbrot, 6.0)]),
        Case::new("bars-then-pattern.mp4", &[(Bars, 3.0), (TestSrc, 4.0)]),
        Case::new(
            "three-colours.mp4",
            &[
                (Colour("red"), 2.0),
                (Colour("green"), 3.0),
                (Colour("blue"), 2.5),
            ],
        ),
        Case::new(
            "quick-cuts.mp4",
            &[
                (Colour("orange"), 0.8),
                (Colour("purple"), 0.8),
                (Colour("orange"), 0.8),
                (Colour("purple"), 0.8),
                (Colour("orange"), 0.8),
                (Colour("purple"), 0.8),
            ],
        ),
        Case::new(
            "long-hold.mp4",
            &[(TestSrc, 1.5), (Colour("black"), 6.0), (Bars, 1.5)],
        ),
        Case::new(
            "silent-two-shots.mp4",
            &[(Colour("white"), 3.0), (Bars, 3.0)],
        )
        .silent(),
        Case::new("silent-one-shot.mp4", &[(TestSrc, 4.0)]).silent(),
    ];
    // Cuts at odd times, across the second's boundaries.
    for (i, first) in [1.4, 2.5, 3.6, 4.5, 5.4, 6.6, 7.5].iter().enumerate() {
        cases.push(Case::new(
            &format!("cut-at-{first}.mp4"),
            &[(Colour("teal"), *first), (Colour("maroon"), 9.0 - first)],
        ));
        if i % 2 == 0 {
            cases.push(Case::new(
                &format!("two-cuts-from-{first}.mp4"),
                &[
                    (TestSrc, *first),
                    (Colour("olive"), 2.3),
                    (Colour("navy"), 8.0 - first),
                ],
            ));
        }
    }
    // Sizes, orientations and rotations (short: big frames are slow to make).
    for (width, height, rotation) in [
        (1280, 720, 0),
        (1920, 1080, 0),
        (1920, 1080, 90),
        (1080, 1920, 0),
        (2560, 1440, 0),
        (3840, 2160, 0),
        (7680, 4320, 0),
        (720, 720, 0),
        (1000, 562, 0),
        (640, 480, 270),
        (854, 480, 0),
        (2048, 1080, 0),
    ] {
        cases.push(
            Case::new(
                &format!("size-{width}x{height}-r{rotation}.mp4"),
                &[(Colour("darkgreen"), 0.6), (Colour("gold"), 0.6)],
            )
            .sized(width, height)
            .rotated(rotation),
        );
    }
    // Other frame rates: a frame is another length.
    for fps in [24, 30, 50] {
        let mut case = Case::new(
            &format!("cut-at-2.7-{fps}fps.mp4"),
            &[(Colour("indigo"), 2.7), (TestSrc, 3.3)],
        );
        case.fps = fps;
        cases.push(case);
    }
    // Moving pictures, and shots whose colour has the same name on both sides of the cut.
    cases.push(Case::new(
        "life-then-fractal.mp4",
        &[(Look::Life, 3.0), (Mandelbrot, 3.0)],
    ));
    cases.push(Case::new(
        "fractal-then-black.mp4",
        &[(Mandelbrot, 2.5), (Colour("black"), 2.5)],
    ));
    cases.push(Case::new(
        "blue-on-blue.mp4",
        &[
            (Colour("navy"), 2.0),
            (Colour("midnightblue"), 2.0),
            (Colour("darkblue"), 2.0),
        ],
    ));
    cases.push(Case::new(
        "reds.mp4",
        &[
            (Colour("red"), 1.6),
            (Colour("firebrick"), 2.9),
            (Colour("darkred"), 1.5),
        ],
    ));
    cases.push(Case::new("bars-alone.mp4", &[(Bars, 5.0)]).silent());
    // Silences at known times in a steady tone, and steady tones of several lengths.
    for (seconds, from, to) in [
        (8.0, 2.0, 3.5),
        (10.0, 4.0, 7.0),
        (6.0, 1.0, 2.0),
        (12.0, 3.0, 9.0),
    ] {
        cases.push(Case::with_silence(
            &format!("silence-{from}-{to}-of-{seconds}.mp4"),
            seconds,
            from,
            to,
        ));
    }
    // Several audio streams: a dead first track, four tracks, all silent.
    for (i, streams) in [
        &[false, true][..],
        &[true, true, true, true],
        &[false, false, true],
        &[false, false],
        &[true, false],
    ]
    .iter()
    .enumerate()
    {
        cases.push(Case::with_streams(
            &format!("streams-{i}.mp4"),
            4.0,
            streams,
        ));
    }
    // Shots of one length: none is the longest.
    cases.push(Case::new(
        "three-equal-shots.mp4",
        &[
            (Colour("navy"), 3.0),
            (Colour("orange"), 3.0),
            (Colour("darkgreen"), 3.0),
        ],
    ));
    // Long shots whose look changes inside them, then a cut.
    cases.push(Case::new(
        "fractal-zoom-then-navy.mp4",
        &[(Mandelbrot, 14.0), (Colour("navy"), 3.0)],
    ));
    cases.push(Case::new(
        "orange-then-pattern.mp4",
        &[(Colour("orange"), 3.0), (TestSrc, 14.0)],
    ));
    for seconds in [3.0, 15.0] {
        cases.push(Case::new(
            &format!("steady-tone-{seconds}.mp4"),
            &[(TestSrc, seconds)],
        ));
    }
    // Skin and sand, and browns.
    for (i, skin) in [
        "0xe0ac69",
        "0xf1c27d",
        "burlywood",
        "peru",
        "0x8d5524",
        "saddlebrown",
    ]
    .iter()
    .enumerate()
    {
        cases.push(Case::new(
            &format!("skin-{i}.mp4"),
            &[(Colour(skin), 2.0), (Colour("black"), 2.0)],
        ));
    }
    // Greens as grass is green, and pictures mostly grey with a band of colour.
    for (i, green) in [
        "yellowgreen",
        "olivedrab",
        "0x4f7a28",
        "forestgreen",
        "darkolivegreen",
        "seagreen",
    ]
    .iter()
    .enumerate()
    {
        cases.push(Case::new(
            &format!("green-{i}.mp4"),
            &[(Colour(green), 2.0), (Colour("navy"), 2.0)],
        ));
    }
    for (i, (base, band)) in [
        ("gray", "blue"),
        ("silver", "deepskyblue"),
        ("dimgray", "red"),
        ("gainsboro", "orange"),
    ]
    .iter()
    .enumerate()
    {
        cases.push(Case::new(
            &format!("mostly-grey-{i}.mp4"),
            &[(Look::Split(base, band, 0.4), 2.0), (Colour("black"), 2.0)],
        ));
    }
    // Many cuts, more than any preset lists one by one.
    let mut many = Vec::new();
    for i in 0..12 {
        many.push((
            if i % 2 == 0 {
                Colour("crimson")
            } else {
                Colour("steelblue")
            },
            0.9 + 0.1 * f64::from(i % 3),
        ));
    }
    cases.push(Case::new("twelve-cuts.mp4", &many));
    cases
}

/// The colour families a person would name a flat ffmpeg colour by (none: not a flat colour,
/// or not one the harness knows).
fn families_of(look: Look) -> Option<&'static [&'static str]> {
    let name = match look {
        Look::Colour(name) => name,
        // Mostly one colour, with a band of another: named by what most of it is.
        Look::Split(base, _, share) if share <= 0.4 => base,
        _ => return None,
    };
    Some(match name {
        "navy" | "blue" | "midnightblue" | "darkblue" | "steelblue" => &["blue"],
        "orange" => &["orange"],
        "gray" | "dimgray" | "darkgray" | "black" | "white" => &["neutral"],
        "slategray" => &["neutral", "blue"],
        "red" | "crimson" | "firebrick" | "darkred" => &["red"],
        "maroon" => &["red", "brown"],
        "green" | "darkgreen" => &["green"],
        "purple" => &["violet", "magenta"],
        "indigo" => &["violet", "blue"],
        "teal" => &["cyan"],
        "olive" => &["olive", "yellow"],
        "gold" => &["yellow", "orange"],
        "yellowgreen" | "olivedrab" | "0x4f7a28" | "forestgreen" | "seagreen" => &["green"],
        "darkolivegreen" => &["green", "olive"],
        "gainsboro" | "silver" => &["neutral"],
        "0xe0ac69" | "0xf1c27d" | "burlywood" => &["skin"],
        "peru" => &["skin", "brown", "orange"],
        "0x8d5524" | "saddlebrown" => &["brown"],
        _ => return None,
    })
}

/// How light a flat ffmpeg colour looks to a person: dark, middling or bright (none: not a
/// flat colour the harness knows, or between two of these).
fn lightness_of(look: Look) -> Option<&'static str> {
    let Look::Colour(name) = look else {
        return None;
    };
    Some(match name {
        "black" | "navy" | "midnightblue" | "darkblue" | "indigo" | "darkred" | "maroon" => "dark",
        "red" | "green" | "gray" | "teal" | "olive" | "steelblue" | "crimson" | "dimgray"
        | "firebrick" | "forestgreen" | "seagreen" | "slategray" | "0x4f7a28" | "olivedrab"
        | "peru" | "purple" => "middling",
        "white" | "orange" | "gold" | "yellowgreen" | "0xf1c27d" | "burlywood" | "gainsboro"
        | "silver" => "bright",
        _ => return None,
    })
}

/// The brightness word a sentence gives a shot ("a dark frame", "is bright and", "somewhere
/// dim,"), told apart from colour names ("dark blue") by what follows it.
fn brightness_told(lower: &str) -> Option<&'static str> {
    for (word, told) in [
        ("glaringly bright", "bright"),
        ("very bright", "bright"),
        ("bright", "bright"),
        ("dark", "dark"),
        ("dim", "dark"),
    ] {
        for (at, _) in lower.match_indices(word) {
            let before = lower[..at].chars().next_back();
            let rest = &lower[at + word.len()..];
            let as_light = [" frame", " picture", " shot", " and ", ", "]
                .iter()
                .any(|follows| rest.starts_with(follows));
            if !before.is_some_and(char::is_alphabetic) && as_light {
                return Some(told);
            }
        }
    }
    None
}

/// What is wrong with a sentence's writing, if anything: a placeholder left in, a sentence that
/// does not start with a capital or end with its stop, doubled words or spaces, stray commas,
/// "a" before a vowel or "an" before a consonant.
fn prose_fault(sentence: &str) -> Option<String> {
    if sentence.contains('{') || sentence.contains('}') {
        return Some("a placeholder is left in".into());
    }
    let first = sentence.chars().next()?;
    if !(first.is_uppercase() || first.is_ascii_digit() || "#\"“(".contains(first)) {
        return Some("it does not start with a capital".into());
    }
    let last = sentence
        .trim_end_matches(['"', '”', ')'])
        .chars()
        .next_back()?;
    if !".!?:".contains(last) {
        return Some("it does not end with a stop".into());
    }
    for fault in ["  ", " ,", ",,", "..", " .", ", .", ";;", " ;"] {
        if sentence.contains(fault) {
            return Some(format!("it has {fault:?}"));
        }
    }
    let words: Vec<String> = sentence
        .split(|c: char| c.is_whitespace() || ",;:.!?()".contains(c))
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect();
    for pair in words.windows(2) {
        if pair[0] == pair[1] && pair[0].chars().all(char::is_alphabetic) {
            return Some(format!("{:?} twice", pair[0]));
        }
        let vowel = pair[1].starts_with(['a', 'e', 'i', 'o', 'u']);
        // "a one-shot", "a unique": sounds, not letters, decide; these start with a consonant.
        let sounds_consonant = ["one", "uni", "use", "eu"]
            .iter()
            .any(|p| pair[1].starts_with(p));
        if pair[0] == "a" && vowel && !sounds_consonant {
            return Some(format!("\"a {}\"", pair[1]));
        }
        if pair[0] == "an" && !vowel && pair[1].chars().all(char::is_alphabetic) {
            return Some(format!("\"an {}\"", pair[1]));
        }
    }
    None
}

/// The colour family a sentence names first, if it names one.
fn family_told(lower: &str) -> Option<&'static str> {
    const WORDS: [(&str, &str); 26] = [
        ("beige", "skin"),
        ("tan", "skin"),
        ("multicoloured", "multi"),
        ("mixed colours", "multi"),
        ("patchwork of colours", "multi"),
        ("bursting with colour", "multi"),
        ("yellow-green", "green"),
        ("sea green", "green"),
        ("sky blue", "blue"),
        ("olive", "olive"),
        ("brown", "brown"),
        ("teal", "cyan"),
        ("cyan", "cyan"),
        ("grey", "neutral"),
        ("black", "neutral"),
        ("white", "neutral"),
        ("red", "red"),
        ("orange", "orange"),
        ("yellow", "yellow"),
        ("green", "green"),
        ("blue", "blue"),
        ("violet", "violet"),
        ("purple", "violet"),
        ("magenta", "magenta"),
        ("pink", "magenta"),
        ("navy", "blue"),
    ];
    // The colour named first; of words starting at one place, the longest ("sky blue").
    WORDS
        .iter()
        .filter_map(|(word, family)| {
            find_word(lower, word).map(|at| (at, usize::MAX - word.len(), *family))
        })
        .min()
        .map(|(_, _, family)| family)
}

/// Where `word` first stands as a word of its own in `text` ("tan", not "constant").
fn find_word(text: &str, word: &str) -> Option<usize> {
    text.match_indices(word).map(|(at, _)| at).find(|&at| {
        let before = text[..at].chars().next_back();
        let after = text[at + word.len()..].chars().next();
        !before.is_some_and(char::is_alphabetic) && !after.is_some_and(char::is_alphabetic)
    })
}

/// How a person names a size: 8K, 4K UHD, 1440p, Full HD, HD, or width × height.
fn size_name(width: u32, height: u32) -> String {
    let short = width.min(height);
    let long = width.max(height);
    if short >= 4320 || long >= 7680 {
        "8K".into()
    } else if short >= 2160 || long >= 3840 {
        "4K UHD".into()
    } else if short >= 1440 {
        "1440p".into()
    } else if short >= 1080 {
        "Full HD".into()
    } else if short >= 720 {
        "HD".into()
    } else {
        format!("{width}×{height}")
    }
}

fn orientation_name(width: u32, height: u32) -> &'static str {
    if width * 100 > height * 105 {
        "landscape"
    } else if height * 100 > width * 105 {
        "portrait"
    } else {
        "square"
    }
}

/// The clock times ("0:05", "1:02:03") in a sentence, in seconds, in order.
fn times_in(sentence: &str) -> Vec<f64> {
    let mut times = Vec::new();
    for word in sentence.split(|c: char| !(c.is_ascii_digit() || c == ':')) {
        let parts: Vec<&str> = word.split(':').collect();
        if parts.len() < 2 || parts.iter().any(|p| p.is_empty()) {
            continue;
        }
        if parts[1..].iter().any(|p| p.len() != 2) {
            continue;
        }
        let secs = parts
            .iter()
            .filter_map(|p| p.parse::<f64>().ok())
            .fold(0.0, |total, part| total * 60.0 + part);
        times.push(secs);
    }
    times
}

/// The sentences of a story (Markdown list marks and the signature left out).
fn sentences(story: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in story.lines() {
        let line = line.trim().trim_start_matches("- ");
        if line.is_empty() || line.starts_with('—') || line.contains("written offline") {
            continue;
        }
        let mut current = String::new();
        let chars: Vec<char> = line.chars().collect();
        for (i, c) in chars.iter().enumerate() {
            current.push(*c);
            let ends = matches!(c, '.' | '!' | '?')
                && chars.get(i + 1).is_none_or(|next| next.is_whitespace());
            if ends {
                out.push(current.trim().to_owned());
                current.clear();
            }
        }
        if !current.trim().is_empty() {
            out.push(current.trim().to_owned());
        }
    }
    out
}

const CUT_WORDS: [&str; 8] = [
    "cuts to",
    "cuts once",
    "cuts twice",
    "new scene",
    "scene changes",
    "cut at",
    "comes a",
    "begins at",
];
const HOLD_WORDS: [&str; 6] = [
    "palette holds",
    "picture stays",
    "still dominates",
    "same shot",
    "shot drifts",
    "colours keep on mixing",
];

/// Right and wrong claims of each kind.
#[derive(Default)]
struct Tally {
    kinds: BTreeMap<&'static str, (usize, usize)>,
    wrong: Vec<String>,
}

impl Tally {
    fn claim(&mut self, kind: &'static str, right: bool, why: impl FnOnce() -> String) {
        let entry = self.kinds.entry(kind).or_default();
        if right {
            entry.0 += 1;
        } else {
            entry.1 += 1;
            self.wrong.push(format!("[{kind}] {}", why()));
        }
    }

    fn precision(&self, kind: &str) -> f64 {
        let (right, wrong) = self.kinds.get(kind).copied().unwrap_or_default();
        if right + wrong == 0 {
            1.0
        } else {
            right as f64 / (right + wrong) as f64
        }
    }
}

/// Reads one story's claims back against the case's truth.
fn check(case: &Case, preset: &str, story: &str, tally: &mut Tally) {
    let cuts = case.cuts();
    let tolerance = 0.5 + 1.0 / f64::from(case.fps);
    let near_cut = |t: f64| cuts.iter().any(|c| (c - t).abs() <= tolerance);
    let label = |sentence: &str| format!("{} ({preset}): {sentence}", case.name);
    let mut previous_time: Option<f64> = None;
    let mut times_told: BTreeMap<u64, (&str, String)> = BTreeMap::new();
    let lower_story = story.to_lowercase();
    for sentence in sentences(story) {
        let lower = sentence.to_lowercase();
        let times = times_in(&sentence);
        let fault = prose_fault(&sentence);
        tally.claim("prose", fault.is_none(), || {
            format!("{} — {}", label(&sentence), fault.unwrap_or_default())
        });
        let is_cut = CUT_WORDS.iter().any(|w| lower.contains(w));
        if is_cut {
            for &t in &times {
                tally.claim("cut", near_cut(t), || label(&sentence));
            }
        }
        if HOLD_WORDS.iter().any(|w| lower.contains(w)) {
            if let (Some(&t), Some(before)) = (times.first(), previous_time) {
                let crossed = cuts
                    .iter()
                    .any(|c| *c > before + tolerance && *c < t - tolerance);
                tally.claim("hold", !crossed, || label(&sentence));
            }
        }
        // "The longest holds for 6 seconds, from 0:02 to 0:08": both ends are cuts or the
        // video's ends, and no cut between.
        if lower.contains("longest") && times.len() == 2 {
            let (from, to) = (times[0], times[1]);
            let end_ok =
                |t: f64| near_cut(t) || t <= tolerance || (case.duration() - t).abs() <= tolerance;
            let inside = cuts
                .iter()
                .any(|c| *c > from + tolerance && *c < to - tolerance);
            tally.claim("cut", end_ok(from) && end_ok(to) && !inside, || {
                label(&sentence)
            });
            // And it is the longest: the shot it names is longer than every other.
            let mut bounds = vec![0.0];
            bounds.extend(cuts.iter().copied());
            bounds.push(case.duration());
            let shots: Vec<(f64, f64)> = bounds.windows(2).map(|w| (w[0], w[1])).collect();
            let named = shots
                .iter()
                .position(|(a, b)| (a - from).abs() <= tolerance && (b - to).abs() <= tolerance);
            let others_shorter = named.is_some_and(|n| {
                let length = shots[n].1 - shots[n].0;
                shots
                    .iter()
                    .enumerate()
                    .all(|(i, (a, b))| i == n || b - a < length - 2.0 / f64::from(case.fps))
            });
            tally.claim("scenes", others_shorter, || {
                format!("{} — it is not clearly the longest", label(&sentence))
            });
        }
        // One moment, one event: a time told again in another sentence as something else
        // (ranges, and the busiest moment, which is a measure rather than an event, aside). A
        // cut told as a cut and as where the next shot begins is one event.
        if times.len() == 1 && !lower.contains("longest") && !lower.contains("busiest") {
            let key = times[0] as u64;
            let event = if is_cut || lower.contains("begins at") {
                "cut"
            } else {
                "shot"
            };
            let again = times_told.insert(key, (event, sentence.clone()));
            let right = match &again {
                None => true,
                Some((before, _)) => *before == "cut" && event == "cut",
            };
            tally.claim("moment", right, || {
                format!(
                    "{} and {}",
                    label(&sentence),
                    again.map(|a| a.1).unwrap_or_default()
                )
            });
        }
        if let Some(&last) = times.last() {
            previous_time = Some(last);
        }
        let one_take = [
            "one take",
            "single unbroken shot",
            "never cuts",
            "no cuts",
            "one continuous shot",
            "single, uninterrupted take",
        ];
        if one_take.iter().any(|w| lower.contains(w)) {
            tally.claim("scenes", cuts.is_empty(), || label(&sentence));
        }
        if lower.contains("final shot") || lower.contains("closing shot") {
            tally.claim("shots", !cuts.is_empty(), || label(&sentence));
        }
        if let Some(n) = scene_count(&lower) {
            tally.claim("scenes", n == cuts.len() + 1, || label(&sentence));
        }
        let (width, height) = case.shown_size();
        for name in [
            "8K", "4K UHD", "4K", "1440p", "Full HD", "1080p", "720p", " HD",
        ] {
            if sentence.contains(name) {
                let right = size_name(width, height);
                let told = name.trim();
                tally.claim("size", told == right, || {
                    format!("{} — it is {right}", label(&sentence))
                });
                break;
            }
        }
        for name in ["landscape", "portrait", "square"] {
            if lower.contains(name) {
                let right = orientation_name(width, height);
                tally.claim("size", name == right, || {
                    format!("{} — it is {right}", label(&sentence))
                });
            }
        }
        // The shot a sentence tells of: the opening, one at a time, or the end.
        let segment_at = |t: f64| {
            let mut end = 0.0;
            for (look, secs) in &case.segments {
                end += secs;
                if t < end {
                    return Some(*look);
                }
            }
            case.segments.last().map(|s| s.0)
        };
        let opening = ["opens", "first shot", "we begin", "open on", "it began"];
        let ending = [
            "closes",
            "final shot",
            "by the end",
            "last shot",
            "at the very end",
        ];
        let moment = if opening.iter().any(|w| lower.contains(w)) {
            Some(0.0)
        } else if ending.iter().any(|w| lower.contains(w)) {
            Some(case.duration() - 0.05)
        } else if times.len() == 1 && !lower.contains("busiest") {
            // A cut's time is where the new shot begins (rounded to the second): the shot
            // after the nearest cut.
            let t = times[0];
            if is_cut {
                cuts.iter()
                    .min_by(|a, b| (*a - t).abs().total_cmp(&(*b - t).abs()))
                    .map(|c| c + 0.01)
            } else {
                Some(t)
            }
        } else {
            None
        };
        let shot = moment.and_then(segment_at);
        let long_form = matches!(preset, "narrative" | "documentary" | "bedtime");
        // Colours of flat shots.
        if let (true, Some(told), Some(families)) =
            (long_form, family_told(&lower), shot.and_then(families_of))
        {
            tally.claim("colour", families.contains(&told), || {
                format!("{} — it is {}", label(&sentence), families.join(" or "))
            });
        }
        // Brightness: told only of a shot that is plainly dark or bright, and rightly.
        if let (true, Some(look)) = (long_form, shot) {
            if let (Some(told), Some(truth)) = (brightness_told(&lower), lightness_of(look)) {
                tally.claim("light", told == truth, || {
                    format!("{} — it looks {truth}", label(&sentence))
                });
            }
        }
        // Contrast: a flat colour has none.
        if let (true, Some(Look::Colour(_))) = (long_form, shot) {
            if lower.contains("high-contrast") {
                tally.claim("light", false, || {
                    format!("{} — it is one flat colour", label(&sentence))
                });
            }
            if lower.contains("flat,") || lower.contains("flat ") {
                tally.claim("light", true, String::new);
            }
        }
        // Motion, of a shot and of the whole.
        let moving = |look: Look| matches!(look, Look::TestSrc | Look::Mandelbrot | Look::Life);
        if let (true, Some(look)) = (long_form, shot) {
            if lower.contains("perfectly still") {
                tally.claim("motion", !moving(look), || {
                    format!("{} — it moves", label(&sentence))
                });
            }
            let moves = [
                "full of movement",
                "restless motion",
                "a little movement",
                "moving a little",
            ];
            if moves.iter().any(|w| lower.contains(w)) {
                tally.claim("motion", moving(look), || {
                    format!("{} — it is still", label(&sentence))
                });
            }
        }
        let any_moving = case.segments.iter().any(|s| moving(s.0));
        if lower.contains("calm and still") {
            tally.claim("motion", !any_moving, || {
                format!("{} — it moves", label(&sentence))
            });
        }
        let of_the_whole = ["overall", "as a whole", "on balance", "motion:"];
        if of_the_whole.iter().any(|w| lower.contains(w))
            && ["gently moving", "lively", "restless"]
                .iter()
                .any(|w| lower.contains(w))
        {
            tally.claim("motion", any_moving, || {
                format!("{} — nothing moves", label(&sentence))
            });
        }
        // The sound's level: every tone made here is steady.
        for changing in ["swinging between", "rising and falling"] {
            if lower.contains(changing) {
                tally.claim("sound", false, || {
                    format!("{} — the tone is steady", label(&sentence))
                });
            }
        }
        if lower.contains("steady level") {
            tally.claim("sound", case.audio, || label(&sentence));
        }
        // Silences: told with their times, as made (half a second either way: the clock's
        // rounding), and none told where there is none.
        let tells_silence = lower.contains("falls silent") || lower.contains("silence");
        let denies_silence = [
            "never falls silent",
            "no silent stretch",
            "never drops away",
            "no silences",
        ]
        .iter()
        .any(|w| lower.contains(w));
        if denies_silence {
            tally.claim("silence", case.audio && case.silence.is_none(), || {
                label(&sentence)
            });
        } else if tells_silence && case.audio {
            let all_silent = !case.streams.is_empty() && case.streams.iter().all(|s| !s);
            match case.silence {
                None if all_silent => tally.claim("silence", true, String::new),
                None => tally.claim("silence", false, || {
                    format!("{} — there is none", label(&sentence))
                }),
                Some((from, to)) if times.len() >= 2 => {
                    let near = |a: f64, b: f64| (a - b).abs() <= 0.5 + 0.25;
                    tally.claim(
                        "silence",
                        near(times[0], from) && near(times[1], to),
                        || format!("{} — it is from {from} to {to}", label(&sentence)),
                    );
                }
                Some(_) => {}
            }
        }
        // Several audio streams: how many, and which carries the sound.
        let streams: Vec<bool> = match (case.streams.is_empty(), case.audio) {
            (false, _) => case.streams.clone(),
            (true, true) => vec![true],
            (true, false) => Vec::new(),
        };
        if let Some(rest) = lower.split("carries ").nth(1) {
            if let Some(n) = scene_count(&rest.replace("audio streams", "scenes")) {
                tally.claim("sound", n == streams.len(), || {
                    format!("{} — it has {}", label(&sentence), streams.len())
                });
            }
        }
        if lower.contains("all of them are silent") || lower.contains("silent throughout") {
            tally.claim("sound", !streams.iter().any(|s| *s), || {
                format!("{} — a stream has sound", label(&sentence))
            });
        }
        if lower.contains("what follows is the first") {
            tally.claim("sound", streams.first() == Some(&true), || label(&sentence));
        }
        for (k, ordinal) in ["second", "third", "fourth"].iter().enumerate() {
            if lower.contains(&format!("the {ordinal} carries the sound")) {
                let at = k + 1;
                let right = streams.get(at) == Some(&true) && streams[..at].iter().all(|s| !s);
                tally.claim("sound", right, || label(&sentence));
            }
        }
        if lower.contains("no soundtrack") || lower.contains("carrying no sound") {
            tally.claim("sound", !case.audio, || label(&sentence));
        }
        if lower.contains("with a soundtrack") || lower.contains("carrying sound") {
            tally.claim("sound", case.audio, || label(&sentence));
        }
    }
    // The whole story said something about the picture's size in every long preset.
    if matches!(preset, "narrative" | "documentary" | "summary") {
        tally.claim(
            "size",
            ["landscape", "portrait", "square"]
                .iter()
                .any(|w| lower_story.contains(w)),
            || format!("{} ({preset}): no orientation told", case.name),
        );
    }
}

/// "three scenes", "12 scenes", "- Scenes: 4 (": the number told.
fn scene_count(lower: &str) -> Option<usize> {
    const WORDS: [&str; 13] = [
        "no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
        "eleven", "twelve",
    ];
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    for (i, word) in words.iter().enumerate() {
        if *word == "scenes" && i > 0 {
            let before = words[i - 1];
            if let Ok(n) = before.parse() {
                return Some(n);
            }
            if let Some(n) = WORDS.iter().position(|w| *w == before) {
                return Some(n);
            }
        }
        if *word == "scenes"
            && words
                .get(i + 1)
                .and_then(|n| n.parse::<usize>().ok())
                .is_some()
        {
            return words[i + 1].parse().ok();
        }
    }
    None
}

/// The story of `analysis` in `preset`, as the storyteller streams it.
fn story_of(analysis: &Analysis, preset: &str, seed: &str) -> String {
    compose(analysis, Preset::parse(preset).unwrap(), seed).concat()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_claim_the_offline_storyteller_makes_is_checked_against_how_the_video_was_made() {
    let dir = tempfile::tempdir().unwrap();
    let media = support::media();
    let cases = cases();
    assert!(cases.len() >= 40, "{} cases", cases.len());
    let mut tally = Tally::default();
    // Two at a time: making and analysing a video each keep a core busy.
    let made: Vec<_> = {
        let mut made = Vec::new();
        for pair in cases.chunks(2) {
            let jobs: Vec<_> = pair
                .iter()
                .map(|case| {
                    let dir = dir.path().to_owned();
                    let case = case.clone();
                    tokio::task::spawn_blocking(move || case.make(&dir))
                })
                .collect();
            for job in jobs {
                made.push(job.await.unwrap());
            }
        }
        made
    };
    for (case, path) in cases.iter().zip(&made) {
        let seed = storyteller_engine::intake::hash_file(path).unwrap();
        let analysis = media.analyse(path, &seed, &mut |_| {}).await.unwrap();
        for preset in PRESETS {
            let story = story_of(&analysis, preset, &seed);
            // TRUTH_STORIES=1 prints every story, to read them as a person would.
            if std::env::var_os("TRUTH_STORIES").is_some() {
                println!("=== {} ({preset})\n{story}", case.name);
            }
            check(case, preset, &story, &mut tally);
        }
    }
    println!(
        "precision of the offline storyteller's claims over {} videos:",
        cases.len()
    );
    for (kind, (right, wrong)) in &tally.kinds {
        println!(
            "  {kind:<7} {:>5.1}%  ({right} right, {wrong} wrong)",
            tally.precision(kind) * 100.0
        );
    }
    for wrong in &tally.wrong {
        println!("  wrong: {wrong}");
    }
    for kind in [
        "colour", "cut", "hold", "light", "moment", "motion", "prose", "scenes", "shots", "size",
        "sound", "silence",
    ] {
        let (right, wrong) = tally.kinds.get(kind).copied().unwrap_or_default();
        assert!(
            right + wrong >= 4,
            "only {} {kind} claims were read back: the checker has lost them",
            right + wrong
        );
        assert!(
            tally.precision(kind) == 1.0,
            "{kind} claims are not all true:\n{}",
            tally
                .wrong
                .iter()
                .filter(|w| w.starts_with(&format!("[{kind}]")))
                .cloned()
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}
