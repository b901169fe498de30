//! The app's life: opening the engine on its home, working the queue while the window is
//! open, and putting running jobs back on the way out.

use crate::bridge;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;
use storyteller_engine::pool::RunUntil;
use storyteller_engine::{Engine, EngineError, EngineOptions, ErrorPayload};
use tauri::Manager;

/// How long quitting waits for running jobs to be put back.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// What the window knows of the app before any job.
#[derive(Clone, Debug, Serialize, specta::Type)]
#[serde(rename_all = "camelCase")]
pub struct AppStatus {
    /// The home folder in use (database, thumbnails, settings).
    pub home: Option<String>,
    /// Why the queue cannot work, when it cannot: the database could not be opened, a tool
    /// is missing. The window shows it instead of an empty queue.
    pub problem: Option<ErrorPayload>,
}

/// Puts text on the system clipboard.
pub type ClipboardWriter = Box<dyn Fn(String) -> Result<(), String> + Send + Sync>;

/// Hands a file to the system: opened in its app, or shown in its folder.
pub type FileOpener = Box<dyn Fn(&Path, OpenAs) -> Result<(), String> + Send + Sync>;

/// How a file is handed to the system.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenAs {
    /// In the app the system uses for it.
    App,
    /// Selected in its folder, in the file manager.
    InFolder,
}

/// What the shell asks of the desktop around it. Closures, so that tests stand in for them.
pub struct Services {
    /// The system clipboard.
    pub clipboard: ClipboardWriter,
    /// Opening files and folders.
    pub opener: FileOpener,
}

/// The engine the commands use, or why there is none.
pub struct Shell {
    engine: Result<Engine, ErrorPayload>,
    services: Services,
    quit_confirmed: std::sync::atomic::AtomicBool,
    problem: Mutex<Option<ErrorPayload>>,
    runner: Mutex<Option<tauri::async_runtime::JoinHandle<()>>>,
}

impl Shell {
    /// The engine, or the error that kept it from opening.
    pub fn engine(&self) -> Result<&Engine, ErrorPayload> {
        self.engine.as_ref().map_err(Clone::clone)
    }

    /// Puts `text` on the system clipboard.
    pub fn copy_text(&self, text: String) -> Result<(), String> {
        (self.services.clipboard)(text)
    }

    /// Hands `path` to the system, opened or shown in its folder.
    pub fn open_file(&self, path: &Path, how: OpenAs) -> Result<(), String> {
        (self.services.opener)(path, how)
    }

    /// The home and any problem, for the window.
    pub fn status(&self) -> AppStatus {
        let problem = match &self.engine {
            Err(error) => Some(error.clone()),
            Ok(_) => self.problem.lock().ok().and_then(|p| p.clone()),
        };
        AppStatus {
            home: self
                .engine
                .as_ref()
                .ok()
                .map(|engine| engine.home().root().display().to_string()),
            problem,
        }
    }

    /// Stops the queue here: running jobs go back to it, to resume on the next start.
    pub fn stop(&self) {
        let Ok(engine) = &self.engine else { return };
        let running = engine.running_here();
        if running > 0 {
            tracing::info!(
                running,
                "quitting: the videos being told go back to the queue and resume next time"
            );
        }
        engine.stop();
        let runner = self.runner.lock().ok().and_then(|mut r| r.take());
        if let Some(runner) = runner {
            let waited = tauri::async_runtime::block_on(async {
                tokio::time::timeout(STOP_TIMEOUT, runner).await
            });
            if waited.is_err() {
                tracing::warn!("running jobs took too long to stop; they resume on the next start");
            }
        }
    }
}

/// What the app was started with: `storyteller-desktop [--home DIR] [VIDEO|FOLDER …]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Launch {
    /// `--home DIR` (or `--home=DIR`).
    pub home: Option<PathBuf>,
    /// Files and folders to add, as "open with" and a second launch pass them.
    pub paths: Vec<PathBuf>,
}

impl Launch {
    /// Reads the arguments after the program's name. Options the app does not know (a
    /// platform's own, such as a process serial number) are passed over.
    pub fn parse(args: impl IntoIterator<Item = std::ffi::OsString>) -> Launch {
        let mut launch = Launch::default();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            if arg == "--home" {
                launch.home = args.next().map(PathBuf::from);
            } else if let Some(value) = arg.to_str().and_then(|a| a.strip_prefix("--home=")) {
                launch.home = Some(PathBuf::from(value));
            } else if arg == "--" {
                launch.paths.extend(args.by_ref().map(PathBuf::from));
            } else if !arg.to_string_lossy().starts_with('-') {
                launch.paths.push(PathBuf::from(arg));
            }
        }
        launch
    }
}

/// Whether closing the window should ask first: videos are being told here, the settings
/// ask for it, and the person has not already said to quit.
pub fn should_confirm_quit<R: tauri::Runtime>(app: &tauri::AppHandle<R>) -> bool {
    let Some(shell) = app.try_state::<Shell>() else {
        return false;
    };
    let Ok(engine) = shell.engine() else {
        return false;
    };
    !shell
        .quit_confirmed
        .load(std::sync::atomic::Ordering::SeqCst)
        && engine.settings().confirm_quit
        && engine.running_here() > 0
}

/// Asks whether to quit while videos are being told; quits if so.
pub fn confirm_quit<R: tauri::Runtime>(app: &tauri::AppHandle<R>) {
    use tauri_plugin_dialog::{DialogExt, MessageDialogButtons, MessageDialogKind};
    let running = app
        .try_state::<Shell>()
        .and_then(|shell| shell.engine().ok().map(Engine::running_here))
        .unwrap_or(0);
    let videos = if running == 1 {
        "1 video is".to_owned()
    } else {
        format!("{running} videos are")
    };
    let handle = app.clone();
    app.dialog()
        .message(format!(
            "{videos} being told. If you quit now, they go back to the queue and carry on \
             from where they got to when Storyteller opens again."
        ))
        .title("Quit Storyteller?")
        .kind(MessageDialogKind::Warning)
        .buttons(MessageDialogButtons::OkCancelCustom(
            "Quit".into(),
            "Keep working".into(),
        ))
        .show(move |quit| {
            if quit {
                if let Some(shell) = handle.try_state::<Shell>() {
                    shell
                        .quit_confirmed
                        .store(true, std::sync::atomic::Ordering::SeqCst);
                }
                handle.exit(0);
            }
        });
}

/// Adds `paths` (from the command line of this or a second launch), relative to `cwd`.
pub fn add_launch_paths<R: tauri::Runtime>(
    app: &tauri::AppHandle<R>,
    paths: Vec<PathBuf>,
    cwd: PathBuf,
) {
    if paths.is_empty() {
        return;
    }
    let Some(engine) = app
        .try_state::<Shell>()
        .and_then(|s| s.engine().ok().cloned())
    else {
        return;
    };
    let paths = paths.into_iter().map(|p| cwd.join(p)).collect();
    tauri::async_runtime::spawn(async move {
        if let Err(error) = engine.add(paths, Default::default(), |_| {}).await {
            tracing::warn!(%error, "the videos given at launch could not be added");
        }
    });
}

/// Opens the engine on `home` (else `STORYTELLER_HOME`, else the OS data folder), starts the
/// event bridge and the queue, and hands the shell to the app's state.
pub fn open<R: tauri::Runtime>(app: &tauri::App<R>, launch: Launch, services: Services) {
    let home = launch.home;
    let opened = tauri::async_runtime::block_on(Engine::open(EngineOptions {
        home,
        ..EngineOptions::default()
    }));
    let shell = match opened {
        Ok(engine) => {
            bridge::start(app.handle().clone(), &engine);
            crate::aftercare::start(app.handle().clone(), engine.clone());
            let shell = Shell {
                engine: Ok(engine.clone()),
                services,
                quit_confirmed: Default::default(),
                problem: Mutex::new(None),
                runner: Mutex::new(None),
            };
            // The watched folders, for as long as the window is open (the queue's runner is
            // put back on the way out; a watcher holds nothing that needs putting back).
            let watcher = engine.clone();
            let watcher_handle = app.handle().clone();
            tauri::async_runtime::spawn(async move {
                if let Err(error) = watcher.watch_folders(std::future::pending()).await {
                    tracing::error!(%error, "the watched folders are not watched");
                    note_problem(&watcher_handle, &error);
                }
            });
            let handle = app.handle().clone();
            let runner = tauri::async_runtime::spawn(async move {
                let result = engine.run(RunUntil::Shutdown, std::future::pending()).await;
                if let Err(error) = result {
                    tracing::error!(%error, "the queue stopped");
                    note_problem(&handle, &error);
                }
            });
            if let Ok(mut slot) = shell.runner.lock() {
                *slot = Some(runner);
            }
            shell
        }
        Err(error) => {
            tracing::error!(%error, "the engine could not open");
            Shell {
                engine: Err(ErrorPayload::from(&error)),
                services,
                quit_confirmed: Default::default(),
                problem: Mutex::new(None),
                runner: Mutex::new(None),
            }
        }
    };
    app.manage(shell);
    let cwd = std::env::current_dir().unwrap_or_default();
    add_launch_paths(app.handle(), launch.paths, cwd);
}

fn note_problem<R: tauri::Runtime>(app: &tauri::AppHandle<R>, error: &EngineError) {
    if let Some(shell) = app.try_state::<Shell>() {
        if let Ok(mut problem) = shell.problem.lock() {
            *problem = Some(ErrorPayload::from(error));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Launch;
    use std::ffi::OsString;
    use std::path::PathBuf;

    fn parse(args: &[&str]) -> Launch {
        Launch::parse(args.iter().map(OsString::from))
    }

    #[test]
    fn the_home_and_the_paths_to_add_are_read_from_the_command_line() {
        assert_eq!(parse(&[]), Launch::default());
        let launch = parse(&["--home", "/h", "a.mp4", "clips"]);
        assert_eq!(launch.home, Some(PathBuf::from("/h")));
        assert_eq!(
            launch.paths,
            [PathBuf::from("a.mp4"), PathBuf::from("clips")]
        );
        assert_eq!(parse(&["--home=/x"]).home, Some(PathBuf::from("/x")));
        // Options of the platform are passed over; after `--` everything is a path.
        let launch = parse(&["-psn_0_1234", "--", "--odd name.mp4"]);
        assert_eq!(launch.paths, [PathBuf::from("--odd name.mp4")]);
    }
}
