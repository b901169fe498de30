//! Watched folders, for real: real folders and files, the system's real file events (and the
//! polling watcher, which passes the same tests), an engine working the queue.

use crate::fixtures::{fast_config, registry_of, Scripted};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use storyteller_engine::pool::RunUntil;
use storyteller_engine::storyteller::{StoryError, Storyteller};
use storyteller_engine::watcher::watch::WatchStatus;
use storyteller_engine::wire::{ListQuery, WatchRequest, WatchedFolderView};
use storyteller_engine::{Engine, EngineOptions, JobState, JobView};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

const WINDOW: Duration = Duration::from_millis(400);

/// An engine on `home` telling with `teller`, whose watched files settle in `window`, working
/// the queue and watching its folders until the returned token fires.
async fn watching_engine(home: &Path, teller: Arc<Scripted>, window: Duration) -> Running {
    let engine = engine_with(home, teller, 4, window).await;
    let mut settings = engine.settings();
    settings.storyteller = "scripted".into();
    engine.update_settings(settings).await.unwrap();
    Running::start(engine)
}

/// An engine on `home` with `teller` alone, `concurrency` jobs at once, whose watched files
/// settle in `window`.
async fn engine_with(
    home: &Path,
    teller: Arc<dyn Storyteller>,
    concurrency: usize,
    window: Duration,
) -> Engine {
    Engine::open(EngineOptions {
        home: Some(home.to_path_buf()),
        pool: fast_config(concurrency),
        storytellers: Some(registry_of(teller)),
        settle_window: Some(window),
        ..EngineOptions::default()
    })
    .await
    .unwrap()
}

struct Running {
    engine: Engine,
    stop: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Running {
    fn start(engine: Engine) -> Running {
        let stop = CancellationToken::new();
        let runner = engine.clone();
        let run_stop = stop.clone();
        let watcher = engine.clone();
        let watch_stop = stop.clone();
        let tasks = vec![
            tokio::spawn(async move {
                runner
                    .run(RunUntil::Shutdown, run_stop.cancelled_owned())
                    .await
                    .unwrap();
            }),
            tokio::spawn(async move {
                watcher
                    .watch_folders(watch_stop.cancelled_owned())
                    .await
                    .unwrap();
            }),
        ];
        Running {
            engine,
            stop,
            tasks,
        }
    }

    async fn stop(self) -> Engine {
        self.stop.cancel();
        for task in self.tasks {
            task.await.unwrap();
        }
        self.engine
    }
}

fn request(path: &Path, poll: bool) -> WatchRequest {
    WatchRequest {
        path: path.display().to_string(),
        poll,
        ..WatchRequest::default()
    }
}

async fn all_jobs(engine: &Engine) -> Vec<JobView> {
    engine
        .list(ListQuery {
            limit: Some(10_000),
            ..ListQuery::default()
        })
        .await
        .unwrap()
        .jobs
}

/// Waits (up to `limit`) until `check` holds for the jobs; the jobs then.
async fn jobs_until(
    engine: &Engine,
    limit: Duration,
    what: &str,
    check: impl Fn(&[JobView]) -> bool,
) -> Vec<JobView> {
    let deadline = Instant::now() + limit;
    loop {
        let jobs = all_jobs(engine).await;
        if check(&jobs) {
            return jobs;
        }
        if Instant::now() > deadline {
            panic!(
                "{what}: not within {limit:?}; jobs: {:?}",
                jobs.iter()
                    .map(|j| (j.source.clone(), j.state))
                    .collect::<Vec<_>>()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn folder_until(
    engine: &Engine,
    path: &Path,
    what: &str,
    check: impl Fn(&WatchedFolderView) -> bool,
) -> WatchedFolderView {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let folders = engine.watched_folders().await.unwrap();
        let folder = folders
            .into_iter()
            .find(|f| Path::new(&f.path) == path)
            .unwrap_or_else(|| panic!("{} is not watched", path.display()));
        if check(&folder) {
            return folder;
        }
        if Instant::now() > deadline {
            panic!("{what}: {folder:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn write(path: &Path, content: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

fn told(jobs: &[JobView]) -> usize {
    jobs.iter()
        .filter(|j| j.state == JobState::Succeeded)
        .count()
}

/// The window plus what the target allows, and room for a slow machine.
fn soon() -> Duration {
    WINDOW + Duration::from_secs(8)
}

async fn a_video_copied_in_slowly_is_queued_once_after_it_is_complete(poll: bool) {
    let home = tempfile::tempdir().unwrap();
    let watched = tempfile::tempdir().unwrap();
    let root = std::fs::canonicalize(watched.path()).unwrap();
    let teller = Scripted::telling(|name| format!("A story of {name}."));
    // The window of the default length's half: a copy pausing shorter than it is never
    // taken early.
    let window = Duration::from_secs(1);
    let running = watching_engine(home.path(), teller.clone(), window).await;
    running
        .engine
        .watch_add(request(&root, poll))
        .await
        .unwrap();
    folder_until(&running.engine, &root, "armed", |f| {
        matches!(f.status, WatchStatus::Watching { .. })
    })
    .await;

    // A copy of 3 s: a chunk every 300 ms.
    let path = root.join("holiday.mp4");
    let mut file = std::fs::File::create(&path).unwrap();
    let mut content = Vec::new();
    for chunk in 0..10u8 {
        let bytes = vec![chunk; 64 * 1024];
        file.write_all(&bytes).unwrap();
        file.flush().unwrap();
        content.extend_from_slice(&bytes);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            all_jobs(&running.engine).await.is_empty(),
            "queued while still being copied (chunk {chunk})"
        );
    }
    drop(file);
    let jobs = jobs_until(&running.engine, soon(), "told once complete", |jobs| {
        told(jobs) == 1
    })
    .await;
    assert_eq!(jobs.len(), 1);
    assert_eq!(
        jobs[0].content_hash,
        blake3::hash(&content).to_hex().to_string(),
        "the whole file was told"
    );
    assert_eq!(jobs[0].size_bytes, content.len() as f64);
    assert_eq!(jobs[0].folder.as_deref(), Some(root.to_str().unwrap()));
    // Nothing more comes of it.
    tokio::time::sleep(window * 3).await;
    assert_eq!(all_jobs(&running.engine).await.len(), 1);
    assert_eq!(teller.call_count(), 1);
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_video_copied_in_slowly_is_queued_once_after_it_is_complete_native() {
    a_video_copied_in_slowly_is_queued_once_after_it_is_complete(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_video_copied_in_slowly_is_queued_once_after_it_is_complete_polled() {
    a_video_copied_in_slowly_is_queued_once_after_it_is_complete(true).await;
}

async fn a_hundred_videos_become_a_hundred_jobs_and_renames_moves_and_non_videos_none(poll: bool) {
    let home = tempfile::tempdir().unwrap();
    let watched = tempfile::tempdir().unwrap();
    let root = std::fs::canonicalize(watched.path()).unwrap();
    let teller = Scripted::telling(|name| format!("A story of {name}."));
    let running = watching_engine(home.path(), teller.clone(), WINDOW).await;
    running
        .engine
        .watch_add(WatchRequest {
            recursive: true,
            ..request(&root, poll)
        })
        .await
        .unwrap();
    folder_until(&running.engine, &root, "armed", |f| {
        matches!(f.status, WatchStatus::Watching { .. })
    })
    .await;

    for i in 0..100 {
        write(&root.join(format!("clip{i:03}.mp4")), &format!("video {i}"));
    }
    write(&root.join("notes.txt"), "not a video");
    write(&root.join("clip.mp4.part"), "a download in progress");
    write(&root.join(".hidden.mp4"), "hidden");
    write(&root.join("Thumbs.db"), "a file manager's");
    let jobs = jobs_until(&running.engine, soon(), "100 told", |jobs| {
        told(jobs) == 100
    })
    .await;
    assert_eq!(jobs.len(), 100, "one job per video, none twice");
    let mut sources: Vec<&str> = jobs.iter().map(|j| j.source.as_str()).collect();
    sources.sort();
    sources.dedup();
    assert_eq!(sources.len(), 100);

    // Renamed, and moved into a subfolder: the same content, so no new job.
    std::fs::rename(root.join("clip000.mp4"), root.join("renamed.mp4")).unwrap();
    std::fs::create_dir(root.join("sub")).unwrap();
    std::fs::rename(root.join("clip001.mp4"), root.join("sub/clip001.mp4")).unwrap();
    // A folder of videos moved in at once: its videos are new.
    let elsewhere = tempfile::tempdir_in(root.parent().unwrap()).unwrap();
    write(&elsewhere.path().join("inner/a.mp4"), "moved in a");
    write(&elsewhere.path().join("inner/b.mp4"), "moved in b");
    std::fs::rename(elsewhere.path().join("inner"), root.join("inner")).unwrap();
    let jobs = jobs_until(
        &running.engine,
        soon(),
        "the folder moved in told",
        |jobs| told(jobs) == 102,
    )
    .await;
    tokio::time::sleep(WINDOW * 4).await;
    let jobs_after = all_jobs(&running.engine).await;
    assert_eq!(
        jobs_after.len(),
        jobs.len(),
        "a rename or a move inside the folder is no new job"
    );
    assert_eq!(jobs_after.len(), 102);
    let folder = folder_until(&running.engine, &root, "counted", |f| f.succeeded == 102).await;
    assert_eq!(folder.found, 102);
    assert_eq!(teller.call_count(), 102);
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_videos_become_a_hundred_jobs_and_renames_moves_and_non_videos_none_native() {
    a_hundred_videos_become_a_hundred_jobs_and_renames_moves_and_non_videos_none(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_videos_become_a_hundred_jobs_and_renames_moves_and_non_videos_none_polled() {
    a_hundred_videos_become_a_hundred_jobs_and_renames_moves_and_non_videos_none(true).await;
}

async fn files_added_while_stopped_are_queued_on_start_and_what_the_app_writes_never(poll: bool) {
    let home = tempfile::tempdir().unwrap();
    let watched = tempfile::tempdir().unwrap();
    let root = std::fs::canonicalize(watched.path()).unwrap();
    let teller = Scripted::telling(|name| format!("A story of {name}."));
    let running = watching_engine(home.path(), teller.clone(), WINDOW).await;
    // Stories beside each video (Markdown and text), videos moved into done/, and a second
    // folder whose output folder lies inside it.
    let beside = root.join("beside");
    let into = root.join("into");
    std::fs::create_dir_all(&beside).unwrap();
    std::fs::create_dir_all(&into).unwrap();
    running
        .engine
        .watch_add(WatchRequest {
            beside: true,
            formats: vec![
                storyteller_engine::export::ExportFormat::Markdown,
                storyteller_engine::export::ExportFormat::Text,
            ],
            move_done: true,
            ..request(&beside, poll)
        })
        .await
        .unwrap();
    running
        .engine
        .watch_add(WatchRequest {
            recursive: true,
            output_folder: Some(into.join("stories").display().to_string()),
            ..request(&into, poll)
        })
        .await
        .unwrap();
    write(&beside.join("first.mp4"), "first video");
    write(&into.join("deep/first.mp4"), "first into");
    jobs_until(&running.engine, soon(), "first two told", |jobs| {
        told(jobs) == 2
    })
    .await;
    let engine = running.stop().await;

    // While nothing watches: two new videos.
    write(&beside.join("second.mp4"), "second video");
    write(&into.join("second.mp4"), "second into");
    drop(engine);
    let running = watching_engine(home.path(), teller.clone(), WINDOW).await;
    let jobs = jobs_until(&running.engine, soon(), "caught up on start", |jobs| {
        told(jobs) == 4
    })
    .await;
    // What the app wrote is all there, and none of it became a job.
    let wait_for = |path: PathBuf| async move {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !path.exists() {
            assert!(
                Instant::now() < deadline,
                "{} was not written",
                path.display()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    for name in ["first", "second"] {
        wait_for(beside.join(format!("done/{name}.story.md"))).await;
        wait_for(beside.join(format!("done/{name}.story.txt"))).await;
        assert!(beside.join(format!("done/{name}.mp4")).exists());
        assert!(!beside.join(format!("{name}.mp4")).exists(), "moved");
    }
    wait_for(into.join("stories/deep/first.story.md")).await;
    wait_for(into.join("stories/second.story.md")).await;
    let story = std::fs::read_to_string(beside.join("done/first.story.md")).unwrap();
    assert!(story.contains("A story of first.mp4."), "{story}");
    tokio::time::sleep(WINDOW * 4).await;
    let jobs_after = all_jobs(&running.engine).await;
    assert_eq!(jobs_after.len(), jobs.len(), "{jobs_after:?}");
    assert_eq!(jobs_after.len(), 4);
    // A job follows its video into done/.
    let moved = jobs_after
        .iter()
        .find(|j| j.file == "first.mp4" && j.folder.as_deref() == beside.to_str())
        .unwrap();
    assert_eq!(
        moved.source,
        beside.join("done/first.mp4").display().to_string()
    );
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_added_while_stopped_are_queued_on_start_and_what_the_app_writes_never_native() {
    files_added_while_stopped_are_queued_on_start_and_what_the_app_writes_never(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_added_while_stopped_are_queued_on_start_and_what_the_app_writes_never_polled() {
    files_added_while_stopped_are_queued_on_start_and_what_the_app_writes_never(true).await;
}

async fn a_new_file_under_an_old_name_is_told_and_old_content_under_a_new_name_is_not(poll: bool) {
    let home = tempfile::tempdir().unwrap();
    let watched = tempfile::tempdir().unwrap();
    let root = std::fs::canonicalize(watched.path()).unwrap();
    let teller = Scripted::telling(|name| format!("A story of {name}."));
    let running = watching_engine(home.path(), teller.clone(), WINDOW).await;
    running
        .engine
        .watch_add(request(&root, poll))
        .await
        .unwrap();
    write(&root.join("GOPR0001.mp4"), "Monday's ride");
    jobs_until(&running.engine, soon(), "told", |jobs| told(jobs) == 1).await;
    // The camera's card reused the name for a new video.
    std::fs::remove_file(root.join("GOPR0001.mp4")).unwrap();
    write(&root.join("GOPR0001.mp4"), "Tuesday's ride, longer");
    jobs_until(&running.engine, soon(), "the new content told", |jobs| {
        told(jobs) == 2
    })
    .await;
    // Monday's video copied back in under another name: seen before, no job.
    write(&root.join("monday.mp4"), "Monday's ride");
    tokio::time::sleep(WINDOW * 5).await;
    assert_eq!(all_jobs(&running.engine).await.len(), 2);
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_file_under_an_old_name_is_told_and_old_content_under_a_new_name_is_not_native() {
    a_new_file_under_an_old_name_is_told_and_old_content_under_a_new_name_is_not(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_file_under_an_old_name_is_told_and_old_content_under_a_new_name_is_not_polled() {
    a_new_file_under_an_old_name_is_told_and_old_content_under_a_new_name_is_not(true).await;
}

async fn a_folder_removed_and_recreated_is_watched_again(poll: bool) {
    let home = tempfile::tempdir().unwrap();
    let parent = tempfile::tempdir().unwrap();
    let root = std::fs::canonicalize(parent.path()).unwrap().join("camera");
    std::fs::create_dir(&root).unwrap();
    let teller = Scripted::telling(|name| format!("A story of {name}."));
    let running = watching_engine(home.path(), teller.clone(), WINDOW).await;
    running
        .engine
        .watch_add(request(&root, poll))
        .await
        .unwrap();
    write(&root.join("a.mp4"), "a");
    jobs_until(&running.engine, soon(), "told", |jobs| told(jobs) == 1).await;

    // The card is pulled: the folder goes.
    std::fs::remove_dir_all(&root).unwrap();
    let missing = folder_until(&running.engine, &root, "missing", |f| {
        matches!(f.status, WatchStatus::Missing { .. })
    })
    .await;
    let WatchStatus::Missing { reason } = missing.status else {
        unreachable!()
    };
    assert!(
        reason.contains("watched again as soon as it is back"),
        "{reason}"
    );
    // And comes back, with a video already on it and one written after.
    std::fs::create_dir(&root).unwrap();
    write(&root.join("b.mp4"), "b");
    folder_until(&running.engine, &root, "watching again", |f| {
        matches!(f.status, WatchStatus::Watching { .. })
    })
    .await;
    write(&root.join("c.mp4"), "c");
    jobs_until(&running.engine, soon(), "both told", |jobs| told(jobs) == 3).await;
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_folder_removed_and_recreated_is_watched_again_native() {
    a_folder_removed_and_recreated_is_watched_again(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_folder_removed_and_recreated_is_watched_again_polled() {
    a_folder_removed_and_recreated_is_watched_again(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_of_a_folder_whose_storyteller_is_not_set_up_wait_with_the_reason_then_run() {
    let home = tempfile::tempdir().unwrap();
    let watched = tempfile::tempdir().unwrap();
    let root = std::fs::canonicalize(watched.path()).unwrap();
    // A storyteller with no key yet: it refuses every video until it has one.
    let keyed = Arc::new(AtomicBool::new(false));
    let has_key = keyed.clone();
    let teller = Scripted::new(move |request, _| {
        let ready = has_key.load(Ordering::SeqCst);
        let name = request.source.display().to_string();
        Box::pin(async move {
            if ready {
                Ok(format!("A story of {name}."))
            } else {
                Err(StoryError::Auth {
                    message: "no API key is set for scripted".into(),
                })
            }
        })
    });
    let running = watching_engine(home.path(), teller.clone(), WINDOW).await;
    running
        .engine
        .watch_add(request(&root, false))
        .await
        .unwrap();
    folder_until(
        &running.engine,
        &root,
        "armed though nothing can be told",
        |f| matches!(f.status, WatchStatus::Watching { .. }),
    )
    .await;
    write(&root.join("a.mp4"), "a");
    write(&root.join("b.mp4"), "b");
    let jobs = jobs_until(&running.engine, soon(), "both queued, waiting", |jobs| {
        jobs.len() == 2 && jobs.iter().all(|j| j.state == JobState::Queued)
    })
    .await;
    assert!(jobs.iter().all(|j| j.folder.is_some()));
    // Why they wait is there to see.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let stats = running.engine.stats().await.unwrap();
        if let Some(pause) = stats
            .paused_storytellers
            .iter()
            .find(|p| p.storyteller == "scripted")
        {
            assert!(pause.reason.contains("no API key"), "{pause:?}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the reason is not shown: {stats:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The key is given (here: the storyteller resumed, as keeping a key does).
    keyed.store(true, Ordering::SeqCst);
    running.engine.resume_storyteller("scripted").await.unwrap();
    jobs_until(&running.engine, soon(), "both told once set up", |jobs| {
        told(jobs) == 2
    })
    .await;
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_folder_told_by_an_ollama_not_running_yet_waits_then_starts_by_itself() {
    use storyteller_engine::storyteller::ollama::OllamaStoryteller;
    let home = tempfile::tempdir().unwrap();
    let watched = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let root = std::fs::canonicalize(watched.path()).unwrap();
    // Nothing listens where Ollama is looked for: it is not started yet.
    let base = crate::support::nobody_listening();
    let teller = Arc::new(OllamaStoryteller::with_media(
        &base,
        "llava",
        crate::support::media(),
    ));
    let engine = engine_with(home.path(), teller, 2, WINDOW).await;
    let running = Running::start(engine);
    let mut watch = request(&root, false);
    watch.storyteller = Some("ollama".into());
    running.engine.watch_add(watch).await.unwrap();
    folder_until(
        &running.engine,
        &root,
        "armed though Ollama is not running",
        |f| matches!(f.status, WatchStatus::Watching { .. }),
    )
    .await;
    let video = crate::support::two_shots(
        elsewhere.path(),
        "harbour.mp4",
        crate::support::Look::Colour("navy"),
    );
    std::fs::rename(&video, root.join("harbour.mp4")).unwrap();

    // The job waits, and why is there to see: Ollama is not running.
    let deadline = Instant::now() + soon() + Duration::from_secs(20);
    let pause = loop {
        let stats = running.engine.stats().await.unwrap();
        if let Some(pause) = stats
            .paused_storytellers
            .iter()
            .find(|p| p.storyteller == "ollama")
        {
            break pause.clone();
        }
        assert!(
            Instant::now() < deadline,
            "the reason is not shown: {stats:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(pause.reason.contains("Ollama is not running"), "{pause:?}");
    let jobs = jobs_until(&running.engine, soon(), "the job waiting", |jobs| {
        jobs.len() == 1 && jobs[0].state == JobState::Queued
    })
    .await;
    assert_eq!(jobs[0].folder.as_deref(), Some(root.to_str().unwrap()));

    // Ollama starts where it was looked for; nobody touches the queue, and the job is told.
    let address = base.trim_start_matches("http://").to_owned();
    let listener = std::net::TcpListener::bind(&address).unwrap();
    let server = wiremock::MockServer::builder()
        .listener(listener)
        .start()
        .await;
    let body = [
        serde_json::json!({"model": "llava:13b", "message": {"role": "assistant", "content": "A navy screen "}, "done": false}),
        serde_json::json!({"model": "llava:13b", "message": {"role": "assistant", "content": "gives way to bars."}, "done": false}),
        serde_json::json!({"model": "llava:13b", "message": {"role": "assistant", "content": ""}, "done": true, "done_reason": "stop", "prompt_eval_count": 900, "eval_count": 12}),
    ]
    .iter()
    .map(|line| format!("{line}\n"))
    .collect::<String>();
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .and(wiremock::matchers::path("/api/chat"))
        .respond_with(
            wiremock::ResponseTemplate::new(200).set_body_raw(body, "application/x-ndjson"),
        )
        .mount(&server)
        .await;
    // Ollama is looked at again within half a minute of being found not running.
    let jobs = jobs_until(
        &running.engine,
        Duration::from_secs(60),
        "the job told once Ollama runs",
        |jobs| told(jobs) == 1,
    )
    .await;
    let told_job = running.engine.get(&jobs[0].id.to_string()).await.unwrap();
    assert!(
        told_job
            .story
            .as_deref()
            .unwrap_or_default()
            .starts_with("A navy screen gives way to bars."),
        "{told_job:?}"
    );
    assert!(running
        .engine
        .stats()
        .await
        .unwrap()
        .paused_storytellers
        .is_empty());
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watching_is_checked_like_an_add_and_folders_follow_their_changes() {
    let home = tempfile::tempdir().unwrap();
    let watched = tempfile::tempdir().unwrap();
    let root = std::fs::canonicalize(watched.path()).unwrap();
    std::fs::create_dir_all(root.join("sub")).unwrap();
    let teller = Scripted::telling(|name| format!("A story of {name}."));
    let engine = engine_with(home.path(), teller, 2, WINDOW).await;
    let mut settings = engine.settings();
    settings.storyteller = "scripted".into();
    engine.update_settings(settings).await.unwrap();
    let refused = |request: WatchRequest| {
        let engine = engine.clone();
        async move { engine.watch_add(request).await.unwrap_err().to_string() }
    };
    let missing = refused(request(&root.join("nope"), false)).await;
    assert!(missing.contains("no such file or folder"), "{missing}");
    let file = root.join("sub/a.mp4");
    write(&file, "x");
    assert!(refused(request(&file, false)).await.contains("is a file"));
    let teller = refused(WatchRequest {
        storyteller: Some("nobody".into()),
        ..request(&root, false)
    })
    .await;
    assert!(teller.contains("nobody"), "{teller}");
    let kind = refused(WatchRequest {
        extensions: vec![".txt".into()],
        ..request(&root, false)
    })
    .await;
    assert!(kind.contains("'.txt' is not a video type"), "{kind}");
    let both = refused(WatchRequest {
        beside: true,
        output_folder: Some("/tmp/x".into()),
        ..request(&root, false)
    })
    .await;
    assert!(both.contains("not both"), "{both}");
    let itself = refused(WatchRequest {
        output_folder: Some(root.display().to_string()),
        ..request(&root, false)
    })
    .await;
    assert!(itself.contains("watched folder itself"), "{itself}");

    // Watched with its subfolders: a folder inside it cannot be watched apart.
    let added = engine
        .watch_add(WatchRequest {
            recursive: true,
            extensions: vec!["MP4".into(), ".mov".into()],
            ..request(&root, false)
        })
        .await
        .unwrap();
    assert_eq!(added.extensions, ["mp4", "mov"]);
    assert_eq!(added.status, WatchStatus::Idle, "nothing watches yet");
    let inside = refused(request(&root.join("sub"), false)).await;
    assert!(inside.contains("as part of"), "{inside}");
    // Paused, listed, removed (by a path with a trailing slash).
    let paused = engine
        .watch_pause(&format!("{}/", root.display()), true)
        .await
        .unwrap();
    assert!(paused.paused);
    assert_eq!(paused.status, WatchStatus::Paused);
    assert_eq!(engine.watched_folders().await.unwrap().len(), 1);
    let removed = engine
        .watch_remove(&format!("{}/", root.display()))
        .await
        .unwrap();
    assert_eq!(removed.path, root.display().to_string());
    assert!(engine.watched_folders().await.unwrap().is_empty());
    let again = engine
        .watch_remove(root.to_str().unwrap())
        .await
        .unwrap_err();
    assert!(
        again.to_string().contains("not a watched folder"),
        "{again}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_folder_added_in_another_process_is_watched_here_and_a_paused_one_waits() {
    let home = tempfile::tempdir().unwrap();
    let watched = tempfile::tempdir().unwrap();
    let root = std::fs::canonicalize(watched.path()).unwrap();
    let teller = Scripted::telling(|name| format!("A story of {name}."));
    let running = watching_engine(home.path(), teller.clone(), WINDOW).await;
    // `storyteller watch add` beside the running app: another engine on the same home.
    let other = Engine::open(EngineOptions {
        home: Some(home.path().to_path_buf()),
        storytellers: Some(registry_of(teller.clone())),
        ..EngineOptions::default()
    })
    .await
    .unwrap();
    other.watch_add(request(&root, false)).await.unwrap();
    let status = folder_until(&other, &root, "watched by the first engine", |f| {
        matches!(f.status, WatchStatus::Watching { .. })
    })
    .await;
    assert_eq!(status.status.word(), "watching");
    write(&root.join("a.mp4"), "a");
    jobs_until(&running.engine, soon(), "told", |jobs| told(jobs) == 1).await;

    // Paused elsewhere: new files wait, and are found when it goes on. The folder shows as
    // paused at once; its watcher here stops once this process hears of it, which is when it
    // says so.
    let mut events = running.engine.subscribe();
    other
        .watch_pause(root.to_str().unwrap(), true)
        .await
        .unwrap();
    folder_until(&running.engine, &root, "paused here", |f| {
        f.status == WatchStatus::Paused
    })
    .await;
    let folder = root.to_string_lossy().into_owned();
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let envelope = events.recv().await.unwrap();
            if let storyteller_engine::Event::WatchedFolderStatus {
                folder: about,
                status,
            } = &envelope.event
            {
                if *about == folder && *status == WatchStatus::Paused {
                    break;
                }
            }
        }
    })
    .await
    .expect("the watcher here did not stop for the pause");
    write(&root.join("b.mp4"), "b");
    tokio::time::sleep(WINDOW * 4).await;
    assert_eq!(all_jobs(&running.engine).await.len(), 1, "paused");
    other
        .watch_pause(root.to_str().unwrap(), false)
        .await
        .unwrap();
    jobs_until(&running.engine, soon(), "found once it went on", |jobs| {
        told(jobs) == 2
    })
    .await;
    running.stop().await;
}
