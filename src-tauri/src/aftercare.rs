//! What the app does around the telling, as the settings ask: a desktop notification when a
//! batch has been told to the end (with how many succeeded and failed), the story on the
//! clipboard when a job finishes, the computer kept awake while jobs run, and the progress of
//! the work in hand in the window title and the taskbar or dock. Fed by the engine's event
//! stream, like the window.

use crate::awake::KeepAwake;
use crate::shell::Shell;
use storyteller_engine::batches::BatchTracker;
use storyteller_engine::job::JobState;
use storyteller_engine::wire::ListQuery;
use storyteller_engine::{Engine, Event};
use tauri::Manager;
use tauri_plugin_notification::NotificationExt;

/// Starts following `engine`'s events for notifications and copies.
pub fn start<R: tauri::Runtime>(app: tauri::AppHandle<R>, engine: Engine) {
    let mut events = engine.subscribe();
    tauri::async_runtime::spawn(async move {
        let mut tracker = fresh_tracker(&engine).await;
        let mut awake = KeepAwake::default();
        let mut shown_progress = None;
        show_progress(&app, tracker.progress());
        while let Some(envelope) = events.recv().await {
            if let Event::QueueStats { stats } = &envelope.event {
                awake
                    .set(stats.running > 0 && engine.settings().keep_awake)
                    .await;
            }
            if let Event::Resync { .. } = envelope.event {
                tracker = fresh_tracker(&engine).await;
                continue;
            }
            // The settings are read (a lock and a copy) only for the few events that need
            // them, not for every progress and story event.
            if let Event::JobFinished {
                job_id,
                state: JobState::Succeeded,
                ..
            } = &envelope.event
            {
                if engine.settings().copy_when_done {
                    copy_story(&app, &engine, &job_id.to_string()).await;
                }
            }
            let ended = tracker.apply(&envelope.event);
            let progress = tracker.progress();
            if progress != shown_progress {
                shown_progress = progress;
                show_progress(&app, progress);
            }
            for done in ended {
                if !engine.settings().notify_when_done {
                    continue;
                }
                let title = if done.failed > 0 {
                    "Stories told, with failures"
                } else {
                    "Stories told"
                };
                let shown = app
                    .notification()
                    .builder()
                    .title(title)
                    .body(done.summary())
                    .show();
                match shown {
                    Ok(()) => tracing::info!(summary = %done.summary(), "batch told; notified"),
                    Err(error) => tracing::warn!(%error, "the notification could not be shown"),
                }
            }
        }
    });
}

/// Shows how far the open batches have got in the window title ("Storyteller — 3 of 10
/// told") and as the taskbar or dock progress, where the system has one; both go when the
/// queue has nothing in hand.
fn show_progress<R: tauri::Runtime>(app: &tauri::AppHandle<R>, progress: Option<(u32, u32)>) {
    use tauri::window::{ProgressBarState, ProgressBarStatus};
    let Some(window) = app.get_webview_window("main") else {
        return;
    };
    let (title, bar) = match progress {
        Some((finished, total)) if total > 0 => (
            format!("Storyteller — {finished} of {total} told"),
            ProgressBarState {
                status: Some(ProgressBarStatus::Normal),
                progress: Some(u64::from(finished) * 100 / u64::from(total)),
            },
        ),
        _ => (
            "Storyteller".to_owned(),
            ProgressBarState {
                status: Some(ProgressBarStatus::None),
                progress: None,
            },
        ),
    };
    if let Err(error) = window.set_title(&title) {
        tracing::debug!(%error, "the window title could not be set");
    }
    // Not every desktop has a taskbar progress (it needs a launcher entry on Linux).
    if let Err(error) = window.set_progress_bar(bar) {
        tracing::debug!(%error, "the taskbar progress could not be set");
    }
}

/// A tracker that knows of every unfinished job now.
async fn fresh_tracker(engine: &Engine) -> BatchTracker {
    let mut unfinished = Vec::new();
    for state in [JobState::Queued, JobState::Running] {
        match engine
            .list(ListQuery {
                state: Some(state),
                ..ListQuery::default()
            })
            .await
        {
            Ok(page) => unfinished.extend(page.jobs),
            Err(error) => tracing::warn!(%error, "unfinished jobs could not be listed"),
        }
    }
    BatchTracker::new(unfinished.iter())
}

async fn copy_story<R: tauri::Runtime>(app: &tauri::AppHandle<R>, engine: &Engine, id: &str) {
    let Ok(job) = engine.get(id).await else {
        return;
    };
    let (Some(story), Some(shell)) = (job.story, app.try_state::<Shell>()) else {
        return;
    };
    if let Err(error) = shell.copy_text(story) {
        tracing::warn!(%error, "the story could not be copied");
    }
}
