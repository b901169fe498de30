//! The window's commands: each converts its arguments and calls one engine operation.
//!
//! Every command answers `Result<T, ErrorPayload>`: an engine error crosses as its
//! `{ code, message }` (the codes are those of `EngineError::code`), so the window can tell a
//! missing ffmpeg from a paused queue from a refused file.

use crate::shell::{OpenAs, Shell};
use std::path::PathBuf;
use storyteller_engine::config::ConfigEntry;
use storyteller_engine::error::ErrorCode;
use storyteller_engine::export::ExportFormat;
use storyteller_engine::secrets::KeyStatusView;
use storyteller_engine::settings::Settings;
use storyteller_engine::wire::{
    AddOptions, AddReport, DoctorCheck, EstimateReport, ExportQuery, JobPage, JobView, ListQuery,
    QueueStats, SearchHit, SearchQuery, StorytellerInfo, WatchRequest, WatchedFolderView,
};
use storyteller_engine::ErrorPayload;
use storyteller_engine::{JobId, Priority};
use tauri::State;

/// What a command answers.
type Answer<T> = Result<T, ErrorPayload>;

fn wire<T>(result: storyteller_engine::Result<T>) -> Answer<T> {
    result.map_err(|error| ErrorPayload::from(&error))
}

/// Adds files and folders (what a drop onto the window sends), searched recursively.
#[tauri::command]
#[specta::specta]
pub async fn add_paths(
    shell: State<'_, Shell>,
    paths: Vec<String>,
    options: AddOptions,
) -> Answer<AddReport> {
    let paths = paths.into_iter().map(PathBuf::from).collect();
    wire(shell.engine()?.add(paths, options, |_| {}).await)
}

/// One page of jobs.
#[tauri::command]
#[specta::specta]
pub async fn list_jobs(shell: State<'_, Shell>, query: ListQuery) -> Answer<JobPage> {
    wire(shell.engine()?.list(query).await)
}

/// One job, with its story.
#[tauri::command]
#[specta::specta]
pub async fn get_job(shell: State<'_, Shell>, id: String) -> Answer<JobView> {
    wire(shell.engine()?.get(&id).await)
}

/// Cancels a queued or running job (a running one stops at once).
#[tauri::command]
#[specta::specta]
pub async fn cancel_job(shell: State<'_, Shell>, id: String) -> Answer<JobView> {
    wire(shell.engine()?.cancel(&id).await)
}

/// Queues a failed or cancelled job again.
#[tauri::command]
#[specta::specta]
pub async fn retry_job(shell: State<'_, Shell>, id: String) -> Answer<JobView> {
    wire(shell.engine()?.retry(&id).await)
}

/// Queues every failed job again.
#[tauri::command]
#[specta::specta]
pub async fn retry_failed(shell: State<'_, Shell>) -> Answer<Vec<JobView>> {
    wire(shell.engine()?.retry_failed().await)
}

/// Deletes a job that is not running, and its thumbnails when no other job shows them.
#[tauri::command]
#[specta::specta]
pub async fn remove_job(shell: State<'_, Shell>, id: String) -> Answer<JobView> {
    wire(shell.engine()?.remove(&id).await)
}

/// Deletes every finished job; how many.
#[tauri::command]
#[specta::specta]
pub async fn clear_finished(shell: State<'_, Shell>) -> Answer<u32> {
    wire(shell.engine()?.clear_finished().await)
}

/// Stops starting jobs (running ones finish).
#[tauri::command]
#[specta::specta]
pub async fn pause_queue(shell: State<'_, Shell>) -> Answer<()> {
    wire(shell.engine()?.pause("paused in the window").await)
}

/// Starts jobs again.
#[tauri::command]
#[specta::specta]
pub async fn resume_queue(shell: State<'_, Shell>) -> Answer<()> {
    wire(shell.engine()?.resume().await)
}

/// Counts per state, cache figures, pause reason.
#[tauri::command]
#[specta::specta]
pub async fn queue_stats(shell: State<'_, Shell>) -> Answer<QueueStats> {
    wire(shell.engine()?.stats().await)
}

/// How many jobs run at once, now (the setting is saved by `update_settings`).
#[tauri::command]
#[specta::specta]
pub async fn set_concurrency(shell: State<'_, Shell>, concurrency: u32) -> Answer<()> {
    wire(shell.engine()?.set_concurrency(concurrency))
}

/// The settings.
#[tauri::command]
#[specta::specta]
pub async fn get_settings(shell: State<'_, Shell>) -> Answer<Settings> {
    Ok(shell.engine()?.settings())
}

/// Checks, saves and applies new settings; what was saved.
#[tauri::command]
#[specta::specta]
pub async fn update_settings(shell: State<'_, Shell>, settings: Settings) -> Answer<Settings> {
    wire(shell.engine()?.update_settings(settings).await)
}

/// The storytellers there are, with their models and presets.
#[tauri::command]
#[specta::specta]
pub async fn list_storytellers(shell: State<'_, Shell>) -> Answer<Vec<StorytellerInfo>> {
    Ok(shell.engine()?.storytellers())
}

/// Puts a job's story on the system clipboard.
#[tauri::command]
#[specta::specta]
pub async fn copy_story(shell: State<'_, Shell>, id: String) -> Answer<()> {
    let job = wire(shell.engine()?.get(&id).await)?;
    let story = job.story.ok_or_else(|| ErrorPayload {
        code: ErrorCode::NoStory,
        message: format!("{} has no story yet", job.file),
    })?;
    shell.copy_text(story).map_err(|e| ErrorPayload {
        code: ErrorCode::Clipboard,
        message: format!("the story could not be put on the clipboard: {e}"),
    })
}

/// Writes every story (or those `query` names) into one file; how many.
#[tauri::command]
#[specta::specta]
pub async fn export_stories(
    shell: State<'_, Shell>,
    path: String,
    format: ExportFormat,
    query: ExportQuery,
) -> Answer<u32> {
    let path = PathBuf::from(path);
    wire(shell.engine()?.export_to(&path, format, query).await)
}

/// The told stories (and file names) holding every word typed, best first, each with the
/// line of its story that matched.
#[tauri::command]
#[specta::specta]
pub async fn search_stories(shell: State<'_, Shell>, query: SearchQuery) -> Answer<Vec<SearchHit>> {
    wire(shell.engine()?.search(query).await)
}

/// Gives a job another priority.
#[tauri::command]
#[specta::specta]
pub async fn set_priority(
    shell: State<'_, Shell>,
    id: String,
    priority: Priority,
) -> Answer<JobView> {
    wire(shell.engine()?.set_priority(&id, priority).await)
}

/// Tells a job's video again with another preset, as a new job; the old story stays.
#[tauri::command]
#[specta::specta]
pub async fn retell(shell: State<'_, Shell>, id: String, preset: String) -> Answer<AddReport> {
    wire(shell.engine()?.retell(&id, &preset).await)
}

/// Puts the stories of `ids` (every told story when `null`) on the clipboard, each under its
/// file name as a heading; how many.
#[tauri::command]
#[specta::specta]
pub async fn copy_stories(shell: State<'_, Shell>, ids: Option<Vec<JobId>>) -> Answer<u32> {
    let query = ExportQuery {
        batch_id: None,
        ids,
    };
    let (text, count) = wire(shell.engine()?.export_text(query).await)?;
    if count == 0 {
        return Err(ErrorPayload {
            code: ErrorCode::NoStory,
            message: "there is no told story to copy yet".into(),
        });
    }
    shell.copy_text(text).map_err(|e| ErrorPayload {
        code: ErrorCode::Clipboard,
        message: format!("the stories could not be put on the clipboard: {e}"),
    })?;
    Ok(count)
}

/// Opens a job's video in the app the system uses for it.
#[tauri::command]
#[specta::specta]
pub async fn open_video(shell: State<'_, Shell>, id: String) -> Answer<()> {
    hand_to_system(&shell, &id, OpenAs::App).await
}

/// Shows a job's video in its folder, selected, in the file manager.
#[tauri::command]
#[specta::specta]
pub async fn show_in_folder(shell: State<'_, Shell>, id: String) -> Answer<()> {
    hand_to_system(&shell, &id, OpenAs::InFolder).await
}

async fn hand_to_system(shell: &Shell, id: &str, how: OpenAs) -> Answer<()> {
    let path = wire(shell.engine()?.video_path(id).await)?;
    shell.open_file(&path, how).map_err(|error| ErrorPayload {
        code: ErrorCode::Io,
        message: format!(
            "{}: the system could not open it: {error}",
            storyteller_engine::wire::display_path(&path)
        ),
    })
}

/// What the window shows before any job: the home folder, and why the queue cannot run when
/// it cannot (the database could not be opened, ffmpeg is missing).
#[tauri::command]
#[specta::specta]
pub async fn app_status(shell: State<'_, Shell>) -> Answer<crate::shell::AppStatus> {
    Ok(shell.status())
}

/// Where each storyteller's API key comes from, and its last four characters: never the key.
#[tauri::command]
#[specta::specta]
pub async fn api_keys(shell: State<'_, Shell>) -> Answer<Vec<KeyStatusView>> {
    wire(shell.engine()?.api_keys().await)
}

/// Keeps a key in the OS keychain; it is used from the next request on.
#[tauri::command]
#[specta::specta]
pub async fn set_api_key(
    shell: State<'_, Shell>,
    storyteller: String,
    key: String,
) -> Answer<KeyStatusView> {
    wire(shell.engine()?.set_api_key(&storyteller, &key).await)
}

/// Forgets the key kept in the keychain for a storyteller.
#[tauri::command]
#[specta::specta]
pub async fn forget_api_key(shell: State<'_, Shell>, storyteller: String) -> Answer<KeyStatusView> {
    wire(shell.engine()?.forget_api_key(&storyteller).await)
}

/// The settings' Test button: whether a storyteller answers, takes its key and has its model.
#[tauri::command]
#[specta::specta]
pub async fn check_storyteller(
    shell: State<'_, Shell>,
    storyteller: String,
) -> Answer<DoctorCheck> {
    wire(shell.engine()?.check_storyteller_now(&storyteller).await)
}

/// Starts a paused storyteller's jobs again.
#[tauri::command]
#[specta::specta]
pub async fn resume_storyteller(shell: State<'_, Shell>, storyteller: String) -> Answer<()> {
    wire(shell.engine()?.resume_storyteller(&storyteller).await)
}

/// What telling these files and folders would cost and take, before they are queued.
#[tauri::command]
#[specta::specta]
pub async fn estimate_paths(
    shell: State<'_, Shell>,
    paths: Vec<String>,
    options: AddOptions,
) -> Answer<EstimateReport> {
    let paths = paths.into_iter().map(PathBuf::from).collect();
    wire(shell.engine()?.estimate(paths, options).await)
}

/// Every setting by key (the storytellers' addresses, models, pace, time limits, caps and
/// prices), with its value, default and where it comes from.
#[tauri::command]
#[specta::specta]
pub async fn config_list(shell: State<'_, Shell>) -> Answer<Vec<ConfigEntry>> {
    Ok(shell.engine()?.config_list())
}

/// Sets one setting by key (`None`: back to its default); in force at once.
#[tauri::command]
#[specta::specta]
pub async fn config_set(
    shell: State<'_, Shell>,
    key: String,
    value: Option<String>,
) -> Answer<ConfigEntry> {
    wire(shell.engine()?.config_set(&key, value.as_deref()).await)
}

/// The watched folders, each with its status and what came of its videos.
#[tauri::command]
#[specta::specta]
pub async fn watched_folders(shell: State<'_, Shell>) -> Answer<Vec<WatchedFolderView>> {
    wire(shell.engine()?.watched_folders().await)
}

/// Watches a folder (or changes how one is watched), checked as an add is.
#[tauri::command]
#[specta::specta]
pub async fn watch_add(
    shell: State<'_, Shell>,
    request: WatchRequest,
) -> Answer<WatchedFolderView> {
    wire(shell.engine()?.watch_add(request).await)
}

/// Stops watching a folder; its jobs stay.
#[tauri::command]
#[specta::specta]
pub async fn watch_remove(shell: State<'_, Shell>, path: String) -> Answer<WatchedFolderView> {
    wire(shell.engine()?.watch_remove(&path).await)
}

/// Pauses a watched folder, or (with `paused` false) goes on watching it.
#[tauri::command]
#[specta::specta]
pub async fn watch_pause(
    shell: State<'_, Shell>,
    path: String,
    paused: bool,
) -> Answer<WatchedFolderView> {
    wire(shell.engine()?.watch_pause(&path, paused).await)
}
