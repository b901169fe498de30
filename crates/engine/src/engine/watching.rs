//! Watched folders on the facade: adding, changing, pausing and removing them (checked the
//! way an add is), listing them with their status and counts, watching them while a run or
//! the window is open, and what is done once one of their videos is told (the story written
//! out, the video moved into `done/`).
//!
//! Every process watching a home runs one watcher per folder ([`crate::watcher::watch`]); the
//! store tells each content once per folder, so two processes watching the same folder, or a
//! folder's repeated events, never make a second job. A folder added, removed or changed in
//! one process is watched accordingly by every other (the change log says so).

use super::{Engine, Inner};
use crate::config::ServiceConfig;
use crate::error::{EngineError, Result};
use crate::event::Event;
use crate::export::{self, ExportFormat};
use crate::intake::{self, IntakeOptions};
use crate::job::Job;
use crate::store::{JobStore, WatchedFolderReport};
use crate::watcher::folder::{StoryOutput, WatchedFolder, DONE_FOLDER};
use crate::watcher::watch::{self, WatchContext, WatchMode, WatchStatus, STATUS_REFRESH};
use crate::wire::{display_path, AddOptions, WatchRequest, WatchedFolderView};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The config key for the settling window.
pub const SETTLE_KEY: &str = "watch.settle-seconds";

/// The folders this process watches now.
#[derive(Default)]
pub(super) struct Watching {
    /// While [`Engine::watch_folders`] runs: its token, parent of each folder's.
    active: Option<CancellationToken>,
    /// Each folder watched, with the choices its watcher was started with.
    running: HashMap<PathBuf, (WatchedFolder, CancellationToken)>,
}

/// The statuses this process's watchers reported, by folder.
pub(super) type Statuses = Arc<Mutex<HashMap<PathBuf, WatchStatus>>>;

impl Engine {
    /// Watches a folder (or changes the choices of one watched already): its videos become
    /// jobs by themselves, once each, in every process that watches this home. Checked like
    /// an add: the folder must be there, its storyteller and preset must exist, its types
    /// must be video types, and it may not lie inside another watched folder (nor hold one)
    /// where both would see the same files.
    pub async fn watch_add(&self, request: WatchRequest) -> Result<WatchedFolderView> {
        let folders = self.inner.store.watched_folders().await?;
        let requested = PathBuf::from(request.path.trim());
        let path = tokio::task::spawn_blocking(move || checked_folder(&requested))
            .await
            .map_err(|_| EngineError::StoreClosed)??;
        let settings = self.settings();
        // The same checks as an add's, so a mistyped preset is refused now, not at each file.
        self.spec(
            &AddOptions {
                storyteller: request.storyteller.clone(),
                preset: request.preset.clone(),
                ..AddOptions::default()
            },
            &settings,
        )?;
        let extensions = request
            .extensions
            .iter()
            .map(|e| e.trim().trim_start_matches('.').to_ascii_lowercase())
            .filter(|e| !e.is_empty())
            .map(|e| {
                if intake::VIDEO_EXTENSIONS.contains(&e.as_str()) {
                    Ok(e)
                } else {
                    Err(EngineError::InvalidArgument(format!(
                        "'.{e}' is not a video type Storyteller reads ({})",
                        intake::VIDEO_EXTENSIONS.join(", ")
                    )))
                }
            })
            .collect::<Result<Vec<_>>>()?;
        let formats = if request.formats.is_empty() {
            vec![ExportFormat::Markdown]
        } else {
            request.formats.clone()
        };
        let output = match (request.beside, request.output_folder.as_deref()) {
            (true, Some(_)) => {
                return Err(EngineError::InvalidArgument(
                    "a story is written beside its video or into an output folder, not both".into(),
                ))
            }
            (true, None) => StoryOutput::Beside { formats },
            (false, Some(dir)) => {
                let dir = std::path::absolute(dir.trim())
                    .map_err(|e| EngineError::InvalidArgument(format!("{dir}: {e}")))?;
                let dir = std::fs::canonicalize(&dir).unwrap_or(dir);
                if dir == path {
                    return Err(EngineError::InvalidArgument(format!(
                        "the stories cannot be written into the watched folder itself ({}); \
                         write them beside the videos, or into a folder of their own",
                        path.display()
                    )));
                }
                if dir.exists() && !dir.is_dir() {
                    return Err(EngineError::InvalidArgument(format!(
                        "{} is a file, not a folder to write stories into",
                        dir.display()
                    )));
                }
                StoryOutput::Folder { path: dir, formats }
            }
            (false, None) => StoryOutput::None,
        };
        let previous = folders.iter().find(|f| f.path == path);
        for other in folders.iter().filter(|f| f.path != path) {
            if other.recursive && path.starts_with(&other.path) {
                return Err(EngineError::InvalidArgument(format!(
                    "{} is watched already, as part of {} (watched with its subfolders)",
                    path.display(),
                    other.path.display()
                )));
            }
            if request.recursive && other.path.starts_with(&path) {
                return Err(EngineError::InvalidArgument(format!(
                    "{} is watched already and lies inside {}: remove it first \
                     (storyteller watch rm {}), or watch {} without its subfolders",
                    other.path.display(),
                    path.display(),
                    other.path.display(),
                    path.display()
                )));
            }
        }
        let folder = WatchedFolder {
            path: path.clone(),
            recursive: request.recursive,
            storyteller: request.storyteller.clone(),
            preset: request.preset.clone(),
            priority: request.priority,
            extensions,
            output,
            move_done: request.move_done,
            poll: request.poll,
            paused: previous.is_some_and(|p| p.paused),
        };
        self.inner.store.save_watched_folder(folder).await?;
        self.folders_changed();
        self.watched_folder(&path).await
    }

    /// Stops watching the folder at `path` and forgets what it has seen; its jobs stay.
    pub async fn watch_remove(&self, path: &str) -> Result<WatchedFolderView> {
        let view = self
            .watched_folder(&self.resolve_watched(path).await?)
            .await?;
        self.inner
            .store
            .remove_watched_folder(PathBuf::from(&view.path))
            .await?;
        self.folders_changed();
        Ok(view)
    }

    /// Pauses watching the folder at `path` (new files wait; they are found when it goes on)
    /// or, with `paused` false, goes on.
    pub async fn watch_pause(&self, path: &str, paused: bool) -> Result<WatchedFolderView> {
        let path = self.resolve_watched(path).await?;
        let folders = self.inner.store.watched_folders().await?;
        let Some(folder) = folders.into_iter().find(|f| f.path == path) else {
            return Err(not_watched(&path, &[]));
        };
        self.inner
            .store
            .save_watched_folder(WatchedFolder { paused, ..folder })
            .await?;
        self.folders_changed();
        self.watched_folder(&path).await
    }

    /// The watched folders, in path order, each with its status and counts.
    pub async fn watched_folders(&self) -> Result<Vec<WatchedFolderView>> {
        let folders = self.inner.store.watched_folders().await?;
        let reports = self.inner.store.watched_folder_reports().await?;
        let now = self.inner.clock.now_ms();
        let here = self
            .inner
            .watch_statuses
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default();
        Ok(folders
            .into_iter()
            .map(|folder| {
                let report = reports
                    .iter()
                    .find(|r| r.path == folder.path)
                    .cloned()
                    .unwrap_or_default();
                let status = status_of(&folder, &report, here.get(&folder.path), now);
                view(&folder, &report, status)
            })
            .collect())
    }

    /// Watches every watched folder until `shutdown` resolves, following the folders added,
    /// removed and changed meanwhile (here or in another process). Each folder first catches
    /// up with what arrived while nothing watched it.
    pub async fn watch_folders(
        &self,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<()> {
        let stop = CancellationToken::new();
        {
            let mut watching = self.inner.watching.lock().map_err(|_| poisoned())?;
            if watching.active.is_some() {
                return Err(EngineError::InvalidArgument(
                    "the folders are being watched already".into(),
                ));
            }
            watching.active = Some(stop.child_token());
        }
        tokio::pin!(shutdown);
        loop {
            if let Err(error) = self.start_and_stop_watchers().await {
                tracing::warn!(%error, "the watched folders cannot be read; trying again");
            }
            tokio::select! {
                _ = &mut shutdown => break,
                _ = self.inner.folders_changed.notified() => {}
                // Missed changes (a log trimmed) are caught up now and then.
                _ = tokio::time::sleep(STATUS_REFRESH) => {}
            }
        }
        let stopped: Vec<PathBuf> = {
            let mut watching = self.inner.watching.lock().map_err(|_| poisoned())?;
            if let Some(active) = watching.active.take() {
                active.cancel();
            }
            watching.running.drain().map(|(path, _)| path).collect()
        };
        if let Ok(mut statuses) = self.inner.watch_statuses.lock() {
            statuses.clear();
        }
        // The others see that nothing here watches these folders any more.
        let idle = serde_json::to_string(&WatchStatus::Idle).unwrap_or_default();
        for path in stopped {
            let _ = self
                .inner
                .store
                .report_watch_status(path, idle.clone())
                .await;
        }
        Ok(())
    }

    /// Queues what every watched folder holds now and has not told (each file once it has
    /// stopped changing), then returns: the catch-up of `storyteller run --until-empty`.
    pub async fn catch_up_folders(&self) -> Result<()> {
        let folders = self.inner.store.watched_folders().await?;
        let context = self.watch_context();
        let stop = CancellationToken::new();
        let mut tasks = tokio::task::JoinSet::new();
        for folder in folders.into_iter().filter(|f| !f.paused) {
            tasks.spawn(watch::watch_folder(
                folder,
                context.clone(),
                WatchMode::CatchUp,
                stop.clone(),
            ));
        }
        while tasks.join_next().await.is_some() {}
        Ok(())
    }

    /// Tells this process's watchers (when it watches) that the folder list changed.
    fn folders_changed(&self) {
        self.inner.folders_changed.notify_one();
        self.inner.bus.publish(Event::WatchedFoldersChanged);
    }

    /// The watched folder at `path` as given (relative, with a trailing slash, or through a
    /// link), or why there is none.
    async fn resolve_watched(&self, path: &str) -> Result<PathBuf> {
        let folders = self.inner.store.watched_folders().await?;
        let given = PathBuf::from(path.trim());
        let absolute = std::path::absolute(&given).unwrap_or_else(|_| given.clone());
        let canonical = std::fs::canonicalize(&absolute).unwrap_or_else(|_| absolute.clone());
        let candidates = [given, absolute, canonical];
        folders
            .iter()
            .find(|f| candidates.iter().any(|c| c == &f.path))
            .map(|f| f.path.clone())
            .ok_or_else(|| not_watched(Path::new(path), &folders))
    }

    async fn watched_folder(&self, path: &Path) -> Result<WatchedFolderView> {
        self.watched_folders()
            .await?
            .into_iter()
            .find(|f| Path::new(&f.path) == path)
            .ok_or_else(|| not_watched(path, &[]))
    }

    /// Starts a watcher for each folder not watched yet (or watched with other choices), and
    /// stops those of folders removed.
    async fn start_and_stop_watchers(&self) -> Result<()> {
        let folders = self.inner.store.watched_folders().await?;
        let context = self.watch_context();
        let mut watching = self.inner.watching.lock().map_err(|_| poisoned())?;
        let Some(active) = watching.active.clone() else {
            return Ok(());
        };
        let gone: Vec<PathBuf> = watching
            .running
            .iter()
            .filter(|(path, (choices, _))| {
                !folders.iter().any(|f| &f.path == *path && f == choices)
            })
            .map(|(path, _)| path.clone())
            .collect();
        for path in gone {
            if let Some((_, token)) = watching.running.remove(&path) {
                token.cancel();
            }
            if let Ok(mut statuses) = self.inner.watch_statuses.lock() {
                statuses.remove(&path);
            }
        }
        for folder in folders {
            if watching.running.contains_key(&folder.path) {
                continue;
            }
            let token = active.child_token();
            watching
                .running
                .insert(folder.path.clone(), (folder.clone(), token.clone()));
            tokio::spawn(watch::watch_folder(
                folder,
                context.clone(),
                WatchMode::Follow,
                token,
            ));
        }
        Ok(())
    }

    /// What a folder's watcher needs, holding the engine weakly (a watcher left running must
    /// not keep a dropped engine alive).
    fn watch_context(&self) -> WatchContext {
        let window = self
            .inner
            .settle_window
            .unwrap_or_else(|| ServiceConfig::from_settings(&self.settings()).seconds(SETTLE_KEY));
        let for_options: Weak<Inner> = Arc::downgrade(&self.inner);
        let for_wake: Weak<Inner> = Arc::downgrade(&self.inner);
        let for_status: Weak<Inner> = Arc::downgrade(&self.inner);
        WatchContext {
            store: self.inner.store.clone(),
            clock: self.inner.clock.clone(),
            window,
            options_for: Arc::new(move |folder: &WatchedFolder| {
                let inner = for_options.upgrade().ok_or("the engine has stopped")?;
                let engine = Engine { inner };
                let settings = engine.settings();
                let spec = engine
                    .spec(
                        &AddOptions {
                            storyteller: folder.storyteller.clone(),
                            preset: folder.preset.clone(),
                            ..AddOptions::default()
                        },
                        &settings,
                    )
                    .map_err(|e| format!("its videos cannot be queued: {e}"))?;
                Ok(IntakeOptions {
                    spec,
                    priority: folder.priority.unwrap_or(settings.priority),
                    no_cache: false,
                    again: false,
                })
            }),
            queued: Arc::new(move || {
                if let Some(inner) = for_wake.upgrade() {
                    inner.pool.wake();
                }
            }),
            on_status: Arc::new(move |path: &Path, status: &WatchStatus| {
                let Some(inner) = for_status.upgrade() else {
                    return;
                };
                if let Ok(mut statuses) = inner.watch_statuses.lock() {
                    statuses.insert(path.to_path_buf(), status.clone());
                }
                inner.bus.publish(Event::WatchedFolderStatus {
                    folder: display_path(path),
                    status: status.clone(),
                });
                let store = inner.store.clone();
                let path = path.to_path_buf();
                let text = serde_json::to_string(status).unwrap_or_default();
                tokio::spawn(async move {
                    if let Err(error) = store.report_watch_status(path, text).await {
                        tracing::debug!(%error, "a watched folder's status could not be kept");
                    }
                });
            }),
        }
    }
}

/// The folder `requested` names, absolute and with links resolved, checked to be a folder.
fn checked_folder(requested: &Path) -> Result<PathBuf> {
    if requested.as_os_str().is_empty() {
        return Err(EngineError::InvalidArgument(
            "name a folder to watch".into(),
        ));
    }
    let absolute = std::path::absolute(requested)
        .map_err(|e| EngineError::InvalidArgument(format!("{}: {e}", requested.display())))?;
    match std::fs::metadata(&absolute) {
        Ok(meta) if meta.is_dir() => Ok(std::fs::canonicalize(&absolute).unwrap_or(absolute)),
        Ok(_) => Err(EngineError::InvalidArgument(format!(
            "{} is a file; watch the folder it is in",
            absolute.display()
        ))),
        Err(e) => Err(EngineError::InvalidArgument(format!(
            "{} cannot be watched: {}",
            absolute.display(),
            intake::describe_io_error(&e)
        ))),
    }
}

fn not_watched(path: &Path, folders: &[WatchedFolder]) -> EngineError {
    let watched: Vec<String> = folders.iter().map(|f| display_path(&f.path)).collect();
    EngineError::InvalidArgument(if watched.is_empty() {
        format!(
            "{} is not a watched folder (none is watched)",
            path.display()
        )
    } else {
        format!(
            "{} is not a watched folder (watched: {})",
            path.display(),
            watched.join(", ")
        )
    })
}

fn poisoned() -> EngineError {
    EngineError::InvalidArgument("the watched folders' state was lost to a crash".into())
}

/// What `folder` is doing: paused; this process's watcher's word; else what another process
/// last reported, while it is fresh; else idle.
fn status_of(
    folder: &WatchedFolder,
    report: &WatchedFolderReport,
    here: Option<&WatchStatus>,
    now_ms: i64,
) -> WatchStatus {
    if folder.paused {
        return WatchStatus::Paused;
    }
    if let Some(status) = here {
        return status.clone();
    }
    let fresh_ms = crate::clock::duration_ms(STATUS_REFRESH * 2 + Duration::from_secs(10));
    match (&report.status, report.status_at_ms) {
        (Some(text), Some(at)) if now_ms.saturating_sub(at) <= fresh_ms => {
            serde_json::from_str(text).unwrap_or(WatchStatus::Idle)
        }
        _ => WatchStatus::Idle,
    }
}

fn view(
    folder: &WatchedFolder,
    report: &WatchedFolderReport,
    status: WatchStatus,
) -> WatchedFolderView {
    let (output, output_folder, formats) = match &folder.output {
        StoryOutput::None => ("none", None, Vec::new()),
        StoryOutput::Beside { formats } => ("beside", None, formats.clone()),
        StoryOutput::Folder { path, formats } => {
            ("folder", Some(display_path(path)), formats.clone())
        }
    };
    WatchedFolderView {
        path: display_path(&folder.path),
        recursive: folder.recursive,
        storyteller: folder.storyteller.clone(),
        preset: folder.preset.clone(),
        priority: folder.priority,
        extensions: folder.extensions.clone(),
        output: output.into(),
        output_folder,
        formats,
        move_done: folder.move_done,
        poll: folder.poll,
        paused: folder.paused,
        status,
        found: report.found,
        queued: report.queued,
        running: report.running,
        succeeded: report.succeeded,
        failed: report.failed,
    }
}

/// What is done once a job from a watched folder is told, as its folder asks: the video moved
/// into `done/` (the job follows it), then the story written beside it or into the output
/// folder. A folder removed meanwhile asks for nothing. Off the worker; a failure is logged,
/// never held against the video.
pub(super) async fn after_told_in_folder(store: Arc<dyn JobStore>, mut job: Job) {
    let Some(folder_path) = job.watched_folder.clone() else {
        return;
    };
    let folder = match store.watched_folders().await {
        Ok(folders) => folders.into_iter().find(|f| f.path == folder_path),
        Err(error) => {
            tracing::warn!(job_id = %job.id, %error, "the watched folder's choices cannot be read");
            return;
        }
    };
    let Some(folder) = folder else {
        return;
    };
    if folder.move_done && job.source.starts_with(&folder.path) {
        let source = job.source.clone();
        let done = folder.path.join(DONE_FOLDER);
        match tokio::task::spawn_blocking(move || move_into(&source, &done)).await {
            Ok(Ok(moved)) => match store.move_source(job.id, moved.clone()).await {
                Ok(updated) => {
                    tracing::info!(job_id = %job.id, to = %moved.display(), "video moved into the done folder");
                    job = updated;
                }
                Err(error) => {
                    tracing::warn!(job_id = %job.id, %error, "the video was moved but the job could not follow");
                    job.source = moved;
                }
            },
            Ok(Err(error)) => {
                tracing::warn!(job_id = %job.id, %error, "the video could not be moved into the done folder")
            }
            Err(_) => {}
        }
    }
    let written = match folder.output.clone() {
        StoryOutput::None => return,
        StoryOutput::Beside { formats } => {
            let job = job.clone();
            tokio::task::spawn_blocking(move || export::write_beside(&job, &formats, false)).await
        }
        StoryOutput::Folder { path, formats } => {
            // The video's place under the watched folder is kept, so two videos of one name
            // in different subfolders get stories of their own.
            let relative = job
                .source
                .parent()
                .and_then(|parent| parent.strip_prefix(&folder.path).ok())
                .map(Path::to_path_buf)
                .unwrap_or_default();
            let relative = relative
                .strip_prefix(DONE_FOLDER)
                .map(Path::to_path_buf)
                .unwrap_or(relative);
            let dir = path.join(relative);
            let job = job.clone();
            tokio::task::spawn_blocking(move || export::write_into(&job, &dir, &formats, false))
                .await
        }
    };
    match written {
        Ok(Ok(paths)) => {
            for path in paths {
                tracing::info!(job_id = %job.id, path = %path.display(), "story written out for the watched folder");
            }
        }
        Ok(Err(error)) => {
            tracing::warn!(job_id = %job.id, %error, "the story could not be written out for the watched folder")
        }
        Err(_) => {}
    }
}

/// Moves `source` into `done` (made if need be) under its own name, or `NAME (2).EXT`, … when
/// that is taken; where it is now.
fn move_into(source: &Path, done: &Path) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(done)?;
    let name = source
        .file_name()
        .ok_or_else(|| std::io::Error::other("the video has no file name"))?;
    let stem = source
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let extension = source
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy()))
        .unwrap_or_default();
    let mut target = done.join(name);
    let mut n = 2;
    while target.exists() {
        target = done.join(format!("{stem} ({n}){extension}"));
        n += 1;
    }
    match std::fs::rename(source, &target) {
        Ok(()) => Ok(target),
        // Another drive (a done folder that is a mount of its own): copied, then removed.
        Err(e) if e.kind() == std::io::ErrorKind::CrossesDevices => {
            std::fs::copy(source, &target)?;
            std::fs::remove_file(source)?;
            Ok(target)
        }
        Err(e) => Err(e),
    }
}
