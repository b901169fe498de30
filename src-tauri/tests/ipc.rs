//! The commands and the event bridge through Tauri's own IPC (its mock runtime): arguments
//! and answers as the window sends and receives them, a real engine on a real home, real
//! videos made with ffmpeg.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};
use storyteller_desktop::shell::{self, Launch, OpenAs, Services};
use tauri::ipc::{CallbackFn, InvokeBody};
use tauri::test::{get_ipc_response, mock_builder, mock_context, noop_assets, MockRuntime};
use tauri::webview::InvokeRequest;
use tauri::{Listener, WebviewWindow};

struct Window {
    _app: tauri::App<MockRuntime>,
    webview: WebviewWindow<MockRuntime>,
    events: mpsc::Receiver<Value>,
    clipboard: Arc<Mutex<Vec<String>>>,
    opened: Arc<Mutex<Vec<(PathBuf, OpenAs)>>>,
}

fn open_window(home: &Path) -> Window {
    let builder = storyteller_desktop::specta_builder::<MockRuntime>();
    let clipboard = Arc::new(Mutex::new(Vec::new()));
    let copied = clipboard.clone();
    let opened = Arc::new(Mutex::new(Vec::new()));
    let handed = opened.clone();
    let app = mock_builder()
        .invoke_handler(builder.invoke_handler())
        .build(mock_context(noop_assets()))
        .expect("the app");
    // As the app's `setup` does.
    builder.mount_events(&app);
    let launch = Launch {
        home: Some(home.to_path_buf()),
        paths: Vec::new(),
    };
    shell::open(
        &app,
        launch,
        Services {
            clipboard: Box::new(move |text| {
                copied.lock().unwrap().push(text);
                Ok(())
            }),
            opener: Box::new(move |path, how| {
                handed.lock().unwrap().push((path.to_path_buf(), how));
                Ok(())
            }),
        },
    );
    let (sender, events) = mpsc::channel();
    app.listen_any("engine-event", move |event| {
        let _ = sender.send(serde_json::from_str(event.payload()).unwrap());
    });
    let webview = tauri::WebviewWindowBuilder::new(&app, "main", Default::default())
        .build()
        .expect("the window");
    Window {
        _app: app,
        webview,
        events,
        clipboard,
        opened,
    }
}

impl Window {
    fn invoke(&self, command: &str, args: Value) -> Result<Value, Value> {
        get_ipc_response(
            &self.webview,
            InvokeRequest {
                cmd: command.into(),
                callback: CallbackFn(0),
                error: CallbackFn(1),
                url: "tauri://localhost".parse().unwrap(),
                body: InvokeBody::Json(args),
                headers: Default::default(),
                invoke_key: tauri::test::INVOKE_KEY.to_string(),
            },
        )
        .map(|body| body.deserialize::<Value>().unwrap())
    }

    /// Events until one matches, within a deadline.
    fn wait_for_event(&self, what: &str, matches: impl Fn(&Value) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(90);
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(event) => {
                    let done = matches(&event);
                    seen.push(event);
                    if done {
                        return seen;
                    }
                }
                Err(_) => panic!("no {what} within 90 s; saw {seen:#?}"),
            }
        }
    }
}

fn make_video(path: &Path) {
    let status = std::process::Command::new("ffmpeg")
        .args(["-loglevel", "error", "-f", "lavfi", "-i"])
        .arg("testsrc2=duration=3:size=320x240:rate=25")
        .args(["-f", "lavfi", "-i", "sine=frequency=440:duration=3"])
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
        ])
        .args(["-c:a", "aac", "-shortest", "-y"])
        .arg(path)
        .status()
        .expect("running ffmpeg");
    assert!(status.success());
}

#[test]
fn a_drop_becomes_jobs_whose_progress_and_story_reach_the_window_as_events() {
    let dir = tempfile::tempdir().unwrap();
    let video: PathBuf = dir.path().join("beach.mp4");
    make_video(&video);
    let broken = dir.path().join("broken.mp4");
    std::fs::write(&broken, vec![7u8; 4096]).unwrap();
    let window = open_window(&dir.path().join("home"));

    let status = window.invoke("app_status", json!({})).unwrap();
    assert!(status["problem"].is_null(), "{status:#}");
    let report = window
        .invoke(
            "add_paths",
            json!({ "paths": [video, broken], "options": {} }),
        )
        .unwrap();
    let outcomes: Vec<&Value> = report["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["outcome"])
        .collect();
    assert_eq!(outcomes, ["queued", "queued"], "{report:#}");
    let id = report["entries"][0]["job"]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // One event for the add, then progress and story text as they happen, then the end.
    let seen = window.wait_for_event("the end of beach.mp4", |event| {
        event["type"] == "jobFinished" && event["jobId"] == id.as_str()
    });
    assert_eq!(seen[0]["type"], "jobsAdded", "{:#?}", seen[0]);
    assert_eq!(seen[0]["jobs"].as_array().unwrap().len(), 2);
    let seqs: Vec<u64> = seen.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
    let story: String = seen
        .iter()
        .filter(|e| e["type"] == "storyDelta" && e["jobId"] == id.as_str())
        .map(|e| e["text"].as_str().unwrap())
        .collect();
    assert!(seen
        .iter()
        .any(|e| e["type"] == "jobUpdated" && e["state"] == "running"));
    let last = seen.last().unwrap();
    assert_eq!(last["state"], "succeeded", "{last:#}");

    // The story reassembled from the deltas is the story the engine kept.
    let job = window.invoke("get_job", json!({ "id": id })).unwrap();
    assert_eq!(job["story"].as_str().unwrap(), story);
    window.invoke("copy_story", json!({ "id": id })).unwrap();
    assert_eq!(
        *window.clipboard.lock().unwrap(),
        std::slice::from_ref(&story)
    );

    let out = dir.path().join("stories.md");
    let exported = window
        .invoke(
            "export_stories",
            json!({ "path": out, "format": "markdown", "query": {} }),
        )
        .unwrap();
    assert_eq!(exported, 1);
    assert!(std::fs::read_to_string(&out)
        .unwrap()
        .contains("## beach.mp4"));

    // The history is searched through the engine: by a word of the story, with the line
    // that matched, and not by words it lacks.
    let word = story
        .split(|c: char| !c.is_alphanumeric())
        .find(|w| w.chars().count() >= 6)
        .unwrap()
        .to_owned();
    let hits = window
        .invoke("search_stories", json!({ "query": { "text": word } }))
        .unwrap();
    assert_eq!(hits[0]["job"]["id"], id.as_str(), "{hits:#}");
    assert!(hits[0]["snippet"].as_str().unwrap().contains(&word));
    let none = window
        .invoke("search_stories", json!({ "query": { "text": "zzqx" } }))
        .unwrap();
    assert_eq!(none, json!([]));

    // Copy all: every told story under its file name.
    let copied = window
        .invoke("copy_stories", json!({ "ids": null }))
        .unwrap();
    assert_eq!(copied, 1);
    let all = window.clipboard.lock().unwrap().last().cloned().unwrap();
    assert!(
        all.contains("## beach.mp4") && all.contains(story.trim_end()),
        "{all}"
    );

    // Open the video, show it in its folder: the path handed to the system is the video's.
    window.invoke("open_video", json!({ "id": id })).unwrap();
    window
        .invoke("show_in_folder", json!({ "id": id }))
        .unwrap();
    assert_eq!(
        *window.opened.lock().unwrap(),
        [
            (video.clone(), OpenAs::App),
            (video.clone(), OpenAs::InFolder)
        ]
    );

    // Told again with another preset: a new job, the old story kept.
    let report = window
        .invoke("retell", json!({ "id": id, "preset": "social" }))
        .unwrap();
    let retold = &report["entries"][0];
    assert_eq!(retold["outcome"], "queued", "{report:#}");
    assert_eq!(retold["job"]["preset"], "social");
    assert_ne!(retold["job"]["id"], id.as_str());
    let retold_id = retold["job"]["id"].as_str().unwrap().to_owned();
    let kept = window.invoke("get_job", json!({ "id": id })).unwrap();
    assert_eq!(kept["story"].as_str().unwrap(), story);
    // Its priority changes, and the window hears of it.
    let changed = window
        .invoke(
            "set_priority",
            json!({ "id": retold_id, "priority": "high" }),
        )
        .unwrap();
    assert_eq!(changed["priority"], "high");
    window.wait_for_event("the priority change", |event| {
        event["type"] == "priorityChanged" && event["jobId"] == retold_id.as_str()
    });

    // Errors cross as `{ code, message }`.
    let missing = window
        .invoke("get_job", json!({ "id": "ffffffff" }))
        .unwrap_err();
    assert_eq!(missing["code"], "job_not_found", "{missing:#}");
    let unknown = window
        .invoke(
            "add_paths",
            json!({ "paths": [video], "options": { "storyteller": "nobody" } }),
        )
        .unwrap_err();
    assert_eq!(unknown["code"], "unknown_storyteller", "{unknown:#}");
    assert!(unknown["message"].as_str().unwrap().contains("nobody"));
    std::fs::remove_file(&video).unwrap();
    let gone = window
        .invoke("open_video", json!({ "id": id }))
        .unwrap_err();
    assert_eq!(gone["code"], "io", "{gone:#}");
    assert!(gone["message"]
        .as_str()
        .unwrap()
        .contains("no longer there"));
}
