//! Builds the app's context from `../tauri.conf.json`, and declares its commands so that the
//! capabilities can grant each by name (a command not granted there cannot be called).

const COMMANDS: &[&str] = &[
    "add_paths",
    "list_jobs",
    "get_job",
    "cancel_job",
    "retry_job",
    "retry_failed",
    "remove_job",
    "clear_finished",
    "pause_queue",
    "resume_queue",
    "queue_stats",
    "set_concurrency",
    "get_settings",
    "update_settings",
    "list_storytellers",
    "copy_story",
    "export_stories",
    "search_stories",
    "set_priority",
    "retell",
    "copy_stories",
    "open_video",
    "show_in_folder",
    "app_status",
    "api_keys",
    "set_api_key",
    "forget_api_key",
    "check_storyteller",
    "resume_storyteller",
    "estimate_paths",
    "config_list",
    "config_set",
    "watched_folders",
    "watch_add",
    "watch_remove",
    "watch_pause",
];

fn main() {
    // The config sits at the workspace root, beside `icons/` and the built UI.
    tauri_build::try_build(
        tauri_build::Attributes::new()
            .config_path("../tauri.conf.json")
            .app_manifest(tauri_build::AppManifest::new().commands(COMMANDS)),
    )
    .expect("the Tauri build step");
}
