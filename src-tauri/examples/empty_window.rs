//! An empty Tauri window (a blank page, no engine, no plugins): the memory baseline the
//! window benchmark compares the app with, measured the same way in the same run.

fn main() {
    let mut context = tauri::generate_context!("../tauri.conf.json");
    // Not the app's window and UI: one blank page.
    context.config_mut().app.windows.clear();
    tauri::Builder::default()
        .setup(|app| {
            let blank = "about:blank".parse().expect("a URL");
            tauri::WebviewWindowBuilder::new(app, "empty", tauri::WebviewUrl::External(blank))
                .title("Empty")
                .inner_size(1180.0, 760.0)
                .build()?;
            Ok(())
        })
        .run(context)
        .expect("the empty window");
}
