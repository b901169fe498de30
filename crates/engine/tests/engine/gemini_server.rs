//! A Generative Language API on 127.0.0.1 for tests and benchmarks: the File API's resumable
//! upload (`start`, `upload`, `upload, finalize`, `query`), `files.get` / `files.delete`, and
//! `models/{model}:streamGenerateContent?alt=sse`, speaking the wire protocol as Google
//! documents it: the headers, the JSON shapes, the error bodies.
//!
//! It is a plain HTTP/1.1 server on a socket, not a mock framework, so that it can do what a
//! real network does to a client: cut a connection in the middle of a request body, or stop
//! writing in the middle of a stream. Every request is recorded (method, target, headers,
//! body length) for the test to read back. [`noisy_video`] makes a video big enough to upload
//! in many pieces.
#![allow(dead_code)]

use serde_json::{json, Value};
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A real 6-second 640×360 MP4 with sound, of about 3 MB (noise compresses badly): a dozen
/// 256 KiB upload requests.
pub fn noisy_video(dir: &std::path::Path, name: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    let status = std::process::Command::new("ffmpeg")
        .args(["-y", "-hide_banner", "-loglevel", "error", "-nostdin"])
        .args([
            "-f",
            "lavfi",
            "-i",
            "testsrc2=s=640x360:r=25:d=6,noise=alls=40:allf=t",
        ])
        .args([
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000:duration=6",
        ])
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-b:v",
            "4000k",
            "-pix_fmt",
            "yuv420p",
        ])
        .args(["-c:a", "aac", "-shortest"])
        .arg(&path)
        .status()
        .expect("ffmpeg runs (install FFmpeg to run these tests)");
    assert!(status.success(), "ffmpeg could not make {}", path.display());
    path
}

/// The protocol's granularity: what the server keeps of a chunk cut short is a multiple of it.
pub const GRANULE: u64 = 256 * 1024;

/// One request as it arrived.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub target: String,
    pub headers: BTreeMap<String, String>,
    pub body_len: u64,
    /// The body, for requests that are not upload chunks.
    pub body: Vec<u8>,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    pub fn command(&self) -> &str {
        self.header("x-goog-upload-command").unwrap_or("")
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// How `streamGenerateContent` answers, one per call (the last one repeats).
#[derive(Clone, Debug)]
pub enum Answer {
    /// The pieces as SSE events, then the finish reason with the usage.
    Story { pieces: Vec<String>, finish: String },
    /// An error status with these headers and body.
    Error {
        status: u16,
        headers: Vec<(String, String)>,
        body: String,
    },
    /// These raw bytes as the event stream (malformed or truncated streams).
    Raw(String),
    /// The pieces, then silence with the connection held open.
    Hang { pieces: Vec<String> },
}

impl Answer {
    pub fn story(pieces: &[&str]) -> Answer {
        Answer::Story {
            pieces: pieces.iter().map(|p| (*p).to_owned()).collect(),
            finish: "STOP".into(),
        }
    }

    pub fn error(status: u16, body: &str) -> Answer {
        Answer::Error {
            status,
            headers: Vec::new(),
            body: body.to_owned(),
        }
    }
}

/// The usage every answer reports: 1,000 prompt tokens of which 250 are sound.
pub const PROMPT_TOKENS: u64 = 1000;
pub const AUDIO_TOKENS: u64 = 250;
pub const MODEL_VERSION: &str = "gemini-2.5-flash-preview-09-2025";

#[derive(Debug, Default)]
struct Session {
    size: u64,
    mime: String,
    display_name: String,
    received: u64,
    bytes: Vec<u8>,
    finished: Option<String>,
}

#[derive(Debug)]
struct File {
    size: u64,
    mime: String,
    display_name: String,
    /// `files.get` calls left that answer PROCESSING.
    processing: u32,
    failed: Option<String>,
}

#[derive(Debug, Default)]
struct State {
    key: String,
    seen: Vec<Seen>,
    sessions: BTreeMap<String, Session>,
    files: BTreeMap<String, File>,
    deleted: Vec<String>,
    next_id: u32,
    answers: VecDeque<Answer>,
    /// Cut the connection in the middle of the body of this upload chunk (counted from 1).
    cut_chunk: Option<u32>,
    chunks: u32,
    /// How many `files.get` calls a new file answers PROCESSING.
    processing_polls: u32,
    fail_processing: Option<String>,
    keep_bytes: bool,
    /// How long each upload chunk takes to be answered.
    chunk_delay: Duration,
    /// How long a generate call takes before its answer starts.
    generate_delay: Duration,
    /// Generate calls allowed in any 60 s (a 429 past it), and when each started.
    per_minute: Option<usize>,
    generate_started: Vec<std::time::Instant>,
    /// How many generate calls were refused for going past `per_minute`.
    refused_for_pace: usize,
    /// The models there are (any, when `None`).
    models: Option<Vec<String>>,
}

/// The server; cheap to clone.
#[derive(Clone)]
pub struct GeminiServer {
    pub base: String,
    state: Arc<Mutex<State>>,
}

impl GeminiServer {
    /// A server accepting `key`, answering every generate call with a short story.
    pub async fn start(key: &str) -> GeminiServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State {
            key: key.to_owned(),
            keep_bytes: true,
            answers: VecDeque::from([Answer::story(&["The picture ", "opens on ", "colour."])]),
            ..State::default()
        }));
        let server = GeminiServer { base, state };
        let serving = server.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let server = serving.clone();
                tokio::spawn(async move { server.serve(stream).await });
            }
        });
        server
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }

    /// Generate calls answer these, in order (the last one repeating).
    pub fn answer(&self, answers: Vec<Answer>) {
        self.state().answers = answers.into();
    }

    /// Cuts the connection halfway through the body of the `n`-th upload chunk.
    pub fn cut_chunk(&self, n: u32) {
        self.state().cut_chunk = Some(n);
    }

    /// New files stay PROCESSING for `polls` looks.
    pub fn processing_polls(&self, polls: u32) {
        self.state().processing_polls = polls;
    }

    /// New files end FAILED with `message`.
    pub fn fail_processing(&self, message: &str) {
        self.state().fail_processing = Some(message.to_owned());
    }

    /// Answers each upload chunk only after `delay` (a slow link).
    pub fn chunk_delay(&self, delay: Duration) {
        self.state().chunk_delay = delay;
    }

    /// Starts answering each generate call only after `delay` (a model at work).
    pub fn generate_delay(&self, delay: Duration) {
        self.state().generate_delay = delay;
    }

    /// Answers generate calls past `limit` in any 60 s with a per-minute 429, as the API does.
    pub fn per_minute(&self, limit: usize) {
        self.state().per_minute = Some(limit);
    }

    /// Only these models are there; others are not found.
    pub fn only_models(&self, models: &[&str]) {
        self.state().models = Some(models.iter().map(|m| (*m).to_owned()).collect());
    }

    /// How many generate calls were refused for going too fast.
    pub fn refused_for_pace(&self) -> usize {
        self.state().refused_for_pace
    }

    /// When each generate call came.
    pub fn generate_times(&self) -> Vec<std::time::Instant> {
        self.state().generate_started.clone()
    }

    /// Counts uploaded bytes without keeping them (big uploads).
    pub fn discard_bytes(&self) {
        self.state().keep_bytes = false;
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.state().seen.clone()
    }

    /// The requests carrying this upload command (`start`, `query`, `upload`…).
    pub fn commands(&self, command: &str) -> usize {
        self.state()
            .seen
            .iter()
            .filter(|s| s.command() == command)
            .count()
    }

    pub fn generate_calls(&self) -> Vec<Seen> {
        self.state()
            .seen
            .iter()
            .filter(|s| s.target.contains(":streamGenerateContent"))
            .cloned()
            .collect()
    }

    pub fn deleted(&self) -> Vec<String> {
        self.state().deleted.clone()
    }

    /// The bytes of the one finished upload.
    pub fn uploaded_bytes(&self) -> Vec<u8> {
        let state = self.state();
        let finished: Vec<&Session> = state
            .sessions
            .values()
            .filter(|s| s.finished.is_some())
            .collect();
        assert_eq!(finished.len(), 1, "one upload finished");
        finished[0].bytes.clone()
    }

    pub fn files(&self) -> Vec<String> {
        self.state().files.keys().cloned().collect()
    }

    /// Drops what the server knows of `name` (the service deleted it, or it expired).
    pub fn forget_file(&self, name: &str) {
        self.state().files.remove(name);
    }

    async fn serve(&self, mut stream: TcpStream) {
        let Some((method, target, headers, mut rest)) = read_head(&mut stream).await else {
            return;
        };
        let length: u64 = headers
            .get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        assert!(
            !headers.contains_key("transfer-encoding"),
            "the API wants Content-Length, got chunked for {target}"
        );
        let command = headers
            .get("x-goog-upload-command")
            .cloned()
            .unwrap_or_default();
        let chunk = command.starts_with("upload");

        // Upload chunks are read here, counting (and cutting) as they come; other bodies whole.
        let mut body = Vec::new();
        let mut read = 0u64;
        let cut_at = if chunk {
            let mut state = self.state();
            state.chunks += 1;
            (state.cut_chunk == Some(state.chunks)).then_some(length / 2)
        } else {
            None
        };
        let keep = !chunk || self.state().keep_bytes;
        let mut buffer = vec![0u8; 1 << 20];
        loop {
            if !rest.is_empty() {
                let take = rest.len().min((length - read) as usize);
                if keep {
                    body.extend_from_slice(&rest[..take]);
                }
                read += take as u64;
                rest.clear();
            }
            if let Some(cut) = cut_at {
                if read >= cut {
                    // What a real front end keeps of a body cut short: the whole granules.
                    let kept = (read.min(cut) / GRANULE) * GRANULE;
                    self.record(&method, &target, &headers, read, &[]);
                    if kept > 0 {
                        let bytes = if keep {
                            &body[..kept as usize]
                        } else {
                            &[][..]
                        };
                        self.append_to_session(&target, bytes, kept);
                    }
                    self.state().cut_chunk = None;
                    return; // the socket closes with no answer
                }
            }
            if read >= length {
                break;
            }
            // A body to be cut is read only up to the cut, so what is kept of it does not
            // depend on how the bytes happened to arrive.
            let until = cut_at.unwrap_or(length);
            let want = ((until - read) as usize).min(buffer.len());
            match stream.read(&mut buffer[..want]).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if keep {
                        body.extend_from_slice(&buffer[..n]);
                    }
                    read += n as u64;
                }
            }
        }
        self.record(
            &method,
            &target,
            &headers,
            read,
            if chunk { &[] } else { &body },
        );
        if chunk {
            let delay = self.state().chunk_delay;
            tokio::time::sleep(delay).await;
        }
        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
        let reply = if path == "/upload/v1beta/files" && query.contains("upload_id=") {
            self.upload_command(query, &command, &headers, &body, read)
        } else if let Some(refusal) = self.key_refused(&headers) {
            refusal
        } else if method == "POST" && path == "/upload/v1beta/files" && command == "start" {
            self.start_upload(&headers, &body)
        } else if let Some(name) = path.strip_prefix("/v1beta/files/") {
            let name = format!("files/{name}");
            match method.as_str() {
                "GET" => self.file_status(&name),
                "DELETE" => self.delete(&name),
                _ => Reply::status(405, "{}"),
            }
        } else if let Some(model) = path
            .strip_prefix("/v1beta/models/")
            .filter(|_| method == "GET")
        {
            self.model(model)
        } else if path.starts_with("/v1beta/models/") && path.ends_with(":streamGenerateContent") {
            assert_eq!(query, "alt=sse", "streamed as server-sent events");
            self.generate(stream).await;
            return;
        } else {
            Reply::status(404, &error_body(404, "NOT_FOUND", "no such method"))
        };
        reply.write(&mut stream).await;
    }

    fn record(
        &self,
        method: &str,
        target: &str,
        headers: &BTreeMap<String, String>,
        body_len: u64,
        body: &[u8],
    ) {
        self.state().seen.push(Seen {
            method: method.to_owned(),
            target: target.to_owned(),
            headers: headers.clone(),
            body_len,
            body: body.to_vec(),
        });
    }

    fn key_refused(&self, headers: &BTreeMap<String, String>) -> Option<Reply> {
        let state = self.state();
        (headers.get("x-goog-api-key") != Some(&state.key)).then(|| {
            Reply::status(
                400,
                &json!({"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.",
                    "status": "INVALID_ARGUMENT",
                    "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                        "reason": "API_KEY_INVALID", "domain": "googleapis.com"}]}})
                .to_string(),
            )
        })
    }

    fn start_upload(&self, headers: &BTreeMap<String, String>, body: &[u8]) -> Reply {
        assert_eq!(
            headers.get("x-goog-upload-protocol").map(String::as_str),
            Some("resumable")
        );
        let size: u64 = headers
            .get("x-goog-upload-header-content-length")
            .and_then(|v| v.parse().ok())
            .expect("X-Goog-Upload-Header-Content-Length");
        let mime = headers
            .get("x-goog-upload-header-content-type")
            .cloned()
            .expect("X-Goog-Upload-Header-Content-Type");
        let meta: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let mut state = self.state();
        state.next_id += 1;
        let id = format!("session-{}", state.next_id);
        state.sessions.insert(
            id.clone(),
            Session {
                size,
                mime,
                display_name: meta["file"]["display_name"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned(),
                ..Session::default()
            },
        );
        Reply {
            status: 200,
            headers: vec![
                (
                    "X-Goog-Upload-URL".into(),
                    format!(
                        "{}/upload/v1beta/files?upload_id={id}&upload_protocol=resumable",
                        self.base
                    ),
                ),
                ("X-Goog-Upload-Status".into(), "active".into()),
            ],
            body: String::new(),
        }
    }

    fn append_to_session(&self, target: &str, bytes: &[u8], count: u64) {
        let id = session_id(target);
        let mut state = self.state();
        let keep = state.keep_bytes;
        if let Some(session) = state.sessions.get_mut(&id) {
            if keep {
                session.bytes.extend_from_slice(bytes);
            }
            session.received += count;
        }
    }

    fn upload_command(
        &self,
        query: &str,
        command: &str,
        headers: &BTreeMap<String, String>,
        body: &[u8],
        body_len: u64,
    ) -> Reply {
        let id = session_id(query);
        let mut state = self.state();
        let keep = state.keep_bytes;
        let processing = state.processing_polls;
        let failed = state.fail_processing.clone();
        let Some(session) = state.sessions.get_mut(&id) else {
            return Reply::status(
                404,
                &error_body(404, "NOT_FOUND", "upload session not found"),
            );
        };
        if command == "query" {
            if let Some(name) = session.finished.clone() {
                let file = file_json(&name, session.size, &session.mime, "PROCESSING");
                return Reply::json(200, json!({ "file": file }))
                    .with("X-Goog-Upload-Status", "final");
            }
            return Reply::status(200, "")
                .with("X-Goog-Upload-Status", "active")
                .with("X-Goog-Upload-Size-Received", &session.received.to_string());
        }
        let offset: u64 = headers
            .get("x-goog-upload-offset")
            .and_then(|v| v.parse().ok())
            .expect("X-Goog-Upload-Offset");
        if offset != session.received {
            return Reply::status(
                400,
                &error_body(
                    400,
                    "INVALID_ARGUMENT",
                    &format!("offset {offset} is not {}", session.received),
                ),
            );
        }
        let finalize = command.contains("finalize");
        if !finalize && !body_len.is_multiple_of(GRANULE) {
            return Reply::status(
                400,
                &error_body(
                    400,
                    "INVALID_ARGUMENT",
                    "chunk is not a multiple of 256 KiB",
                ),
            );
        }
        if keep {
            session.bytes.extend_from_slice(body);
        }
        session.received += body_len;
        if !finalize {
            return Reply::status(200, "").with("X-Goog-Upload-Status", "active");
        }
        assert_eq!(session.received, session.size, "finalized with every byte");
        let size = session.size;
        let mime = session.mime.clone();
        let display_name = session.display_name.clone();
        state.next_id += 1;
        let name = format!("files/upload{}", state.next_id);
        state.sessions.get_mut(&id).unwrap().finished = Some(name.clone());
        state.files.insert(
            name.clone(),
            File {
                size,
                mime: mime.clone(),
                display_name,
                processing,
                failed,
            },
        );
        Reply::json(
            200,
            json!({ "file": file_json(&name, size, &mime, "PROCESSING") }),
        )
        .with("X-Goog-Upload-Status", "final")
    }

    fn file_status(&self, name: &str) -> Reply {
        let mut state = self.state();
        let Some(file) = state.files.get_mut(name) else {
            return Reply::status(
                403,
                &error_body(
                    403,
                    "PERMISSION_DENIED",
                    "You do not have permission to access the File or it may not exist.",
                ),
            );
        };
        let state_name = if file.processing > 0 {
            file.processing -= 1;
            "PROCESSING"
        } else if file.failed.is_some() {
            "FAILED"
        } else {
            "ACTIVE"
        };
        let mut body = file_json(name, file.size, &file.mime, state_name);
        if let (Some(message), "FAILED") = (&file.failed, state_name) {
            body["error"] = json!({ "code": 400, "message": message });
        }
        Reply::json(200, body)
    }

    fn model(&self, model: &str) -> Reply {
        let known = self
            .state()
            .models
            .as_ref()
            .is_none_or(|models| models.iter().any(|m| m == model));
        if !known {
            return Reply::status(
                404,
                &error_body(404, "NOT_FOUND", &format!("models/{model} is not found for API version v1beta, or is not supported for generateContent.")),
            );
        }
        Reply::json(
            200,
            json!({ "name": format!("models/{model}"), "displayName": "Gemini Flash Latest",
                    "inputTokenLimit": 1048576, "outputTokenLimit": 65536,
                    "supportedGenerationMethods": ["generateContent", "countTokens"] }),
        )
    }

    fn delete(&self, name: &str) -> Reply {
        let mut state = self.state();
        state.deleted.push(name.to_owned());
        match state.files.remove(name) {
            Some(_) => Reply::json(200, json!({})),
            None => Reply::status(404, &error_body(404, "NOT_FOUND", "file not found")),
        }
    }

    async fn generate(&self, mut stream: TcpStream) {
        let (answer, delay) = {
            let mut state = self.state();
            let now = std::time::Instant::now();
            let recent = state
                .generate_started
                .iter()
                .filter(|at| now.duration_since(**at) < Duration::from_secs(60))
                .count();
            if state.per_minute.is_some_and(|limit| recent >= limit) {
                state.refused_for_pace += 1;
                let body = json!({"error": {"code": 429, "message": "You exceeded your current quota. Please retry in 10s.",
                    "status": "RESOURCE_EXHAUSTED", "details": [
                        {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [{"quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier"}]},
                        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "10s"}]}});
                (Answer::error(429, &body.to_string()), Duration::ZERO)
            } else {
                state.generate_started.push(now);
                let answer = if state.answers.len() > 1 {
                    state.answers.pop_front().unwrap()
                } else {
                    state.answers.front().cloned().unwrap()
                };
                (answer, state.generate_delay)
            }
        };
        tokio::time::sleep(delay).await;
        let usage = |output: u64| {
            json!({
                "promptTokenCount": PROMPT_TOKENS, "candidatesTokenCount": output,
                "totalTokenCount": PROMPT_TOKENS + output,
                "promptTokensDetails": [
                    {"modality": "TEXT", "tokenCount": 50},
                    {"modality": "VIDEO", "tokenCount": PROMPT_TOKENS - 50 - AUDIO_TOKENS},
                    {"modality": "AUDIO", "tokenCount": AUDIO_TOKENS}]
            })
        };
        let event = |pieces: &str, finish: Option<&str>, output: u64| {
            let mut candidate = json!({
                "content": { "parts": [{ "text": pieces }], "role": "model" }, "index": 0
            });
            if let Some(finish) = finish {
                candidate["finishReason"] = json!(finish);
            }
            format!(
                "data: {}\r\n\r\n",
                json!({ "candidates": [candidate], "usageMetadata": usage(output),
                        "modelVersion": MODEL_VERSION, "responseId": "r-1" })
            )
        };
        let head =
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n";
        match answer {
            Answer::Error {
                status,
                headers,
                body,
            } => {
                let mut reply = Reply::status(status, &body);
                reply.headers.extend(headers);
                reply.write(&mut stream).await;
            }
            Answer::Raw(raw) => {
                let _ = stream.write_all(head.as_bytes()).await;
                let _ = stream.write_all(raw.as_bytes()).await;
            }
            Answer::Story { pieces, finish } => {
                let _ = stream.write_all(head.as_bytes()).await;
                // A first event with the thinking the model did, which is not the story.
                let thought = format!(
                    "data: {}\r\n\r\n",
                    json!({ "candidates": [{ "content": { "parts": [{ "text": "Planning the story.", "thought": true }], "role": "model" }, "index": 0 }],
                            "usageMetadata": usage(0), "modelVersion": MODEL_VERSION })
                );
                let _ = stream.write_all(thought.as_bytes()).await;
                let count = pieces.len();
                for (i, piece) in pieces.iter().enumerate() {
                    let last = i + 1 == count;
                    let text = event(piece, last.then_some(finish.as_str()), 10 * (i as u64 + 1));
                    let _ = stream.write_all(text.as_bytes()).await;
                    let _ = stream.flush().await;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
            Answer::Hang { pieces } => {
                let _ = stream.write_all(head.as_bytes()).await;
                for (i, piece) in pieces.iter().enumerate() {
                    let _ = stream
                        .write_all(event(piece, None, 10 * (i as u64 + 1)).as_bytes())
                        .await;
                }
                let _ = stream.flush().await;
                tokio::time::sleep(Duration::from_secs(3600)).await;
            }
        }
        let _ = stream.shutdown().await;
    }
}

fn session_id(target: &str) -> String {
    target
        .split(['?', '&'])
        .find_map(|part| part.strip_prefix("upload_id="))
        .unwrap_or("")
        .to_owned()
}

fn file_json(name: &str, size: u64, mime: &str, state: &str) -> Value {
    json!({
        "name": name,
        "mimeType": mime,
        "sizeBytes": size.to_string(),
        "createTime": "2026-12-02T10:00:00.000000Z",
        "updateTime": "2026-12-02T10:00:00.000000Z",
        "expirationTime": "2099-12-04T10:00:00.000000Z",
        "sha256Hash": "ZmFrZQ==",
        "uri": format!("https://generativelanguage.googleapis.com/v1beta/{name}"),
        "state": state,
        "source": "UPLOADED",
    })
}

/// The API's error body.
pub fn error_body(code: u16, status: &str, message: &str) -> String {
    json!({ "error": { "code": code, "message": message, "status": status } }).to_string()
}

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn status(status: u16, body: &str) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: body.to_owned(),
        }
    }

    fn json(status: u16, body: Value) -> Reply {
        Reply::status(status, &body.to_string())
    }

    fn with(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    async fn write(self, stream: &mut TcpStream) {
        let mut head = format!(
            "HTTP/1.1 {} X\r\nContent-Type: application/json; charset=UTF-8\r\nContent-Length: {}\r\nConnection: close\r\n",
            self.status,
            self.body.len()
        );
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        let _ = stream.write_all(head.as_bytes()).await;
        let _ = stream.write_all(self.body.as_bytes()).await;
        let _ = stream.shutdown().await;
    }
}

/// The request line and headers (names lower-cased), and what was read past them.
async fn read_head(
    stream: &mut TcpStream,
) -> Option<(String, String, BTreeMap<String, String>, Vec<u8>)> {
    let mut buffer = Vec::new();
    let mut piece = [0u8; 8192];
    let end = loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
        let n = stream.read(&mut piece).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&piece[..n]);
    };
    let head = String::from_utf8_lossy(&buffer[..end]).into_owned();
    let rest = buffer[end + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let mut request = lines.next()?.split(' ');
    let method = request.next()?.to_owned();
    let target = request.next()?.to_owned();
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    Some((method, target, headers, rest))
}
