//! Telling a video with an image model, the same for every protocol: look at the video (the
//! job's own analysis: keyframes and facts), then send the keyframes with the facts in one
//! request and stream the story.
//!
//! Some vision models take one image per message (Llama 3.2 Vision in Ollama, several
//! llama.cpp builds). For those, the story is told in two passes: each keyframe is described
//! alone, then the story is written from those notes, the facts and the first frame. A model
//! is taken for one of those when the settings name it (`NAME.one-image-models`), or as soon
//! as a server refuses several images for it: that attempt goes on in two passes at once, and
//! so does every later video told with that model while the app runs. The notes are a
//! checkpoint: an attempt that fails after three of eight keyframes leaves the next one five
//! to describe.
//!
//! What is said in the video joins the prompt when a transcription server is set
//! ([`super::transcript`]); the transcript is a checkpoint too. A video with sound told
//! without its words says so at the end of its story, so no reader takes silence in the story
//! for silence in the video.

use super::transcript::{Heard, Transcriber};
use super::vision::{self, ANALYSIS_END};
use super::{BoxFuture, StoryError, StoryRequest, StorySink};
use crate::job::{Stage, Usage};
use crate::media::{clock, Media};
use std::collections::HashSet;
use std::sync::Mutex;

/// One request to an image model, as its protocol makes it.
pub trait Chat: Send + Sync {
    /// Sends `text` with `images` (JPEGs) to `model`. The answer streams into `sink`'s story
    /// when `into_story`; either way it is returned with the tokens it took. As the tokens
    /// become known they are told to `sink` added to `spent_before`, so an attempt that fails
    /// later still books what it spent.
    fn chat<'a>(
        &'a self,
        model: &'a str,
        text: &'a str,
        images: &'a [Vec<u8>],
        into_story: bool,
        spent_before: &'a Usage,
        sink: &'a mut StorySink,
    ) -> BoxFuture<'a, Result<(String, Usage), StoryError>>;
}

/// The models that take one image per message: those the settings name, and those a server
/// was seen to refuse several images for.
#[derive(Debug, Default)]
pub struct OneImageModels {
    named: Vec<String>,
    // std Mutex: a set looked up or added to, never held across an await.
    learnt: Mutex<HashSet<String>>,
}

impl OneImageModels {
    /// The models in `list` (comma-separated; `llama3.2-vision` also covers
    /// `llama3.2-vision:11b`).
    pub fn named(list: Option<&str>) -> Self {
        OneImageModels {
            named: list
                .unwrap_or_default()
                .split(',')
                .map(|m| m.trim().to_owned())
                .filter(|m| !m.is_empty() && m != "none")
                .collect(),
            learnt: Mutex::new(HashSet::new()),
        }
    }

    /// Whether `model` takes one image per message.
    pub fn takes_one(&self, model: &str) -> bool {
        let family = model.split(':').next().unwrap_or(model);
        self.named.iter().any(|m| m == model || m == family)
            || self
                .learnt
                .lock()
                .is_ok_and(|learnt| learnt.contains(model))
    }

    fn learn(&self, model: &str) {
        if let Ok(mut learnt) = self.learnt.lock() {
            learnt.insert(model.to_owned());
        }
    }
}

/// Whether `error` is a server saying the model takes only one image per message (each
/// server words it its own way).
pub fn refuses_several_images(error: &StoryError) -> bool {
    let message = error.to_string().to_lowercase();
    [
        "one image",
        "single image",
        "1 image",
        "multiple images",
        "more than one image",
        "too many images",
    ]
    .iter()
    .any(|words| message.contains(words))
}

/// How an image-model storyteller tells a video.
pub struct Teller<'a> {
    /// Its requests.
    pub chat: &'a dyn Chat,
    /// Its name.
    pub name: &'a str,
    /// ffmpeg and ffprobe.
    pub media: &'a Media,
    /// The models it tells in two passes.
    pub one_image: &'a OneImageModels,
    /// Where what is said comes from, if anywhere.
    pub transcriber: Option<&'a Transcriber>,
}

/// What an attempt saves for the next: the transcript and the keyframes' notes, kept in one
/// checkpoint.
struct Kept {
    saved: serde_json::Map<String, serde_json::Value>,
    checkpoints: super::Checkpointer,
}

impl Kept {
    fn new(request: &StoryRequest, sink: &StorySink) -> Self {
        let saved = match &request.checkpoint {
            Some(serde_json::Value::Object(saved)) => saved.clone(),
            _ => serde_json::Map::new(),
        };
        Kept {
            saved,
            checkpoints: sink.checkpointer(),
        }
    }

    fn keep(&mut self, key: &str, value: serde_json::Value) {
        self.saved.insert(key.to_owned(), value);
        self.checkpoints
            .save(serde_json::Value::Object(self.saved.clone()));
    }
}

/// A note at the end of a story told without the sound of a video that has some.
pub fn unheard_note(heard: Option<&Heard>) -> String {
    match heard {
        Some(Heard::Unreadable(why)) => format!(
            "\n\n*Told from the pictures alone: the transcription server could not read the \
             sound ({why}).*"
        ),
        _ => "\n\n*Told from the pictures alone: the sound was not listened to.*".to_owned(),
    }
}

/// Tells `request`'s video as `teller` does: in one request, or in two passes for a model
/// that takes one image per message.
pub async fn tell(
    teller: Teller<'_>,
    request: &StoryRequest,
    sink: &mut StorySink,
) -> Result<Usage, StoryError> {
    let chat = teller.chat;
    let instruction = vision::instruction(teller.name, &request.preset)?;
    let (analysis, jpegs) = vision::look(teller.media, request, sink, ANALYSIS_END).await?;
    let mut kept = Kept::new(request, sink);
    // Sound worth listening to: an audio track that is not silence (−70 LUFS).
    let has_sound = analysis
        .audio
        .as_ref()
        .and_then(|audio| audio.integrated_lufs)
        .is_some_and(|lufs| lufs > -69.0);
    let heard = match (teller.transcriber, has_sound) {
        (Some(transcriber), true) => {
            Some(hear(transcriber, teller.media, request, sink, &mut kept).await?)
        }
        _ => None,
    };
    let file = vision::file_name(request);
    let prompt = vision::prompt(
        instruction,
        &request.style,
        &file,
        &analysis,
        heard.as_ref(),
    );
    let model = request.model.as_str();
    let mut told = None;
    if !teller.one_image.takes_one(model) || jpegs.len() < 2 {
        sink.stage(Stage::Writing);
        match chat
            .chat(model, &prompt, &jpegs, true, &Usage::default(), sink)
            .await
        {
            Err(error) if refuses_several_images(&error) && sink.text().is_empty() => {
                tracing::info!(model, error = %error, "the model takes one image per message; describing the keyframes one at a time");
                teller.one_image.learn(model);
            }
            answered => told = Some(answered.map(|(_, usage)| usage)?),
        }
    }
    let usage = match told {
        Some(usage) => usage,
        None => {
            two_passes(
                chat, request, sink, &mut kept, &analysis, &jpegs, &prompt, &file,
            )
            .await?
        }
    };
    if has_sound && !matches!(heard, Some(Heard::Words(_))) {
        sink.write(&unheard_note(heard.as_ref()));
    }
    Ok(usage)
}

/// What is said in the video: the transcript an earlier attempt kept, or a new one.
async fn hear(
    transcriber: &Transcriber,
    media: &Media,
    request: &StoryRequest,
    sink: &mut StorySink,
    kept: &mut Kept,
) -> Result<Heard, StoryError> {
    if let Some(saved) = kept.saved.get("transcript") {
        if saved.get("contentHash").and_then(|h| h.as_str()) == Some(&request.content_hash) {
            if let Some(words) = saved.get("words").and_then(|w| w.as_str()) {
                return Ok(Heard::Words(words.to_owned()));
            }
        }
    }
    sink.stage(Stage::Analysing);
    let work_dir = media.thumbnails_dir(&request.content_hash);
    let heard = transcriber
        .transcribe(media, &request.source, &work_dir)
        .await?;
    if let Heard::Words(words) = &heard {
        kept.keep(
            "transcript",
            serde_json::json!({ "contentHash": request.content_hash, "words": words }),
        );
    }
    Ok(heard)
}

/// The keyframes' notes an earlier attempt saved for this file and model.
fn saved_notes(kept: &Kept, request: &StoryRequest) -> Vec<String> {
    let Some(saved) = kept.saved.get("notes") else {
        return Vec::new();
    };
    let fits = saved.get("contentHash").and_then(|h| h.as_str()) == Some(&request.content_hash)
        && saved.get("model").and_then(|m| m.as_str()) == Some(&request.model);
    if !fits {
        return Vec::new();
    }
    saved
        .get("notes")
        .and_then(|n| n.as_array())
        .map(|notes| {
            notes
                .iter()
                .filter_map(|n| n.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[allow(clippy::too_many_arguments)]
async fn two_passes(
    chat: &dyn Chat,
    request: &StoryRequest,
    sink: &mut StorySink,
    kept: &mut Kept,
    analysis: &crate::media::Analysis,
    jpegs: &[Vec<u8>],
    prompt: &str,
    file: &str,
) -> Result<Usage, StoryError> {
    let model = request.model.as_str();
    let keyframes = &analysis.keyframes;
    let mut notes = saved_notes(kept, request);
    notes.truncate(keyframes.len());
    let mut spent = Usage::default();
    // Describing the keyframes is the second half of looking, up to where writing starts.
    let looked = ANALYSIS_END * 0.8;
    for (index, keyframe) in keyframes.iter().enumerate().skip(notes.len()) {
        sink.stage(Stage::Analysing);
        sink.progress(looked + (ANALYSIS_END - looked) * index as f64 / keyframes.len() as f64);
        let asked = format!(
            "This image is frame {} of {} from the video \"{file}\", at {}. Describe what it \
             shows in one or two sentences: the setting, who or what is there, what seems to \
             be happening, the light and colours. Say only what is visible; do not guess \
             names or places.",
            index + 1,
            keyframes.len(),
            clock(keyframe.time)
        );
        let (note, usage) = chat
            .chat(
                model,
                &asked,
                std::slice::from_ref(&jpegs[index]),
                false,
                &spent,
                sink,
            )
            .await?;
        spent = spent.plus(&usage);
        sink.usage(spent.clone());
        notes.push(note.split_whitespace().collect::<Vec<_>>().join(" "));
        kept.keep(
            "notes",
            serde_json::json!({
                "contentHash": request.content_hash,
                "model": model,
                "notes": notes,
            }),
        );
    }
    let mut text = format!(
        "{prompt}\nThe model reading this takes one image at a time, so each keyframe was \
         described on its own first; the image sent is the first keyframe. What each \
         keyframe shows:\n"
    );
    for (index, (keyframe, note)) in keyframes.iter().zip(&notes).enumerate() {
        text.push_str(&format!(
            "- Image {} at {}: {note}\n",
            index + 1,
            clock(keyframe.time)
        ));
    }
    sink.stage(Stage::Writing);
    let (_, usage) = chat
        .chat(model, &text, &jpegs[..1], true, &spent, sink)
        .await?;
    Ok(spent.plus(&usage))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_image_models_are_named_or_learnt() {
        let models = OneImageModels::named(Some("llama3.2-vision, minicpm-v"));
        assert!(models.takes_one("llama3.2-vision"));
        assert!(models.takes_one("llama3.2-vision:11b"));
        assert!(models.takes_one("minicpm-v"));
        assert!(!models.takes_one("llava"));
        models.learn("llava");
        assert!(models.takes_one("llava"));
        assert!(!OneImageModels::named(Some("none")).takes_one("none"));
    }

    #[test]
    fn each_servers_words_for_one_image_are_recognised() {
        for said in [
            "Ollama failed while writing with llama3.2-vision: vision model only supports a single image per message",
            "The OpenAI-compatible server refused the request (HTTP 400): Only one image is supported",
            "HTTP 400: At most 1 image(s) may be provided in one request.",
            "this model does not support multiple images",
        ] {
            assert!(
                refuses_several_images(&StoryError::permanent(said)),
                "{said}"
            );
        }
        assert!(!refuses_several_images(&StoryError::permanent(
            "the image could not be decoded"
        )));
    }
}
