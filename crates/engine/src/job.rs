//! Jobs: one video turned into one story, and the state machine every job follows.
//!
//! ```text
//!              enqueue (cache miss)                 enqueue (cache hit)
//!                     │                                     │
//!                     ▼          claim                      ▼
//!   retry ──────▶  queued ──────────────▶ running ──▶  succeeded
//!   (dead,          ▲  │ ▲                 │ │ │
//!   cancelled)      │  │ └── release ──────┘ │ │   release: transient error (retry at run_after),
//!                   │  │     (retry, lease   │ │   expired lease, clean shutdown, auth pause
//!                   │  │      expiry, auth,  │ │
//!                   │  │      shutdown)      │ └──▶ dead        permanent error, attempts exhausted
//!                   │  └──── cancel ─────────┴────▶ cancelled   by the person, queued or running
//!                   └───────────────────────────────┘
//! ```
//!
//! `succeeded`, `dead` and `cancelled` are finished; only `dead` and `cancelled` may be retried.
//! Deleting a job is not a transition: any job that is not `running` may be removed.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use uuid::Uuid;

/// A job's identity: a UUID v7, so ids sort by creation time.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobId(pub Uuid);

impl JobId {
    /// A fresh, time-ordered id.
    pub fn new() -> Self {
        Self(Uuid::now_v7())
    }
}

impl Default for JobId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for JobId {
    type Err = uuid::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(Self)
    }
}

/// The batch a job was added with (one drag-and-drop, one `add` command).
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct BatchId(pub Uuid);

impl BatchId {
    /// A fresh, time-ordered batch id.
    pub fn new() -> Self {
        Self(Uuid::now_v7())
    }
}

impl Default for BatchId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for BatchId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for BatchId {
    type Err = uuid::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(Self)
    }
}

/// Where a job is in its life; see the module docs for the transitions.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// Waiting for a worker (possibly not before `run_after`).
    Queued,
    /// Held by a worker under a lease.
    Running,
    /// Has its story.
    Succeeded,
    /// Failed for good: permanent error or attempts exhausted.
    Dead,
    /// Stopped by the person.
    Cancelled,
}

impl JobState {
    /// Every state, in display order.
    pub const ALL: [JobState; 5] = [
        JobState::Queued,
        JobState::Running,
        JobState::Succeeded,
        JobState::Dead,
        JobState::Cancelled,
    ];

    /// The name stored in the database and shown to people.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Dead => "dead",
            JobState::Cancelled => "cancelled",
        }
    }

    /// Whether the job has finished (it will not run again unless retried).
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            JobState::Succeeded | JobState::Dead | JobState::Cancelled
        )
    }

    /// Whether the state machine allows `self → to`.
    pub fn can_become(self, to: JobState) -> bool {
        use JobState::*;
        matches!(
            (self, to),
            (Queued, Running)
                | (Queued, Cancelled)
                | (Running, Succeeded)
                | (Running, Queued)
                | (Running, Dead)
                | (Running, Cancelled)
                | (Dead, Queued)
                | (Cancelled, Queued)
        )
    }

    /// `Ok` when `self → to` is legal, else [`IllegalTransition`].
    pub fn check_transition(self, to: JobState) -> Result<(), IllegalTransition> {
        if self.can_become(to) {
            Ok(())
        } else {
            Err(IllegalTransition { from: self, to })
        }
    }
}

/// A transition the state machine forbids.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.for_people())]
pub struct IllegalTransition {
    /// The state the job is in.
    pub from: JobState,
    /// The state that was asked for.
    pub to: JobState,
}

impl IllegalTransition {
    /// What was asked, why it cannot be done, and what can be done instead.
    fn for_people(&self) -> String {
        use JobState::*;
        match (self.from, self.to) {
            (Succeeded, Queued) => "this job has already succeeded (its story is written), so \
                there is nothing to retry; add the file again with --again for a new story"
                .into(),
            (Running, Queued) | (Running, Cancelled) => {
                "this job is being told right now; cancel it first".into()
            }
            (Queued, Queued) => "this job is already waiting in the queue".into(),
            (Dead | Cancelled | Succeeded, Cancelled) => {
                format!(
                    "this job has already ended ({}); there is nothing to cancel",
                    self.from
                )
            }
            (from, to) => format!(
                "a job that is {from} cannot be made {to} (it may have changed in the meantime; \
                 `storyteller show` says where it is now)"
            ),
        }
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for JobState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        JobState::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown state '{s}' (expected queued, running, succeeded, dead or cancelled)"
                )
            })
    }
}

/// What a running job is doing right now.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    /// Not started (queued).
    Waiting,
    /// Reading the file's container and streams.
    Probing,
    /// Scenes, keyframes, sound.
    Analysing,
    /// Sending the video to the storyteller's service (see [`Event::UploadProgress`] for the
    /// bytes).
    ///
    /// [`Event::UploadProgress`]: crate::event::Event::UploadProgress
    Uploading,
    /// The service is preparing the video it was sent (Gemini's file processing).
    Processing,
    /// The storyteller is writing.
    Writing,
    /// Finished (whatever the outcome).
    Done,
}

impl Stage {
    /// The name stored in the database and shown to people.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Waiting => "waiting",
            Stage::Probing => "probing",
            Stage::Analysing => "analysing",
            Stage::Uploading => "uploading",
            Stage::Processing => "processing",
            Stage::Writing => "writing",
            Stage::Done => "done",
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Stage {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [
            Stage::Waiting,
            Stage::Probing,
            Stage::Analysing,
            Stage::Uploading,
            Stage::Processing,
            Stage::Writing,
            Stage::Done,
        ]
        .into_iter()
        .find(|stage| stage.as_str() == s)
        .ok_or_else(|| format!("unknown stage '{s}'"))
    }
}

/// Scheduling class: every high job is claimed before any normal one, and so on.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    /// Ahead of everything else.
    High,
    /// The default.
    #[default]
    Normal,
    /// Only when nothing else waits.
    Low,
}

impl Priority {
    /// Every priority, highest first.
    pub const ALL: [Priority; 3] = [Priority::High, Priority::Normal, Priority::Low];

    /// The sort rank stored in the database (lower runs first).
    pub fn rank(self) -> i64 {
        match self {
            Priority::High => 0,
            Priority::Normal => 1,
            Priority::Low => 2,
        }
    }

    /// The priority for a stored rank.
    pub fn from_rank(rank: i64) -> Self {
        match rank {
            0 => Priority::High,
            2 => Priority::Low,
            _ => Priority::Normal,
        }
    }

    /// The name shown to people.
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::High => "high",
            Priority::Normal => "normal",
            Priority::Low => "low",
        }
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Priority {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Priority::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| format!("unknown priority '{s}' (expected high, normal or low)"))
    }
}

/// Why a job failed, so the queue knows what to do about it.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// Worth trying again later (timeouts, connection errors, HTTP 5xx).
    Transient,
    /// Trying again cannot help (unsupported or corrupt file, HTTP 400).
    Permanent,
    /// The storyteller refused our credentials; that storyteller pauses.
    Auth,
    /// Something the app needs is missing (ffmpeg); the queue pauses.
    Setup,
    /// The process died while running the job, too many times.
    Crashed,
    /// The storyteller's service asked us to slow down: the job waits its turn again, its
    /// attempt refunded.
    RateLimited,
    /// The storyteller's quota is spent until a time: it pauses until then.
    Quota,
    /// The model asked for is not there (retired, not pulled): that storyteller pauses.
    Model,
    /// The storyteller's service is not running or cannot be reached: that storyteller pauses
    /// and looks again shortly.
    Unreachable,
    /// The spending cap set for the storyteller is reached: it pauses.
    Spending,
}

impl ErrorKind {
    /// The name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Transient => "transient",
            ErrorKind::Permanent => "permanent",
            ErrorKind::Auth => "auth",
            ErrorKind::Setup => "setup",
            ErrorKind::Crashed => "crashed",
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::Quota => "quota",
            ErrorKind::Model => "model",
            ErrorKind::Unreachable => "unreachable",
            ErrorKind::Spending => "spending",
        }
    }
}

impl FromStr for ErrorKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [
            ErrorKind::Transient,
            ErrorKind::Permanent,
            ErrorKind::Auth,
            ErrorKind::Setup,
            ErrorKind::Crashed,
            ErrorKind::RateLimited,
            ErrorKind::Quota,
            ErrorKind::Model,
            ErrorKind::Unreachable,
            ErrorKind::Spending,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
        .ok_or_else(|| format!("unknown error kind '{s}'"))
    }
}

/// The last error a job met: what kind, and a sentence a person understands.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobError {
    /// What the queue does about it.
    pub kind: ErrorKind,
    /// What went wrong, for people.
    pub message: String,
}

/// Which storyteller writes a job's story, and how; part of the result-cache key.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct StorySpec {
    /// The storyteller's name, e.g. `offline`.
    pub storyteller: String,
    /// The model the storyteller uses (the offline analyser reports its version).
    pub model: String,
    /// The preset: `narrative`, `summary`, `social`.
    pub preset: String,
    /// The person's own wishes on top of the preset.
    pub style: Style,
}

impl StorySpec {
    /// The result-cache key for a file with this content hash.
    pub fn cache_key(&self, content_hash: &str) -> String {
        let mut hasher = blake3::Hasher::new();
        for part in [content_hash, &self.storyteller, &self.model, &self.preset] {
            hasher.update(&(part.len() as u64).to_le_bytes());
            hasher.update(part.as_bytes());
        }
        // Only a story with wishes hashes them, so every key made before there were wishes
        // (and every plain story since) stays what it was: the cache keeps its stories.
        if let Some(style) = self.style.to_json() {
            hasher.update(b"style");
            hasher.update(&(style.len() as u64).to_le_bytes());
            hasher.update(style.as_bytes());
        }
        hasher.finalize().to_hex().to_string()
    }
}

/// What a person asks of a story beyond its preset: their own instructions, a length and a
/// language. Each is part of the result-cache key, so a story in French is never handed out
/// for one asked in English. All empty is the preset as it is.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Style {
    /// Instructions in the person's words, followed where they differ from the preset's.
    pub prompt: Option<String>,
    /// About how many words the story should have.
    pub words: Option<u32>,
    /// The language to write in, as a person names it (`French`, `pt-BR`); `None` is English.
    pub language: Option<String>,
}

impl Style {
    /// The longest prompt taken, in characters: enough for a page of instructions.
    pub const PROMPT_MAX_CHARS: usize = 4000;
    /// The shortest and longest target lengths taken, in words.
    pub const WORDS: std::ops::RangeInclusive<u32> = 10..=5000;

    /// The style asked for, checked and put one way: blank text is no wish, and English (the
    /// language stories are written in anyway) is no wish either, so it shares their cache.
    pub fn new(
        prompt: Option<&str>,
        words: Option<u32>,
        language: Option<&str>,
    ) -> Result<Style, String> {
        let prompt = prompt.map(str::trim).filter(|p| !p.is_empty());
        if let Some(prompt) = prompt {
            let chars = prompt.chars().count();
            if chars > Self::PROMPT_MAX_CHARS {
                return Err(format!(
                    "the instructions are {chars} characters long; at most {} are taken",
                    Self::PROMPT_MAX_CHARS
                ));
            }
        }
        if let Some(words) = words {
            if !Self::WORDS.contains(&words) {
                return Err(format!(
                    "a story of {words} words cannot be asked for: choose between {} and {} words",
                    Self::WORDS.start(),
                    Self::WORDS.end()
                ));
            }
        }
        let language = language
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .filter(|l| !l.is_empty());
        if let Some(language) = &language {
            let fits = language.chars().count() <= 40
                && language.chars().all(|c| {
                    c.is_alphabetic() || c == ' ' || c == '-' || c == '_' || c == '(' || c == ')'
                });
            if !fits {
                return Err(format!(
                    "'{language}' is not a language's name: write it as a word \
                     (French, Deutsch) or a code (fr, pt-BR)"
                ));
            }
        }
        Ok(Style {
            prompt: prompt.map(str::to_owned),
            words,
            language: language.filter(|l| !is_english(l)),
        })
    }

    /// Whether nothing is asked beyond the preset.
    pub fn is_plain(&self) -> bool {
        self.prompt.is_none() && self.words.is_none() && self.language.is_none()
    }

    /// The style as stored (compact JSON), or `None` for a plain one.
    pub fn to_json(&self) -> Option<String> {
        if self.is_plain() {
            return None;
        }
        serde_json::to_string(self).ok()
    }

    /// The style stored as `text` (a plain one for none, or for text an older or newer
    /// build wrote that this one cannot read).
    pub fn from_json(text: Option<&str>) -> Style {
        text.and_then(|t| serde_json::from_str(t).ok())
            .unwrap_or_default()
    }

    /// The wishes in a few words, for lists and details: `in French, about 200 words, own
    /// instructions`; empty for a plain style.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(language) = &self.language {
            parts.push(format!("in {language}"));
        }
        if let Some(words) = self.words {
            parts.push(format!("about {words} words"));
        }
        if self.prompt.is_some() {
            parts.push("own instructions".to_owned());
        }
        parts.join(", ")
    }
}

/// Whether `language` names English (`English`, `en`, `en-GB`, `en_US`, `english (US)`).
fn is_english(language: &str) -> bool {
    let lower = language.to_lowercase();
    lower == "en"
        || lower.starts_with("en-")
        || lower.starts_with("en_")
        || lower == "english"
        || lower.starts_with("english ")
}

/// Token and money figures of a story: what a storyteller reports as it learns them, and what
/// a job has cost over all its attempts.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Tokens sent to the model (audio included).
    pub input_tokens: u64,
    /// Of those, the tokens of sound, where the provider counts (and prices) them apart.
    #[serde(default)]
    pub audio_input_tokens: u64,
    /// Tokens the model wrote.
    pub output_tokens: u64,
    /// What it cost, in millionths of a US dollar: whole numbers, so totals add up exactly
    /// (0 for the offline analyser and local models).
    #[serde(default)]
    pub cost_micro_usd: u64,
}

impl Usage {
    /// Whether nothing was spent.
    pub fn is_empty(&self) -> bool {
        self.input_tokens == 0 && self.output_tokens == 0 && self.cost_micro_usd == 0
    }

    /// The cost in US dollars, for people.
    pub fn cost_usd(&self) -> f64 {
        self.cost_micro_usd as f64 / 1e6
    }

    /// This usage and `other` together.
    pub fn plus(&self, other: &Usage) -> Usage {
        Usage {
            input_tokens: self.input_tokens.saturating_add(other.input_tokens),
            audio_input_tokens: self
                .audio_input_tokens
                .saturating_add(other.audio_input_tokens),
            output_tokens: self.output_tokens.saturating_add(other.output_tokens),
            cost_micro_usd: self.cost_micro_usd.saturating_add(other.cost_micro_usd),
        }
    }
}

/// A job to be added: a file already checked, sized and hashed.
#[derive(Clone, Debug)]
pub struct NewJob {
    /// The video file.
    pub source: PathBuf,
    /// Size in bytes when it was added.
    pub size: u64,
    /// Modification time when it was added (milliseconds since the Unix epoch).
    pub mtime_ms: i64,
    /// blake3 of the file's content, hex.
    pub content_hash: String,
    /// Who writes the story and how.
    pub spec: StorySpec,
    /// Scheduling class.
    pub priority: Priority,
    /// Ignore the result cache and write a fresh story.
    pub no_cache: bool,
    /// Add it even if the file already has a queued, running or finished job.
    pub again: bool,
    /// The watched folder it came from, if it came from one.
    pub watched_folder: Option<PathBuf>,
}

/// One job as stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// Identity.
    pub id: JobId,
    /// The video file.
    pub source: PathBuf,
    /// Size in bytes when added.
    pub size: u64,
    /// Modification time when added (ms since the Unix epoch).
    pub mtime_ms: i64,
    /// blake3 of the content, hex.
    pub content_hash: String,
    /// Media facts found while running (JSON), once probed.
    pub media: Option<serde_json::Value>,
    /// Storyteller name.
    pub storyteller: String,
    /// Storyteller model.
    pub model: String,
    /// Preset.
    pub preset: String,
    /// The person's wishes beyond the preset.
    pub style: Style,
    /// Scheduling class.
    pub priority: Priority,
    /// The batch it was added with.
    pub batch_id: BatchId,
    /// Life-cycle state.
    pub state: JobState,
    /// What it is doing.
    pub stage: Stage,
    /// 0..=1 within the whole job.
    pub progress: f64,
    /// How many times a worker has claimed it.
    pub attempts: u32,
    /// Not claimed before this time (ms since the Unix epoch).
    pub run_after_ms: i64,
    /// The worker holding it, while running.
    pub lease_owner: Option<String>,
    /// When that worker's lease ends unless renewed (ms).
    pub lease_expires_ms: Option<i64>,
    /// The last error met, if any.
    pub error: Option<JobError>,
    /// The story, once written.
    pub story: Option<String>,
    /// Whether the story came from the result cache.
    pub cached: bool,
    /// Whether the result cache was bypassed.
    pub no_cache: bool,
    /// Tokens and cost.
    pub usage: Usage,
    /// Added (ms).
    pub created_at_ms: i64,
    /// Last changed (ms).
    pub updated_at_ms: i64,
    /// First claimed (ms).
    pub started_at_ms: Option<i64>,
    /// Finished (ms).
    pub finished_at_ms: Option<i64>,
    /// The watched folder it came from, whose choices say what is done once it is told.
    pub watched_folder: Option<PathBuf>,
    /// What the storyteller saved as it went, for the next attempt to continue from (storage
    /// only; never on the wire).
    pub checkpoint: Option<serde_json::Value>,
}

#[cfg(test)]
impl Job {
    /// A job numbered `n` in `state`, for unit tests: offline, normal priority, one batch,
    /// nothing else set.
    pub(crate) fn for_tests(n: u128, state: JobState) -> Job {
        Job {
            id: JobId(uuid::Uuid::from_u128(n)),
            source: format!("/videos/{n}.mp4").into(),
            size: 1,
            mtime_ms: 0,
            content_hash: format!("{n:x}"),
            media: None,
            storyteller: "offline".into(),
            model: "offline-analyser".into(),
            preset: "narrative".into(),
            style: Style::default(),
            priority: Priority::Normal,
            batch_id: BatchId(uuid::Uuid::from_u128(7)),
            state,
            stage: Stage::Waiting,
            progress: 0.0,
            attempts: 0,
            run_after_ms: 0,
            lease_owner: None,
            lease_expires_ms: None,
            error: None,
            story: None,
            cached: false,
            no_cache: false,
            usage: Usage::default(),
            created_at_ms: 0,
            updated_at_ms: 0,
            started_at_ms: None,
            finished_at_ms: None,
            watched_folder: None,
            checkpoint: None,
        }
    }
}

impl Job {
    /// The storyteller spec this job was added with.
    pub fn spec(&self) -> StorySpec {
        StorySpec {
            storyteller: self.storyteller.clone(),
            model: self.model.clone(),
            preset: self.preset.clone(),
            style: self.style.clone(),
        }
    }

    /// The file name people recognise the job by (see [`crate::wire::display_path`]).
    pub fn file_name(&self) -> String {
        match self.source.file_name() {
            Some(name) => crate::wire::display_path(std::path::Path::new(name)),
            None => crate::wire::display_path(&self.source),
        }
    }
}

/// The (year, month, day) of the day `days` after 1970-01-01, proleptic Gregorian (Howard
/// Hinnant's `civil_from_days`).
pub(crate) fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    (year_of_era + era * 400 + i64::from(month <= 2), month, day)
}

/// Formats ms since the Unix epoch as an ISO-8601 UTC time, e.g. `2026-11-23T02:03:14.123Z`.
pub fn iso8601(ms: i64) -> String {
    let in_day = ms.rem_euclid(86_400_000);
    let (year, month, day) = civil_from_days(ms.div_euclid(86_400_000));
    if !(0..=9999).contains(&year) {
        return format!(
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
            in_day / 3_600_000,
            in_day / 60_000 % 60,
            in_day / 1000 % 60,
            in_day % 1000
        );
    }
    // Written digit by digit: every job on the wire carries two or more of these, and the
    // formatting machinery cost more than the rest of turning a job into its view.
    let mut text = *b"0000-00-00T00:00:00.000Z";
    let mut put = |at: usize, width: usize, mut value: i64| {
        for slot in text[at..at + width].iter_mut().rev() {
            *slot = b'0' + (value % 10) as u8;
            value /= 10;
        }
    };
    put(0, 4, year);
    put(5, 2, month);
    put(8, 2, day);
    put(11, 2, in_day / 3_600_000);
    put(14, 2, in_day / 60_000 % 60);
    put(17, 2, in_day / 1000 % 60);
    put(20, 3, in_day % 1000);
    String::from_utf8_lossy(&text).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_machine_allows_exactly_the_documented_transitions() {
        use JobState::*;
        let legal = [
            (Queued, Running),
            (Queued, Cancelled),
            (Running, Succeeded),
            (Running, Queued),
            (Running, Dead),
            (Running, Cancelled),
            (Dead, Queued),
            (Cancelled, Queued),
        ];
        for from in JobState::ALL {
            for to in JobState::ALL {
                let expected = legal.contains(&(from, to));
                assert_eq!(from.can_become(to), expected, "{from} → {to}");
                assert_eq!(from.check_transition(to).is_ok(), expected, "{from} → {to}");
            }
        }
        assert!(Succeeded
            .check_transition(Queued)
            .unwrap_err()
            .to_string()
            .contains("has already succeeded"));
        assert!(Succeeded
            .check_transition(Running)
            .unwrap_err()
            .to_string()
            .starts_with("a job that is succeeded cannot be made running"));
    }

    #[test]
    fn timestamps_format_as_utc() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601(784_111_777_000), "1994-11-06T08:49:37.000Z");
        assert_eq!(iso8601(1_795_399_394_123), "2026-11-23T02:03:14.123Z");
        assert_eq!(iso8601(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn names_round_trip() {
        for state in JobState::ALL {
            assert_eq!(state.as_str().parse::<JobState>().unwrap(), state);
        }
        for p in Priority::ALL {
            assert_eq!(p.as_str().parse::<Priority>().unwrap(), p);
            assert_eq!(Priority::from_rank(p.rank()), p);
        }
        assert!("urgent".parse::<Priority>().is_err());
    }

    #[test]
    fn cache_key_depends_on_every_part() {
        let spec = StorySpec {
            storyteller: "offline".into(),
            model: "v1".into(),
            preset: "narrative".into(),
            style: Style::default(),
        };
        let base = spec.cache_key("abc");
        assert_eq!(base, spec.cache_key("abc"));
        assert_ne!(base, spec.cache_key("abd"));
        let mut other = spec.clone();
        other.preset = "summary".into();
        assert_ne!(base, other.cache_key("abc"));
        // A plain story's key is the one made before there were wishes.
        let mut before = blake3::Hasher::new();
        for part in ["abc", "offline", "v1", "narrative"] {
            before.update(&(part.len() as u64).to_le_bytes());
            before.update(part.as_bytes());
        }
        assert_eq!(base, before.finalize().to_hex().to_string());
        // Every wish is a key of its own.
        let styles = [
            Style::new(Some("Name the dog Rex."), None, None).unwrap(),
            Style::new(None, Some(200), None).unwrap(),
            Style::new(None, None, Some("French")).unwrap(),
            Style::new(None, None, Some("German")).unwrap(),
        ];
        let mut keys: Vec<String> = styles
            .iter()
            .map(|style| {
                StorySpec {
                    style: style.clone(),
                    ..spec.clone()
                }
                .cache_key("abc")
            })
            .collect();
        keys.push(base.clone());
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), styles.len() + 1);
        // Length-prefixing keeps ("ab","c") and ("a","bc") apart.
        let a = StorySpec {
            storyteller: "ab".into(),
            model: "c".into(),
            preset: "".into(),
            style: Style::default(),
        };
        let b = StorySpec {
            storyteller: "a".into(),
            model: "bc".into(),
            preset: "".into(),
            style: Style::default(),
        };
        assert_ne!(a.cache_key("h"), b.cache_key("h"));
    }

    #[test]
    fn wishes_are_checked_and_put_one_way() {
        let plain = Style::new(Some("   "), None, Some(" English ")).unwrap();
        assert!(plain.is_plain());
        assert_eq!(plain.to_json(), None);
        for english in ["en", "EN-gb", "en_US", "english (US)"] {
            assert!(Style::new(None, None, Some(english)).unwrap().is_plain());
        }
        let style = Style::new(
            Some("  Call the cat Mila. "),
            Some(150),
            Some("  Brazilian   Portuguese"),
        )
        .unwrap();
        assert_eq!(style.prompt.as_deref(), Some("Call the cat Mila."));
        assert_eq!(style.language.as_deref(), Some("Brazilian Portuguese"));
        assert_eq!(
            style.describe(),
            "in Brazilian Portuguese, about 150 words, own instructions"
        );
        let stored = style.to_json().unwrap();
        assert_eq!(Style::from_json(Some(&stored)), style);
        assert_eq!(Style::from_json(Some("not json")), Style::default());
        assert!(Style::new(None, None, Some("français")).is_ok());
        assert!(Style::new(None, None, Some("pt-BR")).is_ok());

        let long = "a".repeat(Style::PROMPT_MAX_CHARS + 1);
        assert!(Style::new(Some(&long), None, None)
            .unwrap_err()
            .contains("4001 characters"));
        assert!(Style::new(None, Some(5), None)
            .unwrap_err()
            .contains("between 10 and 5000"));
        assert!(Style::new(None, None, Some("French; drop table"))
            .unwrap_err()
            .contains("not a language"));
    }
}
