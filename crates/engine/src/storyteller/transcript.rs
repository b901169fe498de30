//! What is said in a video, for the image-model storytellers, which see only still pictures:
//! the sound is taken out with ffmpeg (16 kHz mono WAV, streamed from disk), sent to an
//! OpenAI-compatible `/v1/audio/transcriptions` endpoint (whisper.cpp's server, faster-whisper
//! servers, OpenAI itself) as `multipart/form-data` with its `model`, and the text it answers
//! joins the prompt. Set by `transcription.base-url` (the part before `/v1`) and
//! `transcription.model`.
//!
//! A transcription server that is not running pauses the storyteller, saying so, like its own
//! server would: the person asked for stories with the sound, and gets them once it answers.
//! A recording the server cannot read (a 4xx) is told without its words, and the story says so.

use super::http::{error_for_status, error_for_transport};
use super::StoryError;
use crate::config::ServiceConfig;
use crate::media::Media;
use crate::secrets::ApiKey;
use std::path::Path;
use std::time::Duration;

/// The longest transcript put in a prompt, in characters (about an hour of speech); the rest
/// is left out, saying so.
pub(crate) const MAX_TRANSCRIPT: usize = 40_000;

/// What became of the sound.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Heard {
    /// The words said (empty when nothing was said).
    Words(String),
    /// The server could not read the recording; why.
    Unreadable(String),
}

/// An OpenAI-compatible transcription endpoint.
#[derive(Clone)]
pub struct Transcriber {
    base_url: String,
    model: String,
    key: ApiKey,
    client: reqwest::Client,
    timeout: Duration,
}

impl std::fmt::Debug for Transcriber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transcriber")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .finish_non_exhaustive()
    }
}

impl Transcriber {
    /// The endpoint at `base_url` (the part before `/v1`) using `model`, waiting at most
    /// `timeout` for a recording's transcript; `key` is sent as a bearer token when set.
    pub fn new(base_url: &str, model: &str, key: ApiKey, timeout: Duration) -> Self {
        let base_url = base_url.trim_end_matches('/');
        let base_url = base_url.strip_suffix("/v1").unwrap_or(base_url).to_owned();
        Transcriber {
            base_url,
            model: model.to_owned(),
            key,
            client: super::vision::streaming_client(super::vision::CONNECT_TIMEOUT),
            timeout,
        }
    }

    /// The one the settings ask for, if any (`transcription.base-url`). The OpenAI key goes
    /// with it when it is the OpenAI-compatible server's own address.
    pub fn from_config(config: &ServiceConfig, openai_key: &ApiKey) -> Option<Self> {
        let base_url = config.text("transcription.base-url")?;
        let model = config
            .text("transcription.model")
            .unwrap_or_else(|| "whisper-1".to_owned());
        let same_server = config.text("openai.base-url").as_deref() == Some(base_url.as_str());
        let key = if same_server {
            openai_key.clone()
        } else {
            ApiKey::default()
        };
        Some(Self::new(
            &base_url,
            &model,
            key,
            config.seconds("transcription.timeout"),
        ))
    }

    /// The words said in `source`'s first audio stream; the WAV is written in `work_dir` and
    /// removed after.
    pub async fn transcribe(
        &self,
        media: &Media,
        source: &Path,
        work_dir: &Path,
    ) -> Result<Heard, StoryError> {
        tokio::fs::create_dir_all(work_dir).await.map_err(|e| {
            StoryError::transient(format!(
                "the folder for the sound, {}, could not be made: {e}",
                work_dir.display()
            ))
        })?;
        let wav = work_dir.join(format!("speech-{}.wav", uuid::Uuid::now_v7().simple()));
        media.extract_speech(source, &wav).await?;
        let heard = self.send(&wav).await;
        let _ = tokio::fs::remove_file(&wav).await;
        heard
    }

    async fn send(&self, wav: &Path) -> Result<Heard, StoryError> {
        let file = tokio::fs::File::open(wav).await.map_err(|e| {
            StoryError::transient(format!("the extracted sound could not be read: {e}"))
        })?;
        let size = file.metadata().await.map(|m| m.len()).unwrap_or(0);
        let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::new(file));
        let part = reqwest::multipart::Part::stream_with_length(body, size)
            .file_name("speech.wav")
            .mime_str("audio/wav")
            .map_err(|e| StoryError::permanent(format!("the sound's type: {e}")))?;
        let form = reqwest::multipart::Form::new()
            .text("model", self.model.clone())
            .text("response_format", "json")
            .part("file", part);
        let mut call = self
            .client
            .post(format!("{}/v1/audio/transcriptions", self.base_url))
            .multipart(form)
            .timeout(self.timeout);
        if let Some(key) = self.key.current().await {
            call = call.bearer_auth(key);
        }
        let response = call.send().await.map_err(|e| {
            if e.is_connect() {
                StoryError::Unreachable {
                    message: format!(
                        "no transcription server is answering at {} (start it, or change \
                         transcription.base-url, or unset it to tell videos without their \
                         words); its videos wait and start by themselves once it answers",
                        self.base_url
                    ),
                }
            } else if e.is_timeout() {
                StoryError::transient(format!(
                    "the transcription server at {} took more than {} s \
                     (transcription.timeout)",
                    self.base_url,
                    self.timeout.as_secs()
                ))
            } else {
                error_for_transport("the transcription server", &e)
            }
        })?;
        let status = response.status().as_u16();
        let text = response
            .text()
            .await
            .map_err(|e| error_for_transport("the transcription server", &e))?;
        if !(200..300).contains(&status) {
            let said = serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| {
                    v.pointer("/error/message")
                        .or_else(|| v.get("error"))
                        .or_else(|| v.get("detail"))
                        .and_then(|m| m.as_str())
                        .map(str::to_owned)
                })
                .unwrap_or_else(|| text.trim().to_owned());
            if matches!(status, 400 | 413 | 415 | 422) {
                return Ok(Heard::Unreadable(format!(
                    "HTTP {status}: {}",
                    super::vision::shorten(&said)
                )));
            }
            return Err(error_for_status(
                "The transcription server",
                status,
                None,
                &said,
            ));
        }
        // `json` answers `{"text": …}`; a server that answers plain text is taken at its word.
        let words = match serde_json::from_str::<serde_json::Value>(&text) {
            Ok(value) => value
                .get("text")
                .and_then(|t| t.as_str())
                .map(str::to_owned)
                .ok_or_else(|| {
                    StoryError::transient(format!(
                        "the transcription server answered without a text: {}",
                        super::vision::shorten(&text)
                    ))
                })?,
            Err(_) => text,
        };
        Ok(Heard::Words(limit(
            words.split_whitespace().collect::<Vec<_>>().join(" "),
        )))
    }
}

/// `words`, cut at a word boundary to [`MAX_TRANSCRIPT`] characters.
fn limit(words: String) -> String {
    if words.chars().count() <= MAX_TRANSCRIPT {
        return words;
    }
    let cut: String = words.chars().take(MAX_TRANSCRIPT).collect();
    let cut = cut.rsplit_once(' ').map_or(cut.as_str(), |(kept, _)| kept);
    format!("{cut} […the rest is left out]")
}
