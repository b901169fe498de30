//! The Gemini storyteller: the whole video, pictures and sound, sent to Google's Generative
//! Language API, and the story streamed back as it is written.
//!
//! A video goes one of two ways. A small one (the request under [`GeminiOptions::inline_limit`])
//! goes inline, base64 in the request. Anything bigger goes through the File API's resumable
//! upload: `start` gives a session URL, the bytes follow from disk in chunks (multiples of
//! 256 KiB, never the whole file in memory), and after a dropped connection or a restart the
//! server is asked what it has (`query`) and the upload goes on from there. Both the session and
//! then the uploaded file (its name and expiry) are checkpoints, saved as soon as they exist, so
//! a retry or a restart never uploads the same bytes again. The file is polled until the
//! service has processed it (`ACTIVE`), then `streamGenerateContent?alt=sse` writes the story;
//! the file is deleted afterwards, and on a cancel, unless the person keeps uploads.
//!
//! Containers the API does not take (Matroska, MPEG-TS, Ogg …) are rewrapped as MP4 first.
//! A video too long for the model's input is sent at a lower resolution or fewer frames a
//! second, worked out from its length before anything is sent.
//!
//! Errors are read from the API's JSON error body: a per-minute 429 is a rate limit (with the
//! delay from `RetryInfo`, `Retry-After` or the message), a per-day quota pauses Gemini until it
//! resets at midnight Pacific time, a missing model pauses it naming the setting, a refused key
//! pauses it, 5xx is retried, any other 4xx fails the job with the service's words.
//!
//! The key comes from `GEMINI_API_KEY` (or the keychain, through the engine) and goes only into
//! the `x-goog-api-key` header of requests to the API itself: not to the upload session, which
//! is its own authority, and never into a checkpoint, a log line, an event or an error.

use super::http::{error_for_transport, parse_retry_after, parse_rfc3339_ms};
use super::{
    vision, BoxFuture, Capacity, Checkpointer, MediaTools, StoryError, StoryRequest, StorySink,
    Storyteller,
};
use crate::config::ServiceConfig;
use crate::job::{Stage, Usage};
use crate::media::{Media, MediaInfo};
use crate::secrets::ApiKey;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

/// The name jobs refer to it by.
pub const NAME: &str = "gemini";
/// Where the API is when `STORYTELLER_GEMINI_BASE_URL` does not say.
pub const DEFAULT_BASE_URL: &str = "https://generativelanguage.googleapis.com";
/// The model when `STORYTELLER_GEMINI_MODEL` does not name one: the alias of the current Flash
/// model, which Google moves along as models are retired.
pub const DEFAULT_MODEL: &str = "gemini-flash-latest";
/// The alias of the current Pro model.
pub const PRO_MODEL: &str = "gemini-pro-latest";
/// The setting that names the model, as error messages point to it.
pub const MODEL_SETTING: &str = "gemini.model";
/// Upload chunks are multiples of this (the protocol's granularity).
pub const CHUNK_GRANULE: usize = 256 * 1024;
/// The largest request the API takes with the video inline.
pub const INLINE_REQUEST_LIMIT: u64 = 20 * 1000 * 1000;
/// Tokens a model reads at most (every current Gemini model: 1,048,576).
pub const INPUT_TOKEN_LIMIT: u64 = 1_048_576;

/// How this storyteller behaves, beyond where it sends and with what key.
#[derive(Clone, Debug)]
pub struct GeminiOptions {
    /// A request with the video inline must stay under this many bytes; bigger videos are
    /// uploaded. 0 uploads every video.
    pub inline_limit: u64,
    /// Bytes per upload request (rounded down to a multiple of 256 KiB).
    pub chunk_size: usize,
    /// Delete the uploaded file once the story is written (and on a cancel).
    pub delete_after: bool,
    /// How long the service may take to process an upload before the attempt gives up (the
    /// next attempt waits on, with the same file).
    pub processing_wait: Duration,
    /// The first pause between two looks at a file being processed (growing to 10 s).
    pub first_poll: Duration,
    /// How long any answer may stay silent: before the first byte and between two pieces.
    pub idle_gap: Duration,
    /// How long one upload chunk may take.
    pub chunk_timeout: Duration,
    /// What the key can take.
    pub capacity: Capacity,
}

impl Default for GeminiOptions {
    fn default() -> Self {
        Self {
            inline_limit: INLINE_REQUEST_LIMIT,
            chunk_size: 32 * CHUNK_GRANULE,
            delete_after: true,
            processing_wait: Duration::from_secs(600),
            first_poll: Duration::from_secs(1),
            idle_gap: vision::IDLE_GAP,
            chunk_timeout: Duration::from_secs(600),
            // The free tier's pace for Flash models: a paid key is a setting away, and a 429
            // slows the pool further should even this be too fast.
            capacity: Capacity {
                concurrent: Some(4),
                per_minute: Some(10),
                per_day: None,
            },
        }
    }
}

/// See the module doc.
#[derive(Clone)]
pub struct GeminiStoryteller {
    base_url: String,
    default_model: String,
    api_key: ApiKey,
    client: reqwest::Client,
    tools: MediaTools,
    options: GeminiOptions,
}

// By hand, so that the key never reaches a log through `{:?}`.
impl std::fmt::Debug for GeminiStoryteller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeminiStoryteller")
            .field("base_url", &self.base_url)
            .field("default_model", &self.default_model)
            .field("api_key", &self.api_key)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// What the checkpoint holds: where the upload got to, then the file it made.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Saved {
    /// The video the checkpoint is about (a checkpoint of other content is not used).
    content_hash: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    upload: Option<UploadSession>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    file: Option<RemoteFile>,
}

/// A resumable upload under way.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct UploadSession {
    /// The session URL the service gave (`X-Goog-Upload-URL`).
    url: String,
    /// The file being sent (the video, or its MP4 rewrap).
    path: PathBuf,
    /// Its size, as announced at `start`.
    size: u64,
    /// Its type, as announced.
    mime: String,
}

/// A file on the service.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RemoteFile {
    /// `files/…`.
    name: String,
    /// What `fileData.fileUri` refers to it by.
    uri: String,
    /// Its type.
    mime: String,
    /// When the service deletes it (ms since the Unix epoch).
    expires_ms: i64,
}

/// How the video goes into the request.
enum VideoPart {
    Inline { mime: String, data: String },
    Uploaded(RemoteFile),
}

/// How much of the video the model is shown, worked out from its length.
#[derive(Clone, Debug, PartialEq)]
pub struct VideoPlan {
    /// Frames a second to sample, when not the service's default of 1.
    pub fps: Option<f64>,
    /// `MEDIA_RESOLUTION_LOW` when the default would not fit.
    pub media_resolution: Option<&'static str>,
    /// The prompt tokens the video is expected to take.
    pub estimated_tokens: u64,
    /// Why the video is not sent as it is, for the job's details.
    pub note: Option<String>,
}

/// Which call met an error, for words that fit it: a generate call (or a look at a model)
/// names its model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Call<'a> {
    Upload,
    FileStatus,
    Generate(&'a str),
}

impl GeminiStoryteller {
    /// A storyteller for the API at `base_url` with `api_key`, using ffmpeg found on the
    /// `PATH` when it runs.
    pub fn new(
        base_url: &str,
        default_model: &str,
        api_key: Option<String>,
        thumbnails_root: PathBuf,
    ) -> Self {
        Self::with_tools(
            base_url,
            default_model,
            api_key,
            MediaTools::Located { thumbnails_root },
        )
    }

    /// [`GeminiStoryteller::new`] with these media tools.
    pub fn with_media(
        base_url: &str,
        default_model: &str,
        api_key: Option<String>,
        media: Media,
    ) -> Self {
        Self::with_tools(base_url, default_model, api_key, MediaTools::Fixed(media))
    }

    /// The one the settings ask for (`gemini.base-url`, `gemini.model`, its pace and time
    /// limits; the environment first, see [`crate::config`]), with the key in `api_key`.
    pub fn from_config(thumbnails_root: PathBuf, api_key: ApiKey, config: &ServiceConfig) -> Self {
        let base_url = config
            .text("gemini.base-url")
            .unwrap_or_else(|| DEFAULT_BASE_URL.to_owned());
        let model = config
            .text("gemini.model")
            .unwrap_or_else(|| DEFAULT_MODEL.to_owned());
        let mut teller = Self::new(&base_url, &model, None, thumbnails_root)
            .with_key(api_key)
            .with_options(GeminiOptions::from_config(config));
        teller.client = vision::streaming_client(config.seconds("gemini.connect-timeout"));
        teller
    }

    fn with_tools(
        base_url: &str,
        default_model: &str,
        api_key: Option<String>,
        tools: MediaTools,
    ) -> Self {
        let base_url = base_url.trim_end_matches('/');
        let base_url = base_url
            .strip_suffix("/v1beta")
            .unwrap_or(base_url)
            .to_owned();
        Self {
            base_url,
            default_model: model_id(default_model).to_owned(),
            api_key: ApiKey::new(api_key),
            client: vision::streaming_client(vision::CONNECT_TIMEOUT),
            tools,
            options: GeminiOptions::default(),
        }
    }

    /// The same, behaving as `options` say.
    pub fn with_options(mut self, options: GeminiOptions) -> Self {
        self.options = options;
        self
    }

    /// The same, reading its key from `key` (shared with the engine, which may change it).
    pub fn with_key(mut self, key: ApiKey) -> Self {
        self.api_key = key;
        self
    }

    async fn run(&self, request: &StoryRequest, sink: &mut StorySink) -> Result<Usage, StoryError> {
        let Some(key) = self.api_key.current().await else {
            return Err(no_key());
        };
        let instruction = vision::instruction(NAME, &request.preset)?;
        let model = model_id(&request.model);
        let media = self.tools.media()?;
        sink.stage(Stage::Probing);
        let info = media.probe(&request.source).await?;
        let plan = plan_video(model, info.duration_secs, info.audio.is_some())?;
        match serde_json::to_value(&info) {
            Ok(mut facts) => {
                if let (Some(note), Some(object)) = (&plan.note, facts.as_object_mut()) {
                    object.insert("note".into(), Value::String(note.clone()));
                }
                sink.media(facts);
            }
            Err(e) => tracing::warn!(error = %e, "media facts could not be recorded"),
        }
        if let Some(note) = &plan.note {
            tracing::info!(%note, "the video is sent reduced");
        }

        let checkpoints = sink.checkpointer();
        let mut saved = request
            .checkpoint
            .as_ref()
            .and_then(|value| serde_json::from_value::<Saved>(value.clone()).ok())
            .filter(|saved| saved.content_hash == request.content_hash)
            .unwrap_or_else(|| Saved {
                content_hash: request.content_hash.clone(),
                ..Saved::default()
            });

        let key = key.as_str();
        let part = self
            .video_part(key, &media, request, &info, &mut saved, sink, &checkpoints)
            .await?;
        let cleanup = match &part {
            VideoPart::Uploaded(file) => Some(self.delete_on_cancel(key, file, request)),
            VideoPart::Inline { .. } => None,
        };
        let prompt = prompt(
            instruction,
            &request.style,
            &vision::file_name(request),
            &info,
        );
        let usage = self
            .generate(key, model, &part, &plan, &prompt, sink)
            .await?;
        if let VideoPart::Uploaded(file) = &part {
            if let Some(finished) = cleanup {
                let _ = finished.send(());
            }
            if self.options.delete_after {
                delete_file(&self.client, &self.base_url, key, &file.name).await;
            }
        }
        Ok(usage)
    }

    /// The video as the request carries it: inline, or a processed file on the service
    /// (reused from the checkpoint, else uploaded now).
    #[allow(clippy::too_many_arguments)]
    async fn video_part(
        &self,
        key: &str,
        media: &Media,
        request: &StoryRequest,
        info: &MediaInfo,
        saved: &mut Saved,
        sink: &mut StorySink,
        checkpoints: &Checkpointer,
    ) -> Result<VideoPart, StoryError> {
        let now = now_ms();
        if let Some(file) = saved.file.clone() {
            // A file about to expire would vanish under the model; it is sent again instead.
            if file.expires_ms > now + 3_600_000 {
                match self.wait_until_active(key, &file, sink).await {
                    Ok(()) => return Ok(VideoPart::Uploaded(file)),
                    Err(None) => {
                        tracing::info!(file = %file.name, "the uploaded file is gone; uploading again");
                    }
                    Err(Some(error)) => return Err(error),
                }
            }
            saved.file = None;
            checkpoints.save(to_value(saved));
        }

        let (path, mime) = self.sendable(media, request, info).await?;
        let size = file_size(&path).await?;
        let inline_request = size.div_ceil(3) * 4 + 64 * 1024;
        if saved.upload.is_none() && inline_request <= self.options.inline_limit {
            sink.stage(Stage::Uploading);
            let bytes = tokio::fs::read(&path)
                .await
                .map_err(|e| read_error(&path, &e))?;
            sink.uploaded(size, size);
            return Ok(VideoPart::Inline {
                mime,
                data: base64::engine::general_purpose::STANDARD.encode(bytes),
            });
        }

        let file = self
            .upload(key, &path, size, &mime, request, saved, sink, checkpoints)
            .await?;
        saved.upload = None;
        saved.file = Some(file.clone());
        checkpoints.save(to_value(saved));
        if path != request.source {
            let _ = tokio::fs::remove_file(&path).await;
        }
        match self.wait_until_active(key, &file, sink).await {
            Ok(()) => Ok(VideoPart::Uploaded(file)),
            Err(Some(error)) => Err(error),
            Err(None) => Err(StoryError::transient(format!(
                "Gemini lost the file {} just after it was uploaded",
                file.name
            ))),
        }
    }

    /// The file to send and its type: the video itself when the API takes its container,
    /// else an MP4 rewrap of it (kept beside its thumbnails until uploaded).
    async fn sendable(
        &self,
        media: &Media,
        request: &StoryRequest,
        info: &MediaInfo,
    ) -> Result<(PathBuf, String), StoryError> {
        if let Some(mime) = accepted_mime(&request.source, &info.format_name) {
            return Ok((request.source.clone(), mime.to_owned()));
        }
        let dir = media.thumbnails_dir(&request.content_hash);
        tokio::fs::create_dir_all(&dir).await.map_err(|e| {
            StoryError::transient(format!("{} could not be made: {e}", dir.display()))
        })?;
        let target = dir.join("gemini-upload.mp4");
        if tokio::fs::metadata(&target).await.is_err() {
            tracing::info!(format = %info.format_name, "rewrapping as MP4 for Gemini");
            media.remux_to_mp4(&request.source, &target).await?;
        }
        Ok((target, "video/mp4".to_owned()))
    }

    /// Sends `path` through a resumable upload, going on from the checkpoint's session when
    /// there is one; the file the service made of it.
    #[allow(clippy::too_many_arguments)]
    async fn upload(
        &self,
        key: &str,
        path: &Path,
        size: u64,
        mime: &str,
        request: &StoryRequest,
        saved: &mut Saved,
        sink: &mut StorySink,
        checkpoints: &Checkpointer,
    ) -> Result<RemoteFile, StoryError> {
        sink.stage(Stage::Uploading);
        let resumable = saved
            .upload
            .clone()
            .filter(|session| session.path == path && session.size == size && session.mime == mime);
        let (session, mut offset) = match resumable {
            Some(session) => match self.query(&session).await? {
                Queried::Received(offset) => (session, offset),
                Queried::Finished(file) => return Ok(file),
                Queried::Gone => {
                    self.start(key, path, size, mime, request, saved, checkpoints)
                        .await?
                }
            },
            None => {
                self.start(key, path, size, mime, request, saved, checkpoints)
                    .await?
            }
        };
        sink.uploaded(offset, size);
        let chunk_size = (self.options.chunk_size / CHUNK_GRANULE).max(1) * CHUNK_GRANULE;
        let mut failures = 0u32;
        loop {
            let length = (size - offset).min(chunk_size as u64);
            let last = offset + length >= size;
            match self.send_chunk(&session, offset, length, last).await {
                Ok(Sent::More) => {
                    offset += length;
                    failures = 0;
                    sink.uploaded(offset, size);
                }
                Ok(Sent::Finished(file)) => {
                    sink.uploaded(size, size);
                    return Ok(file);
                }
                Err(error) => {
                    // The connection broke or the service stumbled: ask it what it has and go
                    // on from there, a few times, before the attempt is given up (the next one
                    // resumes the same session).
                    failures += 1;
                    if failures > 4 {
                        return Err(error);
                    }
                    tracing::info!(%error, offset, "the upload was interrupted; asking the service what it has");
                    tokio::time::sleep(Duration::from_millis(250 << failures)).await;
                    match self.query(&session).await? {
                        Queried::Received(received) => {
                            offset = received;
                            sink.uploaded(offset, size);
                        }
                        Queried::Finished(file) => return Ok(file),
                        Queried::Gone => {
                            return Err(StoryError::transient(
                                "Gemini forgot the upload under way; it starts again",
                            ))
                        }
                    }
                }
            }
        }
    }

    /// Opens an upload session and saves it as the checkpoint; the session and offset 0.
    #[allow(clippy::too_many_arguments)]
    async fn start(
        &self,
        key: &str,
        path: &Path,
        size: u64,
        mime: &str,
        request: &StoryRequest,
        saved: &mut Saved,
        checkpoints: &Checkpointer,
    ) -> Result<(UploadSession, u64), StoryError> {
        let call = self
            .client
            .post(format!("{}/upload/v1beta/files", self.base_url))
            .header("x-goog-api-key", key_value(key))
            .header("X-Goog-Upload-Protocol", "resumable")
            .header("X-Goog-Upload-Command", "start")
            .header("X-Goog-Upload-Header-Content-Length", size.to_string())
            .header("X-Goog-Upload-Header-Content-Type", mime)
            .timeout(Duration::from_secs(60))
            .json(&json!({ "file": { "display_name": vision::file_name(request) } }));
        let response = self.checked(Call::Upload, call).await?;
        let url = response
            .headers()
            .get("x-goog-upload-url")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .ok_or_else(|| {
                StoryError::transient("Gemini opened no upload session (no X-Goog-Upload-URL)")
            })?;
        let session = UploadSession {
            url,
            path: path.to_owned(),
            size,
            mime: mime.to_owned(),
        };
        saved.upload = Some(session.clone());
        saved.file = None;
        checkpoints.save(to_value(saved));
        Ok((session, 0))
    }

    /// Asks the service how much of the upload it has.
    async fn query(&self, session: &UploadSession) -> Result<Queried, StoryError> {
        let call = self
            .client
            .post(&session.url)
            .header("X-Goog-Upload-Command", "query")
            .header(reqwest::header::CONTENT_LENGTH, "0")
            .timeout(Duration::from_secs(60));
        let response = match call.send().await {
            Ok(response) => response,
            Err(e) => return Err(error_for_transport("Gemini", &e)),
        };
        let status = response.status().as_u16();
        if matches!(status, 404 | 410) {
            return Ok(Queried::Gone);
        }
        if !response.status().is_success() {
            let after = retry_after(&response);
            return Err(refusal(
                Call::Upload,
                status,
                after,
                &text(response).await,
                now_ms(),
            ));
        }
        let upload_status = header(&response, "x-goog-upload-status").unwrap_or_default();
        if upload_status.eq_ignore_ascii_case("final") {
            return file_of(&text(response).await, &session.mime).map(Queried::Finished);
        }
        if upload_status.eq_ignore_ascii_case("cancelled") {
            return Ok(Queried::Gone);
        }
        let received = header(&response, "x-goog-upload-size-received")
            .and_then(|v| v.parse::<u64>().ok())
            .ok_or_else(|| {
                StoryError::transient("Gemini did not say how much of the upload it has")
            })?;
        Ok(Queried::Received(received.min(session.size)))
    }

    /// Sends `length` bytes of the file from `offset`, streamed from disk.
    async fn send_chunk(
        &self,
        session: &UploadSession,
        offset: u64,
        length: u64,
        last: bool,
    ) -> Result<Sent, StoryError> {
        let mut file = tokio::fs::File::open(&session.path)
            .await
            .map_err(|e| read_error(&session.path, &e))?;
        file.seek(std::io::SeekFrom::Start(offset))
            .await
            .map_err(|e| read_error(&session.path, &e))?;
        let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::with_capacity(
            file.take(length),
            256 * 1024,
        ));
        let call = self
            .client
            .post(&session.url)
            .header(reqwest::header::CONTENT_LENGTH, length.to_string())
            .header("X-Goog-Upload-Offset", offset.to_string())
            .header(
                "X-Goog-Upload-Command",
                if last { "upload, finalize" } else { "upload" },
            )
            .timeout(self.options.chunk_timeout)
            .body(body);
        let response = self.checked(Call::Upload, call).await?;
        let final_status = header(&response, "x-goog-upload-status")
            .is_some_and(|status| status.eq_ignore_ascii_case("final"));
        if last || final_status {
            return file_of(&text(response).await, &session.mime).map(Sent::Finished);
        }
        Ok(Sent::More)
    }

    /// Looks at `file` until the service has processed it. `Err(None)`: the file is not
    /// there (deleted, expired), so it has to be sent again.
    async fn wait_until_active(
        &self,
        key: &str,
        file: &RemoteFile,
        sink: &mut StorySink,
    ) -> Result<(), Option<StoryError>> {
        let started = tokio::time::Instant::now();
        let mut pause = self.options.first_poll;
        let mut announced = false;
        loop {
            let call = self
                .client
                .get(format!("{}/v1beta/{}", self.base_url, file.name))
                .header("x-goog-api-key", key_value(key))
                .timeout(Duration::from_secs(60));
            let response = call
                .send()
                .await
                .map_err(|e| Some(error_for_transport("Gemini", &e)))?;
            let status = response.status().as_u16();
            if matches!(status, 403 | 404) {
                // 403 too: the API answers so for a file name it does not know under this key.
                return Err(None);
            }
            if !response.status().is_success() {
                let after = retry_after(&response);
                return Err(Some(refusal(
                    Call::FileStatus,
                    status,
                    after,
                    &text(response).await,
                    now_ms(),
                )));
            }
            let body: Value = serde_json::from_str(&text(response).await).map_err(|e| {
                Some(StoryError::transient(format!(
                    "Gemini answered the file's status with something else ({e})"
                )))
            })?;
            match body.get("state").and_then(Value::as_str).unwrap_or("") {
                "ACTIVE" => return Ok(()),
                "FAILED" => {
                    let why = body
                        .pointer("/error/message")
                        .and_then(Value::as_str)
                        .unwrap_or("it gave no reason");
                    return Err(Some(StoryError::permanent(format!(
                        "Gemini could not process the video: {why}"
                    ))));
                }
                _ => {}
            }
            if !announced {
                sink.stage(Stage::Processing);
                announced = true;
            }
            if started.elapsed() + pause > self.options.processing_wait {
                return Err(Some(StoryError::transient(format!(
                    "Gemini was still processing the video after {} s; the next attempt waits \
                     on for the same file",
                    self.options.processing_wait.as_secs()
                ))));
            }
            tokio::time::sleep(pause).await;
            pause = (pause.mul_f64(1.5)).min(Duration::from_secs(10));
        }
    }

    /// Streams the story from `model` into `sink`; what it cost.
    async fn generate(
        &self,
        key: &str,
        model: &str,
        part: &VideoPart,
        plan: &VideoPlan,
        prompt: &str,
        sink: &mut StorySink,
    ) -> Result<Usage, StoryError> {
        let mut video = match part {
            VideoPart::Inline { mime, data } => {
                json!({ "inlineData": { "mimeType": mime, "data": data } })
            }
            VideoPart::Uploaded(file) => {
                json!({ "fileData": { "mimeType": file.mime, "fileUri": file.uri } })
            }
        };
        if let (Some(fps), Some(object)) = (plan.fps, video.as_object_mut()) {
            object.insert("videoMetadata".into(), json!({ "fps": fps }));
        }
        let mut body = json!({
            "contents": [{ "role": "user", "parts": [video, { "text": prompt }] }],
        });
        if let Some(resolution) = plan.media_resolution {
            body["generationConfig"] = json!({ "mediaResolution": resolution });
        }
        sink.begin(Stage::Writing);
        let call = self
            .client
            .post(format!(
                "{}/v1beta/models/{model}:streamGenerateContent?alt=sse",
                self.base_url
            ))
            .header("x-goog-api-key", key_value(key))
            .json(&body);
        let response = vision::send_within("Gemini", self.options.idle_gap, call)
            .await?
            .map_err(|e| error_for_transport("Gemini", &e))?;
        if !response.status().is_success() {
            let status = response.status().as_u16();
            let after = retry_after(&response);
            let body = text(response).await;
            return Err(refusal(
                Call::Generate(model),
                status,
                after,
                &body,
                now_ms(),
            ));
        }
        self.read_stream(response, model, sink).await
    }

    /// Writes the streamed pieces into `sink` until the stream ends; the tokens it took.
    async fn read_stream(
        &self,
        response: reqwest::Response,
        model: &str,
        sink: &mut StorySink,
    ) -> Result<Usage, StoryError> {
        let mut lines = vision::LineReader::new("Gemini", response, self.options.idle_gap);
        let mut written = 0usize;
        let mut usage = Usage::default();
        let mut finish: Option<String> = None;
        while let Some(line) = lines.next_line().await? {
            let Some(data) = line.strip_prefix("data:") else {
                continue;
            };
            let data = data.trim();
            if data.is_empty() {
                continue;
            }
            let chunk: Value = serde_json::from_str(data).map_err(|e| {
                StoryError::transient(format!(
                    "Gemini sent something that is not part of an answer ({e}): {}",
                    vision::shorten(data)
                ))
            })?;
            if chunk.get("error").is_some() {
                let status = chunk
                    .pointer("/error/code")
                    .and_then(Value::as_u64)
                    .and_then(|code| u16::try_from(code).ok())
                    .unwrap_or(500);
                return Err(refusal(Call::Generate(model), status, None, data, now_ms()));
            }
            if let Some(reason) = chunk
                .pointer("/promptFeedback/blockReason")
                .and_then(Value::as_str)
            {
                return Err(StoryError::permanent(format!(
                    "Gemini refused to tell this video ({})",
                    reason_words(reason)
                )));
            }
            if let Some(version) = chunk.get("modelVersion").and_then(Value::as_str) {
                if sink.answered_by() != Some(version) {
                    sink.model_version(version);
                }
            }
            if let Some(counted) = chunk.get("usageMetadata") {
                usage = usage_of(counted);
                sink.usage(usage.clone());
            }
            let candidate = chunk.pointer("/candidates/0");
            if let Some(parts) = candidate
                .and_then(|c| c.pointer("/content/parts"))
                .and_then(Value::as_array)
            {
                for part in parts {
                    // Thought summaries are the model thinking aloud, not the story.
                    if part.get("thought").and_then(Value::as_bool) == Some(true) {
                        continue;
                    }
                    if let Some(text) = part.get("text").and_then(Value::as_str) {
                        sink.write(text);
                        written += text.len();
                        sink.progress(0.95 * (1.0 - 1.0 / (1.0 + written as f64 / 1500.0)));
                    }
                }
            }
            if let Some(reason) = candidate
                .and_then(|c| c.get("finishReason"))
                .and_then(Value::as_str)
            {
                finish = Some(reason.to_owned());
            }
        }
        match finish.as_deref() {
            Some("STOP") if written > 0 => {
                sink.progress(1.0);
                Ok(usage)
            }
            Some("STOP") => Err(StoryError::transient(format!("{model} wrote nothing"))),
            Some("MAX_TOKENS") => Err(StoryError::permanent(format!(
                "{model} stopped at its output limit before the story was finished"
            ))),
            Some(reason) => Err(StoryError::permanent(format!(
                "{model} stopped before the story was finished ({})",
                reason_words(reason)
            ))),
            None => Err(StoryError::transient(
                "Gemini's answer broke off before its end",
            )),
        }
    }

    /// Sends `call`, turning a refusal into its error.
    async fn checked(
        &self,
        what: Call<'_>,
        call: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, StoryError> {
        let response = call
            .send()
            .await
            .map_err(|e| error_for_transport("Gemini", &e))?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status().as_u16();
        let after = retry_after(&response);
        Err(refusal(
            what,
            status,
            after,
            &text(response).await,
            now_ms(),
        ))
    }

    /// A task that deletes `file` from the service if the person cancels the job; the sender
    /// tells it the attempt finished, so there is nothing to do.
    fn delete_on_cancel(
        &self,
        key: &str,
        file: &RemoteFile,
        request: &StoryRequest,
    ) -> tokio::sync::oneshot::Sender<()> {
        let (finished, told) = tokio::sync::oneshot::channel::<()>();
        if !self.options.delete_after {
            return finished;
        }
        let cancelled = request.cancelled.clone();
        let client = self.client.clone();
        let base = self.base_url.clone();
        let key = key.to_owned();
        let name = file.name.clone();
        tokio::spawn(async move {
            let cancel = tokio::select! {
                () = cancelled.cancelled() => true,
                told = told => match told {
                    Ok(()) => false,
                    // The attempt was dropped: by a cancel (whose token fires about now) or by
                    // a shutdown (which keeps the file for the next run).
                    Err(_) => tokio::time::timeout(Duration::from_secs(5), cancelled.cancelled())
                        .await
                        .is_ok(),
                },
            };
            if cancel {
                delete_file(&client, &base, &key, &name).await;
            }
        });
        finished
    }
}

/// The error for telling with no key.
fn no_key() -> StoryError {
    StoryError::Auth {
        message: "Gemini has no API key: set GEMINI_API_KEY, or enter a key in the settings \
                  (`storyteller config set-key gemini`), then resume the storyteller"
            .into(),
    }
}

enum Queried {
    Received(u64),
    Finished(RemoteFile),
    Gone,
}

enum Sent {
    More,
    Finished(RemoteFile),
}

impl GeminiOptions {
    /// The defaults, with the pace, the time limits and the keeping of uploads `config`
    /// sets, and the upload sizes the environment sets.
    pub fn from_config(config: &ServiceConfig) -> Self {
        let mut options = Self {
            capacity: Capacity {
                concurrent: config.limit("gemini.at-once"),
                per_minute: config.limit("gemini.requests-per-minute"),
                per_day: config.limit("gemini.requests-per-day"),
            },
            delete_after: !config.switch("gemini.keep-uploads"),
            chunk_timeout: config.seconds("gemini.upload-timeout"),
            processing_wait: config.seconds("gemini.processing-timeout"),
            idle_gap: config.seconds("gemini.idle-timeout"),
            ..Self::default()
        };
        // Bytes under which a video goes inline (0: always upload), and per upload request:
        // for proxies that cap request sizes, and for tests.
        if let Some(limit) = crate::config::env_value("STORYTELLER_GEMINI_INLINE_BYTES")
            .and_then(|v| v.parse::<u64>().ok())
        {
            options.inline_limit = limit;
        }
        if let Some(chunk) = crate::config::env_value("STORYTELLER_GEMINI_CHUNK_BYTES")
            .and_then(|v| v.parse::<usize>().ok())
        {
            options.chunk_size = chunk;
        }
        options
    }
}

impl Storyteller for GeminiStoryteller {
    fn name(&self) -> &str {
        NAME
    }

    fn default_model(&self) -> &str {
        &self.default_model
    }

    fn presets(&self) -> &[&'static str] {
        &vision::PRESETS
    }

    fn models(&self) -> Vec<String> {
        let mut models = vec![self.default_model.clone()];
        for alias in [DEFAULT_MODEL, PRO_MODEL] {
            if !models.iter().any(|m| m == alias) {
                models.push(alias.to_owned());
            }
        }
        models
    }

    /// Any model name: which ones the key may use is the service's to say.
    fn has_model(&self, model: &str) -> bool {
        !model.trim().is_empty()
    }

    fn check_ready(&self) -> Result<(), StoryError> {
        self.tools.check()
    }

    fn capacity(&self) -> Capacity {
        self.options.capacity
    }

    fn check<'a>(&'a self, model: &'a str) -> BoxFuture<'a, Result<String, StoryError>> {
        Box::pin(async move {
            self.tools.check()?;
            let Some(key) = self.api_key.current().await else {
                return Err(no_key());
            };
            let model = model_id(model);
            // models.get: free, and it answers for the key and the model at once.
            let call = self
                .client
                .get(format!("{}/v1beta/models/{model}", self.base_url))
                .header("x-goog-api-key", key_value(&key))
                .timeout(Duration::from_secs(10));
            let response = self.checked(Call::Generate(model), call).await?;
            let about: Value = response.json().await.unwrap_or_default();
            let name = about["displayName"].as_str().unwrap_or(model);
            Ok(format!("Gemini takes the key and has {model} ({name})"))
        })
    }

    fn estimate(&self, info: &MediaInfo, model: &str, preset: &str) -> super::TokenEstimate {
        let (video, note) = match plan_video(model, info.duration_secs, info.audio.is_some()) {
            Ok(plan) => (plan.estimated_tokens, plan.note),
            Err(error) => (0, Some(error.to_string())),
        };
        let audio = if info.audio.is_some() {
            (info.duration_secs.max(1.0) * 32.0).ceil() as u64
        } else {
            0
        };
        super::TokenEstimate {
            usage: Usage {
                // The video, and the few hundred tokens of the prompt's words.
                input_tokens: video + 300,
                audio_input_tokens: audio.min(video),
                output_tokens: super::story_tokens(preset),
                cost_micro_usd: 0,
            },
            requests: 1,
            note: note.or_else(|| {
                Some(
                    "models that think bill their thinking as output too, which can add to it"
                        .into(),
                )
            }),
        }
    }

    fn typical_secs(&self, info: &MediaInfo, _model: &str) -> f64 {
        // Sending the file (at a modest 5 MB/s), the service's processing, then the writing.
        let upload = info.size_bytes.unwrap_or(0) as f64 / 5e6;
        15.0 + upload + info.duration_secs / 30.0
    }

    fn tell<'a>(
        &'a self,
        request: &'a StoryRequest,
        sink: &'a mut StorySink,
    ) -> BoxFuture<'a, Result<Usage, StoryError>> {
        Box::pin(self.run(request, sink))
    }
}

/// The model's id as the URL wants it (`models/…` as people copy it from the docs, or not).
fn model_id(model: &str) -> &str {
    let model = model.trim();
    model.strip_prefix("models/").unwrap_or(model)
}

/// The video type to announce for `path`, when the API takes its container as it is.
fn accepted_mime(path: &Path, format_name: &str) -> Option<&'static str> {
    let extension = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    // ffprobe's format names are lists ("mov,mp4,m4a,3gp,3g2,mj2"): the extension says which.
    let formats: Vec<&str> = format_name.split(',').collect();
    let has = |name: &str| formats.contains(&name);
    if has("mov") || has("mp4") {
        return Some(match extension.as_str() {
            "mov" | "qt" => "video/quicktime",
            "3gp" | "3g2" => "video/3gpp",
            _ => "video/mp4",
        });
    }
    if has("webm") && extension != "mkv" {
        return Some("video/webm");
    }
    if has("avi") {
        return Some("video/avi");
    }
    if has("flv") {
        return Some("video/x-flv");
    }
    if has("mpeg") && !has("mpegts") {
        return Some("video/mpeg");
    }
    if has("asf") {
        return Some("video/wmv");
    }
    None
}

/// What the model is asked to write: the preset's words, what the file is, and the person's
/// wishes.
fn prompt(instruction: &str, style: &crate::job::Style, file: &str, info: &MediaInfo) -> String {
    let sound = if info.audio.is_some() {
        "Use what is heard as well as what is seen."
    } else {
        "The video has no sound track."
    };
    format!(
        "Write {instruction}. The video is \"{file}\", {}. {sound} Say only what the video \
         shows: do not invent names, places or dialogue. Write plain prose, with no headings, \
         lists or preamble.{}",
        crate::media::clock(info.duration_secs),
        vision::wishes(style)
    )
}

/// How much of a video `model` is shown so that it fits the model's input: the service's
/// default (one frame a second at the default resolution) when it fits, else a low resolution,
/// else fewer frames a second.
pub fn plan_video(
    model: &str,
    duration_secs: f64,
    has_audio: bool,
) -> Result<VideoPlan, StoryError> {
    // Gemini 3 models count 70 tokens a frame at the default and low resolutions; earlier ones
    // 258, or 66 at low resolution. Sound is 32 tokens a second either way.
    let gemini_3 = model.contains("gemini-3");
    let (frame, low_frame) = if gemini_3 {
        (70.0, 70.0)
    } else {
        (258.0, 66.0)
    };
    let audio = if has_audio { 32.0 } else { 0.0 };
    let seconds = duration_secs.max(1.0);
    // Room for the words of the prompt, and a margin for the estimate.
    let budget = INPUT_TOKEN_LIMIT as f64 * 0.95 - 1_000.0;
    let tokens = |per_second: f64| (seconds * per_second).ceil() as u64;
    let full = tokens(frame + audio);
    if full as f64 <= budget {
        return Ok(VideoPlan {
            fps: None,
            media_resolution: None,
            estimated_tokens: full,
            note: None,
        });
    }
    let minutes = (seconds / 60.0).round();
    if low_frame < frame && tokens(low_frame + audio) as f64 <= budget {
        return Ok(VideoPlan {
            fps: None,
            media_resolution: Some("MEDIA_RESOLUTION_LOW"),
            estimated_tokens: tokens(low_frame + audio),
            note: Some(format!(
                "At {minutes} minutes the video would take about {full} tokens, more than \
                 {model} reads ({INPUT_TOKEN_LIMIT}), so its frames are sent at low resolution"
            )),
        });
    }
    let fps = ((budget / seconds - audio) / low_frame * 100.0).floor() / 100.0;
    if fps < 0.05 {
        return Err(StoryError::permanent(format!(
            "at {minutes} minutes the video is too long for {model}, even at one frame every \
             20 seconds (about {full} tokens against the {INPUT_TOKEN_LIMIT} it reads): split \
             it into parts"
        )));
    }
    Ok(VideoPlan {
        fps: Some(fps),
        media_resolution: (low_frame < frame).then_some("MEDIA_RESOLUTION_LOW"),
        estimated_tokens: tokens(fps * low_frame + audio),
        note: Some(format!(
            "At {minutes} minutes the video would take about {full} tokens, more than {model} \
             reads ({INPUT_TOKEN_LIMIT}), so {fps} frames a second are sent{}",
            if low_frame < frame {
                " at low resolution"
            } else {
                ""
            }
        )),
    })
}

/// The tokens counted in a `usageMetadata`: sound apart (priced apart), thinking counted as
/// output (it is billed so).
fn usage_of(counted: &Value) -> Usage {
    let count = |field: &str| counted.get(field).and_then(Value::as_u64).unwrap_or(0);
    let audio = counted
        .get("promptTokensDetails")
        .and_then(Value::as_array)
        .map(|details| {
            details
                .iter()
                .filter(|d| d.get("modality").and_then(Value::as_str) == Some("AUDIO"))
                .filter_map(|d| d.get("tokenCount").and_then(Value::as_u64))
                .sum()
        })
        .unwrap_or(0);
    Usage {
        input_tokens: count("promptTokenCount"),
        audio_input_tokens: audio,
        output_tokens: count("candidatesTokenCount") + count("thoughtsTokenCount"),
        cost_micro_usd: 0,
    }
}

/// A finish or block reason in words.
fn reason_words(reason: &str) -> String {
    let words = match reason {
        "SAFETY" => "its safety filters stopped it",
        "RECITATION" => "it was repeating text it had read elsewhere",
        "BLOCKLIST" => "the video touches terms that are blocked",
        "PROHIBITED_CONTENT" => "the video may hold prohibited content",
        "SPII" => "the story would give away sensitive personal information",
        "LANGUAGE" => "the language is not one it supports",
        "IMAGE_SAFETY" => "its safety filters stopped it",
        "OTHER" => "for a reason it did not give",
        other => return format!("finish reason {other}"),
    };
    format!("{words}; finish reason {reason}")
}

/// The error for an answer with `status` and `body`, at `now_ms`.
fn refusal(
    call: Call<'_>,
    status: u16,
    header_retry_after: Option<Duration>,
    body: &str,
    now_ms: i64,
) -> StoryError {
    let parsed: Option<Value> = serde_json::from_str(body).ok();
    let error = parsed.as_ref().and_then(|v| v.get("error"));
    let message = error
        .and_then(|e| e.get("message"))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| body.trim().to_owned());
    let api_status = error
        .and_then(|e| e.get("status"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let details: Vec<&Value> = error
        .and_then(|e| e.get("details"))
        .and_then(Value::as_array)
        .map(|d| d.iter().collect())
        .unwrap_or_default();
    let detail_of = |kind: &str| {
        details.iter().copied().find(|d| {
            d.get("@type")
                .and_then(Value::as_str)
                .is_some_and(|t| t.ends_with(kind))
        })
    };
    let said = vision::shorten(&message);

    if status == 429 || api_status == "RESOURCE_EXHAUSTED" {
        let per_day = detail_of("google.rpc.QuotaFailure")
            .and_then(|q| q.get("violations"))
            .and_then(Value::as_array)
            .is_some_and(|violations| {
                violations.iter().any(|v| {
                    ["quotaId", "quotaMetric"].iter().any(|field| {
                        v.get(*field)
                            .and_then(Value::as_str)
                            .is_some_and(|id| id.contains("PerDay"))
                    })
                })
            });
        if per_day {
            let until_ms = next_pacific_midnight(now_ms);
            return StoryError::QuotaExhausted {
                message: format!(
                    "Gemini's daily quota for this key is used up ({said}); it resets at \
                     midnight Pacific time, {} here, and the videos waiting start by themselves then",
                    crate::clock::local::time_words(until_ms)
                ),
                until_ms,
            };
        }
        let delay = detail_of("google.rpc.RetryInfo")
            .and_then(|r| r.get("retryDelay"))
            .and_then(Value::as_str)
            .and_then(parse_seconds)
            .or(header_retry_after)
            .or_else(|| retry_in_text(&message));
        return StoryError::RateLimited {
            message: format!("Gemini asked us to slow down (HTTP 429): {said}"),
            retry_after: delay,
        };
    }
    let key_refused = detail_of("google.rpc.ErrorInfo")
        .and_then(|e| e.get("reason"))
        .and_then(Value::as_str)
        .is_some_and(|reason| reason == "API_KEY_INVALID")
        || message.contains("API key not valid")
        || message.contains("API key expired");
    if key_refused || matches!(status, 401 | 403) || api_status == "UNAUTHENTICATED" {
        return StoryError::Auth {
            message: format!(
                "Gemini refused the API key (HTTP {status}: {said}); check GEMINI_API_KEY or \
                 the key in the settings, then resume the storyteller"
            ),
        };
    }
    if let (404, Call::Generate(model)) = (status, call) {
        return StoryError::ModelUnavailable {
            message: format!(
                "Gemini has no model '{model}' for this key ({said}): set {MODEL_SETTING} to \
                 one it serves (e.g. `storyteller config set {MODEL_SETTING} {DEFAULT_MODEL}`, \
                 or STORYTELLER_GEMINI_MODEL), then resume the storyteller"
            ),
        };
    }
    match status {
        500..=599 | 408 => StoryError::Transient {
            message: format!("Gemini had a server error (HTTP {status}): {said}"),
            retry_after: header_retry_after,
        },
        _ => StoryError::permanent(format!(
            "Gemini rejected the request (HTTP {status}): {said}"
        )),
    }
}

/// `"28s"` or `"28.3s"` (a protobuf duration) as a duration.
fn parse_seconds(value: &str) -> Option<Duration> {
    let seconds: f64 = value.trim().strip_suffix('s')?.parse().ok()?;
    (seconds.is_finite() && seconds >= 0.0)
        .then(|| Duration::from_secs_f64(seconds).min(super::http::MAX_RETRY_AFTER))
}

/// The delay in "… Please retry in 28.3s." (or "28.31234ms").
fn retry_in_text(message: &str) -> Option<Duration> {
    let lower = message.to_ascii_lowercase();
    let at = lower.find("retry in ")? + "retry in ".len();
    let rest = &lower[at..];
    let number: String = rest
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let value: f64 = number.parse().ok()?;
    let unit = &rest[number.len()..];
    let seconds = if unit.starts_with("ms") {
        value / 1000.0
    } else if unit.starts_with('s') {
        value
    } else if unit.starts_with('m') {
        value * 60.0
    } else {
        return None;
    };
    Some(Duration::from_secs_f64(seconds).min(super::http::MAX_RETRY_AFTER))
}

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

/// The offset of Pacific time from UTC at `utc_ms`: −7 h from the second Sunday of March at
/// 2:00 to the first Sunday of November at 2:00 (US rules), else −8 h.
fn pacific_offset_ms(utc_ms: i64) -> i64 {
    let standard = utc_ms - 8 * HOUR_MS;
    let (year, _, _) = crate::job::civil_from_days(standard.div_euclid(DAY_MS));
    let sunday_on_or_after = |month: i64, day: i64| {
        let days = super::http::days_from_civil(year, month, day);
        // 1970-01-01 was a Thursday: (days + 4) mod 7 is 0 on Sundays.
        days + (7 - (days + 4).rem_euclid(7)) % 7
    };
    let summer_starts = sunday_on_or_after(3, 8) * DAY_MS + 10 * HOUR_MS; // 2:00 PST
    let summer_ends = sunday_on_or_after(11, 1) * DAY_MS + 9 * HOUR_MS; // 2:00 PDT
    if (summer_starts..summer_ends).contains(&utc_ms) {
        -7 * HOUR_MS
    } else {
        -8 * HOUR_MS
    }
}

/// The next midnight in Pacific time after `utc_ms`, when Google's daily quotas reset.
pub fn next_pacific_midnight(utc_ms: i64) -> i64 {
    let offset = pacific_offset_ms(utc_ms);
    let local_midnight = ((utc_ms + offset).div_euclid(DAY_MS) + 1) * DAY_MS;
    let candidate = local_midnight - offset;
    // Midnight can fall after a change of offset that is still ahead now.
    let later_offset = pacific_offset_ms(candidate);
    if later_offset == offset {
        candidate
    } else {
        local_midnight - later_offset
    }
}

/// The key as a header value marked sensitive, so that no HTTP-level log prints it.
fn key_value(key: &str) -> reqwest::header::HeaderValue {
    let mut value = reqwest::header::HeaderValue::from_str(key.trim())
        .unwrap_or_else(|_| reqwest::header::HeaderValue::from_static(""));
    value.set_sensitive(true);
    value
}

fn now_ms() -> i64 {
    use crate::clock::Clock as _;
    crate::clock::SystemClock.now_ms()
}

fn to_value(saved: &Saved) -> Value {
    serde_json::to_value(saved).unwrap_or(Value::Null)
}

fn header(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_owned())
}

fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    header(response, "retry-after").and_then(|v| parse_retry_after(&v, SystemTime::now()))
}

async fn text(response: reqwest::Response) -> String {
    response.text().await.unwrap_or_default()
}

async fn file_size(path: &Path) -> Result<u64, StoryError> {
    tokio::fs::metadata(path)
        .await
        .map(|m| m.len())
        .map_err(|e| read_error(path, &e))
}

fn read_error(path: &Path, error: &std::io::Error) -> StoryError {
    if error.kind() == std::io::ErrorKind::NotFound {
        StoryError::permanent(format!("the file is gone: {}", path.display()))
    } else {
        StoryError::transient(format!("{} could not be read: {error}", path.display()))
    }
}

/// The file described by an upload's final answer (`{"file": {…}}`).
fn file_of(body: &str, mime: &str) -> Result<RemoteFile, StoryError> {
    let value: Value = serde_json::from_str(body).map_err(|e| {
        StoryError::transient(format!(
            "Gemini's answer to the upload is not a file ({e}): {}",
            vision::shorten(body)
        ))
    })?;
    let file = value.get("file").unwrap_or(&value);
    let field = |name: &str| file.get(name).and_then(Value::as_str).map(str::to_owned);
    let (Some(name), Some(uri)) = (field("name"), field("uri")) else {
        return Err(StoryError::transient(format!(
            "Gemini's answer to the upload names no file: {}",
            vision::shorten(body)
        )));
    };
    let expires_ms = field("expirationTime")
        .and_then(|t| parse_rfc3339_ms(&t))
        // Files are kept 48 hours; a day is safe when the answer does not say.
        .unwrap_or_else(|| now_ms() + DAY_MS);
    Ok(RemoteFile {
        name,
        uri,
        mime: field("mimeType").unwrap_or_else(|| mime.to_owned()),
        expires_ms,
    })
}

/// Deletes `name` from the service; a failure is only logged (the service deletes it within
/// 48 hours anyway).
async fn delete_file(client: &reqwest::Client, base: &str, key: &str, name: &str) {
    let call = client
        .delete(format!("{base}/v1beta/{name}"))
        .header("x-goog-api-key", key_value(key))
        .timeout(Duration::from_secs(30));
    match call.send().await {
        Ok(response) if response.status().is_success() || response.status().as_u16() == 404 => {
            tracing::debug!(file = %name, "uploaded file deleted");
        }
        Ok(response) => {
            tracing::warn!(file = %name, status = %response.status(), "the uploaded file could not be deleted");
        }
        Err(error) => {
            tracing::warn!(file = %name, %error, "the uploaded file could not be deleted");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prompt_ends_with_the_persons_wishes() {
        let info = MediaInfo {
            duration_secs: 12.0,
            format_name: "mov,mp4,m4a,3gp,3g2,mj2".into(),
            format_long_name: None,
            size_bytes: Some(1000),
            bit_rate: None,
            creation_time: None,
            title: None,
            video: crate::media::VideoStream {
                index: 0,
                codec: "h264".into(),
                width: 640,
                height: 360,
                fps: Some(25.0),
                rotation: 0,
                pixel_format: None,
            },
            audio: None,
            audio_streams: Vec::new(),
        };
        let plain = prompt("a summary", &crate::job::Style::default(), "a.mp4", &info);
        assert!(
            plain.starts_with("Write a summary. The video is \"a.mp4\", 0:12."),
            "{plain}"
        );
        assert!(!plain.contains("Language:"));
        let style = crate::job::Style::new(None, None, Some("Deutsch")).unwrap();
        let wished = prompt("a summary", &style, "a.mp4", &info);
        assert!(wished.starts_with(&plain) && wished.ends_with(&vision::wishes(&style)));
    }

    fn at(iso: &str) -> i64 {
        parse_rfc3339_ms(iso).unwrap()
    }

    #[test]
    fn quotas_reset_at_midnight_pacific_summer_and_winter() {
        // Winter: PST, midnight is 08:00 UTC.
        assert_eq!(
            next_pacific_midnight(at("2026-12-02T13:00:00Z")),
            at("2026-12-03T08:00:00Z")
        );
        // Just before midnight PST the next one is minutes away.
        assert_eq!(
            next_pacific_midnight(at("2026-12-03T07:59:00Z")),
            at("2026-12-03T08:00:00Z")
        );
        // Summer: PDT, midnight is 07:00 UTC.
        assert_eq!(
            next_pacific_midnight(at("2026-07-01T12:00:00Z")),
            at("2026-07-02T07:00:00Z")
        );
        // 2026's summer time starts on Sunday 8 March at 2:00: the midnight that ends that day
        // is in PDT although now is still PST.
        assert_eq!(
            next_pacific_midnight(at("2026-03-08T09:00:00Z")),
            at("2026-03-09T07:00:00Z")
        );
        // And ends on Sunday 1 November: 1 November's midnight ends in PST.
        assert_eq!(
            next_pacific_midnight(at("2026-11-01T08:00:00Z")),
            at("2026-11-02T08:00:00Z")
        );
    }

    #[test]
    fn the_two_kinds_of_429_are_told_apart() {
        let now = at("2026-12-02T13:00:00Z");
        let per_minute = r#"{"error":{"code":429,"message":"You exceeded your current quota. Please retry in 28.3s.","status":"RESOURCE_EXHAUSTED","details":[
            {"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaMetric":"generativelanguage.googleapis.com/generate_content_free_tier_requests","quotaId":"GenerateRequestsPerMinutePerProjectPerModel-FreeTier"}]},
            {"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"28s"}]}}"#;
        match refusal(
            Call::Generate("gemini-2.5-flash"),
            429,
            None,
            per_minute,
            now,
        ) {
            StoryError::RateLimited { retry_after, .. } => {
                assert_eq!(retry_after, Some(Duration::from_secs(28)));
            }
            other => panic!("{other:?}"),
        }
        let text_only = r#"{"error":{"code":429,"message":"Resource exhausted. Please retry in 1.5s.","status":"RESOURCE_EXHAUSTED"}}"#;
        match refusal(
            Call::Generate("gemini-2.5-flash"),
            429,
            None,
            text_only,
            now,
        ) {
            StoryError::RateLimited { retry_after, .. } => {
                assert_eq!(retry_after, Some(Duration::from_millis(1500)));
            }
            other => panic!("{other:?}"),
        }
        let header_only =
            r#"{"error":{"code":429,"message":"Too many requests","status":"RESOURCE_EXHAUSTED"}}"#;
        match refusal(
            Call::Generate("gemini-2.5-flash"),
            429,
            Some(Duration::from_secs(9)),
            header_only,
            now,
        ) {
            StoryError::RateLimited { retry_after, .. } => {
                assert_eq!(retry_after, Some(Duration::from_secs(9)));
            }
            other => panic!("{other:?}"),
        }
        let per_day = r#"{"error":{"code":429,"message":"You exceeded your current quota.","status":"RESOURCE_EXHAUSTED","details":[
            {"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaId":"GenerateRequestsPerDayPerProjectPerModel-FreeTier","quotaValue":"250"}]},
            {"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"3600s"}]}}"#;
        match refusal(Call::Generate("gemini-2.5-flash"), 429, None, per_day, now) {
            StoryError::QuotaExhausted { until_ms, message } => {
                assert_eq!(until_ms, at("2026-12-03T08:00:00Z"));
                assert!(message.contains("midnight Pacific"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn keys_models_and_servers_each_get_their_kind() {
        let now = 0;
        let bad_key = r#"{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID","domain":"googleapis.com"}]}}"#;
        assert!(matches!(
            refusal(Call::Generate("gemini-2.5-flash"), 400, None, bad_key, now),
            StoryError::Auth { .. }
        ));
        assert!(matches!(
            refusal(Call::Upload, 403, None, "{}", now),
            StoryError::Auth { .. }
        ));
        let gone = r#"{"error":{"code":404,"message":"models/gemini-1.0-pro is not found for API version v1beta, or is not supported for generateContent.","status":"NOT_FOUND"}}"#;
        let named = refusal(Call::Generate("gemini-1.0-pro"), 404, None, gone, now);
        assert!(
            matches!(named, StoryError::ModelUnavailable { .. }),
            "{named:?}"
        );
        assert!(
            named.to_string().contains("no model 'gemini-1.0-pro'"),
            "{named}"
        );
        assert!(named.to_string().contains(MODEL_SETTING), "{named}");
        assert!(matches!(
            refusal(Call::Generate("gemini-2.5-flash"), 503, None, "{}", now),
            StoryError::Transient { .. }
        ));
        let too_long = r#"{"error":{"code":400,"message":"The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).","status":"INVALID_ARGUMENT"}}"#;
        let error = refusal(Call::Generate("gemini-2.5-flash"), 400, None, too_long, now);
        assert!(matches!(error, StoryError::Permanent { .. }));
        assert!(error.to_string().contains("exceeds the maximum"), "{error}");
    }

    #[test]
    fn long_videos_are_sent_reduced_so_that_they_fit() {
        let short = plan_video("gemini-2.5-flash", 600.0, true).unwrap();
        assert_eq!((short.fps, short.media_resolution), (None, None));
        assert_eq!(short.estimated_tokens, 600 * 290);
        // An hour at 290 tokens a second is 1,044,000: over the budget, fine at low resolution.
        let hour = plan_video("gemini-2.5-flash", 3600.0, true).unwrap();
        assert_eq!(hour.media_resolution, Some("MEDIA_RESOLUTION_LOW"));
        assert!(hour.note.as_deref().unwrap().contains("low resolution"));
        // Five hours needs fewer frames too, and fits.
        let long = plan_video("gemini-2.5-flash", 5.0 * 3600.0, true).unwrap();
        let fps = long.fps.unwrap();
        assert!(fps > 0.0 && fps < 1.0, "{fps}");
        assert!(long.estimated_tokens < INPUT_TOKEN_LIMIT);
        // Gemini 3 counts 70 a frame: two hours fit as they are, at 102 a second.
        let g3 = plan_video("gemini-3-flash-preview", 2.0 * 3600.0, true).unwrap();
        assert_eq!(g3.fps, None);
        // Ten hours of sound alone is too much: said plainly, before anything is sent.
        assert!(matches!(
            plan_video("gemini-2.5-flash", 10.0 * 3600.0, true),
            Err(StoryError::Permanent { .. })
        ));
    }

    #[test]
    fn containers_the_api_takes_go_as_they_are() {
        let p = |name: &str| PathBuf::from(name);
        assert_eq!(
            accepted_mime(&p("a.mp4"), "mov,mp4,m4a,3gp,3g2,mj2"),
            Some("video/mp4")
        );
        assert_eq!(
            accepted_mime(&p("a.MOV"), "mov,mp4,m4a,3gp,3g2,mj2"),
            Some("video/quicktime")
        );
        assert_eq!(
            accepted_mime(&p("a.webm"), "matroska,webm"),
            Some("video/webm")
        );
        assert_eq!(accepted_mime(&p("a.mkv"), "matroska,webm"), None);
        assert_eq!(accepted_mime(&p("a.ts"), "mpegts"), None);
        assert_eq!(accepted_mime(&p("a.avi"), "avi"), Some("video/avi"));
    }

    #[test]
    fn usage_counts_sound_apart_and_thinking_as_output() {
        let counted = serde_json::json!({
            "promptTokenCount": 1290, "candidatesTokenCount": 200, "thoughtsTokenCount": 50,
            "promptTokensDetails": [
                {"modality": "TEXT", "tokenCount": 40}, {"modality": "VIDEO", "tokenCount": 1000},
                {"modality": "AUDIO", "tokenCount": 250}]
        });
        let usage = usage_of(&counted);
        assert_eq!(
            (
                usage.input_tokens,
                usage.audio_input_tokens,
                usage.output_tokens
            ),
            (1290, 250, 250)
        );
    }
}
