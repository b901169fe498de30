//! The OpenAI-compatible storyteller against a local server speaking `/v1/chat/completions`
//! with server-sent events: real ffmpeg on a real video, the stream reassembled, the faults
//! told apart, and the key kept out of everything but its header.

use crate::support::{self, Look};
use std::path::Path;
use std::time::Duration;
use storyteller_engine::storyteller::openai::OpenAiStoryteller;
use storyteller_engine::storyteller::twopass::unheard_note;
use storyteller_engine::storyteller::{StoryError, StoryRequest, Storyteller};
use storyteller_engine::{Event, JobId};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const KEY: &str = "sk-test-5f0c1e2d3a4b";

fn request(source: &Path, preset: &str) -> StoryRequest {
    StoryRequest {
        job_id: JobId::new(),
        source: source.to_owned(),
        content_hash: storyteller_engine::intake::hash_file(source).unwrap(),
        preset: preset.into(),
        style: Default::default(),
        model: "qwen2.5-vl".into(),
        checkpoint: None,
        cancelled: Default::default(),
    }
}

/// The events of a streamed chat completion: a role chunk, the pieces, the finish, the usage.
fn sse(pieces: &[&str], finish: &str) -> String {
    let chunk = |delta: serde_json::Value, finish: serde_json::Value| {
        serde_json::json!({
            "id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1764658800,
            "model": "qwen2.5-vl",
            "choices": [{ "index": 0, "delta": delta, "finish_reason": finish }],
        })
    };
    let mut body = format!(
        ": a comment line\n\ndata: {}\n\n",
        chunk(
            serde_json::json!({ "role": "assistant", "content": "" }),
            serde_json::Value::Null
        )
    );
    for piece in pieces {
        body.push_str(&format!(
            "data: {}\n\n",
            chunk(
                serde_json::json!({ "content": piece }),
                serde_json::Value::Null
            )
        ));
    }
    body.push_str(&format!(
        "data: {}\n\n",
        chunk(serde_json::json!({}), serde_json::json!(finish))
    ));
    body.push_str(
        "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"choices\":[],\
         \"usage\":{\"prompt_tokens\":2210,\"completion_tokens\":87,\"total_tokens\":2297}}\n\n",
    );
    body.push_str("data: [DONE]\n\n");
    body
}

fn streamed(body: String) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(body, "text/event-stream")
}

async fn server_answering(answer: ResponseTemplate) -> MockServer {
    support::server_answering("/v1/chat/completions", answer).await
}

fn video(dir: &Path) -> std::path::PathBuf {
    support::two_shots(dir, "market.mp4", Look::Colour("orange"))
}

#[tokio::test]
async fn the_keyframes_go_as_data_urls_and_the_event_stream_becomes_the_story() {
    let dir = tempfile::tempdir().unwrap();
    let video = video(dir.path());
    let pieces = ["Orange ", "fills the frame, ", "then bars — ", "fin."];
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(header("authorization", format!("Bearer {KEY}").as_str()))
        .respond_with(streamed(sse(&pieces, "stop")))
        .mount(&server)
        .await;
    // The address as people paste it, with its /v1.
    let base = format!("{}/v1/", server.uri());
    let teller =
        OpenAiStoryteller::with_media(&base, "default", Some(KEY.into()), support::media());
    assert!(
        !format!("{teller:?}").contains(KEY),
        "the key shows in {teller:?}"
    );

    let (mut sink, mut events) = support::sink_with_events();
    let usage = teller
        .tell(&request(&video, "narrative"), &mut sink)
        .await
        .unwrap();
    assert_eq!(
        sink.text(),
        format!("{}{}", pieces.concat(), unheard_note(None))
    );
    assert_eq!((usage.input_tokens, usage.output_tokens), (2210, 87));
    let mut deltas = Vec::new();
    let mut seen = String::new();
    while let Some(envelope) = events.try_recv() {
        seen.push_str(&serde_json::to_string(&envelope).unwrap());
        if let Event::StoryDelta { text, .. } = envelope.event {
            deltas.push(text);
        }
    }
    // Each piece as it came, then the note that the sound was not heard.
    let note = unheard_note(None);
    let mut expected: Vec<&str> = pieces.to_vec();
    expected.push(&note);
    assert_eq!(deltas, expected);
    assert!(!seen.contains(KEY), "the key reached an event");

    let sent = server.received_requests().await.unwrap();
    let body: serde_json::Value = serde_json::from_slice(&sent[0].body).unwrap();
    assert_eq!(body["model"], "qwen2.5-vl");
    assert_eq!(body["stream"], true);
    assert_eq!(body["stream_options"]["include_usage"], true);
    let content = body["messages"][0]["content"].as_array().unwrap();
    assert_eq!(content[0]["type"], "text");
    let prompt = content[0]["text"].as_str().unwrap();
    assert!(
        prompt.contains("market.mp4") && prompt.contains("Length: 0:04"),
        "{prompt}"
    );
    let images: Vec<&str> = content[1..]
        .iter()
        .map(|part| {
            assert_eq!(part["type"], "image_url");
            part["image_url"]["url"].as_str().unwrap()
        })
        .collect();
    assert!(images.len() >= 2);
    assert!(images
        .iter()
        .all(|url| url.starts_with("data:image/jpeg;base64,/9j/")));
    assert!(
        !String::from_utf8_lossy(&sent[0].body).contains(KEY),
        "the key is in the body"
    );
}

#[tokio::test]
async fn each_fault_of_the_server_gets_its_own_kind_and_words() {
    let dir = tempfile::tempdir().unwrap();
    let video = video(dir.path());
    let cases: Vec<(ResponseTemplate, Option<&str>, &str, &str)> = vec![
        (
            ResponseTemplate::new(404).set_body_string(
                r#"{"error":{"message":"The model `qwen2.5-vl` does not exist","type":"invalid_request_error","code":"model_not_found"}}"#,
            ),
            None,
            "model",
            "has no model 'qwen2.5-vl'",
        ),
        (ResponseTemplate::new(401).set_body_string(r#"{"error":{"message":"Invalid API key"}}"#), None, "auth", "OPENAI_API_KEY"),
        (ResponseTemplate::new(401).set_body_string(r#"{"error":{"message":"Incorrect API key provided"}}"#), Some(KEY), "auth", "refused the API key"),
        (
            ResponseTemplate::new(429)
                .insert_header("retry-after", "17")
                .set_body_string(r#"{"error":{"message":"Rate limit reached"}}"#),
            Some(KEY),
            "rate limited 17s",
            "slow down",
        ),
        (ResponseTemplate::new(400).set_body_string(r#"{"error":{"message":"image too large"}}"#), None, "permanent", "image too large"),
        (streamed(sse(&["Orange "], "length")), None, "permanent", "length limit"),
        (streamed(sse(&["Orange "], "content_filter")), None, "permanent", "content filter"),
        (streamed("data: {\"choices\":[{\"delta\":{\"content\":\"Orange \"}}]}\n\n".into()), None, "transient", "broke off"),
        (streamed("data: <html>bad gateway</html>\n\n".into()), None, "transient", "not a chat completion"),
        (streamed("data: {\"error\":{\"message\":\"CUDA out of memory\"}}\n\n".into()), None, "transient", "CUDA out of memory"),
    ];
    for (answer, key, kind, says) in cases {
        let server = server_answering(answer).await;
        let teller = OpenAiStoryteller::with_media(
            &server.uri(),
            "default",
            key.map(str::to_owned),
            support::media(),
        );
        let error = teller
            .tell(&request(&video, "summary"), &mut support::sink())
            .await
            .unwrap_err();
        let got = match &error {
            StoryError::ModelUnavailable { .. } => "model".to_owned(),
            StoryError::Auth { .. } => "auth".to_owned(),
            StoryError::RateLimited {
                retry_after: Some(after),
                ..
            } => format!("rate limited {}s", after.as_secs()),
            StoryError::Permanent { .. } => "permanent".to_owned(),
            StoryError::Transient {
                retry_after: Some(after),
                ..
            } => format!("transient {}s", after.as_secs()),
            StoryError::Transient { .. } => "transient".to_owned(),
            other => format!("{other:?}"),
        };
        assert_eq!(got, kind, "{says}: {error:?}");
        assert!(error.to_string().contains(says), "{says}: {error}");
        assert!(
            !error.to_string().contains(KEY),
            "the key is in the error: {error}"
        );
    }

    // No server at all: the storyteller is unreachable, naming the address.
    let base = support::nobody_listening();
    let teller = OpenAiStoryteller::with_media(&base, "default", None, support::media())
        .with_idle_gap(Duration::from_secs(5));
    let error = teller
        .tell(&request(&video, "social"), &mut support::sink())
        .await
        .unwrap_err();
    assert!(matches!(error, StoryError::Unreachable { .. }), "{error:?}");
    assert!(
        error.to_string().contains(&format!("answering at {base}")),
        "{error}"
    );
}

/// A server whose model takes one image per message, as llama.cpp's and vLLM's say: several
/// images are refused; one image with a request to describe it gets a note; one image with
/// the notes gets the story.
fn one_image_server(story: &'static [&'static str]) -> impl wiremock::Respond {
    move |request: &wiremock::Request| {
        let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
        let content = body["messages"][0]["content"].as_array().unwrap().clone();
        let images = content.iter().filter(|p| p["type"] == "image_url").count();
        let text = content[0]["text"].as_str().unwrap_or_default().to_owned();
        if images > 1 {
            return ResponseTemplate::new(400).set_body_json(serde_json::json!({
                "error": { "code": 400, "type": "invalid_request_error",
                           "message": "At most 1 image(s) may be provided in one request." }
            }));
        }
        if let Some(rest) = text.strip_prefix("This image is frame ") {
            let frame = rest.split_whitespace().next().unwrap_or("?").to_owned();
            let note = format!("Frame {frame} shows orange light.");
            return streamed(sse(&[note.as_str()], "stop"));
        }
        streamed(sse(story, "stop"))
    }
}

#[tokio::test]
async fn a_model_that_takes_one_image_is_told_in_two_passes_from_notes_kept_as_a_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let video = video(dir.path());
    const STORY: &[&str] = &["From the notes, ", "an orange market."];
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(one_image_server(STORY))
        .mount(&server)
        .await;
    let teller = OpenAiStoryteller::with_media(&server.uri(), "default", None, support::media());

    // The first video: the several images are refused, and the same attempt goes on in two
    // passes, each keyframe described alone, then the story from the notes and one image.
    let (mut sink, _events) = support::sink_with_events();
    let usage = teller
        .tell(&request(&video, "narrative"), &mut sink)
        .await
        .unwrap();
    assert_eq!(
        sink.text(),
        format!("{}{}", STORY.concat(), unheard_note(None)),
        "the notes are not in the story"
    );
    let sent = server.received_requests().await.unwrap();
    let bodies: Vec<serde_json::Value> = sent
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    let images_in = |body: &serde_json::Value| {
        body["messages"][0]["content"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["type"] == "image_url")
            .count()
    };
    assert!(images_in(&bodies[0]) >= 2, "the first request has them all");
    let frames = images_in(&bodies[0]);
    assert_eq!(
        bodies.len(),
        1 + frames + 1,
        "one note a keyframe, then the story"
    );
    assert!(bodies[1..].iter().all(|b| images_in(b) == 1));
    let last = bodies.last().unwrap()["messages"][0]["content"][0]["text"]
        .as_str()
        .unwrap()
        .to_owned();
    for frame in 1..=frames {
        assert!(
            last.contains(&format!("Frame {frame} shows orange light.")),
            "{last}"
        );
    }
    assert!(last.contains("Length: 0:04"), "the facts go too: {last}");
    // Every request's tokens are counted: the refused one took none.
    assert_eq!(usage.input_tokens, 2210 * (frames as u64 + 1));
    assert_eq!(usage.output_tokens, 87 * (frames as u64 + 1));
    let checkpoint = sink
        .watch_checkpoints()
        .borrow()
        .as_deref()
        .cloned()
        .unwrap();
    assert_eq!(
        checkpoint["notes"]["notes"].as_array().unwrap().len(),
        frames
    );

    // The next video with that model goes straight to two passes; an attempt that finds the
    // notes of an earlier one describes only the keyframes still to do.
    server.reset().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(one_image_server(STORY))
        .mount(&server)
        .await;
    let mut saved = checkpoint.clone();
    saved["notes"]["notes"] = serde_json::json!(["Frame 1 shows orange light."]);
    let mut again = request(&video, "narrative");
    again.checkpoint = Some(saved);
    let (mut sink, _events) = support::sink_with_events();
    teller.tell(&again, &mut sink).await.unwrap();
    assert_eq!(
        sink.text(),
        format!("{}{}", STORY.concat(), unheard_note(None))
    );
    let sent = server.received_requests().await.unwrap();
    assert_eq!(
        sent.len(),
        frames,
        "no several-image request, no note made twice"
    );
    let bodies: Vec<serde_json::Value> = sent
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    assert!(bodies.iter().all(|b| images_in(b) == 1));
}

#[tokio::test]
async fn what_is_said_is_transcribed_once_and_joins_the_prompt() {
    use storyteller_engine::storyteller::transcript::Transcriber;
    let dir = tempfile::tempdir().unwrap();
    let video = video(dir.path());
    let pieces = ["A market ", "where someone says hello."];
    let chat = server_answering(streamed(sse(&pieces, "stop"))).await;
    let speech = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/audio/transcriptions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            serde_json::json!({ "text": " Hello,   and welcome\n to the market. " }),
        ))
        .mount(&speech)
        .await;
    let transcriber = |base: &str| {
        Transcriber::new(
            base,
            "whisper-1",
            Default::default(),
            Duration::from_secs(30),
        )
    };
    let teller = OpenAiStoryteller::with_media(&chat.uri(), "default", None, support::media())
        .with_transcriber(transcriber(&speech.uri()));
    let (mut sink, _events) = support::sink_with_events();
    teller
        .tell(&request(&video, "narrative"), &mut sink)
        .await
        .unwrap();
    assert_eq!(sink.text(), pieces.concat(), "told with its sound: no note");

    // The sound went as the documented form: the model's name and a 16 kHz mono WAV file.
    let sent = speech.received_requests().await.unwrap();
    assert_eq!(sent.len(), 1);
    let content_type = sent[0]
        .headers
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap();
    assert!(
        content_type.starts_with("multipart/form-data; boundary="),
        "{content_type}"
    );
    let body = &sent[0].body;
    let text = String::from_utf8_lossy(body);
    assert!(
        text.contains("name=\"model\"\r\n\r\nwhisper-1"),
        "{}",
        &text[..300.min(text.len())]
    );
    assert!(text.contains("name=\"file\"; filename=\"speech.wav\""));
    let riff = body
        .windows(4)
        .position(|w| w == b"RIFF")
        .expect("a WAV file");
    assert_eq!(&body[riff + 8..riff + 12], b"WAVE");
    let rate = u32::from_le_bytes(body[riff + 24..riff + 28].try_into().unwrap());
    let channels = u16::from_le_bytes(body[riff + 22..riff + 24].try_into().unwrap());
    assert_eq!((rate, channels), (16_000, 1));

    // The words joined the prompt, tidied.
    let asked: serde_json::Value =
        serde_json::from_slice(&chat.received_requests().await.unwrap()[0].body).unwrap();
    let prompt = asked["messages"][0]["content"][0]["text"].as_str().unwrap();
    assert!(
        prompt.contains("\"Hello, and welcome to the market.\""),
        "{prompt}"
    );
    assert!(prompt.contains("the words said are below"), "{prompt}");

    // Kept as a checkpoint: the next attempt does not transcribe again.
    let checkpoint = sink
        .watch_checkpoints()
        .borrow()
        .as_deref()
        .cloned()
        .unwrap();
    assert_eq!(
        checkpoint["transcript"]["words"],
        "Hello, and welcome to the market."
    );
    let mut again = request(&video, "narrative");
    again.checkpoint = Some(checkpoint);
    let (mut sink, _events) = support::sink_with_events();
    teller.tell(&again, &mut sink).await.unwrap();
    assert_eq!(speech.received_requests().await.unwrap().len(), 1);

    // A recording the server cannot read is told without its words, saying why.
    speech.reset().await;
    Mock::given(method("POST"))
        .and(path("/v1/audio/transcriptions"))
        .respond_with(ResponseTemplate::new(415).set_body_json(
            serde_json::json!({ "error": { "message": "unsupported audio format" } }),
        ))
        .mount(&speech)
        .await;
    let (mut sink, _events) = support::sink_with_events();
    teller
        .tell(&request(&video, "narrative"), &mut sink)
        .await
        .unwrap();
    assert!(
        sink.text().ends_with(
            "*Told from the pictures alone: the transcription server could not read the sound \
             (HTTP 415: unsupported audio format).*"
        ),
        "{}",
        sink.text()
    );

    // A transcription server that is not running pauses the storyteller, saying so.
    let stopped = OpenAiStoryteller::with_media(&chat.uri(), "default", None, support::media())
        .with_transcriber(transcriber(&support::nobody_listening()));
    let (mut sink, _events) = support::sink_with_events();
    let error = stopped
        .tell(&request(&video, "narrative"), &mut sink)
        .await
        .unwrap_err();
    assert!(matches!(error, StoryError::Unreachable { .. }), "{error:?}");
    assert!(
        error
            .to_string()
            .contains("no transcription server is answering"),
        "{error}"
    );
}
