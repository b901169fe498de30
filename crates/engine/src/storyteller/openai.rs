//! The OpenAI-compatible storyteller: an image model behind `/v1/chat/completions`, the API
//! llama.cpp's server, vLLM, LM Studio and OpenAI itself speak. It looks at the video as every
//! image-model storyteller does ([`super::vision`]), sends the keyframes as `image_url` data
//! URLs beside the facts, and streams the answer: server-sent events, one `data:` line per
//! piece (`choices[0].delta.content`), the usage in a last chunk
//! (`stream_options.include_usage`), then `data: [DONE]`.
//!
//! The key, when the server needs one, comes from `OPENAI_API_KEY` or the keychain
//! ([`crate::secrets`]) and goes only into the `Authorization` header: never into the job, the
//! log or an event.
//!
//! Faults as for Ollama: no server at the address, or no such model, pauses this storyteller
//! alone, saying what to do; a refused key pauses it too; 429 and 5xx are retried
//! after the time the server gave; a stream that breaks off or goes silent is retried; a
//! model stopped by its length limit or a content filter fails the attempt with that reason.

use super::http::{error_for_status, error_for_transport, parse_retry_after};
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
use std::time::{Duration, SystemTime};

/// The name jobs refer to it by.
pub const NAME: &str = "openai";
/// Where the server is when `openai.base-url` does not say: a llama.cpp or
/// LM Studio server on this machine (the part before `/v1`).
pub const DEFAULT_BASE_URL: &str = "http://127.0.0.1:8080";
/// The model asked for when `openai.model` does not name one. Local servers
/// serve the model they loaded whatever the name; OpenAI itself needs a real one.
pub const DEFAULT_MODEL: &str = "default";

/// See the module doc.
#[derive(Clone)]
pub struct OpenAiStoryteller {
    base_url: String,
    default_model: String,
    api_key: ApiKey,
    client: reqwest::Client,
    tools: MediaTools,
    idle_gap: Duration,
    capacity: Capacity,
    one_image: Arc<OneImageModels>,
    transcriber: Option<Arc<Transcriber>>,
}

// By hand, so that the key never reaches a log through `{:?}`.
impl std::fmt::Debug for OpenAiStoryteller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiStoryteller")
            .field("base_url", &self.base_url)
            .field("default_model", &self.default_model)
            .field("api_key", &self.api_key)
            .finish_non_exhaustive()
    }
}

impl OpenAiStoryteller {
    /// A storyteller for the server at `base_url` (the part before `/v1`), with `api_key`
    /// when it needs one, using ffmpeg found on the `PATH` when it runs.
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

    /// [`OpenAiStoryteller::new`] with these media tools.
    pub fn with_media(
        base_url: &str,
        default_model: &str,
        api_key: Option<String>,
        media: Media,
    ) -> Self {
        Self::with_tools(base_url, default_model, api_key, MediaTools::Fixed(media))
    }

    /// The one the settings ask for (`openai.base-url`, `openai.model`, its pace and time
    /// limits; the environment first, see [`crate::config`]), with the key in `api_key` (the
    /// engine's: `OPENAI_API_KEY`, else the keychain, else none).
    pub fn from_config(thumbnails_root: PathBuf, api_key: ApiKey, config: &ServiceConfig) -> Self {
        let base_url = config
            .text("openai.base-url")
            .unwrap_or_else(|| DEFAULT_BASE_URL.to_owned());
        let model = config
            .text("openai.model")
            .unwrap_or_else(|| DEFAULT_MODEL.to_owned());
        let mut teller = Self::new(&base_url, &model, None, thumbnails_root)
            .with_idle_gap(config.seconds("openai.idle-timeout"));
        teller.transcriber = Transcriber::from_config(config, &api_key).map(Arc::new);
        teller.api_key = api_key;
        teller.client = vision::streaming_client(config.seconds("openai.connect-timeout"));
        teller.one_image = Arc::new(OneImageModels::named(
            config.text("openai.one-image-models").as_deref(),
        ));
        teller.capacity = Capacity {
            concurrent: config.limit("openai.at-once"),
            per_minute: config.limit("openai.requests-per-minute"),
            per_day: config.limit("openai.requests-per-day"),
        };
        teller
    }

    fn with_tools(
        base_url: &str,
        default_model: &str,
        api_key: Option<String>,
        tools: MediaTools,
    ) -> Self {
        let base_url = base_url.trim_end_matches('/');
        // People paste the address with its `/v1`; requests add it themselves.
        let base_url = base_url.strip_suffix("/v1").unwrap_or(base_url).to_owned();
        Self {
            base_url,
            default_model: default_model.to_owned(),
            api_key: ApiKey::new(api_key),
            client: vision::streaming_client(vision::CONNECT_TIMEOUT),
            tools,
            idle_gap: vision::IDLE_GAP,
            capacity: Capacity::UNLIMITED,
            transcriber: None,
            one_image: Arc::new(OneImageModels::default()),
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

    /// The same, giving up on an answer silent for `gap` (tests).
    pub fn with_idle_gap(mut self, gap: Duration) -> Self {
        self.idle_gap = gap;
        self
    }

    /// One chat completion: `text` and `images` in, the answer streamed (see [`Chat`]).
    async fn complete(
        &self,
        model: &str,
        text: &str,
        images: &[Vec<u8>],
        into_story: bool,
        spent_before: &Usage,
        sink: &mut StorySink,
    ) -> Result<(String, Usage), StoryError> {
        let mut content = vec![serde_json::json!({ "type": "text", "text": text })];
        for jpeg in images {
            let data = base64::engine::general_purpose::STANDARD.encode(jpeg);
            content.push(serde_json::json!({
                "type": "image_url",
                "image_url": { "url": format!("data:image/jpeg;base64,{data}") },
            }));
        }
        let body = serde_json::json!({
            "model": model,
            "stream": true,
            "stream_options": { "include_usage": true },
            "messages": [{ "role": "user", "content": content }],
        });
        let mut call = self
            .client
            .post(format!("{}/v1/chat/completions", self.base_url))
            .json(&body);
        let key = self.api_key.current().await;
        if let Some(key) = &key {
            call = call.bearer_auth(key);
        }
        let server = format!("the server at {}", self.base_url);
        let response = vision::send_within(&server, self.idle_gap, call)
            .await?
            .map_err(|e| self.unreachable(&e))?;
        let status = response.status();
        if !status.is_success() {
            let retry_after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, SystemTime::now()));
            let text = response.text().await.unwrap_or_default();
            return Err(self.refused(status.as_u16(), retry_after, model, &text));
        }
        self.read_stream(response, model, into_story, spent_before, sink)
            .await
    }

    /// Reads the events' pieces until `[DONE]` (into `sink`'s story when `into_story`): the
    /// answer and the tokens the server counted.
    async fn read_stream(
        &self,
        response: reqwest::Response,
        model: &str,
        into_story: bool,
        spent_before: &Usage,
        sink: &mut StorySink,
    ) -> Result<(String, Usage), StoryError> {
        let mut lines =
            vision::LineReader::new("the OpenAI-compatible server", response, self.idle_gap);
        let mut answer = String::new();
        let mut usage = Usage::default();
        let mut finish: Option<String> = None;
        while let Some(line) = lines.next_line().await? {
            // Server-sent events: `data:` lines carry the chunks; comments (`:`), `event:`,
            // `id:` and blank lines between events carry nothing for us.
            let Some(data) = line.strip_prefix("data:") else {
                continue;
            };
            let data = data.trim();
            if data == "[DONE]" {
                return match finish.as_deref() {
                    None | Some("stop") if !answer.trim().is_empty() => {
                        if into_story {
                            sink.progress(1.0);
                        }
                        Ok((answer, usage))
                    }
                    None | Some("stop") => {
                        Err(StoryError::transient(format!("{model} wrote nothing")))
                    }
                    Some("length") => Err(StoryError::permanent(format!(
                        "{model} stopped at its length limit before the story was finished \
                         (raise the server's max tokens or context length)"
                    ))),
                    Some("content_filter") => Err(StoryError::permanent(format!(
                        "{model}'s content filter stopped the story"
                    ))),
                    Some(other) => Err(StoryError::transient(format!(
                        "{model} stopped before the story was finished ({other})"
                    ))),
                };
            }
            let chunk: serde_json::Value = serde_json::from_str(data).map_err(|e| {
                StoryError::transient(format!(
                    "the server sent something that is not a chat completion ({e}): {}",
                    vision::shorten(data)
                ))
            })?;
            if let Some(error) = chunk.get("error") {
                let message = error
                    .get("message")
                    .and_then(|m| m.as_str())
                    .map(str::to_owned)
                    .unwrap_or_else(|| error.to_string());
                return Err(StoryError::transient(format!(
                    "the server failed while writing with {model}: {message}"
                )));
            }
            let choice = chunk.pointer("/choices/0");
            if let Some(text) = choice
                .and_then(|c| c.pointer("/delta/content"))
                .and_then(|t| t.as_str())
            {
                answer.push_str(text);
                if into_story {
                    sink.write(text);
                    sink.progress(vision::writing_progress(answer.len()));
                }
            }
            if let Some(reason) = choice
                .and_then(|c| c.get("finish_reason"))
                .and_then(|r| r.as_str())
            {
                finish = Some(reason.to_owned());
            }
            if let Some(counted) = chunk.get("usage").filter(|u| u.is_object()) {
                let count = |field: &str| counted.get(field).and_then(|n| n.as_u64()).unwrap_or(0);
                usage.input_tokens = count("prompt_tokens");
                usage.output_tokens = count("completion_tokens");
                sink.usage(spent_before.plus(&usage));
            }
        }
        Err(StoryError::transient(
            "the server's answer broke off before its end",
        ))
    }

    /// The error for a request that reached no server.
    fn unreachable(&self, error: &reqwest::Error) -> StoryError {
        if error.is_connect() {
            StoryError::Unreachable {
                message: format!(
                    "no OpenAI-compatible server is answering at {} (start it, or set \
                     openai.base-url to where it runs); its videos wait and start \
                     by themselves once it answers",
                    self.base_url
                ),
            }
        } else {
            error_for_transport("the OpenAI-compatible server", error)
        }
    }

    /// The error for a request the server answered with `status`.
    fn refused(
        &self,
        status: u16,
        retry_after: Option<Duration>,
        model: &str,
        body: &str,
    ) -> StoryError {
        let said = serde_json::from_str::<serde_json::Value>(body)
            .ok()
            .and_then(|v| {
                v.pointer("/error/message")
                    .and_then(|m| m.as_str())
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| body.trim().to_owned());
        if status == 404 && said.to_lowercase().contains("model") {
            return StoryError::ModelUnavailable {
                message: format!(
                    "the server at {} has no model '{model}' ({}): choose one it serves \
                     (openai.model), then resume the storyteller",
                    self.base_url,
                    vision::shorten(&said)
                ),
            };
        }
        if matches!(status, 401 | 403) && !self.api_key.is_set() {
            return StoryError::Auth {
                message: format!(
                    "the server at {} wants an API key (HTTP {status}): set OPENAI_API_KEY, \
                     then resume the storyteller",
                    self.base_url
                ),
            };
        }
        error_for_status("The OpenAI-compatible server", status, retry_after, &said)
    }
}

impl Storyteller for OpenAiStoryteller {
    fn name(&self) -> &str {
        NAME
    }

    fn default_model(&self) -> &str {
        &self.default_model
    }

    fn presets(&self) -> &[&'static str] {
        &vision::PRESETS
    }

    /// Any model the server serves: which ones is the server's to say when the job runs.
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
            let mut call = self
                .client
                .get(format!("{}/v1/models", self.base_url))
                .timeout(Duration::from_secs(10));
            let key = self.api_key.current().await;
            if let Some(key) = &key {
                call = call.bearer_auth(key);
            }
            let response = call.send().await.map_err(|e| self.unreachable(&e))?;
            if !response.status().is_success() {
                let status = response.status().as_u16();
                let retry_after = response
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| parse_retry_after(v, SystemTime::now()));
                let body = response.text().await.unwrap_or_default();
                return Err(self.refused(status, retry_after, model, &body));
            }
            let listed: serde_json::Value = response.json().await.unwrap_or_default();
            let ids: Vec<&str> = listed["data"]
                .as_array()
                .map(|data| data.iter().filter_map(|m| m["id"].as_str()).collect())
                .unwrap_or_default();
            // A local server serves the one model it loaded whatever it is called.
            if model == DEFAULT_MODEL || ids.is_empty() || ids.contains(&model) {
                Ok(format!(
                    "the server at {} answers for {model}",
                    self.base_url
                ))
            } else {
                Err(StoryError::ModelUnavailable {
                    message: format!(
                        "the server at {} has no model '{model}' (it has: {}): choose one it \
                         serves (openai.model)",
                        self.base_url,
                        ids.join(", ")
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

impl Chat for OpenAiStoryteller {
    fn chat<'a>(
        &'a self,
        model: &'a str,
        text: &'a str,
        images: &'a [Vec<u8>],
        into_story: bool,
        spent_before: &'a Usage,
        sink: &'a mut StorySink,
    ) -> BoxFuture<'a, Result<(String, Usage), StoryError>> {
        Box::pin(self.complete(model, text, images, into_story, spent_before, sink))
    }
}
