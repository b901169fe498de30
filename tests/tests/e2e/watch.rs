//! Watched folders through the `storyteller` command: `watch add|list|rm`, and `storyteller
//! run` telling the real videos that are copied into a folder, slowly, while it runs and while
//! it is stopped, with the offline storyteller and real ffmpeg.

use crate::support::{count_in, make_video, Look, Sandbox, RUN_DEADLINE};
use std::io::{Read as _, Write as _};
use std::path::Path;
use std::time::{Duration, Instant};

/// Copies `from` to `to` in chunks over about `over`, as a slow drive or a download would.
fn copy_slowly(from: &Path, to: &Path, over: Duration) {
    let mut bytes = Vec::new();
    std::fs::File::open(from)
        .unwrap()
        .read_to_end(&mut bytes)
        .unwrap();
    let chunks = 10;
    let mut out = std::fs::File::create(to).unwrap();
    for chunk in bytes.chunks(bytes.len().div_ceil(chunks)) {
        out.write_all(chunk).unwrap();
        out.flush().unwrap();
        std::thread::sleep(over / chunks as u32);
    }
}

fn wait_until(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < limit, "waited {limit:?} for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_watched_folder_tells_the_videos_copied_into_it_once_each_through_restarts() {
    let sandbox = Sandbox::new();
    let camera = sandbox.home().parent().unwrap().join("camera");
    std::fs::create_dir_all(&camera).unwrap();
    let camera_arg = camera.to_str().unwrap();
    let added = sandbox
        .ok(&[
            "watch",
            "add",
            camera_arg,
            "--beside",
            "--move-done",
            "--json",
        ])
        .json();
    assert_eq!(added["output"], "beside");
    assert_eq!(added["status"]["state"], "idle");
    let listed = sandbox.ok(&["watch", "list"]);
    assert!(listed.stdout.contains("idle (watched while"), "{listed}");
    assert!(
        listed
            .stdout
            .contains("story beside the video (md), video moved into done/"),
        "{listed}"
    );

    // Two real videos, made elsewhere, to copy in.
    let made = sandbox.home().parent().unwrap().join("made");
    std::fs::create_dir_all(&made).unwrap();
    let first = made.join("first.mp4");
    let second = made.join("second.mp4");
    make_video(&first, Look::varied(1, 3));
    make_video(&second, Look::varied(2, 3));

    let runner = sandbox.spawn_with_env(
        &[("STORYTELLER_WATCH_SETTLE_SECONDS", "1")],
        &["run", "--concurrency", "2"],
    );
    wait_until("the folder watched", RUN_DEADLINE, || {
        sandbox.ok(&["watch", "list", "--json"]).json()[0]["status"]["state"] == "watching"
    });
    // Copied in over 3 s: never taken before it is whole.
    copy_slowly(&first, &camera.join("first.mp4"), Duration::from_secs(3));
    let jobs = sandbox.wait_for_jobs(RUN_DEADLINE, "the first video told", |jobs| {
        count_in(jobs, "succeeded") == 1
    });
    assert_eq!(jobs.len(), 1, "{jobs:#?}");
    assert_eq!(jobs[0]["folder"], camera_arg);
    wait_until("its story beside it, in done/", RUN_DEADLINE, || {
        camera.join("done/first.story.md").exists()
    });
    assert!(camera.join("done/first.mp4").exists());
    assert!(!camera.join("first.mp4").exists());
    let story = std::fs::read_to_string(camera.join("done/first.story.md")).unwrap();
    assert!(story.len() > 100, "{story}");
    assert_eq!(
        sandbox.job_for("first.mp4")["source"],
        camera.join("done/first.mp4").to_str().unwrap(),
        "the job follows its video"
    );

    // Stopped; meanwhile a video arrives, and a told one is copied back in under a new name.
    runner.signal("TERM");
    let out = runner.wait(Duration::from_secs(30));
    assert_eq!(out.code, Some(0), "{out}");
    std::fs::copy(&second, camera.join("second.mp4")).unwrap();
    std::fs::copy(&first, camera.join("first again.mp4")).unwrap();
    let runner = sandbox.spawn_with_env(
        &[("STORYTELLER_WATCH_SETTLE_SECONDS", "1")],
        &["run", "--concurrency", "2"],
    );
    let jobs = sandbox.wait_for_jobs(RUN_DEADLINE, "the second told on start", |jobs| {
        count_in(jobs, "succeeded") == 2
    });
    std::thread::sleep(Duration::from_secs(3));
    let jobs_after = sandbox.jobs();
    assert_eq!(
        jobs_after.len(),
        jobs.len(),
        "the same content under a new name is no new job"
    );
    assert_eq!(jobs_after.len(), 2);
    let listed = sandbox.ok(&["watch", "list", "--json"]).json();
    assert_eq!(listed[0]["found"], 2);
    assert_eq!(listed[0]["succeeded"], 2);
    runner.signal("TERM");
    runner.wait(Duration::from_secs(30));

    // `run --until-empty` catches up, tells, and ends.
    std::fs::write(camera.join("notes.txt"), "not a video").unwrap();
    make_video(&camera.join("third.mp4"), Look::varied(3, 2));
    let out = sandbox
        .spawn_with_env(
            &[("STORYTELLER_WATCH_SETTLE_SECONDS", "1")],
            &["run", "--until-empty"],
        )
        .wait(RUN_DEADLINE);
    assert_eq!(out.code, Some(0), "{out}");
    let jobs = sandbox.jobs();
    assert_eq!(jobs.len(), 3, "{jobs:#?}");
    assert_eq!(count_in(&jobs, "succeeded"), 3);

    let removed = sandbox.ok(&["watch", "rm", camera_arg]);
    assert!(removed.stdout.contains("its 3 job(s) stay"), "{removed}");
    let refused = sandbox.run(&["watch", "rm", camera_arg]);
    assert_eq!(refused.code, Some(2), "a mistaken argument: {refused}");
    assert!(
        refused.stderr.contains("is not a watched folder"),
        "{refused}"
    );
    sandbox.assert_database_intact();
}
