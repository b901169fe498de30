//! The real desktop window, driven through WebDriver (`tauri-driver` over WebKitWebDriver) on a
//! display: videos added as a drop adds them, told, shown, copied, exported and searched; a job
//! caught running when the window closes, finished after the next start; a second launch handed
//! over to the open window.
//!
//! The app must be built first, and the tests need a display:
//! `cargo build -p storyteller-desktop && xvfb-run -a -s '-screen 0 1280x800x24' cargo test -p storyteller-e2e --test window`
//! (`STORYTELLER_SKIP_WINDOW_TESTS=1` skips them where there is no display). They also need
//! `tauri-driver` (`cargo install tauri-driver --locked --version 2.1.0`), WebKitWebDriver,
//! ffmpeg, xclip and dbus-daemon. Screenshots land in `target/screenshots/`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../../crates/engine/tests/engine/gemini_server.rs"]
mod gemini_server;
mod harness;

use harness::{
    describe, read_clipboard, squeeze, Clip, Desktop, Row, Window, STORY_DEADLINE, UI_DEADLINE,
};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Bits of ffmpeg's own output, which a person should never be shown as the reason.
const RAW_FFMPEG_TEXT: [&str; 5] = [
    "Invalid data found",
    "moov atom not found",
    "[mov,mp4",
    "ffmpeg version",
    "Error opening input",
];

/// Reads the system clipboard until `done` holds for its text; the text, or the failure saying
/// what `after` should have put there.
async fn wait_for_clipboard(
    window: &Window<'_>,
    after: &str,
    done: impl Fn(&str) -> bool,
) -> String {
    let start = Instant::now();
    loop {
        let pasted = tokio::task::spawn_blocking(|| read_clipboard(Duration::from_secs(5)))
            .await
            .expect("reading the clipboard")
            .unwrap_or_default();
        if done(&pasted) {
            return pasted;
        }
        if start.elapsed() > UI_DEADLINE {
            window
                .fail(format!("after {after} the clipboard holds {pasted:?}"))
                .await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The file names of the rows on screen, sorted.
fn visible(rows: &[Row]) -> Vec<String> {
    let mut files: Vec<String> = rows
        .iter()
        .filter(|r| r.visible)
        .map(|r| r.file.clone())
        .collect();
    files.sort();
    files
}

/// Sets the control at `selector` to `value` as a person does, so its `event` handler runs.
async fn set_control(window: &Window<'_>, selector: &str, value: &str, event: &str) {
    window
        .script(
            "const [selector, value, event] = arguments;
             const control = document.querySelector(selector);
             control.value = value;
             control.dispatchEvent(new Event(event));
             return true;",
            vec![json!(selector), json!(value), json!(event)],
        )
        .await;
}

fn row<'r>(rows: &'r [Row], file: &str) -> Option<&'r Row> {
    rows.iter().find(|row| row.file == file)
}

/// Adds `paths` through `add_paths`, the command a drop onto the window sends, and checks each
/// became a queued job: the ids, in the order given.
async fn add(window: &Window<'_>, paths: &[PathBuf]) -> Vec<String> {
    let report = window
        .call("add_paths", json!({ "paths": paths, "options": {} }))
        .await;
    let entries = report["entries"].as_array().cloned().unwrap_or_default();
    let queued: Vec<String> = entries
        .iter()
        .filter(|entry| entry["outcome"] == "queued")
        .filter_map(|entry| entry["job"]["id"].as_str().map(str::to_owned))
        .collect();
    if queued.len() != paths.len() {
        window
            .fail(format!(
                "add_paths should have queued all {} videos, it answered: {report:#}",
                paths.len()
            ))
            .await;
    }
    queued
}

async fn jobs(window: &Window<'_>) -> Vec<Value> {
    let page = window.call("list_jobs", json!({ "query": {} })).await;
    page["jobs"].as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn added_videos_are_told_shown_copied_exported_and_found() {
    let Some(desktop) = Desktop::new("added_videos_are_told_shown_copied_exported_and_found")
    else {
        return;
    };
    let good = [
        ("harbour-card.mp4", Clip::short("testsrc2", 440)),
        ("market-bars.mp4", Clip::short("smptebars", 550)),
        ("orchard-fractal.mp4", Clip::short("mandelbrot", 330)),
    ];
    let mut paths: Vec<PathBuf> = good
        .iter()
        .map(|(file, clip)| desktop.video(file, *clip))
        .collect();
    let broken = "broken.mp4";
    paths.push(desktop.broken_video(broken));
    let mut notification_server = desktop.start_notification_server();

    let window = desktop.open().await;
    window.wait_until_ready().await;
    window.count_commands().await;
    add(&window, &paths).await;

    let rows = window
        .wait_for_rows(
            "the three good videos told and the broken one failed with a reason",
            STORY_DEADLINE,
            |rows| {
                for (file, _) in &good {
                    if row(rows, file).is_some_and(|r| r.state == "dead" || r.state == "cancelled")
                    {
                        return Err(format!("{file} did not get its story"));
                    }
                }
                if row(rows, broken).is_some_and(|r| r.state == "succeeded") {
                    return Err(format!("{broken} was told, though it is cut in half"));
                }
                let told = good
                    .iter()
                    .all(|(file, _)| row(rows, file).is_some_and(|r| r.state == "succeeded"));
                let failed = row(rows, broken).is_some_and(|r| {
                    r.state == "dead" && r.error.as_deref().is_some_and(|e| !e.is_empty())
                });
                Ok(told && failed)
            },
        )
        .await;
    // Progress came by events alone: while the videos were told, the page asked for nothing
    // again and again. It reads each finished job once (its story and media facts), and the
    // storytellers and settings once at start; `add_paths` is the test's own call.
    let called = window.commands_called().await;
    let polled: Vec<(&String, &u64)> = called
        .iter()
        .filter(|(command, times)| {
            let allowed = if command.as_str() == "get_job" {
                2 * paths.len() as u64
            } else {
                1
            };
            **times > allowed || matches!(command.as_str(), "list_jobs" | "queue_stats")
        })
        .collect();
    // The count sees the page's calls: each finished job was read once it finished.
    if called.get("get_job").copied().unwrap_or(0) < paths.len() as u64 {
        window
            .fail(format!(
                "the page should have read each of the {} finished jobs once; calls: {called:?}",
                paths.len()
            ))
            .await;
    }
    if !polled.is_empty() {
        window
            .fail(format!(
                "the page called commands while the videos were told, as if it polled: \
                 {polled:?} (all calls: {called:?})"
            ))
            .await;
    }

    // The batch's end reached a real notification server, with its counts.
    let start = Instant::now();
    let mut received = desktop.notifications();
    while !received.contains("3 stories told, 1 video failed") && start.elapsed() < UI_DEADLINE {
        tokio::time::sleep(Duration::from_millis(200)).await;
        received = desktop.notifications();
    }
    assert!(
        received.contains("3 stories told, 1 video failed"),
        "no notification of the batch's end: {received}"
    );
    let _ = notification_server.kill();
    let _ = notification_server.wait();
    let reason = row(&rows, broken)
        .and_then(|r| r.error.clone())
        .unwrap_or_default();
    if let Some(raw) = RAW_FFMPEG_TEXT.iter().find(|raw| reason.contains(*raw)) {
        window
            .fail(format!(
                "the broken video's reason shows ffmpeg's own words ({raw:?}): {reason:?}"
            ))
            .await;
    }

    window
        .wait_for_script(
            "#status to count 3 stories and 1 failure",
            UI_DEADLINE,
            "const text = document.querySelector('#status')?.innerText ?? '';
             return /\\b3\\b/.test(text) && /\\b1\\b/.test(text) ? text : null;",
        )
        .await;

    // The story panel shows the selected job's story, which the Copy button puts on the
    // system clipboard for other programs.
    let chosen = row(&rows, good[0].0).cloned().expect("a told row");
    window
        .click(&format!("#queue [data-job-id=\"{}\"]", chosen.id))
        .await;
    window
        .wait_for_rows("the clicked row to be selected", UI_DEADLINE, |rows| {
            Ok(rows.iter().any(|r| r.id == chosen.id && r.selected))
        })
        .await;
    let shown = window
        .wait_for_script(
            "#story-text to show the selected story",
            UI_DEADLINE,
            "const text = document.querySelector('#story-text')?.innerText ?? '';
             return text.trim() === '' ? null : text;",
        )
        .await;
    let shown = shown.as_str().unwrap_or_default().to_owned();
    let story = jobs(&window)
        .await
        .iter()
        .find(|job| job["id"] == chosen.id.as_str())
        .and_then(|job| job["story"].as_str().map(str::to_owned));
    let Some(story) = story else {
        window
            .fail(format!("list_jobs has no story for {}", chosen.file))
            .await
    };
    if squeeze(&shown) != squeeze(&story) {
        window
            .fail(format!(
                "#story-text does not show {}'s story.\nshown: {shown:?}\nstory: {story:?}",
                chosen.file
            ))
            .await;
    }
    window.save_screenshot("window-light.png").await;
    // The same window in the dark theme (the system's choice, forced for the picture).
    window
        .script(
            "document.documentElement.dataset.theme = 'dark'; return true;",
            vec![],
        )
        .await;
    window.save_screenshot("window-dark.png").await;
    window
        .script(
            "delete document.documentElement.dataset.theme; return true;",
            vec![],
        )
        .await;

    window.click("#copy-story").await;
    wait_for_clipboard(
        &window,
        &format!("#copy-story (the story {story:?})"),
        |pasted| pasted.trim_end() == story.trim_end(),
    )
    .await;

    let export = desktop.scratch().join("stories.md");
    let written = window
        .call(
            "export_stories",
            json!({ "path": export, "format": "markdown", "query": {} }),
        )
        .await;
    let exported = std::fs::read_to_string(&export).unwrap_or_default();
    let missing: Vec<&str> = good
        .iter()
        .map(|(file, _)| *file)
        .filter(|file| !exported.contains(file))
        .collect();
    if written != json!(3) || !missing.is_empty() {
        window
            .fail(format!(
                "export_stories answered {written} (3 stories expected) and the file lacks \
                 {missing:?}:\n{exported}"
            ))
            .await;
    }

    let wanted = "orchard-fractal.mp4";
    window.type_into("#search", "orch").await;
    window
        .wait_for_rows(
            "only orchard-fractal.mp4 to stay visible after typing \"orch\" into #search",
            UI_DEADLINE,
            |rows| Ok(visible(rows) == [wanted]),
        )
        .await;
    window
        .wait_for_script(
            "#search to hold what was typed",
            UI_DEADLINE,
            "return document.querySelector('#search')?.value === 'orch';",
        )
        .await;
    window.save_screenshot("window-search.png").await;

    // A word of a story, found by the engine's search of the history (the window holds no
    // stories it has not shown): every video whose story has a word starting so, and no other.
    let told = jobs(&window).await;
    let orchard_story = told
        .iter()
        .find(|job| job["file"] == wanted)
        .and_then(|job| job["story"].as_str())
        .unwrap_or_default()
        .to_owned();
    let word = orchard_story
        .split(|c: char| !c.is_alphanumeric())
        .find(|w| w.chars().count() >= 7 && !wanted.contains(&w.to_lowercase()))
        .unwrap_or_default()
        .to_lowercase();
    if word.is_empty() {
        window
            .fail(format!(
                "no long word in {wanted}'s story: {orchard_story:?}"
            ))
            .await;
    }
    let mut expected: Vec<String> = told
        .iter()
        .filter(|job| {
            let story = job["story"].as_str().unwrap_or_default().to_lowercase();
            story
                .split(|c: char| !c.is_alphanumeric())
                .any(|w| w.starts_with(&word))
        })
        .filter_map(|job| job["file"].as_str().map(str::to_owned))
        .collect();
    expected.sort();
    set_control(&window, "#search", "", "input").await;
    window.type_into("#search", &word).await;
    window
        .wait_for_rows(
            &format!("the videos whose story has \"{word}\" ({expected:?}) after searching it"),
            UI_DEADLINE,
            |rows| Ok(visible(rows) == expected),
        )
        .await;
    // Each hit shows the line of its story that matched.
    window
        .wait_for_script(
            "the hits to show the lines of their stories that matched",
            UI_DEADLINE,
            &format!(
                "const lines = [...document.querySelectorAll('#queue .detail.snippet')]
                     .map((line) => line.innerText.toLowerCase());
                 return lines.length === {} && lines.every((line) => line.includes('{word}'));",
                expected.len()
            ),
        )
        .await;

    // The state filter: failed videos alone.
    set_control(&window, "#search", "", "input").await;
    set_control(&window, "#state-filter", "dead", "change").await;
    window
        .wait_for_rows(
            "only the failed video under \"Failed\"",
            UI_DEADLINE,
            |rows| Ok(visible(rows) == [broken]),
        )
        .await;
    // Its row offers Retry, which queues it again (and it fails again at once: it is still
    // broken, so the engine's record shows a new end rather than a state that stays).
    let broken_id = row(&rows, broken).map(|r| r.id.clone()).unwrap_or_default();
    let before = window.call("get_job", json!({ "id": broken_id })).await;
    window.click("#queue .row-retry").await;
    let start = Instant::now();
    loop {
        let now = window.call("get_job", json!({ "id": broken_id })).await;
        if now["state"] != "dead" || now["finishedAt"] != before["finishedAt"] {
            break;
        }
        if start.elapsed() > UI_DEADLINE {
            window
                .fail(format!(
                    "the row's Retry did not queue {broken} again: {now:#}"
                ))
                .await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Copy all: every told story on the clipboard, each under its file name.
    window.click("#copy-all").await;
    wait_for_clipboard(
        &window,
        &format!(
            "#copy-all (every story under its file name, {}'s among them)",
            chosen.file
        ),
        |pasted| {
            good.iter()
                .all(|(file, _)| pasted.contains(&format!("## {file}")))
                && pasted.contains(story.trim_end())
        },
    )
    .await;

    // The keyboard: the arrows move the selection, Ctrl+C copies the selected story, Delete
    // removes the selected video.
    set_control(&window, "#state-filter", "", "change").await;
    window
        .click(&format!("#queue [data-job-id=\"{}\"]", chosen.id))
        .await;
    let next = row(&rows, good[1].0).cloned().expect("the second told row");
    const ARROW_DOWN: &str = "\u{E015}";
    const CONTROL: &str = "\u{E009}";
    const DELETE: &str = "\u{E017}";
    window.type_into("#queue", ARROW_DOWN).await;
    window
        .wait_for_rows("ArrowDown to select the next video", UI_DEADLINE, |rows| {
            Ok(rows.iter().any(|r| r.id == next.id && r.selected))
        })
        .await;
    let next_story = jobs(&window)
        .await
        .iter()
        .find(|job| job["id"] == next.id.as_str())
        .and_then(|job| job["story"].as_str().map(str::to_owned))
        .unwrap_or_default();
    window.type_into("#queue", &format!("{CONTROL}c")).await;
    if next_story.is_empty() {
        window.fail(format!("{} has no story", next.file)).await;
    }
    wait_for_clipboard(
        &window,
        &format!("Ctrl+C on {} (its story {next_story:?})", next.file),
        |pasted| pasted.trim_end() == next_story.trim_end(),
    )
    .await;
    window.type_into("#queue", DELETE).await;
    window
        .wait_for_rows("Delete to remove the selected video", UI_DEADLINE, |rows| {
            Ok(!rows.iter().any(|r| r.id == next.id))
        })
        .await;

    // Readable at 200%: a page zoomed to 200% lays out as it does in a window of half the
    // size (twice as many device pixels to each CSS pixel), so the window is halved: every
    // control of the toolbar is on screen, none cut off, names are whole and the story pane
    // keeps its room.
    let size = window
        .script("return [window.innerWidth, window.innerHeight];", vec![])
        .await;
    let half = |i: usize| size[i].as_u64().unwrap_or(800) as u32 / 2;
    window.resize(half(0), half(1)).await;
    let cut_off = window
        .wait_for_script(
            "the layout at 200%",
            UI_DEADLINE,
            "const width = document.documentElement.clientWidth;
             const cut = [...document.querySelectorAll('.toolbar button, .toolbar input, .toolbar select')]
               .filter((element) => {
                 const box = element.getBoundingClientRect();
                 return box.width === 0 || box.left < 0 || box.right > width + 1;
               })
               .map((element) => element.id || element.outerHTML.slice(0, 60));
             const story = document.querySelector('#story-text').getBoundingClientRect();
             if (story.width < 150) cut.push('#story-text is ' + story.width + ' px wide');
             // Short file names are whole in their rows.
             for (const name of document.querySelectorAll('#queue .row .file')) {
               if (name.scrollWidth > name.clientWidth + 1) cut.push('the name ' + name.textContent);
             }
             return { cut };",
        )
        .await;
    window.save_screenshot("window-zoom-200.png").await;
    if cut_off["cut"].as_array().is_some_and(|cut| !cut.is_empty()) {
        window
            .fail(format!("at 200% these are cut off: {}", cut_off["cut"]))
            .await;
    }

    // Settings: another storyteller and a model typed for it, kept by the engine.
    window.resize(half(0) * 2, half(1) * 2).await;
    window.click("#open-settings").await;
    window
        .wait_for_script(
            "the settings dialog to open with the storytellers",
            UI_DEADLINE,
            "return document.querySelector('#settings')?.open
                 && document.querySelectorAll('#setting-storyteller option').length > 1;",
        )
        .await;
    set_control(&window, "#setting-storyteller", "ollama", "change").await;
    set_control(&window, "#setting-model", "llava:13b", "input").await;
    window.save_screenshot("window-settings.png").await;
    window.click("#settings-save").await;
    let start = Instant::now();
    loop {
        let settings = window.call("get_settings", json!({})).await;
        if settings["storyteller"] == "ollama" && settings["model"] == "llava:13b" {
            break;
        }
        if start.elapsed() > UI_DEADLINE {
            window
                .fail(format!(
                    "the settings saved are not those chosen: {settings:#}"
                ))
                .await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    window.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_running_when_the_window_closes_is_finished_after_the_next_start() {
    let Some(desktop) =
        Desktop::new("a_job_running_when_the_window_closes_is_finished_after_the_next_start")
    else {
        return;
    };
    // Long enough to be caught running, from a source ffmpeg makes quickly.
    let long = desktop.video(
        "long-walk.mp4",
        Clip {
            source: "testsrc2",
            tone: 392,
            seconds: 60,
            width: 640,
            height: 360,
        },
    );

    let window = desktop.open().await;
    window.wait_until_ready().await;
    let id = add(&window, &[long]).await.remove(0);
    window
        .wait_for_rows(
            "long-walk.mp4 to be running",
            STORY_DEADLINE,
            |rows| match rows.iter().find(|r| r.id == id).map(|r| r.state.as_str()) {
                Some("running") => Ok(true),
                Some(state @ ("succeeded" | "dead" | "cancelled")) => Err(format!(
                    "it was {state} before it was seen running (is the video long enough?)"
                )),
                _ => Ok(false),
            },
        )
        .await;
    window.close().await;

    let window = desktop.open().await;
    window.wait_until_ready().await;
    let first_paint = window.rows().await;
    match first_paint
        .iter()
        .find(|r| r.id == id)
        .map(|r| r.state.as_str())
    {
        Some("queued" | "running") => {}
        Some(state) => {
            window
                .fail(format!(
                    "after the restart the interrupted job is {state}, not back in the queue \
                     (did it finish before the window closed?)"
                ))
                .await
        }
        None => {
            window
                .fail(format!(
                    "after the restart the first list lacks the interrupted job {id}:\n{}",
                    describe(&first_paint)
                ))
                .await
        }
    }
    window
        .wait_for_rows(
            "the interrupted job to finish by itself",
            STORY_DEADLINE,
            |rows| {
                if rows.len() != 1 {
                    return Err(format!("one job was added, the list shows {}", rows.len()));
                }
                match rows.iter().find(|r| r.id == id).map(|r| r.state.as_str()) {
                    Some("succeeded") => Ok(true),
                    Some(state @ ("dead" | "cancelled")) => {
                        Err(format!("the interrupted job ended {state}"))
                    }
                    _ => Ok(false),
                }
            },
        )
        .await;
    window.close().await;
}

fn same_place(a: &Path, b: &Path) -> bool {
    a == b || matches!((a.canonicalize(), b.canonicalize()), (Ok(a), Ok(b)) if a == b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_launch_hands_over_to_the_open_window() {
    let Some(desktop) = Desktop::new("a_second_launch_hands_over_to_the_open_window") else {
        return;
    };
    let window = desktop.open().await;
    let title = window.title().await;
    if title != "Storyteller" {
        window
            .fail(format!(
                "the window is titled {title:?}, not \"Storyteller\""
            ))
            .await;
    }
    let status = window.call("app_status", json!({})).await;
    let home = status["home"].as_str().map(Path::new);
    if !home.is_some_and(|home| same_place(home, &desktop.home())) || !status["problem"].is_null() {
        window
            .fail(format!(
                "app_status should name the home {} and no problem: {status:#}",
                desktop.home().display()
            ))
            .await;
    }
    let first = desktop.app_processes();
    if first.len() != 1 {
        window
            .fail(format!("one app should run on the home, not {first:?}"))
            .await;
    }

    let (exit, log) = tokio::task::block_in_place(|| desktop.launch_again(Duration::from_secs(10)));
    match exit {
        Some(status) if status.success() => {}
        Some(status) => {
            window
                .fail(format!(
                    "the second launch exited with {status} instead of handing over:\n{log}"
                ))
                .await
        }
        None => {
            window
                .fail(format!(
                    "the second launch was still running after 10 s: it opened a window of \
                     its own instead of handing over to the first:\n{log}"
                ))
                .await
        }
    }

    let answer = window.invoke("list_jobs", json!({ "query": {} })).await;
    if let Err(error) = answer {
        window
            .fail(format!(
                "the first window stopped answering after the second launch: {error}"
            ))
            .await;
    }
    let now = desktop.app_processes();
    if now != first {
        window
            .fail(format!(
                "the first app should be the only one left: before {first:?}, after {now:?}"
            ))
            .await;
    }
    window.close().await;
}

/// Opens the settings dialog and waits for its keys to be filled in.
async fn open_ai_settings(window: &Window<'_>) {
    window.click("#open-settings").await;
    window
        .wait_for_script(
            "the settings dialog to open with the storytellers' keys",
            UI_DEADLINE,
            "return document.querySelector('#settings')?.open
                 && document.querySelector('#key-status-gemini')?.textContent;",
        )
        .await;
}

/// The text of the element at `selector` once it is not empty.
async fn text_of(window: &Window<'_>, what: &str, selector: &str) -> String {
    let script = format!(
        "const text = document.querySelector({selector:?})?.textContent ?? '';
         return text && !text.endsWith('…') ? text : null;"
    );
    window
        .wait_for_script(what, UI_DEADLINE, &script)
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ai_settings_keep_keys_out_of_sight_and_test_the_storyteller() {
    let Some(desktop) =
        Desktop::new("the_ai_settings_keep_keys_out_of_sight_and_test_the_storyteller")
    else {
        return;
    };
    const KEY: &str = "AIzaSy-window-7c41d2e9b0";
    let server = gemini_server::GeminiServer::start(KEY).await;
    desktop.set_env("STORYTELLER_GEMINI_BASE_URL", &server.base);

    // No key, and no keychain on this session bus: the window says what to do instead, and a
    // key typed in is refused with the same advice, and not left in the field.
    let window = desktop.open().await;
    window.wait_until_ready().await;
    open_ai_settings(&window).await;
    let status = text_of(&window, "Gemini's key status", "#key-status-gemini").await;
    assert!(status.contains("set GEMINI_API_KEY"), "{status}");
    window.type_into("#key-gemini", KEY).await;
    window.click("#key-keep-gemini").await;
    let problem = text_of(&window, "the keychain's refusal", "#key-error-gemini").await;
    assert!(problem.contains("could not be kept"), "{problem}");
    assert!(
        problem.contains("Set GEMINI_API_KEY in the environment"),
        "{problem}"
    );
    let left = window
        .script(
            "return document.querySelector('#key-gemini').value;",
            Vec::new(),
        )
        .await;
    assert_eq!(left, json!(""), "the key is not left in the page");
    set_control(&window, "#setting-storyteller", "gemini", "change").await;
    window.click("#ai-test").await;
    let tested = text_of(&window, "the test's outcome", "#ai-test-result").await;
    assert!(
        tested.starts_with("✗ gemini (gemini-flash-latest)"),
        "{tested}"
    );
    assert!(tested.contains("no API key"), "{tested}");
    window.close().await;

    // The key in the environment: shown only as its last four characters, and the test
    // reaches the service with it.
    desktop.set_env("GEMINI_API_KEY", KEY);
    let window = desktop.open().await;
    window.wait_until_ready().await;
    open_ai_settings(&window).await;
    let status = text_of(&window, "Gemini's key status", "#key-status-gemini").await;
    assert_eq!(
        status,
        format!("Set by GEMINI_API_KEY (••••{})", &KEY[KEY.len() - 4..])
    );
    set_control(&window, "#setting-storyteller", "gemini", "change").await;
    window.click("#ai-test").await;
    let tested = text_of(&window, "the test's outcome", "#ai-test-result").await;
    assert!(
        tested.starts_with("✓ gemini (gemini-flash-latest)"),
        "{tested}"
    );
    let page = window
        .script("return document.documentElement.outerHTML;", Vec::new())
        .await;
    assert!(
        !page.as_str().unwrap_or_default().contains(KEY),
        "the key is in the page"
    );
    // Gemini's settings by key unfolded, for the picture.
    window
        .wait_for_script(
            "Gemini's settings by key",
            UI_DEADLINE,
            "const group = document.querySelector('[data-group=gemini]');
             if (!group) return null;
             group.open = true;
             group.scrollIntoView({ block: 'start' });
             return true;",
        )
        .await;
    window.save_screenshot("window-ai-settings.png").await;
    assert!(server.generate_calls().is_empty(), "a test tells nothing");
    window.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drop_for_gemini_says_what_it_will_cost_before_anything_is_sent() {
    let Some(desktop) =
        Desktop::new("a_drop_for_gemini_says_what_it_will_cost_before_anything_is_sent")
    else {
        return;
    };
    const KEY: &str = "AIzaSy-window-drop-51f0c3";
    let server = gemini_server::GeminiServer::start(KEY).await;
    server.answer(vec![gemini_server::Answer::story(&[
        "A test card ",
        "glows in the window.",
    ])]);
    // The key from the environment; the service's address from the settings, set below.
    desktop.set_env("GEMINI_API_KEY", KEY);
    let video = desktop.video("priced-card.mp4", Clip::short("testsrc2", 440));
    let window = desktop.open().await;
    window.wait_until_ready().await;

    // The storytellers' settings by key: a value the engine refuses says why beside its row and
    // keeps the dialog open; the address set there is in force at once, without a restart.
    open_ai_settings(&window).await;
    window
        .wait_for_script(
            "the storytellers' settings by key",
            UI_DEADLINE,
            "return document.querySelector('#config-gemini-base-url') !== null;",
        )
        .await;
    set_control(&window, "#config-gemini-base-url", &server.base, "input").await;
    set_control(
        &window,
        "#config-gemini-requests-per-minute",
        "fast",
        "input",
    )
    .await;
    window.click("#settings-save").await;
    let refused = text_of(
        &window,
        "the refused pace",
        "[data-key='gemini.requests-per-minute'] .error",
    )
    .await;
    assert!(refused.contains("'fast' is not a limit"), "{refused}");
    set_control(&window, "#config-gemini-requests-per-minute", "60", "input").await;
    window.click("#settings-save").await;
    window
        .wait_for_script(
            "the settings dialog to close once everything is taken",
            UI_DEADLINE,
            "return !document.querySelector('#settings').open;",
        )
        .await;
    let entries = window.call("config_list", json!({})).await;
    let value_of = |key: &str| {
        entries
            .as_array()
            .and_then(|all| all.iter().find(|e| e["key"] == key))
            .map(|e| e["value"].clone())
            .unwrap_or(Value::Null)
    };
    assert_eq!(value_of("gemini.base-url"), json!(server.base));
    assert_eq!(value_of("gemini.requests-per-minute"), json!("60"));

    // Settings changed by the command beside the open window are in force in it at once: the
    // storyteller drops get, the videos told at once and the default length of a story.
    let command = harness::target_dir().join("debug").join("storyteller");
    for (key, value) in [
        ("storyteller", "gemini"),
        ("concurrency", "5"),
        ("words", "200"),
    ] {
        let status = desktop
            .spawn(
                &command,
                &[
                    "--home".as_ref(),
                    desktop.home().as_os_str(),
                    "config".as_ref(),
                    "set".as_ref(),
                    key.as_ref(),
                    value.as_ref(),
                ],
            )
            .wait()
            .expect("the command ran");
        assert!(status.success(), "config set {key} {value} failed");
    }
    window
        .wait_for_script(
            "the command's settings in the window",
            UI_DEADLINE,
            "return document.querySelector('#drop-storyteller').value === 'gemini'
                 && document.querySelector('#concurrency').value === '5'
                 && document.querySelector('#drop-sheet-words').placeholder
                    === '200 (the default)';",
        )
        .await;
    // A drop told by Gemini: the sheet says what it will cost and take, and nothing is sent
    // until the person says so.
    window
        .script(
            "window.storytellerDrop([arguments[0]]); return true;",
            vec![json!(video.to_string_lossy())],
        )
        .await;
    let estimate = text_of(&window, "the drop's estimate", "#drop-sheet-estimate").await;
    assert!(estimate.starts_with("1 video · about "), "{estimate}");
    assert!(estimate.contains(" tokens · about $"), "{estimate}");
    assert!(estimate.contains("at once"), "{estimate}");
    assert!(
        window.rows().await.is_empty(),
        "nothing is queued before the person says so"
    );
    assert_eq!(server.commands("start"), 0, "nothing uploaded");
    assert!(server.generate_calls().is_empty(), "nothing told");
    // A language of the person's own: estimated again, then asked of Gemini with the video.
    window
        .script(
            "document.querySelector('#drop-sheet-wishes').open = true; return true;",
            vec![],
        )
        .await;
    set_control(&window, "#drop-sheet-language", "French", "input").await;
    let wishes = text_of(&window, "the wishes said back", "#drop-sheet-wishes-note").await;
    assert_eq!(wishes, "Told in French.");
    let add = text_of(&window, "the add button", "#drop-sheet-add").await;
    assert_eq!(add, "Add 1 video");
    window.click("#drop-sheet-add").await;
    window
        .wait_for_rows("the priced video told by Gemini", STORY_DEADLINE, |rows| {
            Ok(row(rows, "priced-card.mp4").is_some_and(|r| r.state == "succeeded"))
        })
        .await;
    let told = server.generate_calls();
    assert_eq!(told.len(), 1);
    let asked = String::from_utf8_lossy(&told[0].body);
    assert!(asked.contains("write the story in French"), "{asked}");
    let status = window
        .wait_for_script(
            "the day's spending in the status line",
            UI_DEADLINE,
            "const text = document.querySelector('#status').textContent;
             return text.includes('today') ? text : null;",
        )
        .await;
    let status = status.as_str().unwrap_or_default();
    assert!(status.contains(" today, $"), "{status}");
    assert!(status.contains(" this month"), "{status}");
    window.close().await;
}

/// The text of every `selector` in the watched folder at `folder`'s row, once `ready` (a JS
/// expression over `row`) holds.
async fn wait_for_folder(window: &Window<'_>, what: &str, folder: &Path, ready: &str) -> Value {
    let script = format!(
        "const row = [...document.querySelectorAll('.watched-folder')]
             .find((r) => r.dataset.folder === {folder:?});
         if (!row) return null;
         const text = (s) => row.querySelector(s)?.textContent ?? '';
         const seen = {{
             status: text('.folder-status'),
             state: row.querySelector('.folder-status')?.dataset.state,
             choices: text('.folder-choices'),
             outcome: text('.folder-outcome'),
             pause: text('.folder-pause'),
         }};
         return ({ready}) ? seen : null;",
        folder = folder.to_string_lossy(),
    );
    window.wait_for_script(what, STORY_DEADLINE, &script).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_folder_watched_from_the_settings_tells_what_lands_in_it_and_shows_where_it_came_from() {
    let Some(desktop) = Desktop::new(
        "a_folder_watched_from_the_settings_tells_what_lands_in_it_and_shows_where_it_came_from",
    ) else {
        return;
    };
    let camera = desktop.scratch().join("Camera");
    std::fs::create_dir_all(&camera).unwrap();
    let window = desktop.open().await;
    window.wait_until_ready().await;
    window.click("#open-settings").await;
    window
        .wait_for_script(
            "the settings to say no folder is watched",
            UI_DEADLINE,
            "return document.querySelector('#watched-folders-none')?.textContent;",
        )
        .await;

    // A path that is not a folder is refused in words, and nothing is watched.
    window.type_into("#watch-path", "/no/such/folder").await;
    window.click("#watch-add").await;
    let refused = text_of(&window, "the refusal", "#watch-error").await;
    assert!(refused.contains("/no/such/folder"), "{refused}");
    window
        .script(
            "document.querySelector('#watch-path').value = ''; return true;",
            Vec::new(),
        )
        .await;

    // Watched with its story beside each video and told videos moved into done/.
    window
        .type_into("#watch-path", &camera.to_string_lossy())
        .await;
    window.click("#watch-beside").await;
    window.click("#watch-move-done").await;
    window.click("#watch-add").await;
    let watching = wait_for_folder(
        &window,
        "the folder watched",
        &camera,
        "seen.state === 'watching'",
    )
    .await;
    assert_eq!(watching["status"], "Watching", "{watching:#}");
    assert_eq!(
        watching["choices"],
        "this folder only · the settings' storyteller · stories beside the videos · told videos \
         moved into done",
        "{watching:#}"
    );

    // A video lands in it (made elsewhere, then moved in whole, as a download finishes).
    let made = desktop.video("harbour.mp4", Clip::short("testsrc2", 440));
    std::fs::rename(&made, camera.join("harbour.mp4")).unwrap();
    let told = wait_for_folder(
        &window,
        "the folder's video told",
        &camera,
        "seen.outcome === '1 video found · 1 told'",
    )
    .await;
    assert_eq!(told["state"], "watching", "{told:#}");
    let rows = window
        .wait_for_rows("the watched video told", STORY_DEADLINE, |rows| {
            Ok(rows.iter().any(|r| r.state == "succeeded"))
        })
        .await;
    assert_eq!(rows.len(), 1, "{}", describe(&rows));
    let done = camera.join("done").join("harbour.mp4");
    let shown = window
        .wait_for_script(
            "the row to follow its video into done/ and say where it came from",
            UI_DEADLINE,
            &format!(
                "const row = document.querySelector('.row');
                 const title = row?.querySelector('.file')?.title ?? '';
                 const detail = row?.querySelector('.detail')?.textContent ?? '';
                 return title.startsWith({done:?}) ? {{ title, detail }} : null;",
                done = done.to_string_lossy()
            ),
        )
        .await;
    assert!(
        shown["detail"].as_str().unwrap().ends_with("· from Camera"),
        "{shown:#}"
    );
    assert!(done.exists(), "the video was not moved into done/");
    assert!(camera.join("done").join("harbour.story.md").exists());

    // Paused: said so, and a video landing now waits.
    window
        .click(&format!(
            ".watched-folder[data-folder={:?}] .folder-pause",
            camera.to_string_lossy()
        ))
        .await;
    let paused = wait_for_folder(
        &window,
        "the folder paused",
        &camera,
        "seen.state === 'paused'",
    )
    .await;
    assert_eq!(paused["pause"], "Resume", "{paused:#}");
    window.save_screenshot("window-watched-folders.png").await;

    // Removed: the list is empty again; the job stays in the history.
    window
        .click(&format!(
            ".watched-folder[data-folder={:?}] .folder-remove",
            camera.to_string_lossy()
        ))
        .await;
    window
        .wait_for_script(
            "the folder no longer watched",
            UI_DEADLINE,
            "return document.querySelector('#watched-folders-none')?.textContent;",
        )
        .await;
    assert_eq!(jobs(&window).await.len(), 1);
    window.close().await;
}
