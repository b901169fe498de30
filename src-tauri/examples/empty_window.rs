//! An empty Tauri window (a blank page served the way the app's own page is, through a custom
//! protocol; no engine, no plugins), drawn the way the app's is: the memory baseline the window
//! benchmark compares the app with, measured the same way in the same run.

fn main() {
    storyteller_desktop::prefer_cpu_compositing();
    let mut context = tauri::generate_context!("../tauri.conf.json");
    // Not the app's window and UI: one blank page.
    context.config_mut().app.windows.clear();
    tauri::Builder::default()
        .register_uri_scheme_protocol("blank", |_context, _request| {
            tauri::http::Response::builder()
                .header("Content-Type", "text/html")
                .body(b"<!doctype html><title>Empty</title>".to_vec())
                .expect("a response")
        })
        .setup(|app| {
            let blank = "blank://localhost/".parse().expect("a URL");
            tauri::WebviewWindowBuilder::new(
                app,
                "empty",
                tauri::WebviewUrl::CustomProtocol(blank),
            )
            .title("Empty")
            .inner_size(1180.0, 760.0)
            .build()?;
            Ok(())
        })
        .run(context)
        .expect("the empty window");
}
