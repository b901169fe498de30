//! `storyteller-desktop [--home DIR] [VIDEO|FOLDER …]`: the window. `--home DIR` (or
//! `STORYTELLER_HOME`) picks the home, as for the `storyteller` command; paths are added to the
//! queue (a second launch hands its paths to the running window and focuses it).
//! `--write-bindings` writes the UI's generated TypeScript and exits.

// No console window beside the app on Windows release builds.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

use storyteller_desktop::{shell, specta_builder, typescript_bindings, BINDINGS};
use tauri::{Manager, RunEvent};

/// SIGTERM (logout, `kill`), SIGHUP and SIGINT quit the app as closing its window does:
/// running jobs go back to the queue and resume on the next start.
fn quit_on_signals(app: tauri::AppHandle) {
    #[cfg(unix)]
    tauri::async_runtime::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut term), Ok(mut hangup), Ok(mut interrupt)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::hangup()),
            signal(SignalKind::interrupt()),
        ) else {
            tracing::warn!("signals cannot be heard; quit from the window");
            return;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = hangup.recv() => {}
            _ = interrupt.recv() => {}
        }
        app.exit(0);
    });
    #[cfg(not(unix))]
    let _ = app;
}

fn main() -> anyhow::Result<()> {
    storyteller_desktop::prefer_cpu_compositing();
    if std::env::args().any(|arg| arg == "--write-bindings") {
        let text = typescript_bindings().map_err(anyhow::Error::msg)?;
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(BINDINGS);
        std::fs::write(&path, text)?;
        println!("wrote {}", path.display());
        return Ok(());
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "storyteller_engine=info,storyteller_desktop=info".into()),
        )
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
    let launch = shell::Launch::parse(std::env::args_os().skip(1));
    let builder = specta_builder::<tauri::Wry>();
    let app = tauri::Builder::default()
        // First, so a second launch hands over to this one before opening anything.
        .plugin(tauri_plugin_single_instance::init(|app, args, cwd| {
            if let Some(window) = app.get_webview_window("main") {
                let _ = window.unminimize();
                let _ = window.show();
                let _ = window.set_focus();
            }
            // What the second launch was asked to open, this one adds.
            let second = shell::Launch::parse(args.into_iter().skip(1).map(Into::into));
            shell::add_launch_paths(app, second.paths, cwd.into());
        }))
        .plugin(tauri_plugin_clipboard_manager::init())
        .plugin(tauri_plugin_dialog::init())
        .plugin(tauri_plugin_notification::init())
        .plugin(tauri_plugin_opener::init())
        .invoke_handler(builder.invoke_handler())
        .register_asynchronous_uri_scheme_protocol("thumb", |context, request, responder| {
            let app = context.app_handle().clone();
            tauri::async_runtime::spawn(async move {
                responder.respond(storyteller_desktop::thumbnails::answer(&app, &request).await);
            });
        })
        .on_window_event(|window, event| {
            if let tauri::WindowEvent::CloseRequested { api, .. } = event {
                if shell::should_confirm_quit(window.app_handle()) {
                    api.prevent_close();
                    shell::confirm_quit(window.app_handle());
                }
            }
        })
        .setup(move |app| {
            builder.mount_events(app);
            let handle = app.handle().clone();
            let clipboard: shell::ClipboardWriter = Box::new(move |text| {
                use tauri_plugin_clipboard_manager::ClipboardExt;
                handle
                    .clipboard()
                    .write_text(text)
                    .map_err(|e| e.to_string())
            });
            let handle = app.handle().clone();
            let opener: shell::FileOpener = Box::new(move |path, how| {
                use tauri_plugin_opener::OpenerExt;
                let opener = handle.opener();
                match how {
                    shell::OpenAs::App => opener.open_path(path.to_string_lossy(), None::<&str>),
                    shell::OpenAs::InFolder => opener.reveal_item_in_dir(path),
                }
                .map_err(|e| e.to_string())
            });
            shell::open(app, launch, shell::Services { clipboard, opener });
            quit_on_signals(app.handle().clone());
            Ok(())
        })
        .build(tauri::generate_context!("../tauri.conf.json"))?;
    app.run(|app, event| {
        if let RunEvent::Exit = event {
            if let Some(shell) = app.try_state::<shell::Shell>() {
                shell.stop();
            }
        }
    });
    Ok(())
}
