//! The offline storyteller: no network, no model. It analyses the video with ffmpeg
//! ([`crate::media`]) and writes what the pictures and sound show — length, scenes and pacing,
//! light and colour, motion, sound, the opening and closing shots — in each of the presets every
//! storyteller shares (narrative, summary, social caption, bedtime story, documentary narration).
//!
//! The writing is deterministic: the same file always gives the same story (no randomness, no
//! clock). Variety between videos comes from the content hash, which picks among sentence
//! templates, so two videos with similar facts still read differently.
//!
//! Work is kept between attempts: the probe and then the scene and audio passes (most of the
//! decoding) are saved as checkpoints as each completes ([`OfflineCheckpoint`]), and an attempt
//! after an interruption continues from the last one instead of decoding the video again.

use super::{
    BoxFuture, Checkpointer, MediaTools, StoryError, StoryRequest, StorySink, Storyteller,
};
use crate::job::{Stage, Usage};
use crate::media::{
    self, clock, describe_format, Analysis, Keyframe, Media, MediaInfo, PassesDone,
};

/// The model name: part of the result-cache key, so bump it whenever the writing changes.
pub const OFFLINE_MODEL: &str = "offline-analyser-4";

/// The presets, the default first.
pub const PRESETS: [&str; 5] = ["narrative", "summary", "social", "bedtime", "documentary"];

/// The closing line of every long story: who wrote it and how.
pub const SIGNATURE: &str = "— Written offline by Storyteller's analyser from the video's \
pictures and sound; no AI model saw it.";

/// The short form of [`SIGNATURE`] for the social preset.
const SOCIAL_SIGNATURE: &str = "(written offline by Storyteller's analyser, no AI)";

/// Progress when probing is done and analysis starts.
const ANALYSIS_START: f64 = 0.05;
/// Progress when analysis is done and writing starts.
const ANALYSIS_END: f64 = 0.9;

/// How the story is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Preset {
    /// A few paragraphs of flowing prose.
    Narrative,
    /// A compact factual list.
    Summary,
    /// One to three punchy lines with hashtags.
    Social,
    /// A gentle story to read aloud, without clock times.
    Bedtime,
    /// A narrator's voice-over, shot by shot at the cuts' times.
    Documentary,
}

impl Preset {
    /// The preset called `name`, or a permanent error naming the ones there are.
    pub fn parse(name: &str) -> Result<Preset, StoryError> {
        match name {
            "narrative" => Ok(Preset::Narrative),
            "summary" => Ok(Preset::Summary),
            "social" => Ok(Preset::Social),
            "bedtime" => Ok(Preset::Bedtime),
            "documentary" => Ok(Preset::Documentary),
            other => Err(StoryError::permanent(format!(
                "the offline storyteller has no preset '{other}' (available: {})",
                PRESETS.join(", ")
            ))),
        }
    }
}

/// Writes stories from ffmpeg's analysis alone.
#[derive(Clone, Debug)]
pub struct OfflineStoryteller {
    tools: MediaTools,
}

impl OfflineStoryteller {
    /// A storyteller using these ffmpeg binaries and thumbnail folder.
    pub fn new(media: Media) -> Self {
        Self {
            tools: MediaTools::Fixed(media),
        }
    }

    /// A storyteller that finds ffmpeg and ffprobe when it needs them (see [`Media::locate`]),
    /// keeping thumbnails under `thumbnails_root`.
    pub fn locating(thumbnails_root: std::path::PathBuf) -> Self {
        Self {
            tools: MediaTools::Located { thumbnails_root },
        }
    }

    /// The media analyser it uses now.
    pub fn media(&self) -> Result<Media, media::MediaError> {
        self.tools.media()
    }

    /// Probes, analyses and writes, reporting into `sink`.
    async fn run(&self, request: &StoryRequest, sink: &mut StorySink) -> Result<Usage, StoryError> {
        // Checked before any work: an unknown preset will never succeed.
        let preset = Preset::parse(&request.preset)?;
        if let Some(refused) = self.refuses_style(&request.style) {
            return Err(StoryError::permanent(refused));
        }
        let source = &request.source;
        let media = self.media()?;

        sink.stage(Stage::Probing);
        // The content hash taken when the job was added names the thumbnail folder and seeds the
        // wording, so the same file always gets the same story.
        let content_hash = request.content_hash.as_str();
        let checkpointer = sink.checkpointer();
        let mut kept = OfflineCheckpoint::resumed(request.checkpoint.as_ref(), content_hash);
        let info = match kept.probe.clone() {
            Some(info) => info,
            None => {
                let info = media.probe(source).await?;
                kept.probe = Some(info.clone());
                kept.save(&checkpointer);
                info
            }
        };
        match serde_json::to_value(&info) {
            Ok(facts) => sink.media(facts),
            Err(e) => tracing::warn!(error = %e, "media facts could not be recorded"),
        }
        sink.progress(ANALYSIS_START);

        sink.stage(Stage::Analysing);
        let analysis = {
            let mut on_progress =
                |f: f64| sink.progress(ANALYSIS_START + (ANALYSIS_END - ANALYSIS_START) * f);
            let resumed = kept.passes.clone();
            let mut on_passes_done = |passes: &PassesDone| {
                kept.passes = Some(passes.clone());
                kept.save(&checkpointer);
            };
            media
                .analyse_resuming(
                    source,
                    &info,
                    content_hash,
                    resumed,
                    &mut on_progress,
                    &mut on_passes_done,
                )
                .await?
        };

        sink.stage(Stage::Writing);
        let pieces = compose(&analysis, preset, content_hash);
        let total = pieces.len().max(1);
        for (i, piece) in pieces.iter().enumerate() {
            sink.write(piece);
            sink.progress(ANALYSIS_END + (1.0 - ANALYSIS_END) * (i + 1) as f64 / total as f64);
            // Let subscribers see the story arrive piece by piece.
            tokio::task::yield_now().await;
        }
        sink.progress(1.0);
        Ok(Usage::default())
    }
}

/// What the offline storyteller keeps between attempts at a job.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OfflineCheckpoint {
    /// The analyser that saved it: another version's work is not reused.
    pub analyser: String,
    /// The content it was saved for: a file changed since is analysed afresh.
    pub content_hash: String,
    /// The probe, once done.
    pub probe: Option<MediaInfo>,
    /// The scene and audio passes, once done.
    pub passes: Option<PassesDone>,
}

impl OfflineCheckpoint {
    /// The work `saved` holds, when it was saved by this analyser for this content; else none.
    fn resumed(saved: Option<&serde_json::Value>, content_hash: &str) -> Self {
        saved
            .and_then(|saved| serde_json::from_value::<OfflineCheckpoint>(saved.clone()).ok())
            .filter(|saved| saved.analyser == OFFLINE_MODEL && saved.content_hash == content_hash)
            .unwrap_or_else(|| OfflineCheckpoint {
                analyser: OFFLINE_MODEL.into(),
                content_hash: content_hash.into(),
                ..OfflineCheckpoint::default()
            })
    }

    fn save(&self, checkpointer: &Checkpointer) {
        match serde_json::to_value(self) {
            Ok(value) => checkpointer.save(value),
            Err(e) => tracing::warn!(error = %e, "the work done so far could not be saved"),
        }
    }
}

impl Storyteller for OfflineStoryteller {
    fn name(&self) -> &str {
        "offline"
    }

    fn default_model(&self) -> &str {
        OFFLINE_MODEL
    }

    fn presets(&self) -> &[&'static str] {
        &PRESETS
    }

    fn check_ready(&self) -> Result<(), StoryError> {
        self.tools.check()
    }

    fn refuses_style(&self, style: &crate::job::Style) -> Option<String> {
        const AI: &str = "choose an AI storyteller (gemini, openai or ollama) for that";
        if let Some(language) = &style.language {
            return Some(format!(
                "the offline storyteller writes in English only, not in {language}: {AI}"
            ));
        }
        if style.prompt.is_some() {
            return Some(format!(
                "the offline storyteller cannot follow instructions of your own: {AI}"
            ));
        }
        if style.words.is_some() {
            return Some(format!(
                "the offline storyteller writes each preset at its own length (a narrative of a \
                 few paragraphs, a summary, a caption): {AI}"
            ));
        }
        None
    }

    fn tell<'a>(
        &'a self,
        request: &'a StoryRequest,
        sink: &'a mut StorySink,
    ) -> BoxFuture<'a, Result<Usage, StoryError>> {
        Box::pin(self.run(request, sink))
    }
}

/// Writes the story of `analysis` for the file called `file_name`, as the pieces to stream
/// (each carries its own leading space or paragraph break, so they concatenate to the story).
/// `seed` (the content hash) picks among sentence templates.
pub fn compose(analysis: &Analysis, preset: Preset, seed: &str) -> Vec<String> {
    let facts = Facts::new(analysis);
    let mut voice = Voice::new(seed);
    let paragraphs = match preset {
        Preset::Narrative => narrative(&facts, &mut voice),
        Preset::Summary => summary(&facts),
        Preset::Social => social(&facts, &mut voice),
        Preset::Bedtime => bedtime(&facts, &mut voice),
        Preset::Documentary => documentary(&facts, &mut voice),
    };
    let line_break = if matches!(
        preset,
        Preset::Narrative | Preset::Bedtime | Preset::Documentary
    ) {
        "\n\n"
    } else {
        "\n"
    };
    let mut pieces = Vec::new();
    for (p, paragraph) in paragraphs.iter().enumerate() {
        for (s, sentence) in paragraph.iter().enumerate() {
            let lead = match (p, s) {
                (0, 0) => "",
                (_, 0) => line_break,
                _ => " ",
            };
            pieces.push(format!("{lead}{sentence}"));
        }
    }
    pieces.push("\n".into());
    pieces
}

/// Picks sentence templates deterministically from the seed, avoiding its latest picks so
/// neighbouring sentences do not repeat a phrase.
struct Voice {
    seed: u64,
    turn: u64,
    recent: std::collections::VecDeque<&'static str>,
    /// The motion category last written, so a shot's motion is only told when it changes.
    last_motion: Option<&'static str>,
}

impl Voice {
    /// How many recent picks are avoided.
    const MEMORY: usize = 6;

    fn new(seed: &str) -> Self {
        let digest = blake3::hash(seed.as_bytes());
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest.as_bytes()[..8]);
        Self {
            seed: u64::from_le_bytes(first),
            turn: 0,
            recent: std::collections::VecDeque::with_capacity(Self::MEMORY),
            last_motion: None,
        }
    }

    /// One of `options`, a different draw each call, not one of the last few used if avoidable.
    fn pick(&mut self, options: &[&'static str]) -> &'static str {
        self.turn += 1;
        let mut x = self.seed ^ self.turn.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        // splitmix64's finaliser: neighbouring turns land far apart.
        x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        x ^= x >> 31;
        let len = options.len().max(1);
        let start = (x % len as u64) as usize;
        let choice = (0..len)
            .map(|k| options.get((start + k) % len).copied().unwrap_or_default())
            .find(|option| !self.recent.contains(option))
            .unwrap_or_else(|| options.get(start).copied().unwrap_or_default());
        if self.recent.len() == Self::MEMORY {
            self.recent.pop_front();
        }
        self.recent.push_back(choice);
        choice
    }

    /// The motion clause for a shot, or nothing when it is as the last shot told.
    fn motion_clause(&mut self, motion: Option<f64>) -> &'static str {
        let clause = motion_clause(motion);
        if clause.is_empty() || self.last_motion == Some(clause) {
            return "";
        }
        let first = self.last_motion.is_none();
        self.last_motion = Some(clause);
        if first {
            clause
        } else {
            // A change of pace, told as such.
            match clause {
                ", perfectly still" => ", now perfectly still",
                ", with a little movement" => ", now moving a little",
                ", full of movement" => ", now full of movement",
                other => other,
            }
        }
    }
}

/// How much longer than every other scene the longest must be to be told as the longest.
const LONGEST_STANDS_OUT: f64 = 1.2;

/// The facts the writers draw on, already in words where that is shared.
struct Facts<'a> {
    analysis: &'a Analysis,
    /// The title in quotes, or "This video". Never the file name: a story is cached by
    /// content, and a copy of the video under another name gets the same story.
    name: String,
    /// [`Facts::name`] inside a sentence.
    name_inline: String,
    duration: String,
    resolution: String,
    orientation: &'static str,
    fps: Option<String>,
    format: String,
    recorded: Option<String>,
    scenes: usize,
    pace: &'static str,
    mean_scene: String,
    opening: Option<&'a Keyframe>,
    closing: Option<&'a Keyframe>,
    middles: Vec<&'a Keyframe>,
    motion: Option<&'static str>,
    palette: Vec<String>,
}

impl<'a> Facts<'a> {
    fn new(analysis: &'a Analysis) -> Self {
        let info = &analysis.info;
        let (width, height) = info.video.display_size();
        let (name, name_inline) = match &info.title {
            Some(title) => (format!("“{title}”"), format!("“{title}”")),
            None => ("This video".to_owned(), "this video".to_owned()),
        };
        let keyframes = &analysis.keyframes;
        let opening = keyframes.first();
        let closing = keyframes.last().filter(|_| keyframes.len() > 1);
        let middles = if keyframes.len() > 2 {
            keyframes[1..keyframes.len() - 1].iter().collect()
        } else {
            Vec::new()
        };
        Facts {
            analysis,
            name,
            name_inline,
            duration: duration_words(info.duration_secs),
            resolution: resolution_words(width, height),
            orientation: orientation(width, height),
            fps: info.video.fps.map(number_words),
            format: describe_format(info),
            recorded: info.creation_time.as_deref().and_then(date_words),
            scenes: analysis.scenes.len(),
            pace: pace_words(analysis.scenes.len(), analysis.mean_scene_secs()),
            mean_scene: duration_words(analysis.mean_scene_secs()),
            opening,
            closing,
            middles,
            motion: analysis.motion.map(|mean| {
                // Still on average, but a shot that moves is not nothing moving.
                let some_shot_moves = keyframes
                    .iter()
                    .any(|k| k.motion.is_some_and(|m| Movement::of(m) != Movement::Still));
                if Movement::of(mean) == Movement::Still && some_shot_moves {
                    "mostly still"
                } else {
                    motion_words(mean)
                }
            }),
            palette: palette(keyframes),
        }
    }

    /// The longest scene, when there is more than one and it stands out: at least a fifth
    /// longer than any other (of three 6-second scenes none is "the longest").
    fn longest(&self) -> Option<&media::Scene> {
        let scenes = &self.analysis.scenes;
        let longest =
            first_longest(scenes.iter(), media::Scene::length).filter(|_| self.scenes > 1)?;
        let runner_up = scenes
            .iter()
            .filter(|s| !std::ptr::eq(*s, longest))
            .map(media::Scene::length)
            .fold(0.0, f64::max);
        (longest.length() >= LONGEST_STANDS_OUT * runner_up).then_some(longest)
    }

    /// The sound in a few words, for summaries: "loud (−15.7 LUFS)", "none".
    fn sound_short(&self) -> String {
        match &self.analysis.audio {
            None if self.analysis.info.audio.is_none() => "none".into(),
            None => "present but unreadable".into(),
            Some(audio) => match audio.integrated_lufs {
                Some(lufs) => format!("{} ({lufs:.1} LUFS)", loudness_words(lufs)),
                None => "present, level unmeasured".into(),
            },
        }
    }
}

/// The narrative preset: overview, a walk through the keyframes, the sound, the signature.
fn narrative(facts: &Facts, voice: &mut Voice) -> Vec<Vec<String>> {
    let info = &facts.analysis.info;
    let mut overview = Vec::new();
    let fps = facts
        .fps
        .as_ref()
        .map(|f| format!(" at {f} frames a second"))
        .unwrap_or_default();
    let with_sound = info.audio.is_some();
    let template = voice.pick(&[
        "{name} runs for {duration}: a {orientation} {resolution} video{fps}, {sound}.",
        "{name} lasts {duration}, shot {orientation} in {resolution}{fps} and {sound2}.",
        "Over {duration}, {name_inline} unfolds in {resolution}, {orientation}{fps}, {sound}.",
    ]);
    overview.push(
        template
            .replace("{name}", &facts.name)
            .replace("{name_inline}", &facts.name_inline)
            .replace("{duration}", &facts.duration)
            .replace("{orientation}", facts.orientation)
            .replace("{resolution}", &facts.resolution)
            .replace("{fps}", &fps)
            .replace(
                "{sound}",
                if with_sound {
                    "with a soundtrack"
                } else {
                    "with no soundtrack at all"
                },
            )
            .replace(
                "{sound2}",
                if with_sound {
                    "carrying sound"
                } else {
                    "carrying no sound"
                },
            ),
    );
    if let Some(date) = &facts.recorded {
        overview.push(format!("It was recorded on {date}."));
    }
    if facts.scenes <= 1 {
        overview.push(
            voice
                .pick(&[
                    "It is a single unbroken shot that never cuts away.",
                    "There are no cuts: the camera stays with one continuous shot.",
                    "It never cuts; everything happens in one take.",
                ])
                .to_owned(),
        );
    } else {
        let template = voice.pick(&[
            "It moves through {n} scenes with {pace}, each lasting about {avg}.",
            "{N} scenes pass by: {pace}, around {avg} apiece.",
            "The edit cuts between {n} scenes, with {pace} averaging {avg} a scene.",
        ]);
        overview.push(capitalise(
            &template
                .replace("{n}", &count_words(facts.scenes))
                .replace("{N}", &capitalise(&count_words(facts.scenes)))
                .replace("{pace}", facts.pace)
                .replace("{avg}", &facts.mean_scene),
        ));
        if let (Some(longest), true) = (facts.longest(), facts.scenes >= 3) {
            let template = voice.pick(&[
                "The longest holds for {len}, from {from} to {to}.",
                "The longest stretch, from {from} to {to}, lasts {len}.",
            ]);
            overview.push(
                template
                    .replace("{len}", &duration_words(longest.length()))
                    .replace("{from}", &clock(longest.start))
                    .replace("{to}", &clock(longest.end)),
            );
        }
    }

    let mut journey = Vec::new();
    if let Some(opening) = facts.opening {
        let template = voice.pick(&[
            "It opens on {a_light} frame {colour}{motion}.",
            "The first shot is {light} and {colour}{motion}.",
            "We begin with {a_light} picture {colour}{motion}.",
        ]);
        journey.push(shot_sentence(template, opening, voice));
    }
    let scenes = &facts.analysis.scenes;
    let cut_time = |keyframe: &Keyframe| {
        scenes
            .get(keyframe.scene)
            .map_or(keyframe.time, |s| s.start)
    };
    let mut previous = facts.opening;
    // The clock time of the last moment told: no two sentences tell one second as two events.
    let mut last_told: Option<String> = None;
    let closing_clock = facts.closing.map(|closing| clock(closing.time));
    for keyframe in &facts.middles {
        // A keyframe that looks like the last one told adds nothing but a repeated sentence.
        if previous.is_some_and(|told| looks_the_same(told, keyframe)) {
            continue;
        }
        // A new scene is told at its cut, not at the moment looked at inside it.
        let new_scene = previous.is_none_or(|told| told.scene != keyframe.scene);
        let at = if new_scene {
            cut_time(keyframe)
        } else {
            keyframe.time
        };
        let at_clock = clock(at);
        let closing_in_scene = facts.closing.is_some_and(|c| c.scene == keyframe.scene);
        if last_told.as_ref() == Some(&at_clock)
            || (!new_scene && closing_in_scene && closing_clock.as_ref() == Some(&at_clock))
        {
            continue;
        }
        journey.push(middle_sentence(keyframe, previous, at, new_scene, voice));
        previous = Some(keyframe);
        last_told = Some(at_clock);
    }
    if let Some(closing) = facts.closing {
        let new_scene = previous.is_none_or(|told| told.scene != closing.scene);
        let sentence = if new_scene && facts.scenes > 1 {
            // The last scene was not told yet: its cut is.
            let template = voice.pick(&[
                "At {cut}, the film cuts to its final shot: {a_light} frame {colour}{motion}.",
                "The final shot comes at {cut}: {a_light} picture {colour}{motion}.",
            ]);
            shot_sentence(
                &template.replace("{cut}", &clock(cut_time(closing))),
                closing,
                voice,
            )
        } else if last_told.as_ref() == closing_clock.as_ref() {
            // That second is told already: the end, without its time.
            shot_sentence(
                voice.pick(&[
                    "It closes on {a_light} frame {colour}{motion}.",
                    "By the end the picture is {light} and {colour}{motion}.",
                ]),
                closing,
                voice,
            )
        } else {
            let closes = "It closes at {time} on {a_light} frame {colour}{motion}.";
            let by_the_end = "By the end, at {time}, the picture is {light} and {colour}{motion}.";
            let final_shot = "The final shot, at {time}, is {light} and {colour}{motion}.";
            let template = if facts.scenes > 1 {
                voice.pick(&[closes, final_shot, by_the_end])
            } else {
                // One shot: its end is not another shot.
                voice.pick(&[closes, by_the_end])
            };
            shot_sentence(template, closing, voice)
        };
        journey.push(sentence);
    }
    if let Some(motion) = facts.motion {
        let busiest = facts
            .analysis
            .keyframes
            .iter()
            .filter(|k| k.motion.is_some_and(|m| m >= MOTION_GENTLE))
            .max_by(|a, b| a.motion.unwrap_or(0.0).total_cmp(&b.motion.unwrap_or(0.0)));
        let mut sentence = voice
            .pick(&[
                "Overall the picture is {motion}",
                "Taken as a whole, the footage is {motion}",
                "On balance the video is {motion}",
            ])
            .replace("{motion}", motion);
        if let Some(busiest) = busiest.filter(|_| facts.analysis.keyframes.len() > 2) {
            sentence.push_str(&format!(", busiest around {}", clock(busiest.time)));
        }
        sentence.push('.');
        journey.push(sentence);
    }

    let sound = sound_sentences(facts, voice);
    let mut paragraphs = vec![overview];
    if !journey.is_empty() {
        paragraphs.push(journey);
    }
    paragraphs.push(sound);
    paragraphs.push(vec![SIGNATURE.to_owned()]);
    paragraphs
}

/// Fills a shot template with one keyframe's light, colour and motion.
fn shot_sentence(template: &str, keyframe: &Keyframe, voice: &mut Voice) -> String {
    let light = shot_light(keyframe);
    let sentence = fill_light(template, light.as_deref())
        .replace(
            "{colour}",
            &colour_phrase(&keyframe.colour.colour_name, voice),
        )
        .replace("{time}", &clock(keyframe.time));
    let sentence = sentence.replace("{motion}", voice.motion_clause(keyframe.motion));
    capitalise(&sentence)
}

/// Whether `keyframe` is the same shot as `told`, with the same colour, light and motion.
fn looks_the_same(told: &Keyframe, keyframe: &Keyframe) -> bool {
    let moving = |k: &Keyframe| k.motion.map(|m| m >= MOTION_GENTLE);
    told.scene == keyframe.scene
        && told.colour.colour_name == keyframe.colour.colour_name
        && (keyframe.colour.brightness - told.colour.brightness).abs() <= 0.12
        && moving(told) == moving(keyframe)
}

/// One sentence for a keyframe from the body of the video, aware of the one before it: at
/// `at`, its scene's cut when `new_scene`, else the moment looked at.
fn middle_sentence(
    keyframe: &Keyframe,
    previous: Option<&Keyframe>,
    at: f64,
    new_scene: bool,
    voice: &mut Voice,
) -> String {
    let time = clock(at);
    let lead = if new_scene {
        voice.pick(&["At {t}", "Then, at {t}", "Later, at {t}"])
    } else {
        voice.pick(&["At {t}", "By {t}", "Around {t}", "Later, at {t}"])
    }
    .replace("{t}", &time);
    let colour = &keyframe.colour.colour_name;
    let same_colour = previous.is_some_and(|p| &p.colour.colour_name == colour);
    let light = shot_light(keyframe);
    let change = previous.map(|p| keyframe.colour.brightness - p.colour.brightness);
    let body = if new_scene && same_colour {
        // A cut between two shots of one colour is still a cut.
        voice
            .pick(&[
                "the film cuts to another {c} shot",
                "a new scene brings more {c}",
            ])
            .replace("{c}", colour)
    } else if new_scene {
        let template = voice.pick(&[
            "a new scene brings {a_light} frame {colour}",
            "the film cuts to {a_light} picture {colour}",
            "the scene changes to something {light}, {colour}",
        ]);
        fill_light(template, light.as_deref()).replace("{colour}", &colour_phrase(colour, voice))
    } else if same_colour {
        let shift = match change {
            Some(d) if d > 0.12 => ", now brighter",
            Some(d) if d < -0.12 => ", now darker",
            _ => "",
        };
        if colour == "multicoloured" {
            // "multicoloured still dominates" is not how anyone says it.
            voice
                .pick(&[
                    "the picture stays full of colour{shift}",
                    "the colours keep on mixing{shift}",
                ])
                .replace("{shift}", shift)
        } else {
            voice
                .pick(&[
                    "the same {c} palette holds{shift}",
                    "the picture stays {c}{shift}",
                    "{c} still dominates{shift}",
                ])
                .replace("{c}", colour)
                .replace("{shift}", shift)
        }
    } else {
        let template = voice.pick(&[
            "still in the same shot, the picture is now {light} and {colour}",
            "the shot drifts to {a_light} frame {colour}",
        ]);
        fill_light(template, light.as_deref()).replace("{colour}", &colour_phrase(colour, voice))
    };
    let motion = voice.motion_clause(keyframe.motion);
    // "now darker, now still" reads as a stutter: "now darker and still".
    match motion.strip_prefix(", now ") {
        Some(rest) if body.ends_with("brighter") || body.ends_with("darker") => {
            format!("{lead}, {body} and {rest}.")
        }
        _ => format!("{lead}, {body}{motion}."),
    }
}

/// The shortest sound whose loudness range is told (see [`sound_sentences`]).
const MIN_SECS_FOR_RANGE: f64 = 10.0;

/// The sound paragraph.
fn sound_sentences(facts: &Facts, voice: &mut Voice) -> Vec<String> {
    let info = &facts.analysis.info;
    let Some(audio) = &facts.analysis.audio else {
        return vec![if info.audio.is_some() {
            "There is a soundtrack, but it could not be read, so the pictures have to speak for \
             themselves."
                .to_owned()
        } else {
            voice
                .pick(&[
                    "There is no soundtrack; the pictures carry it alone.",
                    "It has no sound at all: a silent film.",
                    "Not a sound: the video has no audio track.",
                ])
                .to_owned()
        }];
    };
    let mut sentences = Vec::new();
    // Several streams: how many, and which one is told (the first that is not silent).
    let streams = info.audio_streams.len();
    if streams > 1 {
        let count = count_words(streams);
        sentences.push(if audio.is_silent() {
            format!("It carries {count} audio streams, and all of them are silent.")
        } else if audio.stream == 0 {
            format!("It carries {count} audio streams; what follows is the first.")
        } else if audio.stream == 1 {
            format!(
                "It carries {count} audio streams; the first is silent, and the second carries \
                 the sound."
            )
        } else {
            format!(
                "It carries {count} audio streams; the first {} are silent, and the {} carries \
                 the sound.",
                count_words(audio.stream),
                ordinal_words(audio.stream + 1)
            )
        });
        if audio.is_silent() {
            return sentences;
        }
    }
    match audio.integrated_lufs {
        Some(lufs) if lufs <= media::SILENT_LUFS => {
            sentences.push("The soundtrack is there but silent throughout.".to_owned());
            return sentences;
        }
        Some(lufs) => {
            // The loudness range is measured over 3-second windows: a clip of a few seconds
            // has too few for it to mean anything, and a window half in a silence reads as a
            // quieter passage. Said only where it tells of real changes of level.
            let range_means_something =
                info.duration_secs >= MIN_SECS_FOR_RANGE && audio.silences.is_empty();
            let range = audio
                .loudness_range_lu
                .filter(|_| range_means_something)
                .map(|lra| {
                    if lra < 3.0 {
                        ", holding a steady level"
                    } else if lra < 10.0 {
                        ", rising and falling a little"
                    } else {
                        ", swinging between quiet and loud"
                    }
                })
                .unwrap_or("");
            let template = voice.pick(&[
                "The sound is {loud} ({lufs} LUFS){range}.",
                "Its soundtrack plays {loud} ({lufs} LUFS){range}.",
                "On the audio side it is {loud}, at {lufs} LUFS{range}.",
            ]);
            sentences.push(
                template
                    .replace("{loud}", loudness_words(lufs))
                    .replace("{lufs}", &format!("{lufs:.1}"))
                    .replace("{range}", range),
            );
        }
        None => sentences.push("It has sound, though its loudness could not be measured.".into()),
    }
    let silences = &audio.silences;
    match silences.len() {
        0 => sentences.push(
            voice
                .pick(&[
                    "It never falls silent.",
                    "There is no silent stretch anywhere.",
                    "The sound never drops away.",
                ])
                .to_owned(),
        ),
        1 => sentences.push(format!(
            "It falls silent once, for {}, from {} to {}.",
            duration_words(silences[0].length()),
            clock(silences[0].start),
            clock(silences[0].end)
        )),
        n => {
            let longest = first_longest(silences.iter(), media::Silence::length);
            let mut sentence = format!(
                "It falls silent {} times, {} in all",
                count_words(n),
                duration_words(audio.silent_secs())
            );
            if let Some(longest) = longest {
                sentence.push_str(&format!(
                    "; the longest hush runs from {} to {}",
                    clock(longest.start),
                    clock(longest.end)
                ));
            }
            sentence.push('.');
            sentences.push(sentence);
        }
    }
    sentences
}

/// The summary preset: a header line and a few bullets.
fn summary(facts: &Facts) -> Vec<Vec<String>> {
    let fps = facts
        .fps
        .as_ref()
        .map(|f| format!(" at {f} fps"))
        .unwrap_or_default();
    let mut lines = vec![format!(
        "{}: {}, {} {}{}, {}.",
        facts.name, facts.duration, facts.resolution, facts.orientation, fps, facts.format
    )];
    if let Some(date) = &facts.recorded {
        lines.push(format!("- Recorded: {date}."));
    }
    let mut scenes = if facts.scenes <= 1 {
        "- Scenes: one continuous shot".to_owned()
    } else {
        format!(
            "- Scenes: {} ({}; about {} each",
            facts.scenes, facts.pace, facts.mean_scene
        )
    };
    if facts.scenes > 1 {
        if let Some(longest) = facts.longest() {
            scenes.push_str(&format!(
                ", longest {} from {}",
                duration_words(longest.length()),
                clock(longest.start)
            ));
        }
        scenes.push(')');
    }
    scenes.push('.');
    lines.push(scenes);
    if !facts.palette.is_empty() {
        let brightness = mean(facts.analysis.keyframes.iter().map(|k| k.colour.brightness));
        lines.push(format!(
            "- Look: mostly {}{}.",
            join_words(&facts.palette),
            light_words(brightness, 0.15)
                .map(|light| format!("; {light} overall"))
                .unwrap_or_default()
        ));
    }
    if let Some(opening) = facts.opening {
        let mut line = format!(
            "- Opening ({}): {}",
            clock(opening.time),
            look_line(opening)
        );
        if let Some(closing) = facts.closing {
            line.push_str(&format!(
                "; closing ({}): {}",
                clock(closing.time),
                look_line(closing)
            ));
        }
        line.push('.');
        lines.push(line);
    }
    if let Some(motion) = facts.motion {
        lines.push(format!("- Motion: {motion}."));
    }
    let mut sound = format!("- Sound: {}", facts.sound_short());
    if let Some(audio) = &facts.analysis.audio {
        match audio.silences.len() {
            0 => sound.push_str(", no silences"),
            n => sound.push_str(&format!(
                ", {} silence{} ({} in all)",
                n,
                if n == 1 { "" } else { "s" },
                duration_words(audio.silent_secs())
            )),
        }
    }
    sound.push('.');
    lines.push(sound);
    lines.push(SIGNATURE.to_owned());
    lines.into_iter().map(|l| vec![l]).collect()
}

/// The social preset: up to three short lines, hashtags, and the short signature.
fn social(facts: &Facts, voice: &mut Voice) -> Vec<Vec<String>> {
    let scenes = if facts.scenes <= 1 {
        "one take".to_owned()
    } else {
        format!("{} scenes", facts.scenes)
    };
    let journey = match (facts.opening, facts.closing) {
        (Some(a), Some(b)) if a.colour.colour_name != b.colour.colour_name => {
            format!("from {} to {}", a.colour.colour_name, b.colour.colour_name)
        }
        (Some(a), _) => format!("all {}", a.colour.colour_name),
        _ => "pure picture".to_owned(),
    };
    let first = voice
        .pick(&[
            "{duration} · {scenes} · {journey}.",
            "{duration}, {scenes}, {journey}.",
            "{scenes} in {duration}: {journey}.",
        ])
        .replace("{duration}", &facts.duration)
        .replace("{scenes}", &scenes)
        .replace("{journey}", &journey);
    let sound = match &facts.analysis.audio {
        Some(audio) => match audio.integrated_lufs {
            Some(lufs) if lufs <= media::SILENT_LUFS => "silent soundtrack",
            Some(lufs) if lufs < -40.0 => "near-silent sound",
            Some(lufs) if lufs < -28.0 => "quiet sound",
            Some(lufs) if lufs < -20.0 => "easy sound",
            Some(_) => "loud sound",
            None => "sound on",
        },
        None => "no sound",
    };
    let (pace, pace_tag) = match facts.pace {
        "rapid-fire cuts" => ("rapid-fire cuts", "#rapidcuts"),
        "quick cuts" => ("quick cuts", "#quickcuts"),
        "a brisk rhythm" => ("a brisk edit", "#brisk"),
        "an unhurried pace" => ("an unhurried edit", "#slowburn"),
        "long, patient takes" => ("long takes", "#longtakes"),
        _ => ("one take", "#onetake"),
    };
    let mut vibe = vec![capitalise(pace)];
    if let Some(motion) = facts.analysis.motion {
        vibe.push(
            match Movement::of(motion) {
                Movement::Still => "stillness",
                Movement::Gentle => "gentle motion",
                Movement::Lively => "lively motion",
                Movement::Restless => "restless motion",
            }
            .to_owned(),
        );
    }
    vibe.push(sound.to_owned());
    let second = format!("{}.", vibe.join(", "));
    let mut tags: Vec<String> = Vec::new();
    for colour in facts.palette.iter().take(2) {
        tags.push(hashtag(colour));
    }
    tags.push(pace_tag.to_owned());
    tags.push("#video".into());
    let third = format!("{} {SOCIAL_SIGNATURE}", tags.join(" "));
    vec![vec![capitalise(&first)], vec![second], vec![third]]
}

/// The bedtime preset: a gentle story to read aloud — how it began, how it changed, how it
/// moved and sounded, how it ended — with no clock times, every fact still the video's.
fn bedtime(facts: &Facts, voice: &mut Voice) -> Vec<Vec<String>> {
    let analysis = facts.analysis;
    let film = match (&analysis.info.title, analysis.info.duration_secs < 300.0) {
        (Some(title), _) => format!("a film called “{title}”"),
        (None, true) => "a little film".to_owned(),
        (None, false) => "a film".to_owned(),
    };
    let mut beginning = vec![voice
        .pick(&[
            "Once upon a time, there was {film}, {duration} long.",
            "Once upon a time there was {film} that lasted {duration}.",
        ])
        .replace("{film}", &film)
        .replace("{duration}", &facts.duration)];
    if let Some(opening) = facts.opening {
        beginning.push(format!(
            "It began somewhere {}{}.",
            gentle_light(opening)
                .map(|light| format!("{light}, "))
                .unwrap_or_default(),
            colour_phrase(&opening.colour.colour_name, voice)
        ));
    }

    let mut middle = Vec::new();
    match facts.scenes.saturating_sub(1) {
        0 => middle.push(
            voice
                .pick(&[
                    "It never looked away, not even once: it was all one long look.",
                    "It stayed with one picture the whole time and never once cut away.",
                ])
                .to_owned(),
        ),
        cuts => middle.push(format!(
            "Then, one picture after another, it changed {}.",
            times_words(cuts)
        )),
    }
    let ends: Vec<&str> = [facts.opening, facts.closing]
        .iter()
        .flatten()
        .map(|k| k.colour.colour_name.as_str())
        .collect();
    let along: Vec<String> = facts
        .palette
        .iter()
        .filter(|colour| !ends.contains(&colour.as_str()))
        .map(|colour| match colour.as_str() {
            "multicoloured" => "many colours at once".to_owned(),
            other => other.to_owned(),
        })
        .collect();
    if !along.is_empty() {
        middle.push(format!("Along the way came {}.", join_words(&along)));
    }
    if let Some(motion) = analysis.motion {
        middle.push(
            match Movement::of(motion) {
                Movement::Still => "Everything stayed very still, as if holding its breath.",
                Movement::Gentle => "Things moved slowly and gently.",
                Movement::Lively => "Things bustled and moved about.",
                Movement::Restless => {
                    "Everything was busy, full of movement, and never still for long."
                }
            }
            .to_owned(),
        );
    }
    match &analysis.audio {
        None if analysis.info.audio.is_none() => {
            middle.push("There was no sound at all, only pictures.".into())
        }
        None => middle.push("It had a soundtrack, though nobody could tell how it sounded.".into()),
        Some(audio) => {
            let silent = match audio.integrated_lufs {
                Some(lufs) if lufs <= media::SILENT_LUFS => {
                    middle.push("It had a soundtrack, but it made no sound at all.".into());
                    true
                }
                Some(lufs) if lufs < -28.0 => {
                    middle.push("A soft, quiet sound kept it company.".into());
                    false
                }
                Some(lufs) if lufs < -20.0 => {
                    middle.push("Sound kept it company, not too loud and not too soft.".into());
                    false
                }
                Some(_) => {
                    middle.push("It was full of loud sound.".into());
                    false
                }
                None => {
                    middle.push("It had sound all of its own.".into());
                    false
                }
            };
            match audio.silences.len() {
                _ if silent => {}
                0 => {}
                1 => middle.push(format!(
                    "Once, it went quiet for {}.",
                    duration_words(audio.silences[0].length())
                )),
                n => middle.push(format!(
                    "{} it went quiet for a while.",
                    capitalise(&times_words(n))
                )),
            }
        }
    }

    let mut ending = Vec::new();
    match facts.closing {
        Some(closing) => ending.push(format!(
            "And at the very end, the picture was {}{}.",
            gentle_light(closing)
                .map(|light| format!("{light}, "))
                .unwrap_or_default(),
            colour_phrase(&closing.colour.colour_name, voice)
        )),
        None => ending.push("And then it was over.".into()),
    }
    ending.push(
        voice
            .pick(&[
                "The end. Sleep tight.",
                "The end. Goodnight.",
                "The end. Sleep well.",
            ])
            .to_owned(),
    );
    vec![beginning, middle, ending, vec![SIGNATURE.to_owned()]]
}

/// Light in the plain words of a story read aloud.
fn gentle_light(keyframe: &Keyframe) -> Option<&'static str> {
    brightness_words(keyframe.colour.brightness, "very bright")
        .filter(|light| !already_says(&keyframe.colour.colour_name, light))
}

/// "once", "twice", "three times", "13 times".
fn times_words(n: usize) -> String {
    match n {
        1 => "once".to_owned(),
        2 => "twice".to_owned(),
        n => format!("{} times", count_words(n)),
    }
}

/// How many shots the documentary tells one by one; a longer film is told by its opening, its
/// longest and its closing shots.
const DOCUMENTARY_SHOTS: usize = 6;

/// The documentary preset: a narrator's voice-over in the present tense — the footage, where
/// the cuts fall, the shots at their own start and end times, the sound.
fn documentary(facts: &Facts, voice: &mut Voice) -> Vec<Vec<String>> {
    let analysis = facts.analysis;
    let scenes = &analysis.scenes;
    let recorded = facts
        .recorded
        .as_ref()
        .map(|date| format!(", recorded on {date}"))
        .unwrap_or_default();
    let mut setting = vec![voice
        .pick(&[
            "{name} is {duration} of {orientation} {resolution} footage{recorded}.",
            "{name} gives us {duration} of {orientation} {resolution} footage{recorded}.",
        ])
        .replace("{name}", &facts.name)
        .replace("{duration}", &facts.duration)
        .replace("{orientation}", facts.orientation)
        .replace("{resolution}", &facts.resolution)
        .replace("{recorded}", &recorded)];
    let cuts: Vec<String> = scenes.iter().skip(1).map(|s| clock(s.start)).collect();
    match cuts.len() {
        0 => setting.push(
            voice
                .pick(&[
                    "The camera never cuts away: it is one take from start to finish.",
                    "It is filmed in a single, uninterrupted take.",
                ])
                .to_owned(),
        ),
        1 => setting.push(format!("The film cuts once, at {}.", cuts[0])),
        n if n < DOCUMENTARY_SHOTS + 3 => setting.push(format!(
            "The film cuts {}, at {}; its shots last {} on average.",
            times_words(n),
            join_words(&cuts),
            facts.mean_scene
        )),
        n => setting.push(format!(
            "The film cuts {}, the first at {} and the last at {}; its shots last {} on \
             average.",
            times_words(n),
            cuts[0],
            cuts[n - 1],
            facts.mean_scene
        )),
    }

    let mut shots = Vec::new();
    let keyframe_of = |scene: usize| analysis.keyframes.iter().find(|k| k.scene == scene);
    if scenes.len() <= 1 {
        if let Some(opening) = facts.opening {
            shots.push(shot_sentence(
                "We open on {a_light} frame {colour}{motion}.",
                opening,
                voice,
            ));
        }
        if let Some(closing) = facts
            .closing
            .filter(|closing| facts.opening.is_some_and(|o| !looks_the_same(o, closing)))
        {
            let sentence = shot_sentence(
                "By {time}, the picture is {light} and {colour}{motion}.",
                closing,
                voice,
            );
            shots.push(sentence);
        }
    } else {
        let longest = facts.longest().map(|l| l.start);
        let mut told: Vec<usize> = if scenes.len() <= DOCUMENTARY_SHOTS {
            (0..scenes.len()).collect()
        } else {
            let longest = scenes.iter().position(|s| Some(s.start) == longest);
            [Some(0), longest, Some(scenes.len() - 1)]
                .into_iter()
                .flatten()
                .collect()
        };
        told.dedup();
        let mut previous: Option<usize> = None;
        for &index in &told {
            let scene = &scenes[index];
            let skipped = previous.map_or(0, |p| index - p - 1);
            if skipped > 0 {
                shots.push(if skipped == 1 {
                    "One more shot passes.".to_owned()
                } else {
                    format!("{} more shots pass.", capitalise(&count_words(skipped)))
                });
            }
            previous = Some(index);
            let last = index + 1 == scenes.len();
            let is_longest = scenes.len() > 2 && Some(scene.start) == longest;
            let template = match (index, last, is_longest) {
                (0, _, true) => "The opening shot, the longest, runs to {end}: {a_light} frame {colour}{motion}.",
                (0, _, false) => "The opening shot runs to {end}: {a_light} frame {colour}{motion}.",
                (_, true, true) => "The last shot, the longest, begins at {start} and holds to the end, {light} and {colour}{motion}.",
                (_, true, false) => "The last shot begins at {start} and holds to the end, {light} and {colour}{motion}.",
                (_, _, true) => "From {start} to {end} comes the longest shot, {len} of {a_light} frame {colour}{motion}.",
                _ => voice.pick(&[
                    "At {start}, the film cuts to {a_light} shot {colour}, held for {len}{motion}.",
                    "From {start} to {end}, we see {a_light} frame {colour}{motion}.",
                    "At {start} comes {a_light} shot {colour}, lasting {len}{motion}.",
                ]),
            };
            let sentence = match keyframe_of(index) {
                Some(keyframe) => shot_sentence(template, keyframe, voice),
                None => match (index, last) {
                    (0, _) => format!("The opening shot runs to {}.", clock(scene.end)),
                    (_, true) => format!("The last shot begins at {}.", clock(scene.start)),
                    _ => format!(
                        "From {} to {} comes a shot of {}.",
                        clock(scene.start),
                        clock(scene.end),
                        duration_words(scene.length())
                    ),
                },
            };
            shots.push(
                sentence
                    .replace("{start}", &clock(scene.start))
                    .replace("{end}", &clock(scene.end))
                    .replace("{len}", &duration_words(scene.length())),
            );
        }
    }
    if let Some(motion) = facts.motion {
        shots.push(
            voice
                .pick(&[
                    "Taken as a whole, the footage is {motion}.",
                    "Across the film, the picture is {motion}.",
                ])
                .replace("{motion}", motion),
        );
    }

    let mut paragraphs = vec![setting];
    if !shots.is_empty() {
        paragraphs.push(shots);
    }
    paragraphs.push(sound_sentences(facts, voice));
    paragraphs.push(vec![SIGNATURE.to_owned()]);
    paragraphs
}

/// `#deepblue` from "deep blue".
fn hashtag(words: &str) -> String {
    // "grey and cool blue" is tagged by what it mostly is.
    let words = words.split(" and ").next().unwrap_or(words);
    let tag: String = words
        .split_whitespace()
        .take(3)
        .collect::<String>()
        .chars()
        .filter(|c| c.is_alphanumeric())
        .collect::<String>()
        .to_lowercase();
    format!("#{tag}")
}

/// The colours seen most, most frequent first (ties: first seen), at most three.
fn palette(keyframes: &[Keyframe]) -> Vec<String> {
    let mut counts: Vec<(String, usize, usize)> = Vec::new();
    for (i, keyframe) in keyframes.iter().enumerate() {
        let name = &keyframe.colour.colour_name;
        match counts.iter_mut().find(|(n, _, _)| n == name) {
            Some(entry) => entry.1 += 1,
            None => counts.push((name.clone(), 1, i)),
        }
    }
    counts.sort_by(|a, b| b.1.cmp(&a.1).then(a.2.cmp(&b.2)));
    counts.into_iter().take(3).map(|(n, _, _)| n).collect()
}

/// Motion below this is still.
const MOTION_STILL: f64 = 0.002;
/// Motion below this is gentle.
const MOTION_GENTLE: f64 = 0.012;
/// Motion at or above this is restless.
const MOTION_RESTLESS: f64 = 0.05;

/// How much moves, in the bands every preset words its own way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Movement {
    Still,
    Gentle,
    Lively,
    Restless,
}

impl Movement {
    fn of(motion: f64) -> Self {
        if motion < MOTION_STILL {
            Movement::Still
        } else if motion < MOTION_GENTLE {
            Movement::Gentle
        } else if motion < MOTION_RESTLESS {
            Movement::Lively
        } else {
            Movement::Restless
        }
    }
}

/// Overall motion in words.
fn motion_words(motion: f64) -> &'static str {
    match Movement::of(motion) {
        Movement::Still => "calm and still",
        Movement::Gentle => "gently moving",
        Movement::Lively => "lively",
        Movement::Restless => "restless",
    }
}

/// A trailing clause for one shot's motion.
fn motion_clause(motion: Option<f64>) -> &'static str {
    match motion.map(Movement::of) {
        Some(Movement::Still) => ", perfectly still",
        Some(Movement::Gentle) => ", with a little movement",
        Some(Movement::Lively) => ", full of movement",
        Some(Movement::Restless) => ", in restless motion",
        None => "",
    }
}

/// Brightness (perceived lightness, 0..1) in a word, `brightest` for the brightest band; none
/// in the wide middle, where any word would be a guess (a person says "dark" or "bright" of
/// a picture only when it plainly is).
fn brightness_words(brightness: f64, brightest: &'static str) -> Option<&'static str> {
    match brightness {
        b if b < 0.3 => Some("dark"),
        b if b < 0.38 => Some("dim"),
        b if b < 0.75 => None,
        b if b < 0.9 => Some("bright"),
        _ => Some(brightest),
    }
}

/// A shot's light and colour for a summary line: "flat, dark, dark blue", or just the colour.
fn look_line(keyframe: &Keyframe) -> String {
    match shot_light(keyframe) {
        Some(light) => format!("{light}, {}", keyframe.colour.colour_name),
        None => keyframe.colour.colour_name.clone(),
    }
}

/// Light in words from brightness and contrast (both perceptual, 0..1): "flat, dark",
/// "high-contrast", "bright"; none when neither is clearly high or low.
fn light_words(brightness: f64, contrast: f64) -> Option<String> {
    light_words_beside(brightness, contrast, "")
}

/// A keyframe's light in words, leaving out the brightness its colour's name already says
/// ("a flat frame in dark blue", not "a flat, dark frame in dark blue").
fn shot_light(keyframe: &Keyframe) -> Option<String> {
    let colour = &keyframe.colour;
    light_words_beside(colour.brightness, colour.contrast, &colour.colour_name)
}

/// [`light_words`], without a brightness word that `colour` already says.
fn light_words_beside(brightness: f64, contrast: f64, colour: &str) -> Option<String> {
    let light = brightness_words(brightness, "glaringly bright")
        .filter(|light| !already_says(colour, light));
    let contrast = match contrast {
        c if c < 0.02 => Some("flat"),
        c if c > 0.28 => Some("high-contrast"),
        _ => None,
    };
    match (contrast, light) {
        (Some(contrast), Some(light)) => Some(format!("{contrast}, {light}")),
        (Some(only), None) | (None, Some(only)) => Some(only.to_owned()),
        (None, None) => None,
    }
}

/// Whether a colour's name already tells its brightness: "dark blue" is dark, "pale grey" bright.
fn already_says(colour: &str, brightness: &str) -> bool {
    let words: &[&str] = if matches!(brightness, "dark" | "dim") {
        &["dark", "deep", "black"]
    } else {
        &["bright", "pale", "white"]
    };
    words.iter().any(|w| colour.starts_with(w))
}

/// Puts light words into a template's `{a_light}` ("a dark") and `{light}` places, or, with
/// none to say, leaves them out so the sentence still reads: "{a_light} frame" becomes "a
/// frame", "{light} and {colour}" just the colour.
fn fill_light(template: &str, light: Option<&str>) -> String {
    match light {
        Some(light) => template
            .replace("{a_light}", &with_article(light))
            .replace("{light}", light),
        None => template
            .replace("{a_light}", "a")
            .replace("{light} and ", "")
            .replace("{light}, ", "")
            .replace("something {light}", "something")
            .replace(" {light}", ""),
    }
}

/// A colour as a phrase after a noun: "washed in deep blue", "bursting with colour".
fn colour_phrase(colour: &str, voice: &mut Voice) -> String {
    match colour {
        "multicoloured" => voice
            .pick(&[
                "bursting with colour",
                "in a patchwork of colours",
                "full of mixed colours",
            ])
            .to_owned(),
        "black" => "close to black".to_owned(),
        "white" => "washed out to white".to_owned(),
        grey if grey.ends_with("grey") => format!("in shades of {grey}"),
        colour => voice
            .pick(&[
                "washed in {c}",
                "in {c} tones",
                "dominated by {c}",
                "bathed in {c}",
            ])
            .replace("{c}", colour),
    }
}

/// Loudness (integrated LUFS) in words.
fn loudness_words(lufs: f64) -> &'static str {
    match lufs {
        l if l <= media::SILENT_LUFS => "silent",
        l if l < -40.0 => "barely audible",
        l if l < -28.0 => "quiet",
        l if l < -20.0 => "at a moderate level",
        l if l < -11.0 => "loud and full",
        _ => "very loud",
    }
}

/// Pacing in words from the scene count and mean scene length.
fn pace_words(scenes: usize, mean_secs: f64) -> &'static str {
    match (scenes, mean_secs) {
        (0 | 1, _) => "a single take",
        (_, m) if m < 2.0 => "rapid-fire cuts",
        (_, m) if m < 5.0 => "quick cuts",
        (_, m) if m < 12.0 => "a brisk rhythm",
        (_, m) if m < 30.0 => "an unhurried pace",
        _ => "long, patient takes",
    }
}

/// A length in words: "6 seconds", "4.5 seconds", "2 minutes 5 seconds", "1 hour 2 minutes".
pub fn duration_words(secs: f64) -> String {
    let secs = if secs.is_finite() { secs.max(0.0) } else { 0.0 };
    if secs < 1.0 {
        return "under a second".into();
    }
    if secs < 10.0 {
        let tenths = (secs * 10.0).round() / 10.0;
        if (tenths - tenths.round()).abs() > 1e-9 {
            return format!("{tenths:.1} seconds");
        }
    }
    let total = secs.round() as u64;
    let (h, m, s) = (total / 3600, (total / 60) % 60, total % 60);
    let unit = |n: u64, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    match (h, m, s) {
        (0, 0, s) => unit(s, "second"),
        (0, m, 0) => unit(m, "minute"),
        (0, m, s) => format!("{} {}", unit(m, "minute"), unit(s, "second")),
        (h, 0, _) => unit(h, "hour"),
        (h, m, _) => format!("{} {}", unit(h, "hour"), unit(m, "minute")),
    }
}

/// A picture size by the name people know it by: "8K", "4K UHD", "1440p", "Full HD", "HD",
/// or "320×180" for small ones. Either side reaching a class counts (a 3840×1600 cinema crop
/// is 4K UHD footage), so portrait and landscape of one size are named alike.
fn resolution_words(width: u32, height: u32) -> String {
    let (short, long) = (width.min(height), width.max(height));
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

/// Landscape, portrait or square.
fn orientation(width: u32, height: u32) -> &'static str {
    let (w, h) = (f64::from(width), f64::from(height));
    if w > h * 1.05 {
        "landscape"
    } else if h > w * 1.05 {
        "portrait"
    } else {
        "square"
    }
}

/// A number without needless decimals: 25 → "25", 29.97 → "29.97".
fn number_words(value: f64) -> String {
    let text = format!("{value:.2}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// "second", "third" … for small positions, "13th" beyond.
fn ordinal_words(n: usize) -> String {
    const WORDS: [&str; 13] = [
        "", "first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth",
        "tenth", "eleventh", "twelfth",
    ];
    WORDS
        .get(n)
        .filter(|w| !w.is_empty())
        .map_or_else(|| format!("{n}th"), |w| (*w).to_owned())
}

/// Small counts as words ("three"), larger ones as digits.
fn count_words(n: usize) -> String {
    const WORDS: [&str; 13] = [
        "no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
        "eleven", "twelve",
    ];
    WORDS
        .get(n)
        .map_or_else(|| n.to_string(), |w| (*w).to_owned())
}

/// "1 May 2024" from an ISO 8601 timestamp; none for the zero date cameras write when unset.
fn date_words(timestamp: &str) -> Option<String> {
    let date = timestamp.get(..10)?;
    let mut parts = date.split('-');
    let year: u32 = parts.next()?.parse().ok()?;
    let month: usize = parts.next()?.parse().ok()?;
    let day: u32 = parts.next()?.parse().ok()?;
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    let month_name = MONTHS.get(month.checked_sub(1)?)?;
    if year <= 1970 || day == 0 || day > 31 {
        return None;
    }
    Some(format!("{day} {month_name} {year}"))
}

/// "a" or "an" before `word`.
fn with_article(word: &str) -> String {
    let vowel = word
        .chars()
        .next()
        .is_some_and(|c| "aeiouAEIOU".contains(c));
    format!("{} {word}", if vowel { "an" } else { "a" })
}

/// The text with its first letter in upper case.
pub(crate) fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// "a", "a and b", "a, b and c".
fn join_words(words: &[String]) -> String {
    match words {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// The item with the greatest `length`, the earliest among equals.
fn first_longest<'a, T>(
    items: impl Iterator<Item = &'a T>,
    length: impl Fn(&T) -> f64,
) -> Option<&'a T> {
    items.fold(None, |best: Option<&'a T>, item| match best {
        Some(b) if length(b) >= length(item) => Some(b),
        _ => Some(item),
    })
}

/// The mean of some values (0 for none).
fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    if n == 0 {
        0.0
    } else {
        sum / n as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::{
        AudioFacts, AudioStream, ColourFacts, MediaInfo, Scene, SceneStrategy, ShotRole, Silence,
        VideoStream,
    };
    use std::path::PathBuf;

    fn keyframe(
        time: f64,
        scene: usize,
        role: ShotRole,
        colour: &str,
        brightness: f64,
    ) -> Keyframe {
        Keyframe {
            time,
            scene,
            role,
            thumbnail: PathBuf::from(format!("/t/{time}.jpg")),
            colour: ColourFacts {
                brightness,
                saturation: 0.8,
                contrast: 0.1,
                hue_degrees: Some(240.0),
                colour_name: colour.into(),
                mean_rgb: [0, 0, 128],
            },
            motion: Some(0.02),
        }
    }

    fn analysis(audio: bool) -> Analysis {
        let stream = || AudioStream {
            index: 1,
            codec: "aac".into(),
            sample_rate: Some(48000),
            channels: Some(1),
            channel_layout: Some("mono".into()),
        };
        let scenes = vec![
            Scene {
                start: 0.0,
                end: 70.0,
                cut_score: None,
                motion: Some(0.01),
            },
            Scene {
                start: 70.0,
                end: 110.0,
                cut_score: Some(0.7),
                motion: None,
            },
            Scene {
                start: 110.0,
                end: 600.0,
                cut_score: Some(0.8),
                motion: Some(0.03),
            },
        ];
        Analysis {
            info: MediaInfo {
                duration_secs: 600.0,
                format_name: "mov,mp4,m4a,3gp,3g2,mj2".into(),
                format_long_name: None,
                size_bytes: Some(1),
                bit_rate: None,
                creation_time: Some("2024-05-01T10:00:00.000000Z".into()),
                title: None,
                video: VideoStream {
                    index: 0,
                    codec: "h264".into(),
                    width: 1920,
                    height: 1080,
                    fps: Some(25.0),
                    rotation: 0,
                    pixel_format: Some("yuv420p".into()),
                },
                audio: audio.then(stream),
                audio_streams: if audio { vec![stream()] } else { Vec::new() },
            },
            strategy: SceneStrategy::KeyframesOnly,
            scenes,
            keyframes: vec![
                keyframe(1.0, 0, ShotRole::Opening, "deep blue", 0.1),
                keyframe(35.0, 0, ShotRole::Middle, "deep blue", 0.5),
                keyframe(90.0, 1, ShotRole::Middle, "warm orange", 0.7),
                keyframe(599.0, 2, ShotRole::Closing, "multicoloured", 0.5),
            ],
            motion: Some(0.02),
            audio: audio.then(|| AudioFacts {
                integrated_lufs: Some(-15.7),
                loudness_range_lu: Some(0.2),
                silences: vec![
                    Silence {
                        start: 120.0,
                        end: 135.0,
                    },
                    Silence {
                        start: 270.0,
                        end: 290.0,
                    },
                ],
                stream: 0,
            }),
            thumbnails_dir: PathBuf::from("/t"),
        }
    }

    fn text(analysis: &Analysis, preset: Preset, seed: &str) -> String {
        compose(analysis, preset, seed).concat()
    }

    #[test]
    fn keyframes_that_look_like_the_last_one_told_are_not_retold() {
        let mut same = analysis(true);
        same.keyframes = vec![
            keyframe(1.0, 0, ShotRole::Opening, "deep blue", 0.5),
            keyframe(20.0, 0, ShotRole::Middle, "deep blue", 0.52),
            keyframe(40.0, 0, ShotRole::Middle, "deep blue", 0.48),
            keyframe(60.0, 0, ShotRole::Middle, "deep blue", 0.9),
            keyframe(90.0, 1, ShotRole::Middle, "deep blue", 0.9),
            keyframe(599.0, 2, ShotRole::Closing, "multicoloured", 0.5),
        ];
        let story = text(&same, Preset::Narrative, "abc");
        // 20 s and 40 s add nothing; 60 s is brighter; 90 s is another scene, told at its cut
        // (1:10), as the closing shot's scene is (1:50).
        for absent in ["0:20", "0:40", "1:30"] {
            assert!(!story.contains(absent), "{absent} retold in:\n{story}");
        }
        for present in ["1:00", "1:10", "1:50"] {
            assert!(story.contains(present), "{present} missing from:\n{story}");
        }
    }

    #[test]
    fn narrative_tells_the_facts() {
        let story = text(&analysis(true), Preset::Narrative, "abc");
        for needle in [
            "his video",
            "10 minutes",
            "Full HD",
            "hree scenes",
            "1 May 2024",
            "-15.7 LUFS",
            "falls silent two times",
            "9:59",
            "warm orange",
            SIGNATURE,
        ] {
            assert!(story.contains(needle), "missing {needle:?} in:\n{story}");
        }
        assert_eq!(story.matches("\n\n").count(), 3, "{story}");
        assert!(!story.contains("{"), "{story}");
    }

    #[test]
    fn presets_differ_and_all_sign_off() {
        let a = analysis(false);
        let stories: Vec<String> = PRESETS
            .iter()
            .map(|p| text(&a, Preset::parse(p).unwrap(), "seed"))
            .collect();
        for story in &stories {
            assert!(story.contains("10 minutes"), "{story}");
            assert!(
                story.contains("offline") && story.contains("analyser"),
                "{story}"
            );
            assert!(!story.contains("{"), "{story}");
        }
        let distinct: std::collections::HashSet<&String> = stories.iter().collect();
        assert_eq!(distinct.len(), PRESETS.len(), "{stories:#?}");
        assert!(
            stories[0].contains("no soundtrack")
                || stories[0].contains("no sound")
                || stories[0].contains("no audio"),
            "{}",
            stories[0]
        );
        assert!(stories[2].lines().count() <= 3, "{}", stories[2]);
        assert!(stories[2].contains('#'), "{}", stories[2]);
        assert!(stories[1].contains("- Scenes: 3"), "{}", stories[1]);
    }

    #[test]
    fn deterministic_but_varied_by_seed() {
        let a = analysis(true);
        assert_eq!(
            text(&a, Preset::Narrative, "x"),
            text(&a, Preset::Narrative, "x")
        );
        let variants: std::collections::HashSet<String> = (0..8)
            .map(|i| text(&a, Preset::Narrative, &format!("seed{i}")))
            .collect();
        assert!(variants.len() > 1);
    }

    #[test]
    fn titles_are_used() {
        let mut a = analysis(true);
        a.info.title = Some("Harbour walk".into());
        assert!(text(&a, Preset::Narrative, "s").contains("“Harbour walk”"));
        assert!(text(&a, Preset::Summary, "s").starts_with("“Harbour walk”"));
    }

    #[test]
    fn unknown_presets_are_permanent_errors() {
        let err = Preset::parse("epic").unwrap_err();
        assert!(matches!(err, StoryError::Permanent { .. }));
        assert!(err
            .to_string()
            .contains("narrative, summary, social, bedtime, documentary"));
    }

    /// Every `m:ss` time in `story`.
    fn times(story: &str) -> Vec<String> {
        let bytes = story.as_bytes();
        let mut found = Vec::new();
        for (i, _) in story.match_indices(':') {
            let before = story[..i]
                .rfind(|c: char| !c.is_ascii_digit())
                .map_or(0, |p| p + 1);
            let after = bytes[i + 1..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count();
            if before < i && after == 2 {
                found.push(story[before..i + 3].to_owned());
            }
        }
        found
    }

    #[test]
    fn a_bedtime_story_tells_the_facts_gently_without_clock_times() {
        for seed in ["a", "b", "c", "d"] {
            let story = text(&analysis(true), Preset::Bedtime, seed);
            assert!(story.starts_with("Once upon a time"), "{story}");
            assert!(story.contains("10 minutes"), "{story}");
            // Three scenes: two cuts.
            assert!(story.contains("changed twice"), "{story}");
            assert!(story.contains("deep blue"), "the opening colour:\n{story}");
            assert!(
                story.contains("warm orange"),
                "the colour along the way:\n{story}"
            );
            assert!(story.contains("loud sound"), "{story}");
            assert!(story.contains("Twice it went quiet"), "{story}");
            assert!(story.contains("The end."), "{story}");
            assert!(times(&story).is_empty(), "no clock times:\n{story}");
            assert!(story.ends_with(&format!("{SIGNATURE}\n")), "{story}");
            // Ten minutes is not a little film.
            assert!(!story.contains("little film"), "{story}");
        }
        let silent = text(&analysis(false), Preset::Bedtime, "a");
        assert!(silent.contains("no sound at all"), "{silent}");
    }

    #[test]
    fn a_documentary_tells_each_shot_at_the_cuts_own_times() {
        for seed in ["a", "b", "c", "d"] {
            let story = text(&analysis(true), Preset::Documentary, seed);
            assert!(story.contains("1 May 2024"), "{story}");
            assert!(story.contains("cuts twice, at 1:10 and 1:50"), "{story}");
            // The scenes' boundaries (and the silences') and nothing else: not the keyframes'
            // times inside the scenes.
            let boundaries = ["0:00", "1:10", "1:50", "10:00", "4:30", "4:50"];
            for time in times(&story) {
                assert!(boundaries.contains(&time.as_str()), "{time} in:\n{story}");
            }
            assert!(story.contains("longest"), "{story}");
            assert!(story.contains("warm orange"), "{story}");
            assert!(story.contains("-15.7 LUFS"), "{story}");
            assert!(!story.contains('{'), "{story}");
        }

        // Many shots: the opening, the longest and the last, with what lies between counted.
        let mut many = analysis(false);
        many.scenes = (0..12)
            .map(|i| Scene {
                start: f64::from(i) * 10.0,
                end: if i == 11 {
                    600.0
                } else {
                    f64::from(i + 1) * 10.0
                },
                cut_score: (i > 0).then_some(0.5),
                motion: None,
            })
            .collect();
        many.scenes[5].end = 60.0;
        let story = text(&many, Preset::Documentary, "seed");
        assert!(
            story.contains("cuts eleven times, the first at 0:10 and the last at 1:50"),
            "{story}"
        );
        assert!(story.contains("The last shot begins at 1:50"), "{story}");
        assert!(story.contains("more shots pass"), "{story}");
    }

    #[test]
    fn one_take_is_told_as_one_take_by_every_preset() {
        let mut one = analysis(true);
        one.scenes = vec![Scene {
            start: 0.0,
            end: 600.0,
            cut_score: None,
            motion: Some(0.02),
        }];
        for keyframe in &mut one.keyframes {
            keyframe.scene = 0;
        }
        let bedtime = text(&one, Preset::Bedtime, "s");
        assert!(!bedtime.contains("changed"), "{bedtime}");
        let documentary = text(&one, Preset::Documentary, "s");
        assert!(!documentary.contains("cuts once"), "{documentary}");
        assert!(!documentary.contains("shot begins"), "{documentary}");
        assert!(
            documentary.contains("one take") || documentary.contains("single, uninterrupted take"),
            "{documentary}"
        );
    }

    #[test]
    fn words() {
        assert_eq!(duration_words(0.4), "under a second");
        assert_eq!(duration_words(6.02), "6 seconds");
        assert_eq!(duration_words(4.5), "4.5 seconds");
        assert_eq!(duration_words(1.0), "1 second");
        assert_eq!(duration_words(600.0), "10 minutes");
        assert_eq!(duration_words(125.0), "2 minutes 5 seconds");
        assert_eq!(duration_words(61.0), "1 minute 1 second");
        assert_eq!(duration_words(3720.0), "1 hour 2 minutes");
        assert_eq!(resolution_words(1920, 1080), "Full HD");
        assert_eq!(resolution_words(1080, 1920), "Full HD");
        assert_eq!(resolution_words(1280, 720), "HD");
        assert_eq!(resolution_words(2560, 1440), "1440p");
        assert_eq!(resolution_words(3840, 2160), "4K UHD");
        assert_eq!(resolution_words(3840, 1600), "4K UHD");
        assert_eq!(resolution_words(7680, 4320), "8K");
        assert_eq!(resolution_words(320, 180), "320×180");
        assert_eq!(orientation(1080, 1920), "portrait");
        assert_eq!(number_words(29.97), "29.97");
        assert_eq!(number_words(25.0), "25");
        assert_eq!(
            date_words("2024-05-01T10:00:00Z").as_deref(),
            Some("1 May 2024")
        );
        assert_eq!(date_words("1970-01-01T00:00:00Z"), None);
        assert_eq!(date_words("junk"), None);
        assert_eq!(with_article("evenly lit"), "an evenly lit");
        assert_eq!(hashtag("deep blue"), "#deepblue");
        assert_eq!(hashtag("pale grey and cool blue"), "#palegrey");
        assert_eq!(
            join_words(&["a".into(), "b".into(), "c".into()]),
            "a, b and c"
        );
        assert_eq!(loudness_words(-15.7), "loud and full");
        assert_eq!(pace_words(10, 60.0), "long, patient takes");
    }
}
