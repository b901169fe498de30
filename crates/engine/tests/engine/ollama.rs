//! The Ollama storyteller against a local server speaking Ollama's `/api/chat` protocol: real
//! ffmpeg on a real video, the NDJSON stream reassembled, and every fault told apart.

use crate::support::{self, Look};
use base64::Engine as _;
use std::path::Path;
use std::time::Duration;
use storyteller_engine::storyteller::ollama::OllamaStoryteller;
use storyteller_engine::storyteller::twopass::unheard_note;
use storyteller_engine::storyteller::{StoryError, StoryRequest, Storyteller};
use storyteller_engine::{Event, JobId};
use wiremock::{MockServer, ResponseTemplate};

fn request(source: &Path, preset: &str) -> StoryRequest {
    StoryRequest {
        job_id: JobId::new(),
        source: source.to_owned(),
        content_hash: storyteller_engine::intake::hash_file(source).unwrap(),
        preset: preset.into(),
        style: Default::default(),
        model: "llava:13b".into(),
        checkpoint: None,
        cancelled: Default::default(),
    }
}

/// Ollama's stream: one JSON object a line, then the last with the counts.
fn ndjson(pieces: &[&str], last: &str) -> String {
    let mut body = String::new();
    for piece in pieces {
        let line = serde_json::json!({
            "model": "llava:13b",
            "created_at": "2026-12-02T07:00:00.000000Z",
            "message": { "role": "assistant", "content": piece },
            "done": false,
        });
        body.push_str(&line.to_string());
        body.push('\n');
    }
    body.push_str(last);
    body.push('\n');
    body
}

const DONE: &str = r#"{"model":"llava:13b","created_at":"2026-12-02T07:00:01Z","message":{"role":"assistant","content":""},"done":true,"done_reason":"stop","total_duration":5191566416,"load_duration":2154458,"prompt_eval_count":1791,"prompt_eval_duration":383809000,"eval_count":298,"eval_duration":4799921000}"#;

fn streamed(body: String) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(body, "application/x-ndjson")
}

async fn server_answering(answer: ResponseTemplate) -> MockServer {
    support::server_answering("/api/chat", answer).await
}

fn video(dir: &Path) -> std::path::PathBuf {
    support::two_shots(dir, "harbour.mp4", Look::Colour("navy"))
}

#[tokio::test]
async fn the_keyframes_and_facts_go_to_ollama_and_its_stream_becomes_the_story() {
    let dir = tempfile::tempdir().unwrap();
    let video = video(dir.path());
    let pieces = ["A navy ", "screen gives way ", "to test bars 🎬", "."];
    let server = server_answering(streamed(ndjson(&pieces, DONE))).await;
    let teller = OllamaStoryteller::with_media(&server.uri(), "llava", support::media());
    assert_eq!(teller.name(), "ollama");
    assert!(teller.has_model("llava:13b"), "any model Ollama has pulled");

    let (mut sink, mut events) = support::sink_with_events();
    let usage = teller
        .tell(&request(&video, "narrative"), &mut sink)
        .await
        .unwrap();
    assert_eq!(
        sink.text(),
        format!("{}{}", pieces.concat(), unheard_note(None))
    );
    assert_eq!((usage.input_tokens, usage.output_tokens), (1791, 298));
    // The story streamed as Ollama wrote it: one delta per piece, in order.
    let mut deltas = Vec::new();
    while let Some(envelope) = events.try_recv() {
        if let Event::StoryDelta { text, .. } = envelope.event {
            deltas.push(text);
        }
    }
    // Each piece as it came, then the note that the sound was not heard.
    let note = unheard_note(None);
    let mut expected: Vec<&str> = pieces.to_vec();
    expected.push(&note);
    assert_eq!(deltas, expected);

    // What was sent: the model asked for, streaming, the keyframes as JPEG images and the
    // measured facts in words.
    let sent = server.received_requests().await.unwrap();
    assert_eq!(sent.len(), 1);
    let body: serde_json::Value = serde_json::from_slice(&sent[0].body).unwrap();
    assert_eq!(body["model"], "llava:13b");
    assert_eq!(body["stream"], true);
    let message = &body["messages"][0];
    assert_eq!(message["role"], "user");
    let images = message["images"].as_array().unwrap();
    assert!(images.len() >= 2, "{} images", images.len());
    for image in images {
        let jpeg = base64::engine::general_purpose::STANDARD
            .decode(image.as_str().unwrap())
            .unwrap();
        assert_eq!(&jpeg[..2], [0xFF, 0xD8], "a JPEG");
    }
    let prompt = message["content"].as_str().unwrap();
    assert!(prompt.contains("harbour.mp4"), "{prompt}");
    assert!(prompt.contains("Length: 0:04"), "{prompt}");
    assert!(prompt.contains("the picture cuts at 0:02"), "{prompt}");
    assert!(
        prompt.contains(&format!("Image {} is at", images.len())),
        "{prompt}"
    );
    assert!(prompt.contains("LUFS"), "{prompt}");
}

#[tokio::test]
async fn a_missing_model_or_a_stopped_ollama_pauses_ollama_saying_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let video = video(dir.path());
    let server = server_answering(
        ResponseTemplate::new(404)
            .set_body_string(r#"{"error":"model \"llava:13b\" not found, try pulling it first"}"#),
    )
    .await;
    let teller = OllamaStoryteller::with_media(&server.uri(), "llava", support::media());
    let error = teller
        .tell(&request(&video, "narrative"), &mut support::sink())
        .await
        .unwrap_err();
    let StoryError::ModelUnavailable { message } = &error else {
        panic!("{error:?}");
    };
    assert!(message.contains("ollama pull llava:13b"), "{message}");

    // Nothing listens on a port just freed.
    let base = support::nobody_listening();
    let teller = OllamaStoryteller::with_media(&base, "llava", support::media());
    let error = teller
        .tell(&request(&video, "narrative"), &mut support::sink())
        .await
        .unwrap_err();
    let StoryError::Unreachable { message } = &error else {
        panic!("{error:?}");
    };
    assert!(
        message.contains(&format!("Ollama is not running at {base}")),
        "{message}"
    );
}

#[tokio::test]
async fn a_stream_that_breaks_errs_or_stops_short_fails_the_attempt_in_words() {
    let dir = tempfile::tempdir().unwrap();
    let video = video(dir.path());
    let cases = [
        // Cut off: no last line.
        (
            streamed(ndjson(
                &["A navy "],
                r#"{"message":{"content":"screen"},"done":false}"#,
            )),
            "broke off",
            false,
        ),
        // An error in the stream.
        (
            streamed(ndjson(
                &["A navy "],
                r#"{"error":"model runner has unexpectedly stopped"}"#,
            )),
            "unexpectedly stopped",
            false,
        ),
        // Not Ollama's answer at all.
        (
            streamed("<html>proxy error</html>\n".into()),
            "not its answer",
            false,
        ),
        // Stopped at the length limit: a story cut short is not a story.
        (
            streamed(ndjson(
                &["A navy "],
                r#"{"message":{"content":""},"done":true,"done_reason":"length","eval_count":9}"#,
            )),
            "length limit",
            true,
        ),
        // Ollama's own server error.
        (
            ResponseTemplate::new(500).set_body_string(r#"{"error":"out of memory"}"#),
            "out of memory",
            false,
        ),
    ];
    for (answer, says, permanent) in cases {
        let server = server_answering(answer).await;
        let teller = OllamaStoryteller::with_media(&server.uri(), "llava", support::media());
        let error = teller
            .tell(&request(&video, "summary"), &mut support::sink())
            .await
            .unwrap_err();
        assert!(error.to_string().contains(says), "{says}: {error:?}");
        let is_permanent = matches!(error, StoryError::Permanent { .. });
        assert_eq!(is_permanent, permanent, "{says}: {error:?}");
    }
}

#[tokio::test]
async fn an_ollama_that_goes_quiet_fails_the_attempt_instead_of_holding_the_queue() {
    let dir = tempfile::tempdir().unwrap();
    let video = video(dir.path());
    let server =
        server_answering(streamed(ndjson(&["late"], DONE)).set_delay(Duration::from_secs(5))).await;
    let teller = OllamaStoryteller::with_media(&server.uri(), "llava", support::media())
        .with_idle_gap(Duration::from_millis(500));
    let started = std::time::Instant::now();
    let error = teller
        .tell(&request(&video, "social"), &mut support::sink())
        .await
        .unwrap_err();
    assert!(matches!(error, StoryError::Transient { .. }), "{error:?}");
    assert!(error.to_string().contains("did not answer"), "{error}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_stream_that_stops_in_the_middle_fails_the_attempt_after_the_idle_gap() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let video = video(dir.path());
    // A server that sends the start of its answer, then nothing, holding the connection.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut request = vec![0u8; 1 << 20];
        let mut read = 0;
        // The whole request (its body holds the images), then the start of the answer.
        loop {
            let n = socket.read(&mut request[read..]).await.unwrap();
            read += n;
            let text = String::from_utf8_lossy(&request[..read]);
            if let Some(head_end) = text.find("\r\n\r\n") {
                let length: usize = text[..head_end]
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length: "))
                    .and_then(|l| l.trim().parse().ok())
                    .unwrap_or(0);
                if read >= head_end + 4 + length {
                    break;
                }
            }
            if n == 0 {
                return;
            }
        }
        let first = r#"{"message":{"role":"assistant","content":"A navy "},"done":false}"#;
        let head = "HTTP/1.1 200 OK\r\ncontent-type: application/x-ndjson\r\ntransfer-encoding: chunked\r\n\r\n";
        let chunk = format!("{:x}\r\n{first}\n\r\n", first.len() + 1);
        socket.write_all(head.as_bytes()).await.unwrap();
        socket.write_all(chunk.as_bytes()).await.unwrap();
        tokio::time::sleep(Duration::from_secs(30)).await;
    });
    let teller = OllamaStoryteller::with_media(&base, "llava", support::media())
        .with_idle_gap(Duration::from_millis(800));
    let mut sink = support::sink();
    let error = teller
        .tell(&request(&video, "narrative"), &mut sink)
        .await
        .unwrap_err();
    assert_eq!(
        sink.text(),
        "A navy ",
        "what came before the silence was streamed"
    );
    assert!(matches!(error, StoryError::Transient { .. }), "{error:?}");
    assert!(error.to_string().contains("stopped writing"), "{error}");
    server.abort();
}

/// Answers as Ollama does for a model that takes one image per message.
fn one_image_ollama(request: &wiremock::Request) -> ResponseTemplate {
    let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
    let message = &body["messages"][0];
    let images = message["images"].as_array().map_or(0, Vec::len);
    if images > 1 {
        return ResponseTemplate::new(500).set_body_json(serde_json::json!({
            "error": "vision model only supports a single image per message"
        }));
    }
    let text = message["content"].as_str().unwrap_or_default();
    let piece = if text.starts_with("This image is frame ") {
        "A note."
    } else {
        "The story."
    };
    streamed(ndjson(&[piece], DONE))
}

fn images_sent(sent: &[wiremock::Request]) -> Vec<usize> {
    sent.iter()
        .map(|r| {
            let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
            body["messages"][0]["images"].as_array().map_or(0, Vec::len)
        })
        .collect()
}

#[tokio::test]
async fn llama_vision_gets_one_image_per_message_and_other_models_learn_it_from_ollama() {
    let dir = tempfile::tempdir().unwrap();
    let video = video(dir.path());
    let server = MockServer::start().await;
    let mount = || {
        wiremock::Mock::given(wiremock::matchers::path("/api/chat"))
            .respond_with(one_image_ollama)
            .mount(&server)
    };
    mount().await;
    let teller = OllamaStoryteller::with_media(&server.uri(), "llava", support::media());

    // Named by default: never sent several images.
    let mut vision = request(&video, "summary");
    vision.model = "llama3.2-vision:11b".into();
    let (mut sink, _events) = support::sink_with_events();
    let usage = teller.tell(&vision, &mut sink).await.unwrap();
    assert_eq!(sink.text(), format!("The story.{}", unheard_note(None)));
    let sent = images_sent(&server.received_requests().await.unwrap());
    assert!(sent.len() >= 3 && sent.iter().all(|n| *n == 1), "{sent:?}");
    assert_eq!(
        usage.input_tokens,
        1791 * sent.len() as u64,
        "every pass is counted"
    );

    // Another model, found out from Ollama's refusal within the same attempt, and remembered.
    server.reset().await;
    mount().await;
    let (mut sink, _events) = support::sink_with_events();
    teller
        .tell(&request(&video, "summary"), &mut sink)
        .await
        .unwrap();
    assert_eq!(sink.text(), format!("The story.{}", unheard_note(None)));
    let first = images_sent(&server.received_requests().await.unwrap());
    assert!(
        first[0] > 1 && first[1..].iter().all(|n| *n == 1),
        "{first:?}"
    );
    server.reset().await;
    mount().await;
    let (mut sink, _events) = support::sink_with_events();
    teller
        .tell(&request(&video, "summary"), &mut sink)
        .await
        .unwrap();
    let again = images_sent(&server.received_requests().await.unwrap());
    assert!(again.iter().all(|n| *n == 1), "{again:?}");
}
