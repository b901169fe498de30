//! The `storyteller` command as people and scripts use it: processing videos, reading the queue
//! as text and JSON, the result cache, export, pause and resume, cancel, retry, delete, and the
//! exit codes and messages of mistakes.

use crate::support::{arg, count_in, text, text as text_of, Look, Sandbox};
use serde_json::Value;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Three different videos in `sandbox`'s video folder.
fn three_videos(sandbox: &Sandbox) -> Vec<PathBuf> {
    (0..3)
        .map(|i| sandbox.video(&format!("clip-{i}.mp4"), Look::varied(i, 3)))
        .collect()
}

/// `process` on `videos`, which must exit 0.
fn process(sandbox: &Sandbox, videos: &[PathBuf]) -> String {
    let mut args = vec!["process"];
    args.extend(videos.iter().map(|v| arg(v)));
    let out = sandbox.run_within(crate::support::RUN_DEADLINE, &args);
    assert_eq!(out.code, Some(0), "process failed:\n{out}");
    out.stdout
}

/// The short id `add` prints on its `added XXXXXXXX  path` lines.
fn short_ids_from_add(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter_map(|line| line.strip_prefix("added "))
        .map(|rest| rest.split_whitespace().next().expect("an id").to_owned())
        .collect()
}

#[test]
fn process_prints_a_story_for_each_video_and_exits_zero() {
    let sandbox = Sandbox::new();
    let videos = three_videos(&sandbox);
    let stdout = process(&sandbox, &videos);
    for i in 0..3 {
        assert!(
            stdout.contains(&format!("── clip-{i}.mp4 ──")),
            "no heading for clip-{i}.mp4 in:\n{stdout}"
        );
    }
    assert_eq!(
        stdout
            .matches("Written offline by Storyteller's analyser")
            .count(),
        3,
        "expected three signed stories in:\n{stdout}"
    );
    assert!(stdout.contains("3 seconds"), "{stdout}");
    let jobs = sandbox.jobs();
    assert_eq!(count_in(&jobs, "succeeded"), 3, "{jobs:#?}");
    sandbox.assert_database_intact();
}

#[test]
fn list_json_gives_every_field_scripts_rely_on() {
    let sandbox = Sandbox::new();
    let videos = three_videos(&sandbox);
    process(&sandbox, &videos);
    let jobs = sandbox.jobs();
    assert_eq!(jobs.len(), 3);
    for (job, video) in jobs.iter().zip(&videos) {
        for field in [
            "id",
            "source",
            "state",
            "stage",
            "progress",
            "attempts",
            "priority",
            "storyteller",
            "cached",
            "story",
            "error",
            "createdAt",
            "finishedAt",
        ] {
            assert!(job.get(field).is_some(), "no `{field}` in {job:#}");
        }
        assert_eq!(text(job, "id").len(), 36, "ids are full UUIDs: {job:#}");
        assert_eq!(Path::new(text(job, "source")), video.as_path());
        assert_eq!(job["state"], "succeeded");
        assert_eq!(job["stage"], "done");
        assert_eq!(job["progress"].as_f64(), Some(1.0));
        assert_eq!(job["attempts"], 1);
        assert_eq!(job["priority"], "normal");
        assert_eq!(job["storyteller"], "offline");
        assert_eq!(job["preset"], "narrative");
        assert_eq!(job["cached"], false);
        assert!(job["error"].is_null(), "{job:#}");
        assert!(text(job, "story").contains("analyser"), "{job:#}");
        for time in ["createdAt", "finishedAt"] {
            let t = text(job, time);
            assert!(
                t.ends_with('Z') && t.contains('T'),
                "{time} is not ISO-8601: {t}"
            );
        }
        assert!(text(job, "createdAt") <= text(job, "finishedAt"));
        assert_eq!(job["media"]["video"]["width"], 320, "{job:#}");
    }
    let only_succeeded = sandbox
        .ok(&["list", "--state", "succeeded", "--json"])
        .json();
    assert_eq!(only_succeeded["jobs"].as_array().map(Vec::len), Some(3));
    let none_queued = sandbox.ok(&["list", "--state", "queued", "--json"]).json();
    assert_eq!(none_queued["jobs"], Value::Array(vec![]));
    assert!(none_queued["next"].is_null());

    // Pages: newest first, two at a time, each page starting after the last one.
    let first = sandbox
        .ok(&["list", "--newest", "--limit", "2", "--json"])
        .json();
    let ids = |page: &Value| -> Vec<String> {
        page["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|j| text(j, "id").to_owned())
            .collect()
    };
    let all: Vec<String> = jobs
        .iter()
        .rev()
        .map(|j| text(j, "id").to_owned())
        .collect();
    assert_eq!(ids(&first), all[..2], "{first:#}");
    assert_eq!(first["next"], all[1].as_str(), "{first:#}");
    let second = sandbox
        .ok(&[
            "list", "--newest", "--limit", "2", "--after", &all[1], "--json",
        ])
        .json();
    assert_eq!(ids(&second), all[2..], "{second:#}");
    assert!(second["next"].is_null(), "{second:#}");
    let table = sandbox.ok(&["list"]).stdout;
    for i in 0..3 {
        assert!(table.contains(&format!("clip-{i}.mp4")), "{table}");
    }
}

#[test]
fn show_finds_a_job_by_its_id_and_prints_its_story() {
    let sandbox = Sandbox::new();
    let videos = three_videos(&sandbox);
    process(&sandbox, &videos);
    let jobs = sandbox.jobs();
    for job in &jobs {
        let id = text(job, "id");
        let shown = sandbox.job(id);
        assert_eq!(&shown, job, "show --json and list --json disagree");
        let plain = sandbox.ok(&["show", id]).stdout;
        assert!(plain.contains(id), "{plain}");
        assert!(plain.contains(text(job, "story").trim_end()), "{plain}");
    }
}

#[test]
fn show_accepts_the_short_id_that_add_prints() {
    let sandbox = Sandbox::new();
    let video = sandbox.video("only.mp4", Look::plain());
    let out = sandbox.ok(&["add", arg(&video)]);
    let short = short_ids_from_add(&out.stdout);
    assert_eq!(short.len(), 1, "{out}");
    assert_eq!(short[0].len(), 8, "{out}");
    let job = sandbox.job(&short[0]);
    // Short ids are the random tail of the id (its head is a timestamp shared by neighbours).
    assert!(text(&job, "id").ends_with(&short[0]));
    assert_eq!(job["file"], "only.mp4");
}

#[test]
fn short_ids_printed_by_add_tell_jobs_added_together_apart() {
    let sandbox = Sandbox::new();
    let videos = three_videos(&sandbox);
    let mut args = vec!["add"];
    args.extend(videos.iter().map(|v| arg(v)));
    let out = sandbox.ok(&args);
    let short = short_ids_from_add(&out.stdout);
    assert_eq!(short.len(), 3, "{out}");
    let distinct: HashSet<&String> = short.iter().collect();
    assert_eq!(
        distinct.len(),
        3,
        "`add` printed the same short id for different jobs, so they cannot be told apart:\n{out}"
    );
    for id in &short {
        let shown = sandbox.run(&["show", id, "--json"]);
        assert_eq!(
            shown.code,
            Some(0),
            "the short id {id} printed by `add` does not name one job:\n{shown}"
        );
    }
}

#[test]
fn stats_counts_jobs_by_state() {
    let sandbox = Sandbox::new();
    let videos = three_videos(&sandbox);
    process(&sandbox, &videos[..2]);
    sandbox.ok(&["add", arg(&videos[2])]);
    let stats = sandbox.stats();
    assert_eq!(stats["succeeded"], 2, "{stats:#}");
    assert_eq!(stats["queued"], 1, "{stats:#}");
    assert_eq!(stats["running"], 0, "{stats:#}");
    assert_eq!(stats["dead"], 0, "{stats:#}");
    assert_eq!(stats["cancelled"], 0, "{stats:#}");
    assert_eq!(stats["cacheHits"], 0, "{stats:#}");
    assert_eq!(stats["cacheMisses"], 2, "{stats:#}");
    assert!(stats["paused"].is_null(), "{stats:#}");
    let plain = sandbox.ok(&["stats"]).stdout;
    assert!(plain.contains("succeeded:  2"), "{plain}");
}

#[test]
fn a_told_video_is_not_added_twice_and_its_copy_reuses_its_story() {
    let sandbox = Sandbox::new();
    let video = sandbox.video("twice.mp4", Look::plain());
    process(&sandbox, std::slice::from_ref(&video));
    let first = sandbox.jobs().remove(0);

    // The same file again: already there, no second job, no second story to pay for.
    let report = sandbox.add_report(&[&video], &[]);
    let entries = report["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{report:#}");
    assert_eq!(entries[0]["outcome"], "alreadyAdded", "{report:#}");
    assert_eq!(entries[0]["job"]["id"], first["id"], "{report:#}");
    assert!(report["batchId"].is_null(), "{report:#}");
    assert_eq!(sandbox.jobs().len(), 1);
    let plain = sandbox.ok(&["add", arg(&video)]).stdout;
    assert!(plain.starts_with("already added"), "{plain}");

    // A copy under another name is another file: a new job, told at once from the cache.
    let copy = sandbox.videos().join("copy of twice.mp4");
    std::fs::copy(&video, &copy).expect("copying the video");
    let (added, refused, code) = sandbox.add(&[&copy], &[]);
    assert_eq!((refused.len(), code), (0, Some(0)));
    let again = &added[0];
    assert_eq!(again["cached"], true, "{again:#}");
    assert_eq!(again["state"], "succeeded", "{again:#}");
    assert_eq!(again["story"], first["story"]);
    assert_ne!(again["id"], first["id"]);
    let stats = sandbox.stats();
    assert_eq!(stats["cacheHits"], 1, "{stats:#}");
    assert_eq!(stats["succeeded"], 2, "{stats:#}");

    // --again asks for a new job on purpose (its story still comes from the cache).
    let (added, _, code) = sandbox.add(&[&video], &["--again"]);
    assert_eq!(code, Some(0));
    assert_eq!(added.len(), 1);
    assert_eq!(added[0]["cached"], true, "{:#}", added[0]);

    // --no-cache asks for a fresh story, which needs a job of its own.
    let (added, _, code) = sandbox.add(&[&video], &["--no-cache"]);
    assert_eq!(code, Some(0));
    let fresh = &added[0];
    assert_eq!(fresh["cached"], false, "{fresh:#}");
    assert_eq!(fresh["state"], "queued", "{fresh:#}");
    sandbox.work_queue();
    let fresh = sandbox.job(text(fresh, "id"));
    assert_eq!(fresh["state"], "succeeded", "{fresh:#}");
    assert_eq!(fresh["cached"], false, "{fresh:#}");
    assert_eq!(fresh["attempts"], 1, "{fresh:#}");
    let stats = sandbox.stats();
    assert_eq!(stats["cacheHits"], 2, "{stats:#}");
    assert_eq!(stats["succeeded"], 4, "{stats:#}");
}

#[test]
fn adding_a_folder_twice_makes_no_second_jobs_and_exports_each_story_once() {
    let sandbox = Sandbox::new();
    three_videos(&sandbox);
    let folder = sandbox.videos();
    let (added, _, code) = sandbox.add(&[&folder], &[]);
    assert_eq!((added.len(), code), (3, Some(0)));
    sandbox.work_queue();

    let report = sandbox.add_report(&[&folder], &[]);
    let outcomes: Vec<&str> = report["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["alreadyAdded"; 3], "{report:#}");
    assert_eq!(sandbox.jobs().len(), 3);
    let exported = sandbox.ok(&["export", "--format", "md"]).stdout;
    for i in 0..3 {
        assert_eq!(
            exported.matches(&format!("## clip-{i}.mp4")).count(),
            1,
            "{exported}"
        );
    }

    let (added, _, _) = sandbox.add(&[&folder], &["--again"]);
    assert_eq!(added.len(), 3, "--again makes the jobs anyway");
    assert_eq!(sandbox.jobs().len(), 6);
}

#[test]
fn each_preset_writes_its_own_story() {
    let sandbox = Sandbox::new();
    let video = sandbox.video("presets.mp4", Look::plain());
    let mut stories = HashSet::new();
    let presets = ["narrative", "summary", "social", "bedtime", "documentary"];
    for preset in presets {
        let (added, _, code) = sandbox.add(&[&video], &["--preset", preset]);
        assert_eq!(code, Some(0));
        assert_eq!(added[0]["preset"], preset);
        assert_eq!(
            added[0]["cached"], false,
            "another preset's story was reused"
        );
    }
    sandbox.work_queue();
    for job in sandbox.jobs() {
        assert_eq!(job["state"], "succeeded", "{job:#}");
        stories.insert(text(&job, "story").to_owned());
    }
    assert_eq!(
        stories.len(),
        presets.len(),
        "the presets wrote the same story"
    );
}

#[test]
fn export_writes_every_story_with_its_file_name_in_each_format() {
    let sandbox = Sandbox::new();
    let videos = three_videos(&sandbox);
    process(&sandbox, &videos);
    let jobs = sandbox.jobs();
    let stories: HashSet<&str> = jobs.iter().map(|j| text(j, "story")).collect();
    assert_eq!(stories.len(), 3, "different videos got the same story");
    let out_dir = tempfile::tempdir().expect("tempdir");
    for format in ["md", "json", "txt"] {
        let file = out_dir.path().join(format!("stories.{format}"));
        let out = sandbox.ok(&["export", "--format", format, "--out", arg(&file)]);
        assert!(out.stderr.contains("exported 3 stories"), "{out}");
        let exported = std::fs::read_to_string(&file).expect("the export file");
        for job in &jobs {
            assert!(
                exported.contains(text(job, "file")),
                "{format}: no file name"
            );
            if format != "json" {
                assert!(
                    exported.contains(text(job, "story").trim_end()),
                    "{format}: a story is missing"
                );
            }
        }
        if format == "md" {
            assert!(exported.starts_with("# Stories"), "{exported}");
            assert_eq!(exported.matches("\n## clip-").count(), 3, "{exported}");
        }
        if format == "json" {
            let rows: Vec<Value> = serde_json::from_str(&exported).expect("export is JSON");
            assert_eq!(rows.len(), 3, "one entry per succeeded job");
            for job in &jobs {
                let row = rows
                    .iter()
                    .find(|r| r["id"] == job["id"])
                    .expect("every job exported");
                assert_eq!(row["file"], job["file"]);
                assert_eq!(row["source"], job["source"]);
                assert_eq!(row["story"], job["story"]);
            }
        }
    }
    let to_stdout = sandbox.ok(&["export", "--format", "txt"]).stdout;
    assert!(to_stdout.contains("clip-2.mp4"), "{to_stdout}");

    // PDF: real text, read back by poppler, every file name and story in it.
    let pdf = out_dir.path().join("stories.pdf");
    let out = sandbox.ok(&["export", "--format", "pdf", "--out", arg(&pdf)]);
    assert!(out.stderr.contains("exported 3 stories"), "{out}");
    let text = std::process::Command::new("pdftotext")
        .arg(&pdf)
        .arg("-")
        .output()
        .expect("pdftotext (poppler-utils) reads the PDF");
    assert!(text.status.success(), "pdftotext: {text:?}");
    let text = String::from_utf8_lossy(&text.stdout);
    let words = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    for job in &jobs {
        assert!(
            text.contains(text_of(job, "file")),
            "pdf: no file name:\n{text}"
        );
        assert!(
            words(&text).contains(&words(text_of(job, "story"))),
            "pdf: a story is missing or cut:\n{text}"
        );
    }
}

#[test]
fn search_finds_stories_by_their_words_and_their_file_names() {
    let sandbox = Sandbox::new();
    let mut videos = three_videos(&sandbox);
    videos.push(sandbox.video("Harbour at dawn.mp4", Look::varied(7, 3)));
    process(&sandbox, &videos);
    let harbour = sandbox.job_for("Harbour at dawn.mp4");

    // By its file name, any case, as the start of a word.
    let out = sandbox.ok(&["search", "HARB"]);
    assert!(out.stdout.contains("Harbour at dawn.mp4"), "{out}");
    assert!(out.stdout.contains(text(&harbour, "shortId")), "{out}");
    assert!(!out.stdout.contains("clip-"), "{out}");

    // By a word of its story: the hit's snippet holds it, and every job whose story has it
    // is found, with no story left out.
    let story = text(&harbour, "story");
    let word = story
        .split(|c: char| !c.is_alphanumeric())
        .find(|w| w.chars().count() >= 7)
        .expect("a long word in the story");
    let hits: Vec<Value> =
        serde_json::from_str(&sandbox.ok(&["search", word, "--json"]).stdout).expect("JSON");
    let lower = word.to_lowercase();
    let jobs = sandbox.jobs();
    let expected: HashSet<&str> = jobs
        .iter()
        .filter(|job| {
            text(job, "story")
                .to_lowercase()
                .split(|c: char| !c.is_alphanumeric())
                .any(|w| w.starts_with(&lower))
        })
        .map(|job| text(job, "id"))
        .collect();
    let got: HashSet<&str> = hits.iter().map(|hit| text(&hit["job"], "id")).collect();
    assert_eq!(got, expected, "searching '{word}'");
    let hit = hits
        .iter()
        .find(|hit| hit["job"]["id"] == harbour["id"])
        .expect("the harbour video is found by a word of its story");
    assert!(hit["job"]["story"].is_null(), "hits leave the story out");
    assert!(text(hit, "snippet").contains(word), "{hit:#}");

    // Every word must be found; nothing found says so.
    let out = sandbox.ok(&["search", "harbour", "clip"]);
    assert!(out.stdout.contains("no story found"), "{out}");
    let out = sandbox.run(&["search"]);
    assert_eq!(out.code, Some(2), "search needs words:\n{out}");
}

#[test]
fn a_paused_queue_runs_nothing_until_it_is_resumed() {
    let sandbox = Sandbox::new();
    let videos = three_videos(&sandbox);
    sandbox.ok(&["add", arg(&videos[0]), arg(&videos[1])]);
    let out = sandbox.ok(&["pause", "--reason", "out to lunch"]);
    assert!(out.stdout.contains("paused"), "{out}");
    assert_eq!(sandbox.stats()["paused"], "out to lunch");

    sandbox.work_queue();
    let jobs = sandbox.jobs();
    assert_eq!(
        count_in(&jobs, "queued"),
        2,
        "a paused queue ran jobs: {jobs:#?}"
    );
    assert!(jobs.iter().all(|j| j["attempts"] == 0), "{jobs:#?}");

    sandbox.ok(&["resume"]);
    assert!(sandbox.stats()["paused"].is_null());
    sandbox.work_queue();
    assert_eq!(count_in(&sandbox.jobs(), "succeeded"), 2);
}

#[test]
fn a_cancelled_job_stays_cancelled_until_retried_and_then_runs() {
    let sandbox = Sandbox::new();
    let videos = three_videos(&sandbox);
    let (added, _, _) = sandbox.add(&[&videos[0], &videos[1]], &[]);
    let victim = text(&added[0], "id").to_owned();
    let out = sandbox.ok(&["cancel", &victim]);
    assert!(
        out.stdout.contains("cancelled") && out.stdout.contains("clip-0.mp4"),
        "{out}"
    );
    assert_eq!(sandbox.job(&victim)["state"], "cancelled");

    sandbox.work_queue();
    assert_eq!(
        sandbox.job(&victim)["state"],
        "cancelled",
        "a cancelled job ran"
    );
    assert_eq!(sandbox.job(text(&added[1], "id"))["state"], "succeeded");

    let out = sandbox.ok(&["retry", &victim]);
    assert!(out.stdout.contains("queued again"), "{out}");
    let retried = sandbox.job(&victim);
    assert_eq!(retried["state"], "queued", "{retried:#}");
    assert_eq!(retried["attempts"], 0, "{retried:#}");
    sandbox.work_queue();
    let done = sandbox.job(&victim);
    assert_eq!(done["state"], "succeeded", "{done:#}");
    assert_eq!(done["attempts"], 1, "{done:#}");

    // The state machine refuses what makes no sense, saying why.
    for (command, word) in [("retry", "succeeded"), ("cancel", "succeeded")] {
        let out = sandbox.run(&[command, &victim]);
        assert_eq!(out.code, Some(1), "{command} of a succeeded job:\n{out}");
        assert!(out.stderr.contains(word), "{out}");
    }
}

#[test]
fn rm_deletes_one_job_and_clear_deletes_the_finished_ones() {
    let sandbox = Sandbox::new();
    let videos = three_videos(&sandbox);
    process(&sandbox, &videos[..2]);
    sandbox.ok(&["add", arg(&videos[2])]);
    let jobs = sandbox.jobs();
    let first = text(&jobs[0], "id").to_owned();
    let thumbnails = |job: &serde_json::Value| {
        sandbox
            .home()
            .join("thumbnails")
            .join(text(job, "contentHash"))
    };
    let (first_thumbs, second_thumbs) = (thumbnails(&jobs[0]), thumbnails(&jobs[1]));
    assert!(first_thumbs.is_dir() && second_thumbs.is_dir());

    let out = sandbox.ok(&["rm", &first]);
    assert!(
        !first_thumbs.exists(),
        "rm left the video's thumbnails behind"
    );
    assert!(
        out.stdout.contains("deleted") && out.stdout.contains("clip-0.mp4"),
        "{out}"
    );
    let jobs = sandbox.jobs();
    assert_eq!(jobs.len(), 2);
    assert!(jobs.iter().all(|j| j["id"] != first.as_str()));
    assert_eq!(sandbox.run(&["show", &first]).code, Some(1));

    let out = sandbox.ok(&["clear"]);
    assert!(out.stdout.contains("deleted 1 finished job"), "{out}");
    assert!(!second_thumbs.exists(), "clear left thumbnails behind");
    let jobs = sandbox.jobs();
    assert_eq!(jobs.len(), 1, "{jobs:#?}");
    assert_eq!(jobs[0]["file"], "clip-2.mp4");
    assert_eq!(jobs[0]["state"], "queued");
    sandbox.assert_database_intact();
}

#[test]
fn usage_mistakes_exit_with_code_two() {
    let sandbox = Sandbox::new();
    let video = sandbox.video("usage.mp4", Look::plain());
    let cases: [(&[&str], &str); 6] = [
        (&["add"], "PATHS"),
        (&["add", arg(&video), "--priority", "urgent"], "urgent"),
        (&["frobnicate"], "frobnicate"),
        (&["run", "--concurrency", "0"], "0"),
        (&["export", "--format", "odt"], "odt"),
        (&["run", "--backoff-base", "-1"], "-1"),
    ];
    for (args, mentions) in cases {
        let out = sandbox.run(args);
        assert_eq!(out.code, Some(2), "`{}`:\n{out}", args.join(" "));
        assert!(
            out.stderr.contains(mentions),
            "`{}` should mention {mentions}:\n{out}",
            args.join(" ")
        );
    }
    assert!(sandbox.jobs().is_empty(), "a usage error queued something");
}

#[test]
fn an_unknown_job_id_fails_with_a_clear_message() {
    let sandbox = Sandbox::new();
    for command in ["show", "cancel", "retry", "rm"] {
        let out = sandbox.run(&[command, "deadbeef"]);
        assert_eq!(out.code, Some(1), "{command}:\n{out}");
        assert!(
            out.stderr.contains("no job with id deadbeef"),
            "{command} should say the job does not exist:\n{out}"
        );
    }
}

#[test]
fn an_unknown_preset_model_or_storyteller_is_refused_with_the_choices_there_are() {
    let sandbox = Sandbox::new();
    let video = sandbox.video("preset.mp4", Look::plain());
    let out = sandbox.run(&["add", arg(&video), "--preset", "nonsense"]);
    assert_eq!(
        out.code,
        Some(2),
        "a preset that does not exist is a usage error: {out}"
    );
    assert!(out.stderr.contains("no preset 'nonsense'"), "{out}");
    assert!(out.stderr.contains("narrative, summary, social"), "{out}");

    // A model the storyteller does not have is refused, not recorded as the story's writer.
    let out = sandbox.run(&["add", arg(&video), "--model", "gpt-9"]);
    assert_eq!(out.code, Some(2), "{out}");
    assert!(out.stderr.contains("no model 'gpt-9'"), "{out}");
    assert!(out.stderr.contains("offline-analyser-4"), "{out}");

    let out = sandbox.run(&["process", arg(&video), "--storyteller", "gpt-99"]);
    assert_eq!(out.code, Some(2), "{out}");
    assert!(out.stderr.contains("unknown storyteller 'gpt-99'"), "{out}");
    assert!(out.stderr.contains("offline"), "{out}");
    assert!(sandbox.jobs().is_empty(), "a refused add queued something");
}

#[test]
fn a_running_job_can_be_cancelled_from_another_terminal_but_not_deleted() {
    let sandbox = Sandbox::new();
    let videos: Vec<PathBuf> = (0..5)
        .map(|i| sandbox.video(&format!("long-{i}.mp4"), Look::varied(i, 10)))
        .collect();
    let paths: Vec<&Path> = videos.iter().map(PathBuf::as_path).collect();
    sandbox.add(&paths, &[]);
    let runner = sandbox.spawn(&["run", "--until-empty", "--concurrency", "1"]);

    // A job may finish between being seen running and the next command; then try the next one.
    let mut refused_rm = None;
    let mut cancelled = None;
    for _ in 0..videos.len() {
        let jobs = sandbox.wait_for_jobs(crate::support::RUN_DEADLINE, "a running job", |jobs| {
            count_in(jobs, "running") == 1 || count_in(jobs, "queued") == 0
        });
        let Some(running) = jobs.iter().find(|j| j["state"] == "running") else {
            break;
        };
        let id = text(running, "id").to_owned();
        if refused_rm.is_none() {
            let out = sandbox.run(&["rm", &id]);
            if out.code == Some(1) {
                assert!(out.stderr.contains("is running; cancel it first"), "{out}");
                assert_eq!(sandbox.job(&id)["id"], id.as_str(), "a refused rm deleted");
                refused_rm = Some(id.clone());
            } else {
                assert_eq!(out.code, Some(0), "{out}");
                continue;
            }
        }
        let out = sandbox.run(&["cancel", &id]);
        if out.code == Some(0) {
            cancelled = Some(id);
            break;
        }
        assert!(out.stderr.contains("succeeded"), "{out}");
    }
    let out = runner.wait(crate::support::RUN_DEADLINE);
    assert_eq!(
        out.code,
        Some(0),
        "a cancelled job is not a failure:\n{out}"
    );
    assert!(
        refused_rm.is_some(),
        "never caught a job running to try rm on it"
    );
    let cancelled = cancelled.expect("never caught a job running to cancel it");
    let job = sandbox.job(&cancelled);
    assert_eq!(
        job["state"], "cancelled",
        "the runner overwrote the cancel: {job:#}"
    );
    assert!(job["story"].is_null(), "{job:#}");
    let jobs = sandbox.jobs();
    assert_eq!(count_in(&jobs, "cancelled"), 1, "{jobs:#?}");
    assert_eq!(count_in(&jobs, "succeeded"), jobs.len() - 1, "{jobs:#?}");
    sandbox.assert_database_intact();
}

#[test]
fn printing_into_a_closed_pipe_ends_quietly_instead_of_panicking() {
    // `storyteller list --json | head -1`: the reader goes away before the writer is done.
    let sandbox = Sandbox::new();
    let video = sandbox.video("piped.mp4", Look::plain());
    sandbox.ok(&["add", arg(&video)]);
    let mut child = std::process::Command::new(crate::support::binary())
        .arg("--home")
        .arg(sandbox.home())
        .args(["list", "--json"])
        .env_remove("RUST_LOG")
        .env_remove("RUST_BACKTRACE")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("starting storyteller");
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("waiting for storyteller");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("panicked"),
        "a closed stdout made storyteller panic (exit {:?}):\n{stderr}",
        out.status.code()
    );
    assert_ne!(out.status.code(), Some(101), "{stderr}");
}

#[test]
fn process_on_a_paused_queue_says_so_instead_of_waiting() {
    let sandbox = Sandbox::new();
    let video = sandbox.video("paused.mp4", Look::plain());
    sandbox.ok(&["pause", "--reason", "holiday"]);
    let out = sandbox.run(&["process", arg(&video)]);
    assert_eq!(out.code, Some(1), "{out}");
    assert!(out.stderr.contains("paused (holiday)"), "{out}");
    assert!(out.stderr.contains("storyteller resume"), "{out}");
    // The video waits in the queue for the resume.
    assert_eq!(count_in(&sandbox.jobs(), "queued"), 1);
}

#[test]
fn a_waiting_runner_picks_up_videos_added_from_another_terminal_at_once() {
    let sandbox = Sandbox::new();
    let video = sandbox.video("later.mp4", Look::plain());
    let runner = sandbox.spawn(&["run"]);
    // Let the runner start and go idle on an empty queue.
    std::thread::sleep(Duration::from_millis(500));
    let added_at = Instant::now();
    sandbox.ok(&["add", arg(&video)]);
    sandbox.wait_for_jobs(Duration::from_secs(10), "the video told", |jobs| {
        count_in(jobs, "succeeded") == 1
    });
    // Nothing polls: the runner heard of the write to the database. Its own timers would not
    // have looked for work before its first heartbeat, 10 s after it started.
    assert!(
        added_at.elapsed() < Duration::from_secs(5),
        "took {:?}",
        added_at.elapsed()
    );
    runner.signal("TERM");
    let out = runner.wait(Duration::from_secs(10));
    assert_eq!(out.code, Some(0), "{out}");
}

#[test]
fn process_stops_waiting_for_a_job_cancelled_from_another_terminal() {
    let sandbox = Sandbox::new();
    let videos: Vec<PathBuf> = (0..4)
        .map(|i| sandbox.video(&format!("wait-{i}.mp4"), Look::varied(i, 10)))
        .collect();
    let mut args = vec!["process", "--concurrency", "1"];
    args.extend(videos.iter().map(|v| arg(v)));
    let processing = sandbox.spawn(&args);

    // Cancel whichever job is running; one may finish first, then take the next.
    let mut cancelled = None;
    for _ in 0..videos.len() {
        let jobs = sandbox.wait_for_jobs(crate::support::RUN_DEADLINE, "a running job", |jobs| {
            count_in(jobs, "running") == 1 || (!jobs.is_empty() && count_in(jobs, "queued") == 0)
        });
        let Some(running) = jobs.iter().find(|j| j["state"] == "running") else {
            break;
        };
        let id = text(running, "id").to_owned();
        if sandbox.run(&["cancel", &id]).code == Some(0) {
            cancelled = Some(id);
            break;
        }
    }
    let cancelled = cancelled.expect("never caught a job running to cancel it");
    // Before the fix `process` waited for the cancelled job for ever.
    let out = processing.wait(crate::support::RUN_DEADLINE);
    assert_eq!(
        out.code,
        Some(1),
        "a cancelled job is not a success:\n{out}"
    );
    assert!(out.stdout.contains("(cancelled)"), "{out}");
    assert_eq!(sandbox.job(&cancelled)["state"], "cancelled");
}

#[test]
fn commands_started_together_on_a_new_home_all_work() {
    // The first commands on a new home race to create the database, switch it to WAL and
    // migrate it: each must wait its turn, never fail with "database is locked".
    for round in 0..60 {
        let home = tempfile::tempdir().expect("tempdir");
        let children: Vec<_> = [
            &["list", "--json"][..],
            &["stats", "--json"],
            &["list"],
            &["stats"],
        ]
        .iter()
        .map(|args| {
            std::process::Command::new(crate::support::binary())
                .arg("--home")
                .arg(home.path())
                .args(*args)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("spawning storyteller")
        })
        .collect();
        for child in children {
            let out = child.wait_with_output().expect("waiting for storyteller");
            assert!(
                out.status.success(),
                "round {round}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

#[test]
fn run_prints_the_final_line_of_every_job_before_it_exits() {
    let sandbox = Sandbox::new();
    let folder = sandbox.videos().join("many");
    std::fs::create_dir_all(&folder).expect("a folder");
    for i in 0..2000 {
        std::fs::write(folder.join(format!("clip-{i:04}.mp4")), format!("clip {i}"))
            .expect("a file");
    }
    let (added, _, code) = sandbox.add(&[&folder], &[]);
    assert_eq!((added.len(), code), (2000, Some(0)));
    // Gone before the run: each job fails at once, without a tool run, so the jobs end as fast
    // as the queue can end them.
    std::fs::remove_dir_all(&folder).expect("removing the files");
    let out = sandbox.run_within(
        crate::support::RUN_DEADLINE,
        &["run", "--until-empty", "--concurrency", "8"],
    );
    assert_eq!(out.code, Some(1), "{out}");
    let finals = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("✗ clip-"))
        .count();
    assert_eq!(finals, 2000, "final lines printed: {finals} of 2000");
}

#[test]
fn process_ends_when_one_of_its_jobs_is_removed_from_another_terminal_and_says_so() {
    let sandbox = Sandbox::new();
    let videos: Vec<PathBuf> = (0..3)
        .map(|i| sandbox.video(&format!("gone-{i}.mp4"), Look::varied(i, 10)))
        .collect();
    let mut args = vec!["process", "--concurrency", "1"];
    args.extend(videos.iter().map(|v| arg(v)));
    let processing = sandbox.spawn(&args);
    let jobs = sandbox.wait_for_jobs(crate::support::RUN_DEADLINE, "a job running", |jobs| {
        count_in(jobs, "running") == 1 && count_in(jobs, "queued") >= 1
    });
    let queued = jobs
        .iter()
        .find(|j| j["state"] == "queued")
        .expect("a queued job");
    let removed = text(queued, "id").to_owned();
    let file = text(queued, "file").to_owned();
    assert_eq!(sandbox.run(&["rm", &removed]).code, Some(0));
    let out = processing.wait(crate::support::RUN_DEADLINE);
    assert_eq!(out.code, Some(1), "a removed job is not a success:\n{out}");
    assert!(
        out.stderr
            .contains(&format!("{file} was removed from the queue")),
        "process did not say the job was removed:\n{out}"
    );
    assert_eq!(sandbox.jobs().len(), 2);
}

#[test]
fn adding_a_folder_with_nothing_to_tell_says_so_and_exits_one() {
    let sandbox = Sandbox::new();
    let empty = sandbox.videos().join("empty");
    let hidden_only = sandbox.videos().join("hidden only");
    std::fs::create_dir_all(&empty).expect("a folder");
    std::fs::create_dir_all(&hidden_only).expect("a folder");
    std::fs::write(hidden_only.join(".secret.mp4"), "x").expect("a hidden file");
    for folder in [&empty, &hidden_only] {
        let out = sandbox.run(&["add", arg(folder)]);
        assert_eq!(out.code, Some(1), "{out}");
        assert!(out.stderr.contains("no videos in this folder"), "{out}");
    }
    assert!(sandbox.jobs().is_empty());
}

#[test]
fn a_home_that_is_a_file_is_named_as_such() {
    let sandbox = Sandbox::new();
    let file = sandbox.videos().join("not-a-folder");
    std::fs::write(&file, "x").expect("a file");
    let out = std::process::Command::new(crate::support::binary())
        .args(["--home", arg(&file), "stats"])
        .output()
        .expect("running storyteller");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("is a file, not a folder"), "{stderr}");
}

#[test]
fn logs_carry_no_colour_codes_when_stderr_is_not_a_terminal() {
    let sandbox = Sandbox::new();
    let videos = three_videos(&sandbox);
    sandbox.ok(&["add", arg(&videos[0])]);
    let out = sandbox
        .spawn_with_env(
            &[("RUST_LOG", "storyteller_engine=info")],
            &["run", "--until-empty"],
        )
        .wait(crate::support::RUN_DEADLINE);
    assert_eq!(out.code, Some(0), "{out}");
    assert!(
        out.stderr.contains("INFO"),
        "no log lines to look at:\n{out}"
    );
    assert!(
        !out.stderr.contains('\u{1b}'),
        "colour codes in a log file:\n{out}"
    );
}

/// A local server speaking Ollama's `/api/chat`: the story in three streamed pieces.
async fn ollama_telling(story: [&str; 3]) -> wiremock::MockServer {
    use wiremock::matchers::{method, path};
    let mut body = String::new();
    for piece in story {
        body.push_str(
            &serde_json::json!({ "message": { "role": "assistant", "content": piece }, "done": false })
                .to_string(),
        );
        body.push('\n');
    }
    body.push_str(r#"{"message":{"role":"assistant","content":""},"done":true,"done_reason":"stop","prompt_eval_count":1500,"eval_count":42}"#);
    body.push('\n');
    let server = wiremock::MockServer::start().await;
    wiremock::Mock::given(method("POST"))
        .and(path("/api/chat"))
        .respond_with(
            wiremock::ResponseTemplate::new(200).set_body_raw(body, "application/x-ndjson"),
        )
        .mount(&server)
        .await;
    server
}

#[test]
fn an_estimate_counts_the_requests_of_a_model_told_one_image_at_a_time_and_the_transcript() {
    let sandbox = Sandbox::new();
    // 16 seconds with sound: eight keyframes.
    let video = sandbox.video("talk.mp4", Look::varied(4, 16));
    // Nothing listens here: an estimate sends nothing.
    let dead = "http://127.0.0.1:9";
    let estimate = |model: &str| {
        let out = sandbox
            .spawn_with_env(
                &[("STORYTELLER_OLLAMA_BASE_URL", dead)],
                &[
                    "estimate",
                    arg(&video),
                    "--storyteller",
                    "ollama",
                    "--model",
                    model,
                    "--json",
                ],
            )
            .wait(crate::support::RUN_DEADLINE);
        assert_eq!(out.code, Some(0), "{out}");
        out.json()
    };
    let at_once = estimate("llava");
    assert_eq!(at_once["requests"], 1, "{at_once:#}");
    assert_eq!(at_once["videos"][0]["requests"], 1, "{at_once:#}");
    // Llama 3.2 Vision takes one image per message: each keyframe alone, then the story.
    let one_by_one = estimate("llama3.2-vision");
    assert_eq!(one_by_one["requests"], 9, "{one_by_one:#}");
    let note = one_by_one["videos"][0]["note"].as_str().unwrap();
    assert!(
        note.contains(
            "one image per message: 9 requests a video (each keyframe described alone, then the story)"
        ),
        "{note}"
    );
    let tokens = |report: &serde_json::Value, field: &str| report[field].as_f64().unwrap();
    assert!(tokens(&one_by_one, "inputTokens") > tokens(&at_once, "inputTokens"));
    assert!(tokens(&one_by_one, "outputTokens") > tokens(&at_once, "outputTokens"));
    assert!(
        tokens(&one_by_one, "expectedSecs") > tokens(&at_once, "expectedSecs"),
        "describing eight keyframes takes time: {one_by_one:#} {at_once:#}"
    );
    assert!(
        one_by_one["timeBasis"]
            .as_str()
            .unwrap()
            .contains("9 requests in all"),
        "{one_by_one:#}"
    );

    // With a transcription server set, what is said is read too, and hearing it takes time.
    let out = sandbox.run(&["config", "set", "transcription.base-url", dead]);
    assert_eq!(out.code, Some(0), "{out}");
    let heard = estimate("llava");
    let transcript = tokens(&heard, "inputTokens") - tokens(&at_once, "inputTokens");
    assert!(
        (40.0..=60.0).contains(&transcript),
        "{transcript}: {heard:#}"
    );
    assert!(
        heard["videos"][0]["note"]
            .as_str()
            .unwrap()
            .contains("transcribed"),
        "{heard:#}"
    );
    assert!(tokens(&heard, "expectedSecs") > tokens(&at_once, "expectedSecs"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ollama_model_tells_a_video_and_a_stopped_ollama_pauses_ollama_alone_saying_so() {
    let story = ["Navy gives way ", "to bright bars", " as the video ends."];
    let server = ollama_telling(story).await;
    let sandbox = Sandbox::new();
    let video = sandbox.video("bars.mp4", Look::varied(2, 3));
    let base = server.uri();
    let out = {
        let (sandbox, video, base) = (&sandbox, video.clone(), base.clone());
        tokio::task::block_in_place(move || {
            sandbox
                .spawn_with_env(
                    &[("STORYTELLER_OLLAMA_BASE_URL", &base)],
                    &[
                        "process",
                        arg(&video),
                        "--storyteller",
                        "ollama",
                        "--model",
                        "llava:7b",
                    ],
                )
                .wait(crate::support::RUN_DEADLINE)
        })
    };
    assert_eq!(out.code, Some(0), "{out}");
    assert!(out.stdout.contains(&story.concat()), "{out}");
    let job = sandbox.job_for("bars.mp4");
    assert_eq!(job["storyteller"], "ollama");
    assert_eq!(job["model"], "llava:7b");
    // Told from the pictures, with no transcription server set: the story says so at its end.
    let told = job["story"].as_str().unwrap();
    assert!(told.starts_with(&story.concat()), "{told}");
    assert!(told.ends_with("the sound was not listened to.*"), "{told}");
    assert_eq!(job["usage"]["inputTokens"], 1500);
    assert_eq!(job["usage"]["outputTokens"], 42);

    // Ollama stopped: the video is not blamed; Ollama alone pauses and says what to do.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dead = format!("http://127.0.0.1:{port}");
    let other = sandbox.video("other.mp4", Look::varied(3, 3));
    let out = tokio::task::block_in_place(|| {
        sandbox
            .spawn_with_env(
                &[("STORYTELLER_OLLAMA_BASE_URL", &dead)],
                &["process", arg(&other), "--storyteller", "ollama"],
            )
            .wait(crate::support::RUN_DEADLINE)
    });
    assert_ne!(out.code, Some(0), "{out}");
    let said = format!("{}{}", out.stdout, out.stderr);
    assert!(
        said.contains(&format!("Ollama is not running at {dead}")),
        "{out}"
    );
    let job = sandbox.job_for("other.mp4");
    assert_eq!(job["state"], "queued", "{job:#}");
    assert_eq!(job["attempts"], 0, "no attempt used: {job:#}");
    assert_eq!(job["error"]["kind"], "unreachable", "{job:#}");
    let stats = sandbox.stats();
    assert!(stats["paused"].is_null(), "the queue goes on: {stats:#}");
    let pause = &stats["pausedStorytellers"][0];
    assert_eq!(pause["storyteller"], "ollama", "{stats:#}");
    assert_eq!(pause["kind"], "unreachable", "{stats:#}");
    assert_eq!(pause["queued"], 1, "{stats:#}");
    assert!(
        pause["until"].is_string(),
        "it looks again by itself: {stats:#}"
    );
    assert!(
        pause["reason"]
            .as_str()
            .is_some_and(|p| p.contains("Ollama is not running")),
        "{stats:#}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wishes_for_a_story_reach_the_model_are_kept_with_the_job_and_the_offline_one_refuses_them()
{
    let story = ["Rex court ", "dans le champ", " jusqu'à la fin."];
    let server = ollama_telling(story).await;
    let sandbox = Sandbox::new();
    let video = sandbox.video("dog.mp4", Look::varied(1, 3));
    let instructions = sandbox.videos().join("wishes.txt");
    std::fs::write(&instructions, "Call the dog Rex.\nKeep it light.\n").unwrap();
    let base = server.uri();
    let out = {
        let (sandbox, video, base, instructions) =
            (&sandbox, video.clone(), base.clone(), instructions.clone());
        tokio::task::block_in_place(move || {
            sandbox
                .spawn_with_env(
                    &[("STORYTELLER_OLLAMA_BASE_URL", &base)],
                    &[
                        "process",
                        arg(&video),
                        "--storyteller",
                        "ollama",
                        "--language",
                        "French",
                        "--words",
                        "120",
                        "--prompt-file",
                        arg(&instructions),
                    ],
                )
                .wait(crate::support::RUN_DEADLINE)
        })
    };
    assert_eq!(out.code, Some(0), "{out}");
    let sent = server.received_requests().await.unwrap();
    let body: serde_json::Value = serde_json::from_slice(&sent[0].body).unwrap();
    let prompt = body["messages"][0]["content"].as_str().unwrap();
    for wish in [
        "Length: about 120 words",
        "write the story in French",
        "Call the dog Rex.\nKeep it light.",
    ] {
        assert!(
            prompt.contains(wish),
            "{wish:?} is not in the prompt:\n{prompt}"
        );
    }
    let job = sandbox.job_for("dog.mp4");
    assert_eq!(
        job["style"],
        serde_json::json!({ "prompt": "Call the dog Rex.\nKeep it light.", "words": 120, "language": "French" }),
        "{job:#}"
    );
    let shown = sandbox.ok(&["show", text(&job, "shortId")]);
    assert!(
        shown
            .stdout
            .contains("asked:       in French, about 120 words, own instructions"),
        "{shown}"
    );

    // The same wishes again are the same job; a plain telling is another one.
    let again = sandbox.add_report(
        &[&video],
        &[
            "--storyteller",
            "ollama",
            "--language",
            "French",
            "--words",
            "120",
            "--prompt-file",
            arg(&instructions),
        ],
    );
    assert_eq!(again["entries"][0]["outcome"], "alreadyAdded", "{again:#}");
    let plain = sandbox.add_report(&[&video], &["--storyteller", "ollama"]);
    assert_eq!(plain["entries"][0]["outcome"], "queued", "{plain:#}");

    // The offline storyteller cannot keep them, and says so before queueing anything.
    let before = sandbox.jobs().len();
    let refused = sandbox.run(&[
        "add",
        arg(&video),
        "--storyteller",
        "offline",
        "--language",
        "French",
    ]);
    assert_eq!(refused.code, Some(2), "{refused}");
    assert!(
        refused
            .stderr
            .contains("writes in English only, not in French"),
        "{refused}"
    );
    let missing = sandbox.run(&[
        "add",
        arg(&video),
        "--storyteller",
        "ollama",
        "--prompt-file",
        "/nonexistent/wishes.txt",
    ]);
    assert_ne!(missing.code, Some(0), "{missing}");
    assert!(
        missing
            .stderr
            .contains("the instructions could not be read from /nonexistent/wishes.txt"),
        "{missing}"
    );
    assert_eq!(sandbox.jobs().len(), before);
}
