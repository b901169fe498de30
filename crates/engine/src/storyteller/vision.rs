//! What every image-model storyteller shares: looking at the video (the media analysis the
//! offline storyteller makes: probe, scenes, keyframes, sound) and keeping its keyframes'
//! JPEGs; what the model is asked and the facts it is given; and reading a streamed answer a
//! line at a time, giving up when it stays silent too long.

use super::http::error_for_transport;
use super::{StoryError, StoryRequest, StorySink};
use crate::job::Stage;
use crate::media::{clock, Analysis, Media};
use std::fmt::Write as _;
use std::time::Duration;

/// The presets, the default first: the offline storyteller's, so that a preset means the same
/// whoever tells.
pub const PRESETS: [&str; 5] = ["narrative", "summary", "social", "bedtime", "documentary"];
/// Where looking at the video ends and writing starts, in the job's progress.
pub const ANALYSIS_END: f64 = 0.5;
/// A streamed line longer than this is not a model's answer.
const MAX_LINE: usize = 1 << 20;
/// How long a model's answer may stay silent: a model on a CPU can take minutes to read the
/// images before its first word, but not longer than this, nor between two pieces.
pub const IDLE_GAP: Duration = Duration::from_secs(300);
/// How long connecting to a model's server may take when the settings do not say.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The HTTP client for a model's server. No overall timeout: a long story streams for
/// minutes. Connecting takes at most `connect` (the `NAME.connect-timeout` setting), and every
/// silence is bounded too ([`send_within`], [`LineReader`]).
pub fn streaming_client(connect: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(connect)
        .build()
        .unwrap_or_default()
}

/// Sends `request`, waiting at most `idle_gap` for the answer to begin; `server` names who did
/// not answer. The transport's own failure is left to the caller, which knows what it means.
pub async fn send_within(
    server: &str,
    idle_gap: Duration,
    request: reqwest::RequestBuilder,
) -> Result<reqwest::Result<reqwest::Response>, StoryError> {
    tokio::time::timeout(idle_gap, request.send())
        .await
        .map_err(|_| {
            StoryError::transient(format!(
                "{server} did not answer within {} s",
                idle_gap.as_secs()
            ))
        })
}

/// Looks at `request`'s video: probes it (the facts go to `sink`), analyses it (progress up
/// to `analysis_end`) and reads its keyframes' JPEGs, in time order.
pub async fn look(
    media: &Media,
    request: &StoryRequest,
    sink: &mut StorySink,
    analysis_end: f64,
) -> Result<(Analysis, Vec<Vec<u8>>), StoryError> {
    sink.stage(Stage::Probing);
    let info = media.probe(&request.source).await?;
    match serde_json::to_value(&info) {
        Ok(facts) => sink.media(facts),
        Err(e) => tracing::warn!(error = %e, "media facts could not be recorded"),
    }
    sink.stage(Stage::Analysing);
    let analysis = {
        let mut on_progress = |f: f64| sink.progress(analysis_end * f);
        media
            .analyse_probed(
                &request.source,
                &info,
                &request.content_hash,
                &mut on_progress,
            )
            .await?
    };
    let mut jpegs = Vec::with_capacity(analysis.keyframes.len());
    for keyframe in &analysis.keyframes {
        let jpeg = tokio::fs::read(&keyframe.thumbnail).await.map_err(|e| {
            StoryError::transient(format!(
                "the keyframe {} could not be read: {e}",
                keyframe.thumbnail.display()
            ))
        })?;
        jpegs.push(jpeg);
    }
    Ok((analysis, jpegs))
}

/// Tokens a vision encoder reads for one keyframe (about 600 for the models in use).
const KEYFRAME_TOKENS: u64 = 600;
/// Tokens of the facts and the instructions around them.
const FACTS_TOKENS: u64 = 400;
/// Tokens of the question asked about one keyframe in the first of two passes.
const NOTE_QUESTION_TOKENS: u64 = 80;
/// Tokens of a keyframe's note (one or two sentences), written once and read again.
const NOTE_TOKENS: u64 = 70;
/// Tokens a second of talk takes in a transcript (about 150 words a minute).
const SPEECH_TOKENS_PER_SEC: f64 = 3.3;
/// How long describing one keyframe alone takes a model (a short answer: a middle guess).
const NOTE_SECS: f64 = 8.0;

/// How an image-model storyteller would tell a video, for its estimate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Telling {
    /// Each keyframe described alone first, then the story from the notes (see
    /// [`super::twopass`]).
    pub one_image_at_a_time: bool,
    /// What is said transcribed and put in the prompt.
    pub transcribed: bool,
}

/// The keyframes the analysis takes of a video this long (one every two seconds, up to 8).
fn keyframes_of(info: &crate::media::MediaInfo) -> u64 {
    (info.duration_secs / 2.0).ceil().clamp(1.0, 8.0) as u64
}

/// The tokens and requests an image model is expected to take for one video with `preset`:
/// its keyframes and the facts, then the story — in one request, or, told one image at a
/// time, a request per keyframe (the image and a question in, a note out) and one for the
/// story (the notes, the facts and the first frame in). A transcript, where one is made, is
/// counted as if someone talked throughout (the most it can be).
pub fn estimate(
    info: &crate::media::MediaInfo,
    preset: &str,
    telling: Telling,
) -> super::TokenEstimate {
    let keyframes = keyframes_of(info);
    let story = super::story_tokens(preset);
    let mut notes = Vec::new();
    let (mut input, output, requests) = if telling.one_image_at_a_time && keyframes > 1 {
        notes.push(format!(
            "this model takes one image per message: {} requests a video (each keyframe \
             described alone, then the story)",
            keyframes + 1
        ));
        (
            keyframes * (KEYFRAME_TOKENS + NOTE_QUESTION_TOKENS)
                + FACTS_TOKENS
                + keyframes * NOTE_TOKENS
                + KEYFRAME_TOKENS,
            keyframes * NOTE_TOKENS + story,
            keyframes as u32 + 1,
        )
    } else {
        (keyframes * KEYFRAME_TOKENS + FACTS_TOKENS, story, 1)
    };
    if telling.transcribed && info.audio.is_some() {
        let transcript = (info.duration_secs.max(0.0) * SPEECH_TOKENS_PER_SEC).ceil() as u64;
        input += transcript.min(super::transcript::MAX_TRANSCRIPT as u64 / 4);
        notes.push("what is said is transcribed and read too, counted as talk throughout".into());
    }
    super::TokenEstimate {
        usage: crate::job::Usage {
            input_tokens: input,
            audio_input_tokens: 0,
            output_tokens: output,
            cost_micro_usd: 0,
        },
        requests,
        note: (!notes.is_empty()).then(|| super::offline::capitalise(&notes.join("; "))),
    }
}

/// How long an image model is expected to take for one video: the analysis, the transcript
/// where one is made (a speech model on a CPU hears about ten times faster than real time),
/// the keyframes described one at a time where they are, then a model reading a few images
/// and writing (minutes on a CPU, seconds on a GPU: a middle guess).
pub fn typical_secs(info: &crate::media::MediaInfo, telling: Telling) -> f64 {
    let mut secs = 20.0 + info.duration_secs / 20.0;
    if telling.transcribed && info.audio.is_some() {
        secs += 2.0 + info.duration_secs / 10.0;
    }
    if telling.one_image_at_a_time {
        secs += keyframes_of(info) as f64 * NOTE_SECS;
    }
    secs
}

/// The video's file name, as the prompt calls it.
pub fn file_name(request: &StoryRequest) -> String {
    request
        .source
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The job's progress once `written` bytes of the story are in: writing has no known end, so
/// progress creeps towards it as the text grows.
pub fn writing_progress(written: usize) -> f64 {
    let share = 1.0 - 1.0 / (1.0 + written as f64 / 1500.0);
    ANALYSIS_END + (1.0 - ANALYSIS_END) * 0.95 * share
}

/// A streamed HTTP answer read a line at a time (NDJSON, server-sent events).
pub struct LineReader {
    provider: &'static str,
    response: reqwest::Response,
    pending: Vec<u8>,
    idle_gap: Duration,
}

impl LineReader {
    /// Reads `response`, from `provider`, failing when no byte comes for `idle_gap`.
    pub fn new(provider: &'static str, response: reqwest::Response, idle_gap: Duration) -> Self {
        Self {
            provider,
            response,
            pending: Vec::new(),
            idle_gap,
        }
    }

    /// The next line, without its line break; `None` once the answer has ended.
    pub async fn next_line(&mut self) -> Result<Option<String>, StoryError> {
        loop {
            if let Some(end) = self.pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.pending.drain(..=end).collect();
                let line = String::from_utf8_lossy(&line);
                return Ok(Some(line.trim_end_matches(['\r', '\n']).to_owned()));
            }
            if self.pending.len() > MAX_LINE {
                return Err(StoryError::transient(format!(
                    "{} sent a line too long to be its answer",
                    self.provider
                )));
            }
            let chunk = tokio::time::timeout(self.idle_gap, self.response.chunk())
                .await
                .map_err(|_| {
                    StoryError::transient(format!(
                        "{} stopped writing for {} s in the middle of the story",
                        self.provider,
                        self.idle_gap.as_secs()
                    ))
                })?
                .map_err(|e| error_for_transport(self.provider, &e))?;
            match chunk {
                Some(chunk) => self.pending.extend_from_slice(&chunk),
                // A last line without its line break is still a line.
                None if !self.pending.is_empty() => {
                    let line =
                        String::from_utf8_lossy(&std::mem::take(&mut self.pending)).into_owned();
                    return Ok(Some(line));
                }
                None => return Ok(None),
            }
        }
    }
}

/// What the model is asked to write, per preset.
pub fn instruction(teller: &str, preset: &str) -> Result<&'static str, StoryError> {
    match preset {
        "narrative" => Ok(
            "a short narrative, three to five paragraphs, telling what happens \
                           in the video from its first shot to its last",
        ),
        "summary" => Ok("a summary of the video in two or three sentences"),
        "social" => Ok(
            "a caption for sharing the video on social media: one or two lines and \
                        at most three hashtags",
        ),
        "bedtime" => Ok(
            "a gentle bedtime story for a young child, three or four short paragraphs, \
             inspired by what happens in the video, calm and warm, ending quietly",
        ),
        "documentary" => Ok(
            "a documentary narration for the video, as a narrator would speak it over the \
             pictures: measured, factual and vivid, in the present tense, following the \
             shots in order",
        ),
        other => Err(StoryError::permanent(format!(
            "the {teller} storyteller has no preset '{other}' (available: {})",
            PRESETS.join(", ")
        ))),
    }
}

/// The text sent with the keyframes: what to write, and the facts measured from the file, so
/// the model tells times and sound it cannot see in still images.
pub fn prompt(
    instruction: &str,
    style: &crate::job::Style,
    file: &str,
    analysis: &Analysis,
    heard: Option<&super::transcript::Heard>,
) -> String {
    use super::transcript::Heard;
    let info = &analysis.info;
    let (width, height) = info.video.display_size();
    let mut text = format!(
        "Write {instruction}. The images are keyframes of the video \"{file}\", in time \
         order. Say only what the images and the facts below show: do not invent names, \
         places, dialogue or sounds. Write plain prose, with no headings, lists or \
         preamble.\n\nFacts measured from the file:\n"
    );
    let _ = write!(text, "- Length: {}", clock(info.duration_secs));
    let _ = write!(text, "; picture {width}×{height}");
    if let Some(fps) = info.video.fps {
        let _ = write!(
            text,
            " at {} frames a second",
            (fps * 100.0).round() / 100.0
        );
    }
    text.push('\n');
    if analysis.scenes.len() > 1 {
        let cuts: Vec<String> = analysis.scenes[1..]
            .iter()
            .map(|scene| clock(scene.start))
            .collect();
        let _ = writeln!(
            text,
            "- {} shots; the picture cuts at {}",
            analysis.scenes.len(),
            cuts.join(", ")
        );
    } else {
        text.push_str("- One continuous shot, with no cuts\n");
    }
    for (i, keyframe) in analysis.keyframes.iter().enumerate() {
        let _ = writeln!(text, "- Image {} is at {}", i + 1, clock(keyframe.time));
    }
    match (&info.audio, &analysis.audio) {
        (None, _) => text.push_str("- Sound: none (the video has no audio track)\n"),
        (Some(_), Some(audio)) => {
            let level = audio
                .integrated_lufs
                .map(|lufs| format!("loudness {lufs:.1} LUFS"))
                .unwrap_or_else(|| "silent".to_owned());
            let _ = write!(text, "- Sound: {level}");
            if !audio.silences.is_empty() {
                let quiet: Vec<String> = audio
                    .silences
                    .iter()
                    .map(|s| format!("{}–{}", clock(s.start), clock(s.end)))
                    .collect();
                let _ = write!(text, "; silent at {}", quiet.join(", "));
            }
            match heard {
                Some(Heard::Words(words)) if words.is_empty() => {
                    text.push_str("; no speech was heard in it\n")
                }
                Some(Heard::Words(_)) => text.push_str("; the words said are below\n"),
                _ => text.push_str(" (what is heard is not known, only how loud)\n"),
            }
        }
        (Some(_), None) => text.push_str("- Sound: an audio track, not measured\n"),
    }
    if let Some(Heard::Words(words)) =
        heard.filter(|h| !matches!(h, Heard::Words(w) if w.is_empty()))
    {
        let _ = write!(
            text,
            "\nWhat is said in the video (transcribed automatically, so a word may be \
             misheard; who says it is not known):\n\"{words}\"\n"
        );
    }
    text.push_str(&wishes(style));
    text
}

/// What the person asked beyond the preset, as the last words of a prompt (nothing for a
/// plain style). Their instructions go last and are quoted as theirs, so the model follows
/// them over the preset's wording; the rule to say only what is shown still stands, since a
/// wish is no reason to invent.
pub fn wishes(style: &crate::job::Style) -> String {
    let mut text = String::new();
    if let Some(words) = style.words {
        let _ = write!(
            text,
            "\n\nLength: about {words} words. This comes before any length given above."
        );
    }
    if let Some(language) = &style.language {
        let _ = write!(
            text,
            "\n\nLanguage: write the story in {language}, whatever language these \
             instructions and the words said in the video are in."
        );
    }
    if let Some(prompt) = &style.prompt {
        let _ = write!(
            text,
            "\n\nThe person asking for the story adds these instructions of their own. Follow \
             them where they differ from the ones above, but still say only what the video \
             shows:\n\"\"\"\n{prompt}\n\"\"\""
        );
    }
    text
}

/// `text`, cut to a few hundred characters for an error message.
pub fn shorten(text: &str) -> String {
    const MAX: usize = 300;
    if text.chars().count() <= MAX {
        return text.to_owned();
    }
    let mut short: String = text.chars().take(MAX).collect();
    short.push('…');
    short
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wishes_come_last_in_the_persons_words_and_nothing_for_none() {
        use crate::job::Style;
        assert_eq!(wishes(&Style::default()), "");
        let style = Style::new(Some("Call the dog Rex."), Some(150), Some("French")).unwrap();
        let text = wishes(&style);
        let length = text.find("Length: about 150 words").unwrap();
        let language = text.find("write the story in French").unwrap();
        let own = text.find("\"\"\"\nCall the dog Rex.\n\"\"\"").unwrap();
        assert!(length < language && language < own, "{text}");
        assert!(text.contains("still say only what the video shows"));
        assert_eq!(
            wishes(&Style::new(None, Some(40), None).unwrap())
                .matches("\n\n")
                .count(),
            1
        );
    }

    #[test]
    fn every_preset_asks_for_its_own_kind_of_story() {
        let asked: Vec<&str> = PRESETS
            .iter()
            .map(|preset| instruction("gemini", preset).unwrap())
            .collect();
        for (i, words) in asked.iter().enumerate() {
            assert!(
                !asked[..i].contains(words),
                "{} repeats another",
                PRESETS[i]
            );
        }
        assert!(instruction("gemini", "bedtime")
            .unwrap()
            .contains("bedtime story"));
        let unknown = instruction("gemini", "limerick").unwrap_err().to_string();
        assert!(unknown.contains("available: narrative, summary, social, bedtime, documentary"));
    }
}
