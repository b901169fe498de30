//! Files that are not good videos: each is refused at `add` with its reason, or fails its own job
//! with a message a person understands, while a good video queued alongside is still told and
//! the database stays intact.

use crate::support::{
    error_message, make_video, permissions_are_ignored, summary, text, Look, Output, Sandbox,
    RUN_DEADLINE,
};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A good video, which every scenario queues next to its bad one.
fn good_video(sandbox: &Sandbox) -> PathBuf {
    sandbox.video("good.mp4", Look::plain())
}

/// Works the queue to the end; the exit code is the test's to check.
fn work(sandbox: &Sandbox) -> Output {
    sandbox.run_within(
        RUN_DEADLINE,
        &["run", "--until-empty", "--concurrency", "3"],
    )
}

/// Works the queue, where `bad` (a file name) must fail: the run exits 1 and says why.
fn work_expecting_failure_of(sandbox: &Sandbox, bad: &str) -> Value {
    let out = work(sandbox);
    assert_eq!(out.code, Some(1), "a failed job makes `run` exit 1:\n{out}");
    assert!(
        out.stderr.contains(&format!("✗ {bad}")),
        "`run` should report the failure of {bad}:\n{out}"
    );
    let job = sandbox.job_for(bad);
    assert_eq!(job["state"], "dead", "{job:#}");
    assert_eq!(job["error"]["kind"], "permanent", "{job:#}");
    assert_eq!(
        job["attempts"], 1,
        "a permanent failure was retried: {job:#}"
    );
    assert!(job["story"].is_null(), "{job:#}");
    job
}

/// The good video was told and the database is intact.
fn assert_good_video_told(sandbox: &Sandbox) {
    let good = sandbox.job_for("good.mp4");
    assert_eq!(
        good["state"],
        "succeeded",
        "{:#?}",
        summary(&sandbox.jobs())
    );
    assert!(text(&good, "story").contains("analyser"), "{good:#}");
    sandbox.assert_database_intact();
}

/// A message meant for people: no raw ffprobe output in it.
fn assert_readable(message: &str) {
    for raw in [
        "[mov,",
        "Invalid data found",
        "ffprobe -",
        "exit status",
        "os error",
    ] {
        assert!(!message.contains(raw), "raw tool output in: {message}");
    }
}

fn refusal_for<'a>(refused: &'a [Value], name: &str) -> &'a Value {
    refused
        .iter()
        .find(|r| text(r, "path").ends_with(name))
        .unwrap_or_else(|| panic!("{name} was not refused: {refused:#?}"))
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}

#[test]
fn a_missing_file_is_refused_at_add_and_the_rest_is_queued() {
    let sandbox = Sandbox::new();
    let good = good_video(&sandbox);
    let missing = sandbox.videos().join("missing.mp4");
    let (added, refused, code) = sandbox.add(&[&missing, &good], &[]);
    assert_eq!(code, Some(1), "a refusal makes `add` exit 1");
    assert_eq!(added.len(), 1);
    assert_eq!(added[0]["file"], "good.mp4");
    assert!(
        text(refusal_for(&refused, "missing.mp4"), "reason").contains("no such file"),
        "{refused:#?}"
    );
    let plain = sandbox.run(&["add", path_str(&missing)]);
    assert_eq!(plain.code, Some(1), "{plain}");
    assert!(
        plain.stderr.contains("missing.mp4") && plain.stderr.contains("no such file"),
        "{plain}"
    );
    let out = work(&sandbox);
    assert_eq!(out.code, Some(0), "{out}");
    assert_good_video_told(&sandbox);
}

#[test]
fn a_folder_is_searched_recursively_and_its_other_files_are_reported_as_skipped() {
    let sandbox = Sandbox::new();
    let folder = sandbox.videos().join("holiday");
    std::fs::create_dir_all(folder.join("day two")).expect("folders");
    crate::support::make_video(&folder.join("good.mp4"), Look::plain());
    crate::support::make_video(
        &folder.join("day two").join("beach.mov"),
        Look::varied(3, 3),
    );
    std::fs::write(folder.join("notes.txt"), "packing list: towel\n").expect("notes");
    std::fs::write(folder.join("photo.jpg"), [0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10]).expect("photo");
    std::fs::write(folder.join(".hidden.mp4"), "not shown").expect("hidden");

    let (added, refused, code) = sandbox.add(&[&folder], &[]);
    let mut files: Vec<&str> = added.iter().map(|j| text(j, "file")).collect();
    files.sort_unstable();
    assert_eq!(files, ["beach.mov", "good.mp4"], "{added:#?}");
    assert_eq!(refused.len(), 2, "{refused:#?}");
    for name in ["notes.txt", "photo.jpg"] {
        let reason = text(refusal_for(&refused, name), "reason");
        assert!(reason.contains("not a video"), "{reason}");
        assert_eq!(refusal_for(&refused, name)["skipped"], true);
    }
    assert_eq!(
        code,
        Some(0),
        "other files in a folder are skipped, not failures, so `add` exits 0"
    );

    // Named explicitly, a text file is refused with what Storyteller reads instead.
    let (added, refused, code) = sandbox.add(&[&folder.join("notes.txt")], &[]);
    assert_eq!((added.len(), code), (0, Some(1)));
    let reason = text(refusal_for(&refused, "notes.txt"), "reason");
    assert!(
        reason.contains("not a video file (.txt)") && reason.contains("mp4"),
        "{reason}"
    );

    let out = work(&sandbox);
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(sandbox.job_for("beach.mov")["state"], "succeeded");
    assert_good_video_told(&sandbox);
}

#[test]
fn an_empty_file_is_refused_at_add() {
    let sandbox = Sandbox::new();
    let good = good_video(&sandbox);
    let empty = sandbox.videos().join("empty.mp4");
    std::fs::write(&empty, b"").expect("empty file");
    let (added, refused, code) = sandbox.add(&[&empty, &good], &[]);
    assert_eq!((added.len(), code), (1, Some(1)));
    let reason = text(refusal_for(&refused, "empty.mp4"), "reason");
    assert!(
        reason.contains("empty") && reason.contains("0 bytes"),
        "{reason}"
    );
    let out = work(&sandbox);
    assert_eq!(out.code, Some(0), "{out}");
    assert_good_video_told(&sandbox);
}

#[test]
fn a_truncated_video_fails_its_job_saying_it_is_incomplete() {
    let sandbox = Sandbox::new();
    let good = good_video(&sandbox);
    let bytes = std::fs::read(&good).expect("good video");
    let cut = sandbox.videos().join("cut short.mp4");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).expect("truncated copy");
    let (added, refused, code) = sandbox.add(&[&cut, &good], &[]);
    assert_eq!(
        (added.len(), refused.len(), code),
        (2, 0, Some(0)),
        "a file that looks like a video is accepted and fails in its job: {refused:#?}"
    );

    let job = work_expecting_failure_of(&sandbox, "cut short.mp4");
    let message = error_message(&job);
    assert!(message.starts_with("cut short.mp4"), "{message}");
    assert!(message.contains("damaged or incomplete"), "{message}");
    assert!(message.contains("did not finish"), "{message}");
    assert_readable(message);
    assert_good_video_told(&sandbox);
}

#[test]
fn a_text_file_named_mp4_fails_its_job_as_not_a_video() {
    let sandbox = Sandbox::new();
    let good = good_video(&sandbox);
    let fake = sandbox.videos().join("fake.mp4");
    std::fs::write(
        &fake,
        "Dear diary, today I filmed nothing at all.\n".repeat(20),
    )
    .expect("text file");
    let (added, _, code) = sandbox.add(&[&fake, &good], &[]);
    assert_eq!((added.len(), code), (2, Some(0)));

    let job = work_expecting_failure_of(&sandbox, "fake.mp4");
    let message = error_message(&job);
    assert!(message.contains("fake.mp4 is not a video"), "{message}");
    assert!(message.contains("text"), "{message}");
    assert_readable(message);
    assert_good_video_told(&sandbox);
}

#[test]
fn a_file_deleted_after_it_was_queued_fails_its_job_saying_it_is_gone() {
    let sandbox = Sandbox::new();
    let good = good_video(&sandbox);
    let doomed = sandbox.video("doomed.mp4", Look::varied(5, 3));
    let (added, _, code) = sandbox.add(&[&doomed, &good], &[]);
    assert_eq!((added.len(), code), (2, Some(0)));
    std::fs::remove_file(&doomed).expect("deleting the video");

    let job = work_expecting_failure_of(&sandbox, "doomed.mp4");
    let message = error_message(&job);
    assert!(message.contains("the file is gone"), "{message}");
    assert!(message.contains("doomed.mp4"), "{message}");
    assert_readable(message);
    assert_good_video_told(&sandbox);
}

#[test]
fn names_with_unicode_and_spaces_are_told_and_kept() {
    let sandbox = Sandbox::new();
    let good = good_video(&sandbox);
    let names = ["été à la plage 🌊.mp4", "my holiday clip.mp4"];
    let videos: Vec<PathBuf> = names
        .iter()
        .enumerate()
        .map(|(i, name)| sandbox.video(name, Look::varied(i + 6, 3)))
        .collect();
    let (added, refused, code) = sandbox.add(&[&videos[0], &videos[1], &good], &[]);
    assert_eq!((added.len(), refused.len(), code), (3, 0, Some(0)));
    let out = work(&sandbox);
    assert_eq!(out.code, Some(0), "{out}");

    let jobs = sandbox.jobs();
    for (name, video) in names.iter().zip(&videos) {
        let job = sandbox.job_for(name);
        assert_eq!(job["state"], "succeeded", "{job:#}");
        assert_eq!(Path::new(text(&job, "source")), video.as_path());
        // Stories are cached by content, so they never name a file; export does.
        assert!(
            !text(&job, "story").is_empty() && !text(&job, "story").contains(name),
            "{job:#}"
        );
    }
    let out_dir = tempfile::tempdir().expect("tempdir");
    for format in ["md", "json"] {
        let file = out_dir.path().join(format!("export.{format}"));
        sandbox.ok(&["export", "--format", format, "--out", path_str(&file)]);
        let exported = std::fs::read_to_string(&file).expect("export");
        for name in names {
            assert!(
                exported.contains(name),
                "{format} export lost {name}:\n{exported}"
            );
        }
        if format == "json" {
            let rows: Vec<Value> = serde_json::from_str(&exported).expect("JSON export");
            assert_eq!(rows.len(), jobs.len());
        }
    }
    assert_good_video_told(&sandbox);
}

#[test]
fn a_pipe_or_an_unreadable_file_is_refused_without_hanging() {
    let sandbox = Sandbox::new();
    let good = good_video(&sandbox);

    // A FIFO would block whoever opens it: it must be refused from its metadata alone.
    let pipes = sandbox.videos().join("pipes");
    std::fs::create_dir_all(&pipes).expect("pipes folder");
    let fifo = pipes.join("pipe.mp4");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo");
    assert!(status.success(), "mkfifo failed");
    let out = sandbox.run_within(
        Duration::from_secs(20),
        &["add", "--json", path_str(&fifo), path_str(&good)],
    );
    assert_eq!(out.code, Some(1), "{out}");
    let report = out.json();
    let entries = report["entries"].as_array().expect("entries").clone();
    let pipe = refusal_for(&entries, "pipe.mp4");
    assert_eq!(pipe["outcome"], "refused", "{pipe:#}");
    let reason = text(pipe, "reason");
    assert!(reason.contains("not a regular file"), "{reason}");
    let queued = entries.iter().filter(|e| e["outcome"] == "queued").count();
    assert_eq!(queued, 1, "{report:#}");

    // Inside a folder too.
    let (added, refused, code) = sandbox.add(&[&pipes], &[]);
    assert_eq!((added.len(), code), (0, Some(1)), "{added:#?}");
    assert!(text(refusal_for(&refused, "pipe.mp4"), "reason").contains("not a regular file"));

    // chmod 000 stops a reader only when permissions apply (not for root).
    let locked = sandbox.video("locked.mp4", Look::varied(8, 3));
    set_mode(&locked, 0o000);
    if permissions_are_ignored(&locked) {
        eprintln!("running as root: chmod 000 does not stop reading, checked the FIFO only");
        set_mode(&locked, 0o644);
        std::fs::remove_file(&locked).expect("removing locked.mp4");
    } else {
        let (added, refused, code) = sandbox.add(&[&locked], &[]);
        assert_eq!((added.len(), code), (0, Some(1)));
        let reason = text(refusal_for(&refused, "locked.mp4"), "reason");
        assert!(reason.contains("permission denied"), "{reason}");

        // Readable when queued, unreadable when its turn comes: the job says so.
        set_mode(&locked, 0o644);
        let (added, _, code) = sandbox.add(&[&locked], &[]);
        assert_eq!((added.len(), code), (1, Some(0)));
        set_mode(&locked, 0o000);
        let out = work(&sandbox);
        set_mode(&locked, 0o644);
        assert_eq!(out.code, Some(1), "{out}");
        let job = sandbox.job_for("locked.mp4");
        assert_eq!(job["state"], "dead", "{job:#}");
        let message = error_message(&job);
        assert!(message.contains("locked.mp4"), "{message}");
        assert!(
            message.contains("permission denied") || message.contains("cannot be read"),
            "{message}"
        );
        assert_readable(message);
    }
    let out = work(&sandbox);
    assert!(matches!(out.code, Some(0 | 1)), "{out}");
    assert_good_video_told(&sandbox);
    std::fs::remove_file(&fifo).expect("removing the FIFO");
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

#[test]
fn without_ffmpeg_the_runner_says_how_to_install_it_and_the_queue_waits() {
    let sandbox = Sandbox::new();
    let good = good_video(&sandbox);
    let (added, _, code) = sandbox.add(&[&good], &[]);
    assert_eq!((added.len(), code), (1, Some(0)));
    let empty_path = sandbox.videos().join("no tools here");
    std::fs::create_dir_all(&empty_path).expect("an empty folder");
    let out = sandbox
        .spawn_with_env(
            &[("PATH", path_str(&empty_path))],
            &["run", "--until-empty"],
        )
        .wait(RUN_DEADLINE);
    assert_eq!(out.code, Some(1), "{out}");
    assert!(
        out.stderr.contains("ffmpeg and ffprobe were not found"),
        "{out}"
    );
    assert!(out.stderr.contains("install FFmpeg"), "{out}");
    let job = sandbox.job_for("good.mp4");
    assert_eq!(
        job["state"], "queued",
        "the job was not left for later: {job:#}"
    );
    assert_eq!(job["attempts"], 0, "{job:#}");

    let out = work(&sandbox);
    assert_eq!(out.code, Some(0), "{out}");
    assert_good_video_told(&sandbox);
}

#[test]
fn a_video_replaced_after_it_was_queued_does_not_lend_its_story_to_the_original() {
    let sandbox = Sandbox::new();
    let good = good_video(&sandbox);
    let changing = sandbox.videos().join("changing.mp4");
    std::fs::copy(&good, &changing).expect("copying the good video");
    let (added, _, code) = sandbox.add(&[&changing], &[]);
    assert_eq!((added.len(), code), (1, Some(0)));
    // Replaced by a different video before its turn (a re-export, a sync client, …).
    let other = sandbox.videos().join("other.bin");
    crate::support::make_video(&other.with_extension("mp4"), Look::varied(2, 4));
    std::fs::rename(other.with_extension("mp4"), &changing).expect("replacing the video");
    let out = work(&sandbox);
    assert!(matches!(out.code, Some(0 | 1)), "{out}");
    let changed = sandbox.job_for("changing.mp4");

    // The original content, added now, must get a story of its own pictures, not the
    // replacement's story filed under the original's content hash.
    let (added, _, code) = sandbox.add(&[&good], &[]);
    assert_eq!((added.len(), code), (1, Some(0)));
    if let Some(story) = changed["story"].as_str() {
        assert_ne!(
            added[0]["story"].as_str(),
            Some(story),
            "the replacement's story was reused for the original video: {:#}",
            added[0]
        );
    }
    let out = work(&sandbox);
    assert_eq!(out.code, Some(0), "{out}");
    assert_good_video_told(&sandbox);
}

#[test]
fn a_pipe_swapped_in_after_add_fails_its_job_without_hanging_the_run() {
    let sandbox = Sandbox::new();
    let good = good_video(&sandbox);
    let doomed = sandbox.video("swapped.mp4", Look::varied(1, 3));
    let (added, _, code) = sandbox.add(&[&good, &doomed], &[]);
    assert_eq!((added.len(), code), (2, Some(0)));
    std::fs::remove_file(&doomed).expect("removing the video");
    let status = std::process::Command::new("mkfifo")
        .arg(&doomed)
        .status()
        .expect("mkfifo");
    assert!(status.success(), "mkfifo failed");
    // Nobody ever writes to the pipe: opening it would wait for ever.
    let started = std::time::Instant::now();
    let job = work_expecting_failure_of(&sandbox, "swapped.mp4");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "the run took {:?}",
        started.elapsed()
    );
    let message = error_message(&job);
    assert!(message.contains("not a regular file"), "{message}");
    assert_good_video_told(&sandbox);
}

/// Writes an executable shell script at `path`.
fn write_script(path: &Path, body: &str) {
    std::fs::write(path, format!("#!/bin/sh\n{body}\n")).expect("writing a script");
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("making it executable");
}

#[test]
fn a_broken_ffprobe_pauses_the_queue_naming_it_and_blames_no_video() {
    let sandbox = Sandbox::new();
    let good = good_video(&sandbox);
    let (added, _, code) = sandbox.add(&[&good], &[]);
    assert_eq!((added.len(), code), (1, Some(0)));
    let broken = sandbox.videos().join("ffprobe-broken");
    write_script(
        &broken,
        "echo 'ffprobe: error while loading shared libraries: libavdevice.so.59: cannot open \
         shared object file: No such file or directory' >&2\nexit 127",
    );
    let out = sandbox
        .spawn_with_env(
            &[("STORYTELLER_FFPROBE", path_str(&broken))],
            &["run", "--until-empty"],
        )
        .wait(RUN_DEADLINE);
    assert_eq!(out.code, Some(1), "{out}");
    let stats = sandbox.stats();
    let paused = stats["paused"].as_str().unwrap_or_default().to_owned();
    assert!(paused.contains("ffprobe cannot run"), "{stats:#}\n{out}");
    assert!(paused.contains("libavdevice"), "{paused}");
    assert!(paused.contains("STORYTELLER_FFPROBE"), "{paused}");
    let job = sandbox.job_for("good.mp4");
    assert_eq!(job["state"], "queued", "the video was blamed: {job:#}");
    assert_eq!(job["attempts"], 0, "{job:#}");

    sandbox.ok(&["resume"]);
    assert_eq!(work(&sandbox).code, Some(0));
    assert_good_video_told(&sandbox);
}

/// Mounts a tmpfs of `size` at `at`; `false` (after saying why) where mounting is not allowed.
fn mount_small_disk(at: &Path, size: &str) -> bool {
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(at)
        .output();
    match mounted {
        Ok(out) if out.status.success() => true,
        Ok(out) => {
            println!(
                "skipped: a small filesystem cannot be mounted here ({})",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            false
        }
        Err(e) => {
            println!("skipped: `mount` cannot run here ({e})");
            false
        }
    }
}

/// Unmounts what [`mount_small_disk`] mounted, when dropped (a failing test too).
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_database_disk_is_said_once_and_the_work_goes_on_once_there_is_room() {
    let sandbox = Sandbox::new();
    let good = good_video(&sandbox);
    // The whole home on a small filesystem: the database's disk.
    if !mount_small_disk(&sandbox.home(), "4m") {
        return;
    }
    let _mounted = Mounted(sandbox.home());
    let (added, _, code) = sandbox.add(&[&good], &[]);
    assert_eq!((added.len(), code), (1, Some(0)));
    let filler = sandbox.home().join("filler");
    // Filled to the last byte, whatever the database holds by now.
    let _ = std::fs::write(&filler, vec![0u8; 4 * 1024 * 1024]);
    let runner = sandbox.spawn(&["run", "--until-empty"]);
    std::thread::sleep(Duration::from_secs(8));
    let _ = std::fs::remove_file(&filler);
    let out = runner.wait(RUN_DEADLINE);
    assert_eq!(out.code, Some(0), "{out}");
    let said = out
        .stderr
        .matches("the disk holding the database is full")
        .count();
    assert_eq!(said, 1, "said {said} times in 8 s:\n{out}");
    assert_good_video_told(&sandbox);
}

#[test]
fn a_full_thumbnail_disk_pauses_the_queue_and_it_goes_on_once_there_is_room() {
    let sandbox = Sandbox::new();
    let good = good_video(&sandbox);
    let (added, _, code) = sandbox.add(&[&good], &[]);
    assert_eq!((added.len(), code), (1, Some(0)));
    // A small filesystem where the thumbnails go, filled up: full at the first picture.
    let thumbnails = sandbox.home().join("thumbnails");
    std::fs::create_dir_all(&thumbnails).expect("the thumbnails folder");
    if !mount_small_disk(&thumbnails, "1m") {
        return;
    }
    let _mounted = Mounted(thumbnails.clone());
    let filler = thumbnails.join("filler");
    let _ = std::fs::write(&filler, vec![0u8; 1024 * 1024]);
    let runner = sandbox.spawn(&["run"]);
    let deadline = std::time::Instant::now() + RUN_DEADLINE;
    let paused = loop {
        let stats = sandbox.stats();
        if let Some(reason) = stats["paused"].as_str() {
            break reason.to_owned();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the queue never paused: {stats:#}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let job = sandbox.job_for("good.mp4");
    // Room again (the filler goes): the runner notices by itself.
    let _ = std::fs::remove_file(&filler);
    assert!(paused.contains("disk is full"), "{paused}");
    assert!(paused.contains("thumbnails"), "{paused}");
    assert_eq!(job["state"], "queued", "the video was blamed: {job:#}");
    assert_eq!(job["attempts"], 0, "the full disk cost an attempt: {job:#}");
    sandbox.wait_for_jobs(RUN_DEADLINE, "the video told after all", |jobs| {
        jobs.iter().all(|j| j["state"] == "succeeded")
    });
    runner.signal("TERM");
    let out = runner.wait(Duration::from_secs(20));
    assert_eq!(out.code, Some(0), "{out}");
    assert!(sandbox.stats()["paused"].is_null());
    assert_good_video_told(&sandbox);
}

#[test]
fn odd_names_are_kept_byte_for_byte_and_shown_on_one_line() {
    use std::os::unix::ffi::OsStrExt;
    let sandbox = Sandbox::new();
    let good = good_video(&sandbox);
    // Not UTF-8; a line break; what looks like an option.
    let names: [&[u8]; 3] = [b"clip\xff.mp4", b"two\nlines.mp4", b"--help.mp4"];
    let odd: Vec<PathBuf> = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let path = sandbox.videos().join(std::ffi::OsStr::from_bytes(name));
            make_video(&path, Look::varied(i + 11, 2));
            path
        })
        .collect();
    let add = |paths: &[&PathBuf]| {
        std::process::Command::new(crate::support::binary())
            .arg("--home")
            .arg(sandbox.home())
            .args(["add", "--json"])
            .args(paths)
            .output()
            .expect("running storyteller")
    };
    let out = add(&[&odd[0], &odd[1], &odd[2], &good]);
    let report: Value = serde_json::from_slice(&out.stdout).expect("an add report");
    assert_eq!(out.status.code(), Some(0), "{report:#}");
    let outcomes: Vec<&Value> = report["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| &e["outcome"])
        .collect();
    assert_eq!(outcomes, ["queued"; 4], "{report:#}");

    let out = work(&sandbox);
    assert_eq!(out.code, Some(0), "{out}");
    // The byte that is not UTF-8 is shown escaped, never as a replacement character.
    let shown = ["clip\\xff.mp4", "two\nlines.mp4", "--help.mp4"];
    for (name, path) in shown.iter().zip(&odd) {
        let job = sandbox.job_for(name);
        assert_eq!(job["state"], "succeeded", "{job:#}");
        let source = text(&job, "source");
        assert!(
            source.ends_with(name) && !source.contains('\u{fffd}'),
            "{job:#}"
        );
        assert!(
            source.starts_with(path_str(path.parent().expect("folder"))),
            "{job:#}"
        );
    }
    // The database holds the name's very bytes: adding the file again finds its job.
    let again = add(&[&odd[0]]);
    let report: Value = serde_json::from_slice(&again.stdout).expect("an add report");
    assert_eq!(
        report["entries"][0]["outcome"], "alreadyAdded",
        "{report:#}"
    );
    assert_eq!(sandbox.jobs().len(), 4);

    // One row per job: the line break is written `\n`, so no row splits.
    let listed = sandbox.ok(&["list"]).stdout;
    let rows: Vec<&str> = listed.lines().filter(|l| l.contains(".mp4")).collect();
    assert_eq!(rows.len(), 4, "{listed}");
    assert!(
        rows.iter().any(|r| r.contains("two\\nlines.mp4")),
        "{listed}"
    );
    assert!(rows.iter().any(|r| r.contains("clip\\xff.mp4")), "{listed}");
    let out_dir = tempfile::tempdir().expect("tempdir");
    let file = out_dir.path().join("export.md");
    sandbox.ok(&["export", "--format", "md", "--out", path_str(&file)]);
    let exported = std::fs::read_to_string(&file).expect("export");
    assert!(exported.contains("## clip\\xff.mp4"), "{exported}");
    assert_good_video_told(&sandbox);
}
