//! The Storyteller desktop window: a thin Tauri v2 shell over [`storyteller_engine::Engine`].
//!
//! - [`commands`]: one Tauri command per engine operation, each converting its arguments and
//!   delegating in a line or two. Errors cross as the engine's `{ code, message }`.
//! - [`bridge`]: forwards the engine's event stream to the window as one typed event,
//!   `engine-event`, carrying the engine's [`Envelope`](storyteller_engine::Envelope) as it is.
//!   The window never polls.
//! - [`specta_builder`]: the commands and events the UI's TypeScript is generated from
//!   (`ui/src/bindings.ts`; a test fails when that file is stale).
//! - [`aftercare`]: a notification when a batch has been told, the story copied when a job
//!   ends, as the settings ask.
//! - [`prefer_cpu_compositing`]: how WebKitGTK draws the page (see there).
//! - Thumbnails reach the window through the `thumb:` protocol (`thumb://localhost/HASH/N`),
//!   which the engine answers from its thumbnails folder alone: the window has no file access.

pub mod aftercare;
pub mod awake;
pub mod bridge;
pub mod commands;
pub mod shell;
pub mod thumbnails;

use tauri_specta::{collect_commands, collect_events, Builder};

/// Has WebKitGTK draw the page on the CPU rather than through its OpenGL compositor, unless
/// `WEBKIT_DISABLE_COMPOSITING_MODE` is already set (`=0` brings the compositor back). Call it
/// first thing in `main`, before any thread starts: WebKit reads it when the webview is made.
///
/// Why: the page is a list and some text, which the CPU draws in a few milliseconds, while the
/// compositor costs its GL contexts and layer buffers whatever the page. Measured on the
/// window benchmark (release build, 2 cores, software GL), compositing off against on: idle
/// memory 232 against 314 MiB, cold start with 10,000 jobs 0.8 against 1.1–1.9 s, an event on
/// screen 33 against 73 ms (p95), the longest frame of a 1,000-video drop 49 against 98 ms.
/// It also avoids the blank windows some GPU drivers give WebKitGTK's compositor.
pub fn prefer_cpu_compositing() {
    #[cfg(target_os = "linux")]
    if std::env::var_os("WEBKIT_DISABLE_COMPOSITING_MODE").is_none() {
        std::env::set_var("WEBKIT_DISABLE_COMPOSITING_MODE", "1");
    }
}

/// The commands and events the window may use, for the invoke handler and the generated
/// TypeScript alike.
pub fn specta_builder<R: tauri::Runtime>() -> Builder<R> {
    Builder::<R>::new()
        .commands(collect_commands![
            commands::add_paths,
            commands::list_jobs,
            commands::get_job,
            commands::cancel_job,
            commands::retry_job,
            commands::retry_failed,
            commands::remove_job,
            commands::clear_finished,
            commands::pause_queue,
            commands::resume_queue,
            commands::queue_stats,
            commands::set_concurrency,
            commands::get_settings,
            commands::update_settings,
            commands::list_storytellers,
            commands::copy_story,
            commands::export_stories,
            commands::search_stories,
            commands::set_priority,
            commands::retell,
            commands::copy_stories,
            commands::open_video,
            commands::show_in_folder,
            commands::app_status,
            commands::api_keys,
            commands::set_api_key,
            commands::forget_api_key,
            commands::check_storyteller,
            commands::resume_storyteller,
            commands::estimate_paths,
            commands::config_list,
            commands::config_set,
            commands::watched_folders,
            commands::watch_add,
            commands::watch_remove,
            commands::watch_pause,
        ])
        .events(collect_events![bridge::EngineEvent])
        // One shape per type, the one the engine writes: the window sends back what it got.
        .disable_serde_phases()
        // The engine never sends NaN or infinities, so a float is a plain `number`.
        .semantic_types(
            specta_typescript::semantic::Configuration::empty().enable_lossless_floats(),
        )
}

/// Where the generated TypeScript lives, from this crate's folder.
pub const BINDINGS: &str = "../ui/src/bindings.ts";

/// The TypeScript of [`specta_builder`], as `ui/src/bindings.ts` must hold it.
pub fn typescript_bindings() -> Result<String, String> {
    let dir = std::env::temp_dir().join(format!("storyteller-bindings-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let path = dir.join("bindings.ts");
    specta_builder::<tauri::Wry>()
        .export(
            specta_typescript::Typescript::default().header(
                "// Generated from the Rust types by \
                     `cargo run -p storyteller-desktop -- --write-bindings`; do not edit.",
            ),
            &path,
        )
        .map_err(|e| e.to_string())?;
    let text = std::fs::read_to_string(&path).map_err(|e| e.to_string());
    let _ = std::fs::remove_dir_all(&dir);
    text
}
