//! The window's figures, measured on the real app in a real display (run it under
//! `xvfb-run -a -s '-screen 0 1280x800x24'`; the app must be built first):
//!
//! - cold start: from the app's process start to the first painted queue, with 10,000 jobs in
//!   the database (median of 3 starts);
//! - memory: the whole app idle (the app and its WebKit processes, PSS from
//!   `/proc/*/smaps_rollup`), against an empty Tauri window measured the same way in the same
//!   run;
//! - event to screen: from an engine event reaching the page to the frame that shows it, while
//!   3 videos are told at once (p50, p95);
//! - a 1,000-video drop: the longest frame while it is added, and that every row is there.
//!
//! `BENCH_QUICK=1` uses 500 jobs instead of 10,000 (a smoke run). `STORYTELLER_APP_PROFILE=release`
//! measures a release build.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/window/harness.rs"]
#[allow(dead_code)]
mod harness;

use harness::{target_dir, Clip, Desktop, STORY_DEADLINE};
use serde_json::{json, Value};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// How long the app sits idle before its memory is read.
const IDLE: Duration = Duration::from_secs(10);

fn cli() -> PathBuf {
    let profile = std::env::var("STORYTELLER_APP_PROFILE").unwrap_or_else(|_| "debug".into());
    target_dir().join(profile).join("storyteller")
}

fn storyteller(home: &Path, args: &[&OsStr]) {
    let out = Command::new(cli())
        .arg("--home")
        .arg(home)
        .args(args)
        .output()
        .expect("running storyteller");
    assert!(
        out.status.success(),
        "storyteller {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `n` small files with video names (never told: the queue stays paused).
fn fake_videos(dir: &Path, n: usize) {
    std::fs::create_dir_all(dir).unwrap();
    for i in 0..n {
        std::fs::write(dir.join(format!("clip-{i:05}.mp4")), format!("clip {i}")).unwrap();
    }
}

/// When process `pid` started, in ms since the Unix epoch (to 10 ms).
fn process_start_ms(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after_name = stat.rsplit_once(')').unwrap().1;
    // Field 22 of the line is the start time in clock ticks after boot; after the name and its
    // closing parenthesis, it is the 20th.
    let ticks: f64 = after_name
        .split_whitespace()
        .nth(19)
        .unwrap()
        .parse()
        .unwrap();
    let boot: f64 = std::fs::read_to_string("/proc/stat")
        .unwrap()
        .lines()
        .find_map(|line| line.strip_prefix("btime "))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    boot * 1000.0 + ticks * 10.0
}

fn children_of(pid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|child| {
            std::fs::read_to_string(format!("/proc/{child}/stat"))
                .ok()
                .and_then(|stat| {
                    let parent = stat
                        .rsplit_once(')')?
                        .1
                        .split_whitespace()
                        .nth(1)?
                        .to_owned();
                    parent.parse::<u32>().ok()
                })
                == Some(pid)
        })
        .collect()
}

/// PSS in MiB of `pid` and every process under it.
fn pss_tree_mib(pid: u32) -> f64 {
    let mut total_kb = 0.0;
    let mut todo = vec![pid];
    while let Some(p) = todo.pop() {
        if let Ok(rollup) = std::fs::read_to_string(format!("/proc/{p}/smaps_rollup")) {
            total_kb += rollup
                .lines()
                .find_map(|l| l.strip_prefix("Pss:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
                .unwrap_or(0.0);
        }
        todo.extend(children_of(p));
    }
    total_kb / 1024.0
}

/// The idle memory of `program ARGS…` launched directly, in MiB.
fn idle_memory(desktop: &Desktop, program: &Path, args: &[&OsStr]) -> f64 {
    let mut child = desktop.spawn(program, args);
    std::thread::sleep(IDLE);
    let pss = pss_tree_mib(child.id());
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    pss
}

fn percentile(values: &mut [f64], p: f64) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    if values.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (values.len() - 1) as f64).round() as usize;
    values[rank]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let quick = std::env::var_os("BENCH_QUICK").is_some();
    let jobs = if quick { 500 } else { 10_000 };
    assert!(
        cli().is_file(),
        "build the workspace first (cargo build --workspace)"
    );

    // Cold start with a big history.
    let desktop = Desktop::new("bench-window").expect("a display (run under xvfb-run)");
    let many = desktop.videos().join("many");
    fake_videos(&many, jobs);
    storyteller(&desktop.home(), &["add".as_ref(), many.as_os_str()]);
    storyteller(&desktop.home(), &["pause".as_ref()]);
    let mut starts = Vec::new();
    for _ in 0..3 {
        let window = desktop.open().await;
        window.wait_until_ready().await;
        let ready_at = window
            .script("return window.storytellerMetrics.readyAt;", vec![])
            .await
            .as_f64()
            .unwrap();
        let pid = desktop.app_processes()[0];
        starts.push(ready_at - process_start_ms(pid));
        // The rest of the history follows the first rows.
        window
            .wait_for_script(
                "every job in the list",
                STORY_DEADLINE,
                &format!(
                    "return document.querySelector('.queue-spacer').offsetHeight / 64 === {jobs};"
                ),
            )
            .await;
        window.close().await;
    }
    let cold = percentile(&mut starts.clone(), 50.0);
    println!(
        "cold start to first painted queue, {jobs} jobs: {cold:.0} ms (median of 3: {starts:.0?})"
    );

    // Memory, idle: the app on that home, the app on an empty home, an empty Tauri window.
    let app = harness::app_binary();
    let big_home = idle_memory(
        &desktop,
        &app,
        &["--home".as_ref(), desktop.home().as_os_str()],
    );
    let empty_home = desktop.scratch().join("empty-home");
    let app_empty = idle_memory(&desktop, &app, &["--home".as_ref(), empty_home.as_os_str()]);
    let profile = std::env::var("STORYTELLER_APP_PROFILE").unwrap_or_else(|_| "debug".into());
    let empty = target_dir().join(&profile).join("examples/empty_window");
    assert!(
        empty.is_file(),
        "build the empty window first: {}",
        empty.display()
    );
    let baseline = idle_memory(&desktop, &empty, &[]);
    println!(
        "memory idle (PSS, app + WebKit): {app_empty:.0} MiB on an empty home, {big_home:.0} MiB \
         with {jobs} jobs; empty Tauri window {baseline:.0} MiB; difference {:.0} MiB / {:.0} MiB",
        app_empty - baseline,
        big_home - baseline
    );
    drop(desktop);

    // Event to screen while 3 videos stream, then a 1,000-video drop.
    let desktop = Desktop::new("bench-window-events").expect("a display");
    let videos: Vec<PathBuf> = (0..3)
        .map(|i| {
            desktop.video(
                &format!("stream-{i}.mp4"),
                Clip {
                    source: ["testsrc2", "smptebars", "mandelbrot"][i],
                    tone: 300 + 50 * i as u32,
                    seconds: 12,
                    width: 640,
                    height: 360,
                },
            )
        })
        .collect();
    let window = desktop.open().await;
    window.wait_until_ready().await;
    window
        .call("add_paths", json!({ "paths": videos, "options": {} }))
        .await;
    window
        .wait_for_rows("the 3 videos told", STORY_DEADLINE, |rows| {
            Ok(rows.len() == 3 && rows.iter().all(|r| r.state == "succeeded"))
        })
        .await;
    let waits = window
        .script("return window.storytellerMetrics.eventToPaint;", vec![])
        .await;
    let mut waits: Vec<f64> = waits
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_f64)
        .collect();
    let frames = waits.len();
    let p50 = percentile(&mut waits, 50.0);
    let p95 = percentile(&mut waits, 95.0);
    println!(
        "event to screen while 3 videos stream: p50 {p50:.1} ms, p95 {p95:.1} ms ({frames} frames)"
    );

    window.call("pause_queue", json!({})).await;
    let drop = desktop.videos().join("drop");
    fake_videos(&drop, 1000);
    // The longest gap between two frames from the drop until every row is in the list.
    window
        .script(
            "window.__gaps = []; let last = performance.now();
             const tick = (now) => { window.__gaps.push(now - last); last = now;
               if (!window.__stopGaps) requestAnimationFrame(tick); };
             requestAnimationFrame(tick); return true;",
            vec![],
        )
        .await;
    window
        .call("add_paths", json!({ "paths": [drop], "options": {} }))
        .await;
    window
        .wait_for_script(
            "the 1,000 rows",
            STORY_DEADLINE,
            "return document.querySelector('.queue-spacer').offsetHeight / 64 >= 1003;",
        )
        .await;
    let gaps = window
        .script("window.__stopGaps = true; return window.__gaps;", vec![])
        .await;
    let longest = gaps
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_f64)
        .fold(0.0, f64::max);
    println!("1,000-video drop: every row listed; longest frame {longest:.0} ms");
    window.close().await;
}
