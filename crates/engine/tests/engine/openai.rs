//! The OpenAI-compatible storyteller against a local server speaking `/v1/chat/completions`
//! with server-sent events: real ffmpeg on a real video, the stream reassembled, the faults
//! told apart, and the key kept out of everything but its header.

use crate::support::{self, Look};
use std::path::Path;
use std::time::Duration;
use storyteller_engine::storyteller::openai::OpenAiStoryteller;
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
    assert_eq!(sink.text(), pieces.concat());
    assert_eq!((usage.input_tokens, usage.output_tokens), (2210, 87));
    let mut deltas = Vec::new();
    let mut seen = String::new();
    while let Some(envelope) = events.try_recv() {
        seen.push_str(&serde_json::to_string(&envelope).unwrap());
        if let Event::StoryDelta { text, .. } = envelope.event {
            deltas.push(text);
        }
    }
    assert_eq!(deltas, pieces);
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
