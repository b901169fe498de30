//! Storytellers: whatever turns one video into one story (the offline analyser, AI models).
//!
//! A storyteller writes its story into a [`StorySink`], which streams each piece to the event bus
//! as it is written, and fails with a [`StoryError`] whose kind tells the queue what to do.
//! Cancelling a job drops the future returned by [`Storyteller::tell`], so storytellers must hold
//! nothing that outlives a drop: child processes are spawned `kill_on_drop`, HTTP requests are
//! futures. A cancel by the person also fires [`StoryRequest::cancelled`], so a storyteller can
//! clean up what it left on a service (an uploaded file) in a task of its own, without holding
//! the cancel up; a shutdown does not fire it, since the next run goes on from the checkpoint.
//!
//! What a storyteller spends it reports with [`StorySink::usage`] as soon as it knows: the pool
//! books it whatever the attempt's end (success, failure, cancel), priced by
//! [`crate::pricing`]. Each storyteller says what its service can take ([`Capacity`]); the pool
//! starts no more than that.

pub mod gemini;
pub mod http;
pub mod offline;
pub mod ollama;
pub mod openai;
pub mod transcript;
pub mod twopass;
pub mod vision;

use crate::event::{Event, EventBus};
use crate::job::{ErrorKind, JobError, JobId, Stage, Usage};
use crate::media::MediaError;
use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// A boxed, sendable future: what [`Storyteller::tell`] returns so storytellers can live behind `dyn`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One video to tell.
#[derive(Clone, Debug)]
pub struct StoryRequest {
    /// The job being run.
    pub job_id: JobId,
    /// The video file.
    pub source: PathBuf,
    /// blake3 of the file's content when it was added (hex); names its thumbnail folder.
    pub content_hash: String,
    /// The preset asked for (`narrative`, `summary`, `social`).
    pub preset: String,
    /// What the person asked beyond the preset.
    pub style: crate::job::Style,
    /// The model asked for.
    pub model: String,
    /// What an earlier attempt at this job saved with [`Checkpointer::save`], if anything: the
    /// storyteller continues from there (checking first that it still fits the file).
    pub checkpoint: Option<serde_json::Value>,
    /// Fires when the person cancels the job (not on a shutdown, which keeps the work for the
    /// next run).
    pub cancelled: tokio_util::sync::CancellationToken,
}

/// What a storyteller's service can take at once; `None` is no limit. The pool keeps to it for
/// every job it starts, so a rate-limited key never meets a storm of 429s.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Capacity {
    /// Requests under way at once.
    pub concurrent: Option<u32>,
    /// Requests started in any one minute.
    pub per_minute: Option<u32>,
    /// Requests started in any one day.
    pub per_day: Option<u32>,
}

impl Capacity {
    /// No limits.
    pub const UNLIMITED: Capacity = Capacity {
        concurrent: None,
        per_minute: None,
        per_day: None,
    };

    /// Whether any limit is set.
    pub fn is_limited(&self) -> bool {
        self.concurrent.is_some() || self.per_minute.is_some() || self.per_day.is_some()
    }
}

/// Where a storyteller that analyses videos gets its ffmpeg.
#[derive(Clone, Debug)]
pub enum MediaTools {
    /// These binaries, as given.
    Fixed(crate::media::Media),
    /// Found afresh (environment, then `PATH`) for each video, so installing FFmpeg while the
    /// app is open is enough.
    Located {
        /// Where thumbnails go.
        thumbnails_root: PathBuf,
    },
}

impl MediaTools {
    /// The media analyser to use now.
    pub fn media(&self) -> Result<crate::media::Media, MediaError> {
        match self {
            MediaTools::Fixed(media) => Ok(media.clone()),
            MediaTools::Located { thumbnails_root } => {
                crate::media::Media::locate(thumbnails_root.clone())
            }
        }
    }

    /// Whether ffmpeg and ffprobe are there (what [`Storyteller::check_ready`] asks).
    pub fn check(&self) -> Result<(), StoryError> {
        self.media().map(|_| ()).map_err(StoryError::from)
    }
}

/// Turns a video into a story.
pub trait Storyteller: Send + Sync + 'static {
    /// The name jobs refer to it by, e.g. `offline`.
    fn name(&self) -> &str;
    /// The model it uses by default (part of the result-cache key).
    fn default_model(&self) -> &str;
    /// The presets it knows; the first is the default.
    fn presets(&self) -> &[&'static str];
    /// The models it can use (by default only its own).
    fn models(&self) -> Vec<String> {
        vec![self.default_model().to_owned()]
    }
    /// Whether it can tell stories with `model`.
    fn has_model(&self, model: &str) -> bool {
        self.models().iter().any(|m| m == model)
    }
    /// Whether it can work on this machine now (its tools are installed); checked before a run
    /// starts, so a missing tool is named once instead of pausing the queue on the first job.
    fn check_ready(&self) -> Result<(), StoryError> {
        Ok(())
    }
    /// Why it cannot honour `style` (the person's instructions, length or language), in
    /// words for people, or `None` when it can (as a model that reads instructions can).
    /// Checked when videos are added, so a wish it cannot keep is refused before any job.
    fn refuses_style(&self, style: &crate::job::Style) -> Option<String> {
        let _ = style;
        None
    }
    /// How much its service can take (no limits by default: it runs on this machine).
    fn capacity(&self) -> Capacity {
        Capacity::UNLIMITED
    }
    /// Checks, without telling anything or spending a token, that it can tell stories with
    /// `model` now: its tools, and for a service, that it answers, takes the key and has the
    /// model. What it found, in words for people.
    fn check<'a>(&'a self, model: &'a str) -> BoxFuture<'a, Result<String, StoryError>> {
        let _ = model;
        Box::pin(async move { self.check_ready().map(|()| "ready".to_owned()) })
    }
    /// The tokens and requests telling a video like `info` with `model` and `preset` is
    /// expected to take, before anything is sent (none by default: it runs on this machine,
    /// for free).
    fn estimate(&self, info: &crate::media::MediaInfo, model: &str, preset: &str) -> TokenEstimate {
        let _ = (info, model, preset);
        TokenEstimate::default()
    }
    /// How long one video is expected to take with `model` when nothing has been told yet to
    /// learn from.
    fn typical_secs(&self, info: &crate::media::MediaInfo, model: &str) -> f64 {
        let _ = model;
        // The offline analyser decodes the whole video: about a twentieth of its length.
        1.0 + info.duration_secs / 20.0
    }
    /// Writes the story for `request` into `sink`, returning what it cost.
    fn tell<'a>(
        &'a self,
        request: &'a StoryRequest,
        sink: &'a mut StorySink,
    ) -> BoxFuture<'a, Result<Usage, StoryError>>;
}

/// What a video is expected to cost in tokens, worked out from its facts alone.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TokenEstimate {
    /// The usage expected (priced by the caller).
    pub usage: Usage,
    /// The requests it takes to the storyteller's service, each counted by its limits (none
    /// for a storyteller that runs here).
    pub requests: u32,
    /// Anything the person should know about the figure (a video sent reduced, thinking).
    pub note: Option<String>,
}

/// `estimate` with the person's wishes counted in: their instructions are read (about four
/// characters a token) and a length asked for replaces the preset's (about 1.4 tokens an
/// English word; twice that for other languages, whose words models cut finer). A storyteller
/// that spends no tokens spends none for wishes either.
pub fn with_style(mut estimate: TokenEstimate, style: &crate::job::Style) -> TokenEstimate {
    if estimate.usage.input_tokens + estimate.usage.output_tokens == 0 {
        return estimate;
    }
    if let Some(prompt) = &style.prompt {
        estimate.usage.input_tokens += (prompt.chars().count() as u64).div_ceil(4);
    }
    let per_word = if style.language.is_some() { 2.8 } else { 1.4 };
    let words = style
        .words
        .map(f64::from)
        .unwrap_or(estimate.usage.output_tokens as f64 / 1.4);
    estimate.usage.output_tokens = (words * per_word).ceil() as u64;
    estimate
}

/// The tokens a story of `preset` is expected to take: what the presets ask for.
pub fn story_tokens(preset: &str) -> u64 {
    match preset {
        "summary" => 120,
        "social" => 80,
        _ => 600,
    }
}

/// Why a story could not be written; the variant decides what the queue does.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StoryError {
    /// Try again later (after `retry_after` if the server said so).
    #[error("{message}")]
    Transient {
        /// For people.
        message: String,
        /// How long the server asked us to wait.
        retry_after: Option<Duration>,
    },
    /// Trying again cannot help; the job is dead.
    #[error("{message}")]
    Permanent {
        /// For people.
        message: String,
    },
    /// Credentials refused: this storyteller pauses rather than failing every job (the others
    /// go on).
    #[error("{message}")]
    Auth {
        /// For people.
        message: String,
    },
    /// The service asked us to slow down (a per-minute limit): the job goes back to the queue
    /// with its attempt refunded, and this storyteller starts nothing before `retry_after`.
    #[error("{message}")]
    RateLimited {
        /// For people.
        message: String,
        /// How long the server asked us to wait.
        retry_after: Option<Duration>,
    },
    /// A quota is spent until `until_ms` (a daily quota): this storyteller pauses until then,
    /// its jobs wait, no attempt is used.
    #[error("{message}")]
    QuotaExhausted {
        /// For people, with the time it resets.
        message: String,
        /// When the quota comes back (ms since the Unix epoch).
        until_ms: i64,
    },
    /// The model is not there (retired, renamed, not pulled): this storyteller pauses, with a
    /// message naming the setting to change.
    #[error("{message}")]
    ModelUnavailable {
        /// For people.
        message: String,
    },
    /// The service is not running or not reachable (Ollama not started): this storyteller
    /// pauses, and looks again by itself shortly.
    #[error("{message}")]
    Unreachable {
        /// For people.
        message: String,
    },
    /// Something the app needs is missing or broken: the queue pauses.
    #[error("{message}")]
    Setup {
        /// For people.
        message: String,
    },
    /// The disk at `path` is full: the queue pauses, and starts again by itself once there is
    /// room there.
    #[error("{message}")]
    DiskFull {
        /// For people.
        message: String,
        /// Where a write failed.
        path: PathBuf,
    },
}

impl StoryError {
    /// A transient error with no server-given delay.
    pub fn transient(message: impl Into<String>) -> Self {
        StoryError::Transient {
            message: message.into(),
            retry_after: None,
        }
    }

    /// A permanent error.
    pub fn permanent(message: impl Into<String>) -> Self {
        StoryError::Permanent {
            message: message.into(),
        }
    }

    /// The kind stored with the job.
    pub fn kind(&self) -> ErrorKind {
        match self {
            StoryError::Transient { .. } => ErrorKind::Transient,
            StoryError::Permanent { .. } => ErrorKind::Permanent,
            StoryError::Auth { .. } => ErrorKind::Auth,
            StoryError::RateLimited { .. } => ErrorKind::RateLimited,
            StoryError::QuotaExhausted { .. } => ErrorKind::Quota,
            StoryError::ModelUnavailable { .. } => ErrorKind::Model,
            StoryError::Unreachable { .. } => ErrorKind::Unreachable,
            StoryError::Setup { .. } | StoryError::DiskFull { .. } => ErrorKind::Setup,
        }
    }

    /// The error as stored with the job.
    pub fn to_job_error(&self) -> JobError {
        JobError {
            kind: self.kind(),
            message: self.to_string(),
        }
    }
}

impl From<&MediaError> for StoryError {
    /// A missing or broken tool pauses the queue (setup), as does a full disk; a file that is
    /// not a usable video fails the job for good; passing troubles are retried.
    fn from(error: &MediaError) -> Self {
        let message = error.to_string();
        match error {
            MediaError::ToolMissing { .. } | MediaError::ToolBroken { .. } => {
                StoryError::Setup { message }
            }
            MediaError::DiskFull { path } => StoryError::DiskFull {
                message,
                path: path.clone(),
            },
            MediaError::ToolFailed { .. }
            | MediaError::Interrupted { .. }
            | MediaError::Thumbnails { .. } => StoryError::transient(message),
            MediaError::FileMissing { .. }
            | MediaError::Unreadable { .. }
            | MediaError::EmptyFile { .. }
            | MediaError::NotVideo { .. }
            | MediaError::Corrupt { .. }
            | MediaError::NoVideoStream { .. }
            | MediaError::ZeroDuration { .. } => StoryError::permanent(message),
        }
    }
}

impl From<MediaError> for StoryError {
    fn from(error: MediaError) -> Self {
        StoryError::from(&error)
    }
}

/// Where a running storyteller reports its stage, progress, media facts and story text, and
/// saves its work so far.
///
/// Text and progress go straight to the event bus; the pool persists the latest stage and
/// progress (throttled) from the watch channel, each checkpoint as soon as it is saved, and the
/// story and media facts at the end. Each
/// piece of text is published with the attempt writing it and its offset in the story (UTF-16
/// code units), so a front end reassembles the story exactly.
#[derive(Debug)]
pub struct StorySink {
    job_id: JobId,
    bus: EventBus,
    text: String,
    utf16_len: u32,
    media: Option<serde_json::Value>,
    status: watch::Sender<(Stage, f64)>,
    checkpoints: Checkpointer,
    attempts: u32,
    /// When progress was last published.
    progress_published: Option<std::time::Instant>,
    /// What this attempt has spent so far, as the storyteller last said.
    usage: Usage,
    /// The model that actually answered, where the service names it (an alias resolved).
    model_version: Option<String>,
    /// When upload progress was last published.
    upload_published: Option<std::time::Instant>,
}

/// How often progress within one stage is published, at most (about 10 times a second).
const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_millis(100);

/// Saves a storyteller's work so far (its own JSON shape: e.g. the analysis passes finished, an
/// upload's session and offset); the next attempt at the job gets the latest one back in
/// [`StoryRequest::checkpoint`]. Cheap to clone, so a progress callback can hold one.
#[derive(Clone, Debug)]
pub struct Checkpointer {
    latest: Arc<watch::Sender<Option<Arc<serde_json::Value>>>>,
}

impl Checkpointer {
    /// Keeps `checkpoint` in place of the one before; the pool writes it to the store at once.
    pub fn save(&self, checkpoint: serde_json::Value) {
        self.latest.send_replace(Some(Arc::new(checkpoint)));
    }
}

impl StorySink {
    /// A sink for `job_id`'s `attempts`-th attempt, publishing on `bus`.
    pub fn new(job_id: JobId, attempts: u32, bus: EventBus) -> Self {
        let (status, _) = watch::channel((Stage::Waiting, 0.0));
        let (checkpoints, _) = watch::channel(None);
        Self {
            job_id,
            bus,
            text: String::new(),
            utf16_len: 0,
            media: None,
            status,
            checkpoints: Checkpointer {
                latest: Arc::new(checkpoints),
            },
            attempts,
            progress_published: None,
            usage: Usage::default(),
            model_version: None,
            upload_published: None,
        }
    }

    /// Records what this attempt has spent so far (tokens as the service counts them; the
    /// pool prices them). Called again with larger figures as they grow; the latest counts,
    /// and is booked even when the attempt then fails or is cancelled.
    pub fn usage(&mut self, usage: Usage) {
        self.usage = usage;
    }

    /// What this attempt has spent, as last recorded.
    pub fn spent(&self) -> &Usage {
        &self.usage
    }

    /// Records the model version that answered (e.g. the alias `gemini-flash-latest` resolved).
    pub fn model_version(&mut self, version: impl Into<String>) {
        self.model_version = Some(version.into());
    }

    /// The model version recorded, if any.
    pub fn answered_by(&self) -> Option<&str> {
        self.model_version.as_deref()
    }

    /// Reports an upload's bytes: moves the job to [`Stage::Uploading`] with that fraction as
    /// its progress, and publishes the bytes (at most about ten times a second, and the end).
    pub fn uploaded(&mut self, sent: u64, total: u64) {
        let fraction = if total == 0 {
            1.0
        } else {
            sent as f64 / total as f64
        };
        let (stage, _) = *self.status.borrow();
        if stage != Stage::Uploading {
            self.set(Stage::Uploading, fraction.clamp(0.0, 1.0));
        } else {
            self.progress(fraction);
        }
        let now = std::time::Instant::now();
        let due = self
            .upload_published
            .is_none_or(|at| now.duration_since(at) >= PROGRESS_EVERY);
        if due || sent >= total {
            self.upload_published = Some(now);
            self.bus.publish(Event::UploadProgress {
                job_id: self.job_id,
                sent_bytes: sent as f64,
                total_bytes: total as f64,
            });
        }
    }

    /// The job this sink belongs to.
    pub fn job_id(&self) -> JobId {
        self.job_id
    }

    /// Moves the job to `stage`, keeping its progress.
    pub fn stage(&mut self, stage: Stage) {
        let progress = self.status.borrow().1;
        self.set(stage, progress);
    }

    /// Moves the job to `stage` with its progress starting again from 0: for a storyteller
    /// whose stages each have their own measure (bytes uploaded, then words written).
    pub fn begin(&mut self, stage: Stage) {
        self.set(stage, 0.0);
    }

    /// Sets overall progress, 0..=1 (clamped; never goes backwards within an attempt).
    pub fn progress(&mut self, fraction: f64) {
        let (stage, current) = *self.status.borrow();
        let fraction = if fraction.is_finite() {
            fraction.clamp(0.0, 1.0)
        } else {
            current
        };
        if fraction > current {
            self.set(stage, fraction);
        }
    }

    fn set(&mut self, stage: Stage, progress: f64) {
        let (shown_stage, _) = self.status.send_replace((stage, progress));
        // A new stage is news at once; progress within a stage goes out at most every
        // PROGRESS_EVERY, which a person cannot tell from smooth, and which keeps a fast
        // storyteller from flooding every window with events.
        let now = std::time::Instant::now();
        let due = self
            .progress_published
            .is_none_or(|at| now.duration_since(at) >= PROGRESS_EVERY);
        if stage == shown_stage && !due && progress < 1.0 {
            return;
        }
        self.progress_published = Some(now);
        self.bus.publish(Event::JobUpdated {
            job_id: self.job_id,
            state: crate::job::JobState::Running,
            stage,
            progress,
            attempts: self.attempts,
            error: None,
        });
    }

    /// Appends story text and streams it to subscribers.
    pub fn write(&mut self, text: &str) {
        if text.is_empty() {
            return;
        }
        self.text.push_str(text);
        let offset = self.utf16_len;
        let added = u32::try_from(text.encode_utf16().count()).unwrap_or(u32::MAX);
        self.utf16_len = self.utf16_len.saturating_add(added);
        self.bus.publish(Event::StoryDelta {
            job_id: self.job_id,
            attempt: self.attempts,
            offset,
            text: text.to_owned(),
        });
    }

    /// Records media facts (probe results) to store with the job.
    pub fn media(&mut self, facts: serde_json::Value) {
        self.media = Some(facts);
    }

    /// The story written so far.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The media facts recorded, if any.
    pub fn media_facts(&self) -> Option<&serde_json::Value> {
        self.media.as_ref()
    }

    /// Follows the latest (stage, progress) without cloning every update.
    pub fn watch_status(&self) -> watch::Receiver<(Stage, f64)> {
        self.status.subscribe()
    }

    /// Where this job's work so far is saved.
    pub fn checkpointer(&self) -> Checkpointer {
        self.checkpoints.clone()
    }

    /// Follows the latest checkpoint saved.
    pub fn watch_checkpoints(&self) -> watch::Receiver<Option<Arc<serde_json::Value>>> {
        self.checkpoints.latest.subscribe()
    }

    /// Takes the story and media facts out of the sink.
    pub fn into_parts(self) -> (String, Option<serde_json::Value>) {
        (self.text, self.media)
    }
}

/// The storytellers a pool can use, by name. Every clone is the same registry: a storyteller
/// replaced (its settings changed) is the one the next job gets, while jobs under way finish
/// with the one they started with.
#[derive(Clone, Default)]
pub struct StorytellerRegistry {
    // std RwLock: held to look up or swap an `Arc`, never across an await.
    by_name: Arc<std::sync::RwLock<BTreeMap<String, Arc<dyn Storyteller>>>>,
}

impl StorytellerRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) a storyteller under its own name.
    pub fn register(&mut self, storyteller: Arc<dyn Storyteller>) -> &mut Self {
        self.replace(storyteller);
        self
    }

    /// Puts `storyteller` in place of the one of the same name, in every clone.
    pub fn replace(&self, storyteller: Arc<dyn Storyteller>) {
        if let Ok(mut by_name) = self.by_name.write() {
            by_name.insert(storyteller.name().to_owned(), storyteller);
        }
    }

    /// The storyteller called `name`.
    pub fn get(&self, name: &str) -> Option<Arc<dyn Storyteller>> {
        self.by_name.read().ok()?.get(name).cloned()
    }

    /// Every registered name, sorted.
    pub fn names(&self) -> Vec<String> {
        self.by_name
            .read()
            .map(|by_name| by_name.keys().cloned().collect())
            .unwrap_or_default()
    }
}

impl std::fmt::Debug for StorytellerRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn wishes_count_in_the_estimate_of_a_storyteller_that_spends_tokens() {
        use crate::job::Style;
        let guess = |input, output| TokenEstimate {
            usage: Usage {
                input_tokens: input,
                output_tokens: output,
                ..Usage::default()
            },
            requests: 1,
            note: None,
        };
        // Nothing is spent offline, wishes or not.
        let style = Style::new(Some(&"x".repeat(400)), Some(300), Some("French")).unwrap();
        assert_eq!(with_style(guess(0, 0), &style), guess(0, 0));
        // A plain style keeps the preset's figure.
        assert_eq!(
            with_style(guess(5000, 600), &Style::default())
                .usage
                .output_tokens,
            600
        );
        let wished = with_style(guess(5000, 600), &style).usage;
        assert_eq!(wished.input_tokens, 5100);
        assert_eq!(wished.output_tokens, 840);
        let english = Style::new(None, Some(1000), None).unwrap();
        assert_eq!(
            with_style(guess(5000, 120), &english).usage.output_tokens,
            1400
        );
    }

    #[test]
    fn errors_map_to_story_errors() {
        let path = PathBuf::from("/v/clip.mp4");
        let permanent = [
            MediaError::FileMissing { path: path.clone() },
            MediaError::EmptyFile { path: path.clone() },
            MediaError::NotVideo {
                path: path.clone(),
                reason: "it contains text, not video".into(),
            },
            MediaError::Corrupt {
                path: path.clone(),
                reason: "cut short".into(),
            },
            MediaError::NoVideoStream {
                path: path.clone(),
                has_audio: false,
            },
            MediaError::ZeroDuration { path: path.clone() },
        ];
        for error in permanent {
            assert!(
                matches!(StoryError::from(&error), StoryError::Permanent { .. }),
                "{error}"
            );
        }
        let gone = MediaError::FileMissing { path: path.clone() };
        assert_eq!(
            StoryError::from(gone).to_string(),
            "the file is gone: /v/clip.mp4"
        );
        let thumbs = MediaError::Thumbnails {
            path: path.clone(),
            message: "disk full".into(),
        };
        assert!(matches!(
            StoryError::from(&thumbs),
            StoryError::Transient { .. }
        ));
        let missing = MediaError::ToolMissing {
            tool: "ffprobe",
            message: "x".into(),
        };
        assert!(matches!(
            StoryError::from(&missing),
            StoryError::Setup { .. }
        ));
        assert_eq!(
            MediaError::EmptyFile { path }.to_string(),
            "clip.mp4 is empty (0 bytes), so there is no video in it"
        );
    }

    #[test]
    fn progress_is_published_about_ten_times_a_second_and_every_stage_at_once() {
        let bus = EventBus::new();
        let mut events = bus.subscribe();
        let mut sink = StorySink::new(JobId::new(), 1, bus);
        sink.stage(Stage::Analysing);
        let started = std::time::Instant::now();
        let mut calls = 0u32;
        while started.elapsed() < std::time::Duration::from_millis(350) {
            calls += 1;
            sink.progress(f64::from(calls) / 1e9);
        }
        sink.stage(Stage::Writing);
        sink.progress(1.0);
        let mut published = Vec::new();
        while let Some(envelope) = events.try_recv() {
            if let Event::JobUpdated {
                stage, progress, ..
            } = envelope.event
            {
                published.push((stage, progress));
            }
        }
        assert!(calls > 1_000, "the loop reported {calls} times");
        // The first report, then one every 100 ms: 4 or 5 in 350 ms, not thousands.
        let analysing = published
            .iter()
            .filter(|(stage, _)| *stage == Stage::Analysing)
            .count();
        assert!((3..=6).contains(&analysing), "{analysing} of {calls}");
        // A new stage and the end go out at once, and the last word is what the sink holds.
        assert_eq!(published.last(), Some(&(Stage::Writing, 1.0)));
        assert!(published.contains(&(Stage::Writing, f64::from(calls) / 1e9)));
        assert_eq!(*sink.status.borrow(), (Stage::Writing, 1.0));
    }

    #[test]
    fn deltas_carry_their_attempt_and_utf16_offset() {
        let bus = EventBus::new();
        let mut events = bus.subscribe();
        let mut sink = StorySink::new(JobId::new(), 2, bus);
        sink.write("Où ");
        sink.write("🎬 ");
        sink.write("end");
        let mut rebuilt: Vec<u16> = Vec::new();
        while let Some(envelope) = events.try_recv() {
            if let Event::StoryDelta {
                attempt,
                offset,
                text,
                ..
            } = envelope.event
            {
                assert_eq!(attempt, 2);
                assert_eq!(offset as usize, rebuilt.len(), "no gap, no overlap");
                rebuilt.extend(text.encode_utf16());
            }
        }
        assert_eq!(String::from_utf16(&rebuilt).unwrap(), "Où 🎬 end");
        assert_eq!(sink.text(), "Où 🎬 end");
    }
}
