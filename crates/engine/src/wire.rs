//! The wire model: the types front ends see — the desktop window over IPC, `--json` output,
//! and the event stream — made for them and kept apart from storage rows.
//!
//! Conventions, the same in every type:
//! - field names are camelCase; enums are lower-case words (`"queued"`, `"high"`);
//! - no 64-bit integers (TypeScript generators refuse them or make them `BigInt`): counts and
//!   offsets are `u32`, byte sizes and other large numbers `f64` (exact up to 2^53);
//! - every time is an ISO-8601 UTC string with milliseconds, e.g. `"2026-11-23T02:03:14.123Z"`;
//! - ids are full lower-case UUID strings; `shortId` is the last 8 digits (what `list` prints);
//! - nothing internal crosses: no lease owners, cache keys, fair keys or untyped JSON.
//!
//! A job looks like this (fields that are `null` until they happen are shown so):
//!
//! ```json
//! { "id": "019ad3f2-8c1e-7b2a-9f00-3c5d2a1b4e6f", "shortId": "2a1b4e6f",
//!   "file": "clip.mp4", "source": "/videos/clip.mp4",
//!   "state": "succeeded", "stage": "done", "progress": 1.0, "attempts": 1,
//!   "priority": "normal", "batchId": "019ad3f2-8c1d-7e00-8a00-0b1c2d3e4f50",
//!   "storyteller": "offline", "model": "offline-analyser-4", "preset": "narrative",
//!   "style": { "prompt": null, "words": null, "language": null },
//!   "cached": false, "noCache": false, "story": "This video runs for …",
//!   "error": null, "sizeBytes": 183264.0, "contentHash": "9f2c…",
//!   "media": { "durationSecs": 3.0, "container": "QuickTime / MOV", "title": null,
//!              "recordedAt": null, "bitRate": 488704.0,
//!              "video": { "codec": "h264", "width": 320, "height": 180, "fps": 25.0, "rotation": 0 },
//!              "audio": { "codec": "aac", "sampleRate": 44100, "channels": 1, "channelLayout": "mono" } },
//!   "usage": { "inputTokens": 0, "outputTokens": 0, "costUsd": 0.0 },
//!   "runAfter": null, "createdAt": "2026-11-23T02:03:14.123Z", "updatedAt": "…",
//!   "startedAt": "…", "finishedAt": "…", "folder": null }
//! ```
//!
//! The events are in [`crate::event`]; errors cross as [`ErrorPayload`] `{ "code", "message" }`.

pub use crate::error::ErrorPayload;
use crate::job::{iso8601, BatchId, Job, JobError, JobId, JobState, Priority, Stage, Style};
use crate::media::MediaInfo;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The short id people see: the last 8 hex digits. A UUID v7 starts with its timestamp, shared
/// by every job added in the same moment; its tail is random, so it tells them apart.
pub fn short_id(id: JobId) -> String {
    let mut buffer = Uuid::encode_buffer();
    let full = id.0.hyphenated().encode_lower(&mut buffer);
    full[full.len() - 8..].to_owned()
}

/// A path as text for people and front ends: exact when the name is UTF-8 (nearly always); a
/// byte that is not UTF-8 is written `\xNN`, so two different names never look the same, and
/// a backslash stays as it is. Commands name jobs by id, never by this text.
pub fn display_path(path: &std::path::Path) -> String {
    if let Some(text) = path.to_str() {
        return text.to_owned();
    }
    #[cfg(unix)]
    {
        use std::fmt::Write;
        use std::os::unix::ffi::OsStrExt;
        let mut text = String::new();
        for chunk in path.as_os_str().as_bytes().utf8_chunks() {
            text.push_str(chunk.valid());
            for byte in chunk.invalid() {
                let _ = write!(text, "\\x{byte:02x}");
            }
        }
        text
    }
    #[cfg(not(unix))]
    {
        path.to_string_lossy().into_owned()
    }
}

/// One job as a front end sees it.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobView {
    /// The full id.
    pub id: JobId,
    /// The last 8 digits of the id.
    pub short_id: String,
    /// The file's name.
    pub file: String,
    /// The whole path of the video, as [`display_path`] writes it.
    pub source: String,
    /// Life-cycle state.
    pub state: JobState,
    /// What it is doing.
    pub stage: Stage,
    /// 0..=1 within the whole job.
    pub progress: f64,
    /// How many times a worker has taken it up.
    pub attempts: u32,
    /// Scheduling class.
    pub priority: Priority,
    /// The batch it was added with.
    pub batch_id: BatchId,
    /// The storyteller's name.
    pub storyteller: String,
    /// The model it uses.
    pub model: String,
    /// The preset.
    pub preset: String,
    /// What was asked beyond the preset (instructions, length, language).
    pub style: Style,
    /// Whether the story came from an identical video told before.
    pub cached: bool,
    /// Whether the result cache was bypassed.
    pub no_cache: bool,
    /// The story, once written.
    pub story: Option<String>,
    /// The last error, if any.
    pub error: Option<JobError>,
    /// Size of the file when it was added.
    pub size_bytes: f64,
    /// blake3 of the file's content (hex); names its thumbnail folder.
    pub content_hash: String,
    /// What the video is, once probed.
    pub media: Option<MediaView>,
    /// Tokens and cost.
    pub usage: UsageView,
    /// Not started again before this time (a job waiting to retry).
    pub run_after: Option<String>,
    /// Added.
    pub created_at: String,
    /// Last changed.
    pub updated_at: String,
    /// First taken up.
    pub started_at: Option<String>,
    /// Finished.
    pub finished_at: Option<String>,
    /// The watched folder it came from, if it came from one.
    pub folder: Option<String>,
}

impl From<&Job> for JobView {
    fn from(job: &Job) -> Self {
        JobView {
            id: job.id,
            short_id: short_id(job.id),
            file: job.file_name(),
            source: display_path(&job.source),
            state: job.state,
            stage: job.stage,
            progress: job.progress,
            attempts: job.attempts,
            priority: job.priority,
            batch_id: job.batch_id,
            storyteller: job.storyteller.clone(),
            model: job.model.clone(),
            preset: job.preset.clone(),
            style: job.style.clone(),
            cached: job.cached,
            no_cache: job.no_cache,
            story: job.story.clone(),
            error: job.error.clone(),
            size_bytes: job.size as f64,
            content_hash: job.content_hash.clone(),
            media: job
                .media
                .as_ref()
                .and_then(|facts| serde_json::from_value::<MediaInfo>(facts.clone()).ok())
                .map(|info| MediaView::from(&info)),
            usage: UsageView {
                input_tokens: saturate(job.usage.input_tokens),
                audio_input_tokens: saturate(job.usage.audio_input_tokens),
                output_tokens: saturate(job.usage.output_tokens),
                cost_usd: job.usage.cost_usd(),
            },
            run_after: (job.run_after_ms > 0).then(|| iso8601(job.run_after_ms)),
            created_at: iso8601(job.created_at_ms),
            updated_at: iso8601(job.updated_at_ms),
            started_at: job.started_at_ms.map(iso8601),
            finished_at: job.finished_at_ms.map(iso8601),
            folder: job.watched_folder.as_deref().map(display_path),
        }
    }
}

impl From<Job> for JobView {
    fn from(job: Job) -> Self {
        JobView::from(&job)
    }
}

/// A count that fits the wire (saturating at `u32::MAX`).
pub fn saturate(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// What a video file is: container, picture and sound.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MediaView {
    /// Length in seconds.
    pub duration_secs: f64,
    /// The container, in words (`QuickTime / MOV`).
    pub container: String,
    /// The title in the file's metadata.
    pub title: Option<String>,
    /// When it was recorded, as the file says.
    pub recorded_at: Option<String>,
    /// Overall bit rate in bits per second.
    pub bit_rate: Option<f64>,
    /// The picture.
    pub video: VideoView,
    /// The sound, if there is any.
    pub audio: Option<AudioView>,
}

/// The picture of a video.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VideoView {
    /// Codec (`h264`, `hevc`, …).
    pub codec: String,
    /// Width as shown (after rotation), in pixels.
    pub width: u32,
    /// Height as shown, in pixels.
    pub height: u32,
    /// Frames per second.
    pub fps: Option<f64>,
    /// Degrees the picture is turned for display.
    pub rotation: u32,
}

/// The sound of a video.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AudioView {
    /// Codec (`aac`, `opus`, …).
    pub codec: String,
    /// Samples per second.
    pub sample_rate: Option<u32>,
    /// Channels.
    pub channels: Option<u32>,
    /// Channel layout (`stereo`, `5.1`, …).
    pub channel_layout: Option<String>,
}

impl From<&MediaInfo> for MediaView {
    fn from(info: &MediaInfo) -> Self {
        let (width, height) = info.video.display_size();
        MediaView {
            duration_secs: info.duration_secs,
            container: info
                .format_long_name
                .clone()
                .unwrap_or_else(|| info.format_name.clone()),
            title: info.title.clone(),
            recorded_at: info.creation_time.clone(),
            bit_rate: info.bit_rate.map(|b| b as f64),
            video: VideoView {
                codec: info.video.codec.clone(),
                width,
                height,
                fps: info.video.fps,
                rotation: info.video.rotation,
            },
            audio: info.audio.as_ref().map(|audio| AudioView {
                codec: audio.codec.clone(),
                sample_rate: audio.sample_rate,
                channels: audio.channels,
                channel_layout: audio.channel_layout.clone(),
            }),
        }
    }
}

/// Tokens and money one story cost.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageView {
    /// Tokens sent to the model (sound included).
    pub input_tokens: u32,
    /// Of those, the tokens of sound, where the provider counts them apart.
    pub audio_input_tokens: u32,
    /// Tokens the model wrote.
    pub output_tokens: u32,
    /// In US dollars (0 offline): kept in whole millionths, so exact to the micro-dollar.
    pub cost_usd: f64,
}

impl From<&crate::job::Usage> for UsageView {
    fn from(usage: &crate::job::Usage) -> Self {
        UsageView {
            input_tokens: saturate(usage.input_tokens),
            audio_input_tokens: saturate(usage.audio_input_tokens),
            output_tokens: saturate(usage.output_tokens),
            cost_usd: usage.cost_usd(),
        }
    }
}

/// A storyteller that starts no jobs for now, and why; the other storytellers go on.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StorytellerPauseView {
    /// The storyteller.
    pub storyteller: String,
    /// What happened and what to do, for people.
    pub reason: String,
    /// Why, for front ends to branch on (auth, quota, model, unreachable, spending, paused).
    pub kind: PauseKind,
    /// When it goes on by itself (ISO 8601), if it does.
    pub until: Option<String>,
    /// Jobs of this storyteller waiting meanwhile.
    pub queued: u32,
}

/// Why a storyteller is paused.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PauseKind {
    /// Paused by the person.
    Person,
    /// Its key was refused.
    Auth,
    /// Its quota is spent until a time.
    Quota,
    /// Its model is not there.
    Model,
    /// Its service is not running or not reachable.
    Unreachable,
    /// Its spending cap is reached.
    Spending,
}

impl PauseKind {
    /// The name stored.
    pub fn as_str(self) -> &'static str {
        match self {
            PauseKind::Person => "person",
            PauseKind::Auth => "auth",
            PauseKind::Quota => "quota",
            PauseKind::Model => "model",
            PauseKind::Unreachable => "unreachable",
            PauseKind::Spending => "spending",
        }
    }

    /// The kind stored as `name`; an unknown one (written by a newer build) is the person's.
    pub fn parse(name: &str) -> PauseKind {
        [
            PauseKind::Auth,
            PauseKind::Quota,
            PauseKind::Model,
            PauseKind::Unreachable,
            PauseKind::Spending,
        ]
        .into_iter()
        .find(|kind| kind.as_str() == name)
        .unwrap_or(PauseKind::Person)
    }
}

/// Counts of jobs per state, result-cache figures, what was spent, and whether the queue is
/// paused.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueStats {
    /// Jobs waiting.
    pub queued: u32,
    /// Jobs being worked on.
    pub running: u32,
    /// Jobs with a story.
    pub succeeded: u32,
    /// Jobs failed for good.
    pub dead: u32,
    /// Jobs stopped by the person.
    pub cancelled: u32,
    /// Jobs whose story came from the result cache.
    pub cache_hits: u32,
    /// Jobs that looked in the cache and had to be written afresh.
    pub cache_misses: u32,
    /// Why the queue is paused, when it is.
    pub paused: Option<String>,
    /// Storytellers paused on their own (the rest of the queue goes on).
    pub paused_storytellers: Vec<StorytellerPauseView>,
    /// US dollars spent today (local time), every storyteller, every attempt.
    pub spent_today_usd: f64,
    /// US dollars spent this calendar month.
    pub spent_this_month_usd: f64,
}

impl QueueStats {
    /// Every job in the store.
    pub fn total(&self) -> u32 {
        self.queued
            .saturating_add(self.running)
            .saturating_add(self.succeeded)
            .saturating_add(self.dead)
            .saturating_add(self.cancelled)
    }

    /// Jobs that have finished (succeeded, dead or cancelled).
    pub fn finished(&self) -> u32 {
        self.succeeded
            .saturating_add(self.dead)
            .saturating_add(self.cancelled)
    }
}

/// What became of one path given to [`Engine::add`](crate::Engine::add).
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum AddOutcome {
    /// A new job, waiting its turn.
    Queued,
    /// A new job whose story came at once from an identical video told before.
    Cached,
    /// A job for this file (same path, size, time and storyteller) is already queued, running
    /// or done; no second job was made.
    AlreadyAdded,
    /// Not a job: the file cannot be a video (missing, empty, unreadable, not a video).
    Refused,
    /// A file in a folder passed over because it is not a video (not an error).
    Skipped,
}

/// One path's line in an [`AddReport`].
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AddEntry {
    /// The file (or folder) as given or found.
    pub path: String,
    /// What came of it.
    pub outcome: AddOutcome,
    /// The job (new or already there), when there is one.
    pub job: Option<JobView>,
    /// Why it was refused or skipped.
    pub reason: Option<String>,
}

/// One thing `doctor` looked at.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DoctorCheck {
    /// What was checked: `ffmpeg`, `database`, or a storyteller's name.
    pub subject: String,
    /// Whether it is fine.
    pub ok: bool,
    /// What was found, or what is wrong and how to fix it.
    pub message: String,
    /// For a storyteller: the model checked.
    pub model: Option<String>,
    /// Whether the app needs it as things are: the tools, the database and the storyteller new
    /// jobs get (another storyteller not set up is only for information).
    pub needed: bool,
}

/// What `doctor` found.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DoctorReport {
    /// Every check, tools first.
    pub checks: Vec<DoctorCheck>,
    /// Whether every needed check passed.
    pub ready: bool,
}

/// What telling one video is expected to take, before anything is sent.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VideoEstimate {
    /// The file.
    pub path: String,
    /// Its length, when it could be read.
    pub duration_secs: Option<f64>,
    /// Tokens it is expected to read (sound included).
    pub input_tokens: f64,
    /// Of those, the sound's.
    pub audio_input_tokens: f64,
    /// Tokens the story is expected to take.
    pub output_tokens: f64,
    /// What that comes to, in US dollars.
    pub cost_usd: f64,
    /// The requests it takes to the storyteller's service (0 when told on this machine).
    pub requests: u32,
    /// What to know about the figures (a video sent reduced, thinking billed as output).
    pub note: Option<String>,
    /// Why the file could not be estimated (not a video, unreadable): it would fail its job.
    pub error: Option<String>,
}

/// What telling a set of videos is expected to cost and take, at the current limits.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EstimateReport {
    /// Who would tell them.
    pub storyteller: String,
    /// With which model.
    pub model: String,
    /// And which preset.
    pub preset: String,
    /// Each video.
    pub videos: Vec<VideoEstimate>,
    /// Paths that are not videos to tell, with why.
    pub refused: Vec<AddEntry>,
    /// The tokens, all videos together.
    pub input_tokens: f64,
    /// The story tokens, all videos together.
    pub output_tokens: f64,
    /// The cost, all videos together, in US dollars.
    pub cost_usd: f64,
    /// Whether the model has a price (else the cost is 0 because it is not known).
    pub priced: bool,
    /// The requests to the storyteller's service, all videos together.
    pub requests: u32,
    /// How long telling them all is expected to take, in seconds.
    pub expected_secs: f64,
    /// How that time was worked out, for people.
    pub time_basis: String,
}

impl From<crate::intake::Refusal> for AddEntry {
    /// A path refused, or a non-video passed over in a folder.
    fn from(refusal: crate::intake::Refusal) -> Self {
        AddEntry {
            path: display_path(&refusal.path),
            outcome: if refusal.skipped {
                AddOutcome::Skipped
            } else {
                AddOutcome::Refused
            },
            job: None,
            reason: Some(refusal.reason),
        }
    }
}

/// What adding a set of paths did, path by path.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AddReport {
    /// The batch the new jobs joined, when any were made.
    pub batch_id: Option<BatchId>,
    /// One entry per video found or path refused, in the order they were given and found.
    pub entries: Vec<AddEntry>,
    /// Files not read again because their content hash was already known for them as they are
    /// (from another job for the file, or an earlier add stopped before it queued them).
    pub reused_hashes: u32,
}

impl AddReport {
    /// The entries with `outcome`.
    pub fn with(&self, outcome: AddOutcome) -> impl Iterator<Item = &AddEntry> {
        self.entries.iter().filter(move |e| e.outcome == outcome)
    }

    /// The jobs made by this add (queued or cached).
    pub fn new_jobs(&self) -> impl Iterator<Item = &JobView> {
        self.entries
            .iter()
            .filter(|e| matches!(e.outcome, AddOutcome::Queued | AddOutcome::Cached))
            .filter_map(|e| e.job.as_ref())
    }

    /// Every job the paths stand for, new or already there.
    pub fn jobs(&self) -> impl Iterator<Item = &JobView> {
        self.entries.iter().filter_map(|e| e.job.as_ref())
    }

    /// Whether any path was refused (skipped non-videos do not count).
    pub fn any_refused(&self) -> bool {
        self.with(AddOutcome::Refused).next().is_some()
    }
}

/// Progress of an add while files are hashed.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AddProgress {
    /// Files hashed so far.
    pub hashed: u32,
    /// Files to hash in all.
    pub total: u32,
    /// Bytes of the files hashed so far (a float: sizes pass 2^32).
    pub hashed_bytes: f64,
    /// Bytes of all the files to hash.
    pub total_bytes: f64,
}

/// Which end of the queue a listing starts from.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ListOrder {
    /// Oldest first (the order they were added).
    #[default]
    OldestFirst,
    /// Newest first.
    NewestFirst,
}

/// Which jobs a listing returns, one page at a time.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ListQuery {
    /// Only jobs in this state.
    pub state: Option<JobState>,
    /// Only jobs of this batch.
    pub batch_id: Option<BatchId>,
    /// Only jobs of this storyteller.
    pub storyteller: Option<String>,
    /// Oldest or newest first.
    pub order: ListOrder,
    /// Start after this job (the `next` of the previous page).
    pub after: Option<JobId>,
    /// At most this many (all when not given).
    pub limit: Option<u32>,
    /// Leave the stories out (`story` is `null`): a long history lists fast, and each story
    /// is read when it is shown.
    pub without_stories: bool,
}

/// One page of a listing.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobPage {
    /// The jobs, in the order asked for.
    pub jobs: Vec<JobView>,
    /// Pass as `after` for the next page; `null` on the last page.
    pub next: Option<JobId>,
}

/// A search of the history: every story told, and its file name.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SearchQuery {
    /// What was typed: every word must be found, each also as the start of a longer word,
    /// case and accents aside.
    pub text: String,
    /// At most this many hits (50 when not given).
    pub limit: Option<u32>,
}

/// A job whose story or file name matches a search.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchHit {
    /// The job, without its story (`story` is `null`; `snippet` shows the part that matched).
    pub job: JobView,
    /// A line of the story around the first word found.
    pub snippet: String,
}

/// A storyteller the app has: what a settings screen or `--storyteller` may choose.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StorytellerInfo {
    /// The name jobs refer to it by.
    pub name: String,
    /// The model used when none is named.
    pub default_model: String,
    /// The models it can use.
    pub models: Vec<String>,
    /// Its presets, the default first.
    pub presets: Vec<String>,
}

/// How waiting for a set of jobs ended.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "camelCase")]
pub enum WaitOutcome {
    /// Every job has finished (or been removed).
    Finished,
    /// The queue paused while some were still waiting.
    Paused {
        /// Why.
        reason: String,
    },
    /// Every job still waiting is of a storyteller that is paused (its key refused, its
    /// service not running, …); the rest of the queue goes on.
    StorytellerPaused {
        /// What each pause says.
        reason: String,
    },
    /// The wait was interrupted (its cancel fired) first.
    Interrupted,
}

/// Which jobs an export holds.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ExportQuery {
    /// Only the stories of this batch.
    pub batch_id: Option<BatchId>,
    /// Only these jobs.
    pub ids: Option<Vec<JobId>>,
}

/// How the jobs made by an add should be told; anything not given comes from the settings.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AddOptions {
    /// Which storyteller.
    pub storyteller: Option<String>,
    /// Which of its models.
    pub model: Option<String>,
    /// Which of its presets.
    pub preset: Option<String>,
    /// Instructions of the person's own, on top of the preset's.
    pub prompt: Option<String>,
    /// About how many words the story should have (the preset's length when not given).
    pub words: Option<u32>,
    /// The language to write in (English when not given).
    pub language: Option<String>,
    /// Scheduling class.
    pub priority: Option<Priority>,
    /// Write fresh stories even for videos told before.
    pub no_cache: bool,
    /// Make new jobs even for files that already have one.
    pub again: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Envelope, Event};
    use crate::job::{ErrorKind, Usage};
    use serde::de::DeserializeOwned;
    use serde_json::{json, Value};
    use std::path::PathBuf;

    #[test]
    fn paths_show_exactly_and_bytes_that_are_not_text_show_escaped() {
        use std::os::unix::ffi::OsStrExt;
        let plain = std::path::Path::new("/v/été \\ 🌊.mp4");
        assert_eq!(display_path(plain), "/v/été \\ 🌊.mp4");
        let odd = std::path::Path::new(std::ffi::OsStr::from_bytes(b"/v/a\xff\xfeb.mp4"));
        assert_eq!(display_path(odd), "/v/a\\xff\\xfeb.mp4");
        // A truncated multi-byte character is its bytes, not a replacement character.
        let cut = std::path::Path::new(std::ffi::OsStr::from_bytes(b"/v/\xc3.mp4"));
        assert_eq!(display_path(cut), "/v/\\xc3.mp4");
    }

    /// Serialises `value`, checks it reads back the same and has exactly the `expected` JSON.
    fn round_trip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(
        value: &T,
        expected: Value,
    ) {
        let json = serde_json::to_value(value).unwrap();
        assert_eq!(json, expected, "the JSON differs from the documented shape");
        let back: T = serde_json::from_value(json).unwrap();
        assert_eq!(&back, value, "does not read back the same");
        assert_no_big_integers(&serde_json::to_value(value).unwrap());
    }

    /// No number on the wire is an integer JavaScript cannot hold exactly.
    fn assert_no_big_integers(value: &Value) {
        match value {
            Value::Number(n) => {
                if let Some(i) = n.as_u64() {
                    assert!(i <= (1 << 53), "{i} does not fit a JavaScript number");
                }
            }
            Value::Array(items) => items.iter().for_each(assert_no_big_integers),
            Value::Object(fields) => {
                for (key, value) in fields {
                    assert!(!key.contains('_'), "`{key}` is not camelCase");
                    assert_no_big_integers(value);
                }
            }
            _ => {}
        }
    }

    fn id(n: u128) -> JobId {
        JobId(uuid::Uuid::from_u128(
            0x019a_d3f2_8c1e_7b2a_9f00_3c5d_0000_0000 + n,
        ))
    }

    fn sample_job() -> Job {
        let media = json!({
            "duration_secs": 3.0, "format_name": "mov,mp4,m4a,3gp,3g2,mj2",
            "format_long_name": "QuickTime / MOV", "size_bytes": 183264, "bit_rate": 488704,
            "creation_time": null, "title": null,
            "video": { "index": 0, "codec": "h264", "width": 320, "height": 180, "fps": 25.0,
                       "rotation": 0, "pixel_format": "yuv420p" },
            "audio": { "index": 1, "codec": "aac", "sample_rate": 44100, "channels": 1,
                       "channel_layout": "mono" }
        });
        Job {
            id: id(1),
            source: PathBuf::from("/videos/clip.mp4"),
            size: 183_264,
            mtime_ms: 1_795_399_000_000,
            content_hash: "9f2c".into(),
            media: Some(media),
            storyteller: "offline".into(),
            model: "offline-analyser-4".into(),
            preset: "narrative".into(),
            style: Style::default(),
            priority: Priority::Normal,
            batch_id: BatchId(uuid::Uuid::from_u128(7)),
            state: JobState::Succeeded,
            stage: Stage::Done,
            progress: 1.0,
            attempts: 1,
            run_after_ms: 0,
            lease_owner: Some("pid1-abc".into()),
            lease_expires_ms: Some(5),
            error: None,
            story: Some("This video runs for 3 seconds.".into()),
            cached: false,
            no_cache: false,
            usage: Usage {
                input_tokens: 12,
                audio_input_tokens: 2,
                output_tokens: u64::MAX,
                cost_micro_usd: 250_000,
            },
            created_at_ms: 1_795_399_394_123,
            updated_at_ms: 1_795_399_395_000,
            started_at_ms: Some(1_795_399_394_500),
            finished_at_ms: Some(1_795_399_395_000),
            watched_folder: Some("/media/camera".into()),
            checkpoint: None,
        }
    }

    fn sample_view_json() -> Value {
        json!({
            "id": "019ad3f2-8c1e-7b2a-9f00-3c5d00000001", "shortId": "00000001",
            "file": "clip.mp4", "source": "/videos/clip.mp4",
            "state": "succeeded", "stage": "done", "progress": 1.0, "attempts": 1,
            "priority": "normal", "batchId": "00000000-0000-0000-0000-000000000007",
            "storyteller": "offline", "model": "offline-analyser-4", "preset": "narrative",
            "style": { "prompt": null, "words": null, "language": null },
            "cached": false, "noCache": false, "story": "This video runs for 3 seconds.",
            "error": null, "sizeBytes": 183264.0, "contentHash": "9f2c",
            "media": { "durationSecs": 3.0, "container": "QuickTime / MOV", "title": null,
                       "recordedAt": null, "bitRate": 488704.0,
                       "video": { "codec": "h264", "width": 320, "height": 180, "fps": 25.0,
                                  "rotation": 0 },
                       "audio": { "codec": "aac", "sampleRate": 44100, "channels": 1,
                                  "channelLayout": "mono" } },
            "usage": { "inputTokens": 12, "audioInputTokens": 2, "outputTokens": 4294967295_u32,
                       "costUsd": 0.25 },
            "runAfter": null, "createdAt": "2026-11-23T02:03:14.123Z",
            "updatedAt": "2026-11-23T02:03:15.000Z", "startedAt": "2026-11-23T02:03:14.500Z",
            "finishedAt": "2026-11-23T02:03:15.000Z", "folder": "/media/camera"
        })
    }

    #[test]
    fn a_job_crosses_as_the_documented_json_without_storage_internals() {
        let view = JobView::from(&sample_job());
        round_trip(&view, sample_view_json());
        let text = serde_json::to_string(&view).unwrap();
        for internal in ["pid1-abc", "lease", "fair", "cacheKey", "mtime"] {
            assert!(!text.contains(internal), "{internal} leaked: {text}");
        }
    }

    #[test]
    fn every_event_round_trips_in_its_envelope() {
        let view = JobView::from(&sample_job());
        let error = JobError {
            kind: ErrorKind::Transient,
            message: "timed out".into(),
        };
        let job = id(1).to_string();
        let cases = vec![
            (
                Event::JobsAdded {
                    batch_id: view.batch_id,
                    jobs: vec![view.clone()].into(),
                },
                json!({ "type": "jobsAdded", "batchId": view.batch_id, "jobs": [sample_view_json()] }),
            ),
            (
                Event::JobUpdated {
                    job_id: id(1),
                    state: JobState::Queued,
                    stage: Stage::Waiting,
                    progress: 0.0,
                    attempts: 2,
                    error: Some(error.clone()),
                },
                json!({ "type": "jobUpdated", "jobId": job, "state": "queued", "stage": "waiting",
                        "progress": 0.0, "attempts": 2,
                        "error": { "kind": "transient", "message": "timed out" } }),
            ),
            (
                Event::StoryDelta {
                    job_id: id(1),
                    attempt: 2,
                    offset: 15,
                    text: " for 3 seconds.".into(),
                },
                json!({ "type": "storyDelta", "jobId": job, "attempt": 2, "offset": 15,
                        "text": " for 3 seconds." }),
            ),
            (
                Event::JobFinished {
                    job_id: id(1),
                    state: JobState::Dead,
                    cached: false,
                    error: Some(error),
                },
                json!({ "type": "jobFinished", "jobId": job, "state": "dead", "cached": false,
                        "error": { "kind": "transient", "message": "timed out" } }),
            ),
            (
                Event::PriorityChanged {
                    job_id: id(1),
                    priority: Priority::High,
                },
                json!({ "type": "priorityChanged", "jobId": job, "priority": "high" }),
            ),
            (
                Event::JobsRemoved {
                    job_ids: vec![id(1), id(2)],
                },
                json!({ "type": "jobsRemoved", "jobIds": [job, id(2).to_string()] }),
            ),
            (
                Event::QueueStats {
                    stats: QueueStats {
                        queued: 1,
                        succeeded: 2,
                        cache_misses: 2,
                        paused: Some("holiday".into()),
                        ..QueueStats::default()
                    },
                },
                json!({ "type": "queueStats", "stats": { "queued": 1, "running": 0,
                        "succeeded": 2, "dead": 0, "cancelled": 0, "cacheHits": 0,
                        "cacheMisses": 2, "paused": "holiday", "pausedStorytellers": [],
                        "spentTodayUsd": 0.0, "spentThisMonthUsd": 0.0 } }),
            ),
            (
                Event::QueuePaused {
                    reason: "holiday".into(),
                },
                json!({ "type": "queuePaused", "reason": "holiday" }),
            ),
            (Event::QueueResumed, json!({ "type": "queueResumed" })),
            (
                Event::ConcurrencyChanged { concurrency: 4 },
                json!({ "type": "concurrencyChanged", "concurrency": 4 }),
            ),
            (Event::SettingsChanged, json!({ "type": "settingsChanged" })),
            (
                Event::JobMoved {
                    job_id: id(1),
                    source: "/media/camera/done/a.mp4".into(),
                },
                json!({ "type": "jobMoved", "jobId": job, "source": "/media/camera/done/a.mp4" }),
            ),
            (
                Event::WatchedFoldersChanged,
                json!({ "type": "watchedFoldersChanged" }),
            ),
            (
                Event::WatchedFolderStatus {
                    folder: "/media/camera".into(),
                    status: crate::watcher::watch::WatchStatus::Watching {
                        polling: true,
                        note: None,
                    },
                },
                json!({ "type": "watchedFolderStatus", "folder": "/media/camera",
                        "status": { "state": "watching", "polling": true, "note": null } }),
            ),
            (
                Event::WatchedFolderStatus {
                    folder: "/media/camera".into(),
                    status: crate::watcher::watch::WatchStatus::Missing {
                        reason: "gone".into(),
                    },
                },
                json!({ "type": "watchedFolderStatus", "folder": "/media/camera",
                        "status": { "state": "missing", "reason": "gone" } }),
            ),
            (
                Event::Resync { missed: 1200 },
                json!({ "type": "resync", "missed": 1200 }),
            ),
        ];
        for (seq, (event, mut expected)) in cases.into_iter().enumerate() {
            round_trip(&event, expected.clone());
            let envelope = Envelope {
                seq: seq as f64 + 1.0,
                event,
            };
            expected["seq"] = json!(seq + 1);
            round_trip(&envelope, expected);
        }
    }

    #[test]
    fn reports_queries_and_pages_round_trip() {
        let view = JobView::from(&sample_job());
        round_trip(
            &AddReport {
                batch_id: Some(view.batch_id),
                entries: vec![
                    AddEntry {
                        path: "/videos/clip.mp4".into(),
                        outcome: AddOutcome::AlreadyAdded,
                        job: Some(view.clone()),
                        reason: None,
                    },
                    AddEntry {
                        path: "/videos/notes.txt".into(),
                        outcome: AddOutcome::Skipped,
                        job: None,
                        reason: Some("not a video file".into()),
                    },
                ],
                reused_hashes: 1,
            },
            json!({ "batchId": view.batch_id, "entries": [
                { "path": "/videos/clip.mp4", "outcome": "alreadyAdded", "job": sample_view_json(),
                  "reason": null },
                { "path": "/videos/notes.txt", "outcome": "skipped", "job": null,
                  "reason": "not a video file" } ], "reusedHashes": 1 }),
        );
        round_trip(
            &JobPage {
                jobs: vec![view.clone()],
                next: Some(view.id),
            },
            json!({ "jobs": [sample_view_json()], "next": view.id }),
        );
        round_trip(
            &ListQuery {
                state: Some(JobState::Dead),
                order: ListOrder::NewestFirst,
                limit: Some(50),
                ..ListQuery::default()
            },
            json!({ "state": "dead", "batchId": null, "storyteller": null,
                    "order": "newestFirst", "after": null, "limit": 50,
                    "withoutStories": false }),
        );
        round_trip(
            &AddOptions {
                preset: Some("summary".into()),
                language: Some("French".into()),
                words: Some(120),
                again: true,
                ..AddOptions::default()
            },
            json!({ "storyteller": null, "model": null, "preset": "summary", "prompt": null,
                    "words": 120, "language": "French", "priority": null,
                    "noCache": false, "again": true }),
        );
        round_trip(
            &AddProgress {
                hashed: 3,
                total: 10,
                hashed_bytes: 3.0e9,
                total_bytes: 1.0e10,
            },
            json!({ "hashed": 3, "total": 10, "hashedBytes": 3.0e9, "totalBytes": 1.0e10 }),
        );
        round_trip(
            &WaitOutcome::Paused {
                reason: "key refused".into(),
            },
            json!({ "outcome": "paused", "reason": "key refused" }),
        );
        round_trip(&WaitOutcome::Finished, json!({ "outcome": "finished" }));
        round_trip(
            &StorytellerInfo {
                name: "offline".into(),
                default_model: "offline-analyser-4".into(),
                models: vec!["offline-analyser-4".into()],
                presets: vec!["narrative".into()],
            },
            json!({ "name": "offline", "defaultModel": "offline-analyser-4",
                    "models": ["offline-analyser-4"], "presets": ["narrative"] }),
        );
        round_trip(
            &ExportQuery {
                batch_id: None,
                ids: Some(vec![view.id]),
            },
            json!({ "batchId": null, "ids": [view.id] }),
        );
        round_trip(
            &crate::settings::Settings::default(),
            json!({ "concurrency": 3, "storyteller": "offline", "model": null, "preset": null,
                    "priority": "normal", "language": null, "words": null,
                    "saveBesideVideo": false, "besideFormats": ["markdown"],
                    "besideSkipExisting": true, "copyWhenDone": false, "notifyWhenDone": true,
                    "keepAwake": true, "confirmQuit": true, "storytellers": {}, "prices": [] }),
        );
        round_trip(
            &ErrorPayload {
                code: crate::error::ErrorCode::UnknownModel,
                message: "storyteller 'offline' has no model 'gpt-9'".into(),
            },
            json!({ "code": "unknown_model",
                    "message": "storyteller 'offline' has no model 'gpt-9'" }),
        );
    }
}

/// A worker alive on the queue, and what it is telling.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkerView {
    /// The name its jobs' leases carry.
    pub owner: String,
    /// The machine it runs on, if it said.
    pub machine: Option<String>,
    /// Its process id, if it said.
    pub pid: Option<u32>,
    /// When it started, if it said.
    pub started_at: Option<String>,
    /// Whether it is a worker of this process.
    pub here: bool,
    /// The jobs it is telling, oldest first.
    pub running: Vec<JobView>,
}

/// A watched folder, its choices, its status and what came of its files.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WatchedFolderView {
    /// The folder.
    pub path: String,
    /// Whether videos in its subfolders count too.
    pub recursive: bool,
    /// The storyteller its videos get (`None`: the settings').
    pub storyteller: Option<String>,
    /// The preset (`None`: the storyteller's default).
    pub preset: Option<String>,
    /// The priority (`None`: the settings').
    pub priority: Option<Priority>,
    /// The file extensions it takes (empty: every video).
    pub extensions: Vec<String>,
    /// Where its stories are written once told: `none`, `beside` or `folder`.
    pub output: String,
    /// The folder the stories are written to, for `folder`.
    pub output_folder: Option<String>,
    /// The formats written, for `beside` and `folder`.
    pub formats: Vec<crate::export::ExportFormat>,
    /// Whether told videos are moved into its `done` folder.
    pub move_done: bool,
    /// Whether it is polled (network shares).
    pub poll: bool,
    /// Whether the person paused it.
    pub paused: bool,
    /// What it is doing.
    pub status: crate::watcher::watch::WatchStatus,
    /// Videos it has found (each content once).
    pub found: u32,
    /// Its jobs waiting.
    pub queued: u32,
    /// Its jobs being told.
    pub running: u32,
    /// Its jobs told.
    pub succeeded: u32,
    /// Its jobs failed or cancelled.
    pub failed: u32,
}

/// A folder to watch, as a front end asks for it (`watch add`, the Settings dialog).
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct WatchRequest {
    /// The folder (made absolute).
    pub path: String,
    /// Watch its subfolders too.
    pub recursive: bool,
    /// The storyteller its videos get (`None`: the settings').
    pub storyteller: Option<String>,
    /// The preset (`None`: the storyteller's default).
    pub preset: Option<String>,
    /// The priority (`None`: the settings').
    pub priority: Option<Priority>,
    /// The file extensions it takes, with or without the dot (empty: every video).
    pub extensions: Vec<String>,
    /// Write each story beside its video.
    pub beside: bool,
    /// Write each story into this folder instead.
    pub output_folder: Option<String>,
    /// The formats written (Markdown when none is named).
    pub formats: Vec<crate::export::ExportFormat>,
    /// Move each told video into a `done` subfolder.
    pub move_done: bool,
    /// Poll the folder rather than follow the system's events (network shares).
    pub poll: bool,
}
