//! The Gemini storyteller against a local Generative Language API ([`GeminiServer`]): real
//! ffmpeg on real videos, resumable uploads in several chunks, a connection cut in the middle
//! of one, an attempt stopped mid-upload and taken up again from its checkpoint, files that
//! take time to process or fail, and each error the API sends told apart.

use crate::gemini_server::{self as api, Answer, GeminiServer};
use crate::support::{self, ffmpeg};
use std::path::Path;
use std::time::Duration;
use storyteller_engine::storyteller::gemini::{GeminiOptions, GeminiStoryteller};
use storyteller_engine::storyteller::{Capacity, StoryError, StoryRequest, StorySink, Storyteller};
use storyteller_engine::{Event, JobId};

const KEY: &str = "AIzaSy-test-0c7e4b1d9a";

fn request(source: &Path, checkpoint: Option<serde_json::Value>) -> StoryRequest {
    StoryRequest {
        job_id: JobId::new(),
        source: source.to_owned(),
        content_hash: storyteller_engine::intake::hash_file(source).unwrap(),
        preset: "narrative".into(),
        style: Default::default(),
        model: "gemini-flash-latest".into(),
        checkpoint,
        cancelled: Default::default(),
    }
}

/// Uploads in 256 KiB chunks, polls fast, never inline.
fn options() -> GeminiOptions {
    GeminiOptions {
        inline_limit: 0,
        chunk_size: 256 * 1024,
        first_poll: Duration::from_millis(20),
        idle_gap: Duration::from_secs(5),
        capacity: Capacity::UNLIMITED,
        ..GeminiOptions::default()
    }
}

fn teller(server: &GeminiServer, options: GeminiOptions) -> GeminiStoryteller {
    GeminiStoryteller::with_media(
        &server.base,
        "gemini-flash-latest",
        Some(KEY.into()),
        support::media(),
    )
    .with_options(options)
}

fn latest_checkpoint(sink: &StorySink) -> Option<serde_json::Value> {
    sink.watch_checkpoints().borrow().as_deref().cloned()
}

#[tokio::test]
async fn a_video_is_uploaded_in_chunks_processed_told_as_a_stream_and_then_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let video = api::noisy_video(dir.path(), "harbour.mp4");
    let size = std::fs::metadata(&video).unwrap().len();
    assert!(size > 4 * api::GRANULE, "{size} bytes make several chunks");
    let server = GeminiServer::start(KEY).await;
    server.processing_polls(2);
    server.answer(vec![Answer::story(&[
        "A harbour ",
        "at dusk; ",
        "gulls call.",
    ])]);
    let teller = teller(&server, options());
    assert!(
        !format!("{teller:?}").contains(KEY),
        "the key shows in {teller:?}"
    );

    let (mut sink, mut events) = support::sink_with_events();
    let usage = teller
        .tell(&request(&video, None), &mut sink)
        .await
        .unwrap();
    assert_eq!(
        sink.text(),
        "A harbour at dusk; gulls call.",
        "the thought is not the story"
    );
    assert_eq!(
        (
            usage.input_tokens,
            usage.audio_input_tokens,
            usage.output_tokens
        ),
        (api::PROMPT_TOKENS, api::AUDIO_TOKENS, 30)
    );
    assert_eq!(sink.answered_by(), Some(api::MODEL_VERSION));
    assert_eq!(
        server.uploaded_bytes(),
        std::fs::read(&video).unwrap(),
        "every byte, in order"
    );

    let seen = server.seen();
    let start = seen.iter().find(|s| s.command() == "start").unwrap();
    assert_eq!(start.header("x-goog-api-key"), Some(KEY));
    assert_eq!(start.header("x-goog-upload-protocol"), Some("resumable"));
    assert_eq!(
        start.header("x-goog-upload-header-content-length"),
        Some(size.to_string().as_str())
    );
    assert_eq!(
        start.header("x-goog-upload-header-content-type"),
        Some("video/mp4")
    );
    assert_eq!(start.json()["file"]["display_name"], "harbour.mp4");
    let chunks: Vec<_> = seen
        .iter()
        .filter(|s| s.command().starts_with("upload"))
        .collect();
    assert_eq!(chunks.len() as u64, size.div_ceil(api::GRANULE));
    let mut offset = 0;
    for (i, chunk) in chunks.iter().enumerate() {
        assert_eq!(
            chunk.header("x-goog-upload-offset"),
            Some(offset.to_string().as_str())
        );
        let last = i + 1 == chunks.len();
        assert_eq!(
            chunk.command(),
            if last { "upload, finalize" } else { "upload" }
        );
        assert_eq!(
            chunk.header("x-goog-api-key"),
            None,
            "the session URL is its own authority"
        );
        offset += chunk.body_len;
    }
    // Looked at until ACTIVE: twice PROCESSING, then ACTIVE.
    let looks = seen
        .iter()
        .filter(|s| s.method == "GET" && s.target.starts_with("/v1beta/files/"))
        .count();
    assert_eq!(looks, 3);
    let generated = server.generate_calls();
    assert_eq!(generated.len(), 1);
    assert_eq!(
        generated[0].target,
        "/v1beta/models/gemini-flash-latest:streamGenerateContent?alt=sse"
    );
    let body = generated[0].json();
    let parts = &body["contents"][0]["parts"];
    assert_eq!(parts[0]["fileData"]["mimeType"], "video/mp4");
    assert!(parts[0]["fileData"]["fileUri"]
        .as_str()
        .unwrap()
        .ends_with(&server.deleted()[0]));
    assert!(parts[1]["text"].as_str().unwrap().contains("harbour.mp4"));
    // Deleted once told.
    assert!(server.files().is_empty(), "{:?}", server.files());

    let events = support::drain(&mut events);
    let uploads: Vec<(f64, f64)> = events
        .iter()
        .filter_map(|e| match e {
            Event::UploadProgress {
                sent_bytes,
                total_bytes,
                ..
            } => Some((*sent_bytes, *total_bytes)),
            _ => None,
        })
        .collect();
    assert_eq!(uploads.last(), Some(&(size as f64, size as f64)));
    assert!(uploads.windows(2).all(|w| w[0].0 <= w[1].0), "{uploads:?}");
    let deltas: Vec<&str> = events
        .iter()
        .filter_map(|e| match e {
            Event::StoryDelta { text, .. } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(deltas, ["A harbour ", "at dusk; ", "gulls call."]);
    let everything = format!("{events:?}{:?}", latest_checkpoint(&sink));
    assert!(
        !everything.contains(KEY),
        "the key reached an event or a checkpoint"
    );
}

#[tokio::test]
async fn a_connection_cut_mid_chunk_is_resumed_from_what_the_server_says_it_has() {
    let dir = tempfile::tempdir().unwrap();
    let video = api::noisy_video(dir.path(), "cut.mp4");
    let server = GeminiServer::start(KEY).await;
    server.cut_chunk(3);
    let options = GeminiOptions {
        chunk_size: 2 * 256 * 1024,
        ..options()
    };
    let mut sink = support::sink();
    teller(&server, options)
        .tell(&request(&video, None), &mut sink)
        .await
        .unwrap();
    assert_eq!(server.uploaded_bytes(), std::fs::read(&video).unwrap());
    assert_eq!(server.commands("start"), 1, "one session");
    assert_eq!(server.commands("query"), 1, "asked once what it had");
    // The cut chunk carried 512 KiB; the server kept one granule of it, and the next chunk
    // started there, not where the client had got to.
    let offsets: Vec<String> = server
        .seen()
        .iter()
        .filter(|s| s.command().starts_with("upload"))
        .map(|s| s.header("x-goog-upload-offset").unwrap().to_owned())
        .collect();
    let granule = api::GRANULE;
    assert_eq!(
        offsets[..4],
        [0, 2 * granule, 4 * granule, 5 * granule].map(|o| o.to_string())
    );
}

#[tokio::test]
async fn an_attempt_stopped_mid_upload_is_taken_up_from_its_checkpoint_without_a_second_start() {
    let dir = tempfile::tempdir().unwrap();
    let video = api::noisy_video(dir.path(), "restart.mp4");
    let server = GeminiServer::start(KEY).await;
    let teller = teller(&server, options());
    let first = request(&video, None);
    let mut sink = support::sink();
    // The first attempt is dropped (as a shutdown or a crash drops it) after its second chunk.
    {
        let watched = server.clone();
        let telling = teller.tell(&first, &mut sink);
        tokio::select! {
            result = telling => panic!("the upload should not have finished: {result:?}"),
            () = async {
                while watched.commands("upload") < 2 {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            } => {}
        }
    }
    let checkpoint = latest_checkpoint(&sink).expect("the session was saved");
    assert!(
        checkpoint["upload"]["url"]
            .as_str()
            .unwrap()
            .contains("upload_id="),
        "{checkpoint}"
    );
    assert!(!checkpoint.to_string().contains(KEY));

    let second = StoryRequest {
        checkpoint: Some(checkpoint),
        ..first.clone()
    };
    let mut sink = support::sink();
    teller.tell(&second, &mut sink).await.unwrap();
    assert_eq!(server.commands("start"), 1, "no second start");
    assert_eq!(server.commands("query"), 1);
    assert_eq!(server.uploaded_bytes(), std::fs::read(&video).unwrap());

    // The file is a checkpoint too: an attempt after the upload (the story failed, say) reuses
    // it and uploads nothing; once it is gone from the service, it is sent again.
    let uploaded = latest_checkpoint(&sink).unwrap();
    assert!(
        uploaded["file"]["name"]
            .as_str()
            .unwrap()
            .starts_with("files/"),
        "{uploaded}"
    );
    let keeping = GeminiOptions {
        delete_after: false,
        ..options()
    };
    let server = GeminiServer::start(KEY).await;
    let teller = GeminiStoryteller::with_media(
        &server.base,
        "gemini-flash-latest",
        Some(KEY.into()),
        support::media(),
    )
    .with_options(keeping);
    let mut sink = support::sink();
    teller.tell(&first, &mut sink).await.unwrap();
    let file = latest_checkpoint(&sink).unwrap();
    let again = StoryRequest {
        checkpoint: Some(file.clone()),
        ..first.clone()
    };
    teller.tell(&again, &mut support::sink()).await.unwrap();
    assert_eq!(server.commands("start"), 1, "the file was reused");
    assert_eq!(server.generate_calls().len(), 2);
    server.forget_file(file["file"]["name"].as_str().unwrap());
    teller.tell(&again, &mut support::sink()).await.unwrap();
    assert_eq!(
        server.commands("start"),
        2,
        "a file the service lost is sent again"
    );
}

#[tokio::test]
async fn a_file_the_service_cannot_process_fails_its_job_with_the_services_words() {
    let dir = tempfile::tempdir().unwrap();
    let video = api::noisy_video(dir.path(), "broken.mp4");
    let server = GeminiServer::start(KEY).await;
    server.processing_polls(1);
    server.fail_processing("Video codec is not supported.");
    let error = teller(&server, options())
        .tell(&request(&video, None), &mut support::sink())
        .await
        .unwrap_err();
    assert!(matches!(error, StoryError::Permanent { .. }), "{error:?}");
    assert_eq!(
        error.to_string(),
        "Gemini could not process the video: Video codec is not supported."
    );
    assert!(server.generate_calls().is_empty());
}

#[tokio::test]
async fn a_small_video_goes_inline_and_a_matroska_one_is_rewrapped_as_mp4() {
    let dir = tempfile::tempdir().unwrap();
    let small = support::make_video(dir.path(), "small.mp4", 2, support::Look::TestSrc, true);
    let server = GeminiServer::start(KEY).await;
    let inline = GeminiOptions {
        inline_limit: api_inline_limit(),
        ..options()
    };
    let mut sink = support::sink();
    teller(&server, inline)
        .tell(&request(&small, None), &mut sink)
        .await
        .unwrap();
    assert_eq!(server.commands("start"), 0, "nothing uploaded");
    let body = server.generate_calls()[0].json();
    let data = body["contents"][0]["parts"][0]["inlineData"]["data"]
        .as_str()
        .unwrap();
    use base64::Engine as _;
    let sent = base64::engine::general_purpose::STANDARD
        .decode(data)
        .unwrap();
    assert_eq!(sent, std::fs::read(&small).unwrap());

    let mkv = dir.path().join("camera.mkv");
    ffmpeg(&[
        "-i",
        small.to_str().unwrap(),
        "-c",
        "copy",
        mkv.to_str().unwrap(),
    ]);
    let server = GeminiServer::start(KEY).await;
    teller(&server, options())
        .tell(&request(&mkv, None), &mut support::sink())
        .await
        .unwrap();
    let start = server
        .seen()
        .into_iter()
        .find(|s| s.command() == "start")
        .unwrap();
    assert_eq!(
        start.header("x-goog-upload-header-content-type"),
        Some("video/mp4")
    );
    let uploaded = server.uploaded_bytes();
    assert_eq!(
        &uploaded[4..8],
        b"ftyp",
        "an MP4 was sent, not the Matroska file"
    );
}

fn api_inline_limit() -> u64 {
    storyteller_engine::storyteller::gemini::INLINE_REQUEST_LIMIT
}

#[tokio::test]
async fn each_answer_of_the_api_gets_its_own_kind_and_words() {
    let dir = tempfile::tempdir().unwrap();
    let video = support::make_video(dir.path(), "clip.mp4", 2, support::Look::TestSrc, true);
    let quota_day = r#"{"error":{"code":429,"message":"You exceeded your current quota, please check your plan and billing details.","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaMetric":"generativelanguage.googleapis.com/generate_content_free_tier_requests","quotaId":"GenerateRequestsPerDayPerProjectPerModel-FreeTier","quotaDimensions":{"location":"global","model":"gemini-2.5-flash"},"quotaValue":"250"}]},{"@type":"type.googleapis.com/google.rpc.Help","links":[{"description":"Learn more about Gemini API quotas","url":"https://ai.google.dev/gemini-api/docs/rate-limits"}]},{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"43s"}]}}"#;
    let per_minute = r#"{"error":{"code":429,"message":"You exceeded your current quota. Please retry in 28.3s.","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaId":"GenerateRequestsPerMinutePerProjectPerModel-FreeTier","quotaValue":"10"}]},{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"28s"}]}}"#;
    let cases: Vec<(Answer, &str, &str)> = vec![
        (Answer::error(429, per_minute), "rate limited 28s", "slow down"),
        (
            Answer::error(429, &api::error_body(429, "RESOURCE_EXHAUSTED", "Resource has been exhausted. Please retry in 3.5s.")),
            "rate limited 3s",
            "slow down",
        ),
        (
            Answer::Error {
                status: 429,
                headers: vec![("Retry-After".into(), "12".into())],
                body: api::error_body(429, "RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota)."),
            },
            "rate limited 12s",
            "slow down",
        ),
        (Answer::error(429, quota_day), "quota", "midnight Pacific"),
        (
            Answer::error(404, &api::error_body(404, "NOT_FOUND", "models/gemini-flash-latest is not found for API version v1beta, or is not supported for generateContent.")),
            "model",
            "STORYTELLER_GEMINI_MODEL",
        ),
        (Answer::error(503, &api::error_body(503, "UNAVAILABLE", "The model is overloaded. Please try again later.")), "transient", "overloaded"),
        (Answer::error(500, &api::error_body(500, "INTERNAL", "An internal error has occurred.")), "transient", "internal error"),
        (Answer::error(400, &api::error_body(400, "INVALID_ARGUMENT", "Request contains an invalid argument.")), "permanent", "invalid argument"),
        (Answer::error(401, &api::error_body(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.")), "auth", "resume the storyteller"),
        (Answer::error(403, &api::error_body(403, "PERMISSION_DENIED", "Generative Language API has not been used in project 1 before or it is disabled.")), "auth", "GEMINI_API_KEY"),
        (Answer::Story { pieces: vec!["Once ".into()], finish: "SAFETY".into() }, "permanent", "safety filters"),
        (Answer::Story { pieces: vec!["Once ".into()], finish: "MAX_TOKENS".into() }, "permanent", "output limit"),
        (Answer::Story { pieces: vec!["Once ".into()], finish: "RECITATION".into() }, "permanent", "RECITATION"),
        (Answer::Raw("data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Once \"}]}}]}\r\n\r\n".into()), "transient", "broke off"),
        (Answer::Raw("data: <html>502 Bad Gateway</html>\r\n\r\n".into()), "transient", "not part of an answer"),
        (
            Answer::Raw(format!("data: {}\r\n\r\n", api::error_body(503, "UNAVAILABLE", "The model is overloaded."))),
            "transient",
            "overloaded",
        ),
        (Answer::Hang { pieces: vec!["Once ".into()] }, "transient", "stopped writing"),
    ];
    for (answer, kind, says) in cases {
        let server = GeminiServer::start(KEY).await;
        server.answer(vec![answer]);
        let options = GeminiOptions {
            inline_limit: api_inline_limit(),
            idle_gap: Duration::from_millis(800),
            ..options()
        };
        let mut sink = support::sink();
        let error = teller(&server, options)
            .tell(&request(&video, None), &mut sink)
            .await
            .unwrap_err();
        let got = match &error {
            StoryError::RateLimited {
                retry_after: Some(after),
                ..
            } => format!("rate limited {}s", after.as_secs()),
            StoryError::QuotaExhausted { until_ms, .. } => {
                let hours = (*until_ms - now_ms()) as f64 / 3_600_000.0;
                assert!(
                    (0.0..=24.0).contains(&hours),
                    "resets within a day: {hours} h"
                );
                "quota".into()
            }
            StoryError::ModelUnavailable { .. } => "model".into(),
            StoryError::Auth { .. } => "auth".into(),
            StoryError::Permanent { .. } => "permanent".into(),
            StoryError::Transient { .. } => "transient".into(),
            other => format!("{other:?}"),
        };
        assert_eq!(got, kind, "{says}: {error:?}");
        assert!(error.to_string().contains(says), "{says}: {error}");
        assert!(
            !error.to_string().contains(KEY),
            "the key is in the error: {error}"
        );
        // What a failed stream had already spent is in the sink, for the books.
        if matches!(
            says,
            "stopped writing" | "safety filters" | "output limit" | "RECITATION"
        ) {
            assert_eq!(sink.spent().input_tokens, api::PROMPT_TOKENS, "{says}");
        }
    }
}

#[tokio::test]
async fn a_wrong_key_or_none_pauses_gemini_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let video = support::make_video(dir.path(), "clip.mp4", 2, support::Look::TestSrc, true);
    let server = GeminiServer::start(KEY).await;
    let wrong = GeminiStoryteller::with_media(
        &server.base,
        "gemini-flash-latest",
        Some("AIza-wrong".into()),
        support::media(),
    )
    .with_options(options());
    let error = wrong
        .tell(&request(&video, None), &mut support::sink())
        .await
        .unwrap_err();
    assert!(matches!(error, StoryError::Auth { .. }), "{error:?}");
    assert!(error.to_string().contains("API key not valid"), "{error}");

    let none =
        GeminiStoryteller::with_media(&server.base, "gemini-flash-latest", None, support::media());
    let error = none
        .tell(&request(&video, None), &mut support::sink())
        .await
        .unwrap_err();
    assert!(matches!(error, StoryError::Auth { .. }), "{error:?}");
    assert!(error.to_string().contains("GEMINI_API_KEY"), "{error}");
    assert_eq!(server.seen().len(), 1, "nothing is sent without a key");
}

#[tokio::test]
async fn a_cancel_deletes_the_uploaded_file_without_holding_the_cancel_up() {
    let dir = tempfile::tempdir().unwrap();
    let video = api::noisy_video(dir.path(), "cancel.mp4");
    let server = GeminiServer::start(KEY).await;
    server.answer(vec![Answer::Hang {
        pieces: vec!["Once ".into()],
    }]);
    let teller = teller(&server, options());
    let request = request(&video, None);
    let mut sink = support::sink();
    let watched = server.clone();
    tokio::select! {
        result = teller.tell(&request, &mut sink) => panic!("{result:?}"),
        () = async {
            while watched.generate_calls().is_empty() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        } => {}
    }
    assert_eq!(server.files().len(), 1);
    request.cancelled.cancel();
    for _ in 0..200 {
        if server.files().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        server.files().is_empty(),
        "the cancelled job's upload is deleted"
    );
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}
