//! The Ollama storyteller: an image model served by Ollama (local or remote) looks at the
//! video's keyframes, with the facts the media analysis measured, and writes the story, which
//! streams into the job as the model writes it.
//!
//! The video is looked at as every image-model storyteller does ([`super::vision`]); the
//! keyframes are sent as the images of one `/api/chat` message, with the facts as text. The answer is Ollama's NDJSON stream: one JSON object per line, a
//! `message.content` piece in each, and a last one with `done: true`, why it stopped
//! (`done_reason`) and the token counts (`prompt_eval_count`, `eval_count`).
//!
//! Faults are told apart: Ollama not running at its address, or without the model asked for,
//! pauses this storyteller alone, saying what to do (it looks again by itself for a server that
//! was not running), and is never the video's fault; a stream
//! that breaks off, goes quiet for [`vision::IDLE_GAP`] or carries an error is retried; a model that
//! stopped at its length limit fails the attempt with that reason.

use super::http::{error_for_status, error_for_transport};
use super::transcript::Transcriber;
use super::twopass::{self, Chat, OneImageModels};
use super::{
    vision, BoxFuture, Capacity, MediaTools, StoryError, StoryRequest, StorySink, Storyteller,
};
use crate::config::ServiceConfig;
use crate::job::Usage;
use crate::media::Media;
use crate::secrets::ApiKey;
use base64::Engine as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The name jobs refer to it by.
pub const NAME: &str = "ollama";
/// Where Ollama listens when `ollama.base-url` does not say.
pub const DEFAULT_BASE_URL: &str = "http://127.0.0.1:11434";
/// The model used when `STORYTELLER_OLLAMA_MODEL` does not name one: the image model Ollama's
/// own documentation starts with (a family name, not a version that will be retired).
pub const DEFAULT_MODEL: &str = "llava";
/// Ollama's vision models known to take one image per message, told in two passes.
pub const ONE_IMAGE_MODELS: &str = "llama3.2-vision";

/// See the module doc.
#[derive(Clone, Debug)]
pub struct OllamaStoryteller {
    base_url: String,
    default_model: String,
    client: reqwest::Client,
    tools: MediaTools,
    idle_gap: Duration,
    capacity: Capacity,
    one_image: Arc<OneImageModels>,
    transcriber: Option<Arc<Transcriber>>,
}

impl OllamaStoryteller {
    /// A storyteller for the Ollama at `base_url` (e.g. `http://127.0.0.1:11434`), using
    /// `default_model` when a job names none, and ffmpeg found on the `PATH` when it runs,
    /// keeping thumbnails under `thumbnails_root`.
    pub fn new(base_url: &str, default_model: &str, thumbnails_root: PathBuf) -> Self {
        Self::with_tools(
            base_url,
            default_model,
            MediaTools::Located { thumbnails_root },
        )
    }

    /// [`OllamaStoryteller::new`] with these media tools.
    pub fn with_media(base_url: &str, default_model: &str, media: Media) -> Self {
        Self::with_tools(base_url, default_model, MediaTools::Fixed(media))
    }

    /// The one the settings ask for (`ollama.base-url`, `ollama.model`, its pace and time
    /// limits; the environment first, see [`crate::config`]).
    pub fn from_config(thumbnails_root: PathBuf, config: &ServiceConfig) -> Self {
        let base = config
            .text("ollama.base-url")
            .unwrap_or_else(|| DEFAULT_BASE_URL.to_owned());
        let model = config
            .text("ollama.model")
            .unwrap_or_else(|| DEFAULT_MODEL.to_owned());
        let mut teller = Self::new(&base, &model, thumbnails_root)
            .with_idle_gap(config.seconds("ollama.idle-timeout"));
        teller.client = vision::streaming_client(config.seconds("ollama.connect-timeout"));
        teller.transcriber = Transcriber::from_config(config, &ApiKey::default()).map(Arc::new);
        teller.one_image = Arc::new(OneImageModels::named(
            config.text("ollama.one-image-models").as_deref(),
        ));
        teller.capacity = Capacity {
            concurrent: config.limit("ollama.at-once"),
            per_minute: config.limit("ollama.requests-per-minute"),
            per_day: config.limit("ollama.requests-per-day"),
        };
        teller
    }

    fn with_tools(base_url: &str, default_model: &str, tools: MediaTools) -> Self {
        Self {
            base_url: base_url.trim_end_matches('/').to_owned(),
            default_model: default_model.to_owned(),
            client: vision::streaming_client(vision::CONNECT_TIMEOUT),
            tools,
            idle_gap: vision::IDLE_GAP,
            capacity: Capacity::UNLIMITED,
            transcriber: None,
            one_image: Arc::new(OneImageModels::named(Some(ONE_IMAGE_MODELS))),
        }
    }

    /// The same, with what is said in each video transcribed by `transcriber`.
    pub fn with_transcriber(mut self, transcriber: Transcriber) -> Self {
        self.transcriber = Some(Arc::new(transcriber));
        self
    }

    /// The same, telling videos with `models` in two passes, one image per message (tests).
    pub fn with_one_image_models(mut self, models: &str) -> Self {
        self.one_image = Arc::new(OneImageModels::named(Some(models)));
        self
    }

    /// How it would tell a video with `model`, for estimates.
    fn telling(&self, model: &str) -> vision::Telling {
        vision::Telling {
            one_image_at_a_time: self.one_image.takes_one(model),
            transcribed: self.transcriber.is_some(),
        }
    }

    /// The same, giving up on a stream silent for `gap` (tests).
    pub fn with_idle_gap(mut self, gap: Duration) -> Self {
        self.idle_gap = gap;
        self
    }

    /// One chat: `text` and `images` in, the answer streamed (see [`Chat`]).
    async fn converse(
        &self,
        model: &str,
        text: &str,
        images: &[Vec<u8>],
        into_story: bool,
        sink: &mut StorySink,
    ) -> Result<(String, Usage), StoryError> {
        let images: Vec<String> = images
            .iter()
            .map(|jpeg| base64::engine::general_purpose::STANDARD.encode(jpeg))
            .collect();
        let body = serde_json::json!({
            "model": model,
            "stream": true,
            "messages": [{ "role": "user", "content": text, "images": images }],
        });
        let url = format!("{}/api/chat", self.base_url);
        let response =
            vision::send_within("Ollama", self.idle_gap, self.client.post(&url).json(&body))
                .await?
                .map_err(|e| self.unreachable(&e))?;
        let status = response.status();
        if !status.is_success() {
            let text = response.text().await.unwrap_or_default();
            return Err(self.refused(status.as_u16(), model, &text));
        }
        self.read_stream(response, model, into_story, sink).await
    }

    /// Reads the stream's pieces until its last line (into `sink`'s story when `into_story`):
    /// the answer and the tokens it counted.
    async fn read_stream(
        &self,
        response: reqwest::Response,
        model: &str,
        into_story: bool,
        sink: &mut StorySink,
    ) -> Result<(String, Usage), StoryError> {
        let mut lines = vision::LineReader::new("Ollama", response, self.idle_gap);
        let mut answer = String::new();
        while let Some(line) = lines.next_line().await? {
            if let Some(usage) = self.take_line(&line, model, into_story, sink, &mut answer)? {
                return Ok((answer, usage));
            }
        }
        Err(StoryError::transient(
            "Ollama's answer broke off before its end",
        ))
    }

    /// One line of the stream: its piece onto `answer` (and into `sink`'s story when
    /// `into_story`); the usage once it is the last.
    fn take_line(
        &self,
        line: &str,
        model: &str,
        into_story: bool,
        sink: &mut StorySink,
        answer: &mut String,
    ) -> Result<Option<Usage>, StoryError> {
        let line = line.trim();
        if line.is_empty() {
            return Ok(None);
        }
        let piece: serde_json::Value = serde_json::from_str(line).map_err(|e| {
            StoryError::transient(format!(
                "Ollama sent something that is not its answer ({e}): {}",
                vision::shorten(line)
            ))
        })?;
        if let Some(error) = piece.get("error").and_then(|e| e.as_str()) {
            return Err(StoryError::transient(format!(
                "Ollama failed while writing with {model}: {error}"
            )));
        }
        if let Some(text) = piece.pointer("/message/content").and_then(|c| c.as_str()) {
            answer.push_str(text);
            if into_story {
                sink.write(text);
                sink.progress(vision::writing_progress(answer.len()));
            }
        }
        if piece.get("done").and_then(|d| d.as_bool()) != Some(true) {
            return Ok(None);
        }
        match piece.get("done_reason").and_then(|r| r.as_str()) {
            None | Some("stop") => {}
            Some("length") => {
                return Err(StoryError::permanent(format!(
                    "{model} stopped at its length limit before the story was finished \
                     (raise its num_predict or context length in Ollama)"
                )))
            }
            Some(other) => {
                return Err(StoryError::transient(format!(
                    "{model} stopped before the story was finished ({other})"
                )))
            }
        }
        if answer.trim().is_empty() {
            return Err(StoryError::transient(format!("{model} wrote nothing")));
        }
        let count = |field: &str| piece.get(field).and_then(|n| n.as_u64()).unwrap_or(0);
        if into_story {
            sink.progress(1.0);
        }
        Ok(Some(Usage {
            input_tokens: count("prompt_eval_count"),
            output_tokens: count("eval_count"),
            ..Usage::default()
        }))
    }

    /// The error for a request that reached no Ollama.
    fn unreachable(&self, error: &reqwest::Error) -> StoryError {
        if error.is_connect() {
            StoryError::Unreachable {
                message: format!(
                    "Ollama is not running at {} (start it with `ollama serve`, or set \
                     ollama.base-url to where it runs); its videos wait and start \
                     by themselves once it answers",
                    self.base_url
                ),
            }
        } else {
            error_for_transport("Ollama", error)
        }
    }

    /// The error for a request Ollama answered with `status`.
    fn refused(&self, status: u16, model: &str, body: &str) -> StoryError {
        let said = serde_json::from_str::<serde_json::Value>(body)
            .ok()
            .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned))
            .unwrap_or_else(|| body.trim().to_owned());
        if status == 404 && said.contains("not found") {
            return StoryError::ModelUnavailable {
                message: format!(
                    "Ollama at {} has no model '{model}' ({}): pull it with `ollama pull \
                     {model}`, or choose another model (STORYTELLER_OLLAMA_MODEL), then resume \
                     the storyteller",
                    self.base_url,
                    vision::shorten(&said)
                ),
            };
        }
        error_for_status("Ollama", status, None, &said)
    }
}

impl Storyteller for OllamaStoryteller {
    fn name(&self) -> &str {
        NAME
    }

    fn default_model(&self) -> &str {
        &self.default_model
    }

    fn presets(&self) -> &[&'static str] {
        &vision::PRESETS
    }

    /// Any model Ollama has pulled: which ones is Ollama's to say when the job runs.
    fn has_model(&self, model: &str) -> bool {
        !model.trim().is_empty()
    }

    fn capacity(&self) -> Capacity {
        self.capacity
    }

    fn check_ready(&self) -> Result<(), StoryError> {
        self.tools.check()
    }

    fn check<'a>(&'a self, model: &'a str) -> BoxFuture<'a, Result<String, StoryError>> {
        Box::pin(async move {
            self.tools.check()?;
            let call = self
                .client
                .get(format!("{}/api/tags", self.base_url))
                .timeout(Duration::from_secs(10));
            let response = call.send().await.map_err(|e| self.unreachable(&e))?;
            if !response.status().is_success() {
                let status = response.status().as_u16();
                let body = response.text().await.unwrap_or_default();
                return Err(self.refused(status, model, &body));
            }
            let tags: serde_json::Value = response.json().await.map_err(|e| {
                StoryError::transient(format!("Ollama's list of models did not parse: {e}"))
            })?;
            let names: Vec<&str> = tags["models"]
                .as_array()
                .map(|models| models.iter().filter_map(|m| m["name"].as_str()).collect())
                .unwrap_or_default();
            // `llava` is `llava:latest` to Ollama.
            let pulled = names
                .iter()
                .any(|name| *name == model || name.strip_suffix(":latest") == Some(model));
            if pulled {
                Ok(format!("Ollama at {} has {model}", self.base_url))
            } else {
                Err(StoryError::ModelUnavailable {
                    message: format!(
                        "Ollama at {} has no model '{model}' (it has: {}): pull it with \
                         `ollama pull {model}`, or choose another (STORYTELLER_OLLAMA_MODEL)",
                        self.base_url,
                        if names.is_empty() {
                            "none".to_owned()
                        } else {
                            names.join(", ")
                        }
                    ),
                })
            }
        })
    }

    fn estimate(
        &self,
        info: &crate::media::MediaInfo,
        model: &str,
        preset: &str,
    ) -> super::TokenEstimate {
        vision::estimate(info, preset, self.telling(model))
    }

    fn typical_secs(&self, info: &crate::media::MediaInfo, model: &str) -> f64 {
        vision::typical_secs(info, self.telling(model))
    }

    fn tell<'a>(
        &'a self,
        request: &'a StoryRequest,
        sink: &'a mut StorySink,
    ) -> BoxFuture<'a, Result<Usage, StoryError>> {
        Box::pin(async move {
            let media = self.tools.media()?;
            let teller = twopass::Teller {
                chat: self,
                name: NAME,
                media: &media,
                one_image: &self.one_image,
                transcriber: self.transcriber.as_deref(),
            };
            twopass::tell(teller, request, sink).await
        })
    }
}

impl Chat for OllamaStoryteller {
    fn chat<'a>(
        &'a self,
        model: &'a str,
        text: &'a str,
        images: &'a [Vec<u8>],
        into_story: bool,
        _spent_before: &'a Usage,
        sink: &'a mut StorySink,
    ) -> BoxFuture<'a, Result<(String, Usage), StoryError>> {
        // Ollama counts the tokens in its last line only, with the answer complete.
        Box::pin(self.converse(model, text, images, into_story, sink))
    }
}
